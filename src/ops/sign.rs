//! Sign and Signature Verify (KMIP 1.4 §4.31-4.32, 2.1 §6.1.55-56) with a private or public
//! key the server holds: RSASSA-PKCS1-v1_5, RSASSA-PSS and ECDSA (see `crypto::asym`). The
//! scheme and hash come from the request's Cryptographic Parameters (Digital Signature
//! Algorithm, or Padding Method and Hashing Algorithm), else the key's own, else PKCS#1 v1.5
//! for RSA and ECDSA for EC keys, with SHA-256 (SHA-384 for a 384-bit EC key). Sign needs a
//! Private Key with Sign in its usage mask, Active and before its Protect Stop Date; Signature
//! Verify a Public Key with Verify, which a Deactivated key may still do. Both may run in
//! several parts (see `stream`): the Signature Data or Validity Indicator comes with the
//! final part only (§6.1.56: non-final parts SHALL NOT include the Validity Indicator).

use super::key_use::{self, param_enum, payload_bytes, required_data, KeyInUse, Purpose};
use super::stream::{self, KeyCheck, Part};
use super::{Call, Caller, Ctx, Reply};
use crate::crypto::asym::{self, AsymError, Scheme};
use crate::crypto::digest::{refused_for_signing, refused_hash};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{
    cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    digital_signature_algorithm as dsa, hashing_algorithm as ha, object_type as ot, operation,
    padding_method, validity_indicator,
};
use crate::ttlv::{self, Tag, Ttlv};
use zeroize::Zeroizing;

/// Runs Sign, in one part or several.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let check = KeyCheck {
        operation: operation::SIGN,
        usage: usage::SIGN,
        purpose: Purpose::Protect,
    };
    in_parts(ctx, who, call, &check, sign)
}

/// Runs Signature Verify, in one part or several.
pub fn verify(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let check = KeyCheck {
        operation: operation::SIGNATURE_VERIFY,
        usage: usage::VERIFY,
        purpose: Purpose::Process,
    };
    in_parts(ctx, who, call, &check, signature_verify)
}

/// Sign and Signature Verify in parts; Digested Data (a hash the client made) is single-part
/// input only.
fn in_parts(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    check: &KeyCheck,
    single: fn(&Ctx, &Caller, &Call<'_>) -> Result<Reply, OpError>,
) -> Result<Reply, OpError> {
    if Part::read(call.payload)?.is_streaming() && call.payload.child(Tag::DIGESTED_DATA).is_some()
    {
        return Err(OpError::InvalidField(
            "Digested Data is a single-part input: send it without Init Indicator".into(),
        ));
    }
    stream::in_parts(ctx, who, call, check, single)
}

/// Sign in one part.
fn sign(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let data = data(call)?;
    let key = key_use::load_key(
        ctx,
        who,
        call,
        operation::SIGN,
        usage::SIGN,
        Purpose::Protect,
        data.len(),
    )?;
    if key.obj.object_type != ot::PRIVATE_KEY {
        return Err(OpError::InvalidField("Sign needs a Private Key".into()));
    }
    let (scheme, hash) = scheme(call, &key)?;
    if let Some(name) = refused_for_signing(hash) {
        return Err(OpError::RefusedAlgorithm(name));
    }
    let der = der(&key)?;
    let sig = asym::sign(key.obj.format, &der, scheme, hash, data)?;
    key.spend(ctx, who)?;
    let uid = key.obj.uid.clone();
    Ok(Reply::for_object(
        uid,
        vec![Ttlv::bytes(Tag::SIGNATURE_DATA, sig)],
    ))
}

/// Signature Verify in one part.
fn signature_verify(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let data = data(call)?;
    let sig = payload_bytes(call, Tag::SIGNATURE_DATA)?
        .ok_or_else(|| OpError::InvalidMessage("missing Signature Data".into()))?;
    let key = key_use::load_key(
        ctx,
        who,
        call,
        operation::SIGNATURE_VERIFY,
        usage::VERIFY,
        Purpose::Process,
        data.len(),
    )?;
    if key.obj.object_type != ot::PUBLIC_KEY {
        return Err(OpError::InvalidField(
            "Signature Verify needs a Public Key".into(),
        ));
    }
    let (scheme, hash) = scheme(call, &key)?;
    let der = der(&key)?;
    let valid = asym::verify(key.obj.format, &der, scheme, hash, data, sig)?;
    key.spend(ctx, who)?;
    let uid = key.obj.uid.clone();
    let indicator = if valid {
        validity_indicator::VALID
    } else {
        validity_indicator::INVALID
    };
    Ok(Reply::for_object(
        uid,
        vec![Ttlv::enumeration(Tag::VALIDITY_INDICATOR, indicator)],
    ))
}

fn data<'a>(call: &'a Call<'_>) -> Result<&'a [u8], OpError> {
    if call.payload.child(Tag::DIGESTED_DATA).is_some() {
        return Err(OpError::FeatureNotSupported("signing pre-digested data"));
    }
    required_data(call)
}

/// The key's DER bytes (its stored Key Material item must be a Byte String).
fn der(key: &KeyInUse) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let item = ttlv::decode(&key.material, &ttlv::Limits::default())
        .map_err(|_| OpError::CorruptRecord(key.obj.uid.clone()))?;
    item.as_bytes()
        .map(|b| Zeroizing::new(b.to_vec()))
        .ok_or(OpError::Asym(AsymError::Key(
            "transparent key structures cannot sign or verify",
        )))
}

/// The signature scheme and hash for this call.
fn scheme(call: &Call<'_>, key: &KeyInUse) -> Result<(Scheme, u32), OpError> {
    let params = key_use::crypto_params(call, &key.obj);
    let key_alg = key.obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM);
    let named_hash = param_enum(params, Tag::HASHING_ALGORITHM)?;
    if let Some(name) = named_hash.and_then(refused_hash) {
        return Err(OpError::RefusedAlgorithm(name));
    }
    let default_hash = if key.obj.int_attr(attr::CRYPTOGRAPHIC_LENGTH) == Some(384)
        && matches!(key_alg, Some(alg::EC | alg::ECDSA))
    {
        ha::SHA_384
    } else {
        ha::SHA_256
    };
    let hash = named_hash.unwrap_or(default_hash);
    if let Some(d) = param_enum(params, Tag::DIGITAL_SIGNATURE_ALGORITHM)? {
        return match d {
            dsa::SHA_256_WITH_RSA_ENCRYPTION => Ok((Scheme::RsaPkcs1, ha::SHA_256)),
            dsa::SHA_384_WITH_RSA_ENCRYPTION => Ok((Scheme::RsaPkcs1, ha::SHA_384)),
            dsa::SHA_512_WITH_RSA_ENCRYPTION => Ok((Scheme::RsaPkcs1, ha::SHA_512)),
            dsa::RSASSA_PSS => Ok((Scheme::RsaPss, hash)),
            dsa::ECDSA_WITH_SHA256 => Ok((Scheme::Ecdsa, ha::SHA_256)),
            dsa::ECDSA_WITH_SHA384 => Ok((Scheme::Ecdsa, ha::SHA_384)),
            dsa::MD2_WITH_RSA_ENCRYPTION => Err(OpError::RefusedAlgorithm("MD2")),
            dsa::MD5_WITH_RSA_ENCRYPTION => Err(OpError::RefusedAlgorithm("MD5")),
            // Verification only: Sign refuses SHA-1 (SP 800-131A Rev. 2 §9).
            dsa::SHA_1_WITH_RSA_ENCRYPTION => Ok((Scheme::RsaPkcs1, ha::SHA_1)),
            dsa::ECDSA_WITH_SHA_1 => Ok((Scheme::Ecdsa, ha::SHA_1)),
            _ => Err(OpError::UnsupportedParameters(
                "digital signature algorithm: akm signs with RSA (PKCS#1 v1.5, PSS) and ECDSA",
            )),
        };
    }
    let scheme = match (param_enum(params, Tag::PADDING_METHOD)?, key_alg) {
        (Some(padding_method::PSS), Some(alg::RSA)) => Scheme::RsaPss,
        (Some(padding_method::PKCS1_V1_5) | None, Some(alg::RSA)) => Scheme::RsaPkcs1,
        (None, Some(alg::EC | alg::ECDSA)) => Scheme::Ecdsa,
        (_, Some(a)) if crate::crypto::digest::refused_algorithm(a).is_some() => {
            return Err(OpError::RefusedAlgorithm(
                crate::crypto::digest::refused_algorithm(a).unwrap_or("?"),
            ))
        }
        _ => {
            return Err(OpError::UnsupportedParameters(
                "akm signs with RSA (PKCS#1 v1.5, PSS) and ECDSA keys",
            ))
        }
    };
    Ok((scheme, hash))
}
