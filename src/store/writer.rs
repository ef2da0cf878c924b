//! The single writer thread. Concurrent writes queue here; the thread takes every write that
//! is waiting, runs each in its own savepoint inside one transaction, commits once (one fsync
//! for the group), and only then acknowledges each caller with its own result. A write that
//! fails rolls back its savepoint without disturbing the others in the group.

use super::StoreError;
use rusqlite::Connection;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;

/// The most writes committed together.
const MAX_GROUP: usize = 256;

/// The connection a write runs against, inside the group's transaction.
pub struct WriteTx<'a> {
    conn: &'a Connection,
    /// The change-log sequence number of this write's latest entry (0: none yet).
    logged: std::cell::Cell<i64>,
}

impl WriteTx<'_> {
    /// The connection (inside the transaction and this write's savepoint).
    pub(super) fn conn(&self) -> &Connection {
        self.conn
    }

    /// Records that this write logged change `seq`.
    pub(super) fn set_logged(&self, seq: i64) {
        self.logged.set(seq);
    }

    /// The sequence number of the last change this write logged, 0 if none.
    pub fn last_logged(&self) -> i64 {
        self.logged.get()
    }
}

/// Called once the group's commit has finished, with its outcome.
type Completion = Box<dyn FnOnce(Result<(), ()>) + Send>;
/// A queued write: runs against the transaction and says whether it succeeded.
type Job = Box<dyn FnOnce(&WriteTx<'_>) -> (bool, Completion) + Send>;

pub(super) struct Writer {
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(super) fn start(mut conn: Connection) -> Result<Writer, StoreError> {
        // Destroyed key material is overwritten on disk, not just unlinked from the b-tree.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let (sender, receiver) = mpsc::sync_channel::<Job>(4096);
        let thread = std::thread::Builder::new()
            .name("akm-store-writer".into())
            .spawn(move || run(&mut conn, receiver))
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
            let result = f(tx);
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                let outcome = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(())) => Err(StoreError::CommitFailed.into()),
                    (Err(e), _) => Err(e),
                };
                let _ = reply.send(outcome);
            });
            (ok, done)
        });
        let sender = self.sender.lock().ok().and_then(|s| s.clone());
        let gone = || E::from(StoreError::WriterGone);
        sender.ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
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

fn run(conn: &mut Connection, receiver: Receiver<Job>) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(conn, group);
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unblocks each caller with an error; nothing was written.
        tracing::error!(error = %e, "store: could not begin a write transaction");
        return;
    }
    let completions: Vec<Completion> = group
        .into_iter()
        .map(|job| run_in_savepoint(conn, job))
        .collect();
    let outcome = match conn.execute_batch("COMMIT") {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "store: commit failed; the group's writes are lost");
            let _ = conn.execute_batch("ROLLBACK");
            Err(())
        }
    };
    for done in completions {
        done(outcome);
    }
}

fn run_in_savepoint(conn: &Connection, job: Job) -> Completion {
    if let Err(e) = conn.execute_batch("SAVEPOINT write") {
        // Without its savepoint a failing write could not be undone alone: do not run it.
        // Dropping the job tells its caller the write failed.
        tracing::error!(error = %e, "store: savepoint failed");
        return Box::new(|_| {});
    }
    let (ok, done) = job(&WriteTx {
        conn,
        logged: std::cell::Cell::new(0),
    });
    let end = if ok {
        "RELEASE write"
    } else {
        "ROLLBACK TO write; RELEASE write"
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "store: savepoint release failed");
    }
    done
}
