//! [`Net`]: the real web sessions and phones talking to the real server core, in memory, on a
//! virtual clock (in the manner of quinn's `tests/util.rs` `Pair`).
//!
//! Every connection a session or phone asks for becomes a [`WebConnection`] or
//! [`PhoneConnection`] of the server core; what they send is handed over at once; the core's
//! store jobs run on a [`MemStore`]; its pushes go through a [`Hub`]. [`Net::drive`] moves
//! everything until nothing moves; [`Net::advance`] moves the clock, firing every timeout at its
//! own time. No sockets, no threads, no sleeps.
//!
//! Each web client also keeps what a real client persists (its latest [`Credentials`] and its
//! sealed end-to-end state), so that a test can stop it ([`Net::power_off`]) and start it
//! again from storage ([`Net::restore_web`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng as _};
use wa_frame::{OutMessage, WsMessage};
use wa_phone::{Answer, PhoneConfig, PhoneSession, PhoneSessionEvent, PhoneTransmit};
use wa_server_core::store::{MemStore, StoreError};
use wa_server_core::{
    Action, ConnId, Hub, JobId, Outcome, PhoneConnection, Push, Target, WebConnection,
};
use wa_session::{Config, Credentials, Event, PickleKey, Session, StateKey, Transmit};
use wa_wire::msg::Incoming;
use wa_wire::{Jid, Time};

use crate::T0;

/// A web client of the net.
pub struct Web {
    /// Its session.
    pub session: Session,
    /// Every event it emitted that the test has not taken.
    pub events: VecDeque<Event>,
    /// Every text frame it sent, in order (binary frames are sealed: not kept).
    pub sent: Vec<String>,
    /// Every text frame the server sent it, in order.
    pub received: Vec<String>,
    /// The latest credentials it handed out ([`Event::Credentials`]), as a client stores them.
    pub credentials: Option<Credentials>,
    /// Its end-to-end state as a client stores it: the latest sealed part per key of every
    /// [`Event::E2eState`], deletions applied.
    pub state: BTreeMap<StateKey, Vec<u8>>,
    conn: Option<ConnId>,
    /// Powered off: no longer driven.
    off: bool,
}

impl Web {
    /// Keeps what a client persists of `event`.
    fn persist(&mut self, event: &Event) {
        match event {
            Event::Credentials(credentials) => self.credentials = Some((**credentials).clone()),
            Event::E2eState(changes) => {
                for (key, bytes) in &changes.upserts {
                    self.state.insert(key.clone(), bytes.clone());
                }
                for key in &changes.deletions {
                    self.state.remove(key);
                }
            }
            _ => {}
        }
    }
}

/// A phone of the net.
pub struct Phone {
    /// Its session.
    pub session: PhoneSession,
    /// Every event it emitted that the test has not taken.
    pub events: VecDeque<PhoneSessionEvent>,
    conn: Option<ConnId>,
}

enum Conn {
    Web {
        machine: Box<WebConnection>,
        client: usize,
    },
    Phone {
        machine: Box<PhoneConnection>,
        client: usize,
    },
}

impl Conn {
    fn poll_action(&mut self) -> Option<Action> {
        match self {
            Conn::Web { machine, .. } => machine.poll_action(),
            Conn::Phone { machine, .. } => machine.poll_action(),
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        match self {
            Conn::Web { machine, .. } => machine.poll_timeout(),
            Conn::Phone { machine, .. } => machine.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        match self {
            Conn::Web { machine, .. } => machine.handle_timeout(now),
            Conn::Phone { machine, .. } => machine.handle_timeout(now),
        }
    }

    fn handle_push(&mut self, now: Time, push: Push) {
        match self {
            Conn::Web { machine, .. } => machine.handle_push(now, push),
            Conn::Phone { machine, .. } => machine.handle_push(now, push),
        }
    }

    fn handle_job(&mut self, now: Time, id: JobId, result: Result<Outcome, StoreError>) {
        match self {
            Conn::Web { machine, .. } => machine.handle_job(now, id, result),
            Conn::Phone { machine, .. } => machine.handle_job(now, id, result),
        }
    }

    fn handle_closed(&mut self, now: Time) {
        match self {
            Conn::Web { machine, .. } => machine.handle_closed(now),
            Conn::Phone { machine, .. } => machine.handle_closed(now),
        }
    }
}

type Results = Arc<Mutex<VecDeque<(ConnId, JobId, Result<Outcome, StoreError>)>>>;

/// The whole system in memory.
pub struct Net {
    /// The virtual time.
    pub now: Time,
    config: Arc<wa_server_core::Config>,
    store: Arc<MemStore>,
    hub: Hub,
    conns: BTreeMap<ConnId, Conn>,
    /// Connections whose socket is gone: their store jobs still finish, and what those cause
    /// (pushes to other devices) still happens, as it does in the server.
    closed: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    seeds: ChaCha20Rng,
    webs: Vec<Web>,
    phones: Vec<Phone>,
    /// Registration codes the server delivered, `(number, code)`.
    pub codes: Vec<(String, String)>,
    results: Results,
    pushes: VecDeque<(ConnId, Push)>,
    /// Every message the server pushed to a device: `(device, message)`.
    deliveries: Vec<(Jid, Incoming)>,
    injected: u64,
}

/// How long `drive` may go round before it decides the system never settles.
const MAX_ROUNDS: usize = 100_000;

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Net {
    /// A server with the default configuration, at [`T0`].
    pub fn new() -> Net {
        Net::with_config(wa_server_core::Config::default())
    }

    /// A server with `config`, at [`T0`].
    pub fn with_config(config: wa_server_core::Config) -> Net {
        Net {
            now: T0,
            config: Arc::new(config),
            store: Arc::new(MemStore::new()),
            hub: Hub::new(),
            conns: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_conn: 0,
            seeds: ChaCha20Rng::from_seed([3; 32]),
            webs: Vec::new(),
            phones: Vec::new(),
            codes: Vec::new(),
            results: Arc::new(Mutex::new(VecDeque::new())),
            pushes: VecDeque::new(),
            deliveries: Vec::new(),
            injected: 0,
        }
    }

    /// The server's store (to look at what it keeps).
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    /// The hub (to look at who is online).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    fn seed(&mut self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        self.seeds.fill_bytes(&mut seed);
        seed
    }

    /// Adds a web client with `config` (not started).
    pub fn add_web(&mut self, config: Config) -> usize {
        let seed = self.seed();
        self.add_session(Session::new(config, seed, self.now))
    }

    /// Adds a web client around a given session.
    pub fn add_session(&mut self, session: Session) -> usize {
        self.webs.push(Web {
            session,
            events: VecDeque::new(),
            sent: Vec::new(),
            received: Vec::new(),
            credentials: None,
            state: BTreeMap::new(),
            conn: None,
            off: false,
        });
        self.webs.len() - 1
    }

    /// Adds a web client with `config` whose end-to-end state is sealed with `key` and handed
    /// out (so that it can be restored; not started).
    pub fn add_web_with_pickle_key(&mut self, config: Config, key: PickleKey) -> usize {
        let seed = self.seed();
        self.add_session(Session::new(config, seed, self.now).with_pickle_key(key))
    }

    /// Starts a new web client from stored `credentials` and end-to-end `state` (as
    /// [`Web::credentials`] and [`Web::state`] keep them), sealed with `key`, and drives the
    /// net: the client logs in with a takeover.
    pub fn restore_web(
        &mut self,
        config: Config,
        key: PickleKey,
        credentials: Credentials,
        state: &BTreeMap<StateKey, Vec<u8>>,
    ) -> usize {
        let seed = self.seed();
        let mut session = Session::new(config, seed, self.now).with_pickle_key(key);
        let parts = state.iter().map(|(k, v)| (k.clone(), v.clone()));
        session
            .restore_end_to_end(self.now, credentials, parts)
            .expect("the stored state opens");
        let id = self.add_session(session);
        self.webs[id].state = state.clone();
        self.drive();
        id
    }

    /// Web client `id`'s process ends: its socket closes (the server sees it go) and the
    /// session is no longer driven. What it stored stays in [`Web::credentials`] and
    /// [`Web::state`].
    pub fn power_off(&mut self, id: usize) {
        if let Some(conn) = self.webs[id].conn.take() {
            self.close_server_side(conn);
        }
        self.webs[id].off = true;
        self.drive();
    }

    /// Hands web client `id`'s server connection a text frame as if the session had sent it
    /// (a client that does more than the session would); the answer goes to the session.
    pub fn send_as(&mut self, id: usize, text: &str) {
        let now = self.now;
        self.webs[id].sent.push(text.to_owned());
        if let Some(Conn::Web { machine, .. }) =
            self.webs[id].conn.and_then(|c| self.conns.get_mut(&c))
        {
            machine.handle_message(now, WsMessage::Text(text));
        }
        self.drive();
    }

    /// Adds a phone for `number` (not started).
    pub fn add_phone(&mut self, number: &str, name: &str) -> usize {
        let seed = self.seed();
        let session =
            PhoneSession::new(PhoneConfig::new(number, name), seed).expect("a phone number");
        self.add_phone_session(session)
    }

    /// Adds a phone around a given session.
    pub fn add_phone_session(&mut self, session: PhoneSession) -> usize {
        self.phones.push(Phone {
            session,
            events: VecDeque::new(),
            conn: None,
        });
        self.phones.len() - 1
    }

    /// A web client.
    pub fn web(&mut self, id: usize) -> &mut Web {
        &mut self.webs[id]
    }

    /// A phone.
    pub fn phone(&mut self, id: usize) -> &mut Phone {
        &mut self.phones[id]
    }

    /// Registers phone `id`'s number with the code the server delivers, and logs it in.
    pub fn register(&mut self, id: usize) {
        let now = self.now;
        self.phones[id].session.register(now).expect("register");
        self.drive();
        let number = self.phones[id]
            .session
            .user()
            .user()
            .unwrap_or_default()
            .to_owned();
        let code = self
            .codes
            .iter()
            .rev()
            .find(|(n, _)| *n == number)
            .map(|(_, c)| c.clone())
            .expect("the server delivered a code");
        self.phones[id].session.verify(now, &code).expect("verify");
        self.drive();
        assert!(
            self.phones[id].session.is_ready(),
            "phone {number} is not logged in: {:?}",
            self.phones[id].events
        );
    }

    /// Links web client `web` to phone `phone`'s account by QR code, and waits until it is
    /// connected.
    pub fn link(&mut self, web: usize, phone: usize) {
        let now = self.now;
        self.webs[web].session.link(now).expect("link");
        self.drive();
        let qr = self.webs[web]
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Qr { text, .. } => Some(text.clone()),
                _ => None,
            })
            .expect("a QR code");
        let command = self.phones[phone]
            .session
            .link(now, &qr)
            .expect("link command");
        self.drive();
        let linked = self.phones[phone].events.iter().any(|e| {
            matches!(e, PhoneSessionEvent::Answer { id, result: Ok(Answer::Linked(_)) } if *id == command)
        });
        assert!(
            linked,
            "the link was not made: {:?}",
            self.phones[phone].events
        );
        assert!(
            self.webs[web].session.is_connected(),
            "web {web} is not connected: {:?}",
            self.webs[web].events
        );
    }

    /// Takes web client `id`'s events.
    pub fn web_events(&mut self, id: usize) -> Vec<Event> {
        self.webs[id].events.drain(..).collect()
    }

    /// Takes phone `id`'s events.
    pub fn phone_events(&mut self, id: usize) -> Vec<PhoneSessionEvent> {
        self.phones[id].events.drain(..).collect()
    }

    /// Closes web client `id`'s socket under it (as a network failure would).
    pub fn drop_web_socket(&mut self, id: usize) {
        if let Some(conn) = self.webs[id].conn.take() {
            self.close_server_side(conn);
            self.webs[id].session.handle_closed(self.now);
        }
        self.drive();
    }

    /// Closes phone `id`'s socket under it.
    pub fn drop_phone_socket(&mut self, id: usize) {
        if let Some(conn) = self.phones[id].conn.take() {
            self.close_server_side(conn);
            self.phones[id].session.handle_closed(self.now);
        }
        self.drive();
    }

    fn close_server_side(&mut self, conn: ConnId) {
        if let Some(mut machine) = self.conns.remove(&conn) {
            machine.handle_closed(self.now);
            // What it still asked for (forgetting its ref) happens.
            while let Some(action) = machine.poll_action() {
                self.act(conn, action);
            }
            self.closed.insert(conn, machine);
        }
        for (target, push) in self.hub.unregister(conn) {
            self.pushes.push_back((target, push));
        }
    }

    /// Moves everything until nothing moves.
    pub fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.round() {
                return;
            }
        }
        panic!("the system does not settle");
    }

    fn round(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        for i in 0..self.webs.len() {
            if self.webs[i].off {
                continue;
            }
            while let Some(transmit) = self.webs[i].session.poll_transmit() {
                moved = true;
                match transmit {
                    Transmit::Connect => {
                        let seed = self.seed();
                        let id = self.new_conn(Conn::Web {
                            machine: Box::new(WebConnection::new(
                                Arc::clone(&self.config),
                                seed,
                                now,
                            )),
                            client: i,
                        });
                        self.webs[i].conn = Some(id);
                        self.webs[i].session.handle_connected(now);
                    }
                    Transmit::Send(message) => {
                        if let OutMessage::Text(text) = &message {
                            self.webs[i].sent.push(text.clone());
                        }
                        if let Some(Conn::Web { machine, .. }) =
                            self.webs[i].conn.and_then(|c| self.conns.get_mut(&c))
                        {
                            match &message {
                                OutMessage::Text(text) => {
                                    machine.handle_message(now, WsMessage::Text(text))
                                }
                                OutMessage::Binary(bytes) => {
                                    machine.handle_message(now, WsMessage::Binary(bytes))
                                }
                            }
                        }
                    }
                    Transmit::Close => {
                        if let Some(conn) = self.webs[i].conn.take() {
                            self.close_server_side(conn);
                        }
                    }
                }
            }
            while let Some(event) = self.webs[i].session.poll_event() {
                moved = true;
                self.webs[i].persist(&event);
                self.webs[i].events.push_back(event);
            }
        }
        for i in 0..self.phones.len() {
            while let Some(transmit) = self.phones[i].session.poll_transmit() {
                moved = true;
                match transmit {
                    PhoneTransmit::Connect => {
                        let seed = self.seed();
                        let id = self.new_conn(Conn::Phone {
                            machine: Box::new(PhoneConnection::new(
                                Arc::clone(&self.config),
                                seed,
                                now,
                            )),
                            client: i,
                        });
                        self.phones[i].conn = Some(id);
                        self.phones[i].session.handle_connected(now);
                    }
                    PhoneTransmit::Send(text) => {
                        if let Some(Conn::Phone { machine, .. }) =
                            self.phones[i].conn.and_then(|c| self.conns.get_mut(&c))
                        {
                            machine.handle_message(now, &text);
                        }
                    }
                    PhoneTransmit::Close => {
                        if let Some(conn) = self.phones[i].conn.take() {
                            self.close_server_side(conn);
                        }
                    }
                }
            }
            while let Some(event) = self.phones[i].session.poll_event() {
                moved = true;
                self.phones[i].events.push_back(event);
            }
        }
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            loop {
                let Some(action) = self.conns.get_mut(&id).and_then(Conn::poll_action) else {
                    break;
                };
                moved = true;
                self.act(id, action);
            }
        }
        let results: Vec<_> = self
            .results
            .lock()
            .map(|mut r| r.drain(..).collect())
            .unwrap_or_default();
        for (conn, job, result) in results {
            moved = true;
            if let Some(machine) = self.conns.get_mut(&conn) {
                machine.handle_job(now, job, result);
            } else if let Some(mut machine) = self.closed.remove(&conn) {
                // A connection that is gone: only what its job causes elsewhere happens.
                machine.handle_job(now, job, result);
                while let Some(action) = machine.poll_action() {
                    if matches!(action, Action::Push { .. } | Action::Job { .. }) {
                        self.act(conn, action);
                    }
                }
                self.closed.insert(conn, machine);
            }
        }
        while let Some((conn, push)) = self.pushes.pop_front() {
            moved = true;
            if let Some(machine) = self.conns.get_mut(&conn) {
                machine.handle_push(now, push);
            }
        }
        moved
    }

    fn new_conn(&mut self, conn: Conn) -> ConnId {
        self.next_conn += 1;
        self.conns.insert(self.next_conn, conn);
        self.next_conn
    }

    fn act(&mut self, id: ConnId, action: Action) {
        let now = self.now;
        match action {
            Action::Send(message) => {
                let client = match self.conns.get(&id) {
                    Some(Conn::Web { client, .. }) => Ok(*client),
                    Some(Conn::Phone { client, .. }) => Err(*client),
                    None => return,
                };
                // A socket that is gone delivers nothing.
                let current = match client {
                    Ok(web) => self.webs[web].conn == Some(id) && !self.webs[web].off,
                    Err(phone) => self.phones[phone].conn == Some(id),
                };
                if !current {
                    return;
                }
                match (client, message) {
                    (Ok(web), OutMessage::Text(text)) => {
                        self.webs[web].received.push(text.clone());
                        self.webs[web]
                            .session
                            .handle_message(now, WsMessage::Text(&text));
                    }
                    (Ok(web), OutMessage::Binary(bytes)) => {
                        self.webs[web]
                            .session
                            .handle_message(now, WsMessage::Binary(&bytes));
                    }
                    (Err(phone), OutMessage::Text(text)) => {
                        self.phones[phone].session.handle_message(now, &text)
                    }
                    (Err(_), OutMessage::Binary(_)) => {}
                }
            }
            Action::Close => {
                let client = match self.conns.get(&id) {
                    Some(Conn::Web { client, .. }) => Ok(*client),
                    Some(Conn::Phone { client, .. }) => Err(*client),
                    None => return,
                };
                if let Some(mut machine) = self.conns.remove(&id) {
                    // What it asked for before closing still happens.
                    while let Some(action) = machine.poll_action() {
                        if matches!(
                            action,
                            Action::Push { .. } | Action::Job { .. } | Action::ForgetRef(_)
                        ) {
                            self.act(id, action);
                        }
                    }
                    self.closed.insert(id, machine);
                }
                for (target, push) in self.hub.unregister(id) {
                    self.pushes.push_back((target, push));
                }
                match client {
                    Ok(web) if self.webs[web].conn == Some(id) => {
                        self.webs[web].conn = None;
                        self.webs[web].session.handle_closed(now);
                    }
                    Err(phone) if self.phones[phone].conn == Some(id) => {
                        self.phones[phone].conn = None;
                        self.phones[phone].session.handle_closed(now);
                    }
                    _ => {}
                }
            }
            Action::Job { id: job_id, job } => {
                let results = Arc::clone(&self.results);
                wa_server_core::execute(&*self.store, *job, move |result| {
                    if let Ok(mut results) = results.lock() {
                        results.push_back((id, job_id, result));
                    }
                });
            }
            Action::Push { target, push } => {
                if let (Target::Device(device), Push::Deliver { message, .. }) = (&target, &push) {
                    self.deliveries.push((device.clone(), message.clone()));
                }
                for conn in self.hub.route(&target) {
                    self.pushes.push_back((conn, push.clone()));
                }
            }
            Action::Register { number, device } => {
                for (conn, push) in self.hub.register(id, &number, &device) {
                    self.pushes.push_back((conn, push));
                }
            }
            Action::RegisterRef(r) => self.hub.register_ref(id, &r),
            Action::ForgetRef(r) => self.hub.forget_ref(id, &r),
            Action::Subscribe(jid) => {
                self.hub.subscribe(id, &jid);
            }
            Action::DeliverCode { number, code } => self.codes.push((number, code.to_string())),
            _ => {}
        }
    }

    /// Moves the clock forward by `d`, firing every timeout (sessions, phones, server
    /// connections) at its own time.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..MAX_ROUNDS {
            self.drive();
            let next = self
                .webs
                .iter()
                .filter(|w| !w.off)
                .filter_map(|w| w.session.poll_timeout())
                .chain(self.phones.iter().filter_map(|p| p.session.poll_timeout()))
                .chain(self.conns.values().filter_map(Conn::poll_timeout))
                .filter(|t| *t <= target)
                .min();
            let Some(next) = next else { break };
            self.now = self.now.max(next);
            let now = self.now;
            for web in self.webs.iter_mut().filter(|w| !w.off) {
                if web.session.poll_timeout().is_some_and(|t| t <= now) {
                    web.session.handle_timeout(now);
                }
            }
            for phone in &mut self.phones {
                if phone.session.poll_timeout().is_some_and(|t| t <= now) {
                    phone.session.handle_timeout(now);
                }
            }
            for conn in self.conns.values_mut() {
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now);
                }
            }
        }
        assert!(
            self.next_timeout()
                .is_none_or(|t| t > self.now || self.now == target),
            "a timeout does not move: something keeps asking for a time that has passed"
        );
        self.now = target;
        self.drive();
    }

    fn next_timeout(&self) -> Option<Time> {
        self.webs
            .iter()
            .filter(|w| !w.off)
            .filter_map(|w| w.session.poll_timeout())
            .chain(self.phones.iter().filter_map(|p| p.session.poll_timeout()))
            .chain(self.conns.values().filter_map(Conn::poll_timeout))
            .min()
    }

    /// Takes the record of every message the server pushed to a device so far.
    pub fn deliveries(&mut self) -> Vec<(Jid, Incoming)> {
        std::mem::take(&mut self.deliveries)
    }

    /// Hands web client `web` a message as if the server pushed it (a server that misbehaves,
    /// or an attacker between the two).
    pub fn inject(&mut self, web: usize, message: Incoming) {
        self.injected += 1;
        let seq = u64::MAX - self.injected;
        if let Some(conn) = self.webs[web].conn {
            self.pushes
                .push_back((conn, Push::Deliver { seq, message }));
        }
        self.drive();
    }

    /// The user address of phone `id`.
    pub fn user(&self, phone: usize) -> Jid {
        self.phones[phone].session.user().clone()
    }
}
