//! What every cryptographic operation (Encrypt, Decrypt, MAC, MAC Verify) checks before it
//! uses a key, in one place so no operation can skip a check: access policy, that the object
//! is a key with material, that its algorithm is not a refused one, its Cryptographic Usage
//! Mask, its state and dates (KMIP 2.1 §4.1, §4.16, §4.39, §4.40), and its Usage Limits
//! (checked on loading, counted once the key was used: [`KeyInUse::spend`] after a success,
//! [`KeyInUse::counted`] also after a decryption or unwrap that failed its check).
//! Also reads the request's (or the key's) Cryptographic Parameters.

use super::Caller;
use super::{load_for, modify, Call, Ctx, Object};
use crate::crypto::digest::refused_algorithm;
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{object_type as ot, state, usage_limits_unit};
use crate::ttlv::{Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// Whether an operation protects new data or processes protected data. A Deactivated or
/// Compromised key may still process (decrypt, verify) but never protect (KMIP 2.1 §3.3 and
/// SP 800-57 Part 1 §5.3.4); Protect Stop Date ends protection and Process Start Date begins
/// processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Encrypt, MAC, Sign, wrap.
    Protect,
    /// Decrypt, MAC Verify, Signature Verify, unwrap.
    Process,
}

/// A key cleared for use, with its material unwrapped.
pub struct KeyInUse {
    /// The object's metadata.
    pub obj: Object,
    /// The key bytes (wiped on drop).
    pub material: Zeroizing<Vec<u8>>,
    /// What this use counts against the key's Usage Limits once it succeeds, if it has any.
    pending: Option<PendingUse>,
}

/// A use of a key with Usage Limits, not yet counted.
struct PendingUse {
    operation: u32,
    now: i64,
    amount: usize,
}

impl KeyInUse {
    /// Counts this use against the key's Usage Limits (when it has any). Called once the
    /// operation has succeeded, so a use refused after the key was loaded (bad parameters, or
    /// something the FIPS build does not perform) costs the key nothing. The count is checked
    /// again in the writer's transaction: a concurrent use that spent the rest first refuses
    /// this one, whose output is then dropped.
    pub fn spend(&self, ctx: &Ctx, who: &Caller) -> Result<(), OpError> {
        match &self.pending {
            Some(p) => consume_usage(ctx, who, &self.obj.uid, p.operation, p.now, p.amount),
            None => Ok(()),
        }
    }

    /// `result` of using the key to decrypt or unwrap, counted like [`KeyInUse::spend`] when
    /// it succeeded and also when the cryptography itself failed (a tag or padding that did
    /// not check, an unwrap whose integrity check failed, an OAEP decryption that failed): the
    /// key was used, and such failures must not be retried beyond the key's Usage Limits.
    pub fn counted<T, E: Into<OpError>>(
        &self,
        ctx: &Ctx,
        who: &Caller,
        result: Result<T, E>,
    ) -> Result<T, OpError> {
        let result = result.map_err(Into::into);
        let used = match &result {
            Ok(_) => true,
            Err(e) => used_the_key(e),
        };
        if used {
            self.spend(ctx, who)?;
        }
        result
    }
}

/// Whether an error came from the cryptography with the key rather than from a refusal before
/// the key was used.
fn used_the_key(e: &OpError) -> bool {
    use crate::crypto::{asym::AsymError, cipher::CipherError, CryptoError};
    matches!(
        e,
        OpError::Cipher(CipherError::Authentication | CipherError::BadPadding)
            | OpError::Asym(AsymError::Sign)
            | OpError::Crypto(CryptoError::Unwrap)
    )
}

/// Loads key `uid` for `operation` and checks everything in this module's doc. `usage` is the
/// Cryptographic Usage Mask bit the operation needs; `amount` is what it consumes of the
/// key's Usage Limits (bytes of data).
pub fn load_key(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    operation: u32,
    usage: i32,
    purpose: Purpose,
    amount: usize,
) -> Result<KeyInUse, OpError> {
    let uid = call.uid()?;
    let check = Check {
        operation,
        usage,
        purpose,
        amount,
        now: call.now,
    };
    load_key_by_uid(ctx, who, &uid, &check)
}

/// What [`load_key_by_uid`] checks a key for.
pub struct Check {
    /// The operation (for access policy and errors).
    pub operation: u32,
    /// The Cryptographic Usage Mask bit it needs.
    pub usage: i32,
    /// Protect or process.
    pub purpose: Purpose,
    /// Bytes of data it consumes of the key's Usage Limits.
    pub amount: usize,
    /// The request time.
    pub now: i64,
}

/// [`load_key`] for a key named other than by the request's Unique Identifier (the wrapping
/// key of a Register).
pub fn load_key_by_uid(
    ctx: &Ctx,
    who: &Caller,
    uid: &str,
    check: &Check,
) -> Result<KeyInUse, OpError> {
    let Check {
        operation,
        usage,
        purpose,
        amount,
        now,
    } = *check;
    let uid = uid.to_owned();
    let obj = load_for(ctx, who, &uid, operation)?;
    if !matches!(
        obj.object_type,
        ot::SYMMETRIC_KEY | ot::SECRET_DATA | ot::PRIVATE_KEY | ot::PUBLIC_KEY
    ) {
        return Err(OpError::InvalidField(
            "the object is not a key that can be used for this operation".into(),
        ));
    }
    // A key kept wrapped as registered has no usable material here.
    if obj.registered_wrapping.is_some() {
        return Err(OpError::WrappedAsRegistered);
    }
    if let Some(name) = obj
        .enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM)
        .and_then(refused_algorithm)
    {
        return Err(OpError::RefusedAlgorithm(name));
    }
    let mask = obj.int_attr(attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0);
    if mask & usage == 0 {
        return Err(OpError::IncompatibleUsageMask);
    }
    ctx.crypto.check_separation(mask)?;
    check_state_and_dates(&obj, purpose, now)?;
    // Refused now if already spent; counted by `KeyInUse::spend` once the use succeeds.
    let pending = match obj.get(attr::USAGE_LIMITS) {
        Some(limits) => {
            counted(limits, amount)?;
            Some(PendingUse {
                operation,
                now,
                amount,
            })
        }
        None => None,
    };
    let wrapped = ctx
        .store
        .get_material(&uid)?
        .ok_or(OpError::ObjectDestroyed)?;
    let material = ctx.kek.unwrap(&uid, obj.key_version, &wrapped)?;
    Ok(KeyInUse {
        obj,
        material,
        pending,
    })
}

/// Refuses a key whose state or dates do not allow `purpose` at `now`.
pub fn check_state_and_dates(obj: &Object, purpose: Purpose, now: i64) -> Result<(), OpError> {
    match (obj.state_at(now), purpose) {
        (state::ACTIVE, _) => {}
        (state::DEACTIVATED | state::COMPROMISED, Purpose::Process) => {}
        (state::DESTROYED | state::DESTROYED_COMPROMISED, _) => {
            return Err(OpError::ObjectDestroyed)
        }
        _ => return Err(OpError::WrongState),
    }
    let past = |name: &str| obj.date_attr(name).is_some_and(|d| d <= now);
    let future = |name: &str| obj.date_attr(name).is_some_and(|d| d > now);
    match purpose {
        Purpose::Protect if past(attr::PROTECT_STOP_DATE) => Err(OpError::WrongState),
        Purpose::Process if future(attr::PROCESS_START_DATE) => Err(OpError::WrongState),
        _ => Ok(()),
    }
}

/// Counts this use against the key's Usage Limits (KMIP 2.1 §4.57): Byte limits count the
/// data, Object limits count one per operation. The count is kept in the Usage Limits Count
/// field inside the writer's transaction, so concurrent uses cannot overspend it.
fn consume_usage(
    ctx: &Ctx,
    who: &Caller,
    uid: &str,
    operation: u32,
    now: i64,
    amount: usize,
) -> Result<(), OpError> {
    modify(ctx, who, uid.to_owned(), operation, now, move |obj| {
        let Some(limits) = obj.get(attr::USAGE_LIMITS) else {
            return Ok(());
        };
        if let Some(updated) = counted(limits, amount)? {
            obj.set(attr::USAGE_LIMITS, updated);
        }
        Ok(())
    })
}

/// The Usage Limits `limits` with a use of `amount` bytes counted (None when they set no
/// Total), or Usage Limit Exceeded when what is left does not cover it.
fn counted(limits: &Value, amount: usize) -> Result<Option<Value>, OpError> {
    let Value::Structure(fields) = limits else {
        return Ok(None);
    };
    let field = |tag| fields.iter().find(|t| t.tag == tag);
    let Some(total) = field(Tag::USAGE_LIMITS_TOTAL).and_then(Ttlv::as_long) else {
        return Ok(None);
    };
    let unit = field(Tag::USAGE_LIMITS_UNIT).and_then(Ttlv::as_enum);
    let used = if unit == Some(usage_limits_unit::BYTE) {
        i64::try_from(amount).unwrap_or(i64::MAX)
    } else {
        1
    };
    let left = field(Tag::USAGE_LIMITS_COUNT)
        .and_then(Ttlv::as_long)
        .unwrap_or(total);
    if used > left {
        return Err(OpError::UsageLimitExceeded);
    }
    let mut updated: Vec<Ttlv> = fields
        .iter()
        .filter(|t| t.tag != Tag::USAGE_LIMITS_COUNT)
        .cloned()
        .collect();
    updated.push(Ttlv::long(Tag::USAGE_LIMITS_COUNT, left - used));
    Ok(Some(Value::Structure(updated)))
}

/// Usage Limits as stored when a client sets them, at creation or by an attribute edit (KMIP
/// 1.4 §3.21, 2.1 §4.59): the Usage Limits Count is the server's ("SHALL NOT be set or
/// modified by the client"; "the server SHALL ignore the Usage Limits Count value" in an
/// operation that creates an object), so a client's Count is dropped. When the attribute is
/// first set the Count starts at the Total; a later change of the Total (a correction) keeps
/// what was already used, so the Count is the new Total less the use so far, never below 0.
pub fn usage_limits_from_client(given: &Value, previous: Option<&Value>) -> Value {
    let Value::Structure(fields) = given else {
        return given.clone();
    };
    let long = |fields: &[Ttlv], tag| fields.iter().find(|t| t.tag == tag).and_then(Ttlv::as_long);
    let used = match previous {
        Some(Value::Structure(old)) => match (
            long(old, Tag::USAGE_LIMITS_TOTAL),
            long(old, Tag::USAGE_LIMITS_COUNT),
        ) {
            (Some(total), Some(count)) => total.saturating_sub(count).max(0),
            _ => 0,
        },
        _ => 0,
    };
    let mut out: Vec<Ttlv> = fields
        .iter()
        .filter(|t| t.tag != Tag::USAGE_LIMITS_COUNT)
        .cloned()
        .collect();
    if let Some(total) = long(fields, Tag::USAGE_LIMITS_TOTAL) {
        // The Count sits between Total and Unit, the order of the attribute's structure.
        let at = out
            .iter()
            .position(|t| t.tag == Tag::USAGE_LIMITS_TOTAL)
            .map_or(out.len(), |i| i + 1);
        out.insert(
            at,
            Ttlv::long(Tag::USAGE_LIMITS_COUNT, total.saturating_sub(used).max(0)),
        );
    }
    Value::Structure(out)
}

/// The Cryptographic Parameters of a request, falling back to the key's own attribute (KMIP
/// 2.1 §6.1.18: "if omitted, the server uses the Cryptographic Parameters attribute").
pub fn crypto_params<'a>(call: &'a Call<'_>, obj: &'a Object) -> Option<&'a [Ttlv]> {
    if let Some(p) = call.payload.child(Tag::CRYPTOGRAPHIC_PARAMETERS) {
        return Some(p.children());
    }
    match obj.get(attr::CRYPTOGRAPHIC_PARAMETERS) {
        Some(Value::Structure(c)) => Some(c.as_slice()),
        _ => None,
    }
}

/// An Enumeration field of Cryptographic Parameters.
pub fn param_enum(params: Option<&[Ttlv]>, tag: Tag) -> Result<Option<u32>, OpError> {
    param(params, tag, Ttlv::as_enum)
}

/// A field of Cryptographic Parameters, which must have the right type when present.
pub fn param<T>(
    params: Option<&[Ttlv]>,
    tag: Tag,
    read: impl Fn(&Ttlv) -> Option<T>,
) -> Result<Option<T>, OpError> {
    match params.and_then(|p| p.iter().find(|t| t.tag == tag)) {
        None => Ok(None),
        Some(t) => read(t)
            .map(Some)
            .ok_or_else(|| OpError::InvalidField(format!("{tag:?} has the wrong type"))),
    }
}

/// A Byte String field of the request payload.
pub fn payload_bytes<'a>(call: &'a Call<'_>, tag: Tag) -> Result<Option<&'a [u8]>, OpError> {
    match call.payload.child(tag) {
        None => Ok(None),
        Some(t) => t
            .as_bytes()
            .map(Some)
            .ok_or_else(|| OpError::InvalidMessage(format!("{tag:?} must be a byte string"))),
    }
}

/// The request payload's Data, which the operation cannot do without.
pub fn required_data<'a>(call: &'a Call<'_>) -> Result<&'a [u8], OpError> {
    payload_bytes(call, Tag::DATA)?.ok_or_else(|| OpError::InvalidMessage("missing Data".into()))
}
