//! AES Key Wrap (KW, RFC 3394) and Key Wrap with Padding (KWP, RFC 5649) in the FIPS build:
//! the module's SP 800-38F implementations through aws-lc-rs `key_wrap`, behind the same
//! `AnyKek` shape as the default build's RustCrypto one (crate::crypto::keywrap). aws-lc-rs
//! exposes 128- and 256-bit KEKs only, so a 192-bit KEK is refused (`new` gives `None`, which
//! callers report as a key of the wrong size).

use super::prim::error::Unspecified;
use super::prim::key_wrap::{
    AesBlockCipher, KeyEncryptionKey, KeyWrap, KeyWrapPadded, AES_128, AES_256,
};
use zeroize::Zeroizing;

/// An AES-128 or AES-256 key-encryption key, kept as bytes (the module's key is consumed by
/// each operation), wiped on drop.
pub(crate) struct AnyKek(Zeroizing<Vec<u8>>);

impl AnyKek {
    /// The KEK for `key`, or `None` if it is not 16 or 32 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<AnyKek> {
        matches!(key.len(), 16 | 32).then(|| AnyKek(Zeroizing::new(key.to_vec())))
    }

    fn kek(&self) -> Result<KeyEncryptionKey<AesBlockCipher>, Unspecified> {
        let cipher = if self.0.len() == 16 {
            &AES_128
        } else {
            &AES_256
        };
        KeyEncryptionKey::new(cipher, &self.0)
    }

    pub(crate) fn wrap(&self, data: &[u8], out: &mut [u8]) -> Result<(), Unspecified> {
        self.kek()?.wrap(data, out).map(|_| ())
    }

    pub(crate) fn unwrap(&self, data: &[u8], out: &mut [u8]) -> Result<(), Unspecified> {
        self.kek()?.unwrap(data, out).map(|_| ())
    }

    pub(crate) fn wrap_with_padding(&self, data: &[u8], out: &mut [u8]) -> Result<(), Unspecified> {
        self.kek()?.wrap_with_padding(data, out).map(|_| ())
    }

    /// Unwraps into `out`; the unpadded length.
    pub(crate) fn unwrap_with_padding(
        &self,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Unspecified> {
        self.kek()?.unwrap_with_padding(data, out).map(|o| o.len())
    }
}
