//! Encrypt (KMIP 2.1 §6.1.18): encrypts Data under a symmetric key the server holds, with AES
//! in GCM (associated data, tag length), CBC or ECB (optionally PKCS#5-padded) or CTR. The
//! key must be Active, allow Encrypt in its usage mask, and be before its Protect Stop Date.
//! When the mode needs an IV and the client sends none (or asks for a Random IV), the server
//! makes one and returns it. This is also how a client protects a data key under a key that
//! never leaves akm: it encrypts the data key here and keeps only the result.

use super::key_use::{self, param, param_enum, payload_bytes, refuse_streaming, Purpose};
use super::Caller;
use super::{rsa_oaep, Call, Ctx, Object, Reply};
use crate::crypto::cipher::{self, Mode, Params};
use crate::crypto::{digest::refused_algorithm, random_bytes};
use crate::error::OpError;
use crate::kmip::enums::{
    block_cipher_mode as bcm, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    object_type as ot, operation, padding_method,
};
use crate::ttlv::{Tag, Ttlv};

/// Runs Encrypt.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    refuse_streaming(call)?;
    let data = payload_bytes(call, Tag::DATA)?
        .ok_or_else(|| OpError::InvalidMessage("missing Data".into()))?;
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
        let uid = key.obj.uid.clone();
        return Ok(Reply {
            payload: vec![
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
                Ttlv::bytes(Tag::DATA, out),
            ],
            uid: Some(uid),
        });
    }
    let sym = SymParams::read(call, &key.obj)?;
    let given_iv = payload_bytes(call, Tag::IV_COUNTER_NONCE)?;
    let generated = match given_iv {
        Some(_) if !sym.random_iv => None,
        _ if sym.mode.needs_iv() => Some(random_bytes(sym.mode.iv_len())),
        _ => None,
    };
    let iv: &[u8] = match (&generated, given_iv) {
        (Some(g), _) => g,
        (None, Some(g)) => g,
        (None, None) => &[],
    };
    let aad = payload_bytes(call, Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA)?.unwrap_or(&[]);
    let params = sym.params(iv, aad);
    let (out, tag) = cipher::encrypt(&key.material, &params, data)?;
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
        let params = key_use::crypto_params(call, obj);
        let algorithm = param_enum(params, Tag::CRYPTOGRAPHIC_ALGORITHM)?
            .or(obj.enum_attr("Cryptographic Algorithm"));
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
