//! Encrypt (KMIP 2.1 §6.1.18): encrypts Data under a symmetric key the server holds, with AES
//! in GCM (associated data, tag length), CBC or ECB (optionally PKCS#5-padded) or CTR. The
//! key must be Active, allow Encrypt in its usage mask, and be before its Protect Stop Date.
//! When the mode needs an IV and the client sends none (or asks for a Random IV), the server
//! makes one and returns it. This is also how a client protects a data key under a key that
//! never leaves akm: it encrypts the data key here and keeps only the result.

use super::key_use::{self, param, param_enum, payload_bytes, required_data, Purpose};
use super::Caller;
use super::{rsa_oaep, stream, Call, Ctx, Object, Reply};
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
    let part = Part::read(call)?;
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
        let uid = key.obj.uid.clone();
        return Ok(Reply::for_object(uid, vec![Ttlv::bytes(Tag::DATA, out)]));
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

/// The multi-part fields of an Encrypt request.
struct Part<'a> {
    init: bool,
    last: bool,
    correlation: Option<&'a [u8]>,
}

impl<'a> Part<'a> {
    fn read(call: &'a Call<'_>) -> Result<Part<'a>, OpError> {
        let flag = |tag| -> Result<bool, OpError> {
            match call.payload.child(tag) {
                None => Ok(false),
                Some(t) => t
                    .as_bool()
                    .ok_or_else(|| OpError::InvalidMessage(format!("{tag:?} must be a Boolean"))),
            }
        };
        Ok(Part {
            init: flag(Tag::INIT_INDICATOR)?,
            last: flag(Tag::FINAL_INDICATOR)?,
            correlation: payload_bytes(call, Tag::CORRELATION_VALUE)?,
        })
    }

    /// Init and Final both set (or neither, without a Correlation Value) is one part.
    fn is_streaming(&self) -> bool {
        !(self.init && self.last) && (self.init || self.correlation.is_some())
    }
}

/// One part of a multi-part Encrypt (see `stream`).
fn run_part(ctx: &Ctx, who: &Caller, call: &Call<'_>, part: &Part<'_>) -> Result<Reply, OpError> {
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
    let uid = key.obj.uid.clone();
    let owner = who.fingerprint.clone();
    let mut payload = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())];
    let (mut s, correlation) = if part.init {
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
        let s = stream::Stream::new(owner, uid.clone(), sym, iv, aad);
        (s, random_bytes(16).to_vec())
    } else {
        let correlation = part.correlation.unwrap_or_default();
        let s = ctx
            .streams
            .take(correlation, &owner, &uid)
            .ok_or_else(|| OpError::InvalidField("unknown Correlation Value".into()))?;
        (s, correlation.to_vec())
    };
    if s.data.len() + data.len() > stream::MAX_STREAM_BYTES {
        return Err(OpError::InvalidField(
            "a multi-part Encrypt holds at most 1 MiB".into(),
        ));
    }
    s.data.extend_from_slice(data);
    if part.last {
        let (out, tag) = cipher::encrypt(&key.material, &s.sym.params(&s.iv, &s.aad), &s.data)?;
        payload.push(Ttlv::bytes(
            Tag::DATA,
            out[s.emitted.min(out.len())..].to_vec(),
        ));
        if let Some(tag) = tag {
            payload.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag));
        }
    } else {
        // What the data so far fixes: every byte in the stream modes, whole blocks in ECB/CBC
        // (the padding, if any, belongs to the last part).
        let ready = match s.sym.mode {
            Mode::Ecb | Mode::Cbc => s.data.len() - s.data.len() % cipher::BLOCK,
            Mode::Ctr | Mode::Gcm => s.data.len(),
        };
        let prefix = SymParams {
            pkcs5: false,
            ..s.sym
        };
        let (out, _) = cipher::encrypt(
            &key.material,
            &prefix.params(&s.iv, &s.aad),
            &s.data[..ready],
        )?;
        payload.push(Ttlv::bytes(Tag::DATA, out[s.emitted..].to_vec()));
        s.emitted = ready;
        payload.push(Ttlv::bytes(Tag::CORRELATION_VALUE, correlation.clone()));
        ctx.streams.put(correlation, s);
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
        SymParams::from_params(key_use::crypto_params(call, obj), obj)
    }

    /// Reads and validates the Cryptographic Parameters `params` (fields of the structure) for
    /// key `obj`; Derive Key's ENCRYPT method passes those of its Derivation Parameters.
    pub fn from_params(params: Option<&[Ttlv]>, obj: &Object) -> Result<SymParams, OpError> {
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
