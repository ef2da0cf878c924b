//! Encrypt and Decrypt in the FIPS build: AES-ECB, -CBC and -CTR through the module's
//! `cipher` API; AES-GCM decryption (AES-128/256, 96-bit IV, 128-bit tag) through its AEAD.
//! AES-GCM encryption runs in the module when the server chooses the IV
//! ([`seal_with_module_iv`]: the module generates it, the one GCM encryption it approves); with
//! an IV the client supplies it is refused. PKCS#5 padding is added and checked here, around the module's unpadded modes, with
//! the same code as the default build's (crate::crypto::cipher).

use super::prim::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use super::prim::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128,
    AES_192, AES_256,
};
use super::prim::iv::FixedLength;
use crate::crypto::cipher::{
    pad_pkcs5, strip_pkcs5, CipherError, Mode, Params, BLOCK, GCM_IV_LEN, GCM_TAG_LEN,
};
use zeroize::Zeroizing;

fn unbound(key: &[u8]) -> Result<UnboundCipherKey, CipherError> {
    let alg = match key.len() {
        16 => &AES_128,
        24 => &AES_192,
        32 => &AES_256,
        _ => return Err(CipherError::KeyLength),
    };
    UnboundCipherKey::new(alg, key).map_err(|_| CipherError::KeyLength)
}

fn gcm_key(key: &[u8], p: &Params<'_>) -> Result<(LessSafeKey, Nonce), CipherError> {
    if p.iv.len() != GCM_IV_LEN || p.tag_len != GCM_TAG_LEN {
        return Err(CipherError::NotInModule(
            "AES-GCM takes a 96-bit IV and a 128-bit tag in the FIPS build",
        ));
    }
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        32 => &aead::AES_256_GCM,
        24 => {
            return Err(CipherError::NotInModule(
                "AES-192-GCM is not an approved AEAD of the module",
            ))
        }
        _ => return Err(CipherError::KeyLength),
    };
    let key = UnboundKey::new(alg, key).map_err(|_| CipherError::KeyLength)?;
    let nonce =
        Nonce::try_assume_unique_for_key(p.iv).map_err(|_| CipherError::IvLength("12 bytes"))?;
    Ok((LessSafeKey::new(key), nonce))
}

fn iv128(p: &Params<'_>) -> Result<FixedLength<BLOCK>, CipherError> {
    FixedLength::try_from(p.iv).map_err(|_| CipherError::IvLength("16 bytes"))
}

/// AES-GCM encryption under an IV the module generates (aws-lc-rs `RandomizedNonceKey`):
/// (IV, ciphertext, tag). AES-128 or AES-256, 128-bit tag.
pub fn seal_with_module_iv(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
) -> Result<crate::crypto::cipher::WithNewIv, CipherError> {
    gcm_key(key, p)?; // the same refusals as opening: IV and tag lengths, AES-192
    let alg = if key.len() == 16 {
        &aead::AES_128_GCM
    } else {
        &aead::AES_256_GCM
    };
    let key = aead::RandomizedNonceKey::new(alg, key).map_err(|_| CipherError::KeyLength)?;
    let mut buf = data.to_vec();
    let (nonce, tag) = key
        .seal_in_place_separate_tag(Aad::from(p.aad), &mut buf)
        .map_err(|_| CipherError::NotInModule("the module refused the GCM input"))?;
    Ok((nonce.as_ref().to_vec(), buf, Some(tag.as_ref().to_vec())))
}

/// Encrypts `data` under `key` in the module; the ciphertext and, for GCM, the tag.
pub fn encrypt(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
) -> Result<(Vec<u8>, Option<Vec<u8>>), CipherError> {
    if p.mode == Mode::Gcm {
        return Err(CipherError::NotInModule(
            "AES-GCM encryption with a client-supplied IV is not an approved service of the \
             module (it approves only IVs it generates itself): omit the IV and let the server \
             choose it",
        ));
    }
    let mut buf = data.to_vec();
    if p.pkcs5 {
        pad_pkcs5(&mut buf);
    } else if p.mode != Mode::Ctr && buf.len() % BLOCK != 0 {
        return Err(CipherError::NotBlockAligned);
    }
    let key = unbound(key)?;
    let (key, context) = match p.mode {
        Mode::Ecb => (EncryptingKey::ecb(key), EncryptionContext::None),
        Mode::Cbc => (EncryptingKey::cbc(key), EncryptionContext::Iv128(iv128(p)?)),
        _ => (EncryptingKey::ctr(key), EncryptionContext::Iv128(iv128(p)?)),
    };
    let key = key.map_err(|_| CipherError::KeyLength)?;
    if !buf.is_empty() {
        key.less_safe_encrypt(&mut buf, context)
            .map_err(|_| CipherError::NotBlockAligned)?;
    }
    Ok((buf, None))
}

/// Decrypts `data` under `key` in the module; for GCM `tag` must verify first.
pub fn decrypt(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
    tag: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    if p.mode == Mode::Gcm {
        let tag = tag.ok_or(CipherError::Authentication)?;
        let (key, nonce) = gcm_key(key, p)?;
        let mut buf = Zeroizing::new([data, tag].concat());
        let len = key
            .open_in_place(nonce, Aad::from(p.aad), &mut buf)
            .map_err(|_| CipherError::Authentication)?
            .len();
        buf.truncate(len);
        return Ok(buf);
    }
    if p.mode != Mode::Ctr && (data.len() % BLOCK != 0 || (p.pkcs5 && data.is_empty())) {
        return Err(CipherError::NotBlockAligned);
    }
    let key = unbound(key)?;
    let (key, context) = match p.mode {
        Mode::Ecb => (DecryptingKey::ecb(key), DecryptionContext::None),
        Mode::Cbc => (DecryptingKey::cbc(key), DecryptionContext::Iv128(iv128(p)?)),
        _ => (DecryptingKey::ctr(key), DecryptionContext::Iv128(iv128(p)?)),
    };
    let key = key.map_err(|_| CipherError::KeyLength)?;
    let mut buf = Zeroizing::new(data.to_vec());
    if !buf.is_empty() {
        key.decrypt(&mut buf, context)
            .map_err(|_| CipherError::NotBlockAligned)?;
    }
    if p.pkcs5 {
        strip_pkcs5(&mut buf)?;
    }
    Ok(buf)
}
