//! The PostgreSQL backend of the store (`[store] backend = "postgres"`): connecting (TLS through
//! rustls on ring, verified against `store.tls_ca_file`), the bounded pool of reader
//! connections, the writer's connection with the one write lock every write transaction takes
//! first, the schema and its migrations (`schema`), the backend's SQL (`queries`), and the
//! logical copies to and from a SQLite snapshot that backups and restores use (`copy`).
//!
//! Several akm nodes may share the database: the write lock serializes their write
//! transactions as SQLite serializes its one writer, so every invariant of the store holds
//! across nodes by the same argument (docs/design-postgres.md). Key material arrives wrapped
//! under the KEK and is stored as it is: the database never sees a clear key.

pub mod copy;
pub(super) mod queries;
mod schema;

pub use schema::SCHEMA_VERSION;

use super::StoreError;
use crate::config::{DatabaseTls, StoreConfig};
use postgres::types::ToSql;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a connection attempt may take unless `store.url` says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes connections to the database as configured.
pub(super) struct Connector {
    config: postgres::Config,
    /// `None`: `store.tls = "off"`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The database's name for logs and errors (never the password).
    label: String,
}

/// A configuration error of the PostgreSQL store, naming the key.
fn config_error(key: &str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Config(format!("`{key}` {problem}"))
}

impl Connector {
    /// Checks the settings and prepares TLS; connects nothing yet.
    pub(super) fn new(cfg: &StoreConfig) -> Result<Connector, StoreError> {
        cfg.validate_postgres_settings()
            .map_err(|(key, problem)| config_error(key, problem))?;
        let url = cfg.url.as_deref().unwrap_or_default();
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| config_error("store.url", format!("does not parse: {e}")))?;
        if let Some(file) = &cfg.password_file {
            let password = crate::secret_file::read(file)
                .map_err(|e| config_error("store.password_file", e))?;
            // One line, as operators write it; the driver keeps its own copy.
            let text = password.strip_suffix(b"\n").unwrap_or(&password);
            config.password(text);
        }
        if config.get_connect_timeout().is_none() {
            // A database that does not answer (a black-holed address) must not hold the
            // writer, or a reader, for ever: fail and let the next attempt reconnect.
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let tls = match cfg.tls {
            DatabaseTls::Off => {
                config.ssl_mode(postgres::config::SslMode::Disable);
                None
            }
            DatabaseTls::Require => {
                // Require, never Prefer: a server (or someone in between) that declines TLS
                // must not get a plaintext connection.
                config.ssl_mode(postgres::config::SslMode::Require);
                Some(tls_connector(cfg)?)
            }
        };
        let label = format!(
            "PostgreSQL database {:?}",
            config.get_dbname().unwrap_or("(default)")
        );
        Ok(Connector { config, tls, label })
    }

    /// A new connection.
    pub(super) fn connect(&self) -> Result<PgClient, StoreError> {
        let connected = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        };
        connected.map(PgClient::new).map_err(|e| {
            tracing::error!(database = %self.label, error = %e, "store: cannot connect");
            StoreError::Unreachable(e.to_string())
        })
    }

    /// The database's name for logs.
    pub(super) fn label(&self) -> &str {
        &self.label
    }
}

/// rustls on ring (the build's one provider), trusting only `store.tls_ca_file`.
fn tls_connector(
    cfg: &StoreConfig,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let Some(ca) = cfg.tls_ca_file.as_deref() else {
        return Err(config_error(
            "store.tls_ca_file",
            "is required with tls = \"require\"",
        ));
    };
    let roots =
        crate::tls::pinned_roots(ca, &[]).map_err(|e| config_error("store.tls_ca_file", e))?;
    let client = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error("store.tls", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(client))
}

/// The most statements one connection keeps prepared; past it the cache starts again (the
/// Locate shapes are many, the hot paths' few statements are prepared again at once).
const MAX_PREPARED: usize = 128;

/// A connection with its prepared statements: each SQL text is parsed and planned once per
/// connection, not on every call (which also cost a round trip more). The methods are the
/// client's, taking SQL text.
pub(in crate::store) struct PgClient {
    client: postgres::Client,
    prepared: HashMap<String, postgres::Statement>,
}

/// The parameters of a statement.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgClient {
    fn new(client: postgres::Client) -> PgClient {
        PgClient {
            client,
            prepared: HashMap::new(),
        }
    }

    /// The prepared statement of `sql`, prepared now if it is new on this connection.
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        if self.prepared.len() >= MAX_PREPARED {
            self.prepared.clear();
        }
        let statement = self.client.prepare(sql)?;
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Every row `sql` returns.
    pub(in crate::store) fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    /// The row `sql` returns, if any (more than one is an error).
    pub(in crate::store) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<postgres::Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params)
    }

    /// The one row `sql` returns.
    pub(in crate::store) fn query_one(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<postgres::Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params)
    }

    /// Runs `sql`; how many rows it changed.
    pub(in crate::store) fn execute(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params)
    }

    /// Runs statements without parameters or results (not prepared).
    pub(in crate::store) fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.client.batch_execute(sql)
    }

    /// Whether the connection is gone.
    pub(in crate::store) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The client itself (migrations, which change the schema under no prepared statement).
    fn raw(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// The writer's connection and this node's name: what a write transaction runs on.
pub(super) struct PgConn {
    client: RefCell<PgClient>,
    connector: Arc<Connector>,
    node: Arc<str>,
}

/// How many times the lock statement that begins a write transaction is tried when PostgreSQL
/// answers with a serialization failure or a deadlock (before any write ran).
const BEGIN_ATTEMPTS: usize = 3;

impl PgConn {
    /// This node's name (`store.node_id`).
    pub(super) fn node(&self) -> &str {
        &self.node
    }

    /// The connection, inside the write transaction.
    pub(super) fn client(&self) -> std::cell::RefMut<'_, PgClient> {
        self.client.borrow_mut()
    }

    /// Begins a write transaction and takes the write lock (reconnecting if the connection
    /// was lost, so the writer recovers from a database restart by itself).
    pub(super) fn begin_locked(&self) -> Result<(), StoreError> {
        if self.client.borrow().is_closed() {
            *self.client.borrow_mut() = self.connector.connect()?;
        }
        let mut client = self.client.borrow_mut();
        let mut attempt = 1;
        loop {
            // The lock waits at most as long as SQLite's busy timeout; and a node that stops
            // while holding it (idle in its transaction) is cut off, so it cannot hold every
            // other node's writes for ever.
            let begun = client.batch_execute(
                "BEGIN ISOLATION LEVEL READ COMMITTED; \
                 SET LOCAL lock_timeout = '30s'; \
                 SET LOCAL idle_in_transaction_session_timeout = '60s'; \
                 SELECT id FROM write_lock WHERE id = 1 FOR UPDATE",
            );
            match begun {
                Ok(()) => return Ok(()),
                // Lost since the last group (a database restart): nothing ran; reconnect.
                Err(e) if attempt < BEGIN_ATTEMPTS && connection_lost(&e) => {
                    *client = self.connector.connect()?;
                    attempt += 1;
                }
                Err(e) if attempt < BEGIN_ATTEMPTS && retryable(&e) => {
                    let _ = client.batch_execute("ROLLBACK");
                    attempt += 1;
                }
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK");
                    return Err(e.into());
                }
            }
        }
    }

    /// Runs statements without results (savepoints, COMMIT, ROLLBACK).
    pub(super) fn batch(&self, sql: &str) -> Result<(), postgres::Error> {
        self.client.borrow_mut().batch_execute(sql)
    }

    /// Whether the connection is gone (a write transaction on it is lost with it).
    pub(super) fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    /// Stores this node's audit mark inside the open transaction.
    pub(super) fn store_mark(&self, mark: i64) -> Result<(), StoreError> {
        self.client.borrow_mut().execute(
            "UPDATE audit_mark SET seq = $1 WHERE node = $2",
            &[&mark, &&*self.node],
        )?;
        Ok(())
    }
}

/// Whether `e` means the connection is gone or going: closed, a connection exception (SQLSTATE
/// class 08), or the server shutting down (57P01 to 57P03: a restart, a failover). The
/// statement did not run; a new connection may succeed.
pub(crate) fn connection_lost(e: &postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(|c| {
            let code = c.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        })
}

/// This process's name as a lease holder: `node on host pid N #tag`.
fn instance_name(node: &str) -> String {
    let tag = hex::encode(crate::crypto::random_bytes(4).as_slice());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!(
        "{node} on {} pid {} #{tag}",
        host.trim(),
        std::process::id()
    )
}

/// SQLSTATE 40001 (serialization failure) or 40P01 (deadlock detected): trying again may work.
fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// Reader connections: at most `size` at once; a reader waits for one to come back.
struct Pool {
    idle: Vec<PgClient>,
    /// Connections handed out.
    out: usize,
}

/// How long a read waits for a free connection before it fails.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The store's PostgreSQL side: the reader pool.
pub(super) struct Pg {
    connector: Arc<Connector>,
    /// This node's name (`store.node_id`).
    node: Arc<str>,
    /// This process, as the holder of leases: node id, host, pid and a random tag (a restart
    /// is another holder).
    instance: String,
    pool: Mutex<Pool>,
    returned: Condvar,
    size: usize,
}

impl Pg {
    /// Connects, migrates the schema, and makes this node's audit mark if it has none: the
    /// reader side, the writer's connection, and the newest change-log entry this node wrote.
    pub(super) fn open(cfg: &StoreConfig) -> Result<(Pg, PgConn, i64), StoreError> {
        let connector = Arc::new(Connector::new(cfg)?);
        let mut client = connector.connect()?;
        schema::migrate(client.raw())?;
        let node: Arc<str> = cfg.node_id.as_deref().unwrap_or_default().into();
        let newest: i64 = client
            .query_one(
                "SELECT COALESCE(MAX(seq), 0) FROM change_log WHERE node = $1",
                &[&&*node],
            )?
            .get(0);
        client.execute(
            "INSERT INTO audit_mark (node, seq) VALUES ($1, $2) ON CONFLICT (node) DO NOTHING",
            &[&&*node, &newest],
        )?;
        let size = usize::try_from(cfg.pool_size).unwrap_or(1).max(1);
        let pg = Pg {
            connector: connector.clone(),
            instance: instance_name(&node),
            node: node.clone(),
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                out: 0,
            }),
            returned: Condvar::new(),
            size,
        };
        let writer = PgConn {
            client: RefCell::new(client),
            connector,
            node,
        };
        Ok((pg, writer, newest))
    }

    /// The database's name for logs.
    pub(super) fn label(&self) -> &str {
        self.connector.label()
    }

    /// This node's name (`store.node_id`).
    pub(super) fn node(&self) -> &str {
        &self.node
    }

    /// Reader connections open (handed out or idle) and, of those, idle.
    pub(super) fn pool_counts(&self) -> (usize, usize) {
        let pool = self.lock();
        (pool.out + pool.idle.len(), pool.idle.len())
    }

    /// The most reader connections the pool opens (`store.pool_size`).
    pub(super) fn pool_size(&self) -> usize {
        self.size
    }

    /// This process as a lease holder.
    pub(super) fn instance(&self) -> &str {
        &self.instance
    }

    /// A new connection for a write transaction of its own (a batch).
    pub(super) fn connection(&self) -> Result<PgConn, StoreError> {
        Ok(PgConn {
            client: RefCell::new(self.connector.connect()?),
            connector: self.connector.clone(),
            node: self.node.clone(),
        })
    }

    /// Runs `f` on a reader connection (each statement its own transaction, as SQLite's
    /// readers): from the pool, or a new one while fewer than `pool_size` are out. A read
    /// that finds its connection lost (the database restarted since it was pooled) runs once
    /// more on a new one, so a restart costs the clients no failed read once the database is
    /// back.
    pub(super) fn read<T>(
        &self,
        mut f: impl FnMut(&mut PgClient) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.acquire()?;
        let mut result = f(&mut client);
        if matches!(result, Err(StoreError::Unreachable(_))) {
            // The other pooled connections went with the same restart.
            self.discard_all(client);
            client = self.acquire()?;
            result = f(&mut client);
        }
        self.release(client);
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // The pool's two fields are updated together under the lock: nothing to repair.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acquire(&self) -> Result<PgClient, StoreError> {
        let mut pool = self.lock();
        loop {
            if let Some(client) = pool.idle.pop() {
                pool.out += 1;
                return Ok(client);
            }
            if pool.out < self.size {
                pool.out += 1;
                drop(pool);
                return self.connector.connect().inspect_err(|_| {
                    self.lock().out -= 1;
                    self.returned.notify_one();
                });
            }
            let (next, waited) = self
                .returned
                .wait_timeout(pool, POOL_WAIT)
                .unwrap_or_else(|p| p.into_inner());
            pool = next;
            if waited.timed_out() && pool.idle.is_empty() && pool.out >= self.size {
                return Err(StoreError::Unreachable(format!(
                    "all {} reader connections stayed busy for {} s (store.pool_size)",
                    self.size,
                    POOL_WAIT.as_secs()
                )));
            }
        }
    }

    /// Drops `client` and every idle connection (all lost with the database's restart).
    fn discard_all(&self, client: PgClient) {
        drop(client);
        let mut pool = self.lock();
        pool.out -= 1;
        pool.idle.clear();
        drop(pool);
        self.returned.notify_one();
    }

    /// Gives a connection back (a lost one is dropped: the next reader connects anew).
    fn release(&self, client: PgClient) {
        let mut pool = self.lock();
        pool.out -= 1;
        if !client.is_closed() {
            pool.idle.push(client);
        }
        drop(pool);
        self.returned.notify_one();
    }
}

/// The schema version of the database `cfg` names (0: none yet), changing nothing; with the
/// database's name for messages.
pub(super) fn schema_version(cfg: &StoreConfig) -> Result<(String, i64), StoreError> {
    let connector = Connector::new(cfg)?;
    let mut client = connector.connect()?;
    Ok((connector.label().to_owned(), read_version(client.raw())?))
}

/// Applies the pending migrations of the database `cfg` names; the version it is at now.
pub(super) fn migrate_schema(cfg: &StoreConfig) -> Result<i64, StoreError> {
    let mut client = Connector::new(cfg)?.connect()?;
    schema::migrate(client.raw())?;
    read_version(client.raw())
}

/// The version `schema_version` records, 0 when the table is not there yet.
fn read_version(client: &mut postgres::Client) -> Result<i64, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM schema_version WHERE id = 1", &[])?
        .map_or(0, |row| row.get(0)))
}
