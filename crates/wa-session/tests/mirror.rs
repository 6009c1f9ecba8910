//! Unmodified legacy clients (the session configured as one: no end-to-end layer, no delivery
//! receipts) against the real server core: conformance with the order and shapes real clients
//! expect, and mirror mode through the phone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::time::Duration;

use wa_phone::{Answer, PhoneSessionEvent};
use wa_session::{AckLevel, Config, Event, Reply, Session};
use wa_test_support::Net;
use wa_wire::legacy::{ActionPush, Add, ChatEntry, ContactEntry};
use wa_wire::web::{Query, ServerNode};

fn legacy() -> Config {
    let mut config = Config::default();
    config.end_to_end = false;
    config.delivery_receipts = false;
    config
}

/// What a phone's store would answer: the phone of the test keeps what it received.
#[derive(Default)]
struct PhoneStore {
    messages: Vec<wa_proto::WebMessageInfo>,
}

impl PhoneStore {
    /// Serves the mirror clients of `phone`: lists when one comes online, queries.
    fn serve(&mut self, net: &mut Net, phone: usize) {
        for _ in 0..8 {
            let events = net.phone_events(phone);
            if events.is_empty() {
                return;
            }
            for event in events {
                let now = net.now;
                match event {
                    PhoneSessionEvent::Message(received) => {
                        self.messages.push(received.to_web_message())
                    }
                    PhoneSessionEvent::MirrorOnline { device } => {
                        let session = &mut net.phone(phone).session;
                        session
                            .mirror_push(now, &device, &ServerNode::Chats(self.chats()))
                            .unwrap();
                        session
                            .mirror_push(now, &device, &ServerNode::Contacts(self.contacts()))
                            .unwrap();
                        let last = ActionPush::messages(Add::Last, self.messages.clone());
                        session
                            .mirror_push(now, &device, &ServerNode::Action(last))
                            .unwrap();
                    }
                    PhoneSessionEvent::MirrorQuery { device, tag, query } => {
                        let node = match query {
                            Query::Chats => ServerNode::Chats(self.chats()),
                            Query::Contacts => ServerNode::Contacts(self.contacts()),
                            _ => ServerNode::Action(ActionPush::messages(
                                Add::Before,
                                self.messages.clone(),
                            )),
                        };
                        net.phone(phone)
                            .session
                            .mirror_reply(now, &device, &tag, &node)
                            .unwrap();
                    }
                    _ => {}
                }
            }
            net.drive();
        }
    }

    fn chats(&self) -> Vec<ChatEntry> {
        let mut chats: Vec<ChatEntry> = Vec::new();
        for m in &self.messages {
            let jid: wa_wire::Jid = m.key.remote_jid.as_deref().unwrap().parse().unwrap();
            if !chats.iter().any(|c| c.jid == jid) {
                chats.push(ChatEntry {
                    jid,
                    name: None,
                    count: Some(0),
                    t: m.message_timestamp,
                    extra: vec![],
                });
            }
        }
        chats
    }

    fn contacts(&self) -> Vec<ContactEntry> {
        self.chats()
            .into_iter()
            .map(|c| ContactEntry {
                jid: c.jid,
                name: None,
                notify: None,
                extra: vec![],
            })
            .collect()
    }
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { info, .. } => {
                info.message.as_ref().and_then(|m| m.conversation.clone())
            }
            _ => None,
        })
        .collect()
}

/// Alice (phone + a legacy web client, her mirror) and Bob (phone + an end-to-end web client).
fn setup() -> (Net, PhoneStore, [usize; 4]) {
    let mut net = Net::new();
    let a_phone = net.add_phone("15551234567", "Alice");
    let b_phone = net.add_phone("15559876543", "Bob");
    net.register(a_phone);
    net.register(b_phone);
    let b_web = net.add_web(Config::default());
    net.link(b_web, b_phone);
    let a_web = net.add_web(legacy());
    let mut store = PhoneStore::default();
    // Linking a legacy client: its QR code has no identity keys; the phone makes its keys.
    let now = net.now;
    net.web(a_web).session.link(now).unwrap();
    net.drive();
    let qr = net
        .web_events(a_web)
        .into_iter()
        .find_map(|e| match e {
            Event::Qr { text, .. } => Some(text),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        qr.split(',').count(),
        3,
        "a legacy QR code: ref, key, client id"
    );
    let command = net.phone(a_phone).session.link(now, &qr).unwrap();
    net.drive();
    let events: Vec<_> = net.phone(a_phone).events.iter().cloned().collect();
    assert!(
        events.iter().any(|e| matches!(e, PhoneSessionEvent::Answer { id, result: Ok(Answer::Linked(_)) } if *id == command)),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneSessionEvent::MirrorsChanged(m) if m.len() == 1))
    );
    store.serve(&mut net, a_phone);
    assert!(net.web(a_web).session.is_connected());
    (net, store, [a_phone, a_web, b_phone, b_web])
}

#[test]
fn a_legacy_client_links_through_its_phone_and_gets_the_lists_after_conn_stream_and_props() {
    let (mut net, _store, [_, a_web, _, _]) = setup();
    let events = net.web_events(a_web);
    let position = |f: &dyn Fn(&Event) -> bool| {
        events
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("{events:#?}"))
    };
    let connected = position(&|e| matches!(e, Event::Connected { .. }));
    let stream = position(&|e| matches!(e, Event::Other(v) if v[0] == "Stream"));
    let props = position(&|e| matches!(e, Event::Other(v) if v[0] == "Props"));
    let chats = position(&|e| matches!(e, Event::Chats(_)));
    let contacts = position(&|e| matches!(e, Event::Contacts(_)));
    assert!(
        connected < stream && stream < props && props < chats && chats < contacts,
        "{events:#?}"
    );
}

#[test]
fn a_mirror_client_sends_and_receives_with_ticks_and_the_server_reads_nothing() {
    let (mut net, mut store, [a_phone, a_web, b_phone, b_web]) = setup();
    let (a_user, b_user) = (net.user(a_phone), net.user(b_phone));
    net.web_events(a_web);
    // Alice's legacy client sends a readable message; her phone sends it end to end.
    let now = net.now;
    let (request, id) = net
        .web(a_web)
        .session
        .send_text(now, &b_user, "from the mirror 5c1d")
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert_eq!(texts(&net.web_events(b_web)), ["from the mirror 5c1d"]);
    let events = net.web_events(a_web);
    assert!(
        events.iter().any(|e| matches!(e, Event::Reply { id, result: Ok(Reply::MessageSent { .. }) } if *id == request)),
        "{events:#?}"
    );
    let acks = |events: &[Event]| -> Vec<(AckLevel, Option<wa_wire::Jid>, Option<wa_wire::Jid>)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Ack {
                    ids,
                    level,
                    from,
                    to,
                    ..
                } if ids.contains(&id) => Some((*level, from.clone(), to.clone())),
                _ => None,
            })
            .collect()
    };
    let seen = acks(&events);
    // Ticks 1 and 2, `from` the sender and `to` the chat (PROTOCOL.md §2.6).
    assert!(
        seen.contains(&(AckLevel::Sent, Some(a_user.clone()), Some(b_user.clone()))),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(
            AckLevel::Delivered,
            Some(a_user.clone()),
            Some(b_user.clone())
        )),
        "{seen:?}"
    );
    // Bob reads it: blue ticks.
    let now = net.now;
    net.web(b_web)
        .session
        .mark_read(now, &a_user, &id, None)
        .unwrap();
    net.drive();
    let seen = acks(&net.web_events(a_web));
    assert!(
        seen.contains(&(AckLevel::Read, Some(a_user.clone()), Some(b_user.clone()))),
        "{seen:?}"
    );
    // Bob answers: Alice's phone decrypts and forwards it to her mirror client.
    let now = net.now;
    net.web(b_web)
        .session
        .send_text(now, &a_user, "to the mirror 9e2b")
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert_eq!(texts(&net.web_events(a_web)), ["to the mirror 9e2b"]);
    // The legacy client's read receipt (it sends no delivery receipts) reaches Bob as blue ticks.
    let got = net
        .deliveries()
        .into_iter()
        .find(|(device, _)| wa_wire::ids::user_of(device) == a_user)
        .map(|(_, m)| m.id)
        .unwrap();
    let now = net.now;
    net.web(a_web)
        .session
        .mark_read(now, &b_user, &got, None)
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    let blue = net
        .web_events(b_web)
        .into_iter()
        .any(|e| matches!(e, Event::Ack { ids, level: AckLevel::Read, .. } if ids.contains(&got)));
    assert!(blue, "Bob sees his message read");
    let dump = net.store().dump();
    for text in ["from the mirror 5c1d", "to the mirror 9e2b"] {
        assert!(
            !dump.windows(text.len()).any(|w| w == text.as_bytes()),
            "{text} is on the server"
        );
    }
}

#[test]
fn a_mirror_client_restores_answers_a_challenge_and_waits_for_its_phone() {
    let (mut net, mut store, [a_phone, a_web, b_phone, b_web]) = setup();
    let b_user = net.user(b_phone);
    let credentials = net
        .web_events(a_web)
        .into_iter()
        .filter_map(|e| match e {
            Event::Credentials(c) => Some(*c),
            _ => None,
        })
        .last()
        .unwrap();
    // Restore with takeover: the older connection is replaced, the new one logs in (tokens
    // rotate), and the phone sends it its lists again.
    let restored = net.add_session(Session::new(legacy(), [8; 32], net.now));
    let now = net.now;
    net.web(restored)
        .session
        .restore(now, credentials.clone())
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert!(net.web(restored).session.is_connected());
    let events = net.web_events(restored);
    assert!(
        events.iter().any(|e| matches!(e, Event::Chats(_))),
        "{events:#?}"
    );
    assert!(net.web_events(a_web).iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reason: wa_session::DisconnectReason::Replaced,
            ..
        }
    )));
    // Tokens one rotation old (the credentials from before that login): a challenge only the
    // phone can check, answered by the client.
    let challenged = net.add_session(Session::new(legacy(), [9; 32], net.now));
    let now = net.now;
    net.web(challenged)
        .session
        .restore(now, credentials)
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert!(
        net.web(challenged).session.is_connected(),
        "{:#?}",
        net.web_events(challenged)
    );
    net.web_events(challenged);
    // The phone goes offline: the client is told, and what it asks fails clearly.
    net.drop_phone_socket(a_phone);
    let events = net.web_events(challenged);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PhoneReachable(false))),
        "{events:#?}"
    );
    let now = net.now;
    let (request, _) = net
        .web(challenged)
        .session
        .send_text(now, &b_user, "while asleep")
        .unwrap();
    net.drive();
    let events = net.web_events(challenged);
    assert!(
        events.iter().any(|e| matches!(e,
            Event::Reply { id, result: Err(wa_session::RequestError::Status { status: 503, .. }) } if *id == request)),
        "{events:#?}"
    );
    // The phone comes back: the client works again.
    net.advance(Duration::from_secs(120));
    assert!(net.phone(a_phone).session.is_ready());
    store.serve(&mut net, a_phone);
    let now = net.now;
    net.web(challenged)
        .session
        .send_text(now, &b_user, "awake again")
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert!(texts(&net.web_events(b_web)).contains(&"awake again".to_owned()));
}

#[test]
fn a_group_with_a_mirror_member_and_end_to_end_members() {
    let (mut net, mut store, [a_phone, a_web, _, b_web]) = setup();
    let c_phone = net.add_phone("15550001111", "Carol");
    net.register(c_phone);
    let c_web = net.add_web(Config::default());
    net.link(c_web, c_phone);
    let members = [net.user(a_phone), net.user(c_phone)];
    let now = net.now;
    let request = net
        .web(b_web)
        .session
        .group_create(now, "Mixed", &members)
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    let gid: wa_wire::Jid = net
        .web_events(b_web)
        .into_iter()
        .find_map(|e| match e {
            Event::Reply {
                id,
                result: Ok(Reply::Json(v)),
            } if id == request => Some(v["gid"].as_str().unwrap().parse().unwrap()),
            _ => None,
        })
        .unwrap();
    for web in [a_web, c_web] {
        net.web_events(web);
    }
    let now = net.now;
    net.web(b_web)
        .session
        .send_text(now, &gid, "to everyone")
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert_eq!(texts(&net.web_events(a_web)), ["to everyone"]);
    assert_eq!(texts(&net.web_events(c_web)), ["to everyone"]);
    // The mirror member writes to the group through its phone.
    let now = net.now;
    net.web(a_web)
        .session
        .send_text(now, &gid, "from the mirror")
        .unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert_eq!(texts(&net.web_events(b_web)), ["from the mirror"]);
    assert_eq!(texts(&net.web_events(c_web)), ["from the mirror"]);
}

/// PROTOCOL.md §2.4: on a restore, real clients read the `s1` Conn first and the login tag's
/// status after it.
#[test]
fn a_restore_gets_the_s1_conn_before_the_status_of_its_login() {
    let (mut net, mut store, [a_phone, a_web, _, _]) = setup();
    let credentials = net
        .web_events(a_web)
        .into_iter()
        .filter_map(|e| match e {
            Event::Credentials(c) => Some(*c),
            _ => None,
        })
        .last()
        .unwrap();
    let restored = net.add_session(Session::new(legacy(), [8; 32], net.now));
    let now = net.now;
    net.web(restored).session.restore(now, credentials).unwrap();
    net.drive();
    store.serve(&mut net, a_phone);
    assert!(net.web(restored).session.is_connected());
    let login_tag = net
        .web(restored)
        .sent
        .iter()
        .find(|t| t.contains(r#"["admin","login""#))
        .and_then(|t| t.split(',').next())
        .unwrap()
        .to_owned();
    let received = &net.web(restored).received;
    let conn = received
        .iter()
        .position(|t| t.starts_with(r#"s1,["Conn""#))
        .unwrap_or_else(|| panic!("{received:#?}"));
    let status = received
        .iter()
        .position(|t| t.starts_with(&format!("{login_tag},")))
        .unwrap_or_else(|| panic!("{received:#?}"));
    assert!(conn < status, "s1 Conn before the status: {received:#?}");
    assert!(received[status].contains(r#""status":200"#));
}

/// PROTOCOL.md §3.4: the `status` query (binary, metric QUERY_STATUS) is answered, not 400:
/// by the phone for a mirror client, by the server for an end-to-end one; and the JSON
/// `["query","Status",jid]` gets a status line.
#[test]
fn the_status_queries_are_answered() {
    let (mut net, mut store, [a_phone, a_web, b_phone, b_web]) = setup();
    let b_user = net.user(b_phone);
    for (web, mirror) in [(a_web, true), (b_web, false)] {
        net.web_events(web);
        let now = net.now;
        let request = net.web(web).session.query_statuses(now).unwrap();
        net.drive();
        if mirror {
            store.serve(&mut net, a_phone);
        }
        let events = net.web_events(web);
        assert!(
            events.iter().any(|e| matches!(e, Event::Reply { id, result: Ok(Reply::Statuses(s)) } if *id == request && s.is_empty())),
            "mirror {mirror}: {events:#?}"
        );
    }
    let now = net.now;
    let request = net
        .web(b_web)
        .session
        .send_json(
            now,
            serde_json::json!(["query", "Status", b_user.to_wire_string()]),
        )
        .unwrap();
    net.drive();
    let events = net.web_events(b_web);
    let reply = events
        .iter()
        .find_map(|e| match e {
            Event::Reply { id, result } if *id == request => Some(result.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{events:#?}"));
    let Ok(Reply::Json(value)) = reply else {
        panic!("{reply:?}")
    };
    assert!(value["status"].is_string(), "a status line: {value}");
}
