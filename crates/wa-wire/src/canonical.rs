//! The two requests a busy phone sends most, a relay and a receipt, read by hand when their
//! text is exactly what [`PhoneRequest::to_text`] writes: fields in declaration order, no
//! whitespace, no escapes in strings, numbers without leading zeros.
//!
//! Anything else (another order, an escape, a control character, an unknown field, a value
//! that does not parse) is not an error here: the reader says `None` and the caller goes
//! serde's way, which accepts what it accepts and words each error. So this reader only has
//! to agree with serde on the texts it takes, and `tests/roundtrip.rs` holds it to that
//! (`phone_requests_decode_as_serde_does`, `canonical_requests_are_read_as_serde_reads_them`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::ids::Jid;
use crate::msg::{ContentKind, OlmPayload, OlmType, Receipt, ReceiptKind, Relay, RelayTarget};
use crate::phone::PhoneRequest;

/// A relay's or a receipt's canonical text, read; `None` for any other text.
pub(crate) fn request(text: &str) -> Option<PhoneRequest> {
    let mut r = Reader { rest: text };
    let request = if r.eat(r#"{"cmd":"relay","id":"#) {
        let id = r.number()?;
        r.expect(r#","relay":"#)?;
        PhoneRequest::Relay {
            id,
            relay: r.relay()?,
        }
    } else if r.eat(r#"{"cmd":"receipt","id":"#) {
        let id = r.number()?;
        r.expect(r#","receipt":"#)?;
        PhoneRequest::Receipt {
            id,
            receipt: r.receipt()?,
        }
    } else {
        return None;
    };
    r.expect("}")?;
    r.rest.is_empty().then_some(request)
}

/// The text not read yet.
struct Reader<'a> {
    rest: &'a str,
}

impl<'a> Reader<'a> {
    /// Takes `bytes` if the text goes on with them.
    fn eat(&mut self, bytes: &str) -> bool {
        match self.rest.strip_prefix(bytes) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, bytes: &str) -> Option<()> {
        self.eat(bytes).then_some(())
    }

    /// A `u64` as JSON writes it: `0`, or digits without a leading zero, not past `u64::MAX`.
    fn number(&mut self) -> Option<u64> {
        let digits = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        let (text, rest) = self.rest.split_at_checked(digits)?;
        if digits == 0 || (digits > 1 && text.starts_with('0')) {
            return None;
        }
        let mut n: u64 = 0;
        for d in text.bytes() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.rest = rest;
        Some(n)
    }

    /// A string without escapes or control characters (which JSON does not allow raw): its
    /// text, as it stands between the quotes.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.rest.strip_prefix('"')?;
        // (`find` looks for one byte a word at a time; the check below has no early exit, so
        // it runs a vector at a time: a ciphertext's base64 is most of a relay's text.)
        let end = rest.find('"')?;
        let (text, after) = rest.split_at_checked(end)?;
        let plain = !text
            .bytes()
            .fold(false, |bad, b| bad | (b == b'\\') | (b < 0x20));
        self.rest = after.strip_prefix('"')?;
        plain.then_some(text)
    }

    /// A string field, `"name":"value"`, after a comma unless it is the first.
    fn field(&mut self, head: &str) -> Option<&'a str> {
        self.expect(head)?;
        self.string()
    }

    fn jid(text: &str) -> Option<Jid> {
        text.parse().ok()
    }

    fn base64(text: &str) -> Option<Vec<u8>> {
        STANDARD.decode(text.as_bytes()).ok()
    }

    /// `{"to":…,"id":…,"kind":…[,"group":…],"targets":[…]}`.
    fn relay(&mut self) -> Option<Relay> {
        let to = Self::jid(self.field(r#"{"to":"#)?)?;
        let id = self.field(r#","id":"#)?.to_owned();
        let kind = self.field(r#","kind":"#)?;
        let kind = ContentKind::from(kind);
        let group = if self.eat(r#","group":"#) {
            Some(Self::base64(self.string()?)?)
        } else {
            None
        };
        self.expect(r#","targets":["#)?;
        let mut targets = Vec::new();
        if !self.eat("]") {
            loop {
                targets.push(self.target()?);
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.expect("}")?;
        Some(Relay {
            to,
            id,
            kind,
            group,
            targets,
        })
    }

    /// `{"device":…[,"olm":{"type":…,"body":…}]}`.
    fn target(&mut self) -> Option<RelayTarget> {
        let device = Self::jid(self.field(r#"{"device":"#)?)?;
        let olm = if self.eat(r#","olm":"#) {
            let kind = match self.field(r#"{"type":"#)? {
                "pkmsg" => OlmType::PreKey,
                "msg" => OlmType::Normal,
                _ => return None,
            };
            let body = Self::base64(self.field(r#","body":"#)?)?;
            self.expect("}")?;
            Some(OlmPayload { kind, body })
        } else {
            None
        };
        self.expect("}")?;
        Some(RelayTarget { device, olm })
    }

    /// `{"kind":…,"chat":…,"id":…[,"participant":…]}`.
    fn receipt(&mut self) -> Option<Receipt> {
        let kind = match self.field(r#"{"kind":"#)? {
            "delivered" => ReceiptKind::Delivered,
            "read" => ReceiptKind::Read,
            "played" => ReceiptKind::Played,
            _ => return None,
        };
        let chat = Self::jid(self.field(r#","chat":"#)?)?;
        let id = self.field(r#","id":"#)?.to_owned();
        let participant = if self.eat(r#","participant":"#) {
            Some(Self::jid(self.string()?)?)
        } else {
            None
        };
        self.expect("}")?;
        Some(Receipt {
            kind,
            chat,
            id,
            participant,
        })
    }
}
