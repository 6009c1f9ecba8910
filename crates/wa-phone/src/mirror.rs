//! Mirror mode: legacy web clients of this phone, as WhatsApp Web worked before multi-device.
//!
//! A web client that announces no end-to-end identity is linked as a mirror of its phone: the
//! phone, not the server, makes its frame keys and the `secret` of its `Conn` from the QR code's
//! public key (PROTOCOL.md §2.3). The server carries the client's binary frames to the phone and
//! the phone's frames to the client without being able to open them. The phone answers the
//! client's requests from its own state (its store answers the queries, through the driver),
//! sends the client's messages end to end, and forwards what arrives.

use serde::{Deserialize, Serialize};
use wa_binary::{Encoder, Node, Policy};
use wa_crypto::SessionKeys;
use wa_wire::Jid;
use wa_wire::phone::MirrorFrame;
use wa_wire::web::ServerNode;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What the phone keeps of a mirror client: its device, client id and frame keys. The driver
/// persists it (encrypted at rest) and hands it back with
/// [`PhoneSession::restore_mirrors`](crate::PhoneSession::restore_mirrors).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct MirrorClient {
    /// The client's device address.
    #[zeroize(skip)]
    pub device: Jid,
    /// Its client id.
    pub client_id: String,
    /// The frame encryption key.
    pub enc_key: [u8; 32],
    /// The frame MAC key.
    pub mac_key: [u8; 32],
}

impl std::fmt::Debug for MirrorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorClient")
            .field("device", &self.device)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl MirrorClient {
    pub(crate) fn keys(&self) -> SessionKeys {
        SessionKeys::new(&self.enc_key, &self.mac_key)
    }

    /// A sealed server→client binary frame carrying `node` under `tag`.
    pub(crate) fn seal(&self, tag: &str, node: &ServerNode, iv: &[u8; 16]) -> Option<MirrorFrame> {
        let node: Node<'static> = node.to_node();
        let plain = Encoder::new(Policy::Server).encode(&node).ok()?;
        let mut out = Vec::with_capacity(tag.len() + 1 + wa_crypto::sealed_len(plain.len()));
        out.extend_from_slice(tag.as_bytes());
        out.push(b',');
        self.keys().seal_into(&plain, iv, &mut out);
        Some(MirrorFrame::Binary(out))
    }
}
