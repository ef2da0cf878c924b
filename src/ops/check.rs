//! Check: whether the caller may use an object for the given purposes (KMIP 2.1 §6.1.7). akm
//! checks the Cryptographic Usage Mask against the object's and the Lease Time against the
//! one it grants; it keeps no usage limits, so a Usage Limits Count always passes. A pass
//! answers with the identifier (the ID Placeholder for the rest of the batch); a refusal is
//! Incompatible Cryptographic Usage Mask or Permission Denied.

use super::create::LEASE_TIME_SECS;
use super::Caller;
use super::{load_for, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::operation;
use crate::ttlv::{Tag, Ttlv, Value};

/// Runs Check.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let obj = load_for(ctx, who, &uid, operation::CHECK)?;
    if let Some(wanted) = field(call, Tag::CRYPTOGRAPHIC_USAGE_MASK, Ttlv::as_int)? {
        let allowed = obj.int_attr(attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0);
        if wanted & !allowed != 0 {
            return Err(OpError::IncompatibleUsageMask);
        }
    }
    let lease = field(call, Tag::LEASE_TIME, |t| match t.value {
        Value::Interval(v) => Some(v),
        _ => None,
    })?;
    if lease.is_some_and(|l| l > LEASE_TIME_SECS) {
        return Err(OpError::PermissionDenied);
    }
    field(call, Tag::USAGE_LIMITS_COUNT, Ttlv::as_long)?;
    Ok(Reply::uid_only(uid))
}

/// An optional field of the request, which must have the right type when present.
fn field<T>(
    call: &Call<'_>,
    tag: Tag,
    read: impl Fn(&Ttlv) -> Option<T>,
) -> Result<Option<T>, OpError> {
    match call.payload.child(tag) {
        None => Ok(None),
        Some(t) => read(t)
            .map(Some)
            .ok_or_else(|| OpError::InvalidMessage(format!("{tag:?} has the wrong type"))),
    }
}
