//! Applying a peer's change: the conflict rule, re-wrapping key material under this node's
//! KEK, and the one transaction that stores the winning version together with the peer's
//! acknowledged sequence number.
//!
//! The rule (the same on every node, so all converge): of two versions of an object, the one
//! with the greater `(state, hlc, node)` wins whole. KMIP states are numbered in lifecycle
//! order (Pre-Active 1 < Active 2 < Deactivated 3 < Compromised 4 < Destroyed 5 < Destroyed
//! Compromised 6), so a state only moves forward and a destroyed object never comes back; among
//! versions in the same state the later hybrid logical clock wins (last writer wins), and the
//! node id breaks an exact tie.
//!
//! A version whose stored record would not decode here (over the stored-record limit, or
//! damaged: a peer running an older akm, or a bug) is refused: the local version stays, the
//! refusal is logged and audited like a conflict, and mirroring goes on with the next change,
//! so one bad record can neither brick the object on this node nor stall replication.

use super::events::Conflict;
use super::proto::{Item, WireObject};
use crate::crypto::slot::Wrapping;
use crate::crypto::{CryptoError, Wrapped};
use crate::store::{AccountKind, CertRevocation, ObjectRow, ReplicaObject, Store, StoreError};

/// Why a change could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Re-wrapping the material failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A record of a kind this node does not know.
    #[error("unknown record kind {0:?}")]
    UnknownEntity(String),
}

/// What happened to an incoming version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It was stored (new object, or newer than the local version).
    Applied,
    /// The local version was the same or won.
    KeptLocal,
    /// It would not decode on this node (see the module documentation): the local version,
    /// if any, was kept.
    Refused,
}

/// The rule recorded when an incoming version is refused.
const UNREADABLE_RULE: &str =
    "refused: its stored attributes do not decode within the stored-record limit";

/// The ordering key of a version: state first (forward only), then clock, then node.
fn rank(state: u32, hlc: i64, node: &str) -> (u32, i64, String) {
    (state, hlc, node.to_owned())
}

/// A version as the wire carries it, from a local object (material unwrapped).
pub fn to_wire(
    obj: ReplicaObject,
    kek: &impl Wrapping,
    self_node: &str,
) -> Result<WireObject, CryptoError> {
    let ReplicaObject {
        row,
        material,
        hlc,
        origin,
    } = obj;
    let material = match &material {
        Some(w) => {
            let plain = kek.unwrap_material(&row.uid, row.key_version, w)?;
            Some(super::proto::Secret(plain.to_vec()))
        }
        None => None,
    };
    Ok(WireObject {
        uid: row.uid,
        object_type: row.object_type,
        state: row.state,
        owner: row.owner,
        owner_group: row.owner_group,
        access_mode: row.access_mode,
        algorithm: row.algorithm,
        length: row.length,
        initial_date: row.initial_date,
        activation_date: row.activation_date,
        deactivation_date: row.deactivation_date,
        last_change: row.last_change,
        key_version: row.key_version,
        names: row.names,
        groups: row.groups,
        attributes: row.attributes,
        material,
        hlc,
        node: origin.unwrap_or_else(|| self_node.to_owned()),
    })
}

fn to_row(w: &WireObject) -> ObjectRow {
    ObjectRow {
        uid: w.uid.clone(),
        object_type: w.object_type,
        state: w.state,
        owner: w.owner.clone(),
        owner_group: w.owner_group.clone(),
        access_mode: w.access_mode.clone(),
        algorithm: w.algorithm,
        length: w.length,
        initial_date: w.initial_date,
        activation_date: w.activation_date,
        deactivation_date: w.deactivation_date,
        last_change: w.last_change,
        key_version: w.key_version,
        names: w.names.clone(),
        groups: w.groups.clone(),
        attributes: w.attributes.clone(),
        replaces: crate::store::replaced_object_of(&w.attributes),
    }
}

/// A change ready to apply: key material already re-wrapped under this node's KEK (the
/// plaintext is wiped once the incoming item drops).
enum Prepared {
    Object {
        row: Box<ObjectRow>,
        wrapped: Option<Wrapped>,
        hlc: i64,
        node: String,
    },
    Unreadable {
        uid: String,
        state: u32,
        hlc: i64,
        node: String,
    },
    Account {
        kind: AccountKind,
        name: String,
        record: Option<(bool, String)>,
        hlc: i64,
        node: String,
    },
    Deleted {
        uid: String,
        hlc: i64,
        node: String,
    },
    Revocation {
        revocation: CertRevocation,
        hlc: i64,
        node: String,
    },
}

fn prepare(kek: &impl Wrapping, item: Item) -> Result<Prepared, ApplyError> {
    Ok(match item {
        Item::Object(w) => {
            let row = to_row(&w);
            if !crate::ops::Object::readable(&row) {
                tracing::error!(
                    uid = %w.uid,
                    peer = %w.node,
                    bytes = w.attributes.len(),
                    "mirror: refused a version whose stored attributes do not decode"
                );
                return Ok(Prepared::Unreadable {
                    uid: w.uid.clone(),
                    state: w.state,
                    hlc: w.hlc,
                    node: w.node.clone(),
                });
            }
            let wrapped = match &w.material {
                Some(m) => Some(kek.wrap_material(&w.uid, w.key_version, &m.0)?),
                None => None,
            };
            Prepared::Object {
                row: Box::new(row),
                wrapped,
                hlc: w.hlc,
                node: w.node.clone(),
            }
        }
        Item::Account {
            entity,
            name,
            record,
            hlc,
            node,
        } => {
            let kind = match entity.as_str() {
                "user" => AccountKind::User,
                "group" => AccountKind::Group,
                _ => return Err(ApplyError::UnknownEntity(entity)),
            };
            Prepared::Account {
                kind,
                name,
                record: record.map(|r| (r.enabled, r.operations)),
                hlc,
                node,
            }
        }
        Item::Deleted { uid, hlc, node } => Prepared::Deleted { uid, hlc, node },
        Item::Revocation {
            issuer,
            serial,
            reason,
            revoked_at,
            hlc,
            node,
        } => Prepared::Revocation {
            revocation: CertRevocation {
                issuer,
                serial,
                reason,
                revoked_at,
            },
            hlc,
            node,
        },
    })
}

/// Applies one prepared change inside the transaction.
fn apply_in(
    tx: &crate::store::WriteTx<'_>,
    self_node: &str,
    change: &Prepared,
) -> Result<(Outcome, Option<Conflict>), StoreError> {
    match change {
        Prepared::Object {
            row,
            wrapped,
            hlc,
            node,
        } => {
            let (outcome, conflict) = decide(tx, self_node, row, *hlc, node)?;
            if outcome == Outcome::Applied {
                tx.put_replica(row, wrapped.as_ref(), node, *hlc)?;
            }
            Ok((outcome, conflict))
        }
        Prepared::Account {
            kind,
            name,
            record,
            hlc,
            node,
        } => {
            let (outcome, conflict) = decide_account(tx, self_node, *kind, name, *hlc, node)?;
            if outcome == Outcome::Applied {
                tx.put_account_replica(*kind, name, record.as_ref(), node, *hlc)?;
            }
            Ok((outcome, conflict))
        }
        Prepared::Unreadable {
            uid,
            state,
            hlc,
            node,
        } => Ok((
            Outcome::Refused,
            Some(refusal(tx, self_node, uid, *state, *hlc, node)?),
        )),
        // Revocations are only ever added: one already known keeps its first record.
        Prepared::Revocation {
            revocation,
            hlc,
            node,
        } => Ok(
            match tx.put_cert_revocation(revocation, Some((node, *hlc)))? {
                true => (Outcome::Applied, None),
                false => (Outcome::KeptLocal, None),
            },
        ),
        Prepared::Deleted { uid, hlc, node } => {
            if tx.get(uid)?.is_none() {
                return Ok((Outcome::KeptLocal, None));
            }
            tx.delete_replica(uid, node, *hlc)?;
            Ok((Outcome::Applied, None))
        }
    }
}

/// Applies `item` from peer `from` in one transaction; with `seq`, also records it as the
/// last applied sequence number from that peer. Returns what happened and the conflict
/// resolution to record, if there was one.
pub fn apply(
    store: &Store,
    kek: &impl Wrapping,
    self_node: &str,
    from: &str,
    seq: Option<i64>,
    item: Item,
) -> Result<(Outcome, Option<Conflict>), ApplyError> {
    let (mut out, _) = apply_batch(store, kek, self_node, from, vec![(seq, item)], None)?;
    Ok(out.pop().unwrap_or((Outcome::KeptLocal, None)))
}

/// What happened to one incoming change, and the conflict to record, if any.
pub type Applied = (Outcome, Option<Conflict>);

/// Applies consecutive changes from peer `from` in one transaction (one commit for a burst:
/// each change is still applied whole or not at all, and the highest `seq` among them is
/// recorded as applied with them). Returns each change's outcome and conflict, in order, and,
/// with `resolve_within` (the stored-size limits), what the name-conflict and fork rule changed
/// over the objects applied, in the same transaction: a node killed right after applying never
/// misses the resolution (applying the same versions again would not bring it back).
pub fn apply_batch(
    store: &Store,
    kek: &impl Wrapping,
    self_node: &str,
    from: &str,
    items: Vec<(Option<i64>, Item)>,
    resolve_within: Option<crate::config::limits::AttributeLimits>,
) -> Result<(Vec<Applied>, Vec<super::resolve::Resolution>), ApplyError> {
    let last_seq = items.iter().filter_map(|(seq, _)| *seq).max();
    let uids = super::resolve::object_uids(&items);
    let prepared = items
        .into_iter()
        .map(|(_, item)| prepare(kek, item))
        .collect::<Result<Vec<_>, _>>()?;
    let (from, self_node) = (from.to_owned(), self_node.to_owned());
    store.write_replica(move |tx| {
        let mut out = Vec::with_capacity(prepared.len());
        for change in &prepared {
            out.push(apply_in(tx, &self_node, change)?);
        }
        if let Some(seq) = last_seq {
            tx.set_applied(&from, seq)?;
        }
        let resolutions = match resolve_within {
            Some(limits) => {
                let applied = super::resolve::applied_uids(uids, &out);
                super::resolve::resolve(tx, &applied, limits)?
            }
            None => Vec::new(),
        };
        Ok::<_, ApplyError>((out, resolutions))
    })
}

/// The record of a refused incoming version, against the local one (state 0 if none).
fn refusal(
    tx: &crate::store::WriteTx<'_>,
    self_node: &str,
    uid: &str,
    state: u32,
    hlc: i64,
    node: &str,
) -> Result<Conflict, StoreError> {
    let local_state = tx.get(uid)?.map_or(0, |r| r.state);
    let (local_hlc, local_origin) = tx.stamp_of("object", uid)?.unwrap_or((0, None));
    Ok(Conflict {
        entity: "object",
        id: uid.to_owned(),
        local_state,
        local_hlc,
        local_node: local_origin.unwrap_or_else(|| self_node.to_owned()),
        incoming_state: state,
        incoming_hlc: hlc,
        incoming_node: node.to_owned(),
        kept: "local",
        rule: UNREADABLE_RULE,
    })
}

/// Users and groups: the later `(hlc, node)` wins (last writer wins; a deletion is a version
/// too, so a deleted record is not revived by an older edit).
fn decide_account(
    tx: &crate::store::WriteTx<'_>,
    self_node: &str,
    kind: AccountKind,
    name: &str,
    hlc: i64,
    node: &str,
) -> Result<(Outcome, Option<Conflict>), StoreError> {
    let Some((local_hlc, local_origin)) = tx.stamp_of(kind.as_str(), name)? else {
        return Ok((Outcome::Applied, None));
    };
    let local_node = local_origin.unwrap_or_else(|| self_node.to_owned());
    let theirs = (hlc, node);
    let ours = (local_hlc, local_node.as_str());
    if theirs > ours {
        return Ok((Outcome::Applied, None));
    }
    let conflict = (theirs < ours).then(|| Conflict {
        entity: kind.as_str(),
        id: name.to_owned(),
        local_state: 0,
        local_hlc,
        local_node: local_node.clone(),
        incoming_state: 0,
        incoming_hlc: hlc,
        incoming_node: node.to_owned(),
        kept: "local",
        rule: "last writer wins (hybrid logical clock, then node id)",
    });
    Ok((Outcome::KeptLocal, conflict))
}

/// Compares the incoming version with the local one; says which wins and whether that was a
/// conflict worth recording.
fn decide(
    tx: &crate::store::WriteTx<'_>,
    self_node: &str,
    incoming: &ObjectRow,
    hlc: i64,
    node: &str,
) -> Result<(Outcome, Option<Conflict>), StoreError> {
    let Some(local) = tx.get(&incoming.uid)? else {
        return Ok((Outcome::Applied, None));
    };
    let (local_hlc, local_origin) = tx.stamp_of("object", &incoming.uid)?.unwrap_or((0, None));
    let local_node = local_origin.unwrap_or_else(|| self_node.to_owned());
    let theirs = rank(incoming.state, hlc, node);
    let ours = rank(local.state, local_hlc, &local_node);
    if theirs == ours {
        return Ok((Outcome::KeptLocal, None));
    }
    let outcome = if theirs > ours {
        Outcome::Applied
    } else {
        Outcome::KeptLocal
    };
    // A resolution worth recording: a version was discarded although it was not older on
    // the clock (incoming won only by its state), or a peer's version lost to ours.
    let by_state = incoming.state != local.state;
    // The same record written on both nodes (the name-conflict rule) is no conflict.
    let same = local == *incoming;
    let recorded = !same && (outcome == Outcome::KeptLocal || (by_state && hlc < local_hlc));
    let conflict = recorded.then(|| Conflict {
        entity: "object",
        id: incoming.uid.clone(),
        local_state: local.state,
        local_hlc,
        local_node: local_node.clone(),
        incoming_state: incoming.state,
        incoming_hlc: hlc,
        incoming_node: node.to_owned(),
        kept: if outcome == Outcome::Applied {
            "incoming"
        } else {
            "local"
        },
        rule: if by_state {
            "state moves forward only"
        } else {
            "last writer wins (hybrid logical clock, then node id)"
        },
    });
    Ok((outcome, conflict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Kek;
    use crate::kmip::attributes;
    use crate::kmip::enums::state;
    use crate::mirror::proto::Secret;
    use crate::ttlv::{Tag, Ttlv, Value};

    fn wire(uid: &str, st: u32, hlc: i64, node: &str, material: Option<&[u8]>) -> WireObject {
        WireObject {
            uid: uid.into(),
            object_type: 2,
            state: st,
            owner: "admin".into(),
            owner_group: None,
            access_mode: "user".into(),
            algorithm: Some(3),
            length: Some(256),
            initial_date: 1,
            activation_date: None,
            deactivation_date: None,
            last_change: 1,
            key_version: 1,
            names: vec![format!("n-{hlc}")],
            groups: vec![],
            attributes: record(hlc),
            material: material.map(|m| Secret(m.to_vec())),
            hlc,
            node: node.into(),
        }
    }

    /// A stored record whose one attribute tells versions apart.
    fn record(marker: i64) -> Vec<u8> {
        let attr = crate::kmip::attributes::Attr::new("x-marker", Value::LongInteger(marker));
        Ttlv::structure(
            Tag::ATTRIBUTES,
            vec![
                Ttlv::structure(Tag::ATTRIBUTES, vec![attributes::to_v2(&attr)]),
                Ttlv::structure(Tag::KEY_BLOCK, vec![]),
            ],
        )
        .encode()
    }

    fn setup() -> (tempfile::TempDir, Store, Kek) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("akm.db")).unwrap();
        (dir, store, Kek::from_bytes(&[4u8; 32]).unwrap())
    }

    fn put(store: &Store, kek: &Kek, w: WireObject, seq: i64) -> Outcome {
        apply(store, kek, "b", "a", Some(seq), Item::Object(Box::new(w)))
            .unwrap()
            .0
    }

    #[test]
    fn new_objects_are_rewrapped_under_the_local_kek() {
        let (_d, store, kek) = setup();
        let w = wire("u1", state::ACTIVE, 10, "a", Some(b"0123456789abcdef"));
        assert_eq!(put(&store, &kek, w, 1), Outcome::Applied);
        let wrapped = store.get_material("u1").unwrap().unwrap();
        assert_eq!(wrapped.kek_id, kek.id());
        assert_eq!(
            kek.unwrap("u1", 1, &wrapped).unwrap().as_slice(),
            b"0123456789abcdef"
        );
        assert_eq!(store.applied_seq("a").unwrap(), 1);
        // Logged with the peer's stamp, so it is not pushed back.
        let log = store.changes_after(0, 10).unwrap();
        assert_eq!(log[0].origin.as_deref(), Some("a"));
        assert_eq!(log[0].hlc, 10);
    }

    #[test]
    fn later_clock_wins_and_state_only_moves_forward() {
        let (_d, store, kek) = setup();
        put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 10, "a", Some(b"k")),
            1,
        );
        // Older clock, same state: kept local.
        let o = put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 5, "a", Some(b"k")),
            2,
        );
        assert_eq!(o, Outcome::KeptLocal);
        assert_eq!(store.get("u").unwrap().unwrap().attributes, record(10));
        // Newer clock wins.
        let o = put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 20, "c", Some(b"k")),
            3,
        );
        assert_eq!(o, Outcome::Applied);
        assert_eq!(store.get("u").unwrap().unwrap().attributes, record(20));
        // Destroyed with an older clock still wins: state moves forward.
        let o = put(&store, &kek, wire("u", state::DESTROYED, 15, "a", None), 4);
        assert_eq!(o, Outcome::Applied);
        assert!(store.get_material("u").unwrap().is_none());
        // An Active version with a newer clock never brings it back.
        let o = put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 99, "c", Some(b"k")),
            5,
        );
        assert_eq!(o, Outcome::KeptLocal);
        let row = store.get("u").unwrap().unwrap();
        assert_eq!(row.state, state::DESTROYED);
        assert!(store.get_material("u").unwrap().is_none());
        assert_eq!(store.applied_seq("a").unwrap(), 5);
    }

    #[test]
    fn equal_clocks_tie_break_on_node_id_identically_in_either_order() {
        let x = || wire("u", state::ACTIVE, 7, "x", Some(b"k"));
        let mut y = wire("u", state::ACTIVE, 7, "y", Some(b"k"));
        y.attributes = record(99);
        let (_d1, s1, kek) = setup();
        put(&s1, &kek, x(), 1);
        put(&s1, &kek, y.clone(), 2);
        let (_d2, s2, _) = setup();
        put(&s2, &kek, y, 1);
        put(&s2, &kek, x(), 2);
        let a = s1.get("u").unwrap().unwrap();
        let b = s2.get("u").unwrap().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.attributes, record(99));
    }

    #[test]
    fn deletes_apply_and_unknown_deletes_are_harmless() {
        let (_d, store, kek) = setup();
        put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 1, "a", Some(b"k")),
            1,
        );
        let del = |uid: &str, seq| {
            apply(
                &store,
                &kek,
                "b",
                "a",
                Some(seq),
                Item::Deleted {
                    uid: uid.into(),
                    hlc: 2,
                    node: "a".into(),
                },
            )
            .unwrap()
            .0
        };
        assert_eq!(del("u", 2), Outcome::Applied);
        assert!(store.get("u").unwrap().is_none());
        assert_eq!(del("nope", 3), Outcome::KeptLocal);
        assert_eq!(store.applied_seq("a").unwrap(), 3);
    }

    fn account(store: &Store, kek: &Kek, record: Option<bool>, hlc: i64, node: &str) -> Outcome {
        let item = Item::Account {
            entity: "user".into(),
            name: "bob".into(),
            record: record.map(|enabled| crate::mirror::proto::AccountRecord {
                enabled,
                operations: "get".into(),
            }),
            hlc,
            node: node.into(),
        };
        apply(store, kek, "b", "a", None, item).unwrap().0
    }

    #[test]
    fn accounts_are_last_writer_wins_with_deletions_as_versions() {
        let (_d, store, kek) = setup();
        assert_eq!(account(&store, &kek, Some(true), 10, "a"), Outcome::Applied);
        assert_eq!(
            account(&store, &kek, Some(false), 5, "a"),
            Outcome::KeptLocal
        );
        assert_eq!(account(&store, &kek, None, 20, "a"), Outcome::Applied);
        // An older edit does not revive the deleted record.
        assert_eq!(
            account(&store, &kek, Some(true), 15, "c"),
            Outcome::KeptLocal
        );
        assert!(store
            .accounts(AccountKind::User)
            .unwrap()
            .iter()
            .all(|(n, _)| n != "bob"));
        assert_eq!(account(&store, &kek, Some(true), 30, "a"), Outcome::Applied);
        assert_eq!(store.accounts(AccountKind::User).unwrap().len(), 1);
        let unknown = Item::Account {
            entity: "robot".into(),
            name: "r".into(),
            record: None,
            hlc: 1,
            node: "a".into(),
        };
        assert!(matches!(
            apply(&store, &kek, "b", "a", None, unknown),
            Err(ApplyError::UnknownEntity(_))
        ));
    }

    #[test]
    fn compaction_keeps_each_records_latest_entry_and_leaves_a_gap() {
        let (_d, store, kek) = setup();
        put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 10, "a", Some(b"k")),
            1,
        );
        put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 20, "a", Some(b"k")),
            2,
        );
        put(
            &store,
            &kek,
            wire("v", state::ACTIVE, 30, "a", Some(b"k")),
            3,
        );
        assert!(store.log_complete_after(0).unwrap());
        assert_eq!(store.compact_change_log(3).unwrap(), 1);
        assert!(!store.log_complete_after(0).unwrap());
        assert!(store.log_complete_after(1).unwrap());
        // The stamp survives, so the conflict rule still holds.
        assert_eq!(
            put(
                &store,
                &kek,
                wire("u", state::ACTIVE, 15, "a", Some(b"k")),
                4
            ),
            Outcome::KeptLocal
        );
    }

    #[test]
    fn a_version_that_would_not_decode_is_refused_and_replication_goes_on() {
        let (_d, store, kek) = setup();
        put(
            &store,
            &kek,
            wire("u", state::ACTIVE, 10, "a", Some(b"k")),
            1,
        );
        // A newer version whose record is over the stored-record limit, then a damaged one.
        let mut huge = wire("u", state::ACTIVE, 20, "a", Some(b"k"));
        let big = crate::kmip::attributes::Attr::new(
            "x-big",
            Value::TextString("a".repeat(crate::ops::STORED_RECORD_MAX_BYTES)),
        );
        huge.attributes = Ttlv::structure(
            Tag::ATTRIBUTES,
            vec![Ttlv::structure(
                Tag::ATTRIBUTES,
                vec![attributes::to_v2(&big)],
            )],
        )
        .encode();
        let mut damaged = wire("v", state::ACTIVE, 21, "a", Some(b"k"));
        damaged.attributes = vec![0];
        let later = wire("w", state::ACTIVE, 22, "a", Some(b"k"));
        let items = [huge, damaged, later]
            .into_iter()
            .zip(2..)
            .map(|(w, seq)| (Some(seq), Item::Object(Box::new(w))))
            .collect();
        let (out, _) = apply_batch(&store, &kek, "b", "a", items, None).unwrap();
        assert_eq!(out[0].0, Outcome::Refused);
        let refusal = out[0].1.as_ref().expect("the refusal is recorded");
        assert_eq!((refusal.kept, refusal.rule), ("local", UNREADABLE_RULE));
        assert_eq!(refusal.local_state, state::ACTIVE);
        assert_eq!(out[1].0, Outcome::Refused);
        assert_eq!(out[2].0, Outcome::Applied);
        // The local version stays readable; the damaged new object was never stored; the
        // change after them was applied and everything is acknowledged.
        let kept = store.get("u").unwrap().unwrap();
        assert_eq!(kept.attributes, record(10));
        assert!(crate::ops::Object::readable(&kept));
        assert!(store.get("v").unwrap().is_none());
        assert!(store.get("w").unwrap().is_some());
        assert_eq!(store.applied_seq("a").unwrap(), 4);
    }

    #[test]
    fn material_that_does_not_fit_the_kek_is_refused() {
        let (_d, store, kek) = setup();
        // A local object whose material was wrapped by another KEK cannot be sent.
        let other = Kek::from_bytes(&[5u8; 32]).unwrap();
        put(
            &store,
            &other,
            wire("u", state::ACTIVE, 1, "a", Some(b"k")),
            1,
        );
        let obj = store.replica_object("u").unwrap().unwrap();
        assert!(matches!(to_wire(obj, &kek, "b"), Err(CryptoError::Unwrap)));
    }
}
