//! A PKCS#12 (RFC 7292) writer for Get with Key Format Type PKCS#12: one private key with its
//! certificate chain, under a password, in the form current OpenSSL writes by default. The
//! key is a PKCS#8 shrouded key bag encrypted with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC,
//! RFC 8018); the certificates are plain certificate bags; the whole is integrity-protected by
//! an HMAC-SHA-256 MAC keyed by the PKCS#12 KDF (RFC 7292 Appendix B). Both bags carry the
//! friendly name and a local key identifier that pairs the key with its certificate.
//!
//! Written here rather than taken from a crate: the only maintained Rust PKCS#12 writer with
//! PBES2 depends on pre-release RustCrypto crates (a second `der` major among them), and the
//! `p12` crate writes only 3DES/RC2 with SHA-1. This is a fixed DER shape over primitives akm
//! already has (ring's PBKDF2, HMAC and SHA-256; the AES block cipher). Reading PKCS#12 is
//! not done here.

use super::cipher::{self, Mode, Params};
use zeroize::Zeroizing;

/// PBKDF2 and MAC iteration count (OpenSSL's default).
const ITERATIONS: u32 = 2048;

// Object identifiers (content only).
const ID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const CERT_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03,
];
const SHROUDED_KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
];
const X509_CERTIFICATE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01];
const FRIENDLY_NAME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14];
const LOCAL_KEY_ID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x15];
const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
const HMAC_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
const AES_256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
const SHA_256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// One DER element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
}

fn oid(o: &[u8]) -> Vec<u8> {
    tlv(0x06, o)
}

fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

fn integer(v: u32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    let mut content = bytes[skip..].to_vec();
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    tlv(0x02, &content)
}

/// `[0] EXPLICIT`.
fn explicit0(inner: &[u8]) -> Vec<u8> {
    tlv(0xA0, inner)
}

const NULL: &[u8] = &[0x05, 0x00];

/// A ContentInfo of type data around `content`.
fn data_content_info(content: &[u8]) -> Vec<u8> {
    seq(&[&oid(ID_DATA), &explicit0(&octets(content))])
}

/// The bag attributes: friendly name (BMPString) and local key identifier.
fn bag_attributes(friendly_name: &str, local_key_id: &[u8]) -> Vec<u8> {
    let bmp: Vec<u8> = friendly_name
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    set(&[
        &seq(&[&oid(FRIENDLY_NAME), &set(&[&tlv(0x1E, &bmp)])]),
        &seq(&[&oid(LOCAL_KEY_ID), &set(&[&octets(local_key_id)])]),
    ])
}

/// PKCS#8 `der` encrypted under `password` with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC).
fn encrypted_private_key_info(der: &[u8], password: &str) -> Result<Vec<u8>, cipher::CipherError> {
    let salt = super::random_bytes(16);
    let iv = super::random_bytes(16);
    let mut key = Zeroizing::new([0u8; 32]);
    crate::crypto::backend::prim::pbkdf2::derive(
        crate::crypto::backend::prim::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(ITERATIONS).expect("non-zero"),
        &salt,
        password.as_bytes(),
        &mut key[..],
    );
    let params = Params {
        mode: Mode::Cbc,
        pkcs5: true,
        iv: &iv,
        aad: &[],
        tag_len: 0,
    };
    let (encrypted, _) = cipher::encrypt(&key[..], &params, der)?;
    let kdf = seq(&[
        &oid(PBKDF2),
        &seq(&[
            &octets(&salt),
            &integer(ITERATIONS),
            &seq(&[&oid(HMAC_WITH_SHA256), NULL]),
        ]),
    ]);
    let scheme = seq(&[&oid(AES_256_CBC), &octets(&iv)]);
    let algorithm = seq(&[&oid(PBES2), &seq(&[&kdf, &scheme])]);
    Ok(seq(&[&algorithm, &octets(&encrypted)]))
}

/// The PKCS#12 key derivation (RFC 7292 Appendix B.2) with SHA-256 for ID 3 (MAC key), for an
/// output of one hash length, so a single block: H^r(D || S || P).
fn mac_key(password: &str, salt: &[u8]) -> Zeroizing<Vec<u8>> {
    const V: usize = 64;
    let fill = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let len = V * src.len().div_ceil(V);
        src.iter().copied().cycle().take(len).collect()
    };
    // The password as a BMPString with its two-byte terminator.
    let mut bmp: Zeroizing<Vec<u8>> = Zeroizing::new(
        password
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect(),
    );
    bmp.extend_from_slice(&[0, 0]);
    let mut input = Zeroizing::new(vec![3u8; V]);
    input.extend(fill(salt));
    input.extend(Zeroizing::new(fill(&bmp)).iter());
    let mut a = crate::crypto::backend::prim::digest::digest(
        &crate::crypto::backend::prim::digest::SHA256,
        &input,
    );
    for _ in 1..ITERATIONS {
        a = crate::crypto::backend::prim::digest::digest(
            &crate::crypto::backend::prim::digest::SHA256,
            a.as_ref(),
        );
    }
    Zeroizing::new(a.as_ref().to_vec())
}

/// A PFX holding `private_key_pkcs8` and `chain` (the key's own certificate first) under
/// `password`, both bags named `friendly_name`.
pub fn write(
    private_key_pkcs8: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &str,
) -> Result<Zeroizing<Vec<u8>>, cipher::CipherError> {
    // The MAC key comes from akm's own RFC 7292 key derivation, outside the module and not an
    // approved KDF: the FIPS build writes no PFX.
    crate::crypto::backend::outside_module(
        "PKCS#12 (its MAC key comes from the RFC 7292 key derivation, not an approved KDF)",
    )
    .map_err(|refused| cipher::CipherError::NotInModule(refused.0))?;
    // The local key identifier pairs the key with its certificate: SHA-1 of the certificate
    // by OpenSSL's habit; any bytes will do, so SHA-256 of it here.
    let local_key_id = chain
        .first()
        .map(|c| super::sha256(c))
        .unwrap_or_else(|| super::sha256(b"no certificate"));
    let attributes = bag_attributes(friendly_name, &local_key_id);
    let cert_bags: Vec<Vec<u8>> = chain
        .iter()
        .enumerate()
        .map(|(i, cert)| {
            let value = seq(&[&oid(X509_CERTIFICATE), &explicit0(&octets(cert))]);
            let bag_value = explicit0(&value);
            if i == 0 {
                seq(&[&oid(CERT_BAG), &bag_value, &attributes])
            } else {
                seq(&[&oid(CERT_BAG), &bag_value])
            }
        })
        .collect();
    let cert_refs: Vec<&[u8]> = cert_bags.iter().map(Vec::as_slice).collect();
    let certs = seq(&cert_refs);
    let shrouded = encrypted_private_key_info(private_key_pkcs8, password)?;
    let key_bag = seq(&[&oid(SHROUDED_KEY_BAG), &explicit0(&shrouded), &attributes]);
    let keys = seq(&[&key_bag]);
    let auth_safe = seq(&[&data_content_info(&certs), &data_content_info(&keys)]);
    let salt = super::random_bytes(16);
    let key = mac_key(password, &salt);
    let tag = crate::crypto::backend::prim::hmac::sign(
        &crate::crypto::backend::prim::hmac::Key::new(
            crate::crypto::backend::prim::hmac::HMAC_SHA256,
            &key,
        ),
        &auth_safe,
    );
    let mac_data = seq(&[
        &seq(&[&seq(&[&oid(SHA_256), NULL]), &octets(tag.as_ref())]),
        &octets(&salt),
        &integer(ITERATIONS),
    ]);
    Ok(Zeroizing::new(seq(&[
        &integer(3),
        &data_content_info(&auth_safe),
        &mac_data,
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_integers_encode_minimally() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(integer(3), [0x02, 1, 3]);
        assert_eq!(integer(2048), [0x02, 2, 0x08, 0x00]);
        assert_eq!(integer(128), [0x02, 2, 0x00, 0x80]);
    }

    #[test]
    #[cfg_attr(feature = "fips", ignore = "the FIPS build writes no PKCS#12")]
    fn a_pfx_is_a_version_3_sequence_with_a_sha256_mac() {
        let pfx = write(&[0x30, 0x00], &[vec![0x30, 0x00]], "alias", "pw").unwrap();
        assert_eq!(pfx[0], 0x30);
        let body = &pfx[2..];
        assert!(body.starts_with(&[0x02, 0x01, 0x03]) || pfx[1] & 0x80 != 0);
        assert!(pfx.windows(SHA_256.len()).any(|w| w == SHA_256));
    }
}
