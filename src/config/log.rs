//! `[log]` and `[[log.remote]]`: the diagnostic log streams and their receivers.

use super::audit::{is_app_name, is_host_port};
use super::syslog::{Facility, Framing, RemoteTransport};
use super::{log_level, Config, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[log]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `none`, `basic`, `verbose`, `debug`, or a tracing filter (`info`, `akm=debug`);
    /// RUST_LOG overrides it.
    pub level: String,
    /// The trace stream's file (everything at `level`); default stderr.
    pub file: Option<PathBuf>,
    /// The error stream's file (warnings and errors only); default none.
    pub error_file: Option<PathBuf>,
    /// A local syslog socket (e.g. `/dev/log`) that also gets both streams, as app-names
    /// `akm` and `akm-error`; default none.
    pub syslog: Option<PathBuf>,
    /// The syslog facility of the diagnostic streams; default `daemon`.
    pub syslog_facility: Facility,
    /// Remote syslog receivers of the log lines at or above their level (`[[log.remote]]`).
    pub remote: Vec<RemoteLogConfig>,
}

/// `[[log.remote]]`: a remote syslog receiver of the server's log lines. The transport keys
/// are those of `[[audit.sinks]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteLogConfig {
    /// `udp`, `tcp` or `tls`.
    pub transport: RemoteTransport,
    /// host:port.
    pub address: String,
    /// The lowest level sent: `error`, `warn` (default), `info`, `debug`, or a `log.level`
    /// value.
    #[serde(default = "default_remote_level")]
    pub level: String,
    /// `rfc5424` (default) or `rfc3164`.
    #[serde(default)]
    pub framing: Framing,
    /// Syslog APP-NAME; default `akm`.
    #[serde(default = "default_remote_app_name")]
    pub app_name: String,
    /// Syslog facility name; default `daemon`.
    #[serde(default = "default_remote_facility")]
    pub facility: Facility,
    /// TLS: CA bundle that signed the receiver's certificate.
    pub tls_ca: Option<PathBuf>,
    /// TLS: our client certificate.
    pub tls_cert: Option<PathBuf>,
    /// TLS: our client key (mode 0600).
    pub tls_key: Option<PathBuf>,
    /// TLS: the name to verify in the receiver's certificate; default the address's host.
    pub tls_server_name: Option<String>,
    /// Lines held while the receiver is down; default 10000 (then new lines are dropped
    /// and counted).
    #[serde(default = "default_queue_lines")]
    pub queue_lines: usize,
}

/// Default `log.level`.
pub const DEFAULT_LEVEL: &str = "info";
/// Default `log.remote.level`.
pub const DEFAULT_REMOTE_LEVEL: &str = "warn";
/// Default `log.remote.app_name`.
pub const DEFAULT_REMOTE_APP_NAME: &str = "akm";
/// Default `log.remote.queue_lines`.
pub const DEFAULT_REMOTE_QUEUE_LINES: usize = 10_000;

fn default_remote_level() -> String {
    DEFAULT_REMOTE_LEVEL.into()
}
fn default_remote_app_name() -> String {
    DEFAULT_REMOTE_APP_NAME.into()
}
fn default_remote_facility() -> Facility {
    Facility::Daemon
}
fn default_queue_lines() -> usize {
    DEFAULT_REMOTE_QUEUE_LINES
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: DEFAULT_LEVEL.into(),
            file: None,
            error_file: None,
            syslog: None,
            syslog_facility: Facility::Daemon,
            remote: Vec::new(),
        }
    }
}

impl Config {
    pub(super) fn validate_remote_log(&self, r: &RemoteLogConfig) -> Result<(), ConfigError> {
        if !is_host_port(&r.address) {
            return Err(self.invalid(
                "log.remote.address",
                format!(
                    "is {:?}; give host:port such as \"logs.example:514\"",
                    r.address
                ),
            ));
        }
        if r.transport == RemoteTransport::Tls
            && (r.tls_ca.is_none() || r.tls_cert.is_none() || r.tls_key.is_none())
        {
            return Err(self.invalid(
                "log.remote.tls_ca",
                "a tls receiver needs tls_ca, tls_cert and tls_key",
            ));
        }
        if let Err(problem) = log_level::check_level(&r.level) {
            return Err(self.invalid(
                "log.remote.level",
                format!("{problem}; use error, warn, info or debug"),
            ));
        }
        if !is_app_name(&r.app_name) {
            return Err(self.invalid(
                "log.remote.app_name",
                "must be 1 to 48 printable ASCII characters without spaces",
            ));
        }
        if r.queue_lines == 0 {
            return Err(self.invalid("log.remote.queue_lines", "must be at least 1"));
        }
        Ok(())
    }
}
