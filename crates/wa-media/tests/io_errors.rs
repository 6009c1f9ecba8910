//! Failing readers, writers and sinks: the error comes back (no hang, no panic) and nothing is
//! committed.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::io::{self, Read, Write};

use wa_media::{
    Decryptor, Error, Expected, FileSink, MediaKey, MediaType, Sink, decrypt_stream, encrypt,
    encrypt_stream, encrypt_stream_parallel,
};

fn key() -> MediaKey {
    MediaKey::from_bytes([5; 32])
}

/// Yields `ok` bytes of zeros, then fails.
struct FailingReader {
    ok: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("reader broke"));
        }
        let n = buf.len().min(self.ok).min(1000);
        buf[..n].fill(0);
        self.ok -= n;
        Ok(n)
    }
}

/// Accepts `ok` bytes, then fails.
struct FailingWriter {
    ok: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("writer broke"));
        }
        let n = buf.len().min(self.ok);
        self.ok -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that fails on its second write.
struct FailingSink {
    writes: usize,
}

impl Sink for FailingSink {
    type Output = ();

    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        self.writes += 1;
        if self.writes > 1 {
            Err(io::Error::other("sink broke"))
        } else {
            Ok(())
        }
    }

    fn commit(self) -> io::Result<()> {
        panic!("a failed decryption must not commit");
    }
}

#[test]
fn encryption_reports_reader_and_writer_errors() {
    for ok in [0, 10, 100_000, 3 << 20] {
        for ty in [MediaType::Document, MediaType::Video] {
            let err = encrypt_stream(&key(), ty, FailingReader { ok }, io::sink()).unwrap_err();
            assert_eq!(err.to_string(), "reader broke");
            let err =
                encrypt_stream_parallel(&key(), ty, FailingReader { ok }, io::sink()).unwrap_err();
            assert_eq!(err.to_string(), "reader broke");

            let plain = vec![1; 3 << 20];
            let err = encrypt_stream(&key(), ty, &plain[..], FailingWriter { ok }).unwrap_err();
            assert_eq!(err.to_string(), "writer broke");
            let err =
                encrypt_stream_parallel(&key(), ty, &plain[..], FailingWriter { ok }).unwrap_err();
            assert_eq!(err.to_string(), "writer broke");
        }
    }
}

#[test]
fn decryption_reports_reader_errors_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    for ok in [0, 10, 300_000] {
        let sink = FileSink::create(&target).unwrap();
        let err = decrypt_stream(
            &key(),
            MediaType::Image,
            &Expected::new(),
            FailingReader { ok },
            sink,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Io(e) if e.to_string() == "reader broke"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[test]
fn a_failing_sink_stops_decryption() {
    let (body, _) = encrypt(&key(), MediaType::Audio, &vec![3; 1 << 20]);
    let err = decrypt_stream(
        &key(),
        MediaType::Audio,
        &Expected::new(),
        &body[..],
        FailingSink { writes: 0 },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.to_string() == "sink broke"),
        "{err}"
    );

    // Through the incremental interface: the failure sticks.
    let mut decryptor = Decryptor::new(
        &key(),
        MediaType::Audio,
        &Expected::new(),
        FailingSink { writes: 0 },
    );
    let mut failed = false;
    for chunk in body.chunks(100_000) {
        if decryptor.update(chunk).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
    assert!(matches!(decryptor.update(b"more"), Err(Error::Io(_))));
    assert!(matches!(decryptor.finish(), Err(Error::Io(_))));
}
