//! The audit signing key: an Ed25519 key pair made at `akm init` (or on first start) and kept
//! like the KEK, in a 0600 secret file holding its PKCS#8 document. Signs checkpoints; its
//! public key is exported as one text line (`ed25519:<hex>`) for verifiers.

use crate::crypto::backend::prim::rand::SystemRandom;
use crate::crypto::backend::prim::signature::{self, Ed25519KeyPair, KeyPair};
use crate::secret_file::{self, SecretFileError};
use std::fmt;
use std::path::Path;

/// The prefix of an exported public key line.
pub const PUBLIC_PREFIX: &str = "ed25519:";

/// Why the signing key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The key file could not be written or read.
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// The file does not hold an Ed25519 PKCS#8 key.
    #[error("audit signing key {0} is not an Ed25519 PKCS#8 key")]
    Invalid(String),
    /// The system random generator failed.
    #[error("cannot generate the audit signing key")]
    Generate,
    /// A public key text is not `ed25519:` and 64 hex digits.
    #[error("not an akm audit public key (expected `ed25519:` and 64 hex digits)")]
    BadPublicKey,
}

/// The checkpoint signing key. Never printed.
pub struct Signer {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.key_id)
    }
}

impl Signer {
    /// Generates a key pair and writes it to `path` (0600, never overwriting).
    pub fn generate(path: &Path) -> Result<Signer, SignerError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| SignerError::Generate)?;
        secret_file::write_new(path, doc.as_ref())?;
        Signer::from_pkcs8(doc.as_ref(), path)
    }

    /// Loads the key from `path`, refusing a file readable by group or others.
    pub fn load(path: &Path) -> Result<Signer, SignerError> {
        let bytes = secret_file::read(path)?;
        Signer::from_pkcs8(&bytes, path)
    }

    /// Loads `path`, generating it first if it does not exist.
    pub fn load_or_generate(path: &Path) -> Result<Signer, SignerError> {
        if path.exists() {
            Signer::load(path)
        } else {
            Signer::generate(path)
        }
    }

    fn from_pkcs8(bytes: &[u8], path: &Path) -> Result<Signer, SignerError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes)
            .map_err(|_| SignerError::Invalid(path.display().to_string()))?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Signer { pair, key_id })
    }

    /// A key pair for tests, from a fixed 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Signer {
        // A 32-byte seed with the matching public key always forms a valid pair.
        let tmp = Ed25519KeyPair::from_seed_unchecked(seed).expect("a 32-byte seed is valid");
        let public = tmp.public_key().as_ref().to_vec();
        let pair = Ed25519KeyPair::from_seed_and_public_key(seed, &public)
            .expect("seed and its own public key match");
        Signer {
            key_id: key_id(&public),
            pair,
        }
    }

    /// The short key identifier recorded in checkpoints.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as exported for verifiers.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.pair.public_key().as_ref().to_vec())
    }

    /// Signs `message` (a checkpoint's hash), lower-case hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }
}

/// An Ed25519 public key that verifies checkpoints.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(Vec<u8>);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PublicKey {
    /// Parses an exported public key line.
    pub fn parse(text: &str) -> Result<PublicKey, SignerError> {
        let hex_part = text
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or(SignerError::BadPublicKey)?;
        let bytes = hex::decode(hex_part).map_err(|_| SignerError::BadPublicKey)?;
        if bytes.len() != 32 {
            return Err(SignerError::BadPublicKey);
        }
        Ok(PublicKey(bytes))
    }

    /// This key's identifier.
    pub fn key_id(&self) -> String {
        key_id(&self.0)
    }

    /// Whether `sig_hex` is this key's signature over `message`.
    pub fn verify(&self, message: &[u8], sig_hex: &str) -> bool {
        let Ok(sig) = hex::decode(sig_hex) else {
            return false;
        };
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(message, &sig)
            .is_ok()
    }
}

/// The first 8 bytes of SHA-256 over the public key, hex: tells signing keys apart.
fn key_id(public: &[u8]) -> String {
    hex::encode(
        &crate::crypto::backend::prim::digest::digest(
            &crate::crypto::backend::prim::digest::SHA256,
            public,
        )
        .as_ref()[..8],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_sign_verify_and_export() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let made = Signer::generate(&path).unwrap();
        let loaded = Signer::load(&path).unwrap();
        assert_eq!(made.key_id(), loaded.key_id());
        let sig = loaded.sign(b"head");
        let public = PublicKey::parse(&made.public_key().to_string()).unwrap();
        assert!(public.verify(b"head", &sig));
        assert!(!public.verify(b"other", &sig));
        assert!(!public.verify(b"head", "zz"));
        assert_eq!(public.key_id(), made.key_id());
        assert!(!format!("{made:?}").contains(&sig));
        assert!(matches!(
            Signer::generate(&path),
            Err(SignerError::File(SecretFileError::AlreadyExists { .. }))
        ));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.key");
        secret_file::write_new(&path, b"not a key").unwrap();
        assert!(matches!(Signer::load(&path), Err(SignerError::Invalid(_))));
        for bad in ["", "ed25519:", "ed25519:zz", "rsa:00", "ed25519:0011"] {
            assert!(PublicKey::parse(bad).is_err(), "{bad}");
        }
    }
}
