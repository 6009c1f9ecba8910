//! Atomic creation of files: a temporary file (mode 0600) in the same directory, written and
//! fsynced, then renamed into place without replacing anything, then the directory fsynced. A
//! crash leaves either no file or the whole file (and at worst a stray `.NAME.*.tmp`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::VaultError;

/// Whether [`persist_new`] put the file in place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Created {
    /// The file is ours.
    Yes,
    /// Something else created the path first; it was left alone.
    AlreadyExisted,
}

/// The directory of `path` (`.` for a bare file name), created if missing.
pub(crate) fn ensure_parent(path: &Path) -> Result<PathBuf, VaultError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(VaultError::io("create directory", &dir))?;
    Ok(dir)
}

/// An empty temporary file, mode 0600, next to `path`.
pub(crate) fn temp_next_to(path: &Path) -> Result<NamedTempFile, VaultError> {
    let dir = ensure_parent(path)?;
    let prefix = format!(
        ".{}.",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    builder
        .tempfile_in(&dir)
        .map_err(VaultError::io("create a temporary file in", &dir))
}

/// Fsyncs `tmp`, renames it to `path` unless `path` exists, and fsyncs the directory.
pub(crate) fn persist_new(tmp: NamedTempFile, path: &Path) -> Result<Created, VaultError> {
    tmp.as_file()
        .sync_all()
        .map_err(VaultError::io("sync", tmp.path()))?;
    match tmp.persist_noclobber(path) {
        Ok(file) => drop(file),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok(Created::AlreadyExisted);
        }
        Err(e) => return Err(VaultError::io("create", path)(e.error)),
    }
    sync_dir(path)?;
    Ok(Created::Yes)
}

/// Creates `path` holding `bytes`, atomically, unless it exists.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<Created, VaultError> {
    let mut tmp = temp_next_to(path)?;
    tmp.write_all(bytes)
        .map_err(VaultError::io("write", tmp.path().to_owned()))?;
    persist_new(tmp, path)
}

/// Fsyncs the directory holding `path`, so a rename into it survives a crash.
fn sync_dir(path: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(VaultError::io("sync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_file_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f");
        assert_eq!(write_new_file(&path, b"one").unwrap(), Created::Yes);
        assert_eq!(
            write_new_file(&path, b"two").unwrap(),
            Created::AlreadyExisted
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }
}
