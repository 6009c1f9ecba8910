//! Property tests: `decrypt(encrypt(x)) == x` by every path, for sizes around the 16-byte block
//! and 64 KiB window boundaries, and results that do not depend on how the input is chunked.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::io::Read;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use wa_media::{
    Decryptor, Encryptor, Expected, MediaKey, MediaType, RangedDecryptor, compute_sidecar, decrypt,
    decrypt_stream, encrypt, encrypt_stream, encrypt_stream_parallel,
};

/// Sizes where something changes: block and window edges, give or take a block.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..=48,
        (1usize..=4).prop_flat_map(|windows| {
            let edge = windows * 65536;
            (edge - 48)..=(edge + 48)
        }),
        0usize..=300_000,
    ]
}

fn media_type() -> impl Strategy<Value = MediaType> {
    prop::sample::select(MediaType::ALL.to_vec())
}

/// A reader that hands out `chunks[i % len]` bytes on the i-th `read`.
struct Chunked<'a> {
    data: &'a [u8],
    chunks: &'a [usize],
    calls: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.chunks[self.calls % self.chunks.len()];
        self.calls += 1;
        let n = chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn split<'a>(data: &'a [u8], chunks: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    for &chunk in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(chunk.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

fn config() -> Config {
    Config {
        cases: 48,
        rng_seed: RngSeed::Fixed(0x5eed_3d1a),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn roundtrip_by_every_path(
        len in size(),
        fill in any::<u64>(),
        key in any::<[u8; 32]>(),
        ty in media_type(),
        enc_chunks in prop::collection::vec(1usize..70_000, 1..4),
        dec_chunks in prop::collection::vec(1usize..70_000, 1..4),
    ) {
        let key = MediaKey::from_bytes(key);
        let plain: Vec<u8> = (0..len as u64).map(|i| (i.wrapping_mul(fill | 1) >> 7) as u8).collect();

        // Encryption: one shot, incremental and streaming agree byte for byte.
        let (body, info) = encrypt(&key, ty, &plain);
        prop_assert_eq!(body.len(), (len / 16 + 1) * 16 + 10);
        let mut encryptor = Encryptor::new(&key, ty);
        let mut incremental = Vec::new();
        for piece in split(&plain, &enc_chunks) {
            encryptor.update(piece, &mut incremental);
        }
        prop_assert_eq!(&encryptor.finish(&mut incremental), &info);
        prop_assert!(incremental == body);
        let mut streamed = Vec::new();
        let reader = Chunked { data: &plain, chunks: &enc_chunks, calls: 0 };
        prop_assert_eq!(&encrypt_stream(&key, ty, reader, &mut streamed).unwrap(), &info);
        prop_assert!(streamed == body);
        let mut parallel = Vec::new();
        let reader = Chunked { data: &plain, chunks: &enc_chunks, calls: 0 };
        prop_assert_eq!(&encrypt_stream_parallel(&key, ty, reader, &mut parallel).unwrap(), &info);
        prop_assert!(parallel == body);

        // Decryption: buffered, streaming and incremental give the plaintext back.
        let expected = Expected::new().file_sha256(info.file_sha256).file_enc_sha256(info.file_enc_sha256);
        prop_assert!(decrypt(&key, ty, &expected, &body).unwrap() == plain);
        let reader = Chunked { data: &body, chunks: &dec_chunks, calls: 0 };
        let done = decrypt_stream(&key, ty, &expected, reader, Vec::new()).unwrap();
        prop_assert!(done.output == plain);
        prop_assert_eq!(done.file_length, len as u64);
        let mut decryptor = Decryptor::new(&key, ty, &expected, Vec::new());
        for piece in split(&body, &dec_chunks) {
            decryptor.update(piece).unwrap();
        }
        prop_assert!(decryptor.finish().unwrap().output == plain);

        // Ranged, with the sidecar: window by window.
        let sidecar = info.sidecar.clone().unwrap_or_else(|| compute_sidecar(&key, ty, &body));
        prop_assert_eq!(&sidecar, &compute_sidecar(&key, ty, &body));
        let ranged = RangedDecryptor::new(&key, ty, &sidecar, body.len() as u64).unwrap();
        let mut windows = Vec::new();
        for window in 0..ranged.window_count() {
            let range = ranged.window_body_range(window).unwrap();
            ranged.decrypt_window(window, &body[range.start as usize..range.end as usize], &mut windows).unwrap();
        }
        prop_assert!(windows == plain);
    }

    #[test]
    fn any_range_decrypts_to_the_same_bytes(
        len in size(),
        start in any::<prop::sample::Index>(),
        width in 0usize..200_000,
    ) {
        let key = MediaKey::from_bytes([len as u8; 32]);
        let plain: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let (body, info) = encrypt(&key, MediaType::Video, &plain);
        let sidecar = info.sidecar.unwrap();
        let ranged = RangedDecryptor::new(&key, MediaType::Video, &sidecar, body.len() as u64).unwrap();
        let start = start.index(len + 1);
        let end = start + width;
        let mut out = Vec::new();
        let written = ranged
            .decrypt_range(std::io::Cursor::new(&body), start as u64..end as u64, &mut out)
            .unwrap();
        prop_assert_eq!(written as usize, out.len());
        prop_assert!(out == plain[start..end.min(len)]);
    }
}
