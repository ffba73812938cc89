//! FHIR logical ids for generated resources.
//!
//! Ids are UUID-shaped (RFC 9562 version 8, the "custom" layout) and derived from the pack seed,
//! the resource kind and its index, so that packs with different seeds can be loaded into one
//! server without their ids colliding, and regenerating a pack yields the same ids. Within one
//! seed and kind they are unique by construction: the low 62 bits are a bijection of the index.

use crate::rng::{Kind, key, permute62};

/// The id of resource `index` of `kind` in the pack with `seed`: 36 lowercase hex digits and
/// hyphens, a valid FHIR id.
pub(crate) fn resource_id(seed: u64, kind: Kind, index: u64) -> String {
    // High half: a hash, for looks (no shared prefix across a pack). Its version nibble is set
    // to 8. Low half: variant bits 10, then the index through a keyed bijection, which is what
    // guarantees uniqueness.
    let high = (key(seed, kind, index) & !0xF000) | 0x8000;
    let low = (0b10 << 62) | permute62(index, key(seed, kind, u64::MAX));
    let mut id = String::with_capacity(36);
    push_hex(&mut id, high >> 32, 8);
    id.push('-');
    push_hex(&mut id, (high >> 16) & 0xFFFF, 4);
    id.push('-');
    push_hex(&mut id, high & 0xFFFF, 4);
    id.push('-');
    push_hex(&mut id, low >> 48, 4);
    id.push('-');
    push_hex(&mut id, low & 0xFFFF_FFFF_FFFF, 12);
    id
}

fn push_hex(out: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        let nibble = (value >> (shift * 4)) & 0xF;
        out.push(char::from(*crate::rng::pick(HEX, nibble)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_uuid_shaped_and_valid_fhir_ids() {
        let id = resource_id(1, Kind::Patient, 0);
        assert_eq!(id.len(), 36);
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(
            id.bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(id.as_bytes()[14], b'8', "version nibble: {id}");
        assert!(b"89ab".contains(&id.as_bytes()[19]), "variant: {id}");
    }

    #[test]
    fn ids_differ_by_index_kind_and_seed() {
        let ids: HashSet<String> = (0..100_000)
            .map(|i| resource_id(5, Kind::Patient, i))
            .collect();
        assert_eq!(ids.len(), 100_000);
        assert_ne!(
            resource_id(5, Kind::Patient, 3),
            resource_id(5, Kind::Practice, 3)
        );
        assert_ne!(
            resource_id(5, Kind::Patient, 3),
            resource_id(6, Kind::Patient, 3)
        );
        assert_eq!(
            resource_id(5, Kind::Patient, 3),
            resource_id(5, Kind::Patient, 3)
        );
    }
}
