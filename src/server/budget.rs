//! The budget of connections that have not yet proved who they are (TLS handshake not done,
//! or for the status listener, request not yet received). It is never full for a newcomer:
//! admitting one when the budget (or the newcomer's source address) is at its cap evicts the
//! OLDEST pending connection (from the same source first), so idle sockets that an attacker
//! opens cannot lock a legitimate client out; they only push each other out. Connections that
//! have authenticated are not counted here and are never evicted for a handshake.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Pending connections, oldest first, and their count per source address.
#[derive(Debug)]
pub struct PendingBudget {
    max_total: usize,
    max_per_source: usize,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// By admission order: the first entry is the oldest.
    pending: BTreeMap<u64, Entry>,
    by_source: HashMap<IpAddr, BTreeSet<u64>>,
}

#[derive(Debug)]
struct Entry {
    source: IpAddr,
    /// Dropping it (on eviction) wakes the connection's [`Ticket::evicted`].
    _evict: oneshot::Sender<()>,
}

/// Which pending connection made room for a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// The oldest from the newcomer's own source (it was at its per-source cap).
    SameSource(IpAddr),
    /// The oldest of all (the whole budget was full).
    Oldest(IpAddr),
}

/// A pending connection's place in the budget; gives it up when dropped.
#[derive(Debug)]
pub struct Ticket {
    budget: Arc<PendingBudget>,
    id: u64,
    evicted: oneshot::Receiver<()>,
}

impl PendingBudget {
    /// A budget of `max_total` pending connections, `max_per_source` from one address.
    pub fn new(max_total: usize, max_per_source: usize) -> Arc<PendingBudget> {
        Arc::new(PendingBudget {
            max_total: max_total.max(1),
            max_per_source: max_per_source.clamp(1, max_total.max(1)),
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new pending connection from `source`, first evicting the oldest pending one
    /// from `source` if that address is at its cap, else the oldest of all if the budget is
    /// full. The newcomer is always admitted.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> (Ticket, Option<Eviction>) {
        let mut t = self.table();
        let from_source = t.by_source.get(&source).map_or(0, BTreeSet::len);
        let eviction = if from_source >= self.max_per_source {
            let oldest = t.by_source.get(&source).and_then(|s| s.first().copied());
            oldest.and_then(|id| t.remove(id)).map(Eviction::SameSource)
        } else if t.pending.len() >= self.max_total {
            let oldest = t.pending.keys().next().copied();
            oldest.and_then(|id| t.remove(id)).map(Eviction::Oldest)
        } else {
            None
        };
        let id = t.next_id;
        t.next_id += 1;
        let (tx, rx) = oneshot::channel();
        t.pending.insert(id, Entry { source, _evict: tx });
        t.by_source.entry(source).or_default().insert(id);
        let ticket = Ticket {
            budget: self.clone(),
            id,
            evicted: rx,
        };
        (ticket, eviction)
    }

    /// Evicts the oldest pending connection (to free a file descriptor); its source, or
    /// `None` if nothing is pending.
    pub fn evict_oldest(&self) -> Option<IpAddr> {
        let mut t = self.table();
        let oldest = t.pending.keys().next().copied()?;
        t.remove(oldest)
    }

    /// Pending connections now.
    pub fn len(&self) -> usize {
        self.table().pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Table {
    /// Removes entry `id` (waking its connection if it is still waiting); its source.
    fn remove(&mut self, id: u64) -> Option<IpAddr> {
        let entry = self.pending.remove(&id)?;
        if let Some(ids) = self.by_source.get_mut(&entry.source) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_source.remove(&entry.source);
            }
        }
        Some(entry.source)
    }
}

impl Ticket {
    /// Completes when this connection has been evicted to make room for a newer one; never
    /// while it still holds its place.
    pub async fn evicted(&mut self) {
        let _ = (&mut self.evicted).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.budget.table().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    /// Whether `ticket` has been evicted, without waiting.
    fn is_evicted(ticket: &mut Ticket) -> bool {
        let fut = std::pin::pin!(ticket.evicted());
        fut.poll(&mut Context::from_waker(Waker::noop())) == Poll::Ready(())
    }

    #[test]
    fn a_full_budget_evicts_its_oldest_and_always_admits_the_newcomer() {
        let budget = PendingBudget::new(3, 3);
        let (mut a, e) = budget.admit(ip(1));
        assert_eq!(e, None);
        let (mut b, _) = budget.admit(ip(2));
        let (mut c, _) = budget.admit(ip(3));
        let (mut d, e) = budget.admit(ip(4));
        assert_eq!(e, Some(Eviction::Oldest(ip(1))));
        assert!(is_evicted(&mut a));
        assert!(!is_evicted(&mut b) && !is_evicted(&mut c) && !is_evicted(&mut d));
        assert_eq!(budget.len(), 3);
        drop(b);
        assert_eq!(budget.len(), 2);
        let (_e, eviction) = budget.admit(ip(5));
        assert_eq!(
            eviction, None,
            "a freed place is used before anyone is evicted"
        );
        drop(a);
        assert_eq!(budget.len(), 3, "an evicted ticket holds no place");
    }

    #[test]
    fn a_source_at_its_cap_evicts_its_own_oldest_first() {
        let budget = PendingBudget::new(10, 2);
        let (mut other, _) = budget.admit(ip(9));
        let (mut first, _) = budget.admit(ip(1));
        let (mut second, _) = budget.admit(ip(1));
        let (_third, e) = budget.admit(ip(1));
        assert_eq!(e, Some(Eviction::SameSource(ip(1))));
        assert!(is_evicted(&mut first));
        assert!(!is_evicted(&mut second));
        assert!(!is_evicted(&mut other), "another source's connection stays");
        assert_eq!(budget.evict_oldest(), Some(ip(9)));
        assert!(is_evicted(&mut other));
    }
}

/// Authenticated connections per identity (certificate CN), so one client cannot take every
/// slot of `server.max_connections` and lock the others out.
#[derive(Debug)]
pub struct IdentityBudget {
    max_per_identity: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One identity's connection slot, given back when dropped.
#[derive(Debug)]
pub struct IdentitySlot {
    identity: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl IdentityBudget {
    /// At most `max_per_identity` connections per identity.
    pub fn new(max_per_identity: usize) -> IdentityBudget {
        IdentityBudget {
            max_per_identity: max_per_identity.max(1),
            held: Arc::default(),
        }
    }

    /// A slot for `identity`, or `None` if it holds its share already.
    pub fn admit(&self, identity: &str) -> Option<IdentitySlot> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(identity.to_owned()).or_insert(0);
        if *count >= self.max_per_identity {
            return None;
        }
        *count += 1;
        Some(IdentitySlot {
            identity: identity.to_owned(),
            held: self.held.clone(),
        })
    }
}

impl Drop for IdentitySlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.identity) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.identity);
            }
        }
    }
}

#[cfg(test)]
mod identity_tests {
    use super::IdentityBudget;

    #[test]
    fn each_identity_gets_its_share_and_slots_come_back() {
        let budget = IdentityBudget::new(2);
        let a1 = budget.admit("alice").unwrap();
        let _a2 = budget.admit("alice").unwrap();
        assert!(budget.admit("alice").is_none());
        let _b = budget.admit("bob").unwrap();
        drop(a1);
        assert!(budget.admit("alice").is_some());
    }
}
