//! wa-client (docs written below).

mod client;
mod error;
mod history;
mod media;
mod net;
pub mod phone;
mod store;

pub use crate::client::{Client, ClientConfig, Event, Events};
pub use crate::error::Error;
pub use crate::history::DEFAULT_MAX_HISTORY_BYTES;
pub use crate::media::{MAX_IN_MEMORY, Uploaded};
pub use crate::net::{DEFAULT_EVENTS_CAPACITY, EventStream};
pub use crate::store::{Imported, Store, StoredChat, StoredContact, default_key_file};
pub use wa_session::{MediaKind, PresenceState};
