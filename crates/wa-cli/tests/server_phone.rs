//! `wa server` and `wa phone` as processes: a server on a free port stopped by SIGTERM with
//! status 0; commands failing fast with a clear message when no server answers; two phones
//! registered with the codes the server prints, talking with ticks, keeping their history
//! across runs, making a group.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Running, Server, WA, WAIT, free_port, lines, ok, run, wait_line};

#[test]
fn sigterm_stops_the_server_with_status_0() {
    let mut server = Server::start();
    let started = Instant::now();
    server.process.terminate();
    let status = server.process.wait(WAIT);
    assert!(status.success(), "{status:?}");
    eprintln!("stopped in {:.1?}", started.elapsed());
}

#[test]
fn server_help_says_where_registration_codes_go() {
    let out = ok({
        let mut cmd = Command::new(WA);
        cmd.args(["server", "--help"]);
        cmd
    });
    assert!(out.contains("verification code for +N"), "{out}");
    assert!(
        out.contains("--data-dir") && out.contains("--media-listen"),
        "{out}"
    );
}

#[test]
fn commands_fail_fast_when_no_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let cases: [&[&str]; 3] = [
        &["login"],
        &["phone", "register", "--number", "15550000001"],
        &["listen"],
    ];
    for args in cases {
        let started = Instant::now();
        let mut cmd = Command::new(WA);
        cmd.args(args)
            .env("WA_SERVER", &url)
            .env("WA_STORE", dir.path().join("web.redb"))
            .env("WA_PHONE_STORE", dir.path().join("phone.redb"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (ok, _, err) = run(cmd);
        let took = started.elapsed();
        assert!(!ok, "{args:?} succeeded");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
        let expected = if args == ["listen"] {
            "run `wa login` first"
        } else {
            "cannot reach the server at http://127.0.0.1:"
        };
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        eprintln!("{args:?}: failed in {took:.1?}: {}", err.trim());
    }
}

#[test]
fn two_phones_register_talk_and_keep_their_history() {
    let server = Server::start();
    server.register("alice.redb", "15550000011", "Alice");
    server.register("bob.redb", "15550000012", "Bob");
    let mut listen = Running::spawn(&mut server.phone("bob.redb", &["listen", "--read"]));
    let bob_out = lines(listen.stdout.take().unwrap());
    let bob_err = lines(listen.stderr.take().unwrap());
    wait_line(&bob_err, "Bob's listener", |l| l.contains("logged in as"));

    // Alice sends from standard input.
    let mut send = server.phone("alice.redb", &["send", "--to", "+1 555 000 0012", "-"]);
    let mut sending = Running::spawn(send.stdin(Stdio::piped()));
    {
        use std::io::Write as _;
        let mut stdin = sending.stdin.take().unwrap();
        writeln!(stdin, "zebra hello bob").unwrap();
    }
    assert!(sending.wait(WAIT).success());
    let (id, _) = support::finish(sending);
    let id = id.trim().to_owned();
    assert!(!id.is_empty());
    let got = wait_line(&bob_out, "the message at Bob", |l| {
        l.contains("zebra hello bob")
    });
    assert!(got.starts_with(&id), "{got}");

    // Bob answers while Alice is offline (through his running listener, which holds his
    // store); she gets it when she listens again.
    let socket = server.path("bob.redb.sock");
    assert!(socket.exists());
    let answer = ok(server.phone(
        "bob.redb",
        &["send", "--to", "15550000011", "zebra hi alice"],
    ));
    wait_line(&bob_out, "the ack of Bob's answer", |l| {
        l.starts_with(answer.trim())
    });
    let chats = ok(server.phone("bob.redb", &["chats", "--json"]));
    assert!(chats.contains("15550000011@"), "{chats}");
    listen.terminate();
    assert!(listen.wait(WAIT).success());
    assert!(!socket.exists());
    let mut alice = Running::spawn(&mut server.phone("alice.redb", &["listen", "--json"]));
    let alice_out = lines(alice.stdout.take().unwrap());
    let got = wait_line(&alice_out, "Bob's answer", |l| l.contains("zebra hi alice"));
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["event"], "message");
    assert_eq!(got["chat"], "15550000012@s.whatsapp.net");
    assert_eq!(got["push_name"], "Bob");
    alice.terminate();
    assert!(alice.wait(WAIT).success());

    // She marks Bob's chat read (up to his latest message).
    let read = ok(server.phone("alice.redb", &["read", "15550000012"]));
    assert!(read.starts_with("read "), "{read}");

    // Her store kept both across runs.
    let history = ok(server.phone("alice.redb", &["history", "15550000012", "--json"]));
    let texts: Vec<String> = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].to_string())
        .collect();
    assert_eq!(
        texts,
        ["\"zebra hello bob\"", "\"zebra hi alice\""],
        "{history}"
    );
    let chats = ok(server.phone("alice.redb", &["chats"]));
    assert!(chats.contains("15550000012@"), "{chats}");
    // Both see the same security code.
    let code_a = ok(server.phone("alice.redb", &["verify", "15550000012"]));
    let code_b = ok(server.phone("bob.redb", &["verify", "15550000011"]));
    assert_eq!(
        code_a.lines().nth(1),
        code_b.lines().nth(1),
        "{code_a} / {code_b}"
    );
    assert_eq!(code_a.lines().nth(1).unwrap().len(), 71, "{code_a}");

    let group = ok(server.phone("alice.redb", &["group-create", "zebras", "15550000012"]));
    assert!(group.trim().ends_with("@g.us"), "{group}");
    let linked = run(server.phone("alice.redb", &["linked"]));
    assert!(linked.0, "{linked:?}");
    assert!(linked.2.contains("no linked web clients"), "{linked:?}");
}

#[test]
fn a_wrong_registration_code_is_refused_clearly() {
    let server = Server::start();
    let (success, _, err) = run(server.phone(
        "carol.redb",
        &["register", "--number", "15550000013", "--code", "000000x"],
    ));
    assert!(!success, "{err}");
    assert!(err.contains("the code was refused"), "{err}");
    assert!(!server.path("carol.redb.json").exists());
    let (success, _, err) = run(server.phone("carol.redb", &["send", "--to", "1555000001", "x"]));
    assert!(!success && err.contains("wa phone register"), "{err}");
}
