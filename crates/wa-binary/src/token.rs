//! Token dictionaries: the strings the wire abbreviates to one byte (or two).
//!
//! A [`Dictionary`] is a parameter of the codec: the legacy WhatsApp Web table is the default
//! ([`Dictionary::legacy`]), and another table (for example one with double-byte pages) can be
//! plugged in with [`Dictionary::new`] without touching the parser or the writer.

mod legacy;

use std::sync::LazyLock;

/// The first wire byte that is a double-byte dictionary page (`DICTIONARY_0`).
pub(crate) const DICTIONARY_0: u8 = 236;
/// Single-byte tokens use wire bytes `3..=235`.
const SINGLE_MAX: usize = 235;
/// Wire bytes below this are structural tags, never tokens.
const SINGLE_MIN: usize = 3;

/// How a string is abbreviated on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// One byte in `3..=235`.
    Single(u8),
    /// `DICTIONARY_0 + page` followed by `index`.
    Double {
        /// The page, `0..=3`.
        page: u8,
        /// The index within the page.
        index: u8,
    },
}

/// An invalid dictionary passed to [`Dictionary::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DictionaryError {
    /// The single-byte table has entries at wire bytes that are not tokens.
    #[error(
        "single-byte table has {0} entries; tokens are wire bytes 3..=235 (at most 236 entries)"
    )]
    SingleTooLong(usize),
    /// A structural wire byte (0, 1 or 2) has a token.
    #[error("single-byte table has a token at structural byte {0}")]
    StructuralByte(usize),
    /// A double-byte page has more than 256 entries.
    #[error("double-byte page {page} has {len} entries (at most 256)")]
    PageTooLong {
        /// The page.
        page: usize,
        /// Its length.
        len: usize,
    },
    /// A token is the empty string, which the wire writes as "absent".
    #[error("the dictionary has an empty token")]
    EmptyToken,
    /// A token is longer than 16 bytes (the longest legacy token has 14).
    #[error("token {0:?} is longer than 16 bytes")]
    TokenTooLong(&'static str),
    /// The same string appears twice, so writing it would be ambiguous.
    #[error("token {0:?} appears twice")]
    Duplicate(&'static str),
}

/// A token dictionary: a single-byte table plus up to four optional double-byte pages, with a
/// reverse index for the writer.
///
/// ```
/// use wa_binary::{Dictionary, Token};
///
/// let dict = Dictionary::legacy();
/// assert_eq!(dict.single(174), Some("video"));
/// assert_eq!(dict.lookup("video"), Some(Token::Single(174)));
/// assert_eq!(dict.lookup("not a token"), None);
/// ```
#[derive(Clone)]
pub struct Dictionary {
    single: &'static [Option<&'static str>],
    pages: [&'static [&'static str]; 4],
    /// Open-addressing reverse index over the tokens' [`Key`]s; `None` is an empty slot.
    index: Box<[Option<(Key, Token)>]>,
    mask: usize,
    max_len: usize,
}

/// A string of 1 to 16 bytes as two words and its length: equal keys are equal strings, so a
/// lookup compares three integers instead of calling `memcmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    head: u64,
    tail: u64,
    len: usize,
}

impl Key {
    /// The key of `bytes`, or `None` when it is empty or longer than 16 bytes. The words are
    /// read with fixed-width loads that overlap (first and last 8 bytes; first and last 4;
    /// first, middle and last byte), so every byte is covered and nothing is copied.
    #[inline]
    fn new(bytes: &[u8]) -> Option<Key> {
        let len = bytes.len();
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let u32_at = |at: usize| -> Option<u64> {
            Some(u64::from(u32::from_le_bytes(
                bytes.get(at..at + 4)?.try_into().ok()?,
            )))
        };
        let (head, tail) = match len {
            1..=3 => {
                let (first, mid, last) = (bytes.first()?, bytes.get(len / 2)?, bytes.last()?);
                (
                    u64::from(*first) | u64::from(*mid) << 8 | u64::from(*last) << 16,
                    0,
                )
            }
            4..=7 => (u32_at(0)? | u32_at(len - 4)? << 32, 0),
            8..=16 => (u64_at(0)?, u64_at(len - 8)?),
            _ => return None,
        };
        Some(Key { head, tail, len })
    }

    #[inline]
    fn hash(&self) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 40) as usize
    }
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field(
                "single",
                &self.single.iter().filter(|t| t.is_some()).count(),
            )
            .field("pages", &self.pages.map(<[_]>::len))
            .finish_non_exhaustive()
    }
}

static LEGACY: LazyLock<Dictionary> = LazyLock::new(|| {
    match Dictionary::new(&legacy::SINGLE_BYTE, [&[], &[], &[], &[]]) {
        Ok(dict) => dict,
        // The generated table is checked by the tests below; an empty dictionary is the only
        // safe answer should it ever be invalid.
        Err(_) => Dictionary::empty(),
    }
});

impl Dictionary {
    /// The dictionary of the legacy WhatsApp Web protocol: 173 single-byte tokens and no
    /// double-byte pages (so `DICTIONARY_0..3` on the wire is an error).
    pub fn legacy() -> &'static Dictionary {
        &LEGACY
    }

    /// A dictionary with the given single-byte table (index = wire byte; `None` where a byte is
    /// no token) and double-byte pages (`pages[p][i]` is the string of `DICTIONARY_p i`).
    ///
    /// # Errors
    /// When a table is too long, a structural byte (0..=2) has a token, a token is empty, or a
    /// string appears twice.
    pub fn new(
        single: &'static [Option<&'static str>],
        pages: [&'static [&'static str]; 4],
    ) -> Result<Self, DictionaryError> {
        if single.len() > SINGLE_MAX + 1 {
            return Err(DictionaryError::SingleTooLong(single.len()));
        }
        if let Some(byte) = single.iter().take(SINGLE_MIN).position(Option::is_some) {
            return Err(DictionaryError::StructuralByte(byte));
        }
        for (page, entries) in pages.iter().enumerate() {
            if entries.len() > 256 {
                return Err(DictionaryError::PageTooLong {
                    page,
                    len: entries.len(),
                });
            }
        }
        let mut entries: Vec<(&'static str, Token)> = Vec::new();
        for (byte, token) in single.iter().enumerate() {
            if let (Some(s), Ok(byte)) = (token, u8::try_from(byte)) {
                entries.push((s, Token::Single(byte)));
            }
        }
        for (page, strings) in (0u8..).zip(pages.iter()) {
            for (index, s) in (0u8..=255).zip(strings.iter()) {
                entries.push((s, Token::Double { page, index }));
            }
        }
        let capacity = (entries.len() * 4).next_power_of_two().max(16);
        let mut dict = Dictionary {
            single,
            pages,
            index: vec![None; capacity].into_boxed_slice(),
            mask: capacity - 1,
            max_len: 0,
        };
        for (s, token) in entries {
            if s.is_empty() {
                return Err(DictionaryError::EmptyToken);
            }
            let Some(key) = Key::new(s.as_bytes()) else {
                return Err(DictionaryError::TokenTooLong(s));
            };
            if dict.lookup(s).is_some() {
                return Err(DictionaryError::Duplicate(s));
            }
            let mut slot = key.hash() & dict.mask;
            while dict.index.get(slot).is_some_and(Option::is_some) {
                slot = (slot + 1) & dict.mask;
            }
            if let Some(entry) = dict.index.get_mut(slot) {
                *entry = Some((key, token));
            }
            dict.max_len = dict.max_len.max(s.len());
        }
        Ok(dict)
    }

    fn empty() -> Self {
        Dictionary {
            single: &[],
            pages: [&[]; 4],
            index: vec![None; 16].into(),
            mask: 15,
            max_len: 0,
        }
    }

    /// The string of single-byte token `byte`, if it is one.
    #[inline]
    pub fn single(&self, byte: u8) -> Option<&'static str> {
        self.single.get(usize::from(byte)).copied().flatten()
    }

    /// The string of double-byte token `index` on `page` (`0..=3`), if it is one.
    #[inline]
    pub fn double(&self, page: u8, index: u8) -> Option<&'static str> {
        self.pages
            .get(usize::from(page))?
            .get(usize::from(index))
            .copied()
    }

    /// Whether the dictionary has any double-byte page.
    pub fn has_double_byte(&self) -> bool {
        self.pages.iter().any(|p| !p.is_empty())
    }

    /// The token that stands for `s`, if any.
    #[inline]
    pub fn lookup(&self, s: &str) -> Option<Token> {
        let bytes = s.as_bytes();
        if bytes.len() > self.max_len || bytes.is_empty() {
            return None;
        }
        let key = Key::new(bytes)?;
        let mut slot = key.hash() & self.mask;
        loop {
            match self.index.get(slot)? {
                None => return None,
                Some((k, token)) if *k == key => return Some(*token),
                Some(_) => slot = (slot + 1) & self.mask,
            }
        }
    }

    /// The string a token stands for.
    pub fn string(&self, token: Token) -> Option<&'static str> {
        match token {
            Token::Single(byte) => self.single(byte),
            Token::Double { page, index } => self.double(page, index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_table_is_valid_and_reversible() {
        let direct = Dictionary::new(&legacy::SINGLE_BYTE, [&[]; 4]).unwrap();
        assert_eq!(legacy::SINGLE_BYTE.len(), 176);
        let mut count = 0;
        for byte in 0..=255u8 {
            if let Some(s) = direct.single(byte) {
                assert_eq!(direct.lookup(s), Some(Token::Single(byte)), "{s}");
                assert_eq!(Dictionary::legacy().lookup(s), Some(Token::Single(byte)));
                count += 1;
            }
        }
        assert_eq!(count, 173);
        assert_eq!(Dictionary::legacy().single(174), Some("video"));
        assert_eq!(Dictionary::legacy().single(80), Some("s.whatsapp.net"));
        assert!(!Dictionary::legacy().has_double_byte());
    }

    #[test]
    fn lookup_misses() {
        let dict = Dictionary::legacy();
        for s in [
            "",
            "c.us",
            "vide",
            "videos",
            "x",
            "s.whatsapp.ne",
            "0123456789012345678901234567",
        ] {
            assert_eq!(dict.lookup(s), None, "{s}");
        }
    }

    #[test]
    fn custom_dictionary_with_pages() {
        static SINGLE: [Option<&str>; 5] = [None, None, None, Some("a"), Some("b")];
        static PAGE1: [&str; 2] = ["x", "y"];
        let dict = Dictionary::new(&SINGLE, [&[], &PAGE1, &[], &[]]).unwrap();
        assert_eq!(dict.lookup("y"), Some(Token::Double { page: 1, index: 1 }));
        assert_eq!(dict.double(1, 0), Some("x"));
        assert_eq!(dict.double(0, 0), None);
        assert!(dict.has_double_byte());
    }

    #[test]
    fn invalid_dictionaries() {
        static STRUCTURAL: [Option<&str>; 2] = [None, Some("a")];
        static DUP: [Option<&str>; 5] = [None, None, None, Some("a"), Some("a")];
        static EMPTY: [Option<&str>; 4] = [None, None, None, Some("")];
        assert_eq!(
            Dictionary::new(&STRUCTURAL, [&[]; 4]).unwrap_err(),
            DictionaryError::StructuralByte(1)
        );
        assert_eq!(
            Dictionary::new(&DUP, [&[]; 4]).unwrap_err(),
            DictionaryError::Duplicate("a")
        );
        assert_eq!(
            Dictionary::new(&EMPTY, [&[]; 4]).unwrap_err(),
            DictionaryError::EmptyToken
        );
    }
}
