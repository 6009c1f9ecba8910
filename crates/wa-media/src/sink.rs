//! Where streaming decryption puts plaintext until the MAC has been checked.
//!
//! The MAC of a media file is its last 10 bytes, so a single streaming pass sees all the
//! plaintext before it knows whether any of it is authentic. A [`Sink`] holds that plaintext
//! without releasing it, and is either committed (every check passed) or aborted.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// A destination for plaintext that releases nothing before [`commit`](Sink::commit).
///
/// [`Decryptor`](crate::Decryptor) writes unauthenticated plaintext into it, then calls exactly
/// one of `commit` (all checks passed) or `abort` (anything failed). An implementation must not
/// let the written data be observed, used or acted upon before `commit`: that is the whole point.
pub trait Sink: Sized {
    /// What a committed sink gives back (the file, the buffer, ...).
    type Output;

    /// Stores the next piece of (not yet authenticated) plaintext.
    ///
    /// # Errors
    /// When storing fails; decryption then stops with [`Error::Io`](crate::Error::Io).
    fn write(&mut self, plaintext: &[u8]) -> io::Result<()>;

    /// Releases everything written: the plaintext has been authenticated.
    ///
    /// # Errors
    /// When releasing fails (renaming a file, for example).
    fn commit(self) -> io::Result<Self::Output>;

    /// Discards everything written. The default drops the sink.
    fn abort(self) {}
}

/// Plaintext collected in memory, returned on commit, dropped on abort.
impl Sink for Vec<u8> {
    type Output = Vec<u8>;

    fn write(&mut self, plaintext: &[u8]) -> io::Result<()> {
        self.extend_from_slice(plaintext);
        Ok(())
    }

    fn commit(self) -> io::Result<Vec<u8>> {
        Ok(self)
    }
}

/// A file that appears at its path only when committed.
///
/// Data goes to a temporary file created (by `tempfile`, with a random name and owner-only
/// permissions) in the target's directory; [`commit`](Sink::commit) renames it over the target
/// atomically, so readers see either no file (or the old one) or the complete new one. Abort or
/// drop without commit removes the temporary file.
///
/// Commit does not `fsync`: the rename is atomic for other processes, not durable across a power
/// loss. Call [`File::sync_all`] on the committed file if you need that.
///
/// It also implements [`Write`], to produce any file atomically (`wa media encrypt` writes its
/// output this way).
#[derive(Debug)]
pub struct FileSink {
    temp: NamedTempFile,
    target: PathBuf,
}

impl FileSink {
    /// Prepares to write `target`: creates the temporary file in its directory (the current
    /// directory for a bare file name).
    ///
    /// # Errors
    /// When the temporary file cannot be created (missing directory, no permission, ...).
    pub fn create(target: impl AsRef<Path>) -> io::Result<Self> {
        let target = target.as_ref().to_path_buf();
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".wa-media-")
            .suffix(".part")
            .tempfile_in(dir)?;
        Ok(Self { temp, target })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Sink for FileSink {
    type Output = File;

    fn write(&mut self, plaintext: &[u8]) -> io::Result<()> {
        self.temp.as_file_mut().write_all(plaintext)
    }

    fn commit(self) -> io::Result<File> {
        let Self { temp, target } = self;
        temp.persist(&target).map_err(|err| err.error)
    }

    fn abort(self) {
        // Dropping the `NamedTempFile` removes it.
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.as_file_mut().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.as_file_mut().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.as_file_mut().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_renames_and_abort_removes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");

        let mut sink = FileSink::create(&target).unwrap();
        Sink::write(&mut sink, b"hello").unwrap();
        assert!(!target.exists());
        sink.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");

        let other = dir.path().join("other.bin");
        let mut sink = FileSink::create(&other).unwrap();
        Sink::write(&mut sink, b"secret").unwrap();
        sink.abort();
        assert!(!other.exists());
        // Only the committed file is left: no temporary files behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut sink = FileSink::create(&other).unwrap();
        Sink::write(&mut sink, b"dropped").unwrap();
        drop(sink);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
