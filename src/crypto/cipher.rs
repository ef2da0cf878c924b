//! Block-cipher operations for the Encrypt and Decrypt operations: AES in ECB (for key-wrap
//! profiles and the KMIP test cases), CBC, CTR and GCM, with PKCS#5 padding for ECB and CBC.
//! The AES block function comes from the RustCrypto `aes` crate, CTR keystreams from `ctr`,
//! and GCM's GHASH from `ghash`; GCM is composed here (NIST SP 800-38D §7) because it must
//! take IVs of any length and tags of 12 to 16 bytes at run time, which `aes-gcm` fixes at
//! compile time. Keys, round keys and plaintexts live in zeroizing buffers.
//!
//! In the FIPS build [`encrypt`] and [`decrypt`] check the parameters here and hand the work
//! to the module (crate::crypto::backend::fips_cipher); the RustCrypto code below is then
//! compiled but never reached.
#![cfg_attr(feature = "fips", allow(dead_code, unused_imports))]

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use aes::{Aes128, Aes192, Aes256, Block};
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use zeroize::Zeroizing;

/// AES block size in bytes.
pub const BLOCK: usize = 16;
/// The GCM IV length NIST recommends and akm generates (SP 800-38D §8.2).
pub const GCM_IV_LEN: usize = 12;
/// The GCM tag length used when the client names none.
pub const GCM_TAG_LEN: usize = 16;
/// The longest IV akm accepts for GCM: generous for any real client, bounded for the server.
pub const GCM_MAX_IV_LEN: usize = 1024;

/// A block-cipher mode akm performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Electronic codebook: single blocks (key-wrap profiles, test cases).
    Ecb,
    /// Cipher block chaining with a 16-byte IV.
    Cbc,
    /// Counter mode with a 16-byte initial counter block, incremented as a 128-bit integer.
    Ctr,
    /// Galois/counter mode with associated data and a tag of 12 to 16 bytes.
    Gcm,
}

impl Mode {
    /// Whether the mode needs an IV, counter or nonce.
    pub fn needs_iv(self) -> bool {
        self != Mode::Ecb
    }

    /// The IV length akm generates for this mode when the client asks the server to.
    pub fn iv_len(self) -> usize {
        match self {
            Mode::Ecb => 0,
            Mode::Cbc | Mode::Ctr => BLOCK,
            Mode::Gcm => GCM_IV_LEN,
        }
    }
}

/// Everything but the key and the data.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    /// The mode.
    pub mode: Mode,
    /// PKCS#5 padding (ECB and CBC only).
    pub pkcs5: bool,
    /// IV, initial counter block or nonce.
    pub iv: &'a [u8],
    /// GCM associated data.
    pub aad: &'a [u8],
    /// GCM tag length in bytes.
    pub tag_len: usize,
}

/// Why a cipher operation failed. Never carries key or data bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key is not 16, 24 or 32 bytes.
    #[error("AES keys are 128, 192 or 256 bits")]
    KeyLength,
    /// The IV has the wrong length for the mode.
    #[error("the IV/counter/nonce must be {0}")]
    IvLength(&'static str),
    /// The GCM tag length is outside 12..=16 bytes.
    #[error("invalid GCM tag length: akm accepts 12 to 16 bytes")]
    TagLength,
    /// The data is not a whole number of blocks and no padding was asked for.
    #[error("data is not a multiple of the 16-byte block and no padding was requested")]
    NotBlockAligned,
    /// The padding of decrypted data is malformed.
    #[error("bad padding")]
    BadPadding,
    /// The GCM tag did not verify: wrong key, IV, data, associated data or tag.
    #[error("authentication failed")]
    Authentication,
    /// Padding was asked for in a mode that has none.
    #[error("padding is only defined for ECB and CBC")]
    PaddingMode,
    /// The FIPS build does not perform this: the module has no approved implementation.
    #[error("not available in the FIPS build of akm: {0}")]
    NotInModule(&'static str),
}

/// The AES block function for one key of any AES length.
enum Aes {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Aes {
    fn new(key: &[u8]) -> Result<Aes, CipherError> {
        Ok(match key.len() {
            16 => Aes::A128(Aes128::new_from_slice(key).map_err(|_| CipherError::KeyLength)?),
            24 => Aes::A192(Aes192::new_from_slice(key).map_err(|_| CipherError::KeyLength)?),
            32 => Aes::A256(Aes256::new_from_slice(key).map_err(|_| CipherError::KeyLength)?),
            _ => return Err(CipherError::KeyLength),
        })
    }

    fn encrypt_block(&self, b: &mut Block) {
        match self {
            Aes::A128(c) => c.encrypt_block(b),
            Aes::A192(c) => c.encrypt_block(b),
            Aes::A256(c) => c.encrypt_block(b),
        }
    }

    fn decrypt_block(&self, b: &mut Block) {
        match self {
            Aes::A128(c) => c.decrypt_block(b),
            Aes::A192(c) => c.decrypt_block(b),
            Aes::A256(c) => c.decrypt_block(b),
        }
    }
}

/// Applies the CTR keystream starting at `counter` (a full block, incremented big-endian over
/// the last `ctr_bits` bits: 128 for CTR mode, 32 for GCM).
fn ctr_apply(key: &[u8], counter: &[u8; BLOCK], gcm: bool, data: &mut [u8]) {
    macro_rules! run {
        ($aes:ty) => {{
            if gcm {
                let mut c = ctr::Ctr32BE::<$aes>::new(key.into(), counter.into());
                c.apply_keystream(data);
            } else {
                let mut c = ctr::Ctr128BE::<$aes>::new(key.into(), counter.into());
                c.apply_keystream(data);
            }
        }};
    }
    match key.len() {
        16 => run!(Aes128),
        24 => run!(Aes192),
        _ => run!(Aes256),
    }
}

/// Encrypts `data` under `key`; returns the ciphertext and, for GCM, the tag.
pub fn encrypt(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
) -> Result<(Vec<u8>, Option<Vec<u8>>), CipherError> {
    check_params(p)?;
    #[cfg(feature = "fips")]
    return super::backend::fips_cipher::encrypt(key, p, data);
    #[cfg(not(feature = "fips"))]
    rust_crypto_encrypt(key, p, data)
}

/// What [`encrypt_with_new_iv`] gives: the IV, the ciphertext and, for GCM, the tag.
pub type WithNewIv = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// Encrypts `data` under `key` with a fresh IV (counter, nonce) of the mode's length, chosen
/// here: the IV, the ciphertext and, for GCM, the tag. `p.iv` is ignored. In the FIPS build a
/// 96-bit-IV GCM encryption takes its IV from the module itself (the one GCM encryption the
/// module approves); elsewhere the IV comes from the build's DRBG.
pub fn encrypt_with_new_iv(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
) -> Result<WithNewIv, CipherError> {
    let iv = super::random_bytes(p.mode.iv_len());
    let p = Params { iv: &iv, ..*p };
    check_params(&p)?;
    #[cfg(feature = "fips")]
    if p.mode == Mode::Gcm {
        return super::backend::fips_cipher::seal_with_module_iv(key, &p, data);
    }
    let (out, tag) = encrypt(key, &p, data)?;
    Ok((iv.to_vec(), out, tag))
}

fn rust_crypto_encrypt(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
) -> Result<(Vec<u8>, Option<Vec<u8>>), CipherError> {
    let aes = Aes::new(key)?;
    match p.mode {
        Mode::Ecb | Mode::Cbc => {
            let mut buf = data.to_vec();
            if p.pkcs5 {
                pad_pkcs5(&mut buf);
            } else if buf.len() % BLOCK != 0 {
                return Err(CipherError::NotBlockAligned);
            }
            let mut chain = iv_block(p)?;
            for chunk in buf.chunks_exact_mut(BLOCK) {
                if p.mode == Mode::Cbc {
                    xor(chunk, &chain);
                }
                let b = Block::from_mut_slice(chunk);
                aes.encrypt_block(b);
                chain.copy_from_slice(chunk);
            }
            Ok((buf, None))
        }
        Mode::Ctr => {
            let mut buf = data.to_vec();
            ctr_apply(key, &iv_block(p)?, false, &mut buf);
            Ok((buf, None))
        }
        Mode::Gcm => {
            let j0 = gcm_j0(&aes, p.iv);
            let mut buf = data.to_vec();
            ctr_apply(key, &inc32(&j0), true, &mut buf);
            let tag = gcm_tag(&aes, &j0, p.aad, &buf, p.tag_len);
            Ok((buf, Some(tag)))
        }
    }
}

/// Decrypts `data` under `key`; for GCM `tag` must verify before any plaintext is returned.
pub fn decrypt(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
    tag: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    check_params(p)?;
    #[cfg(feature = "fips")]
    return super::backend::fips_cipher::decrypt(key, p, data, tag);
    #[cfg(not(feature = "fips"))]
    rust_crypto_decrypt(key, p, data, tag)
}

fn rust_crypto_decrypt(
    key: &[u8],
    p: &Params<'_>,
    data: &[u8],
    tag: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    let aes = Aes::new(key)?;
    match p.mode {
        Mode::Ecb | Mode::Cbc => {
            if data.len() % BLOCK != 0 || (p.pkcs5 && data.is_empty()) {
                return Err(CipherError::NotBlockAligned);
            }
            let mut buf = Zeroizing::new(data.to_vec());
            let mut chain = iv_block(p)?;
            for chunk in buf.chunks_exact_mut(BLOCK) {
                let mut next = [0u8; BLOCK];
                next.copy_from_slice(chunk);
                aes.decrypt_block(Block::from_mut_slice(chunk));
                if p.mode == Mode::Cbc {
                    xor(chunk, &chain);
                }
                chain = next;
            }
            if p.pkcs5 {
                strip_pkcs5(&mut buf)?;
            }
            Ok(buf)
        }
        Mode::Ctr => {
            let mut buf = Zeroizing::new(data.to_vec());
            ctr_apply(key, &iv_block(p)?, false, &mut buf);
            Ok(buf)
        }
        Mode::Gcm => {
            let tag = tag.ok_or(CipherError::Authentication)?;
            if tag.len() != p.tag_len {
                return Err(CipherError::Authentication);
            }
            let j0 = gcm_j0(&aes, p.iv);
            let expected = gcm_tag(&aes, &j0, p.aad, data, p.tag_len);
            if !ring_eq(&expected, tag) {
                return Err(CipherError::Authentication);
            }
            let mut buf = Zeroizing::new(data.to_vec());
            ctr_apply(key, &inc32(&j0), true, &mut buf);
            Ok(buf)
        }
    }
}

fn check_params(p: &Params<'_>) -> Result<(), CipherError> {
    if p.pkcs5 && !matches!(p.mode, Mode::Ecb | Mode::Cbc) {
        return Err(CipherError::PaddingMode);
    }
    match p.mode {
        Mode::Ecb => Ok(()),
        Mode::Cbc | Mode::Ctr if p.iv.len() != BLOCK => Err(CipherError::IvLength("16 bytes")),
        Mode::Cbc | Mode::Ctr => Ok(()),
        Mode::Gcm if p.iv.is_empty() || p.iv.len() > GCM_MAX_IV_LEN => {
            Err(CipherError::IvLength("1 to 1024 bytes for GCM"))
        }
        Mode::Gcm if !(12..=16).contains(&p.tag_len) => Err(CipherError::TagLength),
        Mode::Gcm => Ok(()),
    }
}

/// The IV as a block (all zeros for ECB, which ignores it).
fn iv_block(p: &Params<'_>) -> Result<[u8; BLOCK], CipherError> {
    let mut b = [0u8; BLOCK];
    if p.mode != Mode::Ecb {
        b.copy_from_slice(p.iv.get(..BLOCK).ok_or(CipherError::IvLength("16 bytes"))?);
    }
    Ok(b)
}

fn xor(a: &mut [u8], b: &[u8]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x ^= y);
}

/// Removes PKCS#5 padding in place; the check does not depend on where the padding is wrong.
/// Appends PKCS#5 padding (1 to 16 bytes, each the count).
pub(crate) fn pad_pkcs5(buf: &mut Vec<u8>) {
    let n = BLOCK - buf.len() % BLOCK;
    buf.extend(std::iter::repeat_n(n as u8, n));
}

pub(crate) fn strip_pkcs5(buf: &mut Zeroizing<Vec<u8>>) -> Result<(), CipherError> {
    let n = *buf.last().ok_or(CipherError::BadPadding)? as usize;
    if n == 0 || n > BLOCK || n > buf.len() {
        return Err(CipherError::BadPadding);
    }
    let bad = buf[buf.len() - n..]
        .iter()
        .fold(0u8, |acc, &b| acc | (b ^ n as u8));
    if bad != 0 {
        return Err(CipherError::BadPadding);
    }
    let keep = buf.len() - n;
    buf.truncate(keep);
    Ok(())
}

/// Constant-time equality of two tags.
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// GHASH over `parts`, each zero-padded to a whole block, followed by `tail` (SP 800-38D §6.4).
fn ghash(h: &Block, parts: &[&[u8]], tail: &[u8; BLOCK]) -> [u8; BLOCK] {
    let mut g = GHash::new(h);
    for part in parts {
        g.update_padded(part);
    }
    g.update(&[ghash::Block::clone_from_slice(tail)]);
    g.finalize().into()
}

/// GCM's hash subkey H = E(K, 0¹²⁸).
fn hash_key(aes: &Aes) -> Block {
    let mut h = Block::default();
    aes.encrypt_block(&mut h);
    h
}

/// The pre-counter block J0 (SP 800-38D §7.1 step 2).
fn gcm_j0(aes: &Aes, iv: &[u8]) -> [u8; BLOCK] {
    if iv.len() == GCM_IV_LEN {
        let mut j0 = [0u8; BLOCK];
        j0[..GCM_IV_LEN].copy_from_slice(iv);
        j0[BLOCK - 1] = 1;
        return j0;
    }
    let mut tail = [0u8; BLOCK];
    tail[8..].copy_from_slice(&((iv.len() as u64) * 8).to_be_bytes());
    ghash(&hash_key(aes), &[iv], &tail)
}

/// J0 with its last 32 bits incremented (the first counter block of the keystream).
fn inc32(j0: &[u8; BLOCK]) -> [u8; BLOCK] {
    let mut out = *j0;
    let n = u32::from_be_bytes([j0[12], j0[13], j0[14], j0[15]]).wrapping_add(1);
    out[12..].copy_from_slice(&n.to_be_bytes());
    out
}

/// The authentication tag, truncated to `tag_len` bytes (SP 800-38D §7.1 steps 5-6).
fn gcm_tag(aes: &Aes, j0: &[u8; BLOCK], aad: &[u8], ct: &[u8], tag_len: usize) -> Vec<u8> {
    let mut lens = [0u8; BLOCK];
    lens[..8].copy_from_slice(&((aad.len() as u64) * 8).to_be_bytes());
    lens[8..].copy_from_slice(&((ct.len() as u64) * 8).to_be_bytes());
    let mut s = ghash(&hash_key(aes), &[aad, ct], &lens);
    let mut ek = Block::clone_from_slice(j0);
    aes.encrypt_block(&mut ek);
    xor(&mut s, &ek);
    s[..tag_len].to_vec()
}

#[cfg(test)]
mod tests;
