//! Property tests: sealing then opening gives the plaintext back for every length up to 4 KiB,
//! any single bit flip anywhere in a sealed frame is rejected, and the key schedule agrees
//! with its server side for random key pairs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use wa_crypto::{ClientKeyPair, LoginSecret, OpenError, SessionKeys};

fn keys() -> impl Strategy<Value = SessionKeys> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(enc, mac)| SessionKeys::new(&enc, &mac))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn open_inverts_seal(
        keys in keys(),
        iv in any::<[u8; 16]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..=4096),
    ) {
        let sealed = keys.seal(&plain, &iv);
        prop_assert_eq!(sealed.len(), wa_crypto::sealed_len(plain.len()));
        prop_assert_eq!(keys.open(&sealed)?, plain);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        keys in keys(),
        iv in any::<[u8; 16]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..=4096),
        bit in any::<proptest::sample::Index>(),
    ) {
        let mut sealed = keys.seal(&plain, &iv);
        let bit = bit.index(sealed.len() * 8);
        sealed[bit / 8] ^= 1 << (bit % 8);
        let mut out = Vec::new();
        prop_assert_eq!(keys.open_into(&sealed, &mut out), Err(OpenError::MacMismatch));
        prop_assert!(out.is_empty());
    }

    #[test]
    fn open_with_other_keys_is_rejected(
        keys in keys(),
        other in keys(),
        plain in proptest::collection::vec(any::<u8>(), 0..=256),
    ) {
        prop_assume!(keys.mac_key() != other.mac_key());
        let sealed = keys.seal(&plain, &[0; 16]);
        prop_assert_eq!(other.open(&sealed), Err(OpenError::MacMismatch));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn schedule_agrees_with_its_server_side(seed in any::<u64>(), keys in keys()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let client = ClientKeyPair::generate(&mut rng);
        // Any 32 bytes are an X25519 private key.
        let mut server_key = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut server_key);
        let secret = LoginSecret::server_side(&server_key, client.public_key(), &keys)?;
        let derived = SessionKeys::from_login(client, &secret.to_base64())?;
        prop_assert_eq!(derived, keys);
    }
}

/// Every length from 0 to 4096, not just the ones proptest happens to pick.
#[test]
fn open_inverts_seal_for_every_length_up_to_4096() {
    let keys = SessionKeys::new(&[0x5a; 32], &[0xa5; 32]);
    let data: Vec<u8> = (0..=4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut sealed = Vec::new();
    let mut opened = Vec::new();
    for len in 0..=4096 {
        let iv = [(len % 251) as u8; 16];
        sealed.clear();
        keys.seal_into(&data[..len], &iv, &mut sealed);
        opened.clear();
        keys.open_into(&sealed, &mut opened).unwrap();
        assert_eq!(opened, &data[..len], "length {len}");
    }
}

/// Every single bit of small sealed frames (one to three blocks of ciphertext) flipped in turn.
#[test]
fn every_single_bit_flip_of_small_frames_is_rejected() {
    let keys = SessionKeys::new(&[0x5a; 32], &[0xa5; 32]);
    for len in [0, 1, 15, 16, 17, 40] {
        let plain = vec![0x61; len];
        let sealed = keys.seal(&plain, &[3; 16]);
        for bit in 0..sealed.len() * 8 {
            let mut flipped = sealed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                keys.open(&flipped),
                Err(OpenError::MacMismatch),
                "len {len}, bit {bit}"
            );
        }
    }
}
