//! The demo's last step: every file the server and the stores wrote, read byte for byte, for
//! every secret of the story (texts sent, the image's media key and pixels).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// What the scan read and found.
pub(crate) struct Report {
    /// Files read.
    pub(crate) files: usize,
    /// Of which under `server/` (or the nodes' directories).
    pub(crate) server_files: usize,
    /// Stores (`*.redb` under `stores/`).
    pub(crate) stores: usize,
    /// Bytes read.
    pub(crate) bytes: u64,
    /// `(file, what)` for every secret found in clear.
    pub(crate) found: Vec<(PathBuf, String)>,
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack.len() >= needle.len()
        && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Finds every secret in a buffer without comparing at every byte: an occurrence of a secret
/// of at least `min` bytes covers `min - 1` consecutive starts of two-byte pairs, so looking at
/// one pair every `min - 1` bytes, and at where each secret holds that pair, sees it.
struct Finder<'a> {
    secrets: &'a [(String, Vec<u8>)],
    /// For each pair of bytes, `(secret, offset)` wherever a secret holds it.
    pairs: Vec<Vec<(usize, usize)>>,
    stride: usize,
}

fn pair(a: u8, b: u8) -> usize {
    usize::from(a) << 8 | usize::from(b)
}

impl<'a> Finder<'a> {
    fn new(secrets: &'a [(String, Vec<u8>)]) -> Finder<'a> {
        let mut pairs = vec![Vec::new(); 1 << 16];
        for (index, (_, bytes)) in secrets.iter().enumerate() {
            for (offset, window) in bytes.windows(2).enumerate() {
                if let [a, b] = window
                    && let Some(slot) = pairs.get_mut(pair(*a, *b))
                {
                    slot.push((index, offset));
                }
            }
        }
        let min = secrets.iter().map(|(_, b)| b.len()).min().unwrap_or(2);
        Finder {
            secrets,
            pairs,
            stride: min.saturating_sub(1).max(1),
        }
    }

    /// The indexes of the secrets `data` holds.
    fn find_all(&self, data: &[u8]) -> Vec<usize> {
        let mut found = vec![false; self.secrets.len()];
        let mut at = 0;
        while let (Some(a), Some(b)) = (data.get(at), data.get(at + 1)) {
            for &(index, offset) in self.pairs.get(pair(*a, *b)).map_or(&[][..], Vec::as_slice) {
                let Some(start) = at.checked_sub(offset) else {
                    continue;
                };
                if let (Some(slot), Some((_, bytes)), Some(rest)) = (
                    found.get_mut(index),
                    self.secrets.get(index),
                    data.get(start..),
                ) && rest.starts_with(bytes)
                {
                    *slot = true;
                }
            }
            at += self.stride;
        }
        // Secrets of fewer than two bytes (none in the demo) byte by byte.
        for (slot, (_, bytes)) in found.iter_mut().zip(self.secrets) {
            if bytes.len() < 2 && !*slot {
                *slot = contains(data, bytes);
            }
        }
        found
            .iter()
            .enumerate()
            .filter_map(|(i, hit)| hit.then_some(i))
            .collect()
    }
}

/// Every file under `root`, recursively (symbolic links are not followed).
fn files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", entry.path().display()))?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Scans every file under `root` for every secret. The scan is checked first on bytes that do
/// hold each secret.
pub(crate) fn scan(root: &Path, secrets: &[(String, Vec<u8>)]) -> anyhow::Result<Report> {
    let finder = Finder::new(secrets);
    for (index, (what, bytes)) in secrets.iter().enumerate() {
        // At every alignment against the stride.
        for lead in 0..=finder.stride {
            let mut control = vec![b'.'; lead];
            control.extend_from_slice(bytes);
            control.extend_from_slice(b"..");
            if !contains(&control, bytes) || !finder.find_all(&control).contains(&index) {
                bail!("the scan does not find {what} where it is");
            }
        }
    }
    let stores_dir = root.join("stores");
    let mut report = Report {
        files: 0,
        server_files: 0,
        stores: 0,
        bytes: 0,
        found: Vec::new(),
    };
    for file in files(root)? {
        let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        report.files += 1;
        report.bytes += data.len() as u64;
        if file.starts_with(&stores_dir) {
            if file.extension().is_some_and(|e| e == "redb") {
                report.stores += 1;
            }
        } else {
            report.server_files += 1;
        }
        for i in finder.find_all(&data) {
            if let Some((what, _)) = secrets.get(i) {
                report.found.push((file.clone(), what.clone()));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::Finder;

    #[test]
    fn the_finder_sees_every_secret_anywhere_and_nothing_else() {
        let secrets = vec![
            ("a".to_owned(), b"zebra-one-two-three".to_vec()),
            (
                "b".to_owned(),
                vec![
                    0, 0, 7, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                ],
            ),
            (
                "c".to_owned(),
                b"a much longer secret than the others, to vary the lengths".to_vec(),
            ),
        ];
        let finder = Finder::new(&secrets);
        for (index, (_, bytes)) in secrets.iter().enumerate() {
            for lead in 0..64 {
                let mut data = vec![0u8; lead];
                data.extend_from_slice(bytes);
                data.extend_from_slice(&[0; 5]);
                assert_eq!(finder.find_all(&data), vec![index], "lead {lead}");
                // One byte changed: not found.
                if let Some(last) = data.get_mut(lead + bytes.len() - 1) {
                    *last ^= 0x55;
                }
                assert!(finder.find_all(&data).is_empty(), "lead {lead}");
            }
        }
        assert!(finder.find_all(&[]).is_empty());
        assert!(finder.find_all(&[0]).is_empty());
    }
}
