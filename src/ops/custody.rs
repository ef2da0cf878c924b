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
use zeroize::Zeroizing;

/// A custody operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustodyOp {
    /// Seal Status.
    Status,
    /// Unseal.
    Unseal,
}

/// The custody operation with this Operation value, if it is one.
pub fn custody_operation(operation: u32) -> Option<CustodyOp> {
    match operation {
        OP_SEAL_STATUS => Some(CustodyOp::Status),
        OP_UNSEAL => Some(CustodyOp::Unseal),
        _ => None,
    }
}

/// What a sealed server still answers.
pub fn allowed_while_sealed(operation: u32) -> bool {
    matches!(operation, op::QUERY | op::DISCOVER_VERSIONS) || custody_operation(operation).is_some()
}

/// Runs a custody operation (the caller is an administrator).
pub(super) fn run(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    op: CustodyOp,
) -> Result<Reply, OpError> {
    let status = match op {
        CustodyOp::Status => ctx.kek.status(),
        CustodyOp::Unseal => unseal(ctx, who, call)?,
    };
    Ok(Reply {
        payload: status_payload(&status),
        uid: None,
    })
}

fn unseal(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<SealStatus, OpError> {
    let share = call.payload.child(TAG_UNSEAL_SHARE);
    let passphrase = call.payload.child(TAG_UNSEAL_PASSPHRASE);
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
    result.map_err(|e| OpError::Custody(e.to_string()))
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
    let event = AuditEvent {
        event: "custody",
        user: Some(who.cn.clone()),
        groups: who.ous.clone(),
        operation: Some(OP_UNSEAL),
        outcome: Some(outcome),
        detail: Some(detail),
        ..AuditEvent::default()
    };
    if let Err(e) = ctx.audit.record(vec![event]) {
        tracing::error!(error = %e, "cannot record the unseal event");
    }
}
