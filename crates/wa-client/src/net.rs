//! What both drivers share: the clock, the socket helpers and the bounded event stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wa_wire::Time;

/// The default capacity of an event stream.
pub const DEFAULT_EVENTS_CAPACITY: usize = 1024;

/// The session's time: the Unix time at start plus a monotonic clock's elapsed time (so a
/// wall-clock jump does not fire or delay timers).
pub(crate) struct Clock {
    unix_at_start: u64,
    start: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Clock {
            unix_at_start: unix,
            start: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Time {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Time::from_millis(self.unix_at_start.saturating_add(elapsed))
    }

    pub(crate) fn instant(&self, t: Time) -> tokio::time::Instant {
        let offset = Duration::from_millis(t.as_millis().saturating_sub(self.unix_at_start));
        tokio::time::Instant::from_std(self.start + offset)
    }
}

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket with the `Origin` the server requires (PROTOCOL.md §1), within `timeout`.
pub(crate) async fn connect(url: &str, timeout: Duration) -> Option<Socket> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = match url.into_client_request() {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(%url, error = %e, "bad server URL");
            return None;
        }
    };
    request.headers_mut().insert(
        "Origin",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("https://web.whatsapp.com"),
    );
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((socket, _))) => Some(socket),
        Ok(Err(e)) => {
            tracing::debug!(%url, error = %e, "connecting failed");
            None
        }
        Err(_) => {
            tracing::debug!(%url, "connecting timed out");
            None
        }
    }
}

/// The server URLs a driver connects to: the configured one, then the fallbacks, tried in turn
/// from the last one that answered.
#[derive(Debug)]
pub(crate) struct Urls {
    urls: Vec<String>,
    current: usize,
}

impl Urls {
    pub(crate) fn new(primary: String, fallbacks: Vec<String>) -> Urls {
        let mut urls = vec![primary];
        urls.extend(fallbacks);
        Urls { urls, current: 0 }
    }

    /// Opens a socket to the first URL that answers, starting from the last one that did; each
    /// is tried once.
    pub(crate) async fn connect(&mut self, timeout: Duration) -> Option<Socket> {
        let count = self.urls.len();
        for k in 0..count {
            let index = (self.current + k) % count;
            let Some(url) = self.urls.get(index) else {
                continue;
            };
            if let Some(socket) = connect(url, timeout).await {
                self.current = index;
                return Some(socket);
            }
        }
        None
    }
}

/// The next message of the socket; never, without one.
pub(crate) async fn next_message(
    socket: &mut Option<Socket>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; forever without one.
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The events of a driver, in order, through a bounded channel.
///
/// **Slow consumers.** The channel holds `events_capacity` events (default
/// [`DEFAULT_EVENTS_CAPACITY`]). When it is full the driver waits for room: it stops reading
/// the socket (commands and timers still run), so nothing is dropped and nothing piles up in
/// the client. The server keeps what it could not deliver; if its queue for this connection
/// fills, it closes the connection and the driver reconnects and gets the rest. Events are
/// dropped only when the `EventStream` itself has been dropped.
///
/// It is a [`Stream`](futures_util::Stream), and has [`EventStream::next`] for plain loops.
#[derive(Debug)]
pub struct EventStream<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> EventStream<T> {
    pub(crate) fn new(capacity: usize) -> (Outbox<T>, EventStream<T>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Outbox {
                tx,
                queue: VecDeque::new(),
            },
            EventStream { rx },
        )
    }

    /// The next event; `None` once the driver has stopped and every event was taken.
    pub async fn next(&mut self) -> Option<T> {
        self.rx.recv().await
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> futures_util::Stream for EventStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

/// The driver's end of an event stream: events wait in `queue` while the channel is full.
/// The driver reads no more input while `queue` is not empty, so it holds at most what one
/// input produced.
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    tx: mpsc::Sender<T>,
    queue: VecDeque<T>,
}

impl<T> Outbox<T> {
    pub(crate) fn push(&mut self, event: T) {
        self.queue.push_back(event);
    }

    /// A sender for background tasks (they wait for room themselves).
    pub(crate) fn sender(&self) -> mpsc::Sender<T> {
        self.tx.clone()
    }

    /// Moves what fits into the channel; whether events are still waiting.
    pub(crate) fn flush(&mut self) -> bool {
        while let Some(event) = self.queue.pop_front() {
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.queue.push_front(event);
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // Nobody listens any more.
                    self.queue.clear();
                    return false;
                }
            }
        }
        false
    }

    /// Waits for room and sends the oldest waiting event.
    pub(crate) async fn send_one(&mut self) {
        match self.tx.reserve().await {
            Ok(permit) => {
                if let Some(event) = self.queue.pop_front() {
                    permit.send(event);
                }
            }
            Err(_) => self.queue.clear(),
        }
    }

    /// Hands what is still waiting to a task that delivers it as room appears (at shutdown:
    /// the driver stops without waiting for the consumer).
    pub(crate) fn drain_in_background(self)
    where
        T: Send + 'static,
    {
        if self.queue.is_empty() {
            return;
        }
        let Outbox { tx, queue } = self;
        tokio::spawn(async move {
            for event in queue {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is a failed test")]

    use super::Urls;
    use std::time::Duration;

    /// A WebSocket server on loopback accepting `count` connections; its URL.
    async fn server(count: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut sockets = Vec::new();
            for _ in 0..count {
                let (tcp, _) = listener.accept().await.unwrap();
                sockets.push(tokio_tungstenite::accept_async(tcp).await.unwrap());
            }
            // Kept open until the test ends.
            std::future::pending::<()>().await;
        });
        format!("ws://{addr}/ws")
    }

    /// A loopback URL where nothing listens.
    async fn nobody() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("ws://{addr}/ws")
    }

    #[tokio::test]
    async fn the_fallbacks_are_tried_in_turn_from_the_last_that_answered() {
        let timeout = Duration::from_secs(5);
        let (dead, live) = (nobody().await, server(2).await);
        let mut urls = Urls::new(dead.clone(), vec![live]);
        assert!(urls.connect(timeout).await.is_some());
        assert_eq!(urls.current, 1);
        // The next attempt starts from the one that answered.
        assert!(urls.connect(timeout).await.is_some());
        assert_eq!(urls.current, 1);
        // Nobody anywhere: no socket, each tried once.
        let mut none = Urls::new(dead, vec![nobody().await]);
        assert!(none.connect(timeout).await.is_none());
        assert_eq!(none.current, 0);
        // Alone (no fallbacks), as before.
        let mut alone = Urls::new(server(1).await, Vec::new());
        assert!(alone.connect(timeout).await.is_some());
    }
}
