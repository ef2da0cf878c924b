//! The `[audit]` section as the journal and the sinks take it: the sync policy and each
//! syslog sink's settings (the config is validated already, so unknown values cannot reach
//! here). Kept in audit so the config stays plain data below every module that reads it.

use super::format::{Format, Framing};
use super::journal::SyncPolicy;
use super::sink::{SinkSettings, Transport};
use crate::config::{self, AuditConfig, AuditSync, SinkTransport};
use std::path::{Path, PathBuf};

impl AuditConfig {
    /// The journal's sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        match self.sync {
            AuditSync::Interval => {
                SyncPolicy::Interval(std::time::Duration::from_millis(self.sync_interval_ms))
            }
            AuditSync::ByClass => {
                SyncPolicy::ByClass(std::time::Duration::from_millis(self.sync_interval_ms))
            }
            AuditSync::EveryRecord => SyncPolicy::EveryRecord,
        }
    }

    /// The sinks as the audit module takes them (validated already).
    pub fn sink_settings(&self, hostname: &str, journal: &Path) -> Vec<SinkSettings> {
        self.sinks
            .iter()
            .map(|s| SinkSettings {
                transport: receiver_transport(
                    s.transport,
                    &s.address,
                    [&s.tls_ca, &s.tls_cert, &s.tls_key],
                    &s.tls_server_name,
                ),
                framing: framing(s.framing),
                format: match s.format {
                    config::SinkFormat::Kv => Format::KeyValue,
                    config::SinkFormat::Cef => Format::Cef,
                    config::SinkFormat::Leef => Format::Leef,
                },
                app_name: s.app_name.clone(),
                facility: s.facility.code(),
                hostname: hostname.to_owned(),
                queue_records: s.queue_records,
                journal: Some(journal.to_owned()),
            })
            .collect()
    }
}

/// The line framing a receiver's `framing` key names.
pub(crate) fn framing(framing: config::Framing) -> Framing {
    match framing {
        config::Framing::Rfc5424 => Framing::Rfc5424,
        config::Framing::Rfc3164 => Framing::Rfc3164,
    }
}

/// The transport of a syslog receiver's settings (validated already).
pub(crate) fn receiver_transport(
    transport: SinkTransport,
    address: &str,
    tls: [&Option<PathBuf>; 3],
    server_name: &Option<String>,
) -> Transport {
    match transport {
        SinkTransport::Udp => Transport::Udp(address.to_owned()),
        SinkTransport::Tcp => Transport::Tcp(address.to_owned()),
        SinkTransport::Unix => Transport::Unix(PathBuf::from(address)),
        SinkTransport::Tls => Transport::Tls {
            address: address.to_owned(),
            ca: tls[0].clone().unwrap_or_default(),
            cert: tls[1].clone().unwrap_or_default(),
            key: tls[2].clone().unwrap_or_default(),
            server_name: server_name.clone(),
        },
    }
}
