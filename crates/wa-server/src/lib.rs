//! The tokio driver of the wa-rs reference server: sockets, HTTP, storage and time for the
//! protocol logic of [`wa_server_core`], in the manner of `quinn` over `quinn-proto`.
//!
//! The core decides everything the protocol says: [`wa_server_core::WebConnection`] (web
//! clients, `/ws`) and [`wa_server_core::PhoneConnection`] (phones, `/phone`, the JSON protocol
//! of [`wa_wire::phone`]) take what arrived and the time, and return actions. This crate runs
//! them:
//!
//! - **HTTP** (axum on hyper's HTTP/1 server): `/ws` and `/phone` (WebSocket upgrades),
//!   `POST /logout?t=&m=` (a web client's offline logout, PROTOCOL.md §2.6: the core's
//!   [`wa_server_core::logout_offline`] in one write job, its pushes delivered after the commit),
//!   `/status` (JSON: connections, online devices, queued messages, uptime, RSS) and `/metrics`
//!   (Prometheus text), `/mms/{type}/{token}` (media upload) and `/d/{id}?cap=...` (download);
//!   optionally a separate media listener and a status listener outside the connection caps.
//! - **One task per WebSocket**: a `select!` over the socket, the
//!   connection's push queue, its store jobs' outcomes, one timer and shutdown; after every
//!   input it carries out the core's actions in order (send, close, run a store job, push
//!   through the hub, register, deliver a code).
//! - **The hub**: the core's [`wa_server_core::Hub`] next to each connection's bounded push
//!   queue, behind one lock that is never held across an `.await`.
//! - **The store**: [`store::RedbStore`] implements the core's [`store::Store`] (one `redb`
//!   file and its write-ahead log, mode 0600; a writer thread runs waiting jobs together, up to
//!   256 per fsync of the log, and writes to the file in bulk; a failing job fails no other). A
//!   write job's outcome reaches the connection only once it is durable, so ack 1 survives
//!   `kill -9`. In cluster mode, [`store::PgStore`] instead
//!   (PostgreSQL, shared by the nodes).
//! - **Cluster mode** (optional): several nodes on one PostgreSQL schema and one NATS
//!   [`bus`]; see [below](#cluster-mode).
//! - **Media files** in the data directory, streamed in and out, with capability URLs.
//! - **The sweeper**: expired messages, refs, codes and upload auth (the core's
//!   [`wa_server_core::sweep`]) and expired media files, every `sweep_interval`.
//! - **Registration codes** go to a [`CodeSender`] (the default prints them on standard error).
//! - **The command line** ([`cli`], feature `cli`, on by default): [`cli::ServerArgs`] for any
//!   clap command, logging, and a run loop that stops gracefully on SIGTERM or Ctrl-C.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = wa_server::Config::new("/var/lib/wa-server");
//! config.listen = "127.0.0.1:8080".parse()?;
//! let server = wa_server::Server::start(config).await?;
//! println!("phones: {}, web clients: {}", server.phone_url(), server.ws_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What it does not do
//!
//! - No protocol decisions: what to answer, store, push or refuse is the core's. The driver
//!   only refuses at the transport level (caps, timeouts, sizes, `Origin`, a binary message on
//!   the phone socket).
//! - No TLS: plain WebSocket and HTTP; put it behind a TLS proxy (which then passes the
//!   client's address on its own terms: the per-address cap sees the proxy's).
//! - No HTTP/2 (WebSockets and media need nothing more than HTTP/1.1).
//! - No load balancing: clients pick a node (a TCP balancer or DNS in front of the nodes);
//!   a node's connections live in its memory, and a client whose node dies connects again to
//!   another.
//! - No NATS or PostgreSQL TLS (`NoTls`): the cluster's services are meant for loopback or a
//!   private network.
//! - It reads no message content: bodies are end-to-end ciphertext for the server.
//!
//! # Cluster mode
//!
//! `wa-server --store postgres://user@db/wa --schema wa --bus nats://bus:4222 --cluster prod
//! --node-id n1 --media-dir /shared/wa-media` (or [`Config::cluster_node`] and
//! [`Server::start`] in-process) runs one node of a cluster. Any node accepts any client and
//! any phone; no node keeps state another needs.
//!
//! - **Shared, durable:** everything the core stores, in one PostgreSQL schema
//!   ([`store::PgStore`]): one `kv` table of the core's tables, a sequence for message numbers,
//!   versioned migrations (`migrations/NNNN_name.sql`, applied at start, a newer schema
//!   refused). Write jobs run `SERIALIZABLE`, and the nodes' write transactions take turns
//!   under an advisory lock (no conflicts; [`store::Writers`]); a serialization failure or
//!   deadlock re-runs a job (bounded, jittered), so two nodes racing receipts for one message
//!   give one ack 2 per recipient account. Media bodies: files in [`Config::media_dir`], which
//!   every node must share (a shared filesystem: bodies of up to 64 MiB stream to and from disk as on one node,
//!   without going through PostgreSQL's WAL and memory; their records are in the store), so any
//!   node serves any download.
//! - **Told, not shared:** the [`bus`] (core NATS, subjects `wa.<cluster>.acct.<shard>`,
//!   `.push`, `.device`, `.heartbeat`) carries every push a node makes (a message stored for a
//!   device connected elsewhere reaches it at once; acks, presence, group and key notices, QR
//!   refs, presence subscriptions the same way): a push to an account's devices only to the
//!   nodes subscribed to its account subject (those with a connection of an account of its
//!   shard), the others to every node; each login (an older connection of the same device on
//!   another node gets `replaced`), and the phones online per node (heartbeat every 2 s,
//!   expiry 6 s: a killed node's phones do not stay online).
//! - **What a node keeps:** its connections and their push queues, its hub (who is connected
//!   here), and its view of the other nodes' phones: nothing another node needs, all rebuilt
//!   by clients reconnecting. `/status` shows it under `cluster`: the node's id, the nodes it
//!   hears, the bus's counters (published, received, dropped, too large, undecodable, and
//!   pushes for nobody connected here, dropped undecoded) and the account subjects it is
//!   subscribed to.
//! - **Failure model:** ack 1 is sent after the commit, so `kill -9` of a node loses no
//!   acknowledged message; its clients connect to another node and get their queues from the
//!   store, dropping by message id what they had already received. A push lost on the bus (a
//!   node down, a full queue, NATS restarting) costs latency, not data: the device gets the
//!   message from its queue when it next connects. Acks, presence and notices are best effort,
//!   as on one node. PostgreSQL unreachable: jobs fail with a store error (a request gets a
//!   500) and the next job connects again.
//!
//! # Limits
//!
//! | limit | default | where |
//! | --- | --- | --- |
//! | open connections (all public listeners; 503 beyond, before the request is read) | 10 000, lowered to fit the open-file limit | [`Config::max_connections`] |
//! | connections per client IP address | 64 | [`Config::max_connections_per_address`] |
//! | connections not logged in (HTTP requests, WebSockets before login) | 1000 | [`Config::max_unauthenticated`] |
//! | connections to the status listener | 16 | [`Config::status_connections`] |
//! | request head: time / size | 10 s / 16 KiB | [`Config::header_read_timeout`], hyper's buffer |
//! | status pages answered within | 10 s (503) | [`Config::request_timeout`] |
//! | media upload received / download sent within | 300 s | [`Config::media_timeout`] |
//! | media body | 64 MiB (413 as soon as exceeded) | core `limits.max_media_len` |
//! | concurrent downloads | 64 (503 beyond) | [`Config::max_downloads`] |
//! | WebSocket message and frame | 1 MiB | core `limits.frame` |
//! | WebSocket read buffer / write buffer | 4 KiB / 16 KiB (a turn's messages in one write) | [`Config::ws_read_buffer`], [`Config::ws_write_buffer`] |
//! | a batch of writes to a socket | 10 s, then closed | [`Config::write_timeout`] |
//! | pushes queued per connection: entries / bytes (estimated from ciphertext) | 4096 / 8 MiB, then closed (lagged) | [`Config::push_queue_len`], [`Config::push_queue_bytes`] |
//! | store jobs in flight per connection, running or held for an earlier one's outcome (then its socket is not read) | 64 | [`Config::max_jobs_per_connection`] |
//! | shutdown waits for connections | 5 s | [`Config::shutdown_grace`] |
//! | cluster: envelopes waiting to be published (then dropped, counted) | 65 536 | [`bus::OUTBOX`] |
//! | cluster: a push published on the bus | NATS `max_payload` (1 MiB by default; larger: from the store) | the NATS server |
//! | cluster: PostgreSQL read connections / jobs per commit / time a conflicting job is run again | 8 / 64 / 5 s | [`store::postgres`] |
//! | requests per connection, relay size, pending messages, groups, keys... | see [`wa_server_core::Limits`] | [`Config::core`] |
//!
//! Measured (release build, `target/release/examples/idle_rss 2000`): about 18 KiB of server
//! RSS per idle WebSocket before login, 24 KiB per idle logged-in phone.
//!
//! # Threads and tasks
//!
//! A multi-threaded tokio runtime (the binary's; a library user brings their own) runs: one
//! accept loop per listener; one task per HTTP connection (hyper's connection future, with a
//! watchdog for download deadlines and shutdown); one task per WebSocket (spawned by axum's
//! upgrade, driving one core connection); the sweeper. Snapshot reads (store read jobs, media
//! lookups, the status counts) run on tokio's blocking pool; all writes go to the store's own
//! writer thread (`wa-server-store`, or `wa-server-pg-writer-0` on PostgreSQL, whose reads use
//! a pool of at most 8 connections), whose callbacks hand outcomes back to the connection
//! tasks over channels. In a cluster, three more tasks: the bus's publisher (fed by a bounded
//! queue), its receiver and its heartbeat; and one per account subject (at most
//! [`bus::SHARDS`]), which hands what it gets to the receiver. Nothing blocks an async worker: pushes are queued
//! without waiting, and the hub's lock is held only for a lookup.
//!
//! # Dependencies
//!
//! - `wa-server-core` (the protocol), `wa-wire` (its vocabulary: addresses in the hub, the phone
//!   protocol's types in tests), `wa-frame` (WebSocket messages as the core takes them).
//! - `tokio` (runtime, sockets, timers, signals, files) and `tokio-util` (`ReaderStream` for
//!   downloads, `TaskTracker` for shutdown).
//! - `axum` (routing, extractors with percent-decoding, the WebSocket upgrade on
//!   tokio-tungstenite with sized buffers), `hyper` + `hyper-util` (the HTTP/1 server with a
//!   header-read timeout, served per connection so that caps are taken at accept), `tower`
//!   and `tower-http` (`TimeoutLayer`, `RequestBodyLimitLayer`), `http-body-util` (to tell the
//!   body limit's error apart), `bytes`, `futures-util` (the WebSocket as stream and sink).
//! - `redb` (4.x): embedded, pure Rust, ACID with fsync'd commits. 4.6 inserts into a leaf in
//!   about half the time of 2.6 (measured with the database file's own write pattern; see
//!   BENCHMARKS.md), which is most of what writing an overlay to the file costs.
//! - `redb2` (`redb` 2.6, renamed): only to upgrade, in place, a database file that this crate
//!   wrote on `redb` 2 in redb's v2 file format, which `redb` 3 and later do not open.
//! - `crc32fast`: the checksums of the store's write-ahead log records (SIMD CRC-32, no
//!   dependencies of its own).
//! - `libc` (on Linux, constants only): the `O_DIRECT` and `O_DSYNC` flags the log is written
//!   with (about a quarter less system time per fsync'd append than `write` and `fdatasync`).
//! - `foldhash`: the switchboard's hash maps of connections, with a seeded hasher that costs a
//!   fraction of SipHash's instructions (as the core's hub).
//! - `smallvec`: the keys of the store's in-memory overlay, held inline in the overlay's maps
//!   (searching a big overlay otherwise followed a pointer for every key it compared).
//! - `tokio-postgres` (without TLS): the cluster's shared store, used synchronously (the
//!   core's [`store::Store`] trait is: a job reads and decides inline) on the store's own
//!   threads, each connection with a single-threaded runtime of its own, as the `postgres`
//!   crate does, but able to send several statements in one round trip (the write lock, the
//!   commit).
//! - `async-nats` (without its default features: no JetStream, TLS or NKeys needed): the
//!   cluster's bus, core publish/subscribe.
//! - `rlimit`: raises the open-file limit to its hard limit with a safe API.
//! - `getrandom`: seeds for each connection's generator, media ids and capabilities.
//! - `sha2` and `subtle`: media tokens and capability hashes, compared in constant time;
//!   `base64` and `hex` for their text forms; `serde`/`serde_json` for records and status.
//! - `thiserror` for [`Error`]; `tracing` for logs; `zeroize` (codes in memory).
//! - With `cli`: `clap` (arguments), `tracing-subscriber` (the log output), `anyhow` (one-line
//!   error chains for the binary), `mimalloc` (the binary's allocator: with glibc's,
//!   allocating and freeing was a fifth of the server's CPU under load, as memory allocated on
//!   the connections' threads is freed on the store's; mimalloc cut the CPU per delivered copy
//!   by a quarter, BENCHMARKS.md). The library sets no allocator: that is the program's choice.

pub mod bus;
mod caps;
#[cfg(feature = "cli")]
pub mod cli;
mod code;
mod config;
mod error;
mod http;
mod media;
mod metrics;
mod push;
mod routing;
mod server;
mod socket;
pub mod store;

pub use crate::bus::BusConfig;
pub use crate::code::{ChannelCodeSender, CodeSender, DeliveredCode, LogCodeSender};
pub use crate::config::{Config, StoreKind};
pub use crate::error::Error;
pub use crate::server::{DATABASE_FILE, RunningServer, Server, Swept};
