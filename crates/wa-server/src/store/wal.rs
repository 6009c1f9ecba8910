//! The embedded store's write-ahead log: each committed batch of writes, appended and
//! fsync'd before any of its jobs hears "done".
//!
//! The log is a *segment* per overlay: when the store freezes its overlay to write it to the
//! database file, the current segment becomes `<file>.wal.old` and a new `<file>.wal` starts;
//! once the file has the frozen overlay, the old segment is removed. Each segment is numbered
//! with the flush that will put its writes in the file, and the file records how many flushes
//! it had: at open, a segment whose number the file has already counted is skipped (its
//! removal may not have reached the disk), the others are replayed in order.
//!
//! A segment is a header (`WAWAL`, a format version, the segment's number as u64 LE) and then
//! records, each
//! `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`. A payload is a list of
//! writes, each `[table: u8][kind: u8, 1 put, 0 delete][key length: LEB128][key]` and, for a
//! put, `[value length: LEB128][value]`. The table byte is the table's position in
//! [`Table::ALL`], so new tables are only ever added at its end.
//!
//! Every record holds whole values, never changes relative to an earlier state, so replaying a
//! log over a file that already has some of its writes gives the same result: the store
//! replays the log into the file when it opens, and empties the log only after the file's
//! commit is durable.
//!
//! The file grows by [`CHUNK`]s of zeros, each fsync'd once, and records overwrite them: so
//! the fsync after each batch writes the batch's data pages only, not the file's size or its
//! block map as well (on this project's machine that halved the store's CPU per fsync). A
//! record header of zeros is the end of the log.
//!
//! On Linux, records are written with `O_DIRECT | O_DSYNC` where the filesystem takes it:
//! whole 4 KiB blocks, durable when the write returns, past the page cache. Into
//! the zeros grown in advance such a write changes no metadata, so the device gets the blocks
//! and a cache flush, and the kernel skips the page cache's writeback (about a quarter less
//! system time per append than `write` and `fdatasync` on this project's machine). The zeros
//! themselves go the same way, from one zeroed buffer, so that growing the log copies nothing
//! into the page cache. Elsewhere, or where the filesystem refuses, records and zeros go
//! through the page cache and `fdatasync`; the file's bytes are the same either way.
//!
//! A crash can leave the last record torn (its length runs past the end of the file, or its
//! checksum fails and only zeros follow it): it was never acknowledged, and is dropped. A bad
//! record with more after it is damage, and opening fails rather than lose what follows.

use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};
#[cfg(target_os = "linux")]
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::overlay::Layer;
use super::{StoreError, Table};

/// The file's first bytes: the format and its version (then the segment's number).
const MAGIC: &[u8; 8] = b"WAWAL\0\0\x01";

/// The header's length: the magic and the segment's number.
const HEADER_LEN: usize = 16;

/// How much the file grows at once (zero-filled, fsync'd): 4 MiB.
pub const CHUNK: u64 = 4 << 20;

/// One write of a record.
pub(super) type Write = (Table, Vec<u8>, Option<Vec<u8>>);

/// What is wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("write-ahead log damaged at byte {offset}: {detail}")]
pub struct WalError {
    /// Where the damage starts.
    pub offset: u64,
    /// What is wrong.
    pub detail: String,
}

/// What a log's bytes hold.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The segment's number (none for a file cut short inside its header: it holds nothing).
    pub number: Option<u64>,
    /// The writes of each whole record, in order.
    pub(super) records: Vec<Vec<Write>>,
    /// Where the whole records end (a torn last record starts there).
    pub valid_len: u64,
    /// Bytes after the whole records that are not all zeros: a torn last record, dropped.
    pub torn: u64,
}

/// Reads a log's bytes: its whole records, and where they end.
///
/// # Errors
/// When the header is wrong, or a record other than the last is damaged (a bad checksum with
/// more after it, or a payload that does not parse).
pub fn decode(bytes: &[u8]) -> Result<Decoded, WalError> {
    let mut decoded = Decoded::default();
    let Some((magic, number)) = bytes
        .split_first_chunk::<8>()
        .and_then(|(magic, rest)| Some((magic, rest.first_chunk::<8>()?)))
    else {
        // Empty, or a crash while the header was written: nothing was ever logged after it.
        return Ok(decoded);
    };
    if magic != MAGIC {
        return Err(WalError {
            offset: 0,
            detail: "not a wa-server write-ahead log of this version".to_owned(),
        });
    }
    decoded.number = Some(u64::from_le_bytes(*number));
    let mut at = HEADER_LEN;
    decoded.valid_len = at as u64;
    while at < bytes.len() {
        let Some(&[l0, l1, l2, l3, c0, c1, c2, c3]) = bytes.get(at..at + 8) else {
            break; // a torn header
        };
        if [l0, l1, l2, l3, c0, c1, c2, c3] == [0; 8] {
            break; // the zeros past the last record
        }
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break; // a torn payload
        };
        let end = at + 8 + len;
        if crc32fast::hash(payload) != crc {
            if bytes.get(end..).unwrap_or_default().iter().all(|&b| b == 0) {
                break; // the last record, torn inside
            }
            return Err(WalError {
                offset: at as u64,
                detail: "a record's checksum does not match, and records follow it".to_owned(),
            });
        }
        let writes = parse_payload(payload).map_err(|(pos, detail)| WalError {
            offset: (at + 8 + pos) as u64,
            detail,
        })?;
        decoded.records.push(writes);
        at = end;
        decoded.valid_len = at as u64;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    if !rest.iter().all(|&b| b == 0) {
        decoded.torn = rest.len() as u64;
    }
    Ok(decoded)
}

fn parse_payload(payload: &[u8]) -> Result<Vec<Write>, (usize, String)> {
    let mut writes = Vec::new();
    let mut r = Reader {
        bytes: payload,
        at: 0,
    };
    while r.at < payload.len() {
        let start = r.at;
        let table = r.byte()?;
        let table = *Table::ALL
            .get(usize::from(table))
            .ok_or((start, format!("no table number {table}")))?;
        let kind = r.byte()?;
        let key = r.bytes()?.to_vec();
        let value = match kind {
            0 => None,
            1 => Some(r.bytes()?.to_vec()),
            other => return Err((start + 1, format!("unknown write kind {other}"))),
        };
        writes.push((table, key, value));
    }
    Ok(writes)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, (usize, String)> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or((self.at, "a write is cut short".to_owned()))?;
        self.at += 1;
        Ok(b)
    }

    fn bytes(&mut self) -> Result<&'a [u8], (usize, String)> {
        let start = self.at;
        let mut len: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            len |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let end = self.at.saturating_add(len);
                let out = self
                    .bytes
                    .get(self.at..end)
                    .ok_or((start, format!("a length of {len} runs past the record")))?;
                self.at = end;
                return Ok(out);
            }
        }
        Err((start, "a length is longer than 64 bits".to_owned()))
    }
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7F) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends `layer`'s writes to `out` as one record.
pub(super) fn encode(layer: &Layer, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    for (table, key, slot) in layer.iter() {
        out.push(table.index() as u8);
        out.push(u8::from(slot.value.is_some()));
        put_len(out, key.len());
        out.extend_from_slice(key);
        if let Some(value) = &slot.value {
            put_len(out, value.len());
            out.extend_from_slice(value);
        }
    }
    let payload = out.get(start + 8..).unwrap_or_default();
    let len = u32::try_from(payload.len())
        .map_err(|_| StoreError::Backend("a batch of writes over 4 GiB".to_owned()))?;
    let crc = crc32fast::hash(payload);
    let mut head = [0_u8; 8];
    let (l, c) = head.split_at_mut(4);
    l.copy_from_slice(&len.to_le_bytes());
    c.copy_from_slice(&crc.to_le_bytes());
    if let Some(slot) = out.get_mut(start..start + 8) {
        slot.copy_from_slice(&head);
    }
    Ok(())
}

fn io(path: &Path, what: &str) -> impl Fn(std::io::Error) -> StoreError {
    let path = path.display().to_string();
    let what = what.to_owned();
    move |e| StoreError::Backend(format!("{what} the write-ahead log {path}: {e}"))
}

/// Creates (mode 0600) or truncates a file for writing and reading.
fn create(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes the directory's entries (a created, renamed or removed segment) durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// The previous segment's path: `<log>.old`.
pub(super) fn old_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".old");
    PathBuf::from(name)
}

/// What one segment left by an earlier run holds.
pub(super) struct Segment {
    pub(super) number: u64,
    pub(super) records: Vec<Vec<Write>>,
    /// Bytes of a torn last record that was dropped.
    pub(super) torn: u64,
}

/// Reads the segments at `path` and `<path>.old`, lowest number first.
///
/// # Errors
/// When one cannot be read, or is damaged before its last record.
pub(super) fn read_segments(path: &Path) -> Result<Vec<Segment>, StoreError> {
    let mut segments = Vec::new();
    for path in [old_path(path), path.to_owned()] {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path, "reading")(e)),
        };
        let decoded = decode(&bytes).map_err(|e| {
            StoreError::Backend(format!(
                "{}: {e}; move it aside to start without it",
                path.display()
            ))
        })?;
        if let Some(number) = decoded.number {
            segments.push(Segment {
                number,
                records: decoded.records,
                torn: decoded.torn,
            });
        }
    }
    segments.sort_by_key(|s| s.number);
    Ok(segments)
}

/// The block a direct write covers whole, and aligns its buffer and offset to: 4 KiB, the
/// largest logical block size of common devices.
const BLOCK: usize = 4096;

/// The segment open for direct, synchronous writes (`O_DIRECT | O_DSYNC`): each append
/// writes the blocks from the one its record starts in to the one it ends in, the first with
/// the bytes before the record again (the same bytes: a write torn by a crash leaves them as
/// they were) and the last with zeros after it (the zeros past the last record).
#[derive(Debug)]
struct Direct {
    file: File,
    /// The bytes of the block the log's end falls in, before the end.
    tail: Vec<u8>,
    /// Room for one write, a block longer than the longest so far, so that a slice of it
    /// starts on a block boundary (direct writes need their memory aligned too).
    room: Vec<u8>,
}

impl Direct {
    /// Opens `path` for direct writes, if this system and its filesystem take them; `head`
    /// is what the file holds so far (its header).
    #[cfg(target_os = "linux")]
    fn open(path: &Path, head: &[u8]) -> Option<Direct> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(path)
            .ok()?;
        Some(Direct {
            file,
            tail: head.get(head.len() - head.len() % BLOCK..)?.to_vec(),
            room: Vec::new(),
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn open(_path: &Path, _head: &[u8]) -> Option<Direct> {
        None
    }

    /// Writes `record` at `at` (the log's end) and returns when it is on disk.
    #[cfg(target_os = "linux")]
    fn write(&mut self, at: u64, record: &[u8]) -> std::io::Result<()> {
        let misaligned = || std::io::Error::from(std::io::ErrorKind::InvalidInput);
        let start = at - at % BLOCK as u64;
        if (at - start) as usize != self.tail.len() {
            return Err(misaligned());
        }
        let data = self.tail.len() + record.len();
        let whole = data.div_ceil(BLOCK) * BLOCK;
        let tail = self.tail.len();
        let blocks = aligned(&mut self.room, whole)?;
        let (head, rest) = blocks.split_at_mut(tail);
        head.copy_from_slice(&self.tail);
        let (body, zeros) = rest.split_at_mut(record.len());
        body.copy_from_slice(record);
        zeros.fill(0);
        self.file.write_all_at(blocks, start)?;
        let kept = (at as usize + record.len()) % BLOCK;
        self.tail.clear();
        self.tail
            .extend_from_slice(blocks.get(data - kept..data).unwrap_or_default());
        // A large batch's room is not kept.
        if self.room.len() > 1 << 20 {
            self.room = Vec::new();
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn write(&mut self, _at: u64, _record: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    /// Writes zeros from `from` (the file's end) to `to` (a multiple of [`CHUNK`]) and returns
    /// when they are on disk: from the first block boundary at or after `from`, since the
    /// block `from` falls in is already the file's and zeros past its end. Straight from one
    /// zeroed buffer to the device, so growing the log copies nothing through the page cache
    /// (the copy alone was 4% of the store writer's samples, before the pages' clearing).
    #[cfg(target_os = "linux")]
    fn zero(&mut self, from: u64, to: u64) -> std::io::Result<()> {
        /// Zeros per write (a buffer small enough that `write` keeps it as its room).
        const ZEROS: usize = 256 << 10;
        let zeros = aligned(&mut self.room, ZEROS)?;
        // `write` leaves a record's bytes in its room.
        zeros.fill(0);
        let mut at = from.div_ceil(BLOCK as u64) * BLOCK as u64;
        while at < to {
            let n = (to - at).min(ZEROS as u64) as usize;
            let chunk = zeros
                .get(..n)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            self.file.write_all_at(chunk, at)?;
            at += n as u64;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn zero(&mut self, _from: u64, _to: u64) -> std::io::Result<()> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// The first `len` bytes of `room` that start on a block boundary (direct writes need their
/// memory aligned too), growing it to a block more than `len` first.
#[cfg(target_os = "linux")]
fn aligned(room: &mut Vec<u8>, len: usize) -> std::io::Result<&mut [u8]> {
    if room.len() < len + BLOCK {
        room.resize(len + BLOCK, 0);
    }
    let offset = room.as_ptr().align_offset(BLOCK);
    room.get_mut(offset..offset + len)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// The current segment, open for appending.
#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    /// The same file for direct writes, where they work.
    direct: Option<Direct>,
    /// Whether to try direct writes.
    try_direct: bool,
    path: PathBuf,
    number: u64,
    len: u64,
    /// The file's length: zeros from `len` to here.
    allocated: u64,
    buf: Vec<u8>,
    /// A failed append could not be cut back off: the log cannot be trusted with more.
    broken: bool,
}

impl Wal {
    /// Starts a new log at `path` as segment `number`, removing what was there (and the old
    /// segment): call it once their writes are in the database file.
    pub(super) fn create(path: &Path, number: u64) -> Result<Wal, StoreError> {
        Wal::create_with(path, number, true)
    }

    /// [`Wal::create`], with direct writes tried or not.
    fn create_with(path: &Path, number: u64, try_direct: bool) -> Result<Wal, StoreError> {
        let mut wal = Wal {
            file: create(path).map_err(io(path, "creating"))?,
            direct: None,
            try_direct,
            path: path.to_owned(),
            number,
            len: 0,
            allocated: 0,
            buf: Vec::new(),
            broken: false,
        };
        wal.start()?;
        wal.remove_old();
        Ok(wal)
    }

    /// Writes the header of segment `self.number` at the start of the (empty) file.
    fn start(&mut self) -> Result<(), StoreError> {
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&self.number.to_le_bytes());
        let path = self.path.clone();
        self.file.write_all(&header).map_err(io(&path, "writing"))?;
        self.file.sync_all().map_err(io(&path, "syncing"))?;
        sync_dir(&path).map_err(io(&path, "syncing the directory of"))?;
        self.len = HEADER_LEN as u64;
        self.allocated = self.len;
        self.direct = if self.try_direct {
            Direct::open(&path, &header)
        } else {
            None
        };
        Ok(())
    }

    /// The current segment's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a failed append could not be cut back off (no more appends are safe).
    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }

    /// The current segment's length in bytes.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `layer` as one record and waits until it is on disk. On failure the log is cut
    /// back to where it was, so that a write reported failed is never replayed.
    pub(super) fn append(&mut self, layer: &Layer) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::Backend(format!(
                "the write-ahead log {} failed earlier: the store takes no writes",
                self.path.display()
            )));
        }
        self.buf.clear();
        encode(layer, &mut self.buf)?;
        let end = self.len + self.buf.len() as u64;
        let written = self.grow(end).and_then(|()| self.write_record());
        if let Err(e) = written {
            self.allocated = self.len;
            let cut = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.seek(SeekFrom::Start(self.len)).map(drop))
                .and_then(|()| self.file.sync_data());
            return Err(match cut {
                Ok(()) => io(&self.path, "writing")(e),
                Err(cut) => {
                    self.broken = true;
                    StoreError::Backend(format!(
                        "writing the write-ahead log {} failed ({e}), and so did cutting the failed record off ({cut}): the store takes no more writes",
                        self.path.display()
                    ))
                }
            });
        }
        self.len = end;
        // A large batch's buffer is not kept.
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Direct writes were refused (a misaligned buffer or offset, or a filesystem without
    /// them): the page cache, from now on. What a refused write left is written again there.
    fn refuse_direct(&mut self, e: &std::io::Error) {
        tracing::info!(path = %self.path.display(), error = %e, "the filesystem refuses direct writes: the write-ahead log goes through the page cache");
        self.direct = None;
        self.try_direct = false;
    }

    /// Writes the encoded record in `self.buf` at the end of the log, and waits until it is on
    /// disk.
    fn write_record(&mut self) -> std::io::Result<()> {
        if let Some(direct) = &mut self.direct {
            match direct.write(self.len, &self.buf) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => self.refuse_direct(&e),
                Err(e) => return Err(e),
            }
        }
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.write_all(&self.buf)?;
        self.file.sync_data()
    }

    /// Makes the file at least `end` bytes long, in whole chunks of zeros, on disk; leaves the
    /// file's position at `self.len`.
    fn grow(&mut self, end: u64) -> std::io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        let target = end.div_ceil(CHUNK) * CHUNK;
        if let Some(direct) = &mut self.direct {
            match direct.zero(self.allocated, target) {
                Ok(()) => {
                    // The size and the block map are durable with each `O_DSYNC` write; this
                    // sync only orders them before the records that follow, as the buffered
                    // path's does.
                    self.file.sync_all()?;
                    self.allocated = target;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => self.refuse_direct(&e),
                Err(e) => return Err(e),
            }
        }
        self.file.seek(SeekFrom::Start(self.allocated))?;
        let zeros = vec![0_u8; 1 << 16];
        let mut at = self.allocated;
        while at < target {
            let n = (target - at).min(zeros.len() as u64) as usize;
            self.file.write_all(zeros.get(..n).unwrap_or_default())?;
            at += n as u64;
        }
        // The size and the block map, once for the chunk.
        self.file.sync_all()?;
        self.allocated = target;
        self.file.seek(SeekFrom::Start(self.len)).map(drop)
    }

    /// Ends the current segment (it becomes the old one, whose writes a frozen overlay holds)
    /// and starts the next; the ended segment's number.
    pub(super) fn rotate(&mut self) -> Result<u64, StoreError> {
        let old = old_path(&self.path);
        let path = self.path.clone();
        std::fs::rename(&path, &old).map_err(io(&path, "renaming"))?;
        let file = create(&path).map_err(io(&path, "creating"))?;
        let ended = self.number;
        self.file = file;
        self.number = ended + 1;
        self.start()?;
        Ok(ended)
    }

    /// Removes the old segment (the database file has its writes); a failure is only logged:
    /// a segment the file has counted is skipped at the next open.
    pub(super) fn remove_old(&self) {
        let old = old_path(&self.path);
        match std::fs::remove_file(&old) {
            Ok(()) => {
                let _ = sync_dir(&old);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %old.display(), error = %e, "removing an old write-ahead log segment failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::overlay::Slot;
    use super::*;

    fn layer(n: u8) -> Layer {
        let mut l = Layer::default();
        l.insert(
            Table::Inbox,
            &[n; 3],
            Slot {
                value: Some(vec![n; 200]),
                in_file: false,
            },
        );
        l.insert(
            Table::Bodies,
            &[n],
            Slot {
                value: None,
                in_file: true,
            },
        );
        l
    }

    fn log(records: u8) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&7_u64.to_le_bytes());
        for n in 0..records {
            encode(&layer(n), &mut bytes).unwrap();
        }
        bytes
    }

    #[test]
    fn records_round_trip() {
        let d = decode(&log(3)).unwrap();
        assert_eq!(d.number, Some(7));
        assert_eq!(d.records.len(), 3);
        assert_eq!(d.valid_len, log(3).len() as u64);
        assert_eq!(
            d.records[2],
            vec![
                (Table::Inbox, vec![2; 3], Some(vec![2; 200])),
                (Table::Bodies, vec![2], None)
            ]
        );
    }

    #[test]
    fn a_torn_last_record_is_dropped() {
        let whole = log(3);
        let two = log(2).len();
        for cut in [two + 1, two + 7, two + 8, whole.len() - 1] {
            let d = decode(&whole[..cut]).unwrap();
            assert_eq!(
                (d.records.len(), d.valid_len, d.torn),
                (2, two as u64, (cut - two) as u64),
                "cut at {cut}"
            );
        }
        // The zeros of the file's last chunk follow the records.
        let mut padded = whole.clone();
        padded.extend_from_slice(&[0; 100]);
        let d = decode(&padded).unwrap();
        assert_eq!((d.records.len(), d.torn), (3, 0));
        let mut torn = whole[..whole.len() - 5].to_vec();
        torn.extend_from_slice(&[0; 105]);
        assert_eq!(decode(&torn).unwrap().records.len(), 2);
        // A bit flipped in the last record: torn too.
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&flipped).unwrap().records.len(), 2);
    }

    #[test]
    fn damage_before_the_end_is_an_error() {
        let mut bytes = log(3);
        let at = HEADER_LEN + 8 + 10;
        bytes[at] ^= 0x55;
        let e = decode(&bytes).unwrap_err();
        assert_eq!(e.offset, HEADER_LEN as u64);
        assert!(e.to_string().contains("checksum"), "{e}");
        let mut other = log(1);
        other[0] = b'X';
        assert!(decode(&other).is_err());
    }

    #[test]
    fn hostile_payloads_are_errors() {
        // Valid checksums over payloads that lie.
        for payload in [
            &[99_u8, 1, 0][..],              // no such table
            &[0, 7, 0],                      // no such kind
            &[0, 1, 0xFF, 0xFF, 0xFF, 0x0F], // a length past the record
            &[
                0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ],
            &[0], // cut short
        ] {
            let mut bytes = log(0);
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            bytes.extend_from_slice(payload);
            assert!(decode(&bytes).is_err(), "{payload:?}");
        }
    }

    /// A layer of one put of `size` bytes.
    fn sized(n: u8, size: usize) -> Layer {
        let mut l = Layer::default();
        l.insert(
            Table::Inbox,
            &[n; 5],
            Slot {
                value: Some(vec![n.wrapping_add(1); size]),
                in_file: false,
            },
        );
        l
    }

    /// Records that end inside a block, on a block's end, and span several blocks.
    /// The last one grows the file by more than a chunk at once, past the chunk it starts in.
    const SIZES: [usize; 10] = [
        1,
        5000,
        3,
        4000,
        9000,
        2,
        4096 - 31,
        100,
        70_000,
        CHUNK as usize + 5000,
    ];

    /// Writes `SIZES` to a new log at `path` (rotating once, midway); what each segment holds,
    /// and whether its appends were direct.
    fn write_log(path: &Path, try_direct: bool) -> (Vec<u8>, Vec<u8>, bool) {
        let mut wal = Wal::create_with(path, 9, try_direct).unwrap();
        let (first, second) = SIZES.split_at(4);
        for (n, &size) in first.iter().enumerate() {
            wal.append(&sized(n as u8, size)).unwrap();
        }
        assert_eq!(wal.rotate().unwrap(), 9);
        for (n, &size) in second.iter().enumerate() {
            wal.append(&sized(n as u8 + 4, size)).unwrap();
        }
        let direct = wal.direct.is_some();
        (
            std::fs::read(old_path(path)).unwrap(),
            std::fs::read(path).unwrap(),
            direct,
        )
    }

    #[test]
    fn direct_and_buffered_logs_hold_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (old, current, direct) = write_log(&dir.path().join("direct.wal"), true);
        if !direct {
            eprintln!(
                "notice: {} takes no direct writes: both logs went through the page cache",
                dir.path().display()
            );
        }
        let (old_b, current_b, buffered) = write_log(&dir.path().join("buffered.wal"), false);
        assert!(!buffered);
        assert_eq!(old, old_b);
        assert_eq!(current, current_b);
        let (first, second) = (decode(&old).unwrap(), decode(&current).unwrap());
        assert_eq!((first.number, second.number), (Some(9), Some(10)));
        let records: Vec<_> = first.records.into_iter().chain(second.records).collect();
        assert_eq!(records.len(), SIZES.len());
        for (n, (record, &size)) in records.iter().zip(&SIZES).enumerate() {
            let n = n as u8;
            assert_eq!(
                record,
                &vec![(Table::Inbox, vec![n; 5], Some(vec![n + 1; size]))]
            );
        }
        // The zeros grown in advance follow the records.
        assert_eq!(current.len() as u64 % CHUNK, 0);
    }

    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.wal");
        let mut wal = Wal::create_with(&path, 1, true).unwrap();
        wal.append(&sized(0, 10)).unwrap();
        let Some(direct) = wal.direct.as_mut() else {
            eprintln!("notice: {} takes no direct writes", dir.path().display());
            return;
        };
        // Out of step with the file: refused before anything is written.
        direct.tail.push(0);
        wal.append(&sized(1, 20)).unwrap();
        assert!(wal.direct.is_none());
        wal.append(&sized(2, 30)).unwrap();
        let d = decode(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(d.records.len(), 3);
        assert_eq!(d.records[1][0].2, Some(vec![2; 20]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut with_header = log(0);
            with_header.extend_from_slice(&bytes);
            let _ = decode(&bytes);
            let _ = decode(&with_header);
        }
    }
}
