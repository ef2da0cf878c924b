//! AES Key Wrap (RFC 3394, NIST SP 800-38F "KW"): what KMIP calls the NIST Key Wrap block
//! cipher mode, used to hand a key out encrypted under another key (Get with a Key Wrapping
//! Specification). Built on the `aes` block cipher that AES-GCM already uses. Inputs and
//! outputs are key material: they are never logged or formatted.

use super::CryptoError;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use zeroize::Zeroizing;

/// The RFC 3394 §2.2.3.1 default initial value.
const IV: [u8; 8] = [0xA6; 8];

/// AES with a 128, 192 or 256-bit key.
enum Cipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Cipher, CryptoError> {
        Ok(match key.len() {
            16 => Cipher::A128(Aes128::new(GenericArray::from_slice(key))),
            24 => Cipher::A192(Aes192::new(GenericArray::from_slice(key))),
            32 => Cipher::A256(Aes256::new(GenericArray::from_slice(key))),
            _ => {
                return Err(CryptoError::KeyWrapInput(
                    "the wrapping key is not an AES key",
                ))
            }
        })
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

/// `t`, the step counter of RFC 3394 §2.2.1, as the 8 bytes XORed into A.
fn counter(n: usize, j: usize, i: usize) -> [u8; 8] {
    ((n * j + i) as u64).to_be_bytes()
}

fn xor_into(a: &mut [u8], t: &[u8; 8]) {
    a.iter_mut().zip(t).for_each(|(x, y)| *x ^= y);
}

/// Wraps `data` (at least 16 bytes, a multiple of 8) under the AES key `kek`.
pub fn wrap(kek: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < 16 || data.len() % 8 != 0 {
        return Err(CryptoError::KeyWrapInput(
            "key wrap needs a multiple of 8 bytes, at least 16",
        ));
    }
    let cipher = Cipher::new(kek)?;
    let n = data.len() / 8;
    let mut a = IV;
    let mut r = Zeroizing::new(data.to_vec());
    let mut block = Zeroizing::new([0u8; 16]);
    for j in 0..6 {
        for i in 1..=n {
            let ri = &mut r[(i - 1) * 8..i * 8];
            block[..8].copy_from_slice(&a);
            block[8..].copy_from_slice(ri);
            cipher.encrypt(&mut block);
            a.copy_from_slice(&block[..8]);
            xor_into(&mut a, &counter(n, j, i));
            ri.copy_from_slice(&block[8..]);
        }
    }
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&a);
    out.extend_from_slice(&r);
    Ok(out)
}

/// Unwraps `wrapped` under the AES key `kek`; fails if the integrity check does not hold.
pub fn unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if wrapped.len() < 24 || wrapped.len() % 8 != 0 {
        return Err(CryptoError::KeyWrapInput(
            "wrapped key is not a multiple of 8 bytes, at least 24",
        ));
    }
    let cipher = Cipher::new(kek)?;
    let n = wrapped.len() / 8 - 1;
    let mut a = [0u8; 8];
    a.copy_from_slice(&wrapped[..8]);
    let mut r = Zeroizing::new(wrapped[8..].to_vec());
    let mut block = Zeroizing::new([0u8; 16]);
    for j in (0..6).rev() {
        for i in (1..=n).rev() {
            let ri = &mut r[(i - 1) * 8..i * 8];
            xor_into(&mut a, &counter(n, j, i));
            block[..8].copy_from_slice(&a);
            block[8..].copy_from_slice(ri);
            cipher.decrypt(&mut block);
            a.copy_from_slice(&block[..8]);
            ri.copy_from_slice(&block[8..]);
        }
    }
    if a != IV {
        return Err(CryptoError::Unwrap);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 3394 §4.1, §4.3 and §4.6.
    #[test]
    fn rfc_3394_vectors() {
        let cases = [
            (
                "000102030405060708090A0B0C0D0E0F",
                "00112233445566778899AABBCCDDEEFF",
                "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
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
