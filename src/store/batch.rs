//! Batch transactions: every read and write one thread makes through a store, held in one
//! SQLite transaction on a connection of its own until the batch commits or rolls back.
//!
//! This is what makes KMIP's Batch Error Continuation Option Undo exact. Rolling the
//! transaction back removes the batch's own writes and nothing else: no other client's object
//! is snapshotted or written back, and no change-log entry of an undone write exists, so none
//! reaches a mirror peer. A batch takes its turn at SQLite's write lock from the writer thread
//! (after the writes queued before it, before those queued after), so batches and group
//! commits alternate fairly and never wait on SQLite's busy timeout; readers on other threads
//! go on seeing the last commit.
//!
//! The batch is bound to the thread that began it (the request's blocking-pool thread), so
//! the operations need no new parameters: [`Store::read`] and [`Store::write`] on that
//! thread, for that store, go to the batch's connection.
//!
//! On PostgreSQL a batch is the same: a connection of its own, its transaction holding the
//! write lock (so other nodes' writes wait for it as this node's writer does), a savepoint per
//! write, and the store's reads on that thread going to it.

use super::postgres::PgConn;
use super::writer::{Turn, TxConn, WriteTx};
use super::{open_connection, Backend, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::cell::{Cell, RefCell};

/// The batch in progress on this thread.
struct Active {
    /// Which store it belongs to ([`Store::id`]).
    store: u64,
    /// Its own connection, inside `BEGIN IMMEDIATE` (or holding PostgreSQL's write lock).
    conn: BatchConn,
    /// The oldest and newest change-log sequence numbers its writes logged (0: none).
    first: Cell<i64>,
    logged: Cell<i64>,
    /// Its turn at the write lock, given back (after the connection ends its transaction)
    /// when this is dropped.
    _turn: Turn,
}

/// A batch's connection, by backend.
enum BatchConn {
    Sqlite(Connection),
    /// Boxed: a client with its runtime is three times a SQLite connection's size.
    Postgres(Box<PgConn>),
}

impl BatchConn {
    /// Runs statements without results (SAVEPOINT, COMMIT, ROLLBACK: the same SQL on both).
    fn execute(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            BatchConn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            BatchConn::Postgres(c) => Ok(c.batch(sql)?),
        }
    }

    /// Whether its transaction is still there (see [`write`]).
    fn in_transaction(&self) -> bool {
        match self {
            BatchConn::Sqlite(c) => !c.is_autocommit(),
            BatchConn::Postgres(c) => !c.is_closed(),
        }
    }

    fn tx(&self) -> TxConn<'_> {
        match self {
            BatchConn::Sqlite(c) => TxConn::Sqlite(c),
            BatchConn::Postgres(c) => TxConn::Postgres(c),
        }
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// A batch transaction in progress on the current thread. Dropped without
/// [`Batch::commit`], it rolls everything back.
#[must_use = "a batch not committed is rolled back when dropped"]
pub struct Batch<'s> {
    store: &'s Store,
}

impl Store {
    /// Begins a batch transaction on this thread: until the returned [`Batch`] is committed
    /// or dropped, this thread's reads and writes through this store happen inside it. Fails
    /// if one is already in progress on this thread.
    pub fn begin_batch(&self) -> Result<Batch<'_>, StoreError> {
        if ACTIVE.with(|a| a.borrow().is_some()) {
            return Err(StoreError::BatchInProgress);
        }
        let turn = self.writer.turn()?;
        let conn = match &self.backend {
            Backend::Sqlite { path, .. } => {
                let conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                // As on the writer's connection: destroyed key material is overwritten on disk.
                conn.pragma_update(None, "secure_delete", "ON")?;
                conn.execute_batch("BEGIN IMMEDIATE")?;
                BatchConn::Sqlite(conn)
            }
            Backend::Postgres(pg) => {
                let conn = pg.connection()?;
                conn.begin_locked()?;
                BatchConn::Postgres(Box::new(conn))
            }
        };
        ACTIVE.with(|a| {
            *a.borrow_mut() = Some(Active {
                store: self.id,
                conn,
                first: Cell::new(0),
                logged: Cell::new(0),
                _turn: turn,
            })
        });
        Ok(Batch { store: self })
    }
}

impl Batch<'_> {
    /// Commits every write of the batch durably, then lets mirroring hold the caller as it
    /// does after any client write (RPO-zero). On error nothing of the batch was written,
    /// except [`StoreError::NotReplicated`], which means committed here but not yet on a peer.
    pub fn commit(self) -> Result<(), StoreError> {
        let Some(active) = take(self.store.id) else {
            return Err(StoreError::BatchInProgress);
        };
        if let Err(e) = active.conn.execute("COMMIT") {
            let _ = active.conn.execute("ROLLBACK");
            return Err(e);
        }
        let logged = (active.first.get() > 0).then(|| (active.first.get(), active.logged.get()));
        // Before the turn goes back, so the writer's next audit mark accounts for these.
        self.store.ledger.committed(logged);
        self.store.ledger.committed_here(self.store.id, logged);
        // The turn goes back before waiting for a peer (RPO-zero): the writes are committed.
        drop(active);
        match (self.store.hook.get(), logged) {
            (Some(hook), Some((_, last))) => hook.after_commit(last),
            _ => Ok(()),
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if let Some(active) = take(self.store.id) {
            if let Err(e) = active.conn.execute("ROLLBACK") {
                // The connection closes next, which rolls back what is left anyway.
                tracing::error!(error = %e, "store: rolling back a batch failed");
            }
        }
    }
}

/// Removes this thread's batch of store `id`.
fn take(id: u64) -> Option<Active> {
    ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        a.as_ref().filter(|b| b.store == id)?;
        a.take()
    })
}

/// Whether this thread has a batch of store `id` in progress.
pub(super) fn active_for(id: u64) -> bool {
    ACTIVE.with(|a| a.borrow().as_ref().is_some_and(|b| b.store == id))
}

/// Runs a read against the batch's connection (the caller checked [`active_for`]).
pub(super) fn read<T>(
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    ACTIVE.with(|a| match a.borrow().as_ref().map(|active| &active.conn) {
        Some(BatchConn::Sqlite(c)) => f(c),
        Some(BatchConn::Postgres(_)) => Err(StoreError::Unsupported("this SQLite read")),
        None => Err(StoreError::BatchInProgress),
    })
}

/// Runs a PostgreSQL read against the batch's connection (the caller checked [`active_for`]).
pub(super) fn read_postgres<T>(
    f: impl FnOnce(&mut super::postgres::PgClient) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    ACTIVE.with(|a| match a.borrow().as_ref().map(|active| &active.conn) {
        Some(BatchConn::Postgres(c)) => f(&mut c.client()),
        Some(BatchConn::Sqlite(_)) => Err(StoreError::Unsupported("a PostgreSQL read")),
        None => Err(StoreError::BatchInProgress),
    })
}

/// Runs a write inside the batch, in a savepoint of its own so that a write that fails leaves
/// nothing behind, as on the writer thread (the caller checked [`active_for`]).
pub(super) fn write<T, E>(f: impl FnOnce(&WriteTx<'_>) -> Result<T, E>) -> Result<T, E>
where
    E: From<StoreError>,
{
    // A shared borrow: the write may read through the store again (nested reads go to the
    // same connection, inside this savepoint).
    ACTIVE.with(|a| {
        let a = a.borrow();
        let Some(active) = a.as_ref() else {
            return Err(StoreError::BatchInProgress.into());
        };
        // SQLite rolled the whole batch back after a failed write (SQLITE_FULL or SQLITE_IOERR
        // while spilling its cache): a savepoint now would open a transaction of its own and
        // commit this write on release, outside the batch that is about to fail.
        if !active.conn.in_transaction() {
            return Err(StoreError::CommitFailed.into());
        }
        active.conn.execute("SAVEPOINT item")?;
        let tx = WriteTx::on(active.conn.tx());
        let result = f(&tx);
        let end = if result.is_ok() {
            "RELEASE item"
        } else {
            "ROLLBACK TO item; RELEASE item"
        };
        active.conn.execute(end)?;
        if let (true, Some((first, last))) = (result.is_ok(), tx.logged()) {
            if active.first.get() == 0 {
                active.first.set(first);
            }
            active.logged.set(last);
        }
        result
    })
}
