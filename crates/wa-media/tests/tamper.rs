//! Anything but the exact body is rejected by every decryption path, with the right error, and
//! no plaintext comes out: no file is left behind, no buffer is filled.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use wa_media::{
    Decryptor, Error, Expected, FileSink, MediaKey, MediaType, RangedDecryptor, compute_sidecar,
    decrypt, decrypt_stream, encrypt,
};

fn key() -> MediaKey {
    MediaKey::from_bytes(*b"0123456789abcdef0123456789abcdef")
}

fn plain(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

/// Decrypts with every whole-body path, checking they agree; returns the error.
fn reject(ty: MediaType, expected: &Expected, body: &[u8]) -> Error {
    let key = key();
    let buffered = decrypt(&key, ty, expected, body).unwrap_err();
    let streamed = decrypt_stream(&key, ty, expected, body, Vec::new()).unwrap_err();
    let mut decryptor = Decryptor::new(&key, ty, expected, Vec::new());
    for chunk in body.chunks(5) {
        decryptor.update(chunk).unwrap();
    }
    let chunked = decryptor.finish().unwrap_err();
    assert_eq!(buffered.to_string(), streamed.to_string());
    assert_eq!(buffered.to_string(), chunked.to_string());
    buffered
}

#[test]
fn flipping_any_byte_is_a_mac_mismatch() {
    for len in [0, 1, 15, 16, 17, 100] {
        let (body, _) = encrypt(&key(), MediaType::Document, &plain(len));
        for i in 0..body.len() {
            for bit in [0x01, 0x80] {
                let mut bad = body.clone();
                bad[i] ^= bit;
                let err = reject(MediaType::Document, &Expected::new(), &bad);
                assert!(
                    matches!(err, Error::MacMismatch),
                    "len {len} byte {i}: {err}"
                );
            }
        }
    }
}

#[test]
fn flipping_bytes_of_a_real_sample_is_a_mac_mismatch() {
    let read = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/media")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
    };
    let key = read("AUDIO.key");
    let key = MediaKey::try_from(&key[..]).unwrap();
    let body = read("audioEnc.mp3");
    assert!(decrypt(&key, MediaType::Audio, &Expected::new(), &body).is_ok());
    // Every byte of the first and last blocks and the MAC, and every 61st byte in between.
    let positions = (0..48)
        .chain((48..body.len() - 48).step_by(61))
        .chain(body.len() - 48..body.len());
    for i in positions {
        let mut bad = body.clone();
        bad[i] ^= 0x10;
        let err = decrypt(&key, MediaType::Audio, &Expected::new(), &bad).unwrap_err();
        assert!(matches!(err, Error::MacMismatch), "byte {i}: {err}");
    }
}

#[test]
fn truncating_or_extending_is_rejected() {
    let (body, _) = encrypt(&key(), MediaType::Image, &plain(40));
    assert_eq!(body.len(), 58);
    for len in 0..body.len() {
        let err = reject(MediaType::Image, &Expected::new(), &body[..len]);
        match len {
            0..26 => assert!(
                matches!(err, Error::TooShort { len: l } if l == len as u64),
                "{err}"
            ),
            26 | 42 => assert!(matches!(err, Error::MacMismatch), "{len}: {err}"),
            _ => assert!(matches!(err, Error::NotBlockAligned { .. }), "{len}: {err}"),
        }
    }
    for extra in [1, 10, 16] {
        let mut long = body.clone();
        long.extend(std::iter::repeat_n(0, extra));
        let err = reject(MediaType::Image, &Expected::new(), &long);
        assert!(
            matches!(err, Error::MacMismatch | Error::NotBlockAligned { .. }),
            "{err}"
        );
    }
}

#[test]
fn a_valid_mac_over_bad_padding_is_bad_padding() {
    let key = key();
    let keys = key.expand(MediaType::Video);
    // Arbitrary ciphertext: it decrypts to noise whose last byte is almost never valid padding.
    for seed in 0u8..8 {
        let enc: Vec<u8> = (0..48u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(seed))
            .collect();
        let mut body = enc.clone();
        body.extend_from_slice(&keys.mac(&enc));
        let Err(err) = decrypt(&key, MediaType::Video, &Expected::new(), &body) else {
            continue; // valid padding by chance: nothing to test with this one
        };
        assert!(matches!(err, Error::BadPadding), "{err}");
        assert!(matches!(
            reject(MediaType::Video, &Expected::new(), &body),
            Error::BadPadding
        ));

        let sidecar = compute_sidecar(&key, MediaType::Video, &body);
        let ranged =
            RangedDecryptor::new(&key, MediaType::Video, &sidecar, body.len() as u64).unwrap();
        let mut out = vec![1, 2, 3];
        let err = ranged.decrypt_window(0, &body, &mut out).unwrap_err();
        assert!(matches!(err, Error::BadPadding), "{err}");
        assert_eq!(out, [1, 2, 3], "nothing released");
    }
}

#[test]
fn a_failed_file_decryption_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut body, info) = encrypt(&key(), MediaType::Video, &plain(300_000));
    let target = dir.path().join("video.mp4");
    let expected = Expected::new().file_sha256(info.file_sha256);

    for flip in [0, 150_000, body.len() - 1] {
        body[flip] ^= 1;
        let sink = FileSink::create(&target).unwrap();
        let err = decrypt_stream(&key(), MediaType::Video, &expected, &body[..], sink).unwrap_err();
        assert!(matches!(err, Error::MacMismatch), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "flip at {flip}"
        );
        body[flip] ^= 1;
    }

    // A wrong plaintext hash is only known at the very end: still nothing.
    let wrong = Expected::new().file_sha256([0; 32]);
    let sink = FileSink::create(&target).unwrap();
    let err = decrypt_stream(&key(), MediaType::Video, &wrong, &body[..], sink).unwrap_err();
    assert!(matches!(err, Error::PlainSha256Mismatch), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let sink = FileSink::create(&target).unwrap();
    decrypt_stream(&key(), MediaType::Video, &expected, &body[..], sink).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), plain(300_000));
}

#[test]
fn tampered_windows_and_sidecars_are_caught_window_by_window() {
    let key = key();
    let data = plain(3 * 65536 + 100);
    let (body, info) = encrypt(&key, MediaType::Audio, &data);
    let sidecar = info.sidecar.unwrap();
    let ranged = RangedDecryptor::new(&key, MediaType::Audio, &sidecar, body.len() as u64).unwrap();
    assert_eq!(ranged.window_count(), 4);

    // A byte in the 16-byte overlap belongs to two windows; any other byte to one.
    for (flip, bad_windows) in [
        (0, vec![0]),
        (65536 - 17, vec![0]),
        (65536 - 16, vec![0, 1]),
        (65536 - 1, vec![0, 1]),
        (65536, vec![1]),
        (body.len() - 1, vec![3]),
    ] {
        let mut bad = body.clone();
        bad[flip] ^= 4;
        for window in 0..4 {
            let range = ranged.window_body_range(window).unwrap();
            let mut out = Vec::new();
            let result = ranged.decrypt_window(
                window,
                &bad[range.start as usize..range.end as usize],
                &mut out,
            );
            if bad_windows.contains(&window) {
                assert!(
                    matches!(result, Err(Error::SidecarMismatch { window: w }) if w == window),
                    "flip {flip} window {window}"
                );
                assert!(out.is_empty());
            } else {
                result.unwrap();
                let start = (window * 65536) as usize;
                assert_eq!(out, data[start..(start + 65536).min(data.len())]);
            }
        }
    }

    for i in 0..sidecar.len() {
        let mut bad = sidecar.clone();
        bad[i] ^= 1;
        let ranged = RangedDecryptor::new(&key, MediaType::Audio, &bad, body.len() as u64).unwrap();
        let mut out = Vec::new();
        let err = ranged
            .decrypt_range(std::io::Cursor::new(&body), 0..u64::MAX, &mut out)
            .unwrap_err();
        let window = (i / 10) as u64;
        assert!(
            matches!(err, Error::SidecarMismatch { window: w } if w == window),
            "{err}"
        );
        // Only the windows before the bad one were released.
        assert_eq!(out, data[..(window * 65536) as usize]);
    }

    let err = RangedDecryptor::new(&key, MediaType::Audio, &sidecar[..30], body.len() as u64)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SidecarLength {
                expected: 40,
                actual: 30
            }
        ),
        "{err}"
    );
    let mut out = Vec::new();
    let err = ranged.decrypt_window(4, &[], &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WindowOutOfRange {
                window: 4,
                windows: 4
            }
        ),
        "{err}"
    );
    let err = ranged
        .decrypt_window(1, &body[..100], &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WindowLength {
                window: 1,
                expected: 65552,
                actual: 100
            }
        ),
        "{err}"
    );
    // A body that ends early: the window read comes up short.
    let err = ranged
        .decrypt_range(
            std::io::Cursor::new(&body[..body.len() - 5]),
            0..u64::MAX,
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::WindowLength { window: 3, .. }),
        "{err}"
    );
}

#[test]
fn empty_input() {
    let key = key();
    for ty in MediaType::ALL {
        let (body, info) = encrypt(&key, ty, b"");
        assert_eq!(body.len(), 26);
        assert_eq!(info.file_length, 0);
        assert_eq!(
            info.file_sha256,
            <[u8; 32]>::from(<sha2::Sha256 as sha2::Digest>::digest(b""))
        );
        assert_eq!(info.sidecar.is_some(), ty.is_streamable());
        let expected = Expected::new()
            .file_sha256(info.file_sha256)
            .file_enc_sha256(info.file_enc_sha256);
        assert_eq!(decrypt(&key, ty, &expected, &body).unwrap(), b"");
        let done = decrypt_stream(&key, ty, &expected, &body[..], Vec::new()).unwrap();
        assert_eq!((done.output.len(), done.file_length), (0, 0));
        let sidecar = compute_sidecar(&key, ty, &body);
        let ranged = RangedDecryptor::new(&key, ty, &sidecar, 26).unwrap();
        let mut out = Vec::new();
        ranged.decrypt_window(0, &body, &mut out).unwrap();
        assert!(out.is_empty());
    }
    // An empty body (or any too short one) is not a file.
    assert!(matches!(
        reject(MediaType::Image, &Expected::new(), b""),
        Error::TooShort { len: 0 }
    ));
    assert!(matches!(
        RangedDecryptor::new(&key, MediaType::Video, &[], 0),
        Err(Error::TooShort { len: 0 })
    ));
}

#[test]
fn media_type_names() {
    for ty in MediaType::ALL {
        assert_eq!(ty.name().parse::<MediaType>().unwrap(), ty);
        assert_eq!(ty.name().to_uppercase().parse::<MediaType>().unwrap(), ty);
    }
    assert_eq!("PTT".parse::<MediaType>().unwrap(), MediaType::Voice);
    assert_eq!("Voice".parse::<MediaType>().unwrap(), MediaType::Voice);
    let err = "photo".parse::<MediaType>().unwrap_err();
    assert_eq!(err.name(), "photo");
    let err: Error = err.into();
    assert!(matches!(err, Error::UnknownType(_)));
    assert!(
        err.to_string().contains("unknown media type \"photo\""),
        "{err}"
    );
    let long = "x".repeat(10_000);
    assert_eq!(long.parse::<MediaType>().unwrap_err().name().len(), 32);
    // Types that share keys encrypt identically; the others don't.
    let pairs = [
        (MediaType::Image, MediaType::Sticker),
        (MediaType::Video, MediaType::Gif),
        (MediaType::Audio, MediaType::Voice),
    ];
    for (a, b) in pairs {
        assert_eq!(encrypt(&key(), a, b"x").0, encrypt(&key(), b, b"x").0);
    }
    assert_ne!(
        encrypt(&key(), MediaType::Document, b"x").0,
        encrypt(&key(), MediaType::History, b"x").0
    );
}
