//! Tamper-evident audit. Owns the record model and its canonical bytes ([`record`]), the
//! SHA-256 chain and signed checkpoints written by the journal thread ([`journal`]), the
//! checkpoint signing key ([`signer`]), the carriers (key=value, CEF, LEEF inside RFC 5424 or
//! RFC 3164 syslog: [`mod@format`]), the syslog sinks ([`sink`]) and the verifier ([`verify`]).
//! The server hands it one [`AuditEvent`] per batch item (and per message refused before
//! dispatch); it never sees key material: events carry names, identifiers and outcomes only.

pub mod crosscheck;
pub mod format;
pub mod journal;
pub mod record;
pub(crate) mod settings;
pub mod signer;
pub mod sink;
pub mod verify;

pub use journal::{Audit, AuditError, Durability, JournalSettings, JournalStatus};

use crate::identity::Principal;
use crate::kmip::enums::{operation as op, result_reason as rr};
use crate::kmip::{ProtocolVersion, RequestItem, ResponseItem};
use crate::ttlv::{Tag, Ttlv};
use record::Record;
use std::net::SocketAddr;

/// Longest value kept from client-supplied text (names, identifiers, certificate fields), in
/// bytes; longer values are cut so one record (at most a few KiB escaped) fits a syslog
/// receiver's default 8 KiB message size whatever the client sends.
const MAX_VALUE_BYTES: usize = 256;

/// Whether the audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed or was refused.
    Failure,
    /// It succeeded inside a batch sent with Batch Error Continuation Option Undo, and was
    /// then rolled back with the batch when a later item failed: nothing of it remains.
    Undone,
}

/// One audited action, as the server saw it. Holds no key material.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    /// What happened: `kmip` (a batch item), `message` (a request refused before dispatch),
    /// `tls` (a connection refused at the handshake), `config` (the configuration a server
    /// started with).
    pub event: &'static str,
    /// The server's address on this connection.
    pub server_addr: Option<SocketAddr>,
    /// The client's address and port.
    pub client: Option<SocketAddr>,
    /// The client certificate's identity.
    pub user: Option<String>,
    /// The client's groups (certificate OUs).
    pub groups: Vec<String>,
    /// SHA-256 of the client certificate, hex.
    pub cert_sha256: Option<String>,
    /// The request's protocol version.
    pub protocol: Option<ProtocolVersion>,
    /// The KMIP operation.
    pub operation: Option<u32>,
    /// The object's Unique Identifier.
    pub uid: Option<String>,
    /// The object's Name, when the request carried one.
    pub name: Option<String>,
    /// Success or failure.
    pub outcome: Option<Outcome>,
    /// The Result Reason of a failure.
    pub reason: Option<u32>,
    /// A short fixed description of a failure that has no Result Reason (TLS, framing).
    pub detail: Option<String>,
    /// How long the request took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// SHA-256 of the configuration file (`config` events), hex.
    pub config_sha256: Option<String>,
    /// How many like events were left out before this one (refused-connection floods).
    pub suppressed: Option<u64>,
}

impl AuditEvent {
    /// An event for a connection from `client` to `server_addr` by `who` (if known).
    pub fn new(
        event: &'static str,
        server_addr: SocketAddr,
        client: SocketAddr,
        who: Option<&Principal>,
    ) -> AuditEvent {
        AuditEvent {
            event,
            server_addr: Some(server_addr),
            client: Some(client),
            user: who.map(|p| p.cn.clone()),
            groups: who.map(|p| p.ous.clone()).unwrap_or_default(),
            cert_sha256: who.map(|p| p.fingerprint.clone()),
            ..AuditEvent::default()
        }
    }

    /// One `kmip` event per batch item of a dispatched request, from the request item and its
    /// response item.
    pub fn for_items(
        base: &AuditEvent,
        version: ProtocolVersion,
        requests: &[RequestItem],
        responses: &[ResponseItem],
        duration_ms: u64,
    ) -> Vec<AuditEvent> {
        responses
            .iter()
            .enumerate()
            .map(|(i, resp)| {
                let req = requests.get(i);
                let mut e = base.clone();
                e.event = "kmip";
                e.protocol = Some(version);
                e.operation = resp.operation.or(req.map(|r| r.operation));
                e.duration_ms = Some(duration_ms);
                let resp_payload = resp.result.as_ref().ok().and_then(Option::as_ref);
                // A Locate answer lists many objects: naming the first would mislead.
                if e.operation != Some(op::LOCATE) {
                    e.uid = resp_payload
                        .and_then(uid_in)
                        .or_else(|| req.and_then(|r| uid_in(&r.payload)));
                }
                e.name = req.and_then(|r| name_in(&r.payload, 0));
                match &resp.result {
                    Ok(_) if resp.undone => e.outcome = Some(Outcome::Undone),
                    Ok(_) => e.outcome = Some(Outcome::Success),
                    Err(f) => {
                        if f.written.is_some() {
                            e.uid.clone_from(&f.written);
                        }
                        e.outcome = Some(Outcome::Failure);
                        // The reason as this client's protocol version states it.
                        e.reason = Some(version.result_reason(f.reason));
                    }
                }
                e
            })
            .collect()
    }

    /// Fills in the Name of events that name an object but whose request carried no Name,
    /// from `lookup` (the store), so every record of an object shows its key name.
    pub fn fill_names(events: &mut [AuditEvent], lookup: impl Fn(&str) -> Option<String>) {
        for e in events.iter_mut().filter(|e| e.name.is_none()) {
            if let Some(uid) = &e.uid {
                e.name = lookup(uid);
            }
        }
    }

    /// The record fields of this event, after `v`, `serial`, `time` and `server` (which the
    /// journal adds).
    pub(crate) fn write_fields(&self, r: &mut Record) {
        r.push("event", self.event);
        if let Some(a) = self.server_addr {
            r.push("server_addr", a.to_string());
        }
        if let Some(c) = self.client {
            r.push("client", c.ip().to_string());
            r.push("client_port", c.port().to_string());
        }
        r.push("user", clip(self.user.as_deref().unwrap_or("")));
        let groups: Vec<String> = self.groups.iter().map(|g| clip(g)).collect();
        r.push("groups", clip(&groups.join(",")));
        r.push("cert_sha256", self.cert_sha256.as_deref().unwrap_or(""));
        if let Some(v) = self.protocol {
            r.push("protocol", v.to_string());
        }
        if let Some(o) = self.operation {
            r.push("operation", operation_name(o));
        }
        r.push("uid", clip(self.uid.as_deref().unwrap_or("")));
        r.push("name", clip(self.name.as_deref().unwrap_or("")));
        match self.outcome {
            Some(Outcome::Success) => r.push("outcome", "success"),
            Some(Outcome::Failure) => r.push("outcome", "failure"),
            Some(Outcome::Undone) => r.push("outcome", "undone"),
            None => {}
        }
        if let Some(reason) = self.reason {
            r.push("reason", reason_name(reason));
        }
        r.push("detail", clip(self.detail.as_deref().unwrap_or("")));
        if let Some(d) = self.duration_ms {
            r.push("duration_ms", d.to_string());
        }
        r.push("config_sha256", self.config_sha256.as_deref().unwrap_or(""));
        if let Some(n) = self.suppressed {
            r.push("suppressed", n.to_string());
        }
    }
}

/// Cuts `s` to at most [`MAX_VALUE_BYTES`] bytes, on a character boundary.
fn clip(s: &str) -> String {
    let mut end = s.len().min(MAX_VALUE_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The Unique Identifier directly inside a payload.
fn uid_in(payload: &Ttlv) -> Option<String> {
    payload
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .map(str::to_owned)
}

/// The first Name Value in a request payload's attributes (Create, Register, Locate). Looks
/// only at structures a few levels deep and never at byte strings, so key material is never
/// read.
fn name_in(t: &Ttlv, depth: usize) -> Option<String> {
    if t.tag == Tag::NAME_VALUE {
        return t.as_text().map(str::to_owned);
    }
    if depth >= 4 {
        return None;
    }
    t.children().iter().find_map(|c| name_in(c, depth + 1))
}

/// The operation's name as the records spell it (`Create`, `GetAttributes`, `x-Unseal`), or
/// hex: the one spelling of [`crate::kmip::operations`].
pub use crate::kmip::operations::record_name as operation_name;

/// The Result Reason's name as the records spell it (`ItemNotFound`), or hex.
pub fn reason_name(code: u32) -> String {
    let name = match code {
        rr::ITEM_NOT_FOUND => "ItemNotFound",
        rr::RESPONSE_TOO_LARGE => "ResponseTooLarge",
        rr::AUTHENTICATION_NOT_SUCCESSFUL => "AuthenticationNotSuccessful",
        rr::INVALID_MESSAGE => "InvalidMessage",
        rr::OPERATION_NOT_SUPPORTED => "OperationNotSupported",
        rr::MISSING_DATA => "MissingData",
        rr::INVALID_FIELD => "InvalidField",
        rr::FEATURE_NOT_SUPPORTED => "FeatureNotSupported",
        rr::CRYPTOGRAPHIC_FAILURE => "CryptographicFailure",
        rr::ILLEGAL_OPERATION => "IllegalOperation",
        rr::PERMISSION_DENIED => "PermissionDenied",
        rr::KEY_FORMAT_TYPE_NOT_SUPPORTED => "KeyFormatTypeNotSupported",
        rr::OBJECT_DESTROYED => "ObjectDestroyed",
        rr::OBJECT_NOT_FOUND => "ObjectNotFound",
        rr::NOT_AUTHORISED => "NotAuthorised",
        rr::WRONG_KEY_LIFECYCLE_STATE => "WrongKeyLifecycleState",
        rr::UNSUPPORTED_PROTOCOL_VERSION => "UnsupportedProtocolVersion",
        rr::ATTRIBUTE_NOT_FOUND => "AttributeNotFound",
        rr::READ_ONLY_ATTRIBUTE => "ReadOnlyAttribute",
        rr::ATTRIBUTE_READ_ONLY => "AttributeReadOnly",
        rr::ATTRIBUTE_SINGLE_VALUED => "AttributeSingleValued",
        rr::NON_UNIQUE_NAME_ATTRIBUTE => "NonUniqueNameAttribute",
        rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK => "IncompatibleCryptographicUsageMask",
        rr::INVALID_ATTRIBUTE_VALUE => "InvalidAttributeValue",
        rr::GENERAL_FAILURE => "GeneralFailure",
        _ => return format!("0x{code:08X}"),
    };
    name.to_owned()
}

/// UTC time `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch.
pub fn format_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
    }
    // Fixed layout, digit by digit: every record carries one (format! costs ~3x as much).
    let mut out = String::with_capacity(24);
    let mut digits = |n: i64, width: u32, sep: char| {
        for p in (0..width).rev() {
            let digit = (n / 10_i64.pow(p)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        if sep != '\0' {
            out.push(sep);
        }
    };
    digits(y, 4, '-');
    digits(m, 2, '-');
    digits(d, 2, 'T');
    digits(rem / 3600, 2, ':');
    digits(rem % 3600 / 60, 2, ':');
    digits(rem % 60, 2, '.');
    digits(millis, 3, 'Z');
    out
}

/// Milliseconds since the epoch of a time written by [`format_time_ms`].
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    Some(secs * 1000 + num(20..23)?)
}

/// Milliseconds since the epoch, now (the journal's and the verifier's callers name it here).
pub use crate::clock::now_ms;

use crate::clock::civil_from_days;
pub use crate::clock::days_from_civil;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats_and_parses() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        let t = 1_795_958_547_123; // 2026-11-29T13:22:27.123Z
        assert_eq!(format_time_ms(t), "2026-11-29T13:22:27.123Z");
        assert_eq!(parse_time_ms(&format_time_ms(t)), Some(t));
        assert_eq!(parse_time_ms("2026-11-29 13:22:27"), None);
        assert_eq!(format_time_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn names_fall_back_to_hex() {
        assert_eq!(operation_name(op::GET_ATTRIBUTES), "GetAttributes");
        assert_eq!(operation_name(0x99), "0x00000099");
        assert_eq!(reason_name(rr::PERMISSION_DENIED), "PermissionDenied");
        assert_eq!(reason_name(0x77), "0x00000077");
    }

    #[test]
    fn an_object_written_by_a_failed_item_is_named_in_its_record() {
        use crate::error::OpError;
        use crate::store::StoreError;
        let unconfirmed = OpError::from(StoreError::NotReplicated).created("new-key");
        let other = OpError::from(StoreError::NameTaken).created("new-key");
        let request = RequestItem {
            operation: op::CREATE,
            batch_id: None,
            payload: crate::ttlv::Ttlv::structure(crate::ttlv::Tag::REQUEST_PAYLOAD, vec![]),
        };
        let answer = |e: &OpError| ResponseItem {
            operation: Some(op::CREATE),
            batch_id: None,
            result: Err(e.to_failure()),
            undone: false,
        };
        let events = AuditEvent::for_items(
            &AuditEvent::default(),
            ProtocolVersion::V2_1,
            &[request.clone(), request],
            &[answer(&unconfirmed), answer(&other)],
            1,
        );
        assert_eq!(events[0].uid.as_deref(), Some("new-key"));
        assert_eq!(events[0].outcome, Some(Outcome::Failure));
        assert_eq!(events[1].uid, None);
        // The client is told only that the write is unconfirmed.
        assert_eq!(
            answer(&unconfirmed).result.unwrap_err().reason,
            rr::GENERAL_FAILURE
        );
    }

    #[test]
    fn long_client_text_is_clipped() {
        let e = AuditEvent {
            event: "kmip",
            name: Some("n".repeat(10_000)),
            ..AuditEvent::default()
        };
        let mut r = Record::default();
        e.write_fields(&mut r);
        assert_eq!(r.get("name").unwrap().len(), MAX_VALUE_BYTES);
        let e = AuditEvent {
            event: "kmip",
            name: Some("é".repeat(1000)),
            ..AuditEvent::default()
        };
        let mut r = Record::default();
        e.write_fields(&mut r);
        // 128 two-byte characters, each escaped as two \xHH.
        assert_eq!(record::unescape(r.get("name").unwrap()), "é".repeat(128));
    }
}
