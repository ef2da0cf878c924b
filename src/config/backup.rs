//! `[backup]` and `[backup.sftp]`: where backups go, how often, how many are kept.

use super::StoreConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[backup]`: where `akm backup` and scheduled backups write, how often, how many to keep.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// The directory backups are written to (created 0700); defaults to `backups` beside the
    /// data directory, so wiping the data directory keeps them.
    pub dir: Option<PathBuf>,
    /// Seconds between scheduled backups; 0 (the default) schedules none.
    pub interval_secs: u64,
    /// Scheduled backups by time of day, in UTC: `daily HH:MM` or a cron expression (5
    /// fields, or 6 with seconds first); instead of `interval_secs`. None by default.
    pub schedule: Option<String>,
    /// Scheduled backups kept in `dir` (the oldest beyond this are deleted).
    pub keep: usize,
    /// A remote host every backup, manual (`akm backup`) or scheduled, is also copied to
    /// over SFTP.
    pub sftp: Option<SftpTarget>,
}

/// Where scheduled backups are copied (`[backup.sftp]`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SftpTarget {
    /// `user@host:directory` on the remote host.
    pub destination: String,
    /// The SSH port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The private key to log in with (mode 0600).
    pub identity: PathBuf,
    /// The known_hosts file holding the remote host's key.
    pub known_hosts: PathBuf,
    /// Seconds to wait for the SSH connection (and, between keepalives, for an answer).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds one whole upload may take before sftp is stopped and the copy reported failed.
    #[serde(default = "default_transfer_timeout")]
    pub transfer_timeout_secs: u64,
}

/// Default `backup.sftp.port`.
pub const DEFAULT_SFTP_PORT: u16 = 22;
/// Default `backup.sftp.connect_timeout_secs`.
pub const DEFAULT_SFTP_CONNECT_TIMEOUT_SECS: u64 = 15;
/// Default `backup.sftp.transfer_timeout_secs`.
pub const DEFAULT_SFTP_TRANSFER_TIMEOUT_SECS: u64 = 600;

fn default_port() -> u16 {
    DEFAULT_SFTP_PORT
}

fn default_connect_timeout() -> u64 {
    DEFAULT_SFTP_CONNECT_TIMEOUT_SECS
}

fn default_transfer_timeout() -> u64 {
    DEFAULT_SFTP_TRANSFER_TIMEOUT_SECS
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: None,
            interval_secs: 0,
            schedule: None,
            keep: 7,
            sftp: None,
        }
    }
}

impl BackupConfig {
    /// The backup directory.
    pub fn dir(&self, store: &StoreConfig) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| {
            store
                .data_dir
                .parent()
                .map(|p| p.join("backups"))
                .unwrap_or_else(|| PathBuf::from("backups"))
        })
    }
}
