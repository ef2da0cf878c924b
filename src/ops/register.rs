//! Register: stores a client-supplied Symmetric Key, Public, Private or Split Key, Secret Data,
//! Opaque Object or Certificate.

use super::create::store_new;
use super::{Call, Ctx, Reply};
use crate::error::OpError;
use crate::identity::Principal;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{cryptographic_algorithm as alg, object_type as ot};
use crate::kmip::objects;
use crate::ttlv::Value;

/// Runs Register.
pub fn run(ctx: &Ctx, who: &Principal, call: &Call<'_>) -> Result<Reply, OpError> {
    let object_type = call.object_type()?;
    let attrs = attributes::read_request_attributes(call.payload, call.version)?;
    let mut managed = objects::parse_object(call.payload, object_type)?;
    if object_type == ot::SYMMETRIC_KEY {
        check_symmetric_key(&managed)?;
    }
    // The key length is a property of the bytes given; record it when the client did not.
    if managed.length.is_none() && object_type == ot::SYMMETRIC_KEY {
        managed.length = Some((managed.material.len() * 8) as i32);
    }
    let server_attrs = certificate_attributes(&managed);
    let uid = store_new(ctx, who, call, attrs, server_attrs, managed)?;
    Ok(Reply::uid_only(uid))
}

/// An AES key must have an AES length and match its declared length.
fn check_symmetric_key(m: &objects::ManagedObject) -> Result<(), OpError> {
    let bits = (m.material.len() * 8) as i32;
    if m.length.is_some_and(|l| l != bits) {
        return Err(OpError::InvalidField(
            "Cryptographic Length does not match the key material".into(),
        ));
    }
    if m.algorithm == Some(alg::AES) && ![128, 192, 256].contains(&bits) {
        return Err(OpError::InvalidField(
            "AES keys are 128, 192 or 256 bits".into(),
        ));
    }
    Ok(())
}

/// Certificate Type and Certificate Length, which the server sets for a certificate (KMIP 1.4
/// sections 3.8 and 3.9); nothing for other objects.
fn certificate_attributes(m: &objects::ManagedObject) -> Vec<Attr> {
    match (m.object_type, m.data_type) {
        (ot::CERTIFICATE, Some(certificate_type)) => vec![
            Attr::new("Certificate Type", Value::Enumeration(certificate_type)),
            Attr::new(
                "Certificate Length",
                Value::Integer(i32::try_from(m.material.len()).unwrap_or(i32::MAX)),
            ),
        ],
        _ => Vec::new(),
    }
}
