//! The seeded randomness behind every generated record.
//!
//! Test data must come out the same on every platform, compiler and crate version, so nothing
//! here uses `rand`, floats or the clock: a record's values are drawn from a SplitMix64 stream
//! keyed by (pack seed, record kind, record index). Keying by index is what lets patient #500 000
//! be generated without generating the 499 999 before it.
//!
//! The permutations below are what make identifiers unique by construction rather than by luck:
//! each maps `0..n` onto `0..n` one to one, keyed by the seed.

/// The SplitMix64 increment (the golden ratio in 64-bit fixed point).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective 64-bit mixer with good avalanche.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a (seed, kind, index) triple into one 64-bit key. Each input passes through the mixer
/// separately so that nearby seeds or indices give unrelated keys.
pub(crate) const fn key(seed: u64, kind: Kind, index: u64) -> u64 {
    mix64(mix64(mix64(seed) ^ kind.salt()) ^ index.wrapping_mul(GOLDEN_GAMMA))
}

/// What a stream or permutation is for. Each kind has its own salt so that, for one seed, the
/// patient stream and the practitioner stream (say) never coincide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Patient,
    Practice,
    Trust,
    Site,
    Practitioner,
    PractitionerRole,
    NhsNumber,
    PracticeCode,
    TrustCode,
    SdsUserId,
    SdsRoleProfileId,
    Naming,
}

impl Kind {
    /// Fixed salts: changing one changes every pack ever generated, so they are frozen.
    const fn salt(self) -> u64 {
        match self {
            Kind::Patient => 0x7061_7469_656E_7401,
            Kind::Practice => 0x7072_6163_7469_6302,
            Kind::Trust => 0x7472_7573_7400_0003,
            Kind::Site => 0x7369_7465_0000_0004,
            Kind::Practitioner => 0x7072_6163_7469_7405,
            Kind::PractitionerRole => 0x726F_6C65_0000_0006,
            Kind::NhsNumber => 0x6E68_736E_6F00_0007,
            Kind::PracticeCode => 0x6F64_7370_7261_6308,
            Kind::TrustCode => 0x6F64_7374_7275_7309,
            Kind::SdsUserId => 0x7364_7375_7365_720A,
            Kind::SdsRoleProfileId => 0x7364_7372_6F6C_650B,
            Kind::Naming => 0x6E61_6D69_6E67_000C,
        }
    }
}

/// A SplitMix64 stream. Tiny, fast, and its output is fixed by its published algorithm, which is
/// what cross-version determinism needs (a `rand` upgrade may change its generators' streams).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The stream of one record.
    pub(crate) const fn for_record(seed: u64, kind: Kind, index: u64) -> Rng {
        Rng {
            state: key(seed, kind, index),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A value in `0..n` (0 when `n` is 0). Lemire's multiply-shift: the bias is below 2^-40 for
    /// every `n` used here, far under anything a test could notice, and it needs no retry loop.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        scale(self.next_u64(), n)
    }

    /// True with probability `per_million / 1 000 000`. Integer odds keep the outcome exact on
    /// every platform.
    pub(crate) fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }

    /// One item of a non-empty fixed list.
    pub(crate) fn pick<T: Copy, const N: usize>(&mut self, items: &[T; N]) -> T {
        *pick(items, self.next_u64())
    }

    /// One item of a weighted list; the weights need not sum to anything in particular.
    pub(crate) fn weighted<'a, T, const N: usize>(&mut self, items: &'a [(u32, T); N]) -> &'a T {
        const { assert!(N > 0) };
        let total: u64 = items.iter().map(|(w, _)| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (weight, item) in items {
            let weight = u64::from(*weight);
            if roll < weight {
                return item;
            }
            roll -= weight;
        }
        // Only reachable if every weight is 0; the first item is as good an answer as any.
        &items[0].1
    }
}

/// Maps a uniform 64-bit draw onto `0..n` (0 when `n` is 0), for draws taken before `n` is
/// known to be usable.
pub(crate) fn scale(roll: u64, n: u64) -> u64 {
    ((u128::from(roll) * u128::from(n)) >> 64) as u64
}

/// The item of a non-empty fixed list that `r` selects. The list length is checked at compile
/// time, so the index is always in range.
pub(crate) fn pick<T, const N: usize>(items: &[T; N], r: u64) -> &T {
    const { assert!(N > 0) };
    &items[(r % N as u64) as usize]
}

/// A seed-keyed one-to-one map of `0..n` onto itself: `i -> (a * i + c) mod n` with `a` coprime
/// to `n`. O(1) per call and unique by construction, which is what identifier allocation needs.
/// Not a cryptographic shuffle, and it need not be: it only has to look unsequenced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AffinePermutation {
    n: u64,
    a: u64,
    c: u64,
}

impl AffinePermutation {
    pub(crate) fn new(n: u64, seed: u64, kind: Kind) -> AffinePermutation {
        let mut rng = Rng::for_record(seed, kind, 0);
        if n <= 1 {
            return AffinePermutation { n, a: 1, c: 0 };
        }
        // Start from a multiplier near n/φ (spreads consecutive inputs well) jittered by the
        // seed, then walk up to the next value coprime with n. A coprime value is always found
        // within n steps because 1 is coprime with everything; in practice it takes a few.
        let mut a = (n / 2 + rng.below(n / 4 + 1)) % n;
        let mut tries = 0;
        while gcd(a, n) != 1 && tries < n {
            a = (a + 1) % n;
            tries += 1;
        }
        if gcd(a, n) != 1 {
            a = 1;
        }
        let c = rng.below(n);
        AffinePermutation { n, a, c }
    }

    /// The image of `i`; `i` must be below `n` for the result to be unique.
    pub(crate) fn apply(&self, i: u64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        ((u128::from(self.a) * u128::from(i % self.n) + u128::from(self.c)) % u128::from(self.n))
            as u64
    }
}

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// A keyed bijection on 62-bit values: used for the unique part of resource ids. Multiplying by
/// an odd constant and xor-shifting are each invertible modulo 2^62, so the whole is too.
pub(crate) const fn permute62(x: u64, key: u64) -> u64 {
    const MASK: u64 = (1 << 62) - 1;
    let mut x = (x ^ key) & MASK;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK;
    x ^= x >> 29;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB) & MASK;
    x ^= x >> 32;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn splitmix_matches_the_published_reference_stream() {
        // The first outputs of SplitMix64 seeded with 0 (from the reference C implementation),
        // so a refactor that changes the stream fails here rather than silently changing packs.
        let mut rng = Rng { state: 0 };
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn affine_permutation_is_one_to_one() {
        for n in [1u64, 2, 9, 10, 97, 1296, 100_000] {
            for seed in 0..4 {
                let p = AffinePermutation::new(n, seed, Kind::NhsNumber);
                let seen: HashSet<u64> = (0..n).map(|i| p.apply(i)).collect();
                assert_eq!(seen.len() as u64, n, "n = {n}, seed = {seed}");
                assert!(seen.iter().all(|&v| v < n));
            }
        }
    }

    #[test]
    fn permute62_is_one_to_one_on_a_sample() {
        let seen: HashSet<u64> = (0..200_000).map(|i| permute62(i, 12345)).collect();
        assert_eq!(seen.len(), 200_000);
    }

    #[test]
    fn below_stays_in_range_and_handles_zero() {
        let mut rng = Rng::for_record(1, Kind::Patient, 2);
        assert_eq!(rng.below(0), 0);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
    }
}
