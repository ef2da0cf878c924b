//! Cluster-wide client certificate revocations: what a node's CRLs revoke is recorded in the
//! store (and so mirrored to every peer, see `store::CertRevocation`), and every revocation in
//! the store, whichever node's CRL it came from, is held in memory (`store::RevokedCerts`) for the KMIP listener,
//! which refuses a revoked certificate right after the handshake and closes a connection
//! before its next request once its certificate is revoked. Revocations are only ever added.
//! An administrator can also revoke a certificate of the trusted client CA online
//! (`ops::revoke_certificate`, the Revoke Certificate vendor operation the console's certificates
//! page uses): recorded and enforced the same way, without a new CRL.

use crate::audit::{AuditEvent, Outcome};
use crate::config::TlsConfig;
use crate::ops::Ctx;
use crate::store::CertRevocation;

/// The subjects of the client CAs `tls.client_ca` holds (only the pinned ones when
/// `tls.client_ca_fingerprints` names any): the issuers whose certificates akm accepts, and
/// so the only ones an online revocation may name. Empty when the bundle cannot be read (the
/// TLS set-up reports that itself).
pub fn client_ca_subjects(tls: &TlsConfig) -> Vec<String> {
    let pins: Vec<[u8; 32]> = tls
        .client_ca_fingerprints
        .iter()
        .filter_map(|f| crate::config::parse_fingerprint(f))
        .collect();
    let Ok(certs) = crate::tls::load_certs(&tls.client_ca) else {
        return Vec::new();
    };
    certs
        .iter()
        .filter(|c| {
            let fingerprint = crate::crypto::backend::prim::digest::digest(
                &crate::crypto::backend::prim::digest::SHA256,
                c.as_ref(),
            );
            pins.is_empty() || pins.iter().any(|p| p[..] == *fingerprint.as_ref())
        })
        .filter_map(|c| crate::identity::subject_of(c.as_ref()))
        .collect()
}

/// Records what the CRLs `tls.crls` revoke and the store does not know yet (at start and at
/// every reload), puts it in force and audits each. Blocking. A failure is logged: the local
/// CRL is enforced by this node's TLS verifier anyway, and the next reload records it again.
pub fn record_from_crls(ctx: &Ctx, tls: &TlsConfig) {
    let entries = match crate::tls::load_crls(&tls.crls) {
        Ok(crls) => crate::server::tls::crl_entries(&crls),
        Err(e) => {
            tracing::error!(error = %e, "cannot read tls.crls to record revocations for the peers");
            return;
        }
    };
    if entries.is_empty() {
        return;
    }
    let added = match ctx.store.record_cert_revocations(entries) {
        Ok(added) => added,
        Err(e) => {
            tracing::error!(error = %e, "cannot record CRL revocations in the database; peers do not have them yet (the next reload retries)");
            return;
        }
    };
    ctx.revoked_certs.add(&added);
    let events: Vec<AuditEvent> = added.iter().map(recorded_event).collect();
    for r in &added {
        tracing::info!(serial = %r.serial, issuer = %r.issuer, reason = %r.reason, "client certificate revocation recorded; mirrored to peers");
    }
    if !events.is_empty() {
        if let Err(e) = ctx.audit.record(events) {
            tracing::error!(error = %e, "cannot write revocation audit records");
        }
    }
}

/// How often a node on a shared database looks for revocations other nodes recorded.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// On a database shared with other nodes (which write to it directly, with no mirroring to
/// tell this one): puts in force, within [`FOLLOW_EVERY`], every revocation any node records,
/// by following the change log. Runs until the server stops.
pub async fn follow_shared_store(ctx: std::sync::Arc<Ctx>) {
    let mut seen = None;
    loop {
        let c = ctx.clone();
        let from = seen;
        match tokio::task::spawn_blocking(move || catch_up(&c, from)).await {
            Ok(Ok(newest)) => seen = Some(newest),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read other nodes' revocations; retrying")
            }
            Err(e) => tracing::error!(error = %e, "revocation follower task failed"),
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// Puts in force the revocations recorded after change `seen` (at first, `None`: all of them,
/// which also covers any recorded since start-up loaded them); the newest change seen.
fn catch_up(ctx: &Ctx, seen: Option<i64>) -> Result<i64, crate::store::StoreError> {
    let Some(mut seen) = seen else {
        // The position first, then the list: nothing recorded in between is missed.
        let newest = ctx.store.last_change_seq()?;
        ctx.revoked_certs.add(&ctx.store.cert_revocations()?);
        return Ok(newest);
    };
    loop {
        let changes = ctx.store.changes_after(seen, FOLLOW_BATCH)?;
        for change in changes
            .iter()
            .filter(|c| c.entity == crate::store::REVOCATION_ENTITY)
        {
            if let Some((r, _, _)) = ctx.store.cert_revocation(&change.uid)? {
                tracing::info!(serial = %r.serial, issuer = %r.issuer, "client certificate revocation recorded by another node: in force");
                ctx.revoked_certs.add(std::slice::from_ref(&r));
            }
        }
        let Some(last) = changes.last() else {
            return Ok(seen);
        };
        seen = last.seq;
        if changes.len() < FOLLOW_BATCH {
            return Ok(seen);
        }
    }
}

/// Change-log entries read per query while following.
const FOLLOW_BATCH: usize = 1000;

/// The audit record of a revocation this node recorded from its own CRL.
fn recorded_event(r: &CertRevocation) -> AuditEvent {
    AuditEvent {
        event: "revocation",
        detail: Some(format!(
            "client certificate serial {} of issuer {} revoked ({}, from this node's CRL)",
            r.serial, r.issuer, r.reason
        )),
        outcome: Some(Outcome::Success),
        ..AuditEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RevokedCerts, Store};

    fn rev(serial: &str) -> CertRevocation {
        CertRevocation {
            issuer: "CN=ca".into(),
            serial: serial.into(),
            reason: "unspecified".into(),
            revoked_at: 1,
        }
    }

    #[test]
    fn revocations_are_recorded_once_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("akm.db")).unwrap();
        let added = store
            .record_cert_revocations(vec![rev("0a"), rev("0b")])
            .unwrap();
        assert_eq!(added.len(), 2);
        let again = store
            .record_cert_revocations(vec![rev("0a"), rev("0c")])
            .unwrap();
        assert_eq!(again, vec![rev("0c")], "only new ones are recorded");
        let set = RevokedCerts::load(&store).unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.contains("CN=ca", "0a") && !set.contains("CN=other", "0a"));
        let (found, hlc, origin) = store.cert_revocation(&rev("0c").id()).unwrap().unwrap();
        assert_eq!(found, rev("0c"));
        assert!(hlc > 0 && origin.is_none());
        assert!(store.cert_revocation("0d@CN=ca").unwrap().is_none());
    }
}
