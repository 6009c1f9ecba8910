//! Identities: trust on first use, device attestations, security codes, key text forms.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::*;
use wa_e2e::{
    IdentityChange, IdentityKeys, KeyParseError, Machine, Signature, SignatureError,
    device_attestation_message, security_code, verify_signature,
};

#[test]
fn trust_on_first_use() {
    let mut m = Machine::new(jid(ALICE));
    let bob = jid("447700900123@c.us");
    assert_eq!(m.known_identity(&bob), None);
    assert_eq!(m.observe_identity(&bob, &[1; 32]), IdentityChange::New);
    assert_eq!(m.known_identity(&bob), Some([1; 32]));
    // Any device of the user is the user.
    assert_eq!(
        m.observe_identity(&jid("447700900123:4@c.us"), &[1; 32]),
        IdentityChange::Same
    );
    assert_eq!(
        m.observe_identity(&bob, &[2; 32]),
        IdentityChange::Changed { previous: [1; 32] }
    );
    assert_eq!(m.known_identity(&jid("447700900123:1@c.us")), Some([2; 32]));
    assert_eq!(m.observe_identity(&bob, &[2; 32]), IdentityChange::Same);
    // Other users are separate.
    assert_eq!(
        m.observe_identity(&jid(ALICE), &[2; 32]),
        IdentityChange::New
    );
}

#[test]
fn device_attestations() {
    let phone = Machine::new(jid(ALICE));
    let web = Machine::new(jid("15551234567:2@c.us"));
    let keys = web.identity_keys();
    let message = device_attestation_message(web.own_device(), &keys);
    assert!(message.starts_with(b"wa-rs device attestation v1\0"));
    assert!(message.ends_with(&[keys.curve25519, keys.ed25519].concat()));
    // The attestation binds the keys to the user (the account), not to a device number.
    assert_eq!(
        &message[28..message.len() - 64],
        b"15551234567@c.us\0".as_slice()
    );
    let signature = phone.sign(&message);
    let phone_key = phone.identity_keys().ed25519;
    verify_signature(&phone_key, &message, &signature).unwrap();

    // Wrong key (the web device's own), wrong message (another device, other keys), wrong
    // signature.
    assert!(matches!(
        verify_signature(&keys.ed25519, &message, &signature),
        Err(SignatureError::Invalid { .. })
    ));
    let same_user = device_attestation_message(&jid("15551234567:3@c.us"), &keys);
    assert_eq!(same_user, message);
    let other_user = device_attestation_message(&jid("15559876543:2@c.us"), &keys);
    assert!(verify_signature(&phone_key, &other_user, &signature).is_err());
    let mut other_keys = keys;
    other_keys.curve25519[0] ^= 1;
    let other = device_attestation_message(web.own_device(), &other_keys);
    assert!(verify_signature(&phone_key, &other, &signature).is_err());
    for i in [0, 31, 32, 63] {
        let mut bad = signature;
        bad.0[i] ^= 0x10;
        assert!(
            verify_signature(&phone_key, &message, &bad).is_err(),
            "byte {i}"
        );
    }
    // A key that is not a point: y = 2 has no x on Ed25519.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(matches!(
        verify_signature(&not_a_point, &message, &signature),
        Err(SignatureError::BadKey { .. })
    ));
    assert!(verify_signature(&phone_key, &message, &Signature([0; 64])).is_err());
}

#[test]
fn security_code_is_symmetric_and_has_the_right_shape() {
    let a = jid("15551234567@c.us");
    let b = jid("447700900123:3@c.us");
    let code = security_code(&a, &[1; 32], &b, &[2; 32]);
    assert_eq!(code, security_code(&b, &[2; 32], &a, &[1; 32]));
    assert_eq!(code.digits().len(), 60);
    assert!(code.digits().bytes().all(|c| c.is_ascii_digit()));
    let shown = code.to_string();
    assert_eq!(shown.split(' ').count(), 12);
    assert!(shown.split(' ').all(|block| block.len() == 5));
    assert_eq!(shown.replace(' ', ""), code.digits());
    assert_eq!(
        code.qr_text(),
        format!("wa-rs-security-code:0:{}", code.digits())
    );
    // The device does not matter; the key and the number do.
    assert_eq!(
        code,
        security_code(&a, &[1; 32], &jid("447700900123@c.us"), &[2; 32])
    );
    assert_ne!(code, security_code(&a, &[1; 32], &b, &[3; 32]));
    assert_ne!(
        code,
        security_code(&a, &[1; 32], &jid("447700900124@c.us"), &[2; 32])
    );
}

#[test]
fn security_code_known_answer() {
    // Computed independently with Python's hashlib (the script also reproduces libsignal's
    // published vector "300354477692869396892869876765458257569162576843440918079131"):
    //
    // import hashlib
    // def half(key, ident):
    //     h = hashlib.sha512(b"\x00\x00" + key + ident + key).digest()
    //     for _ in range(5199):
    //         h = hashlib.sha512(h + key).digest()
    //     return "".join("%05d" % (int.from_bytes(h[i:i+5], "big") % 100000)
    //                    for i in range(0, 30, 5))
    // a = half(bytes(range(32)), b"15551234567")
    // b = half(bytes(range(32, 64)), b"447700900123")
    // print(min(a, b) + max(a, b))
    let a_key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let b_key: [u8; 32] = std::array::from_fn(|i| 32 + i as u8);
    let code = security_code(
        &jid("15551234567@c.us"),
        &a_key,
        &jid("447700900123:1@s.whatsapp.net"),
        &b_key,
    );
    assert_eq!(
        code.digits(),
        "784511293304371865608007652401823243575178161973338282641486"
    );
    assert_eq!(
        code.to_string(),
        "78451 12933 04371 86560 80076 52401 82324 35751 78161 97333 82826 41486"
    );
}

#[test]
fn identity_keys_text_forms() {
    let m = Machine::new(jid(ALICE));
    let keys = m.identity_keys();
    let text = keys.to_string();
    assert_eq!(text.parse::<IdentityKeys>().unwrap(), keys);
    assert_eq!(
        IdentityKeys::from_base64(&keys.curve25519_base64(), &keys.ed25519_base64()).unwrap(),
        keys
    );
    let json = serde_json::to_string(&keys).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"curve25519":"{}","ed25519":"{}"}}"#,
            keys.curve25519_base64(),
            keys.ed25519_base64()
        )
    );
    assert_eq!(serde_json::from_str::<IdentityKeys>(&json).unwrap(), keys);
    assert_eq!(
        "nonsense".parse::<IdentityKeys>(),
        Err(KeyParseError::Format)
    );
    assert!(matches!(
        "curve25519:AAAA ed25519:AAAA".parse::<IdentityKeys>(),
        Err(KeyParseError::Length { len: 3, .. })
    ));
    assert!(matches!(
        "curve25519:!!!! ed25519:AAAA".parse::<IdentityKeys>(),
        Err(KeyParseError::Base64 { .. })
    ));
    assert!(serde_json::from_str::<IdentityKeys>(r#"{"curve25519":"AA","ed25519":"AA"}"#).is_err());
}
