//! `[log]` and `[[log.remote]]`: the diagnostic log streams and their receivers.

use super::audit::default_framing;
use super::{facility_code, log_level, Config, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
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
    pub syslog_facility: String,
    /// Remote syslog receivers of the log lines at or above their level (`[[log.remote]]`).
    pub remote: Vec<RemoteLogConfig>,
}

/// `[[log.remote]]`: a remote syslog receiver of the server's log lines. The transport keys
/// are those of `[[audit.sinks]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteLogConfig {
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// host:port.
    pub address: String,
    /// The lowest level sent: `error`, `warn` (default), `info`, `debug`, or a `log.level`
    /// value.
    #[serde(default = "default_remote_level")]
    pub level: String,
    /// `rfc5424` (default) or `rfc3164`.
    #[serde(default = "default_framing")]
    pub framing: String,
    /// Syslog APP-NAME; default `akm`.
    #[serde(default = "default_remote_app_name")]
    pub app_name: String,
    /// Syslog facility name; default `daemon`.
    #[serde(default = "default_remote_facility")]
    pub facility: String,
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

fn default_remote_level() -> String {
    "warn".into()
}
fn default_remote_app_name() -> String {
    "akm".into()
}
fn default_remote_facility() -> String {
    "daemon".into()
}
fn default_queue_lines() -> usize {
    10_000
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            file: None,
            error_file: None,
            syslog: None,
            syslog_facility: "daemon".into(),
            remote: Vec::new(),
        }
    }
}

impl Config {
    pub(super) fn validate_remote_log(&self, r: &RemoteLogConfig) -> Result<(), ConfigError> {
        if !["udp", "tcp", "tls"].contains(&r.transport.as_str()) {
            return Err(self.invalid(
                "log.remote.transport",
                format!("is {:?}; use \"udp\", \"tcp\" or \"tls\"", r.transport),
            ));
        }
        let port = r.address.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
        if !matches!(port, Some(Ok(p)) if p != 0) {
            return Err(self.invalid(
                "log.remote.address",
                format!(
                    "is {:?}; give host:port such as \"logs.example:514\"",
                    r.address
                ),
            ));
        }
        if r.transport == "tls"
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
        if !["rfc5424", "rfc3164"].contains(&r.framing.as_str()) {
            return Err(self.invalid(
                "log.remote.framing",
                format!("is {:?}; use \"rfc5424\" or \"rfc3164\"", r.framing),
            ));
        }
        if facility_code(&r.facility).is_none() {
            return Err(self.invalid(
                "log.remote.facility",
                format!(
                    "is {:?}; use a syslog facility such as \"daemon\" or \"local1\"",
                    r.facility
                ),
            ));
        }
        let app_ok = (1..=48).contains(&r.app_name.len())
            && r.app_name.bytes().all(|b| b.is_ascii_graphic());
        if !app_ok {
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
