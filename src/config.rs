//! `akm.toml` → a validated [`Config`]. Unknown keys are refused by name; every value is
//! checked with a message that names the key and says what to fix; relative paths resolve
//! against the directory of the config file. Opens no sockets and no database.

pub mod console;
pub mod cron;
pub mod dual_control;
pub mod limits;
pub mod log_level;
pub mod mirror;
pub mod status;

use crate::policy::{self, AccessMode, Account, Operations};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
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
#[derive(Debug, Clone, Deserialize)]
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

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Most concurrent authenticated client connections; a client that authenticates while
    /// they are all taken is closed.
    pub max_connections: usize,
    /// Most authenticated connections of one identity (certificate CN), so one client cannot
    /// take every slot of `max_connections`.
    pub max_connections_per_identity: usize,
    /// Most connections still in their TLS handshake; a new connection beyond it closes the
    /// oldest of them (so idle sockets cannot lock clients out).
    pub max_handshaking: usize,
    /// Most connections in their TLS handshake from one source address; a new one beyond it
    /// closes the oldest from that address.
    pub max_handshaking_per_source: usize,
    /// Seconds a client has to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Seconds a connection may sit idle between requests.
    pub idle_timeout_secs: u64,
    /// Seconds a client has to send the rest of a request once its first byte has arrived, and
    /// to take a response (a client that stops reading is disconnected).
    pub frame_timeout_secs: u64,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Deepest structure nesting accepted in a request (the message itself is depth 1).
    pub max_depth: usize,
    /// Most batch items in one request message.
    pub max_batch_items: usize,
    /// Most attributes in one request message.
    pub max_attributes: usize,
    /// Most requests run at once over all connections; more wait for a slot.
    pub max_requests_in_flight: usize,
    /// Most Unique Identifiers one Locate returns, whatever Maximum Items asks for.
    pub max_locate_items: usize,
    /// Most cost units one request message may be estimated at (about a millisecond of one
    /// core each; README "Security model"); a dearer message is refused before it runs.
    pub max_request_cost: usize,
    /// Most PBKDF2 iterations one Derive Key item may ask for.
    pub max_pbkdf2_iterations: usize,
    /// Most bytes of response payloads one request message may make.
    pub max_response_bytes: usize,
    /// Largest stored encoding of one attribute a client may set, in bytes.
    pub max_attribute_bytes: usize,
    /// Largest stored record (all of an object's attributes) that client-supplied attributes
    /// may make, in bytes.
    pub max_object_attribute_bytes: usize,
    /// Seconds to let in-flight requests finish on SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Initialize (KEK, development PKI) on `akm serve` when the data directory is empty.
    pub auto_init: bool,
    /// Offer the Interop operation, which the OASIS test cases use to mark their start and
    /// end; KMIP 2.1 §6.1.26 forbids it on a production server.
    pub interop_operations: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:5696".into(),
            max_connections: 1024,
            max_connections_per_identity: 256,
            max_handshaking: 256,
            max_handshaking_per_source: 64,
            handshake_timeout_secs: 10,
            idle_timeout_secs: 300,
            frame_timeout_secs: 10,
            max_message_bytes: 1024 * 1024,
            max_depth: 64,
            max_batch_items: 1024,
            max_attributes: 1024,
            max_requests_in_flight: 256,
            max_locate_items: limits::DEFAULT_MAX_LOCATE_ITEMS,
            max_request_cost: limits::DEFAULT_MAX_REQUEST_COST as usize,
            max_pbkdf2_iterations: limits::DEFAULT_MAX_PBKDF2_ITERATIONS as usize,
            max_response_bytes: limits::DEFAULT_MAX_RESPONSE_BYTES,
            max_attribute_bytes: limits::DEFAULT_MAX_ATTRIBUTE_BYTES,
            max_object_attribute_bytes: limits::DEFAULT_MAX_OBJECT_ATTRIBUTE_BYTES,
            shutdown_grace_secs: 30,
            auto_init: false,
            interop_operations: false,
        }
    }
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Directory of the development PKI written by `akm init`.
    pub certs_dir: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM, mode 0600).
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
    /// Certificate revocation lists (PEM), checked for client certificates.
    pub crls: Vec<PathBuf>,
    /// Names put in the server certificate by `akm init` (besides localhost and 127.0.0.1).
    pub server_names: Vec<String>,
    /// If not empty, only the CAs of `client_ca` with one of these SHA-256 fingerprints (hex,
    /// colons allowed) are trusted for client certificates.
    pub client_ca_fingerprints: Vec<String>,
    /// Warn (log, audit record, status page, `/metrics`) this many days before the server
    /// certificate or an issued client certificate expires; 0 warns only once expired.
    pub expiry_warning_days: u32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certs_dir: "certs".into(),
            cert: "certs/server.crt".into(),
            key: "certs/server.key".into(),
            client_ca: "certs/ca.crt".into(),
            crls: Vec::new(),
            server_names: Vec::new(),
            client_ca_fingerprints: Vec::new(),
            expiry_warning_days: 30,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory holding the database and the KEK.
    pub data_dir: PathBuf,
    /// The KEK file (32 bytes, mode 0600); defaults to `<data_dir>/kek.key`.
    pub kek_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: "data".into(),
            kek_file: None,
        }
    }
}

impl StoreConfig {
    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("akm.db")
    }
    /// The KEK file.
    pub fn kek(&self) -> PathBuf {
        self.kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kek.key"))
    }
    /// The sealed KEK file: beside the KEK file, `kek.sealed` (`akm kek seal` writes it).
    pub fn sealed_kek(&self) -> PathBuf {
        self.kek().with_extension("sealed")
    }
}

/// `[crypto]`: how keys may leave akm and how often scheduled rotation runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CryptoConfig {
    /// PCI mode: symmetric keys leave akm only wrapped under another key; a Get without a Key
    /// Wrapping Specification is refused.
    pub pci_mode: bool,
    /// Seconds between checks for keys due for scheduled rotation (Rotate Automatic).
    pub rotation_check_secs: u64,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        CryptoConfig {
            pci_mode: false,
            rotation_check_secs: 60,
        }
    }
}

/// `[backup]`: where `akm backup` and scheduled backups write, how often, how many to keep.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Clone, Debug, serde::Deserialize)]
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

fn default_port() -> u16 {
    22
}

fn default_connect_timeout() -> u64 {
    15
}

fn default_transfer_timeout() -> u64 {
    600
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

    /// The backup log: `backup.log` in the backup directory.
    pub fn log(&self, store: &StoreConfig) -> PathBuf {
        self.dir(store).join("backup.log")
    }
}

/// `[dual_control]`: operations that need a second administrator's authorization window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DualControlConfig {
    /// Guarded operations: any of `destroy`, `kek-rotate`, `backup`, `policy` (set or
    /// delete users and groups, set key policies), `create` (Create, Create Key Pair,
    /// Register, Derive Key, Re-key), `revoke`, `attributes` (Add/Modify/Delete/Set
    /// Attribute), `export` (clear Get of a secret key, PKCS#12 too), `unseal`, `restore`
    /// (the offline `akm restore`), or `all`. Empty (the default): none.
    pub operations: Vec<String>,
    /// Longest authorization window, in minutes (also the default length).
    pub window_minutes: i64,
    /// Separation of duties: administrators may read key material (Get) only if their user
    /// or group records also grant it as key users and the key's policy admits them.
    pub separate_duties: bool,
}

impl Default for DualControlConfig {
    fn default() -> Self {
        DualControlConfig {
            operations: Vec::new(),
            window_minutes: 15,
            separate_duties: false,
        }
    }
}

/// `[client]`: what `akm key ...` connects with unless flags say otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Server address, host:port.
    pub server: String,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Client private key (PEM).
    pub key: PathBuf,
    /// CA that signed the server certificate (PEM).
    pub ca: PathBuf,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            server: "localhost:5696".into(),
            cert: "certs/admin.crt".into(),
            key: "certs/admin.key".into(),
            ca: "certs/ca.crt".into(),
        }
    }
}

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

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
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
    /// When records reach the disk: `every-record` (each request's records are fdatasync'd
    /// before its response) or `interval` (written before the response, fdatasync'd at most
    /// `sync_interval_ms` later).
    pub sync: String,
    /// With `sync = "interval"`: the longest a written record waits for its fdatasync, in
    /// milliseconds (1 to 1000).
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
            sync: "every-record".into(),
            sync_interval_ms: 50,
            sinks: Vec::new(),
        }
    }
}

/// `[access]`: who may do what (see the README's access control section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Members of this group (certificate OU) administer keys, users, groups and policy.
    pub admin_group: String,
    /// Access mode of new keys when the request names none.
    pub default_mode: String,
    /// Answer Item Not Found rather than Permission Denied for keys the caller may not use.
    pub hide_existence: bool,
    /// What callers named by no user or group record may do; empty denies them.
    pub unknown_operations: Vec<String>,
    /// User records (by certificate CN) written to the database at every start.
    pub users: BTreeMap<String, AccountConfig>,
    /// Group records (by certificate OU) written to the database at every start.
    pub groups: BTreeMap<String, AccountConfig>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            admin_group: "admins".into(),
            default_mode: "user".into(),
            hide_existence: false,
            unknown_operations: vec!["all".into()],
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

/// `[[audit.sinks]]`: one syslog receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `udp`, `tcp`, `tls` or `unix`.
    pub transport: String,
    /// host:port, or the socket path for `unix`.
    pub address: String,
    /// `rfc5424` (default) or `rfc3164`.
    #[serde(default = "default_framing")]
    pub framing: String,
    /// `kv` (default), `cef` or `leef`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Syslog APP-NAME; default `akm-audit`.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Syslog facility name; default `authpriv`.
    #[serde(default = "default_facility")]
    pub facility: String,
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

fn default_framing() -> String {
    "rfc5424".into()
}
fn default_format() -> String {
    "kv".into()
}
fn default_app_name() -> String {
    "akm-audit".into()
}
fn default_facility() -> String {
    "authpriv".into()
}
fn default_queue_records() -> usize {
    100_000
}

/// Syslog facility names and numbers (RFC 5424 §6.2.1).
const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The facility number of a facility name.
pub fn facility_code(name: &str) -> Option<u8> {
    FACILITIES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
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

/// User or group records by name.
pub type NamedAccounts = Vec<(String, Account)>;

/// `[access.users.NAME]`, `[access.groups.NAME]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// A disabled user may do nothing; a disabled group grants nothing. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Granted key operations (names, `read`, `all`). Default none.
    #[serde(default)]
    pub operations: Vec<String>,
}

fn yes() -> bool {
    true
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
            message: e.to_string().trim().replace('\n', " "),
        })?;
        config.path = path.to_owned();
        config.sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()));
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
            if s.transport == "unix" {
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
        if !(1..=3600).contains(&self.server.handshake_timeout_secs) {
            return Err(self.invalid("server.handshake_timeout_secs", "must be 1 to 3600"));
        }
        if !(1..=86_400).contains(&self.server.idle_timeout_secs) {
            return Err(self.invalid("server.idle_timeout_secs", "must be 1 to 86400"));
        }
        if !(1..=3600).contains(&self.server.frame_timeout_secs) {
            return Err(self.invalid(
                "server.frame_timeout_secs",
                "must be 1 to 3600; the default is 10",
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.server.max_message_bytes) {
            return Err(self.invalid(
                "server.max_message_bytes",
                "must be 1024 to 67108864 (64 MiB); the default is 1048576",
            ));
        }
        self.validate_request_limits()?;
        if !(1..=86_400).contains(&self.crypto.rotation_check_secs) {
            return Err(self.invalid("crypto.rotation_check_secs", "must be 1 to 86400"));
        }
        if let Err(bad) = dual_control::expand(&self.dual_control.operations) {
            return Err(self.invalid(
                "dual_control.operations",
                format!(
                    "{bad:?} is not one of {}, or \"all\"",
                    dual_control::GUARDABLE.join(", ")
                ),
            ));
        }
        if !(1..=1440).contains(&self.dual_control.window_minutes) {
            return Err(self.invalid("dual_control.window_minutes", "must be 1 to 1440"));
        }
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
            if !(1..=600).contains(&t.connect_timeout_secs) {
                return Err(self.invalid("backup.sftp.connect_timeout_secs", "must be 1 to 600"));
            }
            if !(1..=86_400).contains(&t.transfer_timeout_secs) {
                return Err(self.invalid(
                    "backup.sftp.transfer_timeout_secs",
                    "must be 1 to 86400 (seconds one upload may take)",
                ));
            }
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
        if facility_code(&self.log.syslog_facility).is_none() {
            return Err(self.invalid(
                "log.syslog_facility",
                format!(
                    "is {:?}; use a syslog facility such as \"daemon\" or \"local1\"",
                    self.log.syslog_facility
                ),
            ));
        }
        self.validate_access()?;
        self.log
            .remote
            .iter()
            .try_for_each(|r| self.validate_remote_log(r))?;
        if self.tls.expiry_warning_days > 3650 {
            return Err(self.invalid(
                "tls.expiry_warning_days",
                "must be 0 to 3650 (days before expiry); the default is 30",
            ));
        }
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

    /// The budget of connections still in their TLS handshake, and its share per address.
    fn validate_handshake_budget(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if !(1..=65_536).contains(&s.max_handshaking) {
            return Err(self.invalid(
                "server.max_handshaking",
                "must be 1 to 65536; the default is 256",
            ));
        }
        // Above server.max_connections it simply does not bind, so it is not refused there
        // (an operator lowering max_connections need not touch it).
        if !(1..=65_536).contains(&s.max_connections_per_identity) {
            return Err(self.invalid(
                "server.max_connections_per_identity",
                "must be 1 to 65536; the default is 256",
            ));
        }
        if !(1..=s.max_handshaking).contains(&s.max_handshaking_per_source) {
            return Err(self.invalid(
                "server.max_handshaking_per_source",
                format!(
                    "must be 1 to server.max_handshaking ({}); the default is 64",
                    s.max_handshaking
                ),
            ));
        }
        Ok(())
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

    /// The per-request and in-flight limits: each must be at least 1 and at most a cap that
    /// keeps one request's cost bounded.
    fn validate_request_limits(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let checks: [(&'static str, usize, usize, &str); 8] = [
            ("server.max_depth", s.max_depth, 256, "the default is 64"),
            (
                "server.max_batch_items",
                s.max_batch_items,
                crate::kmip::MAX_BATCH_ITEMS,
                "the default is 1024",
            ),
            (
                "server.max_attributes",
                s.max_attributes,
                100_000,
                "the default is 1024",
            ),
            (
                "server.max_requests_in_flight",
                s.max_requests_in_flight,
                65_536,
                "the default is 256",
            ),
            (
                "server.max_locate_items",
                s.max_locate_items,
                limits::MAX_LOCATE_ITEMS_CAP,
                "the default is 10000",
            ),
            (
                "server.max_request_cost",
                s.max_request_cost,
                1_000_000,
                "the default is 4000",
            ),
            (
                "server.max_pbkdf2_iterations",
                s.max_pbkdf2_iterations,
                limits::MAX_PBKDF2_ITERATIONS_CAP as usize,
                "the default is 1000000",
            ),
            (
                "server.max_response_bytes",
                s.max_response_bytes,
                64 << 20,
                "the default is 4194304 (4 MiB)",
            ),
        ];
        for (key, value, max, default) in checks {
            if !(1..=max).contains(&value) {
                return Err(self.invalid(key, format!("must be 1 to {max}; {default}")));
            }
        }
        self.validate_attribute_limits()
    }

    /// The limits on stored attribute bytes: each within bounds that keep every record akm
    /// writes well below what its stored-record decoder reads (see `ops::stored_size`), and the
    /// per-attribute limit no larger than the per-object one.
    fn validate_attribute_limits(&self) -> Result<(), ConfigError> {
        use limits::{MAX_ATTRIBUTE_BYTES_CAP as MAX, MIN_ATTRIBUTE_BYTES as MIN};
        let s = &self.server;
        for (key, value, default) in [
            (
                "server.max_attribute_bytes",
                s.max_attribute_bytes,
                limits::DEFAULT_MAX_ATTRIBUTE_BYTES,
            ),
            (
                "server.max_object_attribute_bytes",
                s.max_object_attribute_bytes,
                limits::DEFAULT_MAX_OBJECT_ATTRIBUTE_BYTES,
            ),
        ] {
            if !(MIN..=MAX).contains(&value) {
                return Err(self.invalid(
                    key,
                    format!("must be {MIN} to {MAX} (1 MiB); the default is {default}"),
                ));
            }
        }
        if s.max_attribute_bytes > s.max_object_attribute_bytes {
            return Err(self.invalid(
                "server.max_attribute_bytes",
                format!(
                    "is {} but server.max_object_attribute_bytes is {}: one attribute cannot \
                     be larger than the object's whole record; lower it or raise the other",
                    s.max_attribute_bytes, s.max_object_attribute_bytes
                ),
            ));
        }
        Ok(())
    }

    /// The limits on stored attribute bytes, for the operations.
    pub fn attribute_limits(&self) -> limits::AttributeLimits {
        limits::AttributeLimits {
            per_attribute: self.server.max_attribute_bytes,
            per_object: self.server.max_object_attribute_bytes,
        }
    }

    fn validate_audit(&self) -> Result<(), ConfigError> {
        let a = &self.audit;
        if !(1..=1_000_000).contains(&a.checkpoint_every) {
            return Err(self.invalid("audit.checkpoint_every", "must be 1 to 1000000"));
        }
        if !(1..=60).contains(&a.checkpoint_secs) {
            return Err(self.invalid(
                "audit.checkpoint_secs",
                "must be 1 to 60 (a checkpoint at least every minute)",
            ));
        }
        if !matches!(a.sync.as_str(), "every-record" | "interval") {
            return Err(self.invalid("audit.sync", "must be \"every-record\" or \"interval\""));
        }
        if !(1..=1000).contains(&a.sync_interval_ms) {
            return Err(self.invalid("audit.sync_interval_ms", "must be 1 to 1000"));
        }
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

    fn validate_sink(&self, s: &SinkConfig) -> Result<(), ConfigError> {
        match s.transport.as_str() {
            "udp" | "tcp" | "tls" => {
                let port = s.address.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
                if !matches!(port, Some(Ok(p)) if p != 0) {
                    return Err(self.invalid(
                        "audit.sinks.address",
                        format!(
                            "is {:?}; give host:port such as \"127.0.0.1:514\"",
                            s.address
                        ),
                    ));
                }
            }
            "unix" => {
                if s.address.is_empty() {
                    return Err(self.invalid(
                        "audit.sinks.address",
                        "must be a socket path such as \"/dev/log\"",
                    ));
                }
            }
            other => {
                return Err(self.invalid(
                    "audit.sinks.transport",
                    format!("is {other:?}; use \"udp\", \"tcp\", \"tls\" or \"unix\""),
                ))
            }
        }
        if s.transport == "tls"
            && (s.tls_ca.is_none() || s.tls_cert.is_none() || s.tls_key.is_none())
        {
            return Err(self.invalid(
                "audit.sinks.tls_ca",
                "a tls sink needs tls_ca, tls_cert and tls_key",
            ));
        }
        if !["rfc5424", "rfc3164"].contains(&s.framing.as_str()) {
            return Err(self.invalid(
                "audit.sinks.framing",
                format!("is {:?}; use \"rfc5424\" or \"rfc3164\"", s.framing),
            ));
        }
        if !["kv", "cef", "leef"].contains(&s.format.as_str()) {
            return Err(self.invalid(
                "audit.sinks.format",
                format!("is {:?}; use \"kv\", \"cef\" or \"leef\"", s.format),
            ));
        }
        if facility_code(&s.facility).is_none() {
            return Err(self.invalid(
                "audit.sinks.facility",
                format!(
                    "is {:?}; use a syslog facility such as \"authpriv\" or \"local0\"",
                    s.facility
                ),
            ));
        }
        let app_ok = (1..=48).contains(&s.app_name.len())
            && s.app_name.bytes().all(|b| b.is_ascii_graphic());
        if !app_ok {
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

    fn validate_remote_log(&self, r: &RemoteLogConfig) -> Result<(), ConfigError> {
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

    fn validate_access(&self) -> Result<(), ConfigError> {
        let a = &self.access;
        if a.admin_group.trim().is_empty() {
            return Err(self.invalid("access.admin_group", "must name a group (certificate OU)"));
        }
        if AccessMode::parse(&a.default_mode).is_none() {
            return Err(self.invalid(
                "access.default_mode",
                format!(
                    "is {:?}; use \"any\", \"group\", \"user\" or \"user-and-group\"",
                    a.default_mode
                ),
            ));
        }
        if let Err(bad) = Operations::parse(&a.unknown_operations) {
            return Err(self.invalid("access.unknown_operations", unknown_op(&bad)));
        }
        for (key, table) in [("access.users", &a.users), ("access.groups", &a.groups)] {
            for (name, acct) in table {
                if name.is_empty() {
                    return Err(self.invalid(key, "has an entry with an empty name"));
                }
                if let Err(bad) = Operations::parse(&acct.operations) {
                    return Err(
                        self.invalid(key, format!("{name}.operations: {}", unknown_op(&bad)))
                    );
                }
            }
        }
        Ok(())
    }

    /// The access settings (validated).
    pub fn access_settings(&self) -> policy::Settings {
        let a = &self.access;
        let unknown = Operations::parse(&a.unknown_operations).unwrap_or_default();
        policy::Settings {
            admin_group: a.admin_group.clone(),
            unknown: Some(unknown).filter(|o| *o != Operations::none()),
            hide_existence: a.hide_existence,
            default_mode: AccessMode::parse(&a.default_mode).unwrap_or(AccessMode::User),
        }
    }

    /// The user records (`users`) and group records (`groups`) the config declares.
    pub fn declared_accounts(&self) -> (NamedAccounts, NamedAccounts) {
        let convert = |table: &BTreeMap<String, AccountConfig>| {
            table
                .iter()
                .map(|(name, a)| {
                    let account = Account {
                        enabled: a.enabled,
                        operations: Operations::parse(&a.operations).unwrap_or_default(),
                    };
                    (name.clone(), account)
                })
                .collect()
        };
        (convert(&self.access.users), convert(&self.access.groups))
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

fn unknown_op(bad: &str) -> String {
    let names: Vec<&str> = policy::GRANTABLE.iter().map(|(n, _)| *n).collect();
    format!(
        "has unknown operation {bad:?}; use \"all\", \"read\" or some of {}",
        names.join(", ")
    )
}

/// A SHA-256 fingerprint written as 64 hex digits, colons allowed.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex_digits: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(hex_digits).ok()?;
    bytes.try_into().ok()
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

    #[test]
    fn the_audited_digest_is_of_the_text_that_was_parsed() {
        let text = "[server]\nlisten = \"127.0.0.1:5696\"\n";
        let config = Config::parse(text, Path::new("/nonexistent/akm.toml")).unwrap();
        let expected = hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()));
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
        // Whatever the configuration, a record at the limit decodes with room to spare.
        const { assert!(2 * limits::MAX_ATTRIBUTE_BYTES_CAP <= crate::ops::STORED_RECORD_MAX_BYTES) };
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
        let s = c.access_settings();
        assert_eq!(s.admin_group, "akm-admins");
        assert_eq!(s.default_mode, AccessMode::Group);
        assert_eq!(s.unknown, None);
        let (users, groups) = c.declared_accounts();
        assert_eq!(users[0].0, "bob");
        assert!(!users[0].1.enabled);
        assert_eq!(groups[0].1.operations, Operations::all());
        assert_eq!(
            parse("").unwrap().access_settings(),
            policy::Settings::default()
        );
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
