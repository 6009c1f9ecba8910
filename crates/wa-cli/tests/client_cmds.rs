//! `wa login`, `wa send`, `wa chats`, `wa listen` and `wa logout` as a person runs them, against
//! a reference server the test starts on loopback (the phone approves the QR code the command
//! prints).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test"
)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use wa_server::phone::Phone;

fn wa(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wa"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn output(args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(30), wa(args).output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_send_chats_listen_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = wa_server::Server::start(wa_server::Config::new(dir.path().join("server")))
        .await
        .unwrap();
    let url = server.ws_url();
    let session = dir.path().join("cli.redb");
    let session = session.to_str().unwrap();
    let phone = Phone::connect(&server.phone_url(), "15550000041", "Cli")
        .await
        .unwrap();
    let mut friend = Phone::connect(&server.phone_url(), "15550000042", "Friend")
        .await
        .unwrap();

    // Before login, commands say what to do.
    let (ok, _, err) = output(&["chats", "--server", &url, "--session", session]).await;
    assert!(!ok && err.contains("run `wa login` first"), "{err}");

    // `wa login` prints the QR text on stderr; the phone scans it.
    let mut login = wa(&["login", "--server", &url, "--session", session])
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(login.stderr.take().unwrap()).lines();
    let qr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if let Some(rest) = line.split("wa phone link --number N '").nth(1) {
                return rest.trim_end_matches("'):").to_owned();
            }
        }
        panic!("no QR text printed")
    })
    .await
    .unwrap();
    phone.link(&qr).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("logged in as 15550000041@c.us"));

    // Send with the saved session: the friend's phone gets it.
    let (ok, id, err) = output(&[
        "send",
        "--server",
        &url,
        "--session",
        session,
        "--to",
        "15550000042@c.us",
        "hi from the cli",
    ])
    .await;
    assert!(ok, "{err}");
    let id = id.trim().to_owned();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(wa_server::phone::PhoneEvent::Message(m)) = friend.next_event().await
                && m.id == id
            {
                return m.text;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got.as_deref(), Some("hi from the cli"));

    let (ok, chats, err) =
        output(&["chats", "--server", &url, "--session", session, "--json"]).await;
    assert!(ok, "{err}");
    assert!(chats.contains("15550000042"), "{chats}");

    // `wa listen --json` prints what arrives while it runs.
    let listen = wa(&[
        "listen",
        "--server",
        &url,
        "--session",
        session,
        "--json",
        "--seconds",
        "4",
    ])
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    friend
        .send_text("15550000041@c.us", "answer from the friend")
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), listen.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"event\":\"message\"") && l.contains("answer from the friend")),
        "{stdout}"
    );

    let (ok, out, err) = output(&["logout", "--server", &url, "--session", session]).await;
    assert!(ok && out.contains("logged out"), "{err}");
    let (ok, _, err) = output(&[
        "send",
        "--server",
        &url,
        "--session",
        session,
        "--to",
        "15550000042@c.us",
        "x",
    ])
    .await;
    assert!(!ok && err.contains("wa login"), "after logout: {err}");
    server.shutdown().await;
}
