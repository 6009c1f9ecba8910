//! Hostile input: every flipped byte and every truncation of the golden files, seeded random
//! mutations replayed through the fuzzing hooks, deep nesting, reference cycles, and a binary
//! plist that references one long string from many places.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod common;

use common::*;
use wa_history::fuzzing::{import_android, import_ios};
use wa_history::{Format, History, HistoryMessage, Limits, MessageStatus, Problem, export, import};

const ANDROID: &[u8] = include_bytes!("data/android.json");
const IOS: &[u8] = include_bytes!("data/ios.plist");

fn both_hooks(data: &[u8]) {
    import_android(data);
    import_ios(data);
}

#[test]
fn every_flipped_byte_errors_or_imports_a_valid_history() {
    for (golden, format) in [(ANDROID, Format::Android), (IOS, Format::Ios)] {
        let mut imported = 0;
        let mut rejected = 0;
        for i in 0..golden.len() {
            for mask in [0x01_u8, 0x80, 0xff] {
                let mut data = golden.to_vec();
                data[i] ^= mask;
                // The hook panics if what imports does not round-trip.
                both_hooks(&data);
                match import(&data, format) {
                    Ok(_) => imported += 1,
                    Err(_) => rejected += 1,
                }
            }
        }
        // Most flips break something the strict importers check; some only change a text.
        assert!(
            rejected > imported,
            "{format}: {rejected} rejected, {imported} imported"
        );
        assert!(imported > 0, "{format}: flips inside texts still import");
        eprintln!("{format}: {rejected} flipped exports rejected, {imported} imported");
    }
}

#[test]
fn every_truncation_errors() {
    for (golden, format) in [(ANDROID, Format::Android), (IOS, Format::Ios)] {
        for n in 0..golden.len() {
            assert!(
                import(&golden[..n], format).is_err(),
                "{format}: a {n}-byte prefix imported"
            );
            both_hooks(&golden[..n]);
        }
    }
}

/// One seeded mutation of `data`: bit flips, interesting bytes, insertions, deletions,
/// duplicated runs, splices from `other`.
fn mutate(rng: &mut SplitMix, data: &[u8], other: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] =
        b"\0\x01\x7f\x80\xff\"{}[],:-0123456789eE.\\ntfu\x0f\x10\x50\x5f\xa0\xaf\xd0\xdf";
    let mut out = data.to_vec();
    for _ in 0..=rng.below(4) {
        if out.is_empty() {
            out.push(0);
        }
        let at = rng.below(out.len() as u64) as usize;
        match rng.below(7) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = rng.pick(INTERESTING),
            2 => {
                let len = 1 + rng.below(8) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            3 => {
                let end = (at + 1 + rng.below(16) as usize).min(out.len());
                out.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(32) as usize).min(out.len());
                let run = out[at..end].to_vec();
                out.splice(at..at, run);
            }
            5 => {
                let from = rng.below(other.len() as u64) as usize;
                let end = (from + 1 + rng.below(64) as usize).min(other.len());
                let end_here = (at + (end - from)).min(out.len());
                out.splice(at..end_here, other[from..end].iter().copied());
            }
            _ => {
                // A number somewhere: a timestamp, a status, a count.
                let digits = rng.pick(&[
                    &b"0"[..],
                    b"-1",
                    b"13",
                    b"4102444800",
                    b"18446744073709551616",
                    b"1e309",
                ]);
                out.splice(at..(at + 1).min(out.len()), digits.iter().copied());
            }
        }
    }
    out
}

#[test]
fn seeded_mutations_of_the_golden_files_through_both_hooks() {
    let mut rng = SplitMix::new(0x5eed_0f41_570e);
    let mut imported = 0;
    for i in 0..500 {
        let (data, other) = if i % 2 == 0 {
            (ANDROID, IOS)
        } else {
            (IOS, ANDROID)
        };
        let mutated = mutate(&mut rng, data, other);
        both_hooks(&mutated);
        if import(&mutated, Format::Android).is_ok() || import(&mutated, Format::Ios).is_ok() {
            imported += 1;
        }
    }
    assert!(imported < 500, "mutations are detected");
}

// ---------------------------------------------------------------------------------------------
// Nesting and references.

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    for prefix in [
        "{\"version\":1,\"jid\":",
        "{\"version\":1,\"messages\":[{\"data\":",
        "{\"version\":1,\"messages\":",
        "",
    ] {
        let mut doc = prefix.to_owned();
        doc.push_str(&"[".repeat(depth));
        doc.push_str(&"]".repeat(depth));
        let e = import(doc.as_bytes(), Format::Android).unwrap_err();
        assert!(
            matches!(
                e.problem(),
                Problem::Malformed { .. } | Problem::WrongType { .. }
            ),
            "{e}"
        );
        both_hooks(doc.as_bytes());
    }
}

/// Hand-made binary property lists (4-byte references, 8-byte offsets), for shapes plist's own
/// writer would never produce.
struct Bplist {
    objects: Vec<Vec<u8>>,
}

impl Bplist {
    fn new() -> Self {
        Self {
            objects: Vec::new(),
        }
    }

    fn add(&mut self, object: Vec<u8>) -> u32 {
        self.objects.push(object);
        self.objects.len() as u32 - 1
    }

    fn marker(kind: u8, len: usize) -> Vec<u8> {
        if len < 15 {
            vec![kind << 4 | len as u8]
        } else {
            let mut out = vec![kind << 4 | 0x0f, 0x13];
            out.extend_from_slice(&(len as u64).to_be_bytes());
            out
        }
    }

    fn string(&mut self, s: &str) -> u32 {
        let mut o = Self::marker(0x5, s.len());
        o.extend_from_slice(s.as_bytes());
        self.add(o)
    }

    fn array(refs: &[u32]) -> Vec<u8> {
        let mut o = Self::marker(0xa, refs.len());
        for r in refs {
            o.extend_from_slice(&r.to_be_bytes());
        }
        o
    }

    fn dict(keys: &[u32], values: &[u32]) -> Vec<u8> {
        let mut o = Self::marker(0xd, keys.len());
        for r in keys.iter().chain(values) {
            o.extend_from_slice(&r.to_be_bytes());
        }
        o
    }

    fn finish(self, root: u32) -> Vec<u8> {
        let mut out = b"bplist00".to_vec();
        let mut offsets = Vec::new();
        for o in &self.objects {
            offsets.push(out.len() as u64);
            out.extend_from_slice(o);
        }
        let table = out.len() as u64;
        for off in offsets {
            out.extend_from_slice(&off.to_be_bytes());
        }
        out.extend_from_slice(&[0; 6]);
        out.push(8); // offset size
        out.push(4); // reference size
        out.extend_from_slice(&(self.objects.len() as u64).to_be_bytes());
        out.extend_from_slice(&u64::from(root).to_be_bytes());
        out.extend_from_slice(&table.to_be_bytes());
        out
    }
}

/// A root dictionary `{key: chain}` where chain is `depth` arrays nested in one another.
fn deep_chain(key: &str, depth: u32) -> Vec<u8> {
    let mut b = Bplist::new();
    let root = b.add(Vec::new());
    let k = b.string(key);
    let first = b.objects.len() as u32;
    for i in 0..depth {
        let next = first + i + 1;
        let refs: &[u32] = if i + 1 == depth { &[] } else { &[next] };
        b.add(Bplist::array(refs));
    }
    b.objects[root as usize] = Bplist::dict(&[k], &[first]);
    b.finish(root)
}

#[test]
fn deeply_nested_plists_are_an_error_not_a_stack_overflow() {
    // The walk stops at the first event that does not fit the format's three levels.
    let data = deep_chain("ZWAMESSAGE", 200_000);
    let e = import(&data, Format::Ios).unwrap_err();
    assert_eq!(e.at(), "ZWAMESSAGE[0]", "{e}");
    assert!(
        matches!(
            e.problem(),
            Problem::WrongType {
                expected: "a dictionary",
                ..
            }
        ),
        "{e}"
    );
    let e = import(&deep_chain("ZUNKNOWN", 200_000), Format::Ios).unwrap_err();
    assert!(matches!(e.problem(), Problem::UnknownField(_)), "{e}");
    let e = import(&deep_chain("ZOWNERJID", 200_000), Format::Ios).unwrap_err();
    assert!(
        matches!(
            e.problem(),
            Problem::WrongType {
                expected: "a string",
                ..
            }
        ),
        "{e}"
    );
    both_hooks(&data);
}

#[test]
fn reference_cycles_are_an_error() {
    // {ZWAMESSAGE: A} where A = [A].
    let mut b = Bplist::new();
    let root = b.add(Vec::new());
    let k = b.string("ZWAMESSAGE");
    let a = b.add(Vec::new());
    b.objects[a as usize] = Bplist::array(&[a]);
    b.objects[root as usize] = Bplist::dict(&[k], &[a]);
    let data = b.finish(root);
    assert!(import(&data, Format::Ios).is_err());
    // A dictionary that holds itself at the root.
    let mut b = Bplist::new();
    let k = b.string("ZWAMESSAGE");
    let root = b.add(Vec::new());
    b.objects[root as usize] = Bplist::dict(&[k], &[root]);
    let data = b.finish(root);
    assert!(import(&data, Format::Ios).is_err());
    both_hooks(&data);
}

#[test]
fn a_declared_array_length_over_the_limit_is_refused_before_any_entry() {
    // ZWAMESSAGE holds 11 references to a string: were entries read first, the error would
    // be a wrong type at ZWAMESSAGE[0].
    let mut b = Bplist::new();
    let root = b.add(Vec::new());
    let k = b.string("ZWAMESSAGE");
    let s = b.string("not a message");
    let arr = b.add(Bplist::array(&[s; 11]));
    b.objects[root as usize] = Bplist::dict(&[k], &[arr]);
    let data = b.finish(root);
    let limits = Limits::default().with_max_messages(10);
    let e = wa_history::import_with_limits(&data, Format::Ios, &limits).unwrap_err();
    assert_eq!(e.at(), "ZWAMESSAGE");
    assert!(
        matches!(e.problem(), Problem::TooMany { max: 10, .. }),
        "{e}"
    );
    // A declared length of 2^40 entries in a small file is plist's own error, found before
    // anything is allocated for the entries.
    let mut b = Bplist::new();
    let root = b.add(Vec::new());
    let k = b.string("ZWAMESSAGE");
    let mut huge = vec![0xaf, 0x13];
    huge.extend_from_slice(&(1_u64 << 40).to_be_bytes());
    huge.extend_from_slice(&[0; 16]);
    let arr = b.add(huge);
    b.objects[root as usize] = Bplist::dict(&[k], &[arr]);
    let e = import(&b.finish(root), Format::Ios).unwrap_err();
    assert_eq!(e.at(), "ZWAMESSAGE");
    assert!(matches!(e.problem(), Problem::Malformed { .. }), "{e}");
}

#[test]
fn one_string_referenced_many_times_is_bounded_by_max_bytes() {
    // plist's writer stores equal strings once: 400 messages with the same 60 KB text make a
    // small file that decodes to 24 MB.
    let mut h = fixed_history();
    let chat = h.chats[0].jid.clone();
    let long = "x".repeat(60_000);
    for i in 0..400 {
        h.messages.push(HistoryMessage::new(
            chat.clone(),
            format!("LONG{i}"),
            false,
            1_600_000_000 + i,
            MessageStatus::Read,
            text(&long),
        ));
    }
    h.sort_messages();
    let bytes = export(&h, Format::Ios).unwrap();
    assert!(bytes.len() < 100_000, "{} bytes", bytes.len());
    let limits = Limits::default().with_max_bytes(1 << 20);
    let e = wa_history::import_with_limits(&bytes, Format::Ios, &limits).unwrap_err();
    assert!(
        matches!(e.problem(), Problem::DecodedTooLarge { .. }),
        "{e}"
    );
    assert!(e.at().starts_with("ZWAMESSAGE["), "{e}");
    // Within the default limits it is an ordinary history.
    let back: History = import(&bytes, Format::Ios).unwrap();
    assert_eq!(back, h);
}
