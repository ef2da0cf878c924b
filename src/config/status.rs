//! `[status]` in akm.toml: whether the HTTPS status listener runs, where, with which
//! certificate, and who may read it when it is exposed beyond loopback.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the status listener listens unless `status.listen` says otherwise: loopback only, so
/// a local health check or Prometheus agent works out of the box and nothing is exposed to
/// the network without a decision. The port follows KMIP's 5696 and the mirror's 5697.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5698";

/// `[status]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Whether the listener runs.
    pub enabled: bool,
    /// Address to listen on; absent: [`DEFAULT_LISTEN`], and a busy port there only logs a
    /// warning (an explicit address that cannot be bound stops the server).
    pub listen: Option<String>,
    /// Server certificate (PEM); absent: the KMIP listener's `tls.cert`.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, not readable by group or others); absent: `tls.key`.
    pub key: Option<PathBuf>,
    /// Whether clients must present a certificate of the client CA (`tls.client_ca`) in one
    /// of `allowed_groups`. Absent: required exactly when `listen` is not a loopback address;
    /// `false` with a non-loopback address is refused.
    pub require_client_cert: Option<bool>,
    /// Groups (certificate OUs) whose members may read the listener when client certificates
    /// are required; absent or empty: the administrators' group (`access.admin_group`).
    pub allowed_groups: Vec<String>,
    /// Most connections waiting for their handshake or request (a new one beyond it closes
    /// the oldest of them, so idle connections cannot keep `/health` out), and most requests
    /// answered at once (more wait).
    pub max_connections: usize,
    /// Time allowed for the TLS handshake and for the whole request head.
    pub header_timeout_secs: u64,
    /// How long a count of objects read from the database is reused, in seconds, so frequent
    /// scrapes do not each query SQLite.
    pub cache_secs: u64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            enabled: true,
            listen: None,
            cert: None,
            key: None,
            require_client_cert: None,
            allowed_groups: Vec::new(),
            max_connections: 16,
            header_timeout_secs: 5,
            cache_secs: 5,
        }
    }
}

impl StatusConfig {
    /// Resolves relative paths against `base` (the config file's directory).
    pub fn resolve(&mut self, base: &Path) {
        for p in [&mut self.cert, &mut self.key].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The address to listen on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN)
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5698)))
    }

    /// Whether clients must present a certificate in an allowed group.
    pub fn client_cert_required(&self) -> bool {
        self.require_client_cert
            .unwrap_or(!self.listen_addr().ip().is_loopback())
    }

    /// The groups allowed in when client certificates are required.
    pub fn groups(&self, admin_group: &str) -> Vec<String> {
        if self.allowed_groups.is_empty() {
            vec![admin_group.to_owned()]
        } else {
            self.allowed_groups.clone()
        }
    }

    /// Handshake and request-head deadline.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// Checks the values; the error names the key and says what to fix.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(listen) = &self.listen {
            if listen.parse::<SocketAddr>().is_err() {
                return Err((
                    "status.listen",
                    format!(
                        "is {listen:?}; give an IP address and port such as \"127.0.0.1:5698\""
                    ),
                ));
            }
        }
        if self.require_client_cert == Some(false) && !self.listen_addr().ip().is_loopback() {
            return Err((
                "status.require_client_cert",
                format!(
                    "is false but status.listen ({}) is not a loopback address: an exposed \
                     status listener needs client certificates; remove the key or listen on \
                     127.0.0.1",
                    self.listen_addr()
                ),
            ));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err((
                "status.cert",
                "and status.key go together: give both or neither (neither: tls.cert and tls.key)"
                    .into(),
            ));
        }
        if self.allowed_groups.iter().any(|g| g.trim().is_empty()) {
            return Err(("status.allowed_groups", "has an empty group name".into()));
        }
        if !(1..=1024).contains(&self.max_connections) {
            return Err(("status.max_connections", "must be 1 to 1024".into()));
        }
        if !(1..=60).contains(&self.header_timeout_secs) {
            return Err(("status.header_timeout_secs", "must be 1 to 60".into()));
        }
        if self.cache_secs > 3600 {
            return Err(("status.cache_secs", "must be 0 to 3600".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{key_of, parse};
    use crate::config::ConfigError;
    use std::path::Path;

    #[test]
    fn defaults_listen_on_loopback_without_client_certificates() {
        let c = parse("").unwrap();
        assert!(c.status.enabled);
        assert_eq!(c.status.listen_addr().to_string(), super::DEFAULT_LISTEN);
        assert!(!c.status.client_cert_required());
        assert_eq!(c.status.groups("admins"), vec!["admins".to_string()]);
        let c = parse("[status]\nlisten = \"[::1]:9000\"\n").unwrap();
        assert!(!c.status.client_cert_required());
    }

    #[test]
    fn an_exposed_listener_requires_client_certificates() {
        let c = parse("[status]\nlisten = \"0.0.0.0:5698\"\nallowed_groups = [\"ops\"]\n").unwrap();
        assert!(c.status.client_cert_required());
        assert_eq!(c.status.groups("admins"), vec!["ops".to_string()]);
        let exposed_without =
            "[status]\nlisten = \"192.0.2.1:5698\"\nrequire_client_cert = false\n";
        assert_eq!(key_of(exposed_without), "status.require_client_cert");
        // Loopback may opt in to client certificates.
        let c = parse("[status]\nrequire_client_cert = true\n").unwrap();
        assert!(c.status.client_cert_required());
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(
            key_of("[status]\nlisten = \"localhost\"\n"),
            "status.listen"
        );
        assert_eq!(key_of("[status]\ncert = \"s.crt\"\n"), "status.cert");
        assert_eq!(
            key_of("[status]\nallowed_groups = [\" \"]\n"),
            "status.allowed_groups"
        );
        assert_eq!(
            key_of("[status]\nmax_connections = 0\n"),
            "status.max_connections"
        );
        assert_eq!(
            key_of("[status]\nheader_timeout_secs = 0\n"),
            "status.header_timeout_secs"
        );
        assert_eq!(
            key_of("[status]\ncache_secs = 99999\n"),
            "status.cache_secs"
        );
        assert!(matches!(
            parse("[status]\nlistne = \"127.0.0.1:1\"\n"),
            Err(ConfigError::Parse { .. })
        ));
        let c = parse("[status]\ncert = \"s.crt\"\nkey = \"s.key\"\n").unwrap();
        assert_eq!(c.status.cert.unwrap(), Path::new("/etc/akm/s.crt"));
    }
}
