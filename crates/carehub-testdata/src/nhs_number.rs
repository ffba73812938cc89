//! NHS numbers: the modulus 11 check digit, parsing, and the allocation of unique synthetic
//! numbers in the 999 test range.
//!
//! Synthetic patients must never carry a number that could belong to a real person, so every
//! number allocated here starts `999`: the range 999 000 0000 – 999 999 9999 is set aside for
//! testing and never issued. That range is small, and its size bounds how many patients a pack
//! can hold (see [`NHS_NUMBER_CAPACITY`]).

use std::fmt;

use crate::rng::{AffinePermutation, Kind};

/// The modulus 11 check digit of the first nine digits of an NHS number.
///
/// Weights 10 down to 2 are applied to the nine digits; the check digit is 11 minus the sum
/// modulo 11, where 11 becomes 0. A result of 10 means no NHS number has these first nine
/// digits, and `None` is returned, as it is for input that is not exactly nine ASCII digits.
pub fn nhs_number_check_digit(first9: &str) -> Option<u8> {
    let bytes = first9.as_bytes();
    if bytes.len() != 9 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut sum = 0u32;
    for (byte, weight) in bytes.iter().zip((2..=10u32).rev()) {
        sum += u32::from(byte - b'0') * weight;
    }
    check_from_sum(sum)
}

/// 11 - (sum mod 11), with 11 -> 0 and 10 -> no valid number.
const fn check_from_sum(sum: u32) -> Option<u8> {
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        check => Some(check as u8),
    }
}

/// Whether `s` is exactly ten ASCII digits whose last is the check digit of the first nine.
/// Spaces are not accepted: callers that take formatted input should strip them first.
pub fn is_valid_nhs_number(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() != 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match (s.get(..9).and_then(nhs_number_check_digit), bytes.get(9)) {
        (Some(check), Some(last)) => check == last - b'0',
        _ => false,
    }
}

/// A valid NHS number (ten digits, correct check digit). The only way to get one is to parse
/// it, so holding an `NhsNumber` proves the value was checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber(String);

/// Why a string is not an NHS number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidNhsNumber;

impl fmt::Display for InvalidNhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an NHS number: expected ten digits ending in the modulus 11 check digit")
    }
}

impl std::error::Error for InvalidNhsNumber {}

impl NhsNumber {
    /// Parses ten digits, optionally grouped 3-3-4 by single spaces (`943 476 5919`), as they
    /// are often printed.
    pub fn parse(s: &str) -> Result<NhsNumber, InvalidNhsNumber> {
        let digits = if s.contains(' ') {
            let parts: Vec<&str> = s.split(' ').collect();
            if parts.iter().map(|p| p.len()).ne([3, 3, 4]) {
                return Err(InvalidNhsNumber);
            }
            parts.concat()
        } else {
            s.to_owned()
        };
        if is_valid_nhs_number(&digits) {
            Ok(NhsNumber(digits))
        } else {
            Err(InvalidNhsNumber)
        }
    }

    /// The ten digits, unspaced, as FHIR `Identifier.value` carries them.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the number is in the 999 test range.
    pub fn is_test_range(&self) -> bool {
        self.0.starts_with("999")
    }

    /// Builds the number from nine digits already known to have a check digit. Internal: the
    /// allocator below only produces such digits.
    fn from_first9(first9: u32) -> Option<NhsNumber> {
        let mut text = String::with_capacity(10);
        crate::text::push_padded(&mut text, u64::from(first9), 9);
        let check = nhs_number_check_digit(&text)?;
        text.push(char::from(b'0' + check));
        Some(NhsNumber(text))
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NhsNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// How many valid NHS numbers the 999 range holds: 10^6 choices of digits 4–9, of which the 1
/// in 11 whose check digit would be 10 are not numbers. Counted exactly by a test.
pub const VALID_NHS_NUMBERS_IN_TEST_RANGE: u64 = 909_091;

/// How many distinct patients a pack can hold: the allocator uses 9 numbers from each block of
/// ten that share their first eight digits (every such block has at least 9 valid numbers), so
/// that index -> number is plain arithmetic. This leaves 9 091 valid numbers (1%) unused.
pub const NHS_NUMBER_CAPACITY: u64 = 900_000;

/// The first eight digits shared by a block are 999 followed by five digits.
const BLOCKS: u64 = 100_000;
const PER_BLOCK: u64 = 9;
const TEST_RANGE_START: u32 = 999_000_000;

/// Maps patient indices to distinct valid NHS numbers in the 999 range, in O(1) per index.
///
/// The index is first shuffled over `0..NHS_NUMBER_CAPACITY` by a seed-keyed permutation (so
/// consecutive patients do not get consecutive numbers, and each seed has its own numbering),
/// then split into a block (digits 4–8) and a position among that block's valid last digits.
#[derive(Debug, Clone, Copy)]
pub struct NhsNumberAllocator {
    shuffle: AffinePermutation,
}

impl NhsNumberAllocator {
    /// The allocator of the packs with `seed`.
    pub fn new(seed: u64) -> NhsNumberAllocator {
        NhsNumberAllocator {
            shuffle: AffinePermutation::new(NHS_NUMBER_CAPACITY, seed, Kind::NhsNumber),
        }
    }

    /// The number of patient `index`, or `None` past [`NHS_NUMBER_CAPACITY`]. Distinct indices
    /// below the capacity always get distinct numbers.
    pub fn number(&self, index: u64) -> Option<NhsNumber> {
        if index >= NHS_NUMBER_CAPACITY {
            return None;
        }
        let slot = self.shuffle.apply(index);
        let block = slot / PER_BLOCK;
        let position = slot % PER_BLOCK;
        debug_assert!(block < BLOCKS);
        // Digits 1–8 as a number, then try each ninth digit in order and take the
        // `position`-th that has a check digit (at most one of the ten does not).
        let first8 = TEST_RANGE_START / 10 + block as u32;
        let prefix_sum = weighted_sum_first8(first8);
        let mut seen = 0;
        for last in 0..10u32 {
            if check_from_sum(prefix_sum + 2 * last).is_some() {
                if seen == position {
                    return NhsNumber::from_first9(first8 * 10 + last);
                }
                seen += 1;
            }
        }
        None
    }
}

/// The weighted sum (weights 10..3) of an 8-digit prefix.
fn weighted_sum_first8(mut first8: u32) -> u32 {
    let mut sum = 0;
    for weight in 3..=10 {
        sum += (first8 % 10) * weight;
        first8 /= 10;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_test_number_is_valid() {
        // 943 476 5919 is the example number NHS documentation uses.
        assert_eq!(nhs_number_check_digit("943476591"), Some(9));
        assert!(is_valid_nhs_number("9434765919"));
        assert!(!is_valid_nhs_number("9434765918"));
    }

    #[test]
    fn check_digit_edge_cases() {
        // Sum 0 -> 11 - 0 = 11 -> check digit 0.
        assert_eq!(nhs_number_check_digit("000000000"), Some(0));
        // 000000001: sum 2, 11 - 2 = 9.
        assert_eq!(nhs_number_check_digit("000000001"), Some(9));
        // 000000006: sum 12, 12 mod 11 = 1, 11 - 1 = 10 -> no NHS number has these digits.
        assert_eq!(nhs_number_check_digit("000000006"), None);
        assert!(!(0..=9).any(|d| is_valid_nhs_number(&format!("000000006{d}"))));
        assert_eq!(nhs_number_check_digit("12345678"), None);
        assert_eq!(nhs_number_check_digit("12345678a"), None);
        assert_eq!(nhs_number_check_digit("1234567890"), None);
    }

    #[test]
    fn malformed_strings_are_rejected() {
        for bad in [
            "",
            "943476591",
            "94347659190",
            "943476591x",
            "+434765919",
            "９434765919",
        ] {
            assert!(!is_valid_nhs_number(bad), "{bad:?}");
            assert!(NhsNumber::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_accepts_plain_and_spaced_forms() {
        let plain = NhsNumber::parse("9434765919").unwrap();
        let spaced = NhsNumber::parse("943 476 5919").unwrap();
        assert_eq!(plain, spaced);
        assert_eq!(plain.to_string(), "9434765919");
        assert!(!plain.is_test_range());
        assert!(NhsNumber::parse("943 476 5918").is_err());
        assert!(NhsNumber::parse("9434 76 5919").is_err());
        assert!(NhsNumber::parse("943 4765 919").is_err());
    }

    #[test]
    fn test_range_counts_match_the_constants() {
        let valid = (0..1_000_000u32)
            .filter(|b| nhs_number_check_digit(&format!("999{b:06}")).is_some())
            .count() as u64;
        assert_eq!(valid, VALID_NHS_NUMBERS_IN_TEST_RANGE);
        // Every block of ten shares digits 1-8 and has 9 or 10 valid members.
        for block in 0..BLOCKS as u32 {
            let first8 = TEST_RANGE_START / 10 + block;
            let n = (0..10)
                .filter(|d| nhs_number_check_digit(&format!("{}", first8 * 10 + d)).is_some())
                .count();
            assert!(n >= PER_BLOCK as usize, "block {block} has {n}");
        }
    }

    #[test]
    fn allocator_covers_the_capacity_uniquely() {
        let allocator = NhsNumberAllocator::new(7);
        let mut seen = std::collections::HashSet::new();
        for i in 0..NHS_NUMBER_CAPACITY {
            let number = allocator.number(i).unwrap();
            assert!(number.is_test_range());
            assert!(is_valid_nhs_number(number.as_str()));
            assert!(seen.insert(number), "duplicate at {i}");
        }
        assert_eq!(allocator.number(NHS_NUMBER_CAPACITY), None);
        assert_eq!(allocator.number(u64::MAX), None);
    }
}
