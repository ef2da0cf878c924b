//! RSA in the FIPS build beyond what the ring-compatible API covers: key generation
//! (`KeyPair::generate`, in the FIPS build the module's FIPS 186-5 key generation with its pairwise
//! consistency test) and RSA-OAEP, both in the module. The `rsa` crate only parses and
//! re-encodes DER here (no arithmetic). OAEP in the module takes the same hash for the digest
//! and MGF1 (SHA-256, -384 or -512); other pairs are refused with the reason.

use super::prim::encoding::AsDer;
use super::prim::rsa::{
    KeyPair, KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384,
    OAEP_SHA512_MGF1SHA512,
};
use crate::crypto::asym::AsymError;
use crate::kmip::enums::hashing_algorithm as ha;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use zeroize::Zeroizing;

/// A new RSA private key of `bits` (2048, 3072 or 4096, checked by the caller) from the module.
pub fn generate(bits: i32) -> Result<rsa::RsaPrivateKey, AsymError> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        _ => KeySize::Rsa4096,
    };
    let pair = KeyPair::generate(size).map_err(|_| AsymError::Sign)?;
    let pkcs8 = pair.as_der().map_err(|_| AsymError::Sign)?;
    rsa::RsaPrivateKey::from_pkcs8_der(pkcs8.as_ref()).map_err(|_| AsymError::Sign)
}

fn algorithm(hash: u32, mgf_hash: u32) -> Result<&'static OaepAlgorithm, AsymError> {
    match (hash, mgf_hash) {
        (ha::SHA_256, ha::SHA_256) => Ok(&OAEP_SHA256_MGF1SHA256),
        (ha::SHA_384, ha::SHA_384) => Ok(&OAEP_SHA384_MGF1SHA384),
        (ha::SHA_512, ha::SHA_512) => Ok(&OAEP_SHA512_MGF1SHA512),
        _ => Err(AsymError::Params(
            "not available in the FIPS build of akm: OAEP with the same SHA-256, SHA-384 or \
             SHA-512 for the digest and MGF1",
        )),
    }
}

/// RSA-OAEP encryption in the module.
pub fn oaep_encrypt(
    key: &rsa::RsaPublicKey,
    hash: u32,
    mgf_hash: u32,
    label: Option<&[u8]>,
    data: &[u8],
) -> Result<Vec<u8>, AsymError> {
    let alg = algorithm(hash, mgf_hash)?;
    let spki = key
        .to_public_key_der()
        .map_err(|_| AsymError::Key("not a usable RSA public key"))?;
    let unusable = AsymError::Key("not a usable RSA public key");
    let key = PublicEncryptingKey::from_der(spki.as_bytes()).map_err(|_| unusable.clone())?;
    let key = OaepPublicEncryptingKey::new(key).map_err(|_| unusable)?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(alg, data, &mut out, label)
        .map_err(|_| AsymError::Params("the data is too long for this key and hash"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RSA-OAEP decryption in the module; a failure says nothing about why.
pub fn oaep_decrypt(
    key: &rsa::RsaPrivateKey,
    hash: u32,
    mgf_hash: u32,
    label: Option<&[u8]>,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AsymError> {
    let alg = algorithm(hash, mgf_hash)?;
    let pkcs8 = key.to_pkcs8_der().map_err(|_| AsymError::Sign)?;
    let key = PrivateDecryptingKey::from_pkcs8(pkcs8.as_bytes())
        .map_err(|_| AsymError::Sign)
        .and_then(|k| OaepPrivateDecryptingKey::new(k).map_err(|_| AsymError::Sign))?;
    let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
    let len = key
        .decrypt(alg, data, &mut out, label)
        .map_err(|_| AsymError::Sign)?
        .len();
    out.truncate(len);
    Ok(out)
}
