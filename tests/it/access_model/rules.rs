//! The reference model of akm's access policy, written independently of `akm::policy`: the
//! identities, the system tables (user and group records), the access decision, the objects
//! (owner, group, mode, state, names, attributes, material) and one function per rule that
//! says what a batch item may do. Where the server's rule is subtle it is written down here
//! from reading the code (src/policy.rs, src/ops/*), so that a rule that changes is one
//! function to adjust.

use akm::kmip::enums::state;
use std::collections::{BTreeMap, BTreeSet};

/// The administrators group (`access.admin_group`) of the model's servers.
pub const ADMIN_GROUP: &str = "admins";

/// A client identity: certificate CN and OUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cn: &'static str,
    pub ous: &'static [&'static str],
}

/// The identities the batches come from: two owners and a member of the owner group `team`,
/// a stranger, a read-only user (its user record grants `read`, its group has no record), a
/// caller in no record at all, and two administrators, the second also in `team`.
pub const IDENTITIES: [Identity; 8] = [
    Identity {
        cn: "owner1",
        ous: &["team"],
    },
    Identity {
        cn: "owner2",
        ous: &["team"],
    },
    Identity {
        cn: "mate",
        ous: &["team"],
    },
    Identity {
        cn: "stranger",
        ous: &["other"],
    },
    Identity {
        cn: "reader",
        ous: &["readers"],
    },
    Identity {
        cn: "nobody",
        ous: &[],
    },
    Identity {
        cn: "admin1",
        ous: &[ADMIN_GROUP],
    },
    Identity {
        cn: "admin2",
        ous: &[ADMIN_GROUP, "team"],
    },
];

/// Who may use a key besides administrators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Any,
    Group,
    User,
    UserAndGroup,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Any, Mode::Group, Mode::User, Mode::UserAndGroup];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Any => "any",
            Mode::Group => "group",
            Mode::User => "user",
            Mode::UserAndGroup => "user-and-group",
        }
    }

    pub fn needs_group(self) -> bool {
        matches!(self, Mode::Group | Mode::UserAndGroup)
    }
}

/// A server configuration the model runs against.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    /// `access.hide_existence`.
    pub hide_existence: bool,
    /// `dual_control.separate_duties`.
    pub separate_duties: bool,
    /// `dual_control.operations`.
    pub guarded: &'static [&'static str],
    /// `dual_control.window_minutes`.
    pub window_max_minutes: i64,
    /// `access.default_mode`.
    pub default_mode: Mode,
    /// `access.unknown` (None: refused).
    pub unknown: Option<&'static str>,
    /// The operations of the administrators group's record made at set-up (None: no record).
    pub admins_record: Option<&'static str>,
}

/// The two configurations of the normal suite: an open one, and a strict one with hidden
/// existence, separation of duties and dual control of Destroy and policy changes.
pub const PROFILES: [Profile; 2] = [
    Profile {
        name: "open",
        hide_existence: false,
        separate_duties: false,
        guarded: &[],
        window_max_minutes: 15,
        default_mode: Mode::User,
        unknown: Some("create,locate,get,get-attributes"),
        admins_record: None,
    },
    Profile {
        name: "strict",
        hide_existence: true,
        separate_duties: true,
        guarded: &["destroy", "policy"],
        window_max_minutes: 15,
        default_mode: Mode::Group,
        unknown: None,
        admins_record: Some(""),
    },
];

/// Behaviour that other branches are changing; the defaults are the new behaviour.
#[derive(Clone, Copy, Debug)]
pub struct Semantics {
    /// Names are unique per owner among live objects (new); else unique among all live
    /// objects (before the merge).
    pub names_per_owner: bool,
}

/// Every operation name a record can grant (`policy::GRANTABLE`, written out again).
pub const ALL_OPS: &[&str] = &[
    "create",
    "register",
    "locate",
    "check",
    "get",
    "get-attributes",
    "get-attribute-list",
    "add-attribute",
    "modify-attribute",
    "delete-attribute",
    "set-attribute",
    "obtain-lease",
    "activate",
    "revoke",
    "destroy",
    "log",
    "re-key",
    "create-key-pair",
    "derive-key",
    "sign",
    "signature-verify",
    "encrypt",
    "decrypt",
    "mac",
    "mac-verify",
    "hash",
    "rng-retrieve",
];

/// What the shorthand `read` grants.
const READ_OPS: &[&str] = &[
    "locate",
    "check",
    "get",
    "get-attributes",
    "get-attribute-list",
];

/// The operations a comma-separated list grants (with the `all` and `read` shorthands).
pub fn expand(list: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "all" => out.extend(ALL_OPS.iter().map(|s| s.to_string())),
            "read" => out.extend(READ_OPS.iter().map(|s| s.to_string())),
            other => {
                out.insert(other.to_owned());
            }
        }
    }
    out
}

/// A user or group record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub enabled: bool,
    pub ops: BTreeSet<String>,
}

/// The system tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    pub users: BTreeMap<String, Record>,
    pub groups: BTreeMap<String, Record>,
}

impl Tables {
    pub fn table(&mut self, user: bool) -> &mut BTreeMap<String, Record> {
        if user {
            &mut self.users
        } else {
            &mut self.groups
        }
    }
}

/// What an item asks of the policy: a key operation by its grant name, or an administration
/// operation (vendor range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    Key(&'static str),
    Admin,
}

/// A key's access policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub owner: String,
    pub group: Option<String>,
    pub mode: Mode,
}

/// The caller of one request message: its identity and the records as they were when the
/// message arrived (the server loads them once per message).
#[derive(Clone, Debug)]
pub struct Caller {
    pub id: Identity,
    pub tables: Tables,
    pub profile: Profile,
}

impl Caller {
    fn user_record(&self) -> Option<&Record> {
        self.tables.users.get(self.id.cn)
    }

    fn group_record(&self, group: &str) -> Option<&Record> {
        if self.id.ous.contains(&group) {
            self.tables.groups.get(group)
        } else {
            None
        }
    }

    /// Rule 1: a disabled user record denies everything.
    pub fn user_disabled(&self) -> bool {
        self.user_record().is_some_and(|r| !r.enabled)
    }

    /// Rule 2's membership: in the administrators group, whose record (if any) is enabled.
    fn in_admin_group(&self) -> bool {
        self.id.ous.contains(&ADMIN_GROUP)
            && self.group_record(ADMIN_GROUP).is_none_or(|r| r.enabled)
    }

    /// An administrator: rule 2 and not disabled by rule 1.
    pub fn is_admin(&self) -> bool {
        !self.user_disabled() && self.in_admin_group()
    }

    /// The caller's groups that count: its OUs whose record is absent or enabled.
    pub fn effective_groups(&self) -> Vec<&'static str> {
        self.id
            .ous
            .iter()
            .copied()
            .filter(|g| self.group_record(g).is_none_or(|r| r.enabled))
            .collect()
    }

    /// Rule 5: what the caller's enabled records grant, or the `unknown` setting when no
    /// record (enabled or not) names it; None: refused.
    fn granted(&self) -> Option<BTreeSet<String>> {
        let named = self.user_record().is_some()
            || self
                .id
                .ous
                .iter()
                .any(|g| self.tables.groups.contains_key(*g));
        if !named {
            return self.profile.unknown.map(expand);
        }
        let mut ops = BTreeSet::new();
        let groups = self
            .id
            .ous
            .iter()
            .filter_map(|g| self.tables.groups.get(*g));
        for record in self.user_record().into_iter().chain(groups) {
            if record.enabled {
                ops.extend(record.ops.iter().cloned());
            }
        }
        Some(ops)
    }

    /// Rule 6: the key's access mode admits the caller.
    fn mode_admits(&self, key: &Policy) -> bool {
        let user_ok = key.owner == self.id.cn;
        let group_ok = key
            .group
            .as_deref()
            .is_some_and(|g| self.effective_groups().contains(&g));
        match key.mode {
            Mode::Any => true,
            Mode::Group => group_ok,
            Mode::User => user_ok,
            Mode::UserAndGroup => user_ok && group_ok,
        }
    }

    fn decide(&self, grant: Grant, key: Option<&Policy>, admin_rule: bool) -> bool {
        if self.user_disabled() {
            return false;
        }
        if admin_rule && self.in_admin_group() {
            return true;
        }
        let Grant::Key(op) = grant else {
            return false;
        };
        match self.granted() {
            Some(ops) if ops.contains(op) => {}
            _ => return false,
        }
        key.is_none_or(|k| self.mode_admits(k))
    }

    /// May the caller do `grant` (on the key with policy `key`, if it names one)?
    pub fn may(&self, grant: Grant, key: Option<&Policy>) -> bool {
        self.decide(grant, key, true)
    }

    /// The same, judged as a key user only (separation of duties: no administrator rule).
    pub fn may_as_key_user(&self, grant: Grant, key: Option<&Policy>) -> bool {
        self.decide(grant, key, false)
    }
}

/// One object as the model knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MObj {
    pub policy: Policy,
    pub state: u32,
    pub names: Vec<String>,
    /// `x-` custom attributes (name, text value), in order.
    pub xattrs: Vec<(String, String)>,
    /// Link attributes (type, linked uid), in order.
    pub links: Vec<(u32, String)>,
    pub usage: i32,
    /// Rotate Latest is not false (the key was not replaced by Re-key).
    pub latest: bool,
    /// Fresh: never served by Get.
    pub fresh: bool,
    /// Has an Activation Date.
    pub activated: bool,
    /// Has a Deactivation Date.
    pub deactivated: bool,
    /// The plaintext key material, once known (the model reads what Create made).
    pub material: Option<Vec<u8>>,
}

impl MObj {
    pub fn destroyed(&self) -> bool {
        is_destroyed(self.state)
    }
}

pub fn is_destroyed(s: u32) -> bool {
    matches!(s, state::DESTROYED | state::DESTROYED_COMPROMISED)
}

/// The objects and the tables, with an index of the names of live objects.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub objects: BTreeMap<String, MObj>,
    /// Creation order (Unique Identifiers), for picking targets.
    pub order: Vec<String>,
    pub tables: Tables,
    /// Name → live objects carrying it.
    live_names: BTreeMap<String, BTreeSet<String>>,
}

impl World {
    /// Replaces (or removes) one object, keeping the name index.
    pub fn put(&mut self, uid: &str, obj: Option<MObj>) {
        if let Some(old) = self.objects.remove(uid) {
            if !old.destroyed() {
                for n in &old.names {
                    if let Some(set) = self.live_names.get_mut(n) {
                        set.remove(uid);
                    }
                }
            }
        }
        if let Some(o) = obj {
            if !o.destroyed() {
                for n in &o.names {
                    self.live_names
                        .entry(n.clone())
                        .or_default()
                        .insert(uid.to_owned());
                }
            }
            self.objects.insert(uid.to_owned(), o);
        }
    }

    /// Adds a new object (last in creation order).
    pub fn create(&mut self, uid: &str, obj: MObj) {
        self.order.push(uid.to_owned());
        self.put(uid, Some(obj));
    }

    /// Removes the objects created after the first `len` (an undone batch's).
    pub fn truncate(&mut self, len: usize) {
        for uid in self.order.split_off(len) {
            self.put(&uid, None);
        }
    }

    /// The names live objects carry.
    pub fn live_name_list(&self) -> Vec<String> {
        self.live_names
            .iter()
            .filter(|(_, uids)| !uids.is_empty())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The live objects named `name`.
    pub fn live_named(&self, name: &str) -> Vec<String> {
        self.live_names
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Rule (names): would `names` on object `uid` owned by `owner` clash with another live
    /// object's? Checked by the store on every insert and update of an object (so also when
    /// a destroyed object whose name was reused is edited). Names are scoped to their owner
    /// (new), or global (before the merge).
    pub fn names_clash(&self, sem: Semantics, uid: &str, owner: &str, names: &[String]) -> bool {
        names.iter().any(|n| {
            self.live_names.get(n).is_some_and(|others| {
                others.iter().any(|other| {
                    other != uid
                        && (!sem.names_per_owner
                            || self
                                .objects
                                .get(other)
                                .is_some_and(|o| o.policy.owner == owner))
                })
            })
        })
    }

    /// Renames a batch's provisional identifier to the one the server gave.
    pub fn rename(&mut self, from: &str, to: &str, touched: &BTreeSet<String>) {
        if let Some(obj) = self.objects.get(from).cloned() {
            self.put(from, None);
            self.put(to, Some(obj));
        }
        if let Some(at) = self.order.iter().rposition(|u| u == from) {
            self.order[at] = to.to_owned();
        }
        for uid in touched {
            let uid = if uid == from { to } else { uid.as_str() };
            if let Some(o) = self.objects.get_mut(uid) {
                for (_, target) in o.links.iter_mut() {
                    if target == from {
                        *target = to.to_owned();
                    }
                }
            }
        }
    }
}

/// An open dual-control window.
#[derive(Clone, Debug)]
pub struct Window {
    pub by: String,
    pub user: String,
    pub operation: String,
    pub until: i64,
}

/// Rule (dual control): a guarded operation needs an open window another administrator
/// opened for the caller. Checked before the policy, so the refusal (Permission Denied)
/// says nothing about the object.
pub fn window_open(windows: &[Window], user: &str, operation: &str, now: i64) -> bool {
    windows
        .iter()
        .any(|w| w.user == user && w.operation == operation && w.until > now && w.by != user)
}

/// Rule (new object's policy): owner the caller (an administrator may name another; anyone
/// else naming another is refused), group the one named (one of the caller's OUs unless an
/// administrator, else refused) or the first OU that counts, mode the one named or the
/// default (`user` when the default needs a group and there is none). A group mode without
/// a group is an invalid field. `Err(true)`: Permission Denied; `Err(false)`: other failure.
pub fn new_policy(
    caller: &Caller,
    owner: Option<&str>,
    group: Option<&str>,
    mode: Option<Mode>,
) -> Result<Policy, bool> {
    let admin = caller.is_admin();
    let owner = match owner {
        Some(o) if o != caller.id.cn && !admin => return Err(true),
        Some(o) => o.to_owned(),
        None => caller.id.cn.to_owned(),
    };
    let group = match group {
        Some(g) if !admin && !caller.id.ous.contains(&g) => return Err(true),
        Some(g) => Some(g.to_owned()),
        None => caller.effective_groups().first().map(|g| g.to_string()),
    };
    let mode = match mode {
        Some(m) => m,
        None if caller.profile.default_mode.needs_group() && group.is_none() => Mode::User,
        None => caller.profile.default_mode,
    };
    if mode.needs_group() && group.is_none() {
        return Err(false);
    }
    Ok(Policy { owner, group, mode })
}

/// Rule (Revoke): the next state, or None (Wrong Key Lifecycle State).
pub fn revoked_state(current: u32, compromise: bool) -> Option<u32> {
    match current {
        state::PRE_ACTIVE | state::ACTIVE | state::DEACTIVATED if compromise => {
            Some(state::COMPROMISED)
        }
        state::PRE_ACTIVE | state::ACTIVE => Some(state::DEACTIVATED),
        _ => None,
    }
}

/// Rule (Destroy): the next state, or None (an Active key must be revoked first).
pub fn destroyed_state(current: u32) -> Option<u32> {
    match current {
        state::PRE_ACTIVE | state::DEACTIVATED => Some(state::DESTROYED),
        state::COMPROMISED => Some(state::DESTROYED_COMPROMISED),
        _ => None,
    }
}

/// Rule (Re-key): only a live, not yet replaced key; a Compromised key may be re-keyed too
/// (replacing it is exactly when clients re-key; KMIP 2.1 §6.1.43 sets no such limit).
pub fn rekeyable(obj: &MObj) -> bool {
    !obj.destroyed() && obj.latest
}

/// Rule (Re-key): the replacement's state. Without an Offset it inherits the Activation and
/// Deactivation Dates (KMIP 2.1 §6.1.46) and its state follows them (Table 304): Active once
/// activated, Deactivated once also past its Deactivation Date (every date the model's items
/// set is "now", so already past); a key never activated stays Pre-Active.
pub fn replacement_state(old: &MObj) -> u32 {
    match (old.activated, old.deactivated) {
        (true, true) => state::DEACTIVATED,
        (true, false) => state::ACTIVE,
        (false, _) => state::PRE_ACTIVE,
    }
}

/// Rule (Set Account): disabling the administrators group or one's own user record would
/// lock administrators out, and is refused.
pub fn locks_out(caller: &Caller, user: bool, name: &str, enabled: Option<bool>) -> bool {
    enabled == Some(false)
        && if user {
            name == caller.id.cn
        } else {
            name == ADMIN_GROUP
        }
}
