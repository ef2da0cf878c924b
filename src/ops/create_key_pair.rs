//! Create Key Pair (KMIP 1.4 §4.2, 2.1 §6.1.9): generates an RSA (2048, 3072, 4096 bits) or
//! EC (P-256, P-384) key pair and stores the private key (PKCS#1 for RSA, PKCS#8 for EC) and
//! the public key (PKCS#1 for RSA, X.509 SubjectPublicKeyInfo for EC), linked to each other
//! (Public Key Link, Private Key Link). Attributes come from the common and the per-key
//! templates (1.x) or attribute lists (2.x), the per-key ones winning. Without a usage mask
//! the private key may Sign and the public key Verify.

use super::create::{generator, store_new};
use super::rekey::link;
use super::{modify, Call, Caller, Ctx, Reply};
use crate::crypto::asym;
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{
    cryptographic_algorithm as alg, cryptographic_usage_mask as usage, link_type,
    object_type as ot, operation,
};
use crate::kmip::objects::ManagedObject;
use crate::ttlv::{Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// Runs Create Key Pair.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let (common_tag, private_tag, public_tag) = if call.version.is_v2() {
        (
            Tag::COMMON_ATTRIBUTES,
            Tag::PRIVATE_KEY_ATTRIBUTES,
            Tag::PUBLIC_KEY_ATTRIBUTES,
        )
    } else {
        (
            Tag::COMMON_TEMPLATE_ATTRIBUTE,
            Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
            Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
        )
    };
    let common = read_list(call, common_tag)?;
    let private_attrs = merged(&common, read_list(call, private_tag)?);
    let public_attrs = merged(&common, read_list(call, public_tag)?);
    let algorithm = enum_of(&private_attrs, attr::CRYPTOGRAPHIC_ALGORITHM)
        .ok_or_else(|| OpError::InvalidMessage("missing Cryptographic Algorithm".into()))?;
    let length = int_of(&private_attrs, attr::CRYPTOGRAPHIC_LENGTH)
        .ok_or_else(|| OpError::InvalidMessage("missing Cryptographic Length".into()))?;
    if let Some(name) = crate::crypto::digest::refused_algorithm(algorithm) {
        return Err(OpError::RefusedAlgorithm(name));
    }
    ctx.attribute_limits.check_client(&private_attrs)?;
    ctx.attribute_limits.check_client(&public_attrs)?;
    // PCI key separation across the pair (the masks are fixed at creation): a public key
    // that wraps and a private key that decrypts would undo each other's wrappings.
    let pair_mask = int_of(&private_attrs, attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0)
        | int_of(&public_attrs, attr::CRYPTOGRAPHIC_USAGE_MASK).unwrap_or(0);
    ctx.crypto.check_separation(pair_mask)?;
    let pair = match algorithm {
        alg::RSA => asym::generate_rsa(length),
        alg::EC | alg::ECDSA => asym::generate_ec(length),
        _ => {
            return Err(OpError::UnsupportedParameters(
                "Create Key Pair makes RSA and EC (ECDSA) keys",
            ))
        }
    }
    .map_err(|e| OpError::InvalidField(e.to_string()))?;
    let private = ManagedObject {
        object_type: ot::PRIVATE_KEY,
        material: Zeroizing::new(
            Ttlv::bytes(Tag::KEY_MATERIAL, pair.private_der.to_vec()).encode(),
        ),
        format: pair.private_format,
        algorithm: Some(algorithm),
        length: Some(length),
        data_type: None,
        split: Vec::new(),
    };
    let public = ManagedObject {
        object_type: ot::PUBLIC_KEY,
        material: Zeroizing::new(Ttlv::bytes(Tag::KEY_MATERIAL, pair.public_der.clone()).encode()),
        format: pair.public_format,
        algorithm: Some(algorithm),
        length: Some(length),
        data_type: None,
        split: Vec::new(),
    };
    let generated = || {
        vec![
            Attr::new(attr::ORIGINAL_CREATION_DATE, Value::DateTime(call.now)),
            generator(),
        ]
    };
    let private_uid = store_new(
        ctx,
        who,
        call,
        with_default_mask(private_attrs, usage::SIGN),
        generated(),
        private,
    )?;
    let mut public_generated = generated();
    public_generated.push(link(link_type::PRIVATE_KEY_LINK, &private_uid));
    let public_uid = store_new(
        ctx,
        who,
        call,
        with_default_mask(public_attrs, usage::VERIFY),
        public_generated,
        public,
    )?;
    let forward = link(link_type::PUBLIC_KEY_LINK, &public_uid);
    modify(
        ctx,
        who,
        private_uid.clone(),
        operation::CREATE_KEY_PAIR,
        call.now,
        move |obj| {
            obj.attrs.push(forward);
            Ok(())
        },
    )?;
    Ok(Reply {
        payload: vec![
            Ttlv::text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, private_uid.clone()),
            Ttlv::text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER, public_uid),
        ],
        uid: Some(private_uid),
    })
}

/// The attributes of one template (1.x) or attribute list (2.x), if the request has it.
fn read_list(call: &Call<'_>, tag: Tag) -> Result<Vec<Attr>, OpError> {
    let Some(list) = call.payload.child(tag) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in list.children() {
        let attr = if call.version.is_v2() {
            attributes::from_v2(item)?
        } else if item.tag == Tag::ATTRIBUTE {
            attributes::from_v1(item)?.0
        } else {
            return Err(OpError::InvalidMessage(
                "templates are not supported; give attributes".into(),
            ));
        };
        attributes::check_type(&attr)?;
        out.push(attr);
    }
    Ok(out)
}

/// The common attributes overridden by the per-key ones: a single-valued attribute the key's
/// list names replaces the common value; multi-valued ones add up.
fn merged(common: &[Attr], own: Vec<Attr>) -> Vec<Attr> {
    let mut out: Vec<Attr> = common
        .iter()
        .filter(|c| {
            let single = attributes::spec_by_name(&c.name).is_none_or(|s| !s.multi);
            !(single && own.iter().any(|o| o.name == c.name))
        })
        .cloned()
        .collect();
    out.extend(own);
    out
}

fn with_default_mask(mut attrs: Vec<Attr>, mask: i32) -> Vec<Attr> {
    if !attrs
        .iter()
        .any(|a| a.name == attr::CRYPTOGRAPHIC_USAGE_MASK)
    {
        attrs.push(Attr::new(
            attr::CRYPTOGRAPHIC_USAGE_MASK,
            Value::Integer(mask),
        ));
    }
    attrs
}

fn enum_of(attrs: &[Attr], name: &str) -> Option<u32> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| match a.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        })
}

fn int_of(attrs: &[Attr], name: &str) -> Option<i32> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| match a.value {
            Value::Integer(v) => Some(v),
            _ => None,
        })
}
