//! `wa keys` and `wa frame` against the vectors (`tests/data/`, links into the repository's
//! `testdata/`), run as the built binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

/// The parsed JSON of `tests/data/<name>`; a missing file fails the test with its full path.
fn vectors(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))
}

/// Runs `wa` with `args`, feeding `stdin`.
fn wa(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wa"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A usage error exits before reading: a broken pipe here is not the test's concern.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn ok_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "status {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Exit 1 with one `wa: ...` line on stderr that contains `needle`.
fn fails_with(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.starts_with("wa: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
}

fn keys_args(login: &Value) -> [String; 4] {
    [
        "--enc-key".into(),
        s(login, "enc_key_hex").into(),
        "--mac-key".into(),
        s(login, "mac_key_hex").into(),
    ]
}

/// The JSON form of the frame vector's node, as `wa node decode` prints it (attributes in wire
/// order: a `Value` would sort them, and the encoding would change).
fn frame_node_json(frame: &Value) -> String {
    let bytes = hex::decode(s(frame, "node_hex")).unwrap();
    serde_json::to_string(&wa_binary::decode(&bytes).unwrap()).unwrap()
}

#[test]
fn keys_derive_matches_the_vector() {
    let login = vectors("crypto.json")["login"].clone();
    let output = wa(
        &[
            "keys",
            "derive",
            "--private-key",
            s(&login, "client_private_hex"),
            "--secret",
            s(&login, "secret_b64"),
        ],
        b"",
    );
    assert_eq!(
        ok_json(&output),
        json!({"enc_key": login["enc_key_hex"], "mac_key": login["mac_key_hex"]})
    );
}

#[test]
fn keys_derive_rejects_bad_secrets() {
    let login = vectors("crypto.json")["login"].clone();
    let derive = |private: &str, secret: &str| {
        wa(
            &[
                "keys",
                "derive",
                "--private-key",
                private,
                "--secret",
                secret,
            ],
            b"",
        )
    };
    let private = s(&login, "client_private_hex");
    fails_with(
        &derive(private, s(&login, "secret_with_flipped_bit_b64")),
        "HMAC mismatch",
    );
    fails_with(&derive(private, "@@@"), "bad secret");
    fails_with(&derive(private, "AAAA"), "144");
    fails_with(&derive("0102", s(&login, "secret_b64")), "private key");
    fails_with(&derive("zz", s(&login, "secret_b64")), "private key");
}

#[test]
fn frame_encode_reproduces_the_vector() {
    let crypto = vectors("crypto.json");
    let frame = &crypto["frame"];
    let dir = tempfile::tempdir().unwrap();
    let node_path = dir.path().join("node.json");
    std::fs::write(&node_path, frame_node_json(frame)).unwrap();

    let mut args: Vec<String> = vec!["frame".into(), "encode".into()];
    args.extend(keys_args(&crypto["login"]));
    args.extend([
        "--iv".into(),
        s(frame, "iv_hex").into(),
        "--tag".into(),
        s(frame, "tag").into(),
        "--metric".into(),
        frame["metric"].to_string(),
        "--flags".into(),
        frame["flags"].to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Hex output, node from a file.
    let hex_args = [&args[..], &["--hex", node_path.to_str().unwrap()]].concat();
    let output = wa(&hex_args, b"");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        s(frame, "client_to_server_hex")
    );

    // Raw output, node from standard input, metric and flags by name and in hex.
    let mut named = args.clone();
    let metric_at = named.iter().position(|a| *a == "--metric").unwrap();
    named[metric_at + 1] = "presence";
    let flags_at = named.iter().position(|a| *a == "--flags").unwrap();
    named[flags_at + 1] = "0xa0";
    let output = wa(&named, frame_node_json(frame).as_bytes());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(hex::encode(output.stdout), s(frame, "client_to_server_hex"));
}

#[test]
fn frame_encode_rejects_bad_input() {
    let crypto = vectors("crypto.json");
    let frame = &crypto["frame"];
    let keys = keys_args(&crypto["login"]);
    let encode = |iv: &str, tag: &str, stdin: &[u8]| {
        let mut args = vec!["frame", "encode"];
        args.extend(keys.iter().map(String::as_str));
        args.extend(["--iv", iv, "--tag", tag, "--metric", "8", "--flags", "160"]);
        wa(&args, stdin)
    };
    let node = frame_node_json(frame);
    fails_with(&encode("0011", "t", node.as_bytes()), "--iv");
    fails_with(
        &encode(s(frame, "iv_hex"), "a,b", node.as_bytes()),
        "bad --tag",
    );
    fails_with(
        &encode(s(frame, "iv_hex"), "t", b"{not json"),
        "invalid node JSON",
    );
    // Usage errors are clap's (exit 2), not a panic.
    let mut args = vec!["frame", "encode"];
    args.extend(keys.iter().map(String::as_str));
    args.extend([
        "--iv",
        s(frame, "iv_hex"),
        "--tag",
        "t",
        "--metric",
        "NOPE",
        "--flags",
        "1",
    ]);
    assert_eq!(wa(&args, node.as_bytes()).status.code(), Some(2));
}

#[test]
fn frame_decode_client_and_server_forms() {
    let crypto = vectors("crypto.json");
    let frame = &crypto["frame"];
    let keys = keys_args(&crypto["login"]);
    let node: Value = serde_json::from_str(&frame_node_json(frame)).unwrap();

    let mut args = vec!["frame", "decode", "--from", "client", "--hex"];
    args.extend(keys.iter().map(String::as_str));
    let output = wa(&args, s(frame, "client_to_server_hex").as_bytes());
    let decoded = ok_json(&output);
    assert_eq!(
        decoded,
        json!({"tag": frame["tag"], "kind": "binary", "metric": 8, "flags": 160, "node": node})
    );
    // Fields in the documented order.
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(
            r#"{"tag":"1589356438.--1","kind":"binary","metric":8,"flags":160,"node":"#
        )
    );

    // The server form, raw bytes from a file, `--from server` being the default.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frame.bin");
    std::fs::write(
        &path,
        hex::decode(s(frame, "server_to_client_hex")).unwrap(),
    )
    .unwrap();
    let mut args = vec!["frame", "decode"];
    args.extend(keys.iter().map(String::as_str));
    args.push(path.to_str().unwrap());
    assert_eq!(
        ok_json(&wa(&args, b"")),
        json!({"tag": frame["tag"], "kind": "binary", "node": node})
    );
}

#[test]
fn frame_decode_session_frames() {
    let crypto = vectors("crypto.json");
    let session = vectors("session.json");
    let keys = keys_args(&crypto["login"]);
    let mut args = vec!["frame", "decode", "--hex"];
    args.extend(keys.iter().map(String::as_str));

    let mut with_node = 0;
    for frame in session["binary"].as_array().unwrap() {
        let decoded = ok_json(&wa(&args, s(frame, "hex").as_bytes()));
        assert_eq!(decoded["kind"], "binary");
        assert!(decoded.get("metric").is_none());
        if let Some(node) = frame.get("node") {
            assert_eq!(&decoded["node"], node, "{}", frame["meaning"]);
            with_node += 1;
        }
    }
    assert!(with_node > 0);

    let tampered = s(&session["binary_tampered"], "hex");
    fails_with(&wa(&args, tampered.as_bytes()), "frame MAC mismatch");
    // Without keys a binary frame cannot be opened.
    fails_with(
        &wa(&["frame", "decode", "--hex"], tampered.as_bytes()),
        "--enc-key",
    );
    // Read as a client frame, two bytes go to metric and flags: the rest is not whole blocks.
    let mut client = args.clone();
    client.extend(["--from", "client"]);
    fails_with(&wa(&client, tampered.as_bytes()), "not a multiple of 16");
}

#[test]
fn frame_decode_text_messages() {
    let decode = |text: &str| ok_json(&wa(&["frame", "decode"], text.as_bytes()));
    assert_eq!(
        decode("s7,[\"Stream\",\"asleep\"]\n"),
        json!({"tag": "s7", "kind": "json", "json": ["Stream", "asleep"]})
    );
    assert_eq!(
        decode("1.--0,,{\"status\":200}"),
        json!({"tag": "1.--0", "kind": "json", "json": {"status": 200}})
    );
    assert_eq!(decode("s14,\r\n"), json!({"tag": "s14", "kind": "empty"}));
    assert_eq!(
        decode("!1589356440123"),
        json!({"kind": "pong", "server_time_ms": 1_589_356_440_123u64})
    );
    assert_eq!(decode("?,,"), json!({"kind": "keepalive"}));

    fails_with(&wa(&["frame", "decode"], b"no comma"), "invalid frame");
    fails_with(&wa(&["frame", "decode"], b"t,{broken"), "JSON");
    fails_with(
        &wa(&["frame", "decode", "--opcode", "text"], b"\xff,x"),
        "UTF-8",
    );
    // Forced binary: the text is a (too short) sealed payload, not JSON.
    let login = vectors("crypto.json")["login"].clone();
    let mut args = vec!["frame", "decode", "--opcode", "binary"];
    let keys = keys_args(&login);
    args.extend(keys.iter().map(String::as_str));
    fails_with(&wa(&args, b"s1,[1]"), "at least 64");
}
