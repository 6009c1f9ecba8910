//! Test support: a real server (`wa_server::Server`) per test on loopback in a temporary
//! directory, phones registered with the codes it sends, web clients linked by their QR codes,
//! and bounded waits for events (no sleeps).

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test support: a panic is a failed test; each test binary uses a part of it"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use wa_client::phone::{Phone, PhoneConfig, PhoneEvent, PhoneEvents};
use wa_client::{Client, ClientConfig, Event, EventStream, Events, Imported};
use wa_phone::PhoneSessionEvent;
use wa_server::{ChannelCodeSender, DeliveredCode, RunningServer, Server};
use wa_wire::Jid;

/// The longest any test waits for one thing.
pub const WAIT: Duration = Duration::from_secs(30);

/// A server with its data in a temporary directory, and a directory for the clients' stores.
pub struct Net {
    pub server: RunningServer,
    codes: mpsc::Receiver<DeliveredCode>,
    pub dir: tempfile::TempDir,
}

impl Net {
    pub async fn start(configure: impl FnOnce(&mut wa_server::Config)) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let (sender, codes) = ChannelCodeSender::new(64);
        let mut config = wa_server::Config::new(dir.path().join("server"));
        config.code_sender = std::sync::Arc::new(sender);
        configure(&mut config);
        let server = Server::start(config).await.unwrap();
        Net { server, codes, dir }
    }

    /// Where the server keeps its data.
    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// Where a client or phone named `name` keeps its store.
    pub fn store(&self, name: &str) -> PathBuf {
        self.dir.path().join("stores").join(format!("{name}.redb"))
    }

    pub fn phone_config(&self, number: &str, name: &str) -> PhoneConfig {
        PhoneConfig::new(
            self.server.phone_url(),
            number,
            name,
            self.store(&format!("phone-{number}")),
        )
    }

    /// Registers a phone (code from the server) and waits until it is logged in.
    pub async fn phone(&mut self, config: PhoneConfig) -> (Phone, PhoneEvents) {
        let number = config.phone.number.clone();
        let (phone, events) = Phone::register(config).await.unwrap();
        let code = loop {
            let delivered = tokio::time::timeout(WAIT, self.codes.recv())
                .await
                .unwrap()
                .unwrap();
            if delivered.number == number {
                break delivered.code.clone();
            }
        };
        tokio::time::timeout(WAIT, phone.verify(&code))
            .await
            .unwrap()
            .unwrap();
        (phone, events)
    }

    pub fn client_config(&self, store: &Path) -> ClientConfig {
        ClientConfig::new(self.server.ws_url()).with_store(store)
    }

    /// Starts a web client with `config`, links it to `phone`'s account, and waits until it
    /// is connected; returns its device.
    pub async fn link_with(&self, phone: &Phone, config: ClientConfig) -> (Client, Events, Jid) {
        let (client, mut events) = Client::start(config).await.unwrap();
        let qr = wait(&mut events, "QR", |e| match e {
            Event::Session(wa_session::Event::Qr { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .await;
        let linked = tokio::time::timeout(WAIT, phone.link(&qr))
            .await
            .unwrap()
            .unwrap();
        wait(&mut events, "login", |e| match e {
            Event::Session(wa_session::Event::Connected { .. }) => Some(()),
            _ => None,
        })
        .await;
        (client, events, linked.device)
    }

    /// [`Net::link_with`] with a store named `name`, waiting for the phone's history too.
    pub async fn link(&self, phone: &Phone, name: &str) -> (Client, Events, Jid) {
        let (client, mut events, device) = self
            .link_with(phone, self.client_config(&self.store(name)))
            .await;
        imported(&mut events).await;
        (client, events, device)
    }
}

/// Waits (at most [`WAIT`]) for the first event `pick` takes; the ones before are dropped.
pub async fn wait<E: std::fmt::Debug, T>(
    events: &mut EventStream<E>,
    what: &str,
    mut pick: impl FnMut(&E) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events
                .next()
                .await
                .unwrap_or_else(|| panic!("the driver stopped while waiting for {what}"));
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits for the outcome of a history import.
pub async fn imported(events: &mut Events) -> Imported {
    let outcome = wait(events, "history import", |e| match e {
        Event::HistoryImported(imported) => Some(Ok(*imported)),
        Event::HistoryFailed(error) => Some(Err(format!("{error:?}"))),
        _ => None,
    })
    .await;
    outcome.unwrap()
}

/// The text of a message.
pub fn text(info: &wa_proto::WebMessageInfo) -> Option<String> {
    info.message
        .as_ref()
        .and_then(|m| m.text())
        .map(str::to_owned)
}

/// Waits for a web client's message saying `expected`; returns it.
pub async fn message(events: &mut Events, expected: &str) -> wa_proto::WebMessageInfo {
    wait(events, expected, |e| match e {
        Event::Session(wa_session::Event::Message { info, .. })
            if text(info).as_deref() == Some(expected) =>
        {
            Some((**info).clone())
        }
        _ => None,
    })
    .await
}

/// Waits for a phone's message saying `expected`; returns its id and chat.
pub async fn phone_message(events: &mut PhoneEvents, expected: &str) -> (String, Jid) {
    wait(events, expected, |e| match e {
        PhoneEvent::Session(PhoneSessionEvent::Message(received))
            if received.envelope.message.as_ref().and_then(|m| m.text()) == Some(expected) =>
        {
            Some((received.id.clone(), received.chat.clone()))
        }
        _ => None,
    })
    .await
}

/// Waits for a phone's ack event for message `id`: its level.
pub async fn phone_ack(events: &mut PhoneEvents, id: &str) -> u8 {
    wait(events, &format!("an ack of {id}"), |e| match e {
        PhoneEvent::Session(PhoneSessionEvent::Ack(ack)) if ack.id == id => Some(ack.level),
        _ => None,
    })
    .await
}

/// Waits until message `id` reached `level` on a web client.
pub async fn ack(events: &mut Events, id: &str, level: wa_session::AckLevel) {
    wait(events, &format!("ack {level:?} of {id}"), |e| match e {
        Event::Session(wa_session::Event::Ack { ids, level: l, .. })
            if *l >= level && ids.iter().any(|i| i == id) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Every `(file, text)` such that a file under `dir` holds one of `texts`, byte for byte; and
/// how many files and bytes were scanned.
pub fn find_plaintext(dir: &Path, texts: &[&str]) -> (Vec<(PathBuf, String)>, usize, u64) {
    let (mut found, mut count, mut bytes) = (Vec::new(), 0, 0u64);
    for file in files(dir) {
        let data = std::fs::read(&file).unwrap();
        count += 1;
        bytes += data.len() as u64;
        for text in texts {
            assert!(!text.is_empty());
            if data.windows(text.len()).any(|w| w == text.as_bytes()) {
                found.push((file.clone(), (*text).to_owned()));
            }
        }
    }
    (found, count, bytes)
}

/// Asserts that no file under `dir` holds any of `texts`; how many files and bytes were
/// scanned. (The scan itself is checked first on a file that does hold one.)
pub fn assert_no_plaintext(dir: &Path, texts: &[&str]) -> (usize, u64) {
    let control = tempfile::tempdir().unwrap();
    std::fs::write(control.path().join("clear"), format!("..{}..", texts[0])).unwrap();
    assert_eq!(
        find_plaintext(control.path(), texts).0.len(),
        1,
        "the scan finds plaintext"
    );
    let (found, count, bytes) = find_plaintext(dir, texts);
    assert!(found.is_empty(), "in clear: {found:?}");
    (count, bytes)
}
