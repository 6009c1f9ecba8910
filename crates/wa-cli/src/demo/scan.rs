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
    for (what, bytes) in secrets {
        let mut control = b"..".to_vec();
        control.extend_from_slice(bytes);
        control.extend_from_slice(b"..");
        if !contains(&control, bytes) {
            bail!("the scan does not find {what} where it is");
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
        for (what, bytes) in secrets {
            if contains(&data, bytes) {
                report.found.push((file.clone(), what.clone()));
            }
        }
    }
    Ok(report)
}
