//! The streaming sidecar: one truncated HMAC per 64 KiB window of `iv ‖ enc ‖ mac`.
//!
//! Window `n` covers bytes `[n × 65536, n × 65536 + 65536 + 16)` of the stream `iv ‖ enc ‖ mac`,
//! clipped at its end, for every `n` with `n × 65536 < len`. Windows overlap by one AES block:
//! the 16 bytes before a window's own ciphertext are its CBC IV, so a verified window can be
//! decrypted on its own. The last window also covers the MAC.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::key::truncate_tag;
use crate::{MAC_LEN, MediaKey, MediaKeys, MediaType, SIDECAR_OVERLAP, SIDECAR_WINDOW};

/// Computes a sidecar incrementally from an encrypted body (`enc ‖ mac`), in one pass and
/// constant memory (apart from the sidecar itself: 10 bytes per 64 KiB).
///
/// [`Encryptor`](crate::Encryptor) uses this while encrypting; use it directly for a body that
/// was encrypted elsewhere.
#[derive(Clone)]
pub struct SidecarBuilder {
    /// Keyed with the MAC key: each window starts from a clone.
    keyed: Hmac<Sha256>,
    /// The window that started at the last multiple of 64 KiB.
    current: Option<Hmac<Sha256>>,
    /// The window before it, while it still needs the first 16 bytes of `current`'s.
    previous: Option<Hmac<Sha256>>,
    /// Bytes of `iv ‖ enc ‖ mac` seen so far.
    pos: u64,
    tags: Vec<u8>,
}

impl SidecarBuilder {
    /// Starts a sidecar for a body encrypted with `key` for `ty`.
    pub fn new(key: &MediaKey, ty: MediaType) -> Self {
        Self::from_keys(&key.expand(ty))
    }

    /// Starts a sidecar from already expanded keys.
    pub fn from_keys(keys: &MediaKeys) -> Self {
        let mut builder = Self {
            keyed: keys.hmac(),
            current: None,
            previous: None,
            pos: 0,
            tags: Vec::new(),
        };
        builder.feed(keys.iv());
        builder
    }

    /// Feeds the next bytes of the body (`enc ‖ mac`), in chunks of any size.
    pub fn update(&mut self, body: &[u8]) {
        self.feed(body);
    }

    /// The sidecar: 10 bytes per window.
    pub fn finish(mut self) -> Vec<u8> {
        if let Some(previous) = self.previous.take() {
            self.push(previous);
        }
        if let Some(current) = self.current.take() {
            self.push(current);
        }
        self.tags
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let offset = self.pos % SIDECAR_WINDOW;
            if offset == 0 {
                // A new window starts here; the one before still takes the next 16 bytes.
                self.previous = self.current.take();
                self.current = Some(self.keyed.clone());
            }
            let room = usize::try_from(SIDECAR_WINDOW - offset).unwrap_or(usize::MAX);
            let (chunk, rest) = data.split_at(room.min(data.len()));
            if let Some(current) = &mut self.current {
                current.update(chunk);
            }
            if offset < SIDECAR_OVERLAP
                && let Some(previous) = &mut self.previous
            {
                let wanted = usize::try_from(SIDECAR_OVERLAP - offset).unwrap_or(0);
                let (overlap, _) = chunk.split_at(wanted.min(chunk.len()));
                previous.update(overlap);
                let complete = offset + overlap.len() as u64 == SIDECAR_OVERLAP;
                if complete && let Some(previous) = self.previous.take() {
                    self.push(previous);
                }
            }
            self.pos += chunk.len() as u64;
            data = rest;
        }
    }

    fn push(&mut self, window: Hmac<Sha256>) {
        self.tags
            .extend_from_slice(&truncate_tag(&window.finalize().into_bytes()));
    }
}

impl std::fmt::Debug for SidecarBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarBuilder")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

/// The sidecar of an encrypted body (`enc ‖ mac`) encrypted with `key` for `ty`.
pub fn compute_sidecar(key: &MediaKey, ty: MediaType, body: &[u8]) -> Vec<u8> {
    let mut builder = SidecarBuilder::new(key, ty);
    builder.update(body);
    builder.finish()
}

/// Number of sidecar windows of a body (`enc ‖ mac`) of `body_len` bytes.
pub(crate) fn window_count(body_len: u64) -> u64 {
    body_len
        .saturating_add(crate::BLOCK_LEN as u64)
        .div_ceil(SIDECAR_WINDOW)
}

/// Length of a sidecar for a body of `body_len` bytes.
pub(crate) fn sidecar_len(body_len: u64) -> u64 {
    window_count(body_len) * MAC_LEN as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, written as plainly as possible.
    fn reference(keys: &MediaKeys, body: &[u8]) -> Vec<u8> {
        let mut stream = keys.iv().to_vec();
        stream.extend_from_slice(body);
        let mut out = Vec::new();
        let mut start = 0;
        while start < stream.len() {
            let end = (start + 65536 + 16).min(stream.len());
            let mut mac = keys.hmac();
            mac.update(&stream[start..end]);
            out.extend_from_slice(&mac.finalize().into_bytes()[..10]);
            start += 65536;
        }
        out
    }

    #[test]
    fn matches_the_definition_at_window_edges() {
        let key = MediaKey::from_bytes([3; 32]);
        let keys = key.expand(MediaType::Video);
        let w = 65536;
        for len in [
            0,
            1,
            10,
            26,
            w - 17,
            w - 16,
            w - 15,
            w,
            w + 1,
            2 * w - 16,
            2 * w,
            3 * w + 5,
        ] {
            let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let expected = reference(&keys, &body);
            assert_eq!(expected.len() as u64, sidecar_len(len as u64), "len {len}");
            for chunk in [1, 15, 16, 17, 4096, 65536, 100_000] {
                let mut builder = SidecarBuilder::from_keys(&keys);
                for piece in body.chunks(chunk) {
                    builder.update(piece);
                }
                assert_eq!(builder.finish(), expected, "len {len}, chunk {chunk}");
            }
        }
    }
}
