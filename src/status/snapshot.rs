//! What the status listener reports, gathered in one place: the server's state (seal,
//! journal, store), object counts (cached for a few seconds so scrapes cannot hammer
//! SQLite), mirror peers from the status file the mirror worker keeps, and the newest audit
//! records read back from the journal's tail. Everything here blocks: run it on the blocking
//! pool.

use crate::audit::record::{unescape, Record};
use crate::audit::JournalStatus;
use crate::crypto::slot::SealStatus;
use crate::mirror::status::Status as MirrorStatus;
use crate::ops::Ctx;
use crate::store::ObjectCount;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of the journal's end is read for the recent events.
const TAIL_BYTES: u64 = 256 * 1024;

/// The server the status listener reports on.
#[derive(Debug)]
pub struct Source {
    /// The server's context (store, KEK, journal, request counters).
    pub ctx: Arc<Ctx>,
    /// The mirror status file (`mirror-status.json`), when mirroring is configured.
    pub mirror_status: Option<PathBuf>,
    /// The certificate expiry watch, when the server runs one.
    pub certificates: Option<Arc<crate::certexpiry::Watch>>,
    /// When the process started, seconds since the epoch.
    pub started_unix: i64,
    /// How long an object count is reused.
    pub cache_for: Duration,
    cache: Mutex<Option<(Instant, Vec<ObjectCount>)>>,
}

/// One audit record as the status page shows it: who did what to which object, and how it
/// went. Journal records carry no key material; these fields are a subset of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentEvent {
    /// The record's serial.
    pub serial: u64,
    /// Its time, as the journal writes it (UTC).
    pub time: String,
    /// `kmip`, `message`, `tls`, `config`, `start`, `stop`.
    pub event: String,
    /// The KMIP operation.
    pub operation: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The Result Reason or a fixed failure detail.
    pub reason: String,
    /// The client certificate's common name.
    pub user: String,
    /// The client's address.
    pub client: String,
    /// The object's Unique Identifier.
    pub uid: String,
    /// The object's Name, when the record has one.
    pub name: String,
}

/// The server's state at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The KEK.
    pub seal: SealStatus,
    /// The audit journal and its sinks.
    pub journal: JournalStatus,
    /// Objects by type and state, or why they could not be counted.
    pub objects: Result<Vec<ObjectCount>, String>,
    /// A shared (PostgreSQL) database's state, probed for this snapshot, or why it cannot be
    /// reached; `None` on SQLite.
    pub database: Option<Result<crate::store::DatabaseHealth, String>>,
    /// The mirror status, when mirroring is configured (or why it could not be read).
    pub mirror: Option<Result<MirrorStatus, String>>,
    /// KMIP connections open.
    pub open_connections: i64,
    /// KMIP batch items answered since start.
    pub requests_total: u64,
    /// Seconds since the process started.
    pub uptime_secs: i64,
    /// When this was taken, seconds since the epoch.
    pub now_unix: i64,
    /// Watched certificates, soonest expiry first, and the warning threshold in seconds.
    pub certificates: (Vec<crate::certexpiry::Expiry>, i64),
}

impl Snapshot {
    /// Why the server is not serving, if it is not: sealed KEK, unwritable audit journal,
    /// unreachable database or unreadable store.
    pub fn unavailable(&self) -> Option<String> {
        if self.seal.sealed {
            return Some("the KEK is sealed (custodians must run `akm unseal`)".into());
        }
        if !self.journal.healthy {
            return Some("the audit journal cannot be written".into());
        }
        if let Some(Err(e)) = &self.database {
            return Some(format!("the key database cannot be reached: {e}"));
        }
        if let Err(e) = &self.objects {
            return Some(format!("the store cannot be read: {e}"));
        }
        None
    }
}

impl Source {
    /// A source reporting on `ctx`.
    pub fn new(ctx: Arc<Ctx>, mirror_status: Option<PathBuf>, cache_for: Duration) -> Source {
        Source {
            ctx,
            mirror_status,
            certificates: None,
            started_unix: crate::clock::now_secs(),
            cache_for,
            cache: Mutex::new(None),
        }
    }

    /// The state now (object counts possibly up to `cache_for` old).
    pub fn snapshot(&self) -> Snapshot {
        let now = crate::clock::now_secs();
        let metrics = &self.ctx.metrics;
        Snapshot {
            seal: self.ctx.kek.status(),
            journal: self.ctx.audit.status(),
            objects: self.objects(),
            database: self.ctx.store.database_health(),
            mirror: self.mirror_status.as_deref().map(read_mirror),
            open_connections: metrics.open_connections(),
            requests_total: metrics.requests_total(),
            uptime_secs: (now - self.started_unix).max(0),
            now_unix: now,
            certificates: self
                .certificates
                .as_ref()
                .map(|w| (w.current(), w.threshold_secs()))
                .unwrap_or_default(),
        }
    }

    /// Object counts from the cache, or from the store when the cache is older than
    /// `cache_for`. A failed read is not cached, so recovery shows at the next scrape.
    fn objects(&self) -> Result<Vec<ObjectCount>, String> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, counts)) = cache.as_ref() {
            if at.elapsed() < self.cache_for {
                return Ok(counts.clone());
            }
        }
        match self.ctx.store.count_objects() {
            Ok(counts) => {
                *cache = Some((Instant::now(), counts.clone()));
                Ok(counts)
            }
            Err(e) => {
                tracing::warn!(error = %e, "status: cannot count objects");
                Err(e.to_string())
            }
        }
    }

    /// The newest `n` audit records other than checkpoints, newest first.
    pub fn recent_events(&self, n: usize) -> Result<Vec<RecentEvent>, String> {
        read_tail(self.ctx.audit.path(), n).map_err(|e| e.to_string())
    }
}

fn read_mirror(path: &Path) -> Result<MirrorStatus, String> {
    crate::mirror::status::read_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The newest `n` non-checkpoint records in the last `TAIL_BYTES` of the journal at
/// `path`, newest first. Lines that do not parse (a record being written) are skipped.
pub fn read_tail(path: &Path, n: usize) -> std::io::Result<Vec<RecentEvent>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut by the seek.
        lines.remove(0);
    }
    Ok(lines
        .iter()
        .rev()
        .filter_map(|l| Record::parse_line(l).ok())
        .filter(|r| !r.is_checkpoint() && r.get("event").is_some())
        .take(n)
        .map(|r| event_of(&r))
        .collect())
}

fn event_of(r: &Record) -> RecentEvent {
    let field = |k: &str| r.get(k).map(unescape).unwrap_or_default();
    let reason = match field("reason") {
        s if s.is_empty() => field("detail"),
        s => s,
    };
    RecentEvent {
        serial: r.serial().unwrap_or(0),
        time: field("time"),
        event: field("event"),
        operation: field("operation"),
        outcome: field("outcome"),
        reason,
        user: field("user"),
        client: field("client"),
        uid: field("uid"),
        name: field("name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_skips_checkpoints_and_a_cut_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut text = String::new();
        // Enough filler that the tail read starts mid-line.
        for i in 1..=2000 {
            text.push_str(&format!(
                "v=1 serial={i} time=2026-01-01T00:00:00.000Z event=kmip operation=Get \
                 outcome=success user=alice uid=key-{i} hash=00\n"
            ));
        }
        text.push_str("v=1 serial=2001 event=checkpoint hash=00 sig=00\n");
        text.push_str(
            "v=1 serial=2002 event=kmip operation=Destroy outcome=failure \
             reason=PermissionDenied user=b\\x20ob uid=k hash=00\n",
        );
        std::fs::write(&path, text).unwrap();
        let events = read_tail(&path, 3).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].serial, 2002);
        assert_eq!(events[0].reason, "PermissionDenied");
        assert_eq!(events[0].user, "b ob");
        assert_eq!(events[1].serial, 2000);
        assert_eq!(events[2].uid, "key-1999");
        assert!(read_tail(&dir.path().join("missing"), 3).is_err());
    }
}
