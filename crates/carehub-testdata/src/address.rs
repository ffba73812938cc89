//! Addresses, postcodes, phone numbers and email addresses that look real but reach no one.
//!
//! Phone numbers come only from the ranges Ofcom keeps for drama and fiction (01632 960xxx,
//! 07700 900xxx), and email addresses only from `example.com`, so a test that sends a message by
//! mistake cannot reach a real person. Postcodes are well-formed and in the right area for their
//! town, but are not checked against the postcode file: some will not exist.

use crate::places::{STREET_STEMS, STREET_SUFFIXES, TOWNS, Town};
use crate::rng::Rng;
use crate::text::push_padded;

/// A UK postal address in the shape FHIR `Address` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// House number and street, e.g. `12 Victoria Road`.
    pub line: String,
    /// Town or city, e.g. `Leeds`.
    pub city: &'static str,
    /// Postcode with its single space, e.g. `LS6 2QT`.
    pub postcode: String,
}

/// Letters that may end a postcode: the inward code never uses C, I, K, M, O or V because they
/// are easily misread in handwriting.
const INWARD_LETTERS: &[u8; 20] = b"ABDEFGHJLNPQRSTUWXYZ";

/// The number of towns addresses are drawn from; a town is chosen by its index below this.
pub(crate) const TOWN_COUNT: u64 = TOWNS.len() as u64;

pub(crate) fn town(index: u64) -> &'static Town {
    crate::rng::pick(&TOWNS, index)
}

/// An address in `town`, drawn from `rng`.
pub(crate) fn address_in(town: &'static Town, rng: &mut Rng) -> Address {
    // Most houses have small numbers; a long tail reaches the hundreds.
    let number = if rng.chance(800_000) {
        1 + rng.below(80)
    } else {
        1 + rng.below(300)
    };
    let stem = rng.pick(&STREET_STEMS);
    let suffix = rng.pick(&STREET_SUFFIXES);
    Address {
        line: {
            let mut line = String::with_capacity(4 + stem.len() + suffix.len() + 2);
            push_padded(&mut line, number, 1);
            line.push(' ');
            line.push_str(stem);
            line.push(' ');
            line.push_str(suffix);
            line
        },
        city: town.name,
        postcode: postcode_in(town, rng),
    }
}

fn postcode_in(town: &Town, rng: &mut Rng) -> String {
    let district = town
        .districts
        .get(rng.below(town.districts.len() as u64) as usize)
        .copied()
        .unwrap_or(1);
    let sector = rng.below(10);
    let first = crate::rng::pick(INWARD_LETTERS, rng.next_u64());
    let second = crate::rng::pick(INWARD_LETTERS, rng.next_u64());
    let mut postcode = String::with_capacity(8);
    postcode.push_str(town.postcode_area);
    push_padded(&mut postcode, u64::from(district), 1);
    postcode.push(' ');
    push_padded(&mut postcode, sector, 1);
    postcode.push(char::from(*first));
    postcode.push(char::from(*second));
    postcode
}

/// A landline number in Ofcom's drama range `01632 960000`–`01632 960999`.
pub(crate) fn drama_landline(rng: &mut Rng) -> String {
    let mut number = String::from("01632 960");
    push_padded(&mut number, rng.below(1000), 3);
    number
}

/// A mobile number in Ofcom's drama range `07700 900000`–`07700 900999`.
pub(crate) fn drama_mobile(rng: &mut Rng) -> String {
    let mut number = String::from("07700 900");
    push_padded(&mut number, rng.below(1000), 3);
    number
}

/// `first.last12@example.com`, lower case, keeping only ASCII letters and digits of the names
/// (`O'Brien` becomes `obrien`), because `example.com` is reserved and can never deliver mail.
pub(crate) fn example_email(given: &str, family: &str, rng: &mut Rng) -> String {
    let mut email = String::with_capacity(given.len() + family.len() + 16);
    push_ascii_lower(&mut email, given);
    email.push('.');
    push_ascii_lower(&mut email, family);
    if rng.chance(600_000) {
        let n = 1 + rng.below(99);
        push_padded(&mut email, n, 1);
    }
    email.push_str("@example.com");
    email
}

fn push_ascii_lower(out: &mut String, text: &str) {
    out.extend(
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase()),
    );
}

/// Whether `s` has the shape of a UK postcode: an outward code (`A9`, `A99`, `AA9`, `AA99`,
/// `A9A` or `AA9A`), one space, and an inward code (a digit and two letters other than C, I, K,
/// M, O, V). Upper case only. Checks the format, not that the postcode exists.
pub fn is_valid_postcode_format(s: &str) -> bool {
    let Some((outward, inward)) = s.split_once(' ') else {
        return false;
    };
    is_outward_code(outward.as_bytes()) && is_inward_code(inward.as_bytes())
}

fn is_outward_code(code: &[u8]) -> bool {
    // The first letter is never Q, V or X; a second letter is never I, J or Z.
    let first_letter = |b: u8| b.is_ascii_uppercase() && !b"QVX".contains(&b);
    let second_letter = |b: u8| b.is_ascii_uppercase() && !b"IJZ".contains(&b);
    let digit = |b: u8| b.is_ascii_digit();
    let letter = |b: u8| b.is_ascii_uppercase();
    match *code {
        [a, b] => first_letter(a) && digit(b),
        // A99, AA9 or A9A.
        [a, b, c] => {
            first_letter(a)
                && ((digit(b) && digit(c))
                    || (second_letter(b) && digit(c))
                    || (digit(b) && letter(c)))
        }
        // AA99 or AA9A.
        [a, b, c, d] => first_letter(a) && second_letter(b) && digit(c) && (digit(d) || letter(d)),
        _ => false,
    }
}

fn is_inward_code(code: &[u8]) -> bool {
    match *code {
        [n, a, b] => {
            n.is_ascii_digit() && INWARD_LETTERS.contains(&a) && INWARD_LETTERS.contains(&b)
        }
        _ => false,
    }
}

/// Whether `s` is in one of the Ofcom drama ranges used here.
pub fn is_drama_phone_number(s: &str) -> bool {
    let tail = s
        .strip_prefix("01632 960")
        .or_else(|| s.strip_prefix("07700 900"));
    tail.is_some_and(|t| t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Kind;

    #[test]
    fn postcode_format_accepts_every_shape_and_rejects_others() {
        for ok in [
            "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "W1A 1HQ", "EC1A 1BB", "LS1 4AP",
        ] {
            assert!(is_valid_postcode_format(ok), "{ok}");
        }
        for bad in [
            "",
            "LS1",
            "LS14AP",
            "LS1  4AP",
            "ls1 4ap",
            "LS1 4CP",
            "LS1 4AI",
            "QS1 4AP",
            "LS1 AAP",
            "L 4AP",
            "LSSS1 4AP",
            "LS1 4AP ",
            "1S1 4AP",
            "LZ1 4AP",
        ] {
            assert!(!is_valid_postcode_format(bad), "{bad}");
        }
    }

    #[test]
    fn every_town_yields_well_formed_postcodes_in_its_own_area() {
        for (i, town) in TOWNS.iter().enumerate() {
            assert!(!town.districts.is_empty(), "{}", town.name);
            let mut rng = Rng::for_record(3, Kind::Patient, i as u64);
            for _ in 0..200 {
                let address = address_in(town, &mut rng);
                assert!(
                    is_valid_postcode_format(&address.postcode),
                    "{}",
                    address.postcode
                );
                let outward = address.postcode.split(' ').next().unwrap_or_default();
                let area: String = outward
                    .chars()
                    .take_while(char::is_ascii_alphabetic)
                    .collect();
                assert_eq!(area, town.postcode_area);
                assert_eq!(address.city, town.name);
            }
        }
    }

    #[test]
    fn phones_and_emails_stay_in_reserved_ranges() {
        let mut rng = Rng::for_record(9, Kind::Patient, 0);
        for _ in 0..1000 {
            assert!(is_drama_phone_number(&drama_landline(&mut rng)));
            assert!(is_drama_phone_number(&drama_mobile(&mut rng)));
        }
        assert!(!is_drama_phone_number("0113 496 0000"));
        assert!(!is_drama_phone_number("01632 96012"));
        let email = example_email("Grace-May", "O'Brien", &mut rng);
        assert!(email.starts_with("gracemay.obrien"), "{email}");
        assert!(email.ends_with("@example.com"));
    }
}
