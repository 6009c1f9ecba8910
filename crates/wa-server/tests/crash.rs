//! Durability: the server process is killed with SIGKILL right after it acknowledged messages
//! (ack 1), restarted on the same data directory, and every message is still there, delivered
//! once to every device.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;
use wa_session::{Event, MessageSource};

/// The `wa-server` binary as a child process, killed when dropped.
struct ServerProcess {
    child: Child,
    ws_url: String,
    status_url: String,
}

impl ServerProcess {
    fn start(dir: &std::path::Path) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wa-server"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(WAIT)
            .expect("the server says where it listens");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"listening"), "{line}");
        ServerProcess {
            child,
            ws_url: words[1].to_owned(),
            status_url: words[3].to_owned(),
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn queued(&self) -> u64 {
        let (status, body) = http("GET", &self.status_url, Vec::new()).await;
        assert_eq!(status, 200);
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        status["messages"]["queued"].as_u64().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_acknowledged_before_a_kill_survive_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = ServerProcess::start(dir.path());
    let alice = phone(&first.ws_url, "15550000071", "Alice").await;
    let bob_phone = phone(&first.ws_url, "15550000072", "Bob").await;
    let bob_web = Client::link(&first.ws_url, &bob_phone, 100).await;
    let credentials = bob_web.credentials.clone().unwrap();
    bob_web.close().await;
    bob_phone.close().await;

    // Bob is offline; Alice's phone hears "stored" for each message ...
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            alice
                .send_text("15550000072@c.us", &format!("message {i}"))
                .await
                .unwrap(),
        );
    }
    // ... and the server dies at once.
    first.kill();
    drop(alice);

    let second = ServerProcess::start(dir.path());
    assert_eq!(second.queued().await, 20);
    let mut bob = Client::restore(&second.ws_url, credentials, 101).await;
    let mut got = Vec::new();
    while got.len() < ids.len() {
        let info = bob.next_message().await;
        got.push(info.key.id.clone().unwrap());
    }
    assert_eq!(got, ids, "all of them, in order");
    bob.run_for(Duration::from_millis(300)).await;
    let again = bob
        .queue
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Message {
                    source: MessageSource::Relay,
                    ..
                }
            )
        })
        .count();
    assert_eq!(again, 0, "nothing twice");

    let mut bob_phone = phone(&second.ws_url, "15550000072", "Bob").await;
    for id in &ids {
        assert_eq!(&phone_message(&mut bob_phone).await.id, id);
    }
    let mut left = u64::MAX;
    for _ in 0..100 {
        left = second.queued().await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "delivered to every device: deleted");
    second.kill();
}
