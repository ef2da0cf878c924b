//! Encrypt (KMIP 2.1 §6.1.17, 1.4 §4.29): encrypts Data under a symmetric key the server holds, with AES
//! in GCM (associated data, tag length), CBC or ECB (optionally PKCS#5-padded) or CTR. The
//! key must be Active, allow Encrypt in its usage mask, and be before its Protect Stop Date.
//! When the mode needs an IV and the client sends none (or asks for a Random IV), the server
//! makes one and returns it. This is also how a client protects a data key under a key that
//! never leaves akm: it encrypts the data key here and keeps only the result.

use super::key_use::{self, param, param_enum, payload_bytes, required_data, Purpose};
use super::stream::{self, EncryptState, Part, Stream};
use super::Caller;
use super::{rsa_oaep, Call, Ctx, Object, Reply};
use crate::crypto::cipher::{self, Mode, Params};
use crate::crypto::{digest::refused_algorithm, random_bytes};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{
    block_cipher_mode as bcm, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    object_type as ot, operation, padding_method,
};
use crate::ttlv::{Tag, Ttlv};

/// Runs Encrypt.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let part = Part::read(call.payload)?;
    if part.is_streaming() {
        return run_part(ctx, who, call, &part);
    }
    let data = required_data(call)?;
    let key = key_use::load_key(
        ctx,
        who,
        call,
        operation::ENCRYPT,
        usage::ENCRYPT,
        Purpose::Protect,
        data.len(),
    )?;
    if key.obj.object_type == ot::PUBLIC_KEY {
        let out = rsa_oaep::encrypt(call, &key, data)?;
        key.spend(ctx, who)?;
        let uid = key.obj.uid.clone();
        return Ok(Reply::for_object(uid, vec![Ttlv::bytes(Tag::DATA, out)]));
    }
    let sym = SymParams::read(call, &key.obj)?;
    let given_iv = payload_bytes(call, Tag::IV_COUNTER_NONCE)?;
    let server_chooses_iv = sym.mode.needs_iv() && (given_iv.is_none() || sym.random_iv);
    let aad = payload_bytes(call, Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA)?.unwrap_or(&[]);
    // A server-chosen IV is chosen by the cipher layer (in the FIPS build by the module).
    let (generated, out, tag) = if server_chooses_iv {
        let (iv, out, tag) =
            cipher::encrypt_with_new_iv(&key.material, &sym.params(&[], aad), data)?;
        (Some(iv), out, tag)
    } else {
        let params = sym.params(given_iv.unwrap_or(&[]), aad);
        let (out, tag) = cipher::encrypt(&key.material, &params, data)?;
        (None, out, tag)
    };
    key.spend(ctx, who)?;
    let uid = key.obj.uid.clone();
    let mut payload = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
        Ttlv::bytes(Tag::DATA, out),
    ];
    if let Some(iv) = generated {
        payload.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv.to_vec()));
    }
    if let Some(tag) = tag {
        payload.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag));
    }
    Ok(Reply {
        payload,
        uid: Some(uid),
    })
}

/// One part of a multi-part Encrypt (KMIP 2.1 §6.1.17, 1.4 §4.29; see `stream`): every part
/// is answered with the ciphertext it completes, the final part with the rest and the GCM tag.
/// Data is optional in every part ("Yes for single-part. No for multi-part"), the final one
/// included. Each part loads the key again, with its access policy, state and Usage Limits.
fn run_part(ctx: &Ctx, who: &Caller, call: &Call<'_>, part: &Part<'_>) -> Result<Reply, OpError> {
    let data = payload_bytes(call, Tag::DATA)?.unwrap_or_default();
    let owner = who.fingerprint.as_str();
    let (mut s, correlation) = if part.init {
        (
            Stream::new(owner, operation::ENCRYPT, Some(call.uid()?)),
            None,
        )
    } else {
        let correlation = part.correlation.unwrap_or_default();
        let named = call
            .payload
            .child(Tag::UNIQUE_IDENTIFIER)
            .and_then(Ttlv::as_text);
        let s = ctx
            .streams
            .take(correlation, owner, operation::ENCRYPT, named)?;
        (s, Some(correlation.to_vec()))
    };
    let uid = s.key().to_owned();
    let key = key_use::load_key_by_uid(
        ctx,
        who,
        &uid,
        &key_use::Check {
            operation: operation::ENCRYPT,
            usage: usage::ENCRYPT,
            purpose: Purpose::Protect,
            amount: data.len(),
            now: call.now,
        },
    )?;
    let mut payload = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())];
    if s.encrypt.is_none() {
        s.encrypt = Some(first_part(call, &key, &mut payload)?);
    }
    s.append(data)?;
    let Some(state) = s.encrypt.as_mut() else {
        return Err(OpError::InvalidMessage(
            "multi-part Encrypt without state".into(),
        ));
    };
    if part.last {
        let (out, tag) = cipher::encrypt(
            &key.material,
            &state.sym.params(&state.iv, &state.aad),
            &s.data,
        )?;
        key.spend(ctx, who)?;
        payload.push(Ttlv::bytes(
            Tag::DATA,
            out[state.emitted.min(out.len())..].to_vec(),
        ));
        if let Some(tag) = tag {
            payload.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag));
        }
    } else {
        // What the data so far fixes: every byte in the stream modes, whole blocks in ECB/CBC
        // (the padding, if any, belongs to the last part).
        let ready = match state.sym.mode {
            Mode::Ecb | Mode::Cbc => s.data.len() - s.data.len() % cipher::BLOCK,
            Mode::Ctr | Mode::Gcm => s.data.len(),
        };
        let prefix = SymParams {
            pkcs5: false,
            ..state.sym
        };
        let (out, _) = cipher::encrypt(
            &key.material,
            &prefix.params(&state.iv, &state.aad),
            &s.data[..ready],
        )?;
        key.spend(ctx, who)?;
        payload.push(Ttlv::bytes(Tag::DATA, out[state.emitted..].to_vec()));
        state.emitted = ready;
        let correlation = correlation.unwrap_or_else(stream::new_correlation);
        payload.push(Ttlv::bytes(Tag::CORRELATION_VALUE, correlation.clone()));
        ctx.streams.put(correlation, s)?;
    }
    Ok(Reply {
        payload,
        uid: Some(uid),
    })
}

/// The cipher state of a multi-part Encrypt, from its first part: the parameters, the IV
/// (the client's, or one the server makes and adds to `payload`) and the associated data.
fn first_part(
    call: &Call<'_>,
    key: &key_use::KeyInUse,
    payload: &mut Vec<Ttlv>,
) -> Result<EncryptState, OpError> {
    if key.obj.object_type != ot::SYMMETRIC_KEY {
        return Err(OpError::FeatureNotSupported("multi-part RSA encryption"));
    }
    let sym = SymParams::read(call, &key.obj)?;
    let iv = match payload_bytes(call, Tag::IV_COUNTER_NONCE)? {
        Some(iv) if !sym.random_iv => iv.to_vec(),
        _ if sym.mode.needs_iv() => {
            let iv = random_bytes(sym.mode.iv_len()).to_vec();
            payload.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv.clone()));
            iv
        }
        _ => Vec::new(),
    };
    let aad = payload_bytes(call, Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA)?
        .unwrap_or(&[])
        .to_vec();
    Ok(EncryptState {
        sym,
        iv,
        aad,
        emitted: 0,
    })
}

/// The symmetric-cipher choices of an Encrypt or Decrypt: from the request's Cryptographic
/// Parameters, else the key's.
#[derive(Clone, Copy, Debug)]
pub struct SymParams {
    /// Block cipher mode.
    pub mode: Mode,
    /// PKCS#5 padding.
    pub pkcs5: bool,
    /// GCM tag length in bytes.
    pub tag_len: usize,
    /// Whether the client asked the server to make the IV.
    pub random_iv: bool,
}

impl SymParams {
    /// Reads and validates the parameters for key `obj`.
    pub fn read(call: &Call<'_>, obj: &Object) -> Result<SymParams, OpError> {
        SymParams::from_params(key_use::crypto_params(call, obj), obj)
    }

    /// Reads and validates the Cryptographic Parameters `params` (fields of the structure) for
    /// key `obj`; Derive Key's ENCRYPT method passes those of its Derivation Parameters.
    pub fn from_params(params: Option<&[Ttlv]>, obj: &Object) -> Result<SymParams, OpError> {
        let algorithm = param_enum(params, Tag::CRYPTOGRAPHIC_ALGORITHM)?
            .or(obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM));
        if let Some(name) = algorithm.and_then(refused_algorithm) {
            return Err(OpError::RefusedAlgorithm(name));
        }
        if algorithm.is_some_and(|a| a != alg::AES) {
            return Err(OpError::UnsupportedParameters(
                "akm encrypts and decrypts with AES only",
            ));
        }
        let mode = match param_enum(params, Tag::BLOCK_CIPHER_MODE)? {
            Some(bcm::ECB) => Mode::Ecb,
            Some(bcm::CBC) => Mode::Cbc,
            Some(bcm::CTR) => Mode::Ctr,
            Some(bcm::GCM) => Mode::Gcm,
            Some(_) => {
                return Err(OpError::UnsupportedParameters(
                    "block cipher mode: akm performs ECB, CBC, CTR and GCM",
                ))
            }
            // Neither the request nor the key names a mode (MongoDB's keystore wrapping sends
            // only the key and the data): AES-CBC with PKCS#5 padding and a server-made IV,
            // which the client sends back to Decrypt.
            None => Mode::Cbc,
        };
        let default_padding =
            params.is_none_or(|p| !p.iter().any(|t| t.tag == Tag::BLOCK_CIPHER_MODE));
        let pkcs5 = match param_enum(params, Tag::PADDING_METHOD)? {
            None => default_padding,
            Some(padding_method::NONE) => false,
            Some(padding_method::PKCS5) => true,
            Some(_) => {
                return Err(OpError::UnsupportedParameters(
                    "padding method: akm pads with PKCS5 only",
                ))
            }
        };
        let tag_len = match param(params, Tag::TAG_LENGTH, Ttlv::as_int)? {
            None => cipher::GCM_TAG_LEN,
            Some(n) => usize::try_from(n).unwrap_or(0),
        };
        let random_iv = param(params, Tag::RANDOM_IV, Ttlv::as_bool)?.unwrap_or(false);
        Ok(SymParams {
            mode,
            pkcs5,
            tag_len,
            random_iv,
        })
    }

    /// The cipher parameters with this IV and associated data.
    pub fn params<'a>(&self, iv: &'a [u8], aad: &'a [u8]) -> Params<'a> {
        Params {
            mode: self.mode,
            pkcs5: self.pkcs5,
            iv,
            aad,
            tag_len: self.tag_len,
        }
    }
}
