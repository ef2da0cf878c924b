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

use crate::kmip::attr;
use crate::ttlv::{Tag, Ttlv, Value};
use x509_parser::prelude::{parse_x509_certificate, X509Certificate, X509Name};

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
    // PCI mode: no manual establishment of keys in the clear; wrapped ones are fine.
    if unwrapped.is_none() && ctx.crypto.clear_refused(object_type) {
        return Err(OpError::ClearImportRefused);
    }
    let payload = unwrapped.as_ref().unwrap_or(call.payload);
    let mut managed = objects::parse_object(payload, object_type)?;
    if object_type == ot::SYMMETRIC_KEY {
        check_symmetric_key(&managed, &attrs)?;
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

/// A key of an algorithm akm refuses is refused as such, as Create refuses it, before its
/// length is looked at (a 168-bit Triple-DES key comes as 192 bits with parity, SP 800-67, and
/// must not be answered with a length mismatch). An AES key must have an AES length and match
/// its declared length.
fn check_symmetric_key(m: &objects::ManagedObject, attrs: &[Attr]) -> Result<(), OpError> {
    let named = attrs
        .iter()
        .filter(|a| a.name == attr::CRYPTOGRAPHIC_ALGORITHM)
        .filter_map(|a| match a.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        });
    if let Some(name) = m
        .algorithm
        .into_iter()
        .chain(named)
        .find_map(crate::crypto::digest::refused_algorithm)
    {
        return Err(OpError::RefusedAlgorithm(name));
    }
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

/// What the server records about a Certificate (KMIP 1.4 §3.8-3.9, §3.12-3.15, 2.1 §4.6-4.8,
/// §4.15, §4.59-4.61): its type and length in bytes, and for an X.509 certificate that parses,
/// what it says of itself: X.509 Certificate Identifier (issuer DN and serial number), X.509
/// Certificate Subject and Issuer (DER names, and the alternative-name extensions if any),
/// the subject and issuer common names, the Digital Signature Algorithm it is signed with,
/// and the Cryptographic Algorithm and Length of its public key. These replace whatever the
/// client said of them. A certificate that does not parse is still stored, without them.
fn certificate_attributes(m: &objects::ManagedObject) -> Vec<Attr> {
    let mut out = vec![Attr::new(
        attr::CERTIFICATE_LENGTH,
        Value::Integer(i32::try_from(m.material.len()).unwrap_or(i32::MAX)),
    )];
    if let Some(t) = m.data_type {
        out.push(Attr::new(attr::CERTIFICATE_TYPE, Value::Enumeration(t)));
    }
    if let Ok((_, cert)) = parse_x509_certificate(&m.material) {
        for (name, field) in [
            (attr::CERTIFICATE_SUBJECT_CN, cert.subject()),
            (attr::CERTIFICATE_ISSUER_CN, cert.issuer()),
        ] {
            if let Some(cn) = common_name(field) {
                out.push(Attr::new(name, Value::TextString(cn)));
            }
        }
        out.extend(x509_identity(&cert));
        if let Some(d) = signature_algorithm(&cert.signature_algorithm.algorithm.to_id_string()) {
            out.push(Attr::new(
                attr::DIGITAL_SIGNATURE_ALGORITHM,
                Value::Enumeration(d),
            ));
        }
        if let Some((algorithm, bits)) = public_key_of(&cert) {
            out.push(Attr::new(
                attr::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(algorithm),
            ));
            out.push(Attr::new(attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)));
        }
    }
    out
}

/// X.509 Certificate Identifier, Subject and Issuer: the DER of the names and serial number as
/// the certificate has them, and the raw Subject/Issuer Alternative Name extension values.
fn x509_identity(cert: &X509Certificate<'_>) -> Vec<Attr> {
    use x509_parser::oid_registry::{OID_X509_EXT_ISSUER_ALT_NAME, OID_X509_EXT_SUBJECT_ALT_NAME};
    let extension = |oid| {
        cert.extensions()
            .iter()
            .find(|e| e.oid == oid)
            .map(|e| e.value.to_vec())
    };
    let bytes = |tag, b: &[u8]| Ttlv::bytes(tag, b.to_vec());
    let mut subject = vec![bytes(
        Tag::SUBJECT_DISTINGUISHED_NAME,
        cert.subject().as_raw(),
    )];
    subject.extend(
        extension(OID_X509_EXT_SUBJECT_ALT_NAME)
            .map(|v| Ttlv::bytes(Tag::SUBJECT_ALTERNATIVE_NAME, v)),
    );
    let mut issuer = vec![bytes(
        Tag::ISSUER_DISTINGUISHED_NAME,
        cert.issuer().as_raw(),
    )];
    issuer.extend(
        extension(OID_X509_EXT_ISSUER_ALT_NAME)
            .map(|v| Ttlv::bytes(Tag::ISSUER_ALTERNATIVE_NAME, v)),
    );
    vec![
        Attr::new(
            attr::X_509_CERTIFICATE_IDENTIFIER,
            Value::Structure(vec![
                bytes(Tag::ISSUER_DISTINGUISHED_NAME, cert.issuer().as_raw()),
                bytes(Tag::CERTIFICATE_SERIAL_NUMBER, cert.raw_serial()),
            ]),
        ),
        Attr::new(attr::X_509_CERTIFICATE_SUBJECT, Value::Structure(subject)),
        Attr::new(attr::X_509_CERTIFICATE_ISSUER, Value::Structure(issuer)),
    ]
}

/// The Digital Signature Algorithm of a certificate signature algorithm OID.
fn signature_algorithm(oid: &str) -> Option<u32> {
    use crate::kmip::enums::digital_signature_algorithm as dsa;
    Some(match oid {
        "1.2.840.113549.1.1.2" => dsa::MD2_WITH_RSA_ENCRYPTION,
        "1.2.840.113549.1.1.4" => dsa::MD5_WITH_RSA_ENCRYPTION,
        "1.2.840.113549.1.1.5" => dsa::SHA_1_WITH_RSA_ENCRYPTION,
        "1.2.840.113549.1.1.14" => dsa::SHA_224_WITH_RSA_ENCRYPTION,
        "1.2.840.113549.1.1.11" => dsa::SHA_256_WITH_RSA_ENCRYPTION,
        "1.2.840.113549.1.1.12" => dsa::SHA_384_WITH_RSA_ENCRYPTION,
        "1.2.840.113549.1.1.13" => dsa::SHA_512_WITH_RSA_ENCRYPTION,
        "1.2.840.113549.1.1.10" => dsa::RSASSA_PSS,
        "1.2.840.10040.4.3" => dsa::DSA_WITH_SHA_1,
        "2.16.840.1.101.3.4.3.1" => dsa::DSA_WITH_SHA224,
        "2.16.840.1.101.3.4.3.2" => dsa::DSA_WITH_SHA256,
        "1.2.840.10045.4.1" => dsa::ECDSA_WITH_SHA_1,
        "1.2.840.10045.4.3.1" => dsa::ECDSA_WITH_SHA224,
        "1.2.840.10045.4.3.2" => dsa::ECDSA_WITH_SHA256,
        "1.2.840.10045.4.3.3" => dsa::ECDSA_WITH_SHA384,
        "1.2.840.10045.4.3.4" => dsa::ECDSA_WITH_SHA512,
        "2.16.840.1.101.3.4.3.14" => dsa::SHA3_256_WITH_RSA_ENCRYPTION,
        "2.16.840.1.101.3.4.3.15" => dsa::SHA3_384_WITH_RSA_ENCRYPTION,
        "2.16.840.1.101.3.4.3.16" => dsa::SHA3_512_WITH_RSA_ENCRYPTION,
        _ => return None,
    })
}

/// The algorithm and size in bits of a certificate's RSA or EC public key.
fn public_key_of(cert: &X509Certificate<'_>) -> Option<(u32, i32)> {
    use x509_parser::public_key::PublicKey;
    match cert.public_key().parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let modulus = rsa.modulus;
            let start = modulus.iter().position(|b| *b != 0)?;
            let bits = (modulus.len() - start) * 8 - modulus[start].leading_zeros() as usize;
            Some((alg::RSA, i32::try_from(bits).ok()?))
        }
        PublicKey::EC(point) => {
            Some((alg::EC, i32::try_from(point.key_size()).ok()?)).filter(|(_, b)| *b > 0)
        }
        _ => None,
    }
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}
