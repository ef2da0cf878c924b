//! Get with a Key Wrapping Specification: the object's Key Value is handed out encrypted
//! under another key the caller may use (KMIP 2.1 §3.3 Key Wrapping Data, §7.18 Key Wrapping
//! Specification). akm does the Encrypt wrapping method with an AES key whose Cryptographic
//! Usage Mask has Wrap Key, in the NIST Key Wrap block cipher mode (RFC 3394), with the Key
//! Value TTLV-encoded (the default) or its bare key bytes (Encoding Option No Encoding).

use super::Caller;
use super::{load_for, Ctx};
use crate::crypto::{self, CryptoError};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{
    block_cipher_mode, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    encoding_option, object_type as ot, operation, state, wrapping_method,
};
use crate::ttlv::{Tag, Ttlv, Value};

/// A parsed Key Wrapping Specification.
pub struct Spec {
    /// The Encryption Key Information, echoed in the Key Wrapping Data.
    key_information: Ttlv,
    /// The wrapping key.
    uid: String,
    /// Cryptographic Parameters the client named, if any.
    parameters: Option<Ttlv>,
    /// Encoding Option (TTLV Encoding when absent).
    encoding: u32,
}

/// Reads a Key Wrapping Specification, refusing what akm does not do.
pub fn parse(spec: &Ttlv) -> Result<Spec, OpError> {
    let method = spec.child(Tag::WRAPPING_METHOD).and_then(Ttlv::as_enum);
    match method {
        Some(wrapping_method::ENCRYPT) => {}
        Some(_) => {
            return Err(OpError::FeatureNotSupported(
                "wrapping methods other than Encrypt",
            ))
        }
        None => return Err(OpError::InvalidMessage("missing Wrapping Method".into())),
    }
    if spec.child(Tag::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(OpError::FeatureNotSupported("MAC/signature key wrapping"));
    }
    if spec.child(Tag::ATTRIBUTE_NAME).is_some() {
        return Err(OpError::FeatureNotSupported(
            "wrapping attributes with the key",
        ));
    }
    let key_information = spec
        .child(Tag::ENCRYPTION_KEY_INFORMATION)
        .ok_or_else(|| OpError::InvalidMessage("missing Encryption Key Information".into()))?;
    let uid = key_information
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .ok_or_else(|| OpError::InvalidMessage("wrapping key without Unique Identifier".into()))?
        .to_owned();
    let encoding = match spec.child(Tag::ENCODING_OPTION).map(Ttlv::as_enum) {
        None => encoding_option::TTLV_ENCODING,
        Some(Some(e @ (encoding_option::NO_ENCODING | encoding_option::TTLV_ENCODING))) => e,
        Some(_) => return Err(OpError::InvalidField("unknown Encoding Option".into())),
    };
    Ok(Spec {
        parameters: key_information
            .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
            .cloned(),
        key_information: key_information.clone(),
        uid,
        encoding,
    })
}

/// Replaces the Key Value of `object` (a Get response's object structure) by its wrapping
/// under the key `spec` names, and adds the Key Wrapping Data.
pub fn wrap_object(ctx: &Ctx, who: &Caller, spec: &Spec, object: Ttlv) -> Result<Ttlv, OpError> {
    // An RSA Public Key wraps with RSA-OAEP; anything else must be an AES wrapping key.
    let rsa = rsa_wrapping_key(ctx, who, spec)?;
    let (key, mode) = match &rsa {
        Some(_) => (zeroize::Zeroizing::new(Vec::new()), 0),
        None => wrapping_key(ctx, who, spec)?,
    };
    let Value::Structure(mut children) = object.value else {
        return Err(OpError::FeatureNotSupported(
            "wrapping an object without a Key Block",
        ));
    };
    let block = children
        .iter_mut()
        .find(|c| c.tag == Tag::KEY_BLOCK)
        .ok_or(OpError::FeatureNotSupported(
            "wrapping an object without a Key Block",
        ))?;
    let Value::Structure(fields) = &mut block.value else {
        return Err(OpError::FeatureNotSupported(
            "wrapping an object without a Key Block",
        ));
    };
    let value =
        fields
            .iter_mut()
            .find(|f| f.tag == Tag::KEY_VALUE)
            .ok_or(OpError::FeatureNotSupported(
                "wrapping an object without a Key Value",
            ))?;
    let plain = zeroize::Zeroizing::new(match spec.encoding {
        encoding_option::NO_ENCODING => value
            .child(Tag::KEY_MATERIAL)
            .and_then(Ttlv::as_bytes)
            .ok_or_else(|| {
                OpError::InvalidField("No Encoding needs Key Material that is a Byte String".into())
            })?
            .to_vec(),
        _ => value.encode(),
    });
    let wrapped = if let Some(r) = &rsa {
        crypto::asym::oaep_encrypt(r.format, &r.der, r.hash, r.mgf_hash, None, &plain)?
    } else if mode == block_cipher_mode::AESKEYWRAPPADDING {
        crypto::kwp::wrap(&key, &plain).map_err(|e| match e {
            crypto::kwp::KwpError::NotInModule(why) => {
                OpError::Crypto(CryptoError::NotInModule(why))
            }
            other => OpError::InvalidField(other.to_string()),
        })?
    } else {
        crypto::keywrap::wrap(&key, &plain).map_err(|e| match e {
            CryptoError::KeyWrapInput(why) => OpError::InvalidField(why.into()),
            other => OpError::Crypto(other),
        })?
    };
    *value = Ttlv::bytes(Tag::KEY_VALUE, wrapped);
    let mut data = vec![
        Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
        spec.key_information.clone(),
    ];
    if spec.encoding == encoding_option::NO_ENCODING {
        data.push(Ttlv::enumeration(Tag::ENCODING_OPTION, spec.encoding));
    }
    fields.push(Ttlv::structure(Tag::KEY_WRAPPING_DATA, data));
    Ok(Ttlv::structure(object.tag, children))
}

/// An RSA wrapping key: its public key DER and the OAEP hashes.
struct RsaWrapper {
    format: u32,
    der: zeroize::Zeroizing<Vec<u8>>,
    hash: u32,
    mgf_hash: u32,
}

/// The RSA-OAEP wrapping key `spec` names, if it is an RSA Public Key: Active, with Wrap Key
/// in its usage mask; OAEP with the Hashing Algorithm (and Mask Generator Hashing Algorithm)
/// of the client's or the key's Cryptographic Parameters, SHA-256 by default.
fn rsa_wrapping_key(ctx: &Ctx, who: &Caller, spec: &Spec) -> Result<Option<RsaWrapper>, OpError> {
    use crate::kmip::enums::{hashing_algorithm as ha, padding_method};
    let obj = load_for(ctx, who, &spec.uid, operation::GET)?;
    if obj.object_type != ot::PUBLIC_KEY
        || obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM) != Some(alg::RSA)
    {
        return Ok(None);
    }
    if obj.int_attr(attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0) & usage::WRAP_KEY == 0 {
        return Err(OpError::IncompatibleUsageMask);
    }
    ctx.crypto
        .check_separation(obj.int_attr(attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0))?;
    if obj.state() != state::ACTIVE {
        return Err(OpError::WrongState);
    }
    let params: Option<Vec<Ttlv>> = match &spec.parameters {
        Some(p) => Some(p.children().to_vec()),
        None => match obj.get(attr::CRYPTOGRAPHIC_PARAMETERS) {
            Some(Value::Structure(c)) => Some(c.clone()),
            _ => None,
        },
    };
    let field = |tag| {
        params
            .as_ref()
            .and_then(|p| p.iter().find(|t| t.tag == tag))
            .and_then(Ttlv::as_enum)
    };
    if field(Tag::PADDING_METHOD).is_some_and(|p| p != padding_method::OAEP) {
        return Err(OpError::FeatureNotSupported(
            "RSA key wrapping other than OAEP",
        ));
    }
    let hash = field(Tag::HASHING_ALGORITHM).unwrap_or(ha::SHA_256);
    let mgf_hash = field(Tag::MASK_GENERATOR_HASHING_ALGORITHM).unwrap_or(hash);
    for h in [hash, mgf_hash] {
        if let Some(name) = crypto::digest::refused_hash(h) {
            return Err(OpError::RefusedAlgorithm(name));
        }
    }
    // A wrapping key kept wrapped as registered has no usable material here.
    if obj.registered_wrapping.is_some() {
        return Err(OpError::WrappedAsRegistered);
    }
    let wrapped = ctx
        .store
        .get_material(&spec.uid)?
        .ok_or(OpError::ObjectDestroyed)?;
    let material = ctx.kek.unwrap(&spec.uid, obj.key_version, &wrapped)?;
    let item = crate::ttlv::decode(&material, &crate::ttlv::Limits::default())
        .map_err(|_| OpError::CorruptRecord(spec.uid.clone()))?;
    let der = item
        .as_bytes()
        .map(|b| zeroize::Zeroizing::new(b.to_vec()))
        .ok_or(OpError::KeyFormatNotSupported)?;
    Ok(Some(RsaWrapper {
        format: obj.format,
        der,
        hash,
        mgf_hash,
    }))
}

/// The wrapping key's bytes and the block cipher mode, once it is known to be an active AES
/// key for wrapping whose Cryptographic Parameters allow NIST Key Wrap or AES Key Wrap Padding
/// (KMIP 2.1 §7.18: parameters the client names must match one of the key's).
fn wrapping_key(
    ctx: &Ctx,
    who: &Caller,
    spec: &Spec,
) -> Result<(zeroize::Zeroizing<Vec<u8>>, u32), OpError> {
    let obj = load_for(ctx, who, &spec.uid, operation::GET)?;
    if obj.object_type != ot::SYMMETRIC_KEY
        || obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM) != Some(alg::AES)
    {
        return Err(OpError::InvalidField(
            "the wrapping key is not an AES key".into(),
        ));
    }
    if obj.int_attr(attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0) & usage::WRAP_KEY == 0 {
        return Err(OpError::IncompatibleUsageMask);
    }
    ctx.crypto
        .check_separation(obj.int_attr(attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0))?;
    if obj.state() != state::ACTIVE {
        return Err(OpError::WrongState);
    }
    let own: Vec<&Value> = obj.all(attr::CRYPTOGRAPHIC_PARAMETERS).collect();
    let parameters = match &spec.parameters {
        // A key with no Cryptographic Parameters of its own takes the ones the client names
        // (PyKMIP names NIST Key Wrap on every wrapped Get).
        Some(p) if own.is_empty() || own.iter().any(|v| **v == p.value) => Some(&p.value),
        Some(_) => {
            return Err(OpError::InvalidField(
                "the Cryptographic Parameters are not the wrapping key's".into(),
            ))
        }
        None => own.first().copied(),
    };
    let mode = parameters.and_then(|p| match p {
        Value::Structure(c) => c
            .iter()
            .find(|i| i.tag == Tag::BLOCK_CIPHER_MODE)
            .and_then(Ttlv::as_enum),
        _ => None,
    });
    // With no mode named anywhere, AES Key Wrap (RFC 3394).
    let mode = mode.unwrap_or(block_cipher_mode::NISTKEYWRAP);
    if ![
        block_cipher_mode::NISTKEYWRAP,
        block_cipher_mode::AESKEYWRAPPADDING,
    ]
    .contains(&mode)
    {
        return Err(OpError::FeatureNotSupported(
            "wrapping modes other than NIST Key Wrap and AES Key Wrap Padding",
        ));
    }
    // A wrapping key kept wrapped as registered has no usable material here.
    if obj.registered_wrapping.is_some() {
        return Err(OpError::WrappedAsRegistered);
    }
    let wrapped = ctx
        .store
        .get_material(&spec.uid)?
        .ok_or(OpError::ObjectDestroyed)?;
    Ok((ctx.kek.unwrap(&spec.uid, obj.key_version, &wrapped)?, mode))
}
