//! Entry points for fuzz targets (not part of the API).
//!
//! A fixed pair of machines, built once per process: Alice (a phone) and Bob (web device 3)
//! with an Olm session in both directions and Alice's group key added on Bob's side. The hooks
//! feed arbitrary bytes to Bob as ciphertexts from Alice. Decrypting must never panic, and must
//! never succeed with anything but a plaintext Alice really encrypted (all of which start with
//! [`SEED_PREFIX`]).
//!
//! Under `cargo fuzz` (`--cfg fuzzing`) vodozemac skips its MAC and signature checks by design,
//! to let the fuzzer past them: there a forged message decrypts to garbage, and the hooks check
//! only that nothing panics. The authenticity half of the property is checked where those
//! checks are on: the corpus replays of `cargo test` and the tamper tests.

use std::sync::{Mutex, OnceLock};

use wa_binary::Jid;

use crate::machine::Machine;
use crate::types::{GroupCiphertext, OlmCiphertext, OlmKind};

/// Every plaintext the fixture encrypts starts with this.
pub const SEED_PREFIX: &[u8] = b"wa-e2e fuzz seed ";

struct Fixture {
    alice: Machine,
    bob: Machine,
    alice_jid: Jid,
    bob_jid: Jid,
    group: Jid,
    seeds: u64,
}

fn jid(text: &str) -> Jid {
    match text.parse() {
        Ok(jid) => jid,
        Err(e) => unreachable!("fixture JID {text}: {e}"),
    }
}

fn fixture() -> &'static Mutex<Fixture> {
    static FIXTURE: OnceLock<Mutex<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let alice_jid = jid("15551234567@c.us");
        let bob_jid = jid("447700900123:3@c.us");
        let group = jid("15551234567-1600000000@g.us");
        let mut alice = Machine::new(alice_jid.clone());
        let mut bob = Machine::new(bob_jid.clone());
        let otk = bob.generate_one_time_keys(1).first().map(|k| k.key);
        bob.mark_keys_as_published();
        let bob_keys = bob.identity_keys();
        let alice_curve = alice.identity_keys().curve25519;
        // Establish the session both ways, and share Alice's group key with Bob over it.
        let setup = (|| {
            let ct = alice
                .encrypt(&bob_jid, &bob_keys, otk.as_ref(), SEED_PREFIX)
                .ok()?;
            bob.decrypt(&alice_jid, &alice_curve, &ct).ok()?;
            let reply = bob
                .encrypt(&alice_jid, &alice.identity_keys(), None, SEED_PREFIX)
                .ok()?;
            alice.decrypt(&bob_jid, &bob_keys.curve25519, &reply).ok()?;
            alice.group_encrypt(&group, SEED_PREFIX);
            let key = alice.group_key(&group)?;
            bob.add_group_key(&alice_jid, &key).ok()
        })();
        assert!(setup.is_some(), "the fuzz fixture could not be set up");
        Mutex::new(Fixture {
            alice,
            bob,
            alice_jid,
            bob_jid,
            group,
            seeds: 0,
        })
    })
}

fn with_fixture<T>(f: impl FnOnce(&mut Fixture) -> T) -> T {
    // A panic while holding the lock is the finding; later calls go on with the state as is.
    let mut guard = fixture().lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// Feeds `data` to Bob as an Olm message from Alice: the first byte's low bit picks the kind
/// (0 pre-key, 1 normal), the rest is the body. Returns whether it decrypted.
pub fn decrypt_olm(data: &[u8]) -> bool {
    let Some((&first, body)) = data.split_first() else {
        return false;
    };
    let kind = if first & 1 == 0 {
        OlmKind::PreKey
    } else {
        OlmKind::Normal
    };
    let ciphertext = OlmCiphertext {
        kind,
        body: body.to_vec(),
    };
    with_fixture(|fx| {
        let curve = fx.alice.identity_keys().curve25519;
        match fx.bob.decrypt(&fx.alice_jid, &curve, &ciphertext) {
            Ok(plain) => {
                assert!(
                    cfg!(fuzzing) || plain.starts_with(SEED_PREFIX),
                    "forged Olm plaintext"
                );
                true
            }
            Err(_) => false,
        }
    })
}

/// Feeds `data` to Bob as a group message from Alice. Returns whether it decrypted.
pub fn decrypt_group(data: &[u8]) -> bool {
    let ciphertext = GroupCiphertext(data.to_vec());
    with_fixture(|fx| {
        let group = fx.group.clone();
        match fx.bob.group_decrypt(&group, &fx.alice_jid, &ciphertext) {
            Ok(plain) => {
                assert!(
                    cfg!(fuzzing) || plain.starts_with(SEED_PREFIX),
                    "forged group plaintext"
                );
                true
            }
            Err(_) => false,
        }
    })
}

/// A fresh, valid input for [`decrypt_olm`] (a normal Olm message from Alice to Bob), for
/// seed corpora and mutation tests.
pub fn seed_olm() -> Vec<u8> {
    with_fixture(|fx| {
        fx.seeds += 1;
        let plaintext = [SEED_PREFIX, fx.seeds.to_string().as_bytes()].concat();
        let bob_keys = fx.bob.identity_keys();
        let bob_jid = fx.bob_jid.clone();
        match fx.alice.encrypt(&bob_jid, &bob_keys, None, &plaintext) {
            Ok(ct) => [vec![ct.kind.number()], ct.body].concat(),
            Err(_) => Vec::new(),
        }
    })
}

/// A fresh, valid input for [`decrypt_group`] (a group message from Alice).
pub fn seed_group() -> Vec<u8> {
    with_fixture(|fx| {
        fx.seeds += 1;
        let plaintext = [SEED_PREFIX, fx.seeds.to_string().as_bytes()].concat();
        let group = fx.group.clone();
        fx.alice.group_encrypt(&group, &plaintext).0
    })
}

/// Feeds `data` to an end-to-end endpoint as what a server pushes: a binary node, read as an
/// `action` of `enc` messages (`wa_wire::web::ServerNode`), whose messages the endpoint
/// receives from a sender whose device list it knows. Nothing may panic, and the endpoint's
/// queues stay within their bounds.
pub fn incoming_node(data: &[u8]) {
    use wa_wire::web::ServerNode;
    static ENDPOINT: OnceLock<Mutex<crate::endpoint::Endpoint>> = OnceLock::new();
    let endpoint = ENDPOINT.get_or_init(|| {
        let alice = Machine::new(jid("15551234567@c.us"));
        let mut bob = crate::endpoint::Endpoint::new(Machine::new(jid("447700900123:3@c.us")));
        bob.handle_device_lists(vec![wa_wire::keys::DeviceList {
            user: jid("15551234567@c.us"),
            devices: vec![wa_wire::keys::DeviceInfo {
                device: jid("15551234567@c.us"),
                identity: alice.identity_keys(),
                attestation: None,
            }],
        }]);
        Mutex::new(bob)
    });
    let mut bob = endpoint.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(node) = wa_binary::decode(data) else {
        return;
    };
    let Ok(ServerNode::Incoming(messages)) = ServerNode::from_node(&node) else {
        return;
    };
    for message in messages {
        bob.receive(message);
    }
    while bob.poll_need().is_some() {}
    while let Some(event) = bob.poll_event() {
        if let crate::endpoint::EndpointEvent::Message(received) = event {
            // Only Alice's fixture could have made a message that opens.
            assert!(
                cfg!(fuzzing) || received.from.user() == Some("15551234567"),
                "forged sender"
            );
        }
    }
}
