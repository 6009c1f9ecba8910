//! The whole history hand-over for each format, step by step: export, encrypt (`wa-media`,
//! `MediaType::History`), decrypt (MAC and both hashes checked), import; then the four in one.
//! The history: 10,000 messages across 50 chats, texts of 20 to 200 characters, 5% media.
//!
//! `cargo bench -p wa-history -- --warm-up-time 1 --measurement-time 3`. The goal is under one
//! second for the total of each format.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark inputs are valid: a failure should stop the run"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wa_history::{Format, export, import};
use wa_media::{Expected, MediaKey, MediaType, decrypt, encrypt};

fn history() -> wa_history::History {
    common::generated_history(
        2020,
        &common::Shape {
            chats: 50,
            messages: 10_000,
            media_percent: 5,
            text_len: (20, 200),
        },
    )
}

fn bench(c: &mut Criterion) {
    let h = history();
    let key = MediaKey::from_bytes([9; 32]);
    for format in Format::ALL {
        let bytes = export(&h, format).unwrap();
        let (body, info) = encrypt(&key, MediaType::History, &bytes);
        let expected = Expected::new()
            .file_sha256(info.file_sha256)
            .file_enc_sha256(info.file_enc_sha256);
        assert_eq!(import(&bytes, format).unwrap(), h);

        let mut group = c.benchmark_group(format!("history/{format}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.sample_size(10);
        group.bench_function("export", |b| {
            b.iter(|| export(black_box(&h), format).unwrap())
        });
        group.bench_function("encrypt", |b| {
            b.iter(|| encrypt(&key, MediaType::History, black_box(&bytes)))
        });
        group.bench_function("decrypt", |b| {
            b.iter(|| decrypt(&key, MediaType::History, &expected, black_box(&body)).unwrap())
        });
        group.bench_function("import", |b| {
            b.iter(|| import(black_box(&bytes), format).unwrap())
        });
        group.bench_function("total", |b| {
            b.iter(|| {
                let bytes = export(black_box(&h), format).unwrap();
                let (body, info) = encrypt(&key, MediaType::History, &bytes);
                let expected = Expected::new()
                    .file_sha256(info.file_sha256)
                    .file_enc_sha256(info.file_enc_sha256);
                let plain = decrypt(&key, MediaType::History, &expected, &body).unwrap();
                import(&plain, format).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
