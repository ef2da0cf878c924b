//! Decrypt (KMIP 2.1 §6.1.11, 1.4 §4.30): the inverse of Encrypt. A Deactivated or Compromised key may
//! still decrypt (old data stays readable after rotation), but not before its Process Start
//! Date. For GCM the tag must verify before any plaintext is returned; a missing IV is
//! Invalid Message, a failed tag or padding check Cryptographic Failure. Multi-part Decrypt
//! (see `stream`) answers the parts before the final one with no Data and the final one with
//! the whole plaintext: none is released before all of it (and a GCM tag) is checked.

use super::encrypt::SymParams;
use super::key_use::{self, payload_bytes, required_data, Purpose};
use super::stream::{self, KeyCheck, Part};
use super::Caller;
use super::{rsa_oaep, Call, Ctx, Reply};
use crate::crypto::cipher::{self, Mode};
use crate::error::OpError;
use crate::kmip::enums::{cryptographic_usage_mask as usage, object_type as ot, operation};
use crate::ttlv::{Tag, Ttlv};

/// Runs Decrypt, in one part or several.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let part = Part::read(call.payload)?;
    if part.is_streaming() {
        let check = KeyCheck {
            operation: operation::DECRYPT,
            usage: usage::DECRYPT,
            purpose: Purpose::Process,
        };
        return stream::run_collecting(ctx, who, call, &part, Some(&check), |whole| {
            single(ctx, who, whole)
        });
    }
    single(ctx, who, call)
}

/// Decrypt in one part.
fn single(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let data = required_data(call)?;
    let key = key_use::load_key(
        ctx,
        who,
        call,
        operation::DECRYPT,
        usage::DECRYPT,
        Purpose::Process,
        data.len(),
    )?;
    if key.obj.object_type == ot::PRIVATE_KEY {
        let plain = key.counted(ctx, who, rsa_oaep::decrypt(call, &key, data))?;
        let uid = key.obj.uid.clone();
        return Ok(Reply::for_object(
            uid,
            vec![Ttlv::bytes(Tag::DATA, plain.to_vec())],
        ));
    }
    let sym = SymParams::read(call, &key.obj)?;
    let iv = payload_bytes(call, Tag::IV_COUNTER_NONCE)?;
    if sym.mode.needs_iv() && iv.is_none() {
        return Err(OpError::InvalidMessage("missing IV/Counter/Nonce".into()));
    }
    let aad = payload_bytes(call, Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA)?.unwrap_or(&[]);
    let tag = payload_bytes(call, Tag::AUTHENTICATED_ENCRYPTION_TAG)?;
    if sym.mode == Mode::Gcm && tag.is_none() {
        return Err(OpError::InvalidMessage(
            "missing Authenticated Encryption Tag".into(),
        ));
    }
    let params = sym.params(iv.unwrap_or_default(), aad);
    let plain = key.counted(ctx, who, cipher::decrypt(&key.material, &params, data, tag))?;
    let uid = key.obj.uid.clone();
    Ok(Reply::for_object(
        uid,
        vec![Ttlv::bytes(Tag::DATA, plain.to_vec())],
    ))
}
