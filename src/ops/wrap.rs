//! Get with a Key Wrapping Specification: the object's Key Value wrapped under another of the
//! caller's keys with AES Key Wrap (NIST SP 800-38F KW, RFC 3394), and Key Wrapping Data in the
//! Key Block saying how (KMIP 1.4 sections 2.1.5, 2.1.6 and 4.11). Only the Encrypt wrapping
//! method with an AES key; MAC/signature wrapping and wrapped attributes are not supported.

use super::{load_for, Ctx};
use crate::crypto::key_wrap::{self, KeyWrapError};
use crate::error::OpError;
use crate::identity::Principal;
use crate::kmip::enums::{
    block_cipher_mode, cryptographic_algorithm as alg, cryptographic_usage_mask as mask,
    encoding_option, object_type as ot, operation, state, wrapping_method,
};
use crate::ttlv::{Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// A checked Key Wrapping Specification.
pub struct WrapSpec {
    /// Unique Identifier of the wrapping key.
    key_uid: String,
    /// The Encryption Key Information as the client gave it, echoed in Key Wrapping Data.
    key_information: Ttlv,
    /// No Encoding (the Key Material bytes) or TTLV Encoding (the whole Key Value).
    encoding: u32,
}

/// Reads a Key Wrapping Specification, refusing what akm does not do.
pub fn parse_spec(spec: &Ttlv) -> Result<WrapSpec, OpError> {
    let method = spec.child(Tag::WRAPPING_METHOD).and_then(Ttlv::as_enum);
    if method != Some(wrapping_method::ENCRYPT) {
        return Err(OpError::FeatureNotSupported(
            "key wrapping other than the Encrypt method",
        ));
    }
    if spec.child(Tag::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(OpError::FeatureNotSupported("MAC/signature key wrapping"));
    }
    if spec.child(Tag::ATTRIBUTE_NAME).is_some() {
        return Err(OpError::FeatureNotSupported(
            "wrapping attributes with a key",
        ));
    }
    let key_information = spec.child(Tag::ENCRYPTION_KEY_INFORMATION).ok_or_else(|| {
        OpError::InvalidField("Encrypt wrapping needs Encryption Key Information".into())
    })?;
    let key_uid = key_information
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .ok_or_else(|| {
            OpError::InvalidField("Encryption Key Information without Unique Identifier".into())
        })?
        .to_owned();
    let mode = key_information
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .and_then(|p| p.child(Tag::BLOCK_CIPHER_MODE))
        .and_then(Ttlv::as_enum);
    if mode.is_some_and(|m| m != block_cipher_mode::NISTKEYWRAP) {
        return Err(OpError::FeatureNotSupported(
            "key wrapping with a block cipher mode other than NIST Key Wrap",
        ));
    }
    let encoding = match spec.child(Tag::ENCODING_OPTION).map(Ttlv::as_enum) {
        None => encoding_option::TTLV_ENCODING,
        Some(Some(e @ (encoding_option::NO_ENCODING | encoding_option::TTLV_ENCODING))) => e,
        Some(_) => return Err(OpError::InvalidField("unknown Encoding Option".into())),
    };
    Ok(WrapSpec {
        key_uid,
        key_information: key_information.clone(),
        encoding,
    })
}

/// The wrapping key's bytes: one of the caller's AES keys, Active, with Wrap Key in its usage.
pub fn wrapping_key(
    ctx: &Ctx,
    who: &Principal,
    spec: &WrapSpec,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let key = load_for(ctx, who, &spec.key_uid, operation::GET)?;
    if key.object_type != ot::SYMMETRIC_KEY
        || key.enum_attr("Cryptographic Algorithm") != Some(alg::AES)
    {
        return Err(OpError::InvalidField(
            "the wrapping key must be an AES key".into(),
        ));
    }
    if key.state() != state::ACTIVE {
        return Err(OpError::WrongState);
    }
    if key.int_attr("Cryptographic Usage Mask").unwrap_or(0) & mask::WRAP_KEY == 0 {
        return Err(OpError::IncompatibleUsageMask);
    }
    let stored = ctx
        .store
        .get_material(&spec.key_uid)?
        .ok_or(OpError::ObjectDestroyed)?;
    Ok(ctx.kek.unwrap(&spec.key_uid, key.key_version, &stored)?)
}

/// The object structure of a Get response with its Key Value replaced by the wrapped bytes
/// and Key Wrapping Data appended to its Key Block.
pub fn wrap_object(object: Ttlv, key: &[u8], spec: &WrapSpec) -> Result<Ttlv, OpError> {
    let Value::Structure(mut fields) = object.value else {
        return Err(OpError::InvalidField("only keys can be wrapped".into()));
    };
    let block = fields
        .iter_mut()
        .find(|f| f.tag == Tag::KEY_BLOCK)
        .ok_or_else(|| {
            OpError::InvalidField("only objects with a Key Block can be wrapped".into())
        })?;
    let Value::Structure(block_fields) = &mut block.value else {
        return Err(OpError::InvalidField("malformed Key Block".into()));
    };
    let key_value = block_fields
        .iter_mut()
        .find(|f| f.tag == Tag::KEY_VALUE)
        .ok_or_else(|| OpError::InvalidField("Key Block without Key Value".into()))?;
    let plain = Zeroizing::new(if spec.encoding == encoding_option::NO_ENCODING {
        key_value
            .child(Tag::KEY_MATERIAL)
            .and_then(Ttlv::as_bytes)
            .ok_or_else(|| {
                OpError::InvalidField("No Encoding wraps a byte-string Key Material only".into())
            })?
            .to_vec()
    } else {
        key_value.encode()
    });
    let wrapped = key_wrap::wrap(key, &plain).map_err(|e| match e {
        KeyWrapError::DataLength => {
            OpError::InvalidField("NIST Key Wrap needs key material of whole 8-byte blocks".into())
        }
        other => OpError::InvalidField(other.to_string()),
    })?;
    *key_value = Ttlv::bytes(Tag::KEY_VALUE, wrapped);
    block_fields.push(Ttlv::structure(
        Tag::KEY_WRAPPING_DATA,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            spec.key_information.clone(),
            Ttlv::enumeration(Tag::ENCODING_OPTION, spec.encoding),
        ],
    ));
    Ok(Ttlv::structure(object.tag, fields))
}
