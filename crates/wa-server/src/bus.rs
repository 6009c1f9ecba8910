//! The bus between the nodes of a cluster: core NATS publish/subscribe (`async-nats`).
//!
//! Every node of a cluster named `C` subscribes to `wa.C.*`, and to the account subjects of
//! the accounts connected to it, and publishes on these subjects:
//!
//! | subject | what | when |
//! | --- | --- | --- |
//! | `wa.C.acct.<shard>` | a core push to one account's devices and its target (`Target`, `Push`, plain serde data) | every push to a device or an account that a connection of this node makes (the node delivers it to its own connections as well) |
//! | `wa.C.push` | the same, for the other targets (a QR ref's connection, a user's presence subscribers) | the same |
//! | `wa.C.device` | a device registered here (with the time), or a phone that left | on login; when a logged-in phone's connection ends |
//! | `wa.C.heartbeat` | the node is alive, and the phones connected to it | every [`BusConfig::heartbeat`] (2 s) |
//!
//! **Account subjects.** An account's pushes go to the subject of its shard (one of
//! [`SHARDS`], by a hash of the number every node computes alike), and only the nodes with a
//! connection of an account of that shard subscribe to it: a node subscribes when such a
//! connection logs in, and leaves when the last one closes, so a push crosses the bus only to
//! the nodes that may have its target (measured with three nodes: BENCHMARKS.md). A login
//! waits until NATS has the subscription before the connection reads its queue: the node
//! then sends a request nobody answers (`probe`), and NATS's "no responders" reply, which
//! it sends after it took in the subscription, is the confirmation. A message stored after
//! the queue's read is pushed after it, so it reaches this node (with one NATS server:
//! interest spreads between the servers of a NATS cluster a moment later, and a push lost in
//! that moment is read from the queue at the next login, as any push lost on the bus). The
//! account subjects and the others are separate subscriptions: a push may overtake the
//! `Register` of another node, so a connection about to be replaced may still get it (a
//! duplicate its new connection's client drops by id).
//!
//! Each message is a JSON envelope naming the node that sent it; a node's connection to NATS
//! does not echo what it publishes (`no_echo`), and a node ignores its own anyway. A node
//! receiving a push asks its hub whether the target names a connection here (often none) and
//! only then decodes the push and hands it to its switchboard exactly as a local one. The
//! nodes keep no map of who is where beyond their subscriptions: a push to a QR ref or to a
//! user's presence subscribers still goes to every node, fine for the handful of nodes this
//! reference server is meant for.
//!
//! **Takeover across nodes:** a device registered on another node with a later time (ties by
//! node id) evicts this node's connection of that device from the hub, which then gets
//! `Replaced` (the phone protocol's `replaced`, a web client's `Conflict`).
//!
//! **Phones online:** each node keeps the phones online on the other nodes, with the time each
//! was last announced (on login, in every heartbeat); a phone that leaves is removed at once,
//! and one not announced again within [`BusConfig::expiry`] (6 s: three missed heartbeats, so
//! a node killed with `kill -9`) is removed then. Web clients hear `PhoneReachable` when their
//! phone's presence anywhere changes.
//!
//! **Failure model:** core NATS delivers at most once. Nothing that must not be lost travels
//! only on the bus: every message is in the shared store before its push is published (ack 1
//! means stored), so a device that missed a push (its node was down, the publish was lost, a
//! queue was full) gets the message from its queue when it connects again, and drops a second
//! copy by its id. Acks, presence and notices are best effort, as on one node. Publishing never
//! blocks a connection: envelopes go through a bounded queue ([`OUTBOX`]) to one publishing
//! task; when it is full they are dropped and counted. A message whose envelope exceeds the
//! NATS server's `max_payload` (1 MiB by default, about 750 KiB of ciphertext) is not carried
//! (counted as `too_large`): a small `Push::Resync` goes in its place, and the device's
//! connection reads its queue, where the message is (any other push that large is dropped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use wa_server_core::{Push, Target};
use wa_wire::Jid;

use crate::error::Error;
use crate::server::Shared;

/// Envelopes waiting to be published at most; more are dropped (and counted).
pub const OUTBOX: usize = 65_536;

/// How long connecting to NATS may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many account subjects a cluster's pushes are spread over: a node subscribes to at most
/// this many (those of the accounts connected to it).
pub const SHARDS: u32 = 4096;

/// How long a login waits for its account subject (NATS slow or gone: it goes on, and pushes
/// from other nodes may miss it until it logs in again; its queue has the messages).
pub const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// How long a node waits before it asks NATS again for an account subject it was refused.
const SUBSCRIBE_RETRY: Duration = Duration::from_secs(1);

/// Phones announced in one heartbeat message at most (more are split over several).
const HEARTBEAT_CHUNK: usize = 2000;

/// Where a cluster's nodes meet.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusConfig {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The cluster's name: its subjects are `wa.<cluster>.*`, so clusters (and tests) sharing
    /// one NATS server never see each other. Letters, digits, `-` and `_`.
    pub cluster: String,
    /// How often a node announces itself and its phones. Default 2 s.
    pub heartbeat: Duration,
    /// A phone not announced again within this time is offline (its node died). Default 6 s.
    pub expiry: Duration,
}

impl BusConfig {
    /// A bus on the NATS server at `url` for cluster `cluster`, with the default timings.
    pub fn new(url: impl Into<String>, cluster: impl Into<String>) -> BusConfig {
        BusConfig {
            url: url.into(),
            cluster: cluster.into(),
            heartbeat: Duration::from_secs(2),
            expiry: Duration::from_secs(6),
        }
    }
}

impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A URL may carry credentials (`nats://user:password@host`): only the host is shown.
        let host = self
            .url
            .rsplit_once('@')
            .map_or(self.url.as_str(), |(_, h)| h);
        f.debug_struct("BusConfig")
            .field("host", &host)
            .field("cluster", &self.cluster)
            .field("heartbeat", &self.heartbeat)
            .field("expiry", &self.expiry)
            .finish()
    }
}

/// Whether `name` can be a cluster name (one NATS subject token, at most 64 bytes).
pub fn valid_cluster(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What travels on the bus. `P` is the push: decoded, or (as a node receives it) its JSON
/// text, decoded only if a connection here is one it is for.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<P = Push> {
    /// The node that published it.
    node: String,
    body: Body<P>,
}

/// An envelope as received: its push not decoded yet.
type Received = Envelope<Box<RawValue>>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "envelopes are built, serialized and dropped at once"
)]
enum Body<P = Push> {
    /// Deliver `push` to whatever `target` names on your node.
    Push { target: Target, push: P },
    /// `device` of `number` logged in on the sending node at `at` (ms since the epoch).
    Register {
        number: String,
        device: Jid,
        at: u64,
    },
    /// The phone of `number` left the sending node.
    PhoneGone { number: String },
    /// The sending node is alive, with (some of) its phones.
    Heartbeat { phones: Vec<String> },
}

impl<P> Body<P> {
    /// The subject it goes on, under the cluster's `prefix`.
    fn subject(&self, prefix: &str) -> String {
        match self {
            Body::Push { target, .. } => match account_of(target) {
                Some(number) => account_subject(prefix, shard_of(number)),
                None => format!("{prefix}.push"),
            },
            Body::Register { .. } | Body::PhoneGone { .. } => format!("{prefix}.device"),
            Body::Heartbeat { .. } => format!("{prefix}.heartbeat"),
        }
    }
}

/// The subject of the accounts of shard `shard`, under the cluster's `prefix`.
fn account_subject(prefix: &str, shard: u32) -> String {
    format!("{prefix}.acct.{shard}")
}

/// The account whose devices a push to `target` is for, if one is.
fn account_of(target: &Target) -> Option<&str> {
    match target {
        Target::Device(device) => wa_wire::ids::number_of(device),
        Target::Account { number, .. } => Some(number),
        // (A QR ref's connection, presence subscribers, and any target added later: every node.)
        _ => None,
    }
}

/// The shard of `number`'s account subject: FNV-1a, the same on every node and version.
fn shard_of(number: &str) -> u32 {
    let hash = number.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % SHARDS
}

/// This node's subscription to one account subject, while it has connections of accounts of
/// that shard.
#[derive(Debug)]
struct Interest {
    /// The connections (logged in here) it is held for.
    refs: usize,
    /// Becomes true once NATS has the subscription (or it was given up on).
    ready: watch::Receiver<bool>,
    /// Ends the subscription (dropped: the same).
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// What an envelope from another node makes this node do.
#[derive(Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "effects are made and applied at once; boxing pushes would cost an allocation each"
)]
enum Effect<P = Push> {
    /// Deliver a push to the connections here that the target names.
    Deliver(Target, P),
    /// The phone of an account is (or no longer is) online on some other node.
    PhoneElsewhere(String, bool),
    /// A device logged in on another node: the connection here, if older, is replaced.
    Evict {
        number: String,
        device: Jid,
        at: u64,
        node: String,
    },
}

/// Counters of the bus, for `/status`.
#[derive(Debug, Default)]
pub(crate) struct BusStats {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) undecodable: AtomicU64,
    /// Pushes received for nobody connected here: dropped before they were decoded.
    pub(crate) not_here: AtomicU64,
}

/// What this node knows of the others.
#[derive(Debug, Default)]
struct View {
    /// Nodes heard from, with when.
    nodes: HashMap<String, Instant>,
    /// Phones online on other nodes: number → node → last announced.
    phones: HashMap<String, HashMap<String, Instant>>,
}

/// This node's end of the bus.
pub(crate) struct Bus {
    node: String,
    prefix: String,
    config: BusConfig,
    tx: mpsc::Sender<Body>,
    view: Mutex<View>,
    pub(crate) stats: BusStats,
    /// The account subjects (none in unit tests of the rest).
    accounts: Option<Accounts>,
    /// Becomes true when the bus stops.
    stopped: watch::Receiver<bool>,
}

/// What the account subjects need.
struct Accounts {
    client: async_nats::Client,
    /// The account subjects subscribed to, by shard.
    interests: Mutex<HashMap<u32, Interest>>,
    /// What the account subjects bring, to the receiving task.
    forward: mpsc::Sender<async_nats::Message>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("node", &self.node)
            .field("prefix", &self.prefix)
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What [`Bus::connect`] made that the running tasks take over.
pub(crate) struct Pending {
    client: async_nats::Client,
    subscriber: async_nats::Subscriber,
    rx: mpsc::Receiver<Body>,
    accounts_rx: mpsc::Receiver<async_nats::Message>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

/// The bus's tasks, stopped by [`BusTasks::stop`].
#[derive(Debug)]
pub(crate) struct BusTasks {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl BusTasks {
    /// Tells the tasks to stop (publishing what is queued), without waiting for them.
    pub(crate) fn signal_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Publishes what is queued (this node's last goodbyes), then stops every task.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

fn millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Bus {
    /// Connects to NATS and subscribes to the cluster's subjects (the subscription is in
    /// place when this returns: what other nodes publish from then on arrives).
    pub(crate) async fn connect(
        config: &BusConfig,
        node: &str,
    ) -> Result<(Arc<Bus>, Pending), Error> {
        let fail = |reason: String| Error::Bus {
            url: config.url.clone(),
            reason,
        };
        if !valid_cluster(&config.cluster) {
            return Err(fail(format!(
                "cluster name {:?} must be 1 to 64 letters, digits, '-' or '_'",
                config.cluster
            )));
        }
        // A node never needs what it published itself (`apply` ignores it too).
        let client = async_nats::ConnectOptions::new()
            .no_echo()
            .name(format!("wa-server {node}"))
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(config.url.as_str())
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let prefix = format!("wa.{}", config.cluster);
        let subscriber = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|e| fail(format!("cannot subscribe: {e}")))?;
        probe(&client, &config.cluster)
            .await
            .map_err(|e| fail(format!("the subscription was not confirmed: {e}")))?;
        let (tx, rx) = mpsc::channel(OUTBOX);
        let (accounts_tx, accounts_rx) = mpsc::channel(OUTBOX);
        let (stop, stopped) = watch::channel(false);
        let bus = Arc::new(Bus {
            node: node.to_owned(),
            prefix,
            config: config.clone(),
            tx,
            view: Mutex::new(View::default()),
            stats: BusStats::default(),
            accounts: Some(Accounts {
                client: client.clone(),
                interests: Mutex::new(HashMap::new()),
                forward: accounts_tx,
            }),
            stopped,
        });
        Ok((
            bus,
            Pending {
                client,
                subscriber,
                rx,
                accounts_rx,
                stop,
            },
        ))
    }

    /// This node's id.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Other nodes heard from within the expiry time.
    pub(crate) fn nodes_alive(&self) -> Vec<String> {
        let expiry = self.config.expiry;
        let view = self.lock_view();
        let mut nodes: Vec<String> = view
            .nodes
            .iter()
            .filter(|(_, at)| at.elapsed() <= expiry)
            .map(|(n, _)| n.clone())
            .collect();
        nodes.sort();
        nodes
    }

    fn send(&self, body: Body) {
        if self.tx.try_send(body).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Subscribes this node to the account subject of `number` for one more connection (see
    /// the module's docs); the future is ready once NATS has the subscription: from then on,
    /// what another node publishes for the account reaches this node. Needs a runtime.
    pub(crate) fn interest(&self, number: &str) -> impl Future<Output = ()> + Send + 'static {
        let shard = shard_of(number);
        let ready = self.accounts.as_ref().map(|accounts| {
            let mut interests = lock(&accounts.interests);
            let interest = interests
                .entry(shard)
                .or_insert_with(|| self.subscribe(accounts, shard));
            interest.refs += 1;
            interest.ready.clone()
        });
        async move {
            if let Some(mut ready) = ready {
                // (An error: the subscribing task ended, the bus stopping.)
                let _ = ready.wait_for(|ready| *ready).await;
            }
        }
    }

    /// One connection fewer of `number`'s account: the last of its shard ends the subscription.
    pub(crate) fn lose_interest(&self, number: &str) {
        let Some(accounts) = &self.accounts else {
            return;
        };
        let shard = shard_of(number);
        let mut interests = lock(&accounts.interests);
        if let Some(interest) = interests.get_mut(&shard) {
            debug_assert!(interest.refs > 0, "an interest given up twice");
            interest.refs = interest.refs.saturating_sub(1);
            if interest.refs == 0 {
                // Dropping it stops its task.
                interests.remove(&shard);
            }
        }
    }

    /// The account subjects this node is subscribed to (or subscribing to).
    pub(crate) fn account_subjects(&self) -> usize {
        self.accounts
            .as_ref()
            .map_or(0, |accounts| lock(&accounts.interests).len())
    }

    /// Starts the task that holds the subscription to shard `shard`'s subject.
    fn subscribe(&self, accounts: &Accounts, shard: u32) -> Interest {
        let (ready_tx, ready) = watch::channel(false);
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let client = accounts.client.clone();
        let subject = account_subject(&self.prefix, shard);
        let cluster = self.config.cluster.clone();
        let forward = accounts.forward.clone();
        let mut stopped = self.stopped.clone();
        let hold = async move {
            let mut subscriber = loop {
                match client.subscribe(subject.clone()).await {
                    Ok(subscriber) => break subscriber,
                    Err(e) => {
                        tracing::warn!(%subject, error = %e, "subscribing to an account subject failed: trying again");
                        // Logins do not wait for it meanwhile.
                        ready_tx.send_replace(true);
                        tokio::time::sleep(SUBSCRIBE_RETRY).await;
                    }
                }
            };
            if let Err(e) = probe(&client, &cluster).await {
                tracing::warn!(%subject, error = %e, "an account subject was not confirmed");
            }
            ready_tx.send_replace(true);
            while let Some(message) = subscriber.next().await {
                if forward.send(message).await.is_err() {
                    break;
                }
            }
        };
        // Until the interest is dropped or the bus stops; the subscriber, dropped with `hold`,
        // unsubscribes.
        tokio::spawn(async move {
            tokio::select! {
                () = hold => {}
                _ = stop_rx => {}
                _ = stopped.changed() => {}
            }
        });
        Interest {
            refs: 0,
            ready,
            _stop: stop,
        }
    }

    /// Publishes a push for the other nodes' connections.
    pub(crate) fn publish_push(&self, target: Target, push: Push) {
        self.send(Body::Push { target, push });
    }

    /// Publishes that `device` of `number` logged in here, at `at` (ms since the epoch).
    pub(crate) fn publish_register(&self, number: &str, device: &Jid, at: u64) {
        self.send(Body::Register {
            number: number.to_owned(),
            device: device.clone(),
            at,
        });
    }

    /// Publishes that the phone of `number` left this node.
    pub(crate) fn publish_phone_gone(&self, number: &str) {
        self.send(Body::PhoneGone {
            number: number.to_owned(),
        });
    }

    /// Starts the tasks: the publisher, the receiver, the heartbeat.
    pub(crate) fn spawn(self: &Arc<Bus>, shared: &Arc<Shared>, pending: Pending) -> BusTasks {
        let Pending {
            client,
            subscriber,
            rx,
            accounts_rx,
            stop,
        } = pending;
        let stopped = self.stopped.clone();
        let handles = vec![
            tokio::spawn(publisher(
                Arc::clone(self),
                client.clone(),
                rx,
                stopped.clone(),
            )),
            tokio::spawn(receiver(
                Arc::clone(self),
                Arc::clone(shared),
                subscriber,
                accounts_rx,
                stopped.clone(),
            )),
            tokio::spawn(heartbeat(Arc::clone(self), Arc::clone(shared), stopped)),
        ];
        BusTasks { stop, handles }
    }

    /// Handles one envelope from another node: applies what it says to this node's switchboard.
    ///
    /// Every node hears every push, and most pushes are for connections on one node: a node
    /// decodes a push only if the switchboard has a connection it is for (in a cluster of
    /// three, that halved the decoding; decoding every push was 12% of a node's CPU).
    fn receive(&self, shared: &Shared, envelope: Received) {
        for effect in self.apply(envelope, Instant::now()) {
            match effect {
                Effect::Deliver(target, raw) => {
                    if !shared.board.reaches(&target) {
                        self.stats.not_here.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    match serde_json::from_str::<Push>(raw.get()) {
                        Ok(push) => shared.board.deliver(&target, push),
                        Err(e) => {
                            self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "a push on the bus does not decode: ignored");
                        }
                    }
                }
                Effect::PhoneElsewhere(number, online) => {
                    shared.board.phone_elsewhere(&number, online);
                }
                Effect::Evict {
                    number,
                    device,
                    at,
                    node,
                } => shared.board.evict_if_older(&number, &device, (at, &node)),
            }
        }
    }

    /// What an envelope from another node means for this one (its own are nothing), with the
    /// cluster view updated.
    fn apply<P>(&self, envelope: Envelope<P>, now: Instant) -> Vec<Effect<P>> {
        if envelope.node == self.node {
            return Vec::new();
        }
        let node = envelope.node;
        self.lock_view().nodes.insert(node.clone(), now);
        match envelope.body {
            Body::Push { target, push } => vec![Effect::Deliver(target, push)],
            Body::Register { number, device, at } => {
                let mut out = Vec::new();
                // Online elsewhere first: a phone moving here is no "phone gone" for its web
                // clients on this node.
                if wa_wire::ids::device_of(&device) == 0 && self.phone_seen(&number, &node, now) {
                    out.push(Effect::PhoneElsewhere(number.clone(), true));
                }
                out.push(Effect::Evict {
                    number,
                    device,
                    at,
                    node,
                });
                out
            }
            Body::PhoneGone { number } => {
                let mut view = self.lock_view();
                let offline = match view.phones.get_mut(&number) {
                    Some(nodes) => nodes.remove(&node).is_some() && nodes.is_empty(),
                    None => false,
                };
                if offline {
                    view.phones.remove(&number);
                    vec![Effect::PhoneElsewhere(number, false)]
                } else {
                    Vec::new()
                }
            }
            Body::Heartbeat { phones } => phones
                .into_iter()
                .filter(|number| self.phone_seen(number, &node, now))
                .map(|number| Effect::PhoneElsewhere(number, true))
                .collect(),
        }
    }

    /// Records that `node` announced the phone of `number`; whether it was offline everywhere
    /// else before.
    fn phone_seen(&self, number: &str, node: &str, now: Instant) -> bool {
        let mut view = self.lock_view();
        let nodes = view.phones.entry(number.to_owned()).or_default();
        let was_offline = nodes.is_empty();
        nodes.insert(node.to_owned(), now);
        was_offline
    }

    /// Forgets phones not announced within the expiry time: the numbers now offline elsewhere.
    fn expire(&self, now: Instant) -> Vec<String> {
        let expiry = self.config.expiry;
        let mut view = self.lock_view();
        let mut gone = Vec::new();
        view.phones.retain(|number, nodes| {
            nodes.retain(|_, at| now.saturating_duration_since(*at) <= expiry);
            if nodes.is_empty() {
                gone.push(number.clone());
                false
            } else {
                true
            }
        });
        view.nodes
            .retain(|_, at| now.saturating_duration_since(*at) <= expiry.saturating_mul(10));
        gone
    }

    fn lock_view(&self) -> std::sync::MutexGuard<'_, View> {
        lock(&self.view)
    }
}

/// Serializes and publishes queued envelopes until stopped (then publishes what is left and
/// flushes).
async fn publisher(
    bus: Arc<Bus>,
    client: async_nats::Client,
    mut rx: mpsc::Receiver<Body>,
    mut stopped: watch::Receiver<bool>,
) {
    let max_payload = client.server_info().max_payload;
    let publish = |body: Body| {
        let subject = body.subject(&bus.prefix);
        let envelope = Envelope {
            node: bus.node.clone(),
            body,
        };
        let bytes = serde_json::to_vec(&envelope).ok();
        (subject, bytes)
    };
    loop {
        let body = tokio::select! {
            body = rx.recv() => body,
            _ = stopped.changed() => None,
        };
        let Some(body) = body else { break };
        let (subject, bytes) = publish(body);
        let Some(mut bytes) = bytes else { continue };
        if max_payload > 0 && bytes.len() > max_payload {
            bus.stats.too_large.fetch_add(1, Ordering::Relaxed);
            // A message too large to carry: its device's node is told to have the device read
            // its queue, where the message is.
            let Some(resync) = resync_for(&bytes) else {
                continue;
            };
            tracing::debug!(
                len = bytes.len(),
                max_payload,
                "a message too large for the bus: its device reads it from its queue"
            );
            bytes = resync;
        }
        match client.publish(subject, bytes.into()).await {
            Ok(()) => {
                bus.stats.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                bus.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "publishing on the bus failed");
            }
        }
    }
    // Stopping: what was queued before (the phones that left at shutdown) still goes out.
    while let Ok(body) = rx.try_recv() {
        let (subject, bytes) = publish(body);
        if let Some(bytes) = bytes
            && client.publish(subject, bytes.into()).await.is_ok()
        {
            bus.stats.published.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
}

/// For a serialized envelope of a [`Push::Deliver`]: the envelope of a [`Push::Resync`] to the
/// same target (the message is in the target's queue). Anything else: `None` (dropped).
fn resync_for(bytes: &[u8]) -> Option<Vec<u8>> {
    let envelope: Envelope = serde_json::from_slice(bytes).ok()?;
    let Body::Push {
        target,
        push: Push::Deliver { .. },
    } = envelope.body
    else {
        return None;
    };
    serde_json::to_vec(&Envelope {
        node: envelope.node,
        body: Body::Push {
            target,
            push: Push::Resync,
        },
    })
    .ok()
}

/// How long a node waits for NATS to confirm a subscription ([`probe`]).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Returns once NATS has taken in everything this client sent before (a subscription, say):
/// a request on a subject nobody subscribes to, whose "no responders" reply the server sends
/// after it has read what came before on the connection. (`Client::flush` only writes the
/// client's buffer to the socket.) The subject (`wa-probe.<cluster>`) is outside every
/// cluster's `wa.` subjects.
async fn probe(client: &async_nats::Client, cluster: &str) -> Result<(), String> {
    let request = async_nats::Request::new().timeout(Some(PROBE_TIMEOUT));
    match client
        .send_request(format!("wa-probe.{cluster}"), request)
        .await
    {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(e.to_string()),
        Ok(_) => Err("a reply to a request nobody should answer".to_owned()),
    }
}

/// Locks `mutex`, whatever a panicking holder left in it (every update is one step).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands what other nodes publish to this node's switchboard until stopped.
async fn receiver(
    bus: Arc<Bus>,
    shared: Arc<Shared>,
    mut subscriber: async_nats::Subscriber,
    mut accounts: mpsc::Receiver<async_nats::Message>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            m = subscriber.next() => m,
            // (The bus holds a sender: this never ends first.)
            Some(m) = accounts.recv() => Some(m),
            _ = stopped.changed() => None,
        };
        let Some(message) = message else { break };
        bus.stats.received.fetch_add(1, Ordering::Relaxed);
        match serde_json::from_slice::<Received>(&message.payload) {
            Ok(envelope) => bus.receive(&shared, envelope),
            Err(e) => {
                bus.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(subject = %message.subject, error = %e, "an envelope on the bus does not decode: ignored");
            }
        }
    }
    let _ = subscriber.unsubscribe().await;
}

/// Announces this node and its phones every heartbeat, and expires phones of nodes gone
/// silent, until stopped.
async fn heartbeat(bus: Arc<Bus>, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(bus.config.heartbeat.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let phones = shared.board.local_phones();
        if phones.is_empty() {
            bus.send(Body::Heartbeat { phones });
        } else {
            for chunk in phones.chunks(HEARTBEAT_CHUNK) {
                bus.send(Body::Heartbeat {
                    phones: chunk.to_vec(),
                });
            }
        }
        for number in bus.expire(Instant::now()) {
            shared.board.phone_elsewhere(&number, false);
        }
    }
}

/// The time of a registration, for comparing with one on another node.
pub(crate) fn registration_time() -> u64 {
    millis_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_credentials() {
        let config = BusConfig::new("nats://user:s3cret@bus.internal:4222", "prod");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("bus.internal:4222"),
            "{shown}"
        );
    }

    #[test]
    fn cluster_names_are_one_subject_token() {
        assert!(valid_cluster("prod-eu_1"));
        assert!(!valid_cluster(""));
        assert!(!valid_cluster("a.b"));
        assert!(!valid_cluster("a*"));
        assert!(!valid_cluster("a>"));
        assert!(!valid_cluster(&"x".repeat(65)));
    }

    fn bus(node: &str) -> Bus {
        let (tx, _rx) = mpsc::channel(8);
        let mut config = BusConfig::new("nats://127.0.0.1:4222", "t");
        config.expiry = Duration::from_secs(6);
        Bus {
            node: node.to_owned(),
            prefix: "wa.t".to_owned(),
            config,
            tx,
            view: Mutex::new(View::default()),
            stats: BusStats::default(),
            accounts: None,
            stopped: watch::channel(false).1,
        }
    }

    fn from(node: &str, body: Body) -> Envelope {
        Envelope {
            node: node.to_owned(),
            body,
        }
    }

    #[test]
    fn the_view_of_other_nodes_phones() {
        let me = bus("n1");
        let t0 = Instant::now();
        let phone = wa_wire::ids::user_jid("15550001111").unwrap();
        let web = wa_wire::ids::device_jid(&phone, 3);
        let number = "15550001111".to_owned();
        let register = |device: &Jid, at| Body::Register {
            number: number.clone(),
            device: device.clone(),
            at,
        };
        // Our own envelopes are nothing.
        assert!(me.apply(from("n1", register(&phone, 5)), t0).is_empty());
        // A phone logs in on n2: online elsewhere, and an older connection here goes.
        assert_eq!(
            me.apply(from("n2", register(&phone, 5)), t0),
            vec![
                Effect::PhoneElsewhere(number.clone(), true),
                Effect::Evict {
                    number: number.clone(),
                    device: phone.clone(),
                    at: 5,
                    node: "n2".into()
                }
            ]
        );
        // A web device: only the eviction.
        assert_eq!(me.apply(from("n2", register(&web, 6)), t0).len(), 1);
        // Announced again by n3 (it moved): still online, no news.
        let beat = |phones: Vec<String>| Body::Heartbeat { phones };
        assert!(
            me.apply(from("n3", beat(vec![number.clone()])), t0)
                .is_empty()
        );
        // n2 says it left: n3 still has it.
        let gone = || Body::PhoneGone {
            number: number.clone(),
        };
        assert!(me.apply(from("n2", gone()), t0).is_empty());
        assert_eq!(me.nodes_alive(), vec!["n2".to_owned(), "n3".to_owned()]);
        // n3 dies: nothing until the expiry, then offline.
        let later = t0 + Duration::from_secs(5);
        assert!(me.expire(later).is_empty());
        assert_eq!(me.expire(t0 + Duration::from_secs(7)), vec![number.clone()]);
        // A heartbeat brings it back; a departure takes it away at once.
        assert_eq!(
            me.apply(from("n3", beat(vec![number.clone()])), later),
            vec![Effect::PhoneElsewhere(number.clone(), true)]
        );
        assert_eq!(
            me.apply(from("n3", gone()), later),
            vec![Effect::PhoneElsewhere(number.clone(), false)]
        );
        assert!(me.apply(from("n3", gone()), later).is_empty());
        // Pushes are handed on as they came.
        assert_eq!(
            me.apply(
                from(
                    "n2",
                    Body::Push {
                        target: Target::Ref("r".into()),
                        push: Push::PhoneReachable(true)
                    }
                ),
                later
            ),
            vec![Effect::Deliver(
                Target::Ref("r".into()),
                Push::PhoneReachable(true)
            )]
        );
    }

    #[test]
    fn envelopes_round_trip_as_json() {
        let user = wa_wire::ids::user_jid("15550001111").unwrap();
        let envelope = Envelope {
            node: "n1".into(),
            body: Body::Push {
                target: Target::Device(user.clone()),
                push: Push::PhoneReachable(true),
            },
        };
        let bytes = serde_json::to_vec(&envelope).unwrap();
        let back: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.node, "n1");
        match back.body {
            Body::Push { target, push } => {
                assert_eq!(target, Target::Device(user.clone()));
                assert_eq!(push, Push::PhoneReachable(true));
            }
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_slice::<Envelope>(b"{\"node\":1}").is_err());
        // As a node receives it: the target decoded, the push kept as its text until asked.
        let pushed = Push::Deliver {
            seq: 7,
            message: wa_wire::msg::Incoming {
                from: user.clone(),
                chat: user.clone(),
                id: "m\"1".into(),
                t: 1,
                kind: wa_wire::msg::ContentKind::Text,
                group: Some(vec![0, 255, 34]),
                olm: None,
            },
        };
        let bytes = serde_json::to_vec(&from(
            "n2",
            Body::Push {
                target: Target::Device(user.clone()),
                push: pushed.clone(),
            },
        ))
        .unwrap();
        let received: Received = serde_json::from_slice(&bytes).unwrap();
        let me = bus("n1");
        match me.apply(received, Instant::now()).as_slice() {
            [Effect::Deliver(target, raw)] => {
                assert_eq!(*target, Target::Device(user));
                assert_eq!(serde_json::from_str::<Push>(raw.get()).unwrap(), pushed);
            }
            other => panic!("{other:?}"),
        }
    }

    /// With a NATS server (`WA_TEST_NATS`, default `nats://127.0.0.1:4222`; skipped with a
    /// notice when it does not answer, unless `WA_CLUSTER_TESTS=require`): an account subject's
    /// interest is ready only once NATS has the subscription, so what another client publishes
    /// on it right after reaches this node; each round a new subject. (It fails at once if the
    /// interest is ready before the subscription is sent; whether NATS has read it, rather
    /// than only the socket having it, is a race loopback does not provoke.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interest_is_ready_once_nats_has_the_subscription() {
        let url =
            std::env::var("WA_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
        let other = match async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(url.as_str())
            .await
        {
            Ok(client) => client,
            Err(e) => {
                let required = std::env::var("WA_CLUSTER_TESTS").is_ok_and(|v| v == "require");
                assert!(
                    !required,
                    "NATS at {url} does not answer ({e}), and WA_CLUSTER_TESTS=require"
                );
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTICE: an_interest_is_ready_once_nats_has_the_subscription skipped: NATS at {url} does not answer"
                );
                return;
            }
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let cluster = format!("unit_{:x}_{nanos:x}", std::process::id());
        let (bus, mut pending) = Bus::connect(&BusConfig::new(url, cluster), "n1")
            .await
            .unwrap();
        for round in 0..20_u32 {
            let number = format!("155500{round:05}");
            bus.interest(&number).await;
            let subject = account_subject(&bus.prefix, shard_of(&number));
            other
                .publish(subject, round.to_string().into())
                .await
                .unwrap();
            other.flush().await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), pending.accounts_rx.recv())
                .await
                .expect("what is published after the interest is ready arrives")
                .unwrap();
            assert_eq!(&got.payload[..], round.to_string().as_bytes());
            bus.lose_interest(&number);
            assert_eq!(bus.account_subjects(), 0);
        }
    }
}
