//! Groups: create, add, remove, promote, demote, subject, leave; every member's devices hear
//! of each change (`["Chat",{"id":gid,"cmd":"action","data":[op,author,[participants]]}]`).
//!
//! Admins may change membership and admin rights; any member may change the subject or
//! leave. The creator starts as the only admin; when the last admin leaves, the longest-standing
//! member becomes one; a group nobody is in any more is deleted.

use std::sync::Arc;

use crate::error::Refusal;
use crate::hub::{GroupNote, Push};
use crate::jid::{ChatJid, user_jid};
use crate::model::{self, ChatRecord, GroupRecord, Member, chat_key, group_key};
use crate::relay::Me;
use crate::shared::{Shared, now_secs};
use crate::store::{self, Table, WriteTxn};

/// A group operation as a client asks for it.
#[derive(Debug, Clone)]
pub(crate) struct GroupRequest {
    /// `create`, `add`, `remove`, `promote`, `demote`, `subject` or `leave`.
    pub(crate) op: String,
    /// The group (all but `create`).
    pub(crate) jid: Option<String>,
    /// The subject (`create`, `subject`).
    pub(crate) subject: Option<String>,
    /// User JIDs.
    pub(crate) participants: Vec<String>,
}

const MAX_SUBJECT: usize = 100;

impl Shared {
    /// Carries out a group operation for `me`; returns the new group's JID for `create`.
    pub(crate) async fn group(
        &self,
        me: &Me,
        request: GroupRequest,
    ) -> Result<Option<String>, Refusal> {
        let mut numbers = Vec::new();
        for p in &request.participants {
            match ChatJid::parse(p) {
                Some(ChatJid::User(n)) if n != me.number && !numbers.contains(&n) => {
                    numbers.push(n)
                }
                Some(ChatJid::User(_)) => {}
                _ => return Err(Refusal::bad_request("participants are user JIDs")),
            }
        }
        let subject = request
            .subject
            .as_deref()
            .map(|s| s.chars().take(MAX_SUBJECT).collect::<String>());
        let gid = match (&request.op[..], &request.jid) {
            ("create", _) => None,
            (_, Some(jid)) => match ChatJid::parse(jid) {
                Some(ChatJid::Group(g)) => Some(g),
                _ => return Err(Refusal::bad_request("not a group JID")),
            },
            (_, None) => return Err(Refusal::bad_request("which group?")),
        };
        let max = self.config.limits.max_group_size;
        let op = request.op.clone();
        let author = me.number.clone();
        let (gid, notify, note) = store::write(&*self.store, move |txn| {
            apply(
                txn,
                &op,
                &author,
                gid.as_deref(),
                subject.as_deref(),
                &numbers,
                max,
            )
        })
        .await??;
        let note = Arc::new(note);
        for number in &notify {
            self.hub
                .push_account(number, None, || Push::Group(Arc::clone(&note)));
        }
        tracing::debug!(group = %gid, op = %request.op, by = %me.number, "group changed");
        Ok((request.op == "create").then_some(gid))
    }

    /// A group's metadata, for `["query","GroupMetadata",jid]`: only for members.
    pub(crate) fn group_metadata(&self, me: &Me, jid: &str) -> Result<serde_json::Value, Refusal> {
        let Some(ChatJid::Group(g)) = ChatJid::parse(jid) else {
            return Err(Refusal::bad_request("not a group JID"));
        };
        let group = store::read(&*self.store, |txn| model::group(txn, &g))?
            .ok_or_else(|| Refusal::not_found("no such group"))?;
        if group.member(&me.number).is_none() {
            return Err(Refusal::forbidden("not a member of the group"));
        }
        Ok(serde_json::json!({
            "status": 200,
            "id": group.jid,
            "owner": user_jid(&group.creator),
            "subject": group.subject,
            "creation": group.created,
            "participants": group.participants.iter().map(|m| serde_json::json!({
                "id": user_jid(&m.number),
                "isAdmin": m.admin,
                "isSuperAdmin": m.admin && m.number == group.creator,
            })).collect::<Vec<_>>(),
        }))
    }
}

type Outcome = Result<(String, Vec<String>, GroupNote), Refusal>;

fn apply(
    txn: &mut dyn WriteTxn,
    op: &str,
    author: &str,
    gid: Option<&str>,
    subject: Option<&str>,
    numbers: &[String],
    max: usize,
) -> Result<Outcome, store::StoreError> {
    let now = now_secs();
    let note = |jid: &str, participants: &[String], subject: Option<&str>| GroupNote {
        jid: jid.to_owned(),
        op: op.to_owned(),
        author: user_jid(author),
        participants: participants.iter().map(|n| user_jid(n)).collect(),
        subject: subject.map(str::to_owned),
    };
    if op == "create" {
        let Some(subject) = subject.filter(|s| !s.trim().is_empty()) else {
            return Ok(Err(Refusal::bad_request("a group needs a subject")));
        };
        if numbers.is_empty() {
            return Ok(Err(Refusal::bad_request("a group needs participants")));
        }
        if numbers.len() + 1 > max {
            return Ok(Err(Refusal::new(406, "too many participants")));
        }
        for n in numbers {
            if model::account(txn, n)?.is_none() {
                return Ok(Err(Refusal::not_found(format!("no account {n}"))));
            }
        }
        let mut secs = now;
        let gid = loop {
            let gid = format!("{author}-{secs}@g.us");
            if model::group(txn, &gid)?.is_none() {
                break gid;
            }
            secs += 1;
        };
        let participants: Vec<Member> = std::iter::once(Member {
            number: author.to_owned(),
            admin: true,
        })
        .chain(numbers.iter().map(|n| Member {
            number: n.clone(),
            admin: false,
        }))
        .collect();
        let group = GroupRecord {
            jid: gid.clone(),
            subject: subject.to_owned(),
            creator: author.to_owned(),
            created: now,
            participants,
        };
        let members: Vec<String> = group
            .participants
            .iter()
            .map(|m| m.number.clone())
            .collect();
        for m in &members {
            touch_chat(txn, m, &gid, subject, now)?;
        }
        model::put_json(txn, Table::Groups, &group_key(&gid), &group)?;
        let note = note(&gid, &members, Some(subject));
        return Ok(Ok((gid, members, note)));
    }
    let Some(gid) = gid else {
        return Ok(Err(Refusal::bad_request("which group?")));
    };
    let Some(mut group) = model::group(txn, gid)? else {
        return Ok(Err(Refusal::not_found("no such group")));
    };
    if group.member(author).is_none() {
        return Ok(Err(Refusal::forbidden("not a member of the group")));
    }
    let admin_only = matches!(op, "add" | "remove" | "promote" | "demote");
    if admin_only && !group.is_admin(author) {
        return Ok(Err(Refusal::forbidden("only admins can do that")));
    }
    if admin_only && numbers.is_empty() {
        return Ok(Err(Refusal::bad_request("no participants")));
    }
    let before: Vec<String> = group
        .participants
        .iter()
        .map(|m| m.number.clone())
        .collect();
    let (changed, subject_out): (Vec<String>, Option<String>) = match op {
        "add" => {
            let mut added = Vec::new();
            for n in numbers {
                if group.member(n).is_some() {
                    continue;
                }
                if model::account(txn, n)?.is_none() {
                    return Ok(Err(Refusal::not_found(format!("no account {n}"))));
                }
                added.push(n.clone());
            }
            if group.participants.len() + added.len() > max {
                return Ok(Err(Refusal::new(406, "too many participants")));
            }
            for n in &added {
                group.participants.push(Member {
                    number: n.clone(),
                    admin: false,
                });
                touch_chat(txn, n, gid, &group.subject, now)?;
            }
            (added, None)
        }
        "remove" => {
            let removed: Vec<String> = numbers
                .iter()
                .filter(|n| group.member(n).is_some())
                .cloned()
                .collect();
            group.participants.retain(|m| !removed.contains(&m.number));
            (removed, None)
        }
        "promote" | "demote" => {
            let admin = op == "promote";
            let mut changed = Vec::new();
            for m in group.participants.iter_mut() {
                if numbers.contains(&m.number) && m.admin != admin {
                    m.admin = admin;
                    changed.push(m.number.clone());
                }
            }
            (changed, None)
        }
        "subject" => {
            let Some(subject) = subject.filter(|s| !s.trim().is_empty()) else {
                return Ok(Err(Refusal::bad_request("no subject")));
            };
            group.subject = subject.to_owned();
            for m in &before {
                touch_chat(txn, m, gid, subject, now)?;
            }
            (Vec::new(), Some(subject.to_owned()))
        }
        "leave" => {
            group.participants.retain(|m| m.number != author);
            (vec![author.to_owned()], None)
        }
        _ => return Ok(Err(Refusal::bad_request("unknown group operation"))),
    };
    if !group.participants.iter().any(|m| m.admin)
        && let Some(first) = group.participants.first_mut()
    {
        first.admin = true;
    }
    if group.participants.is_empty() {
        txn.delete(Table::Groups, &group_key(gid))?;
    } else {
        model::put_json(txn, Table::Groups, &group_key(gid), &group)?;
    }
    let mut notify = before;
    for m in &group.participants {
        if !notify.contains(&m.number) {
            notify.push(m.number.clone());
        }
    }
    let note = note(gid, &changed, subject_out.as_deref());
    Ok(Ok((gid.to_owned(), notify, note)))
}

/// Puts the group in a member's chat list (or renames it there).
fn touch_chat(
    txn: &mut dyn WriteTxn,
    number: &str,
    gid: &str,
    subject: &str,
    now: u64,
) -> Result<(), store::StoreError> {
    let key = chat_key(number, gid);
    let mut chat: ChatRecord = model::get_json(txn, Table::Chats, &key)?.unwrap_or_default();
    chat.name = Some(subject.to_owned());
    chat.t = chat.t.max(now);
    model::put_json(txn, Table::Chats, &key, &chat)
}
