//! [`Vault`]: opening (and creating) a vault, its header, transactions and re-keying.

use std::io::Read as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadableDatabase as _, ReadableTable, TableDefinition, TableError, TableHandle,
};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::error::key_hex;
use crate::fsutil::{self, Created};
use crate::guard::{DropGuard, guard};
use crate::key::{self, Argon2Params, KeyKind, KeySource};
use crate::seal::{KEY_LEN, Sealer, value_aad};
use crate::txn::{DATA_PREFIX, ReadTxn, WriteTxn};

/// The format version this build reads and writes (the header's `format` entry).
pub const FORMAT_VERSION: u32 = 1;

/// The cleartext header table.
const HEADER: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("wa-vault.header");
const H_FORMAT: &str = "format";
const H_KEY_SOURCE: &str = "key-source";
const H_ARGON2: &str = "argon2";
const H_KEY_CHECK: &str = "key-check";
/// No header entry is longer (the key check is 62 bytes): a longer one is refused unread.
const MAX_HEADER_VALUE: usize = 256;

/// The first bytes of every `redb` file. Checked before `redb` parses anything, so a file that
/// is not a database at all is [`VaultError::NotAVault`].
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Entries re-sealed per step of [`Vault::rekey`] (bounds the memory a re-key holds).
const REKEY_BATCH: usize = 1024;

/// How to open a vault.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VaultOptions {
    /// Argon2id costs for a new passphrase vault (and for [`Vault::rekey`] to a passphrase).
    /// An existing vault uses the costs in its header.
    pub argon2: Argon2Params,
    /// Create the vault (and, for a key file, the key file) when the database file does not
    /// exist. Default: `true`.
    pub create: bool,
}

impl Default for VaultOptions {
    fn default() -> VaultOptions {
        VaultOptions {
            argon2: Argon2Params::default(),
            create: true,
        }
    }
}

impl VaultOptions {
    /// With these Argon2id costs.
    #[must_use]
    pub fn with_argon2(mut self, argon2: Argon2Params) -> VaultOptions {
        self.argon2 = argon2;
        self
    }

    /// Creating a missing vault or not.
    #[must_use]
    pub fn with_create(mut self, create: bool) -> VaultOptions {
        self.create = create;
        self
    }
}

/// An open vault: a `redb` database whose values are sealed with the store key.
///
/// `Debug` prints the paths and the key kind, never key material.
pub struct Vault {
    db: DropGuard<Database>,
    path: PathBuf,
    kind: KeyKind,
    key_file: Option<PathBuf>,
    argon2: Argon2Params,
    sealer: Sealer,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// The parsed cleartext header.
struct Header {
    kind: KeyKind,
    argon2: Option<([u8; Argon2Params::SALT_LEN], Argon2Params)>,
    key_check: Vec<u8>,
}

impl Vault {
    /// Opens the vault at `path`, creating it when it does not exist and `options.create` is
    /// set.
    ///
    /// A new vault is created atomically (built in a temporary file, mode 0600, in the same
    /// directory, then renamed into place). With [`KeySource::KeyFile`], a missing key file is
    /// created (mode 0600, atomically) only for a new vault. The key or passphrase is checked
    /// against the header's key-check value before anything else is read.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::NotAVault`], [`VaultError::InUse`],
    /// [`VaultError::WrongKey`], [`VaultError::KeySourceMismatch`],
    /// [`VaultError::KeyFileMissing`], [`VaultError::KeyFileInsecure`],
    /// [`VaultError::KeyFileInvalid`], [`VaultError::EmptyPassphrase`],
    /// [`VaultError::InvalidArgon2Params`], [`VaultError::UnsupportedVersion`],
    /// [`VaultError::CorruptHeader`], [`VaultError::Damaged`], [`VaultError::Database`],
    /// [`VaultError::Io`], [`VaultError::Random`].
    pub fn open(path: &Path, key: KeySource, options: &VaultOptions) -> Result<Vault, VaultError> {
        if let KeySource::Passphrase(p) = &key
            && p.is_empty()
        {
            return Err(VaultError::EmptyPassphrase);
        }
        options.argon2.to_params()?;
        let exists = path
            .try_exists()
            .map_err(VaultError::io("look for", path))?;
        let mut fresh = None;
        if !exists {
            if !options.create {
                return Err(VaultError::NotFound {
                    path: path.to_owned(),
                });
            }
            fresh = create(path, &key, options.argon2)?;
        }
        open_existing(path, key, options.argon2, fresh)
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kind of key the vault is sealed with.
    pub fn key_kind(&self) -> KeyKind {
        self.kind
    }

    /// A read transaction (a snapshot).
    ///
    /// # Errors
    /// [`VaultError::Database`], [`VaultError::Damaged`].
    pub fn read(&self) -> Result<ReadTxn<'_>, VaultError> {
        let txn = guard(&self.path, || Ok(self.db.get().begin_read()?))?;
        Ok(ReadTxn::new(txn, &self.sealer, &self.path))
    }

    /// A write transaction (waits for the previous one to end).
    ///
    /// # Errors
    /// [`VaultError::Database`], [`VaultError::Damaged`].
    pub fn write(&self) -> Result<WriteTxn<'_>, VaultError> {
        let txn = guard(&self.path, || Ok(self.db.get().begin_write()?))?;
        Ok(WriteTxn::new(txn, &self.sealer, &self.path))
    }

    /// Re-seals every value under a new key, in one write transaction: a new passphrase (fresh
    /// salt, the costs of the options the vault was opened with), or a key file (created, mode
    /// 0600, when missing; an existing one is used as it is).
    ///
    /// On success the old key or passphrase no longer opens the vault. An old key file is left
    /// where it is: deleting it is the caller's business. On error nothing changed.
    ///
    /// `redb` does not wipe freed pages, so the old ciphertexts (sealed under the old key) may
    /// stay in the file's free space until it is reused: someone who has both the old key and
    /// the file may still recover values written before the re-key.
    ///
    /// # Errors
    /// [`VaultError::Corrupt`] when a stored value does not open (nothing is changed then),
    /// the key-file and passphrase errors of [`Vault::open`], [`VaultError::Database`],
    /// [`VaultError::Damaged`].
    pub fn rekey(&mut self, new: KeySource) -> Result<(), VaultError> {
        let (new_key, argon2_entry, key_file) = match &new {
            KeySource::KeyFile(path) => (
                key::load_or_create_key_file(path)?,
                None,
                Some(path.clone()),
            ),
            KeySource::Passphrase(p) => {
                let (key, entry) = passphrase_key(p, self.argon2)?;
                (key, Some(entry), None)
            }
        };
        let new_sealer = Sealer::new(&new_key);
        guard(&self.path, || {
            let txn = DropGuard::new(self.db.get().begin_write()?);
            let tables: Vec<String> = txn
                .get()
                .list_tables()?
                .map(|t| t.name().to_owned())
                .filter(|n| n.starts_with(DATA_PREFIX))
                .collect();
            for redb_name in &tables {
                reseal_table(txn.get(), redb_name, &self.sealer, &new_sealer)?;
            }
            write_header(txn.get(), new.kind(), argon2_entry.as_deref(), &new_sealer)?;
            Ok(txn.into_inner().commit()?)
        })?;
        self.sealer = new_sealer;
        self.kind = new.kind();
        self.key_file = key_file;
        Ok(())
    }
}

/// The key for a new passphrase vault and its header's `argon2` entry (fresh salt).
fn passphrase_key(
    passphrase: &str,
    params: Argon2Params,
) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>), VaultError> {
    let mut salt = [0u8; Argon2Params::SALT_LEN];
    getrandom::fill(&mut salt)?;
    let key = key::derive(passphrase, &salt, params)?;
    Ok((key, params.to_header(&salt)))
}

/// Creates a vault at `path` (which did not exist); its sealer, or `None` when another process
/// created it first.
fn create(
    path: &Path,
    key: &KeySource,
    argon2: Argon2Params,
) -> Result<Option<Sealer>, VaultError> {
    let (store_key, argon2_entry) = match key {
        KeySource::KeyFile(key_file) => (key::load_or_create_key_file(key_file)?, None),
        KeySource::Passphrase(p) => {
            let (key, entry) = passphrase_key(p, argon2)?;
            (key, Some(entry))
        }
    };
    let sealer = Sealer::new(&store_key);
    let tmp = fsutil::temp_next_to(path)?;
    {
        let file = tmp
            .reopen()
            .map_err(VaultError::io("open", tmp.path().to_owned()))?;
        let db =
            Database::builder().create_with_backend(redb::backends::FileBackend::new(file)?)?;
        let txn = db.begin_write()?;
        write_header(&txn, key.kind(), argon2_entry.as_deref(), &sealer)?;
        txn.commit()?;
    }
    match fsutil::persist_new(tmp, path)? {
        Created::Yes => Ok(Some(sealer)),
        Created::AlreadyExisted => Ok(None),
    }
}

fn write_header(
    txn: &redb::WriteTransaction,
    kind: KeyKind,
    argon2: Option<&[u8]>,
    sealer: &Sealer,
) -> Result<(), VaultError> {
    let mut header = txn.open_table(HEADER)?;
    header.insert(H_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())?;
    header.insert(H_KEY_SOURCE, kind.as_header())?;
    match argon2 {
        Some(entry) => {
            header.insert(H_ARGON2, entry)?;
        }
        None => {
            header.remove(H_ARGON2)?;
        }
    }
    header.insert(H_KEY_CHECK, sealer.key_check()?.as_slice())?;
    Ok(())
}

/// Refuses, before `redb` parses it, a file that does not start like a `redb` database.
fn check_magic(path: &Path) -> Result<(), VaultError> {
    let file = std::fs::File::open(path).map_err(VaultError::io("open", path))?;
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    file.take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(VaultError::io("read", path))?;
    let not_a_vault = |reason| VaultError::NotAVault {
        path: path.to_owned(),
        reason,
    };
    if head.is_empty() {
        return Err(not_a_vault("the file is empty"));
    }
    if head != REDB_MAGIC {
        return Err(not_a_vault("not a redb database"));
    }
    Ok(())
}

/// Rewrites, in place, a vault that wa-vault built on redb 2 wrote in redb's v2 file format
/// (redb 3 and later open only the v3 format): redb 2.6's own upgrade, which copies the
/// sealed values as they are.
fn upgrade_v2(path: &Path) -> Result<(), VaultError> {
    let failed = |detail: String| VaultError::Upgrade {
        path: path.to_owned(),
        detail,
    };
    let mut db = match redb2::Database::open(path) {
        Ok(db) => db,
        Err(redb2::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(VaultError::InUse {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(failed(e.to_string())),
    };
    db.upgrade().map_err(|e| failed(e.to_string()))?;
    Ok(())
}

fn read_header(db: &Database, path: &Path) -> Result<Header, VaultError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(HEADER) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => {
            return Err(VaultError::NotAVault {
                path: path.to_owned(),
                reason: "a redb database without a wa-vault header",
            });
        }
        Err(e) => return Err(e.into()),
    };
    let corrupt = |reason| VaultError::CorruptHeader {
        path: path.to_owned(),
        reason,
    };
    let get = |name: &str, missing: &'static str| -> Result<Vec<u8>, VaultError> {
        let value = table.get(name)?.ok_or_else(|| corrupt(missing))?;
        let value = value.value();
        if value.len() > MAX_HEADER_VALUE {
            return Err(corrupt("an entry is too long"));
        }
        Ok(value.to_vec())
    };
    let format = get(H_FORMAT, "no format version")?;
    let format = <[u8; 4]>::try_from(format.as_slice())
        .map_err(|_| corrupt("the format version is not 4 bytes"))?;
    let found = u32::from_le_bytes(format);
    if found != FORMAT_VERSION {
        return Err(VaultError::UnsupportedVersion {
            path: path.to_owned(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    let kind = KeyKind::from_header(&get(H_KEY_SOURCE, "no key source")?)
        .ok_or_else(|| corrupt("unknown key source"))?;
    let argon2 = match kind {
        KeyKind::Passphrase => Some(
            Argon2Params::from_header(&get(H_ARGON2, "no Argon2 parameters")?)
                .ok_or_else(|| corrupt("malformed Argon2 parameters"))?,
        ),
        KeyKind::KeyFile => None,
    };
    let key_check = get(H_KEY_CHECK, "no key-check value")?;
    Ok(Header {
        kind,
        argon2,
        key_check,
    })
}

fn open_existing(
    path: &Path,
    key: KeySource,
    argon2: Argon2Params,
    fresh: Option<Sealer>,
) -> Result<Vault, VaultError> {
    check_magic(path)?;
    let (db, header) = guard(path, || {
        let opened = match Database::builder().open(path) {
            Err(redb::DatabaseError::UpgradeRequired(2)) => {
                upgrade_v2(path)?;
                Database::builder().open(path)
            }
            opened => opened,
        };
        let db = match opened {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(VaultError::InUse {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let db = DropGuard::new(db);
        let header = read_header(db.get(), path)?;
        Ok((db, header))
    })?;
    if header.kind != key.kind() {
        return Err(VaultError::KeySourceMismatch {
            path: path.to_owned(),
            stored: header.kind,
            given: key.kind(),
        });
    }
    let given = key.kind();
    let (sealer, key_file) = match (fresh, key) {
        (Some(sealer), KeySource::KeyFile(p)) => (sealer, Some(p)),
        (Some(sealer), KeySource::Passphrase(_)) => (sealer, None),
        (None, KeySource::KeyFile(p)) => {
            let k = key::read_key_file(&p)?.ok_or_else(|| VaultError::KeyFileMissing {
                path: p.clone(),
                vault: path.to_owned(),
            })?;
            (Sealer::new(&k), Some(p))
        }
        (None, KeySource::Passphrase(pw)) => {
            let (salt, params) = header.argon2.ok_or_else(|| VaultError::CorruptHeader {
                path: path.to_owned(),
                reason: "no Argon2 parameters",
            })?;
            (Sealer::new(&key::derive(&pw, &salt, params)?), None)
        }
    };
    if !sealer.verify_key_check(&header.key_check) {
        return Err(VaultError::WrongKey {
            path: path.to_owned(),
            given,
        });
    }
    Ok(Vault {
        db,
        path: path.to_owned(),
        kind: given,
        key_file,
        argon2,
        sealer,
    })
}

/// Re-seals every value of one data table, [`REKEY_BATCH`] at a time.
fn reseal_table(
    txn: &redb::WriteTransaction,
    redb_name: &str,
    old: &Sealer,
    new: &Sealer,
) -> Result<(), VaultError> {
    let name = redb_name.strip_prefix(DATA_PREFIX).unwrap_or(redb_name);
    let mut table = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(redb_name))?;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        {
            let start = match &after {
                Some(k) => Bound::Excluded(k.as_slice()),
                None => Bound::Unbounded,
            };
            for item in table
                .range::<&[u8]>((start, Bound::Unbounded))?
                .take(REKEY_BATCH)
            {
                let (key, sealed) = item?;
                let key = key.value().to_vec();
                let aad = value_aad(name, &key);
                let plain = old
                    .open(&aad, sealed.value())
                    .ok_or_else(|| VaultError::Corrupt {
                        table: name.to_owned(),
                        key: key_hex(&key),
                    })?;
                let resealed = new.seal(&aad, &plain)?;
                batch.push((key, resealed));
            }
        }
        for (key, sealed) in &batch {
            table.insert(key.as_slice(), sealed.as_slice())?;
        }
        if batch.len() < REKEY_BATCH {
            return Ok(());
        }
        after = batch.pop().map(|(k, _)| k);
    }
}
