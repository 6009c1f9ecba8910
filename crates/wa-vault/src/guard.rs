//! Containment of `redb` panics on damaged files.
//!
//! `redb` 2 asserted instead of returning an error on some malformed files: a file truncated
//! below the length its header records trips `assert!(raw_file_len >= layout.len())` when it
//! is opened, and a flipped byte in a B-tree page can reach an `unreachable!()` or an
//! out-of-range slice while iterating (both seen in this crate's tests). `redb` 4 turns several
//! of these into `StorageError::Corrupted`, but not every one is known, and 2.6 still opens
//! files in the v2 format to upgrade them. A damaged file is untrusted input, so every call
//! into `redb` runs under [`guard`], which turns such a panic into [`VaultError::Damaged`],
//! and every `redb` handle is dropped under [`DropGuard`] (its drop writes to the file and
//! locks mutexes a caught panic may have poisoned).
//!
//! The panic hook still prints the panic message; the process goes on. None of this helps under
//! `panic = "abort"`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::VaultError;

/// Runs `f` (calls into `redb` on the file at `path`), turning a panic into
/// [`VaultError::Damaged`].
pub(crate) fn guard<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, VaultError>,
) -> Result<T, VaultError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "redb panicked".to_owned());
        Err(VaultError::Damaged {
            path: path.to_owned(),
            detail,
        })
    })
}

/// A `redb` handle dropped under `catch_unwind`.
pub(crate) struct DropGuard<T>(Option<T>);

impl<T> DropGuard<T> {
    pub(crate) fn new(value: T) -> DropGuard<T> {
        DropGuard(Some(value))
    }

    /// The handle. It is only taken out by [`DropGuard::into_inner`] (which consumes the
    /// guard) and by `drop`, so it is always there.
    #[allow(
        clippy::expect_used,
        reason = "the value is only taken out by into_inner and drop, which consume the guard"
    )]
    pub(crate) fn get(&self) -> &T {
        self.0
            .as_ref()
            .expect("a DropGuard holds its value until it is consumed")
    }

    /// The handle, for a call that consumes it (a commit).
    #[allow(
        clippy::expect_used,
        reason = "the value is only taken out by into_inner and drop, which consume the guard"
    )]
    pub(crate) fn into_inner(mut self) -> T {
        self.0
            .take()
            .expect("a DropGuard holds its value until it is consumed")
    }
}

impl<T> Drop for DropGuard<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            // A panic while dropping a handle to a damaged file is dropped with it: there is
            // no caller left to tell.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_damaged() {
        let path = Path::new("/x");
        let r: Result<(), VaultError> = guard(path, || panic!("boom {}", 7));
        assert!(matches!(r, Err(VaultError::Damaged { ref detail, .. }) if detail == "boom 7"));
        let r: Result<(), VaultError> = guard(path, || panic!("static"));
        assert!(matches!(r, Err(VaultError::Damaged { ref detail, .. }) if detail == "static"));
        assert_eq!(guard(path, || Ok(3)).unwrap(), 3);
    }

    #[test]
    fn a_panicking_drop_is_contained() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("drop");
            }
        }
        drop(DropGuard::new(Bomb));
        let g = DropGuard::new(5);
        assert_eq!(*g.get(), 5);
        assert_eq!(g.into_inner(), 5);
    }
}
