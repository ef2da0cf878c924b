//! The key store: SQLite schema and migrations, queries, the single writer thread that
//! group-commits concurrent writes, the reader pool, and the change log that mirroring
//! streams. It stores wrapped key material only and never sees plaintext keys.
//!
//! Two backends sit behind one API: the embedded SQLite file, and a PostgreSQL database
//! several akm nodes may share ([`postgres`], `[store] backend = "postgres"`). `Store` and
//! `WriteTx` each hold an enum of the two, matched once per call (docs/design-postgres.md).
//!
//! Every call here blocks; callers on the async runtime go through `spawn_blocking`.

mod acl;
pub mod audit_ledger;
mod batch;
mod cluster;
mod migrate;
pub mod postgres;
mod replica;
mod revocations;
mod rewrap;
mod schema;
pub mod snapshot;
mod stats;
mod writer;

pub use acl::AccountKind;
pub use batch::Batch;
pub use cluster::{DatabaseHealth, LeaseHeld, NODE_LEASE};
pub use migrate::{migrate_schema, schema_status, SchemaStatus};
pub use replica::{ChangeEntry, CommitHook, ReplicaAccount, ReplicaObject, Stamp};
pub use revocations::{CertRevocation, RevokedCerts, REVOCATION_ENTITY};
pub use rewrap::WrappedRow;
pub use stats::ObjectCount;
pub use writer::WriteTx;

use crate::crypto::Wrapped;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use writer::TxConn;

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (other than the two below).
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// The database's filesystem is full (SQLITE_FULL): the write, or the commit of its
    /// group, was rolled back. Writes resume by themselves once space is freed.
    #[error("key store: no space left on the database filesystem; nothing was written")]
    NoSpace,
    /// SQLite reported an I/O error (SQLITE_IOERR and its extended codes: a failed read, write
    /// or fsync of the database, its WAL or its shared-memory index). A write in progress was
    /// rolled back; the next write retries.
    #[error("key store: I/O error on the database filesystem; nothing was written")]
    Io,
    /// The database schema is newer than this binary understands.
    #[error("database schema version {found} is newer than this akm ({supported}); upgrade akm")]
    SchemaTooNew {
        /// The version in the file.
        found: i64,
        /// The newest this binary knows.
        supported: i64,
    },
    /// The writer thread has stopped (shutdown in progress).
    #[error("the store writer has stopped")]
    WriterGone,
    /// The group commit holding this write failed (the detail is logged); nothing was written.
    #[error("the write could not be committed")]
    CommitFailed,
    /// A Name is already used by another live object of the same owner.
    #[error("name already in use")]
    NameTaken,
    /// A snapshot being restored fails SQLite's integrity check (its first complaint).
    #[error("the restored database fails the integrity check: {0}")]
    SnapshotCorrupt(String),
    /// PostgreSQL reported an error (the store's `[store] backend = "postgres"`).
    #[error("database error: {0}")]
    Postgres(#[source] ::postgres::Error),
    /// The PostgreSQL database cannot be reached (the detail); nothing was written.
    #[error("key store: the database is unreachable ({0}); nothing was written")]
    Unreachable(String),
    /// The PostgreSQL store's settings are unusable (the key and the fix).
    #[error("PostgreSQL store: {0}")]
    Config(String),
    /// An operation the PostgreSQL store does not support yet (named); nothing was done.
    #[error("{0} is not supported on the PostgreSQL store yet")]
    Unsupported(&'static str),
    /// The database's keys are wrapped under another KEK than this node's: every node on one
    /// database needs the same KEK.
    #[error(
        "the database's keys are wrapped under KEK {database}, and this node's KEK is {node}: \
         every akm node on one database needs the same KEK (copy kek.key, or kek.sealed and \
         the custodians' shares, from a node already serving it; do not run `akm init` on a \
         second node)"
    )]
    KekMismatch {
        /// The KEK id the database records.
        database: String,
        /// This node's KEK id.
        node: String,
    },
    /// Another live process serves as this node (`store.node_id`) on the shared database.
    #[error(
        "store.node_id {node:?} is in use by another live akm process ({holder}) on this \
         database: give each node its own store.node_id, or stop the other process (its hold \
         lapses {expires_in} s after it stops)"
    )]
    NodeIdInUse {
        /// The node id.
        node: String,
        /// The process holding it (node, host, pid).
        holder: String,
        /// Seconds until its hold lapses unless renewed.
        expires_in: u64,
    },
    /// A restore into a PostgreSQL database that already holds objects (how many), without
    /// leave to replace them; nothing was written.
    #[error("the PostgreSQL database already holds {0} objects")]
    NotEmpty(i64),
    /// A restore into a PostgreSQL database that live akm nodes serve from (their node ids
    /// and processes); nothing was written.
    #[error(
        "akm nodes are serving from this PostgreSQL database ({0}): stop every `akm serve` on \
         it first (a node killed without stopping lets go of its id within 15 s), then restore"
    )]
    NodesServing(String),
    /// A stored value is out of its range (the column and value).
    #[error("a stored value is out of range: {0}")]
    Corrupt(String),
    /// A stored access-control record does not parse (the named record).
    #[error("stored access-control record {0} is unreadable")]
    CorruptPolicy(String),
    /// Mirroring is in RPO-zero mode with `on_timeout = "refuse"` and no peer has confirmed
    /// recent writes: this write was refused before anything was written.
    #[error("writes are refused: no mirror peer confirms them (RPO-zero mode)")]
    WritesRefused,
    /// Mirroring: a reachable peer runs different security settings (`akm mirror status`
    /// names the sections); writes are refused until they agree.
    #[error("writes are refused: the security settings of mirror peer(s) {0} differ from this node's (see `akm mirror status`)")]
    SettingsMismatch(String),
    /// A shared PostgreSQL database: another live node runs different security settings (the
    /// nodes and sections); client writes are refused until they agree.
    #[error(
        "writes are refused: the security settings of other akm node(s) on this database \
         differ from this node's: {0}; give every node the same [access], [dual_control] and \
         crypto.pci_mode, then reload or restart"
    )]
    NodeSettingsMismatch(String),
    /// A batch transaction was begun on a thread that already has one, or ended on a thread
    /// that has none (a programming error; nothing was written).
    #[error("a batch transaction is already in progress on this thread")]
    BatchInProgress,
    /// Mirroring is in RPO-zero mode and no peer confirmed this write within the timeout.
    /// It is committed on this node and will reach the peers when they return.
    #[error("the write was committed locally but no mirror peer confirmed it in time")]
    NotReplicated,
}

/// Disk-full and I/O errors get their own variants, so the client is told what happened rather
/// than "internal error"; the SQLite detail is logged here, where it is dropped.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match fault_of(&e) {
            Some(fault) => {
                tracing::error!(error = %e, "{fault}");
                fault
            }
            None => StoreError::Sqlite(e),
        }
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        if postgres::connection_lost(&e) {
            return StoreError::Unreachable(e.to_string());
        }
        StoreError::Postgres(e)
    }
}

/// The typed store error for a disk-full or I/O error from SQLite, `None` for any other.
pub(crate) fn fault_of(e: &rusqlite::Error) -> Option<StoreError> {
    match e.sqlite_error_code()? {
        rusqlite::ErrorCode::DiskFull => Some(StoreError::NoSpace),
        rusqlite::ErrorCode::SystemIoFailure => Some(StoreError::Io),
        _ => None,
    }
}

/// The columns of an object row (everything but key material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRow {
    /// Unique Identifier.
    pub uid: String,
    /// Object Type.
    pub object_type: u32,
    /// State.
    pub state: u32,
    /// The owning identity's CN.
    pub owner: String,
    /// The owner group (a certificate OU), if any.
    pub owner_group: Option<String>,
    /// Who may use the object: `any`, `group`, `user` or `user-and-group`.
    pub access_mode: String,
    /// Cryptographic Algorithm, if any.
    pub algorithm: Option<u32>,
    /// Cryptographic Length, if any.
    pub length: Option<i32>,
    /// Initial Date.
    pub initial_date: i64,
    /// Activation Date, if set.
    pub activation_date: Option<i64>,
    /// Deactivation Date, if set.
    pub deactivation_date: Option<i64>,
    /// Last Change Date.
    pub last_change: i64,
    /// Version of the key material (bound into the wrapping).
    pub key_version: i64,
    /// Names (for Locate, and unique among the owner's live objects).
    pub names: Vec<String>,
    /// Object Groups.
    pub groups: Vec<String>,
    /// The full attribute set and object metadata, TTLV-encoded by the ops layer.
    pub attributes: Vec<u8>,
    /// The Unique Identifier its Replaced Object link names (the version this object
    /// replaces), if any: the indexed `replaces` column, derived by whoever builds the row
    /// from the attributes it encodes (`replaced_object_of` reads it from a record as stored).
    pub replaces: Option<String>,
}

/// The Unique Identifier in a stored attribute record's Replaced Object link (the version
/// this object replaces), if any. The record is the ops layer's encoding: an Attributes
/// structure whose first Attributes child holds the 2.x attributes.
pub(crate) fn replaced_object_of(attributes: &[u8]) -> Option<String> {
    use crate::kmip::enums::link_type;
    use crate::ttlv::Tag;
    let limits = crate::ttlv::Limits {
        max_message_bytes: attributes.len().max(1),
        ..Default::default()
    };
    let record = crate::ttlv::decode(attributes, &limits).ok()?;
    record
        .child(Tag::ATTRIBUTES)?
        .children()
        .iter()
        .filter(|a| a.tag == Tag::LINK)
        .find(|link| {
            link.child(Tag::LINK_TYPE)
                .and_then(crate::ttlv::Ttlv::as_enum)
                == Some(link_type::REPLACED_OBJECT_LINK)
        })?
        .child(Tag::LINKED_OBJECT_IDENTIFIER)?
        .as_text()
        .map(str::to_owned)
}

/// Inserts an object row, binding [`ObjectRow::columns`] as ?1..?15.
pub(crate) const INSERT_OBJECT: &str = "INSERT INTO objects (uid, object_type, state, owner, \
     algorithm, length, initial_date, activation_date, deactivation_date, last_change, \
     key_version, attributes, owner_group, access_mode, replaces) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

impl ObjectRow {
    /// The column values in the order [`INSERT_OBJECT`] (and the replica's whole-row UPDATE)
    /// bind them.
    pub(crate) fn columns(&self) -> [&dyn rusqlite::ToSql; 15] {
        [
            &self.uid,
            &self.object_type,
            &self.state,
            &self.owner,
            &self.algorithm,
            &self.length,
            &self.initial_date,
            &self.activation_date,
            &self.deactivation_date,
            &self.last_change,
            &self.key_version,
            &self.attributes,
            &self.owner_group,
            &self.access_mode,
            &self.replaces,
        ]
    }
}

/// An object row (names and groups left empty) with its wrapped material, if it has any.
pub type RowAndMaterial = (ObjectRow, Option<Wrapped>);

/// A Locate query over the indexed columns. Every set field must match.
#[derive(Clone, Debug, Default)]
pub struct LocateQuery {
    /// Only objects of this owner.
    pub owner: Option<String>,
    /// Object Type.
    pub object_type: Option<u32>,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Cryptographic Length.
    pub length: Option<i32>,
    /// State.
    pub state: Option<u32>,
    /// State is one of these (when not empty).
    pub states_any: Vec<u32>,
    /// Every name must be one of the object's names.
    pub names: Vec<String>,
    /// Every group must be one of the object's groups.
    pub groups: Vec<String>,
    /// Include destroyed objects.
    pub include_destroyed: bool,
    /// Include live objects.
    pub include_live: bool,
    /// Only objects that may be visible to this user (CN) with these groups (OUs): mode
    /// `any`, or owned by the user, or of one of the groups. A coarse pre-filter so a Locate
    /// does not read every row; the access decision itself is made by the caller.
    pub visible_to: Option<(String, Vec<String>)>,
    /// List this user's (CN's) objects before everyone else's. Names are unique per owner
    /// only, so a Locate by Name may match another owner's shared key too; a client that
    /// takes the first match then gets its own.
    pub owner_first: Option<String>,
    /// Keyset paging: only objects stored after this one (its [`Located::seq`]), so a page
    /// deep into millions of objects costs what the first one does (no OFFSET scan).
    pub after_seq: Option<i64>,
    /// At most this many matches (in storage order).
    pub limit: Option<usize>,
    /// Initial Date at or after this time (seconds since the epoch).
    pub created_from: Option<i64>,
    /// Initial Date before this time.
    pub created_before: Option<i64>,
}

/// The store: one writer thread, a pool of reader connections.
pub struct Store {
    /// Tells this store from others in the process (a batch transaction names its store).
    id: u64,
    /// Where reads go.
    backend: Backend,
    writer: writer::Writer,
    /// Mirroring's hook around client writes (RPO-zero gating, waking the pushers).
    hook: std::sync::OnceLock<std::sync::Arc<dyn CommitHook>>,
    /// Committed changes still waiting for their audit record.
    ledger: std::sync::Arc<audit_ledger::AuditLedger>,
}

/// The database behind a [`Store`], for reads (writes go through the writer thread, which
/// holds its own connection).
enum Backend {
    /// The SQLite file and its reader connections.
    Sqlite {
        path: PathBuf,
        readers: Mutex<Vec<Connection>>,
    },
    /// A PostgreSQL database and its bounded reader pool.
    Postgres(postgres::Pg),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Sqlite { path, .. } => write!(f, "Store({})", path.display()),
            Backend::Postgres(pg) => write!(f, "Store({})", pg.label()),
        }
    }
}

/// The state value of destroyed objects (kept in sync with the KMIP enumeration).
const DESTROYED_STATES: [u32; 2] = [
    crate::kmip::enums::state::DESTROYED,
    crate::kmip::enums::state::DESTROYED_COMPROMISED,
];

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // Room for every statement of the hot paths plus the Locate shapes in use, so none is
    // parsed again after an eviction (rusqlite's default keeps 16).
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it, and starts the writer.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = open_connection(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        schema::migrate(&mut conn)?;
        restrict_permissions(path);
        let newest: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM change_log", [], |r| {
                r.get(0)
            })?;
        let ledger = std::sync::Arc::new(audit_ledger::AuditLedger::starting_at(newest));
        let writer = writer::Writer::start_sqlite(conn, path.to_owned(), ledger.clone())?;
        Ok(Store::assemble(
            Backend::Sqlite {
                path: path.to_owned(),
                readers: Mutex::new(Vec::new()),
            },
            writer,
            ledger,
        ))
    }

    /// Opens the store `config` names: the SQLite file under `store.data_dir`, or the
    /// PostgreSQL database of `store.url` (connected, migrated, and this node's audit mark
    /// made), and starts the writer.
    pub fn open_configured(config: &crate::config::StoreConfig) -> Result<Store, StoreError> {
        match config.backend {
            crate::config::StoreBackend::Sqlite => Store::open(&config.database()),
            crate::config::StoreBackend::Postgres => Store::open_postgres(config),
        }
    }

    /// Opens the PostgreSQL store of `config` (see [`Store::open_configured`]).
    pub fn open_postgres(config: &crate::config::StoreConfig) -> Result<Store, StoreError> {
        let (pg, conn, newest) = postgres::Pg::open(config)?;
        let ledger = std::sync::Arc::new(audit_ledger::AuditLedger::starting_at(newest));
        let writer = writer::Writer::start_postgres(conn, pg.label().to_owned(), ledger.clone())?;
        Ok(Store::assemble(Backend::Postgres(pg), writer, ledger))
    }

    fn assemble(
        backend: Backend,
        writer: writer::Writer,
        ledger: std::sync::Arc<audit_ledger::AuditLedger>,
    ) -> Store {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Store {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            backend,
            writer,
            hook: std::sync::OnceLock::new(),
            ledger,
        }
    }

    /// The PostgreSQL side, when that is the backend.
    fn postgres(&self) -> Option<&postgres::Pg> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Sqlite { .. } => None,
        }
    }

    /// Runs a PostgreSQL read on `pg`'s pool, or, on a thread with a [`Batch`] in progress,
    /// on the batch's connection (so the batch reads its own writes), as [`Store::read`].
    fn pg_read<T>(
        &self,
        pg: &postgres::Pg,
        f: impl FnMut(&mut postgres::PgClient) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if batch::active_for(self.id) {
            return batch::read_postgres(f);
        }
        pg.read(f)
    }

    /// Runs `f` in the writer thread inside a transaction shared with other concurrent
    /// writes; returns once the transaction is durably committed. On a thread with a
    /// [`Batch`] in progress, `f` runs in the batch's transaction instead and becomes durable
    /// only when the batch commits.
    ///
    /// With a [`CommitHook`] installed (mirroring), the hook may refuse the write before it
    /// runs and, once committed, may hold the caller until a peer has the change.
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        if batch::active_for(self.id) {
            if let Some(hook) = self.hook.get() {
                hook.before_write()?;
            }
            return batch::write(f);
        }
        let hook = self.hook.get();
        if let Some(hook) = hook {
            hook.before_write()?;
        }
        let (value, logged) = self.submit_logged(f)?;
        if let (Some(hook), Some((_, last))) = (hook, logged) {
            hook.after_commit(last)?;
        }
        Ok(value)
    }

    /// Runs `f` on the writer thread and accounts for the change-log entries it committed
    /// (see [`audit_ledger`]).
    fn submit_logged<T, E, F>(&self, f: F) -> Result<(T, audit_ledger::Logged), E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (value, logged) = self.writer.submit(move |tx| {
            let value = f(tx)?;
            Ok::<_, E>((value, tx.logged()))
        })?;
        self.ledger.committed_here(self.id, logged);
        Ok((value, logged))
    }

    /// Runs `f` with a reader connection from the pool, or, on a thread with a [`Batch`] in
    /// progress, with the batch's connection (so the batch reads its own writes). SQLite
    /// only: on PostgreSQL it answers [`StoreError::Unsupported`] (the store's own reads go
    /// through each backend's queries).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if batch::active_for(self.id) {
            return batch::read(f);
        }
        let (path, readers) = match &self.backend {
            Backend::Sqlite { path, readers } => (path, readers),
            Backend::Postgres(_) => return Err(StoreError::Unsupported("this SQLite read")),
        };
        let conn = readers.lock().ok().and_then(|mut pool| pool.pop());
        let conn = match conn {
            Some(c) => c,
            None => open_connection(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = readers.lock() {
            if pool.len() < 16 {
                pool.push(conn);
            }
        }
        result
    }

    /// Loads an object row by Unique Identifier.
    pub fn get(&self, uid: &str) -> Result<Option<ObjectRow>, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, |c| postgres::queries::load_row(c, uid));
        }
        self.read(|c| load_row(c, uid))
    }

    /// Loads an object row for an operation on the object: its Names and Object Groups are
    /// left empty (the attribute record holds them too, and an operation reads them from
    /// there), which saves a statement.
    pub fn get_object(&self, uid: &str) -> Result<Option<ObjectRow>, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, |c| postgres::queries::load_object(c, uid));
        }
        self.read(|c| load_object(c, uid))
    }

    /// Like [`Store::get_object`], with the object's wrapped material (if it still has any),
    /// in one statement: what a Get needs.
    pub fn get_with_material(&self, uid: &str) -> Result<Option<RowAndMaterial>, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, |c| postgres::queries::load_object_with_material(c, uid));
        }
        self.read(|c| load_object_with_material(c, uid))
    }

    /// An object's first Name (the one its audit records show), without loading the row.
    pub fn first_name(&self, uid: &str) -> Result<Option<String>, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, |c| postgres::queries::first_name(c, uid));
        }
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT name FROM names WHERE uid = ?1 ORDER BY rowid LIMIT 1")?
                    .query_row([uid], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// Loads several object rows with one reader connection, skipping any that are gone.
    pub fn get_many(&self, uids: &[String]) -> Result<Vec<ObjectRow>, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, |c| {
                let mut rows = Vec::with_capacity(uids.len());
                for uid in uids {
                    rows.extend(postgres::queries::load_row(c, uid)?);
                }
                Ok(rows)
            });
        }
        self.read(|c| {
            let mut rows = Vec::with_capacity(uids.len());
            for uid in uids {
                rows.extend(load_row(c, uid)?);
            }
            Ok(rows)
        })
    }

    /// Loads the wrapped key material of an object, if it still has any.
    pub fn get_material(&self, uid: &str) -> Result<Option<Wrapped>, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, |c| postgres::queries::load_material(c, uid));
        }
        self.read(|c| load_material(c, uid))
    }

    /// Unique Identifiers matching the indexed part of a Locate, oldest first.
    pub fn locate(&self, q: &LocateQuery) -> Result<Vec<String>, StoreError> {
        Ok(self
            .locate_with_policy(q)?
            .into_iter()
            .map(|l| l.uid)
            .collect())
    }

    /// Like [`Store::locate`], with each object's access policy columns, so the caller can
    /// filter by policy without loading whole rows.
    pub fn locate_with_policy(&self, q: &LocateQuery) -> Result<Vec<Located>, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, |c| postgres::queries::locate(c, q));
        }
        self.read(|c| locate(c, q))
    }

    /// The newest change-log sequence number (0 if empty).
    pub fn last_change_seq(&self) -> Result<i64, StoreError> {
        if let Some(pg) = self.postgres() {
            return self.pg_read(pg, postgres::queries::last_change_seq);
        }
        self.read(|c| {
            Ok(
                c.query_row("SELECT COALESCE(MAX(seq), 0) FROM change_log", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    /// The database file (SQLite); on PostgreSQL, which has no file, an empty path.
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite { path, .. } => path,
            Backend::Postgres(_) => Path::new(""),
        }
    }

    /// A round trip through the writer thread that writes nothing: proof for the service
    /// watchdog that the writer answers. It bypasses the commit hook, which refuses writes on
    /// a mirror standby that is nonetheless alive.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.writer.submit(|_| Ok::<_, StoreError>(()))
    }

    /// Stops the writer after it has committed everything already submitted.
    pub fn close(&self) {
        self.writer.stop();
        self.release_leases();
    }
}

/// The database holds wrapped keys and metadata: keep it (and its WAL) private.
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %p.display(), error = %e, "could not restrict database file permissions");
            }
        }
    }
}

/// The columns [`row_from`] reads, in its order, of table alias `o` (a macro so each query is
/// one constant).
macro_rules! row_columns {
    () => {
        "o.uid, o.object_type, o.state, o.owner, o.algorithm, o.length, o.initial_date, \
         o.activation_date, o.deactivation_date, o.last_change, o.key_version, o.attributes, \
         o.owner_group, o.access_mode, o.replaces"
    };
}

/// An object row from the first 15 columns of `r` (as [`row_columns`] lists them), without
/// its names and groups.
fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        uid: r.get(0)?,
        object_type: r.get(1)?,
        state: r.get(2)?,
        owner: r.get(3)?,
        algorithm: r.get(4)?,
        length: r.get(5)?,
        initial_date: r.get(6)?,
        activation_date: r.get(7)?,
        deactivation_date: r.get(8)?,
        last_change: r.get(9)?,
        key_version: r.get(10)?,
        names: Vec::new(),
        groups: Vec::new(),
        attributes: r.get(11)?,
        owner_group: r.get(12)?,
        access_mode: r.get(13)?,
        replaces: r.get(14)?,
    })
}

/// An object row without its names and groups (see [`Store::get_object`]).
fn load_object(c: &Connection, uid: &str) -> Result<Option<ObjectRow>, StoreError> {
    // Cached statements: `Connection::query_row` would parse the SQL again on every call,
    // which profiling showed was a tenth of a Get's server CPU.
    Ok(c.prepare_cached(concat!(
        "SELECT ",
        row_columns!(),
        " FROM objects o WHERE o.uid = ?1"
    ))?
    .query_row([uid], row_from)
    .optional()?)
}

fn load_row(c: &Connection, uid: &str) -> Result<Option<ObjectRow>, StoreError> {
    let Some(mut row) = load_object(c, uid)? else {
        return Ok(None);
    };
    (row.names, row.groups) = names_and_groups(c, uid)?;
    Ok(Some(row))
}

/// An object row without its names and groups, and its wrapped material, in one statement
/// (see [`Store::get_with_material`]).
fn load_object_with_material(
    c: &Connection,
    uid: &str,
) -> Result<Option<RowAndMaterial>, StoreError> {
    Ok(c.prepare_cached(concat!(
        "SELECT ",
        row_columns!(),
        ", m.kek_id, m.nonce, m.ciphertext \
             FROM objects o LEFT JOIN material m ON m.uid = o.uid WHERE o.uid = ?1"
    ))?
    .query_row([uid], |r| {
        let material = match r.get::<_, Option<String>>(15)? {
            Some(kek_id) => Some(Wrapped {
                kek_id,
                nonce: r.get(16)?,
                ciphertext: r.get(17)?,
            }),
            None => None,
        };
        Ok((row_from(r)?, material))
    })
    .optional()?)
}

/// An object's Names and Object Groups from their index tables, each in insertion order.
fn names_and_groups(c: &Connection, uid: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
    // Names and groups in one statement rather than two: every statement run outside a
    // transaction takes and drops SQLite's read lock, which profiling showed costs as much
    // as the query itself.
    let mut stmt = c.prepare_cached(
        "SELECT 0, rowid, name FROM names WHERE uid = ?1 \
         UNION ALL SELECT 1, rowid, grp FROM groups WHERE uid = ?1 ORDER BY 1, 2",
    )?;
    let mut rows = stmt.query([uid])?;
    let (mut names, mut groups) = (Vec::new(), Vec::new());
    while let Some(r) = rows.next()? {
        let value: String = r.get(2)?;
        if r.get::<_, i64>(0)? == 0 {
            names.push(value);
        } else {
            groups.push(value);
        }
    }
    Ok((names, groups))
}

fn load_material(c: &Connection, uid: &str) -> Result<Option<Wrapped>, StoreError> {
    Ok(
        c.prepare_cached("SELECT kek_id, nonce, ciphertext FROM material WHERE uid = ?1")?
            .query_row([uid], |r| {
                Ok(Wrapped {
                    kek_id: r.get(0)?,
                    nonce: r.get(1)?,
                    ciphertext: r.get(2)?,
                })
            })
            .optional()?,
    )
}

/// A Locate match with its access policy columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// Unique Identifier.
    pub uid: String,
    /// Owner user.
    pub owner: String,
    /// Owner group.
    pub owner_group: Option<String>,
    /// Access mode (see [`ObjectRow::access_mode`]).
    pub access_mode: String,
    /// Its place in storage order (the key of [`LocateQuery::after_seq`]).
    pub seq: i64,
}

/// A value a Locate binds: text, a 64-bit integer, or a 32-bit one (`length`, which
/// PostgreSQL types `INTEGER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LocateArg {
    /// A TEXT value.
    Text(String),
    /// A BIGINT value.
    Big(i64),
    /// An INTEGER value.
    Int(i32),
}

/// The SQL of a Locate over the indexed columns, the same for both backends but for how a
/// parameter is written (`numbered(n)`: `?n` for SQLite, `$n` for PostgreSQL), with the values
/// to bind; `None` when the query can match nothing (neither live nor destroyed objects).
pub(crate) fn locate_sql(
    q: &LocateQuery,
    numbered: impl Fn(usize) -> String,
) -> Option<(String, Vec<LocateArg>)> {
    use LocateArg::{Big, Int, Text};
    let mut sql = String::from(
        "SELECT o.uid, o.owner, o.owner_group, o.access_mode, o.seq FROM objects o WHERE 1=1",
    );
    let mut args: Vec<LocateArg> = Vec::new();
    let mut bind = |sql: &mut String, clause: &str, v: LocateArg| {
        args.push(v);
        sql.push_str(&clause.replace('?', &numbered(args.len())));
    };
    if let Some(owner) = &q.owner {
        bind(&mut sql, " AND o.owner = ?", Text(owner.clone()));
    }
    if let Some((user, groups)) = &q.visible_to {
        bind(
            &mut sql,
            " AND (o.access_mode = 'any' OR o.owner = ?",
            Text(user.clone()),
        );
        for g in groups {
            bind(&mut sql, " OR o.owner_group = ?", Text(g.clone()));
        }
        sql.push(')');
    }
    if let Some(after) = q.after_seq {
        bind(&mut sql, " AND o.seq > ?", Big(after));
    }
    if let Some(from) = q.created_from {
        bind(&mut sql, " AND o.initial_date >= ?", Big(from));
    }
    if let Some(before) = q.created_before {
        bind(&mut sql, " AND o.initial_date < ?", Big(before));
    }
    if let Some(v) = q.object_type {
        bind(&mut sql, " AND o.object_type = ?", Big(i64::from(v)));
    }
    if let Some(v) = q.algorithm {
        bind(&mut sql, " AND o.algorithm = ?", Big(i64::from(v)));
    }
    if let Some(v) = q.length {
        bind(&mut sql, " AND o.length = ?", Int(v));
    }
    if let Some(v) = q.state {
        bind(&mut sql, " AND o.state = ?", Big(i64::from(v)));
    }
    if !q.states_any.is_empty() {
        for (i, v) in q.states_any.iter().enumerate() {
            let clause = if i == 0 { " AND o.state IN (?" } else { ", ?" };
            bind(&mut sql, clause, Big(i64::from(*v)));
        }
        sql.push(')');
    }
    for name in &q.names {
        bind(
            &mut sql,
            // An IN list, not a correlated EXISTS: SQLite then starts from the (name, uid)
            // key and looks the few objects up by uid, instead of probing every object row
            // (Locate by name was O(keys stored)).
            " AND o.uid IN (SELECT n.uid FROM names n WHERE n.name = ?)",
            Text(name.clone()),
        );
    }
    for group in &q.groups {
        bind(
            &mut sql,
            " AND o.uid IN (SELECT g.uid FROM groups g WHERE g.grp = ?)",
            Text(group.clone()),
        );
    }
    let destroyed = format!(
        "o.state IN ({}, {})",
        DESTROYED_STATES[0], DESTROYED_STATES[1]
    );
    match (q.include_live, q.include_destroyed) {
        (true, true) => {}
        (true, false) => sql.push_str(&format!(" AND NOT {destroyed}")),
        (false, true) => sql.push_str(&format!(" AND {destroyed}")),
        (false, false) => return None,
    }
    match &q.owner_first {
        Some(owner) => bind(
            &mut sql,
            " ORDER BY o.owner = ? DESC, o.seq",
            Text(owner.clone()),
        ),
        None => sql.push_str(" ORDER BY o.seq"),
    }
    if let Some(limit) = q.limit {
        bind(
            &mut sql,
            " LIMIT ?",
            Big(i64::try_from(limit).unwrap_or(i64::MAX)),
        );
    }
    Some((sql, args))
}

fn locate(c: &Connection, q: &LocateQuery) -> Result<Vec<Located>, StoreError> {
    let Some((sql, args)) = locate_sql(q, |n| format!("?{n}")) else {
        return Ok(Vec::new());
    };
    let args = args.into_iter().map(|a| match a {
        LocateArg::Text(t) => rusqlite::types::Value::from(t),
        LocateArg::Big(v) => v.into(),
        LocateArg::Int(v) => i64::from(v).into(),
    });
    // The SQL depends only on which filters are set, so a few shapes repeat: cache them.
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok(Located {
            uid: r.get(0)?,
            owner: r.get(1)?,
            owner_group: r.get(2)?,
            access_mode: r.get(3)?,
            seq: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Inserts an object's wrapped material.
pub(crate) const INSERT_MATERIAL: &str =
    "INSERT INTO material (uid, kek_id, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)";

/// Replaces the columns of an existing object row that an update may change (not its type,
/// owner, access policy or material), binding ?1 uid, ?2.. as [`WriteTx::write_update`] does.
const UPDATE_OBJECT: &str = "UPDATE objects SET state = ?2, algorithm = ?3, length = ?4, \
     activation_date = ?5, deactivation_date = ?6, last_change = ?7, attributes = ?8, \
     replaces = ?9 WHERE uid = ?1";

impl WriteTx<'_> {
    /// Inserts a new object with its wrapped material, names and groups, and logs the change.
    pub fn insert(&self, row: &ObjectRow, material: Option<&Wrapped>) -> Result<(), StoreError> {
        self.check_names_free(&row.uid, &row.owner, &row.names)?;
        match self.tx_conn() {
            // Cached statements throughout the write path: `Connection::execute` parses its
            // SQL again on every call, which cost a Create more than running the statements.
            TxConn::Sqlite(c) => {
                c.prepare_cached(INSERT_OBJECT)?.execute(row.columns())?;
            }
            TxConn::Postgres(pg) => postgres::queries::insert_object(&mut pg.client(), row)?,
        }
        if let Some(w) = material {
            self.insert_material(&row.uid, w)?;
        }
        self.insert_names_and_groups(row)?;
        self.log_change(&row.uid, "insert")
    }

    /// Inserts `uid`'s wrapped material.
    pub(super) fn insert_material(&self, uid: &str, w: &Wrapped) -> Result<(), StoreError> {
        match self.tx_conn() {
            TxConn::Sqlite(c) => {
                c.prepare_cached(INSERT_MATERIAL)?.execute(params![
                    uid,
                    w.kek_id,
                    w.nonce,
                    w.ciphertext
                ])?;
                Ok(())
            }
            TxConn::Postgres(pg) => postgres::queries::insert_material(&mut pg.client(), uid, w),
        }
    }

    /// Replaces an object's metadata (not its material) and logs the change.
    pub fn update(&self, row: &ObjectRow) -> Result<(), StoreError> {
        self.check_names_free(&row.uid, &row.owner, &row.names)?;
        self.write_update(row)
    }

    /// Replaces an object's metadata (not its material, not its access policy) and its index
    /// entries, and logs the change; the caller has checked its names.
    pub(super) fn write_update(&self, row: &ObjectRow) -> Result<(), StoreError> {
        match self.tx_conn() {
            TxConn::Sqlite(c) => {
                c.prepare_cached(UPDATE_OBJECT)?.execute(params![
                    row.uid,
                    row.state,
                    row.algorithm,
                    row.length,
                    row.activation_date,
                    row.deactivation_date,
                    row.last_change,
                    row.attributes,
                    row.replaces,
                ])?;
            }
            TxConn::Postgres(pg) => postgres::queries::update_object(&mut pg.client(), row)?,
        }
        self.replace_names_and_groups(row)?;
        self.log_change(&row.uid, "update")
    }

    /// Deletes an object's key material (Destroy keeps the metadata).
    pub fn delete_material(&self, uid: &str) -> Result<(), StoreError> {
        match self.tx_conn() {
            TxConn::Sqlite(c) => {
                c.prepare_cached("DELETE FROM material WHERE uid = ?1")?
                    .execute([uid])?;
                Ok(())
            }
            TxConn::Postgres(pg) => postgres::queries::delete_material(&mut pg.client(), uid),
        }
    }

    /// Loads a row inside the write transaction (read-modify-write without races).
    pub fn get(&self, uid: &str) -> Result<Option<ObjectRow>, StoreError> {
        match self.tx_conn() {
            TxConn::Sqlite(c) => load_row(c, uid),
            TxConn::Postgres(pg) => postgres::queries::load_row(&mut pg.client(), uid),
        }
    }

    /// Names are unique per owner (KMIP's key management domain is the owning user): no
    /// other live object of `owner` may hold one of `names`. Other owners' objects are not
    /// looked at, so a name in use by someone else is neither refused nor revealed (with
    /// `hide_existence` a refusal would tell the caller the other key exists), and nobody
    /// can take a name away from another user by using it first. On PostgreSQL the check and
    /// the write that follows run under the write lock, so no other node takes the name in
    /// between.
    pub(super) fn check_names_free(
        &self,
        uid: &str,
        owner: &str,
        names: &[String],
    ) -> Result<(), StoreError> {
        let c = match self.tx_conn() {
            TxConn::Sqlite(c) => c,
            TxConn::Postgres(pg) => {
                let mut client = pg.client();
                for name in names {
                    if postgres::queries::name_taken(&mut client, uid, owner, name)? {
                        return Err(StoreError::NameTaken);
                    }
                }
                return Ok(());
            }
        };
        let mut stmt = c.prepare_cached(
            "SELECT 1 FROM names n JOIN objects o ON o.uid = n.uid \
             WHERE n.name = ?1 AND n.uid <> ?2 AND o.owner = ?3 AND o.state NOT IN (?4, ?5) \
             LIMIT 1",
        )?;
        for name in names {
            let taken = stmt
                .query_row(
                    params![name, uid, owner, DESTROYED_STATES[0], DESTROYED_STATES[1]],
                    |_| Ok(()),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::NameTaken);
            }
        }
        Ok(())
    }

    /// Makes the Name and Object Group index rows of an existing object those of `row`: most
    /// updates (a State, a date, Fresh) leave both as they are, and then nothing is written.
    pub(super) fn replace_names_and_groups(&self, row: &ObjectRow) -> Result<(), StoreError> {
        let c = match self.tx_conn() {
            TxConn::Sqlite(c) => c,
            TxConn::Postgres(pg) => {
                let mut client = pg.client();
                let (names, groups) = postgres::queries::names_and_groups(&mut client, &row.uid)?;
                if names == row.names && groups == row.groups {
                    return Ok(());
                }
                postgres::queries::delete_names_and_groups(&mut client, &row.uid)?;
                return postgres::queries::insert_names_and_groups(&mut client, row);
            }
        };
        let (names, groups) = names_and_groups(c, &row.uid)?;
        if names == row.names && groups == row.groups {
            return Ok(());
        }
        c.prepare_cached("DELETE FROM names WHERE uid = ?1")?
            .execute([&row.uid])?;
        c.prepare_cached("DELETE FROM groups WHERE uid = ?1")?
            .execute([&row.uid])?;
        self.insert_names_and_groups(row)
    }

    /// Inserts the Name and Object Group index rows of `row` (which has none yet).
    pub(super) fn insert_names_and_groups(&self, row: &ObjectRow) -> Result<(), StoreError> {
        let c = match self.tx_conn() {
            TxConn::Sqlite(c) => c,
            TxConn::Postgres(pg) => {
                return postgres::queries::insert_names_and_groups(&mut pg.client(), row)
            }
        };
        if !row.names.is_empty() {
            let mut stmt =
                c.prepare_cached("INSERT OR IGNORE INTO names (uid, name) VALUES (?1, ?2)")?;
            for name in &row.names {
                stmt.execute(params![row.uid, name])?;
            }
        }
        if !row.groups.is_empty() {
            let mut stmt =
                c.prepare_cached("INSERT OR IGNORE INTO groups (uid, grp) VALUES (?1, ?2)")?;
            for group in &row.groups {
                stmt.execute(params![row.uid, group])?;
            }
        }
        Ok(())
    }

    fn log_change(&self, uid: &str, kind: &str) -> Result<(), StoreError> {
        self.log_entity_change("object", uid, kind)
    }

    /// Appends to the change log: `entity` is `object`, `user` or `group`; `id` the object's
    /// Unique Identifier or the user's or group's name. Made on this node: mirroring pushes it.
    fn log_entity_change(&self, entity: &str, id: &str, kind: &str) -> Result<(), StoreError> {
        self.log_change_from(entity, id, kind, None)
    }
}

#[cfg(test)]
mod tests;
