//! The key directory: devices publish their one-time keys; senders list a user's devices and
//! claim one key per device to start a session. The directory hands out public keys only; it
//! learns nothing that would let it read a message.

use wa_wire::Jid;
use wa_wire::ids::{device_of, number_of, user_of};
use wa_wire::keys::{Claimed, DeviceInfo, DeviceList, KeyUpload, OneTimeKey, PreKeyBundle};
use wa_wire::msg::Notification;

use super::{Done, Effects, Me, ReplyTo};
use crate::action::{Push, Target};
use crate::job::{Job, Outcome, Refusal};
use crate::model::{self, device_key, get_json, put_json};
use crate::store::{KeyBuf, ReadTxn, StoreError, Table, WriteTxn};

fn otk_key(number: &str, device: u8, id: &str) -> Vec<u8> {
    KeyBuf::new()
        .str(number)
        .u64(u64::from(device))
        .str(id)
        .build()
}

/// A device publishes keys; the answer is how many one-time keys it has in the directory.
pub(crate) fn upload(
    txn: &mut dyn WriteTxn,
    me: &Me,
    upload: &KeyUpload,
    max_keys: u32,
) -> Result<Result<u32, Refusal>, StoreError> {
    let Some(mut device) = model::device(txn, &me.number, me.device)? else {
        return Ok(Err(Refusal::new(401, "no such device")));
    };
    if device.identity != Some(upload.identity) {
        return Ok(Err(Refusal::forbidden(
            "these identity keys are not the ones this device was registered or linked with",
        )));
    }
    for key in &upload.one_time_keys {
        if device.one_time_keys >= max_keys {
            break;
        }
        let k = otk_key(&me.number, me.device, &key.id);
        if txn.get(Table::OneTimeKeys, &k)?.is_none() {
            put_json(txn, Table::OneTimeKeys, &k, key)?;
            device.one_time_keys += 1;
        }
    }
    if let Some(fallback) = &upload.fallback {
        device.fallback_key = Some(fallback.clone());
    }
    model::put_device(txn, &device)?;
    Ok(Ok(device.one_time_keys))
}

/// The devices senders encrypt for, per user.
pub(crate) fn device_lists(reply_to: ReplyTo, users: Vec<Jid>) -> Job {
    Job::read("device lists", move |txn| {
        let mut lists = Vec::with_capacity(users.len());
        for user in &users {
            lists.push(list(txn, user)?);
        }
        Ok(Outcome(Done::Devices {
            reply_to: reply_to.clone(),
            lists,
        }))
    })
}

/// One user's devices (none when it has no account).
pub(crate) fn list(txn: &mut dyn ReadTxn, user: &Jid) -> Result<DeviceList, StoreError> {
    let user = user_of(user);
    let mut devices = Vec::new();
    if let Some(number) = number_of(&user)
        && let Some(account) = model::account(txn, number)?
    {
        for record in model::endpoints(txn, &account)? {
            if let Some(identity) = record.identity {
                devices.push(DeviceInfo {
                    device: record.address(),
                    identity,
                    attestation: record.attestation,
                });
            }
        }
    }
    Ok(DeviceList { user, devices })
}

/// Claims one one-time key (or the fallback key) of each device. A device left with few keys is
/// told to upload more.
pub(crate) fn claim(reply_to: ReplyTo, devices: Vec<Jid>, low: u32) -> Job {
    Job::write("claim keys", move |txn| {
        let mut claimed = Vec::with_capacity(devices.len());
        let mut effects = Effects::new();
        for device in &devices {
            let (answer, left) = claim_one(txn, device)?;
            if let Some(left) = left
                && left < low
            {
                effects.push((
                    Target::Device(device.clone()),
                    Push::Notification(Notification::PreKeys { count: left }),
                ));
            }
            claimed.push(answer);
        }
        Ok(Outcome(Done::PreKeys {
            reply_to: reply_to.clone(),
            claimed,
            effects,
        }))
    })
}

fn claim_one(txn: &mut dyn WriteTxn, device: &Jid) -> Result<(Claimed, Option<u32>), StoreError> {
    let missing = || Claimed::Missing {
        device: device.clone(),
    };
    let Some(number) = number_of(device) else {
        return Ok((missing(), None));
    };
    let Some(mut record) = model::device(txn, number, device_of(device))? else {
        return Ok((missing(), None));
    };
    let Some(identity) = record.identity.filter(|_| record.is_endpoint()) else {
        return Ok((missing(), None));
    };
    let prefix = device_key(number, record.device);
    let first = model::scan(txn, Table::OneTimeKeys, &prefix, 1)?
        .into_iter()
        .next();
    let (one_time_key, fallback) = match first {
        Some((key, _)) => {
            let Some(otk) = get_json::<OneTimeKey>(txn, Table::OneTimeKeys, &key)? else {
                return Ok((missing(), None));
            };
            txn.delete(Table::OneTimeKeys, &key)?;
            record.one_time_keys = record.one_time_keys.saturating_sub(1);
            model::put_device(txn, &record)?;
            (otk, false)
        }
        None => match record.fallback_key.clone() {
            Some(fallback) => (fallback, true),
            None => return Ok((missing(), Some(0))),
        },
    };
    Ok((
        Claimed::Bundle(PreKeyBundle {
            device: device.clone(),
            identity,
            one_time_key,
            fallback,
        }),
        Some(record.one_time_keys),
    ))
}
