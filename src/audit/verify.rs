//! The verifier: reads audit records from journal files or a SIEM's copy (any carrier that
//! [`format::extract`] understands) and checks parsing, contiguous serials, hash links,
//! checkpoint signatures and that the log ends where a checkpoint closed it (or, for a live
//! journal, that the last checkpoint is fresh). Stops at the first fault and names its serial
//! and kind. Reads the input twice: once to learn which serials exist (telling a reordered
//! record from a deleted one), once to check the chain, holding only a window of hashes.
//! Given a second copy ([`Reference`]: a SIEM's file, checkpoints noted elsewhere) it also
//! compares each record of the chain with the copy's and fails a journal the copy goes beyond.

use super::crosscheck::{Cursor, Mismatch, Reference};
use super::format;
use super::parse_time_ms;
use super::record::{Record, GENESIS, HASH, SIG};
use super::signer::PublicKey;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The longest line read; records are a few KiB at most.
const MAX_LINE: u64 = 1024 * 1024;

/// Serial → hash entries kept to recognise duplicates, insertions and forks.
const WINDOW: u64 = 100_000;

/// The kind of fault found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A record's content no longer matches its hash (or its successor's link), or a
    /// checkpoint's signature fails.
    Modified,
    /// A serial is missing.
    Deleted,
    /// A record is present that the chain does not contain.
    Inserted,
    /// Records are out of order.
    Reordered,
    /// The end of the log is missing.
    Truncated,
    /// The chain continues twice from one point.
    Forked,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Modified => "modified",
            FaultKind::Deleted => "deleted",
            FaultKind::Inserted => "inserted",
            FaultKind::Reordered => "reordered",
            FaultKind::Truncated => "truncated",
            FaultKind::Forked => "forked",
        })
    }
}

/// The first fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What is wrong.
    pub kind: FaultKind,
    /// The first bad serial number.
    pub serial: u64,
    /// Where and why, for people.
    pub detail: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at serial {}: {}",
            self.kind, self.serial, self.detail
        )
    }
}

/// What the verifier found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Records checked (duplicates not counted).
    pub records: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// Exact copies skipped (a stream sink re-sends after reconnecting).
    pub duplicates: u64,
    /// Lines that carry no akm record (a receiver's own messages).
    pub skipped_lines: u64,
    /// First and last serial.
    pub first: Option<u64>,
    /// Last serial.
    pub last: Option<u64>,
    /// The last checkpoint whose signature verified.
    pub last_checkpoint: Option<CheckpointSeen>,
    /// Records of the second copy compared with the journal's.
    pub compared: u64,
    /// Records of the second copy older than the journal's first record (not compared).
    pub before_first: u64,
    /// Records of the second copy from other servers (their `server` field; not compared).
    pub other_servers: u64,
    /// The first fault, if any.
    pub fault: Option<Fault>,
}

/// A signed checkpoint the verifier accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSeen {
    /// Its serial.
    pub serial: u64,
    /// Its `time` field, ms since the epoch (0 if unreadable).
    pub time_ms: i64,
    /// Its `reason` field (`final`, `rotate`, `start`, ...), if any.
    pub reason: Option<String>,
}

/// How to judge the end of the log.
#[derive(Debug, Clone)]
pub struct Options {
    /// The keys that may have signed checkpoints (more than one across a signing-key
    /// change); each checkpoint names its key by `key_id`.
    pub public_keys: Vec<PublicKey>,
    /// The last checkpoint must be at most this many seconds old, whatever the log ends with;
    /// a live journal may then end with records after it. `None`: the log must end with a
    /// `final` (server stopped) or `rotate` (file rotated) checkpoint, of any age.
    pub max_age_secs: Option<u64>,
    /// The time to judge freshness against, ms since the epoch.
    pub now_ms: i64,
    /// The serial the log must start with (1 for a journal kept from the first start);
    /// `None`: a copy may start anywhere.
    pub first_serial: Option<u64>,
}

/// Why the input could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ReadError {
    /// The file.
    pub path: String,
    /// The cause.
    pub source: std::io::Error,
}

/// Calls `f` with each line of `files` in order (line ends trimmed) until it returns false.
pub(super) fn for_each_line(
    files: &[PathBuf],
    mut f: impl FnMut(&str) -> bool,
) -> Result<(), ReadError> {
    for path in files {
        let err = |source| ReadError {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(err)?;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // A line longer than any record is cut (and then fails to parse as one) rather
            // than read whole into memory.
            let n = (&mut reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut buf)
                .map_err(err)?;
            if n == 0 {
                break;
            }
            if n as u64 == MAX_LINE && buf.last() != Some(&b'\n') {
                skip_rest_of_line(&mut reader).map_err(err)?;
            }
            let line = String::from_utf8_lossy(&buf);
            if !f(line.trim_end_matches(['\n', '\r'])) {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn skip_rest_of_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Verifies the records in `files`, read in the order given.
pub fn verify_files(files: &[PathBuf], options: &Options) -> Result<Report, ReadError> {
    verify_files_against(files, options, &Reference::default())
}

/// Verifies the records in `files` and compares them with a second copy: a record of the
/// copy that differs from the journal's is a modification, one beyond the journal's end a
/// truncation.
pub fn verify_files_against(
    files: &[PathBuf],
    options: &Options,
    reference: &Reference,
) -> Result<Report, ReadError> {
    let mut serials = HashSet::new();
    for_each_line(files, |line| {
        if let Some(Ok(r)) = format::extract(line) {
            if let Ok(s) = r.serial() {
                serials.insert(s);
            }
        }
        true
    })?;
    let mut v = Verifier::new(options, serials, reference);
    for_each_line(files, |line| v.line(line))?;
    Ok(v.finish())
}

/// Verifies one file.
pub fn verify_file(path: &Path, options: &Options) -> Result<Report, ReadError> {
    verify_files(&[path.to_owned()], options)
}

enum Place {
    /// The next record of the chain.
    Next,
    /// An exact copy of a record already checked.
    Duplicate,
    /// A fault (already recorded).
    Bad,
}

struct Last {
    serial: u64,
    hash: String,
    prev: String,
    checkpoint: bool,
    reason: Option<String>,
}

struct Verifier<'a> {
    options: &'a Options,
    reference: &'a Reference,
    cursor: Cursor,
    serials: HashSet<u64>,
    seen: BTreeMap<u64, String>,
    last: Option<Last>,
    report: Report,
}

impl<'a> Verifier<'a> {
    fn new(options: &'a Options, serials: HashSet<u64>, reference: &'a Reference) -> Verifier<'a> {
        Verifier {
            options,
            reference,
            cursor: Cursor::default(),
            serials,
            seen: BTreeMap::new(),
            last: None,
            report: Report::default(),
        }
    }

    fn fault(&mut self, kind: FaultKind, serial: u64, detail: impl Into<String>) -> bool {
        self.report.fault = Some(Fault {
            kind,
            serial,
            detail: detail.into(),
        });
        false
    }

    fn next_serial(&self) -> u64 {
        self.last.as_ref().map_or(1, |l| l.serial.saturating_add(1))
    }

    /// Checks one line; false once a fault is found.
    fn line(&mut self, line: &str) -> bool {
        let record = match format::extract(line) {
            // A damaged record whose start no longer reads as one is still recognisable.
            None if line.contains("serial=") && line.contains("hash=") => {
                let s = self.next_serial();
                return self.fault(
                    FaultKind::Modified,
                    s,
                    "a line that holds an audit record does not start like one",
                );
            }
            None => {
                self.report.skipped_lines += 1;
                return true;
            }
            Some(Err(e)) => {
                let s = self.next_serial();
                return self.fault(
                    FaultKind::Modified,
                    s,
                    format!("record does not parse: {e}"),
                );
            }
            Some(Ok(r)) => r,
        };
        let serial = match record.serial() {
            Ok(s) => s,
            Err(e) => {
                let s = self.next_serial();
                return self.fault(
                    FaultKind::Modified,
                    s,
                    format!("record does not parse: {e}"),
                );
            }
        };
        let computed = record.compute_hash();
        if record.get(HASH) != Some(computed.as_str()) {
            return self.fault(
                FaultKind::Modified,
                serial,
                "the record's content does not match its hash",
            );
        }
        let prev = record.get("prev").unwrap_or("").to_owned();
        match self.placed(serial, &computed, &prev) {
            Place::Next => {}
            Place::Duplicate => {
                self.report.duplicates += 1;
                return true;
            }
            Place::Bad => return false,
        }
        if record.is_checkpoint() && !self.checkpoint(&record, serial, &computed) {
            return false;
        }
        if let Err(m) = self.cursor.check(
            self.reference,
            serial,
            &computed,
            record.is_checkpoint(),
            record.get("server").unwrap_or(""),
        ) {
            return self.mismatch(m);
        }
        self.seen.insert(serial, computed.clone());
        while self
            .seen
            .first_key_value()
            .is_some_and(|(&s, _)| s.saturating_add(WINDOW) < serial)
        {
            self.seen.pop_first();
        }
        self.report.records += 1;
        self.report.first.get_or_insert(serial);
        self.report.last = Some(serial);
        self.last = Some(Last {
            serial,
            hash: computed,
            prev,
            checkpoint: record.is_checkpoint(),
            reason: record.get("reason").map(str::to_owned),
        });
        true
    }

    fn mismatch(&mut self, (kind, serial, detail): Mismatch) -> bool {
        self.fault(kind, serial, detail)
    }

    /// Where the record falls in the chain.
    fn placed(&mut self, serial: u64, hash: &str, prev: &str) -> Place {
        match self.place(serial, hash, prev) {
            Ok(p) => p,
            Err((kind, at, detail)) => {
                self.fault(kind, at, detail);
                Place::Bad
            }
        }
    }

    fn place(
        &self,
        serial: u64,
        hash: &str,
        prev: &str,
    ) -> Result<Place, (FaultKind, u64, String)> {
        let Some(last) = &self.last else {
            if let Some(first) = self.options.first_serial.filter(|&f| f != serial) {
                let kind = if serial > first {
                    FaultKind::Deleted
                } else {
                    FaultKind::Inserted
                };
                return Err((
                    kind,
                    first.min(serial),
                    format!("the log starts at record {serial}, not {first}"),
                ));
            }
            if serial == 1 && prev != GENESIS {
                return Err((
                    FaultKind::Modified,
                    1,
                    "the first record does not start the chain".into(),
                ));
            }
            return Ok(Place::Next);
        };
        let expected = last.serial.saturating_add(1);
        if serial == expected {
            if prev == last.hash {
                return Ok(Place::Next);
            }
            let s = last.serial;
            return Err((
                FaultKind::Modified,
                s,
                format!("record {serial} does not link to record {s}: {s} was altered"),
            ));
        }
        if serial > expected {
            let (kind, what) = if self.serials.contains(&expected) {
                (FaultKind::Reordered, "appears later, out of order")
            } else {
                (FaultKind::Deleted, "is missing")
            };
            return Err((
                kind,
                expected,
                format!(
                    "record {expected} {what} (found {serial} after {})",
                    last.serial
                ),
            ));
        }
        // An earlier serial again: an exact copy (a sink re-sent it), a rival record, a fork.
        if self.seen.get(&serial).is_some_and(|h| h == hash) {
            return Ok(Place::Duplicate);
        }
        if serial == last.serial && prev == last.prev {
            return Err((
                FaultKind::Inserted,
                serial,
                format!("two different records {serial} follow the same record; the first is not in the chain"),
            ));
        }
        let continues_earlier = serial
            .checked_sub(1)
            .and_then(|p| self.seen.get(&p))
            .is_some_and(|h| h == prev);
        if continues_earlier {
            return Err((
                FaultKind::Forked,
                serial,
                format!(
                    "the chain continues a second time from record {} after reaching {}",
                    serial - 1,
                    last.serial
                ),
            ));
        }
        Err((
            FaultKind::Inserted,
            serial,
            format!(
                "record {serial} after {} belongs to no chain seen here",
                last.serial
            ),
        ))
    }

    fn checkpoint(&mut self, r: &Record, serial: u64, hash: &str) -> bool {
        let key_id = r.get("key_id").unwrap_or("?");
        let Some(key) = self
            .options
            .public_keys
            .iter()
            .find(|k| k.key_id() == key_id)
        else {
            let given: Vec<String> = self
                .options
                .public_keys
                .iter()
                .map(PublicKey::key_id)
                .collect();
            return self.fault(
                FaultKind::Modified,
                serial,
                format!(
                    "checkpoint signed by key {key_id}, not by a given key ({})",
                    given.join(", ")
                ),
            );
        };
        if !key.verify(hash.as_bytes(), r.get(SIG).unwrap_or("")) {
            let since = self
                .report
                .last_checkpoint
                .as_ref()
                .map_or(1, |c| c.serial + 1);
            return self.fault(
                FaultKind::Modified,
                serial,
                format!(
                    "checkpoint signature is invalid: records {since}..{serial} were rewritten"
                ),
            );
        }
        self.report.last_checkpoint = Some(CheckpointSeen {
            serial,
            time_ms: r.get("time").and_then(parse_time_ms).unwrap_or(0),
            reason: r.get("reason").map(str::to_owned),
        });
        self.report.checkpoints += 1;
        true
    }

    fn finish(mut self) -> Report {
        if self.report.fault.is_none() {
            self.judge_end();
        }
        self.report.compared = self.cursor.compared;
        self.report.before_first = self.cursor.before;
        self.report.other_servers = self.cursor.other_servers;
        self.report
    }

    /// After the last record: a fault if the log is empty, the second copy goes on past its
    /// end, or its end is not trusted.
    fn judge_end(&mut self) {
        let Some(last) = &self.last else {
            self.fault(FaultKind::Truncated, 1, "no audit records found");
            return;
        };
        let (last_serial, closed) = (
            last.serial,
            last.checkpoint && matches!(last.reason.as_deref(), Some("final") | Some("rotate")),
        );
        if let Err(m) = self.cursor.finish(self.reference, last_serial) {
            self.mismatch(m);
            return;
        }
        if let Some(detail) = self.end_fault(last_serial, closed) {
            self.fault(FaultKind::Truncated, last_serial.saturating_add(1), detail);
        }
    }

    /// Why the log's end is not trusted, if it is not: `--max-age` bounds the age of the last
    /// checkpoint however the log ends (a journal cut back to an earlier clean stop ends with
    /// a `final` checkpoint too); without it the log must end with a closing checkpoint.
    fn end_fault(&self, last_serial: u64, closed: bool) -> Option<String> {
        let checkpoint = self.report.last_checkpoint.as_ref();
        let Some(max) = self.options.max_age_secs else {
            return (!closed).then(|| format!("the log ends at record {last_serial} without a final or rotate checkpoint (verifying a running server's journal? give --max-age)"));
        };
        let Some(c) = checkpoint else {
            return Some("no checkpoint found".into());
        };
        let age_ms = self.options.now_ms.saturating_sub(c.time_ms);
        if age_ms <= i64::try_from(max).unwrap_or(i64::MAX).saturating_mul(1000) {
            return None;
        }
        let written = super::format_time_ms(c.time_ms);
        Some(if closed {
            format!("the log ends with checkpoint {} ({}) written at {written}, older than {max} s: later records may have been cut off (a stopped server's journal: give a larger --max-age, or compare with a copy: --against, --expect-checkpoint)", c.serial, c.reason.as_deref().unwrap_or("closing"))
        } else {
            format!("the last checkpoint ({}, written at {written}) is older than {max} s: later records and checkpoints are missing", c.serial)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::signer::Signer;

    #[test]
    fn a_huge_line_is_read_in_bounded_pieces_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.log");
        let mut text = "x v=1 serial=1 junk".to_string();
        text.push_str(&"a".repeat(3 * MAX_LINE as usize));
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        let options = Options {
            public_keys: vec![Signer::from_seed(&[1; 32]).public_key()],
            max_age_secs: None,
            first_serial: None,
            now_ms: 0,
        };
        let report = verify_file(&path, &options).unwrap();
        let fault = report.fault.unwrap();
        assert_eq!((fault.kind, fault.serial), (FaultKind::Modified, 1));
        assert!(verify_file(&dir.path().join("missing"), &options).is_err());
    }

    #[test]
    fn every_single_byte_change_of_a_journal_is_a_fault_and_never_a_panic() {
        use crate::audit::journal::{Audit, JournalSettings};
        use crate::audit::AuditEvent;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let settings = JournalSettings {
            path: path.clone(),
            server_name: "unit".into(),
            checkpoint_every: 2,
            checkpoint_secs: 60,
            sync: crate::audit::journal::SyncPolicy::EveryRecord,
        };
        let audit = Audit::open(settings, Signer::from_seed(&[3; 32]), vec![]).unwrap();
        let events = (0..3)
            .map(|i| AuditEvent {
                event: "kmip",
                user: Some(format!("user {i}")),
                ..AuditEvent::default()
            })
            .collect();
        audit.record(events).unwrap();
        drop(audit);
        let options = Options {
            public_keys: vec![Signer::from_seed(&[3; 32]).public_key()],
            max_age_secs: None,
            first_serial: None,
            now_ms: 0,
        };
        assert!(verify_file(&path, &options).unwrap().fault.is_none());
        let good = std::fs::read(&path).unwrap();
        let copy = dir.path().join("copy.log");
        // The final newline is left alone: a line end the reader trims is not record content.
        for i in 0..good.len() - 1 {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            std::fs::write(&copy, &bad).unwrap();
            let report = verify_file(&copy, &options).unwrap();
            assert!(
                report.fault.is_some(),
                "flipping byte {i} went unnoticed: {}",
                String::from_utf8_lossy(&bad[i.saturating_sub(60)..(i + 20).min(bad.len())])
            );
        }
    }

    #[test]
    fn the_largest_serial_is_a_fault_not_an_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("max.log");
        let mut lines = String::new();
        for serial in [u64::MAX, u64::MAX] {
            let mut r = Record::default();
            r.push("v", "1");
            r.push("serial", serial.to_string());
            r.push("prev", GENESIS);
            let h = r.compute_hash();
            r.push(HASH, h);
            lines.push_str(&r.to_line());
            lines.push('\n');
        }
        std::fs::write(&path, lines).unwrap();
        let options = Options {
            public_keys: vec![Signer::from_seed(&[1; 32]).public_key()],
            max_age_secs: None,
            first_serial: None,
            now_ms: 0,
        };
        let report = verify_file(&path, &options).unwrap();
        assert!(report.fault.is_some());
    }
}
