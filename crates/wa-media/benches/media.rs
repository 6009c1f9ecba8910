//! Encryption and decryption throughput at 1 MiB and 64 MiB, next to the bare primitives
//! (AES-256-CBC then HMAC-SHA256, the work OpenSSL's reference does) measured in the same run.
//!
//! `cargo bench -p wa-media --bench media`; the OpenSSL comparison itself is in
//! `notes/wa-media-BENCHMARKS.md` (it runs the `wa` binary and `openssl` on the same file).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark inputs are valid: a failure should stop the run"
)]

use std::hint::black_box;
use std::io;

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit, array::Array};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wa_media::{
    Expected, MediaKey, MediaType, Sink, decrypt, decrypt_stream, encrypt, encrypt_stream,
    encrypt_stream_parallel,
};

/// A sink that counts and drops: measures decryption, not memory allocation.
struct Discard(u64);

impl Sink for Discard {
    type Output = u64;

    fn write(&mut self, plaintext: &[u8]) -> io::Result<()> {
        self.0 += black_box(plaintext).len() as u64;
        Ok(())
    }

    fn commit(self) -> io::Result<u64> {
        Ok(self.0)
    }
}

fn sizes() -> [(usize, &'static str); 2] {
    [(1 << 20, "1MiB"), (64 << 20, "64MiB")]
}

fn input(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The floor: AES-256-CBC over the data, then HMAC-SHA256 over the ciphertext, with the same
/// RustCrypto primitives and no hashing of files, sidecar or padding logic.
fn primitives(key: &[u8; 32], data: &mut [u8]) -> [u8; 32] {
    let aes = aes::Aes256::new(&(*key).into());
    let mut cbc = cbc::Encryptor::<aes::Aes256>::inner_iv_init(aes, &[0; 16].into());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for chunk in data.chunks_mut(64 * 1024) {
        let (blocks, _) = Array::slice_as_chunks_mut(chunk);
        cbc.encrypt_blocks(blocks);
        mac.update(chunk);
    }
    mac.finalize().into_bytes().into()
}

/// Each primitive on its own, over 1 MiB in 64 KiB chunks: where the time goes.
fn bench_primitives(c: &mut Criterion) {
    let mut data = input(1 << 20);
    let mut group = c.benchmark_group("primitives/1MiB");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("aes-256-cbc encrypt", |b| {
        let aes = aes::Aes256::new(&[7; 32].into());
        let mut cbc = cbc::Encryptor::<aes::Aes256>::inner_iv_init(aes, &[0; 16].into());
        b.iter(|| {
            for chunk in data.chunks_mut(64 * 1024) {
                cbc.encrypt_blocks(Array::slice_as_chunks_mut(chunk).0);
            }
        })
    });
    group.bench_function("aes-256-cbc decrypt", |b| {
        let aes = aes::Aes256::new(&[7; 32].into());
        let mut cbc = cbc::Decryptor::<aes::Aes256>::inner_iv_init(aes, &[0; 16].into());
        b.iter(|| {
            for chunk in data.chunks_mut(64 * 1024) {
                cbc.decrypt_blocks(Array::slice_as_chunks_mut(chunk).0);
            }
        })
    });
    group.bench_function("sha256", |b| {
        b.iter(|| <Sha256 as sha2::Digest>::digest(&data))
    });
    group.bench_function("hmac-sha256", |b| {
        b.iter(|| {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[7; 32]).unwrap();
            mac.update(&data);
            mac.finalize().into_bytes()
        })
    });
    group.finish();
}

/// The decryption floor: HMAC-SHA256 over the ciphertext, then AES-256-CBC decryption.
fn primitives_decrypt(key: &[u8; 32], data: &[u8], out: &mut [u8]) -> [u8; 32] {
    let aes = aes::Aes256::new(&(*key).into());
    let mut cbc = cbc::Decryptor::<aes::Aes256>::inner_iv_init(aes, &[0; 16].into());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for (chunk, out) in data.chunks(64 * 1024).zip(out.chunks_mut(64 * 1024)) {
        mac.update(chunk);
        out.copy_from_slice(chunk);
        cbc.decrypt_blocks(Array::slice_as_chunks_mut(out).0);
    }
    mac.finalize().into_bytes().into()
}

fn bench_encrypt(c: &mut Criterion) {
    let key = MediaKey::from_bytes([0x42; 32]);
    for (len, name) in sizes() {
        let plain = input(len);
        let mut group = c.benchmark_group(format!("encrypt/{name}"));
        group.throughput(Throughput::Bytes(len as u64));
        if len > 16 << 20 {
            group.sample_size(10);
        }
        group.bench_function("primitives (aes-cbc + hmac)", |b| {
            let mut data = plain.clone();
            b.iter(|| primitives(&[7; 32], &mut data))
        });
        for ty in [MediaType::Document, MediaType::Video] {
            group.bench_function(BenchmarkId::new("encrypt_stream", ty), |b| {
                b.iter(|| encrypt_stream(&key, ty, &plain[..], io::sink()).unwrap())
            });
        }
        for ty in [MediaType::Document, MediaType::Video] {
            group.bench_function(BenchmarkId::new("encrypt_stream_parallel", ty), |b| {
                b.iter(|| encrypt_stream_parallel(&key, ty, &plain[..], io::sink()).unwrap())
            });
        }
        group.bench_function("encrypt (in memory, document)", |b| {
            b.iter(|| encrypt(&key, MediaType::Document, &plain))
        });
        group.finish();
    }
}

fn bench_decrypt(c: &mut Criterion) {
    let key = MediaKey::from_bytes([0x42; 32]);
    for (len, name) in sizes() {
        let (body, info) = encrypt(&key, MediaType::Document, &input(len));
        let hashes = Expected::new()
            .file_sha256(info.file_sha256)
            .file_enc_sha256(info.file_enc_sha256);
        let mut group = c.benchmark_group(format!("decrypt/{name}"));
        group.throughput(Throughput::Bytes(len as u64));
        if len > 16 << 20 {
            group.sample_size(10);
        }
        group.bench_function("primitives (hmac + aes-cbc)", |b| {
            let mut out = vec![0; body.len() - 10];
            b.iter(|| primitives_decrypt(&[7; 32], &body[..body.len() - 10], &mut out))
        });
        for (checks, expected) in [("mac", Expected::new()), ("mac+hashes", hashes)] {
            group.bench_function(BenchmarkId::new("decrypt_stream", checks), |b| {
                b.iter(|| {
                    decrypt_stream(&key, MediaType::Document, &expected, &body[..], Discard(0))
                        .unwrap()
                })
            });
            group.bench_function(BenchmarkId::new("decrypt (in memory)", checks), |b| {
                b.iter(|| decrypt(&key, MediaType::Document, &expected, &body).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_primitives, bench_encrypt, bench_decrypt);
criterion_main!(benches);
