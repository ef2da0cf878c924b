//! `[store]`: where the database and the KEK live.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[store]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory holding the database and the KEK.
    pub data_dir: PathBuf,
    /// The KEK file (32 bytes, mode 0600); defaults to `<data_dir>/kek.key`.
    pub kek_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: "data".into(),
            kek_file: None,
        }
    }
}

impl StoreConfig {
    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("akm.db")
    }
    /// The KEK file.
    pub fn kek(&self) -> PathBuf {
        self.kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kek.key"))
    }
    /// The sealed KEK file: beside the KEK file, `kek.sealed` (`akm kek seal` writes it).
    pub fn sealed_kek(&self) -> PathBuf {
        self.kek().with_extension("sealed")
    }
}
