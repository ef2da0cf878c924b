//! Dual control: operations named in `[dual_control] operations` need two people. A second
//! administrator opens an authorization window (`akm authorize`, the Authorize extension
//! operation) naming the user who may then perform that operation for N minutes; without an
//! open window from someone else the operation is refused. Each guarded operation performed
//! is recorded with both identities. A refused attempt also leaves a pending request whose id
//! the refusal names; a second administrator may approve it (`akm approve ID`), which opens
//! the same window for that user and operation. Windows and pending requests live in memory:
//! a restart closes them all.
//!
//! What can be guarded ([`GUARDABLE`](crate::config::dual_control::GUARDABLE)): `destroy`, `kek-rotate`, `backup`, `policy` (users,
//! groups, key policies), `create` (Create, Create Key Pair, Register, Derive Key, Re-key,
//! Re-key Key Pair), `revoke`, `attributes` (Add, Modify, Delete, Set Attribute), `export`
//! (every Get of a secret key's material: clear, wrapped or PKCS#12), `unseal` and
//! `restore`; `all` names every one.
//!
//! - A window admits every guarded item of that operation the user sends while it is open,
//!   in one batch or many; each item is recorded. Authorize itself cannot run in an Undo batch.
//! - Mirroring never asks: a peer applies a replicated change without KMIP dispatch, so the
//!   approval given on the node that took the request covers every copy.
//! - `unseal`: a sealed server answers Authorize and Approve. The share (or passphrase) that
//!   would open the KEK is admitted only if another administrator submitted an accepted share
//!   before it (two people already took part) or a second administrator opened an `unseal`
//!   window for the submitter; otherwise it is refused, with an approvable request id.
//! - `restore` is offline (`akm restore` on a stopped node, no server to ask): under dual
//!   control it needs the node's KEK sealed with custodian shares, threshold at least 2, and
//!   at least two share files given: two custodians take part.

use super::{Call, Caller, Ctx};
use crate::audit::{AuditEvent, Outcome};
use crate::config::dual_control::expand;
use crate::error::OpError;
use crate::kmip::custody::{OP_BACKUP, OP_ROTATE_KEK};
use crate::kmip::enums::operation as op;
use crate::kmip::extension::{OP_DELETE_ACCOUNT, OP_SET_ACCOUNT, OP_SET_KEY_POLICY};
use std::sync::Mutex;

/// The dual-control name of a KMIP Operation value, if it can be guarded by the dispatcher
/// (`export` and `unseal` are judged where the object or the seal state is known).
pub fn guard_name(operation: u32) -> Option<&'static str> {
    match operation {
        op::DESTROY => Some("destroy"),
        OP_ROTATE_KEK => Some("kek-rotate"),
        OP_BACKUP => Some("backup"),
        OP_SET_KEY_POLICY | OP_SET_ACCOUNT | OP_DELETE_ACCOUNT => Some("policy"),
        op::CREATE
        | op::CREATE_KEY_PAIR
        | op::REGISTER
        | op::DERIVE_KEY
        | op::RE_KEY
        | op::RE_KEY_KEY_PAIR => Some("create"),
        op::REVOKE => Some("revoke"),
        op::ADD_ATTRIBUTE | op::MODIFY_ATTRIBUTE | op::DELETE_ATTRIBUTE | op::SET_ATTRIBUTE => {
            Some("attributes")
        }
        _ => None,
    }
}

/// An open authorization window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The administrator who opened it.
    pub by: String,
    /// The user it lets act.
    pub user: String,
    /// The guarded operation's name.
    pub operation: String,
    /// When it closes, seconds since the epoch.
    pub until: i64,
}

/// The dual-control settings and the open windows.
#[derive(Debug, Default)]
pub struct DualControl {
    guarded: Vec<String>,
    max_minutes: i64,
    grants: Mutex<Vec<Grant>>,
    /// Refused attempts awaiting approval: (id, user, operation name, when).
    pending: Mutex<Vec<(String, String, String, i64)>>,
    /// Administrators whose unseal share was accepted while sealed.
    unseal_submitters: Mutex<Vec<String>>,
    /// Separation of duties: administrators read key material only if also key users.
    pub separate_duties: bool,
}

impl DualControl {
    /// Dual control for `operations` (names from [`GUARDABLE`](crate::config::dual_control::GUARDABLE)), windows of at most
    /// `max_minutes`.
    /// `all` stands for every name.
    pub fn new(operations: Vec<String>, max_minutes: i64) -> DualControl {
        DualControl {
            guarded: expand(&operations).unwrap_or(operations),
            max_minutes,
            grants: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            unseal_submitters: Mutex::new(Vec::new()),
            separate_duties: false,
        }
    }

    /// With separation of duties on or off.
    pub fn with_separate_duties(mut self, on: bool) -> DualControl {
        self.separate_duties = on;
        self
    }

    /// Whether `name` is guarded.
    pub fn guards(&self, name: &str) -> bool {
        self.guarded.iter().any(|g| g == name)
    }

    /// Opens a window: `by` (an administrator, checked by the dispatcher) lets `user` perform
    /// `operation` for `minutes` (default and most: the configured window).
    pub fn authorize(
        &self,
        by: &str,
        user: &str,
        operation: &str,
        minutes: Option<i64>,
        now: i64,
    ) -> Result<Grant, OpError> {
        if !self.guards(operation) {
            return Err(OpError::InvalidField(format!(
                "{operation:?} is not under dual control (dual_control.operations)"
            )));
        }
        if by == user {
            return Err(OpError::DualControl(
                "an administrator cannot authorize themself: dual control needs a second person"
                    .into(),
            ));
        }
        let minutes = minutes.unwrap_or(self.max_minutes);
        if !(1..=self.max_minutes).contains(&minutes) {
            return Err(OpError::InvalidField(format!(
                "Window Minutes must be 1 to {} (dual_control.window_minutes)",
                self.max_minutes
            )));
        }
        let grant = Grant {
            by: by.to_owned(),
            user: user.to_owned(),
            operation: operation.to_owned(),
            until: now + minutes * 60,
        };
        if let Ok(mut g) = self.grants.lock() {
            g.retain(|x| x.until > now);
            g.push(grant.clone());
        }
        Ok(grant)
    }

    /// For a guarded operation: the administrator whose open window lets `user` perform it,
    /// or the refusal. `Ok(None)` for an operation not under dual control.
    pub fn admits(&self, user: &str, operation: u32, now: i64) -> Result<Option<String>, OpError> {
        match guard_name(operation) {
            Some(name) => self.admits_named(user, name, now),
            None => Ok(None),
        }
    }

    /// Like [`DualControl::admits`], for a guarded operation named by its dual-control name.
    pub fn admits_named(
        &self,
        user: &str,
        name: &str,
        now: i64,
    ) -> Result<Option<String>, OpError> {
        if !self.guards(name) {
            return Ok(None);
        }
        let grants = self
            .grants
            .lock()
            .map_err(|_| OpError::AccessRecordsUnavailable)?;
        if let Some(g) = grants
            .iter()
            .find(|g| g.user == user && g.operation == name && g.until > now && g.by != user)
        {
            return Ok(Some(g.by.clone()));
        }
        drop(grants);
        let id = self.add_pending(user, name, now);
        Err(OpError::DualControl(format!(
            "{name} is under dual control: a second administrator must first run \
             `akm authorize --user {user} --op {name}` or approve this request: `akm approve {id}`"
        )))
    }

    /// Unseal under dual control, asked before `user` submits a share or passphrase:
    /// `completes` says whether it would open the KEK. Admitted when it would not, when
    /// another administrator's share was accepted before, or in a window for `unseal`;
    /// returns the second administrator when one is needed.
    pub fn admits_unseal(
        &self,
        user: &str,
        completes: bool,
        now: i64,
    ) -> Result<Option<String>, OpError> {
        if !self.guards("unseal") || !completes {
            return Ok(None);
        }
        let other = self
            .unseal_submitters
            .lock()
            .ok()
            .and_then(|s| s.iter().find(|s| *s != user).cloned());
        match other {
            Some(o) => Ok(Some(o)),
            None => self.admits_named(user, "unseal", now),
        }
    }

    /// Notes that `user`'s unseal share was accepted.
    pub fn unseal_share_accepted(&self, user: &str) {
        if let Ok(mut s) = self.unseal_submitters.lock() {
            if !s.iter().any(|x| x == user) {
                s.push(user.to_owned());
            }
        }
    }

    /// The refused attempts still awaiting approval at `now`, oldest first, for the
    /// console's dual-control page: (id, user, operation name, when refused).
    pub fn pending_requests(&self, now: i64) -> Vec<(String, String, String, i64)> {
        let Ok(p) = self.pending.lock() else {
            return Vec::new();
        };
        p.iter()
            .filter(|(.., at)| *at + self.max_minutes * 60 > now)
            .cloned()
            .collect()
    }

    /// The authorization windows open at `now`.
    pub fn open_windows(&self, now: i64) -> Vec<Grant> {
        let Ok(g) = self.grants.lock() else {
            return Vec::new();
        };
        g.iter().filter(|x| x.until > now).cloned().collect()
    }

    /// Records a refused attempt; returns its id (pending requests expire with the window).
    fn add_pending(&self, user: &str, name: &str, now: i64) -> String {
        let id = hex::encode(crate::crypto::random_bytes(4).as_slice());
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|(_, _, _, at)| *at + self.max_minutes * 60 > now);
            // Bounded: a client retrying in a loop cannot grow it without limit.
            if p.len() >= 1000 {
                p.remove(0);
            }
            p.push((id.clone(), user.to_owned(), name.to_owned(), now));
        }
        id
    }

    /// Approves pending request `id` as `by`: opens the window it asked for.
    pub fn approve(&self, by: &str, id: &str, now: i64) -> Result<Grant, OpError> {
        let found = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| {
                let at = p.iter().position(|(pid, ..)| pid == id)?;
                Some(p.remove(at))
            })
            .filter(|(.., at)| *at + self.max_minutes * 60 > now);
        let Some((_, user, name, _)) = found else {
            return Err(OpError::InvalidField(format!(
                "no pending dual-control request {id:?} (expired or already approved)"
            )));
        };
        self.authorize(by, &user, &name, None, now)
    }
}

/// Export under dual control: a Get of a secret key's material, clear or wrapped (judged by
/// Get, which knows the object), runs only in a window; it is recorded with both names.
pub(super) fn admit_export(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<(), OpError> {
    if let Some(second) = ctx.dual.admits_named(&who.cn, "export", call.now)? {
        record(ctx, who, call, &second, true);
    }
    Ok(())
}

/// Separation of duties: an administrator's Get of key material must also pass the key-user
/// rules (its user and group records and the key's own policy), as if it were no
/// administrator.
pub(super) fn check_separation(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<(), OpError> {
    if !ctx.dual.separate_duties || call.operation != op::GET || !who.is_admin() {
        return Ok(());
    }
    let uid = call.uid()?;
    super::load_for(ctx, &who.without_admin(), &uid, op::GET).map(drop)
}

/// Records a guarded operation with both identities.
pub(super) fn record(ctx: &Ctx, who: &Caller, call: &Call<'_>, second: &str, ok: bool) {
    let event = AuditEvent {
        event: "dual-control",
        user: Some(who.cn.clone()),
        groups: who.ous.clone(),
        operation: Some(call.operation),
        uid: call.uid().ok(),
        outcome: Some(if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        }),
        detail: Some(format!("performed by {} authorized by {second}", who.cn)),
        ..AuditEvent::default()
    };
    if let Err(e) = ctx.audit.record(vec![event]) {
        tracing::error!(error = %e, "cannot record a dual-control event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dual_control::GUARDABLE;

    #[test]
    fn a_window_from_another_admin_admits_until_it_closes() {
        let d = DualControl::new(vec!["destroy".into()], 15);
        assert_eq!(d.admits("bob", op::GET, 0).unwrap(), None, "not guarded");
        assert!(matches!(
            d.admits("bob", op::DESTROY, 0),
            Err(OpError::DualControl(_))
        ));
        assert!(matches!(
            d.authorize("bob", "bob", "destroy", None, 0),
            Err(OpError::DualControl(_))
        ));
        assert!(
            d.authorize("alice", "bob", "backup", None, 0).is_err(),
            "not guarded"
        );
        assert!(d.authorize("alice", "bob", "destroy", Some(16), 0).is_err());
        assert!(d.authorize("alice", "bob", "destroy", Some(0), 0).is_err());
        let g = d
            .authorize("alice", "bob", "destroy", Some(2), 100)
            .unwrap();
        assert_eq!(g.until, 220);
        assert_eq!(
            d.admits("bob", op::DESTROY, 219).unwrap().as_deref(),
            Some("alice")
        );
        assert!(
            d.admits("carol", op::DESTROY, 150).is_err(),
            "window names bob only"
        );
        assert!(d.admits("bob", op::DESTROY, 220).is_err(), "closed");
    }

    #[test]
    fn a_refusal_leaves_a_request_another_admin_may_approve_once() {
        let d = DualControl::new(vec!["destroy".into()], 15);
        let Err(OpError::DualControl(msg)) = d.admits("bob", op::DESTROY, 0) else {
            panic!("not refused")
        };
        let id = msg
            .rsplit("akm approve ")
            .next()
            .unwrap()
            .trim_end_matches('`')
            .to_owned();
        assert!(d.approve("bob", &id, 1).is_err(), "not by the requester");
        // The failed self-approval used the request up.
        assert!(d.approve("alice", &id, 1).is_err());
        let Err(OpError::DualControl(msg)) = d.admits("bob", op::DESTROY, 2) else {
            panic!("not refused")
        };
        let id = msg
            .rsplit("akm approve ")
            .next()
            .unwrap()
            .trim_end_matches('`')
            .to_owned();
        assert!(d.approve("alice", &id, 15 * 60 + 3).is_err(), "expired");
        let Err(OpError::DualControl(msg)) = d.admits("bob", op::DESTROY, 2) else {
            panic!("not refused")
        };
        let id = msg
            .rsplit("akm approve ")
            .next()
            .unwrap()
            .trim_end_matches('`')
            .to_owned();
        let g = d.approve("alice", &id, 3).unwrap();
        assert_eq!((g.user.as_str(), g.operation.as_str()), ("bob", "destroy"));
        assert_eq!(
            d.admits("bob", op::DESTROY, 4).unwrap().as_deref(),
            Some("alice")
        );
        assert!(d.approve("carol", &id, 5).is_err(), "approved once");
    }

    #[test]
    fn every_key_changing_operation_has_its_name() {
        for (operation, name) in [
            (op::CREATE, "create"),
            (op::CREATE_KEY_PAIR, "create"),
            (op::REGISTER, "create"),
            (op::DERIVE_KEY, "create"),
            (op::RE_KEY, "create"),
            (op::RE_KEY_KEY_PAIR, "create"),
            (op::REVOKE, "revoke"),
            (op::ADD_ATTRIBUTE, "attributes"),
            (op::MODIFY_ATTRIBUTE, "attributes"),
            (op::DELETE_ATTRIBUTE, "attributes"),
            (op::SET_ATTRIBUTE, "attributes"),
            (op::DESTROY, "destroy"),
        ] {
            assert_eq!(guard_name(operation), Some(name));
        }
        for read in [
            op::GET,
            op::LOCATE,
            op::GET_ATTRIBUTES,
            op::ENCRYPT,
            op::QUERY,
        ] {
            assert_eq!(guard_name(read), None);
        }
        let d = DualControl::new(vec!["attributes".into()], 15);
        assert!(d.admits("bob", op::SET_ATTRIBUTE, 0).is_err());
        assert_eq!(d.admits("bob", op::CREATE, 0).unwrap(), None);
    }

    #[test]
    fn all_names_every_operation_and_unknown_names_are_named() {
        assert_eq!(expand(&["all".into()]).unwrap().len(), GUARDABLE.len());
        assert_eq!(expand(&["exports".into()]).unwrap_err(), "exports");
        let d = DualControl::new(vec!["all".into()], 15);
        assert!(GUARDABLE.iter().all(|g| d.guards(g)));
    }

    #[test]
    fn unseal_needs_two_people_only_for_the_opening_submission() {
        let d = DualControl::new(vec!["unseal".into()], 15);
        assert_eq!(
            d.admits_unseal("bob", false, 0).unwrap(),
            None,
            "not opening"
        );
        assert!(d.admits_unseal("bob", true, 0).is_err(), "bob alone");
        d.unseal_share_accepted("bob");
        assert!(d.admits_unseal("bob", true, 0).is_err(), "still bob alone");
        assert_eq!(
            d.admits_unseal("alice", true, 0).unwrap().as_deref(),
            Some("bob"),
            "a second person's share"
        );
        let d = DualControl::new(vec!["unseal".into()], 15);
        d.authorize("alice", "bob", "unseal", None, 0).unwrap();
        assert_eq!(
            d.admits_unseal("bob", true, 1).unwrap().as_deref(),
            Some("alice"),
            "a window"
        );
        let off = DualControl::new(vec!["destroy".into()], 15);
        assert_eq!(off.admits_unseal("bob", true, 0).unwrap(), None);
    }
}
