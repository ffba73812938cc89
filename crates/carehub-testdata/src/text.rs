//! String assembly without `core::fmt`.
//!
//! Generating a million patients builds a few dozen short strings per patient; going through
//! `format!` machinery for each showed up as a sixth of the generation time, so the hot paths
//! assemble their strings directly.

/// Appends `n` in decimal, zero-padded to at least `width` digits.
pub(crate) fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

/// The parts joined, in one allocation.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_like_format() {
        for (n, width) in [
            (0, 0),
            (0, 3),
            (7, 3),
            (123, 3),
            (1234, 3),
            (u64::MAX, 0),
            (42, 25),
        ] {
            let mut out = String::new();
            push_padded(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$}", width = width.min(20)));
        }
        assert_eq!(concat(&["Organization/", "abc"]), "Organization/abc");
    }
}
