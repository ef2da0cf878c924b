//! Get: returns an object with its key material, unwrapped from the store, in the stored or
//! the requested Key Format Type, optionally wrapped under another key (see `wrap`), unless
//! the object is not Extractable, or Sensitive and not wrapped. The first Get clears the
//! object's Fresh attribute.

use super::Caller;
use super::{load_with_material_for, modify, wrap, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{key_format_type, key_wrap_type, object_type, operation, state};
use crate::kmip::objects::{self, ManagedObject};
use crate::ttlv::{Tag, Ttlv, Value};

/// An RSA Public or Private Key's, or an EC Private Key's, material in Key Format Type `to`
/// (PKCS#1, PKCS#8, X.509; PKCS#8, ECPrivateKey), if it can be given so;
/// anything else stays as stored (and `encode_object` refuses a format it does not have).
fn reencode(
    obj: &super::Object,
    material: zeroize::Zeroizing<Vec<u8>>,
    to: u32,
) -> Result<(zeroize::Zeroizing<Vec<u8>>, u32), OpError> {
    use crate::kmip::enums::cryptographic_algorithm as alg;
    let private = obj.object_type == object_type::PRIVATE_KEY;
    let algorithm = obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM);
    let rsa = algorithm == Some(alg::RSA);
    let ec = private && matches!(algorithm, Some(alg::EC | alg::ECDSA));
    if !(ec || rsa && (private || obj.object_type == object_type::PUBLIC_KEY)) {
        return Ok((material, obj.format));
    }
    let item = crate::ttlv::decode(&material, &crate::ttlv::Limits::default())
        .map_err(|_| OpError::CorruptRecord(obj.uid.clone()))?;
    let Some(der) = item.as_bytes() else {
        return Err(OpError::KeyFormatNotSupported);
    };
    let converted = if ec {
        crate::crypto::asym::convert_ec_private(obj.format, der, to)
    } else {
        crate::crypto::asym::convert_rsa(private, obj.format, der, to)
    }
    .map_err(|_| OpError::KeyFormatNotSupported)?;
    let encoded = Ttlv::bytes(Tag::KEY_MATERIAL, converted.to_vec()).encode();
    Ok((zeroize::Zeroizing::new(encoded), to))
}

/// Whether objects of this type hold secret key material.
fn is_secret(t: u32) -> bool {
    matches!(
        t,
        object_type::SYMMETRIC_KEY
            | object_type::PRIVATE_KEY
            | object_type::SECRET_DATA
            | object_type::SPLIT_KEY
    )
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
    let (obj, wrapped) = load_with_material_for(ctx, who, &uid, operation::GET)?;
    if matches!(obj.state(), state::DESTROYED | state::DESTROYED_COMPROMISED) {
        return Err(OpError::ObjectDestroyed);
    }
    // KMIP 2.1 §4.55 / §4.23: a Sensitive key leaves only wrapped, a non-Extractable one not
    // at all.
    // A key kept wrapped as registered only ever leaves wrapped.
    let clear = wrapping.is_none() && obj.registered_wrapping.is_none();
    if clear && obj.get(attr::SENSITIVE) == Some(&Value::Boolean(true)) {
        return Err(OpError::Sensitive);
    }
    // PCI mode: secret keys never leave in the clear (a PKCS#12 file is no key wrapping).
    if clear && ctx.crypto.clear_refused(obj.object_type) {
        return Err(OpError::ClearExportRefused);
    }
    if obj.get(attr::EXTRACTABLE) == Some(&Value::Boolean(false)) {
        return Err(OpError::NotExtractable);
    }
    // Dual control over export: every Get that takes secret key material out (a public key or
    // certificate is no secret), wrapped too: a wrapping key the caller registered, or the
    // public half of a pair she holds, would let one person take the key out in the clear.
    if is_secret(obj.object_type) {
        super::dual::admit_export(ctx, who, call)?;
    }
    let wrapped = wrapped.ok_or(OpError::ObjectDestroyed)?;
    let material = ctx.kek.unwrap(&uid, obj.key_version, &wrapped)?;
    let mut encoded = if let Some(registered) = &obj.registered_wrapping {
        // Kept wrapped as registered: only that form can be served.
        let key_wrap_type = call
            .payload
            .child(Tag::KEY_WRAP_TYPE)
            .and_then(Ttlv::as_enum);
        as_registered(&obj, registered, material, format, key_wrap_type, &wrapping)?
    } else if format == Some(key_format_type::PKCS_12) {
        // A private key with its certificate chain, password-protected (KMIP 2.1 §6.1.19).
        super::pkcs12::export(ctx, who, &obj, &material)?
    } else {
        // An RSA or EC key asked for in another DER format is re-encoded.
        let (material, stored_format) = match format {
            Some(f) if f != obj.format => reencode(&obj, material, f)?,
            _ => (material, obj.format),
        };
        let managed = ManagedObject {
            object_type: obj.object_type,
            material,
            format: stored_format,
            algorithm: obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM),
            length: obj.int_attr(attr::CRYPTOGRAPHIC_LENGTH),
            data_type: obj.data_type,
            split: obj.split.clone(),
        };
        objects::encode_object(&managed, format)?
    };
    if let Some(spec) = &wrapping {
        encoded = wrap::wrap_object(ctx, who, spec, encoded)?;
    }
    if obj.get(attr::FRESH) == Some(&Value::Boolean(true)) {
        // KMIP 2.1 §4.24: False as soon as the object has been served by Get.
        modify(ctx, who, uid.clone(), operation::GET, call.now, |o| {
            o.set(attr::FRESH, Value::Boolean(false));
            Ok(())
        })?;
    }
    Ok(reply(&obj, uid, encoded))
}

fn reply(obj: &super::Object, uid: String, encoded: Ttlv) -> Reply {
    Reply {
        payload: vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, obj.object_type),
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
            encoded,
        ],
        uid: Some(uid),
    }
}

/// A key kept wrapped as registered, served as registered (KMIP 2.1 §6.1.19: a key is
/// returned in the form it was registered in). With no Key Wrap Type, or As Registered, that
/// is the only form akm has: Not Wrapped would need the wrapping key, which is not here, and
/// the key cannot be wrapped again nor given in another Key Format Type.
fn as_registered(
    obj: &super::Object,
    registered: &Ttlv,
    material: zeroize::Zeroizing<Vec<u8>>,
    format: Option<u32>,
    key_wrap_type: Option<u32>,
    wrapping: &Option<wrap::Spec>,
) -> Result<Ttlv, OpError> {
    if key_wrap_type == Some(key_wrap_type::NOT_WRAPPED) {
        return Err(OpError::WrappedAsRegistered);
    }
    if wrapping.is_some() {
        return Err(OpError::FeatureNotSupported(
            "wrapping a key that is kept wrapped as registered",
        ));
    }
    if format.is_some_and(|f| f != obj.format) {
        return Err(OpError::KeyFormatNotSupported);
    }
    let managed = ManagedObject {
        object_type: obj.object_type,
        material,
        format: obj.format,
        algorithm: obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM),
        length: obj.int_attr(attr::CRYPTOGRAPHIC_LENGTH),
        data_type: obj.data_type,
        split: obj.split.clone(),
    };
    Ok(objects::encode_wrapped_as_registered(&managed, registered)?)
}
