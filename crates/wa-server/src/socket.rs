//! One task per WebSocket: the driver of one core connection ([`WebConnection`] or
//! [`PhoneConnection`]).
//!
//! The task `select!`s over the socket, the connection's push queue, the outcomes of its store
//! jobs, one timer (re-armed from `poll_timeout` after every input) and shutdown. After every
//! `handle_*` it drains `poll_action` in order: sends are fed to the socket and flushed once the
//! connection has nothing more at hand (after letting the other tasks run, up to
//! [`FLUSH_ROUNDS`] times, and taking what they brought it), all within
//! [`Config::write_timeout`](crate::Config::write_timeout) (a client that stops reading is
//! closed); jobs go to the store (reads on the blocking pool, writes to the store's writer)
//! with a callback that sends the outcome back to this task; pushes and registrations go to
//! the switchboard; codes to the code sender.
//!
//! When the socket ends, the connection leaves the hub, its permits are released, and the task
//! still waits for the jobs it had running: their effects (a stored message's pushes to its
//! recipients) are delivered even though the sender is gone.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::task_tracker::TaskTrackerToken;
use wa_frame::{OutMessage, WsMessage};
use wa_server_core::store::StoreError;
use wa_server_core::{
    Action, ConnId, DisconnectKind, Job, JobId, Outcome, PhoneConnection, Push, Time, WebConnection,
};

use crate::bus::SUBSCRIBE_WAIT;
use crate::caps::Permits;
use crate::metrics::{Metrics, now};
use crate::push::{PushQueue, Received};
use crate::server::Shared;

/// How long a closed connection waits for the outcomes of its running jobs.
const JOBS_AFTER_CLOSE: Duration = Duration::from_secs(30);

/// How many waiting pushes and job outcomes one turn of a connection's task takes at most
/// before it writes what they send.
const COALESCE: usize = 64;

/// How many times a connection's task lets the others run, and takes what they brought it,
/// before it flushes what it has fed the socket.
const FLUSH_ROUNDS: usize = 2;

/// How long a close frame may take to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Which protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A web client (`/ws`).
    Web,
    /// A phone (`/phone`).
    Phone,
}

/// A core connection, as the driver sees it.
trait Machine: Send {
    /// A message from the socket; false if the protocol has no use for its kind.
    fn message(&mut self, now: Time, message: &Message) -> bool;
    fn push(&mut self, now: Time, push: Push);
    fn job(&mut self, now: Time, id: JobId, result: Result<Outcome, StoreError>);
    fn timeout(&mut self, now: Time);
    fn closed(&mut self, now: Time);
    fn action(&mut self) -> Option<Action>;
    fn deadline(&self) -> Option<Time>;
    fn jobs_in_flight(&self) -> u64;
}

impl Machine for WebConnection {
    fn message(&mut self, now: Time, message: &Message) -> bool {
        match message {
            Message::Text(text) => self.handle_message(now, WsMessage::Text(text.as_str())),
            Message::Binary(bytes) => self.handle_message(now, WsMessage::Binary(bytes)),
            _ => {}
        }
        true
    }
    fn push(&mut self, now: Time, push: Push) {
        self.handle_push(now, push);
    }
    fn job(&mut self, now: Time, id: JobId, result: Result<Outcome, StoreError>) {
        self.handle_job(now, id, result);
    }
    fn timeout(&mut self, now: Time) {
        self.handle_timeout(now);
    }
    fn closed(&mut self, now: Time) {
        self.handle_closed(now);
    }
    fn action(&mut self) -> Option<Action> {
        self.poll_action()
    }
    fn deadline(&self) -> Option<Time> {
        self.poll_timeout()
    }
    fn jobs_in_flight(&self) -> u64 {
        WebConnection::jobs_in_flight(self)
    }
}

impl Machine for PhoneConnection {
    fn message(&mut self, now: Time, message: &Message) -> bool {
        match message {
            Message::Text(text) => self.handle_message(now, text.as_str()),
            // The phone protocol is JSON text only.
            Message::Binary(_) => return false,
            _ => {}
        }
        true
    }
    fn push(&mut self, now: Time, push: Push) {
        self.handle_push(now, push);
    }
    fn job(&mut self, now: Time, id: JobId, result: Result<Outcome, StoreError>) {
        self.handle_job(now, id, result);
    }
    fn timeout(&mut self, now: Time) {
        self.handle_timeout(now);
    }
    fn closed(&mut self, now: Time) {
        self.handle_closed(now);
    }
    fn action(&mut self) -> Option<Action> {
        self.poll_action()
    }
    fn deadline(&self) -> Option<Time> {
        self.poll_timeout()
    }
    fn jobs_in_flight(&self) -> u64 {
        PhoneConnection::jobs_in_flight(self)
    }
}

type Done = (JobId, Result<Outcome, StoreError>);

/// Whether the socket goes on after a batch of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Open,
    /// Closed (by the core, a write timeout, or a socket error).
    Closed,
}

struct Driver {
    shared: Arc<Shared>,
    conn: ConnId,
    queue: Arc<PushQueue>,
    /// `None` once the socket is gone.
    socket: Option<WebSocket>,
    permits: Option<Permits>,
    done_tx: mpsc::UnboundedSender<Done>,
    logged_in: bool,
    /// Whether messages were fed to the socket since its last flush.
    unflushed: bool,
}

/// Drives one upgraded socket until it ends. `permits` and `token` are released when it does.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    socket: WebSocket,
    kind: Kind,
    permits: Permits,
    token: TaskTrackerToken,
) {
    let mut seed = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut seed) {
        tracing::error!(error = %e, "no randomness from the OS: connection refused");
        return;
    }
    let config = Arc::clone(&shared.core);
    let mut machine: Box<dyn Machine> = match kind {
        Kind::Web => Box::new(
            WebConnection::new(config, seed, now())
                .with_budgets(Arc::clone(&shared.budgets))
                .with_peer(permits.peer()),
        ),
        Kind::Phone => Box::new(
            PhoneConnection::new(config, seed, now())
                .with_budgets(Arc::clone(&shared.budgets))
                .with_peer(permits.peer()),
        ),
    };
    let kind_gauge = match kind {
        Kind::Web => &shared.metrics.web_open,
        Kind::Phone => &shared.metrics.phones_open,
    };
    Metrics::inc(&shared.metrics.websockets_open);
    Metrics::inc(kind_gauge);
    let queue = Arc::new(PushQueue::new(
        shared.config.push_queue_len,
        shared.config.push_queue_bytes,
    ));
    let conn = shared.board.open(Arc::clone(&queue));
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        shared: Arc::clone(&shared),
        conn,
        queue: Arc::clone(&queue),
        socket: Some(socket),
        permits: Some(permits),
        done_tx,
        logged_in: false,
        unflushed: false,
    };
    tracing::debug!(conn, ?kind, "connection open");
    driver.run(&mut *machine, &queue, done_rx).await;
    tracing::debug!(conn, "connection closed");
    Metrics::dec(&shared.metrics.websockets_open);
    Metrics::dec(kind_gauge);
    drop(token);
}

impl Driver {
    async fn run(
        &mut self,
        m: &mut dyn Machine,
        queue: &PushQueue,
        mut done_rx: mpsc::UnboundedReceiver<Done>,
    ) {
        let mut shutdown = self.shared.shutdown.clone();
        let mut stopping = *shutdown.borrow();
        if stopping {
            m.push(now(), Push::Disconnect(DisconnectKind::Shutdown));
        }
        let max_jobs =
            u64::try_from(self.shared.config.max_jobs_per_connection.max(1)).unwrap_or(u64::MAX);
        let mut rounds = 0;
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(Instant::now()));
        loop {
            if self.drain(m).await == Flow::Closed {
                break;
            }
            if self.unflushed && !stopping {
                // Under load, more for this socket is often a moment away: the outcome of a
                // job in the store's current commit, a push from another connection's task.
                // Let the other tasks run, and send what they bring in the same write (one
                // system call, and one wake-up of the reader, for several messages).
                if rounds < FLUSH_ROUNDS {
                    rounds += 1;
                    tokio::task::yield_now().await;
                    if self.take_ready(m, queue, &mut done_rx) {
                        continue;
                    }
                }
                rounds = 0;
                if !self.flush().await {
                    break;
                }
            }
            if stopping {
                // The core had its say (a web client hears nothing, a phone may); the socket
                // closes whatever state the connection is in (one that has not logged in
                // ignores pushes).
                self.close_socket(1001, "server shutting down").await;
                break;
            }
            let Some(socket) = self.socket.as_mut() else {
                break;
            };
            let now_t = now();
            let timer = m.deadline().map(|t| Instant::now() + t.since(now_t));
            // One timer for the connection's life, moved to each new deadline: a later
            // deadline is only noted, without a trip to the runtime's timer wheel (a new timer
            // for every turn of this loop was registered and removed again each time).
            if let Some(at) = timer
                && at != sleep.deadline()
            {
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                // Outcomes held for an earlier job's count too: what the core holds is bounded.
                incoming = socket.next(), if m.jobs_in_flight() < max_jobs => match incoming {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(message)) => {
                        if matches!(message, Message::Ping(_) | Message::Pong(_)) {
                            continue;
                        }
                        Metrics::inc(&self.shared.metrics.messages_in);
                        if !m.message(now(), &message) {
                            self.close_socket(1003, "text messages only").await;
                            break;
                        }
                    }
                },
                received = queue.recv() => match received {
                    Received::Push(push) => m.push(now(), push),
                    Received::Lagged => {
                        Metrics::inc(&self.shared.metrics.lagged_closes);
                        tracing::info!(conn = self.conn, "too slow: its pushes overflowed; closing (its messages stay queued)");
                        self.close_socket(1013, "too slow: reconnect to get the rest").await;
                        break;
                    }
                },
                Some((id, result)) = done_rx.recv() => m.job(now(), id, result),
                () = &mut sleep, if timer.is_some() => m.timeout(now()),
                changed = shutdown.changed(), if !stopping => {
                    stopping = true;
                    let _ = changed;
                    m.push(now(), Push::Disconnect(DisconnectKind::Shutdown));
                }
            }
            self.take_ready(m, queue, &mut done_rx);
        }
        // The socket is gone: release its permits, leave the hub, and see its jobs through.
        self.socket = None;
        self.permits = None;
        m.closed(now());
        self.shared.board.close(self.conn);
        let _ = self.drain(m).await;
        let deadline = Instant::now() + JOBS_AFTER_CLOSE;
        while m.jobs_in_flight() > 0 {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some((id, result))) => {
                    m.job(now(), id, result);
                    let _ = self.drain(m).await;
                }
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        conn = self.conn,
                        jobs = m.jobs_in_flight(),
                        "jobs of a closed connection did not finish"
                    );
                    break;
                }
            }
        }
    }

    /// Hands the core the pushes and job outcomes that are already waiting (up to
    /// [`COALESCE`]), so that what they send goes out in one flush: under load, one write to
    /// the socket carries several messages instead of one each. Whether it took any.
    fn take_ready(
        &mut self,
        m: &mut dyn Machine,
        queue: &PushQueue,
        done_rx: &mut mpsc::UnboundedReceiver<Done>,
    ) -> bool {
        for taken in 0..COALESCE {
            if let Ok((id, result)) = done_rx.try_recv() {
                m.job(now(), id, result);
            } else if let Some(push) = queue.try_recv() {
                m.push(now(), push);
            } else {
                return taken > 0;
            }
        }
        true
    }

    /// Carries out every action the core has, in order. Sends are fed to the socket (and go
    /// out as its write buffer fills); [`Driver::flush`] sends the rest.
    async fn drain(&mut self, m: &mut dyn Machine) -> Flow {
        let mut deadline = Instant::now() + self.shared.config.write_timeout;
        while let Some(action) = m.action() {
            match action {
                Action::Send(out) => {
                    let message = match out {
                        OutMessage::Text(text) => Message::Text(text.into()),
                        OutMessage::Binary(bytes) => Message::Binary(bytes.into()),
                    };
                    if self.socket.is_some() {
                        if !self.write(deadline, Some(message)).await {
                            return Flow::Closed;
                        }
                        self.unflushed = true;
                    }
                }
                Action::Close => {
                    if !self.flush().await {
                        return Flow::Closed;
                    }
                    self.close_socket(1000, "").await;
                    return Flow::Closed;
                }
                Action::Job { id, job } => self.submit(id, *job),
                Action::Push { target, push } => self.shared.board.route(target, push),
                Action::Register { number, device } => {
                    if self.socket.is_some() {
                        let subscribed = self.shared.board.register(self.conn, &number, &device);
                        // In a cluster, what the connection does next (read its queue) waits
                        // until the pushes of other nodes for its account reach this node.
                        if let Some(subscribed) = subscribed
                            && tokio::time::timeout(SUBSCRIBE_WAIT, subscribed)
                                .await
                                .is_err()
                        {
                            tracing::warn!(
                                conn = self.conn,
                                "the bus did not confirm the account's subject in time: going on"
                            );
                        }
                        // (The wait is not the writes' time.)
                        deadline = Instant::now() + self.shared.config.write_timeout;
                        if let Some(permits) = self.permits.as_mut() {
                            permits.logged_in();
                        }
                        if !self.logged_in {
                            self.logged_in = true;
                            Metrics::inc(&self.shared.metrics.logins);
                        }
                    }
                }
                Action::RegisterRef(r) => {
                    if self.socket.is_some() {
                        self.shared.board.register_ref(self.conn, &r);
                    }
                }
                Action::ForgetRef(r) => self.shared.board.forget_ref(self.conn, &r),
                Action::Subscribe(jid) => {
                    if self.socket.is_some() && !self.shared.board.subscribe(self.conn, &jid) {
                        tracing::debug!(
                            conn = self.conn,
                            "too many presence subscriptions: one ignored"
                        );
                    }
                }
                Action::DeliverCode { number, code } => {
                    self.shared.config.code_sender.deliver(&number, &code);
                }
                other => tracing::warn!(?other, "an action this driver does not know: ignored"),
            }
        }
        if self.socket.is_some() {
            Flow::Open
        } else {
            Flow::Closed
        }
    }

    /// Sends what was fed to the socket, if anything was; false (and the socket dropped) if
    /// that fails or takes longer than the write timeout.
    async fn flush(&mut self) -> bool {
        if !std::mem::take(&mut self.unflushed) {
            return true;
        }
        let deadline = Instant::now() + self.shared.config.write_timeout;
        self.write(deadline, None).await
    }

    /// Feeds `message` (or flushes, for `None`) before `deadline`; false (and the socket
    /// dropped) if that fails or takes too long.
    async fn write(&mut self, deadline: Instant, message: Option<Message>) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        if message.is_some() {
            Metrics::inc(&self.shared.metrics.messages_out);
        }
        let io = async {
            match message {
                Some(message) => socket.feed(message).await,
                None => socket.flush().await,
            }
        };
        // A client that does not read blocks the write; its pushes pile up meanwhile, and when
        // they overflow the queue the connection closes at once, without waiting for the
        // write timeout.
        let result = tokio::select! {
            result = tokio::time::timeout_at(deadline, io) => result,
            () = self.queue.lagged() => {
                Metrics::inc(&self.shared.metrics.lagged_closes);
                tracing::info!(conn = self.conn, "too slow: its pushes overflowed while a write was blocked; closing");
                self.socket = None;
                return false;
            }
        };
        match result {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(conn = self.conn, error = %e, "socket write failed");
                self.socket = None;
                false
            }
            Err(_) => {
                Metrics::inc(&self.shared.metrics.write_timeouts);
                tracing::info!(conn = self.conn, "socket write timed out: closing");
                self.socket = None;
                false
            }
        }
    }

    /// Sends a close frame (best effort, within the write timeout) and drops the socket.
    async fn close_socket(&mut self, code: u16, reason: &'static str) {
        if let Some(mut socket) = self.socket.take() {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            // Best effort: a client that does not read will not get it.
            let limit = self.shared.config.write_timeout.min(CLOSE_TIMEOUT);
            let _ = tokio::time::timeout(limit, socket.send(Message::Close(Some(frame)))).await;
        }
    }

    /// Runs a store job; its outcome comes back on this task's channel.
    fn submit(&mut self, id: JobId, job: Job) {
        Metrics::inc(&self.shared.metrics.jobs);
        let tx = self.done_tx.clone();
        let shared = Arc::clone(&self.shared);
        let done = move |result: Result<Outcome, StoreError>| {
            if let Err(e) = &result {
                Metrics::inc(&shared.metrics.job_errors);
                tracing::warn!(job = id.0, error = %e, "store job failed");
            }
            let _ = tx.send((id, result));
        };
        if job.is_read_only() {
            // A snapshot read runs on the calling thread: keep it off the async workers.
            let store = Arc::clone(&self.shared.store);
            tokio::task::spawn_blocking(move || wa_server_core::execute(&*store, job, done));
        } else {
            wa_server_core::execute(&*self.shared.store, job, done);
        }
    }
}
