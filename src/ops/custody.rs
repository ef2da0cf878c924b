//! The KEK custody operations (vendor extensions, see `kmip::custody`): Seal Status and
//! Unseal. The dispatcher lets only administrators reach them and, while the KEK is sealed,
//! refuses everything but these, Query and Discover Versions. Unsealing is audited with the
//! custodian's identity and progress, never with the share or passphrase.

use super::{Call, Caller, Ctx, Reply};
use crate::audit::{AuditEvent, Outcome};
use crate::crypto::slot::SealStatus;
use crate::error::OpError;
use crate::kmip::custody::*;
use crate::kmip::enums::operation as op;
use crate::ttlv::Ttlv;
use zeroize::Zeroizing;

/// A custody operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustodyOp {
    /// Seal Status.
    Status,
    /// Unseal.
    Unseal,
    /// Backup.
    Backup,
    /// Rotate KEK.
    RotateKek,
    /// Authorize (dual control).
    Authorize,
}

/// The custody operation with this Operation value, if it is one.
pub fn custody_operation(operation: u32) -> Option<CustodyOp> {
    match operation {
        OP_SEAL_STATUS => Some(CustodyOp::Status),
        OP_UNSEAL => Some(CustodyOp::Unseal),
        OP_BACKUP => Some(CustodyOp::Backup),
        OP_ROTATE_KEK => Some(CustodyOp::RotateKek),
        OP_AUTHORIZE => Some(CustodyOp::Authorize),
        _ => None,
    }
}

/// What a sealed server still answers.
pub fn allowed_while_sealed(operation: u32) -> bool {
    // Authorize too: under dual control of unseal, a second administrator approves while
    // sealed. It touches no key.
    matches!(
        operation,
        op::QUERY | op::DISCOVER_VERSIONS | OP_SEAL_STATUS | OP_UNSEAL | OP_AUTHORIZE
    )
}

/// Runs a custody operation (the caller is an administrator).
pub(super) fn run(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    op: CustodyOp,
) -> Result<Reply, OpError> {
    let payload = match op {
        CustodyOp::Status => status_payload(&ctx.kek.status()),
        CustodyOp::Unseal => status_payload(&unseal(ctx, who, call)?),
        CustodyOp::Backup => backup(ctx, who, call)?,
        CustodyOp::RotateKek => rotate(ctx, who, call)?,
        CustodyOp::Authorize => authorize(ctx, who, call)?,
    };
    Ok(Reply { payload, uid: None })
}

fn unseal(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<SealStatus, OpError> {
    let share = call.payload.child(TAG_UNSEAL_SHARE);
    let passphrase = call.payload.child(TAG_UNSEAL_PASSPHRASE);
    let before = ctx.kek.status();
    // Would this submission open the KEK? A passphrase does; a share does at the threshold.
    let completes = before.sealed && (share.is_none() || before.progress + 1 >= before.threshold);
    let second = ctx.dual.admits_unseal(&who.cn, completes, call.now)?;
    let result = match (share, passphrase) {
        (Some(s), None) => {
            let text = s.as_text().ok_or_else(|| {
                OpError::InvalidField("Unseal Share must be a Text String".into())
            })?;
            ctx.kek.submit_share(text)
        }
        (None, Some(p)) => {
            let bytes = p.as_bytes().ok_or_else(|| {
                OpError::InvalidField("Unseal Passphrase must be a Byte String".into())
            })?;
            ctx.kek.submit_passphrase(&Zeroizing::new(bytes.to_vec()))
        }
        _ => {
            return Err(OpError::InvalidMessage(
                "Unseal needs exactly one of Unseal Share or Unseal Passphrase".into(),
            ))
        }
    };
    record(ctx, who, &result);
    if let Ok(status) = &result {
        if status.sealed {
            ctx.dual.unseal_share_accepted(&who.cn);
        }
        if let Some(second) = &second {
            super::dual::record(ctx, who, call, second, !status.sealed);
        }
    }
    result.map_err(|e| OpError::Custody(e.to_string()))
}

/// Takes an online backup through the context's [`BackupRunner`](super::BackupRunner) (into
/// the configured directory), records it in the audit journal with its checksum, then has the
/// runner log it to the backup log and copy it over SFTP like a scheduled one when
/// `[backup.sftp]` is set (a failed copy is reported; the backup stays).
fn backup(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let runner = ctx
        .backup
        .as_ref()
        .ok_or(OpError::FeatureNotSupported("backup (no backup directory)"))?;
    let result = runner.write(&ctx.store, &ctx.kek, call.now);
    let detail = match &result {
        Ok(b) => format!("backup {} sha256 {}", b.path.display(), b.sha256),
        Err(e) => format!("backup failed: {e}"),
    };
    let outcome = if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    audit_event(ctx, who, OP_BACKUP, outcome, detail);
    let info = result.map_err(|e| {
        tracing::error!(error = %e, "backup failed");
        OpError::Custody(format!("backup failed: {e}"))
    })?;
    let mut payload = backup_payload(&info);
    if let Some(copied) = runner.publish(&ctx.audit, &info, call.now, &who.cn) {
        payload.push(match copied {
            Ok(remote) => Ttlv::text(TAG_BACKUP_UPLOADED, remote),
            Err(e) => Ttlv::text(TAG_BACKUP_UPLOAD_ERROR, e),
        });
    }
    Ok(payload)
}

/// One step of a KEK rotation: start one if none runs, rewrap a batch, and when nothing is
/// left under a retired KEK, move it to the KEK archive (kept only to restore older backups). Concurrent requests keep working: the retired KEK
/// unwraps until its last row is rewrapped, and a row changed meanwhile is left for the next
/// batch.
fn rotate(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let files = ctx
        .kek_files
        .as_ref()
        .ok_or(OpError::FeatureNotSupported("KEK rotation"))?;
    if ctx.store.is_shared() {
        // Every node holds its own copy of the KEK: a rotation through one would leave the
        // others unable to unwrap what it rewrapped.
        return Err(OpError::FeatureNotSupported(
            "KEK rotation on a PostgreSQL store shared by several nodes",
        ));
    }
    let limit = match call.payload.child(TAG_BATCH_LIMIT) {
        None => 500,
        Some(t) => t
            .as_int()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| OpError::InvalidField("Batch Limit must be 1 to 10000".into()))?
            as usize,
    };
    if let Some(new) = ctx.kek.begin_rotation(files)? {
        audit_event(
            ctx,
            who,
            OP_ROTATE_KEK,
            Outcome::Success,
            format!("kek rotation started: new kek {new}"),
        );
        tracing::info!(kek = %new, "KEK rotation started");
    }
    let current = ctx.kek.id().ok_or(OpError::Sealed)?;
    let batch = ctx.store.material_not_under(&current, limit)?;
    let mut rewraps = Vec::with_capacity(batch.len());
    for row in batch {
        let plain = ctx.kek.unwrap(&row.uid, row.key_version, &row.wrapped)?;
        let new = ctx.kek.wrap(&row.uid, row.key_version, &plain)?;
        rewraps.push((row.uid, row.wrapped, new));
    }
    let rewrapped = ctx.store.write(move |tx| {
        let mut n = 0i32;
        for (uid, old, new) in &rewraps {
            n += i32::from(tx.rewrap(uid, old, new)?);
        }
        Ok::<_, OpError>(n)
    })?;
    let remaining: i64 = ctx
        .store
        .material_by_kek()?
        .into_iter()
        .filter(|(id, _)| *id != current)
        .map(|(_, n)| n)
        .sum();
    let mut payload = vec![
        Ttlv::text(TAG_KEK_ID, current.clone()),
        Ttlv::integer(TAG_REWRAPPED, rewrapped),
        Ttlv::integer(TAG_REMAINING, remaining.min(i64::from(i32::MAX)) as i32),
    ];
    if remaining == 0 {
        let retired = ctx.kek.finish_rotation(files)?;
        if !retired.is_empty() {
            audit_event(
                ctx,
                who,
                OP_ROTATE_KEK,
                Outcome::Success,
                format!(
                    "kek rotation finished: kek {current}; retired {} (kept in the kek archive for older backups)",
                    retired.join(",")
                ),
            );
            tracing::info!(kek = %current, retired = ?retired, "KEK rotation finished; retired KEKs kept in the archive for older backups");
        }
        payload.extend(
            retired
                .into_iter()
                .map(|id| Ttlv::text(TAG_DESTROYED_KEK_ID, id)),
        );
    }
    Ok(payload)
}

/// Opens a dual-control window for another user; recorded with both names.
fn authorize(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let text = |tag, what: &str| {
        call.payload
            .child(tag)
            .and_then(Ttlv::as_text)
            .map(str::to_owned)
            .ok_or_else(|| OpError::InvalidMessage(format!("missing {what}")))
    };
    let (user, operation, result) = if call.payload.child(TAG_REQUEST_ID).is_some() {
        let id = text(TAG_REQUEST_ID, "Request Id")?;
        let result = ctx.dual.approve(&who.cn, &id, call.now);
        (format!("request {id}"), "approve".to_owned(), result)
    } else {
        let user = text(TAG_AUTHORIZED_USER, "Authorized User")?;
        let operation = text(TAG_GUARDED_OPERATION, "Guarded Operation")?;
        let minutes = match call.payload.child(TAG_WINDOW_MINUTES) {
            None => None,
            Some(t) => Some(i64::from(t.as_int().ok_or_else(|| {
                OpError::InvalidField("Window Minutes must be an Integer".into())
            })?)),
        };
        let result = ctx
            .dual
            .authorize(&who.cn, &user, &operation, minutes, call.now);
        (user, operation, result)
    };
    let (outcome, detail) = match &result {
        Ok(g) => (
            Outcome::Success,
            format!(
                "{} authorized {} to {} until {}",
                g.by, g.user, g.operation, g.until
            ),
        ),
        Err(e) => (
            Outcome::Failure,
            format!("authorize {user} to {operation}: {e}"),
        ),
    };
    audit_event(ctx, who, OP_AUTHORIZE, outcome, detail);
    let g = result?;
    Ok(vec![
        Ttlv::text(TAG_AUTHORIZED_USER, g.user),
        Ttlv::text(TAG_GUARDED_OPERATION, g.operation),
        Ttlv::datetime(TAG_WINDOW_UNTIL, g.until),
    ])
}

fn audit_event(ctx: &Ctx, who: &Caller, operation: u32, outcome: Outcome, detail: String) {
    let event = AuditEvent {
        event: "custody",
        user: Some(who.cn.clone()),
        groups: who.ous.clone(),
        operation: Some(operation),
        outcome: Some(outcome),
        detail: Some(detail),
        ..AuditEvent::default()
    };
    if let Err(e) = ctx.audit.record(vec![event]) {
        tracing::error!(error = %e, "cannot record a custody event");
    }
}

/// Records the unseal attempt as a `custody` audit event naming the custodian.
fn record(ctx: &Ctx, who: &Caller, result: &Result<SealStatus, crate::crypto::CryptoError>) {
    let (outcome, detail) = match result {
        Ok(s) if !s.sealed => (Outcome::Success, format!("unsealed kek {}", s.kek_id)),
        Ok(s) => (
            Outcome::Success,
            format!("unseal share accepted ({} of {})", s.progress, s.threshold),
        ),
        Err(e) => (Outcome::Failure, e.to_string()),
    };
    audit_event(ctx, who, OP_UNSEAL, outcome, detail);
}

/// The response payload for a status.
fn status_payload(s: &SealStatus) -> Vec<Ttlv> {
    vec![
        Ttlv::boolean(TAG_SEALED, s.sealed),
        Ttlv::text(TAG_SEAL_SCHEME, s.scheme),
        Ttlv::integer(TAG_UNSEAL_THRESHOLD, s.threshold as i32),
        Ttlv::integer(TAG_UNSEAL_PROGRESS, s.progress as i32),
        Ttlv::text(TAG_KEK_ID, s.kek_id.clone()),
    ]
}

/// The response payload for a backup.
fn backup_payload(b: &super::BackupInfo) -> Vec<Ttlv> {
    vec![
        Ttlv::text(TAG_BACKUP_FILE, b.path.display().to_string()),
        Ttlv::long(TAG_BACKUP_BYTES, b.bytes as i64),
        Ttlv::text(TAG_BACKUP_SHA256, b.sha256.clone()),
        Ttlv::text(TAG_KEK_ID, b.kek_id.clone()),
    ]
}
