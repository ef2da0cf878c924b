//! The schema version of the configured store, SQLite file or PostgreSQL database, and bringing
//! it up to this binary's (`akm store migrate`), without starting the writer or needing the
//! KEK: migrations change tables, never key material.

use super::{open_connection, postgres, restrict_permissions, schema, StoreError};
use crate::config::{StoreBackend, StoreConfig};
use rusqlite::OpenFlags;

/// Where a store's schema stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The database, as logs name it (the SQLite file, or the PostgreSQL database's name).
    pub database: String,
    /// The version the database holds (0: a new database).
    pub version: i64,
    /// The version this binary writes.
    pub supported: i64,
}

impl SchemaStatus {
    /// Whether migrations are waiting to be applied.
    pub fn pending(&self) -> bool {
        self.version < self.supported
    }

    /// A database newer than this binary is refused, as opening the store refuses it.
    fn refuse_newer(self) -> Result<SchemaStatus, StoreError> {
        if self.version > self.supported {
            return Err(StoreError::SchemaTooNew {
                found: self.version,
                supported: self.supported,
            });
        }
        Ok(self)
    }
}

/// The schema version of the store `config` names, changing nothing (a SQLite file that does
/// not exist yet is at version 0 and is not created).
pub fn schema_status(config: &StoreConfig) -> Result<SchemaStatus, StoreError> {
    let status = match config.backend {
        StoreBackend::Sqlite => {
            let path = config.database();
            let version = if path.exists() {
                let conn = open_connection(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                conn.query_row("PRAGMA user_version", [], |r| r.get(0))?
            } else {
                0
            };
            SchemaStatus {
                database: format!("SQLite database {}", path.display()),
                version,
                supported: schema::SCHEMA_VERSION,
            }
        }
        StoreBackend::Postgres => {
            let (database, version) = postgres::schema_version(config)?;
            SchemaStatus {
                database,
                version,
                supported: postgres::SCHEMA_VERSION,
            }
        }
    };
    status.refuse_newer()
}

/// Applies the pending migrations of the store `config` names (creating a SQLite file that
/// does not exist); where it stood before, and the version it is at now.
pub fn migrate_schema(config: &StoreConfig) -> Result<(SchemaStatus, i64), StoreError> {
    let before = schema_status(config)?;
    let after = match config.backend {
        StoreBackend::Sqlite => {
            let path = config.database();
            // As the first start makes it (private); if that fails, opening the file says why.
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&config.data_dir);
            let mut conn = open_connection(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            )?;
            schema::migrate(&mut conn)?;
            restrict_permissions(&path);
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))?
        }
        StoreBackend::Postgres => postgres::migrate_schema(config)?,
    };
    Ok((before, after))
}
