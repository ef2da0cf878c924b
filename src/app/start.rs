//! Opening a node from its configuration: the crypto self-test, the KEK (sealed or from a
//! development key file), the store, the audit journal and its sinks, the audit records of a
//! restart (the configuration in force, changes whose records a crash may have lost), the
//! accounts the configuration declares, and the [`Ctx`] built from them; also the listener's
//! settings. The daemon serves what this opens.

use super::{apply_declared_accounts, config_event, CtxBuilder};
use crate::audit::signer::{Signer, SignerError};
use crate::audit::sink::Sink;
use crate::audit::{Audit, AuditError, AuditEvent, JournalSettings, Outcome};
use crate::config::Config;
use crate::crypto;
use crate::crypto::rotate::KekFiles;
use crate::crypto::slot::KekSlot;
use crate::ops::Ctx;
use crate::server::{ConnLimits, Settings};
use crate::store::Store;
use crate::ttlv::Limits;
use crate::{pki, secret_file};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Creating a directory failed.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The KEK or a crypto self-test failed.
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    /// The cryptographic module is not what the configuration or the FIPS build requires.
    #[error("refusing to start: {0}")]
    CryptoModule(String),
    /// The PKI could not be generated.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// The database could not be opened.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// `akm init` on a PostgreSQL database that nodes already serve.
    #[error(
        "the PostgreSQL database already holds keys wrapped under KEK {0}: a new node joins \
         with that KEK rather than a new one: copy kek.key (or kek.sealed, and unseal with \
         the custodians' shares), the certificates and akm.toml from a node serving it, set \
         its own store.node_id, and run `akm serve` without `akm init`"
    )]
    JoinNotInit(String),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The async runtime could not be started.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// A file or directory of the node exists but cannot be looked at (never taken for
    /// "absent", which would make a first start write over a node it cannot see).
    #[error("cannot read {path}: {source}; run akm as the user that owns the data directory (the package's is akm; root may too) or fix its permissions")]
    Unreadable {
        /// The file or directory.
        path: String,
        /// The cause (permission denied).
        source: std::io::Error,
    },
    /// Something already exists where `akm init` would write.
    #[error("{0} already exists; akm init never overwrites keys or certificates")]
    Exists(String),
    /// A secret file is unusable.
    #[error(transparent)]
    Secret(#[from] secret_file::SecretFileError),
    /// Mirroring could not start.
    #[error(transparent)]
    Mirror(#[from] crate::mirror::MirrorError),
    /// A check of the configuration against the files it names failed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The audit signing key is unusable.
    #[error(transparent)]
    AuditKey(#[from] SignerError),
    /// The audit journal cannot be opened or written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// An audit sink's thread could not be started.
    #[error("cannot start an audit sink: {0}")]
    Sink(std::io::Error),
    /// The status listener (`[status]`) could not start.
    #[error(transparent)]
    Status(#[from] crate::status::StatusError),
    /// The management console (`[console]`) could not start.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
}

/// Creates `path` and its parents, readable by the owner only.
pub fn create_private_dir(path: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StartError::Dir {
            path: path.display().to_string(),
            source,
        })
}

/// The KEK as the server starts with it: sealed when `kek.sealed` exists (custodians then
/// unseal it), else open from the plain key file, which is development auto-unseal only.
fn load_kek_slot(config: &Config) -> Result<KekSlot, StartError> {
    let (plain, sealed) = (config.store.kek(), config.store.sealed_kek());
    if sealed.exists() {
        if plain.exists() {
            return Err(StartError::Exists(format!(
                "both {} and {}: a sealed node must not keep its KEK in the clear; remove \
                 the plain file once the shares are safe (akm kek seal does)",
                plain.display(),
                sealed.display()
            )));
        }
        let slot = KekFiles::of(&config.store).load()?;
        // The FIPS build cannot open a passphrase (the unseal would be refused): said now,
        // not after the node has started sealed for good.
        if slot.status().scheme == "passphrase" {
            crate::crypto::backend::outside_module(
                "a passphrase-sealed KEK (Argon2id is not an approved KDF; use shares)",
            )
            .map_err(|refused| {
                StartError::CryptoModule(format!(
                    "{} is sealed with a passphrase, which this build cannot open ({refused}): \
                     run this node with the default build of akm",
                    sealed.display()
                ))
            })?;
        }
        tracing::warn!("the KEK is sealed: serving nothing until custodians run `akm unseal`");
        return Ok(slot);
    }
    let slot = KekFiles::of(&config.store).load()?;
    tracing::warn!(
        file = %plain.display(),
        "KEK auto-unsealed from a plain key file: development mode, NOT FOR PRODUCTION (seal it with `akm kek seal`)"
    );
    Ok(slot)
}

/// Applies the user and group records `config` declares, except on a shared database whose
/// other live nodes declare other records: then this node's file is likely the stale one (a
/// node restarted on its own, say after a crash, with a file the operator forgot to change),
/// and writing it would undo in the one database what the others put in force (a user
/// disabled there, enabled again on every node). The records apply at the next reload or
/// restart that finds the files in agreement, or a reload of this node (an operator's act).
fn apply_declared_records_unless_stale(store: &Store, config: &Config) -> Result<(), StartError> {
    let differing = crate::node_settings::nodes_declaring_other_records(store, config)?;
    if differing.is_empty() {
        apply_declared_accounts(store, config)?;
        return Ok(());
    }
    tracing::error!(
        nodes = %differing.join(", "),
        "the [access] user and group records of this configuration were not applied: other \
         live nodes on this database declare other records; give every node the same \
         records, then reload (client writes are refused until the settings agree)"
    );
    Ok(())
}

/// Opens everything the server needs (blocking: run before or beside the runtime).
pub fn open_context(config: &Config) -> Result<Ctx, StartError> {
    check_crypto_module(config.crypto.require_fips)?;
    refuse_scheduled_backups_the_build_cannot_write(config)?;
    crypto::self_test()?;
    let kek = load_kek_slot(config)?;
    create_private_dir(&config.store.data_dir)?;
    let store = Store::open_configured(&config.store)?;
    // On a shared database: one live process per node id, and every node on the KEK the
    // database's keys are wrapped under (the sealed file names its KEK before it is opened).
    store.claim_node_id(crate::store::NODE_LEASE + std::time::Duration::from_secs(5))?;
    store.check_database_kek(&kek.status().kek_id, &kek.retired_ids())?;
    let audit = open_audit(config)?;
    audit.record(vec![config_event(config)])?;
    // Before any new write, which would move the audit mark past what is missing.
    record_unaudited_changes(&store, &audit)?;
    apply_declared_records_unless_stale(&store, config)?;
    let revoked_certs = Arc::new(crate::store::RevokedCerts::load(&store)?);
    Ok(CtxBuilder::new(store, kek, audit)
        .configured(config)
        .revoked_certs(revoked_certs)
        .build())
}

/// Whether this build's module may serve under `[crypto] require_fips`: the check a start
/// makes, and a reload makes again with the file's new value.
pub fn module_allows(require_fips: bool) -> Result<(), String> {
    use crate::crypto::backend;
    backend::require_approved(&backend::module_report(), require_fips)
}

/// A backup schedule the FIPS build would only fail at, turn after turn, is refused at start,
/// naming the keys.
fn refuse_scheduled_backups_the_build_cannot_write(config: &Config) -> Result<(), StartError> {
    if crate::backup::schedule::When::of(&config.backup).is_none() {
        return Ok(());
    }
    crate::crypto::backend::outside_module(crate::backup::format::WRITING_REFUSED).map_err(
        |refused| {
            StartError::CryptoModule(format!(
                "[backup] schedule / interval_secs: {refused}: remove them and take backups \
                 with the default build"
            ))
        },
    )
}

/// Logs which cryptographic module serves this build and refuses to start when the FIPS build's
/// module is not in approved mode or fails its self-tests, or when `[crypto] require_fips` is
/// set on a binary that is not the FIPS build.
pub fn check_crypto_module(require_fips: bool) -> Result<(), StartError> {
    use crate::crypto::backend;
    let module = backend::module();
    module_allows(require_fips).map_err(StartError::CryptoModule)?;
    tracing::info!(
        module = module.name,
        version = %module.version,
        fips = module.fips,
        "cryptographic module: {}",
        module.describe()
    );
    Ok(())
}

/// Names in the journal every change committed above the store's audit mark: changes whose
/// own record may be missing because the server stopped (kill -9, power loss) between the
/// commit and the record. Then moves the mark, so each is named once.
fn record_unaudited_changes(store: &Store, audit: &Audit) -> Result<(), StartError> {
    let (changes, total) = store.unaudited_changes()?;
    if changes.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        changes = total,
        "the server stopped before the audit records of its last changes were written; \
         they are named in the journal as event=audit.recover"
    );
    let mut events: Vec<AuditEvent> = changes.iter().map(recovered_change_event).collect();
    if let (Some(last), true) = (changes.last(), total > changes.len()) {
        events.push(AuditEvent {
            detail: Some(format!(
                "{} more changes after sequence number {} are not listed",
                total - changes.len(),
                last.seq
            )),
            ..recovery_event()
        });
    }
    for chunk in events.chunks(1000) {
        audit.record(chunk.to_vec())?;
    }
    store.mark_all_audited()?;
    Ok(())
}

fn recovery_event() -> AuditEvent {
    AuditEvent {
        event: "audit.recover",
        user: Some("akm (start-up)".into()),
        outcome: Some(Outcome::Success),
        ..AuditEvent::default()
    }
}

fn recovered_change_event(c: &crate::store::audit_ledger::UnauditedChange) -> AuditEvent {
    let made_on = c.origin.as_deref().unwrap_or("this node");
    AuditEvent {
        uid: Some(c.uid.clone()),
        detail: Some(format!(
            "{} {} {} (change {}, made on {made_on}) was committed before the server stopped; \
             its own record may be missing",
            c.entity, c.uid, c.kind, c.seq
        )),
        ..recovery_event()
    }
}

/// The host name from the kernel, or "localhost".
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Opens the audit journal (creating the signing key on first start, like the KEK) and
/// starts its sinks.
pub fn open_audit(config: &Config) -> Result<Audit, StartError> {
    let key_path = config.audit.signing_key_path(&config.store);
    if let Some(parent) = key_path.parent() {
        create_private_dir(parent)?;
    }
    let signer = Signer::load_or_generate(&key_path)?;
    let journal = config.audit.journal_path(&config.store);
    if let Some(parent) = journal.parent() {
        create_private_dir(parent)?;
    }
    // Nodes sharing a PostgreSQL database are told apart in their records by their node id.
    let server_name = config
        .audit
        .server_name
        .clone()
        .or_else(|| config.store.shared_node_id().map(str::to_owned))
        .unwrap_or_else(hostname);
    let sinks = config
        .audit
        .sink_settings(&server_name, &journal)
        .into_iter()
        .map(Sink::start)
        .collect::<Result<Vec<_>, _>>()
        .map_err(StartError::Sink)?;
    let settings = JournalSettings {
        path: journal,
        server_name,
        checkpoint_every: config.audit.checkpoint_every,
        checkpoint_secs: config.audit.checkpoint_secs,
        sync: config.audit.sync_policy(),
    };
    Ok(Audit::open(settings, signer, sinks)?)
}

/// Server settings from the config.
pub fn settings(config: &Config) -> Settings {
    Settings {
        limits: ConnLimits {
            handshake_timeout: config.handshake_timeout(),
            idle_timeout: config.idle_timeout(),
            frame_timeout: Duration::from_secs(config.server.frame_timeout_secs),
            ttlv: Limits {
                max_message_bytes: config.server.max_message_bytes,
                max_depth: config.server.max_depth,
            },
            max_batch_items: config.server.max_batch_items,
            max_attributes: config.server.max_attributes,
        },
        max_connections: config.server.max_connections,
        max_connections_per_identity: config.server.max_connections_per_identity,
        max_handshaking: config.server.max_handshaking,
        max_handshaking_per_source: config.server.max_handshaking_per_source,
        max_in_flight: config.server.max_requests_in_flight,
        shutdown_grace: Duration::from_secs(config.server.shutdown_grace_secs),
    }
}
