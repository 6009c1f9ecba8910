//! Property tests: any plaintext round-trips through Olm and Megolm.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::*;
use proptest::prelude::*;
use wa_e2e::Machine;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        cases: 64,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn olm_roundtrip(messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2048), 1..6)) {
        let mut alice = Machine::new(jid(ALICE));
        let mut bob = Machine::new(jid(BOB));
        for (i, m) in messages.iter().enumerate() {
            // Alternate directions so that both pre-key and normal messages are covered.
            if i % 2 == 0 {
                let ct = send(&mut alice, &mut bob, m);
                prop_assert_eq!(&receive(&mut bob, &alice, &ct)[..], &m[..]);
            } else {
                let ct = send(&mut bob, &mut alice, m);
                prop_assert_eq!(&receive(&mut alice, &bob, &ct)[..], &m[..]);
            }
        }
    }

    #[test]
    fn megolm_roundtrip(messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2048), 1..6)) {
        let group = jid(GROUP);
        let mut alice = Machine::new(jid(ALICE));
        let mut bob = Machine::new(jid(BOB));
        alice.group_encrypt(&group, b"");
        share_group_key(&mut alice, &group, &mut [&mut bob]);
        let cts: Vec<_> = messages.iter().map(|m| alice.group_encrypt(&group, m)).collect();
        // Delivered newest first.
        for (m, ct) in messages.iter().zip(&cts).rev() {
            prop_assert_eq!(&bob.group_decrypt(&group, &jid(ALICE), ct).unwrap()[..], &m[..]);
        }
    }
}
