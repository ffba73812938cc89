//! ODS (Organisation Data Service) codes for synthetic organisations.
//!
//! Codes follow the real formats so that code which parses or routes on them (GP Connect's
//! `/[ODS_CODE]/STU3/...` service root, searches on `ods-organization-code`) is exercised
//! properly: GP practices are a letter and five digits (`A81001`), NHS trusts `R` and two letters
//! or digits (`RA7`), and trust sites the trust code and two digits (`RA701`). Codes are drawn
//! without repetition from the whole format space by a seed-keyed permutation. ODS codes name
//! organisations, not people, so a synthetic code that happens to match a real organisation's
//! is harmless; it just is not that organisation.

use crate::rng::{AffinePermutation, Kind};

/// Leading letters of GP practice codes in England (the letter encodes the region).
const PRACTICE_LETTERS: &[u8; 15] = b"ABCDEFGHJKLMNPY";

/// How many distinct GP practice codes exist in the format used: 15 letters × 10^5.
pub const PRACTICE_CODE_CAPACITY: u64 = 15 * 100_000;

/// The characters after a trust's `R`.
const TRUST_CHARS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// How many distinct trust codes exist: `R` followed by two of 36 characters.
pub const TRUST_CODE_CAPACITY: u64 = 36 * 36;

/// Sites per trust are numbered `01` up to this.
pub const MAX_SITES_PER_TRUST: u64 = 3;

#[derive(Debug, Clone, Copy)]
pub(crate) struct OdsCodes {
    practices: AffinePermutation,
    trusts: AffinePermutation,
}

impl OdsCodes {
    pub(crate) fn new(seed: u64) -> OdsCodes {
        OdsCodes {
            practices: AffinePermutation::new(PRACTICE_CODE_CAPACITY, seed, Kind::PracticeCode),
            trusts: AffinePermutation::new(TRUST_CODE_CAPACITY, seed, Kind::TrustCode),
        }
    }

    /// The code of practice `index`, distinct for every index below the capacity.
    pub(crate) fn practice(&self, index: u64) -> String {
        let n = self.practices.apply(index);
        let letter = crate::rng::pick(PRACTICE_LETTERS, n / 100_000);
        let mut code = String::with_capacity(6);
        code.push(char::from(*letter));
        crate::text::push_padded(&mut code, n % 100_000, 5);
        code
    }

    /// The code of trust `index`, distinct for every index below the capacity.
    pub(crate) fn trust(&self, index: u64) -> String {
        let n = self.trusts.apply(index);
        let first = crate::rng::pick(TRUST_CHARS, n / 36);
        let second = crate::rng::pick(TRUST_CHARS, n % 36);
        let mut code = String::with_capacity(5);
        code.push('R');
        code.push(char::from(*first));
        code.push(char::from(*second));
        code
    }
}

/// The code of a trust's site: the trust code and the site's number, from `01`.
pub(crate) fn site_code(trust_code: &str, site: u64) -> String {
    format!("{trust_code}{:02}", site + 1)
}

/// Whether `s` has the GP practice code format: one upper-case letter and five digits.
pub fn is_gp_practice_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

/// Whether `s` has the NHS trust code format: `R` and two upper-case letters or digits.
pub fn is_trust_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 3 && b[0] == b'R' && b[1..].iter().all(|c| TRUST_CHARS.contains(c))
}

/// Whether `s` has the trust site code format: a trust code and two digits.
pub fn is_trust_site_code(s: &str) -> bool {
    s.len() == 5
        && s.get(..3).is_some_and(is_trust_code)
        && s.as_bytes()[3..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn practice_codes_are_distinct_and_well_formed() {
        let codes = OdsCodes::new(11);
        let all: HashSet<String> = (0..PRACTICE_CODE_CAPACITY)
            .map(|i| codes.practice(i))
            .collect();
        assert_eq!(all.len() as u64, PRACTICE_CODE_CAPACITY);
        assert!(all.iter().all(|c| is_gp_practice_code(c)));
    }

    #[test]
    fn trust_and_site_codes_are_distinct_and_well_formed() {
        let codes = OdsCodes::new(11);
        let all: HashSet<String> = (0..TRUST_CODE_CAPACITY).map(|i| codes.trust(i)).collect();
        assert_eq!(all.len() as u64, TRUST_CODE_CAPACITY);
        assert!(all.iter().all(|c| is_trust_code(c)));
        assert_eq!(site_code("RA7", 0), "RA701");
        assert!(is_trust_site_code("RA701"));
        assert!(!is_trust_site_code("RA7"));
        assert!(!is_trust_code("A81001"));
        assert!(!is_gp_practice_code("RA701"));
    }
}
