//! Signature verification with SHA-1, which NIST SP 800-131A Rev. 2 §9 (Table 8) still
//! accepts for legacy use (verifying signatures made before), while it disallows SHA-1 for
//! signature generation, which akm never does (`digest::refused_for_signing`). RSASSA-PKCS1-v1_5
//! is ring's legacy verification algorithm; RSASSA-PSS with SHA-1 (MGF1-SHA-1, any salt
//! length) is RFC 8017 §9.1.2 EMSA-PSS-VERIFY over the `rsa` crate's public-key operation,
//! as ring offers no PSS with SHA-1. ECDSA with SHA-1 is not offered (ring has none).

use super::asym::{AsymError, Scheme};
use crate::crypto::backend::prim::digest::{digest, Context, SHA1_FOR_LEGACY_USE_ONLY as SHA1};

/// SHA-1's output length.
const H_LEN: usize = 20;

/// Whether `sig` is a valid SHA-1 signature over `data` by the raw public key `public` (the
/// PKCS#1 RSAPublicKey for RSA).
pub fn verify(scheme: Scheme, public: &[u8], data: &[u8], sig: &[u8]) -> Result<bool, AsymError> {
    match scheme {
        Scheme::RsaPkcs1 => Ok(crate::crypto::backend::prim::signature::UnparsedPublicKey::new(
            &crate::crypto::backend::prim::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public,
        )
        .verify(data, sig)
        .is_ok()),
        Scheme::RsaPss if super::backend::FIPS_BUILD => Err(AsymError::Params(
            "not available in the FIPS build of akm: RSASSA-PSS with SHA-1 (the module has none)",
        )),
        Scheme::RsaPss => Ok(pss_verify(public, data, sig)),
        Scheme::Ecdsa => Err(AsymError::Params(
            "ECDSA uses SHA-256 with P-256 and SHA-384 with P-384",
        )),
    }
}

/// RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with SHA-1 and MGF1-SHA-1, the salt length read from
/// the encoded message.
fn pss_verify(pkcs1_public: &[u8], data: &[u8], sig: &[u8]) -> bool {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let Ok(key) = rsa::RsaPublicKey::from_pkcs1_der(pkcs1_public) else {
        return false;
    };
    if key.n().bits() < 2048 || sig.len() != key.size() {
        return false;
    }
    let s = rsa::BigUint::from_bytes_be(sig);
    if &s >= key.n() {
        return false;
    }
    let m = s.modpow(key.e(), key.n());
    let em_bits = key.n().bits() - 1;
    let em_len = em_bits.div_ceil(8);
    let m = m.to_bytes_be();
    if m.len() > em_len {
        return false;
    }
    let mut em = vec![0u8; em_len - m.len()];
    em.extend_from_slice(&m);
    emsa_pss_verify(digest(&SHA1, data).as_ref(), &em, em_bits)
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) for SHA-1, steps 3 to 14, with any salt length.
fn emsa_pss_verify(m_hash: &[u8], em: &[u8], em_bits: usize) -> bool {
    let em_len = em.len();
    if em_len < H_LEN + 2 || em[em_len - 1] != 0xbc {
        return false;
    }
    let (masked_db, rest) = em.split_at(em_len - H_LEN - 1);
    let h = &rest[..H_LEN];
    let top_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8.checked_shr(top_bits as u32).unwrap_or(0);
    if masked_db[0] & !top_mask != 0 {
        return false;
    }
    let mut db: Vec<u8> = masked_db
        .iter()
        .zip(mgf1(h, masked_db.len()))
        .map(|(a, b)| a ^ b)
        .collect();
    db[0] &= top_mask;
    let Some(one) = db.iter().position(|&b| b != 0) else {
        return false;
    };
    if db[one] != 0x01 {
        return false;
    }
    let salt = &db[one + 1..];
    let mut ctx = Context::new(&SHA1);
    ctx.update(&[0u8; 8]);
    ctx.update(m_hash);
    ctx.update(salt);
    // Everything compared here is public (the signature and the message), so a plain
    // comparison leaks nothing.
    ctx.finish().as_ref() == h
}

/// MGF1 with SHA-1 (RFC 8017 §B.2.1).
fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + H_LEN);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut ctx = Context::new(&SHA1);
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) for SHA-1, to check the verifier against.
    fn encode(m_hash: &[u8], salt: &[u8], em_bits: usize) -> Vec<u8> {
        let em_len = em_bits.div_ceil(8);
        let mut ctx = Context::new(&SHA1);
        ctx.update(&[0u8; 8]);
        ctx.update(m_hash);
        ctx.update(salt);
        let h = ctx.finish();
        let mut db = vec![0u8; em_len - salt.len() - H_LEN - 2];
        db.push(1);
        db.extend_from_slice(salt);
        let mask = mgf1(h.as_ref(), db.len());
        let mut em: Vec<u8> = db.iter().zip(mask).map(|(a, b)| a ^ b).collect();
        em[0] &= 0xff >> (8 * em_len - em_bits);
        em.extend_from_slice(h.as_ref());
        em.push(0xbc);
        em
    }

    #[test]
    fn pss_encoding_verifies_with_any_salt_and_only_for_its_message() {
        let m_hash = digest(&SHA1, b"message");
        let other = digest(&SHA1, b"other");
        for salt_len in [0, 20, 32, 200] {
            let salt = vec![7u8; salt_len];
            let em = encode(m_hash.as_ref(), &salt, 2047);
            assert!(emsa_pss_verify(m_hash.as_ref(), &em, 2047));
            assert!(!emsa_pss_verify(other.as_ref(), &em, 2047));
            let mut bad = em.clone();
            bad[10] ^= 1;
            assert!(!emsa_pss_verify(m_hash.as_ref(), &bad, 2047));
        }
    }
}
