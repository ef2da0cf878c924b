//! The audit record: an ordered list of normalized `key=value` fields, their escaping, the
//! canonical bytes a record's hash covers, and the SHA-256 chain link. Every carrier (journal
//! line, syslog message, CEF, LEEF) holds the same fields with the same escaped values, so the
//! verifier rebuilds the canonical bytes from whatever copy it reads.

use crate::crypto::backend::prim::digest;

/// The record format version, the first field of every record.
pub const VERSION: &str = "1";
/// The field holding the record's own hash (not covered by the canonical bytes).
pub const HASH: &str = "hash";
/// The field holding a checkpoint's signature (not covered by the canonical bytes).
pub const SIG: &str = "sig";
/// The previous record's hash of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why a line is not an audit record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A field is not `key=value`.
    #[error("field {0:?} is not key=value")]
    NotKeyValue(String),
    /// A required field is missing.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field value is malformed.
    #[error("field `{0}` is malformed")]
    Malformed(&'static str),
}

/// Bytes kept as they are in values; everything else becomes `\xHH`, so a value never holds a
/// space, `=`, a quote, a delimiter or a control character in any carrier.
fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._:/@,+".contains(&b)
}

/// Escapes a value for a record.
pub fn escape(value: &str) -> String {
    // Most values (addresses, times, identifiers) need no escaping: one copy, no per-byte work.
    if value.bytes().all(is_safe) {
        return value.to_owned();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(value.len() * 2);
    for &b in value.as_bytes() {
        if is_safe(b) {
            out.push(b as char);
        } else {
            out.push_str("\\x");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

/// Reverses [`escape`] (for display and CSV export); invalid escapes are kept as they are.
pub fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let Some(b) = value
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One audit record: fields in order, values already escaped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `(key, escaped value)` in record order.
    pub fields: Vec<(String, String)>,
}

impl Record {
    /// Appends a field, escaping its value. Empty values are left out: an absent field and an
    /// empty one mean the same.
    pub fn push(&mut self, key: &str, value: impl AsRef<str>) {
        let value = value.as_ref();
        if !value.is_empty() {
            self.fields.push((key.to_owned(), escape(value)));
        }
    }

    /// The escaped value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The canonical bytes: every field but `hash` and `sig`, as `key=value` joined by one
    /// space. The hash covers these (and through `prev` the whole chain before).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.fields.iter().filter(|(k, _)| k != HASH && k != SIG) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    /// SHA-256 of the canonical bytes, lower-case hex.
    pub fn compute_hash(&self) -> String {
        // The same bytes as `canonical()`, fed to the digest piece by piece (no copy).
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut first = true;
        for (k, v) in self.fields.iter().filter(|(k, _)| k != HASH && k != SIG) {
            if !first {
                ctx.update(b" ");
            }
            first = false;
            ctx.update(k.as_bytes());
            ctx.update(b"=");
            ctx.update(v.as_bytes());
        }
        hex::encode(ctx.finish())
    }

    /// The whole record as one `key=value` line (no newline).
    pub fn to_line(&self) -> String {
        let mut out = String::new();
        self.write_line(&mut out);
        out
    }

    /// Appends [`Record::to_line`]'s line to `out` (no newline).
    pub fn write_line(&self, out: &mut String) {
        let len: usize = self.fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        out.reserve(len);
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }

    /// Parses a `key=value` line as written by [`Record::to_line`].
    pub fn parse_line(line: &str) -> Result<Record, RecordError> {
        let fields = line
            .split(' ')
            .filter(|f| !f.is_empty())
            .map(|f| {
                f.split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| RecordError::NotKeyValue(f.chars().take(40).collect()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Record { fields })
    }

    /// The serial number.
    pub fn serial(&self) -> Result<u64, RecordError> {
        self.get("serial")
            .ok_or(RecordError::Missing("serial"))?
            .parse()
            .map_err(|_| RecordError::Malformed("serial"))
    }

    /// Whether this record is a signed checkpoint.
    pub fn is_checkpoint(&self) -> bool {
        self.get("event") == Some("checkpoint")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_leaves_no_delimiters() {
        let raw = "a b=c\"d\\e\tf|g^h\ni ü";
        let e = escape(raw);
        assert!(e.bytes().all(is_safe_or_escape), "{e}");
        assert!(!e.contains(' ') && !e.contains('=') && !e.contains('|'));
        assert_eq!(unescape(&e), raw);
    }

    fn is_safe_or_escape(b: u8) -> bool {
        is_safe(b) || b == b'\\'
    }

    #[test]
    fn line_round_trips_and_hash_ignores_hash_and_sig() {
        let mut r = Record::default();
        r.push("v", VERSION);
        r.push("serial", "7");
        r.push("user", "alice smith");
        r.push("empty", "");
        let h = r.compute_hash();
        r.push(HASH, &h);
        r.push(SIG, "abc");
        let parsed = Record::parse_line(&r.to_line()).unwrap();
        assert_eq!(parsed, r);
        assert_eq!(parsed.compute_hash(), h);
        assert_eq!(parsed.serial().unwrap(), 7);
        assert_eq!(parsed.get("empty"), None);
        assert_eq!(unescape(parsed.get("user").unwrap()), "alice smith");
    }

    #[test]
    fn the_hash_covers_exactly_the_canonical_bytes() {
        let mut r = Record::default();
        r.push("v", VERSION);
        r.push("name", "a b\u{7f}é");
        r.push(HASH, "ignored");
        let expected = hex::encode(digest::digest(&digest::SHA256, r.canonical().as_bytes()));
        assert_eq!(r.compute_hash(), expected);
        assert_eq!(r.canonical(), "v=1 name=a\\x20b\\x7f\\xc3\\xa9");
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(
            Record::parse_line("v=1 junk"),
            Err(RecordError::NotKeyValue(_))
        ));
        let r = Record::parse_line("v=1 serial=x").unwrap();
        assert_eq!(r.serial(), Err(RecordError::Malformed("serial")));
        let r = Record::parse_line("v=1").unwrap();
        assert_eq!(r.serial(), Err(RecordError::Missing("serial")));
    }
}
