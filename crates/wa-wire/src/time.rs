//! Time as the protocol's state machines see it: a number their driver hands in, never a clock
//! they read.

use std::time::Duration;

/// A point in time: milliseconds since the Unix epoch, on a clock that never goes back.
///
/// The session, the phone and the server core never read a clock. Their driver passes the time
/// into every call; a real driver takes the system time, and a test passes whatever its virtual
/// clock says. The Unix base matters for tags and timestamps; timers use differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The time `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: u64) -> Time {
        Time(millis)
    }

    /// The time `secs` seconds after the Unix epoch.
    pub const fn from_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The time `d` later (saturating).
    #[must_use]
    pub fn after(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;

    fn add(self, d: Duration) -> Time {
        self.after(d)
    }
}
