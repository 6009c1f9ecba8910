//! `wa server` and `wa phone` as processes: a server on a free port, two phones talking
//! through it (send with ticks, listen), and the errors a user sees.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WA: &str = env!("CARGO_BIN_EXE_wa");
const WAIT: Duration = Duration::from_secs(20);

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a stream prints, as they come.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, what: &str, f: impl Fn(&str) -> bool) -> String {
    loop {
        let line = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no line for {what}"));
        if f(&line) {
            return line;
        }
    }
}

fn phone(url: &str, number: &str, args: &[&str]) -> std::process::Output {
    Command::new(WA)
        .args(["phone"])
        .args(&args[..1])
        .args(["--server", url, "--number", number])
        .args(&args[1..])
        .output()
        .unwrap()
}

#[test]
fn server_and_two_phones() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(WA)
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(server.stdout.take().unwrap());
    let server = Running(server);
    let line = wait_line(&out, "the web client URL", |l| l.contains("web clients"));
    let url = line.split_whitespace().last().unwrap().to_owned();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"),
        "{line}"
    );
    let phones = wait_line(&out, "the phone URL", |l| l.contains("phones"));
    assert!(phones.ends_with("/phone"), "{phones}");

    // Sending to a number nobody uses fails with one line on stderr.
    let failed = phone(
        &url,
        "15550000081",
        &["send", "--to", "15550000082", "hello?"],
    );
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("wa: sending to 15550000082") && stderr.contains("404"),
        "{stderr}"
    );

    // Bob listens (creating his account); Alice sends and waits for two ticks.
    let mut listener = Command::new(WA)
        .args([
            "phone",
            "listen",
            "--server",
            &url,
            "--number",
            "15550000082",
            "--name",
            "Bob",
        ])
        .args(["--count", "1", "--read"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let heard = lines(listener.stdout.take().unwrap());
    let said = lines(listener.stderr.take().unwrap());
    let listener = Running(listener);
    wait_line(&said, "Bob listening", |l| {
        l.starts_with("listening as 15550000082@c.us")
    });
    let sent = phone(
        &url,
        "15550000081",
        &[
            "send",
            "--name",
            "Alice",
            "--to",
            "15550000082@c.us",
            "hello Bob",
            "--wait",
            "10",
        ],
    );
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        stdout.contains("sent 3EB0") && stdout.contains("delivered"),
        "{stdout}"
    );
    let line = wait_line(&heard, "Bob's message", |l| l.contains("hello Bob"));
    assert_eq!(line, "[15550000081@c.us] 15550000081@c.us: hello Bob");
    let mut listener = listener;
    let status = listener.0.wait().unwrap();
    assert!(status.success(), "listen stops after --count messages");

    // Devices: none linked; unlinking an unknown client fails; a bad QR code fails.
    let devices = phone(&url, "15550000082", &["devices"]);
    assert!(String::from_utf8_lossy(&devices.stdout).contains("no linked web clients"));
    let unlink = phone(&url, "15550000082", &["unlink", "AAAA"]);
    assert_eq!(unlink.status.code(), Some(1));
    let link = phone(&url, "15550000082", &["link", "1@nope,AAAA,BBBB"]);
    assert_eq!(link.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&link.stderr).starts_with("wa: approving the QR code"));
    drop(server);
}
