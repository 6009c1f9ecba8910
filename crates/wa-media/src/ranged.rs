//! Random access with a sidecar: decrypt any range, releasing each 64 KiB window only once its
//! sidecar entry has been checked.
//!
//! In body coordinates (`enc ‖ mac`, which is `iv ‖ enc ‖ mac` shifted by 16), window `n` is
//! `body[n × 65536 − 16 .. (n + 1) × 65536]` (for window 0: the IV, then `body[..65536]`),
//! clipped at the end of the body. Its first 16 bytes are the CBC IV of the ciphertext it
//! decrypts, `enc[n × 65536 .. (n + 1) × 65536]`, which is also where its plaintext sits.

use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;

use aes::Aes256;
use aes::cipher::InnerIvInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::cbc_blocks::{self, CbcDecryptor};
use crate::decrypt::check_body_len;
use crate::sidecar::{sidecar_len, window_count};
use crate::{BLOCK_LEN, Error, MAC_LEN, MediaKey, MediaType, SIDECAR_WINDOW};

const OVERLAP: u64 = BLOCK_LEN as u64;

/// Decrypts windows of a body on their own, each checked against the sidecar first.
///
/// The sidecar authenticates every window separately, so a player can fetch and show any part
/// of a file (an HTTP range request, say) without the rest, and never sees a byte that was not
/// checked. The MAC at the end of the body is not checked here (it covers the whole body); the
/// last window's sidecar entry does cover it.
///
/// ```
/// use wa_media::{MediaKey, MediaType, RangedDecryptor, encrypt};
///
/// let key = MediaKey::from_bytes([9; 32]);
/// let plain: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
/// let (body, info) = encrypt(&key, MediaType::Video, &plain);
/// let sidecar = info.sidecar.unwrap();
///
/// let ranged = RangedDecryptor::new(&key, MediaType::Video, &sidecar, body.len() as u64)?;
/// // Bytes 70000..70100 of the plaintext: only window 1 is fetched, checked and decrypted.
/// let mut out = Vec::new();
/// ranged.decrypt_range(std::io::Cursor::new(&body), 70_000..70_100, &mut out)?;
/// assert_eq!(out, &plain[70_000..70_100]);
/// # Ok::<(), wa_media::Error>(())
/// ```
pub struct RangedDecryptor {
    iv: Zeroizing<[u8; BLOCK_LEN]>,
    aes: Aes256,
    mac: Hmac<Sha256>,
    sidecar: Vec<u8>,
    body_len: u64,
}

impl RangedDecryptor {
    /// Prepares to decrypt windows of a body of `body_len` bytes (`enc ‖ mac`, as served)
    /// encrypted with `key` for `ty`, whose sidecar is `sidecar`.
    ///
    /// # Errors
    /// [`Error::TooShort`] or [`Error::NotBlockAligned`] if no body can be `body_len` long,
    /// [`Error::SidecarLength`] if the sidecar does not have one entry per window.
    pub fn new(
        key: &MediaKey,
        ty: MediaType,
        sidecar: &[u8],
        body_len: u64,
    ) -> Result<Self, Error> {
        check_body_len(body_len)?;
        let expected = sidecar_len(body_len);
        if sidecar.len() as u64 != expected {
            return Err(Error::SidecarLength {
                expected,
                actual: sidecar.len() as u64,
            });
        }
        let keys = key.expand(ty);
        Ok(Self {
            iv: Zeroizing::new(*keys.iv()),
            aes: keys.aes(),
            mac: keys.hmac(),
            sidecar: sidecar.to_vec(),
            body_len,
        })
    }

    /// Number of windows (and sidecar entries).
    pub fn window_count(&self) -> u64 {
        window_count(self.body_len)
    }

    /// Length of the ciphertext `enc`.
    fn enc_len(&self) -> u64 {
        self.body_len - MAC_LEN as u64
    }

    /// The bytes of the body to fetch for window `window`, or `None` past the last window.
    pub fn window_body_range(&self, window: u64) -> Option<Range<u64>> {
        (window < self.window_count()).then(|| {
            let start = (window * SIDECAR_WINDOW).saturating_sub(OVERLAP);
            let end = ((window + 1) * SIDECAR_WINDOW).min(self.body_len);
            start..end
        })
    }

    /// The windows to decrypt for the plaintext bytes `plain` (empty if the range is empty).
    ///
    /// Plaintext byte `i` comes from window `i / 65536`; a range reaching past the end of the
    /// file is cut short.
    pub fn windows_for(&self, plain: Range<u64>) -> Range<u64> {
        let end = plain.end.min(self.enc_len());
        if plain.start >= end {
            return 0..0;
        }
        plain.start / SIDECAR_WINDOW..(end - 1) / SIDECAR_WINDOW + 1
    }

    /// Checks window `window` (the bytes of [`window_body_range`](Self::window_body_range))
    /// against its sidecar entry, then decrypts it and appends its plaintext to `out`: up to
    /// 64 KiB, less the padding for the window that holds the end of the file, nothing for a
    /// last window made only of the final block and the MAC.
    ///
    /// # Errors
    /// [`Error::WindowOutOfRange`] (a caller mistake), [`Error::WindowLength`],
    /// [`Error::SidecarMismatch`], or [`Error::BadPadding`] for the window holding the end.
    /// `out` is left as it was.
    pub fn decrypt_window(&self, window: u64, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let Some(range) = self.window_body_range(window) else {
            return Err(Error::WindowOutOfRange {
                window,
                windows: self.window_count(),
            });
        };
        let expected = range.end - range.start;
        if data.len() as u64 != expected {
            return Err(Error::WindowLength {
                window,
                expected,
                actual: data.len() as u64,
            });
        }

        let mut mac = self.mac.clone();
        if window == 0 {
            mac.update(&*self.iv);
        }
        mac.update(data);
        let tag = usize::try_from(window)
            .ok()
            .and_then(|w| w.checked_mul(MAC_LEN))
            .and_then(|start| self.sidecar.get(start..start.checked_add(MAC_LEN)?));
        let verified = tag.is_some_and(|tag| mac.verify_truncated_left(tag).is_ok());
        if !verified {
            return Err(Error::SidecarMismatch { window });
        }

        // The ciphertext this window decrypts, and the block before it (its CBC IV).
        let own_start = window * SIDECAR_WINDOW;
        let own_end = ((window + 1) * SIDECAR_WINDOW).min(self.enc_len());
        if own_start >= own_end {
            return Ok(());
        }
        let (iv, enc) = if window == 0 {
            (*self.iv, data)
        } else {
            let Some((iv, rest)) = data.split_first_chunk::<BLOCK_LEN>() else {
                return Err(Error::WindowLength {
                    window,
                    expected,
                    actual: data.len() as u64,
                });
            };
            (*iv, rest)
        };
        let own_len = usize::try_from(own_end - own_start).unwrap_or(usize::MAX);
        let enc = enc.get(..own_len).unwrap_or_default();

        let start = out.len();
        out.extend_from_slice(enc);
        let mut cbc = CbcDecryptor::inner_iv_init(self.aes.clone(), &iv.into());
        let plain = out.get_mut(start..).unwrap_or_default();
        cbc_blocks::decrypt_in_place(&mut cbc, plain);
        if own_end == self.enc_len() {
            match cbc_blocks::unpadded_len(plain) {
                Some(len) => out.truncate(start + len),
                None => {
                    out.truncate(start);
                    return Err(Error::BadPadding);
                }
            }
        }
        Ok(())
    }

    /// Writes the plaintext bytes `plain` (any range; cut short at the end of the file) to
    /// `output`, reading the windows it needs from `body` (the whole body, seekable) and
    /// checking each before writing any of it. Returns the number of bytes written.
    ///
    /// # Errors
    /// As [`decrypt_window`](Self::decrypt_window) ([`Error::WindowLength`] when `body` ends
    /// early), and [`Error::Io`] when reading or writing fails. Windows before the failing one
    /// have been written.
    pub fn decrypt_range<R: Read + Seek, W: Write>(
        &self,
        mut body: R,
        plain: Range<u64>,
        mut output: W,
    ) -> Result<u64, Error> {
        let mut data = Vec::new();
        let mut window_plain = Zeroizing::new(Vec::new());
        let mut written = 0;
        for window in self.windows_for(plain.clone()) {
            let Some(range) = self.window_body_range(window) else {
                break;
            };
            body.seek(SeekFrom::Start(range.start))?;
            data.clear();
            let want = range.end - range.start;
            let got = body.by_ref().take(want).read_to_end(&mut data)?;
            if got as u64 != want {
                return Err(Error::WindowLength {
                    window,
                    expected: want,
                    actual: got as u64,
                });
            }
            window_plain.clear();
            self.decrypt_window(window, &data, &mut window_plain)?;

            // The part of this window's plaintext that was asked for.
            let base = window * SIDECAR_WINDOW;
            let from = plain.start.saturating_sub(base);
            let to = plain
                .end
                .saturating_sub(base)
                .min(window_plain.len() as u64);
            let wanted = usize::try_from(from)
                .ok()
                .zip(usize::try_from(to).ok())
                .and_then(|(from, to)| window_plain.get(from..to))
                .unwrap_or_default();
            output.write_all(wanted)?;
            written += wanted.len() as u64;
        }
        output.flush()?;
        Ok(written)
    }
}

impl fmt::Debug for RangedDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangedDecryptor")
            .field("body_len", &self.body_len)
            .field("windows", &self.window_count())
            .finish_non_exhaustive()
    }
}
