//! Register: stores a client-supplied Symmetric Key, Secret Data or Opaque Object.

use super::create::store_new;
use super::Caller;
use super::{Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attributes;
use crate::kmip::enums::{cryptographic_algorithm as alg, object_type as ot};
use crate::kmip::objects;

/// Runs Register.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let object_type = call.object_type()?;
    let attrs = attributes::read_request_attributes(call.payload, call.version)?;
    let mut managed = objects::parse_object(call.payload, object_type)?;
    if object_type == ot::SYMMETRIC_KEY {
        check_symmetric_key(&managed)?;
    }
    // The key length is a property of the bytes given; record it when the client did not.
    if managed.length.is_none() && object_type == ot::SYMMETRIC_KEY {
        managed.length = Some((managed.material.len() * 8) as i32);
    }
    let uid = store_new(ctx, who, call, attrs, Vec::new(), managed)?;
    Ok(Reply::uid_only(uid))
}

/// An AES key must have an AES length and match its declared length.
fn check_symmetric_key(m: &objects::ManagedObject) -> Result<(), OpError> {
    let bits = (m.material.len() * 8) as i32;
    if m.length.is_some_and(|l| l != bits) {
        return Err(OpError::InvalidField(
            "Cryptographic Length does not match the key material".into(),
        ));
    }
    if m.algorithm == Some(alg::AES) && ![128, 192, 256].contains(&bits) {
        return Err(OpError::InvalidField(
            "AES keys are 128, 192 or 256 bits".into(),
        ));
    }
    Ok(())
}
