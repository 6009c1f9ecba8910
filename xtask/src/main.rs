//! Project automation, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! - `codegen [--check]`: regenerate checked-in generated code (the token table of `wa-binary`
//!   from `testdata/tokens.json`, the protobuf types of `wa-proto` from `proto/`);
//!   `--check` fails when the checked-in code is stale.
//! - `ci`: everything `.ci/run` checks, in order: the toolchain is the declared `rust-version`,
//!   formatting, clippy, the tests (after making PostgreSQL and NATS answer for the cluster
//!   tests, which are then mandatory), the packaging of the publishable crates, rustdoc,
//!   fuzzing.
//! - `fuzz [--seconds N] [TARGET...]`: build and run every fuzz target (or the named ones) for N
//!   seconds each (default 10), installing `cargo-fuzz` when it is missing.
//! - `services`: make PostgreSQL and NATS answer for the cluster tests (what `ci` does first).

mod checks;
mod codegen;
mod fuzz;
mod services;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = args
        .split_first()
        .map_or(("help", &[][..]), |(t, r)| (t.as_str(), r));
    match task {
        "codegen" => codegen::run(rest.iter().any(|a| a == "--check")),
        "ci" => ci(),
        "fuzz" => fuzz::run(rest),
        "services" => services::ensure(),
        _ => {
            eprintln!(
                "usage: cargo xtask codegen [--check] | ci | fuzz [--seconds N] [TARGET...] | services"
            );
            if task == "help" {
                Ok(())
            } else {
                bail!("unknown task {task:?}")
            }
        }
    }
}

/// The workspace root (the parent of this crate).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs a command in the workspace root, failing when it fails.
pub(crate) fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<()> {
    run_in(&root(), program, args, &[])
}

/// Runs a command in `dir` with extra environment variables, failing when it fails.
pub(crate) fn run_in(
    dir: &Path,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed: {status}", args.join(" "));
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    // First, so that everything after runs on the toolchain the manifest promises.
    checks::rust_version()?;
    run_cmd("cargo", &["fmt", "--all", "--check"])?;
    run_cmd(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The README's test command, with the cluster tests' services up and those tests
    // mandatory (elsewhere they skip when the services do not answer).
    services::ensure()?;
    run_in(
        &root(),
        "cargo",
        &["test", "--workspace"],
        &[("WA_CLUSTER_TESTS", "require")],
    )?;
    // What only runs with optional features (wa-crypto's serde support).
    run_cmd("cargo", &["test", "-p", "wa-crypto", "--all-features"])?;
    // Every publishable crate packages with what its tests need and builds from its package.
    checks::package()?;
    run_in(
        &root(),
        "cargo",
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    fuzz::run(&["--seconds".to_owned(), "10".to_owned()])
}
