//! `akm.toml` → a validated [`Config`]. Unknown keys are refused by name; every value is
//! checked with a message that names the key and says what to fix; relative paths resolve
//! against the directory of the config file. Opens no sockets and no database.

mod access;
mod audit;
mod backup;
mod client;
pub mod console;
pub mod cron;
mod crypto;
mod diff;
pub mod dual_control;
pub mod limits;
mod log;
pub mod log_level;
pub mod mirror;
mod server;
pub mod status;
mod store;
mod syslog;
mod tls;

pub use access::{AccessConfig, AccountConfig, DefaultMode, Grant};
pub use audit::{AuditConfig, AuditSync, SinkConfig};
pub use backup::{BackupConfig, SftpTarget};
pub use client::ClientConfig;
pub use crypto::CryptoConfig;
pub use diff::changed_keys;
pub use dual_control::DualControlConfig;
pub use log::{LogConfig, RemoteLogConfig};
pub use server::ServerConfig;
pub use store::{DatabaseTls, StoreBackend, StoreConfig};
pub use syslog::{Facility, Framing, RemoteTransport, SinkFormat, SinkTransport};
pub use tls::{parse_fingerprint, TlsConfig};

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config file {path}: `{key}` {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// The offending key, dotted (`mirror.peers[2].cn`).
        key: Cow<'static, str>,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The KMIP listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// Certificates.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Storage.
    #[serde(default)]
    pub store: StoreConfig,
    /// Defaults for the `akm key` client commands.
    #[serde(default)]
    pub client: ClientConfig,
    /// Key-handling policy: PCI mode, scheduled rotation.
    #[serde(default)]
    pub crypto: CryptoConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The audit journal and its syslog sinks.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Access control.
    #[serde(default)]
    pub access: AccessConfig,
    /// Backups (`akm backup` and scheduled ones).
    #[serde(default)]
    pub backup: BackupConfig,
    /// Operations that need two administrators.
    #[serde(default)]
    pub dual_control: DualControlConfig,
    /// Mirroring to failover peers (absent: no mirroring).
    #[serde(default)]
    pub mirror: Option<mirror::MirrorConfig>,
    /// The HTTPS status listener (`/health`, `/metrics`, the status page).
    #[serde(default)]
    pub status: status::StatusConfig,
    /// The HTTPS management console (off unless enabled).
    #[serde(default)]
    pub console: console::ConsoleConfig,
    /// The config file's path (set by `load`).
    #[serde(skip)]
    pub path: PathBuf,
    /// SHA-256 (hex) of the exact text parsed, for the audit's `config` record: the file may
    /// change on disk after it was read.
    #[serde(skip)]
    pub sha256: String,
}

impl Config {
    /// Reads, parses, resolves and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses TOML text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: parse_message(text, &e),
        })?;
        config.path = path.to_owned();
        config.sha256 = hex::encode(crate::primitives::digest::digest(
            &crate::primitives::digest::SHA256,
            text.as_bytes(),
        ));
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        config.resolve(&base);
        config.validate()?;
        Ok(config)
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.tls.certs_dir);
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.tls.client_ca);
        self.tls.crls.iter_mut().for_each(fix);
        fix(&mut self.store.data_dir);
        if let Some(k) = &mut self.store.kek_file {
            fix(k);
        }
        if let Some(ca) = &mut self.store.tls_ca_file {
            fix(ca);
        }
        if let Some(p) = &mut self.store.password_file {
            fix(p);
        }
        if let Some(d) = &mut self.backup.dir {
            fix(d);
        }
        if let Some(t) = &mut self.backup.sftp {
            fix(&mut t.identity);
            fix(&mut t.known_hosts);
        }
        fix(&mut self.client.cert);
        fix(&mut self.client.key);
        fix(&mut self.client.ca);
        if let Some(m) = &mut self.mirror {
            m.resolve(base, &self.tls);
        }
        self.status.resolve(base);
        self.console.resolve(base);
        for p in [
            &mut self.log.file,
            &mut self.log.error_file,
            &mut self.log.syslog,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        for p in [&mut self.audit.journal, &mut self.audit.signing_key]
            .into_iter()
            .flatten()
        {
            fix(p);
        }
        for r in &mut self.log.remote {
            for p in [&mut r.tls_ca, &mut r.tls_cert, &mut r.tls_key]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
        for s in &mut self.audit.sinks {
            for p in [&mut s.tls_ca, &mut s.tls_cert, &mut s.tls_key]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
            if s.transport == SinkTransport::Unix {
                let mut p = PathBuf::from(&s.address);
                fix(&mut p);
                s.address = p.display().to_string();
            }
        }
    }

    fn invalid(
        &self,
        key: impl Into<Cow<'static, str>>,
        problem: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Refuses `value` of `key` outside `range`, naming the range and the default (read
    /// from the section's `Default`, so a message cannot drift from it).
    fn check_range<T: PartialOrd + std::fmt::Display>(
        &self,
        key: &'static str,
        value: T,
        range: std::ops::RangeInclusive<T>,
        default: T,
    ) -> Result<(), ConfigError> {
        if range.contains(&value) {
            return Ok(());
        }
        let (lo, hi) = range.into_inner();
        Err(self.invalid(
            key,
            format!("is {value}; must be {lo} to {hi}; the default is {default}"),
        ))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return Err(self.invalid(
                "server.listen",
                format!(
                    "is {:?}; give an IP address and port such as \"0.0.0.0:5696\"",
                    self.server.listen
                ),
            ));
        }
        if self.server.max_connections == 0 {
            return Err(self.invalid("server.max_connections", "must be at least 1"));
        }
        self.validate_handshake_budget()?;
        self.validate_timeouts()?;
        self.validate_request_limits()?;
        self.check_range(
            "crypto.rotation_check_secs",
            self.crypto.rotation_check_secs,
            1..=86_400,
            CryptoConfig::default().rotation_check_secs,
        )?;
        self.check_range(
            "dual_control.window_minutes",
            self.dual_control.window_minutes,
            1..=1440,
            DualControlConfig::default().window_minutes,
        )?;
        if self
            .backup
            .sftp
            .as_ref()
            .is_some_and(|t| t.split().is_none())
        {
            return Err(self.invalid(
                "backup.sftp.destination",
                "must be user@host:directory (no quotes or newlines)",
            ));
        }
        if let Some(t) = &self.backup.sftp {
            self.check_range(
                "backup.sftp.connect_timeout_secs",
                t.connect_timeout_secs,
                1..=600,
                backup::DEFAULT_SFTP_CONNECT_TIMEOUT_SECS,
            )?;
            self.check_range(
                "backup.sftp.transfer_timeout_secs",
                t.transfer_timeout_secs,
                1..=86_400,
                backup::DEFAULT_SFTP_TRANSFER_TIMEOUT_SECS,
            )?;
        }
        if let Some(spec) = &self.backup.schedule {
            if let Err(e) = cron::CronSpec::parse(spec) {
                return Err(self.invalid(
                    "backup.schedule",
                    format!(
                        "{e}; write \"daily 02:30\" or a cron expression such as \"30 2 * * *\" (UTC)"
                    ),
                ));
            }
            if self.backup.interval_secs > 0 {
                return Err(self.invalid(
                    "backup.schedule",
                    "set either backup.schedule or backup.interval_secs, not both",
                ));
            }
        }
        if self.backup.keep == 0 {
            return Err(self.invalid("backup.keep", "must be at least 1"));
        }
        if self.log.level.trim().is_empty() {
            return Err(self.invalid("log.level", "must not be empty; use \"info\""));
        }
        // The problem names the valid values.
        if let Err(problem) = log_level::check_level(&self.log.level) {
            return Err(self.invalid("log.level", problem));
        }
        self.store
            .validate(self.mirror.is_some())
            .map_err(|(key, problem)| self.invalid(key, problem))?;
        if let Some(m) = &self.mirror {
            m.validate(&self.tls.client_ca)
                .map_err(|(key, problem)| self.invalid(key, problem))?;
        }
        self.status
            .validate()
            .map_err(|(key, problem)| self.invalid(key, problem))?;
        self.console
            .validate()
            .map_err(|(key, problem)| self.invalid(key, problem))?;
        self.validate_access()?;
        self.log
            .remote
            .iter()
            .try_for_each(|r| self.validate_remote_log(r))?;
        self.check_range(
            "tls.expiry_warning_days",
            self.tls.expiry_warning_days,
            0..=3650,
            TlsConfig::default().expiry_warning_days,
        )?;
        for fp in &self.tls.client_ca_fingerprints {
            if parse_fingerprint(fp).is_none() {
                return Err(self.invalid(
                    "tls.client_ca_fingerprints",
                    format!("has {fp:?}; give SHA-256 fingerprints as 64 hex digits"),
                ));
            }
        }
        self.validate_audit()
    }

    /// The checks that read files, run by `akm serve` before anything starts: a mirror peer
    /// identified by CN alone must be under a mirror CA that shares no certificate with
    /// `tls.client_ca`.
    pub fn check_mirror_trust(&self) -> Result<(), ConfigError> {
        match &self.mirror {
            Some(m) => m
                .check_dedicated_ca(&self.tls.client_ca)
                .map_err(|(key, problem)| self.invalid(key, problem)),
            None => Ok(()),
        }
    }

    /// The listen address (validated).
    pub fn listen_addr(&self) -> SocketAddr {
        self.server
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 5696)))
    }

    /// Handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.server.handshake_timeout_secs)
    }

    /// Idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.server.idle_timeout_secs)
    }
}

/// The parser's message for `error` in `text`, led by the dotted key it is about when the
/// error points at a `key = value` line or a table header (`log.syslog_facility`), and
/// ending with the line number. Serde's message names the value and, for a value outside a
/// fixed set, every accepted one.
fn parse_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    let Some(span) = error.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    match dotted_key_at(text, start) {
        Some(key) => format!("`{key}`: {message} (line {line_no})"),
        None => format!("{message} (line {line_no})"),
    }
}

/// The dotted key of the line holding byte `at`: the table header above it joined with the
/// key before `=`, or the header itself when the line is one.
fn dotted_key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| {
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    };
    if let Some(h) = header(line) {
        return Some(h);
    }
    let (key, _) = line.split_once('=')?;
    let key: String = key.trim().replace(['"', '\'', ' '], "");
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find_map(header);
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key,
    })
}

/// What the sections' unit tests share: parsing a text as `/etc/akm/akm.toml`, and the key
/// a refused text names.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Config, ConfigError};
    use std::path::Path;

    /// Parses `text` as the configuration file.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/akm/akm.toml"))
    }

    /// The dotted key that `text` is refused for (panics if it is accepted).
    pub fn key_of(text: &str) -> String {
        match parse(text) {
            Err(ConfigError::Invalid { key, .. }) => key.into_owned(),
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/akm/akm.toml"))
    }

    #[test]
    fn shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/akm.toml");
        let c = Config::load(&path).unwrap();
        assert!(
            c.server.auto_init,
            "the example starts a fresh server in one command"
        );
        assert_eq!(c.listen_addr().port(), 5696);
    }

    /// Whichever setting is wrong is named with its fix; a complete PostgreSQL store is
    /// accepted; an unknown backend is a parse error.
    #[test]
    fn a_postgres_store_is_checked_by_key() {
        let refused = |text: &str| match parse(text) {
            Err(ConfigError::Invalid { key, problem, .. }) => (key.into_owned(), problem),
            other => panic!("{other:?}"),
        };
        let (key, problem) = refused("[store]\nbackend = \"postgres\"\n");
        assert_eq!(key, "store.url");
        assert!(problem.contains("is required"), "{problem}");
        let complete = "[store]\nbackend = \"postgres\"\nurl = \"postgresql://akm@db/akm\"\n\
                        node_id = \"n1\"\ntls_ca_file = \"db-ca.pem\"\n";
        let c = parse(complete).unwrap();
        assert_eq!(c.store.node_id.as_deref(), Some("n1"));
        assert_eq!(c.store.pool_size, StoreConfig::default().pool_size);
        assert!(matches!(
            parse("[store]\nbackend = \"mysql\"\n"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(parse("[store]\nbackend = \"sqlite\"\n").is_ok());
    }

    #[test]
    fn the_audited_digest_is_of_the_text_that_was_parsed() {
        let text = "[server]\nlisten = \"127.0.0.1:5696\"\n";
        let config = Config::parse(text, Path::new("/nonexistent/akm.toml")).unwrap();
        let expected = hex::encode(crate::primitives::digest::digest(
            &crate::primitives::digest::SHA256,
            text.as_bytes(),
        ));
        assert_eq!(config.sha256, expected);
    }

    #[test]
    fn empty_file_gives_defaults_resolved_against_the_config_dir() {
        let c = parse("").unwrap();
        assert_eq!(c.server.max_message_bytes, 1 << 20);
        assert_eq!(c.store.database(), PathBuf::from("/etc/akm/data/akm.db"));
        assert_eq!(c.store.kek(), PathBuf::from("/etc/akm/data/kek.key"));
        assert_eq!(c.tls.cert, PathBuf::from("/etc/akm/certs/server.crt"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("[server]\nlisten_port = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_port"), "{e}");
        let e = parse("[srever]\n").unwrap_err().to_string();
        assert!(e.contains("srever"), "{e}");
    }

    #[test]
    fn attribute_limits_stay_below_what_stored_records_can_hold() {
        let c = parse("").unwrap();
        assert_eq!(c.attribute_limits(), limits::AttributeLimits::default());
        let c =
            parse("[server]\nmax_attribute_bytes = 1024\nmax_object_attribute_bytes = 1048576\n")
                .unwrap();
        assert_eq!(c.attribute_limits().per_object, 1 << 20);
        for (text, key) in [
            ("max_attribute_bytes = 1023", "server.max_attribute_bytes"),
            (
                "max_object_attribute_bytes = 1048577",
                "server.max_object_attribute_bytes",
            ),
            (
                "max_object_attribute_bytes = 0",
                "server.max_object_attribute_bytes",
            ),
            // One attribute larger than the whole record is a mistake, named.
            (
                "max_attribute_bytes = 300000\nmax_object_attribute_bytes = 200000",
                "server.max_attribute_bytes",
            ),
        ] {
            let e = parse(&format!("[server]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let e = parse("[server]\nlisten = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.listen") && e.contains("0.0.0.0:5696"),
            "{e}"
        );
        let e = parse("[server]\nmax_message_bytes = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.max_message_bytes"), "{e}");
        for key in [
            "max_depth",
            "max_batch_items",
            "max_attributes",
            "max_requests_in_flight",
            "max_locate_items",
        ] {
            let e = parse(&format!("[server]\n{key} = 0\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("server.{key}")), "{e}");
        }
        let e = parse("[server]\nmax_locate_items = 100001\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.max_locate_items"), "{e}");
        let e = parse("[server]\nmax_batch_items = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.max_batch_items"), "{e}");
        let e = parse("[server]\nmax_connections = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.max_connections"), "{e}");
        for (text, key) in [
            ("[server]\nmax_handshaking = 0\n", "server.max_handshaking"),
            (
                "[server]\nmax_handshaking = 8\nmax_handshaking_per_source = 9\n",
                "server.max_handshaking_per_source",
            ),
            (
                "[server]\nframe_timeout_secs = 0\n",
                "server.frame_timeout_secs",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let c = parse("").unwrap();
        assert_eq!(
            (
                c.server.max_handshaking,
                c.server.max_handshaking_per_source
            ),
            (256, 64)
        );
        assert_eq!(c.server.frame_timeout_secs, 10);
        for (text, key) in [
            ("[audit]\ncheckpoint_secs = 61\n", "audit.checkpoint_secs"),
            (
                "[log]\nsyslog_facility = \"kernel\"\n",
                "log.syslog_facility",
            ),
            ("[audit]\ncheckpoint_every = 0\n", "audit.checkpoint_every"),
            (
                "[tls]\nexpiry_warning_days = 4000\n",
                "tls.expiry_warning_days",
            ),
            (
                "[[log.remote]]\ntransport = \"unix\"\naddress = \"x:1\"\n",
                "log.remote.transport",
            ),
            (
                "[[log.remote]]\ntransport = \"udp\"\naddress = \"x\"\n",
                "log.remote.address",
            ),
            (
                "[[log.remote]]\ntransport = \"tls\"\naddress = \"x:1\"\n",
                "log.remote.tls_ca",
            ),
            ("[audit]\nsync = \"never\"\n", "audit.sync"),
            ("[audit]\nsync_interval_ms = 0\n", "audit.sync_interval_ms"),
            (
                "[audit]\nsync_interval_ms = 5000\n",
                "audit.sync_interval_ms",
            ),
            (
                "[[audit.sinks]]\ntransport = \"smtp\"\naddress = \"x:1\"\n",
                "audit.sinks.transport",
            ),
            (
                "[[audit.sinks]]\ntransport = \"udp\"\naddress = \"x\"\n",
                "audit.sinks.address",
            ),
            (
                "[[audit.sinks]]\ntransport = \"tls\"\naddress = \"x:6514\"\n",
                "audit.sinks.tls_ca",
            ),
            (
                "[[audit.sinks]]\ntransport = \"udp\"\naddress = \"x:1\"\nformat = \"xml\"\n",
                "audit.sinks.format",
            ),
            (
                "[[audit.sinks]]\ntransport = \"udp\"\naddress = \"x:1\"\nframing = \"5424\"\n",
                "audit.sinks.framing",
            ),
            (
                "[[audit.sinks]]\ntransport = \"udp\"\naddress = \"x:1\"\nfacility = \"local9\"\n",
                "audit.sinks.facility",
            ),
            (
                "[[audit.sinks]]\ntransport = \"udp\"\naddress = \"x:1\"\napp_name = \"a b\"\n",
                "audit.sinks.app_name",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = parse("[server]\nidle_timeout_secs = \"5\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle_timeout_secs"), "{e}");
    }

    #[test]
    fn access_section_parses_and_names_bad_keys() {
        let c = parse(
            "[access]\nadmin_group = \"akm-admins\"\ndefault_mode = \"group\"\n\
             unknown_operations = []\n\
             [access.groups.HR]\noperations = [\"all\"]\n\
             [access.users.bob]\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(c.access.default_mode, DefaultMode::Group);
        assert_eq!(c.access.groups["HR"].operations, [Grant::All]);
        assert!(!c.access.users["bob"].enabled);
        for (text, key) in [
            ("[access]\ndefault_mode = \"all\"\n", "access.default_mode"),
            ("[access]\nadmin_group = \"\"\n", "access.admin_group"),
            (
                "[access]\nunknown_operations = [\"fly\"]\n",
                "access.unknown_operations",
            ),
            (
                "[access.groups.HR]\noperations = [\"gett\"]\n",
                "access.groups",
            ),
            ("[access.users.x]\ncolour = 1\n", "colour"),
            (
                "[tls]\nclient_ca_fingerprints = [\"abc\"]\n",
                "tls.client_ca_fingerprints",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let fp = "AB:".repeat(31) + "AB";
        assert_eq!(parse_fingerprint(&fp), Some([0xAB; 32]));
    }
}

#[cfg(test)]
mod enum_tests {
    use super::*;

    /// A value outside a fixed set is refused when the file is parsed, with the dotted key,
    /// the value and every accepted value.
    #[test]
    fn a_bad_enum_value_names_the_key_and_the_accepted_values() {
        let parse = |t: &str| {
            Config::parse(t, Path::new("/etc/akm/akm.toml"))
                .unwrap_err()
                .to_string()
        };
        let e = parse("[log]\nlevel = \"info\"\nsyslog_facility = \"kernel\"\n");
        assert!(e.contains("`log.syslog_facility`"), "{e}");
        assert!(e.contains("kernel") && e.contains("`local7`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = parse("[audit]\nsync = \"never\"\n");
        assert!(e.contains("`audit.sync`"), "{e}");
        assert!(
            e.contains("`every-record`") && e.contains("`interval`"),
            "{e}"
        );
        let e = parse("[[audit.sinks]]\ntransport = \"smtp\"\naddress = \"x:1\"\n");
        assert!(
            e.contains("`audit.sinks.transport`") && e.contains("`unix`"),
            "{e}"
        );
        let e = parse("[access]\ndefault_mode = \"all\"\n");
        assert!(
            e.contains("`access.default_mode`") && e.contains("`user-and-group`"),
            "{e}"
        );
        let e = parse("[access.groups.HR]\noperations = [\"read\", \"gett\"]\n");
        assert!(
            e.contains("`access.groups.HR.operations`") && e.contains("`get`"),
            "{e}"
        );
        let e = parse("[server]\nlisten_port = 1\n");
        assert!(e.contains("`server.listen_port`"), "{e}");
    }
}
