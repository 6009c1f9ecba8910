//! The services the cluster tests run against, made to answer before `cargo xtask ci` runs the
//! tests: PostgreSQL on 127.0.0.1:5432 (trust authentication on loopback, database `test`) and
//! NATS with JetStream on 127.0.0.1:4222. Each is left alone when it answers; otherwise it is
//! started, and installed from the Debian packages first when it is missing (CI runs as root
//! on a Debian machine). The tests then run with `WA_CLUSTER_TESTS=require`, so a cluster test
//! that cannot reach them fails instead of skipping.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const POSTGRES: &str = "127.0.0.1:5432";
const NATS: &str = "127.0.0.1:4222";
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// How long a service may take to answer once started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn answers(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

fn wait_for(addr: &str, what: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if answers(addr) {
            eprintln!("{what} answers on {addr}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{what} does not answer on {addr} {START_TIMEOUT:?} after being started")
}

/// Runs a command; whether it succeeded (its failure is reported, not fatal).
fn try_cmd(program: &str, args: &[&str]) -> bool {
    eprintln!("$ {program} {}", args.join(" "));
    match Command::new(program).args(args).status() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            eprintln!("`{program}` failed: {status}");
            false
        }
        Err(e) => {
            eprintln!("cannot run `{program}`: {e}");
            false
        }
    }
}

fn apt_install(package: &str) -> anyhow::Result<()> {
    if !try_cmd("apt-get", &["update"]) {
        bail!("apt-get update failed: cannot install {package}");
    }
    let ok = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .with_context(|| format!("running apt-get install {package}"))?
        .success();
    if !ok {
        bail!("apt-get install {package} failed");
    }
    Ok(())
}

/// The PostgreSQL clusters' versions (`/etc/postgresql/<version>/main`).
fn postgres_versions() -> Vec<String> {
    std::fs::read_dir("/etc/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("main").is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Loopback connections without a password (the tests' `postgres://postgres@127.0.0.1/test`):
/// trust lines put first in `pg_hba.conf` if they are not there.
fn trust_loopback(version: &str) -> anyhow::Result<()> {
    let path = format!("/etc/postgresql/{version}/main/pg_hba.conf");
    let hba = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = "host all all 127.0.0.1/32 trust";
    if hba
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == line)
    {
        return Ok(());
    }
    let updated = format!(
        "# Added by cargo xtask ci: the cluster tests connect without a password.\n{line}\nhost all all ::1/128 trust\n{hba}"
    );
    std::fs::write(&path, updated).with_context(|| format!("writing {path}"))
}

fn ensure_postgres() -> anyhow::Result<()> {
    if !answers(POSTGRES) {
        let mut versions = postgres_versions();
        if versions.is_empty() {
            apt_install("postgresql")?;
            versions = postgres_versions();
        }
        let Some(version) = versions.into_iter().max() else {
            bail!("no PostgreSQL cluster in /etc/postgresql after installing postgresql");
        };
        trust_loopback(&version)?;
        try_cmd(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &version, "main", "start"],
        );
        wait_for(POSTGRES, "PostgreSQL")?;
    }
    // The test database, reachable as the tests reach it.
    let reachable = |db: &str| {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                db,
                "-Atc",
                "SELECT 1",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if reachable("test") {
        return Ok(());
    }
    if !reachable("postgres") {
        // Password authentication on loopback: allow trust there, and reload.
        for version in postgres_versions() {
            trust_loopback(&version)?;
            try_cmd(
                "pg_ctlcluster",
                &["--skip-systemctl-redirect", &version, "main", "reload"],
            );
        }
    }
    try_cmd(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE test",
        ],
    );
    if !reachable("test") {
        bail!(
            "PostgreSQL answers on {POSTGRES}, but database `test` is not reachable as user postgres without a password"
        );
    }
    Ok(())
}

fn ensure_nats() -> anyhow::Result<()> {
    if answers(NATS) {
        return Ok(());
    }
    if !Path::new(NATS_SERVER).exists() {
        apt_install("nats-server")?;
    }
    std::fs::create_dir_all("/var/lib/nats-server").context("creating /var/lib/nats-server")?;
    try_cmd(
        "start-stop-daemon",
        &[
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            NATS_SERVER,
            "--",
            "-a",
            "127.0.0.1",
            "-p",
            "4222",
            "-js",
            "-sd",
            "/var/lib/nats-server",
            "-l",
            "/var/log/nats-server.log",
        ],
    );
    wait_for(NATS, "NATS")
}

/// Makes PostgreSQL and NATS answer (starting or installing them), or fails saying which
/// does not.
pub(crate) fn ensure() -> anyhow::Result<()> {
    ensure_postgres().context("PostgreSQL for the cluster tests")?;
    ensure_nats().context("NATS for the cluster tests")?;
    Ok(())
}
