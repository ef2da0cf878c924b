//! KMIP messages, operation payloads and attributes, in both the 1.x and 2.x encodings.
//! Owns the request/response message model and the rules that keep a response inside the
//! request's protocol version. Carries key bytes but never looks at them, and does no I/O.

pub mod attributes;
pub mod custody;
pub mod enums;
pub mod extension;
pub mod names;
pub mod objects;
pub mod operations;
pub mod text;
pub mod vocab;

pub use vocab::attr;

use crate::ttlv::{Tag, Ttlv, Value};
use enums::{batch_error_continuation_option as bec, result_reason, result_status};
use std::fmt;

/// A KMIP protocol version.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Major version.
    pub major: i32,
    /// Minor version.
    pub minor: i32,
}

impl fmt::Debug for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl ProtocolVersion {
    /// A version from its parts.
    pub const fn new(major: i32, minor: i32) -> Self {
        ProtocolVersion { major, minor }
    }
    /// KMIP 1.0.
    pub const V1_0: Self = Self::new(1, 0);
    /// KMIP 1.1.
    pub const V1_1: Self = Self::new(1, 1);
    /// KMIP 1.2.
    pub const V1_2: Self = Self::new(1, 2);
    /// KMIP 1.3.
    pub const V1_3: Self = Self::new(1, 3);
    /// KMIP 1.4.
    pub const V1_4: Self = Self::new(1, 4);
    /// KMIP 2.0.
    pub const V2_0: Self = Self::new(2, 0);
    /// KMIP 2.1.
    pub const V2_1: Self = Self::new(2, 1);

    /// Every version akm speaks, newest first (the Discover Versions order).
    pub const SUPPORTED: [ProtocolVersion; 7] = [
        Self::V2_1,
        Self::V2_0,
        Self::V1_4,
        Self::V1_3,
        Self::V1_2,
        Self::V1_1,
        Self::V1_0,
    ];

    /// True for KMIP 2.x, whose attribute encoding and error reasons differ from 1.x.
    pub fn is_v2(self) -> bool {
        self.major >= 2
    }

    /// True if akm speaks this version.
    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }

    /// The version to answer in when the request's version is not supported: the nearest one
    /// the client can be expected to parse.
    pub fn nearest_supported(self) -> ProtocolVersion {
        Self::SUPPORTED
            .iter()
            .copied()
            .find(|v| v.major == self.major && v.minor <= self.minor)
            .unwrap_or(if self.major >= 2 {
                Self::V2_1
            } else {
                Self::V1_0
            })
    }

    /// The TTLV encoding.
    pub fn to_ttlv(self) -> Ttlv {
        Ttlv::structure(
            Tag::PROTOCOL_VERSION,
            vec![
                Ttlv::integer(Tag::PROTOCOL_VERSION_MAJOR, self.major),
                Ttlv::integer(Tag::PROTOCOL_VERSION_MINOR, self.minor),
            ],
        )
    }

    /// Parses a Protocol Version structure.
    pub fn from_ttlv(t: &Ttlv) -> Option<ProtocolVersion> {
        Some(ProtocolVersion {
            major: t.child(Tag::PROTOCOL_VERSION_MAJOR)?.as_int()?,
            minor: t
                .child(Tag::PROTOCOL_VERSION_MINOR)
                .and_then(Ttlv::as_int)
                .unwrap_or(0),
        })
    }

    /// The Result Reason to send in this version: reasons the version does not define are
    /// replaced by the closest one it does, so a 1.x client never sees a 2.x-only value.
    pub fn result_reason(self, reason: u32) -> u32 {
        use result_reason::*;
        if self.is_v2() || reason == GENERAL_FAILURE {
            return reason;
        }
        // 1.0 defines up to Key Compression Type Not Supported, 1.1 adds Encoding Option
        // Error, 1.2 the attestation and Key Value Not Present reasons, 1.4 three more.
        let newest_defined = match (self.major, self.minor) {
            (1, 0) => KEY_COMPRESSION_TYPE_NOT_SUPPORTED,
            (1, 1) => ENCODING_OPTION_ERROR,
            (1, 2) | (1, 3) => ATTESTATION_FAILED,
            _ => OBJECT_ALREADY_EXISTS,
        };
        if reason <= newest_defined {
            return reason;
        }
        match reason {
            WRONG_KEY_LIFECYCLE_STATE
            | NOT_AUTHORISED
            | ATTRIBUTE_READ_ONLY
            | READ_ONLY_ATTRIBUTE
            | SENSITIVE
            | NOT_EXTRACTABLE => PERMISSION_DENIED,
            OBJECT_NOT_FOUND
            | ATTRIBUTE_NOT_FOUND
            | ATTRIBUTE_INSTANCE_NOT_FOUND
            | OBJECT_DESTROYED => ITEM_NOT_FOUND,
            UNSUPPORTED_PROTOCOL_VERSION | UNKNOWN_TAG | CODEC_ERROR => INVALID_MESSAGE,
            OBJECT_ALREADY_EXISTS | NON_UNIQUE_NAME_ATTRIBUTE => INVALID_FIELD,
            ATTRIBUTE_SINGLE_VALUED => ILLEGAL_OPERATION,
            // A 1.x reason this minor version does not have yet.
            _ if reason < OBJECT_ALREADY_EXISTS => GENERAL_FAILURE,
            _ => INVALID_FIELD,
        }
    }
}

/// Why a decoded TTLV tree is not a usable request message. Answered with Invalid Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError(pub String);

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MessageError {}

fn invalid(msg: impl Into<String>) -> MessageError {
    MessageError(msg.into())
}

/// What to do with the remaining batch items after one fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Skip the rest (the default).
    Stop,
    /// Process the rest.
    Continue,
    /// Skip the rest and undo what the earlier items did (their status becomes Operation
    /// Undone).
    Undo,
}

/// The request header fields akm acts on.
#[derive(Clone, Debug)]
pub struct RequestHeader {
    /// The protocol version the client speaks.
    pub version: ProtocolVersion,
    /// Largest response the client accepts, in bytes.
    pub max_response_size: Option<usize>,
    /// Batch Error Continuation Option.
    pub on_error: OnError,
    /// Client Correlation Value, echoed nowhere but logged for the operator.
    pub client_correlation: Option<String>,
}

/// One request batch item.
#[derive(Clone, Debug)]
pub struct RequestItem {
    /// The Operation enumeration value.
    pub operation: u32,
    /// Unique Batch Item ID, echoed in the response.
    pub batch_id: Option<Vec<u8>>,
    /// The Request Payload structure (empty if absent).
    pub payload: Ttlv,
}

/// A parsed request message.
#[derive(Clone, Debug)]
pub struct RequestMessage {
    /// The header.
    pub header: RequestHeader,
    /// The batch items, in order.
    pub items: Vec<RequestItem>,
    /// The Vendor Identification of a Message Extension marked critical that akm does not
    /// understand (akm understands none: its own extensions are operations and tags, see
    /// [`extension`]). KMIP 1.4 §6.16 and 2.1 §9.13: the receiver "SHALL reject the entire
    /// message"; 1.4 §11.1 names the Result Reason, Feature Not Supported.
    pub unknown_critical_extension: Option<String>,
}

/// The most batch items accepted in one message (the highest `server.max_batch_items`).
pub const MAX_BATCH_ITEMS: usize = crate::config::limits::MAX_BATCH_ITEMS_CAP;

/// Reads the protocol version of a request, even if the rest of it is malformed, so that the
/// error response can be written in a version the client parses.
pub fn peek_version(msg: &Ttlv) -> Option<ProtocolVersion> {
    msg.child(Tag::REQUEST_HEADER)
        .and_then(|h| h.child(Tag::PROTOCOL_VERSION))
        .and_then(ProtocolVersion::from_ttlv)
}

impl RequestMessage {
    /// Parses a decoded Request Message, checking required fields, singletons and the batch
    /// count. Takes the tree so the payloads move into the items instead of being copied.
    pub fn parse(msg: Ttlv) -> Result<RequestMessage, MessageError> {
        if msg.tag != Tag::REQUEST_MESSAGE {
            return Err(invalid("not a Request Message"));
        }
        let header =
            single(&msg, Tag::REQUEST_HEADER)?.ok_or_else(|| invalid("missing Request Header"))?;
        let (header, declared) = parse_header(header)?;
        if let Some(other) = msg
            .children()
            .iter()
            .find(|c| c.tag != Tag::REQUEST_HEADER && c.tag != Tag::BATCH_ITEM)
        {
            return Err(invalid(format!(
                "unexpected {:?} in Request Message",
                other.tag
            )));
        }
        let items: Vec<Ttlv> = match msg.value {
            Value::Structure(children) => children
                .into_iter()
                .filter(|c| c.tag == Tag::BATCH_ITEM)
                .collect(),
            _ => Vec::new(),
        };
        if items.is_empty() {
            return Err(invalid("no Batch Item"));
        }
        if items.len() > MAX_BATCH_ITEMS {
            return Err(invalid(format!("more than {MAX_BATCH_ITEMS} batch items")));
        }
        if i64::from(declared) != items.len() as i64 {
            return Err(invalid(format!(
                "Batch Count {declared} does not match {} batch items",
                items.len()
            )));
        }
        let mut unknown_critical_extension = None;
        for item in &items {
            if let Some(vendor) = critical_extension(item)? {
                unknown_critical_extension.get_or_insert(vendor);
            }
        }
        let items = items
            .into_iter()
            .map(parse_item)
            .collect::<Result<_, _>>()?;
        Ok(RequestMessage {
            header,
            items,
            unknown_critical_extension,
        })
    }
}

/// The only instance of `tag` in `parent`, or an error if it appears twice.
fn single(parent: &Ttlv, tag: Tag) -> Result<Option<&Ttlv>, MessageError> {
    let mut found = parent.children_with(tag);
    let first = found.next();
    if found.next().is_some() {
        return Err(invalid(format!("{tag:?} appears more than once")));
    }
    Ok(first)
}

/// The header and its Batch Count.
fn parse_header(h: &Ttlv) -> Result<(RequestHeader, i32), MessageError> {
    let version = single(h, Tag::PROTOCOL_VERSION)?
        .and_then(ProtocolVersion::from_ttlv)
        .ok_or_else(|| invalid("missing or malformed Protocol Version"))?;
    let max_response_size = match single(h, Tag::MAXIMUM_RESPONSE_SIZE)? {
        None => None,
        Some(t) => Some(
            t.as_int()
                .and_then(|v| usize::try_from(v).ok())
                .ok_or(invalid(
                    "Maximum Response Size must be a non-negative Integer",
                ))?,
        ),
    };
    let on_error = match single(h, Tag::BATCH_ERROR_CONTINUATION_OPTION)?.map(Ttlv::as_enum) {
        None | Some(Some(bec::STOP)) => OnError::Stop,
        Some(Some(bec::UNDO)) => OnError::Undo,
        Some(Some(bec::CONTINUE)) => OnError::Continue,
        Some(_) => return Err(invalid("bad Batch Error Continuation Option")),
    };
    let client_correlation = single(h, Tag::CLIENT_CORRELATION_VALUE)?
        .and_then(Ttlv::as_text)
        .map(str::to_owned);
    let batch_count = single(h, Tag::BATCH_COUNT)?
        .and_then(Ttlv::as_int)
        .ok_or_else(|| invalid("missing or mistyped Batch Count"))?;
    let header = RequestHeader {
        version,
        max_response_size,
        on_error,
        client_correlation,
    };
    Ok((header, batch_count))
}

/// The Vendor Identification of the batch item's Message Extension if it is marked critical
/// (KMIP 1.4 §6.16, 2.1 §9.13: a structure of Vendor Identification, Criticality Indicator
/// and Vendor Extension). A non-critical one is ignored, as the spec allows.
fn critical_extension(item: &Ttlv) -> Result<Option<String>, MessageError> {
    let Some(ext) = single(item, Tag::MESSAGE_EXTENSION)? else {
        return Ok(None);
    };
    if !matches!(ext.value, Value::Structure(_)) {
        return Err(invalid("Message Extension must be a Structure"));
    }
    let critical = single(ext, Tag::CRITICALITY_INDICATOR)?
        .ok_or_else(|| invalid("Message Extension without Criticality Indicator"))?
        .as_bool()
        .ok_or_else(|| invalid("Criticality Indicator must be a Boolean"))?;
    if !critical {
        return Ok(None);
    }
    let vendor = single(ext, Tag::VENDOR_IDENTIFICATION)?
        .and_then(Ttlv::as_text)
        .unwrap_or("")
        .to_owned();
    Ok(Some(vendor))
}

fn parse_item(item: Ttlv) -> Result<RequestItem, MessageError> {
    let operation = single(&item, Tag::OPERATION)?
        .ok_or_else(|| invalid("Batch Item without Operation"))?
        .as_enum()
        .ok_or_else(|| invalid("Operation must be an Enumeration"))?;
    let batch_id = match single(&item, Tag::UNIQUE_BATCH_ITEM_ID)? {
        None => None,
        Some(t) => Some(
            t.as_bytes()
                .ok_or_else(|| invalid("Unique Batch Item ID must be a Byte String"))?
                .to_vec(),
        ),
    };
    if single(&item, Tag::REQUEST_PAYLOAD)?.is_some_and(|p| !matches!(p.value, Value::Structure(_)))
    {
        return Err(invalid("Request Payload must be a Structure"));
    }
    let payload = match item.value {
        Value::Structure(children) => children.into_iter().find(|c| c.tag == Tag::REQUEST_PAYLOAD),
        _ => None,
    }
    .unwrap_or_else(|| Ttlv::structure(Tag::REQUEST_PAYLOAD, vec![]));
    Ok(RequestItem {
        operation,
        batch_id,
        payload,
    })
}

/// A failed batch item's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Result Reason (the 2.x value; downgraded per version when encoded).
    pub reason: u32,
    /// Result Message: short, fixed text that never carries key material.
    pub message: String,
    /// An object the failed item wrote nonetheless (committed here, not confirmed by a mirror
    /// peer in RPO-zero mode), so its audit record names it; never sent to the client.
    pub written: Option<String>,
}

impl Failure {
    /// A failure from its parts.
    pub fn new(reason: u32, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            written: None,
        }
    }
}

/// One response batch item.
#[derive(Clone, Debug)]
pub struct ResponseItem {
    /// The operation, echoed (absent only when the request item could not be read).
    pub operation: Option<u32>,
    /// The Unique Batch Item ID, echoed.
    pub batch_id: Option<Vec<u8>>,
    /// The Response Payload's children, or the failure.
    pub result: Result<Option<Ttlv>, Failure>,
    /// The item succeeded but a later failure undid it (Batch Error Continuation Option
    /// Undo): its status is Operation Undone, its payload is kept.
    pub undone: bool,
}

/// Builds a Response Message in `version`.
pub fn encode_response(version: ProtocolVersion, now: i64, items: &[ResponseItem]) -> Ttlv {
    let header = Ttlv::structure(
        Tag::RESPONSE_HEADER,
        vec![
            version.to_ttlv(),
            Ttlv::datetime(Tag::TIME_STAMP, now),
            Ttlv::integer(Tag::BATCH_COUNT, items.len() as i32),
        ],
    );
    let mut children = vec![header];
    children.extend(items.iter().map(|item| encode_item(version, item)));
    Ttlv::structure(Tag::RESPONSE_MESSAGE, children)
}

fn encode_item(version: ProtocolVersion, item: &ResponseItem) -> Ttlv {
    let mut c = Vec::new();
    if let Some(op) = item.operation {
        c.push(Ttlv::enumeration(Tag::OPERATION, op));
    }
    if let Some(id) = &item.batch_id {
        c.push(Ttlv::bytes(Tag::UNIQUE_BATCH_ITEM_ID, id.clone()));
    }
    match &item.result {
        Ok(payload) => {
            let status = match item.undone {
                true => result_status::OPERATION_UNDONE,
                false => result_status::SUCCESS,
            };
            c.push(Ttlv::enumeration(Tag::RESULT_STATUS, status));
            if let Some(p) = payload {
                c.push(p.clone());
            }
        }
        Err(f) => {
            c.push(Ttlv::enumeration(
                Tag::RESULT_STATUS,
                result_status::OPERATION_FAILED,
            ));
            c.push(Ttlv::enumeration(
                Tag::RESULT_REASON,
                version.result_reason(f.reason),
            ));
            c.push(Ttlv::text(Tag::RESULT_MESSAGE, f.message.clone()));
        }
    }
    Ttlv::structure(Tag::BATCH_ITEM, c)
}

/// A response with one failed item, for a request that could not be parsed.
pub fn error_response(version: ProtocolVersion, now: i64, failure: Failure) -> Ttlv {
    encode_response(
        version,
        now,
        &[ResponseItem {
            operation: None,
            batch_id: None,
            result: Err(failure),
            undone: false,
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::enums::result_reason::*;
    use super::ProtocolVersion as V;

    #[test]
    fn reasons_are_kept_within_each_version() {
        // (version, reason akm means, reason that version's response carries)
        let cases = [
            (
                V::V2_1,
                WRONG_KEY_LIFECYCLE_STATE,
                WRONG_KEY_LIFECYCLE_STATE,
            ),
            (V::V1_4, WRONG_KEY_LIFECYCLE_STATE, PERMISSION_DENIED),
            (V::V1_4, OBJECT_DESTROYED, ITEM_NOT_FOUND),
            (V::V1_4, UNSUPPORTED_PROTOCOL_VERSION, INVALID_MESSAGE),
            (
                V::V1_0,
                KEY_FORMAT_TYPE_NOT_SUPPORTED,
                KEY_FORMAT_TYPE_NOT_SUPPORTED,
            ),
            (V::V1_0, ENCODING_OPTION_ERROR, GENERAL_FAILURE),
            (V::V1_1, ENCODING_OPTION_ERROR, ENCODING_OPTION_ERROR),
            (V::V1_2, SENSITIVE, PERMISSION_DENIED),
            (V::V1_4, SENSITIVE, SENSITIVE),
            (V::V1_2, OBJECT_ALREADY_EXISTS, INVALID_FIELD),
            (V::V1_4, NON_UNIQUE_NAME_ATTRIBUTE, INVALID_FIELD),
            (V::V1_4, ATTRIBUTE_SINGLE_VALUED, ILLEGAL_OPERATION),
            (V::V1_4, ATTRIBUTE_READ_ONLY, PERMISSION_DENIED),
            (V::V1_4, OBJECT_NOT_FOUND, ITEM_NOT_FOUND),
            (V::V1_3, INVALID_ATTRIBUTE_VALUE, INVALID_FIELD),
        ];
        for (v, meant, sent) in cases {
            assert_eq!(v.result_reason(meant), sent, "{v} reason {meant:#x}");
        }
        for v in V::SUPPORTED.iter().filter(|v| !v.is_v2()) {
            for reason in 1..=0x4C {
                let sent = v.result_reason(reason);
                assert!(
                    sent <= OBJECT_ALREADY_EXISTS || sent == GENERAL_FAILURE,
                    "{v} sends 2.x reason {sent:#x}"
                );
            }
            assert_eq!(v.result_reason(GENERAL_FAILURE), GENERAL_FAILURE);
        }
    }
}
