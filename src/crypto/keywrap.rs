//! AES Key Wrap (RFC 3394, NIST SP 800-38F "KW"): what KMIP calls the NIST Key Wrap block
//! cipher mode, used to hand a key out encrypted under another key (Get with a Key Wrapping
//! Specification). The algorithm is RustCrypto's `aes-kw` on the same `aes` block cipher that
//! AES-GCM uses; this module keeps akm's sizes, errors and zeroizing around it. Inputs and
//! outputs are key material: they are never logged or formatted.

use super::CryptoError;
#[cfg(not(feature = "fips"))]
use aes::{Aes128, Aes192, Aes256};
#[cfg(not(feature = "fips"))]
use aes_kw::Kek;
use zeroize::Zeroizing;

/// The FIPS build's KEK: the module's KW and KWP (crate::crypto::backend::fips_keywrap).
#[cfg(feature = "fips")]
pub(super) use super::backend::fips_keywrap::AnyKek;

/// The integrity value (RFC 3394's IV) that a wrapped key carries before its data.
const IV_LEN: usize = aes_kw::IV_LEN;

/// Why the FIPS build refuses KW and KWP under a 192-bit key: aws-lc-rs offers the module's
/// key wrap with 128- and 256-bit keys only. Said as such, not as a key of the wrong size.
pub(super) const NO_AES_192_KEK: &str =
    "AES Key Wrap under a 192-bit key (the module's KW and KWP take 128- and 256-bit keys)";

/// An AES key-encryption key of 128, 192 or 256 bits. The `aes` key schedule inside is wiped
/// on drop (`aes`'s zeroize feature). Shared with [`super::kwp`].
#[cfg(not(feature = "fips"))]
pub(super) enum AnyKek {
    A128(Kek<Aes128>),
    A192(Kek<Aes192>),
    A256(Kek<Aes256>),
}

#[cfg(not(feature = "fips"))]
impl AnyKek {
    /// The KEK for `key`, or `None` if it is not 16, 24 or 32 bytes.
    pub(super) fn new(key: &[u8]) -> Option<AnyKek> {
        Some(match key.len() {
            16 => AnyKek::A128(Kek::try_from(key).ok()?),
            24 => AnyKek::A192(Kek::try_from(key).ok()?),
            32 => AnyKek::A256(Kek::try_from(key).ok()?),
            _ => return None,
        })
    }

    fn wrap(&self, data: &[u8], out: &mut [u8]) -> aes_kw::Result<()> {
        match self {
            AnyKek::A128(k) => k.wrap(data, out),
            AnyKek::A192(k) => k.wrap(data, out),
            AnyKek::A256(k) => k.wrap(data, out),
        }
    }

    fn unwrap(&self, data: &[u8], out: &mut [u8]) -> aes_kw::Result<()> {
        match self {
            AnyKek::A128(k) => k.unwrap(data, out),
            AnyKek::A192(k) => k.unwrap(data, out),
            AnyKek::A256(k) => k.unwrap(data, out),
        }
    }

    pub(super) fn wrap_with_padding(&self, data: &[u8], out: &mut [u8]) -> aes_kw::Result<()> {
        match self {
            AnyKek::A128(k) => k.wrap_with_padding(data, out),
            AnyKek::A192(k) => k.wrap_with_padding(data, out),
            AnyKek::A256(k) => k.wrap_with_padding(data, out),
        }
    }

    /// Unwraps into `out` (8 bytes shorter than `data`); the unpadded length.
    pub(super) fn unwrap_with_padding(&self, data: &[u8], out: &mut [u8]) -> aes_kw::Result<usize> {
        match self {
            AnyKek::A128(k) => k.unwrap_with_padding(data, out).map(<[u8]>::len),
            AnyKek::A192(k) => k.unwrap_with_padding(data, out).map(<[u8]>::len),
            AnyKek::A256(k) => k.unwrap_with_padding(data, out).map(<[u8]>::len),
        }
    }
}

fn kek(key: &[u8]) -> Result<AnyKek, CryptoError> {
    if super::backend::FIPS_BUILD && key.len() == 24 {
        return Err(CryptoError::NotInModule(NO_AES_192_KEK));
    }
    AnyKek::new(key).ok_or(CryptoError::KeyWrapInput(
        "the wrapping key is not an AES key",
    ))
}

/// Wraps `data` (at least 16 bytes, a multiple of 8) under the AES key `kek`.
pub fn wrap(kek_bytes: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < 16 || data.len() % 8 != 0 {
        return Err(CryptoError::KeyWrapInput(
            "key wrap needs a multiple of 8 bytes, at least 16",
        ));
    }
    let kek = kek(kek_bytes)?;
    let mut out = vec![0u8; data.len() + IV_LEN];
    // The sizes were checked above, so only a bug could fail here: refuse rather than panic.
    kek.wrap(data, &mut out)
        .map_err(|_| CryptoError::KeyWrapInput("key wrap failed"))?;
    Ok(out)
}

/// Unwraps `wrapped` under the AES key `kek`; fails if the integrity check does not hold.
pub fn unwrap(kek_bytes: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if wrapped.len() < 24 || wrapped.len() % 8 != 0 {
        return Err(CryptoError::KeyWrapInput(
            "wrapped key is not a multiple of 8 bytes, at least 24",
        ));
    }
    let kek = kek(kek_bytes)?;
    // Allocated zeroizing up front: the crate unwraps in place into this buffer, so the
    // plaintext (or a failed attempt's garbage) is wiped whatever happens.
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - IV_LEN]);
    kek.unwrap(wrapped, &mut out)
        .map_err(|_| CryptoError::Unwrap)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 3394 §4.1, §4.2, §4.3 and §4.6: 128, 192 and 256-bit KEKs.
    #[test]
    fn rfc_3394_vectors() {
        let cases = [
            (
                "000102030405060708090A0B0C0D0E0F",
                "00112233445566778899AABBCCDDEEFF",
                "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
            ),
            (
                "000102030405060708090A0B0C0D0E0F1011121314151617",
                "00112233445566778899AABBCCDDEEFF",
                "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D",
            ),
            (
                "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
                "00112233445566778899AABBCCDDEEFF",
                "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7",
            ),
            (
                "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
                "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
                "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
            ),
        ];
        for (kek, data, wrapped) in cases {
            if crate::crypto::backend::FIPS_BUILD && kek.len() == 48 {
                // No AES-192 KEK in the FIPS build (crate::crypto::backend::fips_keywrap).
                assert!(wrap(&h(kek), &h(data)).is_err());
                continue;
            }
            assert_eq!(wrap(&h(kek), &h(data)).unwrap(), h(wrapped));
            assert_eq!(&unwrap(&h(kek), &h(wrapped)).unwrap()[..], &h(data)[..]);
        }
    }

    #[test]
    fn bad_sizes_and_tampering_are_refused() {
        let kek = [7u8; 16];
        assert!(wrap(&kek, &[0; 8]).is_err());
        assert!(wrap(&kek, &[0; 20]).is_err());
        assert!(wrap(&[0; 17], &[0; 16]).is_err());
        assert!(unwrap(&kek, &[0; 16]).is_err());
        let mut w = wrap(&kek, &[1; 32]).unwrap();
        w[5] ^= 1;
        assert!(matches!(unwrap(&kek, &w), Err(CryptoError::Unwrap)));
    }
}
