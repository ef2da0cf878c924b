//! `[store]`: which database holds the keys (the SQLite file, or a PostgreSQL database shared
//! by several akm nodes) and where the KEK lives.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `store.backend`: which database engine holds the keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The embedded SQLite file `<data_dir>/akm.db`.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`store.url`), which several akm nodes may share.
    Postgres,
}

/// `store.tls`: TLS to the PostgreSQL server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseTls {
    /// TLS, the server's certificate verified against `store.tls_ca_file` and the host name.
    #[default]
    Require,
    /// No TLS: only for a Unix socket or loopback.
    Off,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory holding the database (SQLite) and the KEK.
    pub data_dir: PathBuf,
    /// The KEK file (32 bytes, mode 0600); defaults to `<data_dir>/kek.key`.
    pub kek_file: Option<PathBuf>,
    /// Which database engine holds the keys.
    pub backend: StoreBackend,
    /// The PostgreSQL connection string (`backend = "postgres"`): `postgresql://user@host/db`
    /// or `host=... user=... dbname=...`, without a password (refused: see `password_file`).
    pub url: Option<String>,
    /// A file (mode 0600, refused when others can read it) holding the database password,
    /// when the server asks for one.
    pub password_file: Option<PathBuf>,
    /// TLS to the PostgreSQL server.
    pub tls: DatabaseTls,
    /// The CA certificate(s), PEM, that the PostgreSQL server's certificate must chain to.
    pub tls_ca_file: Option<PathBuf>,
    /// PostgreSQL connections each node keeps for reads (the writer has one more).
    pub pool_size: u32,
    /// This node's name among the akm nodes sharing a PostgreSQL database: the change-log
    /// entries it writes and its audit mark are its own.
    pub node_id: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: "data".into(),
            kek_file: None,
            backend: StoreBackend::Sqlite,
            url: None,
            password_file: None,
            tls: DatabaseTls::Require,
            tls_ca_file: None,
            pool_size: 8,
            node_id: None,
        }
    }
}

/// The most PostgreSQL reader connections one node may keep.
pub const MAX_POOL_SIZE: u32 = 256;

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

    /// This node's id among the nodes sharing a PostgreSQL database; `None` on SQLite.
    pub fn shared_node_id(&self) -> Option<&str> {
        match self.backend {
            StoreBackend::Postgres => self.node_id.as_deref(),
            StoreBackend::Sqlite => None,
        }
    }

    /// Checks the PostgreSQL settings (nothing to check for SQLite), as (key, problem and
    /// fix). `mirrored`: the configuration has a `[mirror]` section.
    pub fn validate(&self, mirrored: bool) -> Result<(), (&'static str, String)> {
        if self.backend == StoreBackend::Sqlite {
            return Ok(());
        }
        self.validate_postgres_settings()?;
        if mirrored {
            return Err((
                "store.backend",
                "is \"postgres\": mirroring is not supported with a shared database (every \
                 akm node on it already sees every change); remove [mirror], or use \
                 backend = \"sqlite\""
                    .into(),
            ));
        }
        Ok(())
    }

    /// The settings a PostgreSQL store needs, each checked on its own.
    pub fn validate_postgres_settings(&self) -> Result<(), (&'static str, String)> {
        let url = self.url.as_deref().unwrap_or("");
        if url.trim().is_empty() {
            return Err((
                "store.url",
                "is required with backend = \"postgres\": give the connection string, such as \
                 \"postgresql://akm@db.example.net/akm\""
                    .into(),
            ));
        }
        match url.parse::<postgres::Config>() {
            Err(e) => {
                return Err((
                    "store.url",
                    format!(
                        "does not parse ({e}); write \"postgresql://user@host:5432/database\" or \
                         \"host=... user=... dbname=...\""
                    ),
                ))
            }
            // The configuration file is readable by the operators and the service: the
            // password goes in a file of its own, kept private.
            Ok(parsed) if parsed.get_password().is_some() => {
                return Err((
                    "store.url",
                    "holds a password: remove it from the URL and put it in a file of mode \
                     0600 named by store.password_file"
                        .into(),
                ))
            }
            Ok(_) => {}
        }
        match self.node_id.as_deref() {
            Some(id) if valid_node_id(id) => {}
            Some(id) => {
                return Err((
                    "store.node_id",
                    format!("is {id:?}; use 1 to 64 letters, digits, '-', '_' or '.'"),
                ))
            }
            None => {
                return Err((
                    "store.node_id",
                    "is required with backend = \"postgres\": give each akm node on the \
                     database its own name, such as its host name"
                        .into(),
                ))
            }
        }
        if self.tls == DatabaseTls::Require && self.tls_ca_file.is_none() {
            return Err((
                "store.tls_ca_file",
                "is required with tls = \"require\" (the default): give the PEM file of the CA \
                 that signed the PostgreSQL server's certificate, or set tls = \"off\" for a \
                 Unix socket or loopback"
                    .into(),
            ));
        }
        if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
            return Err((
                "store.pool_size",
                format!(
                    "is {}; must be 1 to {MAX_POOL_SIZE}; the default is {}",
                    self.pool_size,
                    StoreConfig::default().pool_size
                ),
            ));
        }
        Ok(())
    }
}

/// A node name: 1 to 64 of letters, digits, `-`, `_`, `.`.
fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres() -> StoreConfig {
        StoreConfig {
            backend: StoreBackend::Postgres,
            url: Some("postgresql://akm@db.example.net/akm".into()),
            tls_ca_file: Some("/etc/akm/db-ca.pem".into()),
            node_id: Some("node-1".into()),
            ..StoreConfig::default()
        }
    }

    fn refused_key(c: &StoreConfig, mirrored: bool) -> &'static str {
        c.validate(mirrored).unwrap_err().0
    }

    #[test]
    fn sqlite_needs_no_postgres_settings() {
        assert_eq!(StoreConfig::default().validate(true), Ok(()));
    }

    #[test]
    fn each_missing_or_wrong_postgres_setting_is_named() {
        assert_eq!(postgres().validate_postgres_settings(), Ok(()));
        let c = StoreConfig {
            url: None,
            ..postgres()
        };
        assert_eq!(refused_key(&c, false), "store.url");
        let c = StoreConfig {
            url: Some("postgresql://akm@host:notaport/db".into()),
            ..postgres()
        };
        assert_eq!(refused_key(&c, false), "store.url");
        for with_password in [
            "postgresql://akm:s3cret@db.example.net/akm",
            "host=db.example.net user=akm password=s3cret dbname=akm",
        ] {
            let c = StoreConfig {
                url: Some(with_password.into()),
                ..postgres()
            };
            let (key, problem) = c.validate(false).unwrap_err();
            assert_eq!(key, "store.url");
            assert!(problem.contains("store.password_file"), "{problem}");
            assert!(!problem.contains("s3cret"), "{problem}");
        }
        let c = StoreConfig {
            node_id: None,
            ..postgres()
        };
        assert_eq!(refused_key(&c, false), "store.node_id");
        let c = StoreConfig {
            node_id: Some("a b".into()),
            ..postgres()
        };
        assert_eq!(refused_key(&c, false), "store.node_id");
        let c = StoreConfig {
            tls_ca_file: None,
            ..postgres()
        };
        assert_eq!(refused_key(&c, false), "store.tls_ca_file");
        let c = StoreConfig {
            tls_ca_file: None,
            tls: DatabaseTls::Off,
            ..postgres()
        };
        assert_eq!(c.validate_postgres_settings(), Ok(()));
        let c = StoreConfig {
            pool_size: 0,
            ..postgres()
        };
        let (key, problem) = c.validate(false).unwrap_err();
        assert_eq!(key, "store.pool_size");
        assert!(problem.contains("the default is 8"), "{problem}");
    }

    #[test]
    fn postgres_with_mirroring_is_refused() {
        let (key, problem) = postgres().validate(true).unwrap_err();
        assert_eq!(key, "store.backend");
        assert!(problem.contains("remove [mirror]"), "{problem}");
        assert_eq!(postgres().validate(false), Ok(()));
    }
}
