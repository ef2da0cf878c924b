//! Client identity: turns the DER certificate a client presented (already verified by TLS
//! against the CA) into a [`Principal`] — who the client is (subject CN) and which groups it
//! belongs to (subject OUs) — for authorization and audit. Does no chain or validity checks.
//!
//! Names are handled deliberately: exactly one CN is required (none, several or an empty one
//! refuses the certificate); every OU is a group, in certificate order, and a certificate
//! without OU has no groups; UTF8String, PrintableString, IA5String, NumericString and
//! BMPString (UTF-16, which Windows CAs write) are read as text, any other encoding (e.g.
//! TeletexString), a name with control characters, or more than [`MAX_GROUPS`] OUs refuses
//! the certificate rather than dropping or guessing at a name.

use crate::primitives::digest;
use x509_parser::asn1_rs::Tag;
use x509_parser::error::X509Error;
use x509_parser::prelude::{parse_x509_certificate, AttributeTypeAndValue, X509Name};

/// The identity carried by a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The subject common name: the user or service name.
    pub cn: String,
    /// Every subject organizational unit, in certificate order: the groups.
    pub ous: Vec<String>,
    /// The serial number, lower-case hex, without DER sign padding (`"0a1b"`, not `"000a1b"`).
    pub serial: String,
    /// SHA-256 of the whole certificate DER, lower-case hex: names this exact certificate.
    pub fingerprint: String,
    /// The subject distinguished name, for logs (`"OU=admins, CN=admin"`).
    pub subject: String,
}

/// Why a certificate does not yield a [`Principal`].
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not a DER X.509 certificate.
    #[error("client certificate is not valid DER X.509")]
    Parse(#[source] x509_parser::nom::Err<X509Error>),
    /// Bytes follow the certificate.
    #[error("client certificate has {0} trailing bytes after the DER")]
    TrailingData(usize),
    /// The subject has no common name.
    #[error("client certificate subject has no common name (CN)")]
    NoCommonName,
    /// The subject has more than one common name, so the identity would be ambiguous.
    #[error("client certificate subject has {0} common names; exactly one is required")]
    MultipleCommonNames(usize),
    /// The common name is empty.
    #[error("client certificate subject common name is empty")]
    EmptyCommonName,
    /// The common name is not a UTF-8 text string type (e.g. BMPString) or not valid UTF-8.
    #[error("client certificate subject common name is not UTF-8 text")]
    CommonNameNotText(#[source] X509Error),
    /// The subject has more organizational units than [`MAX_GROUPS`].
    #[error("client certificate subject has {0} organizational units; at most {MAX_GROUPS} are accepted")]
    TooManyOrganizationalUnits(usize),
    /// An organizational unit is not a UTF-8 text string type or not valid UTF-8.
    #[error("client certificate subject organizational unit #{index} is not UTF-8 text")]
    OrganizationalUnitNotText {
        /// Zero-based position of the OU in the subject.
        index: usize,
        /// The underlying error.
        #[source]
        source: X509Error,
    },
}

/// The most OUs (groups) a certificate may carry: each is looked up in the group table on
/// every request, so a certificate cannot make that unbounded.
pub const MAX_GROUPS: usize = 64;

/// Extracts the principal from a DER client certificate. Requires exactly one non-empty text
/// CN; collects every OU in order and fails if any OU is not text rather than dropping it.
pub fn principal_from_der(der: &[u8]) -> Result<Principal, IdentityError> {
    let (rest, cert) = parse_x509_certificate(der).map_err(IdentityError::Parse)?;
    if !rest.is_empty() {
        return Err(IdentityError::TrailingData(rest.len()));
    }
    let subject = cert.subject();
    Ok(Principal {
        cn: common_name(subject)?,
        ous: organizational_units(subject)?,
        serial: serial_hex(cert.raw_serial()),
        fingerprint: hex::encode(digest::digest(&digest::SHA256, der)),
        subject: subject.to_string(),
    })
}

/// The user (CN) and groups (OUs) a subject name carries, by the same rules as a client
/// certificate's (used to vet a certificate signing request before it is signed).
pub fn names_of(subject: &X509Name<'_>) -> Result<(String, Vec<String>), IdentityError> {
    Ok((common_name(subject)?, organizational_units(subject)?))
}

fn common_name(subject: &X509Name<'_>) -> Result<String, IdentityError> {
    // More than one CN is refused: different consumers pick the first or the last, and an
    // identity that depends on which one was picked is an authorization bug waiting to happen.
    let cns: Vec<_> = subject.iter_common_name().collect();
    let attr = match cns.as_slice() {
        [] => return Err(IdentityError::NoCommonName),
        [one] => *one,
        many => return Err(IdentityError::MultipleCommonNames(many.len())),
    };
    let cn = attr_text(attr).map_err(IdentityError::CommonNameNotText)?;
    if cn.is_empty() {
        return Err(IdentityError::EmptyCommonName);
    }
    Ok(cn)
}

/// The text of a name attribute (see the module documentation for what is accepted).
/// Control characters are refused: names go into logs, audit records and tables.
fn attr_text(attr: &AttributeTypeAndValue<'_>) -> Result<String, X509Error> {
    let text = if attr.attr_value().tag() == Tag::BmpString {
        let data = attr.as_slice();
        if data.len() % 2 != 0 {
            return Err(X509Error::InvalidAttributes);
        }
        let units = data
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| X509Error::InvalidAttributes)?
    } else {
        attr.as_str()?.to_owned()
    };
    if text.chars().any(char::is_control) {
        return Err(X509Error::InvalidAttributes);
    }
    Ok(text)
}

fn organizational_units(subject: &X509Name<'_>) -> Result<Vec<String>, IdentityError> {
    let count = subject.iter_organizational_unit().count();
    if count > MAX_GROUPS {
        return Err(IdentityError::TooManyOrganizationalUnits(count));
    }
    subject
        .iter_organizational_unit()
        .enumerate()
        .map(|(index, attr)| {
            attr_text(attr)
                .map_err(|source| IdentityError::OrganizationalUnitNotText { index, source })
        })
        .collect()
}

/// The issuer name of a DER certificate as text (`"CN=akm development CA"`), as CRLs name
/// it; `None` if the bytes are not a certificate.
pub fn issuer_of(der: &[u8]) -> Option<String> {
    let (_, cert) = parse_x509_certificate(der).ok()?;
    Some(cert.issuer().to_string())
}

/// The subject of a (CA) certificate, as [`issuer_of`] writes the issuer of the
/// certificates it signs.
pub fn subject_of(der: &[u8]) -> Option<String> {
    let (_, cert) = parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}

/// A serial number's raw DER bytes as lower-case hex. DER integers carry a leading zero byte
/// when the top bit is set; dropping it gives the serial's value, so two encodings of one
/// serial cannot yield different strings.
pub fn serial_hex(raw: &[u8]) -> String {
    let significant = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode(&raw[significant..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, SerialNumber};

    /// A self-signed certificate with the given subject attributes, in order.
    fn self_signed(subject: &[(DnType, DnValue)], serial: Option<&[u8]>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        // The default name carries a CN of its own.
        params.distinguished_name = DistinguishedName::new();
        for (ty, value) in subject {
            params.distinguished_name.push(ty.clone(), value.clone());
        }
        params.serial_number = serial.map(SerialNumber::from_slice);
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn utf8(s: &str) -> DnValue {
        DnValue::Utf8String(s.to_owned())
    }

    #[test]
    fn extracts_cn_ou_serial_fingerprint_subject() {
        let der = self_signed(
            &[
                (DnType::OrganizationalUnitName, utf8("admins")),
                (DnType::CommonName, utf8("alice")),
            ],
            Some(&[0x0a, 0x1b]),
        );
        let p = principal_from_der(&der).unwrap();
        assert_eq!(p.cn, "alice");
        assert_eq!(p.ous, vec!["admins".to_owned()]);
        assert_eq!(p.serial, "0a1b");
        assert_eq!(p.subject, "OU=admins, CN=alice");
        let expected = digest::digest(&digest::SHA256, &der);
        assert_eq!(p.fingerprint, hex::encode(expected.as_ref()));
        assert_eq!(p.fingerprint.len(), 64);
    }

    #[test]
    fn serial_with_top_bit_set_loses_only_the_sign_byte() {
        let der = self_signed(&[(DnType::CommonName, utf8("bob"))], Some(&[0x80, 0x01]));
        assert_eq!(principal_from_der(&der).unwrap().serial, "8001");
    }

    #[test]
    fn printable_string_cn_is_text() {
        let cn = DnValue::PrintableString("svc".try_into().unwrap());
        let der = self_signed(&[(DnType::CommonName, cn)], None);
        let p = principal_from_der(&der).unwrap();
        assert_eq!(p.cn, "svc");
        assert!(p.ous.is_empty());
    }

    #[test]
    fn certificate_without_cn_is_rejected() {
        let der = self_signed(&[(DnType::OrganizationalUnitName, utf8("users"))], None);
        let err = principal_from_der(&der).unwrap_err();
        assert!(matches!(err, IdentityError::NoCommonName), "{err:?}");
        let der = self_signed(&[], None);
        let err = principal_from_der(&der).unwrap_err();
        assert!(matches!(err, IdentityError::NoCommonName), "{err:?}");
    }

    #[test]
    fn every_ou_is_a_group_up_to_the_limit() {
        let ca = crate::pki::Ca::generate("test CA").unwrap();
        let validity = crate::pki::Validity::days_from_now(1);
        let ous: Vec<String> = (0..MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let der = ca.issue_client("alice", &ous, validity).unwrap();
        let p = principal_from_der(&der.cert_der().unwrap()).unwrap();
        assert_eq!(p.ous, ous);
        let too_many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let der = ca.issue_client("alice", &too_many, validity).unwrap();
        let err = principal_from_der(&der.cert_der().unwrap()).unwrap_err();
        assert!(
            matches!(err, IdentityError::TooManyOrganizationalUnits(65)),
            "{err:?}"
        );
    }

    #[test]
    fn two_common_names_are_rejected() {
        // rcgen keys a name by attribute type, but a custom type with the CN OID is a
        // different key, which gives a subject with two CNs.
        let der = self_signed(
            &[
                (DnType::CommonName, utf8("alice")),
                (DnType::CustomDnType(vec![2, 5, 4, 3]), utf8("root")),
            ],
            None,
        );
        let err = principal_from_der(&der).unwrap_err();
        assert!(
            matches!(err, IdentityError::MultipleCommonNames(2)),
            "{err:?}"
        );
    }

    #[test]
    fn bmp_string_names_are_read_as_utf16() {
        let cn = DnValue::BmpString("alice".try_into().unwrap());
        let ou = DnValue::BmpString("Ressources humaines".try_into().unwrap());
        let der = self_signed(
            &[
                (DnType::OrganizationalUnitName, ou),
                (DnType::CommonName, cn),
            ],
            None,
        );
        let p = principal_from_der(&der).unwrap();
        assert_eq!(p.cn, "alice");
        assert_eq!(p.ous, ["Ressources humaines"]);
    }

    #[test]
    fn teletex_names_and_control_characters_are_rejected() {
        let cn = DnValue::TeletexString("alice".try_into().unwrap());
        let der = self_signed(&[(DnType::CommonName, cn)], None);
        let err = principal_from_der(&der).unwrap_err();
        assert!(
            matches!(err, IdentityError::CommonNameNotText(_)),
            "{err:?}"
        );
        let der = self_signed(&[(DnType::CommonName, utf8("alice\nadmin"))], None);
        let err = principal_from_der(&der).unwrap_err();
        assert!(
            matches!(err, IdentityError::CommonNameNotText(_)),
            "{err:?}"
        );
        // (rcgen keeps one value per attribute type, so this subject has one OU.)
        let der = self_signed(
            &[
                (DnType::OrganizationalUnitName, utf8("bad\u{7}")),
                (DnType::CommonName, utf8("alice")),
            ],
            None,
        );
        let err = principal_from_der(&der).unwrap_err();
        assert!(
            matches!(
                err,
                IdentityError::OrganizationalUnitNotText { index: 0, .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn empty_cn_is_rejected() {
        let der = self_signed(&[(DnType::CommonName, utf8(""))], None);
        let err = principal_from_der(&der).unwrap_err();
        assert!(matches!(err, IdentityError::EmptyCommonName), "{err:?}");
    }

    #[test]
    fn garbage_and_trailing_bytes_are_rejected() {
        let err = principal_from_der(b"not a certificate").unwrap_err();
        assert!(matches!(err, IdentityError::Parse(_)), "{err:?}");
        let mut der = self_signed(&[(DnType::CommonName, utf8("carol"))], None);
        der.push(0);
        let err = principal_from_der(&der).unwrap_err();
        assert!(matches!(err, IdentityError::TrailingData(1)), "{err:?}");
    }
}
