//! Accounts and devices: registration with a verification code, the phone's login, linking a
//! web client by QR code, logging in with tokens, the challenge, logging out and unlinking.
//!
//! **Architecture Invariant:** an account belongs to the phone whose identity key proved a
//! verification code; only that phone (having signed a fresh challenge) approves QR codes, and a
//! client id belongs to one device of one account: a link for a client id that is already linked
//! is refused.

use wa_wire::Jid;
use wa_wire::ids::{device_jid, user_jid};
use wa_wire::keys::{IdentityKeys, Signature, attestation_message};
use wa_wire::link::QrCode;
use wa_wire::msg::Notification;
use wa_wire::phone::{LinkedDevice, MirrorLink, PhoneInfo, Ready};
use zeroize::Zeroizing;

use super::{
    Done, Effects, Grant, LoginRefused, Me, ReplyTo, Tokens, token_hash, token_matches,
    verify_signature,
};
use crate::action::{DisconnectKind, LinkApproval, Push, Target};
use crate::job::{Job, Outcome, Refusal};
use crate::model::{
    self, AccountRecord, CodeRecord, DeviceMode, DeviceRecord, FrameKeys, RefRecord, TokenHashes,
    account, client, client_key, get_json, put_json, ref_key,
};
use crate::store::{StoreError, Table, WriteTxn};
use wa_wire::Time;

fn outcome(done: Done) -> Result<Outcome, StoreError> {
    Ok(Outcome(done))
}

/// Stores a fresh QR ref for a waiting web client, then `reply` goes out under `tag`. A reref
/// passes the ref it replaces, which is forgotten.
pub(crate) fn store_ref(
    tag: String,
    reply: serde_json::Value,
    r: String,
    record: RefRecord,
    replaced: Option<String>,
) -> Job {
    Job::write("store ref", move |txn| {
        if let Some(old) = &replaced {
            txn.delete(Table::Refs, &ref_key(old))?;
        }
        model::put_expiring(txn, Table::Refs, &ref_key(&r), &record, record.expires)?;
        outcome(Done::RefStored {
            tag: tag.clone(),
            reply: reply.clone(),
            r#ref: r.clone(),
        })
    })
}

/// Forgets a ref (the connection went away or logged in otherwise).
pub(crate) fn forget_ref(r: String) -> Job {
    Job::write("forget ref", move |txn| {
        txn.delete(Table::Refs, &ref_key(&r))?;
        outcome(Done::Swept {
            messages: 0,
            more: false,
            effects: Vec::new(),
        })
    })
}

/// The phone of `number` approves the QR code a web client shows.
pub(crate) fn approve_link(
    id: u64,
    number: String,
    qr: QrCode,
    attestation: Option<Signature>,
    mirror: Option<MirrorLink>,
    now: Time,
) -> Job {
    Job::write("approve link", move |txn| {
        let result = approve(
            txn,
            &number,
            &qr,
            attestation.as_ref(),
            mirror.as_ref(),
            now,
        )?;
        outcome(Done::LinkApproved { id, result })
    })
}

fn approve(
    txn: &mut dyn WriteTxn,
    number: &str,
    qr: &QrCode,
    attestation: Option<&Signature>,
    mirror: Option<&MirrorLink>,
    now: Time,
) -> Result<Result<(String, Effects), Refusal>, StoreError> {
    let key = ref_key(&qr.r#ref);
    let Some(mut record) = get_json::<RefRecord>(txn, Table::Refs, &key)? else {
        return Ok(Err(Refusal::not_found("unknown or expired QR code")));
    };
    if record.expires < now.as_millis() {
        return Ok(Err(Refusal::not_found("the QR code expired")));
    }
    if record.client_id != qr.client_id {
        return Ok(Err(Refusal::bad_request(
            "the QR code's client id does not match the waiting client",
        )));
    }
    if record.approved_by.is_some() {
        return Ok(Err(Refusal::new(409, "the QR code was already approved")));
    }
    if record.identity != qr.identity {
        return Ok(Err(Refusal::bad_request(
            "the QR code's identity keys differ from those the client announced",
        )));
    }
    let Some(account) = account(txn, number)? else {
        return Ok(Err(Refusal::not_found("no such account")));
    };
    let identity = match qr.identity {
        Some(identity) => {
            let Some(signature) = attestation else {
                return Ok(Err(Refusal::bad_request(
                    "an end-to-end client needs the phone's attestation",
                )));
            };
            let message = attestation_message(&account.jid(), &identity);
            if !verify_signature(&account.identity.ed25519, &message, signature) {
                return Ok(Err(Refusal::forbidden(
                    "the attestation does not verify under the account's identity",
                )));
            }
            Some((identity, *signature))
        }
        // A legacy client: linked as a mirror of the phone, which made its keys.
        None if mirror.is_some() => None,
        None => {
            return Ok(Err(Refusal::bad_request(
                "a legacy client is linked as a mirror of the phone: the phone must make its secret",
            )));
        }
    };
    if client(txn, &qr.client_id)?.is_some() {
        return Ok(Err(Refusal::new(409, "this client id is already linked")));
    }
    record.approved_by = Some(number.to_owned());
    put_json(txn, Table::Refs, &key, &record)?;
    let approval = LinkApproval {
        number: number.to_owned(),
        r#ref: qr.r#ref.clone(),
        public_key: qr.public_key,
        identity,
        mirror: mirror.cloned(),
    };
    Ok(Ok((
        qr.r#ref.clone(),
        vec![(Target::Ref(qr.r#ref.clone()), Push::LinkApproved(approval))],
    )))
}

/// What a web connection knows of itself when its link is approved.
#[derive(Debug, Clone)]
pub(crate) struct Linking {
    pub(crate) client_id: String,
    pub(crate) browser: String,
    pub(crate) approval: LinkApproval,
    pub(crate) tokens: Tokens,
    /// The frame keys the server made (end-to-end clients; mirror clients' keys are the phone's).
    pub(crate) frame_keys: Option<FrameKeys>,
    pub(crate) max_linked: usize,
}

/// The web connection whose QR code was approved makes its device: unlinks the oldest beyond
/// the limit, allocates a device number, keeps the tokens' hashes and the frame keys.
pub(crate) fn finish_link(linking: Linking, now: Time) -> Job {
    Job::write("finish link", move |txn| {
        let result = finish(txn, &linking, now)?;
        outcome(Done::Linked(
            result.map(|(grant, effects)| (Box::new(grant), effects)),
        ))
    })
}

fn finish(
    txn: &mut dyn WriteTxn,
    linking: &Linking,
    now: Time,
) -> Result<Result<(Grant, Effects), Refusal>, StoreError> {
    let approval = &linking.approval;
    let key = ref_key(&approval.r#ref);
    let Some(record) = get_json::<RefRecord>(txn, Table::Refs, &key)? else {
        return Ok(Err(Refusal::new(410, "the QR code is gone")));
    };
    if record.client_id != linking.client_id
        || record.approved_by.as_deref() != Some(approval.number.as_str())
    {
        return Ok(Err(Refusal::forbidden(
            "the approval is for another client",
        )));
    }
    txn.delete(Table::Refs, &key)?;
    if client(txn, &linking.client_id)?.is_some() {
        return Ok(Err(Refusal::new(409, "this client id is already linked")));
    }
    let Some(mut account) = account(txn, &approval.number)? else {
        return Ok(Err(Refusal::not_found("no such account")));
    };
    let mut effects = Effects::new();
    let max = linking.max_linked.max(1);
    while account.linked.len() >= max {
        let Some(&oldest) = account.linked.first() else {
            break;
        };
        if let Some(old) = model::unlink_device(txn, &account.number, oldest)? {
            effects.push((
                Target::Device(old.address()),
                Push::Disconnect(DisconnectKind::Unlinked),
            ));
        }
        account.linked.retain(|d| *d != oldest);
    }
    let Some(device) = account.allocate_device() else {
        return Ok(Err(Refusal::new(507, "no device number left")));
    };
    let (identity, attestation) = match approval.identity {
        Some((identity, signature)) => (Some(identity), Some(signature)),
        None => (None, None),
    };
    let record = DeviceRecord {
        number: account.number.clone(),
        device,
        mode: if identity.is_some() {
            DeviceMode::EndToEnd
        } else {
            DeviceMode::Mirror
        },
        client_id: Some(linking.client_id.clone()),
        browser: linking.browser.clone(),
        linked_at: now.as_secs(),
        last_login: now.as_secs(),
        identity,
        attestation,
        tokens: Some(TokenHashes {
            client: token_hash(&linking.tokens.client),
            server: token_hash(&linking.tokens.server),
            browser: token_hash(&linking.tokens.browser),
            prev_client: String::new(),
            prev_server: String::new(),
        }),
        frame_keys: linking.frame_keys.clone(),
        fallback_key: None,
        one_time_keys: 0,
        logout_hash: match (&approval.mirror, &linking.frame_keys) {
            (Some(mirror), _) => Some(mirror.logout_hash.clone()),
            (None, Some(keys)) => keys.session_keys().map(|k| token_hash(&k.logout_token())),
            (None, None) => None,
        },
    };
    account.linked.push(device);
    model::put_account(txn, &account)?;
    model::put_device(txn, &record)?;
    put_json(
        txn,
        Table::ClientIds,
        &client_key(&linking.client_id),
        &(account.number.clone(), device),
    )?;
    let user = account.jid();
    effects.push((
        Target::Device(user.clone()),
        Push::LinkDone {
            r#ref: approval.r#ref.clone(),
            client_id: linking.client_id.clone(),
            device: device_jid(&user, device),
        },
    ));
    effects.extend(devices_changed(txn, &account.number, &user, now)?);
    Ok(Ok((
        Grant {
            account,
            device: record,
            tokens: linking.tokens.clone(),
            secret: None,
            r#ref: Some(approval.r#ref.clone()),
        },
        effects,
    )))
}

/// Tells the account's own devices and its contacts that its device list changed.
fn devices_changed(
    txn: &mut dyn WriteTxn,
    number: &str,
    user: &Jid,
    now: Time,
) -> Result<Effects, StoreError> {
    let notice = Push::Notification(Notification::Devices {
        jid: user.clone(),
        t: now.as_secs(),
    });
    let mut effects = vec![(
        Target::Account {
            number: number.to_owned(),
            except: None,
        },
        notice.clone(),
    )];
    for contact in model::contacts(txn, number, 4096)? {
        effects.push((
            Target::Account {
                number: contact,
                except: None,
            },
            notice.clone(),
        ));
    }
    Ok(effects)
}

/// What a login says.
#[derive(Debug, Clone)]
pub(crate) struct LoginRequest {
    pub(crate) tag: String,
    pub(crate) client_id: String,
    pub(crate) client_token: Zeroizing<String>,
    pub(crate) server_token: Zeroizing<String>,
    /// The own JID of a `reconnect` login.
    pub(crate) claimed: Option<Jid>,
    pub(crate) new_tokens: Tokens,
    pub(crate) token_idle_ttl_secs: u64,
}

/// A web client logs in with its tokens: rotated on success; one rotation old, challenged.
pub(crate) fn login(request: LoginRequest, now: Time) -> Job {
    Job::write("login", move |txn| {
        let result = check_login(txn, &request, now)?;
        outcome(Done::Login {
            tag: request.tag.clone(),
            result: result.map(Box::new),
            challenged: false,
        })
    })
}

fn check_login(
    txn: &mut dyn WriteTxn,
    request: &LoginRequest,
    now: Time,
) -> Result<Result<Grant, LoginRefused>, StoreError> {
    let unpaired = || Ok(Err(LoginRefused::Status(401)));
    let Some((number, dev)) = client(txn, &request.client_id)? else {
        return unpaired();
    };
    let Some(mut device) = model::device(txn, &number, dev)? else {
        return unpaired();
    };
    let Some(tokens) = device.tokens.clone() else {
        return unpaired();
    };
    let current = token_matches(&request.client_token, &tokens.client)
        & token_matches(&request.server_token, &tokens.server);
    let previous = token_matches(&request.client_token, &tokens.prev_client)
        & token_matches(&request.server_token, &tokens.prev_server);
    if request
        .claimed
        .as_ref()
        .is_some_and(|jid| wa_wire::ids::number_of(jid) != Some(number.as_str()))
    {
        return unpaired();
    }
    if !current {
        return Ok(if previous {
            Err(LoginRefused::Challenge(Box::new(device)))
        } else {
            Err(LoginRefused::Status(401))
        });
    }
    if now.as_secs().saturating_sub(device.last_login) > request.token_idle_ttl_secs {
        // Idle too long: the tokens are void and the device is unlinked (PROTOCOL.md §2.4, 419).
        model::unlink_device(txn, &number, dev)?;
        return Ok(Err(LoginRefused::Status(419)));
    }
    grant(txn, &mut device, &request.new_tokens, now)
}

fn grant(
    txn: &mut dyn WriteTxn,
    device: &mut DeviceRecord,
    new: &Tokens,
    now: Time,
) -> Result<Result<Grant, LoginRefused>, StoreError> {
    let Some(account) = account(txn, &device.number)? else {
        return Ok(Err(LoginRefused::Status(401)));
    };
    let old = device.tokens.take().unwrap_or_default();
    device.tokens = Some(TokenHashes {
        client: token_hash(&new.client),
        server: token_hash(&new.server),
        browser: token_hash(&new.browser),
        prev_client: old.client.clone(),
        prev_server: old.server.clone(),
    });
    device.last_login = now.as_secs();
    model::put_device(txn, device)?;
    Ok(Ok(Grant {
        account,
        device: device.clone(),
        tokens: new.clone(),
        secret: None,
        r#ref: None,
    }))
}

/// A client answered its challenge: rotate its tokens and let it in.
pub(crate) fn challenged(
    tag: String,
    number: String,
    dev: u8,
    new_tokens: Tokens,
    now: Time,
) -> Job {
    Job::write("challenge", move |txn| {
        let result = match model::device(txn, &number, dev)? {
            Some(mut device) => grant(txn, &mut device, &new_tokens, now)?,
            None => Err(LoginRefused::Status(401)),
        };
        outcome(Done::Login {
            tag: tag.clone(),
            result: result.map(Box::new),
            challenged: true,
        })
    })
}

/// The device logs out: it is unlinked, and everyone who encrypts for it is told.
pub(crate) fn logout(me: std::sync::Arc<Me>, now: Time) -> Job {
    Job::write("logout", move |txn| {
        model::unlink_device(txn, &me.number, me.device)?;
        let effects = devices_changed(txn, &me.number, &me.user, now)?;
        outcome(Done::LoggedOut { effects })
    })
}

/// A web client logs out without a socket (PROTOCOL.md §2.6): `browser_token` names its device
/// (found by the token's SHA-256), `mac` proves the frame keys
/// (`base64(HMAC-SHA256(mac_key, enc_key))`, compared in constant time). The device is unlinked
/// and everyone who encrypts for it is told, as when it logs out on its socket; a connection
/// it still has is closed. Unknown token and wrong proof are both 401.
pub(crate) fn logout_offline(
    txn: &mut dyn WriteTxn,
    browser_token: &str,
    mac: &str,
    now: Time,
) -> Result<Result<Effects, Refusal>, StoreError> {
    use subtle::ConstantTimeEq as _;
    let refused = || {
        Ok(Err(Refusal::new(
            401,
            "unknown browser token or wrong proof",
        )))
    };
    if browser_token.is_empty() {
        return refused();
    }
    let Some((number, dev)) = model::device_by_browser(txn, &token_hash(browser_token))? else {
        return refused();
    };
    let Some(record) = model::device(txn, &number, dev)? else {
        return refused();
    };
    // The proof's hash, kept at link time (a mirror client's frame keys are the phone's, so
    // its hash is all the server has); else computed from the frame keys.
    let expected = match (
        &record.logout_hash,
        record.frame_keys.as_ref().and_then(FrameKeys::session_keys),
    ) {
        (Some(hash), _) => hash.clone(),
        (None, Some(keys)) => token_hash(&zeroize::Zeroizing::new(keys.logout_token())),
        (None, None) => return refused(),
    };
    if !bool::from(expected.as_bytes().ct_eq(token_hash(mac).as_bytes())) {
        return refused();
    }
    let mut effects = Effects::new();
    if let Some(old) = model::unlink_device(txn, &number, dev)? {
        effects.push((
            Target::Device(old.address()),
            Push::Disconnect(DisconnectKind::Unlinked),
        ));
    }
    let user = user_jid(&number).map_err(|e| StoreError::Backend(e.to_string()))?;
    effects.extend(devices_changed(txn, &number, &user, now)?);
    Ok(Ok(effects))
}

/// The phone removes one of its linked clients.
pub(crate) fn unlink(reply_to: ReplyTo, number: String, client_id: String, now: Time) -> Job {
    Job::write("unlink", move |txn| {
        let result = match client(txn, &client_id)? {
            Some((owner, dev)) if owner == number => {
                let mut effects = Effects::new();
                if let Some(old) = model::unlink_device(txn, &owner, dev)? {
                    effects.push((
                        Target::Device(old.address()),
                        Push::Disconnect(DisconnectKind::Unlinked),
                    ));
                }
                let user = user_jid(&owner).map_err(|e| StoreError::Backend(e.to_string()))?;
                effects.extend(devices_changed(txn, &owner, &user, now)?);
                Ok(effects)
            }
            _ => Err(Refusal::not_found("no such linked device")),
        };
        outcome(Done::Unlinked {
            reply_to: reply_to.clone(),
            result,
        })
    })
}

/// The linked web clients of an account, oldest first.
pub(crate) fn linked(id: u64, number: String) -> Job {
    Job::read("linked devices", move |txn| {
        let mut devices = Vec::new();
        if let Some(account) = account(txn, &number)? {
            for d in &account.linked {
                if let Some(record) = model::device(txn, &number, *d)? {
                    devices.push(LinkedDevice {
                        client_id: record.client_id.clone().unwrap_or_default(),
                        device: record.address(),
                        browser: record.browser.clone(),
                        linked_at: record.linked_at,
                        mirror: record.mode == DeviceMode::Mirror,
                    });
                }
            }
        }
        outcome(Done::LinkedDevices { id, devices })
    })
}

// ---- The phone --------------------------------------------------------------------------------

/// SHA-256 of a number and its code.
fn code_hash(number: &str, code: &str) -> String {
    token_hash(&format!("{number}\0{code}"))
}

/// Codes one number may be sent per hour.
const CODES_PER_HOUR: usize = 3;

/// A phone asks for a verification code for `number` (the connection made `code`).
pub(crate) fn issue_code(
    id: u64,
    number: String,
    code: Zeroizing<String>,
    now: Time,
    ttl_ms: u64,
) -> Job {
    Job::write("issue code", move |txn| {
        let key = model::account_key(&number);
        let hour_ago = now.as_millis().saturating_sub(3_600_000);
        let previous = get_json::<CodeRecord>(txn, Table::Codes, &key)?;
        if let Some(previous) = &previous {
            model::forget_timer(txn, previous.expires, Table::Codes, &key)?;
        }
        let mut sent = previous
            .map(|record| record.sent.clone())
            .unwrap_or_default();
        sent.retain(|t| *t > hour_ago);
        if sent.len() >= CODES_PER_HOUR {
            return outcome(Done::CodeIssued {
                id,
                result: Err(Refusal::new(
                    429,
                    "too many codes for this number: try again later",
                )),
            });
        }
        sent.push(now.as_millis());
        let record = CodeRecord {
            hash: code_hash(&number, &code),
            expires: now.as_millis().saturating_add(ttl_ms),
            attempts: 0,
            sent,
        };
        model::put_expiring(txn, Table::Codes, &key, &record, record.expires)?;
        outcome(Done::CodeIssued {
            id,
            result: Ok((number.clone(), code.clone())),
        })
    })
}

/// What `verify` says.
#[derive(Debug, Clone)]
pub(crate) struct Verification {
    pub(crate) id: u64,
    pub(crate) number: String,
    pub(crate) code: Zeroizing<String>,
    pub(crate) name: String,
    pub(crate) identity: IdentityKeys,
    pub(crate) phone: Option<PhoneInfo>,
    pub(crate) max_attempts: u32,
}

/// A phone proves its code: the account is created, or updated, or (another identity) moved to
/// this phone.
pub(crate) fn verify(v: Verification, now: Time) -> Job {
    Job::write("verify", move |txn| {
        let result = check_code(txn, &v, now)?;
        outcome(Done::Verified { id: v.id, result })
    })
}

fn check_code(
    txn: &mut dyn WriteTxn,
    v: &Verification,
    now: Time,
) -> Result<Result<(Ready, Effects), Refusal>, StoreError> {
    use subtle::ConstantTimeEq as _;
    let key = model::account_key(&v.number);
    let Some(mut code) = get_json::<CodeRecord>(txn, Table::Codes, &key)? else {
        return Ok(Err(Refusal::new(
            401,
            "no code was sent to this number (register first)",
        )));
    };
    if code.expires < now.as_millis() || code.attempts >= v.max_attempts {
        txn.delete(Table::Codes, &key)?;
        return Ok(Err(Refusal::new(401, "the code expired: register again")));
    }
    let right: bool = code_hash(&v.number, &v.code)
        .as_bytes()
        .ct_eq(code.hash.as_bytes())
        .into();
    if !right {
        code.attempts += 1;
        put_json(txn, Table::Codes, &key, &code)?;
        return Ok(Err(Refusal::new(401, "wrong code")));
    }
    txn.delete(Table::Codes, &key)?;
    let user = user_jid(&v.number).map_err(|e| StoreError::Backend(e.to_string()))?;
    let mut effects = Effects::new();
    let (created, changed) = match account(txn, &v.number)? {
        None => {
            let account = AccountRecord {
                number: v.number.clone(),
                name: v.name.clone(),
                created: now.as_secs(),
                identity: v.identity,
                identity_since: now.as_secs(),
                phone: v.phone.clone().unwrap_or_default(),
                linked: Vec::new(),
                next_device: 1,
            };
            model::put_account(txn, &account)?;
            (true, false)
        }
        Some(mut account) => {
            let changed = account.identity != v.identity;
            if changed {
                // A new phone for the number: every linked device was vouched for by the old
                // one, so they all go; the old phone's queue and keys go too.
                for d in account.linked.clone() {
                    if let Some(old) = model::unlink_device(txn, &v.number, d)? {
                        effects.push((
                            Target::Device(old.address()),
                            Push::Disconnect(DisconnectKind::Unlinked),
                        ));
                    }
                }
                account.linked.clear();
                let prefix = model::device_key(&v.number, 0);
                for (k, _) in model::scan(txn, Table::OneTimeKeys, &prefix, usize::MAX)? {
                    txn.delete(Table::OneTimeKeys, &k)?;
                }
                model::drop_inbox(txn, &user)?;
                account.identity = v.identity;
                account.identity_since = now.as_secs();
                let notice = Push::Notification(Notification::Identity {
                    jid: user.clone(),
                    t: now.as_secs(),
                });
                for contact in model::contacts(txn, &v.number, 4096)? {
                    effects.push((
                        Target::Account {
                            number: contact,
                            except: None,
                        },
                        notice.clone(),
                    ));
                }
            }
            if !v.name.is_empty() {
                account.name.clone_from(&v.name);
            }
            if let Some(phone) = &v.phone {
                account.phone = phone.clone();
            }
            model::put_account(txn, &account)?;
            (false, changed)
        }
    };
    let phone = DeviceRecord::bare(
        &v.number,
        0,
        DeviceMode::Phone,
        Some(v.identity),
        now.as_secs(),
    );
    match model::device(txn, &v.number, 0)? {
        Some(mut existing) if !changed => {
            existing.last_login = now.as_secs();
            model::put_device(txn, &existing)?;
        }
        _ => model::put_device(txn, &phone)?,
    }
    Ok(Ok((
        Ready {
            wid: user,
            created,
            identity_changed: changed,
        },
        effects,
    )))
}

/// A phone says hello: the identity key its signature must verify under.
pub(crate) fn hello(id: u64, number: String) -> Job {
    Job::read("hello", move |txn| {
        let identity = match account(txn, &number)? {
            Some(account) => Ok(account.identity.ed25519),
            None => Err(Refusal::not_found(
                "no account for this number: register first",
            )),
        };
        outcome(Done::Hello {
            id,
            number: number.clone(),
            identity,
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests: a panic is a failed test"
    )]

    use super::*;
    use crate::store::MemStore;

    const NUMBER: &str = "15550001111";

    fn tokens(browser: &str) -> TokenHashes {
        TokenHashes {
            client: token_hash("client"),
            server: token_hash("server"),
            browser: token_hash(browser),
            prev_client: String::new(),
            prev_server: String::new(),
        }
    }

    /// An account with a phone and web device 1 whose browser token is `browser`.
    fn linked(store: &MemStore, browser: &'static str, enc: [u8; 32], mac: [u8; 32]) {
        store.write_now(move |txn| {
            let keys = IdentityKeys {
                curve25519: [1; 32],
                ed25519: [2; 32],
            };
            let account = AccountRecord {
                number: NUMBER.to_owned(),
                name: "n".to_owned(),
                created: 0,
                identity: keys,
                identity_since: 0,
                phone: PhoneInfo::default(),
                linked: vec![1],
                next_device: 2,
            };
            model::put_account(txn, &account)?;
            let device = DeviceRecord {
                client_id: Some("Y2xpZW50LWlkLTEyMzQ1Ng==".to_owned()),
                tokens: Some(tokens(browser)),
                frame_keys: Some(FrameKeys::new(&enc, &mac)),
                ..DeviceRecord::bare(NUMBER, 1, DeviceMode::EndToEnd, Some(keys), 0)
            };
            model::put_device(txn, &device)
        });
    }

    fn proof(enc: [u8; 32], mac: [u8; 32]) -> String {
        wa_crypto::SessionKeys::new(&enc, &mac).logout_token()
    }

    fn logout(store: &MemStore, token: &'static str, m: String) -> Result<Effects, Refusal> {
        store.write_now(move |txn| {
            logout_offline(txn, token, &m, Time::from_millis(1_600_000_000_000))
        })
    }

    fn devices(store: &MemStore) -> u64 {
        crate::store::read(store, |txn| txn.len(Table::Devices)).unwrap()
    }

    #[test]
    fn offline_logout_unlinks_the_device_of_the_browser_token() {
        let store = MemStore::new();
        let (enc, mac) = ([3; 32], [4; 32]);
        linked(&store, "browser-1", enc, mac);
        assert_eq!(devices(&store), 1);
        // Unknown token, and the right token with a proof made from other keys: 401, nothing
        // changes.
        assert_eq!(
            logout(&store, "browser-2", proof(enc, mac))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            logout(&store, "browser-1", proof(mac, enc))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(logout(&store, "", proof(enc, mac)).unwrap_err().status, 401);
        assert_eq!(devices(&store), 1);
        let effects = logout(&store, "browser-1", proof(enc, mac)).unwrap();
        assert!(effects.iter().any(|(target, push)| matches!(
            (target, push),
            (Target::Device(d), Push::Disconnect(DisconnectKind::Unlinked)) if *d == device_jid(&user_jid(NUMBER).unwrap(), 1)
        )));
        assert!(
            effects
                .iter()
                .any(|(_, push)| matches!(push, Push::Notification(Notification::Devices { .. })))
        );
        assert_eq!(devices(&store), 0);
        let account = crate::store::read(&store, |txn| account(txn, NUMBER))
            .unwrap()
            .unwrap();
        assert!(account.linked.is_empty());
        // The index went with the device: the same request again is unknown.
        assert_eq!(
            crate::store::read(&store, |txn| txn.len(Table::BrowserTokens)).unwrap(),
            0
        );
        assert_eq!(
            logout(&store, "browser-1", proof(enc, mac))
                .unwrap_err()
                .status,
            401
        );
    }

    #[test]
    fn the_index_follows_token_rotation() {
        let store = MemStore::new();
        let (enc, mac) = ([5; 32], [6; 32]);
        linked(&store, "old-browser", enc, mac);
        // A login rotates the tokens: the old browser token no longer names the device.
        store.write_now(|txn| {
            let mut device = model::device(txn, NUMBER, 1)?.unwrap();
            device.tokens = Some(tokens("new-browser"));
            model::put_device(txn, &device)
        });
        assert_eq!(
            crate::store::read(&store, |txn| txn.len(Table::BrowserTokens)).unwrap(),
            1
        );
        assert_eq!(
            logout(&store, "old-browser", proof(enc, mac))
                .unwrap_err()
                .status,
            401
        );
        assert!(logout(&store, "new-browser", proof(enc, mac)).is_ok());
        assert_eq!(devices(&store), 0);
    }
}
