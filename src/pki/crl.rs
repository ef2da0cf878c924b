//! Revoking client certificates of the development CA: keeps one CRL file (PEM) listing every
//! revoked serial, re-signed by the CA each time a serial is added. The server reads it on
//! start and on reload (SIGHUP, `akm tls reload`).

use super::{load_ca, PkiError, CLIENT_DAYS};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use std::fs;
use std::path::Path;
use x509_parser::prelude::{parse_x509_certificate, parse_x509_crl};

/// Serial numbers as lower-case hex without DER sign padding (as `Principal::serial`).
fn normalize(raw: &[u8]) -> String {
    crate::identity::serial_hex(raw)
}

/// The serial number of the PEM certificate in `path`.
pub fn serial_of_cert_file(path: &Path) -> Result<String, PkiError> {
    let bytes = fs::read(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let der = CertificateDer::from_pem_slice(&bytes).map_err(|source| PkiError::Pem {
        what: "certificate to revoke",
        source,
    })?;
    let (_, cert) =
        parse_x509_certificate(der.as_ref()).map_err(|source| PkiError::Unparsable {
            what: "certificate to revoke",
            source,
        })?;
    Ok(normalize(cert.raw_serial()))
}

/// The serials an existing CRL file lists (none if the file does not exist).
pub(crate) fn revoked_serials(crl_path: &Path) -> Result<Vec<String>, PkiError> {
    let bytes = match fs::read(crl_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PkiError::Io {
                action: "read",
                path: crl_path.to_path_buf(),
                source,
            })
        }
    };
    let der =
        CertificateRevocationListDer::from_pem_slice(&bytes).map_err(|source| PkiError::Pem {
            what: "existing CRL",
            source,
        })?;
    let (_, crl) = parse_x509_crl(der.as_ref()).map_err(|source| PkiError::Unparsable {
        what: "existing CRL",
        source,
    })?;
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| normalize(r.raw_serial()))
        .collect())
}

/// Adds `serials` (hex) to the CRL at `crl_path` (created if missing), signed by the CA in
/// `certs_dir`, valid for as long as the CA's client certificates. Written to a temporary
/// file and renamed, so the server never reads half a CRL. Returns every revoked serial.
pub fn revoke(
    certs_dir: &Path,
    crl_path: &Path,
    serials: &[String],
) -> Result<Vec<String>, PkiError> {
    let ca = load_ca(certs_dir)?;
    let mut all = revoked_serials(crl_path)?;
    for s in serials {
        let s =
            normalize(&hex::decode(s).map_err(|_| PkiError::InvalidSerial { serial: s.clone() })?);
        if !all.contains(&s) {
            all.push(s);
        }
    }
    let pem = ca.revocation_list(&all, CLIENT_DAYS)?;
    let tmp = crl_path.with_extension("crl.tmp");
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| PkiError::Io {
            action,
            path,
            source,
        }
    };
    fs::write(&tmp, pem).map_err(io("write", &tmp))?;
    fs::rename(&tmp, crl_path).map_err(io("write", crl_path))?;
    Ok(all)
}
