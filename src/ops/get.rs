//! Get: returns an object with its key material, unwrapped from the store, in the stored or
//! the requested Key Format Type, optionally wrapped under another key (see `wrap`), unless
//! the object is not Extractable, or Sensitive and not wrapped. The first Get clears the
//! object's Fresh attribute.

use super::Caller;
use super::{load_for, modify, wrap, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::enums::{object_type, operation, state};
use crate::kmip::objects::{self, ManagedObject};
use crate::ttlv::{Tag, Ttlv, Value};

/// An RSA Public or Private Key's material in Key Format Type `to`, if it can be given so;
/// anything else stays as stored (and `encode_object` refuses a format it does not have).
fn reencode(
    obj: &super::Object,
    material: zeroize::Zeroizing<Vec<u8>>,
    to: u32,
) -> Result<(zeroize::Zeroizing<Vec<u8>>, u32), OpError> {
    use crate::kmip::enums::cryptographic_algorithm as alg;
    let private = obj.object_type == object_type::PRIVATE_KEY;
    let rsa = obj.enum_attr("Cryptographic Algorithm") == Some(alg::RSA);
    if !(rsa && (private || obj.object_type == object_type::PUBLIC_KEY)) {
        return Ok((material, obj.format));
    }
    let item = crate::ttlv::decode(&material, &crate::ttlv::Limits::default())
        .map_err(|_| OpError::CorruptRecord(obj.uid.clone()))?;
    let Some(der) = item.as_bytes() else {
        return Err(OpError::KeyFormatNotSupported);
    };
    let converted = crate::crypto::asym::convert_rsa(private, obj.format, der, to)
        .map_err(|_| OpError::KeyFormatNotSupported)?;
    let encoded = Ttlv::bytes(Tag::KEY_MATERIAL, converted.to_vec()).encode();
    Ok((zeroize::Zeroizing::new(encoded), to))
}

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
    // PCI mode: symmetric keys never leave in the clear.
    if wrapping.is_none() && ctx.crypto.pci_mode && obj.object_type == object_type::SYMMETRIC_KEY {
        return Err(OpError::ClearExportRefused);
    }
    if obj.get("Extractable") == Some(&Value::Boolean(false)) {
        return Err(OpError::NotExtractable);
    }
    let wrapped = ctx
        .store
        .get_material(&uid)?
        .ok_or(OpError::ObjectDestroyed)?;
    let material = ctx.kek.unwrap(&uid, obj.key_version, &wrapped)?;
    // An RSA key asked for in another DER format is re-encoded (PKCS#1, PKCS#8, X.509).
    let (material, stored_format) = match format {
        Some(f) if f != obj.format => reencode(&obj, material, f)?,
        _ => (material, obj.format),
    };
    let managed = ManagedObject {
        object_type: obj.object_type,
        material,
        format: stored_format,
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
