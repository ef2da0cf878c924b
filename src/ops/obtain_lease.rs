//! Obtain Lease: a new lease on an object (KMIP 2.1 §6.1.35), the interval its Lease Time
//! attribute gives (set at creation), with the Last Change Date so the client can tell whether
//! its cached attributes are stale. A destroyed object gets no lease.

use super::create::LEASE_TIME_SECS;
use super::Caller;
use super::{load_for, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{operation, state};
use crate::ttlv::{Tag, Ttlv, Value};

/// Runs Obtain Lease.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let obj = load_for(ctx, who, &uid, operation::OBTAIN_LEASE)?;
    if matches!(obj.state(), state::DESTROYED | state::DESTROYED_COMPROMISED) {
        return Err(OpError::WrongState);
    }
    let lease = match obj.get(attr::LEASE_TIME) {
        Some(Value::Interval(secs)) => *secs,
        _ => LEASE_TIME_SECS,
    };
    let last_change = obj
        .date_attr(attr::LAST_CHANGE_DATE)
        .unwrap_or(obj.initial_date);
    Ok(Reply::for_object(
        uid,
        vec![
            Ttlv::interval(Tag::LEASE_TIME, lease),
            Ttlv::datetime(Tag::LAST_CHANGE_DATE, last_change),
        ],
    ))
}
