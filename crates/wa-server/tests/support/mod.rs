//! Test support: a server on a free loopback port with its own data directory, and the real
//! client state machine (`wa_session::Session`) driven over a real WebSocket by a small loop
//! with real time. Every wait has a timeout, so a bug fails a test instead of hanging it.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test support: a panic is a failed test, and not every test uses every helper"
)]

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wa_frame::{OutMessage, WsMessage};
use wa_server::phone::{IncomingMessage, Phone, PhoneEvent};
use wa_server::{Config, RunningServer, Server};
use wa_session::{
    Account, Credentials, Event, Reply, RequestError, RequestId, Session, Time, Transmit,
};

/// How long any single wait may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// The wall clock as the session sees it.
pub fn now() -> Time {
    Time::from_millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

/// A server on a free port, with data in `dir`.
pub async fn start(dir: &std::path::Path) -> RunningServer {
    start_with(Config::new(dir)).await
}

/// A server with a configuration.
pub async fn start_with(config: Config) -> RunningServer {
    tokio::time::timeout(WAIT, Server::start(config))
        .await
        .expect("server start timed out")
        .expect("server starts")
}

/// A phone for `number`.
pub async fn phone(server_url: &str, number: &str, name: &str) -> Phone {
    tokio::time::timeout(WAIT, Phone::connect(server_url, number, name))
        .await
        .expect("phone connect timed out")
        .expect("phone connects")
}

/// The next phone event matching `f`, skipping others.
pub async fn phone_wait<T>(
    phone: &mut Phone,
    what: &str,
    mut f: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .unwrap_or_else(|_| panic!("phone: timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("phone: closed while waiting for {what}"));
        if let Some(found) = f(&event) {
            return found;
        }
    }
}

/// The next message the phone gets.
pub async fn phone_message(phone: &mut Phone) -> IncomingMessage {
    phone_wait(phone, "a message", |e| match e {
        PhoneEvent::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await
}

/// Every event the phone gets within `d`.
pub async fn phone_events_for(phone: &mut Phone, d: Duration) -> Vec<PhoneEvent> {
    let deadline = tokio::time::Instant::now() + d;
    let mut out = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, phone.next_event()).await {
        out.push(event);
    }
    out
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A web client: a real `Session` on a real socket.
pub struct Client {
    pub session: Session,
    url: String,
    ws: Option<Ws>,
    /// Events not yet taken by a `wait_for`.
    pub queue: VecDeque<Event>,
    pub credentials: Option<Credentials>,
    pub account: Option<Account>,
}

impl Client {
    /// A client with a seed (tests use distinct seeds for distinct clients).
    pub fn new(url: &str, seed: u8) -> Client {
        let mut s = [seed; 32];
        s[0] = 0x5a;
        s[1] = seed;
        Client {
            session: Session::new(wa_session::Config::default(), s, now()),
            url: url.to_owned(),
            ws: None,
            queue: VecDeque::new(),
            credentials: None,
            account: None,
        }
    }

    /// Links a new client with `phone` scanning its QR code.
    pub async fn link(url: &str, phone: &Phone, seed: u8) -> Client {
        let mut client = Client::new(url, seed);
        client.session.link(now()).unwrap();
        client.pump().await;
        let qr = client
            .wait_for("QR", |e| match e {
                Event::Qr { text, .. } => Some(text.clone()),
                _ => None,
            })
            .await;
        tokio::time::timeout(WAIT, phone.link(&qr))
            .await
            .expect("link timed out")
            .expect("phone links the QR code");
        client.wait_connected().await;
        client
    }

    /// Logs in with stored credentials and waits until connected.
    pub async fn restore(url: &str, credentials: Credentials, seed: u8) -> Client {
        let mut client = Client::start_restore(url, credentials, seed).await;
        client.wait_connected().await;
        client
    }

    /// Starts logging in with stored credentials (the outcome is for the test to wait for).
    pub async fn start_restore(url: &str, credentials: Credentials, seed: u8) -> Client {
        let mut client = Client::new(url, seed);
        client.session.restore(now(), credentials).unwrap();
        client.pump().await;
        client
    }

    pub async fn wait_connected(&mut self) -> Account {
        let account = self
            .wait_for("Connected", |e| match e {
                Event::Connected { account } => Some((**account).clone()),
                Event::LoginFailed { error, .. } => panic!("login failed: {error}"),
                Event::LinkFailed(error) => panic!("link failed: {error}"),
                _ => None,
            })
            .await;
        self.account = Some(account.clone());
        account
    }

    /// Carries out what the session asks for.
    pub async fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(transmit) = self.session.poll_transmit() {
                moved = true;
                match transmit {
                    Transmit::Send(message) => {
                        let message = match message {
                            OutMessage::Text(t) => Message::text(t),
                            OutMessage::Binary(b) => Message::binary(b),
                        };
                        let failed = match &mut self.ws {
                            Some(ws) => ws.send(message).await.is_err(),
                            None => false,
                        };
                        if failed {
                            self.ws = None;
                            self.session.handle_closed(now());
                        }
                    }
                    Transmit::Close => {
                        if let Some(mut ws) = self.ws.take() {
                            let _ = ws.close(None).await;
                        }
                    }
                    Transmit::Connect => {
                        let connect = tokio_tungstenite::connect_async(self.url.as_str());
                        match tokio::time::timeout(WAIT, connect).await {
                            Ok(Ok((ws, _))) => {
                                self.ws = Some(ws);
                                self.session.handle_connected(now());
                            }
                            _ => self.session.handle_closed(now()),
                        }
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                moved = true;
                if let Event::Credentials(c) = &event {
                    self.credentials = Some((**c).clone());
                }
                self.queue.push_back(event);
            }
            if !moved {
                return;
            }
        }
    }

    /// Waits for one input (a message, a timeout) and handles it.
    pub async fn step(&mut self) {
        let wait = self
            .session
            .poll_timeout()
            .map_or(Duration::from_millis(100), |t| {
                Duration::from_millis(t.as_millis().saturating_sub(now().as_millis()))
            });
        let wait = wait.min(Duration::from_millis(200));
        match &mut self.ws {
            Some(ws) => {
                tokio::select! {
                    message = ws.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            self.session.handle_message(now(), WsMessage::Text(text.as_str()));
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            self.session.handle_message(now(), WsMessage::Binary(&bytes));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            self.ws = None;
                            self.session.handle_closed(now());
                        }
                    },
                    () = tokio::time::sleep(wait) => {}
                }
            }
            None => tokio::time::sleep(wait).await,
        }
        if self.session.poll_timeout().is_some_and(|t| t <= now()) {
            self.session.handle_timeout(now());
        }
        self.pump().await;
    }

    /// Whether the socket is open.
    pub fn socket_open(&self) -> bool {
        self.ws.is_some()
    }

    /// The first queued or coming event for which `f` gives something (other events stay
    /// queued).
    pub async fn wait_for<T>(&mut self, what: &str, mut f: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(i) = self.queue.iter().position(|e| f(e).is_some()) {
                let event = self.queue.remove(i).unwrap();
                return f(&event).unwrap();
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out waiting for {what}; queued: {:#?}", self.queue);
            }
            self.step().await;
        }
    }

    /// Runs the client for `d`, collecting events.
    pub async fn run_for(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < deadline {
            self.step().await;
        }
    }

    /// The outcome of a request.
    pub async fn reply(&mut self, id: RequestId) -> Result<Reply, RequestError> {
        self.wait_for("a reply", |e| match e {
            Event::Reply { id: r, result } if *r == id => Some(result.clone()),
            _ => None,
        })
        .await
    }

    /// Sends a text and waits until the server stored it; the message id.
    pub async fn send_text(&mut self, to: &str, text: &str) -> String {
        let (request, id) = self.session.send_text(now(), to, text).unwrap();
        self.pump().await;
        match self.reply(request).await {
            Ok(Reply::MessageSent { id: sent }) => assert_eq!(sent, id),
            other => panic!("send failed: {other:?}"),
        }
        id
    }

    /// Waits for an ack of `level` for message `id`.
    pub async fn wait_ack(&mut self, id: &str, level: wa_session::AckLevel) {
        self.wait_for(&format!("ack {level:?} of {id}"), |e| match e {
            Event::Ack { ids, level: l, .. } if *l == level && ids.iter().any(|i| i == id) => {
                Some(())
            }
            _ => None,
        })
        .await;
    }

    /// Waits for a message (any source) with id `id`.
    pub async fn wait_message(&mut self, id: &str) -> Box<wa_proto::WebMessageInfo> {
        self.wait_for(&format!("message {id}"), |e| match e {
            Event::Message { info, .. } if info.key.id.as_deref() == Some(id) => Some(info.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for the next live message.
    pub async fn next_message(&mut self) -> Box<wa_proto::WebMessageInfo> {
        self.wait_for("a message", |e| match e {
            Event::Message {
                info,
                source: wa_session::MessageSource::Relay,
            } => Some(info.clone()),
            _ => None,
        })
        .await
    }

    /// How many queued events are messages with id `id` (taking them).
    pub fn take_messages(&mut self, id: &str) -> usize {
        let before = self.queue.len();
        self.queue.retain(
            |e| !matches!(e, Event::Message { info, .. } if info.key.id.as_deref() == Some(id)),
        );
        before - self.queue.len()
    }

    /// Closes the socket (the session is dropped with the client).
    pub async fn close(mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = ws.close(None).await;
        }
    }
}

/// Polls `f` until it is true (or fails the test after `WAIT`).
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A status number, e.g. `status_of(&server, "messages", "queued")`.
pub fn status_of(server: &RunningServer, group: &str, key: &str) -> u64 {
    server.status()[group][key].as_u64().unwrap()
}

/// A minimal HTTP client for the tests: `(status, body)` of a request to `url`.
pub async fn http(method: &str, url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    use http_body_util::{BodyExt as _, Full};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = TcpStream::connect(authority).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("HTTP timed out")
        .unwrap();
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub clients: usize,
    pub seconds: f64,
    pub sent: usize,
    pub delivered: usize,
    /// Delivery latencies (send → the recipient's web client has it), milliseconds, sorted.
    pub latencies_ms: Vec<u64>,
    /// Whether every device acknowledged every message in the end (the queue emptied).
    pub settled: bool,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }

    pub fn percentile(&self, p: f64) -> u64 {
        if self.latencies_ms.is_empty() {
            return 0;
        }
        let i = ((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_ms[i.min(self.latencies_ms.len() - 1)]
    }
}

/// `clients` accounts, each with an online phone (sending delivery receipts) and one linked
/// web client; web client `i` sends to account `i + 1` for `duration`, keeping `window`
/// messages in flight. Every message goes to two devices (phone and web client).
pub async fn run_load(
    ws_url: &str,
    clients: usize,
    duration: Duration,
    window: usize,
) -> LoadReport {
    let numbers: Vec<String> = (0..clients).map(|i| format!("1555900{i:04}")).collect();
    let mut phones = Vec::new();
    let mut webs = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let p = phone(ws_url, number, &format!("Load {i}")).await;
        webs.push(Client::link(ws_url, &p, (i % 250) as u8).await);
        phones.push(p);
    }
    // The phones acknowledge on their own; drain their events.
    let drains: Vec<_> = phones
        .into_iter()
        .map(|mut p| {
            tokio::spawn(async move {
                while let Some(event) = p.next_event().await {
                    drop(event);
                }
            })
        })
        .collect();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let start = tokio::time::Instant::now();
    let stop_sending = start + duration;
    let total_sent = Arc::new(AtomicUsize::new(0));
    let total_delivered = Arc::new(AtomicUsize::new(0));
    let total_in_flight = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = webs
        .into_iter()
        .enumerate()
        .map(|(i, mut web)| {
            let to = format!("{}@c.us", numbers[(i + 1) % clients]);
            let (total_sent, total_delivered, total_in_flight, stop) = (
                Arc::clone(&total_sent),
                Arc::clone(&total_delivered),
                Arc::clone(&total_in_flight),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut sent = 0usize;
                let mut in_flight = 0usize;
                let mut latencies = Vec::new();
                // Every client keeps reading (and acknowledging) until told to stop, so that
                // no receipt is cut off by a closing socket.
                while !stop.load(SeqCst) {
                    let now_i = tokio::time::Instant::now();
                    while now_i < stop_sending && in_flight < window {
                        let stamp = now().as_millis().to_string();
                        if web.session.send_text(now(), &to, &stamp).is_err() {
                            break;
                        }
                        sent += 1;
                        in_flight += 1;
                        total_sent.fetch_add(1, SeqCst);
                        total_in_flight.fetch_add(1, SeqCst);
                    }
                    web.pump().await;
                    web.step().await;
                    while let Some(event) = web.queue.pop_front() {
                        match event {
                            Event::Reply { result, .. } => {
                                if matches!(result, Ok(Reply::MessageSent { .. })) {
                                    in_flight = in_flight.saturating_sub(1);
                                    total_in_flight.fetch_sub(1, SeqCst);
                                } else if let Err(e) = result {
                                    panic!("a request failed under load: {e}");
                                }
                            }
                            Event::Message { info, .. } if info.key.from_me != Some(true) => {
                                let stamp = info
                                    .message
                                    .as_ref()
                                    .and_then(|m| m.conversation.as_deref())
                                    .and_then(|t| t.parse::<u64>().ok());
                                if let Some(stamp) = stamp {
                                    latencies.push(now().as_millis().saturating_sub(stamp));
                                    total_delivered.fetch_add(1, SeqCst);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                web.close().await;
                (sent, latencies)
            })
        })
        .collect();
    // Sending stops at `stop_sending`; then every message must be stored, reach its web
    // client, and be acknowledged by every device (the server's queue empties).
    tokio::time::sleep_until(stop_sending).await;
    let status_url = ws_url
        .replacen("ws://", "http://", 1)
        .trim_end_matches("/ws")
        .to_owned()
        + "/status";
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut settled = false;
    while tokio::time::Instant::now() < deadline {
        if total_in_flight.load(SeqCst) == 0
            && total_delivered.load(SeqCst) >= total_sent.load(SeqCst)
        {
            let (_, body) = http("GET", &status_url, Vec::new()).await;
            let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if status["messages"]["queued"] == 0 {
                settled = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, SeqCst);
    let mut sent = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (s, l) = task.await.unwrap();
        sent += s;
        latencies.extend(l);
    }
    for d in drains {
        d.abort();
    }
    latencies.sort_unstable();
    LoadReport {
        clients,
        seconds: duration.as_secs_f64(),
        sent,
        delivered: latencies.len(),
        latencies_ms: latencies,
        settled,
    }
}
