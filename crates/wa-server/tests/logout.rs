//! `POST /logout` (PROTOCOL.md §2.6) at the transport level: parameters required, unknown
//! tokens refused, other methods not allowed. The full flow (a linked client logs
//! out offline, its phone no longer lists it, its next login gets 401) is tested with real
//! clients in `wa-client`'s `tests/restore.rs`; the checks themselves in the core's unit tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test"
)]

mod support;

use support::{TestServer, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_needs_both_parameters_and_a_known_token() {
    let server = TestServer::start(|_| {}).await;
    let addr = server.server.local_addr();
    let missing = http("POST", addr, "/logout?t=abc", &[], b"").await;
    assert_eq!(missing.status, 400);
    let unknown = http("POST", addr, "/logout?t=abc&m=AAAA", &[], b"").await;
    assert_eq!(
        unknown.status,
        401,
        "{:?}",
        String::from_utf8_lossy(&unknown.body)
    );
    assert_eq!(unknown.json()["status"], 401);
    let get = http("GET", addr, "/logout?t=abc&m=AAAA", &[], b"").await;
    assert_eq!(get.status, 405);
}
