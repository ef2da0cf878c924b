//! `[console]` in akm.toml: whether the HTTPS management console runs, where, with which
//! server certificate, and how long its sessions last. Off unless enabled; loopback only
//! unless `listen` names another address. Clients always need a certificate of the client CA
//! (`tls.client_ca`): the console has no passwords.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the console listens unless `console.listen` says otherwise: loopback only, beside
/// the status listener's 5698.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5699";

/// `[console]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Whether the console runs (default: no).
    pub enabled: bool,
    /// Address to listen on; absent: [`DEFAULT_LISTEN`]. A non-loopback address exposes the
    /// console to the network (still only to holders of a client certificate).
    pub listen: Option<String>,
    /// Server certificate (PEM); absent: the KMIP listener's `tls.cert`.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); absent: `tls.key`.
    pub key: Option<PathBuf>,
    /// A session ends after this many seconds without a request.
    pub idle_timeout_secs: u64,
    /// A session ends this many seconds after it began, however busy.
    pub max_session_secs: u64,
    /// Rows per page of the key list.
    pub page_size: usize,
    /// Most connections served at once (more wait for a slot).
    pub max_connections: usize,
    /// Time allowed for the TLS handshake, and again for the request head and body.
    pub header_timeout_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            listen: None,
            cert: None,
            key: None,
            idle_timeout_secs: 15 * 60,
            max_session_secs: 8 * 3600,
            page_size: 50,
            max_connections: 16,
            header_timeout_secs: 10,
        }
    }
}

impl ConsoleConfig {
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
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5699)))
    }

    /// Idle session limit.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// Absolute session limit.
    pub fn max_session(&self) -> Duration {
        Duration::from_secs(self.max_session_secs)
    }

    /// Handshake and request deadline.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// Checks the values; the error names the key and says what to fix.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(listen) = &self.listen {
            if listen.parse::<SocketAddr>().is_err() {
                return Err((
                    "console.listen",
                    format!(
                        "is {listen:?}; give an IP address and port such as \"127.0.0.1:5699\""
                    ),
                ));
            }
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err((
                "console.cert",
                "and console.key go together: give both or neither (neither: tls.cert and \
                 tls.key)"
                    .into(),
            ));
        }
        if !(60..=86_400).contains(&self.idle_timeout_secs) {
            return Err((
                "console.idle_timeout_secs",
                "must be 60 to 86400 (one minute to one day)".into(),
            ));
        }
        if !(300..=7 * 86_400).contains(&self.max_session_secs)
            || self.max_session_secs < self.idle_timeout_secs
        {
            return Err((
                "console.max_session_secs",
                "must be 300 to 604800 and at least console.idle_timeout_secs".into(),
            ));
        }
        if !(10..=500).contains(&self.page_size) {
            return Err(("console.page_size", "must be 10 to 500".into()));
        }
        if !(1..=1024).contains(&self.max_connections) {
            return Err(("console.max_connections", "must be 1 to 1024".into()));
        }
        if !(1..=60).contains(&self.header_timeout_secs) {
            return Err(("console.header_timeout_secs", "must be 1 to 60".into()));
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
    fn the_console_is_off_and_on_loopback_by_default() {
        let c = parse("").unwrap();
        assert!(!c.console.enabled);
        assert_eq!(c.console.listen_addr().to_string(), super::DEFAULT_LISTEN);
        assert!(c.console.listen_addr().ip().is_loopback());
        let c = parse("[console]\nenabled = true\ncert = \"c.crt\"\nkey = \"c.key\"\n").unwrap();
        assert!(c.console.enabled);
        assert_eq!(c.console.cert.unwrap(), Path::new("/etc/akm/c.crt"));
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(key_of("[console]\nlisten = \"x\"\n"), "console.listen");
        assert_eq!(key_of("[console]\ncert = \"c.crt\"\n"), "console.cert");
        assert_eq!(
            key_of("[console]\nidle_timeout_secs = 1\n"),
            "console.idle_timeout_secs"
        );
        assert_eq!(
            key_of("[console]\nidle_timeout_secs = 3600\nmax_session_secs = 600\n"),
            "console.max_session_secs"
        );
        assert_eq!(key_of("[console]\npage_size = 0\n"), "console.page_size");
        assert!(matches!(
            parse("[console]\nenable = true\n"),
            Err(ConfigError::Parse { .. })
        ));
    }
}
