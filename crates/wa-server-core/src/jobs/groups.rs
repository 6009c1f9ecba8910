//! Groups: create, add, remove, promote, demote, subject, leave, and their metadata. Every
//! member (before and after the change) hears of it; members re-key their group sessions on a
//! membership change, so a removed member cannot read what follows.

use wa_wire::Jid;
use wa_wire::ids::{number_of, user_jid};
use wa_wire::json::{GroupMetadata, Participant};
use wa_wire::msg::{GroupAction, GroupNotice, GroupOp};

use super::relay::SetLimits;
use super::{Done, Effects, Me, ReplyTo};
use crate::action::{Push, Target};
use crate::job::{Job, Outcome, Refusal};
use crate::model::{self, GroupRecord, Member, group_key, member_group_key, put_json};
use crate::store::{StoreError, Table, WriteTxn};
use wa_wire::Time;

/// Longest subject kept, in characters.
const MAX_SUBJECT: usize = 100;

fn add_member(txn: &mut dyn WriteTxn, number: &str, gid: &Jid) -> Result<(), StoreError> {
    txn.put(Table::MemberGroups, &member_group_key(number, gid), &[])
}

fn drop_member(txn: &mut dyn WriteTxn, number: &str, gid: &Jid) -> Result<(), StoreError> {
    txn.delete(Table::MemberGroups, &member_group_key(number, gid))
        .map(drop)
}

/// Applies a group operation by `me`: the created group (for create) and the notices.
pub(crate) fn apply(
    txn: &mut dyn WriteTxn,
    me: &Me,
    action: &GroupAction,
    now: Time,
    limits: SetLimits,
) -> Result<Result<(Option<Jid>, Effects), Refusal>, StoreError> {
    let t = now.as_secs();
    let mut numbers: Vec<String> = Vec::new();
    for p in &action.participants {
        match number_of(p) {
            Some(n) if n != me.number && !numbers.iter().any(|x| x == n) => {
                numbers.push(n.to_owned())
            }
            Some(_) => {}
            None => return Ok(Err(Refusal::bad_request("participants are users"))),
        }
    }
    let subject = action
        .subject
        .as_deref()
        .map(|s| s.chars().take(MAX_SUBJECT).collect::<String>());
    let notice = |gid: &Jid, participants: &[String], subject: Option<String>| GroupNotice {
        group: gid.clone(),
        op: action.op,
        author: me.user.clone(),
        participants: participants
            .iter()
            .filter_map(|n| user_jid(n).ok())
            .collect(),
        subject,
    };
    let notify = |members: &[String], notice: &GroupNotice| -> Effects {
        members
            .iter()
            .map(|n| {
                (
                    Target::Account {
                        number: n.clone(),
                        except: None,
                    },
                    Push::Group(notice.clone()),
                )
            })
            .collect()
    };
    if action.op == GroupOp::Create {
        let Some(subject) = subject.filter(|s| !s.trim().is_empty()) else {
            return Ok(Err(Refusal::bad_request("a group needs a subject")));
        };
        if numbers.is_empty() {
            return Ok(Err(Refusal::bad_request("a group needs participants")));
        }
        if numbers.len() + 1 > limits.max_group_size {
            return Ok(Err(Refusal::new(406, "too many participants")));
        }
        for n in numbers.iter().chain(std::iter::once(&me.number)) {
            if model::account(txn, n)?.is_none() {
                return Ok(Err(Refusal::not_found(format!("no account {n}"))));
            }
            if model::groups_of(txn, n, limits.max_groups_per_account)?.len()
                >= limits.max_groups_per_account
            {
                return Ok(Err(Refusal::new(406, format!("{n} is in too many groups"))));
            }
        }
        let mut secs = t;
        let gid = loop {
            let gid: Jid = format!("{}-{secs}@g.us", me.number)
                .parse()
                .map_err(|e: wa_binary::JidError| StoreError::Backend(e.to_string()))?;
            if model::group(txn, &gid)?.is_none() {
                break gid;
            }
            secs += 1;
        };
        let participants: Vec<Member> = std::iter::once(Member {
            number: me.number.clone(),
            admin: true,
        })
        .chain(numbers.iter().map(|n| Member {
            number: n.clone(),
            admin: false,
        }))
        .collect();
        let members: Vec<String> = participants.iter().map(|m| m.number.clone()).collect();
        for m in &members {
            add_member(txn, m, &gid)?;
        }
        let group = GroupRecord {
            jid: gid.clone(),
            subject: subject.clone(),
            creator: me.number.clone(),
            created: t,
            participants,
        };
        put_json(txn, Table::Groups, &group_key(&gid), &group)?;
        let notice = notice(&gid, &members, Some(subject));
        return Ok(Ok((Some(gid), notify(&members, &notice))));
    }
    let Some(gid) = action.group.clone() else {
        return Ok(Err(Refusal::bad_request("which group?")));
    };
    let Some(mut group) = model::group(txn, &gid)? else {
        return Ok(Err(Refusal::not_found("no such group")));
    };
    if group.member(&me.number).is_none() {
        return Ok(Err(Refusal::forbidden("not a member of the group")));
    }
    let admin_only = matches!(
        action.op,
        GroupOp::Add | GroupOp::Remove | GroupOp::Promote | GroupOp::Demote
    );
    if admin_only && !group.is_admin(&me.number) {
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
    let (changed, new_subject) = match action.op {
        GroupOp::Add => {
            let mut added = Vec::new();
            for n in &numbers {
                if group.member(n).is_some() {
                    continue;
                }
                if model::account(txn, n)?.is_none() {
                    return Ok(Err(Refusal::not_found(format!("no account {n}"))));
                }
                if model::groups_of(txn, n, limits.max_groups_per_account)?.len()
                    >= limits.max_groups_per_account
                {
                    return Ok(Err(Refusal::new(406, format!("{n} is in too many groups"))));
                }
                added.push(n.clone());
            }
            if group.participants.len() + added.len() > limits.max_group_size {
                return Ok(Err(Refusal::new(406, "too many participants")));
            }
            for n in &added {
                group.participants.push(Member {
                    number: n.clone(),
                    admin: false,
                });
                add_member(txn, n, &gid)?;
            }
            (added, None)
        }
        GroupOp::Remove => {
            let removed: Vec<String> = numbers
                .iter()
                .filter(|n| group.member(n).is_some())
                .cloned()
                .collect();
            group.participants.retain(|m| !removed.contains(&m.number));
            for n in &removed {
                drop_member(txn, n, &gid)?;
            }
            (removed, None)
        }
        GroupOp::Promote | GroupOp::Demote => {
            let admin = action.op == GroupOp::Promote;
            let mut changed = Vec::new();
            for m in &mut group.participants {
                if numbers.contains(&m.number) && m.admin != admin {
                    m.admin = admin;
                    changed.push(m.number.clone());
                }
            }
            (changed, None)
        }
        GroupOp::Subject => {
            let Some(subject) = subject.filter(|s| !s.trim().is_empty()) else {
                return Ok(Err(Refusal::bad_request("no subject")));
            };
            group.subject.clone_from(&subject);
            (Vec::new(), Some(subject))
        }
        GroupOp::Leave => {
            group.participants.retain(|m| m.number != me.number);
            drop_member(txn, &me.number, &gid)?;
            (vec![me.number.clone()], None)
        }
        GroupOp::Create => return Ok(Err(Refusal::bad_request("unreachable"))),
    };
    // A group keeps an admin: the first member inherits when the last one leaves.
    if !group.participants.iter().any(|m| m.admin)
        && let Some(first) = group.participants.first_mut()
    {
        first.admin = true;
    }
    if group.participants.is_empty() {
        txn.delete(Table::Groups, &group_key(&gid))?;
    } else {
        put_json(txn, Table::Groups, &group_key(&gid), &group)?;
    }
    let mut everyone = before;
    for m in &group.participants {
        if !everyone.contains(&m.number) {
            everyone.push(m.number.clone());
        }
    }
    let notice = notice(&gid, &changed, new_subject);
    Ok(Ok((None, notify(&everyone, &notice))))
}

/// A group's subject and members, for a member.
pub(crate) fn metadata(reply_to: ReplyTo, me: std::sync::Arc<Me>, gid: Jid) -> Job {
    Job::read("group metadata", move |txn| {
        let result = match model::group(txn, &gid)? {
            None => Err(Refusal::not_found("no such group")),
            Some(group) if group.member(&me.number).is_none() => {
                Err(Refusal::forbidden("not a member of the group"))
            }
            Some(group) => Ok(GroupMetadata {
                id: group.jid.clone(),
                owner: user_jid(&group.creator).map_err(|e| StoreError::Backend(e.to_string()))?,
                subject: group.subject.clone(),
                creation: group.created,
                participants: group
                    .participants
                    .iter()
                    .filter_map(|m| {
                        Some(Participant {
                            jid: user_jid(&m.number).ok()?,
                            is_admin: m.admin,
                        })
                    })
                    .collect(),
            }),
        };
        Ok(Outcome(Done::GroupMetadata {
            reply_to: reply_to.clone(),
            result: result.map(Box::new),
        }))
    })
}
