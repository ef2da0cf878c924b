//! First start is all-or-nothing: before `akm init` (or `akm serve` with `auto_init`) writes
//! the KEK, the audit signing key and the development PKI, [`FirstStart::record`] notes what
//! already exists in the directories it writes to; if the start then fails before serving,
//! [`FirstStart::undo`] removes exactly what appeared since, so the next start begins afresh
//! instead of finding a KEK without a database or certificates without a KEK.

use crate::config::Config;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One directory a first start writes to, and what was in it before.
#[derive(Debug)]
struct Watched {
    dir: PathBuf,
    existed: bool,
    before: HashSet<PathBuf>,
}

/// What existed before a first start, to undo it with.
#[derive(Debug)]
pub struct FirstStart {
    watched: Vec<Watched>,
}

/// The entries of `dir` (empty if it does not exist); an unreadable directory is an error.
fn entries(dir: &Path) -> std::io::Result<HashSet<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

impl FirstStart {
    /// Notes what the directories a first start writes to hold now: the data directory, the
    /// certificates directory, and the KEK's and audit key's directories.
    pub fn record(config: &Config) -> std::io::Result<FirstStart> {
        let mut dirs: Vec<PathBuf> =
            vec![config.store.data_dir.clone(), config.tls.certs_dir.clone()];
        let audit_key = config.audit.signing_key_path(&config.store);
        let journal = config.audit.journal_path(&config.store);
        for file in [config.store.kek(), audit_key, journal] {
            if let Some(parent) = file.parent() {
                dirs.push(parent.to_owned());
            }
        }
        dirs.sort();
        dirs.dedup();
        let mut watched = Vec::new();
        for dir in dirs {
            watched.push(Watched {
                existed: dir.try_exists()?,
                before: entries(&dir)?,
                dir,
            });
        }
        Ok(FirstStart { watched })
    }

    /// Removes what appeared since [`FirstStart::record`]: new entries of each directory, and
    /// the directories themselves when they did not exist before. Returns what was removed.
    pub fn undo(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for w in &self.watched {
            let Ok(now) = entries(&w.dir) else { continue };
            for path in now.difference(&w.before) {
                let gone = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
                if gone.is_ok() {
                    removed.push(path.clone());
                }
            }
        }
        // Deepest first, so a new directory inside another new one goes before its parent.
        let mut new_dirs: Vec<&Watched> = self.watched.iter().filter(|w| !w.existed).collect();
        new_dirs.sort_by_key(|w| std::cmp::Reverse(w.dir.components().count()));
        for w in new_dirs {
            if std::fs::remove_dir(&w.dir).is_ok() {
                removed.push(w.dir.clone());
            }
        }
        removed.sort();
        removed
    }
}
