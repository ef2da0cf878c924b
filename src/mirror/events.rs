//! Mirror events that belong in the audit trail: conflict resolutions, RPO-mode switches,
//! refused peer connections, security settings that differ from a peer's (`event=mirror.settings`)
//! and every change applied from a peer (`event=mirror.apply`). Each is written to the audit journal as an `event=mirror` record
//! (the peer's node id as `user`, the object as `uid`, what happened in `detail`) and also
//! emitted as a `tracing` warning with target `akm::audit`; the warnings about refused
//! connections go through the mirror's [`LogThrottle`] (a few, then a summary per interval),
//! as their audit records go through the journal's flood budget. Never carries key material.

use super::Mirror;
use crate::audit::{AuditEvent, Outcome};
use crate::logthrottle::{LogThrottle, Summary};
use crate::ops::Ctx;
use std::net::SocketAddr;
use std::sync::Arc;

/// A conflict between two versions of a record, and how it was resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// `object`, `user` or `group`.
    pub entity: &'static str,
    /// The object's Unique Identifier, or the user's or group's name.
    pub id: String,
    /// The local version's state (0 for users and groups).
    pub local_state: u32,
    /// The local version's clock.
    pub local_hlc: i64,
    /// The node that made the local version.
    pub local_node: String,
    /// The incoming version's state (0 for users and groups).
    pub incoming_state: u32,
    /// The incoming version's clock.
    pub incoming_hlc: i64,
    /// The node that made the incoming version.
    pub incoming_node: String,
    /// `local` or `incoming`.
    pub kept: &'static str,
    /// The rule that decided.
    pub rule: &'static str,
}

/// Writes `event` to the audit journal from a blocking thread (refusals through the journal's
/// flood budget). A failure is logged (the journal reports its own health).
fn record(ctx: &Arc<Ctx>, event: AuditEvent, refusal: bool) {
    let ctx = ctx.clone();
    let write = move || {
        let written = if refusal {
            ctx.audit.record_refusal(event)
        } else {
            ctx.audit.record(vec![event])
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write a mirror audit record");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(write);
        }
        Err(_) => write(),
    }
}

fn event(peer: &str, detail: String) -> AuditEvent {
    AuditEvent {
        event: "mirror",
        user: Some(peer.to_owned()),
        detail: Some(detail),
        ..AuditEvent::default()
    }
}

/// Records a conflict resolution of a change from peer `from`.
pub fn conflict(ctx: &Arc<Ctx>, from: &str, c: &Conflict) {
    tracing::warn!(
        target: "akm::audit",
        event = "mirror.conflict",
        entity = c.entity,
        id = %c.id,
        peer = from,
        local_state = c.local_state,
        local_hlc = c.local_hlc,
        local_node = %c.local_node,
        incoming_state = c.incoming_state,
        incoming_hlc = c.incoming_hlc,
        incoming_node = %c.incoming_node,
        kept = c.kept,
        rule = c.rule,
        "mirror conflict resolved"
    );
    let mut e = event(
        from,
        format!(
            "conflict on {}: kept {} ({}); local state {} hlc {} node {}; incoming state {} hlc {} node {}",
            c.entity,
            c.kept,
            c.rule,
            c.local_state,
            c.local_hlc,
            c.local_node,
            c.incoming_state,
            c.incoming_hlc,
            c.incoming_node
        ),
    );
    e.uid = Some(c.id.clone());
    e.outcome = Some(Outcome::Success);
    record(ctx, e, false);
}

/// Records a switch of the effective replication mode (RPO-zero degraded or restored).
pub fn mode_switch(ctx: &Arc<Ctx>, node: &str, from: &str, to: &str, reason: &str) {
    tracing::warn!(
        target: "akm::audit",
        event = "mirror.mode_switch",
        from,
        to,
        reason,
        "mirror replication mode switched"
    );
    let mut e = event(node, format!("mode switch: {from} -> {to}: {reason}"));
    e.outcome = Some(Outcome::Success);
    record(ctx, e, false);
}

/// Records a refused mirror connection (the warning only if `mirror`'s throttle lets it).
pub fn refused(
    mirror: &Mirror,
    remote: Option<SocketAddr>,
    subject: &str,
    fingerprint: &str,
    reason: &str,
) {
    let ctx = &mirror.ctx;
    let from = remote.map_or_else(|| "-".to_owned(), |r| r.to_string());
    if throttled(&mirror.refusal_log, &from, reason) {
        tracing::warn!(
            target: "akm::audit",
            event = "mirror.refused",
            remote = %from,
            subject,
            fingerprint,
            reason,
            "mirror connection refused"
        );
    }
    let mut e = event(subject, format!("mirror connection refused: {reason}"));
    e.client = remote;
    e.cert_sha256 = (fingerprint != "-").then(|| fingerprint.to_owned());
    e.outcome = Some(Outcome::Failure);
    record(ctx, e, true);
}

/// Counts a refusal in `log`; logs the summary of an interval that just ended; returns whether
/// to log this refusal in full.
fn throttled(log: &LogThrottle, from: &str, reason: &str) -> bool {
    let verdict = log.event(|| format!("{from}: {reason}"));
    if let Some(s) = verdict.summary {
        refusal_summary(&s);
    }
    verdict.log
}

/// Logs how many refused mirror connections were left out of the log in one interval.
pub fn refusal_summary(s: &Summary) {
    tracing::warn!(
        target: "akm::audit",
        event = "mirror.refused_summary",
        refused = s.suppressed,
        secs = s.secs,
        "{} mirror connections refused in the last {} s (not logged one by one), last from {}",
        s.suppressed,
        s.secs,
        s.last
    );
}

/// One change applied from a peer, for the `event=mirror.apply` audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// `object`, `user`, `group` or `revocation`.
    pub entity: &'static str,
    /// The object's Unique Identifier, the user's or group's name, or `<serial>@<issuer>`.
    pub id: String,
    /// The node that made the change (its stamp).
    pub origin: String,
    /// What the change did: `put state 2`, `delete`, `revoke`.
    pub operation: String,
}

/// Records, in one journal write, the changes from peer `from` this node applied (blocking:
/// called on the blocking pool right after they commit). False if the journal refused them
/// (logged; the journal reports its own health).
pub fn applied(ctx: &Ctx, from: &str, changes: &[Applied]) -> bool {
    if changes.is_empty() {
        return true;
    }
    let events = changes
        .iter()
        .map(|c| AuditEvent {
            event: "mirror.apply",
            user: Some(from.to_owned()),
            uid: Some(c.id.clone()),
            outcome: Some(Outcome::Success),
            detail: Some(format!(
                "applied {} {} from peer {from} (made on node {})",
                c.entity, c.operation, c.origin
            )),
            ..AuditEvent::default()
        })
        .collect();
    match ctx.audit.record(events) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, peer = from, "cannot write the mirror.apply audit records");
            false
        }
    }
}

/// Records that peer `peer`'s security settings differ from this node's in `sections` (the
/// link is refused both ways until they agree). Called only when the difference is new, so
/// a peer retrying every second does not flood the journal.
pub fn settings_mismatch(mirror: &Mirror, peer: &str, sections: &[String]) {
    let list = sections.join(", ");
    tracing::error!(
        target: "akm::audit",
        event = "mirror.settings",
        peer,
        sections = %list,
        "mirror link refused: security settings differ from the peer's; make them identical on both nodes (reload, or restart for dual_control and crypto.pci_mode)"
    );
    let mut e = AuditEvent {
        event: "mirror.settings",
        user: Some(peer.to_owned()),
        detail: Some(format!(
            "security settings differ from peer {peer} in: {list}; mirroring with it is refused and client writes are refused while it is reachable"
        )),
        ..AuditEvent::default()
    };
    e.outcome = Some(Outcome::Failure);
    record(&mirror.ctx, e, false);
}

/// Records that peer `peer`'s security settings agree with this node's again.
pub fn settings_agree(mirror: &Mirror, peer: &str) {
    tracing::info!(
        target: "akm::audit",
        event = "mirror.settings",
        peer,
        "security settings agree with the peer again; mirroring resumes"
    );
    let e = AuditEvent {
        event: "mirror.settings",
        user: Some(peer.to_owned()),
        detail: Some(format!("security settings agree with peer {peer} again")),
        outcome: Some(Outcome::Success),
        ..AuditEvent::default()
    };
    record(&mirror.ctx, e, false);
}
