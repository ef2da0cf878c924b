//! `[client]`: what the `akm key` commands connect with.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[client]`: what `akm key ...` connects with unless flags say otherwise.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Server address, host:port.
    pub server: String,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Client private key (PEM).
    pub key: PathBuf,
    /// CA that signed the server certificate (PEM).
    pub ca: PathBuf,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            server: "localhost:5696".into(),
            cert: "certs/admin.crt".into(),
            key: "certs/admin.key".into(),
            ca: "certs/ca.crt".into(),
        }
    }
}
