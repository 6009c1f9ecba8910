//! The threat model's table of limits (`SECURITY.md` at the repository's root) states the
//! defaults the code has: every row is checked against `Config::default()`, and every limit
//! this test knows has its row.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a panic is a failure"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use wa_server::Config;
use wa_server_core::budget::Rate;

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 && s >= 86_400 => format!("{} days", s / 86_400),
        s if s % 60 == 0 && s >= 600 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => n.to_string(),
    }
}

fn rate(r: Rate) -> String {
    let per = if r.per_second >= 1.0 {
        format!("{}/s", r.per_second)
    } else {
        format!("1/{} s", (1.0 / r.per_second).round())
    };
    format!("{per}, bursts of {}", r.burst)
}

/// What the code says, by the name the table uses.
fn defaults() -> BTreeMap<&'static str, String> {
    let c = Config::default();
    let core = &c.core;
    let l = &core.limits;
    let b = &l.budgets;
    let mut m = BTreeMap::new();
    m.insert("max_connections", c.max_connections.to_string());
    m.insert(
        "max_connections_per_address",
        c.max_connections_per_address.to_string(),
    );
    m.insert("max_unauthenticated", c.max_unauthenticated.to_string());
    m.insert("header_read_timeout", duration(c.header_read_timeout));
    m.insert("write_timeout", duration(c.write_timeout));
    m.insert("push_queue_len", c.push_queue_len.to_string());
    m.insert("push_queue_bytes", bytes(c.push_queue_bytes as u64));
    m.insert(
        "max_jobs_per_connection",
        c.max_jobs_per_connection.to_string(),
    );
    m.insert("ws_read_buffer", bytes(c.ws_read_buffer as u64));
    m.insert("store_cache_bytes", bytes(c.store_cache_bytes as u64));
    m.insert("store_overlay_bytes", bytes(c.store_overlay_bytes as u64));
    m.insert("ws_write_buffer", bytes(c.ws_write_buffer as u64));
    m.insert("max_downloads", c.max_downloads.to_string());
    m.insert("media_timeout", duration(c.media_timeout));
    m.insert("media_ttl", duration(c.media_ttl));
    assert!(c.allowed_origins.is_empty());
    m.insert("allowed_origins", "any".to_owned());
    m.insert("core.message_ttl", duration(core.message_ttl));
    m.insert(
        "core.max_linked_devices",
        core.max_linked_devices.to_string(),
    );
    m.insert("core.ref_ttl", duration(core.ref_ttl));
    m.insert("core.max_rerefs", core.max_rerefs.to_string());
    m.insert("core.link_margin", duration(core.link_margin));
    m.insert("core.idle_timeout", duration(core.idle_timeout));
    m.insert("core.code_ttl", duration(core.code_ttl));
    m.insert("core.code_attempts", core.code_attempts.to_string());
    m.insert("core.token_idle_ttl", duration(core.token_idle_ttl));
    m.insert(
        "core.phone_login_timeout",
        duration(core.phone_login_timeout),
    );
    m.insert("core.limits.frame", bytes(l.frame.max_frame_len as u64));
    m.insert(
        "core.limits.requests_per_second",
        l.requests_per_second.to_string(),
    );
    m.insert("core.limits.request_burst", l.request_burst.to_string());
    m.insert("core.limits.max_group_size", l.max_group_size.to_string());
    m.insert(
        "core.limits.max_groups_per_account",
        l.max_groups_per_account.to_string(),
    );
    m.insert(
        "core.limits.max_one_time_keys",
        l.max_one_time_keys.to_string(),
    );
    m.insert(
        "core.limits.max_pending_per_device",
        l.max_pending_per_device.to_string(),
    );
    m.insert(
        "core.limits.max_pending_bytes_per_account",
        bytes(l.max_pending_bytes_per_account),
    );
    m.insert("core.limits.daily_send_bytes", bytes(l.daily_send_bytes));
    m.insert("core.limits.max_media_len", bytes(l.max_media_len));
    m.insert(
        "core.limits.max_relay_bytes",
        bytes(l.max_relay_bytes as u64),
    );
    m.insert("budgets.send", rate(b.send));
    m.insert("budgets.receipt", rate(b.receipt));
    m.insert("budgets.query", rate(b.query));
    m.insert("budgets.presence", rate(b.presence));
    m.insert("budgets.register", rate(b.register));
    m.insert("budgets.send_per_address", rate(b.send_per_address));
    m
}

/// The threat model, or `None` in a published package (which holds no repository root).
fn security_md() -> Option<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let workspace = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap_or_default();
    if !workspace.contains("[workspace]") {
        eprintln!("not in the wa-rs repository: SECURITY.md not checked");
        return None;
    }
    Some(
        std::fs::read_to_string(format!("{root}/SECURITY.md"))
            .expect("SECURITY.md at the repository's root"),
    )
}

/// The table's rows: the first backticked name of the first cell → the second cell.
fn documented(text: &str) -> BTreeMap<String, String> {
    let section = text
        .split("## Limits and their defaults")
        .nth(1)
        .expect("a section `Limits and their defaults`");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].split('`').nth(1).expect("a backticked name");
        let previous = rows.insert(name.to_owned(), cells[2].to_owned());
        assert!(previous.is_none(), "SECURITY.md lists `{name}` twice");
    }
    rows
}

#[test]
fn every_documented_default_is_the_code_s() {
    let Some(text) = security_md() else { return };
    let code = defaults();
    let doc = documented(&text);
    for (name, value) in &doc {
        let Some(actual) = code.get(name.as_str()) else {
            panic!("SECURITY.md lists `{name}`, which this test does not know");
        };
        assert_eq!(value, actual, "SECURITY.md's default of `{name}`");
    }
    for name in code.keys() {
        assert!(
            doc.contains_key(*name),
            "SECURITY.md does not list `{name}`"
        );
    }
}

#[test]
fn the_link_window_in_the_table_is_the_code_s() {
    let Some(text) = security_md() else { return };
    let core = wa_server_core::Config::default();
    let window = format!("= {} s is closed", core.link_window().as_secs());
    assert!(text.contains(&window), "SECURITY.md should say {window:?}");
}
