//! Test support: a server per test on a free loopback port, a phone that speaks the phone
//! protocol (`wa_wire::phone`) over tokio-tungstenite with an Ed25519 identity, and a raw
//! HTTP/1.1 client. Every wait is bounded by [`WAIT`].

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test support: a panic is a failed test; each test binary uses a part of it"
)]

pub mod services;
pub mod spawned;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wa_server::{ChannelCodeSender, Config, DeliveredCode, RunningServer, Server};
use wa_wire::Jid;
use wa_wire::ids::user_jid;
use wa_wire::keys::{Claimed, DeviceList, IdentityKeys, KeyUpload, OneTimeKey, Signature};
use wa_wire::msg::{
    AckNotice, ContentKind, GroupAction, GroupOp, Incoming, OlmPayload, OlmType, Receipt,
    ReceiptKind, Relay, RelayTarget,
};
use wa_wire::phone::{
    Challenge, Claims, DeviceLists, GroupCreated, KeyCount, MediaAuth, PhoneEvent, PhoneRequest,
    Ready, Stored, auth_message,
};

/// The longest any test waits for one thing.
pub const WAIT: Duration = Duration::from_secs(15);

/// A server in a temporary directory, with the codes it sends.
pub struct TestServer {
    pub server: RunningServer,
    pub codes: mpsc::Receiver<DeliveredCode>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the defaults, changed by `configure`.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let (sender, codes) = ChannelCodeSender::new(64);
        let mut config = Config::new(dir.path());
        config.code_sender = std::sync::Arc::new(sender);
        configure(&mut config);
        let server = Server::start(config).await.unwrap();
        TestServer { server, codes, dir }
    }

    /// The next code the server sent for `number`.
    pub async fn code_for(&mut self, number: &str) -> String {
        loop {
            let delivered = tokio::time::timeout(WAIT, self.codes.recv())
                .await
                .unwrap()
                .unwrap();
            if delivered.number == number {
                return delivered.code.clone();
            }
        }
    }

    /// A registered phone with keys uploaded.
    pub async fn phone(&mut self, number: &str, seed: u8) -> Phone {
        let pending = Phone::request_code(&self.server.phone_url(), number, seed).await;
        let code = self.code_for(number).await;
        let mut phone = pending.verify(&code).await;
        assert_eq!(phone.upload_keys(5).await, 5);
        phone
    }
}

impl TestServer {
    /// A registered phone with keys uploaded, connected from the local address `from` (any
    /// `127.x.y.z`: another client address for the caps and budgets per address).
    pub async fn phone_from(&mut self, from: std::net::IpAddr, number: &str, seed: u8) -> Phone {
        let pending = Phone::request_code_from(&self.server.phone_url(), from, number, seed).await;
        let code = self.code_for(number).await;
        let mut phone = pending.verify(&code).await;
        assert_eq!(phone.upload_keys(5).await, 5);
        phone
    }
}

/// A WebSocket to `url` (`ws://host:port/path`) from the local address `from`: the upgrade's
/// error as it is (a refused connection's status is in `Error::Http`).
pub async fn ws_from(
    url: &str,
    from: std::net::IpAddr,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tokio_tungstenite::tungstenite::Error> {
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let addr: SocketAddr = authority.parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .unwrap()
        .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
    tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
    )
    .await
    .unwrap()
    .map(|(ws, _)| ws)
}

/// A phone's identity: an Ed25519 key from a fixed seed (tests are deterministic), and a
/// made-up Curve25519 key (the server never uses it).
pub fn identity(seed: u8) -> (SigningKey, IdentityKeys) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let identity = IdentityKeys {
        curve25519: [seed.wrapping_add(100); 32],
        ed25519: key.verifying_key().to_bytes(),
    };
    (key, identity)
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A phone connection.
pub struct Phone {
    ws: Socket,
    pub number: String,
    pub key: SigningKey,
    pub identity: IdentityKeys,
    next_id: u64,
    /// Pushes that arrived while a request waited for its answer.
    pub pending: VecDeque<PhoneEvent>,
}

/// A phone that asked for a code.
pub struct PendingRegistration {
    phone: Phone,
}

impl PendingRegistration {
    /// The connection, before it proves the code.
    pub fn phone_mut(&mut self) -> &mut Phone {
        &mut self.phone
    }

    /// Proves the code: a logged-in phone.
    pub async fn verify(mut self, code: &str) -> Phone {
        let (number, identity) = (self.phone.number.clone(), self.phone.identity);
        let ready: Ready = self
            .phone
            .call(|id| PhoneRequest::Verify {
                id,
                number: number.clone(),
                code: code.to_owned(),
                name: format!("Phone {number}"),
                identity,
                phone: None,
            })
            .await
            .unwrap();
        assert_eq!(ready.wid, user_jid(&number).unwrap());
        self.phone
    }
}

impl Phone {
    /// The phone of `number` with the identity of `seed` on `ws`, not logged in.
    fn over(ws: Socket, number: &str, seed: u8) -> Phone {
        let (key, identity) = identity(seed);
        Phone {
            ws,
            number: number.to_owned(),
            key,
            identity,
            next_id: 0,
            pending: VecDeque::new(),
        }
    }

    async fn connect(url: &str, number: &str, seed: u8) -> Phone {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
        Phone::over(ws, number, seed)
    }

    /// Connects and asks for a registration code.
    pub async fn request_code(url: &str, number: &str, seed: u8) -> PendingRegistration {
        Phone::connect(url, number, seed).await.ask_code().await
    }

    /// Asks for a registration code for this phone's number.
    async fn ask_code(mut self) -> PendingRegistration {
        let number = self.number.clone();
        let _: Value = self
            .call(|id| PhoneRequest::Register {
                id,
                number,
                name: String::new(),
            })
            .await
            .unwrap();
        PendingRegistration { phone: self }
    }

    /// Logs in again with the identity of `seed`: hello, then the signed challenge.
    pub async fn login(url: &str, number: &str, seed: u8) -> Phone {
        let phone = Phone::connect(url, number, seed).await;
        phone.log_in().await
    }

    /// Logs in over a socket with a small receive buffer (a phone that can stop reading and
    /// make the server's writes block soon).
    pub async fn login_small_buffer(url: &str, addr: SocketAddr, number: &str, seed: u8) -> Phone {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
        )
        .await
        .unwrap()
        .unwrap();
        Phone::over(ws, number, seed).log_in().await
    }

    async fn log_in(self) -> Phone {
        let mut phone = self;
        let number = phone.number.clone();
        let number = number.as_str();
        let n = number.to_owned();
        let challenge: Challenge = phone
            .call(|id| PhoneRequest::Hello {
                id,
                number: n.clone(),
            })
            .await
            .unwrap();
        let signature = phone.key.sign(&auth_message(number, &challenge.nonce));
        let ready: Ready = phone
            .call(|id| PhoneRequest::Auth {
                id,
                signature: Signature(signature.to_bytes()),
            })
            .await
            .unwrap();
        assert_eq!(ready.wid, user_jid(number).unwrap());
        phone
    }

    /// The socket, for a driver of its own (the load generator), with the pushes that arrived
    /// while requests waited for their answers.
    pub fn into_socket(self) -> (Socket, VecDeque<PhoneEvent>) {
        (self.ws, self.pending)
    }

    /// A phone connection from the local address `from` (see [`ws_from`]), not logged in.
    pub async fn connect_from(url: &str, from: std::net::IpAddr, number: &str, seed: u8) -> Phone {
        let ws = ws_from(url, from).await.unwrap();
        Phone::over(ws, number, seed)
    }

    /// Asks for a registration code from the local address `from`.
    pub async fn request_code_from(
        url: &str,
        from: std::net::IpAddr,
        number: &str,
        seed: u8,
    ) -> PendingRegistration {
        Phone::connect_from(url, from, number, seed)
            .await
            .ask_code()
            .await
    }

    /// Logs in again from the local address `from`.
    pub async fn login_from(url: &str, from: std::net::IpAddr, number: &str, seed: u8) -> Phone {
        Phone::connect_from(url, from, number, seed)
            .await
            .log_in()
            .await
    }

    /// The phone's address.
    pub fn jid(&self) -> Jid {
        user_jid(&self.number).unwrap()
    }

    /// Sends a request and waits for its answer (`Err((status, reason))` for an error).
    pub async fn call<T: DeserializeOwned>(
        &mut self,
        build: impl FnOnce(u64) -> PhoneRequest,
    ) -> Result<T, (u16, String)> {
        let id = self.send(build).await;
        self.answer(id).await
    }

    /// Sends a request without waiting: its id.
    pub async fn send(&mut self, build: impl FnOnce(u64) -> PhoneRequest) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let text = build(id).to_text();
        tokio::time::timeout(WAIT, self.ws.send(Message::Text(text.into())))
            .await
            .unwrap()
            .unwrap();
        id
    }

    /// Waits for the answer to request `id`, keeping pushes for later.
    pub async fn answer<T: DeserializeOwned>(&mut self, id: u64) -> Result<T, (u16, String)> {
        // Answers can come out of order (jobs finish in any order): one may be waiting already.
        let kept = self.pending.iter().position(|e| {
            matches!(e, PhoneEvent::Result { id: got, .. } | PhoneEvent::Error { id: Some(got), .. } if *got == id)
        });
        if let Some(event) = kept.and_then(|i| self.pending.remove(i)) {
            return match event {
                PhoneEvent::Result { data, .. } => Ok(serde_json::from_value(data).unwrap()),
                PhoneEvent::Error { status, error, .. } => Err((status, error)),
                _ => unreachable!("matched above"),
            };
        }
        loop {
            match self.read().await {
                PhoneEvent::Result { id: got, data } if got == id => {
                    return Ok(serde_json::from_value(data).unwrap());
                }
                PhoneEvent::Error {
                    id: Some(got),
                    status,
                    error,
                    ..
                } if got == id => {
                    return Err((status, error));
                }
                PhoneEvent::Error {
                    id: None,
                    status,
                    error,
                    ..
                } => {
                    panic!("connection error {status}: {error}")
                }
                other => self.pending.push_back(other),
            }
        }
    }

    /// The next event from the server.
    async fn read(&mut self) -> PhoneEvent {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an event in time")
                .expect("the socket is open")
                .expect("the socket works");
            if let Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// The next event, or `None` once the socket is closed or fails (a node that died); still
    /// bounded by [`WAIT`].
    pub async fn try_event(&mut self) -> Option<PhoneEvent> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an event in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends a request without waiting; `None` if the socket is gone.
    pub async fn try_send(&mut self, build: impl FnOnce(u64) -> PhoneRequest) -> Option<u64> {
        self.next_id += 1;
        let id = self.next_id;
        let text = build(id).to_text();
        match tokio::time::timeout(WAIT, self.ws.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Some(id),
            Ok(Err(_)) => None,
            Err(_) => panic!("a send did not finish in time"),
        }
    }

    /// Creates a group with `participants`: its JID.
    pub async fn create_group(&mut self, subject: &str, participants: Vec<Jid>) -> Jid {
        let action = GroupAction {
            op: GroupOp::Create,
            group: None,
            subject: Some(subject.to_owned()),
            participants,
        };
        let created: GroupCreated = self
            .call(|id| PhoneRequest::Group { id, action })
            .await
            .unwrap();
        created.gid.unwrap()
    }

    /// Relays a group message (`body`, the made-up group ciphertext) to every device of the
    /// group's other members, asking the directory for them first.
    pub async fn relay_to_group(
        &mut self,
        group: &Jid,
        members: Vec<Jid>,
        message_id: &str,
        body: &[u8],
    ) -> Result<Stored, (u16, String)> {
        let lists = self.devices(members).await;
        let me = self.jid();
        let devices: Vec<Jid> = lists
            .into_iter()
            .flat_map(|l| l.devices)
            .map(|d| d.device)
            .filter(|d| *d != me)
            .collect();
        let relay = Relay {
            to: group.clone(),
            id: message_id.to_owned(),
            kind: ContentKind::Text,
            group: Some(body.to_vec()),
            targets: devices
                .into_iter()
                .map(|device| RelayTarget { device, olm: None })
                .collect(),
        };
        self.call(|id| PhoneRequest::Relay { id, relay }).await
    }

    /// A receipt request for a message (for [`Phone::send`] / [`Phone::try_send`]).
    pub fn receipt_request(
        chat: &Jid,
        participant: Option<Jid>,
        message_id: &str,
    ) -> impl FnOnce(u64) -> PhoneRequest {
        let receipt = Receipt {
            kind: ReceiptKind::Delivered,
            chat: chat.clone(),
            id: message_id.to_owned(),
            participant,
        };
        move |id| PhoneRequest::Receipt { id, receipt }
    }

    /// The next push (not an answer).
    pub async fn event(&mut self) -> PhoneEvent {
        if let Some(event) = self.pending.pop_front() {
            return event;
        }
        self.read().await
    }

    /// The next message pushed to this phone (other pushes are skipped).
    pub async fn message(&mut self) -> Incoming {
        loop {
            if let PhoneEvent::Message { message } = self.event().await {
                return message;
            }
        }
    }

    /// The next ack for message `id` (other pushes are skipped).
    pub async fn ack(&mut self, id: &str) -> AckNotice {
        loop {
            if let PhoneEvent::Ack { ack } = self.event().await
                && ack.id == id
            {
                return ack;
            }
        }
    }

    /// Uploads `n` made-up one-time keys: how many the server holds.
    pub async fn upload_keys(&mut self, n: usize) -> u32 {
        let identity = self.identity;
        let one_time_keys = (0..n)
            .map(|i| OneTimeKey {
                id: format!("k{i}"),
                key: [u8::try_from(i % 256).unwrap(); 32],
            })
            .collect();
        let count: KeyCount = self
            .call(|id| PhoneRequest::Keys {
                id,
                upload: KeyUpload {
                    identity,
                    one_time_keys,
                    fallback: None,
                },
            })
            .await
            .unwrap();
        count.count
    }

    /// Device lists of `users`.
    pub async fn devices(&mut self, users: Vec<Jid>) -> Vec<DeviceList> {
        let lists: DeviceLists = self
            .call(|id| PhoneRequest::Devices { id, users })
            .await
            .unwrap();
        lists.lists
    }

    /// Claims one-time keys of `devices`.
    pub async fn prekeys(&mut self, devices: Vec<Jid>) -> Vec<Claimed> {
        let claims: Claims = self
            .call(|id| PhoneRequest::PreKeys { id, devices })
            .await
            .unwrap();
        claims.claimed
    }

    /// Upload auth for the media service.
    pub async fn media_conn(&mut self) -> MediaAuth {
        self.call(|id| PhoneRequest::MediaConn { id })
            .await
            .unwrap()
    }

    /// Relays `ciphertext` (made up: the server cannot read it) to every device of `to`, asking
    /// the directory for them first: the server's answer.
    pub async fn relay_to(
        &mut self,
        to: &Jid,
        message_id: &str,
        ciphertext: &[u8],
    ) -> Result<Stored, (u16, String)> {
        let lists = self.devices(vec![to.clone()]).await;
        let devices: Vec<Jid> = lists
            .into_iter()
            .flat_map(|l| l.devices)
            .map(|d| d.device)
            .collect();
        let relay = relay(to, message_id, &devices, ciphertext);
        self.call(|id| PhoneRequest::Relay { id, relay }).await
    }

    /// Sends a delivery receipt for a message from `from`.
    pub async fn receipt(&mut self, from: &Jid, message_id: &str) {
        let receipt = Receipt {
            kind: ReceiptKind::Delivered,
            chat: from.clone(),
            id: message_id.to_owned(),
            participant: None,
        };
        let _: Value = self
            .call(|id| PhoneRequest::Receipt { id, receipt })
            .await
            .unwrap();
    }

    /// Waits until the server closes the socket (an error or the end of the stream), skipping
    /// what comes before.
    pub async fn closed(&mut self) {
        tokio::time::timeout(WAIT, async {
            while let Some(Ok(message)) = self.ws.next().await {
                if let Message::Close(_) = message {
                    break;
                }
            }
        })
        .await
        .expect("the server closes the socket");
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.ws.close(None)).await;
    }

    /// The socket itself (for tests that misbehave on purpose).
    pub fn socket(&mut self) -> &mut Socket {
        &mut self.ws
    }
}

/// A relay of `ciphertext` for each of `devices`.
pub fn relay(to: &Jid, message_id: &str, devices: &[Jid], ciphertext: &[u8]) -> Relay {
    Relay {
        to: to.clone(),
        id: message_id.to_owned(),
        kind: ContentKind::Text,
        group: None,
        targets: devices
            .iter()
            .map(|device| RelayTarget {
                device: device.clone(),
                olm: Some(OlmPayload {
                    kind: OlmType::PreKey,
                    body: ciphertext.to_vec(),
                }),
            })
            .collect(),
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub async fn http(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    tokio::time::timeout(WAIT, stream.write_all(&bytes))
        .await
        .unwrap()
        .unwrap();
    read_response(&mut stream).await
}

/// Reads one HTTP response to the end of the connection.
pub async fn read_response(stream: &mut TcpStream) -> HttpResponse {
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    parse_response(&raw)
}

/// Parses a whole HTTP/1.1 response (content-length or chunked).
pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Percent-encodes a query or path value.
pub fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `/status` document.
pub async fn status(addr: SocketAddr) -> Value {
    let response = http("GET", addr, "/status", &[], b"").await;
    assert_eq!(response.status, 200);
    response.json()
}

/// The length of every file under `dir` (what `ls` shows; 0 for what cannot be read).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    dir_total(dir, |_, meta| meta.len())
}

/// The disk space a file takes, as `du` counts it: the blocks allocated (redb grows its file
/// by doubling it with `set_len`: the part not written yet takes no blocks).
fn allocated(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        meta.blocks() * 512
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}

/// What the server's files under `dir` hold: of the store's write-ahead log segments
/// (`*.wal`, `*.wal.old`), the records written (not the zeros a segment is grown by ahead of
/// them); of every other file, the disk space it takes ([`allocated`]).
pub fn stored_bytes(dir: &std::path::Path) -> u64 {
    dir_total(dir, |path, meta| {
        let name = path.to_string_lossy();
        if name.ends_with(".wal") || name.ends_with(".wal.old") {
            std::fs::read(path)
                .ok()
                .and_then(|bytes| wa_server::store::wal::decode(&bytes).ok())
                .map_or(meta.len(), |log| log.valid_len)
        } else {
            allocated(meta)
        }
    })
}

/// `size` of every file under `dir`, summed (0 for what cannot be read).
fn dir_total(dir: &std::path::Path, size: fn(&std::path::Path, &std::fs::Metadata) -> u64) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_total(&entry.path(), size),
            Ok(meta) => size(&entry.path(), &meta),
            Err(_) => 0,
        })
        .sum()
}
