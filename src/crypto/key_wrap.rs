//! AES Key Wrap (NIST SP 800-38F "KW", RFC 3394): wraps key material under a client's
//! AES key for export (Get with a Key Wrapping Specification). Only the default initial value
//! and whole 64-bit blocks; no padding variant. Works on zeroizing buffers and formats nothing.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use zeroize::Zeroizing;

/// RFC 3394 section 2.2.3.1: the default initial value.
const IV: [u8; 8] = [0xA6; 8];

/// Why wrapping or unwrapping could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyWrapError {
    /// The wrapping key is not 128, 192 or 256 bits.
    #[error("AES key wrap needs a 128, 192 or 256-bit wrapping key")]
    KeyLength,
    /// KW wraps whole 64-bit blocks, at least two of them.
    #[error("AES key wrap needs a multiple of 8 bytes, at least 16")]
    DataLength,
    /// The unwrapped initial value did not match: wrong key or altered data.
    #[error("AES key unwrap failed its integrity check")]
    Integrity,
}

/// One AES block operation with a key of any of the three lengths.
enum Cipher {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Cipher, KeyWrapError> {
        match key.len() {
            16 => Ok(Cipher::A128(Box::new(Aes128::new(
                GenericArray::from_slice(key),
            )))),
            24 => Ok(Cipher::A192(Box::new(Aes192::new(
                GenericArray::from_slice(key),
            )))),
            32 => Ok(Cipher::A256(Box::new(Aes256::new(
                GenericArray::from_slice(key),
            )))),
            _ => Err(KeyWrapError::KeyLength),
        }
    }

    fn encrypt(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Cipher::A128(c) => c.encrypt_block(b),
            Cipher::A192(c) => c.encrypt_block(b),
            Cipher::A256(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Cipher::A128(c) => c.decrypt_block(b),
            Cipher::A192(c) => c.decrypt_block(b),
            Cipher::A256(c) => c.decrypt_block(b),
        }
    }
}

/// Wraps `plaintext` (n >= 2 blocks of 8 bytes) under `key`: RFC 3394 section 2.2.1, in its
/// index-based form. The result is 8 bytes longer than the input.
pub fn wrap(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
    if plaintext.len() % 8 != 0 || plaintext.len() < 16 {
        return Err(KeyWrapError::DataLength);
    }
    let cipher = Cipher::new(key)?;
    let n = plaintext.len() / 8;
    let mut a = IV;
    let mut r = Zeroizing::new(plaintext.to_vec());
    let mut block = Zeroizing::new([0u8; 16]);
    for j in 0..6u64 {
        for i in 0..n {
            block[..8].copy_from_slice(&a);
            block[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
            cipher.encrypt(&mut block);
            let t = (n as u64) * j + (i as u64 + 1);
            a.copy_from_slice(&block[..8]);
            for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                *x ^= y;
            }
            r[i * 8..i * 8 + 8].copy_from_slice(&block[8..]);
        }
    }
    let mut out = Vec::with_capacity(plaintext.len() + 8);
    out.extend_from_slice(&a);
    out.extend_from_slice(&r);
    Ok(out)
}

/// Unwraps what [`wrap`] produced: RFC 3394 section 2.2.2, checking the initial value.
pub fn unwrap(key: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyWrapError> {
    if wrapped.len() % 8 != 0 || wrapped.len() < 24 {
        return Err(KeyWrapError::DataLength);
    }
    let cipher = Cipher::new(key)?;
    let n = wrapped.len() / 8 - 1;
    let mut a = [0u8; 8];
    a.copy_from_slice(&wrapped[..8]);
    let mut r = Zeroizing::new(wrapped[8..].to_vec());
    let mut block = Zeroizing::new([0u8; 16]);
    for j in (0..6u64).rev() {
        for i in (0..n).rev() {
            let t = (n as u64) * j + (i as u64 + 1);
            for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                *x ^= y;
            }
            block[..8].copy_from_slice(&a);
            block[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
            cipher.decrypt(&mut block);
            a.copy_from_slice(&block[..8]);
            r[i * 8..i * 8 + 8].copy_from_slice(&block[8..]);
        }
    }
    if a != IV {
        return Err(KeyWrapError::Integrity);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// RFC 3394 section 4 test vectors (4.1, 4.2, 4.3, 4.6).
    #[test]
    fn rfc_3394_vectors() {
        let cases = [
            (
                "000102030405060708090A0B0C0D0E0F",
                "00112233445566778899AABBCCDDEEFF",
                "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5",
            ),
            (
                "000102030405060708090A0B0C0D0E0F1011121314151617",
                "00112233445566778899AABBCCDDEEFF",
                "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D",
            ),
            (
                "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
                "00112233445566778899AABBCCDDEEFF",
                "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7",
            ),
            (
                "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
                "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
                "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B \
                 FB988B9B7A02DD21",
            ),
        ];
        for (kek, data, wrapped) in cases {
            let (kek, data, wrapped) = (h(kek), h(data), h(wrapped));
            assert_eq!(wrap(&kek, &data).unwrap(), wrapped);
            assert_eq!(unwrap(&kek, &wrapped).unwrap().as_slice(), data.as_slice());
        }
    }

    #[test]
    fn bad_lengths_and_altered_data_are_refused() {
        let kek = [7u8; 32];
        assert_eq!(wrap(&[0u8; 20], &[0u8; 16]), Err(KeyWrapError::KeyLength));
        assert_eq!(wrap(&kek, &[0u8; 8]), Err(KeyWrapError::DataLength));
        assert_eq!(wrap(&kek, &[0u8; 17]), Err(KeyWrapError::DataLength));
        let mut w = wrap(&kek, &[1u8; 32]).unwrap();
        w[5] ^= 1;
        assert_eq!(unwrap(&kek, &w), Err(KeyWrapError::Integrity));
        assert_eq!(
            unwrap(&[8u8; 32], &wrap(&kek, &[1u8; 32]).unwrap()),
            Err(KeyWrapError::Integrity)
        );
        assert_eq!(unwrap(&kek, &[0u8; 16]), Err(KeyWrapError::DataLength));
    }
}
