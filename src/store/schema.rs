//! The database schema and its migrations, applied in order and recorded in `user_version`.

use super::StoreError;
use rusqlite::Connection;

/// Each entry migrates the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: objects, wrapped material, Locate indexes, change log.
    "CREATE TABLE objects (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        object_type INTEGER NOT NULL,
        state INTEGER NOT NULL,
        owner TEXT NOT NULL,
        algorithm INTEGER,
        length INTEGER,
        initial_date INTEGER NOT NULL,
        activation_date INTEGER,
        deactivation_date INTEGER,
        last_change INTEGER NOT NULL,
        key_version INTEGER NOT NULL,
        attributes BLOB NOT NULL
    );
    CREATE INDEX objects_owner ON objects (owner, object_type, state);
    CREATE INDEX objects_algorithm ON objects (algorithm, length);
    CREATE INDEX objects_state ON objects (state);
    CREATE INDEX objects_initial_date ON objects (initial_date);
    CREATE TABLE material (
        uid TEXT PRIMARY KEY REFERENCES objects (uid),
        kek_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL
    );
    CREATE TABLE names (
        uid TEXT NOT NULL REFERENCES objects (uid),
        name TEXT NOT NULL,
        PRIMARY KEY (name, uid)
    );
    CREATE INDEX names_uid ON names (uid);
    CREATE TABLE groups (
        uid TEXT NOT NULL REFERENCES objects (uid),
        grp TEXT NOT NULL,
        PRIMARY KEY (grp, uid)
    );
    CREATE INDEX groups_uid ON groups (uid);
    CREATE TABLE change_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL,
        kind TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 2: access control. Each object gets an owner group and an access mode (existing objects
    // stay owner-only, as before); the system tables of users and groups; change-log entries
    // say which kind of record they name, so policy changes are mirrored like keys.
    "ALTER TABLE objects ADD COLUMN owner_group TEXT;
    ALTER TABLE objects ADD COLUMN access_mode TEXT NOT NULL DEFAULT 'user';
    CREATE INDEX objects_owner_group ON objects (owner_group);
    CREATE TABLE acl_users (
        name TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL,
        operations TEXT NOT NULL
    );
    CREATE TABLE acl_groups (
        name TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL,
        operations TEXT NOT NULL
    );
    ALTER TABLE change_log ADD COLUMN entity TEXT NOT NULL DEFAULT 'object';",
    // 3: mirroring. Each change-log entry carries a hybrid logical clock stamp and the node it
    // came from (NULL: this node); `mirror_applied` is the last sequence number applied from
    // each peer, written in the same transaction as the change it acknowledges.
    "ALTER TABLE change_log ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE change_log ADD COLUMN origin TEXT;
    CREATE INDEX change_log_entity_uid ON change_log (entity, uid, seq);
    CREATE INDEX change_log_hlc ON change_log (hlc);
    CREATE TABLE mirror_applied (
        node TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );",
    // 4: client certificate revocations, mirrored to every peer (change-log entity
    // `revocation`, keyed `<serial>@<issuer>`). Rows are only ever added: mirroring never
    // undoes a revocation.
    "CREATE TABLE cert_revocations (
        issuer TEXT NOT NULL,
        serial TEXT NOT NULL,
        reason TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        PRIMARY KEY (issuer, serial)
    );",
    // 5: the audit mark: every change-log entry at or below it has its audit record (see
    // `store::audit_ledger`). Existing entries are taken as recorded.
    "CREATE TABLE audit_mark (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL
    );
    INSERT INTO audit_mark (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM change_log;",
    // 6: the version each object replaces (its Replaced Object link), indexed, so the mirror's
    // fork rule and Re-key find every replacement of a version without reading every row.
    // Filled in for existing rows right after (`backfill_replaces`).
    "ALTER TABLE objects ADD COLUMN replaces TEXT;
    CREATE INDEX objects_replaces ON objects (replaces) WHERE replaces IS NOT NULL;",
    // 7: no query filters or orders by Initial Date in SQL (Locate compares dates on the
    // decoded objects), so its index only cost every Create an insert and ~15 bytes a key.
    "DROP INDEX IF EXISTS objects_initial_date;",
    // 8: wrapped material keyed by its uid alone (WITHOUT ROWID): the rowid table kept a
    // second b-tree, the uid's unique index, ~51 bytes a key and an insert per Create.
    "CREATE TABLE material_by_uid (
        uid TEXT PRIMARY KEY REFERENCES objects (uid),
        kek_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO material_by_uid (uid, kek_id, nonce, ciphertext)
        SELECT uid, kek_id, nonce, ciphertext FROM material;
    DROP TABLE material;
    ALTER TABLE material_by_uid RENAME TO material;",
];

/// The schema version that added `objects.replaces`.
const REPLACES_VERSION: usize = 6;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets `replaces` on every existing row from its stored attributes (once, when the column is
/// added: a database of a million keys takes a few seconds).
fn backfill_replaces(conn: &Connection) -> Result<(), StoreError> {
    let rows: Vec<(String, Vec<u8>)> = conn
        .prepare("SELECT uid, attributes FROM objects")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE objects SET replaces = ?2 WHERE uid = ?1")?;
    for (uid, attributes) in rows {
        if let Some(replaces) = super::replaced_object_of(&attributes) {
            update.execute(rusqlite::params![uid, replaces])?;
        }
    }
    Ok(())
}

/// Brings the database up to [`SCHEMA_VERSION`], refusing one that is newer.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Brings the database up to schema version `version` (tests start from older versions).
pub(super) fn migrate_to(conn: &mut Connection, version: usize) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    // A migration that copies a table frees the old one's pages: zero them, as every write
    // of the store does (they held wrapped key material).
    conn.pragma_update(None, "secure_delete", "ON")?;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(version)
        .skip(current as usize)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == REPLACES_VERSION {
            backfill_replaces(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    Ok(())
}
