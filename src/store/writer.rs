//! The single writer thread, a [`GroupCommit`] worker with SQLite as its backend. Concurrent
//! writes queue there; the worker takes every write that is waiting, this module runs each in
//! its own savepoint inside one transaction and commits once (one fsync for the group), and
//! only then is each caller acknowledged with its own result. A write that fails (or panics)
//! rolls back its savepoint without disturbing the others in the group.

use super::audit_ledger::{AuditLedger, Logged};
use super::StoreError;
use crate::group_commit::{Backend, GroupCommit, Limits};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

/// The connection a write runs against, inside the group's transaction.
pub struct WriteTx<'a> {
    conn: &'a Connection,
    /// The change-log sequence number of this write's first entry (0: none yet).
    first: std::cell::Cell<i64>,
    /// The change-log sequence number of this write's latest entry (0: none yet).
    logged: std::cell::Cell<i64>,
}

impl<'a> WriteTx<'a> {
    /// A write against `conn`, which is inside a transaction and this write's savepoint.
    pub(super) fn new(conn: &'a Connection) -> WriteTx<'a> {
        WriteTx {
            conn,
            first: std::cell::Cell::new(0),
            logged: std::cell::Cell::new(0),
        }
    }

    /// The connection (inside the transaction and this write's savepoint).
    pub(super) fn conn(&self) -> &Connection {
        self.conn
    }

    /// Records that this write logged change `seq`.
    pub(super) fn set_logged(&self, seq: i64) {
        if self.first.get() == 0 {
            self.first.set(seq);
        }
        self.logged.set(seq);
    }

    /// The change-log entries this write logged, first to last.
    pub(super) fn logged(&self) -> Logged {
        (self.first.get() > 0).then(|| (self.first.get(), self.logged.get()))
    }
}

/// Why a group's commit failed: decides the error each of its writers gets.
#[derive(Clone, Copy, Debug)]
enum CommitFault {
    /// SQLITE_FULL.
    NoSpace,
    /// SQLITE_IOERR (a failed write or fsync of the database or its WAL).
    Io,
    /// Anything else (the detail is logged).
    Other,
}

impl CommitFault {
    fn of(e: &rusqlite::Error) -> CommitFault {
        match super::fault_of(e) {
            Some(StoreError::NoSpace) => CommitFault::NoSpace,
            Some(_) => CommitFault::Io,
            None => CommitFault::Other,
        }
    }

    fn error(self) -> StoreError {
        match self {
            CommitFault::NoSpace => StoreError::NoSpace,
            CommitFault::Io => StoreError::Io,
            CommitFault::Other => StoreError::CommitFailed,
        }
    }
}

/// A write: runs against the group's transaction and says whether it succeeded.
type WriteJob = Box<dyn FnOnce(&WriteTx<'_>) -> bool + Send>;

/// What the writer is asked to do, in arrival order.
enum Job {
    /// A write for the next group: runs against the transaction and says whether it succeeded
    /// (its typed result goes straight to its caller, see [`Writer::submit`]).
    Write(WriteJob),
    /// A batch transaction on a connection of its own takes its turn at SQLite's write lock:
    /// the writer finishes the writes queued before it, says so on `ready`, and waits until
    /// `done` is dropped. Batches and groups so take turns in arrival order, and neither
    /// waits on SQLite's busy timeout for the other.
    Turn {
        ready: SyncSender<()>,
        done: Receiver<()>,
    },
}

/// What one job left in the group's transaction.
enum Applied {
    /// The write succeeded and stays in the group: the change-log entries it logged.
    Kept(Logged),
    /// The write failed or panicked and was rolled back to its savepoint.
    RolledBack,
    /// The write was not run (the group's transaction or its savepoint could not begin).
    NotRun(CommitFault),
    /// A batch had its turn at the write lock.
    Lent,
}

/// The longest the writer lends the write lock to one batch; past it, the writer's next group
/// waits on SQLite's lock like any other connection. Batches are bounded far below this by
/// their cost budget and deadline (`ops::cost`).
const TURN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A batch's turn at the write lock; the writer resumes when this is dropped.
pub(super) struct Turn {
    _done: SyncSender<()>,
}

/// The store's handle to its writer thread.
pub(super) struct Writer {
    worker: GroupCommit<Sqlite>,
}

impl Writer {
    pub(super) fn start(
        conn: Connection,
        path: PathBuf,
        ledger: Arc<AuditLedger>,
    ) -> Result<Writer, StoreError> {
        // Destroyed key material is overwritten on disk, not just unlinked from the b-tree.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let backend = Sqlite {
            conn,
            path,
            ledger,
            tx: None,
            in_savepoint: false,
        };
        let worker = GroupCommit::start("akm-store-writer", Limits::default(), backend)
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Writer { worker })
    }

    pub(super) fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        // The write's own result comes back on this channel; the worker's reply says whether
        // its group committed.
        let (keep, result) = mpsc::sync_channel::<Result<T, E>>(1);
        let job = Job::Write(Box::new(move |tx| {
            let r = f(tx);
            let ok = r.is_ok();
            let _ = keep.send(r);
            ok
        }));
        let committed = self
            .worker
            .call(job)
            .map_err(|_| E::from(StoreError::WriterGone))?;
        match result.try_recv() {
            Ok(Ok(value)) => committed.map(|()| value).map_err(E::from),
            // A failed write answers with its own error whatever became of its group.
            Ok(Err(e)) => Err(e),
            // It panicked (rolled back and refused) or was never run.
            Err(_) => Err(E::from(committed.err().unwrap_or(StoreError::CommitFailed))),
        }
    }

    /// Waits for the writer to finish the writes queued before this call, then holds it off
    /// until the returned [`Turn`] is dropped.
    pub(super) fn turn(&self) -> Result<Turn, StoreError> {
        let (ready, is_ready) = mpsc::sync_channel(1);
        let (done, wait_done) = mpsc::sync_channel(1);
        // The turn's own reply (sent when it ends) is not needed: `ready` says it began.
        let _ended = self
            .worker
            .submit(Job::Turn {
                ready,
                done: wait_done,
            })
            .map_err(|_| StoreError::WriterGone)?;
        is_ready.recv().map_err(|_| StoreError::WriterGone)?;
        Ok(Turn { _done: done })
    }

    /// Closes the queue and waits for the thread to commit what it already has.
    pub(super) fn stop(&self) {
        self.worker.stop();
    }
}

/// The writer thread's side: the connection every group commits on.
struct Sqlite {
    conn: Connection,
    path: PathBuf,
    ledger: Arc<AuditLedger>,
    /// The group's transaction: `None` until its first write begins it (a group that is only a
    /// batch's turn must not take the write lock); `Err` if it could not begin.
    tx: Option<Result<(), CommitFault>>,
    /// A write's savepoint is open (so a panic in it is rolled back to there).
    in_savepoint: bool,
}

impl Backend for Sqlite {
    type Job = Job;
    type Applied = Applied;
    type Reply = Result<(), StoreError>;

    fn alone(job: &Job) -> bool {
        // A turn waits for the writes queued before it, not for later ones.
        matches!(job, Job::Turn { .. })
    }

    fn apply(&mut self, job: Job) -> Applied {
        match job {
            Job::Turn { ready, done } => {
                lend(&ready, &done);
                Applied::Lent
            }
            Job::Write(write) => match self.begin().and_then(|()| self.still_open()) {
                Ok(()) => self.run_in_savepoint(write),
                Err(fault) if self.tx.is_some_and(|t| t.is_ok()) => {
                    // Lost mid-group: the rest of the group is refused with it.
                    self.tx = Some(Err(fault));
                    Applied::NotRun(fault)
                }
                Err(fault) => Applied::NotRun(fault),
            },
        }
    }

    fn apply_panicked(&mut self) -> Applied {
        tracing::error!("store: a write panicked; it was rolled back and refused");
        if std::mem::take(&mut self.in_savepoint) {
            self.end_savepoint(false);
        }
        Applied::RolledBack
    }

    fn commit(&mut self, applied: Vec<Applied>) -> Vec<Result<(), StoreError>> {
        let outcome = match self.tx.take() {
            // Nothing began: the group was a batch's turn, or every write was refused.
            None => Ok(()),
            Some(Err(fault)) => Err(fault),
            Some(Ok(())) => self.commit_transaction(&applied),
        };
        applied
            .into_iter()
            .map(|a| match a {
                Applied::NotRun(fault) => Err(fault.error()),
                Applied::Kept(_) => outcome.map_err(CommitFault::error),
                // Nothing of it is in the commit: its caller answers with the write's own
                // error, or CommitFailed if it panicked.
                Applied::RolledBack | Applied::Lent => Ok(()),
            })
            .collect()
    }

    fn abandon(&mut self) {
        // Nothing of a group whose commit panicked was acknowledged: undo whatever is open.
        self.tx = None;
        self.in_savepoint = false;
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn refused(&self) -> Result<(), StoreError> {
        Err(StoreError::CommitFailed)
    }
}

impl Sqlite {
    /// Begins the group's transaction if this is its first write.
    fn begin(&mut self) -> Result<(), CommitFault> {
        *self.tx.get_or_insert_with(|| {
            self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| {
                // Nothing was written; every write of the group is refused.
                tracing::error!(error = %e, "store: could not begin a write transaction");
                CommitFault::of(&e)
            })
        })
    }

    /// Fails if the group's transaction is gone: SQLite rolls a
    /// whole transaction back on some errors (SQLITE_FULL or SQLITE_IOERR while it spills its
    /// page cache), not only the failing write's savepoint. The writes before it are then
    /// lost, and a later one must not run: its savepoint would open a transaction of its own
    /// and commit it on release, durable while its caller is told the group failed.
    fn still_open(&self) -> Result<(), CommitFault> {
        if !self.conn.is_autocommit() {
            return Ok(());
        }
        tracing::error!(
            path = %self.path.display(),
            "store: SQLite rolled back the write group's transaction after a failed write; \
             the group's writes are refused"
        );
        Err(CommitFault::Other)
    }

    /// Runs one write in its own savepoint: what it left, the change-log entries it logged if
    /// it succeeded.
    fn run_in_savepoint(&mut self, write: WriteJob) -> Applied {
        if let Err(e) = self.conn.execute_batch("SAVEPOINT write") {
            // Without its savepoint a failing write could not be undone alone: do not run it.
            tracing::error!(error = %e, "store: savepoint failed");
            return Applied::NotRun(CommitFault::Other);
        }
        self.in_savepoint = true;
        let tx = WriteTx::new(&self.conn);
        // A panic here unwinds to the group-commit worker, which calls `apply_panicked`: the
        // write is rolled back to its savepoint and fails alone.
        let ok = write(&tx);
        let logged = tx.logged();
        self.in_savepoint = false;
        self.end_savepoint(ok);
        if ok {
            Applied::Kept(logged)
        } else {
            Applied::RolledBack
        }
    }

    /// Releases the write's savepoint, keeping its changes or, if it failed, undoing them.
    fn end_savepoint(&self, keep: bool) {
        let end = if keep {
            "RELEASE write"
        } else {
            "ROLLBACK TO write; RELEASE write"
        };
        if let Err(e) = self.conn.execute_batch(end) {
            tracing::error!(error = %e, "store: savepoint release failed");
        }
    }

    /// Stores the audit mark and commits (one fsync for the group); on failure rolls back.
    fn commit_transaction(&mut self, applied: &[Applied]) -> Result<(), CommitFault> {
        // The group's last write may have lost the transaction: nothing is left to commit, and
        // the mark must not be written (it would commit on its own).
        self.still_open()?;
        // The mark covers only groups committed before this one, so it never passes a change
        // whose record is not yet written.
        if let Err(e) = self.ledger.store_mark(&self.conn) {
            tracing::error!(error = %e, "store: could not update the audit mark");
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.ledger
                    .committed(applied.iter().filter_map(|a| match a {
                        Applied::Kept(logged) => *logged,
                        _ => None,
                    }));
                Ok(())
            }
            Err(e) => {
                let fault = CommitFault::of(&e);
                log_commit_failure(&self.path, fault, &e);
                // SQLite treats a failed write or fsync as a failed commit: the transaction is
                // rolled back and nothing in it was acknowledged. The next group writes its WAL
                // frames over this one's and syncs again, so no earlier, acknowledged commit
                // depends on the sync that failed.
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(fault)
            }
        }
    }
}

/// Lets a batch hold the write lock: says the writer is idle, then waits for the batch to end.
fn lend(ready: &SyncSender<()>, done: &Receiver<()>) {
    if ready.send(()).is_err() {
        return;
    }
    if let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(TURN_LIMIT) {
        tracing::error!("store: a batch transaction held the write lock past its limit");
    }
}

/// Tells the operator where the database is and what to do; the clients get the short form.
fn log_commit_failure(path: &Path, fault: CommitFault, e: &rusqlite::Error) {
    let path = path.display();
    match fault {
        CommitFault::NoSpace => tracing::error!(
            %path, error = %e,
            "store: the database filesystem is full; the group's writes were rolled back and \
             refused. Free space on that filesystem: writes resume without a restart"
        ),
        CommitFault::Io => tracing::error!(
            %path, error = %e,
            "store: I/O error committing to the database (a failed write or fsync); the group's \
             writes were rolled back and refused. Check the device (kernel log); each new write \
             retries, and `PRAGMA integrity_check` on a copy shows whether the file is sound"
        ),
        CommitFault::Other => tracing::error!(
            %path, error = %e,
            "store: commit failed; the group's writes were rolled back and refused"
        ),
    }
}
