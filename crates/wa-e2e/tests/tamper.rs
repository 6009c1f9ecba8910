//! Tampered, truncated and replayed ciphertexts: always an error, never a panic, never a wrong
//! plaintext.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::*;
use wa_e2e::{GroupCiphertext, Machine, OlmCiphertext, OlmKind};

/// Alice and Bob with a confirmed session.
fn pair() -> (Machine, Machine) {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    roundtrip(&mut alice, &mut bob, b"hi");
    roundtrip(&mut bob, &mut alice, b"hi back");
    (alice, bob)
}

/// Every single-byte change (three ways) and every strict prefix of `body`.
fn mutations(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..body.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = body.to_vec();
            b[i] ^= flip;
            out.push(b);
        }
    }
    for len in 0..body.len() {
        out.push(body[..len].to_vec());
    }
    out
}

#[test]
fn tampered_and_truncated_olm_messages() {
    let (mut alice, mut bob) = pair();
    let alice_curve = alice.identity_keys().curve25519;
    let ct = send(&mut alice, &mut bob, b"short");
    assert_eq!(ct.kind, OlmKind::Normal);
    for body in mutations(&ct.body) {
        for kind in [OlmKind::Normal, OlmKind::PreKey] {
            let forged = OlmCiphertext {
                kind,
                body: body.clone(),
            };
            if let Ok(plain) = bob.decrypt(&jid(ALICE), &alice_curve, &forged) {
                panic!("forged message decrypted to {:?}", &plain[..]);
            }
        }
    }
    // The real one still decrypts afterwards: rejected forgeries changed nothing.
    assert_eq!(&receive(&mut bob, &alice, &ct)[..], b"short");
}

#[test]
fn tampered_and_truncated_pre_key_messages() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let alice_curve = alice.identity_keys().curve25519;
    let ct = send(&mut alice, &mut bob, b"short");
    assert_eq!(ct.kind, OlmKind::PreKey);
    for body in mutations(&ct.body) {
        let forged = OlmCiphertext {
            kind: OlmKind::PreKey,
            body,
        };
        if let Ok(plain) = bob.decrypt(&jid(ALICE), &alice_curve, &forged) {
            panic!("forged pre-key message decrypted to {:?}", &plain[..]);
        }
    }
    // No forgery used up the one-time key or left a session behind.
    assert!(!bob.has_session(&jid(ALICE)));
    assert_eq!(&receive(&mut bob, &alice, &ct)[..], b"short");
}

#[test]
fn tampered_and_truncated_group_messages() {
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    alice.group_encrypt(&group, b"");
    share_group_key(&mut alice, &group, &mut [&mut bob]);
    let ct = alice.group_encrypt(&group, b"short");
    for body in mutations(&ct.0) {
        if let Ok(plain) = bob.group_decrypt(&group, &jid(ALICE), &GroupCiphertext(body)) {
            panic!("forged group message decrypted to {:?}", &plain[..]);
        }
    }
    assert_eq!(
        &bob.group_decrypt(&group, &jid(ALICE), &ct).unwrap()[..],
        b"short"
    );
    assert!(bob.group_decrypt(&group, &jid(ALICE), &ct).is_err());
}

#[test]
fn garbage_of_every_small_length() {
    let (alice, mut bob) = pair();
    let curve = alice.identity_keys().curve25519;
    for len in 0..300usize {
        let body: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        for kind in [OlmKind::Normal, OlmKind::PreKey] {
            let ct = OlmCiphertext {
                kind,
                body: body.clone(),
            };
            assert!(bob.decrypt(&jid(ALICE), &curve, &ct).is_err());
        }
        assert!(
            bob.group_decrypt(&jid(GROUP), &jid(ALICE), &GroupCiphertext(body))
                .is_err()
        );
    }
}
