//! Activate: Pre-Active → Active, recording the Activation Date.

use super::Caller;
use super::{modify, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{operation, state};
use crate::ttlv::Value;

/// Runs Activate.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let now = call.now;
    modify(
        ctx,
        who,
        uid.clone(),
        operation::ACTIVATE,
        now,
        move |obj| {
            if obj.state() != state::PRE_ACTIVE {
                return Err(OpError::WrongState);
            }
            obj.set(attr::STATE, Value::Enumeration(state::ACTIVE));
            obj.set(attr::ACTIVATION_DATE, Value::DateTime(now));
            Ok(())
        },
    )?;
    Ok(Reply::uid_only(uid))
}
