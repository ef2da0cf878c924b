//! The deterministic random bit generator every key, IV and RNG Retrieve answer comes from:
//! NIST SP 800-90A Rev. 1 CTR_DRBG with AES-256 and no derivation function (§10.2.1), seeded
//! with 384 bits of full entropy from the operating system (getrandom) and reseeded from it
//! after [`RESEED_INTERVAL`] requests. One generator serves the process, behind a mutex.
//! Its state (Key, V) is wiped on drop; nothing here logs or formats it.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes256, Block};
use rand_core::{OsRng, RngCore};
use std::sync::{Mutex, OnceLock};
use zeroize::{Zeroize, Zeroizing};

/// Key length (AES-256) in bytes.
const KEY_LEN: usize = 32;
/// Block (V) length in bytes.
const OUT_LEN: usize = 16;
/// Seed length, key plus block (§10.2.1 Table 3).
pub const SEED_LEN: usize = KEY_LEN + OUT_LEN;
/// The most bytes one Generate call returns (2^19 bits, §10.2.1 Table 3).
pub const MAX_REQUEST: usize = 1 << 16;
/// Generate calls between reseeds from the OS. SP 800-90A allows 2^48; reseeding far more
/// often bounds how much output any one seed protects.
pub const RESEED_INTERVAL: u64 = 1 << 12;

/// A CTR_DRBG instance.
pub struct CtrDrbg {
    key: Zeroizing<[u8; KEY_LEN]>,
    v: Zeroizing<[u8; OUT_LEN]>,
    reseed_counter: u64,
}

impl Drop for CtrDrbg {
    fn drop(&mut self) {
        self.key.zeroize();
        self.v.zeroize();
    }
}

/// `data` zero-padded (or as is) to a seed-length block; longer input is refused by callers.
fn padded(data: &[u8]) -> Zeroizing<[u8; SEED_LEN]> {
    let mut out = Zeroizing::new([0u8; SEED_LEN]);
    out[..data.len()].copy_from_slice(data);
    out
}

impl CtrDrbg {
    /// Instantiate (§10.2.1.3.1): `entropy` is exactly [`SEED_LEN`] bytes of full entropy;
    /// `personalization` at most that long.
    pub fn new(entropy: &[u8; SEED_LEN], personalization: &[u8]) -> CtrDrbg {
        let mut d = CtrDrbg {
            key: Zeroizing::new([0u8; KEY_LEN]),
            v: Zeroizing::new([0u8; OUT_LEN]),
            reseed_counter: 1,
        };
        let mut seed = padded(&personalization[..personalization.len().min(SEED_LEN)]);
        xor_into(&mut seed[..], entropy);
        d.update(&seed);
        d
    }

    /// Reseed (§10.2.1.4.1) with fresh full entropy and optional additional input.
    pub fn reseed(&mut self, entropy: &[u8; SEED_LEN], additional: &[u8]) {
        let mut seed = padded(&additional[..additional.len().min(SEED_LEN)]);
        xor_into(&mut seed[..], entropy);
        self.update(&seed);
        self.reseed_counter = 1;
    }

    /// Whether the generator must be reseeded before the next Generate.
    pub fn needs_reseed(&self) -> bool {
        self.reseed_counter > RESEED_INTERVAL
    }

    /// Generate (§10.2.1.5.1): fills `out` (at most [`MAX_REQUEST`] bytes).
    pub fn generate(&mut self, out: &mut [u8], additional: &[u8]) {
        debug_assert!(out.len() <= MAX_REQUEST);
        let add = padded(&additional[..additional.len().min(SEED_LEN)]);
        if !additional.is_empty() {
            self.update(&add);
        }
        let cipher = Aes256::new_from_slice(&self.key[..]).expect("32-byte key");
        for chunk in out.chunks_mut(OUT_LEN) {
            increment(&mut self.v);
            let mut block = Block::clone_from_slice(&self.v[..]);
            cipher.encrypt_block(&mut block);
            chunk.copy_from_slice(&block[..chunk.len()]);
            block.zeroize();
        }
        self.update(&add);
        self.reseed_counter += 1;
    }

    /// CTR_DRBG_Update (§10.2.1.2).
    fn update(&mut self, provided: &[u8; SEED_LEN]) {
        let cipher = Aes256::new_from_slice(&self.key[..]).expect("32-byte key");
        let mut temp = Zeroizing::new([0u8; SEED_LEN]);
        for chunk in temp.chunks_mut(OUT_LEN) {
            increment(&mut self.v);
            let mut block = Block::clone_from_slice(&self.v[..]);
            cipher.encrypt_block(&mut block);
            chunk.copy_from_slice(&block);
            block.zeroize();
        }
        xor_into(&mut temp[..], provided);
        self.key.copy_from_slice(&temp[..KEY_LEN]);
        self.v.copy_from_slice(&temp[KEY_LEN..]);
    }
}

/// V = (V + 1) mod 2^128.
fn increment(v: &mut [u8; OUT_LEN]) {
    for b in v.iter_mut().rev() {
        *b = b.wrapping_add(1);
        if *b != 0 {
            break;
        }
    }
}

fn xor_into(a: &mut [u8], b: &[u8]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x ^= y);
}

/// 384 bits from the operating system's entropy source.
fn os_entropy() -> Zeroizing<[u8; SEED_LEN]> {
    let mut e = Zeroizing::new([0u8; SEED_LEN]);
    OsRng.fill_bytes(&mut e[..]);
    e
}

/// The process's generator, instantiated from the OS on first use.
fn global() -> &'static Mutex<CtrDrbg> {
    static DRBG: OnceLock<Mutex<CtrDrbg>> = OnceLock::new();
    DRBG.get_or_init(|| Mutex::new(CtrDrbg::new(&os_entropy(), b"akm ctr_drbg")))
}

/// Fills `out` from the process's CTR_DRBG, reseeding from the OS when due.
pub fn fill(out: &mut [u8]) {
    // A poisoned lock means a panic while generating; the state is still a valid DRBG state
    // (every step leaves it consistent), so keep using it rather than stop making keys.
    let mut d = global()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for chunk in out.chunks_mut(MAX_REQUEST) {
        if d.needs_reseed() {
            d.reseed(&os_entropy(), &[]);
        }
        d.generate(chunk, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn seed(s: &str) -> [u8; SEED_LEN] {
        h(s).try_into().unwrap()
    }

    /// CAVP drbgvectors_no_reseed CTR_DRBG.rsp, [AES-256 no df], PredictionResistance False,
    /// no personalization or additional input, COUNT 0: instantiate, generate twice, the
    /// second 512 bits are ReturnedBits.
    #[test]
    fn cavp_no_reseed_count_0() {
        let mut d = CtrDrbg::new(
            &seed("df5d73faa468649edda33b5cca79b0b05600419ccb7a879ddfec9db32ee494e5531b51de16a30f769262474c73bec010"),
            &[],
        );
        let mut out = [0u8; 64];
        d.generate(&mut out, &[]);
        d.generate(&mut out, &[]);
        assert_eq!(
            hex::encode(out),
            "d1c07cd95af8a7f11012c84ce48bb8cb87189e99d40fccb1771c619bdf82ab22\
             80b1dc2f2581f39164f7ac0c510494b3a43c41b7db17514c87b107ae793e01c5"
        );
    }

    /// CAVP drbgvectors_pr_false CTR_DRBG.rsp, [AES-256 no df], COUNT 0: instantiate,
    /// reseed, generate twice.
    #[test]
    fn cavp_pr_false_with_reseed_count_0() {
        let mut d = CtrDrbg::new(
            &seed("e4bc23c5089a19d86f4119cb3fa08c0a4991e0a1def17e101e4c14d9c323460a7c2fb58e0b086c6c57b55f56cae25bad"),
            &[],
        );
        d.reseed(
            &seed("fd85a836bba85019881e8c6bad23c9061adc75477659acaea8e4a01dfe07a1832dad1c136f59d70f8653a5dc118663d6"),
            &[],
        );
        let mut out = [0u8; 64];
        d.generate(&mut out, &[]);
        d.generate(&mut out, &[]);
        assert_eq!(
            hex::encode(out),
            "b2cb8905c05e5950ca31895096be29ea3d5a3b82b269495554eb80fe07de43e1\
             93b9e7c3ece73b80e062b1c1f68202fbb1c52a040ea2478864295282234aaada"
        );
    }

    /// CAVP [AES-256 no df] with a 384-bit personalization string, COUNT 0: the internal
    /// state after instantiation.
    #[test]
    fn cavp_personalization_instantiate_state() {
        let d = CtrDrbg::new(
            &seed("b5e2af38591a9743e5d3e458848a3998536d3b625e1694be847f95c3bfbda267f08624be4bb6aa496e1b596be523e7c4"),
            &h("0a9a59e7605c0e12fae317bb004aecf1427bda4dca7718801895c38179fd36cd922634c3789a99b9d9c556fe50a41de4"),
        );
        assert_eq!(
            hex::encode(&d.key[..]),
            "ec777c24fe03afe8b6534712400ba6e2dfb1a112d901e7509ba493917cb309b2"
        );
        assert_eq!(hex::encode(&d.v[..]), "10c013b7048a1984667cfa1bc081cfae");
    }

    #[test]
    fn reseeds_after_the_interval_and_outputs_differ() {
        let mut d = CtrDrbg::new(&[7u8; SEED_LEN], &[]);
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        d.generate(&mut a, &[]);
        d.generate(&mut b, &[]);
        assert_ne!(a, b);
        d.reseed_counter = RESEED_INTERVAL + 1;
        assert!(d.needs_reseed());
        d.reseed(&[8u8; SEED_LEN], &[]);
        assert!(!d.needs_reseed());
        let mut x = vec![0u8; MAX_REQUEST * 2 + 5];
        fill(&mut x);
        assert!(x.iter().any(|&b| b != 0));
    }

    #[test]
    fn odd_lengths_and_counter_carry() {
        let mut v = [0xFFu8; OUT_LEN];
        increment(&mut v);
        assert_eq!(v, [0u8; OUT_LEN]);
        let mut d = CtrDrbg::new(&[1u8; SEED_LEN], &[]);
        let mut out = [0u8; 17];
        d.generate(&mut out, b"additional input");
        assert!(out.iter().any(|&b| b != 0));
    }
}
