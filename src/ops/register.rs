//! Register: stores a client-supplied Symmetric Key, Secret Data, Opaque Object, Public Key,
//! Private Key, Split Key or Certificate.

use super::create::{store_new, store_new_object};
use super::unwrap::WrappedRegister;
use super::Caller;
use super::{unwrap, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{cryptographic_algorithm as alg, object_type as ot};
use crate::kmip::objects;
use crate::ttlv::Value;
use x509_parser::prelude::{parse_x509_certificate, X509Name};

/// Runs Register.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let object_type = call.object_type()?;
    let attrs = attributes::read_request_attributes(call.payload, call.version)?;
    // A key wrapped under a key akm holds is unwrapped first, then stored like any other; one
    // wrapped under a key that is not here is kept as registered.
    let unwrapped = match unwrap::unwrapped_payload(ctx, who, call, object_type)? {
        WrappedRegister::NotWrapped => None,
        WrappedRegister::Unwrapped(p) => Some(p),
        WrappedRegister::AsRegistered(wrapping_uid) => {
            return register_as_registered(ctx, who, call, attrs, object_type, wrapping_uid)
        }
    };
    let payload = unwrapped.as_ref().unwrap_or(call.payload);
    let mut managed = objects::parse_object(payload, object_type)?;
    if object_type == ot::SYMMETRIC_KEY {
        check_symmetric_key(&managed)?;
    }
    // The key length is a property of the bytes given; record it when the client did not.
    if managed.length.is_none() && object_type == ot::SYMMETRIC_KEY {
        managed.length = Some((managed.material.len() * 8) as i32);
    }
    let server_attrs = match object_type {
        ot::CERTIFICATE => certificate_attributes(&managed),
        _ => Vec::new(),
    };
    let uid = store_new(ctx, who, call, attrs, server_attrs, managed)?;
    Ok(Reply::uid_only(uid))
}

/// Stores a key wrapped under a key that is not on this server as registered: Get returns it
/// so, and no operation can use it here. KMIP 2.1 §6.1.40: the server links it to its wrapping
/// key (Wrapping Key Link, a 2.x Link Type, so only for 2.x requests).
fn register_as_registered(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    attrs: Vec<Attr>,
    object_type: u32,
    wrapping_uid: Option<String>,
) -> Result<Reply, OpError> {
    let (managed, wrapping) = objects::parse_wrapped_object(call.payload, object_type)?;
    let server_attrs = match wrapping_uid {
        Some(uid) if call.version.is_v2() => vec![super::rekey::link(
            crate::kmip::enums::link_type::WRAPPING_KEY_LINK,
            &uid,
        )],
        _ => Vec::new(),
    };
    let uid = store_new_object(ctx, who, call, attrs, server_attrs, managed, Some(wrapping))?;
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

/// What the server records about a Certificate (KMIP 1.4 §3.8-3.9, 2.1 §4.6-4.8): its type
/// and length in bytes, and for an X.509 certificate that parses, the subject and issuer
/// common names. A certificate that does not parse is still stored, without the names.
fn certificate_attributes(m: &objects::ManagedObject) -> Vec<Attr> {
    let mut out = vec![Attr::new(
        "Certificate Length",
        Value::Integer(i32::try_from(m.material.len()).unwrap_or(i32::MAX)),
    )];
    if let Some(t) = m.data_type {
        out.push(Attr::new("Certificate Type", Value::Enumeration(t)));
    }
    if let Ok((_, cert)) = parse_x509_certificate(&m.material) {
        for (name, field) in [
            ("Certificate Subject CN", cert.subject()),
            ("Certificate Issuer CN", cert.issuer()),
        ] {
            if let Some(cn) = common_name(field) {
                out.push(Attr::new(name, Value::TextString(cn)));
            }
        }
    }
    out
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}
