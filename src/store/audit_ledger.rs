//! Which committed changes still wait for their audit record, so that a server killed between
//! committing a change and writing its record names the change in the journal when it starts
//! again (the journal then names every object the store holds).
//!
//! Every change-log entry the writer commits enters the ledger as *pending*. A request (or a
//! mirror apply) that writes its audit record opens an [`AuditScope`] on its thread first: the
//! changes it commits are kept in the scope, and [`AuditScope::recorded`] clears them once the
//! journal holds their records. Changes committed outside any scope have no record of their own
//! to wait for and are cleared at once.
//!
//! The *audit mark* is the highest sequence number at or below which nothing is pending. The
//! writer stores it in the `audit_mark` row inside each group's transaction (so it never
//! covers a change committed later), and [`Store::unaudited_changes`] lists the change-log
//! entries above it at start-up. The stored mark can lag (it is written with the next group),
//! so a listed change may already have its record: the recovery record says "may".

use super::{Store, StoreError};
use rusqlite::{params, Connection};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The change-log sequence numbers one write logged, first to last (contiguous: one writer).
pub(super) type Logged = Option<(i64, i64)>;

/// Pending change-log entries and the mark derived from them.
#[derive(Debug, Default)]
pub(super) struct AuditLedger {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Committed, their audit record not yet written.
    pending: BTreeSet<i64>,
    /// The newest committed sequence number the ledger has seen.
    newest: i64,
    /// The mark last stored in the database.
    stored: i64,
}

impl AuditLedger {
    /// A ledger whose store already holds entries up to `newest`, all accounted for.
    pub(super) fn starting_at(newest: i64) -> AuditLedger {
        AuditLedger {
            inner: Mutex::new(Inner {
                pending: BTreeSet::new(),
                newest,
                stored: newest,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The ledger holds no invariant a panicking holder could break halfway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the committer, after the commit and before the writers are acknowledged.
    pub(super) fn committed(&self, logged: impl IntoIterator<Item = (i64, i64)>) {
        let mut inner = self.lock();
        for (first, last) in logged {
            inner.pending.extend(first..=last);
            inner.newest = inner.newest.max(last);
        }
    }

    /// The entries `first..=last` have their audit records (or need none).
    fn cleared(&self, ranges: &[(i64, i64)]) {
        let mut inner = self.lock();
        for &(first, last) in ranges {
            for seq in first..=last {
                inner.pending.remove(&seq);
            }
        }
    }

    /// Stores the mark in the writer's open transaction when it moved (cheap: one row).
    pub(super) fn store_mark(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        let mark = {
            let inner = self.lock();
            let mark = match inner.pending.first() {
                Some(oldest) => oldest - 1,
                None => inner.newest,
            };
            if mark <= inner.stored {
                return Ok(());
            }
            mark
        };
        conn.execute("UPDATE audit_mark SET seq = ?1 WHERE id = 1", params![mark])?;
        self.lock().stored = mark;
        Ok(())
    }

    /// A write on this thread committed `logged`: kept by the thread's scope, or cleared.
    pub(super) fn committed_here(&self, store: u64, logged: Logged) {
        let Some(range) = logged else { return };
        let kept = SCOPE.with(|s| match s.borrow_mut().as_mut() {
            Some(scope) if scope.store == store => {
                scope.ranges.push(range);
                true
            }
            _ => false,
        });
        if !kept {
            self.cleared(&[range]);
        }
    }
}

/// The scope open on this thread: the store it belongs to and the changes committed in it.
struct OpenScope {
    store: u64,
    ranges: Vec<(i64, i64)>,
}

thread_local! {
    static SCOPE: RefCell<Option<OpenScope>> = const { RefCell::new(None) };
}

/// Changes committed on this thread while this is open wait for [`AuditScope::recorded`].
/// Dropped without it (the journal could not be written), they stay pending and are named at
/// the next start.
#[must_use = "a scope dropped at once keeps nothing"]
pub struct AuditScope<'s> {
    store: &'s Store,
}

impl AuditScope<'_> {
    /// Whether a change was committed on this thread since the scope opened.
    pub fn changed_anything(&self) -> bool {
        SCOPE.with(|s| {
            s.borrow()
                .as_ref()
                .is_some_and(|scope| !scope.ranges.is_empty())
        })
    }

    /// The journal holds the records of every change committed in this scope.
    pub fn recorded(self) {
        if let Some(scope) = SCOPE.with(|s| s.borrow_mut().take()) {
            self.store.ledger.cleared(&scope.ranges);
        }
    }
}

impl Drop for AuditScope<'_> {
    fn drop(&mut self) {
        SCOPE.with(|s| s.borrow_mut().take());
    }
}

/// A change-log entry committed above the stored audit mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnauditedChange {
    /// Its sequence number.
    pub seq: i64,
    /// What it names: `object`, `user`, `group`, `revocation`, ...
    pub entity: String,
    /// The object's unique identifier or the account's name.
    pub uid: String,
    /// The kind of change (`put`, `delete`, ...).
    pub kind: String,
    /// The peer it came from (None: this node).
    pub origin: Option<String>,
}

/// The most unaudited changes listed at start-up; the rest are counted.
pub const MAX_UNAUDITED_LISTED: usize = 10_000;

impl Store {
    /// Opens an audit scope on this thread (replacing one left open by an earlier request).
    pub fn audit_scope(&self) -> AuditScope<'_> {
        SCOPE.with(|s| {
            *s.borrow_mut() = Some(OpenScope {
                store: self.id,
                ranges: Vec::new(),
            })
        });
        AuditScope { store: self }
    }

    /// Change-log entries above the stored audit mark (at most [`MAX_UNAUDITED_LISTED`]),
    /// and how many there are in all. Call at start-up, before any write.
    pub fn unaudited_changes(&self) -> Result<(Vec<UnauditedChange>, usize), StoreError> {
        self.read(|c| {
            let mark: i64 =
                c.query_row("SELECT seq FROM audit_mark WHERE id = 1", [], |r| r.get(0))?;
            let total: i64 = c.query_row(
                "SELECT COUNT(*) FROM change_log WHERE seq > ?1",
                params![mark],
                |r| r.get(0),
            )?;
            let mut s = c.prepare(
                "SELECT seq, entity, uid, kind, origin FROM change_log WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let rows = s
                .query_map(params![mark, MAX_UNAUDITED_LISTED as i64], |r| {
                    Ok(UnauditedChange {
                        seq: r.get(0)?,
                        entity: r.get(1)?,
                        uid: r.get(2)?,
                        kind: r.get(3)?,
                        origin: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((rows, usize::try_from(total).unwrap_or(usize::MAX)))
        })
    }

    /// The journal now names every change committed so far: moves the stored mark to the
    /// newest change-log entry.
    pub fn mark_all_audited(&self) -> Result<(), StoreError> {
        self.write_replica(|tx| {
            tx.conn().execute(
                "UPDATE audit_mark SET seq = (SELECT COALESCE(MAX(seq), 0) FROM change_log) \
                 WHERE id = 1",
                [],
            )?;
            Ok::<_, StoreError>(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_stops_below_the_oldest_pending_change() {
        let ledger = AuditLedger::starting_at(4);
        ledger.committed([(5, 6), (7, 7)]);
        ledger.cleared(&[(7, 7), (5, 5)]);
        let inner = ledger.lock();
        assert_eq!(inner.pending.first(), Some(&6));
        assert_eq!(inner.newest, 7);
    }

    #[test]
    fn a_change_committed_outside_a_scope_is_cleared_at_once() {
        let ledger = AuditLedger::starting_at(0);
        ledger.committed([(1, 2)]);
        ledger.committed_here(u64::MAX, Some((1, 2)));
        assert!(ledger.lock().pending.is_empty());
    }
}
