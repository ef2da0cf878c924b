//! Multi-part (streaming) cryptographic operations: Encrypt, Decrypt, Sign, Signature Verify,
//! MAC, MAC Verify and Hash (KMIP 2.1 §6.1 before §6.1.1, §6.1.11, §6.1.17, §6.1.24,
//! §6.1.32-33, §6.1.55-56, and the Correlation Value, Final Indicator and Init Indicator of
//! §7.8, §7.14, §7.17; KMIP 1.4 §2.1.15-17, §4.29-4.34, §4.37). The first part carries Init
//! Indicator True and is answered with a server-made Correlation Value; later parts send that
//! value back; the part with Final Indicator True completes the operation. Init and Final
//! both True (or neither, without a Correlation Value) is an ordinary single-part call.
//!
//! Owns the open streams (in memory, per server node) and their limits: a stream belongs to
//! the certificate that began it and to the operation and key it began with; each part checks
//! the key's access policy, usage mask, state and dates again. At most
//! [`MAX_STREAMS_PER_CLIENT`] streams per client and [`MAX_STREAMS`] in all are open, each
//! holds at most [`MAX_STREAM_BYTES`], all together at most [`MAX_TOTAL_BYTES`], and a stream
//! not continued for [`IDLE_EXPIRY`] is dropped. A refused or failed part ends its stream.
//!
//! Encrypt answers every part with the ciphertext that part completes (see `encrypt`). The
//! other operations collect the data and run once on the final part, with the fields the
//! first part gave (Cryptographic Parameters, IV, additional data, tag) unless the final part
//! repeats them: Decrypt releases no plaintext before the whole ciphertext (and a GCM tag) is
//! checked, and a signature, MAC or digest exists only over the whole data.
//!
//! Streams live in the memory of the node that began them: they are not mirrored (a client
//! that fails over to a peer mid-stream gets Invalid Correlation Value and starts again), not
//! kept across a restart, and not allowed in a batch with Undo (a rollback could not undo
//! them; see `ops::undoable`).

use super::encrypt::SymParams;
use super::key_use::{check_state_and_dates, Purpose};
use super::{load_for, Call, Caller, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::object_type as ot;
use crate::ttlv::{Tag, Ttlv};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Open streams at most, all clients together.
pub const MAX_STREAMS: usize = 256;
/// Open streams at most per client certificate.
pub const MAX_STREAMS_PER_CLIENT: usize = 16;
/// Data one stream may accumulate.
pub const MAX_STREAM_BYTES: usize = 1 << 20;
/// Data all open streams together may hold.
pub const MAX_TOTAL_BYTES: usize = 64 << 20;
/// A stream not continued for this long is dropped.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(300);

/// The multi-part fields of a request (KMIP 2.1 §7.8, §7.14, §7.17).
pub struct Part<'a> {
    /// Init Indicator True: the first part.
    pub init: bool,
    /// Final Indicator True: the last part.
    pub last: bool,
    /// The Correlation Value a later part sends back.
    pub correlation: Option<&'a [u8]>,
}

impl<'a> Part<'a> {
    /// Reads the Init Indicator, Final Indicator and Correlation Value of `payload`.
    pub fn read(payload: &'a Ttlv) -> Result<Part<'a>, OpError> {
        let flag = |tag| -> Result<bool, OpError> {
            match payload.child(tag) {
                None => Ok(false),
                Some(t) => t
                    .as_bool()
                    .ok_or_else(|| OpError::InvalidMessage(format!("{tag:?} must be a Boolean"))),
            }
        };
        let correlation = match payload.child(Tag::CORRELATION_VALUE) {
            None => None,
            Some(t) => Some(t.as_bytes().ok_or_else(|| {
                OpError::InvalidMessage("Correlation Value must be a byte string".into())
            })?),
        };
        Ok(Part {
            init: flag(Tag::INIT_INDICATOR)?,
            last: flag(Tag::FINAL_INDICATOR)?,
            correlation,
        })
    }

    /// Whether this is one part of several: Init and Final both True (or neither, without a
    /// Correlation Value) is a single-part call.
    pub fn is_streaming(&self) -> bool {
        !(self.init && self.last) && (self.init || self.correlation.is_some())
    }
}

/// Whether `payload` is one part of a multi-part operation (for the Undo batch check).
pub fn is_multi_part(payload: &Ttlv) -> bool {
    Part::read(payload).is_ok_and(|p| p.is_streaming())
}

/// What an Encrypt stream carries between parts.
pub struct EncryptState {
    /// Mode, padding, tag length.
    pub sym: SymParams,
    /// The IV the first part gave or the server made.
    pub iv: Vec<u8>,
    /// GCM associated data (from the first part).
    pub aad: Vec<u8>,
    /// How many ciphertext bytes earlier parts returned.
    pub emitted: usize,
}

/// One open multi-part operation.
pub struct Stream {
    /// The client certificate's fingerprint.
    owner: String,
    /// The Operation it performs.
    operation: u32,
    /// The key (`None` for Hash).
    uid: Option<String>,
    /// Every byte of data so far.
    pub data: Zeroizing<Vec<u8>>,
    /// Encrypt's cipher state; `None` for the operations that run on the final part.
    pub encrypt: Option<EncryptState>,
    /// The first part's other fields (Cryptographic Parameters, IV, additional data, tag...),
    /// which the final part's call is completed with.
    first: Vec<Ttlv>,
    last_used: Instant,
}

impl Stream {
    /// A new stream of `operation` for `owner` on key `uid`.
    pub fn new(owner: &str, operation: u32, uid: Option<String>) -> Stream {
        Stream {
            owner: owner.to_owned(),
            operation,
            uid,
            data: Zeroizing::new(Vec::new()),
            encrypt: None,
            first: Vec::new(),
            last_used: Instant::now(),
        }
    }

    /// The key the stream uses ("" for Hash).
    pub fn key(&self) -> &str {
        self.uid.as_deref().unwrap_or_default()
    }

    /// Adds `more` data, within [`MAX_STREAM_BYTES`].
    pub fn append(&mut self, more: &[u8]) -> Result<(), OpError> {
        if self.data.len() + more.len() > MAX_STREAM_BYTES {
            return Err(OpError::ServerLimitExceeded(format!(
                "a multi-part operation holds at most {} MiB of data: send it in single-part \
                 calls of at most that size",
                MAX_STREAM_BYTES >> 20
            )));
        }
        self.data.extend_from_slice(more);
        Ok(())
    }
}

/// The open streams, by Correlation Value.
#[derive(Default)]
pub struct Streams {
    open: Mutex<HashMap<Vec<u8>, Stream>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streams")
    }
}

impl Streams {
    /// Keeps `stream` under `correlation` (a new one or one a part continued), within the
    /// limits in this module's doc; idle streams are dropped first.
    pub fn put(&self, correlation: Vec<u8>, mut stream: Stream) -> Result<(), OpError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        open.retain(|_, s| now.duration_since(s.last_used) < IDLE_EXPIRY);
        let mine = open.values().filter(|s| s.owner == stream.owner).count();
        if mine >= MAX_STREAMS_PER_CLIENT {
            return Err(limit(format!(
                "this client has {MAX_STREAMS_PER_CLIENT} multi-part operations open, the most \
                 one client may: finish them (Final Indicator) or let them expire"
            )));
        }
        if open.len() >= MAX_STREAMS {
            return Err(limit(format!(
                "the server has {MAX_STREAMS} multi-part operations open, the most it keeps: \
                 try again later"
            )));
        }
        let held: usize = open.values().map(|s| s.data.len()).sum();
        if held + stream.data.len() > MAX_TOTAL_BYTES {
            return Err(limit(format!(
                "open multi-part operations hold {} MiB, the most the server keeps: try again \
                 later",
                MAX_TOTAL_BYTES >> 20
            )));
        }
        stream.last_used = now;
        open.insert(correlation, stream);
        Ok(())
    }

    /// Takes out the stream `correlation` if `owner` began it for `operation` (on key `uid`
    /// when one is named). Another client's stream stays where it is: a stranger can neither
    /// use nor end it.
    pub fn take(
        &self,
        correlation: &[u8],
        owner: &str,
        operation: u32,
        uid: Option<&str>,
    ) -> Result<Stream, OpError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let unknown = || {
            OpError::InvalidCorrelationValue(
                "no open multi-part operation of this client has this Correlation Value".into(),
            )
        };
        let s = open.get(correlation).ok_or_else(unknown)?;
        let expired = s.last_used.elapsed() >= IDLE_EXPIRY;
        if s.owner != owner || s.operation != operation {
            return Err(unknown());
        }
        if uid.is_some_and(|u| s.uid.as_deref() != Some(u)) {
            return Err(OpError::InvalidCorrelationValue(
                "the Correlation Value belongs to a multi-part operation on another key".into(),
            ));
        }
        let s = open.remove(correlation).ok_or_else(unknown)?;
        if expired {
            return Err(unknown());
        }
        Ok(s)
    }

    /// How many streams are open (for tests and the status page).
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn limit(message: String) -> OpError {
    OpError::ServerLimitExceeded(message)
}

/// A fresh Correlation Value.
pub fn new_correlation() -> Vec<u8> {
    crate::crypto::random_bytes(16).to_vec()
}

/// What a key-using operation needs of its key on every part that does not use the key
/// material: the key's access policy for `operation`, that it is a key, its usage mask, state
/// and dates (the full check, with Usage Limits and unwrapping, runs on the part that uses
/// the key).
pub struct KeyCheck {
    /// The operation.
    pub operation: u32,
    /// The Cryptographic Usage Mask bit it needs.
    pub usage: i32,
    /// Protect or process.
    pub purpose: Purpose,
}

impl KeyCheck {
    /// Checks key `uid` for `who` at `now`.
    pub fn run(&self, ctx: &Ctx, who: &Caller, uid: &str, now: i64) -> Result<(), OpError> {
        let obj = load_for(ctx, who, uid, self.operation)?;
        if !matches!(
            obj.object_type,
            ot::SYMMETRIC_KEY | ot::SECRET_DATA | ot::PRIVATE_KEY | ot::PUBLIC_KEY
        ) {
            return Err(OpError::InvalidField(
                "the object is not a key that can be used for this operation".into(),
            ));
        }
        let mask = obj.int_attr(attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0);
        if mask & self.usage == 0 {
            return Err(OpError::IncompatibleUsageMask);
        }
        check_state_and_dates(&obj, self.purpose, now)
    }
}

/// The fields that steer a stream rather than belong to the operation.
const STREAM_FIELDS: &[Tag] = &[
    Tag::INIT_INDICATOR,
    Tag::FINAL_INDICATOR,
    Tag::CORRELATION_VALUE,
    Tag::DATA,
    Tag::UNIQUE_IDENTIFIER,
];

/// An operation that runs once on the whole data (every one but Encrypt): `single` in one
/// part, or this part of a multi-part one, the key checked by `check` on every part.
pub fn in_parts(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    check: &KeyCheck,
    single: fn(&Ctx, &Caller, &Call<'_>) -> Result<Reply, OpError>,
) -> Result<Reply, OpError> {
    let part = Part::read(call.payload)?;
    if part.is_streaming() {
        return run_collecting(ctx, who, call, &part, Some(check), |whole| {
            single(ctx, who, whole)
        });
    }
    single(ctx, who, call)
}

/// Runs one part of a multi-part operation that runs once, on its final part (every
/// operation but Encrypt). `check` is the key check for the parts that do not run it
/// (`None` for Hash, which uses no key); `single` is the operation's single-part form, given
/// the final part's call completed with the whole data and the first part's fields.
pub fn run_collecting(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    part: &Part<'_>,
    check: Option<&KeyCheck>,
    single: impl FnOnce(&Call<'_>) -> Result<Reply, OpError>,
) -> Result<Reply, OpError> {
    let owner = who.fingerprint.as_str();
    let (mut stream, correlation) = if part.init {
        // The first part names the key (or the ID Placeholder does).
        let uid = check.map(|_| call.uid()).transpose()?;
        let mut s = Stream::new(owner, call.operation, uid);
        s.first = operation_fields(call.payload);
        (s, new_correlation())
    } else {
        // Later parts may name the key again (it must be the same) or leave it out.
        let named = check.and_then(|_| {
            call.payload
                .child(Tag::UNIQUE_IDENTIFIER)
                .and_then(Ttlv::as_text)
                .map(str::to_owned)
        });
        let correlation = part.correlation.unwrap_or_default();
        let s = ctx
            .streams
            .take(correlation, owner, call.operation, named.as_deref())?;
        (s, correlation.to_vec())
    };
    let uid = stream.uid.clone();
    if let Some(data) = call.payload.child(Tag::DATA) {
        let data = data
            .as_bytes()
            .ok_or_else(|| OpError::InvalidMessage("Data must be a byte string".into()))?;
        stream.append(data)?;
    }
    if part.last {
        let payload = final_payload(call.payload, &stream);
        let whole = Call {
            version: call.version,
            operation: call.operation,
            payload: &payload,
            placeholder: stream.uid.as_deref(),
            now: call.now,
            meter: call.meter,
        };
        return single(&whole);
    }
    if let (Some(check), Some(uid)) = (check, uid.as_deref()) {
        check.run(ctx, who, uid, call.now)?;
    }
    let mut payload = Vec::with_capacity(2);
    if let Some(uid) = &uid {
        payload.push(Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()));
    }
    payload.push(Ttlv::bytes(Tag::CORRELATION_VALUE, correlation.clone()));
    ctx.streams.put(correlation, stream)?;
    Ok(Reply {
        payload,
        uid: uid.clone(),
    })
}

/// The payload's fields other than the stream's own.
fn operation_fields(payload: &Ttlv) -> Vec<Ttlv> {
    payload
        .children()
        .iter()
        .filter(|t| !STREAM_FIELDS.contains(&t.tag))
        .cloned()
        .collect()
}

/// The single-part request the final part stands for: its own fields, the first part's that
/// it does not repeat, the key and the whole data.
fn final_payload(last: &Ttlv, stream: &Stream) -> Ttlv {
    let mut fields = operation_fields(last);
    let given: Vec<Tag> = fields.iter().map(|t| t.tag).collect();
    fields.extend(
        stream
            .first
            .iter()
            .filter(|t| !given.contains(&t.tag))
            .cloned(),
    );
    if let Some(uid) = &stream.uid {
        fields.insert(0, Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()));
    }
    fields.push(Ttlv::bytes(Tag::DATA, stream.data.to_vec()));
    Ttlv::structure(Tag::REQUEST_PAYLOAD, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(owner: &str) -> Stream {
        Stream::new(owner, 1, Some("k".into()))
    }

    #[test]
    fn a_client_may_hold_only_so_many_streams() {
        let streams = Streams::default();
        for i in 0..MAX_STREAMS_PER_CLIENT {
            streams.put(vec![i as u8], stream("a")).unwrap();
        }
        let refused = streams.put(vec![0xff], stream("a")).unwrap_err();
        assert!(matches!(refused, OpError::ServerLimitExceeded(_)));
        // Another client is not held back by the first one's streams.
        streams.put(vec![0xfe], stream("b")).unwrap();
    }

    #[test]
    fn only_the_owner_takes_a_stream_and_a_stranger_leaves_it() {
        let streams = Streams::default();
        streams.put(vec![1], stream("a")).unwrap();
        assert!(streams.take(&[1], "b", 1, Some("k")).is_err());
        assert!(streams.take(&[1], "a", 2, Some("k")).is_err());
        assert!(streams.take(&[1], "a", 1, Some("other")).is_err());
        assert!(streams.take(&[1], "a", 1, Some("k")).is_ok());
        assert!(streams.is_empty());
    }

    #[test]
    fn an_idle_stream_expires() {
        let Some(long_ago) = Instant::now().checked_sub(IDLE_EXPIRY + Duration::from_secs(1))
        else {
            return; // the monotonic clock started too recently to go back that far
        };
        let streams = Streams::default();
        streams.put(vec![1], stream("a")).unwrap();
        streams.put(vec![2], stream("a")).unwrap();
        for s in streams.open.lock().unwrap().values_mut() {
            s.last_used = long_ago;
        }
        assert!(matches!(
            streams.take(&[1], "a", 1, Some("k")),
            Err(OpError::InvalidCorrelationValue(_))
        ));
        // A new stream sweeps the idle ones out.
        streams.put(vec![3], stream("a")).unwrap();
        assert_eq!(streams.len(), 1);
    }

    #[test]
    fn all_streams_together_hold_at_most_the_total() {
        let streams = Streams::default();
        let full = |owner: &str| {
            let mut s = stream(owner);
            s.data = Zeroizing::new(vec![0; MAX_STREAM_BYTES]);
            s
        };
        let fit = MAX_TOTAL_BYTES / MAX_STREAM_BYTES;
        for i in 0..fit {
            // Spread over owners so that the per-client limit is not what stops them.
            streams.put(vec![i as u8], full(&format!("c{i}"))).unwrap();
        }
        assert!(matches!(
            streams.put(vec![0xff], full("late")),
            Err(OpError::ServerLimitExceeded(_))
        ));
    }

    #[test]
    fn a_stream_holds_at_most_its_limit() {
        let mut s = stream("a");
        s.append(&vec![0; MAX_STREAM_BYTES]).unwrap();
        assert!(s.append(&[0]).is_err());
    }

    #[test]
    fn the_final_part_is_completed_with_the_first_parts_fields() {
        let mut s = stream("a");
        s.first = vec![Ttlv::bytes(Tag::IV_COUNTER_NONCE, vec![1; 16])];
        s.data = Zeroizing::new(vec![7; 3]);
        let last = Ttlv::structure(
            Tag::REQUEST_PAYLOAD,
            vec![
                Ttlv::bytes(Tag::CORRELATION_VALUE, vec![1]),
                Ttlv::boolean(Tag::FINAL_INDICATOR, true),
                Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, vec![2; 16]),
            ],
        );
        let p = final_payload(&last, &s);
        assert_eq!(
            p.child(Tag::UNIQUE_IDENTIFIER).unwrap().as_text(),
            Some("k")
        );
        assert_eq!(p.child(Tag::DATA).unwrap().as_bytes(), Some(&[7u8; 3][..]));
        assert!(p.child(Tag::IV_COUNTER_NONCE).is_some());
        assert!(p.child(Tag::AUTHENTICATED_ENCRYPTION_TAG).is_some());
        assert!(p.child(Tag::FINAL_INDICATOR).is_none());
    }
}
