//! Hashes and MACs for the Hash, MAC and MAC Verify operations (SHA-2 and HMAC-SHA-2 from
//! ring, and SHA-1 and HMAC-SHA-1 where SP 800-131A Rev. 2 still accepts them), and the one list of algorithms akm refuses to use because NIST withdrew or never
//! approved them (SP 800-131A Rev. 2). Every cryptographic operation checks an algorithm here
//! before it touches a key, so the refusal is the same everywhere.

use crate::kmip::enums::{cryptographic_algorithm as alg, hashing_algorithm as ha};

/// Why a digest or MAC could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The algorithm is one NIST has withdrawn or never approved; akm never uses it.
    #[error("{0} is not approved by NIST (SP 800-131A) and akm refuses to use it")]
    Refused(&'static str),
    /// An approved algorithm akm does not implement.
    #[error("algorithm not supported for this operation")]
    Unsupported,
}

/// The name of a refused Cryptographic Algorithm, or None if akm may use it.
pub fn refused_algorithm(a: u32) -> Option<&'static str> {
    Some(match a {
        alg::DES => "DES",
        alg::_3DES => "Triple-DES",
        alg::BLOWFISH => "Blowfish",
        alg::IDEA => "IDEA",
        alg::RC2 => "RC2",
        alg::RC4 => "RC4",
        alg::RC5 => "RC5",
        alg::CAST5 => "CAST5",
        alg::MARS => "MARS",
        alg::SKIPJACK => "Skipjack",
        alg::TWOFISH => "Twofish",
        alg::CAMELLIA => "Camellia",
        alg::HMAC_MD5 => "HMAC-MD5",
        alg::CHACHA20 => "ChaCha20",
        alg::POLY1305 => "Poly1305",
        alg::CHACHA20POLY1305 => "ChaCha20-Poly1305",
        alg::ARIA => "ARIA",
        alg::SEED => "SEED",
        alg::SM2 => "SM2",
        alg::SM3 => "SM3",
        alg::SM4 => "SM4",
        alg::GOST_R_34_10_2012 => "GOST R 34.10-2012",
        alg::GOST_R_34_11_2012 => "GOST R 34.11-2012",
        alg::GOST_R_34_13_2015 => "GOST R 34.13-2015",
        alg::GOST_28147_89 => "GOST 28147-89",
        _ => return None,
    })
}

/// The name of a refused Hashing Algorithm, or None if akm may use it.
pub fn refused_hash(h: u32) -> Option<&'static str> {
    Some(match h {
        ha::MD2 => "MD2",
        ha::MD4 => "MD4",
        ha::MD5 => "MD5",
        ha::RIPEMD_160 => "RIPEMD-160",
        ha::TIGER => "Tiger",
        ha::WHIRLPOOL => "Whirlpool",
        _ => return None,
    })
}

/// The name of a Hashing Algorithm akm refuses for signature generation, or None. SP 800-131A
/// Rev. 2 §9 (Table 8) disallows SHA-1 for digital signature generation only: verification
/// is "legacy use" and non-signature uses (HMAC, key derivation, hashing) are acceptable, so
/// akm verifies with SHA-1 and uses it there, but never signs with it.
pub fn refused_for_signing(h: u32) -> Option<&'static str> {
    match h {
        ha::SHA_1 => Some("SHA-1 for signature generation"),
        _ => refused_hash(h),
    }
}

/// ring's digest for a Hashing Algorithm.
fn digest_alg(
    h: u32,
) -> Result<&'static crate::crypto::backend::prim::digest::Algorithm, DigestError> {
    if let Some(name) = refused_hash(h) {
        return Err(DigestError::Refused(name));
    }
    match h {
        // SP 800-131A Rev. 2 §9: acceptable for non-digital-signature applications.
        ha::SHA_1 => Ok(&crate::crypto::backend::prim::digest::SHA1_FOR_LEGACY_USE_ONLY),
        ha::SHA_256 => Ok(&crate::crypto::backend::prim::digest::SHA256),
        ha::SHA_384 => Ok(&crate::crypto::backend::prim::digest::SHA384),
        ha::SHA_512 => Ok(&crate::crypto::backend::prim::digest::SHA512),
        ha::SHA_512_256 => Ok(&crate::crypto::backend::prim::digest::SHA512_256),
        _ => Err(DigestError::Unsupported),
    }
}

/// The digest of `data` under Hashing Algorithm `h`.
pub fn hash(h: u32, data: &[u8]) -> Result<Vec<u8>, DigestError> {
    Ok(
        crate::crypto::backend::prim::digest::digest(digest_alg(h)?, data)
            .as_ref()
            .to_vec(),
    )
}

/// ring's HMAC for a Cryptographic Algorithm (HMAC-SHA256/384/512).
fn hmac_alg(a: u32) -> Result<crate::crypto::backend::prim::hmac::Algorithm, DigestError> {
    if let Some(name) = refused_algorithm(a) {
        return Err(DigestError::Refused(name));
    }
    match a {
        // SP 800-131A Rev. 2 §10 (Table 9): HMAC with SHA-1 (key of at least 112 bits) is
        // acceptable for generation and verification.
        alg::HMAC_SHA1 => Ok(crate::crypto::backend::prim::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        alg::HMAC_SHA256 => Ok(crate::crypto::backend::prim::hmac::HMAC_SHA256),
        alg::HMAC_SHA384 => Ok(crate::crypto::backend::prim::hmac::HMAC_SHA384),
        alg::HMAC_SHA512 => Ok(crate::crypto::backend::prim::hmac::HMAC_SHA512),
        _ => Err(DigestError::Unsupported),
    }
}

/// The HMAC algorithm for a Hashing Algorithm given in Cryptographic Parameters.
pub fn hmac_for_hash(h: u32) -> Result<u32, DigestError> {
    if let Some(name) = refused_hash(h) {
        return Err(DigestError::Refused(name));
    }
    match h {
        ha::SHA_1 => Ok(alg::HMAC_SHA1),
        ha::SHA_256 => Ok(alg::HMAC_SHA256),
        ha::SHA_384 => Ok(alg::HMAC_SHA384),
        ha::SHA_512 => Ok(alg::HMAC_SHA512),
        _ => Err(DigestError::Unsupported),
    }
}

/// HMAC of `data` under `key` with Cryptographic Algorithm `a`.
pub fn mac(a: u32, key: &[u8], data: &[u8]) -> Result<Vec<u8>, DigestError> {
    let k = crate::crypto::backend::prim::hmac::Key::new(hmac_alg(a)?, key);
    Ok(crate::crypto::backend::prim::hmac::sign(&k, data)
        .as_ref()
        .to_vec())
}

/// Whether `tag` is the HMAC of `data` under `key` (constant time).
pub fn mac_verify(a: u32, key: &[u8], data: &[u8], tag: &[u8]) -> Result<bool, DigestError> {
    let k = crate::crypto::backend::prim::hmac::Key::new(hmac_alg(a)?, key);
    Ok(crate::crypto::backend::prim::hmac::verify(&k, data, tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha2_known_answers() {
        // FIPS 180-2 appendix B / C: "abc".
        assert_eq!(
            hex::encode(hash(ha::SHA_256, b"abc").unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(hash(ha::SHA_384, b"abc").unwrap()),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        let tag = mac(alg::HMAC_SHA256, b"Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(
            hex::encode(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let tag512 = mac(alg::HMAC_SHA512, b"Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(
            hex::encode(&tag512[..16]),
            "164b7a7bfcf819e2e395fbe73b56e0a3"
        );
        assert!(mac_verify(
            alg::HMAC_SHA256,
            b"Jefe",
            b"what do ya want for nothing?",
            &tag
        )
        .unwrap());
        assert!(!mac_verify(
            alg::HMAC_SHA256,
            b"Jefe",
            b"what do ya want for nothing!",
            &tag
        )
        .unwrap());
    }

    #[test]
    fn withdrawn_algorithms_are_refused_by_name() {
        assert_eq!(hash(ha::MD5, b"x"), Err(DigestError::Refused("MD5")));
        // SHA-1: hashing and HMAC are acceptable, signing is not (SP 800-131A Rev. 2 §9-10).
        assert_eq!(
            hex::encode(hash(ha::SHA_1, b"abc").unwrap()),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(mac(alg::HMAC_SHA1, &[0x0b; 20], b"Hi There").unwrap()),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(refused_hash(ha::SHA_1), None);
        assert!(refused_for_signing(ha::SHA_1).is_some());
        assert_eq!(refused_for_signing(ha::SHA_256), None);
        assert_eq!(
            mac(alg::HMAC_MD5, b"k", b"x"),
            Err(DigestError::Refused("HMAC-MD5"))
        );
        assert_eq!(refused_algorithm(alg::_3DES), Some("Triple-DES"));
        assert_eq!(refused_algorithm(alg::AES), None);
        assert_eq!(mac(alg::AES, b"k", b"x"), Err(DigestError::Unsupported));
        assert_eq!(hash(ha::SHA3_256, b"x"), Err(DigestError::Unsupported));
    }
}
