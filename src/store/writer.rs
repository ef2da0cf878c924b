//! The single writer thread. Concurrent writes queue here; the thread takes every write that
//! is waiting, runs each in its own savepoint inside one transaction, commits once (one fsync
//! for the group), and only then acknowledges each caller with its own result. A write that
//! fails rolls back its savepoint without disturbing the others in the group.

use super::audit_ledger::{AuditLedger, Logged};
use super::StoreError;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The most writes committed together.
const MAX_GROUP: usize = 256;

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

/// Called once the group's commit has finished, with its outcome.
type Completion = Box<dyn FnOnce(Result<(), CommitFault>) + Send>;
/// A queued write: runs against the transaction and says whether it succeeded.
type Job = Box<dyn FnOnce(&WriteTx<'_>) -> (bool, Completion) + Send>;

/// What the writer thread is asked to do, in arrival order.
enum Msg {
    /// A write for the next group.
    Write(Job),
    /// A batch transaction on a connection of its own takes its turn at SQLite's write lock:
    /// the writer finishes the writes queued before it, says so on `ready`, and waits until
    /// `done` is dropped. Batches and groups so take turns in arrival order, and neither
    /// waits on SQLite's busy timeout for the other.
    Turn {
        ready: SyncSender<()>,
        done: Receiver<()>,
    },
}

/// The longest the writer lends the write lock to one batch; past it, the writer's next group
/// waits on SQLite's lock like any other connection. Batches are bounded far below this by
/// their cost budget and deadline (`ops::cost`).
const TURN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A batch's turn at the write lock; the writer resumes when this is dropped.
pub(super) struct Turn {
    _done: SyncSender<()>,
}

pub(super) struct Writer {
    sender: Mutex<Option<SyncSender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(super) fn start(
        mut conn: Connection,
        path: PathBuf,
        ledger: Arc<AuditLedger>,
    ) -> Result<Writer, StoreError> {
        // Destroyed key material is overwritten on disk, not just unlinked from the b-tree.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let (sender, receiver) = mpsc::sync_channel::<Msg>(4096);
        let thread = std::thread::Builder::new()
            .name("akm-store-writer".into())
            .spawn(move || run(&mut conn, &path, &ledger, receiver))
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Writer {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub(super) fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel::<Result<T, E>>(1);
        let job: Job = Box::new(move |tx| {
            // Caught here so the caller gets an answer; the write is rolled back like any
            // failed one.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)))
                .unwrap_or_else(|_| {
                    tracing::error!("store: a write panicked; it was rolled back and refused");
                    Err(StoreError::CommitFailed.into())
                });
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                let outcome = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(fault)) => Err(fault.error().into()),
                    (Err(e), _) => Err(e),
                };
                let _ = reply.send(outcome);
            });
            (ok, done)
        });
        let gone = || E::from(StoreError::WriterGone);
        self.send(Msg::Write(job)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    /// Waits for the writer to finish the writes queued before this call, then holds it off
    /// until the returned [`Turn`] is dropped.
    pub(super) fn turn(&self) -> Result<Turn, StoreError> {
        let (ready, is_ready) = mpsc::sync_channel(1);
        let (done, wait_done) = mpsc::sync_channel(1);
        self.send(Msg::Turn {
            ready,
            done: wait_done,
        })?;
        is_ready.recv().map_err(|_| StoreError::WriterGone)?;
        Ok(Turn { _done: done })
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let sender = self.sender.lock().ok().and_then(|s| s.clone());
        sender
            .ok_or(StoreError::WriterGone)?
            .send(msg)
            .map_err(|_| StoreError::WriterGone)
    }

    /// Closes the queue and waits for the thread to commit what it already has.
    pub(super) fn stop(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &mut Connection, path: &Path, ledger: &AuditLedger, receiver: Receiver<Msg>) {
    let mut next: Option<Msg> = None;
    loop {
        let msg = match next.take() {
            Some(m) => m,
            None => match receiver.recv() {
                Ok(m) => m,
                Err(_) => return,
            },
        };
        let first = match msg {
            Msg::Write(job) => job,
            Msg::Turn { ready, done } => {
                lend(&ready, &done);
                continue;
            }
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(Msg::Write(job)) => group.push(job),
                // A turn waits for the writes queued before it, not for later ones.
                Ok(turn) => {
                    next = Some(turn);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_group(conn, path, ledger, group);
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

fn commit_group(conn: &mut Connection, path: &Path, ledger: &AuditLedger, group: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unblocks each caller with an error; nothing was written.
        tracing::error!(error = %e, "store: could not begin a write transaction");
        return;
    }
    let (completions, logged): (Vec<Completion>, Vec<Logged>) = group
        .into_iter()
        .map(|job| run_in_savepoint(conn, job))
        .unzip();
    // The mark covers only groups committed before this one, so it never passes a change
    // whose record is not yet written.
    if let Err(e) = ledger.store_mark(conn) {
        tracing::error!(error = %e, "store: could not update the audit mark");
    }
    let outcome = match conn.execute_batch("COMMIT") {
        Ok(()) => {
            ledger.committed(logged.into_iter().flatten());
            Ok(())
        }
        Err(e) => {
            let fault = CommitFault::of(&e);
            log_commit_failure(path, fault, &e);
            // SQLite treats a failed write or fsync as a failed commit: the transaction is
            // rolled back and nothing in it was acknowledged. The next group writes its WAL
            // frames over this one's and syncs again, so no earlier, acknowledged commit
            // depends on the sync that failed.
            let _ = conn.execute_batch("ROLLBACK");
            Err(fault)
        }
    };
    for done in completions {
        done(outcome);
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

/// Runs one write in its own savepoint: its completion, and the change-log entries it logged
/// if it succeeded.
fn run_in_savepoint(conn: &Connection, job: Job) -> (Completion, Logged) {
    if let Err(e) = conn.execute_batch("SAVEPOINT write") {
        // Without its savepoint a failing write could not be undone alone: do not run it.
        // Dropping the job tells its caller the write failed.
        tracing::error!(error = %e, "store: savepoint failed");
        return (Box::new(|_| {}), None);
    }
    let tx = WriteTx::new(conn);
    // A panic in one write fails that write alone (`submit` answers its caller); the writer
    // thread, and every later write, go on.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&tx)));
    let (ok, done) = ran.unwrap_or_else(|_| {
        let refused: Completion = Box::new(|_| {});
        (false, refused)
    });
    let logged = if ok { tx.logged() } else { None };
    let end = if ok {
        "RELEASE write"
    } else {
        "ROLLBACK TO write; RELEASE write"
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "store: savepoint release failed");
    }
    (done, logged)
}
