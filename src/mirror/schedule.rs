//! Who runs scheduled rotations in a mirrored cluster: one node, so a key's rotation is decided
//! once per period. The schedule owner is the node with the lowest node id among this node and
//! the peers it currently reaches; a peer counts while a link to or from it is connected, for
//! a grace period after it was last heard from, and for the grace period after mirroring
//! starts (before the links are up). A partition can leave two owners, one per side; the
//! name-conflict rule ([`super::resolve`]) then joins the two version chains into one.

use super::Mirror;
use std::time::Duration;

impl Mirror {
    /// Whether this node runs scheduled rotations now; `grace` is how long an unreachable
    /// peer still counts.
    pub fn owns_schedules(&self, grace: Duration) -> bool {
        if self.started.elapsed() < grace {
            return !self.lower_peer(|_| true);
        }
        let now = crate::clock::now_secs();
        let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        !self.lower_peer(|p| {
            let heard = p.last_ack_unix.max(p.last_applied_unix);
            p.outbound_connected || p.inbound_connected || now.saturating_sub(heard) < grace
        })
    }

    /// Whether a peer with a lower node id than ours passes `reachable`.
    fn lower_peer(&self, reachable: impl Fn(&super::PeerStatus) -> bool) -> bool {
        let Ok(s) = self.state.lock() else {
            return false;
        };
        s.peers
            .values()
            .any(|p| p.node_id.as_str() < self.node_id() && reachable(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::CtxBuilder;
    use crate::audit::journal::SyncPolicy;
    use crate::audit::signer::Signer;
    use crate::audit::{Audit, JournalSettings};
    use crate::crypto::Kek;
    use crate::store::Store;
    use std::sync::Arc;

    /// Node `node` mirroring to `peers` (none of them connected).
    fn mirror(dir: &std::path::Path, node: &str, peers: &[&str]) -> Arc<Mirror> {
        let store = Store::open(&dir.join("akm.db")).unwrap();
        let settings = JournalSettings {
            path: dir.join("audit.log"),
            server_name: "unit".into(),
            checkpoint_every: 100,
            checkpoint_secs: 60,
            sync: SyncPolicy::EveryRecord,
        };
        let audit = Audit::open(settings, Signer::from_seed(&[9; 32]), vec![]).unwrap();
        let ctx = CtxBuilder::new(store, Kek::from_bytes(&[4u8; 32]).unwrap(), audit).build();
        let mut text = format!("node_id = \"{node}\"\nlisten = \"127.0.0.1:0\"\n");
        for p in peers {
            text.push_str(&format!(
                "[[peers]]\nnode_id = \"{p}\"\naddress = \"127.0.0.1:1\"\n"
            ));
        }
        Mirror::new(toml::from_str(&text).unwrap(), Arc::new(ctx))
    }

    #[test]
    fn the_lowest_reachable_node_id_owns_the_schedules() {
        let dir = tempfile::tempdir().unwrap();
        let (d0, d1) = (dir.path().join("0"), dir.path().join("1"));
        std::fs::create_dir_all(&d0).unwrap();
        std::fs::create_dir_all(&d1).unwrap();
        let lowest = mirror(&d0, "n0", &["n1"]);
        let other = mirror(&d1, "n1", &["n0"]);
        let long = Duration::from_secs(3600);
        // The lowest id always owns them; the other not while the links may still come up.
        assert!(lowest.owns_schedules(long));
        assert!(!other.owns_schedules(long));
        // A peer never heard from, once the start-up grace is over, does not count.
        assert!(other.owns_schedules(Duration::ZERO));
        // A connected peer counts, and one heard from within the grace.
        other.with_peer("n0", |p| p.inbound_connected = true);
        assert!(!other.owns_schedules(Duration::ZERO));
        other.with_peer("n0", |p| {
            p.inbound_connected = false;
            p.last_ack_unix = crate::clock::now_secs();
        });
        assert!(!other.owns_schedules(Duration::from_secs(60)));
        assert!(other.owns_schedules(Duration::ZERO));
    }
}
