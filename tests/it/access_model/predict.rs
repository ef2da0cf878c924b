//! One batch against the model: resolves each abstract item into a concrete request against
//! the model's objects as the batch leaves them, and predicts its outcome (allowed, refused,
//! missing, failed) in the order the server checks: separation of duties, dual control, the
//! system tables, then the object's own policy and the operation's rules. Allowed items
//! change the model; a journal undoes the batch's changes for Batch Undo.

use super::gen::{ItemSpec, NewSpec, Pick};
use super::rules::*;
use akm::kmip::enums::{link_type, state};
use std::collections::{BTreeMap, BTreeSet};

/// The Name values items use (few, so that names clash).
pub const NAMES: [&str; 40] = [
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14",
    "n15", "n16", "n17", "n18", "n19", "n20", "n21", "n22", "n23", "n24", "n25", "n26", "n27",
    "n28", "n29", "n30", "n31", "n32", "n33", "n34", "n35", "n36", "n37", "n38", "n39",
];
/// The custom attributes items add.
pub const X_NAMES: [&str; 2] = ["x-a", "x-b"];
pub const X_VALUES: [&str; 4] = ["v0", "v1", "v2", "v3"];
/// Owner groups new objects and Set Key Policy name (`ghost` is nobody's OU).
pub const GROUPS: [&str; 6] = ["team", "other", "admins", "readers", "ghost", ""];
/// Usage masks of new objects: Encrypt/Decrypt, plus Wrap/Unwrap Key and/or Derive Key.
pub const USAGES: [i32; 4] = [0x0C, 0x3C, 0x20C, 0x23C];
/// Cryptographic Usage Mask bits the rules look at.
pub const WRAP_KEY: i32 = 0x10;
pub const DERIVE_KEY: i32 = 0x200;

/// An owner name for `x-akm-owner` and Set Key Policy.
pub fn owner_name(i: u8) -> &'static str {
    match IDENTITIES.get(usize::from(i) % (IDENTITIES.len() + 1)) {
        Some(id) => id.cn,
        None => "ghost",
    }
}

/// Where an item's object comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uid {
    Given(String),
    Placeholder,
}

/// The request attributes of a new object.
#[derive(Clone, Debug)]
pub struct NewAttrs {
    pub name: Option<String>,
    pub mode: Option<Mode>,
    pub group: Option<String>,
    pub owner: Option<String>,
    pub usage: i32,
}

/// An attribute an item adds.
#[derive(Clone, Debug)]
pub enum AttrV {
    X(String, String),
    Link(u32, String),
    Name(String),
}

/// What a Delete Attribute item deletes.
#[derive(Clone, Debug)]
pub enum Del {
    /// One `x-` instance, by value.
    XValue(String, String),
    /// Every instance of an `x-` attribute (2.x Attribute Reference).
    XAll(String),
    /// One Link, by value.
    Link(u32, String),
}

/// A concrete batch item.
#[derive(Clone, Debug)]
pub enum Item {
    Create(NewAttrs),
    Register(NewAttrs, Vec<u8>),
    CreateBroken,
    Locate(String),
    Get {
        uid: Uid,
        wrap: Option<String>,
    },
    GetAttributes(Uid),
    GetKeyPolicy(Uid),
    AddAttr(Uid, AttrV),
    ModifyX {
        uid: Uid,
        current: (String, String),
        new: String,
    },
    DeleteAttr(Uid, Del),
    Activate(Uid),
    Revoke(Uid, bool),
    Destroy(Uid),
    ReKey(Uid),
    Derive {
        base: Option<String>,
        name: Option<String>,
    },
    SetKeyPolicy {
        uid: Uid,
        owner: Option<String>,
        group: Option<String>,
        mode: Option<Mode>,
    },
}

impl Item {
    /// What the item asks of the system tables (`who.require` in the dispatcher).
    pub fn grant(&self) -> Grant {
        Grant::Key(match self {
            Item::Create(_) | Item::CreateBroken => "create",
            Item::Register(..) => "register",
            Item::Locate(_) => "locate",
            Item::Get { .. } => "get",
            Item::GetAttributes(_) | Item::GetKeyPolicy(_) => "get-attributes",
            Item::AddAttr(..) => "add-attribute",
            Item::ModifyX { .. } => "modify-attribute",
            Item::DeleteAttr(..) => "delete-attribute",
            Item::Activate(_) => "activate",
            Item::Revoke(..) => "revoke",
            Item::Destroy(_) => "destroy",
            Item::ReKey(_) => "re-key",
            Item::Derive { .. } => "derive-key",
            Item::SetKeyPolicy { .. } => return Grant::Admin,
        })
    }

    /// A short name of the item's kind, for the summary.
    pub fn label(&self) -> &'static str {
        match self {
            Item::Create(_) => "create",
            Item::Register(..) => "register",
            Item::CreateBroken => "create-broken",
            Item::Locate(_) => "locate",
            Item::Get { wrap: None, .. } => "get",
            Item::Get { wrap: Some(_), .. } => "get-wrapped",
            Item::GetAttributes(_) => "get-attributes",
            Item::GetKeyPolicy(_) => "get-key-policy",
            Item::AddAttr(_, AttrV::X(..)) => "add-x",
            Item::AddAttr(_, AttrV::Link(..)) => "add-link",
            Item::AddAttr(_, AttrV::Name(..)) => "add-name",
            Item::ModifyX { .. } => "modify-x",
            Item::DeleteAttr(..) => "delete-attribute",
            Item::Activate(_) => "activate",
            Item::Revoke(..) => "revoke",
            Item::Destroy(_) => "destroy",
            Item::ReKey(_) => "re-key",
            Item::Derive { .. } => "derive-key",
            Item::SetKeyPolicy { .. } => "set-key-policy",
        }
    }

    /// The dual-control name of the item's operation, if it can be guarded.
    pub fn guard(&self) -> Option<&'static str> {
        match self {
            Item::Destroy(_) => Some("destroy"),
            Item::SetKeyPolicy { .. } => Some("policy"),
            _ => None,
        }
    }

    /// The Unique Identifier field of the item, if it has one.
    pub fn uid(&self) -> Option<&Uid> {
        match self {
            Item::Get { uid, .. }
            | Item::GetAttributes(uid)
            | Item::GetKeyPolicy(uid)
            | Item::AddAttr(uid, _)
            | Item::ModifyX { uid, .. }
            | Item::DeleteAttr(uid, _)
            | Item::Activate(uid)
            | Item::Revoke(uid, _)
            | Item::Destroy(uid)
            | Item::ReKey(uid)
            | Item::SetKeyPolicy { uid, .. } => Some(uid),
            _ => None,
        }
    }
}

/// An item's outcome class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Ok,
    /// Permission Denied.
    Denied,
    /// Refused on the object's policy with existence hidden: Object Not Found, exactly as
    /// for an object that does not exist.
    Hidden,
    /// Object Not Found: the object does not exist.
    Missing,
    /// Any other failure (never Permission Denied or Object Not Found).
    Fail,
}

/// What the model expects of one item.
#[derive(Clone, Debug)]
pub struct Expect {
    pub outcome: Outcome,
    /// The object the item named (resolved placeholder), if any.
    pub target: Option<String>,
    /// The provisional identifier of the object it creates.
    pub created: Option<String>,
    /// Locate: the identifiers it must return.
    pub located: Option<Vec<String>>,
    /// A plain Get: the response carries the target's key material.
    pub plain_get: bool,
    /// Get Key Policy: the policy it must return.
    pub policy: Option<Policy>,
    /// The objects the item writes.
    pub writes: Vec<String>,
    /// The next ID Placeholder, when the item changes it.
    pub placeholder: Option<Option<String>>,
}

impl Expect {
    fn new() -> Expect {
        Expect {
            outcome: Outcome::Fail,
            target: None,
            created: None,
            located: None,
            plain_get: false,
            policy: None,
            writes: Vec::new(),
            placeholder: None,
        }
    }
}

/// Rule (key use, Derive Key): the key is Active at `now` by its state and dates.
pub fn usable_to_protect(o: &MObj) -> bool {
    match o.state {
        state::PRE_ACTIVE | state::ACTIVE if o.deactivated => false,
        state::PRE_ACTIVE => o.activated,
        state::ACTIVE => true,
        _ => false,
    }
}

/// One batch being predicted.
pub struct BatchRun<'a> {
    pub world: &'a mut World,
    pub caller: Caller,
    pub sem: Semantics,
    pub windows: &'a [Window],
    pub now: i64,
    pub dead: &'a [String],
    pub placeholder: Option<String>,
    /// Every object the batch wrote (for renaming provisional identifiers).
    pub touched: BTreeSet<String>,
    before: BTreeMap<String, Option<MObj>>,
    order_len: usize,
    next_new: usize,
}

type Step<T> = Result<T, Outcome>;

/// The prefix of the identifiers the model gives objects a batch creates, until the answer
/// names them.
const PROVISIONAL: &str = "new-";

/// The objects as they were before a batch, to put the model back (Batch Undo).
pub struct Journal {
    before: BTreeMap<String, Option<MObj>>,
    order_len: usize,
}

impl Journal {
    /// Puts the model back as it was before the batch.
    pub fn rollback(self, world: &mut World) {
        for (uid, before) in self.before {
            world.put(&uid, before);
        }
        world.truncate(self.order_len);
    }
}

impl<'a> BatchRun<'a> {
    pub fn new(
        world: &'a mut World,
        caller: Caller,
        sem: Semantics,
        windows: &'a [Window],
        now: i64,
        dead: &'a [String],
    ) -> BatchRun<'a> {
        let order_len = world.order.len();
        BatchRun {
            world,
            caller,
            sem,
            windows,
            now,
            dead,
            placeholder: None,
            touched: BTreeSet::new(),
            before: BTreeMap::new(),
            order_len,
            next_new: 0,
        }
    }

    /// What undoes the batch's changes to the model (Batch Undo).
    pub fn journal(&mut self) -> Journal {
        Journal {
            before: std::mem::take(&mut self.before),
            order_len: self.order_len,
        }
    }

    fn write(&mut self, uid: &str, obj: MObj) {
        if !self.before.contains_key(uid) {
            let old = self.world.objects.get(uid).cloned();
            self.before.insert(uid.to_owned(), old);
        }
        self.touched.insert(uid.to_owned());
        self.world.put(uid, Some(obj));
    }

    fn is_provisional(&self, uid: &str) -> bool {
        uid.starts_with(PROVISIONAL)
    }

    fn create(&mut self, obj: MObj) -> String {
        self.next_new += 1;
        let id = format!("{PROVISIONAL}{}", self.next_new);
        self.touched.insert(id.clone());
        self.world.create(&id, obj);
        id
    }

    // ---- resolving abstract items ----

    fn pick_uid(&self, p: Pick) -> Uid {
        let order = &self.world.order[..self.order_len];
        let made_up = |k: u32| Uid::Given(format!("no-such-key-{}", k % 64));
        match p {
            Pick::Placeholder => Uid::Placeholder,
            Pick::Recent(i) if !order.is_empty() => {
                let n = order.len().min(16);
                Uid::Given(order[order.len() - 1 - usize::from(i) % n].clone())
            }
            Pick::Any(i) if !order.is_empty() => {
                Uid::Given(order[i as usize % order.len()].clone())
            }
            Pick::Mine(i) => self.usable(i, false),
            Pick::Active(i) => self.usable(i, true),
            Pick::Missing(k) if k % 2 == 1 && !self.dead.is_empty() => {
                Uid::Given(self.dead[usize::from(k) % self.dead.len()].clone())
            }
            Pick::Recent(k) | Pick::Missing(k) => made_up(u32::from(k)),
            Pick::Any(k) => made_up(k),
        }
    }

    /// One of the last objects (from before the batch) the caller may Get: live, or Active.
    fn usable(&self, i: u8, active: bool) -> Uid {
        let order = &self.world.order[..self.order_len];
        let candidates: Vec<&String> = order
            .iter()
            .rev()
            .take(256)
            .filter(|u| {
                let o = &self.world.objects[*u];
                let state_ok = if active {
                    o.state == state::ACTIVE
                } else {
                    !o.destroyed()
                };
                state_ok && self.caller.may(Grant::Key("get"), Some(&o.policy))
            })
            .collect();
        match candidates.as_slice() {
            [] => self.pick_uid(Pick::Recent(i)),
            c => Uid::Given(c[usize::from(i) % c.len()].clone()),
        }
    }

    fn explicit_uid(&self, p: Pick) -> String {
        match self.pick_uid(p) {
            Uid::Given(u) => u,
            Uid::Placeholder => "no-such-key-placeholder".into(),
        }
    }

    /// The object a Uid names now (the placeholder resolved).
    fn resolve(&self, uid: &Uid) -> Option<String> {
        match uid {
            Uid::Given(u) => Some(u.clone()),
            Uid::Placeholder => self.placeholder.clone(),
        }
    }

    fn current_obj(&self, uid: &Uid) -> Option<&MObj> {
        self.resolve(uid).and_then(|u| self.world.objects.get(&u))
    }

    fn new_attrs(&self, s: &NewSpec) -> NewAttrs {
        NewAttrs {
            name: s
                .name
                .map(|n| NAMES[usize::from(n) % NAMES.len()].to_owned()),
            mode: s.mode.map(|m| Mode::ALL[usize::from(m) % 4]),
            group: s
                .group
                .map(|g| GROUPS[usize::from(g) % (GROUPS.len() - 1)].to_owned()),
            owner: s.owner.map(|o| owner_name(o).to_owned()),
            usage: USAGES[usize::from(s.usage) % USAGES.len()],
        }
    }

    /// The concrete item for `spec`, given the model as the batch has left it so far.
    pub fn concrete(&self, spec: &ItemSpec) -> Item {
        match spec {
            ItemSpec::Create(s) => Item::Create(self.new_attrs(s)),
            ItemSpec::Register(s, seed) => {
                let mut bytes = Vec::with_capacity(32);
                for i in 0..4u64 {
                    bytes.extend_from_slice(
                        &(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes(),
                    );
                }
                Item::Register(self.new_attrs(s), bytes)
            }
            ItemSpec::CreateBroken => Item::CreateBroken,
            ItemSpec::Locate(n) => Item::Locate(self.locate_name(*n)),
            ItemSpec::Get { t, wrap } => Item::Get {
                uid: self.pick_uid(*t),
                wrap: wrap.map(|w| self.explicit_uid(w)),
            },
            ItemSpec::GetAttributes(t) => Item::GetAttributes(self.pick_uid(*t)),
            ItemSpec::GetKeyPolicy(t) => Item::GetKeyPolicy(self.pick_uid(*t)),
            ItemSpec::AddX { t, attr, val } => Item::AddAttr(
                self.pick_uid(*t),
                AttrV::X(
                    X_NAMES[usize::from(*attr) % 2].into(),
                    X_VALUES[usize::from(*val) % 4].into(),
                ),
            ),
            ItemSpec::AddLink { t, to } => Item::AddAttr(
                self.pick_uid(*t),
                AttrV::Link(link_type::PARENT_LINK, self.explicit_uid(*to)),
            ),
            ItemSpec::AddName { t, name } => Item::AddAttr(
                self.pick_uid(*t),
                AttrV::Name(NAMES[usize::from(*name) % NAMES.len()].into()),
            ),
            ItemSpec::ModifyX { t, pick, val } => {
                let uid = self.pick_uid(*t);
                let current = self.x_instance(&uid, *pick);
                let new = X_VALUES[usize::from(*val) % 4].to_owned();
                Item::ModifyX { uid, current, new }
            }
            ItemSpec::DeleteX { t, pick, all } => {
                let uid = self.pick_uid(*t);
                let (name, value) = self.x_instance(&uid, *pick);
                let del = if *all {
                    Del::XAll(name)
                } else {
                    Del::XValue(name, value)
                };
                Item::DeleteAttr(uid, del)
            }
            ItemSpec::DeleteLink { t, pick } => {
                let uid = self.pick_uid(*t);
                // A link to an object this batch created names it by a provisional
                // identifier the server does not know: never named in a request.
                let links: Vec<(u32, String)> = self
                    .current_obj(&uid)
                    .map(|o| o.links.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(_, target)| !self.is_provisional(target))
                    .collect();
                let link = match links.as_slice() {
                    [] => (link_type::PARENT_LINK, "no-such-link".into()),
                    l => l[usize::from(*pick) % l.len()].clone(),
                };
                Item::DeleteAttr(uid, Del::Link(link.0, link.1))
            }
            ItemSpec::Activate(t) => Item::Activate(self.pick_uid(*t)),
            ItemSpec::Revoke { t, compromise } => Item::Revoke(self.pick_uid(*t), *compromise),
            ItemSpec::Destroy(t) => Item::Destroy(self.pick_uid(*t)),
            ItemSpec::ReKey(t) => Item::ReKey(self.pick_uid(*t)),
            ItemSpec::Derive { base, name } => Item::Derive {
                base: match self.pick_uid(*base) {
                    Uid::Given(u) => Some(u),
                    Uid::Placeholder => None,
                },
                name: name.map(|n| NAMES[usize::from(n) % NAMES.len()].to_owned()),
            },
            ItemSpec::SetKeyPolicy {
                t,
                owner,
                group,
                mode,
            } => self.set_key_policy_item(*t, *owner, *group, *mode),
        }
    }

    /// Mostly a name some live object has (so that Locate finds something), else any.
    fn locate_name(&self, n: u8) -> String {
        let used = self.world.live_name_list();
        if n % 4 != 0 && !used.is_empty() {
            return used[usize::from(n) % used.len()].clone();
        }
        NAMES[usize::from(n) % NAMES.len()].into()
    }

    /// An `x-` instance of the object (or one it does not have).
    fn x_instance(&self, uid: &Uid, pick: u8) -> (String, String) {
        self.current_obj(uid)
            .filter(|o| !o.xattrs.is_empty())
            .map(|o| o.xattrs[usize::from(pick) % o.xattrs.len()].clone())
            .unwrap_or((X_NAMES[usize::from(pick) % 2].into(), "absent".into()))
    }

    /// Set Key Policy; an owner change that would give the new owner two live objects of
    /// the same name is left out (what the server should do then is not settled).
    fn set_key_policy_item(
        &self,
        t: Pick,
        owner: Option<u8>,
        group: Option<u8>,
        mode: Option<u8>,
    ) -> Item {
        let uid = self.pick_uid(t);
        let mut owner = owner.map(|o| owner_name(o).to_owned());
        if let (Some(o), Some(obj), Some(id)) = (&owner, self.current_obj(&uid), self.resolve(&uid))
        {
            if !obj.destroyed() && self.world.names_clash(self.sem, &id, o, &obj.names) {
                owner = None;
            }
        }
        Item::SetKeyPolicy {
            uid,
            owner,
            group: group.map(|g| GROUPS[usize::from(g) % GROUPS.len()].to_owned()),
            mode: mode.map(|m| Mode::ALL[usize::from(m) % 4]),
        }
    }

    // ---- predicting ----

    fn key_denied(&self) -> Outcome {
        if self.caller.profile.hide_existence {
            Outcome::Hidden
        } else {
            Outcome::Denied
        }
    }

    /// Predicts `item` and applies it to the model when allowed.
    pub fn predict(&mut self, item: &Item) -> Expect {
        let mut e = Expect::new();
        e.target = match item {
            Item::Derive { base, .. } => base.clone(),
            _ => item.uid().and_then(|u| self.resolve(u)),
        };
        let checks = self
            .separation(item)
            .and_then(|()| self.dual_control(item))
            .and_then(|()| self.tables(item));
        e.outcome = match checks.and_then(|()| self.operation(item, &mut e)) {
            Ok(()) => Outcome::Ok,
            Err(o) => o,
        };
        e
    }

    /// Rule (separation of duties): an administrator's Get must also pass the key-user
    /// rules (its records and the key's policy, without administrator rights).
    fn separation(&self, item: &Item) -> Step<()> {
        let Item::Get { uid, .. } = item else {
            return Ok(());
        };
        if !self.caller.profile.separate_duties || !self.caller.is_admin() {
            return Ok(());
        }
        let uid = self.resolve(uid).ok_or(Outcome::Fail)?;
        let obj = self.world.objects.get(&uid).ok_or(Outcome::Missing)?;
        if self
            .caller
            .may_as_key_user(Grant::Key("get"), Some(&obj.policy))
        {
            Ok(())
        } else {
            Err(self.key_denied())
        }
    }

    fn dual_control(&self, item: &Item) -> Step<()> {
        match item.guard() {
            Some(name)
                if self.caller.profile.guarded.contains(&name)
                    && !window_open(self.windows, self.caller.id.cn, name, self.now) =>
            {
                Err(Outcome::Denied)
            }
            _ => Ok(()),
        }
    }

    fn tables(&self, item: &Item) -> Step<()> {
        if self.caller.may(item.grant(), None) {
            Ok(())
        } else {
            Err(Outcome::Denied)
        }
    }

    /// Loads an object the way `ops::load_for` does: it must exist, then the caller must be
    /// allowed `grant` on it.
    fn load(&self, uid: &Uid, grant: &'static str) -> Step<(String, MObj)> {
        let uid = self.resolve(uid).ok_or(Outcome::Fail)?;
        self.load_uid(&uid, grant)
    }

    fn load_uid(&self, uid: &str, grant: &'static str) -> Step<(String, MObj)> {
        let obj = self.world.objects.get(uid).ok_or(Outcome::Missing)?;
        if !self.caller.may(Grant::Key(grant), Some(&obj.policy)) {
            return Err(self.key_denied());
        }
        Ok((uid.to_owned(), obj.clone()))
    }

    /// A read-modify-write the way `ops::modify` does: load, change, then the store's name
    /// check on the update.
    fn modify(
        &mut self,
        uid: &str,
        grant: &'static str,
        e: &mut Expect,
        change: impl FnOnce(&mut MObj) -> Step<()>,
    ) -> Step<()> {
        let (uid, mut obj) = self.load_uid(uid, grant)?;
        change(&mut obj)?;
        if self
            .world
            .names_clash(self.sem, &uid, &obj.policy.owner, &obj.names)
        {
            return Err(Outcome::Fail);
        }
        self.write(&uid, obj);
        e.writes.push(uid);
        Ok(())
    }

    fn modify_named(
        &mut self,
        uid: &Uid,
        grant: &'static str,
        e: &mut Expect,
        change: impl FnOnce(&mut MObj) -> Step<()>,
    ) -> Step<()> {
        let uid = self.resolve(uid).ok_or(Outcome::Fail)?;
        self.modify(&uid, grant, e, change)?;
        e.placeholder = Some(Some(uid));
        Ok(())
    }

    fn operation(&mut self, item: &Item, e: &mut Expect) -> Step<()> {
        match item {
            Item::Create(a) => self.new_object(a, None, e),
            Item::Register(a, bytes) => self.new_object(a, Some(bytes.clone()), e),
            Item::CreateBroken => Err(Outcome::Fail),
            Item::Locate(name) => {
                self.locate(name, e);
                Ok(())
            }
            Item::Get { uid, wrap } => self.get(uid, wrap.as_deref(), e),
            Item::GetAttributes(uid) => {
                let (uid, _) = self.load(uid, "get-attributes")?;
                e.placeholder = Some(Some(uid));
                Ok(())
            }
            Item::GetKeyPolicy(uid) => {
                let (_, obj) = self.load(uid, "get-attributes")?;
                e.policy = Some(obj.policy);
                Ok(())
            }
            Item::AddAttr(uid, attr) => {
                let attr = attr.clone();
                self.modify_named(uid, "add-attribute", e, move |o| add_attribute(o, attr))
            }
            Item::ModifyX { uid, current, new } => {
                let (current, new) = (current.clone(), new.clone());
                self.modify_named(uid, "modify-attribute", e, move |o| {
                    if !o.xattrs.iter().any(|(n, _)| *n == current.0) {
                        return Err(Outcome::Fail);
                    }
                    let at = o.xattrs.iter().position(|a| *a == current);
                    let at = at.ok_or(Outcome::Fail)?;
                    o.xattrs[at] = (current.0, new);
                    Ok(())
                })
            }
            Item::DeleteAttr(uid, del) => {
                let del = del.clone();
                self.modify_named(uid, "delete-attribute", e, move |o| {
                    delete_attribute(o, del)
                })
            }
            Item::Activate(uid) => self.modify_named(uid, "activate", e, |o| {
                if o.state != state::PRE_ACTIVE {
                    return Err(Outcome::Fail);
                }
                // A Deactivation Date already past (copied by Re-key) deactivates it at once:
                // the state follows the dates (KMIP 2.1 §4.57).
                o.state = if o.deactivated {
                    state::DEACTIVATED
                } else {
                    state::ACTIVE
                };
                o.activated = true;
                Ok(())
            }),
            Item::Revoke(uid, compromise) => {
                let compromise = *compromise;
                self.modify_named(uid, "revoke", e, move |o| {
                    let next = revoked_state(o.state, compromise).ok_or(Outcome::Fail)?;
                    o.state = next;
                    if next != state::COMPROMISED {
                        o.deactivated = true;
                    }
                    Ok(())
                })
            }
            Item::Destroy(uid) => self.modify_named(uid, "destroy", e, |o| {
                o.state = destroyed_state(o.state).ok_or(Outcome::Fail)?;
                Ok(())
            }),
            Item::ReKey(uid) => self.rekey(uid, e),
            Item::Derive { base, name } => self.derive(base.as_deref(), name.clone(), e),
            Item::SetKeyPolicy {
                uid,
                owner,
                group,
                mode,
            } => self.set_key_policy(uid, owner.clone(), group.clone(), *mode, e),
        }
    }

    fn new_object(&mut self, a: &NewAttrs, material: Option<Vec<u8>>, e: &mut Expect) -> Step<()> {
        let policy = new_policy(&self.caller, a.owner.as_deref(), a.group.as_deref(), a.mode)
            .map_err(|denied| {
                if denied {
                    Outcome::Denied
                } else {
                    Outcome::Fail
                }
            })?;
        let names: Vec<String> = a.name.iter().cloned().collect();
        let obj = fresh_object(policy, names, a.usage, material);
        self.insert(obj, e)
    }

    fn insert(&mut self, obj: MObj, e: &mut Expect) -> Step<()> {
        if self
            .world
            .names_clash(self.sem, "", &obj.policy.owner, &obj.names)
        {
            return Err(Outcome::Fail);
        }
        let id = self.create(obj);
        e.writes.push(id.clone());
        e.created = Some(id.clone());
        e.placeholder = Some(Some(id));
        Ok(())
    }

    /// Locate by name: the live objects of that name the caller may see (an administrator
    /// sees them all). A single one becomes the placeholder, else there is none.
    fn locate(&mut self, name: &str, e: &mut Expect) {
        let admin = self.caller.is_admin();
        let mut found: Vec<String> = self
            .world
            .live_named(name)
            .into_iter()
            .filter(|u| {
                admin
                    || self
                        .caller
                        .may(Grant::Key("locate"), Some(&self.world.objects[u].policy))
            })
            .collect();
        found.sort();
        e.placeholder = Some(match found.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        });
        e.located = Some(found);
    }

    /// Get: the key (not destroyed), and for a wrapped Get the wrapping key the caller may
    /// Get, with Wrap Key in its mask, Active. The first Get clears Fresh (a write).
    fn get(&mut self, uid: &Uid, wrap: Option<&str>, e: &mut Expect) -> Step<()> {
        let (uid, obj) = self.load(uid, "get")?;
        if obj.destroyed() {
            return Err(Outcome::Fail);
        }
        if let Some(w) = wrap {
            let (_, wkey) = self.load_uid(w, "get")?;
            if wkey.usage & WRAP_KEY == 0 || wkey.state != state::ACTIVE {
                return Err(Outcome::Fail);
            }
        }
        if obj.fresh {
            self.modify(&uid, "get", e, |o| {
                o.fresh = false;
                Ok(())
            })?;
        }
        e.plain_get = wrap.is_none();
        e.placeholder = Some(Some(uid));
        Ok(())
    }

    fn rekey(&mut self, uid: &Uid, e: &mut Expect) -> Step<()> {
        let (old_uid, mut old) = self.load(uid, "re-key")?;
        if !rekeyable(&old) {
            return Err(Outcome::Fail);
        }
        let new = MObj {
            policy: old.policy.clone(),
            state: replacement_state(&old),
            names: std::mem::take(&mut old.names),
            xattrs: old.xattrs.clone(),
            links: vec![(link_type::REPLACED_OBJECT_LINK, old_uid.clone())],
            usage: old.usage,
            latest: true,
            fresh: true,
            activated: old.activated,
            deactivated: old.deactivated,
            material: None,
        };
        old.latest = false;
        self.write(&old_uid, old.clone());
        self.insert(new, e)?;
        let new_id = e.created.clone().expect("insert names the new object");
        old.links.push((link_type::REPLACEMENT_OBJECT_LINK, new_id));
        self.write(&old_uid, old);
        e.writes.push(old_uid);
        Ok(())
    }

    /// Derive Key (HKDF) from an explicit base: the caller may Derive Key with it, it has
    /// Derive Key in its mask and is Active. The new key is the caller's, stored first; then
    /// the base gets its Derived Key link.
    fn derive(&mut self, base: Option<&str>, name: Option<String>, e: &mut Expect) -> Step<()> {
        let base = base.ok_or(Outcome::Fail)?;
        let (base, obj) = self.load_uid(base, "derive-key")?;
        if obj.usage & DERIVE_KEY == 0 || !usable_to_protect(&obj) {
            return Err(Outcome::Fail);
        }
        let policy = new_policy(&self.caller, None, None, None).map_err(|_| Outcome::Fail)?;
        let mut new = fresh_object(policy, name.into_iter().collect(), 0x0C, None);
        new.links
            .push((link_type::DERIVATION_BASE_OBJECT_LINK, base.clone()));
        self.insert(new, e)?;
        let new_id = e.created.clone().expect("insert names the new object");
        self.modify(&base, "derive-key", e, move |o| {
            o.links.push((link_type::DERIVED_KEY_LINK, new_id));
            Ok(())
        })
    }

    fn set_key_policy(
        &mut self,
        uid: &Uid,
        owner: Option<String>,
        group: Option<String>,
        mode: Option<Mode>,
        e: &mut Expect,
    ) -> Step<()> {
        let uid = self.resolve(uid).ok_or(Outcome::Fail)?;
        let mut obj = self
            .world
            .objects
            .get(&uid)
            .ok_or(Outcome::Missing)?
            .clone();
        if let Some(o) = owner {
            obj.policy.owner = o;
        }
        if let Some(g) = group {
            obj.policy.group = Some(g).filter(|g| !g.is_empty());
        }
        if let Some(m) = mode {
            obj.policy.mode = m;
        }
        if obj.policy.mode.needs_group() && obj.policy.group.is_none() {
            return Err(Outcome::Fail);
        }
        self.write(&uid, obj);
        e.writes.push(uid);
        Ok(())
    }
}

/// A new object as Create, Register and Derive Key make it.
fn fresh_object(policy: Policy, names: Vec<String>, usage: i32, material: Option<Vec<u8>>) -> MObj {
    MObj {
        policy,
        state: state::PRE_ACTIVE,
        names,
        xattrs: Vec::new(),
        links: Vec::new(),
        usage,
        latest: true,
        fresh: true,
        activated: false,
        deactivated: false,
        material,
    }
}

/// Rule (Add Attribute): `x-` and Link take several values; the same Name twice on one
/// object is refused.
fn add_attribute(o: &mut MObj, attr: AttrV) -> Step<()> {
    match attr {
        AttrV::X(n, v) => o.xattrs.push((n, v)),
        AttrV::Link(t, u) => o.links.push((t, u)),
        AttrV::Name(n) if o.names.contains(&n) => return Err(Outcome::Fail),
        AttrV::Name(n) => o.names.push(n),
    }
    Ok(())
}

/// Rule (Delete Attribute): one instance by value, or every instance by name; nothing to
/// delete is a failure (Item Not Found).
fn delete_attribute(o: &mut MObj, del: Del) -> Step<()> {
    match del {
        Del::XValue(n, v) => {
            let at = o.xattrs.iter().position(|a| a.0 == n && a.1 == v);
            o.xattrs.remove(at.ok_or(Outcome::Fail)?);
        }
        Del::XAll(n) => {
            if !o.xattrs.iter().any(|a| a.0 == n) {
                return Err(Outcome::Fail);
            }
            o.xattrs.retain(|a| a.0 != n);
        }
        Del::Link(t, u) => {
            let at = o.links.iter().position(|l| l.0 == t && l.1 == u);
            o.links.remove(at.ok_or(Outcome::Fail)?);
        }
    }
    Ok(())
}
