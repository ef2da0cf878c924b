//! KMIP 2.1 requests for the model's items and steps, and the parts of responses the model
//! test reads (each batch item's status, reason, message and payload).

use super::gen::OnError;
use super::predict::{AttrV, Del, Item, NewAttrs, Uid};
use crate::support::kmip::{create_payload, filters, name, register_key_payload, template};
use akm::client::request;
use akm::kmip::attributes::{reference_to_v2, to_v2, Attr};
use akm::kmip::custody::{TAG_AUTHORIZED_USER, TAG_GUARDED_OPERATION, TAG_WINDOW_MINUTES};
use akm::kmip::enums::{
    batch_error_continuation_option as bec, cryptographic_algorithm as alg,
    derivation_method as dm, hashing_algorithm as ha, object_type as ot, operation as op,
    result_status, revocation_reason_code as rrc, wrapping_method,
};
use akm::kmip::extension as ext;
use akm::kmip::ProtocolVersion;
use akm::ttlv::{Tag, Ttlv, Value};

/// Every request is KMIP 2.1.
pub const V: ProtocolVersion = ProtocolVersion::V2_1;

fn uid_field(uid: &Uid) -> Vec<Ttlv> {
    match uid {
        Uid::Given(u) => vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, u.clone())],
        Uid::Placeholder => Vec::new(),
    }
}

fn x_attr(n: &str, v: &str) -> Attr {
    Attr::new(n, Value::TextString(v.to_owned()))
}

fn link_attr(kind: u32, target: &str) -> Attr {
    Attr::new(
        "Link",
        Value::Structure(vec![
            Ttlv::enumeration(Tag::LINK_TYPE, kind),
            Ttlv::text(Tag::LINKED_OBJECT_IDENTIFIER, target),
        ]),
    )
}

fn attr_of(a: &AttrV) -> Attr {
    match a {
        AttrV::X(n, v) => x_attr(n, v),
        AttrV::Link(t, u) => link_attr(*t, u),
        AttrV::Name(n) => Attr::new("Name", name(n)),
    }
}

fn wrapper(tag: Tag, a: &Attr) -> Ttlv {
    Ttlv::structure(tag, vec![to_v2(a)])
}

/// The request attributes of a new object (without algorithm and length).
fn new_attrs(a: &NewAttrs) -> Vec<Attr> {
    let mut attrs = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(a.usage),
    )];
    if let Some(n) = &a.name {
        attrs.push(Attr::new("Name", name(n)));
    }
    if let Some(m) = a.mode {
        attrs.push(x_attr("x-akm-access-mode", m.as_str()));
    }
    if let Some(g) = &a.group {
        attrs.push(x_attr("x-akm-owner-group", g));
    }
    if let Some(o) = &a.owner {
        attrs.push(x_attr("x-akm-owner", o));
    }
    attrs
}

fn aes256(mut rest: Vec<Attr>) -> Vec<Attr> {
    let mut attrs = vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(256)),
    ];
    attrs.append(&mut rest);
    attrs
}

fn wrapping_spec(kek: &str) -> Ttlv {
    Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek)],
            ),
        ],
    )
}

fn derive_payload(base: Option<&str>, key_name: Option<&str>) -> Vec<Ttlv> {
    let mut p = vec![Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY)];
    if let Some(b) = base {
        p.push(Ttlv::text(Tag::UNIQUE_IDENTIFIER, b));
    }
    p.push(Ttlv::enumeration(Tag::DERIVATION_METHOD, dm::HKDF));
    p.push(Ttlv::structure(
        Tag::DERIVATION_PARAMETERS,
        vec![
            Ttlv::structure(
                Tag::CRYPTOGRAPHIC_PARAMETERS,
                vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)],
            ),
            Ttlv::bytes(Tag::SALT, b"model-salt".to_vec()),
            Ttlv::bytes(Tag::DERIVATION_DATA, b"model-info".to_vec()),
        ],
    ));
    let mut attrs = aes256(vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(0x0C),
    )]);
    if let Some(n) = key_name {
        attrs.push(Attr::new("Name", name(n)));
    }
    p.push(template(V, &attrs));
    p
}

/// The operation and request payload of an item.
pub fn payload(item: &Item) -> (u32, Vec<Ttlv>) {
    match item {
        Item::Create(a) => (op::CREATE, create_payload(V, &aes256(new_attrs(a)))),
        Item::Register(a, bytes) => (op::REGISTER, register_key_payload(V, bytes, &new_attrs(a))),
        Item::CreateBroken => (op::CREATE, vec![template(V, &aes256(Vec::new()))]),
        Item::Locate(n) => (op::LOCATE, filters(V, &[Attr::new("Name", name(n))])),
        Item::Get { uid, wrap } => {
            let mut p = uid_field(uid);
            p.extend(wrap.as_deref().map(wrapping_spec));
            (op::GET, p)
        }
        Item::GetAttributes(uid) => (op::GET_ATTRIBUTES, uid_field(uid)),
        Item::GetKeyPolicy(uid) => (ext::OP_GET_KEY_POLICY, uid_field(uid)),
        Item::AddAttr(uid, a) => {
            let mut p = uid_field(uid);
            p.push(wrapper(Tag::NEW_ATTRIBUTE, &attr_of(a)));
            (op::ADD_ATTRIBUTE, p)
        }
        Item::ModifyX { uid, current, new } => {
            let mut p = uid_field(uid);
            p.push(wrapper(
                Tag::CURRENT_ATTRIBUTE,
                &x_attr(&current.0, &current.1),
            ));
            p.push(wrapper(Tag::NEW_ATTRIBUTE, &x_attr(&current.0, new)));
            (op::MODIFY_ATTRIBUTE, p)
        }
        Item::DeleteAttr(uid, del) => {
            let mut p = uid_field(uid);
            p.push(match del {
                Del::XValue(n, v) => wrapper(Tag::CURRENT_ATTRIBUTE, &x_attr(n, v)),
                Del::Link(t, u) => wrapper(Tag::CURRENT_ATTRIBUTE, &link_attr(*t, u)),
                Del::XAll(n) => reference_to_v2(n),
            });
            (op::DELETE_ATTRIBUTE, p)
        }
        Item::Activate(uid) => (op::ACTIVATE, uid_field(uid)),
        Item::Revoke(uid, compromise) => {
            let code = if *compromise {
                rrc::KEY_COMPROMISE
            } else {
                rrc::UNSPECIFIED
            };
            let mut p = uid_field(uid);
            p.push(Ttlv::structure(
                Tag::REVOCATION_REASON,
                vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, code)],
            ));
            (op::REVOKE, p)
        }
        Item::Destroy(uid) => (op::DESTROY, uid_field(uid)),
        Item::ReKey(uid) => (op::RE_KEY, uid_field(uid)),
        Item::Derive { base, name } => (
            op::DERIVE_KEY,
            derive_payload(base.as_deref(), name.as_deref()),
        ),
        Item::SetKeyPolicy {
            uid,
            owner,
            group,
            mode,
        } => {
            let mut p = uid_field(uid);
            if let Some(o) = owner {
                p.push(Ttlv::text(ext::TAG_OWNER, o.clone()));
            }
            if let Some(g) = group {
                p.push(Ttlv::text(ext::TAG_OWNER_GROUP, g.clone()));
            }
            if let Some(m) = mode {
                p.push(Ttlv::text(ext::TAG_ACCESS_MODE, m.as_str()));
            }
            (ext::OP_SET_KEY_POLICY, p)
        }
    }
}

/// The Authorize request payload.
pub fn authorize_payload(user: &str, operation: &str, minutes: i32) -> Vec<Ttlv> {
    vec![
        Ttlv::text(TAG_AUTHORIZED_USER, user),
        Ttlv::text(TAG_GUARDED_OPERATION, operation),
        Ttlv::integer(TAG_WINDOW_MINUTES, minutes),
    ]
}

/// A request message of `items` with the Batch Error Continuation Option.
pub fn message(items: &[(u32, Vec<Ttlv>)], on_error: OnError) -> Ttlv {
    let mut msg = request(V, items);
    let option = match on_error {
        OnError::Default => return msg,
        OnError::Stop => bec::STOP,
        OnError::Continue => bec::CONTINUE,
        OnError::Undo => bec::UNDO,
    };
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::enumeration(
                Tag::BATCH_ERROR_CONTINUATION_OPTION,
                option,
            ));
        }
    }
    msg
}

/// One response batch item.
#[derive(Clone, Debug)]
pub struct ItemResult {
    pub status: u32,
    pub reason: Option<u32>,
    pub message: String,
    pub payload: Option<Ttlv>,
}

impl ItemResult {
    pub fn succeeded(&self) -> bool {
        matches!(
            self.status,
            result_status::SUCCESS | result_status::OPERATION_UNDONE
        )
    }
}

/// The batch items of a response message.
pub fn results(response: &Ttlv) -> Vec<ItemResult> {
    response
        .children_with(Tag::BATCH_ITEM)
        .map(|i| ItemResult {
            status: i
                .child(Tag::RESULT_STATUS)
                .and_then(Ttlv::as_enum)
                .unwrap_or(u32::MAX),
            reason: i.child(Tag::RESULT_REASON).and_then(Ttlv::as_enum),
            message: i
                .child(Tag::RESULT_MESSAGE)
                .and_then(Ttlv::as_text)
                .unwrap_or("")
                .to_owned(),
            payload: i.child(Tag::RESPONSE_PAYLOAD).cloned(),
        })
        .collect()
}

/// Every Byte String anywhere in `t`.
pub fn byte_strings(t: &Ttlv, out: &mut Vec<Vec<u8>>) {
    if let Some(b) = t.as_bytes() {
        out.push(b.to_vec());
    }
    for c in t.children() {
        byte_strings(c, out);
    }
}
