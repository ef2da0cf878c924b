//! The second copy a journal is compared with: a SIEM's file of the records the sinks sent
//! (any carrier [`format::extract`] reads: key=value lines, RFC 5424 or RFC 3164 syslog, CEF,
//! LEEF), and checkpoints an operator noted elsewhere (`--expect-checkpoint SERIAL[:HASH]`,
//! copied from a SIEM, the metrics or the status page). A journal cut back to an earlier clean
//! stop is a valid chain on its own; only a copy kept outside the server's disk shows the
//! records that are gone. The verifier walks its chain in serial order and asks this index,
//! record by record, whether the copy holds a different record with that serial, and at the
//! end whether the copy goes on past the journal's last record. A SIEM file may hold the
//! records of several servers (a mirrored pair sending to one receiver): a copy record is
//! compared only with journal records of the same `server`.

use super::format;
use super::parse_time_ms;
use super::record::SIG;
use super::signer::PublicKey;
use super::verify::{for_each_line, FaultKind, ReadError};
use std::collections::HashMap;
use std::path::PathBuf;

/// A SHA-256 record hash.
type Hash = [u8; 32];

/// Where a reference entry came from, for the fault's detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// A record in the SIEM's copy.
    Copy,
    /// A checkpoint given with `--expect-checkpoint`.
    Expected,
}

/// [`Entry::server`] of a checkpoint given on the command line: it belongs to whichever
/// server the journal is.
const ANY_SERVER: u32 = u32::MAX;

/// One record the journal must hold: its serial and (unless only the serial was noted) its
/// hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    serial: u64,
    /// Index of its `server` field in [`Reference::servers`], or [`ANY_SERVER`].
    server: u32,
    hash: Option<Hash>,
    source: Source,
    /// The copy's own fields do not match its hash (the copy was damaged).
    damaged: bool,
}

/// A checkpoint whose signature verified with one of the given keys: proof that the server
/// wrote at least this far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SignedCheckpoint {
    serial: u64,
    server: u32,
    time_ms: i64,
}

/// A checkpoint noted elsewhere: `SERIAL` or `SERIAL:HASH` (the record's `hash` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedCheckpoint {
    /// Its serial.
    pub serial: u64,
    /// Its hash, if noted.
    hash: Option<Hash>,
}

impl std::str::FromStr for ExpectedCheckpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (serial, hash) = match text.split_once(':') {
            Some((s, h)) => (s, Some(h)),
            None => (text, None),
        };
        let serial = serial
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: give SERIAL or SERIAL:HASH (a checkpoint's serial number and its 64-hex-digit hash)"))?;
        let hash = hash
            .map(|h| {
                parse_hash(h.trim()).ok_or_else(|| {
                    format!(
                        "{text:?}: the hash must be 64 hex digits (the checkpoint's hash= field)"
                    )
                })
            })
            .transpose()?;
        Ok(ExpectedCheckpoint { serial, hash })
    }
}

fn parse_hash(hex_text: &str) -> Option<Hash> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Records and checkpoints known from outside the journal, sorted by serial.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    entries: Vec<Entry>,
    signed: Vec<SignedCheckpoint>,
    /// The `server` names found in the copy, numbered (one per server sending to the SIEM;
    /// a hash map, as a receiver's file may hold anything).
    servers: HashMap<String, u32>,
    /// Lines of the copy that look like a record but do not parse (not compared).
    pub unreadable: u64,
    /// Whether a copy file was read (and not only checkpoints given).
    has_copy: bool,
}

/// The outcome of comparing one journal record with the reference.
pub(super) type Mismatch = (FaultKind, u64, String);

impl Reference {
    /// True when there is nothing to compare with.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && !self.has_copy
    }

    /// Reads a SIEM's copy (files in any order; duplicates are fine). Checkpoints whose
    /// signature verifies with one of `keys` are remembered as proof of how far the server
    /// wrote.
    pub fn read_copy(&mut self, files: &[PathBuf], keys: &[PublicKey]) -> Result<(), ReadError> {
        self.has_copy |= !files.is_empty();
        for_each_line(files, |line| {
            match format::extract(line) {
                Some(Ok(r)) => match r.serial() {
                    Ok(serial) => {
                        let computed = r.compute_hash();
                        let damaged = r.get(super::record::HASH) != Some(computed.as_str());
                        let server = self.server_index_or_add(r.get("server").unwrap_or(""));
                        self.entries.push(Entry {
                            serial,
                            server,
                            hash: parse_hash(&computed),
                            source: Source::Copy,
                            damaged,
                        });
                        let signed = r.is_checkpoint()
                            && !damaged
                            && keys.iter().any(|k| {
                                Some(k.key_id().as_str()) == r.get("key_id")
                                    && k.verify(computed.as_bytes(), r.get(SIG).unwrap_or(""))
                            });
                        if signed {
                            self.signed.push(SignedCheckpoint {
                                serial,
                                server,
                                time_ms: r.get("time").and_then(parse_time_ms).unwrap_or(0),
                            });
                        }
                    }
                    Err(_) => self.unreadable += 1,
                },
                Some(Err(_)) => self.unreadable += 1,
                None => {}
            }
            true
        })?;
        self.seal();
        Ok(())
    }

    /// Adds a checkpoint noted elsewhere.
    pub fn expect_checkpoint(&mut self, expected: &ExpectedCheckpoint) {
        self.entries.push(Entry {
            serial: expected.serial,
            server: ANY_SERVER,
            hash: expected.hash,
            source: Source::Expected,
            damaged: false,
        });
        self.seal();
    }

    fn server_index_or_add(&mut self, server: &str) -> u32 {
        if let Some(&i) = self.servers.get(server) {
            return i;
        }
        let i = u32::try_from(self.servers.len())
            .unwrap_or(ANY_SERVER)
            .min(ANY_SERVER - 1);
        self.servers.insert(server.to_owned(), i);
        i
    }

    fn server_index(&self, server: &str) -> Option<u32> {
        self.servers.get(server).copied()
    }

    /// Sorts by serial and drops exact copies (a stream sink re-sends after reconnecting).
    fn seal(&mut self) {
        self.entries.sort_unstable();
        self.entries.dedup();
        self.signed.sort_unstable_by_key(|c| c.serial);
        self.signed.dedup();
    }
}

/// Walks the reference alongside the journal's chain.
#[derive(Debug, Default)]
pub(super) struct Cursor {
    next: usize,
    /// Reference entries compared with a journal record.
    pub compared: u64,
    /// Reference entries older than the journal's first record (not compared).
    pub before: u64,
    /// Copy records of servers other than the journal's (not compared).
    pub other_servers: u64,
    /// The journal's servers, as indexes into [`Reference::servers`].
    seen_servers: Vec<u32>,
}

impl Cursor {
    /// Compares journal record `serial` (hash `hash_hex`, written by `server`) with every
    /// reference entry of that serial written by one of the journal's servers so far. Records arrive in rising serial order,
    /// without gaps after the first.
    pub fn check(
        &mut self,
        reference: &Reference,
        serial: u64,
        hash_hex: &str,
        is_checkpoint: bool,
        server: &str,
    ) -> Result<(), Mismatch> {
        if let Some(i) = reference
            .server_index(server)
            .filter(|i| !self.seen_servers.contains(i))
        {
            self.seen_servers.push(i);
        }
        let entries = &reference.entries;
        while let Some(e) = entries.get(self.next).filter(|e| e.serial < serial) {
            self.next += 1;
            if self.is_ours(e) {
                self.before += 1;
            } else {
                self.other_servers += 1;
            }
        }
        let ours = parse_hash(hash_hex);
        while let Some(e) = entries.get(self.next).filter(|e| e.serial == serial) {
            self.next += 1;
            // A record of any server this journal has spoken as counts, not only of this
            // record's: a journal cut back and continued under another server name must not
            // slip past the copy's records of the old name.
            if !self.is_ours(e) {
                self.other_servers += 1;
                continue;
            }
            self.compared += 1;
            if e.source == Source::Expected && !is_checkpoint {
                return Err((
                    FaultKind::Modified,
                    serial,
                    format!("record {serial} is not a checkpoint, but a checkpoint {serial} was seen elsewhere (--expect-checkpoint): the journal was rewritten from here"),
                ));
            }
            if e.hash.is_some() && e.hash != ours {
                return Err((FaultKind::Modified, serial, differs(e, serial)));
            }
        }
        Ok(())
    }

    /// Whether `e` is about the journal's server(s) (or any server).
    fn is_ours(&self, e: &Entry) -> bool {
        e.server == ANY_SERVER || self.seen_servers.contains(&e.server)
    }

    /// After the journal's last record `last`: whatever the reference still holds of the
    /// journal's server lies beyond it, so the journal lost its end.
    pub fn finish(&mut self, reference: &Reference, last: u64) -> Result<(), Mismatch> {
        let remaining = &reference.entries[self.next.min(reference.entries.len())..];
        let (rest, others): (Vec<&Entry>, Vec<&Entry>) =
            remaining.iter().partition(|e| self.is_ours(e));
        self.other_servers += others.len() as u64;
        // A copy none of whose records is this journal's corroborates nothing: the journal may
        // have been replaced by a new one under another server name.
        if rest.is_empty() && self.compared == 0 && self.before == 0 && self.other_servers > 0 {
            return Err((
                FaultKind::Truncated,
                1,
                format!(
                    "the second copy holds {} records and none of them is of the server(s) this \
                     journal names: the journal may have been replaced (deleted and begun again \
                     under another audit.server_name); compare it with a copy that holds this \
                     server's records",
                    self.other_servers
                ),
            ));
        }
        let Some(furthest) = rest.iter().map(|e| e.serial).max() else {
            return Ok(());
        };
        let next = last.saturating_add(1);
        let signed = reference
            .signed
            .iter()
            .rev()
            .find(|c| c.serial > last && self.seen_servers.contains(&c.server))
            .map(|c| {
                format!(
                    ", including checkpoint {} signed at {}",
                    c.serial,
                    super::format_time_ms(c.time_ms)
                )
            })
            .unwrap_or_default();
        let whence = if rest.iter().any(|e| e.source == Source::Copy) {
            "the second copy holds records up to"
        } else {
            "a checkpoint was seen elsewhere (--expect-checkpoint) at"
        };
        Err((
            FaultKind::Truncated,
            next,
            format!("the journal ends at record {last}, but {whence} {furthest}{signed}: records {next}..{furthest} were cut off"),
        ))
    }
}

fn differs(e: &Entry, serial: u64) -> String {
    match (e.source, e.damaged) {
        (Source::Expected, _) => format!("record {serial} is not the checkpoint seen elsewhere (--expect-checkpoint: its hash differs): the journal was rewritten from here"),
        (Source::Copy, false) => format!("the journal's record {serial} differs from the second copy's: the journal was rewritten from here (or lost records the copy received)"),
        (Source::Copy, true) => format!("the second copy's record {serial} does not match its own hash and differs from the journal's: the copy is damaged or the journal was rewritten"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expected_checkpoint_is_a_serial_and_maybe_a_hash() {
        let e: ExpectedCheckpoint = "42".parse().unwrap();
        assert_eq!((e.serial, e.hash), (42, None));
        let e: ExpectedCheckpoint = format!("7:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!((e.serial, e.hash), (7, Some([0xab; 32])));
        for bad in ["", "x", "7:abc", "7:", "-1"] {
            assert!(bad.parse::<ExpectedCheckpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_beyond_the_end_are_a_truncation_and_different_hashes_a_modification() {
        let mut reference = Reference::default();
        reference.expect_checkpoint(&format!("2:{}", "00".repeat(32)).parse().unwrap());
        reference.expect_checkpoint(&"5".parse().unwrap());
        let mut cursor = Cursor::default();
        cursor
            .check(&reference, 1, &"11".repeat(32), false, "kms")
            .unwrap();
        let (kind, serial, _) = cursor
            .check(&reference, 2, &"11".repeat(32), true, "kms")
            .unwrap_err();
        assert_eq!((kind, serial), (FaultKind::Modified, 2));
        let mut cursor = Cursor::default();
        cursor
            .check(&reference, 2, &"00".repeat(32), true, "kms")
            .unwrap();
        let (kind, serial, detail) = cursor.finish(&reference, 3).unwrap_err();
        assert_eq!((kind, serial), (FaultKind::Truncated, 4), "{detail}");
        assert_eq!(cursor.compared, 1);
    }

    fn record(server: &str, serial: u64) -> crate::audit::record::Record {
        let mut r = crate::audit::record::Record::default();
        r.push("v", "1");
        r.push("serial", serial.to_string());
        r.push("server", server);
        r.push("prev", crate::audit::record::GENESIS);
        let h = r.compute_hash();
        r.push("hash", h);
        r
    }

    #[test]
    fn a_copy_shared_by_two_servers_is_compared_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("siem.log");
        let mut text = String::new();
        // Server b is further along than a, and its records share a's serials.
        for (server, serial) in [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("b", 3)] {
            text.push_str(&format!(
                "host akm-audit: {}\n",
                record(server, serial).to_line()
            ));
        }
        std::fs::write(&path, text).unwrap();
        let mut reference = Reference::default();
        reference.read_copy(&[path], &[]).unwrap();
        let mut cursor = Cursor::default();
        for serial in [1, 2] {
            let ours = record("a", serial);
            cursor
                .check(&reference, serial, ours.get("hash").unwrap(), false, "a")
                .unwrap();
        }
        cursor.finish(&reference, 2).unwrap();
        assert_eq!((cursor.compared, cursor.other_servers), (2, 3));
        // a's journal cut after record 1: its own record 2 in the copy is beyond the end.
        let mut cursor = Cursor::default();
        let first = record("a", 1);
        cursor
            .check(&reference, 1, first.get("hash").unwrap(), false, "a")
            .unwrap();
        let (kind, serial, detail) = cursor.finish(&reference, 1).unwrap_err();
        assert_eq!((kind, serial), (FaultKind::Truncated, 2));
        assert!(detail.contains("up to 2"), "{detail}");
        // ... and continued under another server name, its record 2 is still a's.
        let mut cursor = Cursor::default();
        cursor
            .check(&reference, 1, first.get("hash").unwrap(), false, "a")
            .unwrap();
        let renamed = record("c", 2);
        let (kind, serial, _) = cursor
            .check(&reference, 2, renamed.get("hash").unwrap(), false, "c")
            .unwrap_err();
        assert_eq!((kind, serial), (FaultKind::Modified, 2));
    }
}
