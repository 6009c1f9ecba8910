//! The client's local store: credentials and received messages in one `redb` file.
//!
//! `redb` is an embedded, crash-safe key-value store (a single file, ACID commits), so a
//! restarted client restores without a new QR code and keeps the messages it received. The
//! file is created with mode 0600: keys at rest are protected by file permissions.

use std::path::{Path, PathBuf};

use prost::Message as _;
use redb::{Database, ReadableTable, TableDefinition};
use wa_session::Credentials;

use crate::Error;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// Messages by `<chat>/<id>`: the `WebMessageInfo` bytes.
const MESSAGES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("messages");

/// A client store on disk.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

impl Store {
    /// Opens (or creates, mode 0600) the store at `path`.
    ///
    /// # Errors
    /// When the file cannot be created, opened or is not a store.
    pub fn open(path: &Path) -> Result<Store, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(store_err)?;
        }
        // Created empty with mode 0600 before redb initialises it, so the keys are never
        // readable by others, not even for a moment.
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(store_err)?;
        }
        let db = Database::create(path).map_err(store_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(store_err)?;
        }
        let tx = db.begin_write().map_err(store_err)?;
        tx.open_table(META).map_err(store_err)?;
        tx.open_table(MESSAGES).map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        Ok(Store {
            db,
            path: path.to_owned(),
        })
    }

    /// The stored credentials, if any.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn credentials(&self) -> Result<Option<Credentials>, Error> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(META).map_err(store_err)?;
        let Some(value) = table.get("credentials").map_err(store_err)? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(store_err)
    }

    /// Replaces the stored credentials (`None` forgets them).
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn set_credentials(&self, credentials: Option<&Credentials>) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(META).map_err(store_err)?;
            match credentials {
                Some(c) => {
                    let json = serde_json::to_vec(c).map_err(store_err)?;
                    table
                        .insert("credentials", json.as_slice())
                        .map_err(store_err)?;
                }
                None => {
                    table.remove("credentials").map_err(store_err)?;
                }
            }
        }
        tx.commit().map_err(store_err)
    }

    /// Keeps a message (once: a message seen again replaces itself).
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn put_message(&self, info: &wa_proto::WebMessageInfo) -> Result<(), Error> {
        let key = format!(
            "{}/{}",
            info.key.remote_jid.as_deref().unwrap_or_default(),
            info.key.id.as_deref().unwrap_or_default()
        );
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(MESSAGES).map_err(store_err)?;
            table
                .insert(key.as_str(), info.encode_to_vec().as_slice())
                .map_err(store_err)?;
        }
        tx.commit().map_err(store_err)
    }

    /// Every stored message of `chat` (all chats when `None`).
    ///
    /// # Errors
    /// When the store cannot be read or holds a message that does not decode.
    pub fn messages(&self, chat: Option<&str>) -> Result<Vec<wa_proto::WebMessageInfo>, Error> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(MESSAGES).map_err(store_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(store_err)? {
            let (key, value) = entry.map_err(store_err)?;
            if chat.is_some_and(|c| !key.value().starts_with(&format!("{c}/"))) {
                continue;
            }
            out.push(wa_proto::WebMessageInfo::decode(value.value()).map_err(store_err)?);
        }
        out.sort_by_key(|m| m.message_timestamp.unwrap_or(0));
        Ok(out)
    }
}
