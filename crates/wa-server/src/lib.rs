//! The tokio driver of the wa-rs reference server (docs TBD).

mod caps;
#[cfg(feature = "cli")]
pub mod cli;
mod code;
mod config;
mod error;
mod http;
mod media;
mod metrics;
mod push;
mod routing;
mod server;
mod socket;
pub mod store;

pub use crate::code::{ChannelCodeSender, CodeSender, DeliveredCode, LogCodeSender};
pub use crate::config::Config;
pub use crate::error::Error;
pub use crate::server::{DATABASE_FILE, RunningServer, Server, Swept};
