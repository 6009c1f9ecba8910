//! Errors, by whose fault: the caller's ([`CommandError`]) or the server's and the network's
//! ([`PhoneError`]).

/// A command the phone cannot carry out now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Registering or logging in while a connection is already being made or in use.
    #[error("already started")]
    AlreadyStarted,
    /// `verify` without a registration waiting for its code.
    #[error("no registration is waiting for a code")]
    NotRegistering,
    /// The command needs a logged-in phone.
    #[error("not logged in")]
    NotReady,
    /// Too many commands wait for answers.
    #[error("{0} commands are already waiting for answers")]
    TooManyPending(usize),
    /// Too many messages wait to be sent.
    #[error("{0}")]
    Busy(String),
    /// An argument is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The stored end-to-end state does not open.
    #[error("end-to-end state: {0}")]
    E2eState(String),
}

/// A command, registration or login that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// The server refused (status 0: no answer in time).
    #[error("{reason} (status {status})")]
    Status {
        /// The status.
        status: u16,
        /// The server's reason.
        reason: String,
    },
    /// The server said something that is not the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A message could not be sent.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The connection went away first.
    #[error("disconnected")]
    Disconnected,
}
