//! AES Key Wrap with Padding (RFC 5649, NIST SP 800-38F "KWP"): what KMIP calls the AES Key
//! Wrap Padding block cipher mode. Wraps key material of any length from 1 byte, with the
//! length bound into the alternative initial value so unwrapping checks it. Inputs and outputs
//! are key material: never logged or formatted.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256, Block};
use zeroize::Zeroizing;

/// The first half of the alternative initial value (RFC 5649 §3).
const AIV_PREFIX: [u8; 4] = [0xA6, 0x59, 0x59, 0xA6];

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
}

enum Cipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Cipher, KwpError> {
        Ok(match key.len() {
            16 => Cipher::A128(Aes128::new_from_slice(key).map_err(|_| KwpError::KeyLength)?),
            24 => Cipher::A192(Aes192::new_from_slice(key).map_err(|_| KwpError::KeyLength)?),
            32 => Cipher::A256(Aes256::new_from_slice(key).map_err(|_| KwpError::KeyLength)?),
            _ => return Err(KwpError::KeyLength),
        })
    }

    fn encrypt(&self, b: &mut [u8; 16]) {
        let block = Block::from_mut_slice(b);
        match self {
            Cipher::A128(c) => c.encrypt_block(block),
            Cipher::A192(c) => c.encrypt_block(block),
            Cipher::A256(c) => c.encrypt_block(block),
        }
    }

    fn decrypt(&self, b: &mut [u8; 16]) {
        let block = Block::from_mut_slice(b);
        match self {
            Cipher::A128(c) => c.decrypt_block(block),
            Cipher::A192(c) => c.decrypt_block(block),
            Cipher::A256(c) => c.decrypt_block(block),
        }
    }
}

/// Wraps `data` under the AES key `kek`.
pub fn wrap(kek: &[u8], data: &[u8]) -> Result<Vec<u8>, KwpError> {
    let cipher = Cipher::new(kek)?;
    let mli = u32::try_from(data.len()).map_err(|_| KwpError::InputLength)?;
    if data.is_empty() {
        return Err(KwpError::InputLength);
    }
    let mut aiv = [0u8; 8];
    aiv[..4].copy_from_slice(&AIV_PREFIX);
    aiv[4..].copy_from_slice(&mli.to_be_bytes());
    let mut padded = Zeroizing::new(data.to_vec());
    padded.resize(data.len().div_ceil(8) * 8, 0);
    if padded.len() == 8 {
        // One semiblock: a single AES block of AIV || P (RFC 5649 §4.1 step 2).
        let mut b = Zeroizing::new([0u8; 16]);
        b[..8].copy_from_slice(&aiv);
        b[8..].copy_from_slice(&padded);
        cipher.encrypt(&mut b);
        return Ok(b.to_vec());
    }
    let n = padded.len() / 8;
    let mut a = aiv;
    let mut b = Zeroizing::new([0u8; 16]);
    for j in 0..6u64 {
        for i in 1..=n {
            let r = &mut padded[(i - 1) * 8..i * 8];
            b[..8].copy_from_slice(&a);
            b[8..].copy_from_slice(r);
            cipher.encrypt(&mut b);
            a.copy_from_slice(&b[..8]);
            let t = (n as u64) * j + i as u64;
            a.iter_mut().zip(t.to_be_bytes()).for_each(|(x, y)| *x ^= y);
            r.copy_from_slice(&b[8..]);
        }
    }
    let mut out = a.to_vec();
    out.extend_from_slice(&padded);
    Ok(out)
}

/// Unwraps `wrapped` under the AES key `kek`, checking the integrity value and the padding.
pub fn unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KwpError> {
    let cipher = Cipher::new(kek)?;
    if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
        return Err(KwpError::Integrity);
    }
    let mut a = [0u8; 8];
    let mut r;
    if wrapped.len() == 16 {
        let mut b = Zeroizing::new([0u8; 16]);
        b.copy_from_slice(wrapped);
        cipher.decrypt(&mut b);
        a.copy_from_slice(&b[..8]);
        r = Zeroizing::new(b[8..].to_vec());
    } else {
        let n = wrapped.len() / 8 - 1;
        a.copy_from_slice(&wrapped[..8]);
        r = Zeroizing::new(wrapped[8..].to_vec());
        let mut b = Zeroizing::new([0u8; 16]);
        for j in (0..6u64).rev() {
            for i in (1..=n).rev() {
                let t = (n as u64) * j + i as u64;
                a.iter_mut().zip(t.to_be_bytes()).for_each(|(x, y)| *x ^= y);
                let ri = &mut r[(i - 1) * 8..i * 8];
                b[..8].copy_from_slice(&a);
                b[8..].copy_from_slice(ri);
                cipher.decrypt(&mut b);
                a.copy_from_slice(&b[..8]);
                ri.copy_from_slice(&b[8..]);
            }
        }
    }
    // RFC 5649 §3: the prefix, a length within the last semiblock, zero padding.
    let mli = u32::from_be_bytes([a[4], a[5], a[6], a[7]]) as usize;
    let prefix_ok = a[..4] == AIV_PREFIX;
    let len_ok = mli <= r.len() && mli > r.len().saturating_sub(8);
    if !prefix_ok || !len_ok || r[mli..].iter().any(|&b| b != 0) {
        return Err(KwpError::Integrity);
    }
    r.truncate(mli);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEK: &str = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
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
    fn rfc5649_section_6_seven_octets() {
        let w = wrap(&h(KEK), &h("466f7250617369")).unwrap();
        assert_eq!(hex::encode(&w), "afbeb0f07dfbf5419200f2ccb50bb24f");
        assert_eq!(unwrap(&h(KEK), &w).unwrap().as_slice(), h("466f7250617369"));
    }

    #[test]
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
