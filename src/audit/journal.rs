//! The local audit journal, the source of truth: one append-only file of `key=value` lines
//! written by a single thread (a [`GroupCommit`] worker with this module as its backend).
//! Callers queue events and block; the thread takes every event
//! waiting, gives each the next serial, chains it to the previous record's hash, writes the
//! group with one write and one fdatasync, and only then acknowledges the callers and hands
//! the records to the sinks. With [`SyncPolicy::ByClass`] (the default) the records of reads
//! ([`Durability::Deferred`]) are acknowledged after the write and fdatasync'd on a timer,
//! while a group holding any other record is synced before it is acknowledged; with
//! [`SyncPolicy::Interval`] (an operator's choice) every group is acknowledged after the write.
//! A group holding a checkpoint is always synced first. A signed checkpoint follows every N records and is written at
//! least every S seconds, also when idle. If a write fails the file is cut back to its last
//! good length, nothing is acknowledged, and the journal reports itself unavailable until a
//! write succeeds again (fail closed).

use super::record::{Record, GENESIS, HASH, SIG, VERSION};
use super::signer::{PublicKey, Signer};
use super::sink::{Sink, SinkProbe};
use super::{format_time_ms, now_ms, AuditEvent};
use crate::crypto::backend::prim::digest;
use crate::group_commit::{Backend, GroupCommit, Limits};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of the journal's end is read at start to find the last record.
const TAIL_BYTES: u64 = 64 * 1024;

/// Why an audit record could not be written, or the journal opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The journal could not be written: requests are refused until it can.
    #[error("audit journal unavailable")]
    Unavailable,
    /// The journal file could not be opened or read at start.
    #[error("audit journal {path}: {source}")]
    Open {
        /// The journal path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The journal's last record does not parse, so the chain cannot be continued.
    #[error(
        "audit journal {0}: the last record is unreadable; verify it with `akm audit verify` \
         and move it aside"
    )]
    Corrupt(String),
    /// The journal thread has stopped.
    #[error("audit journal stopped")]
    Stopped,
}

/// How the journal is kept.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    /// The journal file.
    pub path: PathBuf,
    /// The server name put in every record.
    pub server_name: String,
    /// A checkpoint after this many records.
    pub checkpoint_every: u64,
    /// A checkpoint at least this often, in seconds.
    pub checkpoint_secs: u64,
    /// When written records reach the disk.
    pub sync: SyncPolicy,
}

/// When the journal's writes are made durable (`[audit] sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Every group is fdatasync'd before its callers are acknowledged: an acknowledged record
    /// survives a power loss.
    #[default]
    EveryRecord,
    /// Records appended as [`Durability::Deferred`] (reads) are kept as with `Interval`,
    /// every other record as with `EveryRecord`: a group is fdatasync'd before it is
    /// acknowledged if it holds one record that may not wait (that sync also covers the
    /// deferred records written before it).
    ByClass(Duration),
    /// Callers are acknowledged once their records are written (write(2)), so they survive a
    /// crash or kill of the process; the file is fdatasync'd at most this long after the first
    /// write not yet synced, so a power loss can lose the records of that long. Groups that
    /// hold a checkpoint (start, stop, rotation, every N records, every S seconds) are synced
    /// before they are acknowledged.
    Interval(Duration),
}

/// Whether a caller waits for its records to be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged once fdatasync'd (with [`SyncPolicy::Interval`]: once written).
    Synced,
    /// With [`SyncPolicy::ByClass`] (or `Interval`): acknowledged once written, fdatasync'd
    /// within the interval. Only for requests that changed nothing (reads).
    Deferred,
}

/// What the journal thread is asked to do, in arrival order.
enum Msg {
    /// Chain and write these events.
    Append(Vec<AuditEvent>, Durability),
    /// Write a checkpoint with this reason at the end of the group.
    Checkpoint(&'static str),
    /// Close the file with a `rotate` checkpoint and continue in a new one (a group of its
    /// own, so whatever was queued before it goes to the old file).
    Reopen,
}

/// What one request left in the group being written.
enum Staged {
    /// Its records (or checkpoint) are in the group.
    InGroup,
    /// It panicked while its records were made; they were taken out again.
    Dropped,
    /// A reopen, done when the group is written.
    Reopen,
}

/// Records of refused connections written per second at most; more are counted and the
/// count goes into the next one written, so a flood of bad handshakes cannot fill the disk.
const REFUSALS_PER_SECOND: u32 = 20;

/// The per-second budget for refused-connection records.
struct RefusalBudget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

/// Where the journal stands, kept by the journal thread in atomics so the status listener
/// reads it without waiting on the thread.
#[derive(Debug, Default)]
struct Progress {
    /// Serial of the last durable record.
    serial: AtomicU64,
    /// Serial of the last durable checkpoint (0: none since start).
    checkpoint_serial: AtomicU64,
    /// When that checkpoint was written, milliseconds since the epoch.
    checkpoint_ms: AtomicI64,
    /// Callers waiting for the journal thread to write their records.
    waiting: AtomicUsize,
    /// fdatasyncs of the journal since start (successful or not).
    syncs: AtomicU64,
}

/// A snapshot of the journal's state for status and metrics.
#[derive(Debug, Clone, Default)]
pub struct JournalStatus {
    /// Whether the last write succeeded (requests are refused while it did not).
    pub healthy: bool,
    /// Serial of the last durable record (with [`SyncPolicy::Interval`]: the last written;
    /// it is durable within the interval).
    pub serial: u64,
    /// Serial of the last checkpoint written since start (0: none yet).
    pub checkpoint_serial: u64,
    /// When it was written, milliseconds since the epoch (0: none yet).
    pub checkpoint_ms: i64,
    /// Callers waiting for their records to be written (the journal's queue depth).
    pub waiting: usize,
    /// Per sink: its receiver and how many durable records it has not delivered.
    pub sinks: Vec<(String, u64)>,
}

/// Counts a caller as waiting on the journal thread until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The audit journal: a handle to the journal thread.
pub struct Audit {
    progress: Arc<Progress>,
    probes: Vec<SinkProbe>,
    refusals: Mutex<RefusalBudget>,
    /// Throttles the warning that refusal records are being summarised: under a lasting flood
    /// it would otherwise come once a second.
    refusal_warning: crate::logthrottle::LogThrottle,
    journal: GroupCommit<Writer>,
    healthy: Arc<AtomicBool>,
    public_key: PublicKey,
    path: PathBuf,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Audit({})", self.path.display())
    }
}

impl Audit {
    /// Opens (or creates) the journal, continues its chain, writes a `start` record and a
    /// checkpoint, and starts the journal thread that feeds `sinks`.
    pub fn open(
        settings: JournalSettings,
        signer: Signer,
        sinks: Vec<Sink>,
    ) -> Result<Audit, AuditError> {
        let public_key = signer.public_key();
        let path = settings.path.clone();
        let probes = sinks.iter().map(Sink::probe).collect();
        let mut writer = Writer::open(settings, signer, sinks)?;
        let progress = Arc::new(Progress::default());
        progress.serial.store(writer.serial, Ordering::Relaxed);
        writer.progress = progress.clone();
        let mut start = writer.lifecycle("start");
        start.push("version", env!("CARGO_PKG_VERSION"));
        start.push("crypto_module", crate::crypto::backend::module().describe());
        writer
            .write_group(vec![start], Some("start"), true)
            .map_err(|_| AuditError::Unavailable)?;
        let healthy = Arc::new(AtomicBool::new(true));
        writer.healthy = healthy.clone();
        writer.deadline = Instant::now() + writer.period();
        let journal = GroupCommit::start("akm-audit-journal", Limits::default(), writer).map_err(
            |source| AuditError::Open {
                path: path.display().to_string(),
                source,
            },
        )?;
        Ok(Audit {
            progress,
            probes,
            refusals: Mutex::new(RefusalBudget {
                window: Instant::now(),
                used: 0,
                suppressed: 0,
            }),
            refusal_warning: crate::logthrottle::LogThrottle::new(1, Duration::from_secs(60)),
            journal,
            healthy,
            public_key,
            path,
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key that verifies this journal's checkpoints.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// fdatasyncs of the journal file since start.
    #[cfg(test)]
    fn syncs(&self) -> u64 {
        self.progress.syncs.load(Ordering::Relaxed)
    }

    /// Whether the last write succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Where the journal and its sinks stand (cheap: atomics and one lock per sink).
    pub fn status(&self) -> JournalStatus {
        let p = &self.progress;
        let serial = p.serial.load(Ordering::Relaxed);
        JournalStatus {
            healthy: self.is_healthy(),
            serial,
            checkpoint_serial: p.checkpoint_serial.load(Ordering::Relaxed),
            checkpoint_ms: p.checkpoint_ms.load(Ordering::Relaxed),
            waiting: p.waiting.load(Ordering::Relaxed),
            sinks: self
                .probes
                .iter()
                .map(|s| (s.name().to_owned(), s.backlog(serial)))
                .collect(),
        }
    }

    fn ask(&self, msg: Msg) -> Result<(), AuditError> {
        self.progress.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.progress.waiting);
        self.journal.call(msg).map_err(|_| AuditError::Stopped)?
    }

    /// Writes `events` and returns once they are durable, or with [`SyncPolicy::Interval`]
    /// once they are written (blocking: call off the async workers). An error means none of
    /// them was written.
    pub fn record(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        self.record_as(events, Durability::Synced)
    }

    /// Like [`Audit::record`]; with [`Durability::Deferred`] (a request that changed nothing)
    /// and [`SyncPolicy::ByClass`] it returns once the events are written (they survive a
    /// kill of the process), and they are fdatasync'd within the interval.
    pub fn record_as(
        &self,
        events: Vec<AuditEvent>,
        durability: Durability,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        self.ask(Msg::Append(events, durability))
    }

    /// Records a connection refused before any request, within a budget of
    /// `REFUSALS_PER_SECOND`: beyond it the event is only counted, and the count of those
    /// left out is carried by the next one written (`suppressed=N`).
    pub fn record_refusal(&self, mut event: AuditEvent) -> Result<(), AuditError> {
        {
            let Ok(mut b) = self.refusals.lock() else {
                return self.record(vec![event]);
            };
            if b.window.elapsed() >= Duration::from_secs(1) {
                b.window = Instant::now();
                b.used = 0;
            }
            if b.used >= REFUSALS_PER_SECOND {
                if b.suppressed == 0 {
                    self.warn_refusals_summarised();
                }
                b.suppressed += 1;
                return Ok(());
            }
            b.used += 1;
            if b.suppressed > 0 {
                event.suppressed = Some(std::mem::take(&mut b.suppressed));
            }
        }
        self.record(vec![event])
    }

    /// Warns that refusal records are being summarised: once, then at most once a minute.
    fn warn_refusals_summarised(&self) {
        let verdict = self.refusal_warning.event(String::new);
        if let Some(s) = verdict.summary {
            tracing::warn!(
                target: "akm::audit",
                "many refused connections: audit records of them were summarised {} more times in the last {} s",
                s.suppressed,
                s.secs
            );
        }
        if verdict.log {
            tracing::warn!(target: "akm::audit", "many refused connections: audit records of them are being summarised");
        }
    }

    /// Succeeds when the journal can take records: at once if the last write worked, else
    /// after writing a `resume` checkpoint, which proves the journal is writable again.
    /// Requests are refused before they run while this fails.
    pub fn ready(&self) -> Result<(), AuditError> {
        if self.is_healthy() {
            return Ok(());
        }
        self.ask(Msg::Checkpoint("resume"))
    }

    /// Closes the current journal file with a `rotate` checkpoint and continues the chain in
    /// a new file at the same path (after logrotate renamed the old one, on SIGHUP).
    pub fn reopen(&self) -> Result<(), AuditError> {
        self.ask(Msg::Reopen)
    }

    /// Writes a `stop` record and a final checkpoint, lets the sinks deliver what they hold
    /// (briefly), and stops the thread. Later calls fail with [`AuditError::Stopped`].
    pub fn close(&self) {
        self.journal.stop();
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
    }
}

/// The journal thread's state.
struct Writer {
    settings: JournalSettings,
    signer: Signer,
    sinks: Vec<Sink>,
    file: File,
    /// Length of the file up to the last durable record.
    len: u64,
    /// Serial of the last durable record.
    serial: u64,
    /// Hash of the last durable record.
    head: String,
    /// Records written since the last checkpoint.
    since_checkpoint: u64,
    /// When the oldest write not yet fdatasync'd was made ([`SyncPolicy::Interval`]).
    unsynced: Option<Instant>,
    healthy: Arc<AtomicBool>,
    /// A failed write could not be cut back yet: cut before appending anything else.
    cut_pending: bool,
    /// Published for [`Audit::status`].
    progress: Arc<Progress>,
    /// When the next periodic checkpoint is due.
    deadline: Instant,
    /// The records of the group being collected.
    group: Vec<Record>,
    /// The checkpoint closing that group, if a request asked for one.
    group_checkpoint: Option<&'static str>,
    /// Where the records of the request being staged begin in `group`.
    staged_from: usize,
    /// Whether the group holds a record appended as [`Durability::Synced`].
    group_synced: bool,
}

impl Writer {
    fn open(
        settings: JournalSettings,
        signer: Signer,
        sinks: Vec<Sink>,
    ) -> Result<Writer, AuditError> {
        let open_err = |source| AuditError::Open {
            path: settings.path.display().to_string(),
            source,
        };
        let (file, len, tail) = open_journal(&settings.path).map_err(open_err)?;
        let (serial, head) = match tail {
            Some(t) => t,
            // An empty or new file continues the chain of the rotated file before it.
            None => previous_tail(&settings.path)?.unwrap_or((0, GENESIS.to_owned())),
        };
        Ok(Writer {
            settings,
            signer,
            sinks,
            file,
            len,
            serial,
            head,
            since_checkpoint: 0,
            unsynced: None,
            healthy: Arc::new(AtomicBool::new(true)),
            cut_pending: false,
            progress: Arc::default(),
            deadline: Instant::now(),
            group: Vec::new(),
            group_checkpoint: None,
            staged_from: 0,
            group_synced: false,
        })
    }

    /// How often a checkpoint is written at least.
    fn period(&self) -> Duration {
        Duration::from_secs(self.settings.checkpoint_secs.max(1))
    }

    /// A periodic checkpoint if one is due: written also when idle or when the queue never
    /// empties, since a verifier checks that checkpoints keep coming.
    fn periodic_checkpoint(&mut self) {
        if Instant::now() < self.deadline {
            return;
        }
        self.deadline = if self.write_group(Vec::new(), Some("periodic"), true).is_ok() {
            Instant::now() + self.period()
        } else {
            // Retry soon rather than a whole period later.
            Instant::now() + Duration::from_secs(1)
        };
    }

    /// The fields every record starts with; `prev` and `hash` are added when it is chained.
    fn base(&self, r: &mut Record) {
        r.push("v", VERSION);
        // Replaced by the real serial when the record is chained.
        r.push("serial", "0");
        r.push("time", format_time_ms(now_ms()));
        r.push("server", &self.settings.server_name);
    }

    /// A server lifecycle record (`start`, `stop`).
    fn lifecycle(&self, event: &str) -> Record {
        let mut r = Record::default();
        self.base(&mut r);
        r.push("event", event);
        r
    }

    fn checkpoint_record(&self, reason: &str) -> Record {
        let mut r = Record::default();
        self.base(&mut r);
        r.push("event", "checkpoint");
        r.push("reason", reason);
        r.push("key_id", self.signer.key_id());
        r.push("every", self.settings.checkpoint_every.to_string());
        r.push("secs", self.settings.checkpoint_secs.to_string());
        r
    }

    /// Chains `records` (with a checkpoint after every N, and one at the end if
    /// `final_checkpoint` names a reason), writes them with one write and one fdatasync
    /// (deferred by the policy unless they hold a checkpoint, or `synced` asks for it under
    /// [`SyncPolicy::ByClass`]), and delivers them to the sinks. On failure the file is cut
    /// back and the state is unchanged.
    fn write_group(
        &mut self,
        records: Vec<Record>,
        final_checkpoint: Option<&str>,
        synced: bool,
    ) -> Result<(), AuditError> {
        let mut c = Chain {
            serial: self.serial,
            head: self.head.clone(),
            since: self.since_checkpoint,
            text: String::new(),
            records: Vec::with_capacity(records.len() + 1),
        };
        let n = records.len();
        for (i, r) in records.into_iter().enumerate() {
            c.push(r, &self.signer);
            // A checkpoint closing the group anyway makes the count checkpoint redundant.
            let closing = i + 1 == n && final_checkpoint.is_some();
            if c.since >= self.settings.checkpoint_every && !closing {
                c.push(self.checkpoint_record("count"), &self.signer);
            }
        }
        if let Some(reason) = final_checkpoint {
            c.push(self.checkpoint_record(reason), &self.signer);
        }
        let Chain {
            serial,
            head,
            since,
            text,
            records: chained,
        } = c;
        if chained.is_empty() {
            return Ok(());
        }
        // A checkpoint is what a verifier trusts: it is on disk before anyone is told.
        let durable = final_checkpoint.is_some()
            || chained.iter().any(Record::is_checkpoint)
            || (synced && !matches!(self.settings.sync, SyncPolicy::Interval(_)));
        let synced = match self.append(text.as_bytes(), durable) {
            Ok(synced) => synced,
            Err(e) => {
                self.fail(&e);
                return Err(AuditError::Unavailable);
            }
        };
        // Only a synced write proves the journal is writable again after a failed sync.
        if synced && !self.healthy.swap(true, Ordering::AcqRel) {
            tracing::warn!(target: "akm::audit", serial, "audit journal writable again; accepting requests");
        }
        self.serial = serial;
        self.head = head;
        self.since_checkpoint = since;
        self.len += text.len() as u64;
        self.progress.serial.store(serial, Ordering::Relaxed);
        if let Some(cp) = chained.iter().rev().find(|r| r.is_checkpoint()) {
            let cp_serial = cp.serial().unwrap_or(serial);
            self.progress
                .checkpoint_serial
                .store(cp_serial, Ordering::Relaxed);
            self.progress
                .checkpoint_ms
                .store(now_ms(), Ordering::Relaxed);
        }
        let shared: Vec<Arc<Record>> = chained.into_iter().map(Arc::new).collect();
        for sink in &self.sinks {
            sink.deliver(&shared);
        }
        Ok(())
    }

    /// Writes `bytes`, and fdatasyncs them unless the policy defers that and `durable` is
    /// false; true if they were synced.
    fn append(&mut self, bytes: &[u8], durable: bool) -> std::io::Result<bool> {
        if self.cut_pending {
            // Appending after the bytes of a failed write would chain onto records no
            // caller was told about (and that a failed fsync may have lost).
            self.file.set_len(self.len)?;
            self.cut_pending = false;
        }
        self.file.write_all(bytes)?;
        if durable || self.settings.sync == SyncPolicy::EveryRecord {
            // After a failed fdatasync the kernel may have dropped the pages it could not
            // write and will not report that again (the "fsyncgate" lesson), so those bytes
            // are never trusted: `fail` cuts the file back to the last synced length and the
            // records are chained again from the last durable one. Bytes synced before are
            // not affected. fdatasync covers every earlier write to the file too.
            self.progress.syncs.fetch_add(1, Ordering::Relaxed);
            self.file.sync_data()?;
            self.unsynced = None;
            return Ok(true);
        }
        if self.unsynced.is_none() {
            self.unsynced = Some(Instant::now());
        }
        Ok(false)
    }

    /// When the deferred fdatasync is due, if a write is waiting for one.
    fn sync_due(&self) -> Option<Instant> {
        match self.settings.sync {
            SyncPolicy::Interval(every) | SyncPolicy::ByClass(every) => {
                self.unsynced.map(|first| first + every)
            }
            SyncPolicy::EveryRecord => None,
        }
    }

    /// The deferred fdatasync ([`SyncPolicy::Interval`]). If it fails, records already
    /// acknowledged may not be on disk and cannot be taken back: the error and the last serial
    /// written are logged, and the journal reports itself unavailable (requests are refused)
    /// until a checkpoint can be written and synced again.
    fn sync_now(&mut self) {
        self.unsynced = None;
        self.progress.syncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.file.sync_data() {
            if self.healthy.swap(false, Ordering::AcqRel) {
                tracing::error!(
                    target: "akm::audit",
                    path = %self.settings.path.display(),
                    serial = self.serial,
                    error = %e,
                    "audit journal fdatasync failed: records up to this serial may not be on disk; \
                     refusing requests until it can be synced (fail closed)"
                );
            }
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        // A torn record left in the file would break the chain for every later record.
        if let Err(cut) = self.file.set_len(self.len) {
            self.cut_pending = true;
            tracing::error!(target: "akm::audit", error = %cut, "audit journal: cannot cut back a partial write");
        }
        if self.healthy.swap(false, Ordering::AcqRel) {
            tracing::error!(
                target: "akm::audit",
                path = %self.settings.path.display(),
                error = %e,
                "audit journal cannot be written: refusing requests until it can (fail closed)"
            );
        }
    }

    fn reopen(&mut self) -> Result<(), AuditError> {
        self.write_group(Vec::new(), Some("rotate"), true)?;
        let (file, len, _) = open_journal(&self.settings.path).map_err(|source| {
            tracing::error!(target: "akm::audit", error = %source, "audit journal: reopen failed");
            AuditError::Open {
                path: self.settings.path.display().to_string(),
                source,
            }
        })?;
        self.file = file;
        self.len = len;
        self.write_group(Vec::new(), Some("reopen"), true)
    }
}

/// The journal thread is a group-commit worker: a group's records are chained, written with
/// one write and (by the sync policy) one fdatasync, and only then are their callers answered.
impl Backend for Writer {
    type Job = Msg;
    type Applied = Staged;
    type Reply = Result<(), AuditError>;

    fn alone(msg: &Msg) -> bool {
        matches!(msg, Msg::Reopen)
    }

    fn apply(&mut self, msg: Msg) -> Staged {
        self.staged_from = self.group.len();
        match msg {
            Msg::Append(events, durability) => {
                self.group_synced |= durability == Durability::Synced;
                for e in events {
                    let mut r = Record::default();
                    self.base(&mut r);
                    e.write_fields(&mut r);
                    self.group.push(r);
                }
                Staged::InGroup
            }
            Msg::Checkpoint(reason) => {
                self.group_checkpoint = Some(reason);
                Staged::InGroup
            }
            Msg::Reopen => Staged::Reopen,
        }
    }

    fn apply_panicked(&mut self) -> Staged {
        self.group.truncate(self.staged_from);
        Staged::Dropped
    }

    fn commit(&mut self, staged: Vec<Staged>) -> Vec<Result<(), AuditError>> {
        if let [Staged::Reopen] = staged.as_slice() {
            return vec![self.reopen()];
        }
        let records = std::mem::take(&mut self.group);
        let checkpoint = self.group_checkpoint.take();
        let synced = std::mem::take(&mut self.group_synced);
        let result = self.write_group(records, checkpoint, synced);
        if result.is_ok() && checkpoint.is_some() {
            self.deadline = Instant::now() + self.period();
        }
        staged
            .into_iter()
            .map(|s| match (s, &result) {
                (Staged::InGroup, Ok(())) => Ok(()),
                _ => Err(AuditError::Unavailable),
            })
            .collect()
    }

    fn abandon(&mut self) {
        self.group.clear();
        self.group_checkpoint = None;
        self.group_synced = false;
        // Bytes of the failed group may be in the file unacknowledged: cut back to the last
        // good record before anything else is appended.
        self.cut_pending = true;
    }

    fn refused(&self) -> Result<(), AuditError> {
        Err(AuditError::Unavailable)
    }

    fn wake_at(&self) -> Option<Instant> {
        Some(
            self.sync_due()
                .map_or(self.deadline, |due| due.min(self.deadline)),
        )
    }

    fn tick(&mut self) {
        self.periodic_checkpoint();
        if self.sync_due().is_some_and(|due| Instant::now() >= due) {
            self.sync_now();
        }
    }

    fn shutdown(&mut self) {
        let stop = self.lifecycle("stop");
        if self.write_group(vec![stop], Some("final"), true).is_err() {
            tracing::error!(target: "akm::audit", "audit journal: could not write the final checkpoint");
        }
        for sink in &mut self.sinks {
            sink.stop();
        }
    }
}

/// Records being chained: the position after each, and the lines to write.
struct Chain {
    serial: u64,
    head: String,
    since: u64,
    text: String,
    records: Vec<Record>,
}

impl Chain {
    /// Gives `r` the next serial, links it to the head, hashes it (and signs it if it is a
    /// checkpoint) and appends its line.
    fn push(&mut self, mut r: Record, signer: &Signer) {
        self.serial = self.serial.saturating_add(1);
        set_field(&mut r, "serial", self.serial.to_string());
        r.push("prev", &self.head);
        // Without `hash` and `sig` yet, the line is exactly the record's canonical bytes:
        // hashed where they are written, in one pass.
        let start = self.text.len();
        r.write_line(&mut self.text);
        let hash = hex::encode(digest::digest(
            &digest::SHA256,
            &self.text.as_bytes()[start..],
        ));
        debug_assert_eq!(hash, r.compute_hash(), "a line is not its canonical bytes");
        r.push(HASH, &hash);
        if r.is_checkpoint() {
            // The hash covers the serial, time, key id and (through `prev`) the chain head.
            r.push(SIG, signer.sign(hash.as_bytes()));
            self.since = 0;
        } else {
            self.since += 1;
        }
        for (k, v) in r.fields.iter().filter(|(k, _)| k == HASH || k == SIG) {
            self.text.push(' ');
            self.text.push_str(k);
            self.text.push('=');
            self.text.push_str(v);
        }
        self.head = hash;
        self.text.push('\n');
        self.records.push(r);
    }
}

fn set_field(r: &mut Record, key: &str, value: String) {
    if let Some(f) = r.fields.iter_mut().find(|(k, _)| k == key) {
        f.1 = value;
    }
}

/// Opens the journal for appending (0600, created if missing, its directory synced), cuts off
/// a torn last line left by a crash, and returns the last record's serial and hash.
fn open_journal(path: &Path) -> std::io::Result<(File, u64, Option<Tail>)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    if !existed {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
    }
    let (good_len, last) = last_line(&mut file)?;
    let len = file.metadata()?.len();
    if good_len < len {
        tracing::warn!(
            target: "akm::audit",
            path = %path.display(),
            bytes = len - good_len,
            "audit journal ends in a partial record (interrupted write); cutting it off"
        );
        file.set_len(good_len)?;
        file.sync_data()?;
    }
    let tail = match last {
        None => None,
        Some(line) => Some(tail_of(&line).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "last record unreadable")
        })?),
    };
    Ok((file, good_len, tail))
}

/// A chain position: the last record's serial and hash.
type Tail = (u64, String);

fn tail_of(line: &str) -> Option<Tail> {
    let r = Record::parse_line(line).ok()?;
    Some((r.serial().ok()?, r.get(HASH)?.to_owned()))
}

/// The chain position at the end of the rotated file `<path>.1`, if there is one.
fn previous_tail(path: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let mut rotated = path.as_os_str().to_owned();
    rotated.push(".1");
    let Ok(mut file) = File::open(&rotated) else {
        return Ok(None);
    };
    let (_, last) = last_line(&mut file).map_err(|source| AuditError::Open {
        path: PathBuf::from(&rotated).display().to_string(),
        source,
    })?;
    match last {
        None => Ok(None),
        Some(line) => tail_of(&line)
            .map(Some)
            .ok_or_else(|| AuditError::Corrupt(PathBuf::from(&rotated).display().to_string())),
    }
}

/// The length up to the end of the last complete line, and that line.
fn last_line(file: &mut File) -> std::io::Result<(u64, Option<String>)> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut buf)?;
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        if start == 0 {
            // Empty, or one torn line: nothing durable yet.
            return Ok((0, None));
        }
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "last record too long",
        ));
    };
    let line_start = buf[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    if line_start == 0 && start > 0 {
        // The last line is longer than the tail read: not a record akm wrote.
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "last record too long",
        ));
    }
    let line = String::from_utf8_lossy(&buf[line_start..end]).into_owned();
    Ok((start + end as u64 + 1, Some(line)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify::{self, FaultKind, Options};

    fn settings(path: &Path) -> JournalSettings {
        JournalSettings {
            path: path.to_owned(),
            server_name: "unit".into(),
            checkpoint_every: 3,
            checkpoint_secs: 60,
            sync: SyncPolicy::EveryRecord,
        }
    }

    fn signer() -> Signer {
        Signer::from_seed(&[9; 32])
    }

    fn event(user: &str) -> AuditEvent {
        AuditEvent {
            event: "kmip",
            user: Some(user.into()),
            ..AuditEvent::default()
        }
    }

    fn verify_ok(files: &[PathBuf]) -> verify::Report {
        let options = Options {
            public_keys: vec![signer().public_key()],
            max_age_secs: None,
            first_serial: None,
            now_ms: crate::audit::now_ms(),
        };
        let report = verify::verify_files(files, &options).unwrap();
        assert!(report.fault.is_none(), "{:?}", report.fault);
        report
    }

    fn lines(path: &Path) -> Vec<Record> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| Record::parse_line(l).unwrap())
            .collect()
    }

    #[test]
    fn serials_continue_across_restarts_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(settings(&path), signer(), vec![]).unwrap();
        audit.record(vec![event("a"), event("b")]).unwrap();
        audit.close();
        let first = lines(&path);
        // start, checkpoint(start), a, b, stop, checkpoint(final)
        assert_eq!(first.len(), 6);
        // A crash in the middle of a write leaves a partial line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"v=1 serial=7 time=")
            .unwrap();
        let audit = Audit::open(settings(&path), signer(), vec![]).unwrap();
        audit.record(vec![event("c")]).unwrap();
        drop(audit);
        let all = lines(&path);
        assert_eq!(all[6].serial().unwrap(), 7);
        assert_eq!(all[6].get("event"), Some("start"));
        assert!(all.iter().any(|r| r.get("user") == Some("c")));
        verify_ok(&[path]);
    }

    #[test]
    fn with_interval_sync_records_are_written_before_the_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut s = settings(&path);
        s.checkpoint_every = 1000;
        // Longer than the test: only the write, not the deferred fdatasync, can put the
        // record in the file before `record` returns.
        s.sync = SyncPolicy::Interval(Duration::from_secs(3600));
        let audit = Audit::open(s, signer(), vec![]).unwrap();
        audit.record(vec![event("a")]).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("user=a"));
        // A checkpoint group (here the reopen's) is synced whatever the policy.
        audit.reopen().unwrap();
        audit.record(vec![event("b")]).unwrap();
        assert!(audit.is_healthy());
        audit.close();
        let recs = lines(&path);
        assert_eq!(recs.last().unwrap().get("reason"), Some("final"));
        verify_ok(&[path]);
    }

    #[test]
    fn by_class_a_reads_record_waits_for_no_sync_and_any_other_record_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let policy = |sync| {
            let mut s = settings(&path);
            s.checkpoint_every = 1000;
            s.sync = sync;
            Audit::open(s, signer(), vec![]).unwrap()
        };
        // Longer than the test: a deferred sync never runs on its timer here.
        let hour = Duration::from_secs(3600);
        let syncs_for = |audit: &Audit, user: &str, durability| {
            let before = audit.syncs();
            audit.record_as(vec![event(user)], durability).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(&format!("user={user}")), "{user} not written");
            audit.syncs() - before
        };
        let audit = policy(SyncPolicy::ByClass(hour));
        assert_eq!(syncs_for(&audit, "read", Durability::Deferred), 0);
        assert_eq!(syncs_for(&audit, "write", Durability::Synced), 1);
        drop(audit);
        let audit = policy(SyncPolicy::EveryRecord);
        assert_eq!(syncs_for(&audit, "strict", Durability::Deferred), 1);
        drop(audit);
        let audit = policy(SyncPolicy::Interval(hour));
        assert_eq!(syncs_for(&audit, "lazy", Durability::Synced), 0);
        drop(audit);
        verify_ok(&[path]);
    }

    #[test]
    fn with_a_short_interval_the_deferred_sync_runs_and_records_keep_flowing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut s = settings(&path);
        s.checkpoint_every = 1000;
        s.sync = SyncPolicy::Interval(Duration::from_millis(1));
        let audit = Audit::open(s, signer(), vec![]).unwrap();
        for i in 0..20 {
            audit.record(vec![event(&format!("u{i}"))]).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(audit.is_healthy());
        drop(audit);
        let report = verify_ok(std::slice::from_ref(&path));
        assert_eq!(report.first, Some(1));
        assert_eq!(
            lines(&path)
                .iter()
                .filter(|r| r.get("event") == Some("kmip"))
                .count(),
            20
        );
    }

    #[test]
    fn checkpoints_come_every_n_records_and_calls_fail_after_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(settings(&path), signer(), vec![]).unwrap();
        let many: Vec<AuditEvent> = (0..7).map(|i| event(&format!("u{i}"))).collect();
        audit.record(many).unwrap();
        audit.record(vec![]).unwrap();
        audit.close();
        assert!(matches!(
            audit.record(vec![event("late")]),
            Err(AuditError::Stopped)
        ));
        let recs = lines(&path);
        let reasons: Vec<&str> = recs
            .iter()
            .filter(|r| r.is_checkpoint())
            .map(|r| r.get("reason").unwrap())
            .collect();
        // start; after u0..u2 (3 records); after u3..u5; final after u6 and stop.
        assert_eq!(reasons, ["start", "count", "count", "final"]);
        verify_ok(&[path]);
    }

    #[test]
    fn a_journal_moved_away_without_reopen_continues_from_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(settings(&path), signer(), vec![]).unwrap();
        audit.record(vec![event("a")]).unwrap();
        audit.reopen().unwrap();
        audit.record(vec![event("b")]).unwrap();
        drop(audit);
        let rotated = dir.path().join("audit.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        // Restarted after logrotate renamed the file but before it was reopened.
        let audit = Audit::open(settings(&path), signer(), vec![]).unwrap();
        drop(audit);
        let report = verify_ok(&[rotated.clone(), path.clone()]);
        assert_eq!(report.first, Some(1));
        assert_eq!(
            lines(&path)[0].serial().unwrap(),
            lines(&rotated).len() as u64 + 1
        );
    }

    #[test]
    fn an_unreadable_last_record_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "this is not a record\n").unwrap();
        let err = Audit::open(settings(&path), signer(), vec![]).unwrap_err();
        assert!(matches!(err, AuditError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("audit.log"), "{err}");
    }

    #[test]
    fn an_empty_input_is_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.log");
        std::fs::write(&path, "").unwrap();
        let options = Options {
            public_keys: vec![signer().public_key()],
            max_age_secs: Some(60),
            first_serial: None,
            now_ms: 0,
        };
        let report = verify::verify_file(&path, &options).unwrap();
        assert_eq!(report.fault.unwrap().kind, FaultKind::Truncated);
    }

    #[test]
    fn a_live_journal_passes_with_max_age_and_fails_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(settings(&path), signer(), vec![]).unwrap();
        audit.record(vec![event("a")]).unwrap();
        let copy = dir.path().join("copy.log");
        std::fs::copy(&path, &copy).unwrap();
        drop(audit);
        let mut options = Options {
            public_keys: vec![signer().public_key()],
            max_age_secs: Some(120),
            first_serial: None,
            now_ms: crate::audit::now_ms(),
        };
        assert!(verify::verify_file(&copy, &options)
            .unwrap()
            .fault
            .is_none());
        options.now_ms += 3_600_000;
        let fault = verify::verify_file(&copy, &options).unwrap().fault.unwrap();
        assert_eq!((fault.kind, fault.serial), (FaultKind::Truncated, 4));
        options.max_age_secs = None;
        let fault = verify::verify_file(&copy, &options).unwrap().fault.unwrap();
        assert_eq!(fault.kind, FaultKind::Truncated);
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn a_flood_of_refused_connections_is_summarised_and_idle_checkpoints_come() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let settings = JournalSettings {
            path: path.clone(),
            server_name: "unit".into(),
            checkpoint_every: 1000,
            checkpoint_secs: 1,
            sync: SyncPolicy::EveryRecord,
        };
        let audit = Audit::open(settings, Signer::from_seed(&[9; 32]), vec![]).unwrap();
        let refused = || AuditEvent {
            event: "tls",
            detail: Some("TLS handshake failed".into()),
            ..AuditEvent::default()
        };
        let started = Instant::now();
        for _ in 0..(REFUSALS_PER_SECOND + 30) {
            audit.record_refusal(refused()).unwrap();
        }
        // Within one second only the budget is written (the loop is far quicker than that).
        if started.elapsed() < Duration::from_millis(900) {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                text.matches("event=tls").count(),
                REFUSALS_PER_SECOND as usize
            );
        }
        // The next window's first record carries the count left out; an idle second brings a
        // periodic checkpoint.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("reason=periodic") {
                break;
            }
            assert!(Instant::now() < deadline, "no periodic checkpoint: {text}");
        }
        audit.record_refusal(refused()).unwrap();
        drop(audit);
        let text = std::fs::read_to_string(&path).unwrap();
        let total: u64 = text
            .split([' ', '\n'])
            .filter_map(|f| f.strip_prefix("suppressed="))
            .map(|n| n.parse::<u64>().unwrap())
            .sum();
        assert!(total > 0, "{text}");
        let written = text.matches("event=tls").count() as u64;
        assert_eq!(
            written + total,
            u64::from(REFUSALS_PER_SECOND) + 31,
            "{text}"
        );
    }
}

#[cfg(test)]
mod busy_tests {
    use super::*;

    #[test]
    fn a_journal_that_is_never_idle_still_writes_periodic_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let settings = JournalSettings {
            path: path.clone(),
            server_name: "unit".into(),
            checkpoint_every: 1_000_000,
            checkpoint_secs: 1,
            sync: SyncPolicy::EveryRecord,
        };
        let audit = Arc::new(Audit::open(settings, Signer::from_seed(&[9; 32]), vec![]).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (audit, stop) = (audit.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let e = AuditEvent {
                            event: "kmip",
                            ..AuditEvent::default()
                        };
                        audit.record(vec![e]).unwrap();
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&path)
            .unwrap()
            .contains("reason=periodic")
        {
            assert!(
                Instant::now() < deadline,
                "no periodic checkpoint under load"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
    }
}
