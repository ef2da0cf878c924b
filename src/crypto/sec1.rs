//! EC private keys between SEC1 ECPrivateKey (RFC 5915, KMIP Key Format Type ECPrivateKey)
//! and PKCS#8 PrivateKeyInfo (RFC 5208), for P-256 and P-384: ring signs only with PKCS#8,
//! while clients register SEC1 keys as OpenSSL writes them. A few lines of DER over the exact
//! shapes these documents have; anything else is refused. Key bytes stay in zeroizing buffers.

use super::asym::AsymError;
use zeroize::Zeroizing;

/// id-ecPublicKey (1.2.840.10045.2.1), the PKCS#8 algorithm of an EC key.
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 / secp256r1 (1.2.840.10045.3.1.7).
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1 (1.3.132.0.34).
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const PARAMETERS: u8 = 0xA0;
const PUBLIC_KEY: u8 = 0xA1;

fn bad() -> AsymError {
    AsymError::Key("not a P-256 or P-384 EC private key in SEC1 or PKCS#8 DER")
}

/// One DER element: its tag, its content and what follows it.
fn read(input: &[u8]) -> Result<(u8, &[u8], &[u8]), AsymError> {
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Reads one element that must have tag `tag`.
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), AsymError> {
    match read(input)? {
        (t, content, rest) if t == tag => Ok((content, rest)),
        _ => Err(bad()),
    }
}

/// Encodes one DER element.
fn tlv(tag: u8, content: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 4));
    out.push(tag);
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn concat(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(parts.concat())
}

/// The parts of an ECPrivateKey: the private scalar, the curve OID if given, the public key
/// field ([1], whole) if given.
struct EcPrivateKey<'a> {
    scalar: &'a [u8],
    curve: Option<&'a [u8]>,
    public: Option<&'a [u8]>,
}

fn parse_ec_private_key(der: &[u8]) -> Result<EcPrivateKey<'_>, AsymError> {
    let (body, trailing) = expect(der, SEQUENCE)?;
    if !trailing.is_empty() {
        return Err(bad());
    }
    let (version, rest) = expect(body, INTEGER)?;
    if version != [1] {
        return Err(bad());
    }
    let (scalar, mut rest) = expect(rest, OCTET_STRING)?;
    let mut curve = None;
    let mut public = None;
    while !rest.is_empty() {
        let (tag, content, next) = read(rest)?;
        match tag {
            PARAMETERS => curve = Some(expect(content, OID)?.0),
            PUBLIC_KEY => public = Some(&rest[..rest.len() - next.len()]),
            _ => return Err(bad()),
        }
        rest = next;
    }
    Ok(EcPrivateKey {
        scalar,
        curve,
        public,
    })
}

/// The curve OID of a key: the one it names, else the one its scalar's length implies.
fn curve_of(key: &EcPrivateKey<'_>) -> Result<&'static [u8], AsymError> {
    match (key.curve, key.scalar.len()) {
        (Some(c), _) if c == P256 => Ok(P256),
        (Some(c), _) if c == P384 => Ok(P384),
        (Some(_), _) => Err(AsymError::Key("EC keys are P-256 or P-384")),
        (None, 32) => Ok(P256),
        (None, 48) => Ok(P384),
        (None, _) => Err(AsymError::Key("EC keys are P-256 or P-384")),
    }
}

/// A SEC1 ECPrivateKey as PKCS#8. The public key must be in it (ring checks the pair).
pub fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Zeroizing<Vec<u8>>, AsymError> {
    let key = parse_ec_private_key(sec1)?;
    let curve = curve_of(&key)?;
    let public = key.public.ok_or(AsymError::Key(
        "an EC private key needs its public key to be used",
    ))?;
    // The curve goes in the AlgorithmIdentifier; the inner key then leaves it out.
    let inner = tlv(
        SEQUENCE,
        &concat(&[&tlv(INTEGER, &[1]), &tlv(OCTET_STRING, key.scalar), public]),
    );
    let algorithm = tlv(
        SEQUENCE,
        &concat(&[&tlv(OID, EC_PUBLIC_KEY), &tlv(OID, curve)]),
    );
    Ok(tlv(
        SEQUENCE,
        &concat(&[&tlv(INTEGER, &[0]), &algorithm, &tlv(OCTET_STRING, &inner)]),
    ))
}

/// A PKCS#8 EC private key as a SEC1 ECPrivateKey naming its curve.
pub fn pkcs8_to_sec1(pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>, AsymError> {
    let (body, trailing) = expect(pkcs8, SEQUENCE)?;
    if !trailing.is_empty() {
        return Err(bad());
    }
    let (version, rest) = expect(body, INTEGER)?;
    if version != [0] && version != [1] {
        return Err(bad());
    }
    let (algorithm, rest) = expect(rest, SEQUENCE)?;
    let (alg_oid, params) = expect(algorithm, OID)?;
    if alg_oid != EC_PUBLIC_KEY {
        return Err(bad());
    }
    let (named, _) = expect(params, OID)?;
    let (inner, _) = expect(rest, OCTET_STRING)?;
    let mut key = parse_ec_private_key(inner)?;
    key.curve = Some(key.curve.unwrap_or(named));
    let curve = curve_of(&key)?;
    Ok(tlv(
        SEQUENCE,
        &concat(&[
            &tlv(INTEGER, &[1]),
            &tlv(OCTET_STRING, key.scalar),
            &tlv(PARAMETERS, &tlv(OID, curve)),
            key.public.unwrap_or_default(),
        ]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::enums::{hashing_algorithm as ha, key_format_type as kft};

    #[test]
    fn ec_keys_go_to_sec1_and_back_and_still_sign() {
        for bits in [256, 384] {
            let pair = crate::crypto::asym::generate_ec(bits).unwrap();
            let sec1 = pkcs8_to_sec1(&pair.private_der).unwrap();
            // A SEC1 key as OpenSSL writes it: version 1, scalar, [0] curve, [1] public key.
            let key = parse_ec_private_key(&sec1).unwrap();
            assert_eq!(key.scalar.len() * 8, bits as usize);
            assert!(key.curve.is_some() && key.public.is_some());
            let back = sec1_to_pkcs8(&sec1).unwrap();
            let hash = if bits == 256 {
                ha::SHA_256
            } else {
                ha::SHA_384
            };
            let scheme = crate::crypto::asym::Scheme::Ecdsa;
            let sig = crate::crypto::asym::sign(kft::PKCS_8, &back, scheme, hash, b"m").unwrap();
            assert!(crate::crypto::asym::verify(
                pair.public_format,
                &pair.public_der,
                scheme,
                hash,
                b"m",
                &sig
            )
            .unwrap());
        }
    }

    #[test]
    fn malformed_or_incomplete_keys_are_refused() {
        assert!(sec1_to_pkcs8(&[]).is_err());
        assert!(sec1_to_pkcs8(&[0x30, 0x05, 0x02, 0x01]).is_err());
        // Version 1, a 32-byte scalar, no public key.
        let no_public = tlv(
            SEQUENCE,
            &concat(&[&tlv(INTEGER, &[1]), &tlv(OCTET_STRING, &[7; 32])]),
        );
        assert!(sec1_to_pkcs8(&no_public).is_err());
        // An unknown curve.
        let odd = tlv(
            SEQUENCE,
            &concat(&[&tlv(INTEGER, &[1]), &tlv(OCTET_STRING, &[7; 20])]),
        );
        assert!(sec1_to_pkcs8(&odd).is_err());
    }
}
