//! `[audit]` and `[[audit.sinks]]`: the audit journal, its checkpoints and sync policy, and
//! the syslog receivers of its records.

use super::syslog::{Facility, Framing, SinkFormat, SinkTransport};
use super::{Config, ConfigError, StoreConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[audit]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The local audit journal; defaults to `<data_dir>/audit/audit.log`.
    pub journal: Option<PathBuf>,
    /// The Ed25519 checkpoint signing key (mode 0600); defaults to
    /// `<data_dir>/audit-signing.key`.
    pub signing_key: Option<PathBuf>,
    /// The server name in every record; defaults to the host name.
    pub server_name: Option<String>,
    /// A signed checkpoint after this many records.
    pub checkpoint_every: u64,
    /// A signed checkpoint at least this often, in seconds (at most 60).
    pub checkpoint_secs: u64,
    /// When records reach the disk: `by-class` (a state-changing request's records are
    /// fdatasync'd before its response, a read's are written before it and fdatasync'd at most
    /// `sync_interval_ms` later), `every-record` (every request's records are fdatasync'd
    /// before its response) or `interval` (every record written before the response,
    /// fdatasync'd at most `sync_interval_ms` later).
    pub sync: AuditSync,
    /// With `sync = "by-class"` (for reads) or `"interval"` (for every record): the longest a
    /// written record waits for its fdatasync, in milliseconds (1 to 1000).
    pub sync_interval_ms: u64,
    /// Syslog receivers that get a copy of every record.
    pub sinks: Vec<SinkConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            journal: None,
            signing_key: None,
            server_name: None,
            checkpoint_every: 1000,
            checkpoint_secs: 60,
            sync: AuditSync::ByClass,
            sync_interval_ms: 10,
            sinks: Vec::new(),
        }
    }
}

/// `audit.sync`: when audit records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditSync {
    /// A state-changing request's records are fdatasync'd before its response; a read's
    /// (a request of read-only operations that changed nothing) are written before it and
    /// fdatasync'd at most `sync_interval_ms` later.
    ByClass,
    /// Each request's records are fdatasync'd before its response.
    EveryRecord,
    /// Written before the response, fdatasync'd at most `sync_interval_ms` later.
    Interval,
}

/// `[[audit.sinks]]`: one syslog receiver.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `udp`, `tcp`, `tls` or `unix`.
    pub transport: SinkTransport,
    /// host:port, or the socket path for `unix`.
    pub address: String,
    /// `rfc5424` (default) or `rfc3164`.
    #[serde(default)]
    pub framing: Framing,
    /// `kv` (default), `cef` or `leef`.
    #[serde(default)]
    pub format: SinkFormat,
    /// Syslog APP-NAME; default `akm-audit`.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Syslog facility name; default `authpriv`.
    #[serde(default = "default_facility")]
    pub facility: Facility,
    /// TLS: CA bundle that signed the receiver's certificate.
    pub tls_ca: Option<PathBuf>,
    /// TLS: our client certificate.
    pub tls_cert: Option<PathBuf>,
    /// TLS: our client key (mode 0600).
    pub tls_key: Option<PathBuf>,
    /// TLS: the name to verify in the receiver's certificate; default the address's host.
    pub tls_server_name: Option<String>,
    /// Records held while the receiver is down; default 100000.
    #[serde(default = "default_queue_records")]
    pub queue_records: usize,
}

/// Default `audit.sinks.app_name`.
pub const DEFAULT_SINK_APP_NAME: &str = "akm-audit";
/// Default `audit.sinks.queue_records`.
pub const DEFAULT_SINK_QUEUE_RECORDS: usize = 100_000;

fn default_app_name() -> String {
    DEFAULT_SINK_APP_NAME.into()
}
fn default_facility() -> Facility {
    Facility::Authpriv
}
fn default_queue_records() -> usize {
    DEFAULT_SINK_QUEUE_RECORDS
}

impl AuditConfig {
    /// The journal file.
    pub fn journal_path(&self, store: &StoreConfig) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| store.data_dir.join("audit").join("audit.log"))
    }

    /// The signing key file.
    pub fn signing_key_path(&self, store: &StoreConfig) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| store.data_dir.join("audit-signing.key"))
    }
}

impl Config {
    pub(super) fn validate_audit(&self) -> Result<(), ConfigError> {
        let (a, d) = (&self.audit, AuditConfig::default());
        self.check_range(
            "audit.checkpoint_every",
            a.checkpoint_every,
            1..=1_000_000,
            d.checkpoint_every,
        )?;
        // A checkpoint at least every minute.
        self.check_range(
            "audit.checkpoint_secs",
            a.checkpoint_secs,
            1..=60,
            d.checkpoint_secs,
        )?;
        self.check_range(
            "audit.sync_interval_ms",
            a.sync_interval_ms,
            1..=1000,
            d.sync_interval_ms,
        )?;
        if a.server_name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(self.invalid(
                "audit.server_name",
                "must not be empty; leave it out to use the host name",
            ));
        }
        a.sinks.iter().try_for_each(|s| self.validate_sink(s))
    }

    pub(super) fn validate_sink(&self, s: &SinkConfig) -> Result<(), ConfigError> {
        match s.transport {
            SinkTransport::Udp | SinkTransport::Tcp | SinkTransport::Tls => {
                if !is_host_port(&s.address) {
                    return Err(self.invalid(
                        "audit.sinks.address",
                        format!(
                            "is {:?}; give host:port such as \"127.0.0.1:514\"",
                            s.address
                        ),
                    ));
                }
            }
            SinkTransport::Unix => {
                if s.address.is_empty() {
                    return Err(self.invalid(
                        "audit.sinks.address",
                        "must be a socket path such as \"/dev/log\"",
                    ));
                }
            }
        }
        if s.transport == SinkTransport::Tls
            && (s.tls_ca.is_none() || s.tls_cert.is_none() || s.tls_key.is_none())
        {
            return Err(self.invalid(
                "audit.sinks.tls_ca",
                "a tls sink needs tls_ca, tls_cert and tls_key",
            ));
        }
        if !is_app_name(&s.app_name) {
            return Err(self.invalid(
                "audit.sinks.app_name",
                "must be 1 to 48 printable ASCII characters without spaces",
            ));
        }
        if s.queue_records == 0 {
            return Err(self.invalid("audit.sinks.queue_records", "must be at least 1"));
        }
        Ok(())
    }
}

/// Whether `address` is host:port with a port that is not 0.
pub(super) fn is_host_port(address: &str) -> bool {
    let port = address.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
    matches!(port, Some(Ok(p)) if p != 0)
}

/// Whether `name` can be a syslog APP-NAME: 1 to 48 printable ASCII characters.
pub(super) fn is_app_name(name: &str) -> bool {
    (1..=48).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic())
}
