//! The composition root: the one place the shared context of a running server ([`Ctx`]: the
//! store, the KEK, the audit journal and the settings every operation, listener and background
//! task reads) is assembled. The daemon builds it from the configuration (`akm serve`), the
//! tests from the parts they make in a temporary directory, both with [`CtxBuilder`]. Also the
//! start-up steps a configuration reload repeats: recording which configuration is in force
//! ([`config_event`]) and applying the accounts it declares ([`apply_declared_accounts`]).
//! [`open_context`] opens a node from its configuration (KEK, store, audit journal) and builds
//! its context; the daemon serves it.

mod start;

pub use start::{
    create_private_dir, hostname, module_allows, open_audit, open_context, settings, StartError,
};

use crate::audit::{Audit, AuditEvent, Outcome};
use crate::config::limits::AttributeLimits;
use crate::config::Config;
use crate::crypto::rotate::KekFiles;
use crate::crypto::slot::KekSlot;
use crate::ops::{cost, dual, stream, CryptoPolicy, Ctx, Live};
use crate::store::{AccountKind, RevokedCerts, Store, StoreError, WriteTx};
use std::sync::Arc;

/// Builds a [`Ctx`]: [`CtxBuilder::new`] gives the defaults, [`CtxBuilder::configured`] applies
/// a configuration on top.
#[derive(Debug)]
pub struct CtxBuilder(Ctx);

impl CtxBuilder {
    /// A context over `store`, `kek` and `audit` with the defaults: default access settings,
    /// no reload, no Interop, no backups, no KEK rotation, no guarded operations, the default
    /// limits, no revocations.
    pub fn new(store: Store, kek: impl Into<KekSlot>, audit: Audit) -> CtxBuilder {
        CtxBuilder(Ctx {
            store,
            kek: kek.into(),
            access: Live::default(),
            reload: None,
            interop: false,
            audit,
            crypto: CryptoPolicy::default(),
            streams: stream::Streams::default(),
            backup: None,
            kek_files: None,
            dual: dual::DualControl::default(),
            max_locate_items: crate::config::limits::DEFAULT_MAX_LOCATE_ITEMS.into(),
            limits: cost::RequestLimits::default(),
            attribute_limits: AttributeLimits::default(),
            metrics: Arc::default(),
            revoked_certs: Arc::default(),
            client_ca_subjects: Live::default(),
            settings: Live::default(),
        })
    }

    /// Everything `config` sets: access, Interop, PCI mode, backups, KEK files, dual control,
    /// the request and attribute limits and the settings digest peers compare.
    pub fn configured(self, config: &Config) -> CtxBuilder {
        let mut ctx = self.0;
        ctx.access = crate::policy::Settings::from_config(&config.access).into();
        ctx.interop = config.server.interop_operations;
        ctx.crypto = CryptoPolicy {
            pci_mode: config.crypto.pci_mode,
        };
        ctx.backup = Some(Arc::new(crate::backup::Runner {
            dir: config.backup.dir(&config.store),
            sftp: config.backup.sftp.clone(),
        }));
        ctx.kek_files = Some(KekFiles::of(&config.store));
        ctx.dual = dual::DualControl::new(
            config.dual_control.operation_names(),
            config.dual_control.window_minutes,
        )
        // PCI mode is a preset: it implies separation of duties.
        .with_separate_duties(config.dual_control.separate_duties || config.crypto.pci_mode);
        ctx.max_locate_items = config.server.max_locate_items.into();
        ctx.limits = cost::RequestLimits {
            max_request_cost: config.server.max_request_cost as u64,
            max_pbkdf2_iterations: u32::try_from(config.server.max_pbkdf2_iterations)
                .unwrap_or(crate::crypto::kdf::MAX_ITERATIONS),
            max_response_bytes: config.server.max_response_bytes,
        };
        ctx.attribute_limits = config.attribute_limits();
        ctx.client_ca_subjects = crate::revocations::client_ca_subjects(&config.tls).into();
        ctx.settings = crate::settings_digest::SettingsDigest::of(config, config).into();
        CtxBuilder(ctx)
    }

    /// The certificate revocations in force (loaded from the store).
    pub fn revoked_certs(mut self, revoked: Arc<RevokedCerts>) -> CtxBuilder {
        self.0.revoked_certs = revoked;
        self
    }

    /// The context.
    pub fn build(self) -> Ctx {
        self.0
    }
}

/// The audit event naming the configuration this server runs with: its path and SHA-256, so
/// an auditor sees every configuration change across restarts.
pub fn config_event(config: &Config) -> AuditEvent {
    AuditEvent {
        event: "config",
        detail: Some(config.path.display().to_string()),
        config_sha256: Some(config.sha256.clone()),
        outcome: Some(Outcome::Success),
        ..AuditEvent::default()
    }
}

/// Writes the users and groups `akm.toml` declares into the database (through the writer, so
/// they are in the change log), replacing what the database had for those names. Records of
/// other names (added with `akm user`/`akm group`, or dropped from the file) are left alone.
/// At every start and every configuration reload.
pub fn apply_declared_accounts(store: &Store, config: &Config) -> Result<(), StoreError> {
    let (users, groups) = crate::policy::declared_accounts(&config.access);
    if users.is_empty() && groups.is_empty() {
        return Ok(());
    }
    let count = users.len() + groups.len();
    let write = move |tx: &WriteTx<'_>| {
        for (name, a) in &users {
            tx.put_account(AccountKind::User, name, a)?;
        }
        for (name, a) in &groups {
            tx.put_account(AccountKind::Group, name, a)?;
        }
        Ok::<_, StoreError>(())
    };
    match store.write(write.clone()) {
        // Client writes wait while a mirror peer's security settings differ, but the
        // operator's own records are how the settings are made to agree: a reload must
        // apply them (logged as this node's change, mirrored once the link is back). So too
        // while rpo-zero refuses client writes for want of a peer: a reload must still be
        // able to change who may do what (and bring in a new CRL) during a peer outage.
        Err(
            StoreError::SettingsMismatch(_)
            | StoreError::NodeSettingsMismatch(_)
            | StoreError::WritesRefused,
        ) => store.write_replica(write)?,
        // Committed here, not yet confirmed by a peer (rpo-zero, refuse on timeout): the
        // records are in force on this node, so the rest of the configuration must follow
        // them, or a reload would be reported refused while half of it applies.
        Err(StoreError::NotReplicated) => tracing::warn!(
            count,
            "user and group records from the config applied here; no mirror peer confirmed \
             them yet (they reach the peers when the link is back)"
        ),
        other => other?,
    }
    tracing::info!(count, "user and group records from the config applied");
    Ok(())
}
