//! Create: generates a symmetric key (AES-128/192/256, HMAC-SHA-256/384/512) from the CSPRNG,
//! and the shared path that stores any new object (Create and Register): client attribute
//! checks, server-set attributes, wrapping under the KEK, one durable insert.

use super::Caller;
use super::{Call, Ctx, Object, Reply};
use crate::crypto;
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr, Setter};
use crate::kmip::enums::{
    cryptographic_algorithm as alg, drbg_algorithm, hashing_algorithm, key_format_type as kft,
    object_type as ot, protection_storage_mask, rng_algorithm, state,
};
use crate::kmip::objects::{self, ManagedObject};
use crate::ttlv::{Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// Runs Create.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let object_type = call.object_type()?;
    if object_type != ot::SYMMETRIC_KEY {
        return Err(OpError::InvalidField(
            "Create makes Symmetric Keys only".into(),
        ));
    }
    let attrs = attributes::read_request_attributes(call.payload, call.version)?;
    let (algorithm, length) = key_spec(&attrs)?;
    let managed = ManagedObject {
        object_type,
        material: crypto::random_bytes(length as usize / 8),
        format: kft::RAW,
        algorithm: Some(algorithm),
        length: Some(length),
        data_type: None,
        split: Vec::new(),
    };
    // KMIP 1.4 §3.43 / 2.0 §4.38: mandatory for objects the server generates, equal to the
    // Initial Date. (A registered object's is when the client made it, which akm cannot know.)
    let generated = vec![
        Attr::new(attr::ORIGINAL_CREATION_DATE, Value::DateTime(call.now)),
        generator(),
    ];
    let uid = store_new(ctx, who, call, attrs, generated, managed)?;
    Ok(Reply {
        payload: vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, object_type),
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
        ],
        uid: Some(uid),
    })
}

fn int_attr(attrs: &[Attr], name: &str) -> Option<i32> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| match a.value {
            Value::Integer(v) => Some(v),
            _ => None,
        })
}

/// The algorithm and length to generate, checked against what akm can make.
fn key_spec(attrs: &[Attr]) -> Result<(u32, i32), OpError> {
    let algorithm = attrs
        .iter()
        .find(|a| a.name == attr::CRYPTOGRAPHIC_ALGORITHM)
        .and_then(|a| match a.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| OpError::InvalidField("Cryptographic Algorithm is required".into()))?;
    let length = int_attr(attrs, attr::CRYPTOGRAPHIC_LENGTH);
    let allowed: &[i32] = match algorithm {
        alg::AES => &[128, 192, 256],
        alg::HMAC_SHA256 => &[256],
        alg::HMAC_SHA384 => &[384],
        alg::HMAC_SHA512 => &[512],
        _ => {
            return Err(OpError::InvalidField(
                "Create supports AES and HMAC-SHA-256/384/512".into(),
            ))
        }
    };
    let length = match length {
        Some(l) => l,
        // An HMAC key's natural length is its hash's output; AES has no default.
        None if algorithm != alg::AES => allowed[0],
        None => {
            return Err(OpError::InvalidField(
                "Cryptographic Length is required".into(),
            ))
        }
    };
    if !allowed.contains(&length) {
        return Err(OpError::InvalidField(format!(
            "Cryptographic Length {length} is not valid for this algorithm"
        )));
    }
    Ok((algorithm, length))
}

/// A new random Unique Identifier (an RFC 4122 version 4 UUID).
pub fn new_uid() -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&crypto::random_bytes(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Checks the client's attributes for a new object: nothing server-set, no second instance of
/// a single-valued attribute.
pub fn check_client_attributes(attrs: &[Attr]) -> Result<(), OpError> {
    for (i, a) in attrs.iter().enumerate() {
        if a.name.starts_with("y-") {
            return Err(OpError::InvalidField(format!(
                "{:?} is a server attribute",
                a.name
            )));
        }
        let Some(spec) = attributes::spec_by_name(&a.name) else {
            continue;
        };
        if spec.setter == Setter::Server {
            return Err(OpError::InvalidField(format!(
                "{:?} is set by the server",
                a.name
            )));
        }
        if !spec.multi && attrs[..i].iter().any(|b| b.name == a.name) {
            return Err(OpError::InvalidField(format!(
                "{:?} takes a single value",
                a.name
            )));
        }
    }
    Ok(())
}

/// Stores a new object for `who`: checks the client attributes, adds the server-set ones
/// (common ones here, `server_attrs` from the caller), checks the record against the limits
/// on stored attribute bytes, wraps the material under the KEK and inserts it durably. Returns its Unique Identifier.
pub fn store_new(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    client_attrs: Vec<Attr>,
    server_attrs: Vec<Attr>,
    managed: ManagedObject,
) -> Result<String, OpError> {
    store_new_object(ctx, who, call, client_attrs, server_attrs, managed, None)
}

/// `store_new`, for an object that may be a key kept wrapped as registered
/// (`registered_wrapping` is then its Key Wrapping Data and `managed.material` its wrapped
/// Key Value).
pub fn store_new_object(
    ctx: &Ctx,
    who: &Caller,
    call: &Call<'_>,
    mut client_attrs: Vec<Attr>,
    server_attrs: Vec<Attr>,
    managed: ManagedObject,
    registered_wrapping: Option<Ttlv>,
) -> Result<String, OpError> {
    // The access attributes become the object's policy, not attributes of it.
    let policy = who.policy_for_new(&mut client_attrs)?;
    check_client_attributes(&client_attrs)?;
    let now = call.now;
    let uid = new_uid();
    let mut obj = Object {
        uid: uid.clone(),
        object_type: managed.object_type,
        owner: policy.owner,
        owner_group: policy.group,
        access_mode: policy.mode,
        initial_date: now,
        key_version: 1,
        attrs: Vec::new(),
        format: managed.format,
        data_type: managed.data_type,
        split: managed.split.clone(),
        material_destroyed: false,
        registered_wrapping,
    };
    obj.set(attr::UNIQUE_IDENTIFIER, Value::TextString(uid.clone()));
    // KMIP 2.1 §4.56: a 32-byte identifier, SHA-256 of the Unique Identifier.
    obj.set(
        attr::SHORT_UNIQUE_IDENTIFIER,
        Value::ByteString(Zeroizing::new(crypto::sha256(uid.as_bytes()))),
    );
    obj.set(attr::OBJECT_TYPE, Value::Enumeration(managed.object_type));
    // KMIP 2.1 §4.26: every object with a key block has its Key Format Type as an attribute.
    if objects::has_key_block(managed.object_type) {
        obj.set(attr::KEY_FORMAT_TYPE, Value::Enumeration(managed.format));
    }
    if let Some(a) = managed.algorithm {
        obj.set(attr::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(a));
    }
    if let Some(l) = managed.length {
        obj.set(attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(l));
    }
    for a in client_attrs
        .iter_mut()
        .filter(|a| a.name == attr::USAGE_LIMITS)
    {
        a.value = super::key_use::usage_limits_from_client(&a.value, None);
    }
    for Attr { name, value } in client_attrs.into_iter().chain(server_attrs) {
        // Single-valued ones replace what the key block said (algorithm, length).
        if attributes::spec_by_name(&name).is_some_and(|s| !s.multi) {
            obj.set(&name, value);
        } else {
            obj.attrs.push(Attr { name, value });
        }
    }
    check_quantum_safe(&obj)?;
    // Pre-Active, unless the dates given already make it Active or Deactivated.
    obj.set(attr::STATE, Value::Enumeration(state::PRE_ACTIVE));
    obj.settle_state(now);
    obj.set(attr::INITIAL_DATE, Value::DateTime(now));
    set_storage_defaults(&mut obj);
    // The digest of a key's material; a key kept wrapped has none this server can compute.
    if obj.registered_wrapping.is_none() {
        obj.set(attr::DIGEST, digest(&managed.material));
    }
    obj.touch(now);
    let row = obj.to_row();
    let len = row.attributes.len();
    ctx.attribute_limits
        .check_write(None, &obj, len, super::stored_size::Writer::Client)?;
    let wrapped = ctx.kek.wrap(&uid, obj.key_version, &managed.material)?;
    ctx.store
        .write(move |tx| tx.insert(&row, Some(&wrapped)))
        .map_err(|e| OpError::from(e).created(&uid))?;
    Ok(uid)
}

/// How long a client may use an object before it should fetch it again (Lease Time, KMIP
/// 1.4 §3.20, set by the server at creation). akm grants the same lease to every object.
pub const LEASE_TIME_SECS: u32 = 3600;

/// The attributes the server sets on every new object (KMIP 2.1 §4: each "SHALL always have
/// a value"): Sensitive false and Extractable true unless the client gave them, Always
/// Sensitive and Never Extractable following them, Fresh (unless the client gave it), Lease
/// Time, and the Protection Storage Mask of where the key is kept (wrapped in software).
pub fn set_storage_defaults(obj: &mut Object) {
    let sensitive = obj.get(attr::SENSITIVE) == Some(&Value::Boolean(true));
    let extractable = obj.get(attr::EXTRACTABLE) != Some(&Value::Boolean(false));
    obj.set(attr::SENSITIVE, Value::Boolean(sensitive));
    obj.set(attr::ALWAYS_SENSITIVE, Value::Boolean(sensitive));
    obj.set(attr::EXTRACTABLE, Value::Boolean(extractable));
    obj.set(attr::NEVER_EXTRACTABLE, Value::Boolean(!extractable));
    if obj.get(attr::FRESH).is_none() {
        obj.set(attr::FRESH, Value::Boolean(true));
    }
    obj.set(attr::LEASE_TIME, Value::Interval(LEASE_TIME_SECS));
    obj.set(
        attr::PROTECTION_STORAGE_MASK,
        Value::Integer(protection_storage_mask::SOFTWARE),
    );
}

/// The Random Number Generator attribute (KMIP 1.4 §3.44) of a key akm generates: its
/// SP 800-90A CTR_DRBG with AES-256 (crypto::drbg), seeded from the operating system.
pub fn generator() -> Attr {
    Attr::new(
        attr::RANDOM_NUMBER_GENERATOR,
        Value::Structure(vec![
            Ttlv::enumeration(Tag::RNG_ALGORITHM, rng_algorithm::DRBG),
            Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
            Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
            Ttlv::enumeration(Tag::DRBG_ALGORITHM, drbg_algorithm::CTR),
        ]),
    )
}

/// Refuses an object the client asked to be Quantum Safe (KMIP 2.1 §4.45) that is not: a
/// symmetric key shorter than 256 bits (a quantum search halves its strength) or any public
/// or private key (the algorithms akm can hold, RSA, DSA and elliptic curves, fall to Shor's
/// algorithm). Other objects carry no algorithm akm could judge.
fn check_quantum_safe(obj: &Object) -> Result<(), OpError> {
    if obj.get(attr::QUANTUM_SAFE) != Some(&Value::Boolean(true)) {
        return Ok(());
    }
    let safe = match obj.object_type {
        ot::SYMMETRIC_KEY => obj.int_attr(attr::CRYPTOGRAPHIC_LENGTH).unwrap_or(0) >= 256,
        ot::PUBLIC_KEY | ot::PRIVATE_KEY => false,
        _ => true,
    };
    if safe {
        Ok(())
    } else {
        Err(OpError::NotQuantumSafe)
    }
}

/// The Digest attribute: SHA-256 over the key material in Raw format.
pub fn digest(material: &Zeroizing<Vec<u8>>) -> Value {
    Value::Structure(vec![
        Ttlv::enumeration(Tag::HASHING_ALGORITHM, hashing_algorithm::SHA_256),
        Ttlv::bytes(Tag::DIGEST_VALUE, crypto::sha256(material)),
        Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
    ])
}
