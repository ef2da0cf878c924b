//! Key derivation for the Derive Key operation: PBKDF2 (RFC 8018), HMAC and hash over
//! derivation data, SP 800-108 KDF in counter mode with HMAC (the Derivation Data is the whole
//! fixed input: Label, 0x00, Context and `[L]`), and HKDF (RFC 5869). All on ring's SHA-2
//! primitives, and SHA-1, which SP 800-131A Rev. 2 (§9, §10, §8 on key derivation) still
//! accepts outside signature generation; MD5 is refused like everywhere else. Outputs are key
//! material, in zeroizing buffers. The FIPS build runs SP 800-108 in the module's own KBKDF and
//! refuses what the module would run as a non-approved service (PBKDF2 and SP 800-108 below
//! their parameter floors, HKDF without an info).

use super::digest::{self, DigestError};
use crate::kmip::enums::hashing_algorithm as ha;
use zeroize::Zeroizing;

/// The longest key or secret akm derives, in bytes (4096 bits).
pub const MAX_OUTPUT: usize = 512;
/// The most PBKDF2 iterations one request may ask for, so a request cannot pin a thread
/// (defined with the `[server]` limits it bounds).
pub const MAX_ITERATIONS: u32 = crate::config::limits::MAX_PBKDF2_ITERATIONS_CAP;

/// Why a derivation failed. Never carries key bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    /// The hash is refused or not supported.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The requested length is zero, too long for the method, or over [`MAX_OUTPUT`].
    #[error("the requested length exceeds what this derivation method gives")]
    Length,
    /// The PBKDF2 iteration count is outside 1..=MAX_ITERATIONS.
    #[error("the PBKDF2 iteration count must be 1 to 10000000")]
    Iterations,
    /// The FIPS build does not perform this: the module would count it as a non-approved
    /// service.
    #[error("not available in the FIPS build of akm: {0}")]
    NotInModule(&'static str),
}

/// The FIPS build's PBKDF2 floor, SP 800-132 as the module applies it (AWS-LC's service
/// indicator): a password (the base key) of 14 bytes or more, a salt of 16 or more, 1000
/// iterations or more. Below any of them the module still derives, as a non-approved service.
const FIPS_PBKDF2: (usize, usize, u32) = (14, 16, 1000);

fn check_len(len: usize, max: usize) -> Result<(), KdfError> {
    if len == 0 || len > max.min(MAX_OUTPUT) {
        return Err(KdfError::Length);
    }
    Ok(())
}

/// ring's HMAC and the hash length for a Hashing Algorithm (SHA-256/384/512).
fn hmac_alg(hash: u32) -> Result<(crate::crypto::backend::prim::hmac::Algorithm, usize), KdfError> {
    if let Some(name) = digest::refused_hash(hash) {
        return Err(DigestError::Refused(name).into());
    }
    match hash {
        ha::SHA_1 => Ok((
            crate::crypto::backend::prim::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            20,
        )),
        ha::SHA_256 => Ok((crate::crypto::backend::prim::hmac::HMAC_SHA256, 32)),
        ha::SHA_384 => Ok((crate::crypto::backend::prim::hmac::HMAC_SHA384, 48)),
        ha::SHA_512 => Ok((crate::crypto::backend::prim::hmac::HMAC_SHA512, 64)),
        _ => Err(DigestError::Unsupported.into()),
    }
}

/// PBKDF2 with HMAC-`hash`.
pub fn pbkdf2(
    hash: u32,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KdfError> {
    hmac_alg(hash)?;
    let alg = match hash {
        ha::SHA_1 => crate::crypto::backend::prim::pbkdf2::PBKDF2_HMAC_SHA1,
        ha::SHA_256 => crate::crypto::backend::prim::pbkdf2::PBKDF2_HMAC_SHA256,
        ha::SHA_384 => crate::crypto::backend::prim::pbkdf2::PBKDF2_HMAC_SHA384,
        _ => crate::crypto::backend::prim::pbkdf2::PBKDF2_HMAC_SHA512,
    };
    check_len(len, MAX_OUTPUT)?;
    let iterations = std::num::NonZeroU32::new(iterations)
        .filter(|n| n.get() <= MAX_ITERATIONS)
        .ok_or(KdfError::Iterations)?;
    let (min_password, min_salt, min_iterations) = FIPS_PBKDF2;
    if crate::crypto::backend::FIPS_BUILD
        && (password.len() < min_password
            || salt.len() < min_salt
            || iterations.get() < min_iterations)
    {
        return Err(KdfError::NotInModule(
            "PBKDF2 with a base key under 14 bytes, a Salt under 16 bytes or under 1000 \
             iterations (SP 800-132; the module does not approve it)",
        ));
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    crate::crypto::backend::prim::pbkdf2::derive(alg, iterations, salt, password, &mut out);
    Ok(out)
}

/// HMAC-`hash` of `data` under `key`, truncated to `len` (at most the hash length).
pub fn hmac(
    hash: u32,
    key: &[u8],
    data: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KdfError> {
    let (alg, hlen) = hmac_alg(hash)?;
    check_len(len, hlen)?;
    let tag = crate::crypto::backend::prim::hmac::sign(
        &crate::crypto::backend::prim::hmac::Key::new(alg, key),
        data,
    );
    Ok(Zeroizing::new(tag.as_ref()[..len].to_vec()))
}

/// The `hash` of `data`, truncated to `len` (at most the hash length).
pub fn hash(hash: u32, data: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, KdfError> {
    let d = digest::hash(hash, data)?;
    check_len(len, d.len())?;
    Ok(Zeroizing::new(d[..len].to_vec()))
}

/// SP 800-108 KDF in counter mode with HMAC-`hash`: `K(i) = PRF(key, [i]32 || fixed)`, i from 1.
pub fn sp800_108_counter(
    hash: u32,
    key: &[u8],
    fixed: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KdfError> {
    // The FIPS build checks the hash here and runs the module's KBKDF, not this HMAC.
    #[cfg_attr(feature = "fips", allow(unused_variables))]
    let (alg, _) = hmac_alg(hash)?;
    check_len(len, MAX_OUTPUT)?;
    #[cfg(feature = "fips")]
    return module_kbkdf(hash, key, fixed, len);
    #[cfg(not(feature = "fips"))]
    hmac_counter(alg, key, fixed, len)
}

/// The SP 800-108 counter loop over HMAC (the default build).
#[cfg(not(feature = "fips"))]
fn hmac_counter(
    alg: crate::crypto::backend::prim::hmac::Algorithm,
    key: &[u8],
    fixed: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KdfError> {
    let key = crate::crypto::backend::prim::hmac::Key::new(alg, key);
    let mut out = Zeroizing::new(Vec::with_capacity(len + 64));
    let mut i: u32 = 1;
    while out.len() < len {
        let mut ctx = crate::crypto::backend::prim::hmac::Context::with_key(&key);
        ctx.update(&i.to_be_bytes());
        ctx.update(fixed);
        out.extend_from_slice(ctx.sign().as_ref());
        i += 1;
    }
    out.truncate(len);
    Ok(out)
}

/// SP 800-108 counter mode in the module (its KBKDF_ctr_hmac: the same 32-bit big-endian
/// counter before the fixed input): HMAC-SHA-256/384/512 with a key of 14 bytes or more, the
/// only ones the module approves; SHA-1 or a shorter key is refused.
#[cfg(feature = "fips")]
fn module_kbkdf(
    hash: u32,
    key: &[u8],
    fixed: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KdfError> {
    use crate::crypto::backend::prim::kdf::{
        get_kbkdf_ctr_hmac_algorithm, kbkdf_ctr_hmac, KbkdfCtrHmacAlgorithmId as Id,
    };
    let id = match hash {
        ha::SHA_256 => Id::Sha256,
        ha::SHA_384 => Id::Sha384,
        ha::SHA_512 => Id::Sha512,
        _ => {
            return Err(KdfError::NotInModule(
                "SP 800-108 counter mode with other than HMAC-SHA-256, -384 or -512",
            ))
        }
    };
    if key.len() < 14 {
        return Err(KdfError::NotInModule(
            "SP 800-108 counter mode with a base key under 14 bytes (SP 800-131A)",
        ));
    }
    let alg = get_kbkdf_ctr_hmac_algorithm(id).ok_or(KdfError::Length)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    kbkdf_ctr_hmac(alg, key, fixed, &mut out).map_err(|_| KdfError::Length)?;
    Ok(out)
}

/// HKDF-`hash` (RFC 5869): extract with `salt`, expand with `info` to `len` bytes.
pub fn hkdf(
    hash: u32,
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KdfError> {
    let (_, hlen) = hmac_alg(hash)?;
    check_len(len, 255 * hlen)?;
    if crate::crypto::backend::FIPS_BUILD && info.is_empty() {
        return Err(KdfError::NotInModule(
            "HKDF without Derivation Data (its info): the module approves HKDF with an info only",
        ));
    }
    // No salt is HashLen zero bytes (RFC 5869 §2.2), the same HMAC key as an empty one; said
    // so, as the module counts an empty salt as a non-approved service.
    let zeros = vec![0u8; hlen];
    let salt = if salt.is_empty() { &zeros[..] } else { salt };
    let alg = match hash {
        ha::SHA_1 => crate::crypto::backend::prim::hkdf::HKDF_SHA1_FOR_LEGACY_USE_ONLY,
        ha::SHA_256 => crate::crypto::backend::prim::hkdf::HKDF_SHA256,
        ha::SHA_384 => crate::crypto::backend::prim::hkdf::HKDF_SHA384,
        _ => crate::crypto::backend::prim::hkdf::HKDF_SHA512,
    };
    struct Len(usize);
    impl crate::crypto::backend::prim::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let info = [info];
    let prk = crate::crypto::backend::prim::hkdf::Salt::new(alg, salt).extract(ikm);
    let okm = prk.expand(&info, Len(len)).map_err(|_| KdfError::Length)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    okm.fill(&mut out).map_err(|_| KdfError::Length)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_hmac_sha256_known_answer() {
        // PBKDF2-HMAC-SHA256("password", "salt", 2, 32), as Python's hashlib computes it.
        if crate::crypto::backend::FIPS_BUILD {
            let refused = pbkdf2(ha::SHA_256, b"password", b"salt", 2, 32);
            assert!(
                matches!(refused, Err(KdfError::NotInModule(_))),
                "{refused:?}"
            );
            return;
        }
        let out = pbkdf2(ha::SHA_256, b"password", b"salt", 2, 32).unwrap();
        assert_eq!(
            hex::encode(&out[..]),
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
        );
        assert_eq!(
            pbkdf2(ha::SHA_256, b"p", b"s", 0, 32),
            Err(KdfError::Iterations)
        );
        assert_eq!(
            pbkdf2(ha::MD5, b"p", b"s", 1, 32),
            Err(KdfError::Digest(DigestError::Refused("MD5")))
        );
    }

    #[test]
    #[cfg_attr(
        feature = "fips",
        ignore = "this vector's 4-byte salt and 2 iterations are refused in the FIPS build"
    )]
    fn pbkdf2_hmac_sha1_rfc6070_known_answer() {
        // RFC 6070 test vector 2: P = "password", S = "salt", c = 2, dkLen = 20.
        let out = pbkdf2(ha::SHA_1, b"password", b"salt", 2, 20).unwrap();
        assert_eq!(
            hex::encode(&out[..]),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
    }

    /// RFC 6070 test vector 5 (24-byte password, 36-byte salt, 4096 iterations): over the
    /// FIPS build's PBKDF2 floor, so both builds derive it.
    #[test]
    fn pbkdf2_over_the_fips_floor_runs_in_both_builds() {
        let out = pbkdf2(
            ha::SHA_1,
            b"passwordPASSWORDpassword",
            b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
            4096,
            25,
        )
        .unwrap();
        assert_eq!(
            hex::encode(&out[..]),
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"
        );
    }

    /// HKDF without a salt is HKDF with HashLen zero bytes (Python's hmac gives the answer);
    /// without an info the FIPS build refuses it.
    #[test]
    fn hkdf_without_a_salt_is_the_zero_salt_and_without_an_info_is_refused_in_fips() {
        let out = hkdf(ha::SHA_256, &[], &[0x0b; 22], b"info", 32).unwrap();
        assert_eq!(
            hex::encode(&out[..]),
            "160124c21df9122eb5ad05e79a54a9a822787ac6a65aa4270b85ad4fde248aec"
        );
        let no_info = hkdf(ha::SHA_256, b"salt", &[0x0b; 22], &[], 32);
        assert_eq!(
            matches!(no_info, Err(KdfError::NotInModule(_))),
            crate::crypto::backend::FIPS_BUILD,
            "{no_info:?}"
        );
    }

    #[test]
    fn hkdf_rfc5869_case_1() {
        let out = hkdf(
            ha::SHA_256,
            &hex::decode("000102030405060708090a0b0c").unwrap(),
            &[0x0b; 22],
            &hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap(),
            42,
        )
        .unwrap();
        assert_eq!(
            hex::encode(&out[..]),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn sp800_108_counter_mode_matches_an_independent_computation() {
        // Computed with Python's hmac: HMAC-SHA256(k, [1]32 || fixed) || HMAC(k, [2]32 || fixed).
        let key: Vec<u8> = (0u8..32).collect();
        let out = sp800_108_counter(ha::SHA_256, &key, b"label\x00context", 40).unwrap();
        assert_eq!(
            hex::encode(&out[..]),
            "18b8910606f09c475658fb393a63521855b7deee922916562c76d87ba4f91aa88d4d4fe95ec82226"
        );
    }

    /// The FIPS build runs SP 800-108 in the module's KBKDF, which it approves with SHA-2 and a
    /// key of 14 bytes or more: SHA-1 and a 13-byte key are refused there, derived elsewhere.
    #[test]
    fn sp800_108_in_the_fips_build_takes_sha2_and_a_14_byte_key() {
        let sha1 = sp800_108_counter(ha::SHA_1, &[7; 32], b"x", 16);
        let short = sp800_108_counter(ha::SHA_256, &[7; 13], b"x", 16);
        for r in [sha1, short] {
            assert_eq!(
                matches!(r, Err(KdfError::NotInModule(_))),
                crate::crypto::backend::FIPS_BUILD,
                "{r:?}"
            );
        }
    }

    #[test]
    fn lengths_are_bounded() {
        assert_eq!(hmac(ha::SHA_256, b"k", b"d", 33), Err(KdfError::Length));
        assert_eq!(hash(ha::SHA_256, b"d", 0), Err(KdfError::Length));
        assert_eq!(
            sp800_108_counter(ha::SHA_256, b"k", b"d", MAX_OUTPUT + 1),
            Err(KdfError::Length)
        );
        assert_eq!(hmac(ha::SHA_512, b"k", b"d", 64).unwrap().len(), 64);
        assert_eq!(hash(ha::SHA_384, b"d", 48).unwrap().len(), 48);
    }
}
