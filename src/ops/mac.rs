//! MAC and MAC Verify (KMIP 2.1 §6.1.29-30): HMAC-SHA-256/384/512 under a key the server
//! holds. The algorithm is the request's (Cryptographic Algorithm, or an HMAC named by its
//! Hashing Algorithm), else the key's own Cryptographic Algorithm. MAC needs MAC Generate in
//! the usage mask and an Active key before its Protect Stop Date; MAC Verify needs MAC Verify
//! and may use a Deactivated key after its Process Start Date.

use super::key_use::{
    self, param_enum, payload_bytes, refuse_streaming, required_data, KeyInUse, Purpose,
};
use super::Caller;
use super::{Call, Ctx, Reply};
use crate::crypto::digest;
use crate::error::OpError;
use crate::kmip::enums::{cryptographic_usage_mask as usage, operation, validity_indicator};
use crate::ttlv::{Tag, Ttlv};

/// Runs MAC.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    refuse_streaming(call)?;
    let data = required_data(call)?;
    let key = key_use::load_key(
        ctx,
        who,
        call,
        operation::MAC,
        usage::MAC_GENERATE,
        Purpose::Protect,
        data.len(),
    )?;
    let tag = digest::mac(algorithm(call, &key)?, &key.material, data)?;
    let uid = key.obj.uid.clone();
    Ok(Reply::for_object(
        uid,
        vec![Ttlv::bytes(Tag::MAC_DATA, tag)],
    ))
}

/// Runs MAC Verify.
pub fn verify(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    refuse_streaming(call)?;
    let data = required_data(call)?;
    let tag = payload_bytes(call, Tag::MAC_DATA)?
        .ok_or_else(|| OpError::InvalidMessage("missing MAC Data".into()))?;
    let key = key_use::load_key(
        ctx,
        who,
        call,
        operation::MAC_VERIFY,
        usage::MAC_VERIFY,
        Purpose::Process,
        data.len(),
    )?;
    let valid = digest::mac_verify(algorithm(call, &key)?, &key.material, data, tag)?;
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

/// The HMAC algorithm: the parameters' Cryptographic Algorithm, else the HMAC of their
/// Hashing Algorithm, else the key's Cryptographic Algorithm.
fn algorithm(call: &Call<'_>, key: &KeyInUse) -> Result<u32, OpError> {
    let params = key_use::crypto_params(call, &key.obj);
    if let Some(a) = param_enum(params, Tag::CRYPTOGRAPHIC_ALGORITHM)? {
        return Ok(a);
    }
    if let Some(h) = param_enum(params, Tag::HASHING_ALGORITHM)? {
        return Ok(digest::hmac_for_hash(h)?);
    }
    key.obj
        .enum_attr("Cryptographic Algorithm")
        .ok_or_else(|| OpError::InvalidMessage("no MAC algorithm given or recorded".into()))
}
