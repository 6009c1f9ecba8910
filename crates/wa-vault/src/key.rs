//! Where the store key comes from: a key file (32 random bytes, mode 0600) or a passphrase
//! stretched with Argon2id.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::fsutil;
use crate::seal::KEY_LEN;

/// Where the store key comes from.
///
/// `Debug` prints the key file's path, never a passphrase.
pub enum KeySource {
    /// A key file: exactly 32 raw random bytes (no encoding, no newline), created with mode
    /// 0600 when missing (for a new vault only), and refused when group or others have any
    /// access to it (unix).
    KeyFile(PathBuf),
    /// A passphrase (UTF-8, not empty): the key is derived with Argon2id; the salt and the
    /// parameters are kept in the vault's cleartext header.
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::KeyFile(path) => f.debug_tuple("KeyFile").field(path).finish(),
            KeySource::Passphrase(_) => f.write_str("Passphrase(..)"),
        }
    }
}

impl KeySource {
    /// A passphrase key source.
    pub fn passphrase(passphrase: impl Into<String>) -> KeySource {
        KeySource::Passphrase(Zeroizing::new(passphrase.into()))
    }

    /// The passphrase from the environment variable `var` when it is set and not empty, else
    /// the key file `key_file`.
    ///
    /// Prompting for a passphrase is the caller's business.
    ///
    /// # Errors
    /// [`VaultError::PassphraseNotUtf8`] when the variable is set but not valid UTF-8.
    pub fn from_env_or_file(var: &str, key_file: PathBuf) -> Result<KeySource, VaultError> {
        passphrase_or_file(var, std::env::var_os(var), key_file)
    }

    /// Which kind of source this is.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeySource::KeyFile(_) => KeyKind::KeyFile,
            KeySource::Passphrase(_) => KeyKind::Passphrase,
        }
    }
}

/// [`KeySource::from_env_or_file`] with the variable's value given.
pub(crate) fn passphrase_or_file(
    var: &str,
    value: Option<OsString>,
    key_file: PathBuf,
) -> Result<KeySource, VaultError> {
    match value {
        Some(value) if !value.is_empty() => match value.into_string() {
            Ok(s) => Ok(KeySource::Passphrase(Zeroizing::new(s))),
            Err(not_utf8) => {
                drop(Zeroizing::new(not_utf8.into_encoded_bytes()));
                Err(VaultError::PassphraseNotUtf8 {
                    var: var.to_owned(),
                })
            }
        },
        _ => Ok(KeySource::KeyFile(key_file)),
    }
}

/// The kind of a [`KeySource`], as recorded in the vault header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// A key file.
    KeyFile,
    /// A passphrase.
    Passphrase,
}

impl KeyKind {
    /// The bytes of the header's `key-source` entry.
    pub(crate) fn as_header(self) -> &'static [u8] {
        match self {
            KeyKind::KeyFile => b"key-file",
            KeyKind::Passphrase => b"passphrase",
        }
    }

    pub(crate) fn from_header(bytes: &[u8]) -> Option<KeyKind> {
        match bytes {
            b"key-file" => Some(KeyKind::KeyFile),
            b"passphrase" => Some(KeyKind::Passphrase),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyKind::KeyFile => "key file",
            KeyKind::Passphrase => "passphrase",
        })
    }
}

/// Argon2id cost parameters (version 0x13, 32-byte output).
///
/// The defaults are OWASP's first recommendation for Argon2id: 19 MiB of memory, 2 passes, one
/// lane. A vault records the parameters it was created with, so changing them later affects
/// only new vaults (and [`Vault::rekey`](crate::Vault::rekey)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Argon2Params {
    /// Memory in KiB (at least 8 × `p_cost`, at most [`Argon2Params::MAX_M_COST`]).
    pub m_cost: u32,
    /// Passes over the memory (1 to [`Argon2Params::MAX_T_COST`]).
    pub t_cost: u32,
    /// Lanes (1 to [`Argon2Params::MAX_P_COST`]).
    pub p_cost: u32,
}

impl Default for Argon2Params {
    fn default() -> Argon2Params {
        Argon2Params {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl Argon2Params {
    /// The most memory a vault may ask for: 1 GiB. A header asking for more is refused rather
    /// than allocated.
    pub const MAX_M_COST: u32 = 1024 * 1024;
    /// The most passes a vault may ask for.
    pub const MAX_T_COST: u32 = 64;
    /// The most lanes a vault may ask for.
    pub const MAX_P_COST: u32 = 64;
    /// Length of the random salt.
    pub(crate) const SALT_LEN: usize = 16;
    /// Length of the header's `argon2` entry: salt ‖ m ‖ t ‖ p (u32 little-endian each).
    pub(crate) const HEADER_LEN: usize = Self::SALT_LEN + 12;

    /// Parameters with these costs.
    pub fn new(m_cost: u32, t_cost: u32, p_cost: u32) -> Argon2Params {
        Argon2Params {
            m_cost,
            t_cost,
            p_cost,
        }
    }

    /// Checks the bounds and builds argon2's parameters.
    pub(crate) fn to_params(self) -> Result<Params, VaultError> {
        let invalid = |reason| VaultError::InvalidArgon2Params {
            m_cost: self.m_cost,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
            reason,
        };
        if self.m_cost > Self::MAX_M_COST {
            return Err(invalid("m_cost above 1 GiB"));
        }
        if self.t_cost > Self::MAX_T_COST {
            return Err(invalid("t_cost above 64"));
        }
        if self.p_cost > Self::MAX_P_COST {
            return Err(invalid("p_cost above 64"));
        }
        Params::new(self.m_cost, self.t_cost, self.p_cost, Some(KEY_LEN)).map_err(|e| {
            invalid(match e {
                argon2::Error::MemoryTooLittle => "m_cost below 8 KiB per lane",
                argon2::Error::TimeTooSmall => "t_cost below 1",
                argon2::Error::ThreadsTooFew => "p_cost below 1",
                _ => "rejected by argon2",
            })
        })
    }

    /// The header's `argon2` entry.
    pub(crate) fn to_header(self, salt: &[u8; Self::SALT_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::HEADER_LEN);
        out.extend_from_slice(salt);
        out.extend_from_slice(&self.m_cost.to_le_bytes());
        out.extend_from_slice(&self.t_cost.to_le_bytes());
        out.extend_from_slice(&self.p_cost.to_le_bytes());
        out
    }

    /// Parses the header's `argon2` entry (bounds are checked by [`Argon2Params::to_params`]).
    pub(crate) fn from_header(bytes: &[u8]) -> Option<([u8; Self::SALT_LEN], Argon2Params)> {
        let (salt, rest) = bytes.split_first_chunk::<{ Self::SALT_LEN }>()?;
        let (m, rest) = rest.split_first_chunk::<4>()?;
        let (t, rest) = rest.split_first_chunk::<4>()?;
        let (p, rest) = rest.split_first_chunk::<4>()?;
        if !rest.is_empty() {
            return None;
        }
        Some((
            *salt,
            Argon2Params::new(
                u32::from_le_bytes(*m),
                u32::from_le_bytes(*t),
                u32::from_le_bytes(*p),
            ),
        ))
    }
}

/// Derives the store key from a passphrase with Argon2id.
pub(crate) fn derive(
    passphrase: &str,
    salt: &[u8; Argon2Params::SALT_LEN],
    params: Argon2Params,
) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    if passphrase.is_empty() {
        return Err(VaultError::EmptyPassphrase);
    }
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_params()?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut_slice())
        .map_err(|e| VaultError::InvalidArgon2Params {
            m_cost: params.m_cost,
            t_cost: params.t_cost,
            p_cost: params.p_cost,
            reason: match e {
                argon2::Error::OutOfMemory => "not enough memory",
                argon2::Error::PwdTooLong => "passphrase too long",
                _ => "rejected by argon2",
            },
        })?;
    Ok(key)
}

/// A fresh random key.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut_slice())?;
    Ok(key)
}

/// Reads a key file; `None` when it does not exist.
///
/// The checks are made on the opened file (no race between checking and reading): a regular
/// file, no access for group or others (unix), exactly 32 bytes.
pub(crate) fn read_key_file(path: &Path) -> Result<Option<Zeroizing<[u8; KEY_LEN]>>, VaultError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VaultError::io("open key file", path)(e)),
    };
    let meta = file
        .metadata()
        .map_err(VaultError::io("read metadata of key file", path))?;
    let invalid = |reason| VaultError::KeyFileInvalid {
        path: path.to_owned(),
        reason,
    };
    if !meta.is_file() {
        return Err(invalid("not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyFileInsecure {
                path: path.to_owned(),
                mode,
            });
        }
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(invalid("not exactly 32 bytes"));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    file.read_exact(key.as_mut_slice())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => invalid("not exactly 32 bytes"),
            _ => VaultError::io("read key file", path)(e),
        })?;
    let mut extra = [0u8; 1];
    if file
        .read(&mut extra)
        .map_err(VaultError::io("read key file", path))?
        != 0
    {
        return Err(invalid("not exactly 32 bytes"));
    }
    Ok(Some(key))
}

/// The key in the key file at `path`, creating the file with a fresh random key when it does
/// not exist (atomically: a temporary file in the same directory, fsync, rename without
/// replacing, fsync of the directory). When another process creates it first, its key is used.
pub(crate) fn load_or_create_key_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    if let Some(key) = read_key_file(path)? {
        return Ok(key);
    }
    let key = random_key()?;
    match fsutil::write_new_file(path, key.as_slice())? {
        fsutil::Created::Yes => Ok(key),
        fsutil::Created::AlreadyExisted => read_key_file(path)?.ok_or_else(|| VaultError::Io {
            action: "create key file",
            path: path.to_owned(),
            source: std::io::ErrorKind::NotFound.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers computed independently with Python's `cryptography` 48:
    /// `Argon2id(salt=..., length=32, iterations=t, lanes=p, memory_cost=m).derive(pw).hex()`.
    #[test]
    fn argon2id_known_answers() {
        let key = derive(
            "correct horse battery staple",
            b"wa-vault salt 16",
            Argon2Params::new(8, 1, 1),
        )
        .unwrap();
        assert_eq!(
            hex::encode(key.as_slice()),
            "d1a81848ef8f94688f78f00ca842fd706fbf159c072b05e5f1eaca5410ac44eb"
        );
        let salt: [u8; 16] = core::array::from_fn(|i| i as u8);
        let key = derive("p\u{e4}ssw\u{f6}rd", &salt, Argon2Params::new(64, 2, 1)).unwrap();
        assert_eq!(
            hex::encode(key.as_slice()),
            "524f225245bf4a51c6795f406c86e4f0f76fe0f11d7310f1b44733f7186593fe"
        );
    }

    #[test]
    fn params_bounds() {
        assert!(Argon2Params::default().to_params().is_ok());
        for bad in [
            Argon2Params::new(7, 1, 1),
            Argon2Params::new(15, 1, 2),
            Argon2Params::new(8, 0, 1),
            Argon2Params::new(8, 1, 0),
            Argon2Params::new(Argon2Params::MAX_M_COST + 1, 1, 1),
            Argon2Params::new(1024, Argon2Params::MAX_T_COST + 1, 1),
            Argon2Params::new(4096, 1, Argon2Params::MAX_P_COST + 1),
            Argon2Params::new(u32::MAX, u32::MAX, u32::MAX),
        ] {
            assert!(
                matches!(bad.to_params(), Err(VaultError::InvalidArgon2Params { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            derive("", &[0; 16], Argon2Params::new(8, 1, 1)),
            Err(VaultError::EmptyPassphrase)
        ));
    }

    #[test]
    fn header_entry_round_trip_and_rejects_bad_lengths() {
        let params = Argon2Params::new(19456, 2, 1);
        let salt = [7u8; 16];
        let bytes = params.to_header(&salt);
        assert_eq!(bytes.len(), Argon2Params::HEADER_LEN);
        assert_eq!(Argon2Params::from_header(&bytes), Some((salt, params)));
        for cut in 0..bytes.len() {
            assert_eq!(Argon2Params::from_header(&bytes[..cut]), None);
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Argon2Params::from_header(&long), None);
    }

    #[test]
    fn env_value_or_key_file() {
        let file = PathBuf::from("/k");
        let src = passphrase_or_file("V", None, file.clone()).unwrap();
        assert!(matches!(src, KeySource::KeyFile(ref p) if *p == file));
        let src = passphrase_or_file("V", Some(OsString::new()), file.clone()).unwrap();
        assert!(matches!(src, KeySource::KeyFile(_)));
        let src = passphrase_or_file("V", Some("hunter2".into()), file.clone()).unwrap();
        assert!(matches!(src, KeySource::Passphrase(ref p) if p.as_str() == "hunter2"));
        assert_eq!(format!("{src:?}"), "Passphrase(..)");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let bad = OsString::from_vec(vec![0xff, 0xfe]);
            assert!(matches!(
                passphrase_or_file("V", Some(bad), file),
                Err(VaultError::PassphraseNotUtf8 { ref var }) if var == "V"
            ));
        }
    }

    #[test]
    fn from_env_with_an_unset_variable_is_the_key_file() {
        let src = KeySource::from_env_or_file(
            "WA_VAULT_TEST_VARIABLE_THAT_IS_NEVER_SET_0b7d",
            PathBuf::from("/k"),
        )
        .unwrap();
        assert_eq!(src.kind(), KeyKind::KeyFile);
    }
}
