//! Accounts and devices: a phone creating its account, the phone approving a QR code (linking
//! a web client), a web client logging in again with its tokens, and unlinking.
//!
//! Tokens are 24 random bytes each; the store keeps only their SHA-256, compared in constant
//! time. Every login rotates them: the old ones stop working the moment the new ones are
//! committed.
//!
//! **Architecture Invariant:** an account never has more than `max_linked_devices` linked
//! clients after a commit: the link that would exceed it unlinks the oldest in the same
//! transaction.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::Refusal;
use crate::hub::{DisconnectKind, Grant, Push, Tokens};
use crate::jid::{ChatJid, DeviceKey, valid_client_id, valid_number};
use crate::model::{self, AccountRecord, DeviceRecord, PhoneInfo, account_key, device_key};
use crate::shared::{Metrics, Shared, now_secs};
use crate::store::{self, Table};

/// SHA-256 of a token, hex.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// New tokens for a device, keeping the hashes of the current ones as the previous ones.
fn rotate(device: &mut DeviceRecord, new: &Tokens) {
    device.prev_client_token = std::mem::replace(&mut device.client_token, token_hash(&new.client));
    device.prev_server_token = std::mem::replace(&mut device.server_token, token_hash(&new.server));
    device.browser_token = token_hash(&new.browser);
}

/// Whether `token` hashes to `hash`, in constant time.
fn token_matches(token: &str, hash: &str) -> bool {
    let computed = token_hash(token);
    computed.as_bytes().ct_eq(hash.as_bytes()).into()
}

/// A linked client, as the phone sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkedInfo {
    pub(crate) client_id: String,
    pub(crate) browser: String,
    pub(crate) linked_at: u64,
}

/// What a phone says when it connects.
#[derive(Debug, Clone)]
pub(crate) struct Hello {
    pub(crate) number: String,
    pub(crate) name: String,
    pub(crate) secret: Option<String>,
    pub(crate) phone: PhoneInfo,
}

impl Shared {
    /// A phone connects: creates its account on first use, or checks its secret.
    /// Returns the account and whether it was created.
    pub(crate) async fn hello(&self, hello: Hello) -> Result<(AccountRecord, bool), Refusal> {
        if !valid_number(&hello.number) {
            return Err(Refusal::bad_request("a number is 5 to 20 digits"));
        }
        let name: String = hello.name.chars().take(64).collect();
        let secret_hash = hello.secret.as_deref().map(token_hash);
        let phone = hello.phone;
        let number = hello.number;
        store::write(&*self.store, move |txn| {
            let key = account_key(&number);
            match model::account(txn, &number)? {
                None => {
                    let account = AccountRecord {
                        number: number.clone(),
                        name: name.clone(),
                        created: now_secs(),
                        phone_secret: secret_hash.clone(),
                        phone: phone.clone(),
                        devices: Vec::new(),
                    };
                    model::put_json(txn, Table::Accounts, &key, &account)?;
                    Ok(Ok((account, true)))
                }
                Some(mut account) => {
                    if let Some(expected) = &account.phone_secret {
                        let ok = secret_hash
                            .as_deref()
                            .is_some_and(|h| bool::from(h.as_bytes().ct_eq(expected.as_bytes())));
                        if !ok {
                            return Ok(Err(Refusal::new(401, "wrong phone secret")));
                        }
                    }
                    let mut changed = false;
                    if !name.is_empty() && account.name != name {
                        account.name.clone_from(&name);
                        changed = true;
                    }
                    if phone != PhoneInfo::default() && account.phone != phone {
                        account.phone = phone.clone();
                        changed = true;
                    }
                    if changed {
                        model::put_json(txn, Table::Accounts, &key, &account)?;
                    }
                    Ok(Ok((account, false)))
                }
            }
        })
        .await?
    }

    /// The phone of `number` approves a QR code `ref,public key,client id`: links the web
    /// client waiting on that ref (unlinking the oldest client beyond the limit) and hands it
    /// its credentials over its open socket.
    pub(crate) async fn link(&self, number: &str, qr: &str) -> Result<LinkedInfo, Refusal> {
        let mut parts = qr.trim().rsplitn(3, ',');
        let (Some(client_id), Some(public), Some(scanned_ref)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::bad_request(
                "a QR code is `ref,public key,client id`",
            ));
        };
        let public = STANDARD
            .decode(public)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| Refusal::bad_request("the QR code's public key is not 32 bytes"))?;
        let entry = self
            .hub
            .take_ref(scanned_ref)
            .ok_or_else(|| Refusal::not_found("unknown or expired QR code"))?;
        if entry.client_id != client_id {
            return Err(Refusal::bad_request(
                "the QR code's client id does not match",
            ));
        }
        let enc = Zeroizing::new(self.random::<32>());
        let mac = Zeroizing::new(self.random::<32>());
        let keys = wa_crypto::SessionKeys::new(&enc, &mac);
        let server_private = Zeroizing::new(self.random::<32>());
        let secret = wa_crypto::LoginSecret::server_side(&server_private, &public, &keys)
            .map_err(|e| Refusal::bad_request(format!("the QR code's key: {e}")))?
            .to_base64();
        let tokens = self.new_tokens();
        let device = DeviceRecord {
            client_id: client_id.to_owned(),
            number: number.to_owned(),
            browser: entry.browser.clone(),
            linked_at: now_secs(),
            client_token: token_hash(&tokens.client),
            server_token: token_hash(&tokens.server),
            browser_token: token_hash(&tokens.browser),
            enc_key: hex::encode(*enc),
            mac_key: hex::encode(*mac),
            prev_client_token: String::new(),
            prev_server_token: String::new(),
        };
        let max = self.config.max_linked_devices.max(1);
        let (number_owned, stored) = (number.to_owned(), device.clone());
        let (account, evicted) = store::write(&*self.store, move |txn| {
            if model::account(txn, &number_owned)?.is_none() {
                return Ok(Err(Refusal::not_found("no such account")));
            }
            let mut evicted = Vec::new();
            // The same client linked again (to this or another account) starts afresh.
            if model::unlink_device(txn, &stored.client_id)?.is_some() {
                evicted.push(stored.client_id.clone());
            }
            let Some(mut account) = model::account(txn, &number_owned)? else {
                return Ok(Err(Refusal::not_found("no such account")));
            };
            while account.devices.len() >= max {
                let Some(oldest) = account.devices.first().cloned() else {
                    break;
                };
                model::unlink_device(txn, &oldest)?;
                account.devices.remove(0);
                evicted.push(oldest);
            }
            account.devices.push(stored.client_id.clone());
            model::put_json(txn, Table::Accounts, &account_key(&number_owned), &account)?;
            model::put_json(txn, Table::Devices, &device_key(&stored.client_id), &stored)?;
            Ok(Ok((account, evicted)))
        })
        .await??;
        for client in evicted.iter().filter(|c| c.as_str() != client_id) {
            tracing::info!(%number, evicted = %client, "device limit reached: oldest unlinked");
            self.disconnect(&DeviceKey::web(client), DisconnectKind::Unlinked);
        }
        let grant = Grant {
            account,
            device: device.clone(),
            tokens,
            secret: Some(secret),
            scanned_ref: Some(scanned_ref.to_owned()),
        };
        if !entry.outbox.push(Push::Linked(Box::new(grant))) {
            // The browser went away meanwhile: undo the link.
            let _ = self.unlink(client_id).await;
            return Err(Refusal::new(410, "the web client is gone"));
        }
        Metrics::inc(&self.metrics.links);
        tracing::info!(%number, client = %client_id, "linked");
        Ok(LinkedInfo {
            client_id: client_id.to_owned(),
            browser: device.browser.clone(),
            linked_at: device.linked_at,
        })
    }

    /// A web client logs in with its tokens; on success the tokens are rotated.
    pub(crate) async fn login(
        &self,
        client_id: &str,
        client_token: &str,
        server_token: &str,
        own_jid: Option<&str>,
    ) -> Result<Grant, Refusal> {
        let unpaired = || Refusal::new(401, "unknown client or revoked tokens");
        if !valid_client_id(client_id) {
            return Err(unpaired());
        }
        let tokens = self.new_tokens();
        let claimed = match own_jid {
            Some(jid) => match ChatJid::parse(jid) {
                Some(ChatJid::User(n)) => Some(n),
                _ => return Err(unpaired()),
            },
            None => None,
        };
        let (client_id, client_token, server_token) = (
            client_id.to_owned(),
            Zeroizing::new(client_token.to_owned()),
            Zeroizing::new(server_token.to_owned()),
        );
        let new = tokens.clone();
        store::write(&*self.store, move |txn| {
            let Some(mut device) = model::device(txn, &client_id)? else {
                return Ok(Err(unpaired()));
            };
            let ok = token_matches(&client_token, &device.client_token)
                & token_matches(&server_token, &device.server_token);
            if !ok || claimed.as_ref().is_some_and(|n| *n != device.number) {
                return Ok(Err(unpaired()));
            }
            let Some(account) = model::account(txn, &device.number)? else {
                return Ok(Err(unpaired()));
            };
            rotate(&mut device, &new);
            model::put_json(txn, Table::Devices, &device_key(&client_id), &device)?;
            Ok(Ok(Grant {
                account,
                device,
                tokens: new.clone(),
                secret: None,
                scanned_ref: None,
            }))
        })
        .await?
        .inspect(|_| Metrics::inc(&self.metrics.logins))
    }

    /// The linked client whose tokens before the last rotation are these: it lost the `Conn`
    /// that rotated them, and may prove its keys with a challenge instead.
    pub(crate) async fn challengeable(
        &self,
        client_id: &str,
        client_token: &str,
        server_token: &str,
    ) -> Result<Option<DeviceRecord>, Refusal> {
        let (client_id, client_token, server_token) = (
            client_id.to_owned(),
            Zeroizing::new(client_token.to_owned()),
            Zeroizing::new(server_token.to_owned()),
        );
        store::write(&*self.store, move |txn| {
            let Some(device) = model::device(txn, &client_id)? else {
                return Ok(Ok(None));
            };
            let previous = !device.prev_client_token.is_empty()
                && token_matches(&client_token, &device.prev_client_token)
                    & token_matches(&server_token, &device.prev_server_token);
            Ok(Ok(previous.then_some(device)))
        })
        .await?
    }

    /// A client answered its challenge: rotate its tokens and let it in.
    pub(crate) async fn grant_challenged(&self, client_id: &str) -> Result<Grant, Refusal> {
        let unpaired = || Refusal::new(401, "unknown client or revoked tokens");
        let new = self.new_tokens();
        let client_id = client_id.to_owned();
        let tokens = new.clone();
        store::write(&*self.store, move |txn| {
            let Some(mut device) = model::device(txn, &client_id)? else {
                return Ok(Err(unpaired()));
            };
            let Some(account) = model::account(txn, &device.number)? else {
                return Ok(Err(unpaired()));
            };
            rotate(&mut device, &tokens);
            model::put_json(txn, Table::Devices, &device_key(&client_id), &device)?;
            Ok(Ok(Grant {
                account,
                device,
                tokens: tokens.clone(),
                secret: None,
                scanned_ref: None,
            }))
        })
        .await?
        .inspect(|_| Metrics::inc(&self.metrics.logins))
    }

    /// Unlinks a web client (logout, or the phone removing it): its tokens stop working and
    /// its queued messages are dropped. Whether it was linked.
    pub(crate) async fn unlink(&self, client_id: &str) -> Result<bool, Refusal> {
        let id = client_id.to_owned();
        let removed = store::write(&*self.store, move |txn| model::unlink_device(txn, &id)).await?;
        Ok(removed.is_some())
    }

    /// The phone of `number` removes one of its linked clients, which is disconnected.
    pub(crate) async fn unlink_of(&self, number: &str, client_id: &str) -> Result<(), Refusal> {
        let (id, owner) = (client_id.to_owned(), number.to_owned());
        store::write(&*self.store, move |txn| match model::device(txn, &id)? {
            Some(device) if device.number == owner => {
                model::unlink_device(txn, &id)?;
                Ok(Ok(()))
            }
            _ => Ok(Err(Refusal::not_found("no such linked device"))),
        })
        .await??;
        self.disconnect(&DeviceKey::web(client_id), DisconnectKind::Unlinked);
        tracing::info!(%number, client = %client_id, "unlinked by the phone");
        Ok(())
    }

    /// The linked clients of an account, oldest first.
    pub(crate) fn linked(&self, number: &str) -> Result<Vec<LinkedInfo>, Refusal> {
        Ok(store::read(&*self.store, |txn| {
            let Some(account) = model::account(txn, number)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for client in &account.devices {
                if let Some(device) = model::device(txn, client)? {
                    out.push(LinkedInfo {
                        client_id: device.client_id.clone(),
                        browser: device.browser.clone(),
                        linked_at: device.linked_at,
                    });
                }
            }
            Ok(out)
        })?)
    }

    /// Closes a device's connection, if it is online.
    pub(crate) fn disconnect(&self, device: &DeviceKey, kind: DisconnectKind) {
        if let Some(outbox) = self.hub.outbox(device) {
            outbox.push(Push::Disconnect(kind));
        }
    }

    /// Whether the phone of `number` is online.
    pub(crate) fn phone_online(&self, number: &str) -> bool {
        self.hub.is_online(&DeviceKey::phone(number))
    }

    /// Tells every web client of an account whether its phone is reachable.
    pub(crate) fn phone_reachable(&self, number: &str, up: bool) {
        let phone = DeviceKey::phone(number);
        self.hub
            .push_account(number, Some(&phone), || Push::PhoneReachable(up));
    }

    fn new_tokens(&self) -> Tokens {
        Tokens {
            client: self.token(),
            server: self.token(),
            browser: self.token(),
        }
    }
}

/// The `Conn` message for a linked or logged-in client.
pub(crate) fn conn_json(grant: &Grant, phone_online: bool) -> serde_json::Value {
    let account = &grant.account;
    let phone = &account.phone;
    let mut conn = serde_json::json!({
        "battery": 100,
        "browserToken": grant.tokens.browser,
        "clientToken": grant.tokens.client,
        "serverToken": grant.tokens.server,
        "wid": crate::jid::user_jid(&account.number),
        "pushname": account.name,
        "platform": phone.platform.as_deref().unwrap_or("wa-rs"),
        "phone": {
            "wa_version": phone.wa_version.as_deref().unwrap_or("2.21.0"),
            "mcc": "000",
            "mnc": "000",
            "os_version": phone.os_version.as_deref().unwrap_or("1"),
            "device_manufacturer": phone.device_manufacturer.as_deref().unwrap_or("wa-rs"),
            "device_model": phone.device_model.as_deref().unwrap_or("wa phone"),
            "os_build_number": "wa-rs",
        },
        "plugged": true,
        "lc": "ZZ",
        "lg": "en",
        "locale": "en",
        "tos": 0,
        "is24h": true,
        "connected": phone_online,
        "protoVersion": [0, 17],
        "binVersion": 10,
        "features": {},
    });
    if let Some(map) = conn.as_object_mut() {
        if let Some(secret) = &grant.secret {
            map.insert("secret".to_owned(), serde_json::Value::from(secret.clone()));
        }
        if let Some(r) = &grant.scanned_ref {
            map.insert("ref".to_owned(), serde_json::Value::from(r.clone()));
        }
    }
    serde_json::json!(["Conn", conn])
}
