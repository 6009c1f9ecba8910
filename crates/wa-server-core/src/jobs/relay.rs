//! Store and forward of end-to-end ciphertext: a relay is checked against the recipients'
//! current devices, stored once (the group body once, each device's own ciphertext in its
//! inbox), acknowledged (ack 1), and pushed to the devices that are online; each device's
//! receipt retires its entry and counts for the ticks; the last one drops the body.
//!
//! **Architecture Invariant:** the server never parses message content: a relay's ciphertexts
//! are opaque bytes, and a readable legacy message from an end-to-end client is refused before
//! anything is stored.
//!
//! **Architecture Invariant:** a receipt counts only from a device the message was queued for;
//! a read counts only from an account the message was for, whose device received it.

use std::collections::BTreeSet;
use std::sync::Arc;

use wa_wire::Jid;
use wa_wire::ids::{Chat, device_of, is_group_jid, number_of, user_jid, user_of};
use wa_wire::msg::{AckNotice, Incoming, PresenceNotice, PresenceSet, Receipt, ReceiptKind, Relay};

use super::{Done, Effects, Me, ReplyTo, SetOk};
use crate::action::{Push, Target};
use crate::job::{Job, Outcome, Refusal};
use crate::model::{
    self, Expiring, InboxRecord, MessageRecord, ReceiptSlot, ReceiptState, enqueue, get_json,
    inbox_prefix, insert_message, message, put_message, receipt_state, sent_key, sent_seq,
    set_receipt_state,
};
use crate::store::{Indirect, KeyReader, StoreError, Table, WriteTxn};
use wa_wire::Time;

/// Why a relay was not stored.
#[derive(Debug)]
pub(crate) enum RelayRefused {
    /// The targets are not exactly the recipients' current devices.
    Mismatch { missing: Vec<Jid>, extra: Vec<Jid> },
    /// Anything else.
    Refused(Refusal),
}

/// What the relay needs besides the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayLimits {
    pub(crate) ttl_secs: u64,
    pub(crate) max_pending_per_device: u32,
    pub(crate) max_pending_bytes_per_account: u64,
    pub(crate) daily_send_bytes: u64,
}

impl RelayLimits {
    /// The limits `config` sets (the same for a phone's relay and a web client's).
    pub(crate) fn of(config: &crate::config::Config) -> RelayLimits {
        RelayLimits {
            ttl_secs: config.message_ttl.as_secs(),
            max_pending_per_device: config.limits.max_pending_per_device,
            max_pending_bytes_per_account: config.limits.max_pending_bytes_per_account,
            daily_send_bytes: config.limits.daily_send_bytes,
        }
    }
}

/// Which of the sender's devices a relay's ack 1 ("stored") is pushed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckOne {
    /// Every connected device of the account (a web client's relay: the legacy protocol's
    /// tick is that push).
    EveryDevice,
    /// Every connected device but the one that relayed (a phone's relay: its answer, `{"t"}`,
    /// is its tick, and one text fewer crosses its socket per message).
    OtherDevices,
}

/// Relays a message `me` sends.
pub(crate) fn relay(
    reply_to: ReplyTo,
    me: Arc<Me>,
    message: Relay,
    now: Time,
    limits: RelayLimits,
    ack_one: AckOne,
) -> Job {
    let message = Arc::new(message);
    let (named_me, named) = (Arc::clone(&me), Arc::clone(&message));
    // What it reads first is named to a store that reads ahead (`Job::reading`), not
    // prefetched by the work: only such a store prefetches.
    Job::write("relay", move |txn| {
        let result = store(txn, &me, &message, now, limits, ack_one)?;
        Ok(Outcome(Done::Relay {
            reply_to: reply_to.clone(),
            result,
        }))
    })
    .reading(move || (relay_reads(&named_me, &named), Vec::new()))
    // (Its message's number.)
    .taking_numbers(1)
}

fn store(
    txn: &mut dyn WriteTxn,
    me: &Me,
    relay: &Relay,
    now: Time,
    limits: RelayLimits,
    ack_one: AckOne,
) -> Result<Result<(u64, Effects), RelayRefused>, StoreError> {
    let refuse = |r: Refusal| Ok(Err(RelayRefused::Refused(r)));
    let t = now.as_secs();
    // A message sent again (the sender did not hear the first answer): the same answer.
    if let Some(seq) = sent_seq(txn, &me.number, &relay.id)? {
        let t = message(txn, seq)?.map_or(t, |m| m.t);
        return Ok(Ok((t, Vec::new())));
    }
    let chat = match relay.chat() {
        Ok(chat) => chat,
        Err(e) => return refuse(Refusal::bad_request(e.to_string())),
    };
    // Who it is for: the recipient (or every member) and the sender's own other devices.
    let mut expected = BTreeSet::new();
    let recipients: Vec<String> = match &chat {
        Chat::User(user) => {
            let Some(number) = number_of(user) else {
                return refuse(Refusal::bad_request("not a user"));
            };
            let Some(devices) = model::endpoint_addresses(txn, number)? else {
                return refuse(Refusal::not_found("no such account"));
            };
            if number == me.number {
                Vec::new()
            } else {
                expected.extend(devices);
                vec![number.to_owned()]
            }
        }
        Chat::Group(gid) => {
            let Some(group) = model::group(txn, gid)? else {
                return refuse(Refusal::not_found("no such group"));
            };
            if group.member(&me.number).is_none() {
                return refuse(Refusal::forbidden("not a member of the group"));
            }
            group
                .participants
                .iter()
                .map(|m| m.number.clone())
                .filter(|n| *n != me.number)
                .collect()
        }
    };
    if chat.is_group() != relay.group.is_some() {
        return refuse(Refusal::bad_request(if chat.is_group() {
            "a group message carries one group ciphertext (skmsg)"
        } else {
            "only group messages carry a group ciphertext"
        }));
    }
    // (A chat with a user has its devices already.)
    let members = if chat.is_group() {
        &recipients[..]
    } else {
        &[]
    };
    for number in members.iter().chain(std::iter::once(&me.number)) {
        expected.extend(model::endpoint_addresses(txn, number)?.unwrap_or_default());
    }
    expected.remove(&me.address);
    let given: BTreeSet<Jid> = relay.targets.iter().map(|t| t.device.clone()).collect();
    if given.len() != relay.targets.len() {
        // (It would be queued once and counted twice against the recipient's quotas.)
        return refuse(Refusal::bad_request("a device is named twice"));
    }
    let missing: Vec<Jid> = expected.difference(&given).cloned().collect();
    let extra: Vec<Jid> = given.difference(&expected).cloned().collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Ok(Err(RelayRefused::Mismatch { missing, extra }));
    }
    if !chat.is_group() && relay.targets.iter().any(|t| t.olm.is_none()) {
        return refuse(Refusal::bad_request(
            "every device of a message between two users needs its own ciphertext",
        ));
    }
    // Quotas: what the sender may send today, and what may wait for each account's devices:
    // bytes per account, messages per device (counted as they are queued and given back, not
    // by a scan of each inbox).
    let group_len = relay.group.as_ref().map_or(0, Vec::len) as u64;
    let entry_size = |target: &wa_wire::msg::RelayTarget| {
        target.olm.as_ref().map_or(0, |o| o.body.len() as u64) + group_len
    };
    let total: u64 = relay.targets.iter().map(entry_size).sum();
    let day = t / 86_400;
    let mut sender = model::counters(txn, &me.number)?;
    if sender.day != day {
        sender.day = day;
        sender.sent_bytes = 0;
    }
    if sender.sent_bytes.saturating_add(total) > limits.daily_send_bytes {
        return refuse(Refusal::new(
            507,
            format!(
                "this account sent {} bytes today: the daily budget is {}",
                sender.sent_bytes, limits.daily_send_bytes
            ),
        ));
    }
    let mut per_account: std::collections::BTreeMap<&str, Vec<&wa_wire::msg::RelayTarget>> =
        std::collections::BTreeMap::new();
    for target in &relay.targets {
        if let Some(number) = number_of(&target.device) {
            per_account.entry(number).or_default().push(target);
        }
    }
    let mut updated = Vec::with_capacity(per_account.len());
    for (&number, targets) in &per_account {
        let mut counters = if number == me.number {
            sender.clone()
        } else {
            model::counters(txn, number)?
        };
        let released = model::released(txn, number)?;
        let pending = released.waiting_bytes(&counters);
        let bytes: u64 = targets.iter().map(|t| entry_size(t)).sum();
        if pending.saturating_add(bytes) > limits.max_pending_bytes_per_account {
            return refuse(Refusal::new(
                507,
                format!("{number} has {pending} bytes waiting: try again later"),
            ));
        }
        for target in targets {
            let device = device_of(&target.device);
            let waiting = released.waiting_entries(&counters, device);
            if waiting >= u64::from(limits.max_pending_per_device) {
                return refuse(Refusal::new(
                    507,
                    format!(
                        "{} has {waiting} messages waiting: try again later",
                        target.device
                    ),
                ));
            }
            counters.queued_entries.add(device, 1);
        }
        counters.queued_bytes += bytes;
        if number == me.number {
            // (A copy of `sender`, changed only here.)
            sender = counters;
        } else {
            updated.push((number, counters));
        }
    }
    sender.sent_bytes += total;
    model::put_counters(txn, &me.number, &sender)?;
    for (number, counters) in &updated {
        model::put_counters(txn, number, counters)?;
    }

    let seq = model::next_seq(txn)?;
    let expires = t.saturating_add(limits.ttl_secs);
    let record = MessageRecord {
        id: relay.id.clone(),
        sender: me.number.clone(),
        sender_device: me.device,
        chat: chat.jid().clone(),
        t,
        expires,
        kind: relay.kind.clone(),
        body: relay.group.clone(),
        receipt: ReceiptSlot::Inline(None),
        // A chat with a user lists its few devices in its record instead of indexing them.
        devices: (!chat.is_group() && relay.targets.len() <= MessageRecord::MAX_DEVICES)
            .then(|| relay.targets.iter().map(|t| t.device.clone()).collect()),
    };
    insert_message(txn, seq, &record)?;
    // (Read as absent at the start: `sent_seq`.)
    txn.put_absent(
        Table::SentIds,
        &sent_key(&me.number, &relay.id),
        &seq.to_be_bytes(),
    )?;
    let mut effects = Effects::new();
    let indexed = record.devices.is_none();
    for target in &relay.targets {
        enqueue(
            txn,
            &target.device,
            seq,
            &InboxRecord {
                olm: target.olm.clone(),
                size: entry_size(target),
            },
            indexed,
        )?;
        let own = number_of(&target.device) == Some(me.number.as_str());
        // The chat as the receiving device sees it.
        let seen_as = match &chat {
            Chat::Group(gid) => gid.clone(),
            Chat::User(user) if own => user.clone(),
            Chat::User(_) => me.user.clone(),
        };
        effects.push((
            Target::Device(target.device.clone()),
            Push::Deliver {
                seq,
                message: Incoming {
                    from: me.address.clone(),
                    chat: seen_as,
                    id: relay.id.clone(),
                    t,
                    kind: relay.kind.clone(),
                    group: relay.group.clone(),
                    olm: target.olm.clone(),
                },
            },
        ));
    }
    if relay.targets.is_empty() {
        // Nobody to deliver to (a message to oneself from one's only device): nothing to keep.
        model::retire(txn, &me.address, seq, t, None, model::Retired::Received)?;
    }
    for number in &recipients {
        model::add_peers(txn, &me.number, number, t)?;
    }
    // Ack 1: stored. The devices of the sender's account hear it (see `AckOne`).
    effects.insert(
        0,
        (
            Target::Account {
                number: me.number.clone(),
                except: match ack_one {
                    AckOne::EveryDevice => None,
                    AckOne::OtherDevices => Some(me.address.clone()),
                },
            },
            Push::Ack(AckNotice {
                id: relay.id.clone(),
                level: 1,
                sender: me.user.clone(),
                chat: chat.jid().clone(),
                participant: None,
                t,
            }),
        ),
    );
    Ok(Ok((t, effects)))
}

/// The records a relay reads first: whether it was sent before, and the sender's and (in a
/// chat with a user) the recipient's endpoints, counters and peer record.
fn relay_reads(me: &Me, relay: &Relay) -> Vec<(Table, Vec<u8>)> {
    let mut keys = vec![
        (Table::SentIds, sent_key(&me.number, &relay.id)),
        (Table::Endpoints, model::account_key(&me.number)),
        (Table::Counters, model::account_key(&me.number)),
    ];
    if let Ok(Chat::User(user)) = relay.chat()
        && let Some(number) = number_of(&user)
        && number != me.number
    {
        keys.extend([
            (Table::Endpoints, model::account_key(number)),
            (Table::Counters, model::account_key(number)),
            (Table::Counters, model::released_key(number)),
            (Table::Peers, model::peer_key(&me.number, number)),
        ]);
    }
    keys
}

/// A receipt's chat, read without a copy of its address (a receipt's reads and its job each
/// look at it).
#[derive(Debug, Clone, Copy)]
enum ChatOf<'a> {
    /// A user: their number.
    User(&'a str),
    Group,
}

impl<'a> ChatOf<'a> {
    /// What [`Chat::from_jid`] tells of `jid`, or `None` where it fails.
    fn read(jid: &'a Jid) -> Option<ChatOf<'a>> {
        match number_of(jid) {
            Some(number) => Some(ChatOf::User(number)),
            None => is_group_jid(jid).then_some(ChatOf::Group),
        }
    }

    fn is_group(self) -> bool {
        matches!(self, ChatOf::Group)
    }
}

/// Who may have sent the message a receipt is for: the chat's user, the group participant,
/// or (a copy of the account's own message on another of its devices) the account itself.
fn receipt_senders<'a>(me: &'a Me, r: &'a Receipt, chat: ChatOf<'a>) -> Vec<&'a str> {
    let named = match chat {
        ChatOf::User(number) => Some(number),
        ChatOf::Group => r.participant.as_ref().and_then(number_of),
    };
    named.into_iter().chain([me.number.as_str()]).collect()
}

/// The records a receipt reads first: the sent ids it may be for, and the counters of what
/// its account got.
fn receipt_reads(me: &Me, r: &Receipt) -> Vec<(Table, Vec<u8>)> {
    let Some(chat) = ChatOf::read(&r.chat) else {
        return Vec::new();
    };
    receipt_senders(me, r, chat)
        .into_iter()
        .map(|sender| (Table::SentIds, sent_key(sender, &r.id)))
        .chain([(Table::Counters, model::released_key(&me.number))])
        .collect()
}

/// The records a receipt reads first by the message number a sent id holds: the message and
/// the receiving device's inbox entry of it (their keys end with the number, as the sent id's
/// value is it: see `model::sent_seq`).
fn receipt_reads_through(me: &Me, r: &Receipt) -> Vec<Indirect> {
    let Some(chat) = ChatOf::read(&r.chat) else {
        return Vec::new();
    };
    let inbox = inbox_prefix(&me.address);
    receipt_senders(me, r, chat)
        .into_iter()
        .flat_map(|sender| {
            let via = (Table::SentIds, sent_key(sender, &r.id));
            [
                Indirect {
                    table: Table::Messages,
                    prefix: Vec::new(),
                    via: via.clone(),
                },
                Indirect {
                    table: Table::Inbox,
                    prefix: inbox.clone(),
                    via,
                },
            ]
        })
        .collect()
}

/// A device's receipt: retires its entry; counts for the sender's ticks.
pub(crate) fn receipt(
    txn: &mut dyn WriteTxn,
    me: &Me,
    r: &Receipt,
    now: Time,
    receipts_secs: u64,
) -> Result<Effects, StoreError> {
    let t = now.as_secs();
    let Some(chat) = ChatOf::read(&r.chat) else {
        return Ok(Vec::new());
    };
    let senders = receipt_senders(me, r, chat);
    let mut found = None;
    for sender in &senders {
        if let Some(seq) = sent_seq(txn, sender, &r.id)? {
            found = Some(seq);
            break;
        }
    }
    let Some(seq) = found else {
        return Ok(Vec::new());
    };
    if txn.prefetches() {
        txn.prefetch(&[
            (Table::Messages, model::message_key(seq)),
            (Table::Inbox, model::inbox_key(&me.address, seq)),
            (Table::Counters, model::released_key(&me.number)),
        ])?;
    }
    let Some(mut record) = message(txn, seq)? else {
        return Ok(Vec::new());
    };
    let retired = model::retire(
        txn,
        &me.address,
        seq,
        t.saturating_add(receipts_secs),
        Some(&mut record),
        model::Retired::Received,
    )?;
    if record.sender == me.number {
        // The sender's own devices: nothing to tell anyone.
        return Ok(Vec::new());
    }
    // Was this account one the message was for?
    let recipient = match ChatOf::read(&record.chat) {
        Some(ChatOf::User(number)) => number == me.number,
        Some(ChatOf::Group) => {
            model::group(txn, &record.chat)?.is_some_and(|g| g.member(&me.number).is_some())
        }
        None => false,
    };
    if !recipient {
        return Ok(Vec::new());
    }
    // A message to a user keeps their state in its record (records of earlier versions, and
    // group messages, in the receipts table). "Delivered" is not written there when the
    // record lists its devices: a listed device of the account without its entry any more
    // got the message (one write fewer per message; "read" is written).
    let inline = match record.receipt {
        ReceiptSlot::Inline(state) if !chat.is_group() => Some(state),
        _ => None,
    };
    let mut implied = false;
    let state = match inline {
        Some(Some(state)) => Some(state),
        Some(None) => {
            match model::delivered_before(txn, &record, seq, &me.number, &me.address, retired)? {
                Some(delivered) => {
                    implied = true;
                    delivered.then_some(ReceiptState::Delivered)
                }
                None => None,
            }
        }
        None => receipt_state(txn, seq, &me.number)?,
    };
    let received = retired || state.is_some();
    if !received {
        // This device never had it (or the account never got it): it counts for nothing.
        return Ok(Vec::new());
    }
    let sender = user_jid(&record.sender).map_err(|e| StoreError::Backend(e.to_string()))?;
    let participant = chat.is_group().then(|| me.user.clone());
    let ack = |level: u8| {
        (
            Target::Account {
                number: record.sender.clone(),
                except: None,
            },
            Push::Ack(AckNotice {
                id: record.id.clone(),
                level,
                sender: sender.clone(),
                chat: record.chat.clone(),
                participant: participant.clone(),
                t,
            }),
        )
    };
    let mut effects = Effects::new();
    let mut reached = None;
    if state.is_none() {
        reached = Some(ReceiptState::Delivered);
        effects.push(ack(2));
    }
    if matches!(r.kind, ReceiptKind::Read | ReceiptKind::Played)
        && state != Some(ReceiptState::Read)
    {
        reached = Some(ReceiptState::Read);
        effects.push(ack(if r.kind == ReceiptKind::Played { 4 } else { 3 }));
    }
    // The state is written once, however far this receipt moved it ("delivered" not at all
    // where the entries tell it).
    if let Some(new) = reached
        && !(implied && new == ReceiptState::Delivered)
    {
        if inline.is_some() {
            record.receipt = ReceiptSlot::Inline(Some(new));
            put_message(txn, seq, &record)?;
        } else {
            set_receipt_state(txn, seq, &me.number, new)?;
        }
    }
    Ok(effects)
}

/// Presence: to subscribers, and chat states to the chat (only between related accounts).
pub(crate) fn presence(
    txn: &mut dyn WriteTxn,
    me: &Me,
    p: &PresenceSet,
    now: Time,
) -> Result<Result<Effects, Refusal>, StoreError> {
    let t = now.as_secs();
    let Some(to) = p.to.as_ref().filter(|_| p.state.is_chat_state()) else {
        return Ok(Ok(vec![(
            Target::Subscribers(me.user.clone()),
            Push::Presence(PresenceNotice {
                jid: me.user.clone(),
                state: p.state,
                group: None,
                t,
            }),
        )]));
    };
    let notice = |group: Option<Jid>| {
        Push::Presence(PresenceNotice {
            jid: me.user.clone(),
            state: p.state,
            group,
            t,
        })
    };
    match Chat::from_jid(to) {
        Ok(Chat::User(user)) => {
            let Some(number) = number_of(&user) else {
                return Ok(Err(Refusal::bad_request("not a user")));
            };
            if !model::related(txn, &me.number, number)? {
                return Ok(Err(Refusal::forbidden("no chat with this user")));
            }
            Ok(Ok(vec![(
                Target::Account {
                    number: number.to_owned(),
                    except: None,
                },
                notice(None),
            )]))
        }
        Ok(Chat::Group(gid)) => {
            let Some(group) = model::group(txn, &gid)? else {
                return Ok(Err(Refusal::not_found("no such group")));
            };
            if group.member(&me.number).is_none() {
                return Ok(Err(Refusal::forbidden("not a member of the group")));
            }
            Ok(Ok(group
                .participants
                .iter()
                .filter(|m| m.number != me.number)
                .map(|m| {
                    (
                        Target::Account {
                            number: m.number.clone(),
                            except: None,
                        },
                        notice(Some(gid.clone())),
                    )
                })
                .collect()))
        }
        Err(e) => Ok(Err(Refusal::bad_request(e.to_string()))),
    }
}

/// One item of an `action set` (or one phone request of these kinds).
#[derive(Debug, Clone)]
pub(crate) enum SetRequest {
    Receipt(Receipt),
    Presence(PresenceSet),
    Group(wa_wire::msg::GroupAction),
    Keys(wa_wire::keys::KeyUpload),
}

/// What set requests need to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetLimits {
    pub(crate) receipts_secs: u64,
    pub(crate) max_group_size: usize,
    pub(crate) max_groups_per_account: usize,
    pub(crate) max_one_time_keys: u32,
}

impl SetLimits {
    /// The limits `config` sets (the same for a phone's set requests and a web client's).
    pub(crate) fn of(config: &crate::config::Config) -> SetLimits {
        SetLimits {
            receipts_secs: config.message_ttl.as_secs(),
            max_group_size: config.limits.max_group_size,
            max_groups_per_account: config.limits.max_groups_per_account,
            max_one_time_keys: config.limits.max_one_time_keys,
        }
    }
}

/// Runs the items in one transaction; the first refusal stops it (and undoes nothing already
/// done: receipts before it still count).
pub(crate) fn set(
    reply_to: ReplyTo,
    me: Arc<Me>,
    items: Vec<SetRequest>,
    now: Time,
    limits: SetLimits,
) -> Job {
    let items = Arc::new(items);
    let (named_me, named) = (Arc::clone(&me), Arc::clone(&items));
    let reads = move || {
        let receipts = || {
            named.iter().filter_map(|item| match item {
                SetRequest::Receipt(r) => Some(r),
                _ => None,
            })
        };
        (
            receipts()
                .flat_map(|r| receipt_reads(&named_me, r))
                .collect(),
            receipts()
                .flat_map(|r| receipt_reads_through(&named_me, r))
                .collect(),
        )
    };
    Job::write("set", move |txn| {
        let mut effects = Effects::new();
        let mut ok = SetOk::default();
        let mut result = Ok(());
        for item in items.iter() {
            let step = match item {
                SetRequest::Receipt(r) => {
                    effects.extend(receipt(txn, &me, r, now, limits.receipts_secs)?);
                    Ok(())
                }
                SetRequest::Presence(p) => presence(txn, &me, p, now)?.map(|e| effects.extend(e)),
                SetRequest::Group(action) => super::groups::apply(txn, &me, action, now, limits)?
                    .map(|(gid, e)| {
                        ok.gid = gid.or(ok.gid.take());
                        effects.extend(e);
                    }),
                SetRequest::Keys(upload) => {
                    super::keys::upload(txn, &me, upload, limits.max_one_time_keys)?
                        .map(|count| ok.key_count = Some(count))
                }
            };
            if let Err(refusal) = step {
                result = Err(refusal);
                break;
            }
        }
        Ok(Outcome(Done::Set {
            reply_to: reply_to.clone(),
            result: result.map(|()| std::mem::take(&mut ok)),
            effects: std::mem::take(&mut effects),
        }))
    })
    .reading(reads)
}

/// Everything waiting for a device, oldest first (at most `limit`).
pub(crate) fn queue(device: Jid, limit: usize) -> Job {
    Job::read("queue", move |txn| {
        let prefix = inbox_prefix(&device);
        let mut out = Vec::new();
        for (key, value) in model::scan(txn, Table::Inbox, &prefix, limit)? {
            let mut reader = KeyReader::new(&key);
            let Some(seq) = reader.str().and_then(|_| reader.u64()) else {
                continue;
            };
            let entry = InboxRecord::from_bytes(&value).map_err(|detail| StoreError::Corrupt {
                table: Table::Inbox.name(),
                detail,
            })?;
            let Some(record) = message(txn, seq)? else {
                continue;
            };
            let Ok(sender) = user_jid(&record.sender) else {
                continue;
            };
            let own = number_of(&device) == Some(record.sender.as_str());
            let chat = match Chat::from_jid(&record.chat) {
                Ok(Chat::Group(gid)) => gid,
                Ok(Chat::User(user)) if own => user,
                _ => sender.clone(),
            };
            out.push((
                seq,
                Incoming {
                    from: wa_wire::ids::device_jid(&sender, record.sender_device),
                    chat,
                    id: record.id.clone(),
                    t: record.t,
                    kind: record.kind.clone(),
                    group: model::message_body(txn, seq, &record)?,
                    olm: entry.olm,
                },
            ));
        }
        Ok(Outcome(Done::Queue(out)))
    })
}

/// Drops what expired: messages (with their queue entries), refs, codes and media auth.
pub(crate) fn sweep(now: Time, batch: usize) -> Job {
    Job::write("sweep", move |txn| {
        let t = now.as_secs();
        let mut messages = 0;
        // Message numbers looked at: a block's entry names many.
        let mut budget = batch.max(1);
        let mut more = false;
        let end = model::expiry_key(t, u64::MAX);
        'entries: for (key, value) in txn.range(Table::Expiry, &[], &end, false, batch)? {
            match Expiring::of(&key, &value) {
                Some(Expiring::One(seq)) => {
                    budget = budget.saturating_sub(1);
                    if let Some(record) = message(txn, seq)? {
                        model::delete_message(txn, seq, &record)?;
                        messages += 1;
                    }
                    txn.remove(Table::Expiry, &key)?;
                }
                Some(Expiring::Block { from, end }) => {
                    let mut seq = from;
                    while seq < end {
                        if budget == 0 {
                            // The rest of the block next time.
                            txn.put(Table::Expiry, &key, &seq.to_be_bytes())?;
                            more = true;
                            break 'entries;
                        }
                        let upto = end.min(seq.saturating_add(budget as u64));
                        let keys: Vec<(Table, Vec<u8>)> = (seq..upto)
                            .map(|s| (Table::Messages, model::message_key(s)))
                            .collect();
                        txn.prefetch(&keys)?;
                        for s in seq..upto {
                            // Numbers of other blocks' steps, of messages gone, or never used.
                            if let Some(record) = message(txn, s)?
                                && record.expires <= t
                            {
                                model::delete_message(txn, s, &record)?;
                                messages += 1;
                            }
                        }
                        budget -= usize::try_from(upto - seq).unwrap_or(budget);
                        seq = upto;
                    }
                    txn.remove(Table::Expiry, &key)?;
                }
                None => txn.remove(Table::Expiry, &key)?,
            }
            if budget == 0 {
                more = true;
                break;
            }
        }
        model::sweep_timers(txn, now.as_millis(), batch)?;
        Ok(Outcome(Done::Swept {
            messages,
            more,
            effects: Vec::new(),
        }))
    })
}

/// Media upload auth: who may upload until when.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MediaAuthRecord {
    /// The account.
    pub number: String,
    /// When it expires (Unix seconds).
    pub expires: u64,
}

/// Stores media upload auth (the token's hash) for `me`.
pub(crate) fn media_auth(reply_to: ReplyTo, number: String, auth: String, expires: u64) -> Job {
    Job::write("media auth", move |txn| {
        let key = crate::store::KeyBuf::new()
            .str(&super::token_hash(&auth))
            .build();
        let record = MediaAuthRecord {
            number: number.clone(),
            expires,
        };
        model::put_expiring(
            txn,
            Table::MediaAuth,
            &key,
            &record,
            expires.saturating_mul(1000),
        )?;
        Ok(Outcome(Done::MediaAuth {
            reply_to: reply_to.clone(),
            auth: auth.clone(),
        }))
    })
}

/// The account a media upload token belongs to, if it is valid at `now`.
///
/// # Errors
/// When the store fails.
pub fn media_uploader(
    txn: &mut dyn crate::store::ReadTxn,
    auth: &str,
    now: Time,
) -> Result<Option<String>, StoreError> {
    let key = crate::store::KeyBuf::new()
        .str(&super::token_hash(auth))
        .build();
    Ok(get_json::<MediaAuthRecord>(txn, Table::MediaAuth, &key)?
        .filter(|r| r.expires >= now.as_secs())
        .map(|r| r.number))
}

/// Whether `jid` has an account.
pub(crate) fn exists(reply_to: ReplyTo, jid: Jid) -> Job {
    Job::read("exists", move |txn| {
        let exists = match number_of(&jid) {
            Some(number) => model::account(txn, number)?.is_some(),
            None => false,
        };
        Ok(Outcome(Done::Exists {
            reply_to: reply_to.clone(),
            exists,
        }))
    })
}

/// Whether `me` may subscribe to `jid`'s presence: only accounts that exchanged messages or
/// share a group (so that presence cannot be used to watch strangers).
pub(crate) fn subscribe(reply_to: ReplyTo, me: Arc<Me>, jid: Jid) -> Job {
    Job::read("subscribe", move |txn| {
        let user = user_of(&jid);
        let allowed = match number_of(&user) {
            Some(number) => model::related(txn, &me.number, number)?,
            None => false,
        };
        Ok(Outcome(Done::Subscribe {
            reply_to: reply_to.clone(),
            jid: user.clone(),
            allowed,
        }))
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a panic is a failed test"
    )]

    use wa_wire::keys::IdentityKeys;
    use wa_wire::msg::{ContentKind, OlmPayload, OlmType, RelayTarget};
    use wa_wire::phone::PhoneInfo;

    use super::*;
    use crate::model::{AccountRecord, DeviceMode, DeviceRecord, counters};
    use crate::store::MemStore;

    const ALICE: &str = "15550001001";
    const BOB: &str = "15550001002";
    const BODY: usize = 1000;

    /// An account whose phone (device 0) is its only device.
    fn account(store: &MemStore, number: &'static str) {
        account_with(store, number, &[]);
    }

    /// An account with its phone and end-to-end web clients `linked`.
    fn account_with(store: &MemStore, number: &'static str, linked: &'static [u8]) {
        store.write_now(move |txn| {
            let keys = IdentityKeys {
                curve25519: [1; 32],
                ed25519: [2; 32],
            };
            model::put_account(
                txn,
                &AccountRecord {
                    number: number.to_owned(),
                    name: number.to_owned(),
                    created: 0,
                    identity: keys,
                    identity_since: 0,
                    phone: PhoneInfo::default(),
                    linked: linked.to_vec(),
                    next_device: 1,
                },
            )?;
            for device in std::iter::once(0).chain(linked.iter().copied()) {
                let mode = if device == 0 {
                    DeviceMode::Phone
                } else {
                    DeviceMode::EndToEnd
                };
                model::put_device(
                    txn,
                    &DeviceRecord::bare(number, device, mode, Some(keys), 0),
                )?;
            }
            Ok(())
        });
    }

    fn limits() -> RelayLimits {
        RelayLimits {
            ttl_secs: 1000,
            max_pending_per_device: 100,
            // Three messages' worth.
            max_pending_bytes_per_account: 3 * BODY as u64,
            daily_send_bytes: u64::MAX,
        }
    }

    /// Message `id` from Alice to Bob's phone, its ciphertext there `copies` times.
    fn to_bob(id: &str, copies: usize) -> Relay {
        let bob = Me::new(BOB, 0).unwrap();
        let target = RelayTarget {
            device: bob.address,
            olm: Some(OlmPayload {
                kind: OlmType::Normal,
                body: vec![7; BODY],
            }),
        };
        Relay {
            to: bob.user.clone(),
            id: id.to_owned(),
            kind: ContentKind::Text,
            group: None,
            targets: vec![target; copies],
        }
    }

    /// Alice relays `relay`: `Ok` once stored, or the refusal's status.
    fn send_relay(
        store: &MemStore,
        relay: Relay,
        now: Time,
        limits: RelayLimits,
    ) -> Result<(), u16> {
        let me = Me::new(ALICE, 0).unwrap();
        match store
            .write_now(move |txn| super::store(txn, &me, &relay, now, limits, AckOne::EveryDevice))
        {
            Ok(_) => Ok(()),
            Err(RelayRefused::Refused(refusal)) => Err(refusal.status),
            Err(RelayRefused::Mismatch { missing, extra }) => {
                panic!("targets: missing {missing:?}, extra {extra:?}")
            }
        }
    }

    #[test]
    fn a_phones_ack_1_leaves_the_phone_out_and_a_web_clients_does_not() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        let now = Time::from_millis(1_000_000);
        let phone = Me::new(ALICE, 0).unwrap().address;
        for (n, (ack_one, except)) in [
            (AckOne::OtherDevices, Some(phone)),
            (AckOne::EveryDevice, None),
        ]
        .into_iter()
        .enumerate()
        {
            let me = Me::new(ALICE, 0).unwrap();
            let relay = to_bob(&format!("A{n}"), 1);
            let (_, effects) = store
                .write_now(move |txn| super::store(txn, &me, &relay, now, limits(), ack_one))
                .unwrap();
            let acks: Vec<(Target, u8)> = effects
                .into_iter()
                .filter_map(|(target, push)| match push {
                    Push::Ack(ack) => Some((target, ack.level)),
                    _ => None,
                })
                .collect();
            let account = Target::Account {
                number: ALICE.to_owned(),
                except,
            };
            assert_eq!(acks, vec![(account, 1)]);
        }
    }

    /// Alice sends message `id` to Bob's phone: `Ok` once stored, or the refusal's status.
    fn send(store: &MemStore, id: &str, now: Time) -> Result<(), u16> {
        send_relay(store, to_bob(id, 1), now, limits())
    }

    /// The receipt Bob's phone sends for Alice's message `id`.
    fn delivery_receipt(id: &str) -> Receipt {
        Receipt {
            kind: ReceiptKind::Delivered,
            chat: Me::new(ALICE, 0).unwrap().user,
            id: id.to_owned(),
            participant: None,
        }
    }

    /// Bob's phone tells Alice it got message `id`.
    fn delivered(store: &MemStore, id: &str, now: Time) {
        let receipt_of = delivery_receipt(id);
        let bob = Me::new(BOB, 0).unwrap();
        store.write_now(move |txn| receipt(txn, &bob, &receipt_of, now, 60));
    }

    /// The bytes waiting for `number`'s devices, and the messages waiting for its phone.
    fn waiting(store: &MemStore, number: &'static str) -> (u64, u64) {
        store.write_now(move |txn| {
            let counters = counters(txn, number)?;
            let released = model::released(txn, number)?;
            Ok((
                released.waiting_bytes(&counters),
                released.waiting_entries(&counters, 0),
            ))
        })
    }

    /// Runs the sweep as of `at`.
    fn sweep_at(store: &MemStore, at: Time) {
        let mut job = sweep(at, 100);
        store.write_now(move |txn| job.run(txn).map(|o| o.swept_messages()));
    }

    /// An account's pending bytes come back as its devices get their messages, or as the
    /// messages expire: the quota bounds what waits, not what it ever received.
    #[test]
    fn the_pending_quota_is_given_back_on_delivery_and_on_expiry() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        let now = Time::from_millis(1_000_000);
        for round in 0..3 {
            for i in 0..3 {
                send(&store, &format!("R{round}M{i}"), now).unwrap();
            }
            assert_eq!(waiting(&store, BOB).0, 3 * BODY as u64);
            assert_eq!(send(&store, &format!("R{round}FULL"), now), Err(507));
            // Bob's phone gets them: each receipt gives its bytes back.
            for i in 0..3 {
                delivered(&store, &format!("R{round}M{i}"), now);
            }
            assert_eq!(waiting(&store, BOB), (0, 0), "round {round}");
        }

        // Delivered messages keep their bookkeeping for receipts (60 s here, sooner than the
        // 1000 s of an undelivered one), then go.
        let messages = |store: &MemStore| store.write_now(|txn| txn.len(Table::Messages));
        assert_eq!(messages(&store), 9);
        for i in 0..3 {
            send(&store, &format!("OLD{i}"), now).unwrap();
        }
        let minute = Time::from_millis(now.as_millis() + 61_000);
        sweep_at(&store, minute);
        assert_eq!(messages(&store), 3, "the undelivered ones stay");
        assert_eq!(waiting(&store, BOB).0, 3 * BODY as u64);

        // Undelivered messages expire: the sweep gives their bytes back too.
        let later = Time::from_millis(now.as_millis() + 2_000_000);
        sweep_at(&store, later);
        assert_eq!(waiting(&store, BOB), (0, 0));
        send(&store, "NEW", later).unwrap();
        assert_eq!(waiting(&store, BOB), (BODY as u64, 1));
    }

    /// Messages sent together share an expiry entry per block of numbers: 300 messages keep two
    /// or three entries, not 300. None goes before its time (rounded up to the step); a sweep
    /// with a small batch stops inside a block and says so, and the next goes on from there; a
    /// message whose expiry moved goes at its own time, and one of an earlier version, with an
    /// entry of its own, still goes.
    #[test]
    fn messages_expire_by_blocks_of_numbers_never_early() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        let now = Time::from_millis(1_000_000_000);
        let roomy = RelayLimits {
            max_pending_per_device: 1000,
            max_pending_bytes_per_account: u64::MAX,
            ..limits()
        };
        for i in 0..300 {
            send_relay(&store, to_bob(&format!("M{i}"), 1), now, roomy).unwrap();
        }
        let entries = |store: &MemStore| store.write_now(|txn| txn.len(Table::Expiry));
        let messages = |store: &MemStore| store.write_now(|txn| txn.len(Table::Messages));
        assert!(entries(&store) <= 3, "{} entries", entries(&store));
        // M0's receipts bookkeeping is kept 60 s once delivered: an entry of its own.
        let bob = Me::new(BOB, 0).unwrap();
        let r = delivery_receipt("M0");
        store.write_now(move |txn| receipt(txn, &bob, &r, now, 60));
        // An entry of an earlier version, for M1.
        store.write_now(|txn| {
            let seq = sent_seq(txn, ALICE, "M1")?.unwrap();
            let expires = message(txn, seq)?.unwrap().expires;
            txn.put(Table::Expiry, &model::expiry_key(expires, seq), &[])
        });
        let at = |secs: u64| Time::from_millis(now.as_millis() + secs * 1000);
        let sweep_with = |store: &MemStore, when: Time, batch: usize| {
            let mut job = sweep(when, batch);
            store.write_now(move |txn| {
                let outcome = job.run(txn)?;
                Ok((outcome.swept_messages().unwrap_or(0), outcome.swept_more()))
            })
        };
        assert_eq!(
            sweep_with(&store, at(61), 1000),
            (1, false),
            "M0 at its own time"
        );
        assert_eq!(
            sweep_with(&store, at(limits().ttl_secs - 1), 1000),
            (0, false)
        );
        assert_eq!(messages(&store), 299);
        // Due: a batch of 100 numbers at a time, each sweep saying whether there is more.
        let due = at(limits().ttl_secs + model::EXPIRY_STEP);
        let mut swept = 0;
        let mut runs = 0;
        loop {
            let (n, more) = sweep_with(&store, due, 100);
            swept += n;
            runs += 1;
            if !more {
                break;
            }
            assert!(runs < 20, "the sweep ends");
        }
        assert_eq!(swept, 299);
        assert!(runs >= 3, "{runs} runs of 100 for 300 numbers");
        assert_eq!((messages(&store), entries(&store)), (0, 0));
        assert_eq!(waiting(&store, BOB), (0, 0));
        // A later message in the same block waits for its own step.
        send_relay(&store, to_bob("LATE", 1), at(limits().ttl_secs), roomy).unwrap();
        assert_eq!(sweep_with(&store, due, 1000), (0, false));
        assert_eq!(messages(&store), 1);
    }

    /// What a receipt names as read through a sent id is its message's record and its
    /// device's inbox entry (their keys end with the number the sent id holds).
    #[test]
    fn a_receipt_names_its_message_and_inbox_entry_through_the_sent_id() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        send(&store, "M", Time::from_millis(1_000_000)).unwrap();
        let r = delivery_receipt("M");
        let through = receipt_reads_through(&Me::new(BOB, 0).unwrap(), &r);
        assert_eq!(
            through.len(),
            4,
            "Alice's and Bob's sent id, two records each"
        );
        let found = store.write_now(move |txn| {
            let mut found = Vec::new();
            for read in &through {
                if let Some(value) = txn.get(read.via.0, &read.via.1)? {
                    let key = [read.prefix.as_slice(), &value].concat();
                    found.push((read.table, txn.get(read.table, &key)?.is_some()));
                }
            }
            Ok(found)
        });
        assert_eq!(found, [(Table::Messages, true), (Table::Inbox, true)]);
    }

    /// A store that notes how many records each write job names as read first, over the
    /// memory store.
    struct Naming {
        store: MemStore,
        reads_ahead: bool,
        named: std::sync::Mutex<Vec<(usize, usize)>>,
    }

    impl crate::store::Store for Naming {
        fn read(
            &self,
            work: &mut dyn FnMut(&mut dyn crate::store::ReadTxn) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            self.store.read(work)
        }

        fn write(&self, job: crate::store::WriteJob) {
            self.named
                .lock()
                .unwrap()
                .push((job.reads().len(), job.reads_through().len()));
            self.store.write(job);
        }

        fn close(&self) {}

        fn reads_ahead(&self) -> bool {
            self.reads_ahead
        }
    }

    /// A relay and a receipt name what they read first to a store that reads ahead (the
    /// sender's and recipient's endpoints, counters and peer record, and whether it was sent
    /// before; the sent ids and counters, and the message and inbox
    /// entry through each sent id), and nothing to one that does not.
    #[test]
    fn jobs_name_what_they_read_first_to_a_store_that_reads_ahead() {
        for reads_ahead in [true, false] {
            let store = Naming {
                store: MemStore::new(),
                reads_ahead,
                named: std::sync::Mutex::new(Vec::new()),
            };
            account(&store.store, ALICE);
            account(&store.store, BOB);
            let now = Time::from_millis(1_000_000);
            let alice = Arc::new(Me::new(ALICE, 0).unwrap());
            let relay_job = relay(
                ReplyTo::Id(1),
                alice,
                to_bob("M", 1),
                now,
                limits(),
                AckOne::OtherDevices,
            );
            crate::job::execute(&store, relay_job, |r| assert!(r.is_ok()));
            let r = delivery_receipt("M");
            let set_limits = SetLimits {
                receipts_secs: 60,
                max_group_size: 10,
                max_groups_per_account: 10,
                max_one_time_keys: 10,
            };
            let bob = Arc::new(Me::new(BOB, 0).unwrap());
            let set_job = set(
                ReplyTo::Id(2),
                bob,
                vec![SetRequest::Receipt(r)],
                now,
                set_limits,
            );
            crate::job::execute(&store, set_job, |r| assert!(r.is_ok()));
            let named = store.named.lock().unwrap().clone();
            let expected = if reads_ahead {
                vec![(7, 0), (3, 4)]
            } else {
                vec![(0, 0), (0, 0)]
            };
            assert_eq!(named, expected, "reads ahead: {reads_ahead}");
            assert_eq!(waiting(&store.store, BOB), (0, 0), "delivered either way");
        }
    }

    /// A transaction over another that counts its range reads, says whether it prefetches,
    /// and notes the tables of the keys it is asked to prefetch.
    struct Watched<'a> {
        txn: &'a mut dyn WriteTxn,
        ranges: usize,
        prefetches: bool,
        prefetched: Vec<Table>,
    }

    impl<'a> Watched<'a> {
        fn over(txn: &'a mut dyn WriteTxn, prefetches: bool) -> Watched<'a> {
            Watched {
                txn,
                ranges: 0,
                prefetches,
                prefetched: Vec::new(),
            }
        }
    }

    impl crate::store::ReadTxn for Watched<'_> {
        fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.txn.get(table, key)
        }

        fn range(
            &mut self,
            table: Table,
            from: &[u8],
            to: &[u8],
            reverse: bool,
            limit: usize,
        ) -> Result<Vec<crate::store::Entry>, StoreError> {
            self.ranges += 1;
            self.txn.range(table, from, to, reverse, limit)
        }

        fn len(&mut self, table: Table) -> Result<u64, StoreError> {
            self.txn.len(table)
        }

        fn prefetch(&mut self, keys: &[(Table, Vec<u8>)]) -> Result<(), StoreError> {
            self.prefetched.extend(keys.iter().map(|(table, _)| *table));
            Ok(())
        }

        fn prefetches(&self) -> bool {
            self.prefetches
        }
    }

    impl WriteTxn for Watched<'_> {
        fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
            self.txn.put(table, key, value)
        }

        fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
            self.txn.delete(table, key)
        }
    }

    /// A receipt names the message, the device's inbox entry and what was given back to a
    /// transaction that prefetches, and nothing to one that does not; it counts the same
    /// either way.
    #[test]
    fn a_receipt_prefetches_only_where_prefetching_does_something() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        let now = Time::from_millis(1_000_000);
        for (id, prefetches) in [("P", true), ("N", false)] {
            send(&store, id, now).unwrap();
            let r = delivery_receipt(id);
            let bob = Me::new(BOB, 0).unwrap();
            let (asked, effects) = store.write_now(move |txn| {
                let mut t = Watched::over(txn, prefetches);
                let effects = receipt(&mut t, &bob, &r, now, 60)?;
                Ok((t.prefetched, effects.len()))
            });
            let expected = if prefetches {
                vec![Table::Messages, Table::Inbox, Table::Counters]
            } else {
                Vec::new()
            };
            assert_eq!(asked, expected, "{id}");
            assert_eq!(effects, 1, "{id}: the sender hears \"delivered\"");
            assert_eq!(waiting(&store, BOB), (0, 0), "{id}");
        }
    }

    /// Makes message `id` to Bob a record of an earlier version: its devices not listed in it
    /// but indexed in [`Table::MsgDevices`].
    fn as_indexed(store: &MemStore, id: &'static str) {
        store.write_now(move |txn| {
            let seq = sent_seq(txn, ALICE, id)?.unwrap();
            let mut record = message(txn, seq)?.unwrap();
            for device in record.devices.take().unwrap() {
                txn.put(Table::MsgDevices, &model::msg_device_key(seq, &device), &[])?;
            }
            put_message(txn, seq, &record)
        });
    }

    /// A receipt for a message to a user reads no range. Kept for receipts as long as it
    /// waited (the default settings), nothing changes when the last device has it, so nobody
    /// looks for other devices; kept for less, the devices the record lists are looked at, and
    /// the expiry moves. A record of an earlier version, which does not list them, scans its
    /// index of them instead.
    #[test]
    fn a_receipt_looks_for_other_devices_only_when_the_last_one_changes_something() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        let now = Time::from_millis(1_000_000);
        let cases = [
            ("A", limits().ttl_secs, false, 0),
            ("B", 60, false, 0),
            ("C", 60, true, 1),
        ];
        for (id, receipts_secs, indexed, scans) in cases {
            send(&store, id, now).unwrap();
            if indexed {
                as_indexed(&store, id);
            }
            let r = delivery_receipt(id);
            let bob = Me::new(BOB, 0).unwrap();
            let (ranges, expires) = store.write_now(move |txn| {
                // (Prefetching nothing, as the embedded stores.)
                let mut counted = Watched::over(txn, false);
                receipt(&mut counted, &bob, &r, now, receipts_secs)?;
                let seq = sent_seq(counted.txn, ALICE, &r.id)?.unwrap();
                Ok((counted.ranges, message(counted.txn, seq)?.unwrap().expires))
            });
            assert_eq!(ranges, scans, "{id}");
            assert_eq!(expires, now.as_secs() + receipts_secs, "{id}");
            assert_eq!(waiting(&store, BOB), (0, 0), "{id}");
        }
        let indexed = store.write_now(|txn| txn.len(Table::MsgDevices));
        assert_eq!(indexed, 0, "the index entries went with their copies");
    }

    /// A message to a user with several devices lists them in its record and indexes none:
    /// the expiry moves when the last of them has it, not before, and the sweep finds the
    /// copies of one that expired through the list.
    #[test]
    fn a_message_to_a_user_lists_its_devices_instead_of_indexing_them() {
        let store = MemStore::new();
        account(&store, ALICE);
        account_with(&store, BOB, &[1, 2]);
        let now = Time::from_millis(1_000_000);
        let bob_device = |device: u8| Me::new(BOB, device).unwrap();
        let to_bobs = |id: &str| {
            let mut relay = to_bob(id, 1);
            let target = relay.targets[0].clone();
            relay.targets = [0, 1, 2]
                .map(|d| RelayTarget {
                    device: bob_device(d).address,
                    ..target.clone()
                })
                .to_vec();
            relay.kind = ContentKind::Text;
            relay
        };
        let tight = RelayLimits {
            max_pending_bytes_per_account: u64::MAX,
            ..limits()
        };
        send_relay(&store, to_bobs("D"), now, tight).unwrap();
        send_relay(&store, to_bobs("E"), now, tight).unwrap();
        let (indexed, queued) =
            store.write_now(|txn| Ok((txn.len(Table::MsgDevices)?, txn.len(Table::Inbox)?)));
        assert_eq!((indexed, queued), (0, 6));
        let expires = |id: &'static str| {
            store.write_now(move |txn| {
                let seq = sent_seq(txn, ALICE, id)?.unwrap();
                Ok(message(txn, seq)?.unwrap().expires)
            })
        };
        let stored_until = expires("D");
        for (device, last) in [(0, false), (2, false), (1, true)] {
            let r = delivery_receipt("D");
            let me = bob_device(device);
            store.write_now(move |txn| receipt(txn, &me, &r, now, 60));
            let moved = expires("D") != stored_until;
            assert_eq!(moved, last, "after device {device}");
        }
        assert_eq!(expires("D"), now.as_secs() + 60);
        // E waits on all three until it expires; the sweep takes its copies.
        assert_eq!(waiting(&store, BOB).0, 3 * BODY as u64);
        sweep_at(
            &store,
            now + std::time::Duration::from_secs(limits().ttl_secs + model::EXPIRY_STEP),
        );
        let queued = store.write_now(|txn| txn.len(Table::Inbox));
        assert_eq!(queued, 0);
        assert_eq!(waiting(&store, BOB), (0, 0));
    }

    /// "Delivered" is not written in a record that lists its devices: a listed device of the
    /// account without its entry got the message. Ticks still go once each across the
    /// account's devices, and a device dropped without the message (unlinked) neither counts
    /// as one that got it nor may count its receipts.
    #[test]
    fn delivered_is_told_by_the_entries_of_the_listed_devices() {
        let store = MemStore::new();
        account(&store, ALICE);
        account_with(&store, BOB, &[1]);
        let now = Time::from_millis(1_000_000);
        let to_both = |id: &str| {
            let mut relay = to_bob(id, 1);
            let target = relay.targets[0].clone();
            relay.targets = [0, 1]
                .map(|d| RelayTarget {
                    device: Me::new(BOB, d).unwrap().address,
                    ..target.clone()
                })
                .to_vec();
            relay
        };
        let roomy = RelayLimits {
            max_pending_bytes_per_account: u64::MAX,
            ..limits()
        };
        let levels = |device: u8, kind: ReceiptKind, id: &str| {
            let me = Me::new(BOB, device).unwrap();
            let r = Receipt {
                kind,
                chat: Me::new(ALICE, 0).unwrap().user,
                id: id.to_owned(),
                participant: None,
            };
            store
                .write_now(move |txn| receipt(txn, &me, &r, now, 1000))
                .into_iter()
                .map(|(_, push)| match push {
                    Push::Ack(ack) => ack.level,
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<u8>>()
        };
        let slot = |id: &'static str| {
            store.write_now(move |txn| {
                let seq = sent_seq(txn, ALICE, id)?.unwrap();
                Ok(message(txn, seq)?.unwrap().receipt)
            })
        };
        let unlink_web = || {
            store.write_now(|txn| model::drop_inbox(txn, &Me::new(BOB, 1).unwrap().address));
        };

        // The web device gets it first: tick 2, and nothing written.
        send_relay(&store, to_both("M1"), now, roomy).unwrap();
        assert_eq!(levels(1, ReceiptKind::Delivered, "M1"), [2]);
        assert_eq!(slot("M1"), ReceiptSlot::Inline(None));
        // The phone too: no second tick 2; its receipt again, nothing.
        assert_eq!(levels(0, ReceiptKind::Delivered, "M1"), [0u8; 0]);
        assert_eq!(levels(1, ReceiptKind::Delivered, "M1"), [0u8; 0]);
        // Read, once: written.
        assert_eq!(levels(0, ReceiptKind::Read, "M1"), [3]);
        assert_eq!(slot("M1"), ReceiptSlot::Inline(Some(ReceiptState::Read)));
        assert_eq!(levels(1, ReceiptKind::Read, "M1"), [0u8; 0]);

        // The web device is unlinked before it got M2: the phone's receipt is the first.
        send_relay(&store, to_both("M2"), now, roomy).unwrap();
        unlink_web();
        assert_eq!(levels(0, ReceiptKind::Delivered, "M2"), [2]);

        // Unlinked before it got M3: a read in its name counts for nothing (nobody got it),
        // and the phone's first receipt still ticks 2.
        send_relay(&store, to_both("M3"), now, roomy).unwrap();
        unlink_web();
        assert_eq!(levels(1, ReceiptKind::Read, "M3"), [0u8; 0]);
        assert_eq!(levels(0, ReceiptKind::Read, "M3"), [2, 3]);
        assert_eq!(waiting(&store, BOB), (0, 0));
    }

    /// A device with `max_pending_per_device` messages waiting takes no more until it gets
    /// one, counted as messages are queued and given back (no inbox is scanned).
    #[test]
    fn the_per_device_quota_counts_what_waits() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        let now = Time::from_millis(1_000_000);
        let tight = || RelayLimits {
            max_pending_per_device: 2,
            max_pending_bytes_per_account: u64::MAX,
            ..limits()
        };
        for round in 0..2 {
            for i in 0..2 {
                send_relay(&store, to_bob(&format!("R{round}M{i}"), 1), now, tight()).unwrap();
            }
            assert_eq!(waiting(&store, BOB).1, 2);
            let full = send_relay(&store, to_bob(&format!("R{round}FULL"), 1), now, tight());
            assert_eq!(full, Err(507));
            delivered(&store, &format!("R{round}M0"), now);
            assert_eq!(waiting(&store, BOB).1, 1);
            // A receipt again for the same message gives nothing back twice.
            delivered(&store, &format!("R{round}M0"), now);
            assert_eq!(waiting(&store, BOB).1, 1);
            send_relay(&store, to_bob(&format!("R{round}M2"), 1), now, tight()).unwrap();
            for i in 1..3 {
                delivered(&store, &format!("R{round}M{i}"), now);
            }
            assert_eq!(waiting(&store, BOB), (0, 0), "round {round}");
        }
        // The sweep gives back what expires undelivered.
        for i in 0..2 {
            send_relay(&store, to_bob(&format!("OLD{i}"), 1), now, tight()).unwrap();
        }
        let later = Time::from_millis(now.as_millis() + 2_000_000);
        sweep_at(&store, later);
        assert_eq!(waiting(&store, BOB), (0, 0));
        send_relay(&store, to_bob("NEW", 1), later, tight()).unwrap();
    }

    /// A relay that names a device twice is refused: it would be queued once and counted
    /// twice against the quotas, which nothing would give back.
    #[test]
    fn a_device_named_twice_is_refused() {
        let store = MemStore::new();
        account(&store, ALICE);
        account(&store, BOB);
        let now = Time::from_millis(1_000_000);
        assert_eq!(
            send_relay(&store, to_bob("TWICE", 2), now, limits()),
            Err(400)
        );
        assert_eq!(waiting(&store, BOB), (0, 0));
    }

    /// Ticks 2 and 3 go to the sender once each, whether the recipient's state is in the
    /// message's record (this version) or in the receipts table (records of earlier ones).
    #[test]
    fn receipts_tick_once_each_wherever_the_state_is_kept() {
        for legacy in [false, true] {
            let store = MemStore::new();
            account(&store, ALICE);
            account(&store, BOB);
            let now = Time::from_millis(1_000_000);
            send(&store, "M", now).unwrap();
            if legacy {
                store.write_now(|txn| {
                    let seq = sent_seq(txn, ALICE, "M")?.unwrap();
                    let mut record = message(txn, seq)?.unwrap();
                    record.receipt = ReceiptSlot::InTable;
                    for device in record.devices.take().unwrap() {
                        txn.put(Table::MsgDevices, &model::msg_device_key(seq, &device), &[])?;
                    }
                    put_message(txn, seq, &record)
                });
            }
            let levels = |kind: ReceiptKind| {
                let bob = Me::new(BOB, 0).unwrap();
                let r = Receipt {
                    kind,
                    chat: Me::new(ALICE, 0).unwrap().user,
                    id: "M".to_owned(),
                    participant: None,
                };
                let effects = store.write_now(move |txn| receipt(txn, &bob, &r, now, 1000));
                effects
                    .into_iter()
                    .map(|(_, push)| match push {
                        Push::Ack(ack) => ack.level,
                        other => panic!("{other:?}"),
                    })
                    .collect::<Vec<u8>>()
            };
            assert_eq!(levels(ReceiptKind::Delivered), [2], "legacy {legacy}");
            if !legacy {
                // Told by the phone's entry being gone, not written.
                let slot = store.write_now(|txn| {
                    let seq = sent_seq(txn, ALICE, "M")?.unwrap();
                    Ok(message(txn, seq)?.unwrap().receipt)
                });
                assert_eq!(slot, ReceiptSlot::Inline(None));
            }
            assert_eq!(levels(ReceiptKind::Delivered), [0u8; 0]);
            assert_eq!(levels(ReceiptKind::Read), [3]);
            assert_eq!(levels(ReceiptKind::Read), [0u8; 0]);
            assert_eq!(levels(ReceiptKind::Played), [0u8; 0]);
            let in_table = store.write_now(|txn| txn.len(Table::Receipts));
            assert_eq!(in_table, u64::from(legacy));
        }
    }

    #[test]
    fn counters_read_back_in_every_form() {
        let mut counters = model::Counters {
            queued_bytes: 1 << 40,
            day: 20_000,
            sent_bytes: 12_345,
            queued_entries: model::DeviceCounts::default(),
        };
        for (device, n) in [(3, 7), (0, 1 << 33), (3, 1)] {
            counters.queued_entries.add(device, n);
        }
        let back = model::Counters::from_bytes(&counters.to_bytes()).unwrap();
        assert_eq!(
            (back.queued_bytes, back.day, back.sent_bytes),
            (1 << 40, 20_000, 12_345)
        );
        assert_eq!(back.queued_entries, counters.queued_entries);
        assert_eq!(
            (
                back.queued_entries.get(0),
                back.queued_entries.get(3),
                back.queued_entries.get(1)
            ),
            (1 << 33, 8, 0)
        );
        // Version 1: the same without entry counts.
        let mut v1 = counters.to_bytes()[..25].to_vec();
        v1[0] = 1;
        let old = model::Counters::from_bytes(&v1).unwrap();
        assert_eq!((old.sent_bytes, old.queued_entries.get(0)), (12_345, 0));
        let json = serde_json::to_vec(&counters).unwrap();
        let legacy = model::Counters::from_bytes(&json).unwrap();
        assert_eq!(legacy.sent_bytes, 12_345);
        let bytes = counters.to_bytes();
        for cut in 0..bytes.len() {
            assert!(model::Counters::from_bytes(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(model::Counters::from_bytes(&longer).is_err());
    }
}
