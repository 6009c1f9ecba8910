//! What the hostile-load suite (`tests/hostile.rs`) and its measuring example
//! (`examples/hostile.rs`) share: the legitimate pair whose exchanges must keep working during
//! every attack, a pipelined flood of relays, and the size of a data directory.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "shared by a test and an example; each uses a part of it"
)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use wa_wire::Jid;
use wa_wire::phone::{PhoneRequest, Stored};

use crate::support::{Phone, relay};

/// The attacker's address (the default source address on loopback).
pub const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
/// The legitimate pair's address.
pub const LEGIT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
/// Other honest users' address (victims, late registrations).
pub const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

/// How long one exchange of the legitimate pair may take, whatever the attack.
pub const LEGIT_WAIT: Duration = Duration::from_secs(5);

/// Two registered phones, Alice and Bob, that keep talking during an attack.
pub struct Legit {
    pub alice: Phone,
    pub bob: Phone,
    sent: u64,
}

impl Legit {
    /// The pair, both logged in.
    pub fn new(alice: Phone, bob: Phone) -> Legit {
        Legit {
            alice,
            bob,
            sent: 0,
        }
    }

    /// One message from Alice to Bob: stored (the answer, Alice's ack 1), pushed to Bob with
    /// its bytes, Bob's receipt, ack 2 to Alice (her first ack event for it). Panics (naming `during`) unless all of it happens within
    /// [`LEGIT_WAIT`]; returns how long it took.
    pub async fn exchange(&mut self, during: &str) -> Duration {
        match self.try_exchange().await {
            Ok(took) => took,
            Err(why) => panic!("the legitimate exchange during {during} failed: {why}"),
        }
    }

    /// [`Legit::exchange`], with what went wrong instead of a panic.
    pub async fn try_exchange(&mut self) -> Result<Duration, String> {
        self.sent += 1;
        let id = format!("LEGIT{}", self.sent);
        let started = Instant::now();
        let done = tokio::time::timeout(LEGIT_WAIT, async {
            let bob = self.bob.jid();
            let body = id.as_bytes().repeat(16);
            let relay = relay(&bob, &id, std::slice::from_ref(&bob), &body);
            let stored: Result<Stored, _> = self
                .alice
                .call(|rid| PhoneRequest::Relay { id: rid, relay })
                .await;
            if let Err(refused) = stored {
                return Err(format!("refused: {refused:?}"));
            }
            let message = self.bob.message().await;
            if message.id != id || message.olm.map(|o| o.body) != Some(body) {
                return Err(format!("Bob got {} instead", message.id));
            }
            self.bob.receipt(&self.alice.jid(), &id).await;
            let ack = self.alice.ack(&id).await;
            if ack.level != 2 {
                return Err(format!("second ack of level {}", ack.level));
            }
            Ok(())
        })
        .await;
        match done {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(why)) => Err(format!("{id}: {why}")),
            Err(_) => Err(format!("{id} took over {LEGIT_WAIT:?}")),
        }
    }
}

/// What the server answered to each relay of a flood, in the order they were sent.
pub type Answers = Vec<Result<Stored, (u16, String)>>;

/// Sends `count` relays of `size` bytes (ids `{prefix}{i}`, each byte `i % 251`) from `from` to
/// the single device `to`, `window` at a time without waiting: each answer.
pub async fn flood(
    from: &mut Phone,
    to: &Jid,
    prefix: &str,
    count: usize,
    size: usize,
    window: usize,
) -> Answers {
    let mut answers = Vec::with_capacity(count);
    let mut next = 0;
    while next < count {
        let end = (next + window.max(1)).min(count);
        let mut ids = Vec::with_capacity(end - next);
        for i in next..end {
            let body = vec![byte_of(i); size];
            let relay = relay(to, &format!("{prefix}{i}"), std::slice::from_ref(to), &body);
            ids.push(from.send(|id| PhoneRequest::Relay { id, relay }).await);
        }
        for id in ids {
            answers.push(from.answer(id).await);
        }
        next = end;
    }
    answers
}

/// The byte the flood's message `i` is made of.
pub fn byte_of(i: usize) -> u8 {
    u8::try_from(i % 251).unwrap_or(0)
}

/// The indices of the relays that were stored, and the statuses of the others.
pub fn stored_and_refused(answers: &Answers) -> (Vec<usize>, Vec<u16>) {
    let mut stored = Vec::new();
    let mut refused = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Ok(_) => stored.push(i),
            Err((status, _)) => refused.push(*status),
        }
    }
    (stored, refused)
}

pub use crate::support::stored_bytes;
