//! Replay protection for Megolm: which message indices of one inbound session were decrypted.
//!
//! A fixed bitmap of [`REPLAY_WINDOW`] bits, indexed by `index % REPLAY_WINDOW`, covering the
//! indices `top - REPLAY_WINDOW + 1 ..= top` where `top` is the highest index decrypted so far.
//! Anything below that range is refused as too old (the session also forgets its keys).

use serde::{Deserialize, Serialize};

use crate::limits::REPLAY_WINDOW;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// What the window says about an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not seen: may be accepted.
    Fresh,
    /// Already decrypted.
    Replayed,
    /// Below the window; `first` is the lowest index the window still covers.
    TooOld { first: u32 },
}

/// The indices seen, as a ring bitmap below the highest one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplayWindow {
    top: Option<u32>,
    bits: [u64; WORDS],
}

impl ReplayWindow {
    /// The lowest index the window covers (0 before anything was seen).
    pub(crate) fn floor(&self) -> u32 {
        self.top
            .map_or(0, |top| top.saturating_sub(REPLAY_WINDOW - 1))
    }

    pub(crate) fn check(&self, index: u32) -> Verdict {
        let Some(top) = self.top else {
            return Verdict::Fresh;
        };
        if index > top {
            Verdict::Fresh
        } else if index < self.floor() {
            Verdict::TooOld {
                first: self.floor(),
            }
        } else if self.bit(index) {
            Verdict::Replayed
        } else {
            Verdict::Fresh
        }
    }

    /// Records `index` as decrypted. Call only after [`check`](Self::check) said `Fresh`.
    pub(crate) fn mark(&mut self, index: u32) {
        match self.top {
            None => {
                self.bits = [0; WORDS];
                self.top = Some(index);
            }
            Some(top) if index > top => {
                // Clear the slots of the indices the window moves over (at most the whole ring).
                let steps = (index - top).min(REPLAY_WINDOW);
                for i in 0..steps {
                    self.set(index - i, false);
                }
                self.top = Some(index);
            }
            Some(_) => {}
        }
        self.set(index, true);
    }

    fn slot(index: u32) -> (usize, u64) {
        let slot = index % REPLAY_WINDOW;
        ((slot / 64) as usize, 1u64 << (slot % 64))
    }

    fn bit(&self, index: u32) -> bool {
        let (word, mask) = Self::slot(index);
        self.bits.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set(&mut self, index: u32, value: bool) {
        let (word, mask) = Self::slot(index);
        if let Some(w) = self.bits.get_mut(word) {
            if value {
                *w |= mask;
            } else {
                *w &= !mask;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_replayed_too_old() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check(5), Verdict::Fresh);
        w.mark(5);
        assert_eq!(w.check(5), Verdict::Replayed);
        assert_eq!(w.check(4), Verdict::Fresh);
        assert_eq!(w.check(0), Verdict::Fresh);
        w.mark(0);
        assert_eq!(w.check(0), Verdict::Replayed);
        // Jump far ahead: the old slots are cleared, older indices are too old.
        w.mark(5 + REPLAY_WINDOW * 3);
        let top = 5 + REPLAY_WINDOW * 3;
        assert_eq!(w.check(top), Verdict::Replayed);
        assert_eq!(
            w.check(5),
            Verdict::TooOld {
                first: top - REPLAY_WINDOW + 1
            }
        );
        // The slot 5 shares with `top - REPLAY_WINDOW + 5 + ...` was cleared by the move.
        assert_eq!(w.check(top - REPLAY_WINDOW + 1), Verdict::Fresh);
        assert_eq!(w.check(top - 1), Verdict::Fresh);
        w.mark(top - 1);
        assert_eq!(w.check(top - 1), Verdict::Replayed);
    }

    #[test]
    fn every_index_once_in_any_order_within_the_window() {
        let mut w = ReplayWindow::default();
        // A fixed permutation of 0..2000 (multiplication by a unit mod 2000).
        let order: Vec<u32> = (0..2000u32).map(|i| (i * 7 + 3) % 2000).collect();
        let mut accepted = 0;
        for &i in &order {
            match w.check(i) {
                Verdict::Fresh => {
                    w.mark(i);
                    accepted += 1;
                    assert_eq!(w.check(i), Verdict::Replayed);
                }
                Verdict::TooOld { first } => assert!(i < first),
                Verdict::Replayed => panic!("{i} seen twice"),
            }
        }
        assert!(accepted >= REPLAY_WINDOW as usize);
        // Nothing can be accepted twice.
        for &i in &order {
            assert_ne!(w.check(i), Verdict::Fresh, "{i}");
        }
    }
}
