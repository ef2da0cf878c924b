//! Online snapshots of the database with the SQLite backup API, for `akm backup`: the copy is
//! taken from a reader connection inside one read transaction, so it is a consistent point in
//! time while the writer keeps committing (WAL mode: readers never block the writer). On
//! PostgreSQL the snapshot is a logical copy into the same kind of SQLite file
//! (`postgres::copy`). Also the read-only checks a restore runs on a snapshot before it is put
//! in place.

use super::{open_connection, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Pages copied per backup step: progress is reported between steps.
const PAGES_PER_STEP: i32 = 256;

/// Progress of a snapshot: pages copied and pages in total.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

impl Store {
    /// Copies a consistent snapshot of the database into the new file `dest` (which must not
    /// exist, or exist empty), calling `progress` between steps. Blocking: run it off the async
    /// workers. On PostgreSQL the file is the same: a SQLite database at the SQLite store's
    /// schema, copied row by row from one consistent read-only transaction (progress counts
    /// rows rather than pages).
    pub fn snapshot_to(&self, dest: &Path, progress: Progress<'_>) -> Result<(), StoreError> {
        if let Some(pg) = self.postgres() {
            return super::postgres::copy::export(pg, dest, progress);
        }
        self.read(|src| snapshot(src, dest, progress))
    }
}

fn snapshot(src: &Connection, dest: &Path, progress: Progress<'_>) -> Result<(), StoreError> {
    // The read transaction pins one snapshot of the WAL for every step below.
    src.execute_batch("BEGIN; SELECT COUNT(*) FROM sqlite_master;")?;
    let result = copy(src, dest, progress);
    // A read transaction has nothing to commit; ending it releases the snapshot.
    let _ = src.execute_batch("COMMIT");
    result
}

fn copy(src: &Connection, dest: &Path, progress: Progress<'_>) -> Result<(), StoreError> {
    let mut out = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    {
        let backup = rusqlite::backup::Backup::new(src, &mut out)?;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total.saturating_sub(p.remaining.max(0) as u64), total);
            match step {
                rusqlite::backup::StepResult::Done => break,
                // Busy or locked: another connection holds a conflicting lock for a moment.
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    }
    // A single self-contained file: no WAL beside it.
    out.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// Opens a restored snapshot read-only and runs SQLite's integrity check on it.
pub fn check_snapshot(path: &Path) -> Result<Connection, StoreError> {
    let conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(StoreError::SnapshotCorrupt(verdict));
    }
    Ok(conn)
}

/// Replaces the wrapping of `uid`'s material in a snapshot (a restore rewraps keys of a backup
/// taken before a KEK rotation under the current KEK).
pub fn rewrap_material(
    conn: &Connection,
    uid: &str,
    new: &crate::crypto::Wrapped,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE material SET kek_id = ?1, nonce = ?2, ciphertext = ?3 WHERE uid = ?4",
        rusqlite::params![new.kek_id, new.nonce, new.ciphertext, uid],
    )?;
    Ok(())
}

/// Every wrapped key in a snapshot: (uid, key version, wrapped), for a restore to prove each
/// one unwraps under the KEK it has.
pub fn wrapped_material(
    conn: &Connection,
) -> Result<Vec<(String, i64, crate::crypto::Wrapped)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT m.uid, o.key_version, m.kek_id, m.nonce, m.ciphertext \
         FROM material m JOIN objects o ON o.uid = m.uid ORDER BY o.seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            crate::crypto::Wrapped {
                kek_id: r.get(2)?,
                nonce: r.get(3)?,
                ciphertext: r.get(4)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
