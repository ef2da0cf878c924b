//! `akm.toml` → a validated [`Config`]. Unknown keys are refused by name; every value is
//! checked with a message that names the key and says what to fix; relative paths resolve
//! against the directory of the config file. Opens no sockets and no database.

use serde::Deserialize;
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
        /// The offending key, dotted.
        key: &'static str,
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
    /// The config file's path (set by `load`).
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Most concurrent client connections; more are closed at once.
    pub max_connections: usize,
    /// Seconds a client has to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Seconds a connection may sit idle between requests (or dribble one request).
    pub idle_timeout_secs: u64,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
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
            handshake_timeout_secs: 10,
            idle_timeout_secs: 300,
            max_message_bytes: 1024 * 1024,
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
    /// Level or tracing filter (`info`, `akm=debug`); RUST_LOG overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
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
        fix(&mut self.client.cert);
        fix(&mut self.client.key);
        fix(&mut self.client.ca);
    }

    fn invalid(&self, key: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            key,
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
        if !(1..=3600).contains(&self.server.handshake_timeout_secs) {
            return Err(self.invalid("server.handshake_timeout_secs", "must be 1 to 3600"));
        }
        if !(1..=86_400).contains(&self.server.idle_timeout_secs) {
            return Err(self.invalid("server.idle_timeout_secs", "must be 1 to 86400"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.server.max_message_bytes) {
            return Err(self.invalid(
                "server.max_message_bytes",
                "must be 1024 to 67108864 (64 MiB); the default is 1048576",
            ));
        }
        if !(1..=86_400).contains(&self.crypto.rotation_check_secs) {
            return Err(self.invalid("crypto.rotation_check_secs", "must be 1 to 86400"));
        }
        if self.log.level.trim().is_empty() {
            return Err(self.invalid("log.level", "must not be empty; use \"info\""));
        }
        Ok(())
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
        let e = parse("[server]\nmax_connections = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.max_connections"), "{e}");
        let e = parse("[server]\nidle_timeout_secs = \"5\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle_timeout_secs"), "{e}");
    }
}
