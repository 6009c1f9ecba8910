//! Tidy tests: the architecture invariants of ARCHITECTURE.md that a reading of the sources can
//! check, run by `cargo test` (so by CI) rather than remembered.
//!
//! - Only the drivers (`wa-client`, `wa-server`) and the command (`wa-cli`) depend on tokio.
//! - The codec (`wa-binary`) depends on the few crates ARCHITECTURE.md names, no others.
//! - The state machines and the formats below them do no IO and read no clock: no sockets, no
//!   files, no sleeping, no `Instant::now`/`SystemTime::now`, no OS randomness in their code.
//! - No protocol shape is spelled by hand outside the vocabulary crates (`wa-wire`, and the
//!   codec and framing crates under it): no `Node::new("..")`, no `json!({"status"..})`, no
//!   `json!(["Kind", ..])` in any other crate's code.
//! - Every source file starts with a `//!` comment saying what it is for (generated files
//!   excepted).

#![cfg(test)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a panic is a failed test"
)]

use std::path::{Path, PathBuf};

/// The crates allowed to depend on tokio (outside dev-dependencies).
const TOKIO_CRATES: [&str; 3] = ["wa-client", "wa-server", "wa-cli"];

/// What the codec may depend on (ARCHITECTURE.md, `crates/wa-binary`): `serde` and `hex` only
/// behind its `serde` feature.
const CODEC_DEPENDENCIES: [&str; 6] = ["nom", "bumpalo", "smol_str", "thiserror", "serde", "hex"];

/// Crates that take time as an argument and do no IO.
const SANS_IO: [&str; 10] = [
    "wa-binary",
    "wa-crypto",
    "wa-frame",
    "wa-wire",
    "wa-e2e",
    "wa-session",
    "wa-phone",
    "wa-server-core",
    "wa-history",
    "wa-proto",
];

/// What a sans-IO crate's code must not call.
const FORBIDDEN: [&str; 11] = [
    "Instant::now",
    "SystemTime::now",
    "std::fs",
    "tokio",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "thread::sleep",
    "OsRng",
    "getrandom",
    "thread_rng",
];

fn crates() -> Vec<(String, PathBuf)> {
    let dir = crate::root().join("crates");
    let mut crates: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    crates.sort();
    assert!(crates.len() >= 16, "found only {crates:?}");
    crates
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names under a manifest's `[dependencies]` table (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_table = line == "[dependencies]";
            continue;
        }
        if in_table
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            names.push(name.trim().trim_end_matches(".workspace").to_owned());
        }
    }
    names
}

/// The code of a file without its comments (doc and line comments) and without its
/// `#[cfg(test)]` module, which may use what the crate itself does not.
fn code_outside_tests(source: &str) -> String {
    let end = source.find("#[cfg(test)]").unwrap_or(source.len());
    source
        .get(..end)
        .unwrap_or(source)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn only_the_drivers_and_the_command_depend_on_tokio() {
    for (name, dir) in crates() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let deps = dependencies(&manifest);
        let on_tokio = deps.iter().any(|d| d.starts_with("tokio"));
        assert_eq!(
            on_tokio,
            TOKIO_CRATES.contains(&name.as_str()),
            "{name}: tokio in [dependencies] is for {TOKIO_CRATES:?} only ({deps:?})"
        );
    }
}

#[test]
fn the_codec_depends_on_little() {
    let manifest =
        std::fs::read_to_string(crate::root().join("crates/wa-binary/Cargo.toml")).unwrap();
    let deps = dependencies(&manifest);
    assert!(deps.contains(&"nom".to_owned()), "{deps:?}");
    for dep in &deps {
        assert!(
            CODEC_DEPENDENCIES.contains(&dep.as_str()),
            "wa-binary depends on {dep}: the codec's dependencies are {CODEC_DEPENDENCIES:?} \
             (ARCHITECTURE.md)"
        );
    }
}

#[test]
fn the_state_machines_do_no_io_and_read_no_clock() {
    let mut checked = 0;
    for (name, dir) in crates() {
        if !SANS_IO.contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            let code = code_outside_tests(&std::fs::read_to_string(&file).unwrap());
            for word in FORBIDDEN {
                assert!(
                    !code.contains(word),
                    "{}: `{word}` in a sans-IO crate (time and IO come from the driver)",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "checked only {checked} files");
}

/// Crates where nodes and JSON shapes are defined.
const VOCABULARY: [&str; 3] = ["wa-wire", "wa-binary", "wa-frame"];

/// How a hand-spelled protocol shape starts.
const HAND_SPELLED: [&str; 3] = ["Node::new(\"", "json!({\"status\"", "json!([\""];

#[test]
fn protocol_shapes_are_spelled_only_in_the_vocabulary() {
    let mut found = Vec::new();
    for (name, dir) in crates() {
        if VOCABULARY.contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            let code = code_outside_tests(&std::fs::read_to_string(&file).unwrap());
            let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            for shape in HAND_SPELLED {
                if compact.contains(shape) {
                    found.push(format!("{}: `{shape}`", file.display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "shapes outside wa-wire: {found:#?}");
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let mut files = Vec::new();
    for (_, dir) in crates() {
        rust_files(&dir.join("src"), &mut files);
    }
    rust_files(&crate::root().join("xtask").join("src"), &mut files);
    let mut missing = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let generated = source
            .lines()
            .take(3)
            .any(|l| l.contains("@generated") || l.contains("generated by"));
        if !generated && !source.trim_start().starts_with("//!") {
            missing.push(file.display().to_string());
        }
    }
    assert!(files.len() > 100, "found only {} files", files.len());
    assert!(
        missing.is_empty(),
        "no `//!` comment at the top: {missing:#?}"
    );
}

#[test]
fn the_checks_see_what_they_forbid() {
    // The readers the checks rely on, on made-up inputs: a check that cannot fail is no check.
    let manifest = "[package]\nname = \"x\"\n[dependencies]\ntokio.workspace = true\nserde = \"1\"\n# tokio-util\n[dev-dependencies]\ntempfile = \"3\"\n";
    assert_eq!(dependencies(manifest), ["tokio", "serde"]);
    let code = code_outside_tests(
        "//! Docs: Instant::now\nfn a() { let t = Instant::now(); }\n#[cfg(test)]\nmod tests { fn b() { std::fs::read(\"x\"); } }\n",
    );
    assert!(code.contains("Instant::now()"));
    assert!(!code.contains("std::fs"));
    assert!(!code.contains("Docs"));
}
