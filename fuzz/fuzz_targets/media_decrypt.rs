#![no_main]
//! Every decryption path of `wa-media` on an arbitrary key, type, body, sidecar and hashes:
//! none may panic, and they must agree with each other.
//!
//! To get past the MAC (which random bodies never have) the input can ask for a valid MAC to be
//! put over its body, and for the body's real sidecar (or a damaged one): then padding, hashes
//! and window checks are reached too. Whatever authenticates must be exactly what `encrypt`
//! produces for the plaintext it decrypts to.

use std::io::{Cursor, Read};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wa_media::{
    Decryptor, Error, Expected, MediaKey, MediaType, RangedDecryptor, compute_sidecar, decrypt,
    decrypt_stream, encrypt,
};

#[derive(Arbitrary, Debug)]
enum SidecarChoice {
    None,
    /// The body's own sidecar.
    Real,
    /// The body's own sidecar with one bit flipped (at this index, modulo its length).
    Flipped(u16),
    /// The body's own sidecar cut to this many bytes.
    Truncated(u8),
    /// Ten arbitrary bytes.
    Garbage([u8; 10]),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: [u8; 32],
    /// Index into `MediaType::ALL`, modulo its length.
    media_type: u8,
    /// Replace the last 10 bytes of the body by its valid MAC.
    fix_mac: bool,
    sidecar: SidecarChoice,
    /// Added to the body length given to `RangedDecryptor::new`.
    body_len_delta: i8,
    file_sha256: Option<[u8; 32]>,
    file_enc_sha256: Option<[u8; 32]>,
    /// Size of the pieces the streaming paths are fed (0 means 1; at least 1/64 of the body).
    chunk: u16,
    range_start: u32,
    range_len: u32,
    /// Grow the body by this many KiB (modulo 160) by repeating it, to cross 64 KiB windows.
    grow_kib: u8,
    body: &'a [u8],
}

/// A reader that hands out at most `chunk` bytes per `read`.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn same(a: &Result<Vec<u8>, Error>, b: &Result<Vec<u8>, Error>, what: &str) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert!(a == b, "{what}: different plaintexts"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
        _ => panic!(
            "{what}: {:?} vs {:?}",
            a.as_ref().map(Vec::len),
            b.as_ref().map(Vec::len)
        ),
    }
}

/// Decrypts `body` by the buffered, streaming and incremental paths; they must agree.
fn decrypt_all(
    key: &MediaKey,
    ty: MediaType,
    expected: &Expected,
    body: &[u8],
    chunk: usize,
) -> Result<Vec<u8>, Error> {
    let buffered = decrypt(key, ty, expected, body);
    let reader = Trickle { data: body, chunk };
    let streamed = decrypt_stream(key, ty, expected, reader, Vec::new()).map(|done| done.output);
    same(&buffered, &streamed, "buffered vs streamed");
    let mut decryptor = Decryptor::new(key, ty, expected, Vec::new());
    for piece in body.chunks(chunk) {
        decryptor.update(piece).expect("a Vec sink never fails");
    }
    let chunked = decryptor.finish().map(|done| done.output);
    same(&buffered, &chunked, "buffered vs chunked");
    buffered
}

fuzz_target!(|input: Input<'_>| {
    let key = MediaKey::from_bytes(input.key);
    let ty = MediaType::ALL[usize::from(input.media_type) % MediaType::ALL.len()];

    let mut body = input.body.to_vec();
    if input.grow_kib > 0 && !body.is_empty() {
        // Up to 160 KiB more: three windows.
        let target = body.len() + usize::from(input.grow_kib % 160) * 1024;
        while body.len() < target {
            body.extend_from_within(..body.len().min(target - body.len()));
        }
    }
    if input.fix_mac && body.len() >= 10 {
        let enc_len = body.len() - 10;
        let mac = key.expand(ty).mac(&body[..enc_len]);
        body[enc_len..].copy_from_slice(&mac);
    }

    // Small pieces for small bodies; at most about 64 pieces for big ones (speed).
    let chunk = usize::from(input.chunk).max(1).max(body.len() / 64);

    let mut expected = Expected::new();
    if let Some(hash) = input.file_sha256 {
        expected = expected.file_sha256(hash);
    }
    if let Some(hash) = input.file_enc_sha256 {
        expected = expected.file_enc_sha256(hash);
    }
    let with_hashes = decrypt_all(&key, ty, &expected, &body, chunk);
    let plain = decrypt_all(&key, ty, &Expected::new(), &body, chunk);

    if let Ok(plain) = &plain {
        // Authentic means: exactly what encryption gives for this plaintext.
        let (again, info) = encrypt(&key, ty, plain);
        assert!(
            again == body,
            "an authenticated body that encrypt would not produce"
        );
        let real = Expected::new()
            .file_sha256(info.file_sha256)
            .file_enc_sha256(info.file_enc_sha256);
        assert!(decrypt_all(&key, ty, &real, &body, chunk).is_ok());
        let mut wrong = info.file_enc_sha256;
        wrong[0] ^= 1;
        let err = decrypt(&key, ty, &real.file_enc_sha256(wrong), &body).unwrap_err();
        assert!(matches!(err, Error::EncSha256Mismatch), "{err}");
        let mut wrong = info.file_sha256;
        wrong[31] ^= 1;
        let err = decrypt(&key, ty, &real.file_sha256(wrong), &body).unwrap_err();
        assert!(matches!(err, Error::PlainSha256Mismatch), "{err}");
        if let Err(err) = &with_hashes {
            assert!(
                matches!(err, Error::EncSha256Mismatch | Error::PlainSha256Mismatch),
                "{err}"
            );
        }
    } else {
        assert!(with_hashes.is_err());
    }

    let sidecar = match input.sidecar {
        SidecarChoice::None => return,
        SidecarChoice::Real => compute_sidecar(&key, ty, &body),
        SidecarChoice::Flipped(at) => {
            let mut sidecar = compute_sidecar(&key, ty, &body);
            let at = usize::from(at) % sidecar.len();
            sidecar[at] ^= 1;
            sidecar
        }
        SidecarChoice::Truncated(len) => {
            let mut sidecar = compute_sidecar(&key, ty, &body);
            sidecar.truncate(usize::from(len));
            sidecar
        }
        SidecarChoice::Garbage(bytes) => bytes.to_vec(),
    };
    let declared = (body.len() as i64 + i64::from(input.body_len_delta)).max(0) as u64;
    let Ok(ranged) = RangedDecryptor::new(&key, ty, &sidecar, declared) else {
        return;
    };
    assert_eq!(ranged.window_count() * 10, sidecar.len() as u64);

    let start = u64::from(input.range_start);
    let end = start + u64::from(input.range_len);
    let _ = ranged.decrypt_range(Cursor::new(&body), start..end, &mut Vec::new());
    for window in 0..ranged.window_count() {
        let range = ranged
            .window_body_range(window)
            .expect("windows below the count exist");
        let data = body
            .get(range.start as usize..range.end as usize)
            .unwrap_or(&body);
        let mut out = vec![7];
        if ranged.decrypt_window(window, data, &mut out).is_err() {
            assert_eq!(out, [7], "nothing released on failure");
        }
    }
    let past = ranged.window_count();
    let err = ranged
        .decrypt_window(past, &[], &mut Vec::new())
        .unwrap_err();
    assert!(matches!(err, Error::WindowOutOfRange { .. }), "{err}");

    // With the real sidecar and length, the windows decrypt to what whole-body decryption gives
    // (they don't check the whole-body MAC, so they may succeed where it fails).
    if matches!(input.sidecar, SidecarChoice::Real) && input.body_len_delta == 0 {
        let mut all = Vec::new();
        let ranged_all = ranged.decrypt_range(Cursor::new(&body), 0..u64::MAX, &mut all);
        match &plain {
            Ok(plain) => {
                assert!(ranged_all.is_ok(), "{ranged_all:?}");
                assert!(&all == plain, "ranged and whole-body plaintexts differ");
            }
            Err(Error::BadPadding) => assert!(matches!(ranged_all, Err(Error::BadPadding))),
            Err(_) => {}
        }
    }
});
