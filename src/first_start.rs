//! First start is all-or-nothing: before `akm init` (or `akm serve` with `auto_init`) writes
//! the KEK, the audit signing key and the development PKI, [`FirstStart::record`] notes what
//! already exists; if the start then fails before serving, [`FirstStart::undo`] removes
//! exactly what appeared since, so the next start begins afresh instead of finding a KEK
//! without a database or certificates without a KEK.
//!
//! The data and certificates directories are akm's own: anything new in them goes. The KEK,
//! the audit signing key and the journal may be configured elsewhere (a shared directory such
//! as /var/log): there only those files go, never a neighbour's.

use crate::config::Config;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What existed before a first start, to undo it with.
#[derive(Debug)]
pub struct FirstStart {
    /// akm's own directories and their entries before.
    owned: Vec<(PathBuf, HashSet<PathBuf>)>,
    /// Files a first start writes outside them, that did not exist before.
    new_files: Vec<PathBuf>,
    /// Directories that did not exist before (removed if empty once the rest is gone).
    new_dirs: Vec<PathBuf>,
}

/// The entries of `dir` (empty if it does not exist); an unreadable directory is an error.
fn entries(dir: &Path) -> std::io::Result<HashSet<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

/// Removes a file or a directory tree; whether it is gone.
fn remove(path: &Path) -> bool {
    if path.is_dir() {
        std::fs::remove_dir_all(path).is_ok()
    } else {
        std::fs::remove_file(path).is_ok()
    }
}

impl FirstStart {
    /// Notes what exists now where a first start writes.
    pub fn record(config: &Config) -> std::io::Result<FirstStart> {
        let owned_dirs = [config.store.data_dir.clone(), config.tls.certs_dir.clone()];
        let files = [
            config.store.kek(),
            config.audit.signing_key_path(&config.store),
            config.audit.journal_path(&config.store),
        ];
        let mut new_dirs = Vec::new();
        let parents = files.iter().filter_map(|f| f.parent().map(Path::to_owned));
        for dir in owned_dirs.iter().cloned().chain(parents) {
            if !dir.try_exists()? && !new_dirs.contains(&dir) {
                new_dirs.push(dir);
            }
        }
        let mut owned = Vec::new();
        for dir in owned_dirs {
            owned.push((dir.clone(), entries(&dir)?));
        }
        let mut new_files = Vec::new();
        for f in files {
            if !f.try_exists()? {
                new_files.push(f);
            }
        }
        Ok(FirstStart {
            owned,
            new_files,
            new_dirs,
        })
    }

    /// Removes what appeared since [`FirstStart::record`]. Returns what was removed.
    pub fn undo(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for (dir, before) in &self.owned {
            let Ok(now) = entries(dir) else { continue };
            for path in now.difference(before) {
                if remove(path) {
                    removed.push(path.clone());
                }
            }
        }
        for f in &self.new_files {
            if f.exists() && remove(f) {
                removed.push(f.clone());
            }
        }
        // Deepest first, so a new directory inside another new one goes before its parent;
        // remove_dir only takes an empty one.
        let mut dirs = self.new_dirs.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            if std::fs::remove_dir(&d).is_ok() {
                removed.push(d);
            }
        }
        removed.sort();
        removed.dedup();
        removed
    }
}
