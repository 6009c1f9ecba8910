//! Store and forward: relaying a message to every device of every recipient, the receipts
//! that retire it, the ticks the sender sees, reads, presence, and what a device finds
//! waiting (queue, chat list, contacts, history) when it connects.
//!
//! **Architecture Invariant:** a message is committed to the store (durably) before its
//! sender hears "stored" (ack 1) and before any device is pushed a copy; the pushes happen
//! after the commit, from the hub's view of who is online at that moment, and a device that
//! comes online reads its queue only after it is registered in the hub, so no message falls
//! between the two.

use std::sync::Arc;

use prost::Message as _;
use wa_binary::Node;
use wa_proto::web_message_info::Status;

use crate::error::Refusal;
use crate::hub::{AckNote, Delivery, Outbox, PresenceNote, Push};
use crate::jid::{ChatJid, DeviceKey, user_jid, user_wire, valid_message_id};
use crate::model::{
    self, ChatRecord, HistoryEntry, IndexEntry, MessageRecord, chats_prefix, expiry_key,
    history_prefix, inbox_key, index_key, message_key, sent_key,
};
use crate::shared::{Metrics, Shared, now_secs};
use crate::store::{self, KeyReader, StoreError, Table, prefix_end};

/// Who is acting: an account and one of its devices.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    pub(crate) number: String,
    pub(crate) device: DeviceKey,
    /// The display name (`pushName` of the messages it sends).
    pub(crate) name: String,
}

impl Me {
    /// `n@c.us`.
    pub(crate) fn wid(&self) -> String {
        user_jid(&self.number)
    }
}

/// What storing a message produced.
#[derive(Debug)]
struct Stored {
    seq: u64,
    duplicate: bool,
    pending: Vec<DeviceKey>,
}

/// A message on its way into the store: what [`Shared::relay_submit`] queued and
/// [`Shared::relay_finish`] completes.
#[derive(Debug)]
pub(crate) struct RelayTicket {
    pending: store::Pending<Result<Stored, Refusal>>,
    id: String,
    chat: ChatJid,
    sender_chat: String,
    t: u64,
    own: Arc<Vec<u8>>,
    theirs: Arc<Vec<u8>>,
}

impl Shared {
    /// Relays a message `me` sends: validates it, stores it durably with a queue entry for
    /// every device it is for, then tells the sender (ack 1) and pushes it to the devices that
    /// are online.
    pub(crate) async fn relay(
        &self,
        me: &Me,
        info: wa_proto::WebMessageInfo,
    ) -> Result<String, Refusal> {
        let ticket = self.relay_submit(me, info)?;
        self.relay_finish(me, ticket, |_| {}).await
    }

    /// The first half of [`Shared::relay`]: validates the message and queues its store job
    /// at once, so that a connection's messages are stored in the order they came even when
    /// it does not wait for each before reading the next.
    pub(crate) fn relay_submit(
        &self,
        me: &Me,
        info: wa_proto::WebMessageInfo,
    ) -> Result<RelayTicket, Refusal> {
        let id = info
            .key
            .id
            .clone()
            .filter(|id| valid_message_id(id))
            .ok_or_else(|| Refusal::bad_request("message without a valid id"))?;
        if info.key.from_me == Some(false) {
            return Err(Refusal::forbidden("a client sends only as itself"));
        }
        let chat = info
            .key
            .remote_jid
            .as_deref()
            .and_then(ChatJid::parse)
            .ok_or_else(|| Refusal::bad_request("message without a valid remoteJid"))?;
        let t = now_secs();
        let group = matches!(chat, ChatJid::Group(_));

        // The sender's own copy (its history, its other devices) ...
        let mut own = info.clone();
        own.key.remote_jid = Some(chat.wire());
        own.key.from_me = Some(true);
        own.key.participant = None;
        own.participant = None;
        own.message_timestamp = Some(t);
        own.status = Some(Status::ServerAck as i32);
        // ... and what the recipients get.
        let mut theirs = info;
        theirs.key.remote_jid = Some(match &chat {
            ChatJid::User(_) => user_wire(&me.number),
            ChatJid::Group(g) => g.clone(),
        });
        theirs.key.from_me = Some(false);
        theirs.key.participant = group.then(|| user_wire(&me.number));
        theirs.participant = group.then(|| user_wire(&me.number));
        theirs.message_timestamp = Some(t);
        theirs.push_name = Some(me.name.clone());
        theirs.status = None;
        let own = Arc::new(own.encode_to_vec());
        let theirs = Arc::new(theirs.encode_to_vec());

        let sender_chat = chat.json();
        let their_chat = match &chat {
            ChatJid::User(_) => me.wid(),
            ChatJid::Group(g) => g.clone(),
        };
        let expires = t.saturating_add(self.config.message_ttl.as_secs());
        let limit = self.config.history_per_chat;
        let job = {
            let (me, id, own, theirs) = (me.clone(), id.clone(), own.clone(), theirs.clone());
            let (chat, sender_chat, their_chat) =
                (chat.clone(), sender_chat.clone(), their_chat.clone());
            move |txn: &mut dyn store::WriteTxn| -> Result<Result<Stored, Refusal>, StoreError> {
                if let Some(seq) = txn.get(Table::SentIds, &sent_key(&me.number, &id))? {
                    let seq = <[u8; 8]>::try_from(seq.as_slice()).map_or(0, u64::from_be_bytes);
                    return Ok(Ok(Stored {
                        seq,
                        duplicate: true,
                        pending: Vec::new(),
                    }));
                }
                let index = index_key(&me.number, &sender_chat, &id);
                if let Some(entry) = model::get_json::<IndexEntry>(txn, Table::MsgIndex, &index)? {
                    return Ok(Ok(Stored {
                        seq: entry.seq,
                        duplicate: true,
                        pending: Vec::new(),
                    }));
                }
                let (recipients, subject) = match &chat {
                    ChatJid::User(n) if *n == me.number => (Vec::new(), None),
                    ChatJid::User(n) => match model::account(txn, n)? {
                        Some(account) => (vec![account], None),
                        None => return Ok(Err(Refusal::not_found("no such account"))),
                    },
                    ChatJid::Group(g) => {
                        let Some(group) = model::group(txn, g)? else {
                            return Ok(Err(Refusal::not_found("no such group")));
                        };
                        if group.member(&me.number).is_none() {
                            return Ok(Err(Refusal::forbidden("not a member of the group")));
                        }
                        let mut accounts = Vec::new();
                        for member in group.participants.iter().filter(|m| m.number != me.number) {
                            if let Some(account) = model::account(txn, &member.number)? {
                                accounts.push(account);
                            }
                        }
                        (accounts, Some(group.subject))
                    }
                };
                let pending: Vec<DeviceKey> =
                    recipients.iter().flat_map(model::devices_of).collect();
                let seq = model::next_seq(txn)?;
                if !pending.is_empty() {
                    let record = MessageRecord {
                        id: id.clone(),
                        sender: me.number.clone(),
                        chat: their_chat.clone(),
                        sender_chat: sender_chat.clone(),
                        t,
                        expires,
                        info: theirs.to_vec(),
                        pending: pending.iter().map(|d| d.as_str().to_owned()).collect(),
                        delivered: false,
                    };
                    model::put_json(txn, Table::Messages, &message_key(seq), &record)?;
                    for device in &pending {
                        txn.put(Table::Inbox, &inbox_key(device, seq), &[])?;
                    }
                    txn.put(
                        Table::SentIds,
                        &sent_key(&me.number, &id),
                        &seq.to_be_bytes(),
                    )?;
                    txn.put(Table::Expiry, &expiry_key(expires, seq), &[])?;
                }
                model::add_history(
                    txn,
                    &HistoryEntry {
                        number: &me.number,
                        chat: &sender_chat,
                        seq,
                        id: &id,
                        sender: &me.number,
                        info: &own,
                        t,
                        unread: false,
                        name: subject.as_deref(),
                    },
                    limit,
                )?;
                for account in &recipients {
                    model::add_history(
                        txn,
                        &HistoryEntry {
                            number: &account.number,
                            chat: &their_chat,
                            seq,
                            id: &id,
                            sender: &me.number,
                            info: &theirs,
                            t,
                            unread: true,
                            name: subject.as_deref(),
                        },
                        limit,
                    )?;
                }
                Ok(Ok(Stored {
                    seq,
                    duplicate: false,
                    pending,
                }))
            }
        };
        Ok(RelayTicket {
            pending: store::submit(&*self.store, job),
            id,
            chat,
            sender_chat,
            t,
            own,
            theirs,
        })
    }

    /// The second half of [`Shared::relay`]: waits until the message is durable, calls
    /// `stored` with the status for the sender's request (200, or why not), then sends ack 1
    /// and the copies.
    pub(crate) async fn relay_finish(
        &self,
        me: &Me,
        ticket: RelayTicket,
        stored: impl FnOnce(u16),
    ) -> Result<String, Refusal> {
        let RelayTicket {
            pending,
            id,
            chat,
            sender_chat,
            t,
            own,
            theirs,
        } = ticket;
        let result = pending.wait().await.map_err(Refusal::from).and_then(|r| r);
        stored(result.as_ref().map_or_else(|r| r.status, |_| 200));
        let stored = result?;
        if !stored.duplicate {
            Metrics::inc(&self.metrics.messages_stored);
            if !stored.pending.is_empty() {
                Metrics::inc(&self.metrics.queued);
            }
        }
        tracing::debug!(%id, from = %me.number, to = %chat, seq = stored.seq, devices = stored.pending.len(), duplicate = stored.duplicate, "stored");
        let ack = Arc::new(AckNote {
            id: id.clone(),
            level: 1,
            from: me.wid(),
            to: sender_chat,
            participant: None,
            t,
        });
        self.hub
            .push_account(&me.number, None, || Push::Ack(Arc::clone(&ack)));
        if stored.duplicate {
            return Ok(id);
        }
        let delivery = Arc::new(Delivery {
            seq: Some(stored.seq),
            info: theirs,
        });
        for device in &stored.pending {
            if let Some(outbox) = self.hub.outbox(device) {
                outbox.push(Push::Deliver(Arc::clone(&delivery)));
            }
        }
        let copy = Arc::new(Delivery {
            seq: None,
            info: own,
        });
        self.hub.push_account(&me.number, Some(&me.device), || {
            Push::Deliver(Arc::clone(&copy))
        });
        Ok(id)
    }

    /// `me` has message `id` of `chat` (as `me` sees the chat: the sender, or the group with
    /// the sender as `participant`): takes it off the device's queue; the first device of a
    /// recipient to have it sends ack 2 to the sender.
    ///
    /// The device does not wait for this to be durable (a receipt lost in a crash only means
    /// the message comes again): the update is queued at once and finished in the background.
    pub(crate) fn received(
        self: &Arc<Self>,
        me: &Me,
        chat: &str,
        id: &str,
        participant: Option<&str>,
    ) -> Result<(), Refusal> {
        let chat = ChatJid::parse(chat).ok_or_else(|| Refusal::bad_request("bad receipt jid"))?;
        let Some(sender) = self.sender_of(me, &chat, id, participant)? else {
            return Ok(());
        };
        let (device, id_owned, sender_owned) = (me.device.clone(), id.to_owned(), sender.clone());
        let job = move |txn: &mut dyn store::WriteTxn| {
            let Some(seq) = txn.get(Table::SentIds, &sent_key(&sender_owned, &id_owned))? else {
                return Ok(None);
            };
            let seq = <[u8; 8]>::try_from(seq.as_slice()).map_or(0, u64::from_be_bytes);
            let Some((retired, record)) = model::retire(txn, &device, seq, true)? else {
                return Ok(None);
            };
            if retired.first {
                model::set_history_status(
                    txn,
                    &record.sender,
                    &record.sender_chat,
                    &record.id,
                    Status::DeliveryAck,
                )?;
            }
            Ok(Some((retired, record)))
        };
        let pending = store::submit(&*self.store, job);
        let (shared, me) = (Arc::clone(self), me.clone());
        tokio::spawn(async move {
            let (retired, record) = match pending.wait().await {
                Ok(Some(done)) => done,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "recording a receipt failed");
                    return;
                }
            };
            Metrics::inc(&shared.metrics.receipts);
            if retired.deleted {
                Metrics::sub(&shared.metrics.queued, 1);
            }
            if retired.first {
                let ack = shared.ack_note(&me, &chat, &record.id, &record.sender, 2);
                shared
                    .hub
                    .push_account(&record.sender, None, || Push::Ack(Arc::clone(&ack)));
            }
        });
        Ok(())
    }

    /// `me` read message `id` of `chat`: clears the chat's unread count and sends ack 3 to
    /// the sender.
    pub(crate) async fn read(&self, me: &Me, chat: &str, id: &str) -> Result<(), Refusal> {
        let chat = ChatJid::parse(chat).ok_or_else(|| Refusal::bad_request("bad read jid"))?;
        let sender = self.sender_of(me, &chat, id, None)?;
        let sender_chat = match &chat {
            ChatJid::User(_) => me.wid(),
            ChatJid::Group(g) => g.clone(),
        };
        let (number, chat_json, id_owned, sender_owned) = (
            me.number.clone(),
            chat.json(),
            id.to_owned(),
            sender.clone(),
        );
        store::write(&*self.store, move |txn| {
            let key = model::chat_key(&number, &chat_json);
            if let Some(mut record) = model::get_json::<ChatRecord>(txn, Table::Chats, &key)?
                && record.unread > 0
            {
                record.unread = 0;
                model::put_json(txn, Table::Chats, &key, &record)?;
            }
            if let Some(sender) = sender_owned.as_deref().filter(|s| *s != number) {
                model::set_history_status(txn, sender, &sender_chat, &id_owned, Status::Read)?;
            }
            Ok(())
        })
        .await?;
        if let Some(sender) = sender.filter(|s| *s != me.number) {
            let ack = self.ack_note(me, &chat, id, &sender, 3);
            self.hub
                .push_account(&sender, None, || Push::Ack(Arc::clone(&ack)));
        }
        Ok(())
    }

    /// The sender of message `id` in `chat` as `me` sees it.
    fn sender_of(
        &self,
        me: &Me,
        chat: &ChatJid,
        id: &str,
        participant: Option<&str>,
    ) -> Result<Option<String>, Refusal> {
        match chat {
            ChatJid::User(n) => Ok(Some(n.clone())),
            ChatJid::Group(g) => {
                if let Some(ChatJid::User(n)) = participant.and_then(ChatJid::parse) {
                    return Ok(Some(n));
                }
                let key = index_key(&me.number, g, id);
                let entry = store::read(&*self.store, |txn| {
                    model::get_json::<IndexEntry>(txn, Table::MsgIndex, &key)
                })?;
                Ok(entry.map(|e| e.sender))
            }
        }
    }

    fn ack_note(&self, me: &Me, chat: &ChatJid, id: &str, sender: &str, level: u8) -> Arc<AckNote> {
        let (to, participant) = match chat {
            ChatJid::User(_) => (user_jid(sender), None),
            ChatJid::Group(g) => (g.clone(), Some(me.wid())),
        };
        Arc::new(AckNote {
            id: id.to_owned(),
            level,
            from: me.wid(),
            to,
            participant,
            t: now_secs(),
        })
    }

    /// The messages waiting for a device, oldest first (expired ones left out).
    pub(crate) fn queued(&self, device: &DeviceKey) -> Result<Vec<Arc<Delivery>>, StoreError> {
        let now = now_secs();
        let entries = store::read(&*self.store, |txn| model::inbox(txn, device, usize::MAX))?;
        Ok(entries
            .into_iter()
            .filter(|(_, record)| record.expires > now)
            .map(|(seq, record)| {
                Arc::new(Delivery {
                    seq: Some(seq),
                    info: Arc::new(record.info),
                })
            })
            .collect())
    }

    /// Presence: `available`/`unavailable` go to the account's subscribers; typing states
    /// with `to` go to that user's (or group's members') devices.
    pub(crate) fn presence(&self, me: &Me, kind: &str, to: Option<&str>) -> Result<(), Refusal> {
        const KINDS: [&str; 5] = [
            "available",
            "unavailable",
            "composing",
            "paused",
            "recording",
        ];
        if !KINDS.contains(&kind) {
            return Err(Refusal::bad_request("unknown presence type"));
        }
        let to = match to {
            Some(to) => {
                Some(ChatJid::parse(to).ok_or_else(|| Refusal::bad_request("bad presence jid"))?)
            }
            None => None,
        };
        let t = now_secs();
        match to {
            None => {
                let note = Arc::new(PresenceNote {
                    jid: me.wid(),
                    kind: kind.to_owned(),
                    t,
                    chat: None,
                });
                for outbox in self.hub.subscribers(&me.number) {
                    outbox.push(Push::Presence(Arc::clone(&note)));
                }
            }
            Some(ChatJid::User(n)) => {
                let note = Arc::new(PresenceNote {
                    jid: me.wid(),
                    kind: kind.to_owned(),
                    t,
                    chat: None,
                });
                self.hub
                    .push_account(&n, None, || Push::Presence(Arc::clone(&note)));
            }
            Some(ChatJid::Group(g)) => {
                let group = store::read(&*self.store, |txn| model::group(txn, &g))?
                    .ok_or_else(|| Refusal::not_found("no such group"))?;
                if group.member(&me.number).is_none() {
                    return Err(Refusal::forbidden("not a member of the group"));
                }
                let note = Arc::new(PresenceNote {
                    jid: me.wid(),
                    kind: kind.to_owned(),
                    t,
                    chat: Some(g),
                });
                for member in group.participants.iter().filter(|m| m.number != me.number) {
                    self.hub
                        .push_account(&member.number, None, || Push::Presence(Arc::clone(&note)));
                }
            }
        }
        Ok(())
    }

    /// Subscribes a connection to an account's presence and tells it the current state.
    pub(crate) fn subscribe(&self, outbox: &Outbox, jid: &str) -> Result<(), Refusal> {
        let Some(ChatJid::User(target)) = ChatJid::parse(jid) else {
            return Err(Refusal::bad_request("presence subscriptions are for users"));
        };
        self.hub.subscribe(&target, outbox);
        let online = !self.hub.outboxes_of(&target).is_empty();
        outbox.push(Push::Presence(Arc::new(PresenceNote {
            jid: user_jid(&target),
            kind: if online { "available" } else { "unavailable" }.to_owned(),
            t: now_secs(),
            chat: None,
        })));
        Ok(())
    }

    /// The chat list node (`["response",{type:"chat"},[["chat",{jid,name?,count,t}],...]]`),
    /// most recent first.
    pub(crate) fn chat_list(&self, number: &str) -> Result<Node<'static>, StoreError> {
        let mut chats = self.chats(number)?;
        chats.sort_by_key(|(_, chat)| std::cmp::Reverse(chat.t));
        let children = chats
            .into_iter()
            .map(|(jid, record)| {
                let mut node = Node::new("chat").with_attr("jid", wire_of(&jid));
                if let Some(name) = record.name {
                    node = node.with_attr("name", name);
                }
                node.with_attr("count", record.unread.to_string())
                    .with_attr("t", record.t.to_string())
            })
            .collect();
        Ok(Node::new("response")
            .with_attr("type", "chat")
            .with_children(children))
    }

    /// The contact list node: everyone the account has a one-to-one chat with, by the name
    /// they gave themselves (`notify`).
    pub(crate) fn contact_list(&self, number: &str) -> Result<Node<'static>, StoreError> {
        let chats = self.chats(number)?;
        let children = store::read(&*self.store, |txn| {
            let mut out = Vec::new();
            for (jid, _) in &chats {
                let Some(ChatJid::User(n)) = ChatJid::parse(jid) else {
                    continue;
                };
                let mut node = Node::new("user").with_attr("jid", user_wire(&n));
                if let Some(account) = model::account(txn, &n)? {
                    node = node.with_attr("notify", account.name);
                }
                out.push(node);
            }
            Ok(out)
        })?;
        Ok(Node::new("response")
            .with_attr("type", "contacts")
            .with_children(children))
    }

    fn chats(&self, number: &str) -> Result<Vec<(String, ChatRecord)>, StoreError> {
        let prefix = chats_prefix(number);
        let entries = store::read(&*self.store, |txn| {
            txn.range(Table::Chats, &prefix, &prefix_end(&prefix), false, 10_000)
        })?;
        let mut out = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let mut reader = KeyReader::new(&key);
            let Some(chat) = reader.str().and(reader.str()) else {
                continue;
            };
            out.push((chat, model::decode_json(Table::Chats, &value)?));
        }
        Ok(out)
    }

    /// Up to `count` messages of a chat before message `before` (or the latest), oldest
    /// first: `["action",{add:"before"},[["message",null,bytes],...]]`.
    pub(crate) fn history(
        &self,
        number: &str,
        chat: &str,
        count: u32,
        before: Option<&str>,
    ) -> Result<Node<'static>, Refusal> {
        let chat = ChatJid::parse(chat)
            .ok_or_else(|| Refusal::bad_request("bad history jid"))?
            .json();
        let count = count.clamp(1, self.config.limits.max_history_query) as usize;
        let prefix = history_prefix(number, &chat);
        let entries = store::read(&*self.store, |txn| {
            let end = match before {
                Some(id) => {
                    match model::get_json::<IndexEntry>(
                        txn,
                        Table::MsgIndex,
                        &index_key(number, &chat, id),
                    )? {
                        Some(entry) => model::history_key(number, &chat, entry.seq),
                        None => return Ok(Vec::new()),
                    }
                }
                None => prefix_end(&prefix),
            };
            txn.range(Table::History, &prefix, &end, true, count)
        })?;
        let children = entries
            .into_iter()
            .rev()
            .map(|(_, info)| Node::new("message").with_bytes(info))
            .collect();
        Ok(Node::new("action")
            .with_attr("add", "before")
            .with_children(children))
    }
}

/// A stored chat key as the wire writes it.
fn wire_of(jid: &str) -> String {
    ChatJid::parse(jid).map_or_else(|| jid.to_owned(), |c| c.wire())
}
