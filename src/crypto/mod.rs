//! Cryptography: the key encryption key (KEK), wrapping and unwrapping of stored key material
//! with AES-256-GCM, key generation from the OS CSPRNG, digests and a start-up self-test.
//! Key bytes live in zeroizing buffers; nothing here logs or formats them.

pub mod backend;
pub mod keywrap;
pub mod rotate;
pub mod seal;
pub mod shamir;
pub mod slot;

use crate::crypto::backend::gcm::{Aes256Gcm, Payload};
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

pub mod asym;
pub mod cipher;
pub mod digest;
pub mod drbg;
pub mod kdf;
pub mod kwp;
pub mod pkcs12;
pub mod sec1;
pub mod selftest;
pub mod sha1_verify;

use crate::secret_file;

/// Size of the KEK in bytes (AES-256).
pub const KEK_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;

/// Errors of the crypto layer. Messages never contain key bytes.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The KEK file could not be read or written.
    #[error(transparent)]
    KekFile(#[from] secret_file::SecretFileError),
    /// The KEK file does not hold exactly 32 bytes.
    #[error("KEK file {path} holds {len} bytes, expected {KEK_LEN}")]
    KekLength {
        /// The file.
        path: String,
        /// What it held.
        len: usize,
    },
    /// A wrapped blob failed authentication: wrong KEK, tampering, or moved to another row.
    #[error("wrapped key material failed to authenticate")]
    Unwrap,
    /// The AEAD refused to encrypt (cannot happen with valid sizes).
    #[error("key wrapping failed")]
    Wrap,
    /// AES Key Wrap was given a key or data of a size it cannot take.
    #[error("key wrap: {0}")]
    KeyWrapInput(&'static str),
    /// The FIPS build does not perform this: the module has no approved implementation.
    #[error("not available in the FIPS build of akm: {0}")]
    NotInModule(&'static str),
    /// A sealed KEK file is malformed, or sealing was asked for with bad parameters.
    #[error("{0}")]
    Sealed(String),
    /// Unsealing was refused: the reason, safe to show the custodian.
    #[error("unseal: {0}")]
    Unseal(&'static str),
    /// The server is sealed: no KEK to wrap or unwrap with.
    #[error("the KEK is sealed")]
    NotUnsealed,
    /// The self-test at start-up did not give the known answer.
    #[error("cryptographic self-test failed: {0}")]
    SelfTest(&'static str),
}

/// The key encryption key. Wiped on drop, never printed.
pub struct Kek {
    cipher: Aes256Gcm,
    /// A short, non-secret identifier of this KEK (first 8 bytes of SHA-256 over a fixed label
    /// encrypted-then-hashed), recorded beside every wrapped blob so a rotation knows which
    /// KEK wrapped it.
    id: String,
    /// The key itself, kept only so a rotation can persist it again (sealed or in its file).
    bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

/// Material wrapped under the KEK, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The KEK's identifier.
    pub kek_id: String,
    /// The GCM nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Wrapped(kek {}, {} bytes)",
            self.kek_id,
            self.ciphertext.len()
        )
    }
}

impl Kek {
    /// Generates a new KEK from the OS CSPRNG and writes it to `path` (mode 0600, never
    /// overwriting).
    pub fn generate(path: &Path) -> Result<Kek, CryptoError> {
        let bytes = random_bytes(KEK_LEN);
        secret_file::write_new(path, &bytes)?;
        Kek::from_bytes(&bytes)
    }

    /// Loads the KEK from `path`, refusing a file readable by group or others.
    pub fn load(path: &Path) -> Result<Kek, CryptoError> {
        let bytes = secret_file::read(path)?;
        if bytes.len() != KEK_LEN {
            return Err(CryptoError::KekLength {
                path: path.display().to_string(),
                len: bytes.len(),
            });
        }
        Kek::from_bytes(&bytes)
    }

    /// A KEK from 32 bytes (tests and restore).
    pub fn from_bytes(bytes: &[u8]) -> Result<Kek, CryptoError> {
        if bytes.len() != KEK_LEN {
            return Err(CryptoError::KekLength {
                path: "<memory>".into(),
                len: bytes.len(),
            });
        }
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| CryptoError::Wrap)?;
        // The id is a digest of a fixed block encrypted under the KEK: it tells KEKs apart
        // without revealing anything about the key.
        let probe = cipher
            .id_probe(b"akm-kek-id")
            .map_err(|_| CryptoError::Wrap)?;
        let id = hex::encode(
            &crate::crypto::backend::prim::digest::digest(
                &crate::crypto::backend::prim::digest::SHA256,
                &probe,
            )
            .as_ref()[..8],
        );
        Ok(Kek {
            cipher,
            id,
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// The key bytes, for persisting it (never for display).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// This KEK's identifier.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wraps `material` for the object `uid` at `version`; the pair is bound as associated
    /// data so a blob copied to another row or version fails to unwrap.
    pub fn wrap(&self, uid: &str, version: i64, material: &[u8]) -> Result<Wrapped, CryptoError> {
        let aad = associated_data(uid, version);
        let (nonce, ciphertext) = self
            .cipher
            .seal(Payload {
                msg: material,
                aad: &aad,
            })
            .map_err(|_| CryptoError::Wrap)?;
        Ok(Wrapped {
            kek_id: self.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Unwraps material stored for `uid` at `version`.
    pub fn unwrap(
        &self,
        uid: &str,
        version: i64,
        wrapped: &Wrapped,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if wrapped.nonce.len() != NONCE_LEN {
            return Err(CryptoError::Unwrap);
        }
        let aad = associated_data(uid, version);
        self.cipher
            .decrypt(
                &wrapped.nonce,
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Unwrap)
    }
}

fn associated_data(uid: &str, version: i64) -> Vec<u8> {
    format!("akm/v1/{uid}/{version}").into_bytes()
}

/// `n` bytes from the build's SP 800-90A DRBG (akm's CTR_DRBG seeded from the OS, or the
/// AWS-LC-FIPS module's in the FIPS build), in a zeroizing buffer.
pub fn random_bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; n]);
    backend::fill_random(&mut out);
    out
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    crate::crypto::backend::prim::digest::digest(
        &crate::crypto::backend::prim::digest::SHA256,
        data,
    )
    .as_ref()
    .to_vec()
}

/// Known-answer self-tests of every primitive, run once at start-up before serving
/// ([`selftest`]); an error names the failed test.
pub fn self_test() -> Result<(), CryptoError> {
    selftest::run()?;
    // The KEK wrapping binds the object and version as associated data.
    let kek = Kek::from_bytes(&[7u8; KEK_LEN])?;
    let wrapped = kek.wrap("self-test", 1, b"self-test material")?;
    if kek.unwrap("self-test", 1, &wrapped)?.as_slice() != b"self-test material" {
        return Err(CryptoError::SelfTest("KEK wrap round trip"));
    }
    if kek.unwrap("self-test", 2, &wrapped).is_ok() {
        return Err(CryptoError::SelfTest("KEK associated data binding"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_binds_uid_and_version() {
        let kek = Kek::from_bytes(&[1u8; 32]).unwrap();
        let w = kek.wrap("uid-1", 1, b"secret key bytes").unwrap();
        assert_eq!(
            kek.unwrap("uid-1", 1, &w).unwrap().as_slice(),
            b"secret key bytes"
        );
        assert!(matches!(
            kek.unwrap("uid-2", 1, &w),
            Err(CryptoError::Unwrap)
        ));
        assert!(matches!(
            kek.unwrap("uid-1", 2, &w),
            Err(CryptoError::Unwrap)
        ));
        let other = Kek::from_bytes(&[2u8; 32]).unwrap();
        assert!(matches!(
            other.unwrap("uid-1", 1, &w),
            Err(CryptoError::Unwrap)
        ));
        assert_ne!(kek.id(), other.id());
    }

    #[test]
    fn ciphertext_does_not_contain_plaintext_and_nonces_differ() {
        let kek = Kek::from_bytes(&[3u8; 32]).unwrap();
        let material = [0x5Au8; 32];
        let a = kek.wrap("u", 1, &material).unwrap();
        let b = kek.wrap("u", 1, &material).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert!(!a.ciphertext.windows(8).any(|w| w == &material[..8]));
    }

    #[test]
    fn debug_output_hides_keys() {
        let kek = Kek::from_bytes(&[9u8; 32]).unwrap();
        assert!(!format!("{kek:?}").contains("9, 9"));
    }

    #[test]
    fn self_test_passes() {
        self_test().unwrap();
    }

    #[test]
    fn kek_file_round_trip_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.key");
        let kek = Kek::generate(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(Kek::load(&path).unwrap().id(), kek.id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Kek::load(&path).is_err());
    }
}
