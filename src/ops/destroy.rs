//! Destroy: deletes an object's key material (the metadata stays, in state Destroyed or
//! Destroyed Compromised). An Active object must be revoked first.

use super::Caller;
use super::{modify, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{operation, state};
use crate::ttlv::Value;

/// Runs Destroy.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let now = call.now;
    modify(ctx, who, uid.clone(), operation::DESTROY, now, move |obj| {
        let next = match obj.state() {
            state::PRE_ACTIVE | state::DEACTIVATED => state::DESTROYED,
            state::COMPROMISED => state::DESTROYED_COMPROMISED,
            _ => return Err(OpError::WrongState),
        };
        obj.set(attr::STATE, Value::Enumeration(next));
        obj.set(attr::DESTROY_DATE, Value::DateTime(now));
        obj.material_destroyed = true;
        Ok(())
    })?;
    Ok(Reply::uid_only(uid))
}
