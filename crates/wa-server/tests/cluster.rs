//! Cluster mode against real servers: three nodes (PostgreSQL schema and NATS cluster name of
//! their own per test), phones spread over them. Cross-node messages with acks 1 and 2 and
//! presence; a group spanning nodes; a takeover from one node to another replaces the old
//! connection; a message too large for the bus still arrives at once (through the queue); a
//! download from another node than the upload's; a node killed (SIGKILL, the `wa-server`
//! binary as processes) under load loses no acknowledged message; start errors. Skipped with a notice when PostgreSQL or NATS does not answer, unless
//! `WA_CLUSTER_TESTS=require`. Every wait is bounded; nothing sleeps to wait for an event.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::services::{self, Schema};
use support::*;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc};
use wa_server::{BusConfig, Config, StoreKind};
use wa_wire::msg::{PresenceSet, PresenceState};
use wa_wire::phone::{PhoneEvent, PhoneRequest};

/// One cluster of in-process nodes: its schema (dropped at the end), its name on the bus, the
/// media directory they share.
struct Cluster {
    nodes: Vec<TestServer>,
    media: tempfile::TempDir,
    // Last: dropped after the nodes.
    _schema: Schema,
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| {}).await
    }

    /// `n` nodes, each configured by `configure` after the cluster settings.
    async fn start_with(n: usize, configure: impl Fn(&mut Config)) -> Cluster {
        let schema = Schema::new();
        let cluster = services::unique("wa-test");
        let media = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for i in 0..n {
            let node = TestServer::start(|config: &mut Config| {
                config.store = StoreKind::Postgres {
                    url: schema.url.clone(),
                    schema: schema.name.clone(),
                };
                let mut bus = BusConfig::new(services::nats_url(), cluster.clone());
                bus.heartbeat = Duration::from_millis(200);
                bus.expiry = Duration::from_secs(1);
                config.bus = Some(bus);
                config.node_id = Some(format!("node{}", i + 1));
                config.media_dir = Some(media.path().to_owned());
                configure(config);
            })
            .await;
            nodes.push(node);
        }
        Cluster {
            nodes,
            media,
            _schema: schema,
        }
    }

    fn url(&self, node: usize) -> String {
        self.nodes[node].server.phone_url()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_nodes_with_acks_1_and_2() {
    if !services::available("messages_cross_nodes_with_acks_1_and_2", true) {
        return;
    }
    let mut c = Cluster::start(3).await;
    let mut alice = c.nodes[0].phone("15550000201", 201).await;
    let mut bob = c.nodes[1].phone("15550000202", 202).await;
    let mut carol = c.nodes[2].phone("15550000203", 203).await;
    let ring = [
        ("15550000201", "15550000202"),
        ("15550000202", "15550000203"),
        ("15550000203", "15550000201"),
    ];
    for round in 0..3 {
        for (i, (from, to)) in ring.iter().enumerate() {
            let id = format!("X{round}{i}");
            let body = vec![u8::try_from(i).unwrap(); 200];
            let (sender, receiver) = match (*from, *to) {
                ("15550000201", _) => (&mut alice, &mut bob),
                ("15550000202", _) => (&mut bob, &mut carol),
                _ => (&mut carol, &mut alice),
            };
            let to_jid = receiver.jid();
            // (Stored: the answer is the sender's ack 1.)
            sender.relay_to(&to_jid, &id, &body).await.unwrap();
            // Pushed at once by the sender's node, over the bus, to the receiver's.
            let got = receiver.message().await;
            assert_eq!(got.id, id);
            assert_eq!(got.from, sender.jid());
            assert_eq!(got.olm.unwrap().body, body);
            receiver.receipt(&sender.jid(), &id).await;
            let ack = sender.ack(&id).await;
            assert_eq!(ack.level, 2);
            assert_eq!(ack.chat, to_jid);
        }
    }
    // Presence across nodes: bob (node 2) subscribes to alice (node 1), who comes online.
    let alice_jid = alice.jid();
    let watched = alice_jid.clone();
    let _: serde_json::Value = bob
        .call(|id| PhoneRequest::Subscribe { id, jid: watched })
        .await
        .unwrap();
    let presence = PresenceSet {
        state: PresenceState::Available,
        to: None,
    };
    let _: serde_json::Value = alice
        .call(|id| PhoneRequest::Presence { id, presence })
        .await
        .unwrap();
    loop {
        if let PhoneEvent::Presence { presence } = bob.event().await
            && presence.state == PresenceState::Available
        {
            assert_eq!(presence.jid, alice_jid);
            break;
        }
    }
    // Nothing left queued anywhere, as every node sees it.
    for node in &c.nodes {
        let status = status(node.server.local_addr()).await;
        assert_eq!(status["messages"]["queued"], 0, "{status}");
        assert_eq!(status["cluster"]["bus"]["undecodable"], 0, "{status}");
        // Each node has one phone: it listens to one account subject.
        assert_eq!(status["cluster"]["bus"]["account_subjects"], 1, "{status}");
    }

    // Throughput across nodes: alice (node 1) to bob (node 2), each message stored, pushed
    // over the bus and received; a figure printed for the record, not asserted. Alice's sends
    // stay within her budget's burst (200, of which the ring took 3) whatever the time they
    // take: they arrive faster than it refills.
    const N: usize = 190;
    let bob_jid = bob.jid();
    let lists = alice.devices(vec![bob_jid.clone()]).await;
    let devices: Vec<_> = lists
        .into_iter()
        .flat_map(|l| l.devices)
        .map(|d| d.device)
        .collect();
    let bus_of_node3 =
        || async { status(c.nodes[2].server.local_addr()).await["cluster"]["bus"].clone() };
    let node3_before = bus_of_node3().await;
    let started = Instant::now();
    let receiving = tokio::spawn(async move {
        let mut got = HashSet::new();
        while got.len() < N {
            got.insert(bob.message().await.id);
        }
        bob
    });
    let mut ids = Vec::new();
    for i in 0..N {
        let r = relay(&bob_jid, &format!("T{i}"), &devices, &[1; 100]);
        ids.push(alice.send(|id| PhoneRequest::Relay { id, relay: r }).await);
    }
    for id in ids {
        let _: serde_json::Value = alice.answer(id).await.unwrap();
    }
    let _bob = tokio::time::timeout(WAIT * 4, receiving)
        .await
        .unwrap()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "cross-node: {N} messages node1 -> node2 stored and delivered in {:.0} ms ({:.0} messages/s)",
        secs * 1000.0,
        N as f64 / secs
    );
    // Their pushes (the message to bob, acks 1 and 2 to alice) went to the account subjects
    // of alice and bob: node 3, which has neither, heard none of them (broadcast, it would
    // have heard and dropped about 3 per message).
    let node3_after = bus_of_node3().await;
    assert_eq!(
        node3_after["not_here"], node3_before["not_here"],
        "{node3_after}"
    );
    // Carol leaves node 3: it leaves her account subject as soon as it sees the socket close
    // (asked again until then, each ask a request to node 3; the wait is bounded).
    drop(carol);
    let deadline = Instant::now() + WAIT;
    while bus_of_node3().await["account_subjects"] != 0 {
        assert!(
            Instant::now() < deadline,
            "node 3 kept carol's account subject"
        );
    }
    c.nodes.clear();
    drop(c.media);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_the_bus_arrives_through_the_queue() {
    if !services::available(
        "a_message_too_large_for_the_bus_arrives_through_the_queue",
        true,
    ) {
        return;
    }
    // Relays larger than the default 512 KiB: the push no longer fits NATS's 1 MiB payload.
    let mut c = Cluster::start_with(2, |config| {
        config.core.limits.max_relay_bytes = 2 << 20;
        config.core.limits.frame = wa_frame::Limits::default().with_max_frame_len(4 << 20);
    })
    .await;
    let mut alice = c.nodes[0].phone("15550000261", 161).await;
    let mut bob = c.nodes[1].phone("15550000262", 162).await;
    let big: Vec<u8> = (0..(1200u32 << 10)).map(|i| (i % 241) as u8).collect();
    alice.relay_to(&bob.jid(), "BIG", &big).await.unwrap();
    // Not carried by the bus, but bob's node is told to read his queue: at once, not at his
    // next login.
    let got = bob.message().await;
    assert_eq!(got.id, "BIG");
    assert_eq!(got.olm.unwrap().body, big);
    let status = status(c.nodes[0].server.local_addr()).await;
    assert_eq!(status["cluster"]["bus"]["too_large"], 1, "{status}");
    // Small ones still travel on the bus.
    alice.relay_to(&bob.jid(), "SMALL", b"s").await.unwrap();
    assert_eq!(bob.message().await.id, "SMALL");
    c.nodes.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_spans_three_nodes() {
    if !services::available("a_group_spans_three_nodes", true) {
        return;
    }
    let mut c = Cluster::start(3).await;
    let mut alice = c.nodes[0].phone("15550000211", 211).await;
    let mut bob = c.nodes[1].phone("15550000212", 212).await;
    let mut carol = c.nodes[2].phone("15550000213", 213).await;
    let members = vec![alice.jid(), bob.jid(), carol.jid()];
    let group = alice
        .create_group("three nodes", vec![bob.jid(), carol.jid()])
        .await;
    // The group notice reaches the members on the other nodes.
    for phone in [&mut bob, &mut carol] {
        loop {
            if let PhoneEvent::Group { change } = phone.event().await {
                assert_eq!(change.group, group);
                break;
            }
        }
    }
    alice
        .relay_to_group(&group, members.clone(), "G1", b"group ciphertext")
        .await
        .unwrap();
    for phone in [&mut bob, &mut carol] {
        let got = phone.message().await;
        assert_eq!((got.id.as_str(), got.chat.clone()), ("G1", group.clone()));
        assert_eq!(got.group.as_deref(), Some(&b"group ciphertext"[..]));
        let rid = phone
            .send(Phone::receipt_request(&group, Some(alice.jid()), "G1"))
            .await;
        let _: serde_json::Value = phone.answer(rid).await.unwrap();
    }
    // One ack 2 per member, whichever node handled the receipt.
    let mut from = HashSet::new();
    while from.len() < 2 {
        let ack = alice.ack("G1").await;
        assert_eq!(ack.level, 2);
        assert!(from.insert(ack.participant.unwrap()));
    }
    assert_eq!(from, HashSet::from([bob.jid(), carol.jid()]));
    // A member on node 3 writes to the group: node 1 and node 2 hear it.
    carol
        .relay_to_group(&group, members, "G2", b"from carol")
        .await
        .unwrap();
    assert_eq!(alice.message().await.id, "G2");
    assert_eq!(bob.message().await.id, "G2");
    // Nodes leave gracefully: connections closed, departures published, the bus left.
    for node in c.nodes.drain(..) {
        tokio::time::timeout(WAIT, node.server.shutdown())
            .await
            .unwrap();
    }
    for phone in [&mut alice, &mut bob, &mut carol] {
        phone.closed().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_on_another_node_replaces_the_old_connection() {
    if !services::available(
        "a_takeover_on_another_node_replaces_the_old_connection",
        true,
    ) {
        return;
    }
    let mut c = Cluster::start(3).await;
    let mut alice = c.nodes[1].phone("15550000221", 221).await;
    let mut old = c.nodes[0].phone("15550000222", 222).await;
    let bob = old.jid();
    // Bob logs in again, on node 3: his connection on node 1 is told `replaced` and closed.
    let mut new = Phone::login(&c.url(2), "15550000222", 222).await;
    loop {
        match old.try_event().await {
            Some(PhoneEvent::Replaced) => break,
            Some(_) => {}
            None => panic!("closed without `replaced`"),
        }
    }
    old.closed().await;
    // Messages for bob reach the new connection.
    alice.relay_to(&bob, "AFTER", b"hello").await.unwrap();
    assert_eq!(new.message().await.id, "AFTER");
    new.receipt(&alice.jid(), "AFTER").await;
    assert_eq!(alice.ack("AFTER").await.level, 2);
    // And back to node 1 (a later login wins again).
    let mut third = Phone::login(&c.url(0), "15550000222", 222).await;
    loop {
        match new.try_event().await {
            Some(PhoneEvent::Replaced) => break,
            Some(_) => {}
            None => panic!("closed without `replaced`"),
        }
    }
    alice.relay_to(&bob, "AGAIN", b"hi").await.unwrap();
    assert_eq!(third.message().await.id, "AGAIN");
    c.nodes.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_uploaded_on_one_node_downloads_from_another() {
    if !services::available("media_uploaded_on_one_node_downloads_from_another", true) {
        return;
    }
    let mut c = Cluster::start(2).await;
    let mut alice = c.nodes[0].phone("15550000231", 231).await;
    let auth = alice.media_conn().await;
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let token = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(&body))
    };
    let upload = http(
        "POST",
        c.nodes[0].server.media_addr(),
        &format!("/mms/image/{token}?auth={}", percent(&auth.auth)),
        &[],
        &body,
    )
    .await;
    assert_eq!(
        upload.status,
        200,
        "{}",
        String::from_utf8_lossy(&upload.body)
    );
    // The URL names node 1's media host; the same path on node 2 serves the same file.
    let path = upload.json()["direct_path"].as_str().unwrap().to_owned();
    let download = http("GET", c.nodes[1].server.media_addr(), &path, &[], b"").await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, body);
    c.nodes.clear();
}

/// A node as a process of the `wa-server` binary (killed when dropped).
struct NodeProcess {
    child: Child,
    phone_url: String,
    codes: mpsc::UnboundedReceiver<(String, String)>,
}

impl NodeProcess {
    async fn start(
        data: &Path,
        media: &Path,
        schema: &Schema,
        cluster: &str,
        id: &str,
    ) -> NodeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wa-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .arg("--media-dir")
            .arg(media)
            .args(["--store", &schema.url, "--schema", &schema.name])
            .args(["--bus", &services::nats_url(), "--cluster", cluster])
            .args(["--node-id", id])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, codes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("verification code for +")
                    && let Some((number, code)) = rest.split_once(": ")
                {
                    let _ = tx.send((number.to_owned(), code.to_owned()));
                }
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(WAIT, stdout.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "listening", "{line}");
        assert_eq!(words[5], id, "{line}");
        NodeProcess {
            child,
            phone_url: words[2].to_owned(),
            codes,
        }
    }

    /// A registered phone with keys, its code read from the node's standard error.
    async fn phone(&mut self, number: &str, seed: u8) -> Phone {
        let pending = Phone::request_code(&self.phone_url, number, seed).await;
        let code = loop {
            let (n, code) = tokio::time::timeout(WAIT, self.codes.recv())
                .await
                .unwrap()
                .unwrap();
            if n == number {
                break code;
            }
        };
        let mut phone = pending.verify(&code).await;
        assert_eq!(phone.upload_keys(3).await, 3);
        phone
    }
}

/// What a receiver saw.
#[derive(Debug, Default)]
struct Received {
    ids: HashSet<String>,
    duplicates: usize,
    reconnects: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_acknowledged_message() {
    if !services::available(
        "a_node_killed_under_load_loses_no_acknowledged_message",
        true,
    ) {
        return;
    }
    let schema = Schema::new();
    let cluster = services::unique("wa-kill");
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let media = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(
            NodeProcess::start(
                dir.path(),
                media.path(),
                &schema,
                &cluster,
                &format!("n{}", i + 1),
            )
            .await,
        );
    }
    // Senders on nodes 1 and 3, receivers on node 2 (the one that dies).
    let receivers = ["15550000241", "15550000242", "15550000243"];
    let senders = ["15550000251", "15550000252"];
    let mut receiver_phones = Vec::new();
    for (i, number) in receivers.iter().enumerate() {
        receiver_phones.push(nodes[1].phone(number, 241 + u8::try_from(i).unwrap()).await);
    }
    let mut sender_phones = Vec::new();
    for (i, number) in senders.iter().enumerate() {
        let node = if i == 0 { 0 } else { 2 };
        sender_phones.push(
            nodes[node]
                .phone(number, 251 + u8::try_from(i).unwrap())
                .await,
        );
    }
    const PER_SENDER: usize = 50;
    // Who expects what: sender s sends message k to receiver k % 3.
    let mut expected: HashMap<&str, HashSet<String>> = HashMap::new();
    for s in 0..senders.len() {
        for k in 0..PER_SENDER {
            expected
                .entry(receivers[k % receivers.len()])
                .or_default()
                .insert(format!("K{s}-{k}"));
        }
    }
    let delivered = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let survivors = [nodes[0].phone_url.clone(), nodes[2].phone_url.clone()];
    let mut receiving = Vec::new();
    for (i, phone) in receiver_phones.into_iter().enumerate() {
        let want = expected[receivers[i]].clone();
        let number = receivers[i].to_owned();
        let seed = 241 + u8::try_from(i).unwrap();
        let fallback = survivors[i % 2].clone();
        let (delivered, enough) = (Arc::clone(&delivered), Arc::clone(&enough));
        receiving.push(tokio::spawn(async move {
            let mut phone = phone;
            let mut seen = Received::default();
            while !want.is_subset(&seen.ids) {
                match phone.try_event().await {
                    Some(PhoneEvent::Message { message }) => {
                        if seen.ids.insert(message.id.clone()) {
                            if delivered.fetch_add(1, Ordering::Relaxed) + 1 == 30 {
                                enough.notify_one();
                            }
                        } else {
                            seen.duplicates += 1;
                        }
                        // The receipt retires the entry (its answer is skipped as an event).
                        let _ = phone
                            .try_send(Phone::receipt_request(&message.from, None, &message.id))
                            .await;
                    }
                    Some(_) => {}
                    None => {
                        // The node died: log in on a surviving one, which sends the queue.
                        seen.reconnects += 1;
                        assert!(seen.reconnects <= 3, "{number}: too many reconnects");
                        phone = Phone::login(&fallback, &number, seed).await;
                    }
                }
            }
            (number, seen)
        }));
    }
    let mut sending = Vec::new();
    for (s, phone) in sender_phones.into_iter().enumerate() {
        let receivers: Vec<_> = receivers
            .iter()
            .map(|n| wa_wire::ids::user_jid(n).unwrap())
            .collect();
        sending.push(tokio::spawn(async move {
            let mut phone = phone;
            let mut acknowledged = 0;
            for k in 0..PER_SENDER {
                let to = &receivers[k % receivers.len()];
                let id = format!("K{s}-{k}");
                // Stored (ack 1) when the relay is answered: the sender's node is alive.
                phone
                    .relay_to(to, &id, &[u8::try_from(k).unwrap(); 300])
                    .await
                    .unwrap();
                acknowledged += 1;
            }
            acknowledged
        }));
    }
    // Under load: kill node 2 once its receivers have some of their messages.
    tokio::time::timeout(WAIT, enough.notified()).await.unwrap();
    let mut victim = nodes.remove(1);
    victim.child.start_kill().unwrap();
    let killed_at = delivered.load(Ordering::Relaxed);
    let _ = tokio::time::timeout(WAIT, victim.child.wait())
        .await
        .unwrap();

    let mut acknowledged = 0;
    for s in sending {
        acknowledged += tokio::time::timeout(WAIT * 4, s).await.unwrap().unwrap();
    }
    assert_eq!(acknowledged, PER_SENDER * senders.len());
    let mut duplicates = 0;
    for r in receiving {
        let (number, seen) = tokio::time::timeout(WAIT * 4, r).await.unwrap().unwrap();
        assert_eq!(seen.ids, expected[number.as_str()], "{number}");
        assert_eq!(seen.reconnects, 1, "{number} moved once");
        duplicates += seen.duplicates;
    }
    eprintln!(
        "node 2 killed after {killed_at} of {} deliveries; every acknowledged message arrived; {duplicates} duplicates dropped by id",
        PER_SENDER * senders.len()
    );
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_errors_name_what_failed() {
    // No services needed: nothing listens on port 1.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.store = StoreKind::Postgres {
        url: "postgres://postgres@127.0.0.1:1/test".into(),
        schema: "public".into(),
    };
    let err = wa_server::Server::start(config).await.unwrap_err();
    assert!(
        matches!(&err, wa_server::Error::Store(_)) && err.to_string().contains("connecting"),
        "{err}"
    );
    // A bus needs a shared store.
    let mut config = Config::new(dir.path());
    config.bus = Some(BusConfig::new("nats://127.0.0.1:1", "c"));
    let err = wa_server::Server::start(config).await.unwrap_err();
    assert!(matches!(err, wa_server::Error::Config(_)), "{err}");
    // A bus that does not answer, or a cluster name that is no subject token.
    let shared: Arc<dyn wa_server::store::Store> = Arc::new(wa_server::store::MemStore::new());
    for (url, cluster, why) in [
        ("nats://127.0.0.1:1", "c", "cannot connect"),
        ("nats://127.0.0.1:1", "a.b", "cluster name"),
    ] {
        let mut config = Config::new(dir.path());
        config.bus = Some(BusConfig::new(url, cluster));
        let err = wa_server::Server::start_with_store(config, Arc::clone(&shared))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, wa_server::Error::Bus { .. }) && err.to_string().contains(why),
            "{err}"
        );
    }
}
