//! Throughput of `SessionKeys::open` and `SessionKeys::seal` at 64 B, 1 KiB, 16 KiB and 1 MiB of
//! plaintext, next to the two primitives they are made of (AES-256-CBC and HMAC-SHA256 through
//! the same crates), so the cost of the frame code itself is visible.
//!
//! The reference is OpenSSL on the same machine in the same run (see
//! `notes/wa-crypto-BENCHMARKS.md` for the commands):
//! `openssl speed -evp aes-256-cbc -decrypt` and `openssl speed -hmac sha256`.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark that fails should stop loudly"
)]

use std::hint::black_box;

use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wa_crypto::{SessionKeys, cpu_acceleration, hmac_sha256};

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

fn label(size: usize) -> String {
    match size {
        s if s >= 1024 * 1024 => format!("{}MiB", s / (1024 * 1024)),
        s if s >= 1024 => format!("{}KiB", s / 1024),
        s => format!("{s}B"),
    }
}

fn plaintext(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn frames(c: &mut Criterion) {
    let accel = cpu_acceleration();
    eprintln!(
        "wa-crypto: AES hardware acceleration: {}, SHA-256: {}",
        accel.aes, accel.sha256
    );

    let keys = SessionKeys::new(&[0xa0; 32], &[0xb0; 32]);
    let iv = [0x10; 16];

    let mut open = c.benchmark_group("open");
    for size in SIZES {
        let sealed = keys.seal(&plaintext(size), &iv);
        let mut out = Vec::with_capacity(size + 16);
        open.throughput(Throughput::Bytes(size as u64));
        open.bench_with_input(
            BenchmarkId::from_parameter(label(size)),
            &sealed,
            |b, sealed| {
                b.iter(|| {
                    out.clear();
                    keys.open_into(black_box(sealed), &mut out).unwrap();
                    black_box(&out);
                })
            },
        );
    }
    open.finish();

    let mut seal = c.benchmark_group("seal");
    for size in SIZES {
        let plain = plaintext(size);
        let mut out = Vec::with_capacity(wa_crypto::sealed_len(size));
        seal.throughput(Throughput::Bytes(size as u64));
        seal.bench_with_input(
            BenchmarkId::from_parameter(label(size)),
            &plain,
            |b, plain| {
                b.iter(|| {
                    out.clear();
                    keys.seal_into(black_box(plain), &iv, &mut out);
                    black_box(&out);
                })
            },
        );
    }
    seal.finish();
}

/// The primitives alone, as `openssl speed` measures them (no allocation, no copy).
fn primitives(c: &mut Criterion) {
    let size = 16 * 1024;
    let data = plaintext(size);

    let mut group = c.benchmark_group("primitives");
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("aes-256-cbc-decrypt/16KiB", |b| {
        let mut buf = data.clone();
        b.iter(|| {
            let (blocks, _) = aes::Block::slice_as_chunks_mut(&mut buf);
            cbc::Decryptor::<aes::Aes256Dec>::new(&[0xa0; 32].into(), &[0x10; 16].into())
                .decrypt_blocks(blocks);
            black_box(&buf);
        })
    });
    group.bench_function("hmac-sha256/16KiB", |b| {
        b.iter(|| black_box(hmac_sha256(&[0xb0; 32], black_box(&data))))
    });
    group.finish();
}

criterion_group!(benches, frames, primitives);
criterion_main!(benches);
