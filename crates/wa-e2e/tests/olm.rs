//! Pairwise (Olm) encryption between machines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::*;
use wa_e2e::limits::{MAX_SESSIONS_PER_DEVICE, MAX_UNPUBLISHED_ONE_TIME_KEYS};
use wa_e2e::{DecryptError, EncryptError, Machine, OlmKind};

#[test]
fn pre_key_message_creates_the_session_then_both_directions() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let bob_jid = jid(BOB);

    assert!(!alice.has_session(&bob_jid));
    assert_eq!(
        alice.encrypt(&bob_jid, &bob.identity_keys(), None, b"x"),
        Err(EncryptError::NoSession {
            device: bob_jid.clone()
        })
    );

    let otk = bob.generate_one_time_keys(1)[0].key;
    bob.mark_keys_as_published();
    let first = alice
        .encrypt(&bob_jid, &bob.identity_keys(), Some(&otk), b"hello")
        .unwrap();
    assert_eq!(first.kind, OlmKind::PreKey);
    assert!(alice.has_session(&bob_jid));
    // Until Bob answers, Alice's messages stay pre-key messages (Bob may get any of them first).
    let second = alice
        .encrypt(&bob_jid, &bob.identity_keys(), None, b"again")
        .unwrap();
    assert_eq!(second.kind, OlmKind::PreKey);

    assert!(!bob.has_session(&jid(ALICE)));
    assert_eq!(&receive(&mut bob, &alice, &first)[..], b"hello");
    assert!(bob.has_session(&jid(ALICE)));
    assert_eq!(&receive(&mut bob, &alice, &second)[..], b"again");

    let reply = bob
        .encrypt(&jid(ALICE), &alice.identity_keys(), None, b"hi")
        .unwrap();
    assert_eq!(reply.kind, OlmKind::Normal);
    assert_eq!(&receive(&mut alice, &bob, &reply)[..], b"hi");

    // Now Alice's session is confirmed: normal messages.
    let third = alice
        .encrypt(&bob_jid, &bob.identity_keys(), None, b"third")
        .unwrap();
    assert_eq!(third.kind, OlmKind::Normal);
    assert_eq!(&receive(&mut bob, &alice, &third)[..], b"third");

    // The one-time key was used up.
    assert!(bob.unpublished_one_time_keys().is_empty());
}

#[test]
fn many_messages_out_of_order_and_interleaved() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    roundtrip(&mut alice, &mut bob, b"start");
    roundtrip(&mut bob, &mut alice, b"ack");

    for round in 0..5 {
        // 30 messages each way, delivered in a scrambled order (within Olm's 40 skipped keys).
        let a_msgs: Vec<_> = (0..30)
            .map(|i| {
                let text = format!("a{round}-{i}");
                (text.clone(), send(&mut alice, &mut bob, text.as_bytes()))
            })
            .collect();
        let b_msgs: Vec<_> = (0..30)
            .map(|i| {
                let text = format!("b{round}-{i}");
                (text.clone(), send(&mut bob, &mut alice, text.as_bytes()))
            })
            .collect();
        for i in (0..30).map(|i| (i * 7 + round) % 30) {
            let (text, ct) = &a_msgs[i];
            assert_eq!(&receive(&mut bob, &alice, ct)[..], text.as_bytes());
            let (text, ct) = &b_msgs[29 - i];
            assert_eq!(&receive(&mut alice, &bob, ct)[..], text.as_bytes());
        }
    }
}

#[test]
fn a_third_party_cannot_decrypt() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let mut eve = Machine::new(jid("447700900999:1@c.us"));
    // Eve has her own session with Alice, and Bob's identity is known to her.
    roundtrip(&mut alice, &mut eve, b"to eve");
    let pre = send(&mut alice, &mut bob, b"for bob only");
    let err = eve
        .decrypt(&jid(ALICE), &alice.identity_keys().curve25519, &pre)
        .unwrap_err();
    assert!(
        matches!(err, DecryptError::UnknownOneTimeKey { .. }),
        "{err}"
    );
    roundtrip(&mut bob, &mut alice, b"");
    assert_eq!(&receive(&mut bob, &alice, &pre)[..], b"for bob only");
    let normal = send(&mut alice, &mut bob, b"secret");
    assert_eq!(normal.kind, OlmKind::Normal);
    let err = eve
        .decrypt(&jid(ALICE), &alice.identity_keys().curve25519, &normal)
        .unwrap_err();
    assert!(matches!(err, DecryptError::Tampered { .. }), "{err}");
    // Eve claiming to be Bob towards Alice does not work either: Alice has no session with
    // Eve's keys under Bob's name, and her pre-key message names Alice's key, not Bob's.
    let forged = send(&mut eve, &mut alice, b"i am bob");
    let err = alice
        .decrypt(&jid(BOB), &bob.identity_keys().curve25519, &forged)
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecryptError::SenderKeyMismatch { .. } | DecryptError::Tampered { .. }
        ),
        "{err}"
    );
}

#[test]
fn six_devices_each_decrypt_their_copy() {
    let mut alice = Machine::new(jid(ALICE));
    let mut devices: Vec<Machine> = (0..6u8)
        .map(|d| {
            Machine::new(if d == 0 {
                jid("447700900123@c.us")
            } else {
                jid(&format!("447700900123:{d}@c.us"))
            })
        })
        .collect();
    for round in 0..3 {
        let text = format!("message {round} to every device");
        let cts: Vec<_> = devices
            .iter_mut()
            .map(|d| send(&mut alice, d, text.as_bytes()))
            .collect();
        // Each copy is different, and only its own device can read it.
        for (i, d) in devices.iter_mut().enumerate() {
            assert_eq!(&receive(d, &alice, &cts[i])[..], text.as_bytes());
            let other = &cts[(i + 1) % cts.len()];
            assert!(
                d.decrypt(&jid(ALICE), &alice.identity_keys().curve25519, other)
                    .is_err()
            );
        }
    }
}

#[test]
fn a_new_device_identity_drops_the_old_sessions() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    roundtrip(&mut alice, &mut bob, b"old bob");
    // Bob reinstalls: same JID, new keys.
    let mut bob2 = Machine::new(jid(BOB));
    assert!(alice.has_session(&jid(BOB)));
    assert_eq!(
        alice.encrypt(&jid(BOB), &bob2.identity_keys(), None, b"x"),
        Err(EncryptError::NoSession { device: jid(BOB) })
    );
    assert!(!alice.has_session(&jid(BOB)));
    roundtrip(&mut alice, &mut bob2, b"new bob");
    // The old Bob's messages are no longer accepted under the new identity.
    let stale = bob
        .encrypt(&jid(ALICE), &alice.identity_keys(), None, b"stale")
        .unwrap();
    assert!(
        alice
            .decrypt(&jid(BOB), &bob2.identity_keys().curve25519, &stale)
            .is_err()
    );
}

#[test]
fn a_new_inbound_session_replaces_the_current_one() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    roundtrip(&mut alice, &mut bob, b"one");
    roundtrip(&mut bob, &mut alice, b"two");
    // Bob lost his session and starts a new one: Alice keeps both, answers on the new one.
    let mut bob_again = Machine::restore(
        jid(BOB),
        bob.take_changes(&wa_e2e::PickleKey::new([9; 32]))
            .upserts
            .into_iter()
            .filter(|(k, _)| k.as_str() == "account"),
        &wa_e2e::PickleKey::new([9; 32]),
    )
    .unwrap();
    assert!(!bob_again.has_session(&jid(ALICE)));
    roundtrip(&mut bob_again, &mut alice, b"fresh");
    let ct = send(&mut alice, &mut bob_again, b"on the new session");
    assert_eq!(ct.kind, OlmKind::Normal);
    assert_eq!(
        &receive(&mut bob_again, &alice, &ct)[..],
        b"on the new session"
    );
}

#[test]
fn sessions_per_device_are_bounded() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let pickle = wa_e2e::PickleKey::new([3; 32]);
    let account: Vec<_> = bob
        .take_changes(&pickle)
        .upserts
        .into_iter()
        .filter(|(k, _)| k.as_str() == "account")
        .collect();
    // Bob restarts from the same account (with no sessions) many times and opens a new
    // session to Alice each time.
    for i in 0..(MAX_SESSIONS_PER_DEVICE + 3) {
        let mut fresh = Machine::restore(jid(BOB), account.clone(), &pickle).unwrap();
        let key = alice.generate_one_time_keys(1)[0].key;
        alice.mark_keys_as_published();
        let ct = fresh
            .encrypt(
                &jid(ALICE),
                &alice.identity_keys(),
                Some(&key),
                format!("{i}").as_bytes(),
            )
            .unwrap();
        assert_eq!(
            &alice
                .decrypt(&jid(BOB), &bob.identity_keys().curve25519, &ct)
                .unwrap()[..],
            format!("{i}").as_bytes()
        );
    }
    let debug = format!("{alice:?}");
    assert!(
        debug.contains(&format!("olm_sessions: {MAX_SESSIONS_PER_DEVICE}")),
        "{debug}"
    );
}

#[test]
fn pre_key_replay_is_refused() {
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let ct = send(&mut alice, &mut bob, b"once");
    assert_eq!(&receive(&mut bob, &alice, &ct)[..], b"once");
    let err = bob
        .decrypt(&jid(ALICE), &alice.identity_keys().curve25519, &ct)
        .unwrap_err();
    assert!(matches!(err, DecryptError::Replayed { .. }), "{err}");
    // A normal message too.
    roundtrip(&mut bob, &mut alice, b"ack");
    let ct = send(&mut alice, &mut bob, b"normal once");
    assert_eq!(ct.kind, OlmKind::Normal);
    assert_eq!(&receive(&mut bob, &alice, &ct)[..], b"normal once");
    let err = bob
        .decrypt(&jid(ALICE), &alice.identity_keys().curve25519, &ct)
        .unwrap_err();
    assert!(matches!(err, DecryptError::Replayed { .. }), "{err}");
}

#[test]
fn one_time_keys_are_capped_published_and_used_up() {
    let mut bob = Machine::new(jid(BOB));
    let first = bob.generate_one_time_keys(10);
    assert_eq!(first.len(), 10);
    let more = bob.generate_one_time_keys(1000);
    assert_eq!(more.len(), MAX_UNPUBLISHED_ONE_TIME_KEYS - 10);
    assert!(bob.generate_one_time_keys(1).is_empty());
    let all = bob.unpublished_one_time_keys();
    assert_eq!(all.len(), MAX_UNPUBLISHED_ONE_TIME_KEYS);
    assert_eq!(all[..10], first[..]);
    let mut ids: Vec<_> = all.iter().map(|k| k.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
    bob.mark_keys_as_published();
    assert!(bob.unpublished_one_time_keys().is_empty());
    assert_eq!(bob.generate_one_time_keys(5).len(), 5);
    // Debug shows the id, never needs the key.
    assert!(format!("{:?}", all[0]).contains(&all[0].id));

    // The fallback key: stable until published, then rotated; it establishes sessions.
    let fallback = bob.fallback_key();
    assert_eq!(bob.fallback_key(), fallback);
    bob.mark_keys_as_published();
    let next = bob.fallback_key();
    assert_ne!(next.key, fallback.key);
    let mut alice = Machine::new(jid(ALICE));
    let ct = alice
        .encrypt(
            &jid(BOB),
            &bob.identity_keys(),
            Some(&fallback.key),
            b"via fallback",
        )
        .unwrap();
    assert_eq!(&receive(&mut bob, &alice, &ct)[..], b"via fallback");
}

#[test]
fn own_device_and_bad_keys_are_refused() {
    let mut alice = Machine::new(jid(ALICE));
    let keys = alice.identity_keys();
    assert_eq!(
        alice.encrypt(&jid(ALICE), &keys, Some(&[9; 32]), b"x"),
        Err(EncryptError::OwnDevice { device: jid(ALICE) })
    );
    // Device 0 is the phone: the same device as no device.
    assert!(matches!(
        alice.encrypt(&jid("15551234567:0@c.us"), &keys, Some(&[9; 32]), b"x"),
        Err(EncryptError::OwnDevice { .. })
    ));
    // A low-order one-time key (all zero) would make the key agreement non-contributory.
    let bob = Machine::new(jid(BOB));
    let err = alice
        .encrypt(&jid(BOB), &bob.identity_keys(), Some(&[0; 32]), b"x")
        .unwrap_err();
    assert!(matches!(err, EncryptError::BadKey { .. }), "{err}");
    assert!(!alice.has_session(&jid(BOB)));
}

#[test]
fn jid_helpers() {
    let dev = jid("15551234567.1:3@c.us");
    assert_eq!(wa_e2e::device_of(&dev), 3);
    assert_eq!(wa_e2e::user_of(&dev), jid("15551234567@s.whatsapp.net"));
    assert_eq!(wa_e2e::device_of(&jid(ALICE)), 0);
    assert_eq!(wa_e2e::user_of(&jid(GROUP)), jid(GROUP));
    let m = Machine::new(jid("15551234567:0@c.us"));
    assert_eq!(m.own_device(), &jid(ALICE));
    let debug = format!("{m:?}");
    assert!(debug.contains("15551234567@c.us") && debug.contains("olm_sessions: 0"));
}

#[test]
fn a_re_encoded_pre_key_message_to_the_fallback_key_is_not_a_second_session() {
    // The fallback key is not used up by a session, and the keys of a pre-key message are
    // outside its MAC. X25519 ignores a key's top bit, so flipping it would give the same
    // session under another session id: a replay. Non-canonical keys are refused.
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let fallback = bob.fallback_key();
    bob.mark_keys_as_published();
    let ct = alice
        .encrypt(
            &jid(BOB),
            &bob.identity_keys(),
            Some(&fallback.key),
            b"pay 10",
        )
        .unwrap();
    assert_eq!(ct.kind, OlmKind::PreKey);
    // version, then field 1 (one-time key) and field 2 (base key), 32 bytes each.
    assert_eq!(&ct.body[..3], &[0x03, 0x0a, 0x20]);
    assert_eq!(&ct.body[35..37], &[0x12, 0x20]);
    assert_eq!(&receive(&mut bob, &alice, &ct)[..], b"pay 10");
    let curve = alice.identity_keys().curve25519;
    for pos in [34, 68] {
        let mut variant = ct.clone();
        variant.body[pos] ^= 0x80;
        let err = bob.decrypt(&jid(ALICE), &curve, &variant).unwrap_err();
        assert!(
            matches!(err, DecryptError::Malformed { .. }),
            "{pos}: {err}"
        );
    }
    let err = bob.decrypt(&jid(ALICE), &curve, &ct).unwrap_err();
    assert!(matches!(err, DecryptError::Replayed { .. }), "{err}");
}
