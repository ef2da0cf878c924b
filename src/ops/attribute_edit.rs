//! Add, Modify, Delete and (2.x) Set Attribute: the client's edits to an object's
//! attributes, within what each attribute allows (read-only, single- or multi-valued).

use super::key_use::usage_limits_from_client;
use super::Caller;
use super::{modify, Call, Ctx, Object, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr, Setter};
use crate::kmip::enums::{operation, state};
use crate::store::StoreError;
use crate::ttlv::{Tag, Ttlv, Value};

/// Refuses attributes a client may not edit after the object exists; for the others, says
/// whether they take several values.
fn check_editable(attr_name: &str) -> Result<bool, OpError> {
    // akm's access attributes are set at creation; only an administrator changes the policy
    // afterwards, through the key policy operation.
    if attr_name.starts_with(super::access::ACCESS_ATTR_PREFIX) {
        return Err(OpError::ReadOnlyAttribute(attr_name.to_owned()));
    }
    if attr_name.starts_with("x-") {
        return Ok(true);
    }
    match attributes::spec_by_name(attr_name) {
        Some(spec) if spec.setter == Setter::Client => Ok(spec.multi),
        Some(_) => Err(OpError::ReadOnlyAttribute(attr_name.to_owned())),
        None if attr_name.starts_with("y-") => {
            Err(OpError::ReadOnlyAttribute(attr_name.to_owned()))
        }
        None => Err(OpError::InvalidField(format!(
            "unsupported attribute {attr_name:?}"
        ))),
    }
}

/// Attributes a client may set but never delete (KMIP 2.1 §4: "Deletable by client: No").
const NOT_DELETABLE: &[&str] = &[
    attr::ACTIVATION_DATE,
    attr::DEACTIVATION_DATE,
    attr::PROCESS_START_DATE,
    attr::PROTECT_STOP_DATE,
    attr::SENSITIVE,
    attr::EXTRACTABLE,
];

/// The dates a client may change only in some states (KMIP 2.1 §4.1, §4.15, §4.42, §4.45
/// "Modifiable by client"): Activation Date while Pre-Active, Deactivation Date while
/// Pre-Active or Active, Process Start and Protect Stop Date while Pre-Active or Active and
/// not yet reached.
fn check_state_for(obj: &Object, name: &str, now: i64) -> Result<(), OpError> {
    let current = obj.state();
    let live = matches!(current, state::PRE_ACTIVE | state::ACTIVE);
    let allowed = match name {
        attr::ACTIVATION_DATE => current == state::PRE_ACTIVE,
        attr::DEACTIVATION_DATE => live,
        attr::PROCESS_START_DATE | attr::PROTECT_STOP_DATE => {
            live && obj.date_attr(name).is_none_or(|d| d > now)
        }
        _ => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(OpError::WrongState)
    }
}

/// Keeps the server-set history attributes true after an edit: Always Sensitive turns False
/// once Sensitive is False, Never Extractable once Extractable is True (KMIP 2.1 §4.3, §4.33).
fn follow_edit(obj: &mut Object) {
    if obj.get(attr::SENSITIVE) == Some(&Value::Boolean(false)) {
        obj.set(attr::ALWAYS_SENSITIVE, Value::Boolean(false));
    }
    if obj.get(attr::EXTRACTABLE) == Some(&Value::Boolean(true)) {
        obj.set(attr::NEVER_EXTRACTABLE, Value::Boolean(false));
    }
}

/// `attr` as it is stored when a client sets it on `obj`: the server keeps the fields that are
/// its own (the Usage Limits Count, see [`usage_limits_from_client`]).
fn as_stored(mut attr: Attr, obj: &Object) -> Attr {
    if attr.name == attr::USAGE_LIMITS {
        attr.value = usage_limits_from_client(&attr.value, obj.get(attr::USAGE_LIMITS));
    }
    attr
}

/// Reads the attribute of a 1.x Attribute field or a 2.x wrapper (New/Current Attribute).
fn attr_in(call: &Call<'_>, wrapper: Tag) -> Result<Option<(Attr, Option<i32>)>, OpError> {
    let found = if call.version.is_v2() {
        match call.payload.child(wrapper) {
            Some(w) => {
                let item = w
                    .children()
                    .first()
                    .ok_or_else(|| OpError::InvalidMessage(format!("empty {wrapper:?}")))?;
                Some((attributes::from_v2(item)?, None))
            }
            None => None,
        }
    } else {
        match call.payload.child(Tag::ATTRIBUTE) {
            Some(a) => Some(attributes::from_v1(a)?),
            None => None,
        }
    };
    if let Some((a, _)) = &found {
        attributes::check_type(a)?;
    }
    Ok(found)
}

fn required(found: Option<(Attr, Option<i32>)>) -> Result<(Attr, Option<i32>), OpError> {
    found.ok_or_else(|| OpError::InvalidMessage("missing attribute".into()))
}

/// The reply: 1.x echoes the attribute with its index (0 included: the spec lets it be
/// omitted, but PyKMIP reads it), 2.x only the identifier.
fn reply(call: &Call<'_>, uid: String, echoed: Option<(Attr, i32)>) -> Reply {
    let mut payload = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())];
    if let Some((attr, index)) = echoed.filter(|_| !call.version.is_v2()) {
        payload.push(attributes::to_v1(&attr, Some(index)));
    }
    Reply {
        payload,
        uid: Some(uid),
    }
}

/// Index of the `index`-th instance of `name`, as a position in `attrs`.
fn position(attrs: &[Attr], name: &str, index: i32) -> Option<usize> {
    attrs
        .iter()
        .enumerate()
        .filter(|(_, a)| a.name == name)
        .nth(usize::try_from(index).ok()?)
        .map(|(i, _)| i)
}

/// Runs Add Attribute.
pub fn add(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let (attr, index) = required(attr_in(call, Tag::NEW_ATTRIBUTE)?)?;
    if index.is_some() {
        return Err(OpError::InvalidField(
            "a new attribute takes no Attribute Index".into(),
        ));
    }
    let multi = check_editable(&attr.name)?;
    let call_now = call.now;
    let echoed = modify(
        ctx,
        who,
        uid.clone(),
        operation::ADD_ATTRIBUTE,
        call.now,
        move |obj| {
            let existing = obj.all(&attr.name).count() as i32;
            if !multi && existing > 0 {
                return Err(OpError::AttributeExists(attr.name));
            }
            check_state_for(obj, &attr.name, call_now)?;
            // The same Name twice on one object is as much a clash as on two (the store
            // checks the others).
            if attr.name == attr::NAME && obj.all(attr::NAME).any(|v| *v == attr.value) {
                return Err(OpError::Store(StoreError::NameTaken));
            }
            let attr = as_stored(attr, obj);
            obj.attrs.push(attr.clone());
            follow_edit(obj);
            Ok(Some((attr, existing)))
        },
    )?;
    Ok(reply(call, uid, echoed))
}

/// Runs Modify Attribute.
pub fn modify_attr(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let (new, index) = required(attr_in(call, Tag::NEW_ATTRIBUTE)?)?;
    // 1.x names the instance by index; 2.x by its current value.
    let current = match call.version.is_v2() {
        true => attr_in(call, Tag::CURRENT_ATTRIBUTE)?.map(|(a, _)| a),
        false => None,
    };
    check_editable(&new.name)?;
    let call_now = call.now;
    let echoed = modify(
        ctx,
        who,
        uid.clone(),
        operation::MODIFY_ATTRIBUTE,
        call.now,
        move |obj| {
            if obj.get(&new.name).is_none() {
                return Err(OpError::InvalidField(format!(
                    "attribute {:?} does not exist; add it first",
                    new.name
                )));
            }
            let at = match &current {
                Some(cur) => obj.attrs.iter().position(|a| a == cur),
                None => position(&obj.attrs, &new.name, index.unwrap_or(0)),
            }
            .ok_or(OpError::AttributeNotFound)?;
            check_state_for(obj, &new.name, call_now)?;
            let new = as_stored(new, obj);
            obj.attrs[at] = new.clone();
            follow_edit(obj);
            Ok(Some((new, index.unwrap_or(0))))
        },
    )?;
    Ok(reply(call, uid, echoed))
}

/// Runs Delete Attribute.
pub fn delete(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    // What to delete: one instance by value (2.x Current Attribute), one by index (1.x), or
    // every instance of a name (2.x Attribute Reference).
    let by_value = attr_in(call, Tag::CURRENT_ATTRIBUTE)?
        .filter(|_| call.version.is_v2())
        .map(|(a, _)| a);
    let name = match &by_value {
        Some(a) => a.name.clone(),
        None => super::get_attributes::requested_names(call)?
            .into_iter()
            .next()
            .ok_or_else(|| OpError::InvalidMessage("no attribute named".into()))?,
    };
    let index = call
        .payload
        .child(Tag::ATTRIBUTE_INDEX)
        .and_then(Ttlv::as_int)
        .unwrap_or(0);
    check_editable(&name)?;
    if NOT_DELETABLE.contains(&name.as_str()) {
        return Err(OpError::ReadOnlyAttribute(name));
    }
    let all_instances = call.version.is_v2() && by_value.is_none();
    let echoed = modify(
        ctx,
        who,
        uid.clone(),
        operation::DELETE_ATTRIBUTE,
        call.now,
        move |obj| {
            if all_instances {
                let before = obj.attrs.len();
                obj.attrs.retain(|a| a.name != name);
                if obj.attrs.len() == before {
                    return Err(OpError::AttributeNotFound);
                }
                return Ok(None);
            }
            let at = match &by_value {
                Some(cur) => obj.attrs.iter().position(|a| a == cur),
                None => position(&obj.attrs, &name, index),
            }
            .ok_or(OpError::AttributeNotFound)?;
            Ok(Some((obj.attrs.remove(at), index)))
        },
    )?;
    Ok(reply(call, uid, echoed))
}

/// Runs Set Attribute (2.x): sets a single-valued attribute, adding or replacing it.
pub fn set(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let uid = call.uid()?;
    let (attr, _) = required(attr_in(call, Tag::NEW_ATTRIBUTE)?)?;
    if check_editable(&attr.name)? {
        return Err(OpError::InvalidField(format!(
            "{:?} takes several values; use Add or Modify Attribute",
            attr.name
        )));
    }
    let call_now = call.now;
    modify(
        ctx,
        who,
        uid.clone(),
        operation::SET_ATTRIBUTE,
        call.now,
        move |obj| {
            check_state_for(obj, &attr.name, call_now)?;
            let attr = as_stored(attr, obj);
            obj.set(&attr.name, attr.value);
            follow_edit(obj);
            Ok(())
        },
    )?;
    Ok(Reply::uid_only(uid))
}
