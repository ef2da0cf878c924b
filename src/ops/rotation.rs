//! Scheduled rotation: a key whose Rotate Automatic is True and whose Rotate Interval (its
//! cryptoperiod, in seconds) has passed since it became current (its Activation Date, or the
//! time it replaced the previous version) is re-keyed by the server: the next version takes
//! the name and the schedule, and the old version stays usable as it was. Only if the key's
//! policy asks for it (a Rotate Offset) does the old version get a Deactivation Date, that
//! long after the rotation; nothing else is ever deactivated by a schedule. Every rotation,
//! done or failed, is written to the audit journal. The daemon calls [`rotate_due`] every
//! `crypto.rotation_check_secs` on a blocking thread; with mirroring, only on the node that
//! owns the schedules (the mirror decides which), so each rotation is made once.

use super::rekey::{rekey, Request};
use super::{Ctx, Object};
use crate::audit::{AuditEvent, Outcome};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{object_type as ot, operation, state};
use crate::store::LocateQuery;
use crate::ttlv::Value;

/// One scheduled rotation that was due: the old version and the new one (or the failure).
#[derive(Debug)]
pub struct Rotated {
    /// The version that was due.
    pub old_uid: String,
    /// Its replacement, or why there is none.
    pub result: Result<String, String>,
}

/// Re-keys every key due for scheduled rotation at `now`.
pub fn rotate_due(ctx: &Ctx, now: i64) -> Vec<Rotated> {
    let query = LocateQuery {
        object_type: Some(ot::SYMMETRIC_KEY),
        // Active by the dates: the stored State may still say Pre-Active, or Active for a
        // key whose Deactivation Date has passed.
        states_any: vec![state::PRE_ACTIVE, state::ACTIVE],
        include_live: true,
        ..LocateQuery::default()
    };
    let uids = match ctx.store.locate(&query) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "scheduled rotation: cannot list keys");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for uid in uids {
        let Ok(Some(row)) = ctx.store.get(&uid) else {
            continue;
        };
        let Ok(obj) = Object::from_row(row) else {
            continue;
        };
        if obj.state_at(now) != state::ACTIVE {
            continue;
        }
        let Some(deactivate_old_at) = due(&obj, now) else {
            continue;
        };
        let request = Request {
            old_uid: uid.clone(),
            now,
            offset: None,
            client: Vec::new(),
            deactivate_old_at,
        };
        let audit_scope = ctx.store.audit_scope();
        let result = rekey(ctx, None, request).map_err(|e: OpError| e.to_string());
        if audit(ctx, &uid, &obj, &result) {
            audit_scope.recorded();
        }
        out.push(Rotated {
            old_uid: uid,
            result,
        });
    }
    out
}

/// Whether `obj` is due at `now`; if so, the Deactivation Date its old version is to get
/// (Some only when its policy has a Rotate Offset).
fn due(obj: &Object, now: i64) -> Option<Option<i64>> {
    if obj.get(attr::ROTATE_AUTOMATIC) != Some(&Value::Boolean(true))
        || obj.get(attr::ROTATE_LATEST) == Some(&Value::Boolean(false))
    {
        return None;
    }
    let Some(Value::Interval(interval)) = obj.get(attr::ROTATE_INTERVAL) else {
        return None;
    };
    if *interval == 0 {
        return None;
    }
    // A replacement's schedule starts when it replaced its predecessor (its Initial Date);
    // the first version's when it became active.
    let replaced = obj
        .get(attr::ROTATE_GENERATION)
        .is_some_and(|g| *g != Value::Integer(0));
    let since = if replaced {
        obj.initial_date
    } else {
        obj.date_attr(attr::ACTIVATION_DATE)
            .unwrap_or(obj.initial_date)
    };
    if since + i64::from(*interval) > now {
        return None;
    }
    let offset = match obj.get(attr::ROTATE_OFFSET) {
        Some(Value::Interval(o)) => Some(now + i64::from(*o)),
        _ => None,
    };
    Some(offset)
}

/// Writes the audit record of one scheduled rotation; false if the journal refused it.
fn audit(ctx: &Ctx, uid: &str, obj: &Object, result: &Result<String, String>) -> bool {
    let event = AuditEvent {
        event: "rotation",
        user: Some("akm (scheduled rotation)".into()),
        operation: Some(operation::RE_KEY),
        uid: Some(uid.to_owned()),
        name: obj.names().into_iter().next(),
        outcome: Some(if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }),
        detail: Some(match result {
            Ok(new) => format!("replaced by {new}"),
            Err(why) => format!("not rotated: {why}"),
        }),
        ..AuditEvent::default()
    };
    match &result {
        Ok(new) => tracing::info!(old = uid, new = %new, "scheduled rotation"),
        Err(why) => tracing::error!(uid, error = %why, "scheduled rotation failed"),
    }
    match ctx.audit.record(vec![event]) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "scheduled rotation: audit record not written");
            false
        }
    }
}
