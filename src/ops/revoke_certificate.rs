//! `x-RevokeCertificate`'s effect: an administrator revokes a client certificate of a trusted
//! client CA online. The revocation is recorded in the store (durable, mirrored to every peer
//! through the change log, idempotent), put in force at once for the listeners, and audited.
//! Revocations are only ever added; the CRL file for other relying parties still needs
//! `akm cert revoke` with the CA key.

use super::Ctx;
use crate::audit::{AuditEvent, Outcome};
use crate::error::OpError;
use crate::store::CertRevocation;

/// Revokes the client certificate `serial` (hex) of `issuer` on an administrator's request:
/// records it in the store (mirrored to every peer; nothing changes if it already is), puts it
/// in force at once (open connections of the certificate close at their next request) and
/// audits who revoked it. Returns whether it was newly revoked.
pub(super) fn revoke_online(
    ctx: &Ctx,
    admin: &str,
    issuer: &str,
    serial: &str,
    now: i64,
) -> Result<bool, OpError> {
    let serial = normalized_serial(serial)?;
    if !ctx.client_ca_subjects.current().iter().any(|s| s == issuer) {
        return Err(OpError::InvalidField(format!(
            "issuer {issuer:?} is not a client CA this server trusts (tls.client_ca): only \
             certificates of a trusted CA can be revoked here"
        )));
    }
    let revocation = CertRevocation {
        issuer: issuer.to_owned(),
        serial,
        reason: "unspecified".into(),
        revoked_at: now,
    };
    let added = ctx
        .store
        .record_cert_revocations(vec![revocation.clone()])?;
    // Enforced whether it is new or not: an earlier record is in force already, and adding
    // it again costs nothing.
    ctx.revoked_certs.add(std::slice::from_ref(&revocation));
    let newly = !added.is_empty();
    if newly {
        tracing::info!(serial = %revocation.serial, issuer = %revocation.issuer, by = %admin, "client certificate revoked by an administrator; mirrored to peers");
        let event = AuditEvent {
            event: "revocation",
            user: Some(admin.to_owned()),
            detail: Some(format!(
                "client certificate serial {} of issuer {} revoked by administrator {admin} \
                 (online, not in any CRL file)",
                revocation.serial, revocation.issuer
            )),
            outcome: Some(Outcome::Success),
            ..AuditEvent::default()
        };
        if let Err(e) = ctx.audit.record(vec![event]) {
            tracing::error!(error = %e, "cannot write the revocation audit record");
        }
    }
    Ok(newly)
}

/// A serial as the revocation records hold it (lower-case hex, no leading zero bytes, as
/// `identity::serial_hex`), from what an administrator typed (`0A:1b`, `0x0a1b`, `0a1b`).
fn normalized_serial(text: &str) -> Result<String, OpError> {
    let digits: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let bad = || {
        OpError::InvalidField(format!(
            "Certificate Serial {text:?} is not a hexadecimal serial number"
        ))
    };
    if digits.is_empty() || digits.len() > 80 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    let bytes: Vec<u8> = (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    Ok(crate::identity::serial_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_serials_are_normalized_as_certificates_carry_them() {
        assert_eq!(normalized_serial("0A:1B").unwrap(), "0a1b");
        assert_eq!(normalized_serial("0x00ff").unwrap(), "ff");
        assert_eq!(normalized_serial("abc").unwrap(), "0abc");
        assert!(normalized_serial("").is_err() && normalized_serial("xyz").is_err());
    }
}
