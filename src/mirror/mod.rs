//! Mirroring to failover peers: streaming this node's change log to every peer, applying the
//! peers' changes (re-wrapping key material under this node's KEK), catch-up from the last
//! acknowledged sequence number or by snapshot, the conflict rule, RPO-zero gating of client
//! writes, and the status `akm mirror status` shows. It reads and writes through `store` and
//! never runs KMIP dispatch.
//!
//! Topology: every node connects to every peer and pushes the changes made on itself (the
//! change-log entries without an origin); changes applied from a peer are logged with their
//! origin and never pushed on, so there are no echo loops. Unique Identifiers are random
//! version 4 UUIDs (122 random bits), so nodes never hand out the same one.

pub mod apply;
pub mod events;
mod link;
pub mod proto;
pub mod resolve;
mod schedule;
pub mod status;

use crate::config::mirror::{MirrorConfig, Mode, OnTimeout};
use crate::logthrottle::LogThrottle;
use crate::ops::Ctx;
use crate::store::{CommitHook, StoreError};
pub use status::{PeerStatus, Status};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The status file in the data directory, read by `akm mirror status`.
pub const STATUS_FILE: &str = "mirror-status.json";
/// Refused connections logged one by one at the start of a quiet interval.
const REFUSALS_LOGGED: u64 = 5;
/// Beyond those, one summary line per this interval.
const REFUSAL_SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// Why mirroring could not start.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The mirror TLS files are unusable.
    #[error("mirror TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The listener could not be bound.
    #[error("cannot listen for mirror peers on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The mirror's shared state: per-peer progress, the effective mode, and the wake-up signal
/// for the pushers.
pub struct Mirror {
    config: MirrorConfig,
    ctx: Arc<Ctx>,
    /// Throttles the warnings about refused connections (a flood must not fill the log).
    refusal_log: LogThrottle,
    state: Mutex<State>,
    acked: Condvar,
    head: tokio::sync::watch::Sender<i64>,
    /// When mirroring started (peers count as reachable for a grace period after it).
    started: Instant,
}

#[derive(Default)]
struct State {
    peers: BTreeMap<String, PeerStatus>,
    /// RPO-zero only: no peer confirmed a write in time; writes are refused or asynchronous
    /// (per `on_timeout`) until a peer has caught up.
    degraded: bool,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mirror({})", self.config.node_id)
    }
}

impl Mirror {
    /// The mirror for `ctx`, with every configured peer disconnected.
    pub fn new(config: MirrorConfig, ctx: Arc<Ctx>) -> Arc<Mirror> {
        let head = ctx.store.last_change_seq().unwrap_or(0);
        let peers = config
            .peers
            .iter()
            .map(|p| {
                let status = PeerStatus {
                    node_id: p.node_id.clone(),
                    address: p.address.clone(),
                    ..PeerStatus::default()
                };
                (p.node_id.clone(), status)
            })
            .collect();
        Arc::new(Mirror {
            config,
            ctx,
            refusal_log: LogThrottle::new(REFUSALS_LOGGED, REFUSAL_SUMMARY_INTERVAL),
            state: Mutex::new(State {
                peers,
                degraded: false,
            }),
            acked: Condvar::new(),
            head: tokio::sync::watch::channel(head).0,
            started: Instant::now(),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// Logs the summary of refused connections left out of the log, if one is due (or, with
    /// `now`, whatever was left out so far: at shutdown).
    pub fn summarise_refusals(&self, now: bool) {
        let summary = if now {
            self.refusal_log.flush_now()
        } else {
            self.refusal_log.flush()
        };
        if let Some(s) = summary {
            events::refusal_summary(&s);
        }
    }

    fn with_peer(&self, node: &str, f: impl FnOnce(&mut PeerStatus)) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(p) = s.peers.get_mut(node) {
                f(p);
            }
        }
    }

    /// Records that `node` has durably applied everything of ours up to `seq`, and lifts a
    /// degraded RPO-zero mode once that peer has caught up with our head.
    fn set_acked(&self, node: &str, seq: i64) {
        let head = *self.head.borrow();
        let Ok(mut s) = self.state.lock() else { return };
        if let Some(p) = s.peers.get_mut(node) {
            p.acked = p.acked.max(seq);
            p.last_ack_unix = crate::clock::now_secs();
        }
        if s.degraded && seq >= head {
            s.degraded = false;
            events::mode_switch(
                &self.ctx,
                node,
                self.degraded_name(),
                "rpo-zero",
                &format!("peer {node} caught up"),
            );
        }
        drop(s);
        self.acked.notify_all();
    }

    fn degraded_name(&self) -> &'static str {
        match self.config.on_timeout {
            OnTimeout::Refuse => "refusing-writes",
            OnTimeout::Async => "async",
        }
    }

    /// A snapshot of the status for `akm mirror status`.
    pub fn status(&self) -> Status {
        let s = self.state.lock().ok();
        let peers = s
            .as_ref()
            .map(|s| s.peers.values().cloned().collect())
            .unwrap_or_default();
        let mode = match (self.config.mode, s.as_ref().is_some_and(|s| s.degraded)) {
            (Mode::Async, _) => "async",
            (Mode::RpoZero, false) => "rpo-zero",
            (Mode::RpoZero, true) => self.degraded_name(),
        };
        Status {
            node_id: self.config.node_id.clone(),
            mode: mode.into(),
            head: *self.head.borrow(),
            settings: self.ctx.settings.current().short(),
            updated_unix: crate::clock::now_secs(),
            peers,
        }
    }

    /// Waits until some peer has acknowledged `seq`, or the RPO timeout passes.
    fn wait_for_peer(&self, seq: i64) -> bool {
        let deadline = Instant::now() + self.config.rpo_timeout();
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        loop {
            if s.peers.values().any(|p| p.acked >= seq) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = match self.acked.wait_timeout(s, left) {
                Ok((s, _)) => s,
                Err(_) => return false,
            };
        }
    }
}

/// How long a peer's differing settings keep client writes refused after the last hello that
/// found them (the peer retries every second while it runs; once it is gone, writes resume).
const MISMATCH_FRESH_SECS: i64 = 10;

impl Mirror {
    /// The security settings digest in force on this node.
    fn settings(&self) -> Arc<crate::settings_digest::SettingsDigest> {
        self.ctx.settings.current()
    }

    /// Compares peer `node`'s settings with ours, records the verdict in the status and audits
    /// a change of verdict; returns the differing sections (empty: they agree).
    fn compare_settings(
        &self,
        node: &str,
        theirs: &crate::settings_digest::SettingsDigest,
    ) -> Vec<String> {
        let differ = self.settings().differing(theirs);
        let mut changed = false;
        self.with_peer(node, |p| {
            let now_match = differ.is_empty();
            changed =
                p.settings_match != Some(now_match) || (!now_match && p.settings_differ != differ);
            // Only a change back to agreement after a difference is worth an audit record.
            if now_match && p.settings_match.is_none() {
                changed = false;
            }
            p.settings = Some(theirs.short());
            p.settings_match = Some(now_match);
            p.settings_differ = differ.clone();
            if !now_match {
                p.settings_mismatch_unix = crate::clock::now_secs();
            }
        });
        if changed {
            if differ.is_empty() {
                events::settings_agree(self, node);
            } else {
                events::settings_mismatch(self, node, &differ);
            }
        }
        differ
    }

    /// The peers whose settings were found different within the last
    /// [`MISMATCH_FRESH_SECS`].
    fn mismatched_peers(&self) -> Vec<String> {
        let now = crate::clock::now_secs();
        self.state
            .lock()
            .map(|s| {
                s.peers
                    .values()
                    .filter(|p| {
                        p.settings_match == Some(false)
                            && now - p.settings_mismatch_unix <= MISMATCH_FRESH_SECS
                    })
                    .map(|p| p.node_id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl CommitHook for Mirror {
    fn before_write(&self) -> Result<(), StoreError> {
        // A peer that runs different security settings (say, without the dual control this
        // node enforces) must not receive writes this node's settings would refuse, nor send
        // them: writes wait until the settings agree.
        let mismatched = self.mismatched_peers();
        if !mismatched.is_empty() {
            return Err(StoreError::SettingsMismatch(mismatched.join(", ")));
        }
        let refusing = self.config.mode == Mode::RpoZero
            && self.config.on_timeout == OnTimeout::Refuse
            && self.state.lock().is_ok_and(|s| s.degraded);
        if refusing {
            return Err(StoreError::WritesRefused);
        }
        Ok(())
    }

    fn after_commit(&self, seq: i64) -> Result<(), StoreError> {
        self.head.send_modify(|h| *h = (*h).max(seq));
        if self.config.mode != Mode::RpoZero || self.state.lock().is_ok_and(|s| s.degraded) {
            return Ok(());
        }
        if self.wait_for_peer(seq) {
            return Ok(());
        }
        let switched = match self.state.lock() {
            Ok(mut s) => !std::mem::replace(&mut s.degraded, true),
            Err(_) => false,
        };
        if switched {
            events::mode_switch(
                &self.ctx,
                &self.config.node_id,
                "rpo-zero",
                self.degraded_name(),
                &format!(
                    "no peer acknowledged within {} ms",
                    self.config.rpo_timeout_ms
                ),
            );
        }
        match self.config.on_timeout {
            OnTimeout::Refuse => Err(StoreError::NotReplicated),
            OnTimeout::Async => Ok(()),
        }
    }
}

/// Starts mirroring on the current tokio runtime: binds the mirror listener, starts one pusher
/// per peer and the status file writer, and installs the commit hook. Runs until `shutdown`
/// resolves.
pub async fn start(
    config: MirrorConfig,
    ctx: Arc<Ctx>,
    status_file: std::path::PathBuf,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Arc<Mirror>, MirrorError> {
    let tls = link::Tls::load(&config)?;
    let addr = config.listen_addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MirrorError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let mirror = Mirror::new(config, ctx.clone());
    ctx.store.set_commit_hook(mirror.clone());
    tracing::info!(%bound, node = mirror.node_id(), "mirror listener");
    println!(
        "akm serve: mirror listener on {bound} (node {})",
        mirror.node_id()
    );
    tokio::spawn(link::accept_loop(
        listener,
        tls.clone(),
        mirror.clone(),
        shutdown.clone(),
    ));
    for peer in mirror.config.peers.clone() {
        tokio::spawn(link::push_loop(
            peer,
            tls.clone(),
            mirror.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(status::write_loop(
        mirror.clone(),
        status_file,
        Duration::from_millis(500),
        shutdown.clone(),
    ));
    tokio::spawn(compact_loop(mirror.clone(), shutdown));
    Ok(mirror)
}

/// Compacts the change log every `compact_interval_secs`: up to what every peer has
/// acknowledged in this run, and in any case up to the newest `log_retention_entries`.
async fn compact_loop(mirror: Arc<Mirror>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut done = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(mirror.config.compact_interval()) => {}
            _ = shutdown.changed() => return,
        }
        let m = mirror.clone();
        let compacted = tokio::task::spawn_blocking(move || m.compact(done)).await;
        match compacted {
            Ok(Ok(upto)) => done = upto,
            Ok(Err(e)) => tracing::warn!(error = %e, "mirror: change-log compaction failed"),
            Err(_) => {}
        }
    }
}

impl Mirror {
    /// One compaction (blocking); returns the sequence number compacted up to.
    fn compact(&self, done: i64) -> Result<i64, StoreError> {
        let store = &self.ctx.store;
        let head = store.last_change_seq()?;
        let acked_by_all = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.peers.values().map(|p| p.acked).min())
            .unwrap_or(head);
        let retention = i64::try_from(self.config.log_retention_entries).unwrap_or(i64::MAX);
        let upto = acked_by_all.max(head.saturating_sub(retention));
        if upto <= done {
            return Ok(done);
        }
        let deleted = store.compact_change_log(upto)?;
        if deleted > 0 {
            tracing::info!(upto, deleted, "mirror: change log compacted");
        }
        Ok(upto)
    }
}
