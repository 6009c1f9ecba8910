//! The web client commands as a person runs them, each a `wa` process against a `wa server`
//! process: `wa login` (QR line approved by `wa phone link`), `wa listen` serving `wa send`
//! (text from standard input), `wa send-media`, `wa download`, `wa chats`, `wa history` and
//! `wa verify` over its socket at the same time, a closed standard output ending `wa listen`
//! quietly, then the same commands on the store directly, and `wa logout`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Instant;

use serde_json::Value;
use support::{Running, Server, WAIT, closing_lines, lines, ok, run, wait_line};

const ALICE: &str = "15550000021";
const BOB: &str = "15550000022";
const BOB_JID: &str = "15550000022@s.whatsapp.net";

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn login_listen_and_commands_through_the_socket() {
    let started = Instant::now();
    let server = Server::start();
    server.register("alice.redb", ALICE, "Alice");
    server.register("bob.redb", BOB, "Bob");
    ok(server.phone(
        "bob.redb",
        &["send", "--to", ALICE, "zebra before the link"],
    ));
    // Alice's phone takes it off its queue before the link (`wa phone listen`), so the history
    // its link exports carries it. (The server hands a phone its queue before it answers a
    // link asked for after the login: wa-server-core's jobs keep their outcomes in order.)
    let mut alice = Running::spawn(&mut server.phone("alice.redb", &["listen", "--json"]));
    let alice_out = lines(alice.stdout.take().unwrap());
    wait_line(&alice_out, "the message before the link", |l| {
        l.contains("zebra before the link")
    });
    alice.terminate();
    assert!(alice.wait(WAIT).success());

    // Before login, commands say what to do.
    let (success, _, err) = run(server.wa("web.redb", &["chats"]));
    assert!(!success && err.contains("run `wa login` first"), "{err}");

    // `wa login` prints the QR text (not a terminal: one line); Alice's phone approves it.
    let mut login = Running::spawn(&mut server.wa("web.redb", &["login"]));
    let login_out = lines(login.stdout.take().unwrap());
    let qr = wait_line(&login_out, "the QR line", |l| l.starts_with("qr "));
    let linked = ok(server.phone("alice.redb", &["link", qr.strip_prefix("qr ").unwrap()]));
    assert!(linked.contains("linked "), "{linked}");
    wait_line(&login_out, "the login", |l| l.starts_with("logged in as"));
    assert!(login.wait(WAIT).success());
    // Logging in again restores the saved session.
    let again = ok(server.wa("web.redb", &["login"]));
    assert!(again.contains("restored"), "{again}");

    // `wa listen` serves the store's socket.
    let socket = server.path("web.redb.sock");
    let mut listen = Running::spawn(&mut server.wa("web.redb", &["listen", "--json"]));
    let (listen_out, listen_closed) = closing_lines(listen.stdout.take().unwrap());
    let listen_err = lines(listen.stderr.take().unwrap());
    wait_line(&listen_err, "the listener", |l| {
        l.contains("wa listen: connected")
    });
    assert!(socket.exists());

    // `wa send` with the text on standard input goes through it, at the same time.
    let mut send = server.wa("web.redb", &["send", "--to", BOB, "-"]);
    let mut sending = Running::spawn(send.stdin(Stdio::piped()));
    writeln!(sending.stdin.take().unwrap(), "zebra from the web").unwrap();
    assert!(sending.wait(WAIT).success());
    let (id, _) = support::finish(sending);
    let id = id.trim().to_owned();
    let ack = wait_line(&listen_out, "the ack of the sent message", |l| {
        l.contains("\"ack\"") && l.contains(&id)
    });
    assert!(
        ack.contains("\"sent\"") || ack.contains("delivered"),
        "{ack}"
    );
    ok(server.phone("bob.redb", &["send", "--to", ALICE, "zebra live"]));
    let got = wait_line(&listen_out, "Bob's live message", |l| {
        l.contains("zebra live")
    });
    assert_eq!(
        serde_json::from_str::<Value>(&got).unwrap()["chat"],
        BOB_JID
    );

    // Media: sent from a file, decrypted back by its id.
    let file = server.path("notes.txt");
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &body).unwrap();
    let media_id = ok(server.wa(
        "web.redb",
        &["send-media", "--to", BOB, file.to_str().unwrap()],
    ));
    let media_id = media_id.trim().to_owned();
    let back = server.path("back.bin");
    ok(server.wa("web.redb", &["download", &media_id, back.to_str().unwrap()]));
    assert_eq!(std::fs::read(&back).unwrap(), body);
    let (success, piped, err) = {
        let output = server
            .wa("web.redb", &["download", "--chat", BOB, &media_id, "-"])
            .output()
            .unwrap();
        (output.status.success(), output.stdout, output.stderr)
    };
    assert!(success, "{}", String::from_utf8_lossy(&err));
    assert_eq!(piped, body);

    // Chats, history and the security code through the socket.
    let chats = json_lines(&ok(server.wa("web.redb", &["chats", "--json"])));
    assert!(
        chats
            .iter()
            .any(|c| c["jid"].as_str().is_some_and(|j| j.starts_with(BOB))),
        "{chats:?}"
    );
    let history = json_lines(&ok(server.wa("web.redb", &["history", BOB, "--json"])));
    let texts: Vec<&str> = history
        .iter()
        .filter_map(|m| m["summary"].as_str())
        .collect();
    for expected in ["zebra before the link", "zebra from the web", "zebra live"] {
        assert!(texts.contains(&expected), "{expected}: {texts:?}");
    }
    let media = history
        .iter()
        .find(|m| m["id"] == media_id.as_str())
        .unwrap();
    assert_eq!(media["media"], "document");
    // (A document carries no caption in this protocol version.)
    assert_eq!(media["summary"], "[document, 5000 bytes]", "{media}");
    let code = ok(server.wa("web.redb", &["verify", BOB]));
    let bob_code = ok(server.phone("bob.redb", &["verify", ALICE]));
    assert_eq!(
        code.lines().nth(1),
        bob_code.lines().nth(1),
        "{code} / {bob_code}"
    );

    // The reader of `wa listen` goes away: the next line ends it quietly, socket removed.
    // (The test's reader closes the pipe on the next line it reads: the message after that
    // is the listener's first write to a closed pipe.)
    drop(listen_out);
    ok(server.phone("bob.redb", &["send", "--to", ALICE, "zebra after the pipe"]));
    listen_closed
        .recv_timeout(WAIT)
        .expect("the test's reader closes the pipe");
    ok(server.phone(
        "bob.redb",
        &["send", "--to", ALICE, "zebra after the close"],
    ));
    let status = listen.wait(WAIT);
    let (_, rest) = support::finish(listen);
    let rest: String = listen_err
        .try_iter()
        .chain(rest.lines().map(str::to_owned))
        .collect();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(
        !rest.contains("panicked") && !rest.contains("Broken pipe"),
        "{rest}"
    );
    assert!(!socket.exists());

    // Without a listener the commands open the store: what arrived meanwhile is there.
    let history = ok(server.wa("web.redb", &["history", BOB]));
    // (The message whose line met the closed pipe may not be: the listener stopped on it.)
    assert!(history.contains("zebra after the pipe"), "{history}");
    let sent = ok(server.wa("web.redb", &["send", "--to", BOB, "zebra direct"]));
    assert!(!sent.trim().is_empty());
    // The message the listener stopped on came again at this connection (before the ack of
    // the send, which the server answers after what was queued).
    let history = ok(server.wa("web.redb", &["history", BOB]));
    assert!(history.contains("zebra after the close"), "{history}");

    // Logout: the phone no longer lists the client.
    let out = ok(server.wa("web.redb", &["logout"]));
    assert!(out.contains("logged out"), "{out}");
    let (success, _, err) = run(server.wa("web.redb", &["send", "--to", BOB, "x"]));
    assert!(!success && err.contains("run `wa login` first"), "{err}");
    let linked = run(server.phone("alice.redb", &["linked"]));
    assert!(linked.2.contains("no linked web clients"), "{linked:?}");
    eprintln!("web client commands: {:.1?}", started.elapsed());
}

#[test]
fn a_stale_socket_a_passphrase_and_a_server_gone() {
    let server = Server::start();
    server.register("alice.redb", "15550000031", "Alice");
    let (url, store) = (server.url.clone(), server.path("web.redb"));
    let wa = |args: &[&str]| {
        let mut cmd = std::process::Command::new(support::WA);
        cmd.args(args)
            .env("WA_SERVER", &url)
            .env("WA_STORE", &store)
            .env("WA_STORE_PASSPHRASE", "zebra passphrase")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut login = Running::spawn(&mut wa(&["login"]));
    let login_out = lines(login.stdout.take().unwrap());
    let qr = wait_line(&login_out, "the QR line", |l| l.starts_with("qr "));
    ok(server.phone("alice.redb", &["link", qr.strip_prefix("qr ").unwrap()]));
    assert!(login.wait(WAIT).success());
    // The passphrase is the key: no key file, and without it the store does not open.
    assert!(!server.path("web.redb.key").exists());
    let (success, _, err) = run(server.wa("web.redb", &["chats"]));
    assert!(!success, "{err}");

    // A socket file nobody listens on (left by a killed `wa listen`) is removed.
    let socket = server.path("web.redb.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let chats = run(wa(&["chats"]));
    assert!(chats.0, "{chats:?}");
    assert!(!socket.exists());

    // The server goes away: commands that need it fail fast and clearly; the store stays
    // readable; logout keeps the link unless told otherwise.
    let mut server = server;
    server.process.terminate();
    assert!(server.process.wait(WAIT).success());
    let started = Instant::now();
    let (success, _, err) = run(wa(&["send", "--to", "15550000032", "hello?"]));
    assert!(!success && err.contains("cannot reach the server"), "{err}");
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    assert!(run(wa(&["chats"])).0);
    let (success, _, err) = run(wa(&["logout"]));
    assert!(!success && err.contains("--local"), "{err}");
    let out = ok(wa(&["logout", "--local"]));
    assert!(out.contains("logged out locally"), "{out}");
    let (success, _, err) = run(wa(&["send", "--to", "15550000032", "hello?"]));
    assert!(!success && err.contains("run `wa login` first"), "{err}");
}
