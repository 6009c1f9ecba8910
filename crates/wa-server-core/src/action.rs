//! What a connection asks its driver to do ([`Action`]), and what connections tell each other
//! through the driver's hub ([`Push`], addressed by a [`Target`]).
//!
//! Pushes are plain data (serde), so that a cluster's nodes can carry them to each other: a
//! push for a device connected to another node travels over the bus and is handled there
//! exactly as a local one.

use serde::{Deserialize, Serialize};
use wa_wire::Jid;
use wa_wire::keys::{IdentityKeys, Signature};
use wa_wire::msg::{AckNotice, GroupNotice, Incoming, Notification, PresenceNotice};
use wa_wire::phone::{MirrorFrame, MirrorLink};
use zeroize::Zeroizing;

use crate::job::{Job, JobId};

/// Something for the driver to do, drained with `poll_action` in order.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "actions live briefly in a short queue; boxing pushes would cost an allocation each"
)]
#[non_exhaustive]
pub enum Action {
    /// Send this WebSocket message on the connection.
    Send(wa_frame::OutMessage),
    /// Close the connection (after the sends before it).
    Close,
    /// Run a store job and hand its outcome back with `handle_job`.
    Job {
        /// For logs.
        id: JobId,
        /// The job.
        job: Box<Job>,
    },
    /// Deliver a push to whatever the target names (dropped if nobody is there).
    Push {
        /// Where.
        target: Target,
        /// What.
        push: Push,
    },
    /// This connection is now `device` of account `number`: pushes for the device and the
    /// account come here. Another connection registered as the same device gets
    /// [`Push::Disconnect`] with [`DisconnectKind::Replaced`]. A web client's connection
    /// learns at once whether its phone is online ([`Push::PhoneReachable`]).
    Register {
        /// The account.
        number: String,
        /// The device.
        device: Jid,
    },
    /// This connection waits on a QR ref: [`Target::Ref`] pushes come here.
    RegisterRef(String),
    /// The connection no longer waits on this ref.
    ForgetRef(String),
    /// Send this connection a user's presence changes.
    Subscribe(Jid),
    /// Deliver a registration code out of band (a text message in the real system).
    DeliverCode {
        /// The number.
        number: String,
        /// The code.
        code: Zeroizing<String>,
    },
}

/// Where a push goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Target {
    /// One device (the phone is the user's own address).
    Device(Jid),
    /// Every connected device of an account, but one.
    Account {
        /// The account.
        number: String,
        /// A device left out (usually the one that caused the push).
        except: Option<Jid>,
    },
    /// The connection waiting on a QR ref.
    Ref(String),
    /// Connections subscribed to a user's presence.
    Subscribers(Jid),
}

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectKind {
    /// Another connection logged in as the same device.
    Replaced,
    /// The device was unlinked (by the phone, by logging out, evicted by a newer link, or its
    /// phone's identity changed).
    Unlinked,
    /// The server is shutting down.
    Shutdown,
}

/// A phone approved a QR code: what the waiting web connection needs to finish the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkApproval {
    /// The account.
    pub number: String,
    /// The ref that was scanned.
    pub r#ref: String,
    /// The client's public key from the QR code (the key schedule's input).
    #[serde(with = "serde_bytes32")]
    pub public_key: [u8; 32],
    /// For an end-to-end client: the identity keys the phone signed, and the signature.
    pub identity: Option<(IdentityKeys, Signature)>,
    /// For a legacy client, linked as a mirror of the phone: the secret the phone made.
    pub mirror: Option<MirrorLink>,
}

/// Something one connection tells another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Push {
    /// A message for this device; `seq` identifies its queue entry (a connection drops a
    /// second copy of the same entry).
    Deliver {
        /// The queue entry.
        seq: u64,
        /// The message, with this device's ciphertext.
        message: Incoming,
    },
    /// This device's queue may hold messages it was not pushed: read it again (what the
    /// connection already sent is not sent twice). A cluster's node sends it in place of a
    /// [`Push::Deliver`] too large for its bus.
    Resync,
    /// Ticks for a message this account sent.
    Ack(AckNotice),
    /// A contact's presence.
    Presence(PresenceNotice),
    /// A group changed.
    Group(GroupNotice),
    /// Key directory news.
    Notification(Notification),
    /// The phone approved this web connection's QR code.
    LinkApproved(LinkApproval),
    /// A web client finished linking (for the phone that approved it).
    LinkDone {
        /// The ref it was linked through.
        r#ref: String,
        /// Its client id.
        client_id: String,
        /// Its device address.
        device: Jid,
    },
    /// The account's phone went away (`false`) or came back (`true`).
    PhoneReachable(bool),
    /// Close, telling the client why.
    Disconnect(DisconnectKind),
    /// For the phone: a frame its mirror-mode client sent (still sealed with the client's keys).
    Mirror {
        /// The client.
        device: Jid,
        /// The frame.
        frame: MirrorFrame,
    },
    /// For a mirror-mode client: frames its phone sealed for it.
    MirrorSend {
        /// The frames, in order.
        frames: Vec<MirrorFrame>,
    },
    /// For the phone: its mirror-mode client logged in.
    MirrorOnline {
        /// The client.
        device: Jid,
    },
    /// For the phone: a mirror client's login needs the answer to this challenge.
    MirrorChallenge {
        /// The client.
        device: Jid,
        /// Where to send the answer.
        r#ref: String,
        /// The challenge.
        challenge: Vec<u8>,
    },
    /// For a mirror client's connection: what the answer to its challenge must be.
    MirrorChallengeAnswer {
        /// `HMAC-SHA256(mac_key, challenge)`.
        expected: Vec<u8>,
    },
}

mod serde_bytes32 {
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}
