//! Locate: the objects the caller may use (by their access policy) whose attributes match
//! the request. Indexed attributes (Object Type, algorithm, length, State, Name, Object
//! Group) are filtered in SQL; the rest (dates as ranges, other attributes by value) are
//! checked on the loaded objects. Maximum
//! Items and Offset Items page the result, never beyond `server.max_locate_items`; Storage
//! Status Mask picks live or destroyed. Object Group Member with an Object Group narrows the
//! group to its fresh members (Group Member Fresh) or to its default member (Group Member
//! Default: the newest Active one).

use super::object::name_value;
use super::Caller;
use super::{cost, Call, Ctx, Object, Reply};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{object_group_member as ogm, state, storage_status_mask as ssm};
use crate::store::LocateQuery;
use crate::ttlv::{Tag, Ttlv, Value};

/// Objects a Locate reads and matches at a time when the indexes cannot answer a filter.
const LOCATE_CHUNK: usize = 256;

/// Runs Locate.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let attrs = attributes::read_request_attributes(call.payload, call.version)?;
    let max_items = non_negative(call.payload, Tag::MAXIMUM_ITEMS)?;
    let offset = non_negative(call.payload, Tag::OFFSET_ITEMS)?.unwrap_or(0);
    let mask = call
        .payload
        .child(Tag::STORAGE_STATUS_MASK)
        .and_then(Ttlv::as_int)
        .unwrap_or(ssm::ON_LINE_STORAGE);
    let (mut query, mut rest) = split_filters(&attrs, mask)?;
    let member = group_member(call.payload, &attrs)?;
    if member == Some(ogm::GROUP_MEMBER_FRESH) {
        rest.push(Attr::new(attr::FRESH, Value::Boolean(true)));
    }
    if !who.is_admin() {
        query.visible_to = Some((who.cn.clone(), who.ous.clone()));
    }
    // Names are unique per owner: the caller's own object of a name comes before another
    // owner's shared one, so a client that takes the first match never gets someone else's.
    if !query.names.is_empty() {
        query.owner_first = Some(who.cn.clone());
    }
    // Only what the caller may use is listed; the access policy is checked per object.
    let mut matched: Vec<String> = ctx
        .store
        .locate_with_policy(&query)?
        .into_iter()
        .filter(|located| who.sees(located))
        .map(|located| located.uid)
        .collect();
    if !rest.is_empty() {
        // Filters the indexes cannot answer are checked on the candidates' attributes, a
        // chunk at a time (bounded memory), each chunk charged to the request's budget: how
        // many objects a search must read is not known before it runs.
        let mut kept = Vec::with_capacity(matched.len());
        for chunk in matched.chunks(LOCATE_CHUNK) {
            call.meter
                .charge((chunk.len() as u64).div_ceil(cost::LOCATE_OBJECTS_PER_UNIT))?;
            for row in ctx.store.get_many(chunk)? {
                // A record that does not decode cannot be shown to match; it must not fail
                // the search for the others (it is still listed by the filters the indexes
                // answer).
                let obj = match Object::from_row(row) {
                    Ok(obj) => obj,
                    Err(e) => {
                        tracing::error!(error = %e, "Locate skips an unreadable record");
                        continue;
                    }
                };
                if matches_all(&obj, &rest, call.now) {
                    kept.push(obj.uid);
                }
            }
        }
        matched = kept;
    }
    if member == Some(ogm::GROUP_MEMBER_DEFAULT) {
        matched = default_member(ctx, &matched)?.into_iter().collect();
    }
    let total = matched.len();
    let cap = *ctx.max_locate_items.current();
    let page = matched
        .into_iter()
        .skip(offset)
        .take(max_items.map_or(cap, |m| m.min(cap)));
    let page: Vec<String> = page.collect();
    let mut payload = Vec::new();
    if call.version.is_v2() {
        payload.push(Ttlv::integer(Tag::LOCATED_ITEMS, total as i32));
    }
    payload.extend(
        page.iter()
            .map(|uid| Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())),
    );
    // A single located object becomes the ID Placeholder for the rest of the batch.
    let uid = match page.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    };
    Ok(Reply { payload, uid })
}

/// The Object Group Member of a Locate that also names an Object Group (KMIP 2.1 §6.1.27,
/// 1.4 §4.9; without a group the flag has nothing to act on and is ignored).
fn group_member(payload: &Ttlv, attrs: &[Attr]) -> Result<Option<u32>, OpError> {
    let Some(item) = payload.child(Tag::OBJECT_GROUP_MEMBER) else {
        return Ok(None);
    };
    let member = match item.as_enum() {
        Some(m @ (ogm::GROUP_MEMBER_FRESH | ogm::GROUP_MEMBER_DEFAULT)) => m,
        _ => {
            return Err(OpError::InvalidField(
                "Object Group Member is Group Member Fresh or Group Member Default".into(),
            ))
        }
    };
    Ok(attrs
        .iter()
        .any(|a| a.name == attr::OBJECT_GROUP)
        .then_some(member))
}

/// akm's default member of a group (the server policy KMIP leaves open): the Active object
/// created last, or, if none is Active, the object created last.
fn default_member(ctx: &Ctx, matched: &[String]) -> Result<Option<String>, OpError> {
    let objects: Vec<Object> = ctx
        .store
        .get_many(matched)?
        .into_iter()
        .filter_map(|row| Object::from_row(row).ok())
        .collect();
    let newest = |active_only: bool| {
        objects
            .iter()
            .filter(|o| !active_only || o.state() == state::ACTIVE)
            .max_by_key(|o| o.initial_date)
            .map(|o| o.uid.clone())
    };
    Ok(newest(true).or_else(|| newest(false)))
}

fn non_negative(payload: &Ttlv, tag: Tag) -> Result<Option<usize>, OpError> {
    match payload.child(tag) {
        None => Ok(None),
        Some(t) => t
            .as_int()
            .and_then(|v| usize::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| {
                OpError::InvalidField(format!("{tag:?} must be a non-negative Integer"))
            }),
    }
}

/// Splits the filter attributes into the SQL query and the ones checked in memory.
fn split_filters(attrs: &[Attr], mask: i32) -> Result<(LocateQuery, Vec<Attr>), OpError> {
    let mut q = LocateQuery {
        include_live: mask & (ssm::ON_LINE_STORAGE | ssm::ARCHIVAL_STORAGE) != 0,
        include_destroyed: mask & ssm::DESTROYED_STORAGE != 0,
        ..LocateQuery::default()
    };
    let mut rest = Vec::new();
    for a in attrs {
        match (a.name.as_str(), &a.value) {
            (attr::OBJECT_TYPE, Value::Enumeration(v)) => q.object_type = Some(*v),
            (attr::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(v)) => q.algorithm = Some(*v),
            (attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(v)) => q.length = Some(*v),
            (attr::STATE, Value::Enumeration(v)) => match stored_states_for(*v) {
                // A State the dates can move into or out of: the stored State may lag the
                // dates, so the candidates are checked by the State they are in now.
                Some(candidates) => {
                    q.states_any = candidates.to_vec();
                    rest.push(a.clone());
                }
                None => q.state = Some(*v),
            },
            (attr::NAME, v) => q.names.push(
                name_value(v)
                    .ok_or_else(|| OpError::InvalidField("Name without Name Value".into()))?,
            ),
            (attr::OBJECT_GROUP, Value::TextString(g)) => q.groups.push(g.clone()),
            _ => rest.push(a.clone()),
        }
    }
    Ok((q, rest))
}

/// For a State the dates move objects into or out of (KMIP 2.1 §4.57, transitions 4 and 6),
/// the stored States an object in it now may still have: the stored State is written on the
/// object's next write, so Locate answers by [`Object::state_at`] instead.
fn stored_states_for(wanted: u32) -> Option<&'static [u32]> {
    match wanted {
        state::PRE_ACTIVE => Some(&[state::PRE_ACTIVE]),
        state::ACTIVE => Some(&[state::PRE_ACTIVE, state::ACTIVE]),
        state::DEACTIVATED => Some(&[state::PRE_ACTIVE, state::ACTIVE, state::DEACTIVATED]),
        _ => None,
    }
}

/// In-memory filters: date attributes given twice are a range (inclusive); State is the
/// State at `now`; any other attribute must equal one of the object's instances.
fn matches_all(obj: &Object, filters: &[Attr], now: i64) -> bool {
    let mut checked: Vec<&str> = Vec::new();
    for f in filters {
        if checked.contains(&f.name.as_str()) {
            continue;
        }
        checked.push(&f.name);
        let same: Vec<&Value> = filters
            .iter()
            .filter(|g| g.name == f.name)
            .map(|g| &g.value)
            .collect();
        if f.name == attr::STATE {
            let current = Value::Enumeration(obj.state_at(now));
            if same.iter().all(|want| **want == current) {
                continue;
            }
            return false;
        }
        let ok = match date_range(&same) {
            Some((lo, hi)) => obj
                .all(&f.name)
                .any(|v| matches!(v, Value::DateTime(d) if (lo..=hi).contains(d))),
            None => same.iter().all(|want| {
                obj.all(&f.name)
                    .any(|v| v == *want || partly(&f.name, want, v))
            }),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A certificate's X.509 identity structures match a filter that gives only some of their
/// fields (say the Subject Distinguished Name without the alternative names), each equal.
fn partly(name: &str, want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Structure(w), Value::Structure(h)) if name.starts_with("X.509 Certificate ") => {
            !w.is_empty() && w.iter().all(|field| h.contains(field))
        }
        _ => false,
    }
}

fn date_range(values: &[&Value]) -> Option<(i64, i64)> {
    match values {
        [Value::DateTime(a), Value::DateTime(b)] => Some(((*a).min(*b), (*a).max(*b))),
        _ => None,
    }
}
