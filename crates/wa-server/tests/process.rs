//! The `wa-server` binary as a process: a message acknowledged (ack 1) survives SIGKILL and is
//! delivered after the restart; SIGTERM stops it gracefully with exit status 0; a damaged
//! database file is a clear error at start, not a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::path::Path;
use std::process::Stdio;

use support::*;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use wa_server::{Config, Error, Server};

/// The `wa-server` binary as a child process (killed when dropped).
struct ServerProcess {
    child: Child,
    phone_url: String,
    status_addr: std::net::SocketAddr,
    /// `(number, code)` from the lines the server prints on standard error.
    codes: mpsc::UnboundedReceiver<(String, String)>,
}

impl ServerProcess {
    async fn start(dir: &Path) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wa-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, codes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("verification code for +")
                    && let Some((number, code)) = rest.split_once(": ")
                {
                    let _ = tx.send((number.to_owned(), code.to_owned()));
                }
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(WAIT, stdout.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "listening", "{line}");
        let status_addr = words[4]
            .trim_start_matches("http://")
            .trim_end_matches("/status")
            .parse()
            .unwrap();
        ServerProcess {
            child,
            phone_url: words[2].to_owned(),
            status_addr,
            codes,
        }
    }

    /// A registered phone with keys, its code read from the server's standard error.
    async fn phone(&mut self, number: &str, seed: u8) -> Phone {
        let pending = Phone::request_code(&self.phone_url, number, seed).await;
        let code = loop {
            let (n, code) = tokio::time::timeout(WAIT, self.codes.recv())
                .await
                .unwrap()
                .unwrap();
            if n == number {
                break code;
            }
        };
        let mut phone = pending.verify(&code).await;
        assert_eq!(phone.upload_keys(3).await, 3);
        phone
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_acknowledged_before_sigkill_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = ServerProcess::start(dir.path()).await;
    let mut alice = first.phone("15550000071", 71).await;
    let bob = first.phone("15550000072", 72).await;
    let bob_jid = bob.jid();
    bob.close().await;

    let ciphertext: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    alice
        .relay_to(&bob_jid, "CRASH1", &ciphertext)
        .await
        .unwrap();
    // Stored and acknowledged (the answer is ack 1): the server dies at once.
    first.kill().await;
    drop(alice);

    let second = ServerProcess::start(dir.path()).await;
    assert_eq!(status(second.status_addr).await["messages"]["queued"], 1);
    let mut alice = Phone::login(&second.phone_url, "15550000071", 71).await;
    let mut bob = Phone::login(&second.phone_url, "15550000072", 72).await;
    let message = bob.message().await;
    assert_eq!(message.id, "CRASH1");
    assert_eq!(message.from, alice.jid());
    assert_eq!(message.olm.unwrap().body, ciphertext);
    bob.receipt(&alice.jid(), "CRASH1").await;
    assert_eq!(alice.ack("CRASH1").await.level, 2);
    assert_eq!(
        status(second.status_addr).await["messages"]["queued"],
        0,
        "delivered: nothing waits"
    );
    second.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path()).await;
    let mut phone = server.phone("15550000081", 81).await;
    let pid = server.child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Its connections are closed, then it exits with status 0.
    phone.closed().await;
    let exit = tokio::time::timeout(WAIT, server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    // The store was closed cleanly: a new server opens it and knows the account.
    let mut again = ServerProcess::start(dir.path()).await;
    let _phone = Phone::login(&again.phone_url, "15550000081", 81).await;
    assert!(again.codes.try_recv().is_err());
    again.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_an_error_at_start() {
    // Not a database at all.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(wa_server::DATABASE_FILE);
    std::fs::write(&file, vec![0x5a; 8192]).unwrap();
    let error = Server::start(Config::new(dir.path())).await.unwrap_err();
    assert!(matches!(error, Error::Database { .. }), "{error}");
    assert!(
        error.to_string().contains(wa_server::DATABASE_FILE),
        "{error}"
    );

    // A real database, truncated.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut t = TestServer::start(|c| c.data_dir = dir.path().to_owned()).await;
        let _alice = t.phone("15550000091", 91).await;
        t.server.shutdown().await;
    }
    let file = dir.path().join(wa_server::DATABASE_FILE);
    let len = std::fs::metadata(&file).unwrap().len();
    for keep in [len / 2, 4096, 100] {
        let bytes = std::fs::read(&file).unwrap();
        let truncated = dir.path().join("truncated");
        std::fs::create_dir_all(&truncated).unwrap();
        std::fs::write(
            truncated.join(wa_server::DATABASE_FILE),
            &bytes[..keep as usize],
        )
        .unwrap();
        let result = Server::start(Config::new(&truncated)).await;
        let error = result
            .err()
            .unwrap_or_else(|| panic!("a database cut to {keep} of {len} bytes opened"));
        assert!(matches!(error, Error::Database { .. }), "{error}");
        assert!(
            error.to_string().contains("damaged") || error.to_string().contains("I/O"),
            "{error}"
        );
        std::fs::remove_dir_all(&truncated).unwrap();
    }
}
