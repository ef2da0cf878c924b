//! Backups of the key database and their restore. `create` takes an online, consistent
//! snapshot (SQLite backup API, see `store::snapshot`) and encrypts it into one authenticated
//! file (see `format`) under a fresh data key wrapped by the KEK, then appends a line with the
//! file's SHA-256 to the backup log. `restore` (offline, into an empty node) authenticates the
//! whole file before writing anything, decrypts it beside the database, checks SQLite's
//! integrity and that every stored key unwraps under the node's KEK, and only then moves it
//! into place. On a PostgreSQL store the snapshot is a logical copy into the same kind of
//! SQLite file, and `restore_into_postgres` checks a backup the same way, then imports its rows
//! into the database in one transaction (`store::postgres::copy`): the backup format is one
//! for both backends, so a backup of either restores into either.

pub mod format;
pub mod kit;
mod runner;
pub mod schedule;
pub mod sftp;

pub use crate::ops::BackupInfo;
pub use runner::Runner;

use crate::crypto::slot::KekSlot;
use crate::store::{snapshot, Store, StoreError};
use format::FormatError;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The backup file is damaged, tampered with, or of another KEK.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The database snapshot failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target node is not empty.
    #[error("{0} exists: akm restore only writes into an empty node (stop the server and move the old database away)")]
    NotEmpty(String),
    /// A restore into a PostgreSQL database that already holds objects, without `--force`.
    #[error("the PostgreSQL database already holds {0} objects: akm restore replaces them only with --force (stop every akm node on the database first: its objects, accounts and change log become the backup's)")]
    DatabaseInUse(i64),
    /// A restored key does not unwrap under the node's KEK.
    #[error("restored key {0} does not unwrap under this node's KEK; nothing was restored")]
    KeyUnreadable(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The backup log of the backup directory `dir`: one line for every backup written there,
/// manual or scheduled, and for every off-site copy of one.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("backup.log")
}

/// Creates a private (0700) directory.
fn private_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

/// A new private (0600) file; never overwrites.
fn new_file(path: &Path) -> Result<File, BackupError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

/// SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String, BackupError> {
    let mut ctx = crate::crypto::backend::prim::digest::Context::new(
        &crate::crypto::backend::prim::digest::SHA256,
    );
    let mut f = File::open(path).map_err(io(path))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf).map_err(io(path))? {
            0 => break,
            n => ctx.update(&buf[..n]),
        }
    }
    Ok(hex::encode(ctx.finish()))
}

/// The backup file name for a time: `akm-YYYYMMDDTHHMMSSZ-<random>.akmbak`, which sorts by
/// time.
fn file_name(now: i64) -> String {
    let t = crate::audit::format_time_ms(now * 1000);
    let compact: String = t
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect();
    let tag = hex::encode(crate::crypto::random_bytes(3).as_slice());
    format!("akm-{compact}Z-{tag}.akmbak")
}

/// Takes an online snapshot of `store` and writes it encrypted into `dir` (created 0700);
/// `progress` gets (pages copied, pages in total). Blocking.
pub fn create(
    store: &Store,
    kek: &KekSlot,
    dir: &Path,
    now: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupInfo, BackupError> {
    // Before the snapshot: the FIPS build would copy the whole store only to refuse.
    format::writable()?;
    private_dir(dir)?;
    let name = file_name(now);
    let snap = dir.join(format!(".{name}.snapshot"));
    let result = snapshot_and_encrypt(store, kek, &snap, &dir.join(&name), now, progress);
    // The plain snapshot holds only wrapped keys, but it is not kept either way.
    let _ = std::fs::remove_file(&snap);
    let _ = std::fs::remove_file(dir.join(format!(".{name}.snapshot-journal")));
    result
}

fn snapshot_and_encrypt(
    store: &Store,
    kek: &KekSlot,
    snap: &Path,
    dest: &Path,
    now: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupInfo, BackupError> {
    drop(new_file(snap)?);
    store.snapshot_to(snap, progress)?;
    let mut input = BufReader::new(File::open(snap).map_err(io(snap))?);
    let file = new_file(dest)?;
    let mut out = BufWriter::new(file);
    let written = format::encrypt(kek, now, &mut input, &mut out).and_then(|h| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(h)
    });
    let header = match written {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(dest);
            return Err(e.into());
        }
    };
    Ok(BackupInfo {
        path: dest.to_owned(),
        bytes: std::fs::metadata(dest).map_err(io(dest))?.len(),
        sha256: file_sha256(dest)?,
        kek_id: header.kek_id,
    })
}

/// Appends one line for `info` to the backup log of `dir` (created 0600): time, file, size,
/// SHA-256, KEK and who asked.
pub fn log_backup(dir: &Path, now: i64, info: &BackupInfo, by: &str) -> Result<(), BackupError> {
    let log = &log_path(dir);
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(log)
        .map_err(io(log))?;
    let line = format!(
        "time={} event=backup file={} bytes={} sha256={} kek_id={} by={}\n",
        crate::audit::format_time_ms(now * 1000),
        info.path.display(),
        info.bytes,
        info.sha256,
        info.kek_id,
        by.replace(char::is_whitespace, "_"),
    );
    f.write_all(line.as_bytes()).map_err(io(log))?;
    f.sync_data().map_err(io(log))
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// SHA-256 of the backup file.
    pub sha256: String,
    /// Keys whose material was proven to unwrap.
    pub keys: usize,
    /// The database written (the SQLite file, or the PostgreSQL database's name).
    pub database: String,
}

/// Authenticates the whole backup file without writing anything; `progress` gets (bytes
/// read, file size).
pub fn verify(
    file: &Path,
    kek: &KekSlot,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<format::Header, BackupError> {
    let size = std::fs::metadata(file).map_err(io(file))?.len();
    let mut input = BufReader::new(File::open(file).map_err(io(file))?);
    let header = format::read_header(&mut input)?;
    format::decrypt(kek, &header, &mut input, &mut std::io::sink(), &mut |n| {
        progress(n, size)
    })?;
    Ok(header)
}

/// Restores `file` as the database `database` (which must not exist). Verifies first, then
/// decrypts beside it, checks, and renames into place; on any failure nothing is left.
pub fn restore(
    file: &Path,
    kek: &KekSlot,
    database: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Restored, BackupError> {
    for existing in [database.to_owned(), with_suffix(database, "-wal")] {
        if existing.exists() {
            return Err(BackupError::NotEmpty(existing.display().to_string()));
        }
    }
    let sha256 = file_sha256(file)?;
    verify(file, kek, &mut |n, t| progress("verify", n, t))?;
    if let Some(parent) = database.parent() {
        private_dir(parent)?;
    }
    let staging = with_suffix(database, ".restoring");
    let _ = std::fs::remove_file(&staging);
    let result = write_and_check(file, kek, &staging, progress);
    let keys = match result {
        Ok(keys) => keys,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    std::fs::rename(&staging, database).map_err(io(database))?;
    Ok(Restored {
        sha256,
        keys,
        database: database.display().to_string(),
    })
}

/// Restores `file` into the PostgreSQL database of `store` (a `backend = "postgres"`
/// configuration): verifies it, decrypts and checks it as [`restore`] does into a staging
/// file in the data directory (removed after), then replaces the database's contents with its
/// rows in one transaction. A database that holds objects is refused unless `replace`.
pub fn restore_into_postgres(
    file: &Path,
    kek: &KekSlot,
    store: &crate::config::StoreConfig,
    replace: bool,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Restored, BackupError> {
    let sha256 = file_sha256(file)?;
    verify(file, kek, &mut |n, t| progress("verify", n, t))?;
    private_dir(&store.data_dir)?;
    let staging = with_suffix(&store.database(), ".restoring");
    let leftovers = ["", "-journal", "-wal", "-shm"].map(|s| with_suffix(&staging, s));
    for f in &leftovers {
        let _ = std::fs::remove_file(f);
    }
    let kek_id = kek.id().unwrap_or_default();
    let result = write_and_check(file, kek, &staging, progress).and_then(|keys| {
        let imported =
            crate::store::postgres::copy::import(store, &staging, &kek_id, replace, &mut |n, t| {
                progress("import", n, t)
            });
        match imported {
            Ok(imported) => Ok((keys, imported.database)),
            Err(StoreError::NotEmpty(objects)) => Err(BackupError::DatabaseInUse(objects)),
            Err(e) => Err(e.into()),
        }
    });
    // The plain snapshot holds only wrapped keys, but it is not kept either way.
    for f in &leftovers {
        let _ = std::fs::remove_file(f);
    }
    let (keys, database) = result?;
    Ok(Restored {
        sha256,
        keys,
        database,
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn write_and_check(
    file: &Path,
    kek: &KekSlot,
    staging: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<usize, BackupError> {
    let size = std::fs::metadata(file).map_err(io(file))?.len();
    let mut input = BufReader::new(File::open(file).map_err(io(file))?);
    let header = format::read_header(&mut input)?;
    let out = new_file(staging)?;
    let mut out = BufWriter::new(out);
    format::decrypt(kek, &header, &mut input, &mut out, &mut |n| {
        progress("restore", n, size)
    })?;
    let out = out
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io(staging))?;
    out.sync_all().map_err(io(staging))?;
    drop(out);
    let conn = snapshot::check_snapshot(staging)?;
    let material = snapshot::wrapped_material(&conn)?;
    let current = kek.id().unwrap_or_default();
    for (uid, version, wrapped) in &material {
        let plain = kek
            .unwrap(uid, *version, wrapped)
            .map_err(|_| BackupError::KeyUnreadable(uid.clone()))?;
        // Taken before a KEK rotation: the node's server wraps with its current KEK only.
        if wrapped.kek_id != current {
            let new = kek
                .wrap(uid, *version, &plain)
                .map_err(|_| BackupError::KeyUnreadable(uid.clone()))?;
            snapshot::rewrap_material(&conn, uid, &new)?;
        }
    }
    // Back to a WAL database like the server's, with no journal left beside it.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(StoreError::from)?;
    drop(conn);
    Ok(material.len())
}
