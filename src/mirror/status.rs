//! Mirror status, the cluster as this node sees it: per peer, whether each direction is
//! connected, its head, how far behind each side is (in entries and seconds), its security
//! settings digest and whether it matches ours, and the last error. The daemon writes it to `mirror-status.json` in
//! the data directory twice a second (atomically, by rename); `akm mirror status` reads and
//! prints that file, so the CLI never opens the database of a running server.

use super::Mirror;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One peer, both directions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's node id.
    pub node_id: String,
    /// Its configured mirror address.
    pub address: String,
    /// Our pusher is connected to it.
    pub outbound_connected: bool,
    /// Our newest sequence number it has acknowledged.
    pub acked: i64,
    /// When it last acknowledged, seconds since the epoch (0: never).
    pub last_ack_unix: i64,
    /// Our changes it has not acknowledged yet.
    pub lag_entries: i64,
    /// Age of the oldest of those, in seconds.
    pub lag_seconds: i64,
    /// It is connected to us, pushing its changes.
    pub inbound_connected: bool,
    /// How many of its connections are open (a stale one may linger after a cut).
    #[serde(skip)]
    pub inbound_connections: u32,
    /// Its newest sequence number we have applied.
    pub applied: i64,
    /// Its newest sequence number as it last told us.
    pub peer_head: i64,
    /// How many of its entries we have not applied, as far as we know (`peer_head - applied`).
    pub behind_entries: i64,
    /// When we last applied one of its changes, seconds since the epoch (0: never).
    pub last_applied_unix: i64,
    /// The last error on either direction, if any.
    pub last_error: Option<String>,
    /// The peer's security settings digest (first 16 hex digits) as it last told us.
    #[serde(default)]
    pub settings: Option<String>,
    /// Whether its security settings match ours (`None`: not compared yet).
    #[serde(default)]
    pub settings_match: Option<bool>,
    /// The sections that differ, when they do.
    #[serde(default)]
    pub settings_differ: Vec<String>,
    /// When a hello last found the settings different, seconds since the epoch (0: never).
    #[serde(default)]
    pub settings_mismatch_unix: i64,
}

impl PeerStatus {
    /// The settings column: `match`, `DIFFER: <sections>` or `?` (not compared yet).
    pub fn settings_verdict(&self) -> String {
        match self.settings_match {
            Some(true) => "match".into(),
            Some(false) => format!("DIFFER: {}", self.settings_differ.join(",")),
            None => "?".into(),
        }
    }
}

/// The whole status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub node_id: String,
    /// The effective mode: `async`, `rpo-zero`, or (RPO-zero degraded) `refusing-writes` or
    /// `async`.
    pub mode: String,
    /// This node's newest change-log sequence number.
    pub head: i64,
    /// This node's security settings digest (first 16 hex digits).
    #[serde(default)]
    pub settings: String,
    /// When this status was written, seconds since the epoch.
    pub updated_unix: i64,
    /// The peers.
    pub peers: Vec<PeerStatus>,
}

/// Fills in the outbound lag from the change log (blocking: run on the blocking pool).
fn with_lag(mirror: &Mirror, mut status: Status) -> Status {
    let now = crate::clock::now_secs();
    if let Ok(head) = mirror.ctx.store.last_change_seq() {
        status.head = head;
    }
    for p in &mut status.peers {
        if let Ok(Some((count, oldest))) = mirror.ctx.store.local_changes_after(p.acked) {
            p.lag_entries = count;
            p.lag_seconds = (now - oldest).max(0);
        } else {
            p.lag_entries = 0;
            p.lag_seconds = 0;
        }
        p.behind_entries = (p.peer_head - p.applied).max(0);
    }
    status
}

/// Writes the status file every `every` until shutdown (and once more at the end).
pub(super) async fn write_loop(
    mirror: Arc<Mirror>,
    path: PathBuf,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let m = mirror.clone();
        let p = path.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let status = with_lag(&m, m.status());
            if let Err(e) = write_file(&p, &status) {
                tracing::warn!(path = %p.display(), error = %e, "cannot write mirror status");
            }
        })
        .await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn write_file(path: &Path, status: &Status) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Reads a status file.
pub fn read_file(path: &Path) -> std::io::Result<Status> {
    let text = std::fs::read(path)?;
    serde_json::from_slice(&text).map_err(std::io::Error::other)
}

/// The status as a table for people.
pub fn render(status: &Status, now: i64) -> String {
    let mut out = format!(
        "node {}  mode {}  head {}  settings {}  (status {} s old)\n",
        status.node_id,
        status.mode,
        status.head,
        if status.settings.is_empty() {
            "-"
        } else {
            &status.settings
        },
        (now - status.updated_unix).max(0)
    );
    out.push_str(&format!(
        "{:<12} {:<22} {:<5} {:>8} {:>9} {:<5} {:>8} {:>8} {:>7} {:<16} {:<8}  last error\n",
        "peer",
        "address",
        "out",
        "lag",
        "lag (s)",
        "in",
        "head",
        "applied",
        "behind",
        "settings",
        "agree"
    ));
    for p in &status.peers {
        out.push_str(&format!(
            "{:<12} {:<22} {:<5} {:>8} {:>9} {:<5} {:>8} {:>8} {:>7} {:<16} {:<8}  {}\n",
            p.node_id,
            p.address,
            if p.outbound_connected { "up" } else { "down" },
            p.lag_entries,
            p.lag_seconds,
            if p.inbound_connected { "up" } else { "down" },
            p.peer_head,
            p.applied,
            p.behind_entries,
            p.settings.as_deref().unwrap_or("-"),
            p.settings_verdict(),
            p.last_error.as_deref().unwrap_or("-")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files_round_trip_and_render() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror-status.json");
        let status = Status {
            node_id: "a".into(),
            mode: "async".into(),
            head: 5,
            settings: "0123456789abcdef".into(),
            updated_unix: 100,
            peers: vec![PeerStatus {
                node_id: "b".into(),
                address: "127.0.0.1:1".into(),
                lag_entries: 3,
                last_error: Some("connection refused".into()),
                settings_match: Some(false),
                settings_differ: vec!["access".into(), "dual_control".into()],
                ..PeerStatus::default()
            }],
        };
        write_file(&path, &status).unwrap();
        assert_eq!(read_file(&path).unwrap(), status);
        let text = render(&status, 102);
        assert!(
            text.contains("node a") && text.contains("2 s old"),
            "{text}"
        );
        assert!(
            text.contains("connection refused") && text.contains("down"),
            "{text}"
        );
        assert!(
            text.contains("DIFFER: access,dual_control")
                && text.contains("settings 0123456789abcdef"),
            "{text}"
        );
        assert!(read_file(&dir.path().join("missing")).is_err());
    }
}
