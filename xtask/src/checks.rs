//! The checks of `cargo xtask ci` that are more than one command: the toolchain is the one the
//! manifest declares, and the publishable crates package and would publish.

use std::process::Command;

use anyhow::{Context, bail};

/// The crates that are never published (`publish = false`), left out of the packaging check.
const UNPUBLISHED: [&str; 2] = ["wa-test-support", "xtask"];

/// What `program args` writes to its standard output; an error if it cannot run or fails.
fn stdout_of(program: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let command = format!("`{program} {}`", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {command}"))?;
    if !out.status.success() {
        bail!("{command} failed: {}", out.status);
    }
    Ok(out.stdout)
}

/// Fails unless `rustc --version` has the major.minor of the workspace's `rust-version`: the
/// declared minimum must be the toolchain CI actually builds with.
pub(crate) fn rust_version() -> anyhow::Result<()> {
    let rustc = String::from_utf8_lossy(&stdout_of("rustc", &["--version"])?)
        .trim()
        .to_owned();
    let manifest_path = crate::root().join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let declared = declared_rust_version(&manifest)
        .with_context(|| format!("no `rust-version` in {}", manifest_path.display()))?;
    compare(&rustc, declared)?;
    eprintln!("rust-version {declared} matches `{rustc}`");
    Ok(())
}

/// The `rust-version = "..."` of the manifest's `[workspace.package]` table.
fn declared_rust_version(manifest: &str) -> Option<&str> {
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_table = line == "[workspace.package]";
            continue;
        }
        if !in_table {
            continue;
        }
        let Some(value) = line.strip_prefix("rust-version") else {
            continue;
        };
        let value = value.trim_start().strip_prefix('=')?.trim();
        return value.strip_prefix('"')?.split('"').next();
    }
    None
}

/// The major and minor numbers of a version `1.95` or `1.95.0`.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checks `rustc_version_line` (`rustc 1.95.0 (59807616e 2026-04-14)`) against `declared`.
fn compare(rustc_version_line: &str, declared: &str) -> anyhow::Result<()> {
    let rustc = rustc_version_line
        .split_whitespace()
        .nth(1)
        .and_then(|v| major_minor(v.split('-').next().unwrap_or(v)))
        .with_context(|| format!("cannot read a version from `{rustc_version_line}`"))?;
    let manifest = major_minor(declared)
        .with_context(|| format!("cannot read `rust-version = \"{declared}\"`"))?;
    if rustc != manifest {
        bail!(
            "the workspace declares rust-version {declared} but CI builds with `{rustc_version_line}`: \
             set `rust-version = \"{}.{}\"` in the root Cargo.toml's [workspace.package] (and fix \
             what the new toolchain reports), or build with Rust {}.{}",
            rustc.0,
            rustc.1,
            manifest.0,
            manifest.1
        );
    }
    Ok(())
}

/// `cargo package` and `cargo publish --dry-run` of every publishable crate, as crates.io would
/// get them: each package must contain what it needs and build on its own.
pub(crate) fn package() -> anyhow::Result<()> {
    forget_unpacked_packages()?;
    let mut args = vec!["publish", "--dry-run", "--workspace"];
    for name in UNPUBLISHED {
        args.extend(["--exclude", name]);
    }
    crate::run_cmd("cargo", &args).context(
        "the publishable crates do not package: a file their tests, benches or examples need is \
         missing from `include` (see `cargo package -p <crate> --list`), a manifest field is \
         wrong, or a package does not build on its own",
    )
}

/// Removes what an earlier packaging check unpacked of this workspace's crates.
///
/// `cargo publish --dry-run --workspace` puts the packages in a temporary registry and unpacks
/// each into `$CARGO_HOME/registry/src/-<hash>/<name>-<version>`, where the hash comes from
/// the temporary registry's path: the same for every run from one checkout path. Cargo does
/// not unpack a package again while its directory is there, so a second run (a clean clone at
/// the same path, with the same versions) would build each crate against the first run's
/// sources of the crates it depends on.
fn forget_unpacked_packages() -> anyhow::Result<()> {
    let out = stdout_of("cargo", &["metadata", "--no-deps", "--format-version", "1"])?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&out).context("reading `cargo metadata`")?;
    let unpacked: Vec<String> = metadata
        .get("packages")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let field = |f: &str| p.get(f).and_then(serde_json::Value::as_str);
            Some(format!("{}-{}", field("name")?, field("version")?))
        })
        .collect();
    let home = match std::env::var_os("CARGO_HOME") {
        Some(home) => std::path::PathBuf::from(home),
        None => {
            std::path::PathBuf::from(std::env::var_os("HOME").context("no HOME")?).join(".cargo")
        }
    };
    let Ok(registries) = std::fs::read_dir(home.join("registry").join("src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        // Temporary registries are named by a hash alone; crates.io's is `index.crates.io-...`.
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for name in &unpacked {
            let dir = registry.path().join(name);
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is a failed test")]

    use super::*;

    #[test]
    fn reads_the_workspace_rust_version() {
        let manifest = "[package]\nrust-version = \"1.10\"\n\n[workspace.package]\nversion = \
                        \"0.1.0\"\n# the toolchain\nrust-version = \"1.95\"\nlicense = \"MIT\"\n";
        assert_eq!(declared_rust_version(manifest), Some("1.95"));
        assert_eq!(declared_rust_version("[workspace.package]\n"), None);
        // The real manifest has one.
        let real = std::fs::read_to_string(crate::root().join("Cargo.toml")).unwrap();
        assert!(declared_rust_version(&real).and_then(major_minor).is_some());
    }

    #[test]
    fn compares_major_and_minor_only() {
        let line = "rustc 1.95.0 (59807616e 2026-04-14)";
        assert!(compare(line, "1.95").is_ok());
        assert!(compare(line, "1.95.0").is_ok());
        assert!(compare("rustc 1.95.2-beta.1 (abc 2026-04-14)", "1.95").is_ok());
        let error = compare(line, "1.88").unwrap_err().to_string();
        assert!(error.contains("rust-version 1.88"), "{error}");
        assert!(error.contains("rust-version = \"1.95\""), "{error}");
        assert!(compare(line, "1.96").is_err());
        assert!(compare("rustc ?", "1.95").is_err());
        assert!(compare(line, "one").is_err());
    }
}
