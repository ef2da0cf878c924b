//! Get with Key Format Type PKCS#12 (KMIP 2.1 §6.1.19): a Private Key with its certificate
//! chain in a password-protected PKCS#12 container (`crypto::pkcs12`). The password is the
//! Secret Data the key's PKCS#12 Password Link names; the chain starts at the certificate the
//! key's PKCS#12 Certificate Link names, or the one its public key's (Public Key Link) PKCS#12
//! Certificate Link or Certificate Link names, and follows each certificate's Certificate Link.
//! The bags are named by the key's PKCS#12 Friendly Name ("alias" without one, §4.39). Every
//! linked object is read with the caller's own Get permission.

use super::{load_for, Caller, Ctx, Object};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::{key_format_type as kft, link_type, object_type as ot, operation, state};
use crate::ttlv::{Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// How many certificates a chain may have; a longer one (or a loop) is refused.
const MAX_CHAIN: usize = 10;

/// The Private Key object whose Key Material is the PKCS#12 container of `obj`.
pub fn export(ctx: &Ctx, who: &Caller, obj: &Object, material: &[u8]) -> Result<Ttlv, OpError> {
    if obj.object_type != ot::PRIVATE_KEY {
        return Err(OpError::KeyFormatNotSupported);
    }
    let pkcs8 = private_key_pkcs8(obj, material)?;
    let password = password(ctx, who, obj)?;
    let chain = certificate_chain(ctx, who, obj)?;
    let friendly_name = match obj.get(attr::PKCS_12_FRIENDLY_NAME) {
        Some(Value::TextString(n)) => n.clone(),
        _ => "alias".to_owned(),
    };
    let pfx = crate::crypto::pkcs12::write(&pkcs8, &chain, &friendly_name, &password)?;
    let mut block = vec![
        Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::PKCS_12),
        Ttlv::structure(
            Tag::KEY_VALUE,
            vec![Ttlv::bytes(Tag::KEY_MATERIAL, pfx.to_vec())],
        ),
    ];
    if let Some(a) = obj.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM) {
        block.push(Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, a));
    }
    if let Some(l) = obj.int_attr(attr::CRYPTOGRAPHIC_LENGTH) {
        block.push(Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, l));
    }
    Ok(Ttlv::structure(
        Tag::PRIVATE_KEY,
        vec![Ttlv::structure(Tag::KEY_BLOCK, block)],
    ))
}

/// The private key as PKCS#8 DER, from whichever DER format it is stored in.
fn private_key_pkcs8(obj: &Object, material: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpError> {
    use crate::crypto::asym;
    let item = crate::ttlv::decode(material, &crate::ttlv::Limits::default())
        .map_err(|_| OpError::CorruptRecord(obj.uid.clone()))?;
    let der = item.as_bytes().ok_or(OpError::KeyFormatNotSupported)?;
    let converted = match obj.format {
        kft::PKCS_8 => Ok(Zeroizing::new(der.to_vec())),
        kft::PKCS_1 => asym::convert_rsa(true, kft::PKCS_1, der, kft::PKCS_8),
        kft::ECPRIVATEKEY => asym::convert_ec_private(kft::ECPRIVATEKEY, der, kft::PKCS_8),
        _ => return Err(OpError::KeyFormatNotSupported),
    };
    converted.map_err(|_| OpError::KeyFormatNotSupported)
}

/// A linked object and its plain material, read with the caller's Get permission.
fn load_linked(
    ctx: &Ctx,
    who: &Caller,
    uid: &str,
) -> Result<(Object, Zeroizing<Vec<u8>>), OpError> {
    let obj = load_for(ctx, who, uid, operation::GET)?;
    if matches!(obj.state(), state::DESTROYED | state::DESTROYED_COMPROMISED) {
        return Err(OpError::ObjectDestroyed);
    }
    if obj.registered_wrapping.is_some() {
        return Err(OpError::WrappedAsRegistered);
    }
    let wrapped = ctx
        .store
        .get_material(uid)?
        .ok_or(OpError::ObjectDestroyed)?;
    let material = ctx.kek.unwrap(uid, obj.key_version, &wrapped)?;
    Ok((obj, material))
}

/// The container password: the Secret Data of the PKCS#12 Password Link, as UTF-8 text.
fn password(ctx: &Ctx, who: &Caller, obj: &Object) -> Result<Zeroizing<String>, OpError> {
    let uid = obj.link(link_type::PKCS_12_PASSWORD_LINK).ok_or_else(|| {
        OpError::InvalidField(
            "PKCS#12 needs a PKCS#12 Password Link from the key to a Secret Data".into(),
        )
    })?;
    let (secret, material) = load_linked(ctx, who, &uid)?;
    if secret.object_type != ot::SECRET_DATA {
        return Err(OpError::InvalidField(
            "the PKCS#12 Password Link does not name a Secret Data".into(),
        ));
    }
    let text = std::str::from_utf8(&material)
        .map_err(|_| OpError::InvalidField("the PKCS#12 password is not UTF-8 text".into()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// The key's certificate and the certificates that issued it, the key's own first.
fn certificate_chain(ctx: &Ctx, who: &Caller, obj: &Object) -> Result<Vec<Vec<u8>>, OpError> {
    let mut next = obj.link(link_type::PKCS_12_CERTIFICATE_LINK);
    if next.is_none() {
        if let Some(public) = obj.link(link_type::PUBLIC_KEY_LINK) {
            let public = load_for(ctx, who, &public, operation::GET)?;
            next = Object::link(&public, link_type::PKCS_12_CERTIFICATE_LINK)
                .or_else(|| Object::link(&public, link_type::CERTIFICATE_LINK));
        }
    }
    let mut seen = Vec::new();
    let mut chain = Vec::new();
    while let Some(uid) = next.take() {
        if seen.contains(&uid) {
            break; // A self-signed root links to itself.
        }
        if chain.len() == MAX_CHAIN {
            return Err(OpError::InvalidField(format!(
                "the certificate chain is longer than {MAX_CHAIN}"
            )));
        }
        let (cert, der) = load_linked(ctx, who, &uid)?;
        if cert.object_type != ot::CERTIFICATE {
            return Err(OpError::InvalidField(
                "a PKCS#12 certificate link does not name a Certificate".into(),
            ));
        }
        chain.push(der.to_vec());
        next = Object::link(&cert, link_type::CERTIFICATE_LINK);
        seen.push(uid);
    }
    Ok(chain)
}
