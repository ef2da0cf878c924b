//! TLS material and client configurations, below every module that opens a TLS connection
//! (the server, mirror links, audit and log sinks, the CLI): PEM files read with
//! rustls-pki-types, private keys through `secret_file` (which refuses keys that others can
//! read), CA bundles optionally narrowed to pinned fingerprints, CRLs, and the rustls client
//! configuration akm's own clients present. The server's configuration is built from these in
//! [`crate::server::tls`].

use crate::secret_file;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A private key file is unusable (permissions, missing).
    #[error(transparent)]
    Secret(#[from] secret_file::SecretFileError),
    /// A PEM file holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What was expected.
        what: &'static str,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (no usable CA, bad CRL).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// CA pinning is configured and no certificate of the client CA bundle matches a pin.
    #[error("{path}: no CA certificate matches tls.client_ca_fingerprints")]
    NoPinnedCa {
        /// The CA bundle.
        path: String,
    },
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    crate::primitives::tls_provider()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&read(path)?)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            what: "no PEM certificate found",
        });
    }
    Ok(certs)
}

/// The private key in a PEM file, refused if group or others can read the file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = secret_file::read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::Pem {
        path: path.display().to_string(),
        what: "no PEM private key found",
    })
}

pub(crate) fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    pinned_roots(ca, &[])
}

/// The CAs of the bundle `ca`, only those whose SHA-256 fingerprint is in `pins` when
/// `pins` is not empty (so a bundle that grows, say a shared system bundle, does not widen
/// who may connect).
pub fn pinned_roots(ca: &Path, pins: &[[u8; 32]]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        let fingerprint =
            crate::primitives::digest::digest(&crate::primitives::digest::SHA256, cert.as_ref());
        if pins.is_empty() || pins.iter().any(|p| p[..] == *fingerprint.as_ref()) {
            roots.add(cert)?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoPinnedCa {
            path: ca.display().to_string(),
        });
    }
    Ok(roots)
}

/// The CRLs of the PEM files `crls` (each must hold at least one).
pub fn load_crls(
    crls: &[impl AsRef<Path>],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let mut crl_ders = Vec::new();
    for crl in crls {
        let path = crl.as_ref();
        let found: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&read(path)?)
            .filter_map(Result::ok)
            .collect();
        if found.is_empty() {
            return Err(TlsError::Pem {
                path: path.display().to_string(),
                what: "no PEM CRL found",
            });
        }
        crl_ders.extend(found);
    }
    Ok(crl_ders)
}

/// A client TLS configuration presenting `cert`/`key` and trusting `ca` for the server.
pub fn client_config(
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_from(load_certs(cert)?, load_key(key)?, roots(ca)?)
}

/// A client TLS configuration from parsed parts.
pub fn client_config_from(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    server_roots: RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(server_roots)
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The server name to verify for `host` (an IP address or a DNS name).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Pem {
        path: host.to_owned(),
        what: "not a valid server name",
    })
}
