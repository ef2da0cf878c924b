//! The `[mirror]` section of `akm.toml`: this node's id, the mirror listener, the certificate
//! it presents to peers, the peers (address and expected certificate), and the replication
//! mode. Validation names the offending key.

use crate::config::TlsConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[mirror]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// This node's id: unique among the peers, stamped on every change made here.
    pub node_id: String,
    /// Address of the mirror listener (its own port, mutual TLS).
    pub listen: String,
    /// Certificate chain presented to peers (PEM, serverAuth and clientAuth, as written by
    /// `akm cert peer`); defaults to `mirror.crt` in `tls.certs_dir`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600); defaults to `mirror.key` in `tls.certs_dir`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// CA bundle peer certificates must chain to (PEM); defaults to `tls.client_ca`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `async` (default): writes never wait for a peer. `rpo-zero`: a client write is
    /// acknowledged only once a peer has durably applied it.
    #[serde(default)]
    pub mode: Mode,
    /// RPO-zero: milliseconds to wait for a peer's acknowledgement.
    #[serde(default = "default_rpo_timeout_ms")]
    pub rpo_timeout_ms: u64,
    /// RPO-zero: what happens when no peer acknowledges in time.
    #[serde(default)]
    pub on_timeout: OnTimeout,
    /// Change-log entries kept beyond what every peer has acknowledged; older ones are
    /// compacted (each record keeps its latest entry) and a peer that needs them gets a
    /// snapshot.
    #[serde(default = "default_log_retention_entries")]
    pub log_retention_entries: u64,
    /// Seconds between compactions of the change log.
    #[serde(default = "default_compact_interval_secs")]
    pub compact_interval_secs: u64,
    /// The failover peers.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// `[[mirror.peers]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node id (its `mirror.node_id`).
    pub node_id: String,
    /// The peer's mirror listener, host:port.
    pub address: String,
    /// The name to verify in the peer's server certificate; defaults to the address's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// SHA-256 fingerprint (hex, colons allowed) of the peer's certificate.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Or the subject CN the peer's certificate must carry.
    #[serde(default)]
    pub cn: Option<String>,
}

/// Replication mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Writes never wait for peers.
    #[default]
    Async,
    /// Writes wait for one peer's durable acknowledgement.
    RpoZero,
}

/// What RPO-zero mode does when no peer acknowledges in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnTimeout {
    /// Refuse writes until a peer is back and caught up.
    #[default]
    Refuse,
    /// Carry on asynchronously until a peer is back and caught up.
    Async,
}

fn default_rpo_timeout_ms() -> u64 {
    2000
}

fn default_log_retention_entries() -> u64 {
    1_000_000
}

fn default_compact_interval_secs() -> u64 {
    60
}

impl MirrorConfig {
    /// Resolves relative paths against `base` and fills the TLS defaults from `[tls]`.
    pub(crate) fn resolve(&mut self, base: &Path, tls: &TlsConfig) {
        // Paths given here are relative to the config file; the defaults come from `[tls]`,
        // which is already resolved.
        let fix = |p: Option<PathBuf>, default: PathBuf| match p {
            Some(p) if p.is_relative() => base.join(p),
            Some(p) => p,
            None => default,
        };
        self.cert = Some(fix(self.cert.take(), tls.certs_dir.join("mirror.crt")));
        self.key = Some(fix(self.key.take(), tls.certs_dir.join("mirror.key")));
        self.ca = Some(fix(self.ca.take(), tls.client_ca.clone()));
    }

    /// Checks the values; on error, the key and what is wrong.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !valid_node_id(&self.node_id) {
            return Err((
                "mirror.node_id",
                "must be 1 to 64 letters, digits, '-' or '_'".into(),
            ));
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err((
                "mirror.listen",
                format!(
                    "is {:?}; give an IP address and port such as \"0.0.0.0:5697\"",
                    self.listen
                ),
            ));
        }
        if !(1..=600_000).contains(&self.rpo_timeout_ms) {
            return Err(("mirror.rpo_timeout_ms", "must be 1 to 600000".into()));
        }
        if !(1..=86_400).contains(&self.compact_interval_secs) {
            return Err(("mirror.compact_interval_secs", "must be 1 to 86400".into()));
        }
        if self.log_retention_entries > i64::MAX as u64 {
            return Err(("mirror.log_retention_entries", "is too large".into()));
        }
        if self.mode == Mode::RpoZero && self.peers.is_empty() {
            return Err((
                "mirror.mode",
                "is \"rpo-zero\" but no [[mirror.peers]] are configured".into(),
            ));
        }
        for (i, p) in self.peers.iter().enumerate() {
            self.validate_peer(i, p)?;
        }
        Ok(())
    }

    fn validate_peer(&self, i: usize, p: &PeerConfig) -> Result<(), (&'static str, String)> {
        if !valid_node_id(&p.node_id) || p.node_id == self.node_id {
            return Err((
                "mirror.peers.node_id",
                format!(
                    "of peer #{} is {:?}; it must be a valid node id other than this node's",
                    i + 1,
                    p.node_id
                ),
            ));
        }
        if self.peers[..i].iter().any(|q| q.node_id == p.node_id) {
            return Err((
                "mirror.peers.node_id",
                format!("{:?} is configured twice", p.node_id),
            ));
        }
        if split_host(&p.address).is_none() {
            return Err((
                "mirror.peers.address",
                format!("of peer {:?} is {:?}; give host:port", p.node_id, p.address),
            ));
        }
        match (&p.fingerprint, &p.cn) {
            (None, None) => Err((
                "mirror.peers.fingerprint",
                format!(
                    "peer {:?} needs `fingerprint` (SHA-256 of its certificate) or `cn`",
                    p.node_id
                ),
            )),
            (Some(f), _) if normalize_fingerprint(f).is_none() => Err((
                "mirror.peers.fingerprint",
                format!(
                    "of peer {:?} must be 64 hex digits (colons allowed)",
                    p.node_id
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The mirror listener address (validated).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 5697)))
    }

    /// The interval between change-log compactions.
    pub fn compact_interval(&self) -> Duration {
        Duration::from_secs(self.compact_interval_secs)
    }

    /// The RPO-zero acknowledgement timeout.
    pub fn rpo_timeout(&self) -> Duration {
        Duration::from_millis(self.rpo_timeout_ms)
    }
}

impl PeerConfig {
    /// The name verified in the peer's server certificate.
    pub fn tls_name(&self) -> String {
        self.server_name.clone().unwrap_or_else(|| {
            split_host(&self.address)
                .map(str::to_owned)
                .unwrap_or_default()
        })
    }

    /// Whether a certificate (its SHA-256 fingerprint and CN) is this peer's.
    pub fn matches(&self, fingerprint: &str, cn: &str) -> bool {
        let fp_ok = self
            .fingerprint
            .as_deref()
            .and_then(normalize_fingerprint)
            .is_none_or(|f| f == fingerprint);
        let cn_ok = self.cn.as_deref().is_none_or(|c| c == cn);
        fp_ok && cn_ok
    }
}

fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The host part of `host:port` (brackets removed from an IPv6 literal).
fn split_host(address: &str) -> Option<&str> {
    let (host, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then_some(host)
}

/// Lower-case hex without colons, if it is 32 bytes of hex.
pub fn normalize_fingerprint(f: &str) -> Option<String> {
    let hex: String = f
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/akm/akm.toml")).map_err(|e| e.to_string())
    }

    const PEER: &str =
        "[[mirror.peers]]\nnode_id = \"b\"\naddress = \"10.0.0.2:5697\"\ncn = \"akm-b\"\n";

    #[test]
    fn a_valid_section_parses_with_tls_defaults() {
        let c = parse(&format!(
            "[mirror]\nnode_id = \"a\"\nlisten = \"0.0.0.0:5697\"\n{PEER}"
        ))
        .unwrap();
        let m = c.mirror.unwrap();
        assert_eq!(m.cert.unwrap(), Path::new("/etc/akm/certs/mirror.crt"));
        assert_eq!(m.mode, super::Mode::Async);
        assert_eq!(m.peers[0].tls_name(), "10.0.0.2");
        assert!(m.peers[0].matches("00", "akm-b"));
        assert!(!m.peers[0].matches("00", "akm-c"));
    }

    #[test]
    fn relative_paths_resolve_once_against_the_config_dir() {
        let text = format!(
            "[mirror]\nnode_id = \"a\"\nlisten = \"0.0.0.0:5697\"\nkey = \"k/m.key\"\n{PEER}"
        );
        let c = Config::parse(&text, Path::new("config/akm.toml")).unwrap();
        let m = c.mirror.unwrap();
        assert_eq!(m.ca.unwrap(), Path::new("config/certs/ca.crt"));
        assert_eq!(m.cert.unwrap(), Path::new("config/certs/mirror.crt"));
        assert_eq!(m.key.unwrap(), Path::new("config/k/m.key"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            (
                "node_id = \"a b\"\nlisten = \"0.0.0.0:1\"\n",
                "mirror.node_id",
            ),
            ("node_id = \"a\"\nlisten = \"x\"\n", "mirror.listen"),
            (
                "node_id = \"a\"\nlisten = \"0.0.0.0:1\"\nmode = \"rpo-zero\"\n",
                "mirror.mode",
            ),
            (
                "node_id = \"a\"\nlisten = \"0.0.0.0:1\"\nrpo_timeout_ms = 0\n",
                "mirror.rpo_timeout_ms",
            ),
            (
                "node_id = \"a\"\nlisten = \"0.0.0.0:1\"\ncompact_interval_secs = 0\n",
                "mirror.compact_interval_secs",
            ),
            (
                "node_id = \"a\"\nlisten = \"0.0.0.0:1\"\nmode = \"sync\"\n",
                "mode",
            ),
        ];
        for (body, key) in cases {
            let e = parse(&format!("[mirror]\n{body}")).unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
        let base = "[mirror]\nnode_id = \"a\"\nlisten = \"0.0.0.0:1\"\n[[mirror.peers]]\n";
        let peers = [
            (
                "node_id = \"a\"\naddress = \"h:1\"\ncn = \"x\"\n",
                "mirror.peers.node_id",
            ),
            (
                "node_id = \"b\"\naddress = \"h\"\ncn = \"x\"\n",
                "mirror.peers.address",
            ),
            (
                "node_id = \"b\"\naddress = \"h:1\"\n",
                "mirror.peers.fingerprint",
            ),
            (
                "node_id = \"b\"\naddress = \"h:1\"\nfingerprint = \"zz\"\n",
                "mirror.peers.fingerprint",
            ),
        ];
        for (body, key) in peers {
            let e = parse(&format!("{base}{body}")).unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
