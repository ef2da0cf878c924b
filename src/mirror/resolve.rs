//! The name-conflict rule: what makes two nodes that each let an owner use a Name (two Creates
//! of one name, or a Re-key of one key, on both sides of a partition) agree afterwards on the
//! one live object that holds it, without losing the other.
//!
//! It runs on every node inside the transaction that applies a peer's changes (so a node
//! killed right after applying never misses it), over the objects just applied, and is
//! idempotent. Among the live objects of one owner that share a Name:
//!
//! - a version that another of them replaces (it is that one's Replaced Object, directly or
//!   further up the chain) gives the name to its replacement, as Re-key would have: it loses
//!   the Name and Rotate Latest (a concurrent edit of the old version had brought them back);
//! - of the others, the one with the earliest Initial Date, then the smallest Unique
//!   Identifier, keeps the name (the winner); every other one (a loser) is renamed
//!   `"<name> (conflict <first 8 of its uid>)"` and keeps its state and material;
//! - a loser that shares an ancestor with the winner forked the version chain (two Re-keys of
//!   one key): it is also deactivated, stops rotating (Rotate Latest and Rotate Automatic
//!   False), links forward to the winner (Replacement Object), and the predecessor's
//!   Replacement Object link moves to the winner, so the chain is linear again and the loser
//!   still decrypts and verifies what it protected.
//!
//! Version chains are followed only between one owner's objects (Re-key keeps the owner): a
//! Link is a client-set attribute, so a link from one user's key to another's is never taken
//! as a chain, and the rule never changes a key its owner's own versions do not contend for.
//!
//! Every change is written with dates taken from the objects (never the clock), so two nodes
//! resolving the same conflict write the same record; the change is a local write (logged and
//! mirrored to the peers, which then find nothing left to do) and audited as
//! `event=mirror.resolve` on the node that makes it. It does not wait for RPO-zero
//! acknowledgement: it only reorders what both sides already hold.

use super::Mirror;
use crate::audit::{AuditEvent, Outcome};
use crate::config::limits::AttributeLimits;
use crate::kmip::attr;
use crate::kmip::enums::{link_type, state};
use crate::ops::{Object, Writer};
use crate::store::{StoreError, WriteTx};
use crate::ttlv::{Tag, Ttlv, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The rule recorded when a replaced version gives its name to its replacement.
const SUPERSEDED: &str = "a replaced version gives its name to its replacement";
/// The rule recorded when a loser is renamed.
const RENAMED: &str = "one live object per owner and name: the earliest Initial Date (then the \
     smallest Unique Identifier) keeps it";
/// The rule recorded when a loser forked a version chain.
const FORKED: &str = "one version chain per key: a concurrent Re-key's version is deactivated \
     and linked to the one that keeps the name";
/// The rule recorded when a predecessor's forward link moves to the winner.
const RELINKED: &str = "the replaced version links to the replacement that kept the name";
/// How far up a version chain the rule looks for a shared ancestor.
const MAX_CHAIN: usize = 64;

/// One change the rule made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The object changed.
    pub uid: String,
    /// The Name in conflict (or, for a moved link, the winner's uid).
    pub name: String,
    /// The object that keeps the name.
    pub winner: String,
    /// What was changed.
    pub detail: String,
    /// The rule applied.
    pub rule: &'static str,
}

/// After the rule changed objects (in the apply's transaction): wakes the pushers so the
/// peers get the changes, and records them. False if the journal refused the records.
pub fn after_resolving(mirror: &Arc<Mirror>, resolutions: &[Resolution]) -> bool {
    if resolutions.is_empty() {
        return true;
    }
    if let Ok(seq) = mirror.ctx.store.last_change_seq() {
        mirror.head.send_modify(|h| *h = (*h).max(seq));
    }
    audit(mirror, resolutions)
}

/// Writes the `mirror.resolve` records; false if the journal refused them.
fn audit(mirror: &Mirror, resolutions: &[Resolution]) -> bool {
    let events = resolutions
        .iter()
        .map(|r| {
            tracing::warn!(
                target: "akm::audit",
                event = "mirror.resolve",
                uid = %r.uid,
                winner = %r.winner,
                rule = r.rule,
                "{}",
                r.detail
            );
            AuditEvent {
                event: "mirror.resolve",
                user: Some(format!(
                    "akm (mirror conflict rule, node {})",
                    mirror.node_id()
                )),
                uid: Some(r.uid.clone()),
                name: Some(r.name.clone()),
                outcome: Some(Outcome::Success),
                detail: Some(format!(
                    "{}; winner {}; rule: {}",
                    r.detail, r.winner, r.rule
                )),
                ..AuditEvent::default()
            }
        })
        .collect();
    match mirror.ctx.audit.record(events) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "mirror: name-conflict audit records not written");
            false
        }
    }
}

/// The rule over the names of `applied` and the links of their predecessors, in one
/// transaction. Returns what it changed (nothing when there was no conflict).
pub fn resolve(
    tx: &WriteTx<'_>,
    applied: &[String],
    limits: AttributeLimits,
) -> Result<Vec<Resolution>, StoreError> {
    let mut groups = BTreeSet::new();
    let mut linked = BTreeSet::new();
    for uid in applied {
        let Some(row) = tx.get(uid)? else { continue };
        linked.insert(uid.clone());
        if live(row.state) {
            for name in &row.names {
                groups.insert((row.owner.clone(), name.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for (owner, name) in &groups {
        resolve_name(tx, owner, name, limits, &mut out, &mut linked)?;
    }
    // One fork point is resolved once per call, however many of its replacements arrived
    // together: redoing it for each would scan the owner's objects for every pair of them.
    let mut points = BTreeSet::new();
    for uid in applied {
        resolve_fork(tx, uid, limits, &mut out, &mut linked, &mut points)?;
        settle_latest(tx, uid, limits, &mut out)?;
    }
    for uid in &linked {
        relink(tx, uid, limits, &mut out)?;
    }
    Ok(out)
}

fn live(st: u32) -> bool {
    !matches!(st, state::DESTROYED | state::DESTROYED_COMPROMISED)
}

/// A live object holding the name, with its version chain (its ancestors' Initial Dates and
/// uids, nearest first).
struct Candidate {
    obj: Object,
    ancestors: Vec<(i64, String)>,
}

impl Candidate {
    fn descends_from(&self, uid: &str) -> bool {
        self.ancestors.iter().any(|(_, a)| a == uid)
    }

    /// The order in which candidates win a name: by their version chains from the oldest
    /// version down, each version by (Initial Date, uid). Two versions of one forked key are
    /// so ordered by the branches at the fork point, which never change as either branch is
    /// re-keyed further: every node picks the same branch whatever part of it it has seen.
    fn lineage(&self) -> Vec<(i64, &str)> {
        let mut l: Vec<(i64, &str)> = self
            .ancestors
            .iter()
            .rev()
            .map(|(d, u)| (*d, u.as_str()))
            .collect();
        l.push((self.obj.initial_date, self.obj.uid.as_str()));
        l
    }
}

/// Where a fork loser's chain meets the winner's: the nearest shared ancestor (the fork
/// point), and its replacement on the loser's side and on the winner's side (each may be the
/// candidate itself). None if the chains never meet.
fn fork_of(loser: &Candidate, winner: &Candidate) -> Option<Fork> {
    let at_loser = loser
        .ancestors
        .iter()
        .position(|(_, a)| winner.descends_from(a))?;
    let point = loser.ancestors[at_loser].1.clone();
    let at_winner = winner.ancestors.iter().position(|(_, a)| *a == point)?;
    let successor = |c: &Candidate, i: usize| match i {
        0 => c.obj.uid.clone(),
        i => c.ancestors[i - 1].1.clone(),
    };
    Some(Fork {
        loser_branch: successor(loser, at_loser),
        winner_branch: successor(winner, at_winner),
        point,
    })
}

/// A forked version chain, seen from one loser.
struct Fork {
    /// The version both branches replace.
    point: String,
    /// The fork point's replacement on the loser's side.
    loser_branch: String,
    /// The fork point's replacement on the winner's side.
    winner_branch: String,
}

fn resolve_name(
    tx: &WriteTx<'_>,
    owner: &str,
    name: &str,
    limits: AttributeLimits,
    out: &mut Vec<Resolution>,
    linked: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let uids = tx.live_named(owner, name)?;
    if uids.len() < 2 {
        return Ok(());
    }
    let mut candidates = Vec::new();
    for uid in uids {
        if let Some(obj) = load(tx, &uid)? {
            let ancestors = ancestors(tx, &obj)?;
            candidates.push(Candidate { obj, ancestors });
        }
    }
    let superseded = |c: &Candidate| {
        candidates
            .iter()
            .any(|o| o.obj.uid != c.obj.uid && o.descends_from(&c.obj.uid))
    };
    let Some(winner) = candidates
        .iter()
        .filter(|c| !superseded(c))
        .min_by(|a, b| a.lineage().cmp(&b.lineage()))
    else {
        return Ok(());
    };
    let w = &winner.obj;
    for c in candidates.iter().filter(|c| c.obj.uid != w.uid) {
        let at = c.obj.initial_date.max(w.initial_date);
        let change = if superseded(c) {
            give_name(tx, &c.obj, name, w, at, limits)?
        } else {
            let fork = fork_of(c, winner);
            // The loser's branch joins the winner's at the fork point's level, so the fork
            // point keeps one live successor; a deeper loser forwards to the winner itself.
            let forward = fork.as_ref().map(|f| {
                if f.loser_branch == c.obj.uid {
                    f.winner_branch.clone()
                } else {
                    w.uid.clone()
                }
            });
            let renamed = rename(tx, &c.obj, name, forward.as_deref(), at, limits)?;
            if let Some(f) = fork.filter(|f| f.loser_branch != c.obj.uid) {
                if let Some(detail) = reroot(tx, &f, at, limits)? {
                    out.push(Resolution {
                        uid: f.loser_branch.clone(),
                        name: name.to_owned(),
                        winner: f.winner_branch.clone(),
                        detail,
                        rule: FORKED,
                    });
                }
                linked.insert(f.point);
            } else if forward.is_some() {
                linked.extend(c.obj.link(link_type::REPLACED_OBJECT_LINK));
            }
            renamed
        };
        if let Some((detail, rule)) = change {
            out.push(Resolution {
                uid: c.obj.uid.clone(),
                name: name.to_owned(),
                winner: w.uid.clone(),
                detail,
                rule,
            });
        }
    }
    Ok(())
}

/// A version with more than one replacement (a key re-keyed on several nodes during a
/// partition, named or not). Of its replacements, the one with the earliest Initial Date
/// (then the smallest uid) continues the chain, the branch the name rule also picks; every
/// other replacement is retired and linked to it, and its branch's newest version, if it was
/// re-keyed further, is retired and linked to the continuing branch's newest. Replacements
/// only ever join the set, so a later decision can only move the chain to an earlier
/// replacement: nothing retired is ever brought back.
///
/// Asked for every applied version that replaces another, whatever the predecessor's forward
/// link says (a concurrent edit of the predecessor can overwrite that link, whole-object, on
/// the node that applies it): the `replaces` index makes finding the replacements one lookup.
fn resolve_fork(
    tx: &WriteTx<'_>,
    uid: &str,
    limits: AttributeLimits,
    out: &mut Vec<Resolution>,
    linked: &mut BTreeSet<String>,
    points: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let Some(a) = load(tx, uid)? else {
        return Ok(());
    };
    let Some(point) = a.link(link_type::REPLACED_OBJECT_LINK) else {
        return Ok(());
    };
    // Only a version chain of one owner: a Link is the client's to set, and one naming
    // another owner's key must never make the rule change that key.
    let Some(pred) = load(tx, &point)?.filter(|p| p.owner == a.owner) else {
        return Ok(());
    };
    if !points.insert(point.clone()) {
        return Ok(());
    }
    let mut replacements = replacements_of(tx, &pred)?;
    if replacements.len() < 2 {
        return Ok(());
    }
    replacements.sort_by(|x, y| (x.initial_date, &x.uid).cmp(&(y.initial_date, &y.uid)));
    let winner = &replacements[0];
    let winner_head = head(tx, winner)?;
    for loser in &replacements[1..] {
        let loser_head = head(tx, loser)?;
        let at = loser.initial_date.max(winner.initial_date);
        let fork = Fork {
            point: point.clone(),
            loser_branch: loser.uid.clone(),
            winner_branch: winner.uid.clone(),
        };
        if let Some(detail) = reroot(tx, &fork, at, limits)? {
            out.push(Resolution {
                uid: loser.uid.clone(),
                name: winner.uid.clone(),
                winner: winner.uid.clone(),
                detail,
                rule: FORKED,
            });
        }
        // A head has no replacement of its own: a forward link on it is an earlier
        // retirement's, moved here to the continuing branch like the branch's first version.
        let target = winner_head.uid.clone();
        let retire_head = loser_head.uid != loser.uid
            && live(loser_head.state())
            && loser_head
                .link(link_type::REPLACEMENT_OBJECT_LINK)
                .as_deref()
                != Some(target.as_str());
        if retire_head {
            let at = loser_head.initial_date.max(winner_head.initial_date);
            let done = rewrite(tx, &loser_head.uid, limits, |obj| {
                drop_forward_link(obj);
                retire(obj, &target, at);
                later_change(obj, at);
                Some((
                    format!(
                        "newest version of a losing branch of {point}: deactivated and \
                         linked to {target}"
                    ),
                    FORKED,
                ))
            })?;
            if let Some((detail, rule)) = done {
                out.push(Resolution {
                    uid: loser_head.uid.clone(),
                    name: target.clone(),
                    winner: target,
                    detail,
                    rule,
                });
            }
        }
    }
    linked.insert(point);
    Ok(())
}

/// A version with a live replacement is not the latest, though a peer's concurrent edit of it
/// may have brought Rotate Latest back: it is set false again (else it could be re-keyed, or
/// rotated on schedule, a second time).
fn settle_latest(
    tx: &WriteTx<'_>,
    uid: &str,
    limits: AttributeLimits,
    out: &mut Vec<Resolution>,
) -> Result<(), StoreError> {
    let Some(o) = load(tx, uid)? else {
        return Ok(());
    };
    if o.get(attr::ROTATE_LATEST) != Some(&Value::Boolean(true)) {
        return Ok(());
    }
    let Some(next) = o.link(link_type::REPLACEMENT_OBJECT_LINK) else {
        return Ok(());
    };
    let Some(n) = load(tx, &next)? else {
        return Ok(());
    };
    if !live(n.state()) || n.link(link_type::REPLACED_OBJECT_LINK).as_deref() != Some(uid) {
        return Ok(());
    }
    let at = o.initial_date.max(n.initial_date);
    let done = rewrite(tx, uid, limits, |obj| {
        obj.set(attr::ROTATE_LATEST, Value::Boolean(false));
        later_change(obj, at);
        Some((
            format!("Rotate Latest false again: replaced by {next}"),
            SUPERSEDED,
        ))
    })?;
    if let Some((detail, rule)) = done {
        out.push(Resolution {
            uid: uid.to_owned(),
            name: next.clone(),
            winner: next,
            detail,
            rule,
        });
    }
    Ok(())
}

/// Every version (destroyed ones included) whose Replaced Object link names `pred`.
fn replacements_of(tx: &WriteTx<'_>, pred: &Object) -> Result<Vec<Object>, StoreError> {
    let mut out = Vec::new();
    for uid in tx.owned_replacements(&pred.owner, &pred.uid)? {
        if let Some(o) = load(tx, &uid)? {
            if o.link(link_type::REPLACED_OBJECT_LINK).as_deref() == Some(&pred.uid) {
                out.push(o);
            }
        }
    }
    Ok(out)
}

/// The newest version of `obj`'s own branch: down the versions that name the one before as
/// their Replaced Object (the earliest, where a branch forked again). The forward links are
/// only a shortcut: a retired version's link points into another branch.
fn head(tx: &WriteTx<'_>, obj: &Object) -> Result<Object, StoreError> {
    let mut current = obj.clone();
    for _ in 0..MAX_CHAIN {
        let replaces_current =
            |n: &Object| n.link(link_type::REPLACED_OBJECT_LINK).as_deref() == Some(&current.uid);
        let forward = match current.link(link_type::REPLACEMENT_OBJECT_LINK) {
            Some(next) => load(tx, &next)?.filter(|n| {
                n.uid != current.uid && n.owner == current.owner && replaces_current(n)
            }),
            None => None,
        };
        let next = match forward {
            Some(n) => Some(n),
            None => replacements_of(tx, &current)?
                .into_iter()
                .min_by(|x, y| (x.initial_date, &x.uid).cmp(&(y.initial_date, &y.uid))),
        };
        match next {
            Some(n) => current = n,
            None => break,
        }
    }
    Ok(current)
}

/// A superseded version gives up the name (and, if it has no forward link yet and the winner
/// directly replaces it, links to the winner).
fn give_name(
    tx: &WriteTx<'_>,
    old: &Object,
    name: &str,
    winner: &Object,
    at: i64,
    limits: AttributeLimits,
) -> Result<Option<(String, &'static str)>, StoreError> {
    let replaces_it = winner.link(link_type::REPLACED_OBJECT_LINK).as_deref() == Some(&old.uid);
    rewrite(tx, &old.uid, limits, |obj| {
        obj.attrs.retain(|a| {
            !(a.name == attr::NAME && crate::ops::object_name(&a.value).as_deref() == Some(name))
        });
        obj.set(attr::ROTATE_LATEST, Value::Boolean(false));
        if replaces_it && obj.link(link_type::REPLACEMENT_OBJECT_LINK).is_none() {
            obj.attrs
                .push(link(link_type::REPLACEMENT_OBJECT_LINK, &winner.uid));
        }
        later_change(obj, at);
        Some((format!("gave name {name:?} to its replacement"), SUPERSEDED))
    })
}

/// A loser gets a visible suffix on the name; a fork loser is also retired from its chain,
/// forwarding to `forward`.
fn rename(
    tx: &WriteTx<'_>,
    loser: &Object,
    name: &str,
    forward: Option<&str>,
    at: i64,
    limits: AttributeLimits,
) -> Result<Option<(String, &'static str)>, StoreError> {
    let short: String = loser.uid.chars().take(8).collect();
    let mut new_name = format!("{name} (conflict {short})");
    if !tx.live_named(&loser.owner, &new_name)?.is_empty() {
        new_name = format!("{name} (conflict {})", loser.uid);
    }
    rewrite(tx, &loser.uid, limits, |obj| {
        for a in obj.attrs.iter_mut().filter(|a| a.name == attr::NAME) {
            if crate::ops::object_name(&a.value).as_deref() == Some(name) {
                a.value = with_name_value(&a.value, &new_name);
            }
        }
        let mut detail = format!("renamed {name:?} to {new_name:?}");
        if let Some(forward) = forward {
            retire(obj, forward, at);
            detail.push_str(&format!(
                "; deactivated and linked to {forward} (forked version chain)"
            ));
        }
        later_change(obj, at);
        Some((detail, if forward.is_some() { FORKED } else { RENAMED }))
    })
}

/// The first version of a losing branch that was re-keyed again: retired like a loser, its
/// Replacement Object link moved from its own successor to the winner's branch (its
/// successor still names it as Replaced Object, so the branch stays traceable).
fn reroot(
    tx: &WriteTx<'_>,
    fork: &Fork,
    at: i64,
    limits: AttributeLimits,
) -> Result<Option<String>, StoreError> {
    let target = fork.winner_branch.as_str();
    let done = rewrite(tx, &fork.loser_branch, limits, |obj| {
        let before = obj.link(link_type::REPLACEMENT_OBJECT_LINK);
        if before.as_deref() == Some(target) {
            return None;
        }
        drop_forward_link(obj);
        retire(obj, target, at);
        later_change(obj, at);
        Some((
            format!(
                "first version of a losing branch of {}: deactivated and linked to {target} \
                 (was {})",
                fork.point,
                before.as_deref().unwrap_or("none")
            ),
            FORKED,
        ))
    })?;
    Ok(done.map(|(detail, _)| detail))
}

/// Takes a fork loser out of its chain: Deactivated (if it was not further on), no more
/// rotation, a forward link to the winner.
fn retire(obj: &mut Object, winner: &str, at: i64) {
    if matches!(obj.state(), state::PRE_ACTIVE | state::ACTIVE) {
        obj.set(attr::STATE, Value::Enumeration(state::DEACTIVATED));
        if obj
            .date_attr(attr::DEACTIVATION_DATE)
            .is_none_or(|d| d > at)
        {
            obj.set(attr::DEACTIVATION_DATE, Value::DateTime(at));
        }
    }
    obj.set(attr::ROTATE_LATEST, Value::Boolean(false));
    obj.set(attr::ROTATE_AUTOMATIC, Value::Boolean(false));
    if obj.link(link_type::REPLACEMENT_OBJECT_LINK).is_none() {
        obj.attrs
            .push(link(link_type::REPLACEMENT_OBJECT_LINK, winner));
    }
}

/// If `uid`'s Replacement Object link points to a fork loser, moves it to the version that
/// loser now links to (the winner, a replacement of the same predecessor).
fn relink(
    tx: &WriteTx<'_>,
    uid: &str,
    limits: AttributeLimits,
    out: &mut Vec<Resolution>,
) -> Result<(), StoreError> {
    let Some(pred) = load(tx, uid)? else {
        return Ok(());
    };
    let Some(mut target) = pred.link(link_type::REPLACEMENT_OBJECT_LINK) else {
        return Ok(());
    };
    let first = target.clone();
    // A fork loser links to its sibling; follow such links (a three-way fork has two).
    for _ in 0..MAX_CHAIN {
        let Some(next) = sibling_forward(tx, uid, &pred.owner, &target)? else {
            break;
        };
        target = next;
    }
    if target == first {
        return Ok(());
    }
    let at = pred
        .initial_date
        .max(load(tx, &target)?.map_or(0, |w| w.initial_date));
    let changed = rewrite(tx, uid, limits, |obj| {
        drop_forward_link(obj);
        obj.attrs
            .push(link(link_type::REPLACEMENT_OBJECT_LINK, &target));
        later_change(obj, at);
        Some((
            format!("Replacement Object link moved from {first}"),
            RELINKED,
        ))
    })?;
    if let Some((detail, rule)) = changed {
        out.push(Resolution {
            uid: uid.to_owned(),
            name: target.clone(),
            winner: target,
            detail,
            rule,
        });
    }
    Ok(())
}

/// Where a fork loser `x` (a replacement of `pred` that links forward to another replacement
/// of `pred`) forwards to; None if `x` is not such a loser.
fn sibling_forward(
    tx: &WriteTx<'_>,
    pred: &str,
    owner: &str,
    x: &str,
) -> Result<Option<String>, StoreError> {
    let Some(x) = load(tx, x)? else {
        return Ok(None);
    };
    if x.owner != owner || x.link(link_type::REPLACED_OBJECT_LINK).as_deref() != Some(pred) {
        return Ok(None);
    }
    let Some(w) = x.link(link_type::REPLACEMENT_OBJECT_LINK) else {
        return Ok(None);
    };
    let Some(wo) = load(tx, &w)? else {
        return Ok(None);
    };
    let sibling = w != x.uid
        && wo.owner == owner
        && wo.link(link_type::REPLACED_OBJECT_LINK).as_deref() == Some(pred);
    Ok(sibling.then_some(w))
}

/// Loads, changes and stores one object within the stored-size limits (a change that would
/// break them is logged and skipped: the conflict stays, nothing is lost).
fn rewrite(
    tx: &WriteTx<'_>,
    uid: &str,
    limits: AttributeLimits,
    change: impl FnOnce(&mut Object) -> Option<(String, &'static str)>,
) -> Result<Option<(String, &'static str)>, StoreError> {
    let Some(row) = tx.get(uid)? else {
        return Ok(None);
    };
    let stored_len = row.attributes.len();
    let Ok(mut obj) = Object::from_row(row) else {
        return Ok(None);
    };
    let before = limits.before(stored_len, &obj);
    let Some(done) = change(&mut obj) else {
        return Ok(None);
    };
    let row = obj.to_row();
    if let Err(e) = limits.check_write(Some(&before), &obj, row.attributes.len(), Writer::Server) {
        tracing::error!(uid, error = %e, "mirror: a name conflict cannot be resolved");
        return Ok(None);
    }
    tx.update_resolving(&row)?;
    Ok(Some(done))
}

/// A decodable object, or None.
fn load(tx: &WriteTx<'_>, uid: &str) -> Result<Option<Object>, StoreError> {
    Ok(tx.get(uid)?.and_then(|row| Object::from_row(row).ok()))
}

/// The Initial Dates and uids up `obj`'s chain of Replaced Object links, nearest first (a
/// version this node does not hold ends the chain, with the earliest date).
fn ancestors(tx: &WriteTx<'_>, obj: &Object) -> Result<Vec<(i64, String)>, StoreError> {
    let mut out: Vec<(i64, String)> = Vec::new();
    let mut next = obj.link(link_type::REPLACED_OBJECT_LINK);
    while let Some(uid) = next.take() {
        if out.len() >= MAX_CHAIN || out.iter().any(|(_, u)| *u == uid) || uid == obj.uid {
            break;
        }
        let Some(o) = load(tx, &uid)? else {
            // Still a shared ancestor of two forks; its date is the same for both.
            out.push((i64::MIN, uid));
            break;
        };
        // A version chain never leaves its owner (Re-key keeps the owner): a Replaced
        // Object link to another owner's key is the client's own claim, not a chain, and
        // following it would let the rule retire or relink a key its owner never touched.
        if o.owner != obj.owner {
            break;
        }
        next = o.link(link_type::REPLACED_OBJECT_LINK);
        out.push((o.initial_date, uid));
    }
    Ok(out)
}

/// Last Change Date moves to `at` if that is later (a date from the objects, not the clock).
fn later_change(obj: &mut Object, at: i64) {
    if obj.date_attr(attr::LAST_CHANGE_DATE).is_none_or(|d| d < at) {
        obj.touch(at);
    }
}

/// The Link Type of a Link value.
fn link_kind(v: &Value) -> Option<u32> {
    match v {
        Value::Structure(fields) => fields.iter().find_map(|t| match (t.tag, &t.value) {
            (Tag::LINK_TYPE, Value::Enumeration(k)) => Some(*k),
            _ => None,
        }),
        _ => None,
    }
}

/// Removes `obj`'s Replacement Object links (before it is given a new one).
fn drop_forward_link(obj: &mut Object) {
    obj.attrs.retain(|a| {
        !(a.name == attr::LINK && link_kind(&a.value) == Some(link_type::REPLACEMENT_OBJECT_LINK))
    });
}

/// A Link attribute value.
fn link(kind: u32, target: &str) -> crate::kmip::attributes::Attr {
    crate::kmip::attributes::Attr::new(
        attr::LINK,
        Value::Structure(vec![
            Ttlv::enumeration(Tag::LINK_TYPE, kind),
            Ttlv::text(Tag::LINKED_OBJECT_IDENTIFIER, target),
        ]),
    )
}

/// A Name value with its Name Value replaced (the Name Type kept).
fn with_name_value(v: &Value, new_name: &str) -> Value {
    match v {
        Value::Structure(fields) => Value::Structure(
            fields
                .iter()
                .map(|t| {
                    if t.tag == Tag::NAME_VALUE {
                        Ttlv::text(Tag::NAME_VALUE, new_name)
                    } else {
                        t.clone()
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The uid of each item that is an object version (None for other records), in order.
pub fn object_uids(items: &[(Option<i64>, super::proto::Item)]) -> Vec<Option<String>> {
    items
        .iter()
        .map(|(_, item)| match item {
            super::proto::Item::Object(w) => Some(w.uid.clone()),
            _ => None,
        })
        .collect()
}

/// The uids of the object versions that were stored.
pub fn applied_uids<T>(
    uids: Vec<Option<String>>,
    results: &[(super::apply::Outcome, T)],
) -> Vec<String> {
    uids.into_iter()
        .zip(results)
        .filter(|(_, (outcome, _))| *outcome == super::apply::Outcome::Applied)
        .filter_map(|(uid, _)| uid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::attributes::Attr;
    use crate::kmip::enums::name_type;
    use crate::policy::AccessMode;
    use crate::store::Store;

    const P: &str = "pppppppp-0";
    const A: &str = "aaaaaaaa-1";
    const B: &str = "bbbbbbbb-2";

    fn key(uid: &str, name: Option<&str>, initial: i64, links: &[(u32, &str)]) -> Object {
        let mut attrs = vec![
            Attr::new("State", Value::Enumeration(state::ACTIVE)),
            Attr::new("Rotate Latest", Value::Boolean(name.is_some())),
            Attr::new("Rotate Automatic", Value::Boolean(true)),
            Attr::new("Last Change Date", Value::DateTime(initial)),
        ];
        if let Some(n) = name {
            attrs.push(Attr::new(
                "Name",
                Value::Structure(vec![
                    Ttlv::text(Tag::NAME_VALUE, n),
                    Ttlv::enumeration(Tag::NAME_TYPE, name_type::UNINTERPRETED_TEXT_STRING),
                ]),
            ));
        }
        attrs.extend(links.iter().map(|(k, t)| link(*k, t)));
        Object {
            uid: uid.into(),
            object_type: 2,
            owner: "alice".into(),
            owner_group: None,
            access_mode: AccessMode::User,
            initial_date: initial,
            key_version: 1,
            attrs,
            format: 1,
            data_type: None,
            split: Vec::new(),
            material_destroyed: false,
            registered_wrapping: None,
        }
    }

    /// A store holding `objects` as a peer's versions (no name check), in that order.
    fn store_with(objects: &[Object]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("akm.db")).unwrap();
        let rows: Vec<_> = objects.iter().map(Object::to_row).collect();
        store
            .write_replica(move |tx| {
                for r in &rows {
                    tx.put_replica(r, None, "peer", 1)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        (dir, store)
    }

    fn run(store: &Store, applied: &[&str]) -> Vec<Resolution> {
        let applied: Vec<String> = applied.iter().map(|s| (*s).to_owned()).collect();
        store
            .write_replica(move |tx| resolve(tx, &applied, AttributeLimits::default()))
            .unwrap()
    }

    fn fork() -> [Object; 3] {
        [
            key(P, None, 5, &[(link_type::REPLACEMENT_OBJECT_LINK, B)]),
            key(A, Some("n"), 10, &[(link_type::REPLACED_OBJECT_LINK, P)]),
            key(B, Some("n"), 10, &[(link_type::REPLACED_OBJECT_LINK, P)]),
        ]
    }

    #[test]
    fn a_forked_chain_resolves_to_the_same_records_in_either_order_and_only_once() {
        let [p, a, b] = fork();
        let (_d1, s1) = store_with(&[p.clone(), a.clone(), b.clone()]);
        let (_d2, s2) = store_with(&[b, a, p]);
        let made = run(&s1, &[B]);
        assert!(!made.is_empty());
        assert!(made.iter().all(|r| r.winner == A), "{made:?}");
        assert!(!run(&s2, &[A, P]).is_empty());
        for uid in [P, A, B] {
            assert_eq!(s1.get(uid).unwrap(), s2.get(uid).unwrap(), "{uid}");
        }
        let loser = Object::from_row(s1.get(B).unwrap().unwrap()).unwrap();
        assert_eq!(loser.names(), vec!["n (conflict bbbbbbbb)".to_string()]);
        assert_eq!(loser.state(), state::DEACTIVATED);
        assert_eq!(loser.date_attr("Deactivation Date"), Some(10));
        assert_eq!(loser.get("Rotate Latest"), Some(&Value::Boolean(false)));
        assert_eq!(
            loser.link(link_type::REPLACEMENT_OBJECT_LINK).as_deref(),
            Some(A)
        );
        let pred = Object::from_row(s1.get(P).unwrap().unwrap()).unwrap();
        assert_eq!(
            pred.link(link_type::REPLACEMENT_OBJECT_LINK).as_deref(),
            Some(A)
        );
        let winner = Object::from_row(s1.get(A).unwrap().unwrap()).unwrap();
        assert_eq!(winner.names(), vec!["n".to_string()]);
        assert_eq!(winner.state(), state::ACTIVE);
        // Idempotent: nothing is left to do.
        assert_eq!(run(&s1, &[P, A, B]), vec![]);
    }

    #[test]
    fn a_replaced_version_that_kept_its_name_gives_it_to_its_replacement() {
        // P was edited on one node while the other re-keyed it: P still holds the name.
        let p = key(P, Some("n"), 5, &[]);
        let a = key(A, Some("n"), 10, &[(link_type::REPLACED_OBJECT_LINK, P)]);
        let (_d, s) = store_with(&[p, a]);
        let made = run(&s, &[P]);
        assert_eq!(made.len(), 1, "{made:?}");
        assert_eq!(made[0].rule, SUPERSEDED);
        let pred = Object::from_row(s.get(P).unwrap().unwrap()).unwrap();
        assert!(pred.names().is_empty());
        assert_eq!(pred.state(), state::ACTIVE);
        assert_eq!(
            pred.link(link_type::REPLACEMENT_OBJECT_LINK).as_deref(),
            Some(A)
        );
        let winner = Object::from_row(s.get(A).unwrap().unwrap()).unwrap();
        assert_eq!(winner.names(), vec!["n".to_string()]);
    }

    /// Red team: one ordinary user's 400 keys, each naming the same key as Replaced Object,
    /// arriving in one apply. The rule redid the whole fork for each of them (a scan of the
    /// owner's objects per replacement, per replacement): 89 s in a debug build, the store's
    /// writer held all along. Once per fork point it is linear in scans.
    #[test]
    fn many_replacements_of_one_version_arriving_together_are_resolved_once() {
        let n = 400usize;
        let mut objs = vec![key(P, None, 5, &[])];
        let uids: Vec<String> = (0..n).map(|i| format!("x{i:07}-{i}")).collect();
        for (i, u) in uids.iter().enumerate() {
            let links = [(link_type::REPLACED_OBJECT_LINK, P)];
            objs.push(key(u, None, 10 + i as i64, &links));
        }
        let (_d, s) = store_with(&objs);
        let applied: Vec<&str> = uids.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let first = run(&s, &applied);
        let took = started.elapsed();
        assert_eq!(
            first.len(),
            n - 1,
            "every replacement but the earliest retired"
        );
        assert!(run(&s, &applied).is_empty(), "idempotent");
        assert!(
            took < std::time::Duration::from_secs(30),
            "the rule took {took:?} over {n} replacements"
        );
    }

    #[test]
    fn unrelated_keys_of_one_name_are_renamed_not_deactivated_and_other_owners_are_left_alone() {
        let a = key(A, Some("n"), 20, &[]);
        let b = key(B, Some("n"), 10, &[]);
        let mut other = key(P, Some("n"), 1, &[]);
        other.owner = "bob".into();
        let (_d, s) = store_with(&[a, b, other]);
        let made = run(&s, &[A]);
        assert_eq!(made.len(), 1, "{made:?}");
        assert_eq!((made[0].uid.as_str(), made[0].winner.as_str()), (A, B));
        let loser = Object::from_row(s.get(A).unwrap().unwrap()).unwrap();
        assert_eq!(loser.names(), vec!["n (conflict aaaaaaaa)".to_string()]);
        assert_eq!(loser.state(), state::ACTIVE);
        let bobs = Object::from_row(s.get(P).unwrap().unwrap()).unwrap();
        assert_eq!(bobs.names(), vec!["n".to_string()]);
    }

    #[test]
    fn a_fork_re_keyed_again_on_both_sides_leaves_the_fork_point_one_live_successor() {
        const A2: &str = "aaaaaaaa-3";
        const B2: &str = "bbbbbbbb-4";
        // P re-keyed to A then A2 on one side, to B then B2 on the other.
        let objects = [
            key(P, None, 5, &[(link_type::REPLACEMENT_OBJECT_LINK, B)]),
            key(
                A,
                None,
                10,
                &[
                    (link_type::REPLACED_OBJECT_LINK, P),
                    (link_type::REPLACEMENT_OBJECT_LINK, A2),
                ],
            ),
            key(A2, Some("n"), 20, &[(link_type::REPLACED_OBJECT_LINK, A)]),
            key(
                B,
                None,
                11,
                &[
                    (link_type::REPLACED_OBJECT_LINK, P),
                    (link_type::REPLACEMENT_OBJECT_LINK, B2),
                ],
            ),
            key(B2, Some("n"), 21, &[(link_type::REPLACED_OBJECT_LINK, B)]),
        ];
        let (_d1, s1) = store_with(&objects);
        let mut reversed = objects.clone();
        reversed.reverse();
        let (_d2, s2) = store_with(&reversed);
        assert!(!run(&s1, &[B2]).is_empty());
        assert!(!run(&s2, &[A2, B]).is_empty());
        let get = |s: &Store, uid: &str| Object::from_row(s.get(uid).unwrap().unwrap()).unwrap();
        for uid in [P, A, A2, B, B2] {
            assert_eq!(s1.get(uid).unwrap(), s2.get(uid).unwrap(), "{uid}");
        }
        let forward = |s: &Store, uid: &str| get(s, uid).link(link_type::REPLACEMENT_OBJECT_LINK);
        // The losing branch joins the winning one level by level; its versions keep their
        // backward links, so nothing is orphaned.
        assert_eq!(forward(&s1, P).as_deref(), Some(A));
        assert_eq!(forward(&s1, B).as_deref(), Some(A));
        assert_eq!(forward(&s1, B2).as_deref(), Some(A2));
        assert_eq!(
            get(&s1, B2)
                .link(link_type::REPLACED_OBJECT_LINK)
                .as_deref(),
            Some(B)
        );
        for loser in [B, B2] {
            assert_eq!(get(&s1, loser).state(), state::DEACTIVATED, "{loser}");
            assert_eq!(
                get(&s1, loser).get("Rotate Automatic"),
                Some(&Value::Boolean(false))
            );
        }
        assert_eq!(get(&s1, A2).names(), vec!["n".to_string()]);
        assert_eq!(get(&s1, A2).state(), state::ACTIVE);
        assert_eq!(run(&s1, &[P, A, A2, B, B2]), vec![]);
    }

    #[test]
    fn an_unnamed_key_re_keyed_on_both_sides_keeps_one_branch_in_either_order() {
        const B2: &str = "bbbbbbbb-4";
        let objects = [
            key(P, None, 5, &[(link_type::REPLACEMENT_OBJECT_LINK, B)]),
            key(A, None, 12, &[(link_type::REPLACED_OBJECT_LINK, P)]),
            key(
                B,
                None,
                11,
                &[
                    (link_type::REPLACED_OBJECT_LINK, P),
                    (link_type::REPLACEMENT_OBJECT_LINK, B2),
                ],
            ),
            key(B2, None, 30, &[(link_type::REPLACED_OBJECT_LINK, B)]),
        ];
        let (_d1, s1) = store_with(&objects);
        // Node 1 learns of A (its P already points to B); node 2 of B and B2, its P pointing
        // to A as the peer's version said.
        assert!(!run(&s1, &[A]).is_empty());
        let mut p2 = objects[0].clone();
        p2.attrs.retain(|a| a.name != "Link");
        p2.attrs.push(link(link_type::REPLACEMENT_OBJECT_LINK, A));
        let (_d3, s3) = store_with(&[
            p2,
            objects[1].clone(),
            objects[2].clone(),
            objects[3].clone(),
        ]);
        assert!(!run(&s3, &[B, B2]).is_empty());
        let get = |s: &Store, uid: &str| Object::from_row(s.get(uid).unwrap().unwrap()).unwrap();
        let forward = |s: &Store, uid: &str| get(s, uid).link(link_type::REPLACEMENT_OBJECT_LINK);
        for s in [&s1, &s3] {
            // B (Initial Date 11) continues; A is retired and forwards to it.
            assert_eq!(forward(s, A).as_deref(), Some(B));
            assert_eq!(get(s, A).state(), state::DEACTIVATED);
            assert_eq!(forward(s, P).as_deref(), Some(B));
            assert_eq!(get(s, B2).state(), state::ACTIVE);
            assert_eq!(forward(s, B).as_deref(), Some(B2));
        }
        for uid in [A, B, B2] {
            assert_eq!(s1.get(uid).unwrap(), s3.get(uid).unwrap(), "{uid}");
        }
        assert_eq!(run(&s1, &[P, A, B, B2]), vec![]);
    }

    #[test]
    fn a_three_way_fork_joins_every_branch_to_the_earliest_replacement_in_any_order() {
        const C: &str = "cccccccc-5";
        const C2: &str = "cccccccc-6";
        let p = |next: &str| key(P, None, 5, &[(link_type::REPLACEMENT_OBJECT_LINK, next)]);
        let a = key(A, None, 10, &[(link_type::REPLACED_OBJECT_LINK, P)]);
        let b = key(B, None, 11, &[(link_type::REPLACED_OBJECT_LINK, P)]);
        let c = key(
            C,
            None,
            12,
            &[
                (link_type::REPLACED_OBJECT_LINK, P),
                (link_type::REPLACEMENT_OBJECT_LINK, C2),
            ],
        );
        let c2 = key(C2, None, 30, &[(link_type::REPLACED_OBJECT_LINK, C)]);
        let get = |s: &Store, uid: &str| Object::from_row(s.get(uid).unwrap().unwrap()).unwrap();
        let forward = |s: &Store, uid: &str| get(s, uid).link(link_type::REPLACEMENT_OBJECT_LINK);
        // Node 1 named C and hears of B, then A; node 2 named B and hears of C and A at once.
        let (_d1, s1) = store_with(&[p(C), c.clone(), c2.clone(), b.clone()]);
        run(&s1, &[B]);
        s1.write_replica({
            let row = a.to_row();
            move |tx| tx.put_replica(&row, None, "peer", 2)
        })
        .unwrap();
        run(&s1, &[A]);
        let (_d2, s2) = store_with(&[p(B), b, c, c2, a]);
        run(&s2, &[C, C2, A]);
        for s in [&s1, &s2] {
            assert_eq!(forward(s, P).as_deref(), Some(A));
            assert_eq!(forward(s, B).as_deref(), Some(A));
            assert_eq!(forward(s, C).as_deref(), Some(A));
            assert_eq!(forward(s, C2).as_deref(), Some(A));
            for loser in [B, C, C2] {
                assert_eq!(get(s, loser).state(), state::DEACTIVATED, "{loser}");
            }
            assert_eq!(get(s, A).state(), state::ACTIVE);
        }
    }

    #[test]
    fn a_replaced_version_whose_rotate_latest_came_back_is_not_the_latest_again() {
        let mut p = key(P, None, 5, &[(link_type::REPLACEMENT_OBJECT_LINK, A)]);
        p.set("Rotate Latest", Value::Boolean(true));
        let a = key(A, None, 10, &[(link_type::REPLACED_OBJECT_LINK, P)]);
        let (_d, s) = store_with(&[p, a]);
        assert_eq!(run(&s, &[P]).len(), 1);
        let pred = Object::from_row(s.get(P).unwrap().unwrap()).unwrap();
        assert_eq!(pred.get("Rotate Latest"), Some(&Value::Boolean(false)));
        assert_eq!(run(&s, &[P]), vec![]);
    }
}
