//! What mirroring needs from the store: reading the change log and the current version of an
//! object with its stamp, writing a peer's version of an object (with its stamp, so it is not
//! sent back), remembering the last sequence number applied from each peer, compacting the
//! log, and the hook through which mirroring gates client writes (RPO-zero) and learns of new
//! commits. Users and groups (access control) travel the same way as objects: the change log
//! names the entity (`object`, `user`, `group`), and a version of any of them carries the stamp
//! of its latest entry. The store still sees wrapped key material only.

use super::{load_material, load_row, AccountKind, ObjectRow, Store, StoreError, WriteTx};
use crate::crypto::Wrapped;
use rusqlite::{params, OptionalExtension};
use std::sync::Arc;

/// Called around every client write made through [`Store::write`] (not around mirrored ones).
pub trait CommitHook: Send + Sync {
    /// Before the write runs: an error refuses it and nothing is written.
    fn before_write(&self) -> Result<(), StoreError>;
    /// After the write committed, with the sequence number of its last change-log entry. May
    /// block (callers are on the blocking pool) until a peer has applied it.
    fn after_commit(&self, seq: i64) -> Result<(), StoreError>;
}

/// Which version of an object is newer: hybrid logical clock, then node id to break ties.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    /// Hybrid logical clock: milliseconds since the epoch shifted left 16 bits, plus a counter.
    pub hlc: i64,
    /// The node that made the change.
    pub node: String,
}

/// One change-log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Sequence number on this node.
    pub seq: i64,
    /// What changed: `object`, `user` or `group`.
    pub entity: String,
    /// The object's Unique Identifier, or the user's or group's name.
    pub uid: String,
    /// `insert`, `update`, `policy`, `put` or `delete`.
    pub kind: String,
    /// When it was logged, seconds since the epoch.
    pub at: i64,
    /// Its hybrid logical clock stamp.
    pub hlc: i64,
    /// The peer it came from; `None` for a change made on this node.
    pub origin: Option<String>,
}

/// The current version of an object as mirroring ships it: metadata, wrapped material and the
/// stamp of its latest change.
#[derive(Clone, Debug)]
pub struct ReplicaObject {
    /// The row.
    pub row: ObjectRow,
    /// Its material wrapped under this node's KEK, if it still has any.
    pub material: Option<Wrapped>,
    /// The stamp's clock.
    pub hlc: i64,
    /// The stamp's node; `None` means this node.
    pub origin: Option<String>,
}

/// The current version of a user or group record as mirroring ships it: the raw columns
/// (`None`: deleted) and the stamp of its latest change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaAccount {
    /// `enabled` and `operations` as stored; `None` when the record was deleted.
    pub record: Option<(bool, String)>,
    /// The stamp's clock.
    pub hlc: i64,
    /// The stamp's node; `None` means this node.
    pub origin: Option<String>,
}

fn load_account_raw(
    c: &rusqlite::Connection,
    kind: AccountKind,
    name: &str,
) -> Result<Option<(bool, String)>, StoreError> {
    let sql = format!(
        "SELECT enabled, operations FROM {} WHERE name = ?1",
        kind.table()
    );
    Ok(c.query_row(&sql, [name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// A hybrid logical clock value for "now" with no counter.
fn physical_hlc() -> i64 {
    crate::clock::now_ms() << 16
}

impl Store {
    /// Installs mirroring's hook; false if one is already installed.
    pub fn set_commit_hook(&self, hook: Arc<dyn CommitHook>) -> bool {
        self.hook.set(hook).is_ok()
    }

    /// Runs a write that does not pass through the commit hook (applying a peer's change).
    pub fn write_replica<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        Ok(self.submit_logged(f)?.0)
    }

    /// Up to `limit` change-log entries after `seq`, oldest first.
    pub fn changes_after(&self, seq: i64, limit: usize) -> Result<Vec<ChangeEntry>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, entity, uid, kind, at, hlc, origin FROM change_log WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![seq, limit as i64], |r| {
                Ok(ChangeEntry {
                    seq: r.get(0)?,
                    entity: r.get(1)?,
                    uid: r.get(2)?,
                    kind: r.get(3)?,
                    at: r.get(4)?,
                    hlc: r.get(5)?,
                    origin: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// How many changes made on this node come after `seq`, and when the oldest was logged;
    /// `None` when there are none.
    pub fn local_changes_after(&self, seq: i64) -> Result<Option<(i64, i64)>, StoreError> {
        self.read(|c| {
            let (count, oldest): (i64, Option<i64>) = c.query_row(
                "SELECT COUNT(*), MIN(at) FROM change_log WHERE seq > ?1 AND origin IS NULL",
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(oldest.filter(|_| count > 0).map(|o| (count, o)))
        })
    }

    /// Whether every change-log entry after `seq` is still there (none was compacted away).
    /// Sequence numbers have no gaps until a compaction makes them.
    pub fn log_complete_after(&self, seq: i64) -> Result<bool, StoreError> {
        self.read(|c| {
            let (count, newest): (i64, i64) = c.query_row(
                "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM change_log WHERE seq > ?1",
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(count == 0 || count == newest - seq)
        })
    }

    /// The current version of `uid` with its wrapped material and stamp.
    pub fn replica_object(&self, uid: &str) -> Result<Option<ReplicaObject>, StoreError> {
        self.read(|c| {
            let Some(row) = load_row(c, uid)? else {
                return Ok(None);
            };
            let material = load_material(c, uid)?;
            let (hlc, origin) = stamp_of(c, "object", uid)?.unwrap_or((0, None));
            Ok(Some(ReplicaObject {
                row,
                material,
                hlc,
                origin,
            }))
        })
    }

    /// The current version of a user or group record with its stamp.
    pub fn replica_account(
        &self,
        kind: AccountKind,
        name: &str,
    ) -> Result<ReplicaAccount, StoreError> {
        self.read(|c| {
            let record = load_account_raw(c, kind, name)?;
            let (hlc, origin) = stamp_of(c, kind.as_str(), name)?.unwrap_or((0, None));
            Ok(ReplicaAccount {
                record,
                hlc,
                origin,
            })
        })
    }

    /// Every user or group name, with those deleted while the change log remembers them
    /// (for a snapshot, so deletions travel too).
    pub fn account_names(&self, kind: AccountKind) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT name FROM {} UNION SELECT uid FROM change_log WHERE entity = ?1 \
                 ORDER BY 1",
                kind.table()
            ))?;
            let rows = stmt.query_map([kind.as_str()], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Every object's Unique Identifier (for a snapshot), oldest first.
    pub fn all_uids(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT uid FROM objects ORDER BY seq")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The last sequence number applied from peer `node` (0 if none).
    pub fn applied_seq(&self, node: &str) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE((SELECT seq FROM mirror_applied WHERE node = ?1), 0)",
                [node],
                |r| r.get(0),
            )?)
        })
    }

    /// Deletes change-log entries up to and including `seq`, keeping each record's latest
    /// entry (it holds the record's stamp) and the entry with the highest clock (so the clock
    /// never goes back). Returns how many were deleted. A peer whose last acknowledged entry
    /// is gone gets a snapshot.
    pub fn compact_change_log(&self, seq: i64) -> Result<usize, StoreError> {
        self.write_replica(move |tx| {
            Ok(tx.conn().execute(
                "DELETE FROM change_log WHERE seq <= ?1 AND seq NOT IN \
                 (SELECT MAX(seq) FROM change_log GROUP BY entity, uid) \
                 AND seq <> (SELECT seq FROM change_log ORDER BY hlc DESC LIMIT 1)",
                [seq],
            )?)
        })
    }
}

/// The stamp of the latest change to `entity` `uid` (for other record kinds' modules).
pub(super) fn stamp_of_entity(
    c: &rusqlite::Connection,
    entity: &str,
    uid: &str,
) -> Result<Option<(i64, Option<String>)>, StoreError> {
    stamp_of(c, entity, uid)
}

fn stamp_of(
    c: &rusqlite::Connection,
    entity: &str,
    uid: &str,
) -> Result<Option<(i64, Option<String>)>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT hlc, origin FROM change_log WHERE entity = ?1 AND uid = ?2 \
             ORDER BY seq DESC LIMIT 1",
    )?
    .query_row(params![entity, uid], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()?)
}

impl WriteTx<'_> {
    /// Logs a change: from this node (`origin` None) with a fresh clock value above every one
    /// seen, or from a peer with the peer's stamp.
    pub(super) fn log_change_from(
        &self,
        entity: &str,
        uid: &str,
        kind: &str,
        origin: Option<(&str, i64)>,
    ) -> Result<(), StoreError> {
        let (node, hlc) = match origin {
            Some((node, hlc)) => (Some(node), hlc),
            None => {
                let newest: i64 = self
                    .conn()
                    .prepare_cached("SELECT COALESCE(MAX(hlc), 0) FROM change_log")?
                    .query_row([], |r| r.get(0))?;
                (None, physical_hlc().max(newest + 1))
            }
        };
        self.conn()
            .prepare_cached(
                "INSERT INTO change_log (entity, uid, kind, at, hlc, origin) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            // The time from here, not SQLite's strftime, which parses its format each call.
            .execute(params![
                entity,
                uid,
                kind,
                crate::clock::now_secs(),
                hlc,
                node
            ])?;
        self.set_logged(self.conn().last_insert_rowid());
        Ok(())
    }

    /// The stamp of the latest change to `entity` `uid` (origin None: this node).
    pub fn stamp_of(
        &self,
        entity: &str,
        uid: &str,
    ) -> Result<Option<(i64, Option<String>)>, StoreError> {
        stamp_of(self.conn(), entity, uid)
    }

    /// Wrapped material of `uid` inside the transaction.
    pub fn material(&self, uid: &str) -> Result<Option<Wrapped>, StoreError> {
        load_material(self.conn(), uid)
    }

    /// Stores a peer's version of an object as it is (no name-uniqueness check: the peer
    /// already accepted it), replacing the local one, and logs it with the peer's stamp so it
    /// is not sent back.
    pub fn put_replica(
        &self,
        row: &ObjectRow,
        material: Option<&Wrapped>,
        node: &str,
        hlc: i64,
    ) -> Result<(), StoreError> {
        let c = self.conn();
        let exists = c
            .prepare_cached("SELECT 1 FROM objects WHERE uid = ?1")?
            .exists([&row.uid])?;
        self.delete_material(&row.uid)?;
        let sql = if exists {
            "UPDATE objects SET object_type = ?2, state = ?3, owner = ?4, algorithm = ?5, \
             length = ?6, initial_date = ?7, activation_date = ?8, deactivation_date = ?9, \
             last_change = ?10, key_version = ?11, attributes = ?12, owner_group = ?13, \
             access_mode = ?14, replaces = ?15 WHERE uid = ?1"
        } else {
            super::INSERT_OBJECT
        };
        c.prepare_cached(sql)?.execute(row.columns())?;
        if let Some(w) = material {
            self.insert_material(&row.uid, w)?;
        }
        if exists {
            self.replace_names_and_groups(row)?;
        } else {
            self.insert_names_and_groups(row)?;
        }
        let kind = if exists { "update" } else { "insert" };
        self.log_change_from("object", &row.uid, kind, Some((node, hlc)))
    }

    /// Deletes an object a peer deleted (a batch undone there), logging it with the peer's
    /// stamp.
    pub fn delete_replica(&self, uid: &str, node: &str, hlc: i64) -> Result<(), StoreError> {
        let c = self.conn();
        c.execute("DELETE FROM material WHERE uid = ?1", [uid])?;
        c.execute("DELETE FROM names WHERE uid = ?1", [uid])?;
        c.execute("DELETE FROM groups WHERE uid = ?1", [uid])?;
        c.execute("DELETE FROM objects WHERE uid = ?1", [uid])?;
        self.log_change_from("object", uid, "delete", Some((node, hlc)))
    }

    /// The raw columns of a user or group record inside the transaction.
    pub fn account_raw(
        &self,
        kind: AccountKind,
        name: &str,
    ) -> Result<Option<(bool, String)>, StoreError> {
        load_account_raw(self.conn(), kind, name)
    }

    /// Stores a peer's version of a user or group record (`None`: deleted), logged with the
    /// peer's stamp so it is not sent back.
    pub fn put_account_replica(
        &self,
        kind: AccountKind,
        name: &str,
        record: Option<&(bool, String)>,
        node: &str,
        hlc: i64,
    ) -> Result<(), StoreError> {
        let c = self.conn();
        match record {
            Some((enabled, operations)) => c.execute(
                &format!(
                    "INSERT INTO {} (name, enabled, operations) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET enabled = ?2, operations = ?3",
                    kind.table()
                ),
                params![name, enabled, operations],
            )?,
            None => c.execute(
                &format!("DELETE FROM {} WHERE name = ?1", kind.table()),
                [name],
            )?,
        };
        let what = if record.is_some() { "put" } else { "delete" };
        self.log_change_from(kind.as_str(), name, what, Some((node, hlc)))
    }

    /// The live (not destroyed) objects of `owner` holding Name `name`, in Unique Identifier
    /// order: more than one only after mirroring brought two nodes' versions together, which
    /// the mirror's name-conflict rule then resolves.
    pub fn live_named(&self, owner: &str, name: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT o.uid FROM names n JOIN objects o ON o.uid = n.uid \
             WHERE n.name = ?1 AND o.owner = ?2 AND o.state NOT IN (?3, ?4) ORDER BY o.uid",
        )?;
        let rows = stmt.query_map(
            params![
                name,
                owner,
                super::DESTROYED_STATES[0],
                super::DESTROYED_STATES[1]
            ],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The objects of `owner` that name `uid` as their Replaced Object (its replacements,
    /// destroyed ones included), in uid order; from the `replaces` index.
    pub fn owned_replacements(&self, owner: &str, uid: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT uid FROM objects WHERE replaces = ?1 AND owner = ?2 ORDER BY uid",
        )?;
        let rows = stmt.query_map(params![uid, owner], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces an object's metadata as the mirror's name-conflict rule decided, logged as a
    /// change of this node (so it is mirrored). No name-uniqueness check: the rule runs while
    /// names are still in conflict, and each conflict is resolved on its own.
    pub fn update_resolving(&self, row: &ObjectRow) -> Result<(), StoreError> {
        self.write_update(row)
    }

    /// Records that everything up to `seq` from peer `node` is applied (same transaction as
    /// the change, so an acknowledgement is never ahead of the data).
    pub fn set_applied(&self, node: &str, seq: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO mirror_applied (node, seq) VALUES (?1, ?2) \
             ON CONFLICT (node) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            params![node, seq],
        )?;
        Ok(())
    }
}
