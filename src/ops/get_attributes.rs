//! Get Attributes: the requested attributes of an object (all of them if none are named), in
//! the request's order and its version's encoding.

use super::Caller;
use super::{load_for, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::operation;
use crate::ttlv::{Tag, Ttlv};

/// The attribute names a Get Attributes or Delete Attribute request refers to, in order.
pub fn requested_names(call: &Call<'_>) -> Result<Vec<String>, OpError> {
    let names: Vec<String> = if call.version.is_v2() {
        call.payload
            .children_with(Tag::ATTRIBUTE_REFERENCE)
            .map(|t| {
                attributes::name_from_v2_reference(t)
                    .ok_or_else(|| OpError::InvalidField("unknown Attribute Reference".into()))
            })
            .collect::<Result<_, _>>()?
    } else {
        call.payload
            .children_with(Tag::ATTRIBUTE_NAME)
            .filter_map(attributes::name_from_v1)
            .collect()
    };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(OpError::InvalidMessage(format!(
                "attribute {n:?} is named more than once"
            )));
        }
    }
    Ok(names)
}

/// Runs Get Attributes.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let names = requested_names(call)?;
    let obj = load_for(ctx, who, &uid, operation::GET_ATTRIBUTES)?;
    let selected: Vec<Attr> = if names.is_empty() {
        obj.attrs.clone()
    } else {
        names
            .iter()
            .flat_map(|n| obj.attrs.iter().filter(move |a| &a.name == n))
            .cloned()
            .collect()
    };
    let mut payload = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())];
    payload.extend(attributes::encode_attributes(&selected, call.version));
    Ok(Reply {
        payload,
        uid: Some(uid),
    })
}
