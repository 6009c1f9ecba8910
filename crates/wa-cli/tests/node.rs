//! `wa node` end to end: the built binary on the node vectors and the corpus (`tests/data/`, links
//! into the repository's `testdata/`) and on bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `tests/data/<name>` of this crate.
fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The bytes of a test data file; a missing file fails the test with its full path.
fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

fn wa(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wa"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may fail before reading all of its input.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn decode_and_encode_every_vector() {
    let vectors: serde_json::Value =
        serde_json::from_slice(&read_file(&data_path("nodes.json"))).unwrap();
    for v in vectors["valid"].as_array().unwrap() {
        let hex = v["hex"].as_str().unwrap();
        if hex.ends_with("...") {
            continue; // the 1 MiB vector is covered by the library tests
        }
        let name = v["name"].as_str().unwrap();
        let out = wa(&["node", "decode", "--hex"], hex.as_bytes());
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json, v["node"], "{name}");
        if let Some(policy) = v["writer_policy"].as_str() {
            let out = wa(
                &["node", "encode", "--policy", policy, "--hex"],
                &out.stdout,
            );
            assert!(out.status.success(), "{name}: {}", stderr(&out));
            assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), hex, "{name}");
        }
    }
}

#[test]
fn raw_bytes_from_a_file_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = data_path("corpus/chats.bin");
    let original = read_file(&corpus);
    let out = wa(&["node", "decode", corpus.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let json = dir.path().join("chats.json");
    std::fs::write(&json, &out.stdout).unwrap();
    let out = wa(
        &[
            "node",
            "encode",
            "--policy",
            "server",
            json.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == original);
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    for (args, input, says) in [
        (
            &["node", "decode", "--hex"][..],
            &b"f801c8"[..],
            "unknown token 200 at byte 2",
        ),
        (
            &["node", "decode", "--hex"],
            b"f80219fe80000000",
            "truncated",
        ),
        (
            &["node", "decode", "--hex"],
            b"f8zz",
            "invalid hex character",
        ),
        (&["node", "decode", "--hex"], b"", "truncated input"),
        (&["node", "decode"], b"\xf8\x01\xf8", "invalid string tag"),
        (&["node", "encode"], b"[\"x\", null]", "invalid node JSON"),
        (
            &["node", "encode"],
            b"[\"\", null, null]",
            "node tag is empty",
        ),
        (
            &["node", "encode"],
            b"[\"x\", null, {\"hex\": \"zz\"}]",
            "bad hex",
        ),
        (
            &["node", "decode", "/nonexistent/file"],
            b"",
            "opening /nonexistent/file",
        ),
    ] {
        let out = wa(args, input);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err:?} should say {says:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err:?}");
    }
}

#[test]
fn hostile_inputs_never_crash_the_command() {
    let nested = "f80219f9ffff".repeat(127);
    let deep = "f80209f801".repeat(100_000);
    for input in [
        "f80100",
        "f801f800",
        "f801faf80003",
        "f801f7000000",
        "f801ff80",
        "",
        "f80219fe80000000",
        "f80119aabb",
        &nested,
        &deep,
    ] {
        let out = wa(&["node", "decode", "--hex"], input.as_bytes());
        let shown = &input[..input.len().min(20)];
        assert_eq!(out.status.code(), Some(1), "{shown}: {}", stderr(&out));
    }
    // Deeply nested JSON is refused by the JSON reader, not a stack overflow.
    let json = format!("{}{}", "[\"a\", null, [".repeat(5000), "]]".repeat(5000));
    let out = wa(&["node", "encode"], json.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn bench_prints_two_machine_readable_lines() {
    let dir = data_path("corpus");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("test data {}: {err}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    for n in ["0", "3"] {
        let mut args = vec!["node", "bench", "--iterations", n];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let out = wa(&args, b"");
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for (line, name) in lines.iter().zip(["decode", "encode"]) {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some(name));
            let fields: std::collections::HashMap<&str, &str> =
                words.map(|w| w.split_once('=').unwrap()).collect();
            assert_eq!(fields["bytes"], total.to_string());
            assert_eq!(fields["iterations"], n);
            let mb: f64 = fields["mb_per_s"].parse().unwrap();
            assert_eq!(mb > 0.0, n != "0", "{line}");
            assert!(fields["nodes"].parse::<u64>().unwrap() > 1000);
        }
    }
    let out = wa(&["node", "bench", "--iterations", "1", "/nonexistent"], b"");
    assert_eq!(out.status.code(), Some(1));
}
