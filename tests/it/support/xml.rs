//! The OASIS KMIP XML test-case reader, which lives in the library (`akm::conformance::xml`)
//! so that `akm conformance replay` uses it too, plus where the tests find the vectors.

pub use akm::conformance::xml::*;
use std::path::{Path, PathBuf};

/// The vectors directory: `$AKM_KMIP_VECTORS` if set, else `../shared/kmip/vectors` beside the
/// crate; `None` when that directory does not exist.
pub fn vectors_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("AKM_KMIP_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kmip/vectors"),
    };
    dir.is_dir().then_some(dir)
}
