//! Starting and stopping a server; the expiry sweeper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::Error;
use crate::http::{Routes, accept_loop};
use crate::hub::{DisconnectKind, Push};
use crate::model::{self, MessageRecord, expiry_key, message_key};
use crate::shared::{Metrics, Shared, now_secs};
use crate::store::{self, KeyReader, RedbStore, Store, StoreError, Table};

/// The file name of the database in the data directory.
pub const DATABASE_FILE: &str = "wa-server.redb";

/// How long shutdown waits for connections to close before it stops waiting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The reference server. See the [crate docs](crate) for what it does.
#[derive(Debug)]
#[non_exhaustive]
pub struct Server;

impl Server {
    /// Starts a server with the default store (`redb` in `config.data_dir`): binds its
    /// listeners and returns once it accepts connections.
    ///
    /// # Errors
    /// When the data directory or the database cannot be opened (another server may hold it),
    /// or an address cannot be bound.
    pub async fn start(config: Config) -> Result<RunningServer, Error> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| Error::DataDir {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(DATABASE_FILE);
        let store = tokio::task::spawn_blocking(move || RedbStore::open(&path))
            .await
            .map_err(|e| Error::Store(StoreError::Backend(e.to_string())))??;
        Server::start_with_store(config, Arc::new(store)).await
    }

    /// Starts a server on another [`Store`] (media files still go to `config.data_dir`).
    ///
    /// # Errors
    /// As [`Server::start`].
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<RunningServer, Error> {
        let media_dir = config.data_dir.join("media");
        std::fs::create_dir_all(&media_dir).map_err(|source| Error::DataDir {
            path: media_dir.clone(),
            source,
        })?;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })
        };
        let main = bind(config.listen).await?;
        let local_addr = main.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let media = match config.media_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let media_addr = match &media {
            Some(listener) => listener.local_addr().map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?,
            None => local_addr,
        };
        let media_host = config
            .media_host
            .clone()
            .unwrap_or_else(|| media_addr.to_string());
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
        let queued = store::read(&*store, |txn| txn.len(Table::Messages))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            config,
            store,
            media_dir,
            media_host,
            shutdown_rx,
            seed,
        ));
        Metrics::add(&shared.metrics.queued, queued);
        let mut loops = Vec::new();
        loops.push(tokio::spawn(accept_loop(
            main,
            Arc::clone(&shared),
            Routes {
                sockets: true,
                media: media.is_none(),
            },
        )));
        if let Some(media) = media {
            loops.push(tokio::spawn(accept_loop(
                media,
                Arc::clone(&shared),
                Routes {
                    sockets: false,
                    media: true,
                },
            )));
        }
        loops.push(tokio::spawn(sweeper(Arc::clone(&shared))));
        tracing::info!(%local_addr, %media_addr, queued, "wa-server listening");
        Ok(RunningServer {
            shared,
            local_addr,
            media_addr,
            shutdown: shutdown_tx,
            loops,
        })
    }
}

/// A started server. Dropping it stops it without waiting; [`RunningServer::shutdown`]
/// waits.
#[derive(Debug)]
pub struct RunningServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    media_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Where the WebSocket endpoints and status pages listen.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the media service listens (the main address unless configured apart).
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// The web clients' WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.local_addr)
    }

    /// The phones' WebSocket URL, e.g. `ws://127.0.0.1:8080/phone`.
    pub fn phone_url(&self) -> String {
        format!("ws://{}/phone", self.local_addr)
    }

    /// The media service's base URL, e.g. `http://127.0.0.1:8081`.
    pub fn media_url(&self) -> String {
        format!("http://{}", self.shared.media_host)
    }

    /// The status page's URL, e.g. `http://127.0.0.1:8080/status`.
    pub fn status_url(&self) -> String {
        format!("http://{}/status", self.local_addr)
    }

    /// The status document (as `/status` serves it).
    pub fn status(&self) -> serde_json::Value {
        self.shared.status()
    }

    /// Stops accepting, closes every connection, waits (a few seconds at most) for them to
    /// end, and closes the store after its last commit.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for outbox in self.shared.hub.all_outboxes() {
            outbox.push(Push::Disconnect(DisconnectKind::Shutdown));
        }
        for handle in self.loops.drain(..) {
            let _ = handle.await;
        }
        let mut tasks = self.shared.take_tasks();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("connections still open after the grace period: aborted");
            tasks.abort_all();
        }
        let store = Arc::clone(&self.shared.store);
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        tracing::info!("wa-server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Deletes expired messages and media every `sweep_interval`.
async fn sweeper(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let interval = shared.config.sweep_interval.max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match sweep_messages(&shared).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "undelivered messages expired"),
            Err(e) => tracing::error!(error = %e, "sweeping messages failed"),
        }
        match crate::media::sweep(&shared).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "media expired"),
            Err(e) => tracing::error!(error = %e, "sweeping media failed"),
        }
    }
}

/// Deletes the queued messages whose time is up; how many.
pub(crate) async fn sweep_messages(shared: &Shared) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let end = expiry_key(now_secs().saturating_add(1), 0);
        let removed = store::write(&*shared.store, move |txn| {
            let due = txn.range(Table::Expiry, &[], &end, false, 1000)?;
            let mut removed = 0u64;
            for (key, _) in &due {
                let mut reader = KeyReader::new(key);
                let (Some(_), Some(seq)) = (reader.u64(), reader.u64()) else {
                    txn.delete(Table::Expiry, key)?;
                    continue;
                };
                match model::get_json::<MessageRecord>(txn, Table::Messages, &message_key(seq))? {
                    Some(record) => {
                        model::delete_message(txn, seq, &record)?;
                        removed += 1;
                    }
                    None => {
                        txn.delete(Table::Expiry, key)?;
                    }
                }
            }
            Ok((removed, due.len()))
        })
        .await?;
        total += removed.0;
        Metrics::sub(&shared.metrics.queued, removed.0);
        Metrics::add(&shared.metrics.expired, removed.0);
        if removed.1 < 1000 {
            return Ok(total);
        }
    }
}
