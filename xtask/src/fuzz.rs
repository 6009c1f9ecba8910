//! `cargo xtask fuzz [--seconds N] [TARGET...]`: build every fuzz target with `cargo +nightly
//! fuzz` (installing `cargo-fuzz` when it is missing) and run each for N seconds (default 10)
//! from its committed seed corpus, with debug assertions and overflow checks on.

use std::process::Command;

use anyhow::{Context, bail};

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut seconds: u64 = 10;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a value")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("bad --seconds {value:?}"))?;
            }
            other if other.starts_with('-') => bail!("unknown option {other:?}"),
            target => targets.push(target.to_owned()),
        }
    }
    ensure_cargo_fuzz()?;
    let dir = crate::root().join("fuzz");
    if targets.is_empty() {
        let out = Command::new("cargo")
            .args(["+nightly", "fuzz", "list"])
            .current_dir(&dir)
            .output()
            .context("running `cargo +nightly fuzz list`")?;
        if !out.status.success() {
            bail!(
                "`cargo fuzz list` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        targets = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
    }
    crate::run_in(
        &dir,
        "cargo",
        &["+nightly", "fuzz", "build", "--debug-assertions"],
        &[],
    )?;
    let max_time = format!("-max_total_time={seconds}");
    for target in &targets {
        let corpus = format!("corpus/{target}");
        std::fs::create_dir_all(dir.join(&corpus))?;
        crate::run_in(
            &dir,
            "cargo",
            &[
                "+nightly",
                "fuzz",
                "run",
                "--debug-assertions",
                target,
                &corpus,
                "--",
                &max_time,
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ],
            &[],
        )?;
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let installed = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        crate::run_cmd("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    Ok(())
}
