//! `wa media` against the real samples of `tests/data/media/` (links into the repository's
//! `testdata/media/`), run as the built binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The path of the sample `tests/data/media/<name>`; a missing file fails the test with its full
/// path (rather than as an error of the command it is given to).
fn media(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/media")
        .join(name);
    assert!(path.is_file(), "test data {}: not found", path.display());
    path
}

/// The bytes of the sample `tests/data/media/<name>`.
fn read_media(name: &str) -> Vec<u8> {
    let path = media(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

/// The three samples of `media.json`.
fn samples() -> Vec<Value> {
    let entries: Value = serde_json::from_slice(&read_media("media.json")).unwrap();
    let entries = entries.as_array().unwrap().clone();
    assert_eq!(entries.len(), 3);
    entries
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn wa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wa"))
        .args(args)
        .output()
        .unwrap()
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

/// The names of the files in `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn encrypt_gives_the_exact_bodies_and_message_fields() {
    let dir = tempfile::tempdir().unwrap();
    for sample in samples() {
        let kind = s(&sample, "kind");
        let out = dir.path().join(format!("{kind}.enc"));
        let key = s(&sample, "media_key_hex");
        let plain = media(s(&sample, "plaintext_file"));
        let json = ok_json(&wa(&[
            "media",
            "encrypt",
            "--type",
            kind,
            "--key",
            key,
            path(&plain),
            path(&out),
        ]));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            read_media(s(&sample, "encrypted_file"))
        );
        assert_eq!(json["media_key"], b64(&hex::decode(key).unwrap()));
        assert_eq!(json["file_sha256"], sample["fileSha256"]);
        assert_eq!(json["file_enc_sha256"], sample["fileEncSha256"]);
        assert_eq!(
            json["file_length"],
            std::fs::metadata(&plain).unwrap().len()
        );
        let sidecar = hex::decode(s(&sample, "sidecar_hex")).unwrap();
        match kind {
            "image" => assert!(json.get("sidecar").is_none(), "{json}"),
            _ => assert_eq!(json["sidecar"], b64(&sidecar), "{kind}"),
        }
    }
    let video_sidecar = read_media("VIDEO.sidecar");
    let json = ok_json(&wa(&[
        "media",
        "encrypt",
        "--type",
        "Gif",
        "--key",
        &b64(&read_media("VIDEO.key")),
        path(&media("VIDEO.mp4")),
        path(&dir.path().join("gif.enc")),
    ]));
    assert_eq!(json["sidecar"], b64(&video_sidecar));
}

#[test]
fn decrypt_gives_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    for sample in samples() {
        let kind = s(&sample, "kind");
        let out = dir.path().join(kind);
        let key_b64 = b64(&hex::decode(s(&sample, "media_key_hex")).unwrap());
        let json = ok_json(&wa(&[
            "media",
            "decrypt",
            "--type",
            &kind.to_uppercase(),
            "--key",
            &key_b64,
            "--file-sha256",
            s(&sample, "fileSha256"),
            "--file-enc-sha256",
            s(&sample, "fileEncSha256"),
            path(&media(s(&sample, "encrypted_file"))),
            path(&out),
        ]));
        let original = read_media(s(&sample, "plaintext_file"));
        assert!(std::fs::read(&out).unwrap() == original, "{kind}");
        assert_eq!(json["file_length"], original.len());
        assert_eq!(
            json["checked"],
            serde_json::json!(["mac", "file_enc_sha256", "file_sha256"])
        );

        // Hex key, no hashes: the MAC alone.
        let out = dir.path().join(format!("{kind}.2"));
        let json = ok_json(&wa(&[
            "media",
            "decrypt",
            "--type",
            kind,
            "--key",
            s(&sample, "media_key_hex"),
            path(&media(s(&sample, "encrypted_file"))),
            path(&out),
        ]));
        assert_eq!(json["checked"], serde_json::json!(["mac"]));
        assert!(std::fs::read(&out).unwrap() == original);
    }
    assert_eq!(
        files(dir.path()).len(),
        6,
        "no temporary files left: {:?}",
        files(dir.path())
    );
}

#[test]
fn a_random_key_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("voice.ogg");
    std::fs::write(
        &plain,
        (0..100_000u32).map(|i| (i % 241) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let enc = dir.path().join("voice.enc");
    let first = ok_json(&wa(&[
        "media",
        "encrypt",
        "--type",
        "ptt",
        path(&plain),
        path(&enc),
    ]));
    let key = first["media_key"].as_str().unwrap();
    assert_eq!(key.len(), 44);
    assert!(first["sidecar"].is_string(), "voice notes are streamable");

    let again = dir.path().join("voice2.enc");
    let second = ok_json(&wa(&[
        "media",
        "encrypt",
        "--type",
        "voice",
        path(&plain),
        path(&again),
    ]));
    assert_ne!(
        first["media_key"], second["media_key"],
        "a fresh key each time"
    );
    assert_eq!(first["file_sha256"], second["file_sha256"]);

    let out = dir.path().join("voice.out");
    ok_json(&wa(&[
        "media",
        "decrypt",
        "--type",
        "audio",
        "--key",
        key,
        "--file-enc-sha256",
        first["file_enc_sha256"].as_str().unwrap(),
        path(&enc),
        path(&out),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());
}

#[test]
fn empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("empty");
    std::fs::write(&plain, b"").unwrap();
    let enc = dir.path().join("empty.enc");
    let key = "00".repeat(32);
    let json = ok_json(&wa(&[
        "media",
        "encrypt",
        "--type",
        "document",
        "--key",
        &key,
        path(&plain),
        path(&enc),
    ]));
    assert_eq!(json["file_length"], 0);
    assert_eq!(
        json["file_sha256"],
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    assert_eq!(std::fs::metadata(&enc).unwrap().len(), 26);
    let out = dir.path().join("empty.out");
    ok_json(&wa(&[
        "media",
        "decrypt",
        "--type",
        "document",
        "--key",
        &key,
        path(&enc),
        path(&out),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), b"");

    // An empty encrypted file is not a body.
    let out = dir.path().join("nothing");
    fails_with(
        &wa(&[
            "media",
            "decrypt",
            "--type",
            "document",
            "--key",
            &key,
            path(&plain),
            path(&out),
        ]),
        "too short: 0 bytes",
    );
    assert!(!out.exists());
}

#[test]
fn failed_checks_leave_no_output_behind() {
    let dir = tempfile::tempdir().unwrap();
    let video = &samples()[2];
    assert_eq!(s(video, "kind"), "video");
    let key = s(video, "media_key_hex");
    let body = read_media("videoEnc.mp4");
    let out = dir.path().join("out.mp4");

    for (flip, why) in [
        (0, "MAC mismatch"),
        (200_000, "MAC mismatch"),
        (body.len() - 1, "MAC mismatch"),
    ] {
        let mut bad = body.clone();
        bad[flip] ^= 1;
        let input = dir.path().join("bad.enc");
        std::fs::write(&input, &bad).unwrap();
        fails_with(
            &wa(&[
                "media",
                "decrypt",
                "--type",
                "video",
                "--key",
                key,
                path(&input),
                path(&out),
            ]),
            why,
        );
        assert_eq!(files(dir.path()), ["bad.enc"], "only the input is left");
    }

    let input = dir.path().join("good.enc");
    std::fs::write(&input, &body).unwrap();
    let wrong_plain = b64(&[0; 32]);
    for (args, why) in [
        (
            ["--file-sha256", wrong_plain.as_str()],
            "fileSha256 mismatch",
        ),
        (
            ["--file-enc-sha256", wrong_plain.as_str()],
            "fileEncSha256 mismatch",
        ),
        (
            ["--file-enc-sha256", "AAAA"],
            "bad --file-enc-sha256: expected base64 of 32 bytes, got 3 bytes",
        ),
        (
            ["--file-sha256", "!!"],
            "bad --file-sha256: expected base64 of 32 bytes",
        ),
    ] {
        let mut all = vec!["media", "decrypt", "--type", "video", "--key", key];
        all.extend(args);
        all.extend([path(&input), path(&out)]);
        fails_with(&wa(&all), why);
        assert_eq!(files(dir.path()), ["bad.enc", "good.enc"]);
    }

    // Wrong type: the keys differ, so the MAC does.
    fails_with(
        &wa(&[
            "media",
            "decrypt",
            "--type",
            "image",
            "--key",
            key,
            path(&input),
            path(&out),
        ]),
        "MAC mismatch",
    );
    // A file that was there before a failed decryption is left as it was.
    std::fs::write(&out, b"keep me").unwrap();
    let bad = dir.path().join("bad.enc");
    fails_with(
        &wa(&[
            "media",
            "decrypt",
            "--type",
            "video",
            "--key",
            key,
            path(&bad),
            path(&out),
        ]),
        "MAC mismatch",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    assert_eq!(files(dir.path()), ["bad.enc", "good.enc", "out.mp4"]);
}

#[test]
fn bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = media("IMAGE.jpeg");
    let run = |key: &str| {
        wa(&[
            "media",
            "encrypt",
            "--type",
            "image",
            "--key",
            key,
            path(&input),
            path(&out),
        ])
    };
    fails_with(
        &run("abc"),
        "expected 32 bytes as 64 hex digits or 44 base64 characters, got 3 characters",
    );
    fails_with(
        &run(&"zz".repeat(32)),
        "bad --key: 64 characters, so expected hex (32 bytes)",
    );
    fails_with(
        &run(&"*".repeat(44)),
        "bad --key: 44 characters, so expected base64 of 32 bytes",
    );
    fails_with(&run(&"0".repeat(66)), "got 66 characters");
    fails_with(
        &wa(&[
            "media",
            "encrypt",
            "--type",
            "image",
            path(&dir.path().join("missing")),
            path(&out),
        ]),
        "opening",
    );
    fails_with(
        &wa(&[
            "media",
            "encrypt",
            "--type",
            "image",
            path(&input),
            path(&dir.path().join("no/such/dir/out")),
        ]),
        "creating",
    );
    assert!(files(dir.path()).is_empty());

    // An unknown type is a usage error (exit 2) that names the accepted types.
    let output = wa(&[
        "media",
        "encrypt",
        "--type",
        "photo",
        path(&input),
        path(&out),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown media type \"photo\": expected image, sticker"),
        "{stderr}"
    );
    let output = wa(&[
        "media",
        "decrypt",
        "--type",
        "image",
        path(&input),
        path(&out),
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "--key is required to decrypt"
    );
}
