//! The three real samples of `tests/data/media/` (links into the repository's `testdata/media/`): encryption gives the exact bodies, hashes and
//! sidecars; every decryption path gives back the originals.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::io::{Cursor, Read};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use wa_media::{
    Decryptor, Encryptor, Error, Expected, FileSink, MediaKey, MediaType, RangedDecryptor,
    SidecarBuilder, compute_sidecar, decrypt, decrypt_stream, encrypt, encrypt_stream,
    encrypt_stream_parallel,
};

/// The bytes of `tests/data/media/<name>`; a missing file fails the test with its full path.
fn read_media(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/media")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

struct Sample {
    kind: String,
    ty: MediaType,
    key: MediaKey,
    plain: Vec<u8>,
    body: Vec<u8>,
    file_sha256: [u8; 32],
    file_enc_sha256: [u8; 32],
    sidecar: Vec<u8>,
}

fn samples() -> Vec<Sample> {
    let json = read_media("media.json");
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
    assert_eq!(entries.len(), 3);
    entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            let b64 = |k: &str| <[u8; 32]>::try_from(STANDARD.decode(s(k)).unwrap()).unwrap();
            let key = <[u8; 32]>::try_from(hex::decode(s("media_key_hex")).unwrap()).unwrap();
            let kind = s("kind");
            // The `.key` files hold the same key as the JSON.
            let key_file = read_media(&format!("{}.key", kind.to_uppercase()));
            assert_eq!(key_file, key);
            Sample {
                ty: kind.parse().unwrap(),
                kind,
                key: MediaKey::from_bytes(key),
                plain: read_media(&s("plaintext_file")),
                body: read_media(&s("encrypted_file")),
                file_sha256: b64("fileSha256"),
                file_enc_sha256: b64("fileEncSha256"),
                sidecar: hex::decode(s("sidecar_hex")).unwrap(),
            }
        })
        .collect()
}

fn expected(sample: &Sample) -> Expected {
    Expected::new()
        .file_sha256(sample.file_sha256)
        .file_enc_sha256(sample.file_enc_sha256)
}

/// A reader that hands out at most `chunk` bytes per `read`.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn encrypt_gives_the_exact_bodies_and_hashes() {
    for sample in samples() {
        let (body, info) = encrypt(&sample.key, sample.ty, &sample.plain);
        assert!(body == sample.body, "{}: body differs", sample.kind);
        assert_eq!(info.file_sha256, sample.file_sha256, "{}", sample.kind);
        assert_eq!(
            info.file_enc_sha256, sample.file_enc_sha256,
            "{}",
            sample.kind
        );
        assert_eq!(info.file_length, sample.plain.len() as u64);
        assert_eq!(info.body_length, sample.body.len() as u64);
        assert_eq!(&info.mac[..], &sample.body[sample.body.len() - 10..]);
        match sample.ty {
            MediaType::Image => assert_eq!(info.sidecar, None),
            _ => assert_eq!(
                info.sidecar.as_deref(),
                Some(&sample.sidecar[..]),
                "{}",
                sample.kind
            ),
        }
    }
}

#[test]
fn the_video_sidecar_matches_the_sidecar_file() {
    let video = samples().into_iter().find(|s| s.kind == "video").unwrap();
    let file = read_media("VIDEO.sidecar");
    assert_eq!(file.len(), 70);
    assert_eq!(file, video.sidecar);
    let (_, info) = encrypt(&video.key, MediaType::Video, &video.plain);
    assert_eq!(info.sidecar.unwrap(), file);
    // GIFs are videos: same keys, same sidecar.
    let (_, info) = encrypt(&video.key, MediaType::Gif, &video.plain);
    assert_eq!(info.sidecar.unwrap(), file);
}

#[test]
fn sidecars_of_existing_bodies_match_including_the_image() {
    for sample in samples() {
        assert_eq!(
            compute_sidecar(&sample.key, sample.ty, &sample.body),
            sample.sidecar
        );
        let mut builder = SidecarBuilder::new(&sample.key, sample.ty);
        for chunk in sample.body.chunks(1000) {
            builder.update(chunk);
        }
        assert_eq!(builder.finish(), sample.sidecar);
        // An image has no sidecar by default, but one can be asked for.
        let mut encryptor = Encryptor::with_sidecar(&sample.key, sample.ty, true);
        let mut body = Vec::new();
        encryptor.update(&sample.plain, &mut body);
        assert_eq!(encryptor.finish(&mut body).sidecar.unwrap(), sample.sidecar);
    }
}

#[test]
fn encryption_does_not_depend_on_chunking() {
    for sample in samples() {
        for chunk in [1, 15, 16, 17, 4095, 65536, 65537, 1 << 20] {
            let mut encryptor = Encryptor::new(&sample.key, sample.ty);
            let mut body = Vec::new();
            for piece in sample.plain.chunks(chunk) {
                encryptor.update(piece, &mut body);
            }
            let info = encryptor.finish(&mut body);
            assert!(body == sample.body, "{} chunk {chunk}", sample.kind);
            assert_eq!(info.file_enc_sha256, sample.file_enc_sha256);

            let mut out = Vec::new();
            let reader = Trickle {
                data: &sample.plain,
                chunk,
            };
            let info = encrypt_stream(&sample.key, sample.ty, reader, &mut out).unwrap();
            assert!(out == sample.body, "{} stream chunk {chunk}", sample.kind);
            assert_eq!(info.file_sha256, sample.file_sha256);

            let mut out = Vec::new();
            let reader = Trickle {
                data: &sample.plain,
                chunk,
            };
            let parallel =
                encrypt_stream_parallel(&sample.key, sample.ty, reader, &mut out).unwrap();
            assert!(out == sample.body, "{} parallel chunk {chunk}", sample.kind);
            assert_eq!(parallel, info);
        }
    }
}

#[test]
fn buffered_decrypt_gives_the_originals() {
    for sample in samples() {
        let plain = decrypt(&sample.key, sample.ty, &expected(&sample), &sample.body).unwrap();
        assert!(plain == sample.plain, "{}", sample.kind);
        let plain = decrypt(&sample.key, sample.ty, &Expected::new(), &sample.body).unwrap();
        assert!(plain == sample.plain, "{}", sample.kind);
    }
}

#[test]
fn streaming_decrypt_gives_the_originals_whatever_the_chunking() {
    for sample in samples() {
        for chunk in [1, 7, 16, 26, 27, 65536, 262_170, 1 << 20] {
            let reader = Trickle {
                data: &sample.body,
                chunk,
            };
            let done = decrypt_stream(
                &sample.key,
                sample.ty,
                &expected(&sample),
                reader,
                Vec::new(),
            )
            .unwrap();
            assert!(done.output == sample.plain, "{} chunk {chunk}", sample.kind);
            assert_eq!(done.file_length, sample.plain.len() as u64);

            let mut decryptor =
                Decryptor::new(&sample.key, sample.ty, &expected(&sample), Vec::new());
            for piece in sample.body.chunks(chunk) {
                decryptor.update(piece).unwrap();
            }
            assert!(decryptor.finish().unwrap().output == sample.plain);
        }
    }
}

#[test]
fn decrypt_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for sample in samples() {
        let target = dir.path().join(&sample.kind);
        let sink = FileSink::create(&target).unwrap();
        let done = decrypt_stream(
            &sample.key,
            sample.ty,
            &expected(&sample),
            &sample.body[..],
            sink,
        )
        .unwrap();
        drop(done.output);
        assert!(std::fs::read(&target).unwrap() == sample.plain);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}

#[test]
fn ranged_decrypt_of_every_window_and_some_ranges() {
    for sample in samples() {
        let len = sample.body.len() as u64;
        let ranged = RangedDecryptor::new(&sample.key, sample.ty, &sample.sidecar, len).unwrap();
        assert_eq!(ranged.window_count() * 10, sample.sidecar.len() as u64);

        // Window by window, exactly as a player would fetch them.
        let mut all = Vec::new();
        for window in 0..ranged.window_count() {
            let range = ranged.window_body_range(window).unwrap();
            let data = &sample.body[range.start as usize..range.end as usize];
            ranged.decrypt_window(window, data, &mut all).unwrap();
        }
        assert!(all == sample.plain, "{}", sample.kind);

        let n = sample.plain.len() as u64;
        for range in [
            0..n,
            0..1,
            65536..65537,
            65535..131073,
            100_000..n + 1000,
            n - 1..n,
            n..n + 5,
        ] {
            let mut out = Vec::new();
            let body = Cursor::new(&sample.body);
            let written = ranged.decrypt_range(body, range.clone(), &mut out).unwrap();
            let start = (range.start.min(n)) as usize;
            let end = (range.end.min(n)) as usize;
            assert_eq!(written as usize, out.len());
            assert!(
                out == sample.plain[start..end.max(start)],
                "{} {range:?}",
                sample.kind
            );
        }
    }
}

#[test]
fn wrong_type_or_hashes_are_rejected() {
    for sample in samples() {
        let other = if sample.ty == MediaType::Document {
            MediaType::Image
        } else {
            MediaType::Document
        };
        let err = decrypt(&sample.key, other, &Expected::new(), &sample.body).unwrap_err();
        assert!(matches!(err, Error::MacMismatch), "{err}");

        let mut hash = sample.file_sha256;
        hash[31] ^= 1;
        let wrong = Expected::new().file_sha256(hash);
        let err = decrypt(&sample.key, sample.ty, &wrong, &sample.body).unwrap_err();
        assert!(matches!(err, Error::PlainSha256Mismatch), "{err}");
        let err = decrypt_stream(&sample.key, sample.ty, &wrong, &sample.body[..], Vec::new())
            .unwrap_err();
        assert!(matches!(err, Error::PlainSha256Mismatch), "{err}");

        let mut hash = sample.file_enc_sha256;
        hash[0] ^= 0x80;
        let wrong = Expected::new().file_enc_sha256(hash);
        let err = decrypt(&sample.key, sample.ty, &wrong, &sample.body).unwrap_err();
        assert!(matches!(err, Error::EncSha256Mismatch), "{err}");
        let err = decrypt_stream(&sample.key, sample.ty, &wrong, &sample.body[..], Vec::new())
            .unwrap_err();
        assert!(matches!(err, Error::EncSha256Mismatch), "{err}");
    }
}

#[test]
fn key_expansion_matches_the_hkdf_definition() {
    // The MAC of a real sample ties the expansion to real data; this pins the layout.
    let video = samples().into_iter().find(|s| s.kind == "video").unwrap();
    let keys = video.key.expand(MediaType::Video);
    let enc = &video.body[..video.body.len() - 10];
    assert_eq!(&keys.mac(enc)[..], &video.body[video.body.len() - 10..]);
    let mut okm = [0; 112];
    hkdf::Hkdf::<sha2::Sha256>::new(None, video.key.as_bytes())
        .expand(b"WhatsApp Video Keys", &mut okm)
        .unwrap();
    assert_eq!(&okm[..16], keys.iv());
    assert_eq!(&okm[16..48], keys.cipher_key());
    assert_eq!(&okm[48..80], keys.mac_key());
    assert_eq!(&okm[80..], keys.ref_key());
    assert_eq!(
        format!("{:?} {:?}", video.key, keys),
        "MediaKey { .. } MediaKeys { .. }"
    );
}
