//! The one crypto backend every akm cryptographic call goes through. Two builds, one API:
//!
//! - the default build (`ring-backend`): ring for digests, HMAC, HKDF, PBKDF2, AES-GCM
//!   (the KEK), signatures and TLS; RustCrypto for the AES modes and RSA operations ring lacks;
//!   akm's own SP 800-90A CTR_DRBG for random bytes;
//! - the `fips` build: aws-lc-rs over the AWS-LC-FIPS module for all of it, the module's
//!   DRBG for random bytes, and a refusal ([`Unapproved`]) for every operation the module has
//!   no approved implementation of.
//!
//! [`prim`] is the ring-compatible primitive API of the build (aws-lc-rs keeps ring's), so a
//! call site names `backend::prim::digest` and never `ring` or `aws_lc_rs` directly; the rest
//! of this module is what the two builds do differently: the rustls provider, random bytes,
//! the module's identity and its approved-mode check.

pub mod gcm;

#[cfg(feature = "ring-backend")]
mod ring_backend;
#[cfg(feature = "ring-backend")]
use ring_backend as build;

#[cfg(feature = "fips")]
mod fips;
#[cfg(feature = "fips")]
pub(crate) mod fips_cipher;
#[cfg(feature = "fips")]
pub(crate) mod fips_keywrap;
#[cfg(feature = "fips")]
pub(crate) mod fips_rsa;
#[cfg(feature = "fips")]
use fips as build;

/// The ring-compatible primitives of this build (the leaf [`crate::primitives`]).
pub use crate::primitives as prim;
pub use crate::primitives::{ticketer, tls_provider};

pub use build::fill_random;

/// An ECDSA key pair from PKCS#8 (ring asks for an RNG to check it, aws-lc-rs does not).
pub fn ecdsa_from_pkcs8(
    alg: &'static prim::signature::EcdsaSigningAlgorithm,
    pkcs8: &[u8],
) -> Result<prim::signature::EcdsaKeyPair, prim::error::KeyRejected> {
    #[cfg(feature = "ring-backend")]
    return prim::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8, &prim::rand::SystemRandom::new());
    #[cfg(feature = "fips")]
    return prim::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8);
}

/// An RSA key pair's modulus length in bytes (the two libraries name the accessor apart).
pub fn rsa_modulus_len(key: &prim::signature::RsaKeyPair) -> usize {
    #[cfg(feature = "ring-backend")]
    return key.public().modulus_len();
    #[cfg(feature = "fips")]
    return key.public_modulus_len();
}

/// Whether this binary was built as the FIPS flavour.
pub const FIPS_BUILD: bool = cfg!(feature = "fips");

/// Which cryptographic module serves this build, for the log, the status page, `/metrics`,
/// the `start` audit record and Query's Server Information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// The module's name, e.g. "AWS-LC-FIPS" or "ring".
    pub name: &'static str,
    /// Its version as the library reports it.
    pub version: String,
    /// Whether it runs in FIPS approved mode (always false for the default build).
    pub fips: bool,
}

impl Module {
    /// One line naming the module: "AWS-LC-FIPS 4.x.y (FIPS approved mode)".
    pub fn describe(&self) -> String {
        let mode = if self.fips {
            "FIPS approved mode"
        } else {
            "not a FIPS module"
        };
        format!("{} {} ({mode})", self.name, self.version)
    }
}

/// The module serving this build.
pub fn module() -> Module {
    build::module()
}

/// What the module reports about itself at start: whether it is in approved mode and whether
/// its power-on self-tests passed (a function of the module, kept apart from
/// [`require_approved`] so the refusal can be exercised with a failing report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleReport {
    /// `Err` with the module's reason when it is not in approved mode.
    pub approved_mode: Result<(), String>,
    /// `Err` with the reason when the on-demand known-answer self-tests failed.
    pub self_tests: Result<(), String>,
}

/// Asks the module for its [`ModuleReport`] (runs its self-tests again, on demand).
pub fn module_report() -> ModuleReport {
    build::module_report()
}

/// Refuses to go on (serve) unless the report shows a FIPS module in approved mode whose
/// self-tests passed; the error says which and why. `require_fips` is `[crypto]
/// require_fips`: a non-FIPS build passes only when it is false.
pub fn require_approved(report: &ModuleReport, require_fips: bool) -> Result<(), String> {
    if require_fips && !FIPS_BUILD {
        return Err(format!(
            "[crypto] require_fips = true, but this akm binary is not the FIPS build (its \
             module is {}): install the FIPS flavour or set require_fips = false",
            module().describe()
        ));
    }
    if !FIPS_BUILD {
        return Ok(());
    }
    if let Err(why) = &report.approved_mode {
        return Err(format!(
            "the AWS-LC-FIPS module is not in approved mode: {why}"
        ));
    }
    if let Err(why) = &report.self_tests {
        return Err(format!("the AWS-LC-FIPS module's self-tests failed: {why}"));
    }
    Ok(())
}

/// An operation this build does not perform because the FIPS module has no approved
/// implementation of it; the reason is shown to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not available in the FIPS build of akm: {0}")]
pub struct Unapproved(pub &'static str);

/// `Err(Unapproved(why))` in the FIPS build, `Ok` in the default build: the guard at the top of
/// every operation the default build does outside any module.
pub fn outside_module(why: &'static str) -> Result<(), Unapproved> {
    if FIPS_BUILD {
        Err(Unapproved(why))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing() -> ModuleReport {
        ModuleReport {
            approved_mode: Ok(()),
            self_tests: Ok(()),
        }
    }

    #[test]
    fn the_running_module_passes_its_own_check() {
        require_approved(&module_report(), FIPS_BUILD).unwrap();
        assert_eq!(module().fips, FIPS_BUILD);
    }

    #[test]
    fn require_fips_refuses_a_non_fips_build() {
        let refused = require_approved(&passing(), true);
        assert_eq!(refused.is_err(), !FIPS_BUILD);
        if let Err(why) = refused {
            assert!(why.contains("require_fips"), "{why}");
        }
    }

    #[test]
    fn a_failed_self_test_or_unapproved_mode_stops_the_fips_build() {
        let broken = ModuleReport {
            approved_mode: Ok(()),
            self_tests: Err("KAT mismatch".into()),
        };
        let off = ModuleReport {
            approved_mode: Err("FIPS mode not enabled!".into()),
            self_tests: Ok(()),
        };
        for report in [broken, off] {
            assert_eq!(require_approved(&report, false).is_err(), FIPS_BUILD);
        }
    }
}

/// What the FIPS build refuses, and that it refuses it with the reason; run in the FIPS build.
#[cfg(all(test, feature = "fips"))]
mod fips_refusals {
    use crate::crypto::cipher::{self, CipherError, Mode, Params};
    use crate::kmip::enums::hashing_algorithm as ha;

    fn gcm(iv: &[u8]) -> Params<'_> {
        Params {
            mode: Mode::Gcm,
            pkcs5: false,
            iv,
            aad: &[],
            tag_len: 16,
        }
    }

    #[test]
    fn gcm_encryption_with_a_caller_iv_is_refused_and_decryption_is_not() {
        let refused = cipher::encrypt(&[0u8; 32], &gcm(&[0u8; 12]), b"data").unwrap_err();
        assert!(
            matches!(refused, CipherError::NotInModule(_)),
            "{refused:?}"
        );
        // SP 800-38D test case 14 (AES-256, zero key and IV, one zero block).
        let ct = hex::decode("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
            .unwrap();
        let plain = cipher::decrypt(&[0u8; 32], &gcm(&[0u8; 12]), &ct[..16], Some(&ct[16..]));
        assert_eq!(plain.unwrap().as_slice(), [0u8; 16]);
    }

    #[test]
    fn cbc_and_ctr_run_in_the_module() {
        for mode in [Mode::Cbc, Mode::Ctr] {
            let p = Params {
                mode,
                pkcs5: mode == Mode::Cbc,
                iv: &[7u8; 16],
                aad: &[],
                tag_len: 0,
            };
            let (ct, _) = cipher::encrypt(&[1u8; 16], &p, b"seventeen bytes!!").unwrap();
            let back = cipher::decrypt(&[1u8; 16], &p, &ct, None).unwrap();
            assert_eq!(back.as_slice(), b"seventeen bytes!!");
        }
    }

    #[test]
    fn aes_192_key_wrap_argon2_sealing_and_mixed_oaep_are_refused() {
        assert!(crate::crypto::keywrap::wrap(&[0u8; 24], &[0u8; 16]).is_err());
        let salt = hex::encode([0u8; 16]);
        let params = crate::crypto::seal::Argon2Params::MINIMUM;
        let sealed = crate::crypto::seal::derive(b"pass", &salt, params);
        assert!(sealed.unwrap_err().to_string().contains("FIPS build"));
        let pair = crate::crypto::asym::generate_rsa(2048).unwrap();
        let mixed = crate::crypto::asym::oaep_encrypt(
            pair.public_format,
            &pair.public_der,
            ha::SHA_256,
            ha::SHA_384,
            None,
            b"k",
        );
        assert!(format!("{mixed:?}").contains("FIPS build"));
        let same = crate::crypto::asym::oaep_encrypt(
            pair.public_format,
            &pair.public_der,
            ha::SHA_256,
            ha::SHA_256,
            Some(b"label"),
            b"k",
        )
        .unwrap();
        let back = crate::crypto::asym::oaep_decrypt(
            pair.private_format,
            &pair.private_der,
            ha::SHA_256,
            ha::SHA_256,
            Some(b"label"),
            &same,
        )
        .unwrap();
        assert_eq!(back.as_slice(), b"k");
    }

    #[test]
    fn the_module_is_in_approved_mode_and_random_comes_from_it() {
        aws_lc_rs::try_fips_mode().unwrap();
        let m = super::module();
        assert_eq!(m.name, "AWS-LC-FIPS");
        assert!(
            m.fips && m.describe().contains("FIPS approved mode"),
            "{m:?}"
        );
        let (a, b) = (
            crate::crypto::random_bytes(32),
            crate::crypto::random_bytes(32),
        );
        assert_ne!(a.as_slice(), b.as_slice());
    }
}
