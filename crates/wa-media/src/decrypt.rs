//! Decryption that never releases unauthenticated plaintext: buffered, or streamed into a
//! [`Sink`] committed only after every check.

use std::fmt;
use std::io::{self, Read};

use aes::cipher::InnerIvInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::cbc_blocks::{self, CbcDecryptor};
use crate::encrypt::IO_BUF;
use crate::{BLOCK_LEN, CHUNK, Error, MAC_LEN, MIN_BODY_LEN, MediaKey, MediaType, Sink};

/// The hashes a message gives for its file, to be checked on decryption (both optional: the
/// MAC is always checked).
///
/// ```
/// # let (plain_hash, enc_hash) = ([0; 32], [1; 32]);
/// let expected = wa_media::Expected::new().file_sha256(plain_hash).file_enc_sha256(enc_hash);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expected {
    /// `fileSha256`: SHA-256 of the plaintext.
    pub file_sha256: Option<[u8; 32]>,
    /// `fileEncSha256`: SHA-256 of the body `enc ‖ mac`.
    pub file_enc_sha256: Option<[u8; 32]>,
}

impl Expected {
    /// Checks nothing but the MAC.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also checks the plaintext against `fileSha256`.
    pub fn file_sha256(mut self, hash: [u8; 32]) -> Self {
        self.file_sha256 = Some(hash);
        self
    }

    /// Also checks the body against `fileEncSha256`.
    pub fn file_enc_sha256(mut self, hash: [u8; 32]) -> Self {
        self.file_enc_sha256 = Some(hash);
        self
    }
}

/// A successful streaming decryption: what the committed sink gave back, and the plaintext
/// length.
#[derive(Debug)]
#[non_exhaustive]
pub struct Decrypted<T> {
    /// The committed sink's output (the file, the buffer, ...).
    pub output: T,
    /// Length of the plaintext.
    pub file_length: u64,
}

/// Splits a body into `enc` and `mac`, checking its length.
fn split_body(body: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    check_body_len(body.len() as u64)?;
    Ok(body.split_at(body.len() - MAC_LEN))
}

/// Checks that a body of `len` bytes can be whole AES blocks (at least one) and the MAC.
pub(crate) fn check_body_len(len: u64) -> Result<(), Error> {
    if len < MIN_BODY_LEN as u64 {
        return Err(Error::TooShort { len });
    }
    if !(len - MAC_LEN as u64).is_multiple_of(BLOCK_LEN as u64) {
        return Err(Error::NotBlockAligned { len });
    }
    Ok(())
}

fn check_hash(hasher: Option<Sha256>, expected: Option<[u8; 32]>, err: Error) -> Result<(), Error> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let matches =
        hasher.is_some_and(|hasher| bool::from(hasher.finalize().as_slice().ct_eq(&expected)));
    if matches { Ok(()) } else { Err(err) }
}

/// Decrypts a whole body (`enc ‖ mac`) in memory.
///
/// In order: the length, the MAC (constant time), `fileEncSha256` if expected, the padding after
/// decryption, `fileSha256` if expected. The plaintext is returned only if all pass.
///
/// # Errors
/// [`Error::TooShort`], [`Error::NotBlockAligned`], [`Error::MacMismatch`],
/// [`Error::EncSha256Mismatch`], [`Error::BadPadding`] or [`Error::PlainSha256Mismatch`]: the
/// first check that failed.
pub fn decrypt(
    key: &MediaKey,
    ty: MediaType,
    expected: &Expected,
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    let (enc, tag) = split_body(body)?;
    let keys = key.expand(ty);

    // The MAC and the hash of the body in one pass, each chunk hashed twice while in cache.
    let mut mac = keys.hmac();
    mac.update(keys.iv());
    let mut enc_sha = expected.file_enc_sha256.map(|_| Sha256::new());
    for chunk in enc.chunks(CHUNK) {
        mac.update(chunk);
        if let Some(enc_sha) = &mut enc_sha {
            enc_sha.update(chunk);
        }
    }
    mac.verify_truncated_left(tag)
        .map_err(|_| Error::MacMismatch)?;
    if let Some(enc_sha) = &mut enc_sha {
        enc_sha.update(tag);
    }
    check_hash(enc_sha, expected.file_enc_sha256, Error::EncSha256Mismatch)?;

    let mut plain = vec![0; enc.len()];
    let mut cbc = CbcDecryptor::inner_iv_init(keys.aes(), &(*keys.iv()).into());
    for (enc, plain) in enc.chunks(CHUNK).zip(plain.chunks_mut(CHUNK)) {
        cbc_blocks::decrypt_b2b(&mut cbc, enc, plain);
    }
    let len = cbc_blocks::unpadded_len(&plain).ok_or(Error::BadPadding)?;
    plain.truncate(len);

    if let Some(hash) = expected.file_sha256
        && !bool::from(Sha256::digest(&plain).as_slice().ct_eq(&hash))
    {
        return Err(Error::PlainSha256Mismatch);
    }
    Ok(plain)
}

/// The checks and the cipher of a streaming decryption: whole blocks in, in place.
struct Core {
    cbc: CbcDecryptor,
    mac: Hmac<Sha256>,
    enc_sha: Option<Sha256>,
    plain_sha: Option<Sha256>,
    expected: Expected,
    file_length: u64,
}

impl Core {
    fn new(key: &MediaKey, ty: MediaType, expected: &Expected) -> Self {
        let keys = key.expand(ty);
        let mut mac = keys.hmac();
        mac.update(keys.iv());
        Self {
            cbc: CbcDecryptor::inner_iv_init(keys.aes(), &(*keys.iv()).into()),
            mac,
            enc_sha: expected.file_enc_sha256.map(|_| Sha256::new()),
            plain_sha: expected.file_sha256.map(|_| Sha256::new()),
            expected: *expected,
            file_length: 0,
        }
    }

    /// Authenticates (later) and decrypts `buf` in place: whole blocks, none of them the last.
    fn process(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(CHUNK) {
            self.mac.update(chunk);
            if let Some(enc_sha) = &mut self.enc_sha {
                enc_sha.update(&*chunk);
            }
            cbc_blocks::decrypt_in_place(&mut self.cbc, chunk);
            if let Some(plain_sha) = &mut self.plain_sha {
                plain_sha.update(&*chunk);
            }
            self.file_length += chunk.len() as u64;
        }
    }

    /// Checks the MAC and the encrypted hash over the final blocks `enc` and the `tag`, then
    /// decrypts `enc` in place and returns the length of its plaintext without the padding.
    fn finish_enc(&mut self, enc: &mut [u8], tag: &[u8]) -> Result<usize, Error> {
        let mut mac = self.mac.clone();
        mac.update(enc);
        mac.verify_truncated_left(tag)
            .map_err(|_| Error::MacMismatch)?;
        if let Some(enc_sha) = &mut self.enc_sha {
            enc_sha.update(&*enc);
            enc_sha.update(tag);
        }
        check_hash(
            self.enc_sha.take(),
            self.expected.file_enc_sha256,
            Error::EncSha256Mismatch,
        )?;
        cbc_blocks::decrypt_in_place(&mut self.cbc, enc);
        let len = cbc_blocks::unpadded_len(enc).ok_or(Error::BadPadding)?;
        let plain = enc.get(..len).unwrap_or_default();
        if let Some(plain_sha) = &mut self.plain_sha {
            plain_sha.update(plain);
        }
        self.file_length += len as u64;
        Ok(len)
    }

    /// Checks the plaintext hash once everything went through.
    fn finish_plain(&mut self) -> Result<(), Error> {
        check_hash(
            self.plain_sha.take(),
            self.expected.file_sha256,
            Error::PlainSha256Mismatch,
        )
    }
}

/// Bytes held back from processing: they may be the last block (with the padding) and the MAC.
const HOLD: usize = BLOCK_LEN + MAC_LEN;

/// The staging buffer: a full one is processed down to the last `HOLD` bytes, leaving exactly
/// `IO_BUF` bytes (whole blocks) to process each time.
const STAGE: usize = IO_BUF + HOLD;

/// Streaming decryption into a [`Sink`], committed only after every check.
///
/// The MAC is the last 10 bytes of the body, so plaintext can't be authenticated until the end:
/// [`update`](Self::update) writes decrypted blocks to the sink (uncommitted), and
/// [`finish`](Self::finish) checks the length, the MAC, `fileEncSha256` if expected, the
/// padding and `fileSha256` if expected, then commits the sink, or aborts it on the first
/// failure. Dropping the decryptor drops the sink uncommitted. Memory use is fixed (about
/// 256 KiB), whatever the file size and the chunking of the input.
///
/// ```
/// use wa_media::{Decryptor, Expected, MediaKey, MediaType, encrypt};
///
/// let key = MediaKey::from_bytes([2; 32]);
/// let (body, info) = encrypt(&key, MediaType::Document, b"quarterly report");
///
/// let expected = Expected::new().file_sha256(info.file_sha256);
/// let mut decryptor = Decryptor::new(&key, MediaType::Document, &expected, Vec::new());
/// for chunk in body.chunks(7) {
///     decryptor.update(chunk)?;
/// }
/// let done = decryptor.finish()?;
/// assert_eq!(done.output, b"quarterly report");
/// # Ok::<(), wa_media::Error>(())
/// ```
pub struct Decryptor<S: Sink> {
    core: Core,
    /// Ciphertext not processed yet: `buf[..filled]`.
    buf: Zeroizing<Vec<u8>>,
    filled: usize,
    body_len: u64,
    sink: S,
    /// Set when writing to the sink failed: the stream is then unusable.
    failed: bool,
}

impl<S: Sink> Decryptor<S> {
    /// Starts decrypting a body encrypted with `key` for `ty` into `sink`.
    pub fn new(key: &MediaKey, ty: MediaType, expected: &Expected, sink: S) -> Self {
        Self {
            core: Core::new(key, ty, expected),
            buf: Zeroizing::new(vec![0; STAGE]),
            filled: 0,
            body_len: 0,
            sink,
            failed: false,
        }
    }

    /// Takes the next bytes of the body, in chunks of any size.
    ///
    /// # Errors
    /// [`Error::Io`] if writing to the sink failed (then, or in an earlier call).
    pub fn update(&mut self, mut body: &[u8]) -> Result<(), Error> {
        self.check_usable()?;
        while !body.is_empty() {
            let free = self.buf.get_mut(self.filled..).unwrap_or_default();
            let take = free.len().min(body.len());
            let (now, rest) = body.split_at(take);
            free.iter_mut().zip(now).for_each(|(f, b)| *f = *b);
            self.filled += take;
            self.body_len += take as u64;
            body = rest;
            self.drain_if_full()?;
        }
        Ok(())
    }

    /// Reads the next bytes of the body from `input` straight into the staging buffer (one
    /// `read` call). Returns the number of bytes read: 0 at the end of the input.
    ///
    /// # Errors
    /// The error of `input` (`Interrupted` included), or [`Error::Io`] if writing to the sink
    /// failed.
    pub fn read_from(&mut self, input: &mut impl Read) -> Result<usize, Error> {
        self.check_usable()?;
        self.drain_if_full()?;
        let free = self.buf.get_mut(self.filled..).unwrap_or_default();
        let n = input.read(free)?.min(free.len());
        self.filled += n;
        self.body_len += n as u64;
        self.drain_if_full()?;
        Ok(n)
    }

    /// Runs every check; commits the sink and returns its output if they all pass, aborts it and
    /// returns the first failure otherwise.
    ///
    /// # Errors
    /// [`Error::TooShort`], [`Error::NotBlockAligned`], [`Error::MacMismatch`],
    /// [`Error::EncSha256Mismatch`], [`Error::BadPadding`], [`Error::PlainSha256Mismatch`], or
    /// [`Error::Io`] if writing to or committing the sink failed.
    pub fn finish(self) -> Result<Decrypted<S::Output>, Error> {
        let Self {
            mut core,
            mut buf,
            filled,
            body_len,
            mut sink,
            failed,
        } = self;
        let checked = if failed {
            Err(Error::Io(sink_failed()))
        } else {
            finish_checks(&mut core, &mut buf, filled, body_len, &mut sink)
        };
        match checked {
            Ok(()) => Ok(Decrypted {
                output: sink.commit()?,
                file_length: core.file_length,
            }),
            Err(err) => {
                sink.abort();
                Err(err)
            }
        }
    }

    /// Stops, discarding everything written to the sink.
    pub fn abort(self) {
        self.sink.abort();
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.failed {
            Err(Error::Io(sink_failed()))
        } else {
            Ok(())
        }
    }

    /// Processes a full staging buffer down to the bytes that may be the end of the body.
    fn drain_if_full(&mut self) -> Result<(), Error> {
        if self.filled < STAGE {
            return Ok(());
        }
        let ready = self.filled - HOLD;
        let blocks = self.buf.get_mut(..ready).unwrap_or_default();
        self.core.process(blocks);
        if let Err(err) = self.sink.write(blocks) {
            self.failed = true;
            return Err(err.into());
        }
        self.buf.copy_within(ready..self.filled, 0);
        self.filled -= ready;
        Ok(())
    }
}

fn finish_checks<S: Sink>(
    core: &mut Core,
    buf: &mut [u8],
    filled: usize,
    body_len: u64,
    sink: &mut S,
) -> Result<(), Error> {
    check_body_len(body_len)?;
    // What was processed is whole blocks and the body is whole blocks and the MAC, so the held
    // bytes are whole blocks (at least one) and the MAC.
    let held = buf.get_mut(..filled).unwrap_or_default();
    let (enc, tag) = held.split_at_mut(filled.saturating_sub(MAC_LEN));
    let len = core.finish_enc(enc, tag)?;
    sink.write(enc.get(..len).unwrap_or_default())?;
    core.finish_plain()
}

fn sink_failed() -> io::Error {
    io::Error::other("an earlier write to the plaintext sink failed")
}

impl<S: Sink> fmt::Debug for Decryptor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("body_len", &self.body_len)
            .finish_non_exhaustive()
    }
}

/// Decrypts everything `input` yields into `sink`, committing it only if every check passes
/// (see [`Decryptor`]); memory use is fixed whatever the size of the input.
///
/// With a [`FileSink`](crate::FileSink) the output file appears, complete, only on success.
///
/// # Errors
/// As [`Decryptor::finish`], and [`Error::Io`] if reading `input` fails. The sink is aborted.
pub fn decrypt_stream<S: Sink>(
    key: &MediaKey,
    ty: MediaType,
    expected: &Expected,
    mut input: impl Read,
    sink: S,
) -> Result<Decrypted<S::Output>, Error> {
    let mut decryptor = Decryptor::new(key, ty, expected, sink);
    loop {
        match decryptor.read_from(&mut input) {
            Ok(0) => break,
            Ok(_) => {}
            Err(Error::Io(err)) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                decryptor.abort();
                return Err(err);
            }
        }
    }
    decryptor.finish()
}
