//! The little DER and PEM writing that rcgen cannot do for us. rcgen 0.14 keeps a subject as a
//! map from attribute type to one value (rustls/rcgen#81), so a client certificate with one OU
//! per group cannot be built directly: we let rcgen build and sign the certificate, splice our
//! own subject Name into its TBSCertificate, and sign that again with the CA key. The reader
//! here only walks rcgen's own well-formed output; it is not a general DER parser.

use rcgen::SigningKey;

const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
/// `[0] EXPLICIT Version`, present in every v3 certificate.
const TAG_VERSION: u8 = 0xa0;
/// id-at-commonName (2.5.4.3), encoded as an OBJECT IDENTIFIER TLV.
const OID_COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
/// id-at-organizationalUnitName (2.5.4.11), encoded as an OBJECT IDENTIFIER TLV.
const OID_ORGANIZATIONAL_UNIT: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0b];

/// Why a certificate could not be re-encoded with a new subject.
#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    /// The certificate is not shaped like the DER rcgen writes.
    #[error("certificate DER does not have the expected structure")]
    Malformed,
    /// Signing the new TBSCertificate failed.
    #[error("signing the re-encoded certificate failed")]
    Sign(#[source] rcgen::Error),
}

/// A DER Name: one RDN per OU, in order, then the CN; every value a UTF8String. Most general
/// first, as X.500 orders a name.
pub fn name(cn: &str, ous: &[String]) -> Vec<u8> {
    let mut rdns = Vec::new();
    for ou in ous {
        rdns.extend(rdn(OID_ORGANIZATIONAL_UNIT, ou));
    }
    rdns.extend(rdn(OID_COMMON_NAME, cn));
    tlv(TAG_SEQUENCE, &rdns)
}

/// Replaces the subject of `cert` with `subject` (a DER Name) and re-signs the certificate
/// with `signer`, which must be the key that signed `cert` so the signature algorithm
/// identifiers inside stay true.
pub fn replace_subject(
    cert: &[u8],
    subject: &[u8],
    signer: &impl SigningKey,
) -> Result<Vec<u8>, SpliceError> {
    let (cert_content, rest) = content(cert, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return Err(SpliceError::Malformed);
    }
    let (tbs, after_tbs) = split_tlv(cert_content)?;
    let (signature_algorithm, _old_signature) = split_tlv(after_tbs)?;
    let new_tbs = tlv(TAG_SEQUENCE, &tbs_with_subject(tbs, subject)?);
    let signature = signer.sign(&new_tbs).map_err(SpliceError::Sign)?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits in the last byte
    bits.extend_from_slice(&signature);
    let mut out = new_tbs;
    out.extend_from_slice(signature_algorithm);
    out.extend(tlv(TAG_BIT_STRING, &bits));
    Ok(tlv(TAG_SEQUENCE, &out))
}

/// PEM text for a DER certificate: base64 in 64-character lines, LF line endings.
pub fn certificate_pem(der: &[u8]) -> String {
    let encoded = base64(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// The TBSCertificate content with its subject field replaced.
fn tbs_with_subject(tbs: &[u8], subject: &[u8]) -> Result<Vec<u8>, SpliceError> {
    let (fields, rest) = content(tbs, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return Err(SpliceError::Malformed);
    }
    // version?, serialNumber, signature, issuer, validity, subject, ...
    let before_subject = if fields.first() == Some(&TAG_VERSION) {
        5
    } else {
        4
    };
    let mut remaining = fields;
    for _ in 0..before_subject {
        remaining = split_tlv(remaining)?.1;
    }
    let (old_subject, after_subject) = split_tlv(remaining)?;
    if old_subject.first() != Some(&TAG_SEQUENCE) {
        return Err(SpliceError::Malformed);
    }
    let prefix = &fields[..fields.len() - remaining.len()];
    let mut out = Vec::with_capacity(fields.len() + subject.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(subject);
    out.extend_from_slice(after_subject);
    Ok(out)
}

/// `SET { SEQUENCE { type, UTF8String value } }`.
fn rdn(oid_tlv: &[u8], value: &str) -> Vec<u8> {
    let mut attribute = oid_tlv.to_vec();
    attribute.extend(tlv(TAG_UTF8_STRING, value.as_bytes()));
    tlv(TAG_SET, &tlv(TAG_SEQUENCE, &attribute))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// DER definite length: short form below 128, else the minimal big-endian bytes.
fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Splits the first TLV off `input`: (that whole TLV, what follows).
fn split_tlv(input: &[u8]) -> Result<(&[u8], &[u8]), SpliceError> {
    let (header, len) = header(input)?;
    let end = header.checked_add(len).ok_or(SpliceError::Malformed)?;
    if end > input.len() {
        return Err(SpliceError::Malformed);
    }
    Ok(input.split_at(end))
}

/// The content of the first TLV of `input`, which must carry `tag`, and what follows it.
fn content(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), SpliceError> {
    if input.first() != Some(&tag) {
        return Err(SpliceError::Malformed);
    }
    let (whole, rest) = split_tlv(input)?;
    let (header, _) = header(whole)?;
    Ok((&whole[header..], rest))
}

/// (header length, content length) of the TLV at the start of `input`. Single-byte tags only,
/// which is all a certificate's top levels use.
fn header(input: &[u8]) -> Result<(usize, usize), SpliceError> {
    let first = *input.get(1).ok_or(SpliceError::Malformed)?;
    if first < 0x80 {
        return Ok((2, usize::from(first)));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > std::mem::size_of::<usize>() {
        return Err(SpliceError::Malformed);
    }
    let bytes = input.get(2..2 + count).ok_or(SpliceError::Malformed)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((2 + count, len))
}

/// Standard base64 with padding (RFC 4648 section 4).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // A chunk of k bytes yields k + 1 significant characters; the rest is padding.
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn certificate_pem_round_trips_through_pki_types() {
        for len in [1usize, 2, 3, 47, 48, 49, 200, 1000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let parsed = CertificateDer::from_pem_slice(certificate_pem(&der).as_bytes()).unwrap();
            assert_eq!(parsed.as_ref(), der.as_slice());
        }
    }

    #[test]
    fn lengths_use_minimal_long_form() {
        let mut out = Vec::new();
        push_length(&mut out, 0x7f);
        push_length(&mut out, 0x80);
        push_length(&mut out, 0x1234);
        assert_eq!(out, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
        for len in [0usize, 5, 127, 128, 255, 256, 70_000] {
            let encoded = tlv(TAG_SEQUENCE, &vec![0; len]);
            assert_eq!(header(&encoded).unwrap().1, len);
            assert_eq!(split_tlv(&encoded).unwrap().1, &[] as &[u8]);
        }
    }

    #[test]
    fn truncated_input_is_malformed_not_a_panic() {
        let encoded = tlv(TAG_SEQUENCE, &[1, 2, 3]);
        for cut in 0..encoded.len() {
            assert!(split_tlv(&encoded[..cut]).is_err());
        }
        assert!(header(&[0x30, 0x80]).is_err());
        assert!(header(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
    }
}
