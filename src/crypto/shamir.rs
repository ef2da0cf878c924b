//! Shamir secret sharing over GF(2^8) (the AES field, polynomial x^8 + x^4 + x^3 + x + 1):
//! splitting a secret into N shares of which any M recover it and M-1 reveal nothing. Each
//! share is as long as the secret; share indexes are the x coordinates 1..=N. Shares and the
//! secret live in zeroizing buffers.

use super::random_bytes;
use zeroize::Zeroizing;

/// Errors of splitting and combining.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    /// The threshold or share count is outside 1 <= M <= N <= 255 (or M = 1 with N > 1,
    /// which would hand the secret itself to every custodian).
    #[error("threshold {threshold} of {shares} shares is not allowed (need 2 <= M <= N <= 255)")]
    Parameters {
        /// M.
        threshold: usize,
        /// N.
        shares: usize,
    },
    /// Two shares have the same index, or an index is 0.
    #[error("share indexes must be distinct and between 1 and 255")]
    Index,
    /// Shares of different lengths, or none.
    #[error("shares must be given and all have the same length")]
    Length,
}

/// One share: its x coordinate and one y byte per secret byte.
pub struct Share {
    /// The x coordinate, 1..=255.
    pub index: u8,
    /// The y bytes.
    pub bytes: Zeroizing<Vec<u8>>,
}

/// Multiplication in GF(2^8) (carry-less, reduced by 0x11B); constant time in its inputs.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1B & carry);
        b >>= 1;
    }
    product
}

/// The multiplicative inverse, a^254 (a must not be 0).
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Splits `secret` into `shares` shares, any `threshold` of which recover it.
pub fn split(secret: &[u8], threshold: usize, shares: usize) -> Result<Vec<Share>, ShamirError> {
    if threshold < 2 || threshold > shares || shares > 255 {
        return Err(ShamirError::Parameters { threshold, shares });
    }
    // One random polynomial per secret byte: coefficient 0 is the byte, the rest random.
    let coefficients = random_bytes(secret.len() * (threshold - 1));
    let mut out: Vec<Share> = (1..=shares as u8)
        .map(|index| Share {
            index,
            bytes: Zeroizing::new(vec![0u8; secret.len()]),
        })
        .collect();
    for (i, &s) in secret.iter().enumerate() {
        let coeffs = &coefficients[i * (threshold - 1)..(i + 1) * (threshold - 1)];
        for share in &mut out {
            // Horner's rule from the highest coefficient down to the secret byte.
            let mut y = 0u8;
            for &c in coeffs.iter().rev() {
                y = mul(y, share.index) ^ c;
            }
            share.bytes[i] = mul(y, share.index) ^ s;
        }
    }
    Ok(out)
}

/// Recovers the secret from shares (Lagrange interpolation at x = 0). With fewer shares than
/// the threshold the result is unrelated to the secret; callers authenticate it.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let len = shares.first().ok_or(ShamirError::Length)?.bytes.len();
    if shares.iter().any(|s| s.bytes.len() != len) {
        return Err(ShamirError::Length);
    }
    for (i, a) in shares.iter().enumerate() {
        if a.index == 0 || shares[..i].iter().any(|b| b.index == a.index) {
            return Err(ShamirError::Index);
        }
    }
    // The Lagrange basis at 0 for share j: prod over m != j of x_m / (x_m - x_j); in GF(2^8)
    // subtraction is XOR.
    let basis: Vec<u8> = shares
        .iter()
        .map(|j| {
            shares
                .iter()
                .filter(|m| m.index != j.index)
                .fold(1u8, |acc, m| mul(acc, mul(m.index, inv(m.index ^ j.index))))
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; len]);
    for (share, &l) in shares.iter().zip(&basis) {
        for (out, &y) in secret.iter_mut().zip(share.bytes.iter()) {
            *out ^= mul(y, l);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(s: &Share) -> Share {
        Share {
            index: s.index,
            bytes: s.bytes.clone(),
        }
    }

    #[test]
    fn field_arithmetic_is_a_field() {
        // 0x53 * 0xCA = 1 in the AES field (FIPS 197 §4.2 example pair).
        assert_eq!(mul(0x53, 0xCA), 1);
        assert_eq!(mul(0x57, 0x83), 0xC1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
    }

    /// Every subset of the shares, as bit masks.
    fn subsets(n: usize) -> impl Iterator<Item = u32> {
        0..(1u32 << n)
    }

    #[test]
    fn every_m_of_n_combination_recovers_and_fewer_do_not() {
        let secret: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(37) ^ 0xA5).collect();
        for n in 2..=7usize {
            for m in 2..=n {
                let shares = split(&secret, m, n).unwrap();
                assert_eq!(shares.len(), n);
                for mask in subsets(n) {
                    let chosen: Vec<Share> = shares
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, s)| copy(s))
                        .collect();
                    if chosen.is_empty() {
                        continue;
                    }
                    let got = combine(&chosen).unwrap();
                    if chosen.len() >= m {
                        assert_eq!(
                            got.as_slice(),
                            secret.as_slice(),
                            "{m} of {n}, mask {mask:b}"
                        );
                    } else {
                        assert_ne!(
                            got.as_slice(),
                            secret.as_slice(),
                            "{m} of {n}, mask {mask:b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shares_are_full_length_and_differ_from_the_secret() {
        let secret = [0x11u8; 32];
        let shares = split(&secret, 3, 5).unwrap();
        for s in &shares {
            assert_eq!(s.bytes.len(), 32);
            assert_ne!(s.bytes.as_slice(), &secret[..]);
        }
        assert_eq!(
            shares.iter().map(|s| s.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn bad_parameters_and_shares_are_refused() {
        assert!(matches!(
            split(b"x", 1, 3),
            Err(ShamirError::Parameters { .. })
        ));
        assert!(matches!(
            split(b"x", 4, 3),
            Err(ShamirError::Parameters { .. })
        ));
        assert!(matches!(
            split(b"x", 2, 256),
            Err(ShamirError::Parameters { .. })
        ));
        let shares = split(b"secret", 2, 3).unwrap();
        let dup = [copy(&shares[0]), copy(&shares[0])];
        assert_eq!(combine(&dup).err(), Some(ShamirError::Index));
        let zero = [Share {
            index: 0,
            bytes: Zeroizing::new(vec![1]),
        }];
        assert_eq!(combine(&zero).err(), Some(ShamirError::Index));
        assert_eq!(combine(&[]).err(), Some(ShamirError::Length));
        let short = [
            copy(&shares[0]),
            Share {
                index: 2,
                bytes: Zeroizing::new(vec![1]),
            },
        ];
        assert_eq!(combine(&short).err(), Some(ShamirError::Length));
    }
}
