//! Groups, presence, and what a client finds after linking (chat list, contacts, history).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::time::Duration;

use support::*;
use wa_server::phone::{PhoneError, PhoneEvent};
use wa_session::{AckLevel, Event, GroupOp, PresenceState, Reply};

fn jid(number: &str) -> String {
    format!("{number}@c.us")
}

fn wire(number: &str) -> String {
    format!("{number}@s.whatsapp.net")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_five_fans_out_and_membership_changes_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let numbers = [
        "15550000011",
        "15550000012",
        "15550000013",
        "15550000014",
        "15550000015",
    ];
    let alice_phone = phone(&server.phone_url(), numbers[0], "Alice").await;
    let mut alice = Client::link(&server.ws_url(), &alice_phone, 40).await;
    let mut members = Vec::new();
    for (i, n) in numbers.iter().enumerate().skip(1) {
        members.push(phone(&server.phone_url(), n, &format!("Member {i}")).await);
    }
    let others: Vec<String> = numbers[1..].iter().map(|n| jid(n)).collect();
    let other_refs: Vec<&str> = others.iter().map(String::as_str).collect();

    let request = alice
        .session
        .group_create(now(), "Five", &other_refs)
        .unwrap();
    alice.pump().await;
    let gid = match alice.reply(request).await.unwrap() {
        Reply::Json(v) => v["gid"].as_str().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    assert!(gid.starts_with(&format!("{}-", numbers[0])) && gid.ends_with("@g.us"));
    for m in &mut members {
        let (op, subject) = phone_wait(m, "group created", |e| match e {
            PhoneEvent::Group { op, subject, .. } => Some((op.clone(), subject.clone())),
            _ => None,
        })
        .await;
        assert_eq!(op, "create");
        assert_eq!(subject.as_deref(), Some("Five"));
    }

    // Fan-out to every member, with the sender as participant.
    let id = alice.send_text(&gid, "hello group").await;
    for m in &mut members {
        let msg = phone_message(m).await;
        assert_eq!(
            (msg.id.as_str(), msg.chat.as_str()),
            (id.as_str(), gid.as_str())
        );
        assert_eq!(msg.sender, jid(numbers[0]));
        assert_eq!(
            msg.info.key.participant.as_deref(),
            Some(wire(numbers[0]).as_str())
        );
    }
    alice.wait_ack(&id, AckLevel::Delivered).await;
    eventually("every member has it", || {
        status_of(&server, "messages", "queued") == 0
    })
    .await;

    // A member writes to the group: the others, and Alice's browser, get it.
    let from_b = members[0].send_text(&gid, "hi all").await.unwrap();
    let info = alice.wait_message(&from_b).await;
    assert_eq!(info.key.remote_jid.as_deref(), Some(gid.as_str()));
    assert_eq!(
        info.key.participant.as_deref(),
        Some(wire(numbers[1]).as_str())
    );
    for m in &mut members[1..] {
        assert_eq!(phone_message(m).await.id, from_b);
    }

    // Only admins change membership.
    let refused = members[0]
        .group("remove", Some(&gid), None, &[&jid(numbers[2])])
        .await;
    assert!(
        matches!(refused, Err(PhoneError::Refused { status: 403, .. })),
        "{refused:?}"
    );

    // Alice removes the last member: it hears so, and gets nothing more.
    let remove = alice
        .session
        .group_participants(now(), &gid, GroupOp::Remove, &[&jid(numbers[4])])
        .unwrap();
    alice.pump().await;
    alice.reply(remove).await.unwrap();
    let removed = members.pop().unwrap();
    let mut removed = removed;
    let (op, who) = phone_wait(&mut removed, "removal", |e| match e {
        PhoneEvent::Group {
            op, participants, ..
        } => Some((op.clone(), participants.clone())),
        _ => None,
    })
    .await;
    assert_eq!((op.as_str(), who), ("remove", vec![jid(numbers[4])]));
    let id2 = alice.send_text(&gid, "without the last one").await;
    for m in &mut members {
        assert_eq!(phone_message(m).await.id, id2);
    }
    let events = phone_events_for(&mut removed, Duration::from_millis(400)).await;
    assert!(
        !events.iter().any(|e| matches!(e, PhoneEvent::Message(_))),
        "a removed member gets no messages: {events:?}"
    );
    let refused = removed.send_text(&gid, "still here?").await;
    assert!(matches!(
        refused,
        Err(PhoneError::Refused { status: 403, .. })
    ));

    // Promote B: now B may add people; a sixth account joins and gets the next message.
    let promote = alice
        .session
        .group_participants(now(), &gid, GroupOp::Promote, &[&jid(numbers[1])])
        .unwrap();
    alice.pump().await;
    alice.reply(promote).await.unwrap();
    let mut frank = phone(&server.phone_url(), "15550000016", "Frank").await;
    members[0]
        .group("add", Some(&gid), None, &["15550000016@c.us"])
        .await
        .unwrap();
    let id3 = alice.send_text(&gid, "welcome Frank").await;
    assert_eq!(phone_message(&mut frank).await.id, id3);

    // Subject and leaving.
    members[1]
        .group("subject", Some(&gid), Some("Renamed"), &[])
        .await
        .unwrap();
    members[2]
        .group("leave", Some(&gid), None, &[])
        .await
        .unwrap();
    let meta = alice
        .session
        .send_json(now(), serde_json::json!(["query", "GroupMetadata", gid]))
        .unwrap();
    alice.pump().await;
    let Reply::Json(meta) = alice.reply(meta).await.unwrap() else {
        panic!("metadata")
    };
    assert_eq!(meta["subject"], "Renamed");
    let ids: Vec<&str> = meta["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            jid(numbers[0]).as_str(),
            jid(numbers[1]).as_str(),
            jid(numbers[2]).as_str(),
            "15550000016@c.us"
        ]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_reaches_subscribers_and_typing_reaches_the_chat() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let alice_phone = phone(&server.phone_url(), "15550000021", "Alice").await;
    let mut alice = Client::link(&server.ws_url(), &alice_phone, 50).await;
    let bob = phone(&server.phone_url(), "15550000022", "Bob").await;

    let sub = alice
        .session
        .subscribe_presence(now(), "15550000022@c.us")
        .unwrap();
    alice.pump().await;
    alice.reply(sub).await.unwrap();
    let presence = |want: &'static str| {
        move |e: &Event| match e {
            Event::Presence { jid, kind, .. } if jid == "15550000022@c.us" && kind == want => {
                Some(())
            }
            _ => None,
        }
    };
    // The current state comes at once: Bob's phone is online.
    alice
        .wait_for("current presence", presence("available"))
        .await;
    bob.set_presence("unavailable", None).await.unwrap();
    alice.wait_for("unavailable", presence("unavailable")).await;
    bob.set_presence("composing", Some("15550000021@c.us"))
        .await
        .unwrap();
    alice.wait_for("typing", presence("composing")).await;

    // And the other way: Alice's browser types to Bob.
    let mut bob = bob;
    let typing = alice
        .session
        .set_presence(now(), PresenceState::Composing, Some("15550000022@c.us"))
        .unwrap();
    alice.pump().await;
    alice.reply(typing).await.unwrap();
    let kind = phone_wait(&mut bob, "typing", |e| match e {
        PhoneEvent::Presence { jid, kind, .. } if jid == "15550000021@c.us" => Some(kind.clone()),
        _ => None,
    })
    .await;
    assert_eq!(kind, "composing");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_browser_gets_chats_contacts_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let alice = phone(&server.phone_url(), "15550000031", "Alice").await;
    let mut bob = phone(&server.phone_url(), "15550000032", "Bob").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = if i % 2 == 0 {
            alice
                .send_text("15550000032@c.us", &format!("a{i}"))
                .await
                .unwrap()
        } else {
            bob.send_text("15550000031@c.us", &format!("b{i}"))
                .await
                .unwrap()
        };
        ids.push(id);
    }
    // Bob's phone reads everything Alice sent.
    for _ in 0..3 {
        let m = phone_message(&mut bob).await;
        bob.read(&m.chat, &m.id).await.unwrap();
    }

    let mut web = Client::link(&server.ws_url(), &alice, 60).await;
    let chats = web
        .wait_for("chat list", |e| match e {
            Event::Chats(chats) => Some(chats.clone()),
            _ => None,
        })
        .await;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].jid, "15550000032@s.whatsapp.net");
    assert_eq!(chats[0].unread, Some(2), "Bob's two messages are unread");
    let contacts = web
        .wait_for("contacts", |e| match e {
            Event::Contacts(c) => Some(c.clone()),
            _ => None,
        })
        .await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].notify.as_deref(), Some("Bob"));

    let query = web
        .session
        .query_messages(now(), "15550000032@c.us", 3, None)
        .unwrap();
    web.pump().await;
    let Reply::Messages(latest) = web.reply(query).await.unwrap() else {
        panic!("messages")
    };
    let got: Vec<&str> = latest
        .iter()
        .map(|m| m.key.id.as_deref().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[3].as_str(), ids[4].as_str()]);
    // Alice's own messages carry their ticks: Bob read them.
    assert_eq!(latest[0].key.from_me, Some(true));
    assert_eq!(latest[0].status, Some(4), "READ");
    assert_eq!(latest[1].key.from_me, Some(false));
    let query = web
        .session
        .query_messages(now(), "15550000032@c.us", 10, Some((ids[2].as_str(), true)))
        .unwrap();
    web.pump().await;
    let Reply::Messages(older) = web.reply(query).await.unwrap() else {
        panic!("messages")
    };
    let got: Vec<&str> = older.iter().map(|m| m.key.id.as_deref().unwrap()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);

    // Reading on the browser clears the unread count for the next login.
    let read = web
        .session
        .mark_read(now(), "15550000032@c.us", &ids[3], false)
        .unwrap();
    web.pump().await;
    web.reply(read).await.unwrap();
    let credentials = web.credentials.clone().unwrap();
    web.close().await;
    let mut web = Client::restore(&server.ws_url(), credentials, 61).await;
    let chats = web
        .wait_for("chat list", |e| match e {
            Event::Chats(chats) => Some(chats.clone()),
            _ => None,
        })
        .await;
    assert_eq!(chats[0].unread, Some(0));
    server.shutdown().await;
}
