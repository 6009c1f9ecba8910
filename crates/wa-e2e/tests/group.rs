//! Group (Megolm) encryption: sharing, rotation on membership change, replay.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::*;
use wa_e2e::{DecryptError, GroupCiphertext, GroupKey, GroupKeyError, Machine};

#[test]
fn shared_with_three_then_rotated_and_shared_with_two() {
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid("447700900123:3@c.us"));
    let mut carol = Machine::new(jid("491701234567@c.us"));
    let mut dave = Machine::new(jid("33612345678:2@c.us"));

    assert!(alice.group_key(&group).is_none());
    assert!(alice.shared_with(&group).is_empty());
    let first = alice.group_encrypt(&group, b"hello group");
    share_group_key(&mut alice, &group, &mut [&mut bob, &mut carol, &mut dave]);
    let shared = alice.shared_with(&group);
    assert_eq!(shared.len(), 3);
    assert!(shared.contains(dave.own_device()));

    // The key was exported after the first message: it decrypts from the second on.
    let old: Vec<GroupCiphertext> = (0..5)
        .map(|i| alice.group_encrypt(&group, format!("old {i}").as_bytes()))
        .collect();
    for m in [&mut bob, &mut carol, &mut dave] {
        for (i, ct) in old.iter().enumerate().rev() {
            let plain = m.group_decrypt(&group, &jid(ALICE), ct).unwrap();
            assert_eq!(&plain[..], format!("old {i}").as_bytes());
        }
        let err = m.group_decrypt(&group, &jid(ALICE), &first).unwrap_err();
        assert!(
            matches!(err, DecryptError::TooOld { index: 0, .. }),
            "{err}"
        );
    }

    // Dave leaves: rotate, share the new session with the remaining two only.
    alice.rotate_group(&group);
    assert!(alice.group_key(&group).is_none());
    assert!(alice.shared_with(&group).is_empty());
    let new = alice.group_encrypt(&group, b"after dave left");
    share_group_key(&mut alice, &group, &mut [&mut bob, &mut carol]);
    assert_eq!(alice.shared_with(&group).len(), 2);
    // The new key is exported at index 1, so encrypt another message for everybody to read.
    let new2 = alice.group_encrypt(&group, b"second after");
    for m in [&mut bob, &mut carol] {
        assert_eq!(
            &m.group_decrypt(&group, &jid(ALICE), &new2).unwrap()[..],
            b"second after"
        );
    }
    let err = dave.group_decrypt(&group, &jid(ALICE), &new2).unwrap_err();
    assert!(
        matches!(err, DecryptError::UnknownGroupSession { .. }),
        "{err}"
    );
    let err = dave.group_decrypt(&group, &jid(ALICE), &new).unwrap_err();
    assert!(
        matches!(err, DecryptError::UnknownGroupSession { .. }),
        "{err}"
    );
    // What Dave already read stays a replay (not an unknown session): his old session is kept.
    assert!(matches!(
        dave.group_decrypt(&group, &jid(ALICE), &old[2]),
        Err(DecryptError::Replayed { .. })
    ));

    // Alice's own messages decrypt on her own machine (her own inbound copy), old and new.
    assert_eq!(
        &alice.group_decrypt(&group, &jid(ALICE), &first).unwrap()[..],
        b"hello group"
    );
    assert_eq!(
        &alice.group_decrypt(&group, &jid(ALICE), &new).unwrap()[..],
        b"after dave left"
    );
    // A message from Alice is not accepted as Bob's.
    let err = carol
        .group_decrypt(&group, bob.own_device(), &new2)
        .unwrap_err();
    assert!(
        matches!(err, DecryptError::UnknownGroupSession { .. }),
        "{err}"
    );
}

#[test]
fn removed_member_reads_old_messages_delivered_late() {
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let mut dave = Machine::new(jid("33612345678@c.us"));
    alice.group_encrypt(&group, b"warm-up");
    share_group_key(&mut alice, &group, &mut [&mut bob, &mut dave]);
    let before: Vec<_> = (0..3)
        .map(|i| alice.group_encrypt(&group, format!("before {i}").as_bytes()))
        .collect();
    alice.rotate_group(&group);
    alice.group_encrypt(&group, b"warm-up 2");
    share_group_key(&mut alice, &group, &mut [&mut bob]);
    let after = alice.group_encrypt(&group, b"after");
    // Nothing was delivered to Dave until now: the old ones decrypt, the new one does not.
    for (i, ct) in before.iter().enumerate() {
        assert_eq!(
            &dave.group_decrypt(&group, &jid(ALICE), ct).unwrap()[..],
            format!("before {i}").as_bytes()
        );
        assert_eq!(
            &bob.group_decrypt(&group, &jid(ALICE), ct).unwrap()[..],
            format!("before {i}").as_bytes()
        );
    }
    assert!(matches!(
        dave.group_decrypt(&group, &jid(ALICE), &after),
        Err(DecryptError::UnknownGroupSession { .. })
    ));
    assert_eq!(
        &bob.group_decrypt(&group, &jid(ALICE), &after).unwrap()[..],
        b"after"
    );
}

#[test]
fn group_replay_is_refused() {
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    alice.group_encrypt(&group, b"");
    share_group_key(&mut alice, &group, &mut [&mut bob]);
    let ct = alice.group_encrypt(&group, b"once");
    assert_eq!(
        &bob.group_decrypt(&group, &jid(ALICE), &ct).unwrap()[..],
        b"once"
    );
    for _ in 0..3 {
        let err = bob.group_decrypt(&group, &jid(ALICE), &ct).unwrap_err();
        assert!(
            matches!(err, DecryptError::Replayed { index: 1, .. }),
            "{err}"
        );
    }
    // Later messages still decrypt, in any order.
    let later: Vec<_> = (0..10).map(|i| alice.group_encrypt(&group, &[i])).collect();
    for i in [9usize, 0, 5, 1, 8, 2, 7, 3, 6, 4] {
        assert_eq!(
            &bob.group_decrypt(&group, &jid(ALICE), &later[i]).unwrap()[..],
            &[i as u8]
        );
        assert!(matches!(
            bob.group_decrypt(&group, &jid(ALICE), &later[i]),
            Err(DecryptError::Replayed { .. })
        ));
    }
}

#[test]
fn messages_far_below_the_replay_window_are_too_old() {
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    alice.group_encrypt(&group, b"");
    share_group_key(&mut alice, &group, &mut [&mut bob]);
    let early = alice.group_encrypt(&group, b"early");
    let window = wa_e2e::limits::REPLAY_WINDOW;
    let mut last = None;
    for _ in 0..window + 10 {
        last = Some(alice.group_encrypt(&group, b"filler"));
    }
    bob.group_decrypt(&group, &jid(ALICE), &last.unwrap())
        .unwrap();
    let err = bob.group_decrypt(&group, &jid(ALICE), &early).unwrap_err();
    assert!(
        matches!(err, DecryptError::TooOld { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn group_key_errors() {
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    alice.group_encrypt(&group, b"x");
    let key = alice.group_key(&group).unwrap();
    let debug = format!("{key:?}");
    assert!(
        debug.contains(&key.session_id) && !debug.contains("key:"),
        "{debug}"
    );
    assert_eq!(key.key.len(), 229);

    let mut bad = key.clone();
    bad.key.truncate(100);
    assert!(matches!(
        bob.add_group_key(&jid(ALICE), &bad),
        Err(GroupKeyError::Malformed { .. })
    ));
    let mut bad = key.clone();
    bad.key[50] ^= 1; // breaks the signature over the key
    assert!(matches!(
        bob.add_group_key(&jid(ALICE), &bad),
        Err(GroupKeyError::Malformed { .. })
    ));
    let mut bad = key.clone();
    bad.session_id = "AAAA".into();
    assert!(matches!(
        bob.add_group_key(&jid(ALICE), &bad),
        Err(GroupKeyError::SessionIdMismatch { .. })
    ));
    bob.add_group_key(&jid(ALICE), &key).unwrap();
    // Adding it again, or a later export of the same session, changes nothing.
    bob.add_group_key(&jid(ALICE), &key).unwrap();
    alice.group_encrypt(&group, b"y");
    let later = alice.group_key(&group).unwrap();
    bob.add_group_key(&jid(ALICE), &later).unwrap();
    let ct = GroupCiphertext(vec![0; 10]);
    assert!(matches!(
        bob.group_decrypt(&group, &jid(ALICE), &ct),
        Err(DecryptError::Malformed { .. })
    ));
}

#[test]
fn an_earlier_export_of_the_same_session_reaches_further_back() {
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    alice.group_encrypt(&group, b"zero");
    let at1: GroupKey = alice.group_key(&group).unwrap();
    let m1 = alice.group_encrypt(&group, b"one");
    let at2 = alice.group_key(&group).unwrap();
    bob.add_group_key(&jid(ALICE), &at2).unwrap();
    assert!(matches!(
        bob.group_decrypt(&group, &jid(ALICE), &m1),
        Err(DecryptError::TooOld {
            first: 2,
            index: 1,
            ..
        })
    ));
    bob.add_group_key(&jid(ALICE), &at1).unwrap();
    assert_eq!(
        &bob.group_decrypt(&group, &jid(ALICE), &m1).unwrap()[..],
        b"one"
    );
}

#[test]
fn inbound_sessions_per_sender_are_bounded() {
    use wa_e2e::limits::MAX_INBOUND_PER_SENDER;
    let group = jid(GROUP);
    let key = wa_e2e::PickleKey::new([5; 32]);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let mut firsts = Vec::new();
    for i in 0..MAX_INBOUND_PER_SENDER + 2 {
        alice.rotate_group(&group);
        alice.group_encrypt(&group, b"");
        share_group_key(&mut alice, &group, &mut [&mut bob]);
        firsts.push(alice.group_encrypt(&group, format!("session {i}").as_bytes()));
    }
    bob.take_changes(&key);
    // The two oldest sessions were evicted; the rest still decrypt.
    for (i, ct) in firsts.iter().enumerate() {
        let result = bob.group_decrypt(&group, &jid(ALICE), ct);
        if i < 2 {
            assert!(
                matches!(result, Err(DecryptError::UnknownGroupSession { .. })),
                "{i}"
            );
        } else {
            assert_eq!(&result.unwrap()[..], format!("session {i}").as_bytes());
        }
    }
    assert!(
        format!("{bob:?}").contains(&format!("inbound_group_sessions: {MAX_INBOUND_PER_SENDER}"))
    );
}
