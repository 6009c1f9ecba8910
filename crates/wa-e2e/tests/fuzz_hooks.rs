//! The fuzzing hooks over seeded pseudo-random inputs and over mutated real ciphertexts: no
//! panic, and a real ciphertext decrypts exactly once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use wa_e2e::fuzzing::{decrypt_group, decrypt_olm, seed_group, seed_olm};

/// SplitMix64: a tiny seeded generator, so the inputs are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A random mutation of `input`: flips, inserts, deletes, truncations, splices of random bytes.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                out.remove(i);
            }
            3 => {
                let len = rng.below(out.len() + 1);
                out.truncate(len);
            }
            _ => {
                let i = rng.below(out.len() + 1);
                let n = rng.below(16);
                let junk = rng.bytes(n);
                out.splice(i..i, junk);
            }
        }
    }
    out
}

fn same_olm_input(a: &[u8], b: &[u8]) -> bool {
    match (a.split_first(), b.split_first()) {
        (Some((ka, ra)), Some((kb, rb))) => ka & 1 == kb & 1 && ra == rb,
        _ => a == b,
    }
}

#[test]
fn random_inputs_never_decrypt() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..400 {
        let len = rng.below(300);
        let data = rng.bytes(len);
        assert!(!decrypt_olm(&data));
        assert!(!decrypt_group(&data));
    }
}

#[test]
fn mutated_real_ciphertexts_never_decrypt() {
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..20 {
        let olm = seed_olm();
        let group = seed_group();
        assert!(olm.len() > 1 && group.len() > 1);
        for _ in 0..25 {
            let m = mutate(&mut rng, &olm);
            // Only the low bit of the first byte (the kind) matters to the hook.
            if !same_olm_input(&m, &olm) {
                assert!(!decrypt_olm(&m), "mutated Olm input decrypted");
            }
            let m = mutate(&mut rng, &group);
            if m != group {
                assert!(!decrypt_group(&m), "mutated group input decrypted");
            }
        }
        // The real ones decrypt once, then are replays.
        assert!(decrypt_olm(&olm));
        assert!(!decrypt_olm(&olm));
        assert!(decrypt_group(&group));
        assert!(!decrypt_group(&group));
    }
}
