//! The `[mirror]` section of `akm.toml`: this node's id, the mirror listener, the certificate
//! it presents to peers, the peers (address and expected certificate), and the replication
//! mode. Validation names the offending key.
//!
//! A peer is trusted with everything (it rewrites owners, modes, key bytes and user records),
//! so it must be identified by something an ordinary client cannot hold: a pinned certificate
//! `fingerprint`, or a `cn` under a mirror CA that issues no client certificates. A `cn`-only
//! peer under the client CA is refused at start (see `MirrorConfig::validate` and
//! [`MirrorConfig::check_dedicated_ca`]).

use super::TlsConfig;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[mirror]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    /// CA bundle peer certificates must chain to (PEM); defaults to `tls.client_ca`. Peers
    /// identified by `cn` alone need a dedicated mirror CA here, sharing no certificate with
    /// `tls.client_ca`.
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    /// Or the subject CN the peer's certificate must carry (alone, only under a dedicated
    /// `mirror.ca`).
    #[serde(default)]
    pub cn: Option<String>,
}

/// Replication mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Writes never wait for peers.
    #[default]
    Async,
    /// Writes wait for one peer's durable acknowledgement.
    RpoZero,
}

/// What RPO-zero mode does when no peer acknowledges in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
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

    /// Checks the values (`client_ca` is the resolved `tls.client_ca`); on error, the key and
    /// what is wrong.
    pub(crate) fn validate(&self, client_ca: &Path) -> Result<(), (Cow<'static, str>, String)> {
        if !valid_node_id(&self.node_id) {
            return Err((
                "mirror.node_id".into(),
                "must be 1 to 64 letters, digits, '-' or '_'".into(),
            ));
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err((
                "mirror.listen".into(),
                format!(
                    "is {:?}; give an IP address and port such as \"0.0.0.0:5697\"",
                    self.listen
                ),
            ));
        }
        if !(1..=600_000).contains(&self.rpo_timeout_ms) {
            return Err(("mirror.rpo_timeout_ms".into(), "must be 1 to 600000".into()));
        }
        if !(1..=86_400).contains(&self.compact_interval_secs) {
            return Err((
                "mirror.compact_interval_secs".into(),
                "must be 1 to 86400".into(),
            ));
        }
        if self.log_retention_entries > i64::MAX as u64 {
            return Err(("mirror.log_retention_entries".into(), "is too large".into()));
        }
        if self.mode == Mode::RpoZero && self.peers.is_empty() {
            return Err((
                "mirror.mode".into(),
                "is \"rpo-zero\" but no [[mirror.peers]] are configured".into(),
            ));
        }
        for (i, p) in self.peers.iter().enumerate() {
            self.validate_peer(i, p)?;
        }
        if self.ca.as_deref().is_none_or(|ca| ca == client_ca) {
            return self.refuse_cn_only_peers("is tls.client_ca (its default)");
        }
        Ok(())
    }

    /// Refuses to identify a peer by CN alone under the client CA (read from the files: the
    /// same certificate under another path is the same CA). A missing file is left to TLS
    /// loading, which names it.
    pub fn check_dedicated_ca(&self, client_ca: &Path) -> Result<(), (Cow<'static, str>, String)> {
        let Some(ca) = self.ca.as_deref() else {
            return Ok(());
        };
        if !self.peers.iter().any(PeerConfig::cn_only) {
            return Ok(());
        }
        let (Some(mirror_cas), Some(client_cas)) =
            (pem_certificates(ca), pem_certificates(client_ca))
        else {
            return Ok(());
        };
        if mirror_cas.iter().any(|c| client_cas.contains(c)) {
            return self.refuse_cn_only_peers("holds a certificate of tls.client_ca");
        }
        Ok(())
    }

    /// The error for the first peer identified by CN alone, if any, when the mirror CA
    /// (`why`) is the client CA.
    fn refuse_cn_only_peers(&self, why: &str) -> Result<(), (Cow<'static, str>, String)> {
        let Some((i, p)) = self.peers.iter().enumerate().find(|(_, p)| p.cn_only()) else {
            return Ok(());
        };
        let ca = self.ca.as_deref().unwrap_or(Path::new("-")).display();
        Err((
            format!("mirror.peers[{}].cn", i + 1).into(),
            format!(
                "identifies peer {:?} by CN alone, but mirror.ca ({ca}) {why}, so any client \
                 certificate issued with CN {:?} would be accepted as that peer; pin the peer's \
                 certificate with `fingerprint` (printed by `akm cert peer`), or set `mirror.ca` \
                 to a dedicated mirror CA that issues only peer certificates",
                p.node_id,
                p.cn.as_deref().unwrap_or_default()
            ),
        ))
    }

    fn validate_peer(&self, i: usize, p: &PeerConfig) -> Result<(), (Cow<'static, str>, String)> {
        if !valid_node_id(&p.node_id) || p.node_id == self.node_id {
            return Err((
                "mirror.peers.node_id".into(),
                format!(
                    "of peer #{} is {:?}; it must be a valid node id other than this node's",
                    i + 1,
                    p.node_id
                ),
            ));
        }
        if self.peers[..i].iter().any(|q| q.node_id == p.node_id) {
            return Err((
                "mirror.peers.node_id".into(),
                format!("{:?} is configured twice", p.node_id),
            ));
        }
        if split_host(&p.address).is_none() {
            return Err((
                "mirror.peers.address".into(),
                format!("of peer {:?} is {:?}; give host:port", p.node_id, p.address),
            ));
        }
        match (&p.fingerprint, &p.cn) {
            (None, None) => Err((
                "mirror.peers.fingerprint".into(),
                format!(
                    "peer {:?} needs `fingerprint` (SHA-256 of its certificate) or `cn`",
                    p.node_id
                ),
            )),
            (Some(f), _) if normalize_fingerprint(f).is_none() => Err((
                "mirror.peers.fingerprint".into(),
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

    /// Whether the peer is identified by CN alone (no pinned fingerprint).
    pub fn cn_only(&self) -> bool {
        self.fingerprint.is_none() && self.cn.is_some()
    }

    /// Whether a certificate (its SHA-256 fingerprint and CN) is this peer's. The caller
    /// also checks that it is a peer certificate (serverAuth and clientAuth).
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

/// The certificates of a PEM file, each as its base64 body with the line breaks removed (the
/// same certificate gives the same text whatever the file's line length), or `None` if the
/// file cannot be read or holds none. Comparing them needs no certificate parser.
fn pem_certificates(path: &Path) -> Option<Vec<String>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::fs::read_to_string(path).ok()?;
    let mut certs = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body.find(END)?;
        certs.push(body[..end].split_whitespace().collect());
        rest = &body[end + END.len()..];
    }
    (!certs.is_empty()).then_some(certs)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/akm/akm.toml")).map_err(|e| e.to_string())
    }

    const FP: &str = "abababababababababababababababababababababababababababababababab";
    const PEER: &str = "[[mirror.peers]]\nnode_id = \"b\"\naddress = \"10.0.0.2:5697\"\n\
        fingerprint = \"abababababababababababababababababababababababababababababababab\"\n";

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
        assert!(m.peers[0].matches(FP, "any"));
        assert!(!m.peers[0].matches(&"cd".repeat(32), "any"));
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

    const CN_PEER: &str =
        "[[mirror.peers]]\nnode_id = \"c\"\naddress = \"10.0.0.3:5697\"\ncn = \"akm-c\"\n";

    #[test]
    fn a_cn_only_peer_under_the_client_ca_is_refused_naming_the_key_and_the_fix() {
        let base = "[mirror]\nnode_id = \"a\"\nlisten = \"0.0.0.0:1\"\n";
        for ca in [
            "",
            "ca = \"certs/ca.crt\"\n",
            "ca = \"/etc/akm/certs/ca.crt\"\n",
        ] {
            let e = parse(&format!("{base}{ca}{PEER}{CN_PEER}")).unwrap_err();
            assert!(e.contains("`mirror.peers[2].cn`"), "{e}");
            assert!(e.contains("fingerprint") && e.contains("mirror.ca"), "{e}");
        }
        // With a pinned fingerprint as well, or under a dedicated mirror CA, it is accepted.
        let pinned = format!("{CN_PEER}fingerprint = \"{FP}\"\n");
        parse(&format!("{base}{pinned}")).unwrap();
        let m = parse(&format!("{base}ca = \"certs/mirror-ca.crt\"\n{CN_PEER}"))
            .unwrap()
            .mirror
            .unwrap();
        assert!(m.peers[0].matches("00", "akm-c"));
        assert!(!m.peers[0].matches("00", "akm-b"));
    }

    #[test]
    fn a_mirror_ca_file_holding_a_client_ca_certificate_is_not_dedicated() {
        let dir = tempfile::tempdir().unwrap();
        let client = crate::pki::Ca::generate("client CA").unwrap();
        let mirror = crate::pki::Ca::generate("mirror CA").unwrap();
        let write = |name: &str, pem: String| {
            std::fs::write(dir.path().join(name), pem).unwrap();
        };
        write("ca.crt", client.cert_pem().into());
        write("copy.crt", client.cert_pem().into());
        write(
            "bundle.crt",
            format!("{}{}", mirror.cert_pem(), client.cert_pem()),
        );
        write("mirror.crt", mirror.cert_pem().into());
        let config = |ca: &str| {
            let text = format!(
                "[tls]\nclient_ca = \"ca.crt\"\n[mirror]\nnode_id = \"a\"\nlisten = \"0.0.0.0:1\"\n\
                 ca = \"{ca}\"\n{CN_PEER}"
            );
            Config::parse(&text, &dir.path().join("akm.toml")).unwrap()
        };
        for same in ["copy.crt", "bundle.crt"] {
            let e = config(same).check_mirror_trust().unwrap_err().to_string();
            assert!(e.contains("`mirror.peers[1].cn`"), "{e}");
            assert!(e.contains("holds a certificate of tls.client_ca"), "{e}");
        }
        config("mirror.crt").check_mirror_trust().unwrap();
    }
}
