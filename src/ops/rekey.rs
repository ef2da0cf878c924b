//! Re-key (KMIP 1.4 §4.4, 2.1 §6.1.42): makes the next version of a symmetric key. The new
//! key copies the old one's attributes except those Table 173 lists, gets fresh material of
//! the same algorithm and length, and takes over the old key's names; the two are linked
//! (Replacement Object on the old, Replaced Object on the new) and numbered by Rotate
//! Generation (the old key 0 if it had none), with Rotate Latest marking the newest. The old
//! key is left in its state: it stays usable to decrypt and verify, and once deactivated
//! (Revoke, or its Deactivation Date) only for that. With an Offset the new dates follow
//! Table 172. Both rows change in one transaction, so the name is never on both or neither.

use super::create::{check_client_attributes, digest, generator, new_uid, set_storage_defaults};
use super::stored_size::Writer;
use super::Caller;
use super::{Call, Ctx, Object, Reply};
use crate::crypto::{self, digest::refused_algorithm};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{link_type, object_type as ot, operation, state};
use crate::ttlv::{Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// Attributes the replacement does not inherit (Table 173): the server sets them afresh or
/// they describe the old key's own history.
const NOT_COPIED: &[&str] = &[
    attr::UNIQUE_IDENTIFIER,
    attr::SHORT_UNIQUE_IDENTIFIER,
    attr::INITIAL_DATE,
    attr::DESTROY_DATE,
    attr::COMPROMISE_OCCURRENCE_DATE,
    attr::COMPROMISE_DATE,
    attr::REVOCATION_REASON,
    attr::ARCHIVE_DATE,
    attr::STATE,
    attr::DIGEST,
    attr::LINK,
    attr::LAST_CHANGE_DATE,
    attr::RANDOM_NUMBER_GENERATOR,
    attr::ORIGINAL_CREATION_DATE,
    attr::FRESH,
    attr::ROTATE_GENERATION,
    attr::ROTATE_LATEST,
];

/// Runs Re-key.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let old_uid = call.uid()?;
    let offset = match call.payload.child(Tag::OFFSET) {
        None => None,
        Some(t) => match t.value {
            Value::Interval(v) => Some(i64::from(v)),
            _ => return Err(OpError::InvalidMessage("Offset must be an Interval".into())),
        },
    };
    let client = attributes::read_request_attributes(call.payload, call.version)?;
    check_client_attributes(&client)?;
    let request = Request {
        old_uid,
        now: call.now,
        offset,
        client,
        deactivate_old_at: None,
    };
    let new_uid = rekey(ctx, Some(who), request)?;
    Ok(Reply::uid_only(new_uid))
}

/// One re-key: of which key, when, with what Offset and client attributes, and (scheduled
/// rotation whose policy asks for it) when the old version is to be deactivated.
pub struct Request {
    /// The key to replace.
    pub old_uid: String,
    /// The time of the re-key.
    pub now: i64,
    /// Table 172's Offset.
    pub offset: Option<i64>,
    /// Attributes the client gave for the replacement.
    pub client: Vec<Attr>,
    /// A Deactivation Date to give the old version.
    pub deactivate_old_at: Option<i64>,
}

/// Re-keys `request.old_uid`, checking access for `who` (None: the server's own scheduled
/// rotation), and returns the replacement's Unique Identifier.
pub fn rekey(ctx: &Ctx, who: Option<&Caller>, request: Request) -> Result<String, OpError> {
    let Request {
        old_uid,
        now,
        offset,
        client,
        deactivate_old_at,
    } = request;
    let new_uid = new_uid();
    let old_row = ctx.store.get(&old_uid)?.ok_or(OpError::NotFound)?;
    if let Some(who) = who {
        who.require_key(&Object::row_policy(&old_row)?, &old_uid, operation::RE_KEY)?;
    }
    let old = Object::from_row(old_row)?;
    check_rekeyable(&old)?;
    let bits = old.int_attr(attr::CRYPTOGRAPHIC_LENGTH).unwrap_or(0);
    if ![128, 192, 256, 384, 512].contains(&bits) {
        return Err(OpError::InvalidField(
            "the key's Cryptographic Length cannot be re-keyed".into(),
        ));
    }
    let material = crypto::random_bytes(bits as usize / 8);
    let wrapped = ctx.kek.wrap(&new_uid, 1, &material)?;
    let new_digest = digest(&material);
    drop(material);
    let who = who.cloned();
    let reply_uid = new_uid.clone();
    let limits = ctx.attribute_limits;
    ctx.store
        .write(move |tx| {
            // Re-read inside the transaction: the key may have changed since.
            let row = tx.get(&old_uid)?.ok_or(OpError::NotFound)?;
            if let Some(who) = &who {
                who.require_key(&Object::row_policy(&row)?, &old_uid, operation::RE_KEY)?;
            }
            let stored_len = row.attributes.len();
            let mut old = Object::from_row(row)?;
            let before = limits.before(stored_len, &old);
            old.settle_state(now);
            check_rekeyable(&old)?;
            // A version already replaced is re-keyed through its newest version: a second
            // replacement would fork the chain (its Rotate Latest, or its forward link, can
            // come back when a mirror peer's concurrent edit of it wins).
            for next in tx.owned_replacements(&old.owner, &old_uid)? {
                let Some(row) = tx.get(&next)? else { continue };
                if !matches!(row.state, state::DESTROYED | state::DESTROYED_COMPROMISED) {
                    return Err(OpError::WrongState);
                }
            }
            let new = replacement(&old, &new_uid, now, offset, client, new_digest)?;
            // The names move to the replacement; the old key links forward to it.
            old.attrs.retain(|a| a.name != attr::NAME);
            if old.get(attr::ROTATE_GENERATION).is_none() {
                old.set(attr::ROTATE_GENERATION, Value::Integer(0));
            }
            old.set(attr::ROTATE_LATEST, Value::Boolean(false));
            // Only a schedule whose policy asks for it deactivates the old version, and then
            // only at the date its Rotate Offset gives.
            if let Some(at) = deactivate_old_at {
                old.set(attr::DEACTIVATION_DATE, Value::DateTime(at));
            }
            old.attrs
                .push(link(link_type::REPLACEMENT_OBJECT_LINK, &new_uid));
            old.touch(now);
            // The replacement carries the client's attributes and the old key's; the old key
            // only gains what the server sets.
            let (old_row, new_row) = (old.to_row(), new.to_row());
            limits.check_write(
                Some(&before),
                &old,
                old_row.attributes.len(),
                Writer::Server,
            )?;
            limits.check_write(None, &new, new_row.attributes.len(), Writer::Client)?;
            tx.update(&old_row)?;
            tx.insert(&new_row, Some(&wrapped))?;
            Ok::<_, OpError>(())
        })
        .map_err(|e| e.created(&reply_uid))?;
    Ok(reply_uid)
}

/// Only a symmetric key of an algorithm akm uses whose material is still held can be
/// re-keyed (KMIP 1.4 §11.5 / 2.1 §6.1.46: "The Key Value is not present on the server"); one
/// that was already replaced cannot be replaced again (the chain of versions stays linear).
/// Its state is otherwise no bar: KMIP 1.4 §4.4 and 2.1 §6.1.46 set none, and a Compromised
/// key is exactly the one a client must replace. The replacement's State follows its own
/// dates (Table 173: "Set based on attributes values, such as dates").
fn check_rekeyable(old: &Object) -> Result<(), OpError> {
    if old.object_type != ot::SYMMETRIC_KEY {
        return Err(OpError::InvalidField(
            "Re-key replaces Symmetric Keys only".into(),
        ));
    }
    if matches!(old.state(), state::DESTROYED | state::DESTROYED_COMPROMISED) {
        return Err(OpError::ObjectDestroyed);
    }
    if let Some(name) = old
        .enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM)
        .and_then(refused_algorithm)
    {
        return Err(OpError::RefusedAlgorithm(name));
    }
    if old.get(attr::ROTATE_LATEST) == Some(&Value::Boolean(false)) {
        return Err(OpError::WrongState);
    }
    Ok(())
}

/// A Link attribute value.
pub fn link(kind: u32, target: &str) -> Attr {
    Attr::new(
        attr::LINK,
        Value::Structure(vec![
            Ttlv::enumeration(Tag::LINK_TYPE, kind),
            Ttlv::text(Tag::LINKED_OBJECT_IDENTIFIER, target),
        ]),
    )
}

/// The replacement's metadata (Tables 172 and 173).
fn replacement(
    old: &Object,
    uid: &str,
    now: i64,
    offset: Option<i64>,
    client: Vec<Attr>,
    new_digest: Value,
) -> Result<Object, OpError> {
    // Owner, group and access mode carry over with the rest of the object.
    let mut new = old.clone();
    new.uid = uid.to_owned();
    new.initial_date = now;
    new.key_version = 1;
    new.material_destroyed = false;
    new.registered_wrapping = None;
    new.attrs.retain(|a| !NOT_COPIED.contains(&a.name.as_str()));
    if let (Some(offset), Some(at1)) = (offset, old.date_attr(attr::ACTIVATION_DATE)) {
        let at2 = now + offset;
        new.set(attr::ACTIVATION_DATE, Value::DateTime(at2));
        for name in [
            attr::PROCESS_START_DATE,
            attr::PROTECT_STOP_DATE,
            attr::DEACTIVATION_DATE,
        ] {
            if let Some(d) = old.date_attr(name) {
                new.set(name, Value::DateTime(d + (at2 - at1)));
            }
        }
    } else if let Some(offset) = offset {
        new.set(attr::ACTIVATION_DATE, Value::DateTime(now + offset));
    }
    // Usage Limits: the Total carries over, the count starts again.
    if let Some(Value::Structure(fields)) = old.get(attr::USAGE_LIMITS).cloned() {
        let fresh = fields
            .into_iter()
            .filter(|t| t.tag != Tag::USAGE_LIMITS_COUNT)
            .collect();
        new.set(attr::USAGE_LIMITS, Value::Structure(fresh));
    }
    for a in client {
        if attributes::spec_by_name(&a.name).is_some_and(|s| !s.multi) {
            new.set(&a.name, a.value);
        } else {
            new.attrs.push(a);
        }
    }
    new.set(attr::UNIQUE_IDENTIFIER, Value::TextString(uid.to_owned()));
    new.set(
        attr::SHORT_UNIQUE_IDENTIFIER,
        Value::ByteString(Zeroizing::new(crypto::sha256(uid.as_bytes()))),
    );
    let generation = match old.get(attr::ROTATE_GENERATION) {
        Some(Value::Integer(g)) => g.saturating_add(1),
        _ => 1,
    };
    new.set(attr::ROTATE_GENERATION, Value::Integer(generation));
    new.set(attr::ROTATE_LATEST, Value::Boolean(true));
    new.set(attr::FRESH, Value::Boolean(true));
    set_storage_defaults(&mut new);
    // Pre-Active unless its dates already make it Active (or Deactivated).
    new.set(attr::STATE, Value::Enumeration(state::PRE_ACTIVE));
    new.settle_state(now);
    new.set(attr::INITIAL_DATE, Value::DateTime(now));
    new.set(attr::ORIGINAL_CREATION_DATE, Value::DateTime(now));
    let rng = generator();
    new.set(&rng.name, rng.value);
    new.set(attr::DIGEST, new_digest);
    new.attrs
        .push(link(link_type::REPLACED_OBJECT_LINK, &old.uid));
    new.touch(now);
    Ok(new)
}
