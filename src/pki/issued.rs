//! Client certificates beyond the development CA's own: signing a certificate signing request
//! (CSR) with the akm CA, and the register of every client certificate the CA issued (by
//! `akm cert issue` and `akm cert sign`), kept as `<certs_dir>/issued/<serial>.crt`, which
//! `akm cert list` and the expiry watch ([`crate::certexpiry`]) read. A CSR's subject becomes
//! the identity exactly as a certificate's would (CN the user, each OU a group); its signature
//! must verify; whatever extensions it asks for are ignored (the certificate is a client
//! certificate, never a CA).

use super::{der, leaf_params, Ca, PkiError, Validity};
use rcgen::{CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use std::fs;
use std::path::{Path, PathBuf};
use x509_parser::prelude::{parse_x509_certificate, FromDer, X509CertificationRequest};

/// The register's directory under the certs directory.
pub const ISSUED_DIR: &str = "issued";

/// What a CSR may ask for.
#[derive(Debug, Clone, Default)]
pub struct CsrPolicy {
    /// The administrators group: a CSR naming it is refused unless `allow_admin`.
    pub admin_group: String,
    /// The operator confirmed (`--admin`) that this identity administers akm.
    pub allow_admin: bool,
    /// Identities the CA must not issue to clients (mirror peers' CNs).
    pub reserved_cns: Vec<String>,
}

/// One certificate of the register, as `akm cert list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedCert {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The subject (`OU=admins, CN=alice`).
    pub subject: String,
    /// The user (CN).
    pub cn: String,
    /// Not valid after, seconds since the epoch.
    pub not_after: i64,
    /// Listed in the CRL.
    pub revoked: bool,
    /// The register file.
    #[serde(skip)]
    pub path: PathBuf,
}

impl Ca {
    /// Signs the PEM CSR `csr_pem` as a client certificate valid for `validity`, if its
    /// signature verifies and `policy` allows its identity. Returns the certificate (PEM),
    /// its user and groups.
    pub fn sign_csr(
        &self,
        csr_pem: &[u8],
        validity: Validity,
        policy: &CsrPolicy,
    ) -> Result<(String, String, Vec<String>), PkiError> {
        let csr_der = CertificateSigningRequestDer::from_pem_slice(csr_pem)
            .map_err(|_| PkiError::Csr("the file is not a PEM \"CERTIFICATE REQUEST\"".into()))?;
        // Before the signature check, which cannot verify a weak key and would say so less
        // helpfully.
        check_key_strength(csr_der.as_ref())?;
        // rcgen checks the CSR's self-signature: whoever asks must hold the private key.
        let request = CertificateSigningRequestParams::from_der(&csr_der).map_err(|e| {
            PkiError::Csr(match e {
                rcgen::Error::InvalidCertificationRequestSignature => {
                    "its signature does not verify (it was altered, or not signed by its key)"
                        .into()
                }
                other => format!("it cannot be read: {other}"),
            })
        })?;
        let (cn, ous) = csr_identity(csr_der.as_ref())?;
        check_identity(&cn, &ous, policy)?;
        let mut params = leaf_params(validity)?;
        params.distinguished_name.push(DnType::CommonName, &cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let signed = CertificateSigningRequestParams {
            params,
            public_key: request.public_key,
        }
        .signed_by(&self.issuer)?;
        let cert_der =
            der::replace_subject(signed.der(), &der::name(&cn, &ous), self.issuer.key())?;
        Ok((der::certificate_pem(&cert_der), cn, ous))
    }
}

/// RSA keys of fewer than 2048 bits and DSA keys are refused: the server's TLS would refuse
/// the certificate anyway (NIST SP 800-131A), so signing it would only hand out a dud.
fn check_key_strength(der_bytes: &[u8]) -> Result<(), PkiError> {
    use x509_parser::public_key::PublicKey;
    let (_, csr) = X509CertificationRequest::from_der(der_bytes)
        .map_err(|_| PkiError::Csr("it is not a DER certification request".into()))?;
    match csr.certification_request_info.subject_pki.parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() < 2048 => Err(PkiError::Csr(format!(
            "its key is RSA-{}; use RSA of 2048 bits or more, or an EC key (P-256, P-384)",
            rsa.key_size()
        ))),
        Ok(PublicKey::DSA(_)) => Err(PkiError::Csr(
            "its key is DSA; use RSA of 2048 bits or more, or an EC key (P-256, P-384)".into(),
        )),
        _ => Ok(()),
    }
}

/// The CSR subject's user and groups, by the rules of client certificates.
fn csr_identity(der_bytes: &[u8]) -> Result<(String, Vec<String>), PkiError> {
    let (_, csr) = X509CertificationRequest::from_der(der_bytes)
        .map_err(|_| PkiError::Csr("it is not a DER certification request".into()))?;
    crate::identity::names_of(&csr.certification_request_info.subject)
        .map_err(|e| PkiError::Csr(format!("its subject is not a usable identity: {e}")))
}

fn check_identity(cn: &str, ous: &[String], policy: &CsrPolicy) -> Result<(), PkiError> {
    if policy.reserved_cns.iter().any(|r| r == cn) {
        return Err(PkiError::Csr(format!(
            "CN {cn:?} is a mirror peer's identity (mirror.peers); a client certificate with it \
             could pose as that peer"
        )));
    }
    if ous.contains(&policy.admin_group) && !policy.allow_admin {
        return Err(PkiError::Csr(format!(
            "it asks for the administrators group {:?}; if {cn:?} is to administer akm, sign it \
             again with --admin",
            policy.admin_group
        )));
    }
    Ok(())
}

/// `akm cert sign`: signs the CSR in `csr_path` with the CA in `certs_dir` for `days` days
/// and records the certificate. Returns the certificate PEM, user and groups.
pub fn sign_csr_file(
    certs_dir: &Path,
    csr_path: &Path,
    days: u32,
    policy: &CsrPolicy,
) -> Result<(String, String, Vec<String>), PkiError> {
    let csr = fs::read(csr_path).map_err(|source| PkiError::Io {
        action: "read",
        path: csr_path.to_path_buf(),
        source,
    })?;
    let ca = super::load_ca(certs_dir)?;
    let signed = ca.sign_csr(&csr, Validity::days_from_now(days), policy)?;
    record_issued(certs_dir, &signed.0)?;
    Ok(signed)
}

/// Adds an issued certificate (PEM) to the register.
pub fn record_issued(certs_dir: &Path, cert_pem: &str) -> Result<PathBuf, PkiError> {
    let der =
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|source| PkiError::Pem {
            what: "issued certificate",
            source,
        })?;
    let (_, cert) =
        parse_x509_certificate(der.as_ref()).map_err(|source| PkiError::Unparsable {
            what: "issued certificate",
            source,
        })?;
    let dir = certs_dir.join(ISSUED_DIR);
    super::create_dir(&dir)?;
    let path = dir.join(format!(
        "{}.crt",
        crate::identity::serial_hex(cert.raw_serial())
    ));
    crate::secret_file::write_new_public(&path, cert_pem.as_bytes())?;
    Ok(path)
}

/// The register, oldest expiry first, each marked revoked if the CRL at `crl` lists it.
/// Unreadable files are skipped with a warning (one bad file must not hide the others).
pub fn list_issued(certs_dir: &Path, crl: Option<&Path>) -> Result<Vec<IssuedCert>, PkiError> {
    let dir = certs_dir.join(ISSUED_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PkiError::Io {
                action: "read",
                path: dir,
                source,
            })
        }
    };
    let revoked = match crl {
        Some(p) => super::crl::revoked_serials(p)?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "crt") {
            continue;
        }
        match certificate_expiry(&path) {
            Ok((serial, subject, cn, not_after)) => out.push(IssuedCert {
                revoked: revoked.contains(&serial),
                serial,
                subject,
                cn,
                not_after,
                path,
            }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable issued certificate")
            }
        }
    }
    out.sort_by(|a, b| (a.not_after, &a.serial).cmp(&(b.not_after, &b.serial)));
    Ok(out)
}

/// A PEM certificate file's serial (hex), subject, CN (empty if none) and not-after time
/// (seconds since the epoch).
pub fn certificate_expiry(path: &Path) -> Result<(String, String, String, i64), PkiError> {
    let bytes = fs::read(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let der = CertificateDer::from_pem_slice(&bytes).map_err(|source| PkiError::Pem {
        what: "certificate",
        source,
    })?;
    let (_, cert) =
        parse_x509_certificate(der.as_ref()).map_err(|source| PkiError::Unparsable {
            what: "certificate",
            source,
        })?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((
        crate::identity::serial_hex(cert.raw_serial()),
        cert.subject().to_string(),
        cn,
        cert.validity().not_after.timestamp(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn csr(cn: &str, ou: Option<&str>) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(ou) = ou {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, ou);
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn policy() -> CsrPolicy {
        CsrPolicy {
            admin_group: "admins".into(),
            allow_admin: false,
            reserved_cns: vec!["akm-b".into()],
        }
    }

    #[test]
    fn a_csr_becomes_a_client_certificate_of_its_subject() {
        let ca = Ca::generate("test CA").unwrap();
        let (pem, cn, ous) = ca
            .sign_csr(
                csr("carol", Some("ops")).as_bytes(),
                Validity::days_from_now(30),
                &policy(),
            )
            .unwrap();
        assert_eq!((cn.as_str(), ous), ("carol", vec!["ops".to_owned()]));
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let p = crate::identity::principal_from_der(der.as_ref()).unwrap();
        assert_eq!((p.cn.as_str(), p.ous), ("carol", vec!["ops".to_owned()]));
    }

    #[test]
    fn reserved_admin_and_tampered_csrs_are_refused() {
        let ca = Ca::generate("test CA").unwrap();
        let v = Validity::days_from_now(30);
        let peer = ca.sign_csr(csr("akm-b", None).as_bytes(), v, &policy());
        assert!(peer.unwrap_err().to_string().contains("mirror peer"));
        let admin = ca.sign_csr(csr("eve", Some("admins")).as_bytes(), v, &policy());
        assert!(admin.unwrap_err().to_string().contains("--admin"));
        let allowed = CsrPolicy {
            allow_admin: true,
            ..policy()
        };
        assert!(ca
            .sign_csr(csr("eve", Some("admins")).as_bytes(), v, &allowed)
            .is_ok());
        // Flip a byte of the subject: the self-signature no longer verifies.
        let good =
            CertificateSigningRequestDer::from_pem_slice(csr("mallory", None).as_bytes()).unwrap();
        let mut bytes = good.as_ref().to_vec();
        let at = bytes.windows(7).position(|w| w == b"mallory").unwrap();
        bytes[at] = b'M';
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64_lines(&bytes)
        );
        let err = ca.sign_csr(pem.as_bytes(), v, &policy()).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
    }

    fn base64_lines(bytes: &[u8]) -> String {
        let pem = der::certificate_pem(bytes);
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
