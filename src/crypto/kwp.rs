//! AES Key Wrap with Padding (RFC 5649, NIST SP 800-38F "KWP"): what KMIP calls the AES Key
//! Wrap Padding block cipher mode. Wraps key material of any length from 1 byte, with the
//! length bound into the alternative initial value so unwrapping checks it. The algorithm is
//! RustCrypto's `aes-kw` (through `keywrap`'s `AnyKek`); this module keeps akm's errors
//! and zeroizing. Inputs and outputs are key material: never logged or formatted.

use super::keywrap::{AnyKek, NO_AES_192_KEK};
use zeroize::Zeroizing;

/// The integrity value before the wrapped data (RFC 5649's AIV).
const IV_LEN: usize = aes_kw::IV_LEN;

/// Why a KWP wrap or unwrap failed. Never carries key bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KwpError {
    /// The wrapping key is not an AES key.
    #[error("the wrapping key is not a 128, 192 or 256-bit AES key")]
    KeyLength,
    /// Nothing to wrap, or more than 2^32 bytes.
    #[error("key wrap with padding takes 1 byte to 4 GiB")]
    InputLength,
    /// The wrapped data is malformed or fails its integrity check.
    #[error("wrapped key failed its integrity check")]
    Integrity,
    /// The FIPS build does not perform this (a 192-bit KEK).
    #[error("not available in the FIPS build of akm: {0}")]
    NotInModule(&'static str),
}

/// The KEK for `key`; a 192-bit one is refused as such in the FIPS build.
fn any_kek(key: &[u8]) -> Result<AnyKek, KwpError> {
    if super::backend::FIPS_BUILD && key.len() == 24 {
        return Err(KwpError::NotInModule(NO_AES_192_KEK));
    }
    AnyKek::new(key).ok_or(KwpError::KeyLength)
}

/// Wraps `data` under the AES key `kek`.
pub fn wrap(kek: &[u8], data: &[u8]) -> Result<Vec<u8>, KwpError> {
    let kek = any_kek(kek)?;
    if data.is_empty() || u32::try_from(data.len()).is_err() {
        return Err(KwpError::InputLength);
    }
    let mut out = vec![0u8; data.len().div_ceil(8) * 8 + IV_LEN];
    kek.wrap_with_padding(data, &mut out)
        .map_err(|_| KwpError::InputLength)?;
    Ok(out)
}

/// Unwraps `wrapped` under the AES key `kek`, checking the integrity value and the padding.
pub fn unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KwpError> {
    let kek = any_kek(kek)?;
    if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
        return Err(KwpError::Integrity);
    }
    // Zeroizing from the start: the crate unwraps in place into this buffer.
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - IV_LEN]);
    let len = kek
        .unwrap_with_padding(wrapped, &mut out)
        .map_err(|_| KwpError::Integrity)?;
    // Shortening keeps the same allocation, which `Zeroizing` wipes whole on drop.
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEK: &str = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    #[cfg_attr(
        feature = "fips",
        ignore = "an AES-192 KEK is refused in the FIPS build"
    )]
    fn rfc5649_section_6_twenty_octets() {
        let w = wrap(&h(KEK), &h("c37b7e6492584340bed12207808941155068f738")).unwrap();
        assert_eq!(
            hex::encode(&w),
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"
        );
        assert_eq!(
            unwrap(&h(KEK), &w).unwrap().as_slice(),
            h("c37b7e6492584340bed12207808941155068f738")
        );
    }

    #[test]
    #[cfg_attr(
        feature = "fips",
        ignore = "an AES-192 KEK is refused in the FIPS build"
    )]
    fn rfc5649_section_6_seven_octets() {
        let w = wrap(&h(KEK), &h("466f7250617369")).unwrap();
        assert_eq!(hex::encode(&w), "afbeb0f07dfbf5419200f2ccb50bb24f");
        assert_eq!(unwrap(&h(KEK), &w).unwrap().as_slice(), h("466f7250617369"));
    }

    #[test]
    #[cfg_attr(
        feature = "fips",
        ignore = "an AES-192 KEK is refused in the FIPS build"
    )]
    fn tampering_and_bad_lengths_are_refused() {
        let mut w = wrap(&h(KEK), &[7u8; 32]).unwrap();
        w[5] ^= 1;
        assert_eq!(unwrap(&h(KEK), &w), Err(KwpError::Integrity));
        assert_eq!(unwrap(&h(KEK), &[0u8; 12]), Err(KwpError::Integrity));
        assert_eq!(wrap(&h(KEK), &[]), Err(KwpError::InputLength));
        assert_eq!(wrap(&[0u8; 10], b"x"), Err(KwpError::KeyLength));
        let other = [9u8; 16];
        let w = wrap(&other, b"abc").unwrap();
        assert_eq!(unwrap(&h(KEK)[..16], &w), Err(KwpError::Integrity));
    }
}
