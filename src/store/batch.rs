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

use super::writer::{Turn, WriteTx};
use super::{open_connection, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::cell::{Cell, RefCell};

/// The batch in progress on this thread.
struct Active {
    /// Which store it belongs to ([`Store::id`]).
    store: u64,
    /// Its own connection, inside `BEGIN IMMEDIATE`.
    conn: Connection,
    /// The oldest and newest change-log sequence numbers its writes logged (0: none).
    first: Cell<i64>,
    logged: Cell<i64>,
    /// Its turn at the write lock, given back (after the connection ends its transaction)
    /// when this is dropped.
    _turn: Turn,
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
        let conn = open_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // As on the writer's connection: destroyed key material is overwritten on disk.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
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
        if let Err(e) = active.conn.execute_batch("COMMIT") {
            let _ = active.conn.execute_batch("ROLLBACK");
            return Err(e.into());
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
            if let Err(e) = active.conn.execute_batch("ROLLBACK") {
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
    ACTIVE.with(|a| match a.borrow().as_ref() {
        Some(active) => f(&active.conn),
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
        if active.conn.is_autocommit() {
            return Err(StoreError::CommitFailed.into());
        }
        active
            .conn
            .execute_batch("SAVEPOINT item")
            .map_err(StoreError::from)?;
        let tx = WriteTx::new(&active.conn);
        let result = f(&tx);
        let end = if result.is_ok() {
            "RELEASE item"
        } else {
            "ROLLBACK TO item; RELEASE item"
        };
        active.conn.execute_batch(end).map_err(StoreError::from)?;
        if let (true, Some((first, last))) = (result.is_ok(), tx.logged()) {
            if active.first.get() == 0 {
                active.first.set(first);
            }
            active.logged.set(last);
        }
        result
    })
}
