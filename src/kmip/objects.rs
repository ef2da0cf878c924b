//! Managed objects on the wire: Symmetric Key, Secret Data, Opaque Object, Public Key, Private
//! Key, Split Key and Certificate, with their Key Block, parsed from Register requests and built
//! for Get responses. Carries key bytes in zeroizing buffers and never formats them.
//!
//! akm does no public-key cryptography: a Public or Private Key is kept exactly as registered
//! (its Key Material item, byte string or transparent structure, in TTLV) and served back in
//! the same Key Format Type.

use super::enums::{key_format_type as kft, object_type as ot, split_key_method};
use crate::ttlv::{self, ItemType, Tag, Ttlv};
use std::fmt;
use zeroize::Zeroizing;

/// A managed object's content as akm keeps it: the bare key bytes plus how they were given.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagedObject {
    /// Object Type enumeration.
    pub object_type: u32,
    /// The key bytes (raw symmetric key, secret data, opaque data, certificate); for a Public
    /// or Private Key, the TTLV encoding of its Key Material item.
    pub material: Zeroizing<Vec<u8>>,
    /// The Key Format Type it was registered or created in.
    pub format: u32,
    /// Cryptographic Algorithm from the Key Block, if any.
    pub algorithm: Option<u32>,
    /// Cryptographic Length from the Key Block, if any.
    pub length: Option<i32>,
    /// Secret Data Type, Opaque Data Type or Certificate Type.
    pub data_type: Option<u32>,
    /// A Split Key's fields before its Key Block (Split Key Parts, Key Part Identifier, Split
    /// Key Threshold, Split Key Method, Prime Field Size), in that order; empty otherwise.
    pub split: Vec<Ttlv>,
}

/// True for the object types kept as a TTLV-encoded Key Material item.
fn is_asymmetric(object_type: u32) -> bool {
    matches!(object_type, ot::PUBLIC_KEY | ot::PRIVATE_KEY)
}

/// True for the object types that have a Key Block (and so a Key Format Type).
pub fn has_key_block(object_type: u32) -> bool {
    matches!(
        object_type,
        ot::SYMMETRIC_KEY | ot::SECRET_DATA | ot::PUBLIC_KEY | ot::PRIVATE_KEY | ot::SPLIT_KEY
    )
}

impl fmt::Debug for ManagedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedObject")
            .field("object_type", &self.object_type)
            .field("material", &format_args!("<{} bytes>", self.material.len()))
            .field("format", &self.format)
            .field("algorithm", &self.algorithm)
            .field("length", &self.length)
            .field("split", &format_args!("<{} fields>", self.split.len()))
            .finish()
    }
}

/// Why an object could not be read or produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// The structure is malformed or inconsistent (Invalid Field).
    Invalid(String),
    /// The object cannot be given in the requested Key Format Type.
    FormatNotSupported,
    /// Wrapped key import/export is not supported yet.
    WrappingNotSupported,
    /// This object type is not one akm stores.
    TypeNotSupported,
}

fn invalid(msg: impl Into<String>) -> ObjectError {
    ObjectError::Invalid(msg.into())
}

/// The tag of the object structure for an Object Type.
pub fn object_tag(object_type: u32) -> Option<Tag> {
    match object_type {
        ot::SYMMETRIC_KEY => Some(Tag::SYMMETRIC_KEY),
        ot::SECRET_DATA => Some(Tag::SECRET_DATA),
        ot::OPAQUE_OBJECT => Some(Tag::OPAQUE_OBJECT),
        ot::PUBLIC_KEY => Some(Tag::PUBLIC_KEY),
        ot::PRIVATE_KEY => Some(Tag::PRIVATE_KEY),
        ot::SPLIT_KEY => Some(Tag::SPLIT_KEY),
        ot::CERTIFICATE => Some(Tag::CERTIFICATE),
        _ => None,
    }
}

/// Reads the object of `object_type` from a Register payload.
pub fn parse_object(payload: &Ttlv, object_type: u32) -> Result<ManagedObject, ObjectError> {
    let tag = object_tag(object_type).ok_or(ObjectError::TypeNotSupported)?;
    let obj = payload
        .child(tag)
        .ok_or_else(|| invalid("Object Type does not match the object given"))?;
    if object_type == ot::OPAQUE_OBJECT {
        let data_type = obj.child(Tag::OPAQUE_DATA_TYPE).and_then(Ttlv::as_enum);
        let data = obj
            .child(Tag::OPAQUE_DATA_VALUE)
            .and_then(Ttlv::as_bytes)
            .ok_or_else(|| invalid("Opaque Object without Opaque Data Value"))?;
        return Ok(ManagedObject {
            object_type,
            material: Zeroizing::new(data.to_vec()),
            format: kft::OPAQUE,
            algorithm: None,
            length: None,
            data_type,
            split: Vec::new(),
        });
    }
    if object_type == ot::CERTIFICATE {
        let certificate_type = obj
            .child(Tag::CERTIFICATE_TYPE)
            .and_then(Ttlv::as_enum)
            .ok_or_else(|| invalid("Certificate without Certificate Type"))?;
        let value = obj
            .child(Tag::CERTIFICATE_VALUE)
            .and_then(Ttlv::as_bytes)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid("Certificate without Certificate Value"))?;
        return Ok(ManagedObject {
            object_type,
            material: Zeroizing::new(value.to_vec()),
            format: 0,
            algorithm: None,
            length: None,
            data_type: Some(certificate_type),
            split: Vec::new(),
        });
    }
    let (data_type, split) = key_object_fields(obj, object_type)?;
    let block = obj
        .child(Tag::KEY_BLOCK)
        .ok_or_else(|| invalid("object without Key Block"))?;
    let mut parsed = parse_key_block(block, object_type)?;
    parsed.data_type = data_type;
    parsed.split = split;
    Ok(parsed)
}

/// The fields of a keyed object outside its Key Block: a Secret Data's type, a Split Key's
/// parts.
fn key_object_fields(
    obj: &Ttlv,
    object_type: u32,
) -> Result<(Option<u32>, Vec<Ttlv>), ObjectError> {
    let data_type = if object_type == ot::SECRET_DATA {
        Some(
            obj.child(Tag::SECRET_DATA_TYPE)
                .and_then(Ttlv::as_enum)
                .ok_or_else(|| invalid("Secret Data without Secret Data Type"))?,
        )
    } else {
        None
    };
    let split = if object_type == ot::SPLIT_KEY {
        split_key_fields(obj)?
    } else {
        Vec::new()
    };
    Ok((data_type, split))
}

/// Reads a wrapped key from a Register payload to keep it as registered (KMIP 2.1 §2.1.3,
/// §6.1.40): the object's fields, with its Key Value, still wrapped, TTLV-encoded as the
/// material, and the Key Wrapping Data. The Key Value is the specification's Byte String or
/// a structure whose Key Material is the wrapped bytes (as PyKMIP sends it); either is
/// returned exactly as given.
pub fn parse_wrapped_object(
    payload: &Ttlv,
    object_type: u32,
) -> Result<(ManagedObject, Ttlv), ObjectError> {
    if !has_key_block(object_type) {
        return Err(ObjectError::TypeNotSupported);
    }
    let tag = object_tag(object_type).ok_or(ObjectError::TypeNotSupported)?;
    let obj = payload
        .child(tag)
        .ok_or_else(|| invalid("Object Type does not match the object given"))?;
    let (data_type, split) = key_object_fields(obj, object_type)?;
    let block = obj
        .child(Tag::KEY_BLOCK)
        .ok_or_else(|| invalid("object without Key Block"))?;
    let wrapping = block
        .child(Tag::KEY_WRAPPING_DATA)
        .ok_or_else(|| invalid("a wrapped key needs its Key Wrapping Data"))?;
    let format = block
        .child(Tag::KEY_FORMAT_TYPE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| invalid("Key Block without Key Format Type"))?;
    let key_value = block
        .child(Tag::KEY_VALUE)
        .ok_or_else(|| invalid("Key Block without Key Value"))?;
    let wrapped = key_value
        .as_bytes()
        .or_else(|| key_value.child(Tag::KEY_MATERIAL).and_then(Ttlv::as_bytes));
    if wrapped.is_none_or(<[u8]>::is_empty) {
        return Err(invalid(
            "a wrapped Key Value must be a non-empty Byte String",
        ));
    }
    Ok((
        ManagedObject {
            data_type,
            split,
            ..from_key_block(block, object_type, format, key_value)
        },
        wrapping.clone(),
    ))
}

/// Builds the object structure of a key kept wrapped as registered: its Key Block as the
/// client gave it, Key Wrapping Data included (KMIP 2.1 §2.1.3 field order).
pub fn encode_wrapped_as_registered(
    obj: &ManagedObject,
    wrapping: &Ttlv,
) -> Result<Ttlv, ObjectError> {
    let tag = object_tag(obj.object_type).ok_or(ObjectError::TypeNotSupported)?;
    let key_value = ttlv::decode(&obj.material, &ttlv::Limits::default())
        .map_err(|_| invalid("stored wrapped Key Value does not decode"))?;
    let mut block = vec![
        Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, obj.format),
        key_value,
    ];
    if let Some(alg) = obj.algorithm {
        block.push(Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg));
    }
    if let Some(len) = obj.length {
        block.push(Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, len));
    }
    block.push(wrapping.clone());
    let mut children = Vec::new();
    if let Some(dt) = obj.data_type {
        children.push(Ttlv::enumeration(Tag::SECRET_DATA_TYPE, dt));
    }
    children.extend(obj.split.iter().cloned());
    children.push(Ttlv::structure(Tag::KEY_BLOCK, block));
    Ok(Ttlv::structure(tag, children))
}

/// A Split Key's own fields (KMIP 1.4 section 2.2.5), checked and put in the specification's
/// order: parts and threshold are positive with threshold at most parts, the part identifier
/// positive, and Prime Field Size given exactly when the method is Polynomial Sharing Prime
/// Field.
fn split_key_fields(obj: &Ttlv) -> Result<Vec<Ttlv>, ObjectError> {
    let positive = |tag: Tag, what: &str| {
        obj.child(tag)
            .and_then(Ttlv::as_int)
            .filter(|v| *v > 0)
            .ok_or_else(|| invalid(format!("Split Key needs a positive {what}")))
    };
    let parts = positive(Tag::SPLIT_KEY_PARTS, "Split Key Parts")?;
    let part = positive(Tag::KEY_PART_IDENTIFIER, "Key Part Identifier")?;
    let threshold = positive(Tag::SPLIT_KEY_THRESHOLD, "Split Key Threshold")?;
    if threshold > parts {
        return Err(invalid("Split Key Threshold exceeds Split Key Parts"));
    }
    let method = obj
        .child(Tag::SPLIT_KEY_METHOD)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| invalid("Split Key without Split Key Method"))?;
    let prime = obj.child(Tag::PRIME_FIELD_SIZE);
    let prime_needed = method == split_key_method::POLYNOMIAL_SHARING_PRIME_FIELD;
    if prime.is_some() != prime_needed {
        return Err(invalid(
            "Prime Field Size goes with Polynomial Sharing Prime Field, and only with it",
        ));
    }
    let mut fields = vec![
        Ttlv::integer(Tag::SPLIT_KEY_PARTS, parts),
        Ttlv::integer(Tag::KEY_PART_IDENTIFIER, part),
        Ttlv::integer(Tag::SPLIT_KEY_THRESHOLD, threshold),
        Ttlv::enumeration(Tag::SPLIT_KEY_METHOD, method),
    ];
    if let Some(p) = prime {
        if p.value.item_type() != ItemType::BigInteger {
            return Err(invalid("Prime Field Size must be a Big Integer"));
        }
        fields.push(p.clone());
    }
    Ok(fields)
}

fn parse_key_block(block: &Ttlv, object_type: u32) -> Result<ManagedObject, ObjectError> {
    if block.child(Tag::KEY_WRAPPING_DATA).is_some() {
        return Err(ObjectError::WrappingNotSupported);
    }
    let format = block
        .child(Tag::KEY_FORMAT_TYPE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| invalid("Key Block without Key Format Type"))?;
    let key_value = block
        .child(Tag::KEY_VALUE)
        .ok_or_else(|| invalid("Key Block without Key Value"))?;
    if is_asymmetric(object_type) {
        return parse_asymmetric(block, key_value, object_type, format);
    }
    let material = match format {
        kft::RAW | kft::OPAQUE => key_value.child(Tag::KEY_MATERIAL).and_then(Ttlv::as_bytes),
        kft::TRANSPARENT_SYMMETRIC_KEY if object_type == ot::SYMMETRIC_KEY => key_value
            .child(Tag::KEY_MATERIAL)
            .and_then(|m| m.child(Tag::KEY))
            .and_then(Ttlv::as_bytes),
        _ => return Err(ObjectError::FormatNotSupported),
    }
    .ok_or_else(|| invalid("Key Value without usable Key Material"))?;
    if material.is_empty() {
        return Err(invalid("empty Key Material"));
    }
    let algorithm = block
        .child(Tag::CRYPTOGRAPHIC_ALGORITHM)
        .and_then(Ttlv::as_enum);
    let length = block
        .child(Tag::CRYPTOGRAPHIC_LENGTH)
        .and_then(Ttlv::as_int);
    Ok(ManagedObject {
        object_type,
        material: Zeroizing::new(material.to_vec()),
        format,
        algorithm,
        length,
        data_type: None,
        split: Vec::new(),
    })
}

/// A Public or Private Key's Key Material, kept whole (as TTLV) in whatever format it came.
fn parse_asymmetric(
    block: &Ttlv,
    key_value: &Ttlv,
    object_type: u32,
    format: u32,
) -> Result<ManagedObject, ObjectError> {
    let item = key_value
        .child(Tag::KEY_MATERIAL)
        .ok_or_else(|| invalid("Key Value without Key Material"))?;
    let empty = match &item.value {
        crate::ttlv::Value::ByteString(b) => b.is_empty(),
        crate::ttlv::Value::Structure(c) => c.is_empty(),
        _ => return Err(invalid("Key Material must be a Byte String or a Structure")),
    };
    if empty {
        return Err(invalid("empty Key Material"));
    }
    Ok(from_key_block(block, object_type, format, item))
}

/// An object whose material is `kept` (encoded whole, as the client gave it), with the
/// algorithm and length its Key Block states.
fn from_key_block(block: &Ttlv, object_type: u32, format: u32, kept: &Ttlv) -> ManagedObject {
    ManagedObject {
        object_type,
        material: Zeroizing::new(kept.encode()),
        format,
        algorithm: block
            .child(Tag::CRYPTOGRAPHIC_ALGORITHM)
            .and_then(Ttlv::as_enum),
        length: block
            .child(Tag::CRYPTOGRAPHIC_LENGTH)
            .and_then(Ttlv::as_int),
        data_type: None,
        split: Vec::new(),
    }
}

/// Builds the object structure for a Get response in `format` (the stored format if None).
pub fn encode_object(obj: &ManagedObject, format: Option<u32>) -> Result<Ttlv, ObjectError> {
    let tag = object_tag(obj.object_type).ok_or(ObjectError::TypeNotSupported)?;
    if obj.object_type == ot::CERTIFICATE {
        if format.is_some() {
            return Err(ObjectError::FormatNotSupported);
        }
        return Ok(Ttlv::structure(
            tag,
            vec![
                Ttlv::enumeration(Tag::CERTIFICATE_TYPE, obj.data_type.unwrap_or(0)),
                Ttlv::bytes(Tag::CERTIFICATE_VALUE, obj.material.to_vec()),
            ],
        ));
    }
    if obj.object_type == ot::OPAQUE_OBJECT {
        if format.is_some_and(|f| f != kft::OPAQUE) {
            return Err(ObjectError::FormatNotSupported);
        }
        return Ok(Ttlv::structure(
            tag,
            vec![
                Ttlv::enumeration(Tag::OPAQUE_DATA_TYPE, obj.data_type.unwrap_or(0x8000_0000)),
                Ttlv::bytes(Tag::OPAQUE_DATA_VALUE, obj.material.to_vec()),
            ],
        ));
    }
    let format = format.unwrap_or(obj.format);
    let material = match format {
        // Kept as registered: only its own format can be served.
        _ if is_asymmetric(obj.object_type) => {
            if format != obj.format {
                return Err(ObjectError::FormatNotSupported);
            }
            ttlv::decode(&obj.material, &ttlv::Limits::default())
                .map_err(|_| invalid("stored Key Material does not decode"))?
        }
        kft::RAW | kft::OPAQUE if format == obj.format || obj.object_type == ot::SYMMETRIC_KEY => {
            Ttlv::bytes(Tag::KEY_MATERIAL, obj.material.to_vec())
        }
        kft::TRANSPARENT_SYMMETRIC_KEY if obj.object_type == ot::SYMMETRIC_KEY => Ttlv::structure(
            Tag::KEY_MATERIAL,
            vec![Ttlv::bytes(Tag::KEY, obj.material.to_vec())],
        ),
        _ => return Err(ObjectError::FormatNotSupported),
    };
    let mut block = vec![
        Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, format),
        Ttlv::structure(Tag::KEY_VALUE, vec![material]),
    ];
    if let Some(alg) = obj.algorithm {
        block.push(Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg));
    }
    if let Some(len) = obj.length {
        block.push(Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, len));
    }
    let mut children = Vec::new();
    if let Some(dt) = obj.data_type {
        children.push(Ttlv::enumeration(Tag::SECRET_DATA_TYPE, dt));
    }
    children.extend(obj.split.iter().cloned());
    children.push(Ttlv::structure(Tag::KEY_BLOCK, block));
    Ok(Ttlv::structure(tag, children))
}
