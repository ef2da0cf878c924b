//! AES-256-GCM with a 96-bit nonce and 128-bit tag through the build's module: the KEK's
//! wrapping of stored keys, the sealed KEK and the backup format. One type for both builds
//! (ring or the AWS-LC-FIPS module), with the call shape of RustCrypto's `aes-gcm`, which it
//! replaced.
//!
//! [`Aes256Gcm::seal`] chooses the nonce itself: in the FIPS build the module generates it
//! (aws-lc-rs `RandomizedNonceKey`), the only AES-GCM encryption the module approves.
//! [`Aes256Gcm::encrypt`] takes the caller's nonce and is therefore refused in the FIPS build
//! (aws-lc-rs documents `LessSafeKey` sealing as not for FIPS use); opening with any nonce is
//! approved in both.

use super::prim::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The message and its associated data.
pub struct Payload<'a> {
    /// Plaintext (sealing) or ciphertext and tag (opening).
    pub msg: &'a [u8],
    /// Associated data, authenticated and not encrypted.
    pub aad: &'a [u8],
}

/// Why sealing or opening failed: a bad key or nonce length, or (opening) a tag that did not
/// verify. Carries nothing else, by design.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcmError;

/// An AES-256-GCM key.
pub struct Aes256Gcm {
    open: LessSafeKey,
    #[cfg(feature = "fips")]
    seal: super::prim::aead::RandomizedNonceKey,
}

impl Aes256Gcm {
    /// A key from 32 bytes.
    pub fn new_from_slice(key: &[u8]) -> Result<Aes256Gcm, GcmError> {
        let open = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| GcmError)?);
        Ok(Aes256Gcm {
            open,
            #[cfg(feature = "fips")]
            seal: super::prim::aead::RandomizedNonceKey::new(&AES_256_GCM, key)
                .map_err(|_| GcmError)?,
        })
    }

    /// Seals `p.msg` under a fresh random nonce the module chooses; (nonce, ciphertext and tag).
    #[cfg(feature = "fips")]
    pub fn seal(&self, p: Payload<'_>) -> Result<(Vec<u8>, Vec<u8>), GcmError> {
        let mut out = p.msg.to_vec();
        let nonce = self
            .seal
            .seal_in_place_append_tag(Aad::from(p.aad), &mut out)
            .map_err(|_| GcmError)?;
        Ok((nonce.as_ref().to_vec(), out))
    }

    /// Seals `p.msg` under a fresh random nonce from the build's DRBG; (nonce, ciphertext and
    /// tag).
    #[cfg(not(feature = "fips"))]
    pub fn seal(&self, p: Payload<'_>) -> Result<(Vec<u8>, Vec<u8>), GcmError> {
        let nonce = crate::crypto::random_bytes(NONCE_LEN);
        let ct = self.encrypt(&nonce, p)?;
        Ok((nonce.to_vec(), ct))
    }

    fn nonce(nonce: &[u8]) -> Result<Nonce, GcmError> {
        let bytes: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| GcmError)?;
        Ok(Nonce::assume_unique_for_key(bytes))
    }

    /// The KEK identifier's probe: the fixed public block `label` sealed under the all-zero
    /// nonce, whose output is only hashed into a public identifier (crate::crypto::Kek). It
    /// protects nothing, so it runs in both builds (in the FIPS build the module's service
    /// indicator counts it as non-approved, like any caller-nonce GCM seal); keeping it keeps
    /// every KEK's id, and so every stored row, the same in both builds.
    pub fn id_probe(&self, label: &[u8]) -> Result<Vec<u8>, GcmError> {
        let mut out = label.to_vec();
        self.open
            .seal_in_place_append_tag(Self::nonce(&[0u8; NONCE_LEN])?, Aad::empty(), &mut out)
            .map_err(|_| GcmError)?;
        Ok(out)
    }

    /// Ciphertext and tag of `p.msg` under the caller's 12-byte `nonce`. Refused in the FIPS
    /// build (see the module doc): callers that can, use [`Aes256Gcm::seal`].
    pub fn encrypt(&self, nonce: &[u8], p: Payload<'_>) -> Result<Vec<u8>, GcmError> {
        if super::FIPS_BUILD {
            return Err(GcmError);
        }
        let mut out = p.msg.to_vec();
        self.open
            .seal_in_place_append_tag(Self::nonce(nonce)?, Aad::from(p.aad), &mut out)
            .map_err(|_| GcmError)?;
        Ok(out)
    }

    /// The plaintext of `p.msg` (ciphertext and tag), if the tag verifies.
    pub fn decrypt(&self, nonce: &[u8], p: Payload<'_>) -> Result<Vec<u8>, GcmError> {
        let mut buf = p.msg.to_vec();
        let len = self
            .open
            .open_in_place(Self::nonce(nonce)?, Aad::from(p.aad), &mut buf)
            .map_err(|_| GcmError)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}
