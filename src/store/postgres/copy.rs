//! Logical copies between a PostgreSQL store and a SQLite snapshot file, row by row, in both
//! directions. The snapshot is exactly what a SQLite node's `akm backup` writes (a SQLite
//! database at the SQLite store's current schema), so the backup format, its encryption and
//! its verification do not know which backend a backup came from or goes to.
//!
//! - `export` (`Store::snapshot_to` on PostgreSQL): every table is read in ONE
//!   `REPEATABLE READ READ ONLY` transaction on a reader connection, a consistent point in time
//!   while every node keeps writing, and written into a fresh SQLite file made by the SQLite
//!   store's own migrations.
//! - [`import`] (`akm restore` into PostgreSQL): a snapshot's rows replace the database's
//!   contents in ONE transaction that first takes the write lock every writer takes, so no
//!   node's write interleaves and a failure leaves the database as it was.
//!
//! Wrapped key material is copied as it is stored, never unwrapped. The change log is kept:
//! an export drops the node that wrote each entry (SQLite has no such column) and takes every
//! entry as audited (its audit record belongs to the node that made it); an import names the
//! restoring node (`store.node_id`) as the writer of every entry and sets every node's audit
//! mark to the newest entry, so no node records a restored change as its own unaudited one.

use super::super::snapshot::Progress;
use super::super::{schema, StoreError};
use super::{Connector, Pg};
use crate::config::StoreConfig;
use postgres::types::ToSql;
use rusqlite::types::Value;
use std::path::Path;

/// How a column is typed on PostgreSQL (SQLite stores each as INTEGER, TEXT or BLOB).
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `BIGINT`.
    Big,
    /// `INTEGER`.
    Int,
    /// `TEXT`.
    Text,
    /// `BYTEA`.
    Bytes,
    /// `BOOLEAN` (SQLite: 0 or 1).
    Bool,
}

use Kind::{Big, Bool, Bytes, Int, Text};

/// One table's copy: the statement that reads it from the source (its columns in the order of
/// `columns`), and the table and columns it is written into.
struct Copy {
    read: &'static str,
    into: &'static str,
    columns: &'static [(&'static str, Kind)],
}

/// The columns of an object row, on both backends.
const OBJECT_COLUMNS: &[(&str, Kind)] = &[
    ("seq", Big),
    ("uid", Text),
    ("object_type", Big),
    ("state", Big),
    ("owner", Text),
    ("algorithm", Big),
    ("length", Int),
    ("initial_date", Big),
    ("activation_date", Big),
    ("deactivation_date", Big),
    ("last_change", Big),
    ("key_version", Big),
    ("attributes", Bytes),
    ("owner_group", Text),
    ("access_mode", Text),
    ("replaces", Text),
];

const MATERIAL_COLUMNS: &[(&str, Kind)] = &[
    ("uid", Text),
    ("kek_id", Text),
    ("nonce", Bytes),
    ("ciphertext", Bytes),
];

const ACCOUNT_COLUMNS: &[(&str, Kind)] = &[("name", Text), ("enabled", Bool), ("operations", Text)];

const REVOCATION_COLUMNS: &[(&str, Kind)] = &[
    ("issuer", Text),
    ("serial", Text),
    ("reason", Text),
    ("revoked_at", Big),
];

/// The copies that read the same SQL from either backend.
const OBJECTS: Copy = Copy {
    read: "SELECT seq, uid, object_type, state, owner, algorithm, length, initial_date, \
           activation_date, deactivation_date, last_change, key_version, attributes, \
           owner_group, access_mode, replaces FROM objects ORDER BY seq",
    into: "objects",
    columns: OBJECT_COLUMNS,
};
const MATERIAL: Copy = Copy {
    read: "SELECT uid, kek_id, nonce, ciphertext FROM material ORDER BY uid",
    into: "material",
    columns: MATERIAL_COLUMNS,
};
const ACL_USERS: Copy = Copy {
    read: "SELECT name, enabled, operations FROM acl_users ORDER BY name",
    into: "acl_users",
    columns: ACCOUNT_COLUMNS,
};
const ACL_GROUPS: Copy = Copy {
    read: "SELECT name, enabled, operations FROM acl_groups ORDER BY name",
    into: "acl_groups",
    columns: ACCOUNT_COLUMNS,
};

/// PostgreSQL to SQLite, parents before the rows that reference them. Names and Object Groups
/// are written in their order per object (SQLite keeps it in the rowid).
const EXPORT: &[Copy] = &[
    OBJECTS,
    MATERIAL,
    Copy {
        read: "SELECT uid, name FROM names ORDER BY uid, ord",
        into: "names",
        columns: &[("uid", Text), ("name", Text)],
    },
    Copy {
        read: "SELECT uid, grp FROM groups ORDER BY uid, ord",
        into: "groups",
        columns: &[("uid", Text), ("grp", Text)],
    },
    Copy {
        read: "SELECT seq, entity, uid, kind, at, hlc, origin FROM change_log ORDER BY seq",
        into: "change_log",
        columns: &[
            ("seq", Big),
            ("entity", Text),
            ("uid", Text),
            ("kind", Text),
            ("at", Big),
            ("hlc", Big),
            ("origin", Text),
        ],
    },
    ACL_USERS,
    ACL_GROUPS,
    Copy {
        read: "SELECT issuer, serial, reason, revoked_at FROM cert_revocations ORDER BY seq",
        into: "cert_revocations",
        columns: REVOCATION_COLUMNS,
    },
];

/// SQLite to PostgreSQL. A read's one parameter, where it has one, is the restoring node's
/// name (the writer of every change-log entry).
const IMPORT: &[Copy] = &[
    OBJECTS,
    MATERIAL,
    Copy {
        read: "SELECT uid, name, ROW_NUMBER() OVER (PARTITION BY uid ORDER BY rowid) - 1 \
               FROM names ORDER BY uid, rowid",
        into: "names",
        columns: &[("uid", Text), ("name", Text), ("ord", Int)],
    },
    Copy {
        read: "SELECT uid, grp, ROW_NUMBER() OVER (PARTITION BY uid ORDER BY rowid) - 1 \
               FROM groups ORDER BY uid, rowid",
        into: "groups",
        columns: &[("uid", Text), ("grp", Text), ("ord", Int)],
    },
    Copy {
        read: "SELECT seq, entity, uid, kind, at, hlc, origin, ?1 FROM change_log ORDER BY seq",
        into: "change_log",
        columns: &[
            ("seq", Big),
            ("entity", Text),
            ("uid", Text),
            ("kind", Text),
            ("at", Big),
            ("hlc", Big),
            ("origin", Text),
            ("node", Text),
        ],
    },
    ACL_USERS,
    ACL_GROUPS,
    Copy {
        read: "SELECT issuer, serial, reason, revoked_at FROM cert_revocations ORDER BY rowid",
        into: "cert_revocations",
        columns: REVOCATION_COLUMNS,
    },
];

/// Every table an import replaces (the write lock, the schema version and the audit marks
/// stay). TRUNCATE rather than DELETE: the old rows' files go at commit, leaving no dead rows
/// of wrapped material for VACUUM to find.
const REPLACED_TABLES: &str =
    "material, names, groups, objects, change_log, acl_users, acl_groups, cert_revocations";

/// Rows fetched from PostgreSQL at a time (an export never holds a whole table in memory).
const FETCH_ROWS: i32 = 1000;

/// Parameters in one multi-row INSERT at most (PostgreSQL takes 65535).
const MAX_PARAMS: usize = 16_000;

/// A column that holds a value of the wrong type for its table.
fn corrupt(table: &str, column: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table}.{column}: {what}"))
}

/// Copies a consistent snapshot of `pg`'s database into the new SQLite file `dest` (which may
/// exist empty), calling `progress` with (rows copied, rows in total).
pub(in crate::store) fn export(
    pg: &Pg,
    dest: &Path,
    progress: Progress<'_>,
) -> Result<(), StoreError> {
    let mut out = rusqlite::Connection::open(dest)?;
    // The SQLite store's own migrations: the file is what a SQLite node's snapshot is.
    schema::migrate(&mut out)?;
    pg.read(|client| {
        let mut tx = client
            .raw()
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let sqlite = out.transaction()?;
        let total = count_rows(&mut tx)?;
        let mut done = 0;
        progress(0, total);
        for copy in EXPORT {
            export_table(&mut tx, &sqlite, copy, &mut |n| {
                done += n;
                progress(done, total)
            })?;
        }
        // Every entry is taken as audited: its record is in the journal of the node that
        // wrote it (SQLite's mark is one row where PostgreSQL has one per node).
        sqlite.execute(
            "UPDATE audit_mark SET seq = (SELECT COALESCE(MAX(seq), 0) FROM change_log)",
            [],
        )?;
        sqlite.commit()?;
        // A read-only transaction has nothing to commit; ending it releases the snapshot.
        tx.rollback()?;
        Ok(())
    })?;
    // A single self-contained file, as a SQLite snapshot is.
    out.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// Rows in every exported table, inside the snapshot.
fn count_rows(tx: &mut postgres::Transaction<'_>) -> Result<u64, StoreError> {
    let mut total = 0;
    for copy in EXPORT {
        let n: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {}", copy.into), &[])?
            .get(0);
        total += u64::try_from(n).unwrap_or(0);
    }
    Ok(total)
}

/// Streams one table from PostgreSQL into SQLite, `FETCH_ROWS` at a time.
fn export_table(
    tx: &mut postgres::Transaction<'_>,
    out: &rusqlite::Transaction<'_>,
    copy: &Copy,
    copied: &mut dyn FnMut(u64),
) -> Result<(), StoreError> {
    let names: Vec<&str> = copy.columns.iter().map(|(name, _)| *name).collect();
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let mut insert = out.prepare(&format!(
        "INSERT INTO {} ({}) VALUES ({})",
        copy.into,
        names.join(", "),
        marks.join(", ")
    ))?;
    let statement = tx.prepare(copy.read)?;
    let portal = tx.bind(&statement, &[])?;
    loop {
        let rows = tx.query_portal(&portal, FETCH_ROWS)?;
        for row in &rows {
            let values = copy
                .columns
                .iter()
                .enumerate()
                .map(|(i, (column, kind))| sqlite_value(row, i, *kind, copy.into, column))
                .collect::<Result<Vec<_>, _>>()?;
            insert.execute(rusqlite::params_from_iter(values))?;
        }
        copied(rows.len() as u64);
        if rows.len() < FETCH_ROWS as usize {
            return Ok(());
        }
    }
}

/// Column `i` of a PostgreSQL row as a SQLite value.
fn sqlite_value(
    row: &postgres::Row,
    i: usize,
    kind: Kind,
    table: &str,
    column: &str,
) -> Result<Value, StoreError> {
    let bad = |e: postgres::Error| corrupt(table, column, e);
    Ok(match kind {
        Big => row.try_get::<_, Option<i64>>(i).map_err(bad)?.into(),
        Int => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map(i64::from)
            .into(),
        Text => row.try_get::<_, Option<String>>(i).map_err(bad)?.into(),
        Bytes => row.try_get::<_, Option<Vec<u8>>>(i).map_err(bad)?.into(),
        Bool => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map(i64::from)
            .into(),
    })
}

/// What an import wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// Objects now in the database.
    pub objects: u64,
    /// The database, as logs name it (never the password).
    pub database: String,
}

/// Replaces the contents of the PostgreSQL database `cfg` names with the rows of the SQLite
/// snapshot `snapshot` (migrated first to this binary's SQLite schema, in place), in one
/// transaction holding the write lock. A database that already holds objects is refused with
/// [`StoreError::NotEmpty`] unless `replace`.
pub fn import(
    cfg: &StoreConfig,
    snapshot: &Path,
    kek_id: &str,
    replace: bool,
    progress: Progress<'_>,
) -> Result<Imported, StoreError> {
    let mut source = rusqlite::Connection::open_with_flags(
        snapshot,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    )?;
    schema::migrate(&mut source)?;
    let connector = Connector::new(cfg)?;
    let mut client = connector.connect()?;
    super::schema::migrate(client.raw())?;
    let node = cfg.node_id.as_deref().unwrap_or_default();
    let mut tx = client.raw().transaction()?;
    // As every writer does: wait for the lock at most as long as SQLite's busy timeout.
    tx.batch_execute(
        "SET LOCAL lock_timeout = '30s'; SELECT id FROM write_lock WHERE id = 1 FOR UPDATE",
    )?;
    // Nodes serving from the database keep what they read of it (the change log position
    // their revocation followers are at, the KEK they checked at start): replacing it under
    // them would leave them wrong without telling them. They stop first.
    let live: Vec<String> = tx
        .query(crate::store::cluster::LIVE_NODES_SQL, &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !live.is_empty() {
        return Err(StoreError::NodesServing(live.join(", ")));
    }
    let present: i64 = tx.query_one("SELECT COUNT(*) FROM objects", &[])?.get(0);
    if present > 0 && !replace {
        return Err(StoreError::NotEmpty(present));
    }
    tx.batch_execute(&format!("TRUNCATE {REPLACED_TABLES} RESTART IDENTITY"))?;
    let total = IMPORT
        .iter()
        .map(|copy| source_rows(&source, copy.into))
        .sum::<Result<u64, _>>()?;
    let mut done = 0;
    progress(0, total);
    for copy in IMPORT {
        import_table(&source, &mut tx, copy, node, &mut |n| {
            done += n;
            progress(done, total)
        })?;
    }
    finish_import(&mut tx, node, kek_id)?;
    let objects: i64 = tx.query_one("SELECT COUNT(*) FROM objects", &[])?.get(0);
    tx.commit()?;
    Ok(Imported {
        objects: u64::try_from(objects).unwrap_or(0),
        database: connector.label().to_owned(),
    })
}

/// Rows of `table` in the snapshot.
fn source_rows(source: &rusqlite::Connection, table: &str) -> Result<u64, StoreError> {
    let n: i64 = source.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// After the rows: the objects' identity goes on after the restored rows, every node's audit
/// mark (the restoring node's made if it has none) stands at the newest entry, and the
/// database's KEK is the one the restored keys were checked to unwrap under (`kek_id`), which
/// every node serving them must hold.
fn finish_import(
    tx: &mut postgres::Transaction<'_>,
    node: &str,
    kek_id: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO database_kek (id, kek_id) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET kek_id = EXCLUDED.kek_id",
        &[&kek_id],
    )?;
    tx.batch_execute(
        "SELECT setval(pg_get_serial_sequence('objects', 'seq'), MAX(seq)) FROM objects \
         HAVING MAX(seq) IS NOT NULL",
    )?;
    let newest: i64 = tx
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM change_log", &[])?
        .get(0);
    tx.execute("UPDATE audit_mark SET seq = $1", &[&newest])?;
    tx.execute(
        "INSERT INTO audit_mark (node, seq) VALUES ($1, $2) ON CONFLICT (node) DO NOTHING",
        &[&node, &newest],
    )?;
    Ok(())
}

/// A value bound into a PostgreSQL statement.
type PgValue = Box<dyn ToSql + Sync>;

/// Copies one table from the snapshot into PostgreSQL, many rows per INSERT.
fn import_table(
    source: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    copy: &Copy,
    node: &str,
    copied: &mut dyn FnMut(u64),
) -> Result<(), StoreError> {
    let per_insert = (MAX_PARAMS / copy.columns.len()).max(1);
    let mut stmt = source.prepare(copy.read)?;
    let mut rows = if stmt.parameter_count() == 1 {
        stmt.query([node])?
    } else {
        stmt.query([])?
    };
    let mut pending: Vec<PgValue> = Vec::new();
    while let Some(row) = rows.next()? {
        for (i, (column, kind)) in copy.columns.iter().enumerate() {
            pending.push(pg_value(row.get(i)?, *kind, copy.into, column)?);
        }
        if pending.len() >= per_insert * copy.columns.len() {
            insert_rows(tx, copy, &mut pending)?;
            copied(per_insert as u64);
        }
    }
    let last = pending.len() / copy.columns.len();
    if last > 0 {
        insert_rows(tx, copy, &mut pending)?;
        copied(last as u64);
    }
    Ok(())
}

/// Inserts the rows whose values `pending` holds (column after column), and empties it.
fn insert_rows(
    tx: &mut postgres::Transaction<'_>,
    copy: &Copy,
    pending: &mut Vec<PgValue>,
) -> Result<(), StoreError> {
    let width = copy.columns.len();
    let names: Vec<&str> = copy.columns.iter().map(|(name, _)| *name).collect();
    let tuples: Vec<String> = (0..pending.len() / width)
        .map(|r| {
            let marks: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        copy.into,
        names.join(", "),
        tuples.join(", ")
    );
    let params: Vec<&(dyn ToSql + Sync)> = pending.iter().map(|v| v.as_ref()).collect();
    tx.execute(&sql, &params)?;
    pending.clear();
    Ok(())
}

/// A SQLite value as the PostgreSQL type of its column.
fn pg_value(value: Value, kind: Kind, table: &str, column: &str) -> Result<PgValue, StoreError> {
    let wrong = |v: &Value| corrupt(table, column, format!("unexpected {:?}", v.data_type()));
    Ok(match (kind, value) {
        (Big, Value::Null) => Box::new(None::<i64>),
        (Int, Value::Null) => Box::new(None::<i32>),
        (Text, Value::Null) => Box::new(None::<String>),
        (Bytes, Value::Null) => Box::new(None::<Vec<u8>>),
        (Bool, Value::Null) => Box::new(None::<bool>),
        (Big, Value::Integer(n)) => Box::new(Some(n)),
        (Int, Value::Integer(n)) => {
            Box::new(Some(i32::try_from(n).map_err(|_| {
                corrupt(table, column, format!("{n} out of range"))
            })?))
        }
        (Bool, Value::Integer(n)) => Box::new(Some(n != 0)),
        (Text, Value::Text(s)) => Box::new(Some(s)),
        (Bytes, Value::Blob(b)) => Box::new(Some(b)),
        (_, other) => return Err(wrong(&other)),
    })
}
