//! The `[audit]` section as the journal and the sinks take it: the sync policy and each
//! syslog sink's settings (the config is validated already, so unknown values cannot reach
//! here). Kept in audit so the config stays plain data below every module that reads it.

use super::format::{Format, Framing};
use super::journal::SyncPolicy;
use super::sink::{SinkSettings, Transport};
use crate::config::{facility_code, AuditConfig};
use std::path::{Path, PathBuf};

impl AuditConfig {
    /// The journal's sync policy (validated already: anything but `interval` is every-record).
    pub fn sync_policy(&self) -> SyncPolicy {
        match self.sync.as_str() {
            "interval" => {
                SyncPolicy::Interval(std::time::Duration::from_millis(self.sync_interval_ms))
            }
            _ => SyncPolicy::EveryRecord,
        }
    }

    /// The sinks as the audit module takes them (validated already).
    pub fn sink_settings(&self, hostname: &str, journal: &Path) -> Vec<SinkSettings> {
        self.sinks
            .iter()
            .map(|s| SinkSettings {
                transport: receiver_transport(
                    &s.transport,
                    &s.address,
                    [&s.tls_ca, &s.tls_cert, &s.tls_key],
                    &s.tls_server_name,
                ),
                framing: if s.framing == "rfc3164" {
                    Framing::Rfc3164
                } else {
                    Framing::Rfc5424
                },
                format: match s.format.as_str() {
                    "cef" => Format::Cef,
                    "leef" => Format::Leef,
                    _ => Format::KeyValue,
                },
                app_name: s.app_name.clone(),
                facility: facility_code(&s.facility).unwrap_or(10),
                hostname: hostname.to_owned(),
                queue_records: s.queue_records,
                journal: Some(journal.to_owned()),
            })
            .collect()
    }
}

/// The transport of a syslog receiver's settings (validated already).
pub(crate) fn receiver_transport(
    transport: &str,
    address: &str,
    tls: [&Option<PathBuf>; 3],
    server_name: &Option<String>,
) -> Transport {
    match transport {
        "udp" => Transport::Udp(address.to_owned()),
        "tcp" => Transport::Tcp(address.to_owned()),
        "unix" => Transport::Unix(PathBuf::from(address)),
        _ => Transport::Tls {
            address: address.to_owned(),
            ca: tls[0].clone().unwrap_or_default(),
            cert: tls[1].clone().unwrap_or_default(),
            key: tls[2].clone().unwrap_or_default(),
            server_name: server_name.clone(),
        },
    }
}
