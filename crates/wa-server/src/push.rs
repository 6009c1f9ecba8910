//! One connection's push queue: what other connections send it through the hub, bounded in
//! entries and in bytes.
//!
//! Pushing never blocks and never waits: a push that does not fit marks the queue *lagged*, its
//! contents are dropped, and the connection's task closes the socket. Nothing is lost by that:
//! the core only pushes messages that are also in the store (acks and presence are
//! best-effort), so the device gets them from its queue when it comes back.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;
use wa_server_core::Push;

/// What a push is estimated to cost in memory: its ciphertext and a fixed overhead for the
/// rest (ids, addresses, the enum itself).
pub(crate) fn push_cost(push: &Push) -> usize {
    const OVERHEAD: usize = 256;
    match push {
        Push::Deliver { message, .. } => {
            OVERHEAD
                + message.id.len()
                + message.group.as_ref().map_or(0, Vec::len)
                + message.olm.as_ref().map_or(0, |o| o.body.len())
        }
        _ => OVERHEAD,
    }
}

/// What [`PushQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
    /// It did not fit: the queue is lagged now (or was already).
    Lagged,
    /// The connection is gone.
    Closed,
}

/// What [`PushQueue::recv`] returns.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned by value and matched at once; boxing would cost an allocation per push"
)]
pub(crate) enum Received {
    /// The next push.
    Push(Push),
    /// The queue overflowed: close the connection.
    Lagged,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<(Push, usize)>,
    bytes: usize,
    lagged: bool,
    closed: bool,
}

/// A bounded multi-producer, single-consumer queue of pushes.
#[derive(Debug)]
pub(crate) struct PushQueue {
    state: Mutex<State>,
    notify: Notify,
    max_len: usize,
    max_bytes: usize,
}

impl PushQueue {
    /// A queue of at most `max_len` pushes and `max_bytes` estimated bytes.
    pub(crate) fn new(max_len: usize, max_bytes: usize) -> PushQueue {
        PushQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            max_len: max_len.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Queues `push` if it fits; else marks the queue lagged and drops what it held.
    pub(crate) fn push(&self, push: Push) -> Pushed {
        let cost = push_cost(&push);
        let Ok(mut state) = self.state.lock() else {
            return Pushed::Closed;
        };
        if state.closed {
            return Pushed::Closed;
        }
        if state.lagged {
            return Pushed::Lagged;
        }
        // One push always fits an empty queue (a push larger than the whole budget must not
        // doom a connection that keeps up).
        let over_budget =
            !state.items.is_empty() && state.bytes.saturating_add(cost) > self.max_bytes;
        if state.items.len() >= self.max_len || over_budget {
            state.lagged = true;
            state.items.clear();
            state.bytes = 0;
            drop(state);
            self.notify.notify_one();
            return Pushed::Lagged;
        }
        state.bytes += cost;
        state.items.push_back((push, cost));
        drop(state);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Queues `push` whatever the caps (shutdown's disconnect: it must get through).
    pub(crate) fn push_forced(&self, push: Push) {
        if let Ok(mut state) = self.state.lock() {
            if state.closed {
                return;
            }
            let cost = push_cost(&push);
            state.bytes = state.bytes.saturating_add(cost);
            state.items.push_back((push, cost));
        }
        self.notify.notify_one();
    }

    /// The next push, waiting for one. Only one task may wait (the connection's).
    pub(crate) async fn recv(&self) -> Received {
        loop {
            if let Ok(mut state) = self.state.lock() {
                if state.lagged {
                    return Received::Lagged;
                }
                if let Some((push, cost)) = state.items.pop_front() {
                    state.bytes = state.bytes.saturating_sub(cost);
                    return Received::Push(push);
                }
            }
            // `notify_one` keeps a permit when nobody waits, so a push made between the check
            // above and this wait is not missed.
            self.notify.notified().await;
        }
    }

    /// The next push if one is waiting (none once the queue is lagged: [`PushQueue::recv`]
    /// reports that).
    pub(crate) fn try_recv(&self) -> Option<Push> {
        let mut state = self.state.lock().ok()?;
        if state.lagged {
            return None;
        }
        let (push, cost) = state.items.pop_front()?;
        state.bytes = state.bytes.saturating_sub(cost);
        Some(push)
    }

    /// Completes once the queue is lagged (raced against a blocked socket write). Only the
    /// connection's task may wait, and not while it waits in [`PushQueue::recv`].
    pub(crate) async fn lagged(&self) {
        loop {
            if self.state.lock().is_ok_and(|s| s.lagged) {
                return;
            }
            self.notify.notified().await;
        }
    }

    /// The connection is gone: drop everything and refuse what comes.
    pub(crate) fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
            state.items.clear();
            state.bytes = 0;
        }
    }

    /// Pushes and estimated bytes waiting.
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        self.state
            .lock()
            .map(|s| (s.items.len(), s.bytes))
            .unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_server_core::DisconnectKind;
    use wa_wire::ids::user_jid;
    use wa_wire::msg::{ContentKind, Incoming, OlmPayload, OlmType};

    fn deliver(seq: u64, bytes: usize) -> Push {
        let from = user_jid("15550000001").unwrap();
        Push::Deliver {
            seq,
            message: Incoming {
                from: from.clone(),
                chat: from,
                id: format!("m{seq}"),
                t: 1,
                kind: ContentKind::Text,
                group: None,
                olm: Some(OlmPayload {
                    kind: OlmType::Normal,
                    body: vec![7; bytes],
                }),
            },
        }
    }

    #[tokio::test]
    async fn bounded_in_entries() {
        let q = PushQueue::new(2, usize::MAX);
        assert_eq!(q.push(Push::PhoneReachable(true)), Pushed::Queued);
        assert_eq!(q.push(Push::PhoneReachable(false)), Pushed::Queued);
        assert_eq!(q.push(Push::PhoneReachable(true)), Pushed::Lagged);
        assert_eq!(q.usage(), (0, 0), "a lagged queue lets go of what it held");
        assert!(matches!(q.recv().await, Received::Lagged));
        assert_eq!(q.push(Push::PhoneReachable(true)), Pushed::Lagged);
    }

    #[tokio::test]
    async fn bounded_in_bytes_by_ciphertext() {
        let q = PushQueue::new(100, 10_000);
        assert_eq!(q.push(deliver(1, 4000)), Pushed::Queued);
        assert_eq!(q.push(deliver(2, 4000)), Pushed::Queued);
        assert!(q.usage().1 > 8000);
        // Taking one out frees its bytes.
        assert!(matches!(
            q.recv().await,
            Received::Push(Push::Deliver { seq: 1, .. })
        ));
        assert_eq!(q.push(deliver(3, 4000)), Pushed::Queued);
        assert_eq!(q.push(deliver(4, 4000)), Pushed::Lagged);
        q.lagged().await;
    }

    #[tokio::test]
    async fn one_push_larger_than_the_budget_fits_an_empty_queue() {
        let q = PushQueue::new(100, 1000);
        assert_eq!(q.push(deliver(1, 5000)), Pushed::Queued);
        assert!(matches!(q.recv().await, Received::Push(_)));
        assert_eq!(q.push(deliver(2, 5000)), Pushed::Queued);
        assert_eq!(q.push(deliver(3, 10)), Pushed::Lagged);
    }

    #[tokio::test]
    async fn forced_pushes_pass_caps_and_closed_queues_refuse() {
        let q = PushQueue::new(1, 1);
        q.push_forced(Push::Disconnect(DisconnectKind::Shutdown));
        assert!(matches!(
            q.recv().await,
            Received::Push(Push::Disconnect(DisconnectKind::Shutdown))
        ));
        q.close();
        assert_eq!(q.push(Push::PhoneReachable(true)), Pushed::Closed);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes() {
        let q = std::sync::Arc::new(PushQueue::new(10, 100_000));
        let q2 = std::sync::Arc::clone(&q);
        let waiter = tokio::spawn(async move { matches!(q2.recv().await, Received::Push(_)) });
        tokio::task::yield_now().await;
        q.push(Push::PhoneReachable(true));
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .unwrap()
                .unwrap()
        );
    }
}
