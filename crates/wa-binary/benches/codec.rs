//! Codec throughput on the benchmark corpus: decode, encode (server policy) and `encoded_len`,
//! over the whole corpus and over the attribute-heavy files alone.
//!
//! `cargo bench -p wa-binary` (the corpus is read from `tests/data/corpus/`, links into the
//! repository's `testdata/corpus/`).

#![allow(missing_docs)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark without its corpus has nothing to measure"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wa_binary::{Encoder, Policy};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("test data {}: {err}", dir.display()));
    let mut files: Vec<_> = entries
        .map(|e| {
            let path = e.unwrap().path();
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn bench_set(c: &mut Criterion, group_name: &str, files: &[(String, Vec<u8>)]) {
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let trees: Vec<_> = files
        .iter()
        .map(|(_, b)| wa_binary::decode(b).expect("corpus decodes"))
        .collect();
    let encoder = Encoder::new(Policy::Server);
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for (_, bytes) in files {
                black_box(wa_binary::decode(black_box(bytes)).expect("decodes"));
            }
        })
    });
    let decoder = wa_binary::Decoder::new();
    let mut arena = wa_binary::Arena::new();
    group.bench_function("decode_in_arena", |b| {
        b.iter(|| {
            for (_, bytes) in files {
                black_box(
                    decoder
                        .decode_in(black_box(bytes), &arena)
                        .expect("decodes"),
                );
                arena.reset();
            }
        })
    });
    let mut out = Vec::with_capacity(total);
    group.bench_function("encode", |b| {
        b.iter(|| {
            for tree in &trees {
                out.clear();
                encoder
                    .encode_into(black_box(tree), &mut out)
                    .expect("encodes");
                black_box(&out);
            }
        })
    });
    group.bench_function("encoded_len", |b| {
        b.iter(|| {
            for tree in &trees {
                black_box(encoder.encoded_len(black_box(tree)).expect("encodes"));
            }
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let files = corpus();
    bench_set(c, "corpus", &files);
    for name in ["contacts", "chats"] {
        let one: Vec<_> = files.iter().filter(|(n, _)| n == name).cloned().collect();
        bench_set(c, name, &one);
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
