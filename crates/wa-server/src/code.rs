//! Registration codes: how the code a phone must prove reaches the person who owns the number.
//!
//! The real system sends a text message. This server hands the code to a [`CodeSender`]: the
//! default, [`LogCodeSender`], writes it to standard error (the operator reads it out); tests
//! and the in-process demo use a [`ChannelCodeSender`], which passes codes to a receiver.

use std::fmt;

use tokio::sync::mpsc;

/// Delivers a registration code for a phone number out of band.
///
/// Called on the connection's task: it must not block (queue the work if delivery is slow).
pub trait CodeSender: Send + Sync + 'static {
    /// Delivers `code` to the owner of `number` (digits only, no `+`).
    fn deliver(&self, number: &str, code: &str);
}

/// The default: logs the code (`tracing::info!`) and prints
/// `verification code for +<number>: <code>` on standard error, standing in for a text message.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogCodeSender;

impl CodeSender for LogCodeSender {
    fn deliver(&self, number: &str, code: &str) {
        tracing::info!(number, code, "verification code");
        eprintln!("verification code for +{number}: {code}");
    }
}

/// A code handed over by a [`ChannelCodeSender`] (wiped from memory when dropped).
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct DeliveredCode {
    /// The phone number.
    pub number: String,
    /// The code.
    pub code: String,
}

impl fmt::Debug for DeliveredCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveredCode")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

/// Passes codes to a [`mpsc::Receiver`] (for tests and in-process demos). When the receiver
/// is full or gone, the code is dropped with a warning: the phone can ask again.
#[derive(Debug, Clone)]
pub struct ChannelCodeSender {
    tx: mpsc::Sender<DeliveredCode>,
}

impl ChannelCodeSender {
    /// A sender and the receiver that gets the codes (at most `capacity` waiting).
    pub fn new(capacity: usize) -> (ChannelCodeSender, mpsc::Receiver<DeliveredCode>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ChannelCodeSender { tx }, rx)
    }
}

impl CodeSender for ChannelCodeSender {
    fn deliver(&self, number: &str, code: &str) {
        let delivered = DeliveredCode {
            number: number.to_owned(),
            code: code.to_owned(),
        };
        if self.tx.try_send(delivered).is_err() {
            tracing::warn!(
                number,
                "registration code dropped: nobody is reading the code channel"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_sender_hands_codes_over_and_drops_when_full() {
        let (sender, mut rx) = ChannelCodeSender::new(1);
        sender.deliver("15550000001", "123456");
        sender.deliver("15550000002", "654321");
        let got = rx.try_recv().ok();
        assert_eq!(
            got,
            Some(DeliveredCode {
                number: "15550000001".into(),
                code: "123456".into()
            })
        );
        assert!(rx.try_recv().is_err(), "the second one did not fit");
        assert!(
            !format!(
                "{:?}",
                DeliveredCode {
                    number: "1".into(),
                    code: "999999".into()
                }
            )
            .contains("999999")
        );
    }
}
