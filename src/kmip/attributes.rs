//! KMIP attributes: akm's one internal form ([`Attr`]), the table of attributes akm knows
//! (type, cardinality, who may set them, first version), and the conversions to and from the
//! 1.x Template-Attribute/Attribute encoding and the 2.x Attributes encoding.

use super::{attr, MessageError, ProtocolVersion};
use crate::ttlv::{ItemType, Tag, Ttlv, Value};

/// One attribute instance. Standard attributes are named by their spec name ("Cryptographic
/// Algorithm"); custom ones by their 1.x name ("x-ID"), which 2.x splits into a vendor
/// identification and a name at the first '-'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Spec name or custom name.
    pub name: String,
    /// The value (a Structure for structured attributes).
    pub value: Value,
}

impl Attr {
    /// An attribute from its parts.
    pub fn new(name: impl Into<String>, value: Value) -> Attr {
        Attr {
            name: name.into(),
            value,
        }
    }
    /// True for client (`x-`) and server (`y-`) custom attributes.
    pub fn is_custom(&self) -> bool {
        is_custom_name(&self.name)
    }
}

/// True for a custom attribute name.
pub fn is_custom_name(name: &str) -> bool {
    name.starts_with("x-") || name.starts_with("y-")
}

/// Who may set an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setter {
    /// Only the server sets it; a client naming it in Create/Register or Add/Modify is refused.
    Server,
    /// A client may give it when the object is made, never change it afterwards.
    ClientAtCreate,
    /// A client may set, change and delete it.
    Client,
}

/// What akm knows about one standard attribute.
#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    /// Spec name.
    pub name: &'static str,
    /// Its tag in the 2.x encoding.
    pub tag: Tag,
    /// Wire type of the value.
    pub item_type: ItemType,
    /// Whether an object may carry several instances.
    pub multi: bool,
    /// Who sets it.
    pub setter: Setter,
    /// The first protocol version that defines it; it never appears in older responses.
    pub since: ProtocolVersion,
}

const fn spec(
    name: &'static str,
    tag: Tag,
    item_type: ItemType,
    multi: bool,
    setter: Setter,
    since: ProtocolVersion,
) -> AttrSpec {
    AttrSpec {
        name,
        tag,
        item_type,
        multi,
        setter,
        since,
    }
}

use ItemType as T;
use ProtocolVersion as V;
use Setter::*;

/// The attributes akm stores, serves and lets clients set.
pub static ATTRIBUTES: &[AttrSpec] = &[
    spec(
        attr::UNIQUE_IDENTIFIER,
        Tag::UNIQUE_IDENTIFIER,
        T::TextString,
        false,
        Server,
        V::V1_0,
    ),
    spec(attr::NAME, Tag::NAME, T::Structure, true, Client, V::V1_0),
    spec(
        attr::OBJECT_TYPE,
        Tag::OBJECT_TYPE,
        T::Enumeration,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::CRYPTOGRAPHIC_ALGORITHM,
        Tag::CRYPTOGRAPHIC_ALGORITHM,
        T::Enumeration,
        false,
        ClientAtCreate,
        V::V1_0,
    ),
    spec(
        attr::CRYPTOGRAPHIC_LENGTH,
        Tag::CRYPTOGRAPHIC_LENGTH,
        T::Integer,
        false,
        ClientAtCreate,
        V::V1_0,
    ),
    spec(
        attr::CRYPTOGRAPHIC_PARAMETERS,
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        T::Structure,
        true,
        Client,
        V::V1_0,
    ),
    spec(
        attr::DIGEST,
        Tag::DIGEST,
        T::Structure,
        true,
        Server,
        V::V1_0,
    ),
    spec(
        attr::OPERATION_POLICY_NAME,
        Tag::OPERATION_POLICY_NAME,
        T::TextString,
        false,
        Client,
        V::V1_0,
    ),
    spec(
        attr::CRYPTOGRAPHIC_USAGE_MASK,
        Tag::CRYPTOGRAPHIC_USAGE_MASK,
        T::Integer,
        false,
        ClientAtCreate,
        V::V1_0,
    ),
    spec(
        attr::LEASE_TIME,
        Tag::LEASE_TIME,
        T::Interval,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::USAGE_LIMITS,
        Tag::USAGE_LIMITS,
        T::Structure,
        false,
        Client,
        V::V1_0,
    ),
    spec(
        attr::STATE,
        Tag::STATE,
        T::Enumeration,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::INITIAL_DATE,
        Tag::INITIAL_DATE,
        T::DateTime,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::ACTIVATION_DATE,
        Tag::ACTIVATION_DATE,
        T::DateTime,
        false,
        Client,
        V::V1_0,
    ),
    spec(
        attr::PROCESS_START_DATE,
        Tag::PROCESS_START_DATE,
        T::DateTime,
        false,
        Client,
        V::V1_0,
    ),
    spec(
        attr::PROTECT_STOP_DATE,
        Tag::PROTECT_STOP_DATE,
        T::DateTime,
        false,
        Client,
        V::V1_0,
    ),
    spec(
        attr::DEACTIVATION_DATE,
        Tag::DEACTIVATION_DATE,
        T::DateTime,
        false,
        Client,
        V::V1_0,
    ),
    spec(
        attr::DESTROY_DATE,
        Tag::DESTROY_DATE,
        T::DateTime,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::COMPROMISE_OCCURRENCE_DATE,
        Tag::COMPROMISE_OCCURRENCE_DATE,
        T::DateTime,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::COMPROMISE_DATE,
        Tag::COMPROMISE_DATE,
        T::DateTime,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::REVOCATION_REASON,
        Tag::REVOCATION_REASON,
        T::Structure,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::ARCHIVE_DATE,
        Tag::ARCHIVE_DATE,
        T::DateTime,
        false,
        Server,
        V::V1_0,
    ),
    spec(
        attr::OBJECT_GROUP,
        Tag::OBJECT_GROUP,
        T::TextString,
        true,
        Client,
        V::V1_0,
    ),
    spec(attr::LINK, Tag::LINK, T::Structure, true, Client, V::V1_0),
    spec(
        attr::APPLICATION_SPECIFIC_INFORMATION,
        Tag::APPLICATION_SPECIFIC_INFORMATION,
        T::Structure,
        true,
        Client,
        V::V1_0,
    ),
    spec(
        attr::CONTACT_INFORMATION,
        Tag::CONTACT_INFORMATION,
        T::TextString,
        false,
        Client,
        V::V1_0,
    ),
    spec(
        attr::LAST_CHANGE_DATE,
        Tag::LAST_CHANGE_DATE,
        T::DateTime,
        false,
        Server,
        V::V1_0,
    ),
    // A client may give False in Register (KMIP 2.1 §4.24), never change it later.
    spec(
        attr::FRESH,
        Tag::FRESH,
        T::Boolean,
        false,
        ClientAtCreate,
        V::V1_1,
    ),
    spec(
        attr::ALTERNATIVE_NAME,
        Tag::ALTERNATIVE_NAME,
        T::Structure,
        true,
        Client,
        V::V1_2,
    ),
    spec(
        attr::KEY_VALUE_PRESENT,
        Tag::KEY_VALUE_PRESENT,
        T::Boolean,
        false,
        Server,
        V::V1_2,
    ),
    spec(
        attr::ORIGINAL_CREATION_DATE,
        Tag::ORIGINAL_CREATION_DATE,
        T::DateTime,
        false,
        Server,
        V::V1_2,
    ),
    spec(
        attr::DESCRIPTION,
        Tag::DESCRIPTION,
        T::TextString,
        false,
        Client,
        V::V1_4,
    ),
    spec(
        attr::COMMENT,
        Tag::COMMENT,
        T::TextString,
        false,
        Client,
        V::V1_4,
    ),
    spec(
        attr::SENSITIVE,
        Tag::SENSITIVE,
        T::Boolean,
        false,
        Client,
        V::V1_4,
    ),
    spec(
        attr::ALWAYS_SENSITIVE,
        Tag::ALWAYS_SENSITIVE,
        T::Boolean,
        false,
        Server,
        V::V1_4,
    ),
    spec(
        attr::EXTRACTABLE,
        Tag::EXTRACTABLE,
        T::Boolean,
        false,
        Client,
        V::V1_4,
    ),
    spec(
        attr::NEVER_EXTRACTABLE,
        Tag::NEVER_EXTRACTABLE,
        T::Boolean,
        false,
        Server,
        V::V1_4,
    ),
    spec(
        attr::CERTIFICATE_TYPE,
        Tag::CERTIFICATE_TYPE,
        T::Enumeration,
        false,
        ClientAtCreate,
        V::V1_0,
    ),
    // Tag 0x4200AD, after Fresh (0x4200A8): a KMIP 1.1 attribute.
    spec(
        attr::CERTIFICATE_LENGTH,
        Tag::CERTIFICATE_LENGTH,
        T::Integer,
        false,
        Server,
        V::V1_1,
    ),
    spec(
        attr::DIGITAL_SIGNATURE_ALGORITHM,
        Tag::DIGITAL_SIGNATURE_ALGORITHM,
        T::Enumeration,
        false,
        // KMIP 2.1 Table 293: a client registering a certificate may name it; the server
        // sets it from the certificate when it can read it there.
        ClientAtCreate,
        V::V1_1,
    ),
    spec(
        attr::X_509_CERTIFICATE_IDENTIFIER,
        Tag::X_509_CERTIFICATE_IDENTIFIER,
        T::Structure,
        false,
        Server,
        V::V1_1,
    ),
    spec(
        attr::X_509_CERTIFICATE_SUBJECT,
        Tag::X_509_CERTIFICATE_SUBJECT,
        T::Structure,
        false,
        Server,
        V::V1_1,
    ),
    spec(
        attr::X_509_CERTIFICATE_ISSUER,
        Tag::X_509_CERTIFICATE_ISSUER,
        T::Structure,
        false,
        Server,
        V::V1_1,
    ),
    spec(
        attr::PKCS_12_FRIENDLY_NAME,
        Tag::PKCS_12_FRIENDLY_NAME,
        T::TextString,
        false,
        Client,
        V::V2_0,
    ),
    spec(
        attr::CERTIFICATE_SUBJECT_CN,
        Tag::CERTIFICATE_SUBJECT_CN,
        T::TextString,
        false,
        Server,
        V::V2_0,
    ),
    spec(
        attr::CERTIFICATE_ISSUER_CN,
        Tag::CERTIFICATE_ISSUER_CN,
        T::TextString,
        false,
        Server,
        V::V2_0,
    ),
    spec(
        attr::PROTECTION_LEVEL,
        Tag::PROTECTION_LEVEL,
        T::Enumeration,
        false,
        Client,
        V::V2_0,
    ),
    spec(
        attr::PROTECTION_PERIOD,
        Tag::PROTECTION_PERIOD,
        T::Interval,
        false,
        Client,
        V::V2_0,
    ),
    spec(
        attr::QUANTUM_SAFE,
        Tag::QUANTUM_SAFE,
        T::Boolean,
        false,
        Client,
        V::V2_0,
    ),
    spec(
        attr::RANDOM_NUMBER_GENERATOR,
        Tag::RANDOM_NUMBER_GENERATOR,
        T::Structure,
        false,
        ClientAtCreate,
        V::V1_3,
    ),
    spec(
        attr::PROTECTION_STORAGE_MASK,
        Tag::PROTECTION_STORAGE_MASK,
        T::Integer,
        false,
        Server,
        V::V2_0,
    ),
    spec(
        attr::KEY_FORMAT_TYPE,
        Tag::KEY_FORMAT_TYPE,
        T::Enumeration,
        false,
        Server,
        V::V2_0,
    ),
    spec(
        attr::ROTATE_AUTOMATIC,
        Tag::ROTATE_AUTOMATIC,
        T::Boolean,
        false,
        Client,
        V::V2_1,
    ),
    spec(
        attr::ROTATE_INTERVAL,
        Tag::ROTATE_INTERVAL,
        T::Interval,
        false,
        Client,
        V::V2_1,
    ),
    spec(
        attr::ROTATE_OFFSET,
        Tag::ROTATE_OFFSET,
        T::Interval,
        false,
        Client,
        V::V2_1,
    ),
    spec(
        attr::ROTATE_GENERATION,
        Tag::ROTATE_GENERATION,
        T::Integer,
        false,
        Server,
        V::V2_1,
    ),
    spec(
        attr::ROTATE_LATEST,
        Tag::ROTATE_LATEST,
        T::Boolean,
        false,
        Server,
        V::V2_1,
    ),
    spec(
        attr::SHORT_UNIQUE_IDENTIFIER,
        Tag::SHORT_UNIQUE_IDENTIFIER,
        T::ByteString,
        false,
        Server,
        V::V2_0,
    ),
];

/// The spec entry for a standard attribute name.
pub fn spec_by_name(name: &str) -> Option<&'static AttrSpec> {
    ATTRIBUTES.iter().find(|s| s.name == name)
}

/// The spec entry for a 2.x attribute tag.
pub fn spec_by_tag(tag: Tag) -> Option<&'static AttrSpec> {
    ATTRIBUTES.iter().find(|s| s.tag == tag)
}

/// Whether `attr` may appear in a response of `version`.
pub fn visible_in(attr: &Attr, version: ProtocolVersion) -> bool {
    match spec_by_name(&attr.name) {
        Some(s) => s.since <= version,
        None => attr.is_custom(),
    }
}

fn invalid(msg: impl Into<String>) -> MessageError {
    MessageError(msg.into())
}

/// Checks that a value has the type its attribute requires; custom attributes take any type.
pub fn check_type(attr: &Attr) -> Result<(), MessageError> {
    if attr.is_custom() {
        return Ok(());
    }
    let Some(spec) = spec_by_name(&attr.name) else {
        return Err(invalid(format!("unsupported attribute {:?}", attr.name)));
    };
    if attr.value.item_type() != spec.item_type {
        return Err(invalid(format!(
            "attribute {:?} must be a {:?}",
            attr.name, spec.item_type
        )));
    }
    Ok(())
}

// ---- 1.x encoding: Attribute { Attribute Name, Attribute Index?, Attribute Value } ----

/// Parses one 1.x Attribute structure. The index, if any, is returned beside it.
pub fn from_v1(t: &Ttlv) -> Result<(Attr, Option<i32>), MessageError> {
    let name = t
        .child(Tag::ATTRIBUTE_NAME)
        .and_then(Ttlv::as_text)
        .ok_or_else(|| invalid("Attribute without Attribute Name"))?;
    let index = t.child(Tag::ATTRIBUTE_INDEX).and_then(Ttlv::as_int);
    let value = t
        .child(Tag::ATTRIBUTE_VALUE)
        .ok_or_else(|| invalid(format!("attribute {name:?} has no Attribute Value")))?;
    Ok((Attr::new(name, value.value.clone()), index))
}

/// Encodes an attribute in the 1.x form.
pub fn to_v1(attr: &Attr, index: Option<i32>) -> Ttlv {
    let mut c = vec![Ttlv::text(Tag::ATTRIBUTE_NAME, attr.name.clone())];
    if let Some(i) = index {
        c.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, i));
    }
    c.push(Ttlv::new(Tag::ATTRIBUTE_VALUE, attr.value.clone()));
    Ttlv::structure(Tag::ATTRIBUTE, c)
}

/// Parses a 1.x attribute name reference (Get Attributes, Delete Attribute).
pub fn name_from_v1(t: &Ttlv) -> Option<String> {
    t.as_text().map(str::to_owned)
}

// ---- 2.x encoding: the attribute's own tag, or Attribute{Vendor Identification, ...} ----

/// Parses one item of a 2.x Attributes structure.
pub fn from_v2(t: &Ttlv) -> Result<Attr, MessageError> {
    if t.tag == Tag::ATTRIBUTE {
        let vendor = t
            .child(Tag::VENDOR_IDENTIFICATION)
            .and_then(Ttlv::as_text)
            .unwrap_or("x");
        let name = t
            .child(Tag::ATTRIBUTE_NAME)
            .and_then(Ttlv::as_text)
            .ok_or_else(|| invalid("custom Attribute without Attribute Name"))?;
        let value = t
            .child(Tag::ATTRIBUTE_VALUE)
            .ok_or_else(|| invalid(format!("attribute {name:?} has no Attribute Value")))?;
        // A 1.x-style name ("x-ID") sent through the 2.x form keeps its prefix.
        let full = if is_custom_name(name) {
            name.to_owned()
        } else {
            format!("{vendor}-{name}")
        };
        return Ok(Attr::new(full, value.value.clone()));
    }
    // ok_or_else: building the message for every attribute that is fine cost a tenth of a Get.
    let spec =
        spec_by_tag(t.tag).ok_or_else(|| invalid(format!("unsupported attribute {:?}", t.tag)))?;
    Ok(Attr::new(spec.name, t.value.clone()))
}

/// Encodes an attribute in the 2.x form.
pub fn to_v2(attr: &Attr) -> Ttlv {
    if let Some(spec) = spec_by_name(&attr.name) {
        return Ttlv::new(spec.tag, attr.value.clone());
    }
    let (vendor, name) = attr.name.split_once('-').unwrap_or(("x", &attr.name));
    Ttlv::structure(
        Tag::ATTRIBUTE,
        vec![
            Ttlv::text(Tag::VENDOR_IDENTIFICATION, vendor),
            Ttlv::text(Tag::ATTRIBUTE_NAME, name),
            Ttlv::new(Tag::ATTRIBUTE_VALUE, attr.value.clone()),
        ],
    )
}

/// The length of [`to_v2`]'s encoding of `attr` (what the attribute takes in an object's
/// stored record), computed without building or encoding it.
pub fn v2_encoded_len(attr: &Attr) -> usize {
    let value = 8 + attr.value.encoded_len();
    if spec_by_name(&attr.name).is_some() {
        return value;
    }
    let (vendor, name) = attr.name.split_once('-').unwrap_or(("x", &attr.name));
    let text = |t: &str| 8 + t.len() + crate::ttlv::padding(t.len());
    8 + text(vendor) + text(name) + value
}

/// Parses a 2.x Attribute Reference (an enumeration naming the tag, or a custom name
/// structure) into an attribute name.
pub fn name_from_v2_reference(t: &Ttlv) -> Option<String> {
    match &t.value {
        Value::Enumeration(tag) => spec_by_tag(Tag(*tag)).map(|s| s.name.to_owned()),
        Value::Structure(_) => {
            let vendor = t
                .child(Tag::VENDOR_IDENTIFICATION)
                .and_then(Ttlv::as_text)
                .unwrap_or("x");
            let name = t.child(Tag::ATTRIBUTE_NAME).and_then(Ttlv::as_text)?;
            Some(if is_custom_name(name) {
                name.to_owned()
            } else {
                format!("{vendor}-{name}")
            })
        }
        // PyKMIP 2.0 and some clients send the attribute name as text.
        Value::TextString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Encodes an attribute name as a 2.x Attribute Reference.
pub fn reference_to_v2(name: &str) -> Ttlv {
    match spec_by_name(name) {
        Some(spec) => Ttlv::enumeration(Tag::ATTRIBUTE_REFERENCE, spec.tag.0),
        None => {
            let (vendor, n) = name.split_once('-').unwrap_or(("x", name));
            Ttlv::structure(
                Tag::ATTRIBUTE_REFERENCE,
                vec![
                    Ttlv::text(Tag::VENDOR_IDENTIFICATION, vendor),
                    Ttlv::text(Tag::ATTRIBUTE_NAME, n),
                ],
            )
        }
    }
}

/// Reads the client's attributes from a request payload in either encoding: 1.x
/// Template-Attribute (or bare Attribute items), 2.x Attributes.
pub fn read_request_attributes(
    payload: &Ttlv,
    version: ProtocolVersion,
) -> Result<Vec<Attr>, MessageError> {
    let mut out = Vec::new();
    if version.is_v2() {
        if let Some(attrs) = payload.child(Tag::ATTRIBUTES) {
            for item in attrs.children() {
                out.push(from_v2(item)?);
            }
        }
    } else {
        // Attributes come inside a Template-Attribute (Create, Register) or bare (Locate);
        // some clients (FortiGate) wrap Locate's in a Template-Attribute too.
        for item in payload.children() {
            if item.tag == Tag::ATTRIBUTE {
                out.push(from_v1(item)?.0);
            } else if item.tag == Tag::TEMPLATE_ATTRIBUTE {
                if item.child(Tag::NAME).is_some() {
                    return Err(invalid("templates are not supported"));
                }
                for a in item.children_with(Tag::ATTRIBUTE) {
                    out.push(from_v1(a)?.0);
                }
            }
        }
    }
    for a in &out {
        check_type(a)?;
    }
    Ok(out)
}

/// Encodes a set of attributes for a response: 2.x Attributes, or 1.x Attribute items with
/// indexes for multi-instance attributes. Attributes newer than `version` are left out.
pub fn encode_attributes(attrs: &[Attr], version: ProtocolVersion) -> Vec<Ttlv> {
    let visible = attrs.iter().filter(|a| visible_in(a, version));
    if version.is_v2() {
        return vec![Ttlv::structure(
            Tag::ATTRIBUTES,
            visible.map(to_v2).collect(),
        )];
    }
    let mut out = Vec::new();
    let mut counts: Vec<(&str, i32)> = Vec::new();
    for a in visible {
        let index = match counts.iter_mut().find(|(n, _)| *n == a.name) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                counts.push((&a.name, 0));
                0
            }
        };
        let multi = spec_by_name(&a.name).is_none_or(|s| s.multi);
        out.push(to_v1(a, multi.then_some(index)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_encoded_len_is_the_length_of_the_v2_encoding() {
        let name = Value::Structure(vec![
            Ttlv::text(Tag::NAME_VALUE, "k1"),
            Ttlv::enumeration(Tag::NAME_TYPE, 1),
        ]);
        for attr in [
            Attr::new("Cryptographic Length", Value::Integer(256)),
            Attr::new("Name", name),
            Attr::new("x-purpose", Value::TextString("backup of db-7".into())),
            Attr::new(
                "x-blob",
                Value::ByteString(zeroize::Zeroizing::new(vec![7; 1001])),
            ),
            Attr::new("nodash", Value::Boolean(true)),
        ] {
            assert_eq!(
                v2_encoded_len(&attr),
                to_v2(&attr).encode().len(),
                "{attr:?}"
            );
        }
    }

    #[test]
    fn every_attribute_akm_knows_is_a_spec_attribute_with_its_tag() {
        for spec in ATTRIBUTES {
            assert!(
                attr::ALL.contains(&spec.name),
                "{} is no spec attribute",
                spec.name
            );
            assert_eq!(spec.tag.name(), Some(spec.name), "the tag of {}", spec.name);
        }
    }
}
