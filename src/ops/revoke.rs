//! Revoke: a compromise reason moves the object to Compromised (from any live state); any
//! other reason deactivates a Pre-Active or Active object (SP 800-57 transitions).

use super::Caller;
use super::{modify, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{operation, revocation_reason_code as rrc, state};
use crate::ttlv::{Tag, Ttlv, Value};

/// Runs Revoke.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let reason = call
        .payload
        .child(Tag::REVOCATION_REASON)
        .ok_or_else(|| OpError::InvalidMessage("missing Revocation Reason".into()))?;
    let code = reason
        .child(Tag::REVOCATION_REASON_CODE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| OpError::InvalidMessage("missing Revocation Reason Code".into()))?;
    let occurred = call
        .payload
        .child(Tag::COMPROMISE_OCCURRENCE_DATE)
        .and_then(Ttlv::as_datetime);
    let reason_value = reason.value.clone();
    let now = call.now;
    modify(ctx, who, uid.clone(), operation::REVOKE, now, move |obj| {
        let current = obj.state();
        let compromise = code == rrc::KEY_COMPROMISE || code == rrc::CA_COMPROMISE;
        let next = match current {
            state::PRE_ACTIVE | state::ACTIVE | state::DEACTIVATED if compromise => {
                state::COMPROMISED
            }
            state::PRE_ACTIVE | state::ACTIVE => state::DEACTIVATED,
            _ => return Err(OpError::WrongState),
        };
        obj.set(attr::STATE, Value::Enumeration(next));
        obj.set(attr::REVOCATION_REASON, reason_value);
        if next == state::COMPROMISED {
            obj.set(attr::COMPROMISE_DATE, Value::DateTime(now));
            obj.set(
                attr::COMPROMISE_OCCURRENCE_DATE,
                Value::DateTime(occurred.unwrap_or(now)),
            );
        } else {
            obj.set(attr::DEACTIVATION_DATE, Value::DateTime(now));
        }
        Ok(())
    })?;
    Ok(Reply::uid_only(uid))
}
