//! Entry points for fuzz targets (not part of the API).
//!
//! Each hook feeds arbitrary input to a fresh connection of the core, running its store jobs on
//! a [`MemStore`] and handing the outcomes back, as a driver would. Nothing may panic, and one
//! input may make only a bounded number of actions.

use std::sync::Arc;

use wa_wire::Time;

use crate::store::MemStore;
use crate::{Action, Config, PhoneConnection, WebConnection};

/// Actions one fuzz input may cause at most (each message in it makes a few).
const MAX_ACTIONS: usize = 100_000;

/// Runs a job on the in-memory store (which runs it at once) and returns its outcome.
fn run(store: &MemStore, job: crate::Job) -> Result<crate::Outcome, crate::store::StoreError> {
    let slot = Arc::new(std::sync::Mutex::new(None));
    let filled = Arc::clone(&slot);
    crate::execute(store, job, move |r| {
        if let Ok(mut slot) = filled.lock() {
            *slot = Some(r);
        }
    });
    let taken = slot.lock().ok().and_then(|mut s| s.take());
    taken.unwrap_or(Err(crate::store::StoreError::Closed))
}

fn chunks(data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (&head, tail) = rest.split_first()?;
        let (&len, tail) = tail.split_first().unwrap_or((&0, tail));
        let (chunk, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        Some((head, chunk))
    })
}

/// Feeds a web connection a sequence of WebSocket messages: each is a kind byte (even: text,
/// odd: binary), a length byte and that many bytes; a kind byte of 0xFF moves the clock instead.
pub fn web(data: &[u8]) {
    let store = MemStore::new();
    let mut now = Time::from_secs(1_600_000_000);
    let mut conn = WebConnection::new(Arc::new(Config::default()), [7; 32], now);
    let mut actions = 0;
    for (kind, chunk) in chunks(data) {
        match kind {
            0xFF => {
                let secs = u64::from(chunk.first().copied().unwrap_or(1)) * 10;
                now = now + std::time::Duration::from_secs(secs);
                conn.handle_timeout(now);
            }
            k if k % 2 == 0 => {
                let text = String::from_utf8_lossy(chunk);
                conn.handle_message(now, wa_frame::WsMessage::Text(&text));
            }
            _ => conn.handle_message(now, wa_frame::WsMessage::Binary(chunk)),
        }
        loop {
            let mut outcomes = Vec::new();
            while let Some(action) = conn.poll_action() {
                actions += 1;
                if let Action::Job { id, job } = action {
                    outcomes.push((id, run(&store, *job)));
                }
            }
            if outcomes.is_empty() {
                break;
            }
            for (id, outcome) in outcomes {
                conn.handle_job(now, id, outcome);
            }
            assert!(actions < MAX_ACTIONS, "too many actions for one input");
        }
    }
}

/// Feeds a phone connection a sequence of text messages (a kind byte, a length byte, the text).
pub fn phone(data: &[u8]) {
    let store = MemStore::new();
    let now = Time::from_secs(1_600_000_000);
    let mut conn = PhoneConnection::new(Arc::new(Config::default()), [7; 32], now);
    let mut actions = 0;
    for (_, chunk) in chunks(data) {
        conn.handle_message(now, &String::from_utf8_lossy(chunk));
        loop {
            let mut outcomes = Vec::new();
            while let Some(action) = conn.poll_action() {
                actions += 1;
                if let Action::Job { id, job } = action {
                    outcomes.push((id, run(&store, *job)));
                }
            }
            if outcomes.is_empty() {
                break;
            }
            for (id, outcome) in outcomes {
                conn.handle_job(now, id, outcome);
            }
            assert!(actions < MAX_ACTIONS, "too many actions for one input");
        }
    }
}
