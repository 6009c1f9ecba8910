//! Tables, scans, and the read and write transactions.
//!
//! A table named `NAME` is the `redb` table `data.NAME` with `&[u8]` keys (in clear, sorted
//! bytewise) and `&[u8]` values (sealed). Values are opened as they are read; one that does not
//! open is [`VaultError::Corrupt`].

use std::ops::Bound;
use std::path::Path;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::error::key_hex;
use crate::guard::{DropGuard, guard};
use crate::seal::{Sealer, value_aad};

/// The prefix of the `redb` name of every data table.
pub(crate) const DATA_PREFIX: &str = "data.";

/// The longest table name.
pub const MAX_TABLE_NAME: usize = 255;

/// A key and its opened value.
pub type Entry = (Vec<u8>, Zeroizing<Vec<u8>>);

type Def<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;
type RawReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;
type RawTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// A table of the vault, named by a constant.
///
/// ```
/// use wa_vault::Table;
/// const MESSAGES: Table = Table::new("messages");
/// assert_eq!(MESSAGES.name(), "messages");
/// ```
///
/// A name is 1 to [`MAX_TABLE_NAME`] bytes without a NUL byte (the NUL separates the table
/// name from the key in the associated data); other names are refused with
/// [`VaultError::InvalidTable`] when used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Table(&'static str);

impl Table {
    /// The table `name`.
    pub const fn new(name: &'static str) -> Table {
        Table(name)
    }

    /// Its name.
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// The checked name and the `redb` table name.
    fn redb_name(self) -> Result<String, VaultError> {
        let invalid = |reason| VaultError::InvalidTable {
            name: self.0,
            reason,
        };
        if self.0.is_empty() {
            return Err(invalid("empty"));
        }
        if self.0.len() > MAX_TABLE_NAME {
            return Err(invalid("longer than 255 bytes"));
        }
        if self.0.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        Ok(format!("{DATA_PREFIX}{}", self.0))
    }
}

/// Which entries a [`ReadTxn::range`] returns: a key range (all keys, a prefix, or explicit
/// bounds), at most `limit` of them, in ascending key order or descending with
/// [`Scan::reverse`].
///
/// ```
/// use wa_vault::Scan;
/// // The 50 latest entries of one chat, newest first.
/// let scan = Scan::prefix(b"chat-1/").reverse().limit(50);
/// # let _ = scan;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    limit: usize,
    reverse: bool,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan::all()
    }
}

impl Scan {
    /// Every entry.
    pub fn all() -> Scan {
        Scan {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            limit: usize::MAX,
            reverse: false,
        }
    }

    /// The entries whose key starts with `prefix`.
    pub fn prefix(prefix: impl AsRef<[u8]>) -> Scan {
        let prefix = prefix.as_ref();
        Scan {
            start: Bound::Included(prefix.to_vec()),
            end: prefix_end(prefix),
            ..Scan::all()
        }
    }

    /// The entries whose key lies between `start` and `end`.
    pub fn bounds(start: Bound<&[u8]>, end: Bound<&[u8]>) -> Scan {
        Scan {
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
            ..Scan::all()
        }
    }

    /// At most `limit` entries (the first ones in the scan's order).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Scan {
        self.limit = limit;
        self
    }

    /// In descending key order.
    #[must_use]
    pub fn reverse(mut self) -> Scan {
        self.reverse = true;
        self
    }

    /// Whether the bounds contain no key at all (`redb` is never asked for such a range).
    fn is_empty_range(&self) -> bool {
        use Bound::{Excluded, Included};
        match (&self.start, &self.end) {
            (Included(a), Included(b)) => a > b,
            (Included(a) | Excluded(a), Included(b) | Excluded(b)) => a >= b,
            _ => false,
        }
    }

    fn as_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            self.start.as_ref().map(Vec::as_slice),
            self.end.as_ref().map(Vec::as_slice),
        )
    }
}

/// The first key after every key that starts with `prefix`: the prefix with its trailing 0xff
/// bytes removed and its last byte incremented (unbounded when it is all 0xff or empty).
fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

fn open_value(
    sealer: &Sealer,
    table: &str,
    key: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    sealer
        .open(&value_aad(table, key), sealed)
        .ok_or_else(|| VaultError::Corrupt {
            table: table.to_owned(),
            key: key_hex(key),
        })
}

fn get_in<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    name: &str,
    key: &[u8],
    sealer: &Sealer,
) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
    match table.get(key)? {
        None => Ok(None),
        Some(sealed) => open_value(sealer, name, key, sealed.value()).map(Some),
    }
}

fn scan_in<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    name: &str,
    scan: &Scan,
    sealer: &Sealer,
) -> Result<Vec<Entry>, VaultError> {
    let mut out = Vec::new();
    if scan.limit == 0 || scan.is_empty_range() {
        return Ok(out);
    }
    let range = table.range::<&[u8]>(scan.as_bounds())?;
    let mut push = |item: Result<_, redb::StorageError>| -> Result<(), VaultError> {
        let (key, sealed): (redb::AccessGuard<'_, &[u8]>, redb::AccessGuard<'_, &[u8]>) = item?;
        let key = key.value().to_vec();
        let value = open_value(sealer, name, &key, sealed.value())?;
        out.push((key, value));
        Ok(())
    };
    if scan.reverse {
        range.rev().take(scan.limit).try_for_each(&mut push)?;
    } else {
        range.take(scan.limit).try_for_each(&mut push)?;
    }
    Ok(out)
}

/// A read transaction: a consistent snapshot of the vault as of its start.
pub struct ReadTxn<'v> {
    txn: DropGuard<redb::ReadTransaction>,
    sealer: &'v Sealer,
    path: &'v Path,
}

impl std::fmt::Debug for ReadTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadTxn { .. }")
    }
}

impl<'v> ReadTxn<'v> {
    pub(crate) fn new(
        txn: redb::ReadTransaction,
        sealer: &'v Sealer,
        path: &'v Path,
    ) -> ReadTxn<'v> {
        ReadTxn {
            txn: DropGuard::new(txn),
            sealer,
            path,
        }
    }

    /// The table, or `None` when it was never written.
    fn table(&self, table: Table) -> Result<Option<RawReadTable>, VaultError> {
        let name = table.redb_name()?;
        match self.txn.get().open_table(Def::new(&name)) {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The value at `key` in `table`.
    ///
    /// # Errors
    /// [`VaultError::Corrupt`] when the stored value does not open; [`VaultError::Database`]
    /// or [`VaultError::Damaged`] when the file cannot be read; [`VaultError::InvalidTable`].
    pub fn get(
        &self,
        table: Table,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        guard(self.path, || match self.table(table)? {
            None => Ok(None),
            Some(t) => get_in(&t, table.name(), key.as_ref(), self.sealer),
        })
    }

    /// The entries of `table` that `scan` selects, in its order.
    ///
    /// # Errors
    /// As [`ReadTxn::get`], for any entry in the result.
    pub fn range(&self, table: Table, scan: &Scan) -> Result<Vec<Entry>, VaultError> {
        guard(self.path, || match self.table(table)? {
            None => Ok(Vec::new()),
            Some(t) => scan_in(&t, table.name(), scan, self.sealer),
        })
    }

    /// The number of entries in `table`.
    ///
    /// # Errors
    /// [`VaultError::Database`], [`VaultError::Damaged`], [`VaultError::InvalidTable`].
    pub fn len(&self, table: Table) -> Result<u64, VaultError> {
        guard(self.path, || match self.table(table)? {
            None => Ok(0),
            Some(t) => Ok(t.len()?),
        })
    }
}

/// A write transaction: its changes become visible to later transactions, and durable, on
/// [`WriteTxn::commit`]; dropped without a commit, it changes nothing.
///
/// Only one write transaction exists at a time: [`Vault::write`](crate::Vault::write) waits
/// for the previous one to end. Reads in a write transaction see its own writes. Reading a
/// table that does not exist yet creates it (empty) if the transaction commits.
pub struct WriteTxn<'v> {
    txn: DropGuard<redb::WriteTransaction>,
    sealer: &'v Sealer,
    path: &'v Path,
}

impl std::fmt::Debug for WriteTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTxn { .. }")
    }
}

impl<'v> WriteTxn<'v> {
    pub(crate) fn new(
        txn: redb::WriteTransaction,
        sealer: &'v Sealer,
        path: &'v Path,
    ) -> WriteTxn<'v> {
        WriteTxn {
            txn: DropGuard::new(txn),
            sealer,
            path,
        }
    }

    fn table(&self, table: Table) -> Result<RawTable<'_>, VaultError> {
        let name = table.redb_name()?;
        Ok(self.txn.get().open_table(Def::new(&name))?)
    }

    /// The value at `key` in `table`, as this transaction sees it.
    ///
    /// # Errors
    /// As [`ReadTxn::get`].
    pub fn get(
        &self,
        table: Table,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        guard(self.path, || {
            get_in(&self.table(table)?, table.name(), key.as_ref(), self.sealer)
        })
    }

    /// The entries of `table` that `scan` selects, as this transaction sees them.
    ///
    /// # Errors
    /// As [`ReadTxn::range`].
    pub fn range(&self, table: Table, scan: &Scan) -> Result<Vec<Entry>, VaultError> {
        guard(self.path, || {
            scan_in(&self.table(table)?, table.name(), scan, self.sealer)
        })
    }

    /// The number of entries in `table`, as this transaction sees it.
    ///
    /// # Errors
    /// As [`ReadTxn::len`].
    pub fn len(&self, table: Table) -> Result<u64, VaultError> {
        guard(self.path, || Ok(self.table(table)?.len()?))
    }

    /// Stores `value` at `key` in `table` (replacing any value there), sealed with a fresh
    /// nonce.
    ///
    /// # Errors
    /// [`VaultError::Random`] when the OS gives no nonce; [`VaultError::Database`];
    /// [`VaultError::Damaged`]; [`VaultError::InvalidTable`]; [`VaultError::ValueTooLarge`].
    pub fn put(
        &mut self,
        table: Table,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), VaultError> {
        let key = key.as_ref();
        let sealed = self
            .sealer
            .seal(&value_aad(table.name(), key), value.as_ref())?;
        guard(self.path, || {
            self.table(table)?.insert(key, sealed.as_slice())?;
            Ok(())
        })
    }

    /// Removes the value at `key` in `table`; whether there was one.
    ///
    /// # Errors
    /// [`VaultError::Database`], [`VaultError::Damaged`], [`VaultError::InvalidTable`].
    pub fn delete(&mut self, table: Table, key: impl AsRef<[u8]>) -> Result<bool, VaultError> {
        guard(self.path, || {
            Ok(self.table(table)?.remove(key.as_ref())?.is_some())
        })
    }

    /// Removes every value of `table` whose key starts with `prefix` (all of them for an empty
    /// prefix); how many were removed.
    ///
    /// # Errors
    /// [`VaultError::Database`], [`VaultError::Damaged`], [`VaultError::InvalidTable`].
    pub fn delete_prefix(
        &mut self,
        table: Table,
        prefix: impl AsRef<[u8]>,
    ) -> Result<u64, VaultError> {
        let scan = Scan::prefix(prefix);
        guard(self.path, || {
            let mut removed = 0u64;
            self.table(table)?
                .retain_in::<&[u8], _>(scan.as_bounds(), |_, _| {
                    removed += 1;
                    false
                })?;
            Ok(removed)
        })
    }

    /// Makes the changes visible and durable (fsynced).
    ///
    /// # Errors
    /// [`VaultError::Database`] or [`VaultError::Damaged`] when the commit fails; then nothing
    /// changed.
    pub fn commit(self) -> Result<(), VaultError> {
        let path = self.path;
        let txn = self.txn.into_inner();
        guard(path, || Ok(txn.commit()?))
    }

    /// Drops the changes (as dropping the transaction does).
    ///
    /// # Errors
    /// [`VaultError::Database`], [`VaultError::Damaged`].
    pub fn abort(self) -> Result<(), VaultError> {
        let path = self.path;
        let txn = self.txn.into_inner();
        guard(path, || Ok(txn.abort()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_cases() {
        assert_eq!(prefix_end(b""), Bound::Unbounded);
        assert_eq!(prefix_end(b"ab"), Bound::Excluded(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Bound::Excluded(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), Bound::Unbounded);
        assert_eq!(prefix_end(b"\x00"), Bound::Excluded(b"\x01".to_vec()));
    }

    #[test]
    fn empty_ranges_are_detected() {
        use Bound::{Excluded, Included, Unbounded};
        let s = |a: Bound<&[u8]>, b: Bound<&[u8]>| Scan::bounds(a, b).is_empty_range();
        assert!(s(Included(b"b"), Included(b"a")));
        assert!(!s(Included(b"a"), Included(b"a")));
        assert!(s(Included(b"a"), Excluded(b"a")));
        assert!(s(Excluded(b"a"), Included(b"a")));
        assert!(s(Excluded(b"a"), Excluded(b"a")));
        assert!(!s(Excluded(b"a"), Excluded(b"b")));
        assert!(!s(Unbounded, Excluded(b"")));
        assert!(!s(Included(b"z"), Unbounded));
    }

    #[test]
    fn table_names_are_checked() {
        assert_eq!(Table::new("m").redb_name().unwrap(), "data.m");
        let long: &'static str = Box::leak("x".repeat(256).into_boxed_str());
        for bad in ["", "a\0b", long] {
            assert!(matches!(
                Table::new(bad).redb_name(),
                Err(VaultError::InvalidTable { .. })
            ));
        }
    }
}
