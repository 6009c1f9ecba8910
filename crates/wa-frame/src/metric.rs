//! The metric and flags bytes in front of a client→server binary frame (PROTOCOL.md §3.2, §3.3).
//!
//! Both are newtypes over the wire byte with named constants, so values this crate does not
//! know stay representable and round-trip unchanged.

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};

macro_rules! metrics {
    ($($value:literal $name:ident,)+) => {
        impl Metric {
            $(
                #[doc = concat!("`", stringify!($value), "`: ", stringify!($name), ".")]
                pub const $name: Self = Self($value);
            )+

            /// The official name of a known metric, `None` for other values.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)+
                    _ => None,
                }
            }

            /// The metric with the official `name` (as printed by [`Metric::name`]).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some(Self::$name),)+
                    _ => None,
                }
            }
        }
    };
}

/// What a client→server binary request is about: the first byte after the tag.
///
/// The numbers are the official web client's; unknown values are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Metric(pub u8);

metrics! {
    1 DEBUG_LOG,
    2 QUERY_RESUME,
    3 QUERY_RECEIPT,
    4 QUERY_MEDIA,
    5 QUERY_CHAT,
    6 QUERY_CONTACTS,
    7 QUERY_MESSAGES,
    8 PRESENCE,
    9 PRESENCE_SUBSCRIBE,
    10 GROUP,
    11 READ,
    12 CHAT,
    13 RECEIVED,
    14 PIC,
    15 STATUS,
    16 MESSAGE,
    17 QUERY_ACTIONS,
    18 BLOCK,
    19 QUERY_GROUP,
    20 QUERY_PREVIEW,
    21 QUERY_EMOJI,
    22 QUERY_MESSAGE_INFO,
    23 SPAM,
    24 QUERY_SEARCH,
    25 QUERY_IDENTITY,
    26 QUERY_URL,
    27 PROFILE,
    28 CONTACT,
    29 QUERY_VCARD,
    30 QUERY_STATUS,
    31 QUERY_STATUS_UPDATE,
    32 PRIVACY_STATUS,
    33 QUERY_LIVE_LOCATIONS,
    34 LIVE_LOCATION,
    35 QUERY_VNAME,
    36 QUERY_LABELS,
    37 CALL,
    38 QUERY_CALL,
    39 QUERY_QUICK_REPLIES,
    40 QUERY_CALL_OFFER,
    41 QUERY_RESPONSE,
    42 QUERY_STICKER_PACKS,
    43 QUERY_STICKERS,
    44 ADD_OR_REMOVE_LABELS,
    45 QUERY_NEXT_LABEL_COLOR,
    46 QUERY_LABEL_PALETTE,
    47 CREATE_OR_DELETE_LABELS,
    48 EDIT_LABELS,
    49 QUERY_RECENT_STICKERS,
}

impl fmt::Debug for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Metric({})", self.0),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl From<u8> for Metric {
    fn from(value: u8) -> Self {
        Self(value)
    }
}

impl From<Metric> for u8 {
    fn from(metric: Metric) -> Self {
        metric.0
    }
}

/// The flags byte of a client→server binary request: bit flags, high to low as in
/// PROTOCOL.md §3.3. Bits without a name (`0x02`, `0x01`) are kept.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flags(pub u8);

impl Flags {
    /// No flag set.
    pub const EMPTY: Self = Self(0);
    /// `0x80`, set on ordinary requests ("not ignore"; community code calls it `IGNORE`).
    pub const NOT_IGNORE: Self = Self(0x80);
    /// `0x40`: ask for an acknowledgement (e.g. a message to oneself).
    pub const ACK_REQUEST: Self = Self(0x40);
    /// `0x20`: presence available.
    pub const AVAILABLE: Self = Self(0x20);
    /// `0x10`: presence unavailable.
    pub const NOT_AVAILABLE: Self = Self(0x10);
    /// `0x08`: expires.
    pub const EXPIRES: Self = Self(0x08);
    /// `0x04`: skip offline (typing states).
    pub const SKIP_OFFLINE: Self = Self(0x04);

    const NAMED: [(Self, &'static str); 6] = [
        (Self::NOT_IGNORE, "NOT_IGNORE"),
        (Self::ACK_REQUEST, "ACK_REQUEST"),
        (Self::AVAILABLE, "AVAILABLE"),
        (Self::NOT_AVAILABLE, "NOT_AVAILABLE"),
        (Self::EXPIRES, "EXPIRES"),
        (Self::SKIP_OFFLINE, "SKIP_OFFLINE"),
    ];

    /// The byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Flags {
    type Output = Self;

    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl fmt::Debug for Flags {
    /// `Flags(NOT_IGNORE | AVAILABLE)`, unnamed bits in hex: `Flags(NOT_IGNORE | 0x01)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        let mut rest = self.0;
        let mut first = true;
        for (flag, name) in Self::NAMED {
            if self.contains(flag) {
                f.write_str(if first { "" } else { " | " })?;
                f.write_str(name)?;
                rest &= !flag.0;
                first = false;
            }
        }
        if rest != 0 || first {
            f.write_str(if first { "" } else { " | " })?;
            write!(f, "{rest:#04x}")?;
        }
        f.write_str(")")
    }
}

impl From<u8> for Flags {
    fn from(value: u8) -> Self {
        Self(value)
    }
}

impl From<Flags> for u8 {
    fn from(flags: Flags) -> Self {
        flags.0
    }
}
