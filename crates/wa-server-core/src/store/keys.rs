//! Order-preserving composite keys: strings and big-endian integers, so that one range scan
//! finds every entry of a device, an account or a chat.
//!
//! A string is written with `0x00` escaped as `0x00 0xFF` and ends with `0x00 0x01`, so no
//! string is a prefix of another's encoding and byte order equals string order; an integer is
//! 8 big-endian bytes.

/// Builds a key.
#[derive(Debug, Default, Clone)]
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    /// An empty key.
    pub fn new() -> KeyBuf {
        KeyBuf(Vec::with_capacity(48))
    }

    /// Appends a string.
    pub fn str(mut self, s: &str) -> KeyBuf {
        let bytes = s.as_bytes();
        // (A check without an early exit runs a vector at a time; a key's strings are short,
        // and `memchr`'s setup cost more than the search.)
        if bytes.iter().fold(false, |zero, &b| zero | (b == 0)) {
            for &b in bytes {
                self.0.push(b);
                if b == 0 {
                    self.0.push(0xFF);
                }
            }
        } else {
            // The usual case (numbers, ids, JIDs), copied whole.
            self.0.extend_from_slice(bytes);
        }
        self.0.extend_from_slice(&[0x00, 0x01]);
        self
    }

    /// Appends an integer.
    pub fn u64(mut self, n: u64) -> KeyBuf {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// The key.
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// The first key after every key that starts with `prefix` (for `prefix..prefix_end(prefix)`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    // Only 0xFF bytes (never produced by `KeyBuf`): everything sorts before this.
    vec![0xFF; prefix.len() + 9]
}

/// Reads a key back, part by part.
#[derive(Debug)]
pub struct KeyReader<'a>(&'a [u8]);

impl<'a> KeyReader<'a> {
    /// A reader over `key`.
    pub fn new(key: &'a [u8]) -> KeyReader<'a> {
        KeyReader(key)
    }

    /// The next string, or `None` if the key does not continue with one.
    pub fn str(&mut self) -> Option<String> {
        let mut out = Vec::new();
        let mut rest = self.0;
        loop {
            let (&b, tail) = rest.split_first()?;
            rest = tail;
            if b != 0 {
                out.push(b);
                continue;
            }
            let (&next, tail) = rest.split_first()?;
            rest = tail;
            match next {
                0xFF => out.push(0),
                0x01 => break,
                _ => return None,
            }
        }
        self.0 = rest;
        String::from_utf8(out).ok()
    }

    /// The next integer.
    pub fn u64(&mut self) -> Option<u64> {
        let (bytes, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_be_bytes(*bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // No regression files written into the source tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Byte order of keys is the order of their parts, and keys read back.
        #[test]
        fn keys_keep_order_and_read_back(
            a in ("[a-z\\x00\\x01\\xff]{0,6}", any::<u64>()),
            b in ("[a-z\\x00\\x01\\xff]{0,6}", any::<u64>()),
        ) {
            let ka = KeyBuf::new().str(&a.0).u64(a.1).build();
            let kb = KeyBuf::new().str(&b.0).u64(b.1).build();
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let mut r = KeyReader::new(&ka);
            prop_assert_eq!(r.str(), Some(a.0.clone()));
            prop_assert_eq!(r.u64(), Some(a.1));
            // Every key under a string prefix sorts inside `prefix..prefix_end(prefix)`.
            let prefix = KeyBuf::new().str(&b.0).build();
            let inside = ka >= prefix && ka < prefix_end(&prefix);
            prop_assert_eq!(inside, a.0 == b.0);
        }
    }

    #[test]
    fn order_and_round_trip() {
        let a = KeyBuf::new().str("ab").u64(2).build();
        let b = KeyBuf::new().str("ab").u64(10).build();
        let c = KeyBuf::new().str("ab\0").u64(0).build();
        let d = KeyBuf::new().str("abc").u64(0).build();
        assert!(a < b && b < c && c < d);
        let prefix = KeyBuf::new().str("ab").build();
        let end = prefix_end(&prefix);
        assert!(a >= prefix && b < end && c >= end);
        let mut r = KeyReader::new(&c);
        assert_eq!(r.str().as_deref(), Some("ab\0"));
        assert_eq!(r.u64(), Some(0));
        assert_eq!(r.u64(), None);
    }
}
