//! RSA-OAEP for Encrypt (with a Public Key) and Decrypt (with a Private Key): the request's or
//! the key's Cryptographic Parameters give the Hashing Algorithm (default SHA-256), the Mask
//! Generator Hashing Algorithm (default the same) and the P Source (the OAEP label); the
//! Padding Method, if named, must be OAEP. See `crypto::asym` for the primitive.

use super::key_use::{self, param, param_enum, KeyInUse};
use super::Call;
use crate::crypto::asym;
use crate::crypto::digest::refused_hash;
use crate::error::OpError;
use crate::kmip::enums::{hashing_algorithm as ha, padding_method};
use crate::ttlv::{self, Tag};
use zeroize::Zeroizing;

/// The OAEP choices of a call.
struct Oaep {
    hash: u32,
    mgf_hash: u32,
    label: Option<Vec<u8>>,
}

fn read(call: &Call<'_>, key: &KeyInUse) -> Result<Oaep, OpError> {
    let params = key_use::crypto_params(call, &key.obj);
    match param_enum(params, Tag::PADDING_METHOD)? {
        None | Some(padding_method::OAEP) => {}
        Some(_) => {
            return Err(OpError::UnsupportedParameters(
                "RSA encryption: akm pads with OAEP only",
            ))
        }
    }
    let hash = param_enum(params, Tag::HASHING_ALGORITHM)?.unwrap_or(ha::SHA_256);
    let mgf_hash = param_enum(params, Tag::MASK_GENERATOR_HASHING_ALGORITHM)?.unwrap_or(hash);
    for h in [hash, mgf_hash] {
        if let Some(name) = refused_hash(h) {
            return Err(OpError::RefusedAlgorithm(name));
        }
    }
    let label = param(params, Tag::P_SOURCE, |t| t.as_bytes().map(<[u8]>::to_vec))?;
    Ok(Oaep {
        hash,
        mgf_hash,
        label,
    })
}

/// The key's DER (its stored Key Material must be a Byte String).
fn der(key: &KeyInUse) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let item = ttlv::decode(&key.material, &ttlv::Limits::default())
        .map_err(|_| OpError::CorruptRecord(key.obj.uid.clone()))?;
    item.as_bytes()
        .map(|b| Zeroizing::new(b.to_vec()))
        .ok_or(OpError::Asym(asym::AsymError::Key(
            "transparent key structures cannot encrypt or decrypt",
        )))
}

/// RSA-OAEP encryption of `data` under the public key `key`.
pub fn encrypt(call: &Call<'_>, key: &KeyInUse, data: &[u8]) -> Result<Vec<u8>, OpError> {
    let o = read(call, key)?;
    let der = der(key)?;
    Ok(asym::oaep_encrypt(
        key.obj.format,
        &der,
        o.hash,
        o.mgf_hash,
        o.label.as_deref(),
        data,
    )?)
}

/// RSA-OAEP decryption of `data` with the private key `key`.
pub fn decrypt(
    call: &Call<'_>,
    key: &KeyInUse,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let o = read(call, key)?;
    let der = der(key)?;
    Ok(asym::oaep_decrypt(
        key.obj.format,
        &der,
        o.hash,
        o.mgf_hash,
        o.label.as_deref(),
        data,
    )?)
}
