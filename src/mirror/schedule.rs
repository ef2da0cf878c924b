//! Who runs scheduled rotations in a mirrored cluster: one node, so a key's rotation is decided
//! once per period. The schedule owner is the node with the lowest node id among this node and
//! the peers it currently reaches; a peer counts while a link to or from it is connected, for
//! a grace period after it was last heard from, and for the grace period after mirroring
//! starts (before the links are up). A partition can leave two owners, one per side; the
//! name-conflict rule ([`super::resolve`]) then joins the two version chains into one.

use super::status::unix_now;
use super::Mirror;
use std::time::Duration;

impl Mirror {
    /// Whether this node runs scheduled rotations now; `grace` is how long an unreachable
    /// peer still counts.
    pub fn owns_schedules(&self, grace: Duration) -> bool {
        if self.started.elapsed() < grace {
            return !self.lower_peer(|_| true);
        }
        let now = unix_now();
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
