//! Get: returns an object with its key material, unwrapped from the store, in the stored or
//! the requested Key Format Type, optionally wrapped under another key (see `wrap`), unless
//! the object is not Extractable, or Sensitive and not wrapped. The first Get clears the
//! object's Fresh attribute.

use super::Caller;
use super::{load_for, modify, wrap, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::enums::{operation, state};
use crate::kmip::objects::{self, ManagedObject};
use crate::ttlv::{Tag, Ttlv, Value};

/// Runs Get.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let wrapping = match call.payload.child(Tag::KEY_WRAPPING_SPECIFICATION) {
        Some(spec) => Some(wrap::parse(spec)?),
        None => None,
    };
    let format = call
        .payload
        .child(Tag::KEY_FORMAT_TYPE)
        .and_then(Ttlv::as_enum);
    let obj = load_for(ctx, who, &uid, operation::GET)?;
    if matches!(obj.state(), state::DESTROYED | state::DESTROYED_COMPROMISED) {
        return Err(OpError::ObjectDestroyed);
    }
    // KMIP 2.1 §4.55 / §4.23: a Sensitive key leaves only wrapped, a non-Extractable one not
    // at all.
    if wrapping.is_none() && obj.get("Sensitive") == Some(&Value::Boolean(true)) {
        return Err(OpError::Sensitive);
    }
    if obj.get("Extractable") == Some(&Value::Boolean(false)) {
        return Err(OpError::NotExtractable);
    }
    let wrapped = ctx
        .store
        .get_material(&uid)?
        .ok_or(OpError::ObjectDestroyed)?;
    let material = ctx.kek.unwrap(&uid, obj.key_version, &wrapped)?;
    let managed = ManagedObject {
        object_type: obj.object_type,
        material,
        format: obj.format,
        algorithm: obj.enum_attr("Cryptographic Algorithm"),
        length: obj.int_attr("Cryptographic Length"),
        data_type: obj.data_type,
        split: obj.split.clone(),
    };
    let mut encoded = objects::encode_object(&managed, format)?;
    if let Some(spec) = &wrapping {
        encoded = wrap::wrap_object(ctx, who, spec, encoded)?;
    }
    if obj.get("Fresh") == Some(&Value::Boolean(true)) {
        // KMIP 2.1 §4.24: False as soon as the object has been served by Get.
        modify(ctx, who, uid.clone(), operation::GET, call.now, |o| {
            o.set("Fresh", Value::Boolean(false));
            Ok(())
        })?;
    }
    Ok(Reply {
        payload: vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, obj.object_type),
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
            encoded,
        ],
        uid: Some(uid),
    })
}
