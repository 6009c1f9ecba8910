//! Known-answer tests: every vector of `tests/data/crypto.json`, the sealed frames of
//! `tests/data/session.json`, and the error cases of the key schedule and of `open`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use wa_crypto::{
    ClientKeyPair, LoginSecret, OpenError, SecretError, SessionKeys, hkdf_sha256, hmac_sha256,
};

/// The parsed JSON of `tests/data/<name>` (links into the repository's `testdata/`); a missing
/// file fails the test with its full path.
fn vectors(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
}

fn array32(v: &Value, key: &str) -> [u8; 32] {
    hex_field(v, key).try_into().unwrap()
}

fn login() -> Value {
    vectors("crypto.json")["login"].clone()
}

fn session_keys() -> SessionKeys {
    let login = login();
    SessionKeys::new(
        &array32(&login, "enc_key_hex"),
        &array32(&login, "mac_key_hex"),
    )
}

#[test]
fn hkdf_vectors() {
    let all = vectors("crypto.json");
    let cases = all["hkdf"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        assert_eq!(case["salt"], "32 zero bytes");
        let ikm = match case.get("ikm_hex") {
            Some(hex) => hex::decode(hex.as_str().unwrap()).unwrap(),
            None => case["ikm_utf8"].as_str().unwrap().as_bytes().to_vec(),
        };
        let expected = match case.get("okm_hex") {
            Some(hex) => hex::decode(hex.as_str().unwrap()).unwrap(),
            None => STANDARD.decode(case["okm_b64"].as_str().unwrap()).unwrap(),
        };
        let len = usize::try_from(case["length"].as_u64().unwrap()).unwrap();
        assert_eq!(expected.len(), len);
        let info = case["info"].as_str().unwrap().as_bytes();
        let mut okm = vec![0; len];
        hkdf_sha256(&[0; 32], &ikm, info, &mut okm).unwrap();
        assert_eq!(okm, expected, "{}", case["note"]);
        // An empty salt is the same as HashLen zero bytes (RFC 5869 §2.2).
        let mut okm_empty_salt = vec![0; len];
        hkdf_sha256(&[], &ikm, info, &mut okm_empty_salt).unwrap();
        assert_eq!(okm_empty_salt, expected);
    }
}

#[test]
fn login_schedule_step_by_step() {
    let login = login();
    let key_pair = ClientKeyPair::from_private_key(array32(&login, "client_private_hex"));
    assert_eq!(key_pair.public_key(), &array32(&login, "client_public_hex"));

    let secret_b64 = login["secret_b64"].as_str().unwrap();
    let secret = LoginSecret::from_base64(secret_b64).unwrap();
    assert_eq!(
        secret.server_public_key(),
        &array32(&login, "server_public_hex")
    );
    assert_eq!(secret.to_base64(), secret_b64);
    assert_eq!(
        secret.to_bytes().as_slice(),
        STANDARD.decode(secret_b64).unwrap()
    );

    let shared = key_pair.agree(&secret).unwrap();
    assert_eq!(shared.as_bytes(), &array32(&login, "shared_hex"));

    let expanded = shared.expand();
    let hkdf = &vectors("crypto.json")["hkdf"][0];
    assert_eq!(hkdf["note"], "login expansion");
    assert_eq!(expanded.to_bytes().as_slice(), hex_field(hkdf, "okm_hex"));

    let keys = expanded.session_keys(&secret).unwrap();
    assert_eq!(keys.enc_key(), &array32(&login, "enc_key_hex"));
    assert_eq!(keys.mac_key(), &array32(&login, "mac_key_hex"));
    assert_eq!(keys, session_keys());
}

#[test]
fn login_schedule_in_one_call() {
    let login = login();
    let key_pair = ClientKeyPair::from_private_key(array32(&login, "client_private_hex"));
    let keys = SessionKeys::from_login(key_pair, login["secret_b64"].as_str().unwrap()).unwrap();
    assert_eq!(keys, session_keys());
}

#[test]
fn tampered_secret_is_rejected() {
    let login = login();
    assert_eq!(login["flipped_expect"], "HMAC mismatch: abort login");
    let key_pair = ClientKeyPair::from_private_key(array32(&login, "client_private_hex"));
    let flipped = login["secret_with_flipped_bit_b64"].as_str().unwrap();
    assert_eq!(
        SessionKeys::from_login(key_pair, flipped),
        Err(SecretError::HmacMismatch)
    );
}

#[test]
fn secret_for_another_key_pair_is_rejected() {
    let login = login();
    let other = ClientKeyPair::from_private_key([0x55; 32]);
    let secret = login["secret_b64"].as_str().unwrap();
    assert_eq!(
        SessionKeys::from_login(other, secret),
        Err(SecretError::HmacMismatch)
    );
}

#[test]
fn the_server_side_reproduces_the_secret() {
    let login = login();
    let secret = LoginSecret::server_side(
        &array32(&login, "server_private_hex"),
        &array32(&login, "client_public_hex"),
        &session_keys(),
    )
    .unwrap();
    assert_eq!(secret.to_base64(), login["secret_b64"].as_str().unwrap());
}

#[test]
fn malformed_secrets_get_distinct_errors() {
    let login = login();
    let key_pair = || ClientKeyPair::from_private_key(array32(&login, "client_private_hex"));

    assert!(matches!(
        SessionKeys::from_login(key_pair(), "not base64!"),
        Err(SecretError::Base64(_))
    ));
    let short = STANDARD.encode([0u8; 143]);
    assert_eq!(
        SessionKeys::from_login(key_pair(), &short),
        Err(SecretError::Length { len: 143 })
    );
    let long = STANDARD.encode([0u8; 145]);
    assert_eq!(
        SessionKeys::from_login(key_pair(), &long),
        Err(SecretError::Length { len: 145 })
    );
    assert_eq!(
        SessionKeys::from_login(key_pair(), ""),
        Err(SecretError::Length { len: 0 })
    );
    let huge = "A".repeat(1 << 20);
    assert!(matches!(
        SessionKeys::from_login(key_pair(), &huge),
        Err(SecretError::Length { .. })
    ));

    // The all-zero public key (a low-order point) would make the shared secret all zeros.
    let low_order = STANDARD.encode([0u8; 144]);
    assert_eq!(
        SessionKeys::from_login(key_pair(), &low_order),
        Err(SecretError::LowOrderPoint)
    );
}

/// Builds a secret with a valid HMAC around arbitrary 80 plaintext bytes, to reach the checks
/// behind the HMAC.
fn secret_around(key_pair: ClientKeyPair, server_private: [u8; 32], plain: [u8; 80]) -> String {
    let server = ClientKeyPair::from_private_key(server_private);
    let server_public = *server.public_key();
    // The client's view of the schedule gives the same expansion as the server's.
    let probe = LoginSecret::from_bytes(&[server_public.as_slice(), &[0; 112]].concat()).unwrap();
    let expanded = key_pair.agree(&probe).unwrap().expand().to_bytes();
    let enc_key: [u8; 32] = expanded[..32].try_into().unwrap();
    let mac_key = &expanded[32..64];
    let iv: [u8; 16] = expanded[64..].try_into().unwrap();

    let mut encrypted = plain;
    cbc::Encryptor::<aes::Aes256Enc>::new((&enc_key).into(), (&iv).into())
        .encrypt_padded::<NoPadding>(&mut encrypted, 80)
        .unwrap();
    let hmac = hmac_sha256(mac_key, &[server_public.as_slice(), &encrypted].concat());
    STANDARD.encode([server_public.as_slice(), &hmac, &encrypted].concat())
}

#[test]
fn bad_padding_and_key_length_behind_a_valid_hmac() {
    let key_pair = || ClientKeyPair::from_private_key([0x11; 32]);

    let mut bad_padding = [0x42; 80];
    bad_padding[79] = 0;
    let secret = secret_around(key_pair(), [0x22; 32], bad_padding);
    assert_eq!(
        SessionKeys::from_login(key_pair(), &secret),
        Err(SecretError::BadPadding)
    );

    let mut inconsistent = [0x42; 80];
    inconsistent[79] = 3;
    let secret = secret_around(key_pair(), [0x22; 32], inconsistent);
    assert_eq!(
        SessionKeys::from_login(key_pair(), &secret),
        Err(SecretError::BadPadding)
    );

    let mut one_byte_pad = [0x42; 80];
    one_byte_pad[79] = 1;
    let secret = secret_around(key_pair(), [0x22; 32], one_byte_pad);
    assert_eq!(
        SessionKeys::from_login(key_pair(), &secret),
        Err(SecretError::KeysLength { len: 79 })
    );

    let mut good = [0x42; 80];
    good[64..].fill(16);
    let secret = secret_around(key_pair(), [0x22; 32], good);
    let keys = SessionKeys::from_login(key_pair(), &secret).unwrap();
    assert_eq!(keys, SessionKeys::new(&[0x42; 32], &[0x42; 32]));
}

#[test]
fn frame_vector_seals_and_opens_in_both_directions() {
    let frame = &vectors("crypto.json")["frame"];
    let keys = session_keys();
    let tag = frame["tag"].as_str().unwrap();
    let node = hex_field(frame, "node_hex");
    let iv: [u8; 16] = hex_field(frame, "iv_hex").try_into().unwrap();
    let metric = u8::try_from(frame["metric"].as_u64().unwrap()).unwrap();
    let flags = u8::try_from(frame["flags"].as_u64().unwrap()).unwrap();

    let sealed = keys.seal(&node, &iv);
    assert_eq!(sealed.len(), wa_crypto::sealed_len(node.len()));

    let mut client = format!("{tag},").into_bytes();
    client.extend_from_slice(&[metric, flags]);
    keys.seal_into(&node, &iv, &mut client);
    assert_eq!(
        hex::encode(&client),
        frame["client_to_server_hex"].as_str().unwrap()
    );

    let server = [format!("{tag},").as_bytes(), &sealed].concat();
    assert_eq!(
        hex::encode(&server),
        frame["server_to_client_hex"].as_str().unwrap()
    );

    assert_eq!(keys.open(&sealed).unwrap(), node);
    let mut out = b"prefix".to_vec();
    keys.open_into(&sealed, &mut out).unwrap();
    assert_eq!(out, [b"prefix".as_slice(), &node].concat());
}

/// Splits a server→client binary frame at the first comma.
fn payload(frame: &[u8]) -> &[u8] {
    let comma = frame.iter().position(|&b| b == b',').unwrap();
    &frame[comma + 1..]
}

#[test]
fn session_frames_open_and_the_tampered_one_does_not() {
    let session = vectors("session.json");
    let keys = session_keys();
    let frames = session["binary"].as_array().unwrap();
    assert!(!frames.is_empty());
    for frame in frames {
        let bytes = hex_field(frame, "hex");
        let plain = keys
            .open(payload(&bytes))
            .unwrap_or_else(|err| panic!("{frame}: {err}"));
        if let Some(node) = frame.get("node_hex") {
            assert_eq!(hex::encode(&plain), node.as_str().unwrap());
        }
        assert!(!plain.is_empty());
    }

    let tampered = hex_field(&session["binary_tampered"], "hex");
    let mut out = b"kept".to_vec();
    assert_eq!(
        keys.open_into(payload(&tampered), &mut out),
        Err(OpenError::MacMismatch)
    );
    assert_eq!(out, b"kept", "nothing is written on error");
}

#[test]
fn open_rejects_malformed_payloads() {
    let keys = session_keys();
    for len in [0, 1, 32, 48, 63] {
        assert_eq!(keys.open(&vec![0; len]), Err(OpenError::TooShort { len }));
    }
    assert_eq!(
        keys.open(&[0; 65]),
        Err(OpenError::NotBlockAligned { len: 17 })
    );
    assert_eq!(keys.open(&[0; 64]), Err(OpenError::MacMismatch));
    assert_eq!(keys.open(&[0; 1024]), Err(OpenError::MacMismatch));
    assert_eq!(OpenError::MacMismatch.to_string(), "frame MAC mismatch");
}

#[test]
fn open_rejects_bad_padding_behind_a_valid_mac() {
    let keys = session_keys();
    let iv = [7u8; 16];
    for last_block in [[0u8; 16], [17; 16], [0x10; 16].map(|b| b ^ 1), {
        let mut b = [2u8; 16];
        b[14] = 3;
        b
    }] {
        let mut ct = [[0x61; 16].as_slice(), &last_block].concat();
        cbc::Encryptor::<aes::Aes256Enc>::new(keys.enc_key().into(), (&iv).into())
            .encrypt_padded::<NoPadding>(&mut ct, 32)
            .unwrap();
        let body = [iv.as_slice(), &ct].concat();
        let payload = [hmac_sha256(keys.mac_key(), &body).as_slice(), &body].concat();
        assert_eq!(
            keys.open(&payload),
            Err(OpenError::BadPadding),
            "{last_block:?}"
        );
    }
}

#[test]
fn challenge_and_logout_token() {
    let all = vectors("crypto.json");
    let keys = session_keys();
    let challenge = &all["challenge"];
    assert_eq!(
        keys.answer_challenge(challenge["challenge_b64"].as_str().unwrap())
            .unwrap(),
        challenge["response_b64"].as_str().unwrap()
    );
    assert!(keys.answer_challenge("%%%").is_err());
    assert_eq!(
        keys.logout_token(),
        all["logout_token_b64"].as_str().unwrap()
    );
}

#[test]
fn debug_prints_no_key_bytes() {
    let login = login();
    let keys = session_keys();
    assert_eq!(format!("{keys:?}"), "SessionKeys { .. }");

    let private = array32(&login, "client_private_hex");
    let key_pair = ClientKeyPair::from_private_key(private);
    let debug = format!("{key_pair:?}");
    assert!(
        debug.contains(login["client_public_hex"].as_str().unwrap()),
        "{debug}"
    );
    assert!(!debug.contains(&hex::encode(private)), "{debug}");

    let secret = LoginSecret::from_base64(login["secret_b64"].as_str().unwrap()).unwrap();
    let shared = key_pair.agree(&secret).unwrap();
    assert_eq!(format!("{shared:?}"), "SharedSecret { .. }");
    assert_eq!(format!("{:?}", shared.expand()), "ExpandedSecret { .. }");
}

#[test]
fn generated_key_pairs_are_reproducible_and_agree() {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    let mut rng = ChaCha20Rng::seed_from_u64(2020);
    let a = ClientKeyPair::generate(&mut rng);
    let b = ClientKeyPair::generate(&mut rng);
    let a_again = ClientKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(2020));
    assert_eq!(a.public_key(), a_again.public_key());
    assert_ne!(a.public_key(), b.public_key());
}

#[cfg(feature = "serde")]
#[test]
fn serde_round_trip_as_hex() {
    let keys = session_keys();
    let json = serde_json::to_value(&keys).unwrap();
    let login = login();
    assert_eq!(json["enc_key"], login["enc_key_hex"]);
    assert_eq!(json["mac_key"], login["mac_key_hex"]);
    let back: SessionKeys = serde_json::from_value(json).unwrap();
    assert_eq!(back, keys);
    let bad = serde_json::json!({"enc_key": "00", "mac_key": login["mac_key_hex"]});
    let err = serde_json::from_value::<SessionKeys>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("enc_key"), "{err}");
}
