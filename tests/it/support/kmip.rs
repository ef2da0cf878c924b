//! Request payload builders for tests, in the 1.x (Template-Attribute) and 2.x (Attributes)
//! encodings, and response readers.

use akm::client::{Client, ClientError};
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{
    cryptographic_algorithm as alg, key_format_type as kft, name_type, object_type as ot,
    operation as op,
};
use akm::kmip::ProtocolVersion;
use akm::ttlv::{Tag, Ttlv, Value};

/// A Name attribute value.
pub fn name(n: &str) -> Value {
    Value::Structure(vec![
        Ttlv::text(Tag::NAME_VALUE, n),
        Ttlv::enumeration(Tag::NAME_TYPE, name_type::UNINTERPRETED_TEXT_STRING),
    ])
}

/// Attributes in the version's request encoding (1.x Template-Attribute or 2.x Attributes).
pub fn template(version: ProtocolVersion, attrs: &[Attr]) -> Ttlv {
    if version.is_v2() {
        Ttlv::structure(
            Tag::ATTRIBUTES,
            attrs.iter().map(attributes::to_v2).collect(),
        )
    } else {
        Ttlv::structure(
            Tag::TEMPLATE_ATTRIBUTE,
            attrs.iter().map(|a| attributes::to_v1(a, None)).collect(),
        )
    }
}

/// Locate filters in the version's encoding (bare Attribute items in 1.x).
pub fn filters(version: ProtocolVersion, attrs: &[Attr]) -> Vec<Ttlv> {
    if version.is_v2() {
        vec![template(version, attrs)]
    } else {
        attrs.iter().map(|a| attributes::to_v1(a, None)).collect()
    }
}

/// AES-256 key attributes with a name.
pub fn aes_attrs(key_name: Option<&str>) -> Vec<Attr> {
    let mut a = vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(256)),
        Attr::new("Cryptographic Usage Mask", Value::Integer(0x0C)),
    ];
    if let Some(n) = key_name {
        a.push(Attr::new("Name", name(n)));
    }
    a
}

/// Create payload for an AES-256 key.
pub fn create_payload(version: ProtocolVersion, attrs: &[Attr]) -> Vec<Ttlv> {
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template(version, attrs),
    ]
}

/// Register payload for a raw AES key with `bytes`.
pub fn register_key_payload(version: ProtocolVersion, bytes: &[u8], attrs: &[Attr]) -> Vec<Ttlv> {
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template(version, attrs),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                    Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::bytes(Tag::KEY_MATERIAL, bytes)]),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, (bytes.len() * 8) as i32),
                ],
            )],
        ),
    ]
}

/// Just a Unique Identifier.
pub fn uid(u: &str) -> Vec<Ttlv> {
    vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, u)]
}

/// The Unique Identifier of a response payload.
pub fn uid_of(payload: &Ttlv) -> String {
    payload
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .expect("response has a Unique Identifier")
        .to_owned()
}

/// Every Unique Identifier in a response payload.
pub fn uids_of(payload: &Ttlv) -> Vec<String> {
    payload
        .children_with(Tag::UNIQUE_IDENTIFIER)
        .filter_map(Ttlv::as_text)
        .map(str::to_owned)
        .collect()
}

/// The Result Reason of a failed call.
pub fn reason(r: Result<Ttlv, ClientError>) -> u32 {
    match r {
        Err(ClientError::Failed { reason, .. }) => reason,
        other => panic!("expected an operation failure, got {other:?}"),
    }
}

/// Creates an AES key and returns its identifier.
pub async fn create_key(c: &mut Client, key_name: Option<&str>) -> String {
    let v = c.version;
    uid_of(
        &c.call(op::CREATE, create_payload(v, &aes_attrs(key_name)))
            .await
            .unwrap(),
    )
}

/// Attributes of a Get Attributes response, in either encoding.
pub fn attrs_of(version: ProtocolVersion, payload: &Ttlv) -> Vec<Attr> {
    if version.is_v2() {
        payload
            .child(Tag::ATTRIBUTES)
            .map(|a| {
                a.children()
                    .iter()
                    .map(|t| attributes::from_v2(t).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        payload
            .children_with(Tag::ATTRIBUTE)
            .map(|t| attributes::from_v1(t).unwrap().0)
            .collect()
    }
}

/// Requests attribute `names` of `u` and returns them.
pub async fn get_attrs(c: &mut Client, u: &str, names: &[&str]) -> Vec<Attr> {
    let v = c.version;
    let mut payload = uid(u);
    for n in names {
        payload.push(if v.is_v2() {
            attributes::reference_to_v2(n)
        } else {
            Ttlv::text(Tag::ATTRIBUTE_NAME, *n)
        });
    }
    let got = c.call(op::GET_ATTRIBUTES, payload).await.unwrap();
    attrs_of(v, &got)
}

/// The State of `u`.
pub async fn state_of(c: &mut Client, u: &str) -> u32 {
    match get_attrs(c, u, &["State"]).await.first().map(|a| &a.value) {
        Some(Value::Enumeration(s)) => *s,
        other => panic!("no State: {other:?}"),
    }
}

/// The key bytes a Get response carries.
pub fn key_bytes(payload: &Ttlv) -> Vec<u8> {
    fn find(t: &Ttlv) -> Option<Vec<u8>> {
        if t.tag == Tag::KEY_MATERIAL || t.tag == Tag::KEY || t.tag == Tag::OPAQUE_DATA_VALUE {
            if let Some(b) = t.as_bytes() {
                return Some(b.to_vec());
            }
        }
        t.children().iter().find_map(find)
    }
    find(payload).expect("response carries key material")
}

/// The protocol version in a response message's header.
pub fn response_version(response: &Ttlv) -> Option<ProtocolVersion> {
    response
        .child(Tag::RESPONSE_HEADER)
        .and_then(|h| h.child(Tag::PROTOCOL_VERSION))
        .and_then(ProtocolVersion::from_ttlv)
}
