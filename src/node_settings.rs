//! On a PostgreSQL database shared by several nodes: that every live node runs the same
//! security settings (the sections of [`SettingsDigest`]: `[access]`, `[dual_control]`,
//! `crypto.pci_mode`, ...). Mirror peers compare them in their hello; nodes on one database
//! have no link, so each publishes its digest in the database and compares the other live
//! nodes' every [`COMPARE_EVERY`]. While any differ, client writes are refused on every node
//! (as between mirror peers): an administrator removed from `[access]` on one node only must
//! not keep changing keys through the other. The records the configuration declares are still
//! applied (a reload is how the settings are made to agree).

use crate::ops::Ctx;
use crate::settings_digest::SettingsDigest;
use crate::store::{CommitHook, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a node publishes its settings and compares the other nodes'.
pub const COMPARE_EVERY: Duration = Duration::from_secs(1);

/// The other nodes whose settings differ from this node's, as last compared; refuses client
/// writes while there are any.
#[derive(Debug, Default)]
pub struct NodeSettingsGuard {
    /// "node (sections)" of each node that differs.
    differing: Mutex<Vec<String>>,
}

impl CommitHook for NodeSettingsGuard {
    fn before_write(&self) -> Result<(), StoreError> {
        let differing = self.differing.lock().map(|d| d.clone()).unwrap_or_default();
        if differing.is_empty() {
            return Ok(());
        }
        Err(StoreError::NodeSettingsMismatch(differing.join(", ")))
    }

    fn after_commit(&self, _seq: i64) -> Result<(), StoreError> {
        Ok(())
    }
}

impl NodeSettingsGuard {
    /// Records the comparison's verdict, logging a change of it.
    fn set(&self, now: Vec<String>) {
        let Ok(mut differing) = self.differing.lock() else {
            return;
        };
        if *differing == now {
            return;
        }
        if now.is_empty() {
            tracing::info!("security settings agree with every other node on the database: client writes resume");
        } else {
            tracing::error!(differing = %now.join(", "), "security settings differ from other node(s) on the database: client writes are refused until they agree");
        }
        *differing = now;
    }
}

/// Publishes this node's settings at once (after a reload, so a node starting next compares
/// its records with these, not with the ones they replaced). Blocking; a failure is logged
/// (the comparison loop publishes again within [`COMPARE_EVERY`]).
pub fn publish(ctx: &Ctx) {
    if !ctx.store.is_shared() {
        return;
    }
    let text = serde_json::to_string(&*ctx.settings.current()).unwrap_or_default();
    if let Err(e) = ctx.store.exchange_settings(&text) {
        tracing::warn!(error = %e, "cannot publish this node's security settings; retrying");
    }
}

/// Publishes this node's settings and compares the other live nodes': "node (sections)" for
/// each that differs. A digest that does not parse (a newer binary's) differs in full.
fn compare(ctx: &Ctx) -> Result<Vec<String>, StoreError> {
    let ours = ctx.settings.current();
    let text = serde_json::to_string(&*ours).unwrap_or_default();
    let theirs = ctx.store.exchange_settings(&text)?;
    Ok(theirs
        .into_iter()
        .filter_map(|(node, digest)| {
            let differ = match serde_json::from_str::<SettingsDigest>(&digest) {
                Ok(d) => ours.differing(&d),
                Err(_) => vec!["all".to_owned()],
            };
            (!differ.is_empty()).then(|| format!("{node} ({})", differ.join(", ")))
        })
        .collect())
}

/// Installs the guard on the shared store and compares every [`COMPARE_EVERY`] until the
/// server stops. A comparison that cannot reach the database keeps the last verdict.
pub async fn compare_with_other_nodes(ctx: Arc<Ctx>) {
    let guard = Arc::new(NodeSettingsGuard::default());
    if !ctx.store.set_commit_hook(guard.clone()) {
        tracing::error!(
            "cannot install the node settings comparison: another commit hook is installed"
        );
        return;
    }
    loop {
        let c = ctx.clone();
        match tokio::task::spawn_blocking(move || compare(&c)).await {
            Ok(Ok(differing)) => guard.set(differing),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot compare security settings with the other nodes; retrying")
            }
            Err(e) => tracing::error!(error = %e, "node settings comparison task failed"),
        }
        tokio::time::sleep(COMPARE_EVERY).await;
    }
}

/// The other live nodes whose declared user and group records (`access.records`) differ from
/// those `config` declares; always none on SQLite.
pub fn nodes_declaring_other_records(
    store: &crate::store::Store,
    config: &crate::config::Config,
) -> Result<Vec<String>, StoreError> {
    const RECORDS: &str = "access.records";
    let ours = SettingsDigest::of(config, config);
    let ours = ours.sections.get(RECORDS);
    Ok(store
        .other_nodes_settings()?
        .into_iter()
        .filter(|(_, digest)| {
            serde_json::from_str::<SettingsDigest>(digest)
                .map_or(true, |d| d.sections.get(RECORDS) != ours)
        })
        .map(|(node, _)| node)
        .collect())
}
