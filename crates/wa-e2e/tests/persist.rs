//! Persistence: incremental changes, restore mid-conversation, wrong keys and corrupted bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::collections::BTreeMap;

use common::*;
use wa_e2e::{Changes, Machine, PickleError, PickleKey, StateKey};

/// The caller's store: applies changes, hands back everything for a restore.
#[derive(Default, Clone)]
struct Store(BTreeMap<StateKey, Vec<u8>>);

impl Store {
    fn apply(&mut self, changes: Changes) {
        for key in changes.deletions {
            self.0.remove(&key);
        }
        for (key, bytes) in changes.upserts {
            self.0.insert(key, bytes);
        }
    }

    fn parts(&self) -> Vec<(StateKey, Vec<u8>)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn save(m: &mut Machine, store: &mut Store, key: &PickleKey) {
    store.apply(m.take_changes(key));
}

#[test]
fn restore_mid_conversation_and_continue_both_ways() {
    let key = PickleKey::new([7; 32]);
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let (mut a_store, mut b_store) = (Store::default(), Store::default());

    roundtrip(&mut alice, &mut bob, b"one");
    roundtrip(&mut bob, &mut alice, b"two");
    alice.group_encrypt(&group, b"g0");
    share_group_key(&mut alice, &group, &mut [&mut bob]);
    assert_eq!(
        alice.observe_identity(&jid(BOB), &[5; 32]),
        wa_e2e::IdentityChange::New
    );
    save(&mut alice, &mut a_store, &key);
    save(&mut bob, &mut b_store, &key);

    // In flight while both restart: one pairwise message each way, one group message.
    let a_in_flight = send(&mut alice, &mut bob, b"in flight a");
    let b_in_flight = send(&mut bob, &mut alice, b"in flight b");
    let g_in_flight = alice.group_encrypt(&group, b"group in flight");
    save(&mut alice, &mut a_store, &key);
    save(&mut bob, &mut b_store, &key);

    for _ in 0..3 {
        let alice2 = Machine::restore(jid(ALICE), a_store.parts(), &key).unwrap();
        let bob2 = Machine::restore(jid(BOB), b_store.parts(), &key).unwrap();
        assert_eq!(alice2.identity_keys(), alice.identity_keys());
        assert_eq!(bob2.identity_keys(), bob.identity_keys());
        assert_eq!(alice2.known_identity(&jid(BOB)), Some([5; 32]));
        assert_eq!(alice2.shared_with(&group), alice.shared_with(&group));
        assert!(alice2.has_session(&jid(BOB)) && bob2.has_session(&jid(ALICE)));
        alice = alice2;
        bob = bob2;
    }
    assert_eq!(&receive(&mut bob, &alice, &a_in_flight)[..], b"in flight a");
    assert_eq!(&receive(&mut alice, &bob, &b_in_flight)[..], b"in flight b");
    assert_eq!(
        &bob.group_decrypt(&group, &jid(ALICE), &g_in_flight)
            .unwrap()[..],
        b"group in flight"
    );
    // Save after decrypting: the replay state and used keys persist too.
    save(&mut alice, &mut a_store, &key);
    save(&mut bob, &mut b_store, &key);
    let mut bob = Machine::restore(jid(BOB), b_store.parts(), &key).unwrap();
    assert!(
        bob.decrypt(&jid(ALICE), &alice.identity_keys().curve25519, &a_in_flight)
            .is_err()
    );
    assert!(matches!(
        bob.group_decrypt(&group, &jid(ALICE), &g_in_flight),
        Err(wa_e2e::DecryptError::Replayed { .. })
    ));
    for i in 0..10 {
        roundtrip(&mut alice, &mut bob, format!("a{i}").as_bytes());
        roundtrip(&mut bob, &mut alice, format!("b{i}").as_bytes());
        let g = alice.group_encrypt(&group, format!("g{i}").as_bytes());
        assert_eq!(
            &bob.group_decrypt(&group, &jid(ALICE), &g).unwrap()[..],
            format!("g{i}").as_bytes()
        );
        if i % 3 == 0 {
            save(&mut alice, &mut a_store, &key);
            save(&mut bob, &mut b_store, &key);
            alice = Machine::restore(jid(ALICE), a_store.parts(), &key).unwrap();
            bob = Machine::restore(jid(BOB), b_store.parts(), &key).unwrap();
        }
    }
}

#[test]
fn changes_are_incremental() {
    let key = PickleKey::new([1; 32]);
    let group = jid(GROUP);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    let first = alice.take_changes(&key);
    assert_eq!(
        first
            .upserts
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["account"]
    );
    assert!(alice.take_changes(&key).is_empty());

    roundtrip(&mut alice, &mut bob, b"x");
    let changes = alice.take_changes(&key);
    let names: Vec<_> = changes
        .upserts
        .iter()
        .map(|(k, _)| k.as_str().to_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("session/447700900123:3@c.us/"),
        "{names:?}"
    );
    assert!(changes.deletions.is_empty());
    assert!(alice.take_changes(&key).is_empty());
    // Bob: the account (one-time key used up) and the new session.
    let bob_changes = bob.take_changes(&key);
    assert_eq!(bob_changes.upserts.len(), 2);

    alice.group_encrypt(&group, b"g");
    let names: Vec<String> = alice
        .take_changes(&key)
        .upserts
        .iter()
        .map(|(k, _)| k.as_str().to_owned())
        .collect();
    assert!(names.contains(&format!("out/{GROUP}")), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("in/{GROUP}/{ALICE}/"))),
        "{names:?}"
    );
    alice.rotate_group(&group);
    let changes = alice.take_changes(&key);
    assert!(changes.upserts.is_empty());
    assert_eq!(changes.deletions, [StateKey::from(format!("out/{GROUP}"))]);
    assert!(alice.take_changes(&key).is_empty());

    // Sealing is deterministic: the same state seals to the same bytes.
    let mut again = Machine::restore(jid(ALICE), first.upserts.clone(), &key).unwrap();
    again.mark_keys_as_published();
    let a = again.take_changes(&key);
    again.mark_keys_as_published();
    let b = again.take_changes(&key);
    assert_eq!(a, b);
    assert!(format!("{a:?}").contains("account ("));
}

#[test]
fn wrong_key_corruption_and_swaps_are_errors() {
    let key = PickleKey::new([2; 32]);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    roundtrip(&mut alice, &mut bob, b"x");
    let mut store = Store::default();
    save(&mut alice, &mut store, &key);
    let parts = store.parts();
    assert_eq!(parts.len(), 2);

    let wrong = PickleKey::new([3; 32]);
    assert!(matches!(
        Machine::restore(jid(ALICE), parts.clone(), &wrong),
        Err(PickleError::Authentication { .. })
    ));
    // Every byte of every part, flipped; every prefix.
    for (i, (name, bytes)) in parts.iter().enumerate() {
        for pos in 0..bytes.len() {
            let mut corrupted = parts.clone();
            corrupted[i].1[pos] ^= 0x20;
            let err = Machine::restore(jid(ALICE), corrupted, &key).unwrap_err();
            assert!(
                matches!(
                    err,
                    PickleError::Authentication { .. } | PickleError::Version { .. }
                ),
                "{name} byte {pos}: {err}"
            );
        }
        for len in 0..bytes.len() {
            let mut truncated = parts.clone();
            truncated[i].1.truncate(len);
            assert!(Machine::restore(jid(ALICE), truncated, &key).is_err());
        }
    }
    // A record under another key (a swapped pickle).
    let mut swapped = parts.clone();
    let bytes0 = swapped[0].1.clone();
    swapped[0].1 = swapped[1].1.clone();
    swapped[1].1 = bytes0;
    assert!(matches!(
        Machine::restore(jid(ALICE), swapped, &key),
        Err(PickleError::Authentication { .. })
    ));
    // Missing account, duplicate, another device's account.
    let no_account: Vec<_> = parts
        .iter()
        .filter(|(k, _)| k.as_str() != "account")
        .cloned()
        .collect();
    assert_eq!(
        Machine::restore(jid(ALICE), no_account, &key).unwrap_err(),
        PickleError::MissingAccount
    );
    let mut dup = parts.clone();
    dup.push(parts[0].clone());
    assert!(matches!(
        Machine::restore(jid(ALICE), dup, &key),
        Err(PickleError::Duplicate { .. })
    ));
    assert!(matches!(
        Machine::restore(jid(BOB), parts.clone(), &key),
        Err(PickleError::WrongDevice { .. })
    ));
    assert!(matches!(
        Machine::restore(jid(ALICE), vec![(StateKey::from("account"), vec![])], &key),
        Err(PickleError::Version { version: None, .. })
    ));
    // The pickle key never shows in Debug.
    assert_eq!(format!("{key:?}"), "PickleKey { .. }");
    // And the good parts still restore.
    Machine::restore(jid(ALICE), parts, &key).unwrap();
}

#[test]
fn restored_sessions_keep_the_device_identity() {
    let key = PickleKey::new([4; 32]);
    let mut alice = Machine::new(jid(ALICE));
    let mut bob = Machine::new(jid(BOB));
    // Bob starts the session: Alice learns Bob's Ed25519 key only when she encrypts to him.
    roundtrip(&mut bob, &mut alice, b"hi");
    roundtrip(&mut alice, &mut bob, b"hi back");
    let mut store = Store::default();
    save(&mut alice, &mut store, &key);
    let mut alice = Machine::restore(jid(ALICE), store.parts(), &key).unwrap();
    // Same keys: the session is kept. Another Ed25519 key: a new identity, dropped.
    roundtrip(&mut alice, &mut bob, b"still");
    let mut other = bob.identity_keys();
    other.ed25519 = [9; 32];
    assert!(alice.encrypt(&jid(BOB), &other, None, b"x").is_err());
    assert!(!alice.has_session(&jid(BOB)));
}
