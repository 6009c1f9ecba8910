//! An encrypted embedded key-value store: `redb` underneath, every value sealed with
//! XChaCha20-Poly1305 under a store key that comes from a key file or from a passphrase
//! (Argon2id).
//!
//! It is the store of the wa-rs clients (the web client and the phone) for what must be
//! encrypted at rest: message bodies, end-to-end encryption state (vodozemac pickles) and
//! credentials. It knows nothing about those: tables of byte keys and byte values, read in
//! snapshots and written in atomic, durable transactions.
//!
//! ```
//! use wa_vault::{KeySource, Scan, Table, Vault, VaultOptions};
//!
//! const MESSAGES: Table = Table::new("messages");
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let (db_path, key_path) = (dir.path().join("store.redb"), dir.path().join("store.key"));
//! # let options = VaultOptions::default();
//! // A key file next to the store (created, mode 0600, with the vault), or a passphrase from
//! // the environment when the user set one.
//! let key = KeySource::from_env_or_file("WA_STORE_PASSPHRASE", key_path)?;
//! let vault = Vault::open(&db_path, key, &options)?;
//!
//! let mut txn = vault.write()?;
//! txn.put(MESSAGES, "123@c.us/0001", b"hello")?;
//! txn.put(MESSAGES, "123@c.us/0002", b"world")?;
//! txn.commit()?; // durable from here
//!
//! let read = vault.read()?;
//! let latest = read.range(MESSAGES, &Scan::prefix("123@c.us/").reverse().limit(1))?;
//! assert_eq!(latest[0].1.as_slice(), b"world");
//! # Ok(())
//! # }
//! ```
//!
//! # What is encrypted and what is not
//!
//! - **Encrypted and authenticated:** every value. A stored value is
//!   `0x01 (format) ‖ nonce (24 random bytes, fresh per write) ‖ ciphertext ‖ tag (16 bytes)`,
//!   41 bytes more than the plaintext. The associated data is
//!   `table name ‖ 0x00 ‖ key`, so a value moved to another key or table, cut, extended or
//!   altered does not open: [`VaultError::Corrupt`] naming the table and the key.
//! - **In clear:** the keys (the index: ids, JIDs, timestamps), the table names, the sizes of
//!   the values (plaintext length = stored length − 41), how many entries each table has, and
//!   the header below. Keys are metadata: do not put secrets in them.
//! - **The header** (the `redb` table `wa-vault.header`, in clear): `format` (u32 LE,
//!   [`FORMAT_VERSION`]), `key-source` (`key-file` or `passphrase`), for a passphrase `argon2`
//!   (16-byte random salt ‖ m_cost ‖ t_cost ‖ p_cost, u32 LE each; Argon2id v0x13, 32-byte
//!   output), and `key-check`: a constant sealed under the store key (associated data
//!   `0x00 ‖ "wa-vault key check"`, which no value can have). [`Vault::open`] checks it before
//!   anything else: a wrong key file or passphrase is [`VaultError::WrongKey`], not garbage.
//!   The Argon2 costs read from a header are bounded ([`Argon2Params::MAX_M_COST`] = 1 GiB)
//!   before any memory is allocated.
//! - Data table `NAME` is the `redb` table `data.NAME` (`&[u8]` → `&[u8]`).
//!
//! # Keys and files
//!
//! - [`KeySource::KeyFile`]: exactly 32 raw random bytes (no encoding, no newline). Created
//!   with mode 0600 when a new vault is created and the file is missing; never created for an
//!   existing vault (that is [`VaultError::KeyFileMissing`], naming both paths). A key file
//!   that group or others can access (any of the 0o077 bits) is refused with
//!   [`VaultError::KeyFileInsecure`], which says to `chmod 600` it.
//! - [`KeySource::Passphrase`]: the store key is Argon2id(passphrase, salt) with the costs of
//!   [`VaultOptions::argon2`] (default: OWASP's m = 19 MiB, t = 2, p = 1).
//!   [`KeySource::from_env_or_file`] takes it from an environment variable when set and not
//!   empty; prompting is the caller's business.
//! - The database file is created with mode 0600. Both files are created atomically: written
//!   to a temporary file (mode 0600) in the same directory, fsynced, renamed into place
//!   without replacing anything, and the directory fsynced. A crash leaves no half-written key
//!   or vault (at worst a stray `.NAME.*.tmp`).
//! - Key material is zeroized on drop (`Zeroizing`, and the cipher's own `zeroize`), values
//!   are returned as `Zeroizing<Vec<u8>>`, `Debug` never prints a key or a passphrase, and the
//!   key check is compared in constant time (on top of Poly1305's constant-time tag check).
//! - [`Vault::rekey`] re-seals every value under a new key file or passphrase in one write
//!   transaction; afterwards the old key does not open the vault.
//!
//! # Threat model
//!
//! It protects the values at rest against someone who reads (or copies) the files without the
//! key file or the passphrase: they see the keys, table names, sizes and counts, not the
//! values, and cannot alter, swap or replay a value under another key undetected.
//!
//! It does **not** protect against someone who has the key file (or the passphrase), against
//! anyone who can read the memory of the running process, or against rollback of the whole
//! file to an older copy (an older vault is a valid vault). It does not hide access patterns,
//! value sizes or the keys. A passphrase is only as strong as the passphrase: Argon2id makes
//! each guess cost about 19 MiB and two passes, nothing more. `redb` does not wipe freed pages,
//! so after [`Vault::rekey`] old values sealed under the old key may remain in free space.
//!
//! # Damaged files
//!
//! A file that is not a `redb` database at all (checked on its magic bytes before `redb`
//! reads it) or one without a vault header is [`VaultError::NotAVault`]. `redb` has panicked
//! instead of returning an error on some damaged files (a truncated file, a flipped byte in a
//! B-tree page); every call into `redb` runs under `catch_unwind` and such a panic is
//! [`VaultError::Damaged`] (the panic hook still prints it; not under `panic = "abort"`).
//! Another process holding the file open is [`VaultError::InUse`] (`redb` locks the file).
//!
//! # Cost
//!
//! Opening a passphrase vault with the default Argon2id costs took 20–35 ms in release mode
//! (about 410 ms in a debug build) on the 2-core development machine; a key-file vault opens
//! in 1.5–12 ms (`cargo test --release -p wa-vault --test vault default_argon2 -- --nocapture`
//! prints both). Each value costs 41 bytes and one XChaCha20-Poly1305 pass per read or write.
//!
//! # What this crate does not do
//!
//! - No IO besides its two files, no async, no threads; a [`Vault`] is `Send + Sync` and may
//!   be shared (one write transaction at a time, any number of snapshots).
//! - No sharing of a store between processes (`redb` refuses a second opener).
//! - No passphrase prompt, no key escrow or recovery: a lost key file or passphrase loses the
//!   data.
//! - No secondary indexes, no compaction, no backups.
//!
//! # Dependencies
//!
//! - `redb` (4.x): the embedded, single-file, crash-safe (ACID, copy-on-write) key-value store
//!   that `wa-client` and `wa-server` already use.
//! - `redb2` (`redb` 2.6, renamed): only to upgrade, in place, a vault that this crate wrote on
//!   `redb` 2 in redb's v2 file format, which `redb` 3 and later do not open
//!   ([`VaultError::Upgrade`] if that fails).
//! - `chacha20poly1305` (0.11, the RustCrypto hybrid-array generation the workspace uses):
//!   XChaCha20-Poly1305, whose 24-byte nonces can be drawn at random for every write without a
//!   counter to keep; feature `zeroize` wipes the key in the cipher.
//! - `argon2` (0.6, same generation; its `blake2` 0.11 is on the workspace's `digest` 0.11,
//!   so `cargo tree -p wa-vault -d` shows no second RustCrypto generation): Argon2id, the
//!   memory-hard password hash OWASP recommends.
//! - `getrandom` (0.4, the `rand_core` 0.10 line): nonces, salts and new keys from the OS.
//! - `subtle`: the constant-time comparison of the key check; `zeroize`: wiping keys and
//!   returned values.
//! - `tempfile`: the temporary file (mode 0600) and the no-replace rename of the atomic
//!   creation of both files.
//! - `thiserror` for [`VaultError`], `hex` for the keys in its messages.

mod error;
mod fsutil;
mod guard;
mod key;
mod seal;
mod txn;
mod vault;

pub use error::VaultError;
pub use key::{Argon2Params, KeyKind, KeySource};
pub use txn::{Entry, MAX_TABLE_NAME, ReadTxn, Scan, Table, WriteTxn};
pub use vault::{FORMAT_VERSION, Vault, VaultOptions};
/// The wrapper of returned values and passphrases (re-exported from `zeroize`).
pub use zeroize::Zeroizing;

#[cfg(test)]
mod tests {
    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::Vault>();
        check::<crate::VaultError>();
        check::<crate::KeySource>();
    }
}
