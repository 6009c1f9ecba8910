//! The HKDF-SHA256 test cases of RFC 5869, appendix A.1 to A.3, through [`hkdf_sha256`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use wa_crypto::{HkdfError, hkdf_sha256};

struct Case {
    ikm: &'static str,
    salt: &'static str,
    info: &'static str,
    okm: &'static str,
}

const CASES: [Case; 3] = [
    // A.1: basic test case with SHA-256.
    Case {
        ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt: "000102030405060708090a0b0c",
        info: "f0f1f2f3f4f5f6f7f8f9",
        okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
              34007208d5b887185865",
    },
    // A.2: longer inputs and outputs.
    Case {
        ikm: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
              202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
              404142434445464748494a4b4c4d4e4f",
        salt: "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
               808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
               a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        info: "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf\
               d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef\
               f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
              59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
              cc30c58179ec3e87c14c01d5c1f3434f1d87",
    },
    // A.3: zero-length salt and info.
    Case {
        ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt: "",
        info: "",
        okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d\
              9d201395faa4b61a96c8",
    },
];

fn unhex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    hex::decode(digits).unwrap()
}

#[test]
fn rfc_5869_sha256_cases() {
    for (n, case) in CASES.iter().enumerate() {
        let expected = unhex(case.okm);
        let mut okm = vec![0; expected.len()];
        hkdf_sha256(
            &unhex(case.salt),
            &unhex(case.ikm),
            &unhex(case.info),
            &mut okm,
        )
        .unwrap();
        assert_eq!(okm, expected, "RFC 5869 A.{}", n + 1);
    }
}

#[test]
fn output_length_limit() {
    let mut okm = vec![0; 255 * 32];
    hkdf_sha256(&[], b"ikm", b"", &mut okm).unwrap();
    let mut too_long = vec![0; 255 * 32 + 1];
    assert_eq!(
        hkdf_sha256(&[], b"ikm", b"", &mut too_long),
        Err(HkdfError { len: 8161 })
    );
}
