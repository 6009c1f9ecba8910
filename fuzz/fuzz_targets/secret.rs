#![no_main]
//! The login key schedule on arbitrary secrets, with a fixed client key pair: the input as the
//! base64 `secret` field and as the decoded bytes. The fuzzing-only path skips the HMAC check so
//! the decryption, unpadding and key-length checks behind it run on every 144-byte input.

use libfuzzer_sys::fuzz_target;
use wa_crypto::{ClientKeyPair, LoginSecret, SessionKeys};

const CLIENT_PRIVATE: [u8; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32,
];

fn key_pair() -> ClientKeyPair {
    ClientKeyPair::from_private_key(CLIENT_PRIVATE)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SessionKeys::from_login(key_pair(), text);
    }
    let Ok(secret) = LoginSecret::from_bytes(data) else {
        return;
    };
    assert_eq!(secret.to_bytes().as_slice(), data);
    assert_eq!(
        LoginSecret::from_base64(&secret.to_base64()).ok(),
        Some(secret.clone())
    );
    if let Ok(shared) = key_pair().agree(&secret) {
        let _ = shared.expand().session_keys(&secret);
    }
    if let Ok(shared) = key_pair().agree(&secret) {
        let _ = shared
            .expand()
            .session_keys_unauthenticated_for_fuzzing(&secret);
    }
});
