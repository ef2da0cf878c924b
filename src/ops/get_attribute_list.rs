//! Get Attribute List: the names of the attributes an object carries.

use super::Caller;
use super::{load_for, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::attributes;
use crate::kmip::enums::operation;
use crate::ttlv::{Tag, Ttlv};

/// Runs Get Attribute List.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let obj = load_for(ctx, who, &uid, operation::GET_ATTRIBUTE_LIST)?;
    let mut names: Vec<&str> = Vec::new();
    for a in obj
        .attrs
        .iter()
        .filter(|a| attributes::visible_in(a, call.version))
    {
        if !names.contains(&a.name.as_str()) {
            names.push(&a.name);
        }
    }
    let mut payload = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())];
    payload.extend(names.into_iter().map(|n| {
        if call.version.is_v2() {
            attributes::reference_to_v2(n)
        } else {
            Ttlv::text(Tag::ATTRIBUTE_NAME, n)
        }
    }));
    Ok(Reply {
        payload,
        uid: Some(uid),
    })
}
