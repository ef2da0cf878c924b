//! `[tls]`: the server certificate, the client CA, CRLs and CA pins.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[tls]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Directory of the development PKI written by `akm init`.
    pub certs_dir: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM, mode 0600).
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
    /// Certificate revocation lists (PEM), checked for client certificates.
    pub crls: Vec<PathBuf>,
    /// Names put in the server certificate by `akm init` (besides localhost and 127.0.0.1).
    pub server_names: Vec<String>,
    /// If not empty, only the CAs of `client_ca` with one of these SHA-256 fingerprints (hex,
    /// colons allowed) are trusted for client certificates.
    pub client_ca_fingerprints: Vec<String>,
    /// Warn (log, audit record, status page, `/metrics`) this many days before the server
    /// certificate or an issued client certificate expires; 0 warns only once expired.
    pub expiry_warning_days: u32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certs_dir: "certs".into(),
            cert: "certs/server.crt".into(),
            key: "certs/server.key".into(),
            client_ca: "certs/ca.crt".into(),
            crls: Vec::new(),
            server_names: Vec::new(),
            client_ca_fingerprints: Vec::new(),
            expiry_warning_days: 30,
        }
    }
}

/// A SHA-256 fingerprint written as 64 hex digits, colons allowed.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex_digits: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(hex_digits).ok()?;
    bytes.try_into().ok()
}
