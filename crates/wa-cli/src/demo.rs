//! `wa demo`: the whole system on one machine, in well under a minute.
//!
//! Starts the reference server in-process on a free loopback port with its data in a
//! temporary directory; registers two accounts (Alice and Bob), each a phone verified with the
//! code the server delivers, and links a web client to each by QR code approved by its phone;
//! sends messages both ways with their ticks (sent → delivered → read); prints both sides'
//! security codes; sends an image encrypted end to end and checks it on the other side; shows a
//! group message fanning out to four accounts; links new web clients that import their phone's
//! history (Android and iOS exports); takes Alice's phone offline and shows a message waiting
//! for it; links a legacy (mirror-mode) client next to the end-to-end ones; and at the end scans
//! every file of the server and of every store for what was sent: none may be found.
//!
//! With `--nodes N --store postgres://... --bus nats://...` the servers are N child processes of
//! this binary (`wa server`) sharing a fresh PostgreSQL schema and NATS cluster name
//! ([`cluster`]); accounts and clients are spread over the nodes, each with the others as
//! fallback URLs; one node is killed with SIGKILL mid-story and every message still arrives.
//!
//! Output is one line per step for people, or one JSON object per line with `--json`. A closed
//! standard output (`wa demo | head`) ends the demo quietly with success. Every wait is bounded
//! ([`STEP`]); a failed or timed-out step fails the demo with a message saying which.

mod cluster;
mod scan;

use std::collections::VecDeque;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::json;
use tokio::sync::mpsc;
use wa_client::phone::{Phone, PhoneConfig, PhoneEvent};
use wa_client::{Client, ClientConfig, Event, EventStream, Jid, MediaKind};
use wa_history::Format;
use wa_phone::PhoneSessionEvent;
use wa_server::DeliveredCode;
use wa_session::AckLevel;

/// Arguments of `wa demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// One JSON object a line (machine-readable events) instead of text for people.
    #[arg(long)]
    json: bool,
    /// Keep the server's data directory and every client and phone store under DIR (a new or
    /// empty directory) instead of a temporary directory deleted at the end.
    #[arg(long, value_name = "DIR")]
    keep_data: Option<PathBuf>,
    /// Run a cluster of N server nodes (child processes of this binary) instead of one
    /// in-process server; needs --store and --bus. One node is killed mid-story.
    #[arg(long, value_name = "N", requires_all = ["store", "bus"])]
    nodes: Option<usize>,
    /// The cluster's PostgreSQL database (a fresh schema is made for the run and dropped).
    #[arg(long, value_name = "URL", requires = "nodes")]
    store: Option<String>,
    /// The cluster's NATS server (a fresh subject prefix is used for the run).
    #[arg(long, value_name = "URL", requires = "nodes")]
    bus: Option<String>,
}

/// How long any one step may take before the demo fails.
pub(crate) const STEP: Duration = Duration::from_secs(30);

/// Runs the demo; a closed standard output ends it quietly with success.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let out = Out::new(args.json);
    let result = run_inner(&out, args);
    match result {
        Err(e) if is_output_closed(&e) => Ok(()),
        other => other,
    }
}

fn run_inner(out: &Out, args: DemoArgs) -> anyhow::Result<()> {
    let temp;
    let root = match &args.keep_data {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut entries =
                std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: --keep-data needs a new or empty directory",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("wa-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            temp.path().to_owned()
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = Instant::now();
    let backend = match (args.nodes, args.store, args.bus) {
        (Some(nodes), Some(store), Some(bus)) => Backend::Cluster { nodes, store, bus },
        _ => Backend::InProcess,
    };
    let servers_kept = match backend {
        Backend::InProcess => "the server's data in server/",
        Backend::Cluster { .. } => "the nodes' media and the schema's dump in nodes/",
    };
    // Ctrl-C drops the story: its servers, cluster nodes and schema go with it.
    let result = runtime.block_on(async {
        tokio::select! {
            told = story(out, &root, backend) => told,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    let summary = result?;
    if let Some(dir) = &args.keep_data {
        out.say(
            format_args!(
                "\nEverything is kept in {}: {servers_kept}, the stores in stores/ (their keys \
                 next to them, *.key).",
                dir.display()
            ),
            json!({"event": "kept", "dir": dir}),
        )?;
    }
    let seconds = started.elapsed().as_secs_f64();
    out.say(
        format_args!("\nAll good in {seconds:.1} s: {summary}"),
        json!({"event": "done", "seconds": seconds, "summary": summary}),
    )
}

/// Where the servers run.
enum Backend {
    /// One server in this process, its data in `<root>/server`.
    InProcess,
    /// `nodes` child processes sharing a PostgreSQL database and a NATS bus.
    Cluster {
        nodes: usize,
        store: String,
        bus: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Output

/// Standard output, for people or for machines.
pub(crate) struct Out {
    json: bool,
    started: Instant,
}

/// Standard output was closed by its reader.
#[derive(Debug)]
struct OutputClosed;

impl fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for OutputClosed {}

fn is_output_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<OutputClosed>())
}

impl Out {
    fn new(json: bool) -> Out {
        Out {
            json,
            started: Instant::now(),
        }
    }

    /// One step: `text` for people, or `event` (with the elapsed milliseconds) for machines.
    pub(crate) fn say(
        &self,
        text: impl fmt::Display,
        mut event: serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        let written = if self.json {
            if let Some(map) = event.as_object_mut() {
                let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                map.insert("ms".to_owned(), ms.into());
            }
            writeln!(stdout, "{event}")
        } else {
            writeln!(stdout, "{text}")
        };
        match written.and_then(|()| stdout.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputClosed.into()),
            Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
        }
    }
}

/// A QR code in half blocks, dark on light whatever the terminal's colours.
fn render_qr(text: &str) -> anyhow::Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code =
        qrcode::QrCode::new(text.as_bytes()).context("the QR text does not fit a QR code")?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

// ---------------------------------------------------------------------------------------------
// Waiting for events

/// What ends a wait early: a failure the driver reported.
trait Fatal {
    fn fatal(&self) -> Option<String>;
}

impl Fatal for Event {
    fn fatal(&self) -> Option<String> {
        match self {
            Event::Session(wa_session::Event::LinkFailed(e)) => {
                Some(format!("linking failed: {e}"))
            }
            Event::Session(wa_session::Event::LoginFailed { error, .. }) => {
                Some(format!("login failed: {error}"))
            }
            Event::HistoryFailed(e) => Some(format!("the history import failed: {e}")),
            Event::StoreFailed(e) => Some(format!("a store commit failed: {e}")),
            _ => None,
        }
    }
}

impl Fatal for PhoneEvent {
    fn fatal(&self) -> Option<String> {
        match self {
            PhoneEvent::Session(PhoneSessionEvent::Failed(e)) => {
                Some(format!("the phone failed: {e}"))
            }
            PhoneEvent::HistoryFailed { error, .. } => {
                Some(format!("the history export failed: {error}"))
            }
            PhoneEvent::StoreFailed(e) => Some(format!("a store commit failed: {e}")),
            _ => None,
        }
    }
}

/// Events kept until a wait takes them, so that steps may wait in any order.
struct Inbox<E> {
    who: String,
    stream: EventStream<E>,
    pending: VecDeque<E>,
}

/// Events kept unclaimed at most (the oldest go first).
const PENDING: usize = 4096;

impl<E: Fatal> Inbox<E> {
    fn new(who: impl Into<String>, stream: EventStream<E>) -> Inbox<E> {
        Inbox {
            who: who.into(),
            stream,
            pending: VecDeque::new(),
        }
    }

    /// The first event (kept or new) `pick` takes, within [`STEP`].
    async fn wait<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&E) -> Option<T>,
    ) -> anyhow::Result<T> {
        let kept = self
            .pending
            .iter()
            .enumerate()
            .find_map(|(i, e)| pick(e).map(|t| (i, t)));
        if let Some((i, found)) = kept {
            self.pending.remove(i);
            return Ok(found);
        }
        let who = self.who.clone();
        let waited = tokio::time::timeout(STEP, async {
            loop {
                let Some(event) = self.stream.next().await else {
                    bail!("{who} stopped");
                };
                if let Some(found) = pick(&event) {
                    return Ok(found);
                }
                if let Some(why) = event.fatal() {
                    bail!("{who}: {why}");
                }
                if self.pending.len() == PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back(event);
            }
        })
        .await;
        match waited {
            Ok(result) => result.with_context(|| format!("waiting for {what}")),
            Err(_) => Err(anyhow!(
                "timed out after {} s waiting for {what} ({})",
                STEP.as_secs(),
                self.who
            )),
        }
    }
}

/// `future`, within [`STEP`], its error explained by `what`.
async fn step<T, E>(what: &str, future: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(STEP, future).await {
        Ok(result) => result.with_context(|| what.to_owned()),
        Err(_) => Err(anyhow!("timed out after {} s: {what}", STEP.as_secs())),
    }
}

fn text_of(info: &wa_proto::WebMessageInfo) -> Option<&str> {
    info.message.as_ref().and_then(|m| m.text())
}

fn has_id(info: &wa_proto::WebMessageInfo, id: &str) -> bool {
    info.key.id.as_deref() == Some(id)
}

/// Waits for web message `id`; returns it.
async fn web_message(
    inbox: &mut Inbox<Event>,
    id: &str,
) -> anyhow::Result<wa_proto::WebMessageInfo> {
    inbox
        .wait(&format!("message {id}"), |e| match e {
            Event::Session(wa_session::Event::Message { info, .. }) if has_id(info, id) => {
                Some((**info).clone())
            }
            _ => None,
        })
        .await
}

/// Waits for a phone's message `id`; returns its text.
async fn phone_message(inbox: &mut Inbox<PhoneEvent>, id: &str) -> anyhow::Result<String> {
    inbox
        .wait(&format!("message {id}"), |e| match e {
            PhoneEvent::Session(PhoneSessionEvent::Message(received)) if received.id == id => Some(
                received
                    .envelope
                    .message
                    .as_ref()
                    .and_then(|m| m.text())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => None,
        })
        .await
}

/// Waits until message `id` reached `level` at its sender.
async fn ack(inbox: &mut Inbox<Event>, id: &str, level: AckLevel) -> anyhow::Result<()> {
    inbox
        .wait(
            &format!("the {} ack of {id}", level_name(level)),
            |e| match e {
                Event::Session(wa_session::Event::Ack { ids, level: l, .. })
                    if *l >= level && ids.iter().any(|i| i == id) =>
                {
                    Some(())
                }
                _ => None,
            },
        )
        .await
}

fn level_name(level: AckLevel) -> &'static str {
    match level {
        AckLevel::Pending => "pending",
        AckLevel::Sent => "sent",
        AckLevel::Delivered => "delivered",
        AckLevel::Read => "read",
        AckLevel::Played => "played",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------------------------
// The cast

/// Where the servers are, and the codes they deliver.
pub(crate) struct World {
    /// `<root>/stores`: every client and phone store.
    stores: PathBuf,
    codes: mpsc::Receiver<DeliveredCode>,
    /// The WebSocket URLs (web clients) and phone socket URLs of the nodes, in order.
    ws: Vec<String>,
    phone: Vec<String>,
    /// Every text sent, and the other secrets the scan looks for.
    secrets: Vec<(String, Vec<u8>)>,
    /// Every text sent (also among the secrets).
    texts: Vec<String>,
    /// Whether a QR code was drawn already.
    qr_drawn: bool,
}

impl World {
    fn secret_text(&mut self, text: &str) {
        self.secrets
            .push((format!("text {text:?}"), text.as_bytes().to_vec()));
        self.texts.push(text.to_owned());
    }

    fn ws_url(&self, node: usize) -> String {
        self.ws
            .get(node % self.ws.len().max(1))
            .cloned()
            .unwrap_or_default()
    }

    fn phone_url(&self, node: usize) -> String {
        self.phone
            .get(node % self.phone.len().max(1))
            .cloned()
            .unwrap_or_default()
    }

    fn client_config(&self, store: &str, node: usize) -> ClientConfig {
        let mut config = ClientConfig::new(self.ws_url(node))
            .with_store(self.stores.join(format!("{store}.redb")));
        config.connect_timeout = Duration::from_secs(5);
        config.fallback_urls = others(&self.ws, node);
        config
    }

    fn phone_config(&self, number: &str, name: &str, node: usize) -> PhoneConfig {
        let mut config = PhoneConfig::new(
            self.phone_url(node),
            number,
            name,
            self.stores
                .join(format!("phone-{}.redb", name.to_lowercase())),
        );
        config.connect_timeout = Duration::from_secs(5);
        config.fallback_urls = others(&self.phone, node);
        config
    }

    /// The code the server delivered for `number`.
    async fn code(&mut self, number: &str) -> anyhow::Result<String> {
        let codes = &mut self.codes;
        tokio::time::timeout(STEP, async {
            while let Some(delivered) = codes.recv().await {
                if delivered.number == number {
                    return Ok(delivered.code.clone());
                }
            }
            bail!("the server stopped delivering codes")
        })
        .await
        .map_err(|_| anyhow!("timed out waiting for the verification code of +{number}"))?
    }
}

/// The URLs of the nodes after `node`, in turn (a cluster's fallbacks; none alone).
fn others(urls: &[String], node: usize) -> Vec<String> {
    let count = urls.len();
    (1..count)
        .filter_map(|k| urls.get((node + k) % count).cloned())
        .collect()
}

/// An account's phone.
struct Handset {
    name: &'static str,
    number: &'static str,
    node: usize,
    platform: Format,
    phone: Phone,
    events: Inbox<PhoneEvent>,
}

impl Handset {
    fn user(&self) -> &Jid {
        self.phone.user()
    }
}

/// A web client.
struct Web {
    label: String,
    client: Client,
    events: Inbox<Event>,
    device: Jid,
}

/// Registers a phone with the code the server delivers.
async fn register(
    out: &Out,
    world: &mut World,
    name: &'static str,
    number: &'static str,
    platform: Format,
    node: usize,
) -> anyhow::Result<Handset> {
    let mut config = world.phone_config(number, name, node);
    config.platform = platform;
    let (phone, events) = Phone::register(config)
        .await
        .with_context(|| format!("starting {name}'s phone"))?;
    let code = world.code(number).await?;
    out.say(
        format_args!(
            "[{name}'s phone] +{number} asks to register; the server sends the code {code}"
        ),
        json!({"event": "code", "who": name, "number": number, "code": code}),
    )?;
    let ready = step(
        &format!("{name}'s phone verifying its code"),
        phone.verify(&code),
    )
    .await?;
    out.say(
        format_args!(
            "[{name}'s phone] verified: account {} ({}, history exports in the {platform} format)",
            ready.wid,
            platform_name(platform)
        ),
        json!({"event": "registered", "who": name, "wid": ready.wid.to_string(), "platform": platform.to_string(), "node": node}),
    )?;
    Ok(Handset {
        name,
        number,
        node,
        platform,
        phone,
        events: Inbox::new(format!("{name}'s phone"), events),
    })
}

fn platform_name(format: Format) -> &'static str {
    match format {
        Format::Android => "an Android phone",
        _ => "an iPhone",
    }
}

/// Starts a web client, shows its QR code, has `phone` approve it and waits until it is in.
async fn link(
    out: &Out,
    world: &mut World,
    handset: &mut Handset,
    label: &str,
    store: &str,
    node: usize,
    mirror: bool,
) -> anyhow::Result<Web> {
    let mut config = world.client_config(store, node);
    if mirror {
        config.session.end_to_end = false;
        config.session.delivery_receipts = false;
    }
    let (client, events) = Client::start(config)
        .await
        .with_context(|| format!("starting {label}"))?;
    let mut events = Inbox::new(label.to_owned(), events);
    let qr = events
        .wait("its QR code", |e| match e {
            Event::Session(wa_session::Event::Qr { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .await?;
    let kind = if mirror {
        "a legacy (mirror-mode) client"
    } else {
        "an end-to-end client"
    };
    let short: String = qr.chars().take(24).collect();
    // The first QR code is drawn; the others are named (they are scanned the same way).
    let drawn = if world.qr_drawn {
        String::new()
    } else {
        format!(":\n{}", render_qr(&qr)?.trim_end())
    };
    out.say(
        format_args!(
            "\n[{label}] {kind} shows a QR code ({} parts: {short}…){drawn}",
            qr.split(',').count(),
        ),
        json!({"event": "qr", "who": label, "text": qr, "mirror": mirror}),
    )?;
    world.qr_drawn = true;
    let name = handset.name;
    let linked = step(
        &format!("{name}'s phone approving the QR code"),
        handset.phone.link(&qr),
    )
    .await?;
    let account = events
        .wait("the login", |e| match e {
            Event::Session(wa_session::Event::Connected { account }) => Some(account.clone()),
            _ => None,
        })
        .await?;
    let wid = account
        .wid
        .as_ref()
        .map_or_else(|| handset.user().to_string(), ToString::to_string);
    out.say(
        format_args!(
            "[{name}'s phone] scanned it: {label} is linked to {wid} as device {}",
            linked.device
        ),
        json!({"event": "linked", "who": label, "account": wid, "device": linked.device.to_string(), "mirror": mirror}),
    )?;
    Ok(Web {
        label: label.to_owned(),
        client,
        events,
        device: linked.device,
    })
}

/// Waits for the history import of a newly linked end-to-end client, and says what came.
async fn history(
    out: &Out,
    handset: &mut Handset,
    web: &mut Web,
    quiet: bool,
) -> anyhow::Result<wa_client::Imported> {
    let imported = web
        .events
        .wait("the phone's history", |e| match e {
            Event::HistoryImported(imported) => Some(*imported),
            _ => None,
        })
        .await?;
    let device = web.device.clone();
    let (chats, messages) = handset
        .events
        .wait("the history export", |e| match e {
            PhoneEvent::HistorySent {
                device: d,
                chats,
                messages,
            } if *d == device => Some((*chats, *messages)),
            _ => None,
        })
        .await?;
    if !quiet {
        out.say(
            format_args!(
                "[{}'s phone] exported its history ({} format): {chats} chats, {messages} messages, \
                 encrypted, uploaded, announced to the new device\n[{}] imported it: {} chats, {} \
                 contacts, {} messages",
                handset.name, handset.platform, web.label, imported.chats, imported.contacts, imported.messages
            ),
            json!({"event": "history_imported", "who": web.label, "format": handset.platform.to_string(),
                   "chats": imported.chats, "contacts": imported.contacts, "messages": imported.messages,
                   "new_messages": imported.new_messages}),
        )?;
    }
    Ok(imported)
}

/// Sends `text` from a web client to `to` and shows its ticks up to blue.
async fn text_with_ticks(
    out: &Out,
    world: &mut World,
    from: &mut Web,
    from_user: &Jid,
    to: &mut Web,
    to_user: &Jid,
    text: &str,
) -> anyhow::Result<String> {
    world.secret_text(text);
    let arrow = format!("[{} → {}]", from.label, to.label);
    let id = step(
        &format!("{arrow} sending"),
        from.client.send_text(to_user, text),
    )
    .await?;
    out.say(
        format_args!("{arrow} \"{text}\" ✓ sent (the server stored it)"),
        json!({"event": "ack", "id": id, "level": "sent", "from": from.label, "to": to.label}),
    )?;
    let info = web_message(&mut to.events, &id).await?;
    if text_of(&info) != Some(text) {
        bail!("{} got message {id} but not the text sent", to.label);
    }
    out.say(
        format_args!("[{}] {}: {}", to.label, info.push_name.as_deref().unwrap_or("?"), text),
        json!({"event": "message", "who": to.label, "id": id, "text": text, "from": from_user.to_string()}),
    )?;
    ack(&mut from.events, &id, AckLevel::Delivered).await?;
    out.say(
        format_args!("{arrow} ✓✓ delivered"),
        json!({"event": "ack", "id": id, "level": "delivered", "from": from.label, "to": to.label}),
    )?;
    step(
        &format!("{} marking it read", to.label),
        to.client.mark_read(from_user, &id, None),
    )
    .await?;
    ack(&mut from.events, &id, AckLevel::Read).await?;
    out.say(
        format_args!("{arrow} ✓✓ read (blue)"),
        json!({"event": "ack", "id": id, "level": "read", "from": from.label, "to": to.label}),
    )?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// The story

async fn story(out: &Out, root: &Path, backend: Backend) -> anyhow::Result<String> {
    let stores = root.join("stores");
    std::fs::create_dir_all(&stores).with_context(|| format!("creating {}", stores.display()))?;
    let server_dir = root.join("server");
    let (sender, codes) = wa_server::ChannelCodeSender::new(64);
    let mut servers = match backend {
        Backend::InProcess => {
            let mut config = wa_server::Config::new(&server_dir);
            config.code_sender = std::sync::Arc::new(sender);
            config.shutdown_grace = Duration::from_secs(1);
            let server = wa_server::Server::start(config)
                .await
                .context("starting the reference server")?;
            out.say(
                format_args!(
                    "A reference server listens on {} (data in {}).",
                    server.ws_url(),
                    server_dir.display()
                ),
                json!({"event": "server", "ws": server.ws_url(), "phone": server.phone_url(), "data": server_dir}),
            )?;
            Servers::InProcess(server)
        }
        Backend::Cluster { nodes, store, bus } => {
            drop(sender);
            Servers::Cluster(cluster::Cluster::start(out, root, nodes, &store, &bus).await?)
        }
    };
    let codes = match &mut servers {
        Servers::InProcess(_) => codes,
        Servers::Cluster(cluster) => cluster.take_codes()?,
    };
    let (ws, phone) = servers.urls();
    let mut world = World {
        stores,
        codes,
        ws,
        phone,
        secrets: Vec::new(),
        texts: Vec::new(),
        qr_drawn: false,
    };
    let told = chapters(out, &mut world, &mut servers).await;
    if matches!(servers, Servers::Cluster(_)) {
        // The schema's dump shows binary columns in hex.
        let hex: Vec<_> = world
            .secrets
            .iter()
            .map(|(what, bytes)| (format!("{what} (hex)"), hex::encode(bytes).into_bytes()))
            .collect();
        world.secrets.extend(hex);
    }
    let shut = servers.shutdown(out).await;
    let summary = told?;
    shut?;
    // The scan: every file of the server (or every node) and of every store.
    let report = scan::scan(root, &world.secrets)?;
    let found = report.found.len();
    if found > 0 {
        for (file, what) in &report.found {
            out.say(
                format_args!("FOUND {what} in clear in {}", file.display()),
                json!({"event": "plaintext_found", "file": file, "what": what}),
            )?;
        }
    }
    out.say(
        format_args!(
            "\nScanned {} files ({} bytes) of the server side and of the {} stores for {} secrets \
             (every text sent, the image's media key and pixels): {}.",
            report.files,
            report.bytes,
            report.stores,
            world.secrets.len(),
            if found == 0 {
                "none found in clear".to_owned()
            } else {
                format!("{found} found in clear")
            }
        ),
        json!({"event": "scan", "files": report.files, "bytes": report.bytes, "stores": report.stores,
               "server_files": report.server_files, "secrets": world.secrets.len(), "found": found,
               "texts": world.texts}),
    )?;
    if found > 0 {
        bail!("{found} secrets were found in clear on disk");
    }
    Ok(summary)
}

/// The running servers.
enum Servers {
    InProcess(wa_server::RunningServer),
    Cluster(cluster::Cluster),
}

impl Servers {
    fn urls(&self) -> (Vec<String>, Vec<String>) {
        match self {
            Servers::InProcess(server) => (vec![server.ws_url()], vec![server.phone_url()]),
            Servers::Cluster(cluster) => cluster.urls(),
        }
    }

    async fn shutdown(self, out: &Out) -> anyhow::Result<()> {
        match self {
            Servers::InProcess(server) => {
                server.shutdown().await;
                Ok(())
            }
            Servers::Cluster(cluster) => cluster.shutdown(out).await,
        }
    }

    /// Kills one node mid-story (a cluster only); `None` alone.
    fn kill_one(&mut self, out: &Out) -> anyhow::Result<Option<usize>> {
        match self {
            Servers::InProcess(_) => Ok(None),
            Servers::Cluster(cluster) => cluster.kill(out, 0).map(Some),
        }
    }
}

async fn chapters(out: &Out, world: &mut World, servers: &mut Servers) -> anyhow::Result<String> {
    let nodes = world.ws.len();
    // Two accounts, each a phone and a web client linked by QR code.
    let mut alice_phone = register(out, world, "Alice", "15550000001", Format::Android, 0).await?;
    let mut bob_phone = register(out, world, "Bob", "15550000002", Format::Ios, 1 % nodes).await?;
    let (alice, bob) = (alice_phone.user().clone(), bob_phone.user().clone());
    let mut alice_web = link(
        out,
        world,
        &mut alice_phone,
        "Alice's web",
        "web-alice",
        1 % nodes,
        false,
    )
    .await?;
    history(out, &mut alice_phone, &mut alice_web, true).await?;
    let mut bob_web = link(
        out,
        world,
        &mut bob_phone,
        "Bob's web",
        "web-bob",
        2 % nodes,
        false,
    )
    .await?;
    history(out, &mut bob_phone, &mut bob_web, true).await?;

    // Texts both ways, with their ticks.
    out.say(
        "\nMessages, end to end, with their ticks:",
        json!({"event": "chapter", "name": "messages"}),
    )?;
    let first = "Hi Bob! Alice here, from my web client.";
    text_with_ticks(
        out,
        world,
        &mut alice_web,
        &alice,
        &mut bob_web,
        &bob,
        first,
    )
    .await?;
    let reply = "Hello Alice, Bob here: got it, blue ticks on their way.";
    text_with_ticks(
        out,
        world,
        &mut bob_web,
        &bob,
        &mut alice_web,
        &alice,
        reply,
    )
    .await?;
    // Bob's phone saw the whole conversation too.
    let from_phone = "And this one is from Bob's phone.";
    world.secret_text(from_phone);
    let id = step(
        "Bob's phone sending",
        bob_phone.phone.send_text(&alice, from_phone),
    )
    .await?;
    let got = web_message(&mut alice_web.events, &id).await?;
    out.say(
        format_args!("[Bob's phone → Alice's web] \"{}\" ✓", text_of(&got).unwrap_or_default()),
        json!({"event": "message", "who": "Alice's web", "id": id, "text": from_phone, "from": bob.to_string()}),
    )?;

    // Security codes: the same 60 digits on both sides.
    let codes = [
        (
            "Alice's web",
            step(
                "Alice's security code",
                alice_web.client.security_code(&bob),
            )
            .await?,
        ),
        (
            "Bob's web",
            step("Bob's security code", bob_web.client.security_code(&alice)).await?,
        ),
        (
            "Alice's phone",
            step(
                "Alice's phone's security code",
                alice_phone.phone.security_code(&bob),
            )
            .await?,
        ),
        (
            "Bob's phone",
            step(
                "Bob's phone's security code",
                bob_phone.phone.security_code(&alice),
            )
            .await?,
        ),
    ];
    out.say(
        "\nSecurity codes (compare them in person):",
        json!({"event": "chapter", "name": "security codes"}),
    )?;
    let mut digits = Vec::new();
    for (who, code) in &codes {
        let code = code
            .as_ref()
            .with_context(|| format!("{who} has no security code yet"))?;
        out.say(
            format_args!("[{who}] {code}"),
            json!({"event": "security_code", "who": who, "code": code.digits()}),
        )?;
        digits.push(code.digits().to_owned());
    }
    let equal = digits.windows(2).all(|w| w.first() == w.last());
    out.say(
        format_args!(
            "The {} codes are {}.",
            digits.len(),
            if equal { "equal" } else { "DIFFERENT" }
        ),
        json!({"event": "codes_match", "equal": equal, "count": digits.len()}),
    )?;
    if !equal {
        bail!("the security codes differ");
    }

    // An image, drawn here, encrypted end to end.
    out.say(
        "\nAn image, end to end:",
        json!({"event": "chapter", "name": "image"}),
    )?;
    let image = draw_image(96, 64);
    let caption = "A gradient with a moon, drawn by the demo.";
    world.secret_text(caption);
    world.secrets.push((
        "the image's pixels".to_owned(),
        image.get(54..54 + 96 * 3).unwrap_or_default().to_vec(),
    ));
    let image_id = step(
        "sending the image",
        alice_web
            .client
            .send_media(&bob, MediaKind::Image, &image, "image/bmp", Some(caption)),
    )
    .await?;
    out.say(
        format_args!(
            "[Alice's web → Bob] an image of {} bytes: encrypted with a fresh media key, uploaded, \
             the key sent inside the end-to-end message ✓",
            image.len()
        ),
        json!({"event": "image_sent", "id": image_id, "bytes": image.len()}),
    )?;
    let info = web_message(&mut bob_web.events, &image_id).await?;
    let key = info
        .message
        .as_ref()
        .and_then(|m| m.media())
        .and_then(|m| m.media_key)
        .context("the image message has no media key")?
        .to_vec();
    world
        .secrets
        .push(("the image's media key".to_owned(), key.clone()));
    world.secrets.push((
        "the image's media key (base64)".to_owned(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &key).into_bytes(),
    ));
    let downloaded = step(
        "downloading the image",
        bob_web.client.download_media(&info),
    )
    .await?;
    if downloaded != image {
        bail!("the image Bob decrypted differs from the one Alice sent");
    }
    out.say(
        format_args!(
            "[Bob's web] downloaded and decrypted it: MAC and hashes check, {} bytes identical to \
             Alice's, caption \"{}\"",
            downloaded.len(),
            text_of(&info).unwrap_or_default()
        ),
        json!({"event": "image_verified", "id": image_id, "bytes": downloaded.len(), "identical": true}),
    )?;

    // A group of four accounts.
    out.say(
        "\nA group of four:",
        json!({"event": "chapter", "name": "group"}),
    )?;
    let mut carol_phone = register(
        out,
        world,
        "Carol",
        "15550000003",
        Format::Android,
        2 % nodes,
    )
    .await?;
    let mut dave_phone = register(out, world, "Dave", "15550000004", Format::Android, 0).await?;
    let (carol, dave) = (carol_phone.user().clone(), dave_phone.user().clone());
    let subject = "wa-rs demo";
    let group = step(
        "creating the group",
        alice_web
            .client
            .group_create(subject, &[bob.clone(), carol.clone(), dave.clone()]),
    )
    .await?;
    out.say(
        format_args!(
            "[Alice's web] created the group \"{subject}\" ({group}) with Bob, Carol and Dave"
        ),
        json!({"event": "group_created", "gid": group.to_string(), "members": 4}),
    )?;
    let group_text = "Hello everyone, this is the demo group!";
    world.secret_text(group_text);
    let group_id = step(
        "sending to the group",
        alice_web.client.send_text(&group, group_text),
    )
    .await?;
    let mut reached = Vec::new();
    web_message(&mut bob_web.events, &group_id).await?;
    reached.push("Bob's web");
    for handset in [
        &mut bob_phone,
        &mut carol_phone,
        &mut dave_phone,
        &mut alice_phone,
    ] {
        let said = phone_message(&mut handset.events, &group_id).await?;
        if said != group_text {
            bail!(
                "{}'s phone got the group message with another text",
                handset.name
            );
        }
        reached.push(match handset.name {
            "Bob" => "Bob's phone",
            "Carol" => "Carol's phone",
            "Dave" => "Dave's phone",
            _ => "Alice's phone (her own copy)",
        });
    }
    out.say(
        format_args!(
            "[Alice's web → group] \"{group_text}\" reached {}",
            reached.join(", ")
        ),
        json!({"event": "group_fanout", "id": group_id, "devices": reached}),
    )?;
    let answer = "Carol here: hello group!";
    world.secret_text(answer);
    let answer_id = step(
        "Carol answering",
        carol_phone.phone.send_text(&group, answer),
    )
    .await?;
    let got = web_message(&mut alice_web.events, &answer_id).await?;
    web_message(&mut bob_web.events, &answer_id).await?;
    out.say(
        format_args!(
            "[Carol's phone → group] \"{answer}\" reached Alice's and Bob's web clients (from {})",
            got.key.participant.as_deref().unwrap_or("?")
        ),
        json!({"event": "group_message", "id": answer_id, "from": carol.to_string()}),
    )?;
    step("Carol reading", carol_phone.phone.read(&group, &group_id)).await?;
    step("Dave reading", dave_phone.phone.read(&group, &group_id)).await?;
    ack(&mut alice_web.events, &group_id, AckLevel::Read).await?;
    out.say(
        "[Alice's web] the group message is read ✓✓ (blue)",
        json!({"event": "ack", "id": group_id, "level": "read", "from": "Alice's web", "to": "group"}),
    )?;

    // A node dies (a cluster only): the story goes on.
    let killed = servers.kill_one(out)?;
    if let Some(node) = killed {
        let text = "Sent after a node died.";
        world.secret_text(text);
        let id = step(
            "sending after the node died",
            bob_web.client.send_text(&alice, text),
        )
        .await?;
        web_message(&mut alice_web.events, &id).await?;
        phone_message(&mut alice_phone.events, &id).await?;
        out.say(
            format_args!("[Bob's web → Alice] \"{text}\" arrived on Alice's web client and phone (node {node} is gone)"),
            json!({"event": "after_kill", "id": id, "node": node}),
        )?;
    }

    // New web clients import their phone's history.
    out.say(
        "\nHistory for newly linked clients:",
        json!({"event": "chapter", "name": "history"}),
    )?;
    let mut laptop = link(
        out,
        world,
        &mut alice_phone,
        "Alice's laptop",
        "web-alice-laptop",
        2 % nodes,
        false,
    )
    .await?;
    history(out, &mut alice_phone, &mut laptop, false).await?;
    show_history(out, &laptop, &bob, "Bob", &[first, reply, from_phone]).await?;
    let mut tablet = link(
        out,
        world,
        &mut bob_phone,
        "Bob's tablet",
        "web-bob-tablet",
        0,
        false,
    )
    .await?;
    history(out, &mut bob_phone, &mut tablet, false).await?;
    show_history(out, &tablet, &alice, "Alice", &[first, reply, from_phone]).await?;
    let group_history = step(
        "reading the group's history",
        tablet.client.history(&group, 10),
    )
    .await?;
    if !group_history.iter().any(|m| text_of(m) == Some(group_text)) {
        bail!("Bob's tablet did not import the group's history");
    }

    // Alice's phone goes offline; a message waits for it.
    out.say(
        "\nAn offline phone:",
        json!({"event": "chapter", "name": "offline"}),
    )?;
    let Handset {
        name,
        number,
        node,
        platform,
        phone,
        events,
    } = alice_phone;
    drop(events);
    phone.shutdown().await;
    out.say(
        "[Alice's phone] goes offline",
        json!({"event": "offline", "who": "Alice's phone"}),
    )?;
    let waiting = "Alice, read this when your phone is back.";
    world.secret_text(waiting);
    let waiting_id = step(
        "Bob's phone sending to offline Alice",
        bob_phone.phone.send_text(&alice, waiting),
    )
    .await?;
    web_message(&mut alice_web.events, &waiting_id).await?;
    out.say(
        "[Bob's phone → Alice] sent ✓; Alice's web client has it; the server keeps her phone's \
         copy (encrypted for that phone only)",
        json!({"event": "queued", "id": waiting_id, "for": "Alice's phone"}),
    )?;
    let mut config = world.phone_config(number, name, node);
    config.platform = platform;
    let (phone, events) = Phone::login(config)
        .await
        .context("restarting Alice's phone")?;
    let mut alice_phone = Handset {
        name,
        number,
        node,
        platform,
        phone,
        events: Inbox::new("Alice's phone", events),
    };
    step("Alice's phone logging in again", alice_phone.phone.ready()).await?;
    let said = phone_message(&mut alice_phone.events, &waiting_id).await?;
    if said != waiting {
        bail!("Alice's phone got the waiting message with another text");
    }
    out.say(
        format_args!("[Alice's phone] back online: \"{said}\" arrived"),
        json!({"event": "arrived_after_reconnect", "id": waiting_id, "who": "Alice's phone"}),
    )?;

    // A legacy web client mirrors Alice's phone.
    out.say(
        "\nA legacy (mirror-mode) client:",
        json!({"event": "chapter", "name": "mirror"}),
    )?;
    let mut mirror = link(
        out,
        world,
        &mut alice_phone,
        "Alice's legacy web",
        "web-alice-mirror",
        1 % nodes,
        true,
    )
    .await?;
    alice_phone
        .events
        .wait("the mirror client kept", |e| match e {
            PhoneEvent::Session(PhoneSessionEvent::MirrorsChanged(m)) => {
                (!m.is_empty()).then_some(())
            }
            _ => None,
        })
        .await?;
    let chats = mirror
        .events
        .wait("the chat list", |e| match e {
            Event::Session(wa_session::Event::Chats(chats)) => Some(chats.len()),
            _ => None,
        })
        .await?;
    out.say(
        format_args!("[Alice's legacy web] got {chats} chats from her phone (no end-to-end layer: the phone relays)"),
        json!({"event": "mirror_chats", "chats": chats}),
    )?;
    let to_mirror = "Bob to Alice, read on her legacy client.";
    world.secret_text(to_mirror);
    let id = step(
        "Bob's web sending",
        bob_web.client.send_text(&alice, to_mirror),
    )
    .await?;
    let got = web_message(&mut mirror.events, &id).await?;
    web_message(&mut alice_web.events, &id).await?;
    out.say(
        format_args!(
            "[Bob's web → Alice] \"{}\" reached her legacy client through her phone, and her \
             end-to-end client directly",
            text_of(&got).unwrap_or_default()
        ),
        json!({"event": "mirror_message", "id": id, "direction": "in"}),
    )?;
    let from_mirror = "Alice answers from the legacy client.";
    world.secret_text(from_mirror);
    let id = step(
        "the legacy client sending",
        mirror.client.send_text(&bob, from_mirror),
    )
    .await?;
    web_message(&mut bob_web.events, &id).await?;
    out.say(
        format_args!("[Alice's legacy web → Bob] \"{from_mirror}\" went out through her phone, end to end, and reached Bob's web client"),
        json!({"event": "mirror_message", "id": id, "direction": "out"}),
    )?;

    for web in [alice_web, bob_web, laptop, tablet, mirror] {
        web.client.shutdown().await;
    }
    for handset in [alice_phone, bob_phone, carol_phone, dave_phone] {
        handset.phone.shutdown().await;
    }
    let cluster = match killed {
        Some(node) => format!(
            " On {nodes} nodes, node {node} killed with SIGKILL mid-story: every message still \
             arrived."
        ),
        None => String::new(),
    };
    Ok(format!(
        "4 phones registered; 5 web clients linked by QR (one mirror-mode); texts with sent → \
         delivered → read; equal security codes; a {} byte image verified end to end; a group \
         message to 4 accounts on {} devices; Android and iOS history imported; a message waited \
         for an offline phone; a mirror-mode client.{cluster}",
        image.len(),
        reached.len()
    ))
}

/// Shows what a new client imported of the chat with `other`; every one of `expected` must be
/// there.
async fn show_history(
    out: &Out,
    web: &Web,
    other: &Jid,
    name: &str,
    expected: &[&str],
) -> anyhow::Result<()> {
    let messages = step(
        "reading the imported history",
        web.client.history(other, 100),
    )
    .await?;
    let mut lines = Vec::new();
    for message in &messages {
        let who = if message.key.from_me == Some(true) {
            "me"
        } else {
            name
        };
        let media = message.message.as_ref().and_then(|m| m.media()).is_some();
        let text = match (media, text_of(message)) {
            (true, Some(caption)) => format!("(an image) \"{caption}\""),
            (true, None) => "(an image)".to_owned(),
            (false, Some(text)) => format!("\"{text}\""),
            (false, None) => "(no text)".to_owned(),
        };
        lines.push(format!("    {who}: {text}"));
    }
    for text in expected {
        if !messages.iter().any(|m| text_of(m) == Some(*text)) {
            bail!("{} did not import \"{text}\"", web.label);
        }
    }
    out.say(
        format_args!("[{}] the chat with {name}, from the import:\n{}", web.label, lines.join("\n")),
        json!({"event": "history_shown", "who": web.label, "chat": other.to_string(), "messages": messages.len()}),
    )
}

/// A 24-bit BMP of `width` × `height`: a colour gradient with a disc, drawn here so the demo
/// needs no file.
fn draw_image(width: u32, height: u32) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let pixels = row * height;
    let mut bmp = Vec::with_capacity(54 + pixels as usize);
    bmp.extend_from_slice(b"BM");
    bmp.extend_from_slice(&(54 + pixels).to_le_bytes());
    bmp.extend_from_slice(&[0, 0, 0, 0]);
    bmp.extend_from_slice(&54u32.to_le_bytes());
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&width.to_le_bytes());
    bmp.extend_from_slice(&height.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&pixels.to_le_bytes());
    bmp.extend_from_slice(&[0; 16]);
    let (cx, cy, r) = (
        i64::from(width / 2),
        i64::from(height / 2),
        i64::from(height / 3),
    );
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
            let inside = dx * dx + dy * dy <= r * r;
            let shade = |v: u32, of: u32| u8::try_from(v * 255 / of.max(1)).unwrap_or(u8::MAX);
            let (b, g, red) = if inside {
                (250, 250, 250)
            } else {
                (shade(x, width), shade(y, height), 160)
            };
            bmp.extend_from_slice(&[b, g, red]);
        }
        bmp.resize(bmp.len() + (row - width * 3) as usize, 0);
    }
    bmp
}
