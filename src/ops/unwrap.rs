//! Register of wrapped key material (KMIP 2.1 §2.1.3 Key Wrapping Data, §6.1.40 Register).
//! A key wrapped under a key akm holds, and that the caller may use, is unwrapped before it is
//! stored under akm's own KEK: akm unwraps the Encrypt wrapping method with an AES key that
//! allows Unwrap Key and may process (Active, or Deactivated), in NIST Key Wrap (RFC 3394, the
//! default) or AES Key Wrap Padding (RFC 5649) mode, with the Key Value TTLV-encoded (the
//! default) or bare key bytes (Encoding Option No Encoding), or with an RSA private key
//! (OAEP). A key wrapped under a key that is not on this server (key escrow, migrations) is
//! kept as registered: see `WrappedRegister::AsRegistered`.

use super::key_use::{load_key_by_uid, Check, Purpose};
use super::Caller;
use super::{Call, Ctx};
use crate::crypto::{keywrap, kwp, CryptoError};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{
    block_cipher_mode as bcm, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    encoding_option, operation, wrapping_method,
};
use crate::kmip::objects::object_tag;
use crate::ttlv::{self, Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// How a Register payload's key is to be stored.
pub enum WrappedRegister {
    /// The key is not wrapped.
    NotWrapped,
    /// The payload with the Key Value unwrapped and the Key Wrapping Data removed.
    Unwrapped(Ttlv),
    /// Wrapped under a key that is not on this server, or that the caller may not use:
    /// stored as registered. Carries the wrapping key's Unique Identifier, if named.
    AsRegistered(Option<String>),
}

/// The Unique Identifier of the key a Key Wrapping Data names for encryption, if any.
fn wrapping_key_uid(data: &Ttlv) -> Option<&str> {
    data.child(Tag::ENCRYPTION_KEY_INFORMATION)
        .and_then(|i| i.child(Tag::UNIQUE_IDENTIFIER))
        .and_then(Ttlv::as_text)
}

/// Whether akm holds the key `uid` and the caller may use it at Register: the decision is
/// recorded like any other access decision, and a key the caller may not use is treated as
/// absent, so the answer tells the caller nothing about objects it cannot see.
fn holds_usable_key(ctx: &Ctx, who: &Caller, uid: &str) -> Result<bool, OpError> {
    let Some(row) = ctx.store.get(uid)? else {
        return Ok(false);
    };
    let policy = super::object::Object::row_policy(&row)?;
    Ok(who.require_key(&policy, uid, operation::REGISTER).is_ok())
}

/// What to store for a Register payload: the object as given, unwrapped, or wrapped as
/// registered.
pub fn unwrapped_payload(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    object_type: u32,
) -> Result<WrappedRegister, OpError> {
    let Some(tag) = object_tag(object_type) else {
        return Ok(WrappedRegister::NotWrapped);
    };
    let Some(block) = call
        .payload
        .child(tag)
        .and_then(|o| o.child(Tag::KEY_BLOCK))
    else {
        return Ok(WrappedRegister::NotWrapped);
    };
    let Some(data) = block.child(Tag::KEY_WRAPPING_DATA) else {
        return Ok(WrappedRegister::NotWrapped);
    };
    let held = match wrapping_key_uid(data) {
        Some(uid) => holds_usable_key(ctx, who, uid)?,
        None => false,
    };
    if !held {
        return Ok(WrappedRegister::AsRegistered(
            wrapping_key_uid(data).map(str::to_owned),
        ));
    }
    // KMIP makes a wrapped Key Value a Byte String; PyKMIP sends a Key Value structure whose
    // Key Material is the wrapped bytes. Both mean the same.
    let key_value = block.child(Tag::KEY_VALUE);
    let wrapped = key_value
        .and_then(Ttlv::as_bytes)
        .or_else(|| {
            key_value
                .and_then(|v| v.child(Tag::KEY_MATERIAL))
                .and_then(Ttlv::as_bytes)
        })
        .ok_or_else(|| OpError::InvalidField("a wrapped Key Value must be a Byte String".into()))?;
    let value = unwrap_value(ctx, who, call.now, data, wrapped)?;
    let mut payload = call.payload.clone();
    for child in payload_children(&mut payload) {
        if child.tag != tag {
            continue;
        }
        for b in payload_children(child) {
            if b.tag != Tag::KEY_BLOCK {
                continue;
            }
            let fields = payload_children(b);
            fields.retain(|f| f.tag != Tag::KEY_WRAPPING_DATA);
            for f in fields.iter_mut() {
                if f.tag == Tag::KEY_VALUE {
                    *f = value.clone();
                }
            }
        }
    }
    Ok(WrappedRegister::Unwrapped(payload))
}

/// The children of a structure (empty for anything else, which has none to edit).
fn payload_children(t: &mut Ttlv) -> &mut Vec<Ttlv> {
    if !matches!(t.value, Value::Structure(_)) {
        t.value = Value::Structure(Vec::new());
    }
    match &mut t.value {
        Value::Structure(c) => c,
        _ => unreachable!("set to a structure above"),
    }
}

/// Unwraps a Key Value under the key Key Wrapping Data names.
fn unwrap_value(
    ctx: &Ctx,
    who: &Caller,
    now: i64,
    data: &Ttlv,
    wrapped: &[u8],
) -> Result<Ttlv, OpError> {
    match data.child(Tag::WRAPPING_METHOD).and_then(Ttlv::as_enum) {
        Some(wrapping_method::ENCRYPT) => {}
        Some(_) => {
            return Err(OpError::FeatureNotSupported(
                "wrapping methods other than Encrypt",
            ))
        }
        None => return Err(OpError::InvalidMessage("missing Wrapping Method".into())),
    }
    if data.child(Tag::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(OpError::FeatureNotSupported("MAC/signature key wrapping"));
    }
    let info = data
        .child(Tag::ENCRYPTION_KEY_INFORMATION)
        .ok_or_else(|| OpError::InvalidMessage("missing Encryption Key Information".into()))?;
    let uid = info
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .ok_or_else(|| OpError::InvalidMessage("wrapping key without Unique Identifier".into()))?;
    let mode = info
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .and_then(|p| p.child(Tag::BLOCK_CIPHER_MODE))
        .and_then(Ttlv::as_enum)
        .unwrap_or(bcm::NISTKEYWRAP);
    let encoding = data
        .child(Tag::ENCODING_OPTION)
        .and_then(Ttlv::as_enum)
        .unwrap_or(encoding_option::TTLV_ENCODING);
    let check = Check {
        operation: operation::REGISTER,
        usage: usage::UNWRAP_KEY,
        purpose: Purpose::Process,
        amount: wrapped.len(),
        now,
    };
    let key = load_key_by_uid(ctx, who, uid, &check)?;
    if key.obj.object_type == crate::kmip::enums::object_type::PRIVATE_KEY {
        // RSA-OAEP with the client's named hashes (SHA-256 by default).
        let params = info.child(Tag::CRYPTOGRAPHIC_PARAMETERS);
        let field = |tag| params.and_then(|p| p.child(tag)).and_then(Ttlv::as_enum);
        let hash =
            field(Tag::HASHING_ALGORITHM).unwrap_or(crate::kmip::enums::hashing_algorithm::SHA_256);
        let mgf_hash = field(Tag::MASK_GENERATOR_HASHING_ALGORITHM).unwrap_or(hash);
        for h in [hash, mgf_hash] {
            if let Some(name) = crate::crypto::digest::refused_hash(h) {
                return Err(OpError::RefusedAlgorithm(name));
            }
        }
        let item = ttlv::decode(&key.material, &ttlv::Limits::default())
            .map_err(|_| OpError::CorruptRecord(uid.to_owned()))?;
        let der = item.as_bytes().ok_or(OpError::KeyFormatNotSupported)?;
        let plain = key.counted(
            ctx,
            who,
            crate::crypto::asym::oaep_decrypt(key.obj.format, der, hash, mgf_hash, None, wrapped),
        )?;
        return decode_value(plain, encoding);
    }
    if key.obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM) != Some(alg::AES) {
        return Err(OpError::InvalidField(
            "the wrapping key is not an AES key".into(),
        ));
    }
    let unwrapped: Result<Zeroizing<Vec<u8>>, OpError> = match mode {
        bcm::NISTKEYWRAP => keywrap::unwrap(&key.material, wrapped).map_err(|e| match e {
            CryptoError::KeyWrapInput(why) => OpError::InvalidField(why.into()),
            other => OpError::Crypto(other),
        }),
        bcm::AESKEYWRAPPADDING => kwp::unwrap(&key.material, wrapped).map_err(|e| match e {
            kwp::KwpError::NotInModule(why) => OpError::Crypto(CryptoError::NotInModule(why)),
            _ => OpError::Crypto(CryptoError::Unwrap),
        }),
        _ => {
            return Err(OpError::UnsupportedParameters(
                "unwrapping modes: NIST Key Wrap and AES Key Wrap Padding",
            ))
        }
    };
    let plain = key.counted(ctx, who, unwrapped)?;
    decode_value(plain, encoding)
}

/// The Key Value of unwrapped bytes: bare Key Material (No Encoding) or a TTLV Key Value.
fn decode_value(plain: Zeroizing<Vec<u8>>, encoding: u32) -> Result<Ttlv, OpError> {
    match encoding {
        encoding_option::NO_ENCODING => Ok(Ttlv::structure(
            Tag::KEY_VALUE,
            vec![Ttlv::bytes(Tag::KEY_MATERIAL, plain.to_vec())],
        )),
        encoding_option::TTLV_ENCODING => {
            let value = ttlv::decode(&plain, &ttlv::Limits::default())
                .map_err(|_| OpError::InvalidField("the unwrapped Key Value is not TTLV".into()))?;
            if value.tag != Tag::KEY_VALUE {
                return Err(OpError::InvalidField(
                    "the unwrapped TTLV is not a Key Value".into(),
                ));
            }
            Ok(value)
        }
        _ => Err(OpError::InvalidField("unknown Encoding Option".into())),
    }
}
