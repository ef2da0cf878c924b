//! MAC and MAC Verify (KMIP 2.1 §6.1.32-33, 1.4 §4.33-4.34): HMAC-SHA-256/384/512 under a key the server
//! holds. The algorithm is the request's (Cryptographic Algorithm, or an HMAC named by its
//! Hashing Algorithm), else the key's own Cryptographic Algorithm. MAC needs MAC Generate in
//! the usage mask and an Active key before its Protect Stop Date; MAC Verify needs MAC Verify
//! and may use a Deactivated key after its Process Start Date. Both may run in several parts
//! (see `stream`): the MAC Data or Validity Indicator comes with the final part only (§6.1.33:
//! non-final parts SHALL NOT include the Validity Indicator).

use super::key_use::{self, param_enum, payload_bytes, required_data, KeyInUse, Purpose};
use super::stream::{self, KeyCheck};
use super::Caller;
use super::{Call, Ctx, Reply};
use crate::crypto::digest;
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{cryptographic_usage_mask as usage, operation, validity_indicator};
use crate::ttlv::{Tag, Ttlv};

/// Runs MAC, in one part or several.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let check = KeyCheck {
        operation: operation::MAC,
        usage: usage::MAC_GENERATE,
        purpose: Purpose::Protect,
    };
    stream::in_parts(ctx, who, call, &check, mac)
}

/// Runs MAC Verify, in one part or several.
pub fn verify(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let check = KeyCheck {
        operation: operation::MAC_VERIFY,
        usage: usage::MAC_VERIFY,
        purpose: Purpose::Process,
    };
    stream::in_parts(ctx, who, call, &check, mac_verify)
}

/// MAC in one part.
fn mac(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
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
    key.spend(ctx, who)?;
    let uid = key.obj.uid.clone();
    Ok(Reply::for_object(
        uid,
        vec![Ttlv::bytes(Tag::MAC_DATA, tag)],
    ))
}

/// MAC Verify in one part.
fn mac_verify(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
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
        .enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM)
        .ok_or_else(|| OpError::InvalidMessage("no MAC algorithm given or recorded".into()))
}
