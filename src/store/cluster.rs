//! What the akm nodes sharing one PostgreSQL database coordinate through the database itself:
//! leases (a node id held by one live process at a time; the scheduled-rotation run, so it
//! happens once cluster-wide) and the KEK the database's keys are wrapped under, which every
//! node must hold. On SQLite there is one node and nothing to coordinate: every lease is this
//! node's and every KEK check passes.
//!
//! Lease times are the database's clock (`now()`), never a node's, so nodes whose clocks
//! disagree still agree on who holds a lease. A lease is held until it expires unless its
//! holder renews it; a holder that stops (even killed with -9) loses it `ttl` later.

use super::{Store, StoreError};
use std::time::Duration;

/// Who holds a lease another caller asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHeld {
    /// The holder's name, as it took the lease.
    pub holder: String,
    /// How long until the lease expires unless renewed.
    pub expires_in: Duration,
}

/// A shared database's state as this node sees it, for health and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseHealth {
    /// This node's id.
    pub node_id: String,
    /// How long a trivial query took, reader pool wait included.
    pub round_trip: Duration,
    /// Reader connections open (in use or idle).
    pub readers_open: usize,
    /// Of those, idle in the pool.
    pub readers_idle: usize,
    /// The most the pool opens (`store.pool_size`).
    pub pool_size: usize,
}

/// The database's clock in milliseconds since the epoch, as SQL.
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT";

/// How long a node id stays held after its holder's last renewal: a node killed with -9 can
/// start again (or its id be taken over) this long after. The daemon renews every third of it.
pub const NODE_LEASE: Duration = Duration::from_secs(15);

/// The lease of this process's node id.
fn node_lease_name(node: &str) -> String {
    format!("node:{node}")
}

/// The processes holding a node id on the database now (one holder per row, as "node (host,
/// pid)"): the nodes serving from it.
pub(in crate::store) const LIVE_NODES_SQL: &str = "SELECT holder FROM leases \
     WHERE name LIKE 'node:%' AND expires_ms > (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT \
     ORDER BY holder";

impl Store {
    /// Whether other akm nodes may share this store's database (the PostgreSQL backend).
    pub fn is_shared(&self) -> bool {
        self.postgres().is_some()
    }

    /// This node's id among the nodes sharing the database (`store.node_id`); `None` on SQLite.
    pub fn node_id(&self) -> Option<&str> {
        self.postgres().map(super::postgres::Pg::node)
    }

    /// Takes this node's id for this process, so two live processes never serve as one node
    /// (their audit marks and change-log entries would mix). A previous holder that stopped
    /// without releasing it (killed) is waited for, at most `wait`; a live one is refused.
    /// Nothing to take on SQLite.
    pub fn claim_node_id(&self, wait: Duration) -> Result<(), StoreError> {
        let Some(pg) = self.postgres() else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + wait;
        let mut waited = false;
        loop {
            let Some(held) = self.take_lease(&node_lease_name(pg.node()), NODE_LEASE)? else {
                return Ok(());
            };
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            // Still held after its expiry was waited for: its holder renewed it, so it lives.
            if waited || held.expires_in > left {
                return Err(StoreError::NodeIdInUse {
                    node: pg.node().to_owned(),
                    holder: held.holder,
                    expires_in: held.expires_in.as_secs(),
                });
            }
            tracing::warn!(
                node = pg.node(),
                holder = %held.holder,
                expires_in_ms = held.expires_in.as_millis() as u64,
                "store.node_id is held by an earlier process (killed?); waiting for its hold to lapse"
            );
            std::thread::sleep(held.expires_in + Duration::from_millis(200));
            waited = true;
        }
    }

    /// Renews this process's hold on its node id ([`NODE_LEASE`]); an error names whoever took
    /// it over (this process stalled past the lease).
    pub fn renew_node_id(&self) -> Result<(), StoreError> {
        let Some(pg) = self.postgres() else {
            return Ok(());
        };
        match self.take_lease(&node_lease_name(pg.node()), NODE_LEASE)? {
            None => Ok(()),
            Some(held) => Err(StoreError::NodeIdInUse {
                node: pg.node().to_owned(),
                holder: held.holder,
                expires_in: held.expires_in.as_secs(),
            }),
        }
    }

    /// Takes or renews the lease `name` for this process for `ttl`: `Ok(None)` when this
    /// process now holds it, `Ok(Some(..))` naming whoever else does. Always `Ok(None)` on
    /// SQLite (one node).
    pub fn take_lease(&self, name: &str, ttl: Duration) -> Result<Option<LeaseHeld>, StoreError> {
        let Some(pg) = self.postgres() else {
            return Ok(None);
        };
        let holder = pg.instance();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        pg.read(|c| {
            let taken = c.query_opt(
                &format!(
                    "INSERT INTO leases (name, holder, expires_ms) \
                     VALUES ($1, $2, {DB_NOW_MS} + $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                     expires_ms = EXCLUDED.expires_ms \
                     WHERE leases.holder = EXCLUDED.holder OR leases.expires_ms < {DB_NOW_MS} \
                     RETURNING holder"
                ),
                &[&name, &holder, &ttl_ms],
            )?;
            if taken.is_some() {
                return Ok(None);
            }
            let row = c.query_opt(
                &format!("SELECT holder, expires_ms - {DB_NOW_MS} FROM leases WHERE name = $1"),
                &[&name],
            )?;
            Ok(row.map(|r| LeaseHeld {
                holder: r.get(0),
                expires_in: Duration::from_millis(u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)),
            }))
        })
    }

    /// Gives up every lease this process holds (a clean stop: another process may take them
    /// at once rather than when they expire).
    pub(super) fn release_leases(&self) {
        let Some(pg) = self.postgres() else {
            return;
        };
        let released = pg.read(|c| {
            c.execute("DELETE FROM leases WHERE holder = $1", &[&pg.instance()])?;
            Ok(())
        });
        if let Err(e) = released {
            tracing::warn!(error = %e, "store: could not release this node's leases; they expire by themselves");
        }
    }

    /// The shared database's state now (one trivial query, never cached), or why it cannot
    /// be reached; `None` on SQLite (its file's health shows in the store's reads).
    pub fn database_health(&self) -> Option<Result<DatabaseHealth, String>> {
        let pg = self.postgres()?;
        let started = std::time::Instant::now();
        let probe = pg.read(|c| {
            c.query_one("SELECT 1", &[])?;
            Ok(())
        });
        let (readers_open, readers_idle) = pg.pool_counts();
        Some(
            probe
                .map(|()| DatabaseHealth {
                    node_id: pg.node().to_owned(),
                    round_trip: started.elapsed(),
                    readers_open,
                    readers_idle,
                    pool_size: pg.pool_size(),
                })
                .map_err(|e| e.to_string()),
        )
    }

    /// Publishes this node's security settings digest (`digest`, as JSON) and returns those
    /// the other live nodes (holding their node id now) published: (node id, digest JSON).
    /// Nothing to compare on SQLite.
    pub fn exchange_settings(&self, digest: &str) -> Result<Vec<(String, String)>, StoreError> {
        let Some(pg) = self.postgres() else {
            return Ok(Vec::new());
        };
        let node = pg.node();
        pg.read(|c| {
            c.execute(
                "INSERT INTO node_settings (node, digest) VALUES ($1, $2) \
                 ON CONFLICT (node) DO UPDATE SET digest = EXCLUDED.digest",
                &[&node, &digest],
            )?;
            Ok(())
        })?;
        self.other_nodes_settings()
    }

    /// The security settings digests (JSON) the other live nodes published: (node id, digest).
    /// None on SQLite.
    pub fn other_nodes_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let Some(pg) = self.postgres() else {
            return Ok(Vec::new());
        };
        let node = pg.node();
        pg.read(|c| {
            let rows = c.query(
                &format!(
                    "SELECT s.node, s.digest FROM node_settings s \
                     JOIN leases l ON l.name = 'node:' || s.node \
                     WHERE s.node <> $1 AND l.expires_ms > {DB_NOW_MS} ORDER BY s.node"
                ),
                &[&node],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// The KEK id the database's keys are wrapped under, once a node recorded it; always
    /// `None` on SQLite.
    pub fn database_kek(&self) -> Result<Option<String>, StoreError> {
        let Some(pg) = self.postgres() else {
            return Ok(None);
        };
        pg.read(|c| {
            Ok(
                c.query_opt("SELECT kek_id FROM database_kek WHERE id = 1", &[])?
                    .map(|r| r.get(0)),
            )
        })
    }

    /// Checks that this node's KEK is the one the database's keys are wrapped under: the first
    /// node to ask records its KEK id; every later one must have that KEK as its current one.
    /// Holding it only among `retired` is not enough: this node would wrap every key it makes
    /// under its newer KEK, which the other nodes do not hold (KEK rotation is refused on a
    /// shared database, so they never get it). Always passes on SQLite.
    pub fn check_database_kek(&self, current: &str, retired: &[String]) -> Result<(), StoreError> {
        let Some(pg) = self.postgres() else {
            return Ok(());
        };
        let recorded: String = pg.read(|c| {
            c.execute(
                "INSERT INTO database_kek (id, kek_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&current],
            )?;
            Ok(
                c.query_one("SELECT kek_id FROM database_kek WHERE id = 1", &[])?
                    .get(0),
            )
        })?;
        if recorded == current {
            return Ok(());
        }
        if retired.contains(&recorded) {
            tracing::error!(database = %recorded, node = current, "this node holds the database's KEK only as retired by a rotation: the keys it made would be wrapped under a KEK the other nodes do not hold");
        }
        Err(StoreError::KekMismatch {
            database: recorded,
            node: current.to_owned(),
        })
    }
}
