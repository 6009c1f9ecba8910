//! Golden files: `tests/data/android.json` and `tests/data/ios.plist` are the exports of
//! [`common::fixed_history`], written once by the exporter and checked in. Exporting the fixed
//! history must reproduce them byte for byte, and importing them must give the fixed history.
//!
//! After a deliberate format change, rewrite them with
//! `WA_HISTORY_BLESS=1 cargo test -p wa-history --test golden` and review the diff.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod common;

use std::path::PathBuf;

use common::fixed_history;
use wa_history::{Format, detect, export, import};

fn path(format: Format) -> PathBuf {
    let name = match format {
        Format::Android => "android.json",
        _ => "ios.plist",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn exporting_the_fixed_history_reproduces_the_golden_files() {
    let bless = std::env::var_os("WA_HISTORY_BLESS").is_some();
    for format in Format::ALL {
        let bytes = export(&fixed_history(), format).unwrap();
        if bless {
            std::fs::write(path(format), &bytes).unwrap();
        }
        let golden = std::fs::read(path(format)).unwrap();
        assert!(
            golden == bytes,
            "{format}: the export differs from {} (run with WA_HISTORY_BLESS=1 after a deliberate change)",
            path(format).display()
        );
    }
}

#[test]
fn importing_the_golden_files_gives_the_fixed_history() {
    for format in Format::ALL {
        let golden = std::fs::read(path(format)).unwrap();
        assert_eq!(detect(&golden), Some(format));
        assert_eq!(
            import(&golden, format).unwrap(),
            fixed_history(),
            "{format}"
        );
    }
}

#[test]
fn golden_files_are_small() {
    for format in Format::ALL {
        let len = std::fs::metadata(path(format)).unwrap().len();
        assert!(len < 8192, "{format}: {len} bytes");
    }
}
