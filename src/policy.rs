//! Access decisions: one pure function, [`decide`], of the caller (certificate CN and OUs),
//! the system tables' records that name the caller (its user record and its groups'
//! records), the access settings, the key's policy (owner user, owner group, access mode) and
//! the KMIP operation. No I/O: the callers load what it needs and act on the [`Decision`].
//!
//! The rules, in order (the first that applies wins):
//! 1. a caller whose user record is disabled is denied everything;
//! 2. a member of the administrators group (unless that group's record is disabled) is
//!    allowed everything, on every key, including the akm administration operations;
//! 3. administration operations (the vendor range) are denied to everyone else;
//! 4. Query, Discover Versions and (on test servers) Interop are allowed (they reveal no
//!    object);
//! 5. the operation must be granted by the caller's enabled user or group records (their
//!    union); a caller named by no record at all gets the configured `unknown` grant, or is
//!    denied when that is `None`;
//! 6. on a key, the key's access mode decides: `any` (every authenticated caller), `group`
//!    (the caller has the owner group among its enabled groups), `user` (the caller's CN is
//!    the owner), `user-and-group` (both).

use crate::identity::Principal;
use crate::kmip::enums::operation as op;
use std::collections::BTreeSet;
use std::fmt;

/// First Operation value of the vendor-extension range (KMIP 1.4 §9.1.3.2.27 / 2.0 §11.34:
/// values 8XXXXXXX are extensions). akm's administration operations live there.
pub const EXTENSION_OPERATIONS: u32 = 0x8000_0000;

/// Who may use a key, besides administrators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessMode {
    /// Every authenticated client.
    Any,
    /// Members of the key's owner group.
    Group,
    /// The key's owner user.
    User,
    /// The owner user, and only while a member of the owner group.
    UserAndGroup,
}

impl AccessMode {
    /// Every mode, for tables and tests.
    pub const ALL: [AccessMode; 4] = [
        AccessMode::Any,
        AccessMode::Group,
        AccessMode::User,
        AccessMode::UserAndGroup,
    ];

    /// The name used in the database, the config, the CLI and the `x-akm-access-mode`
    /// attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Any => "any",
            AccessMode::Group => "group",
            AccessMode::User => "user",
            AccessMode::UserAndGroup => "user-and-group",
        }
    }

    /// Parses [`AccessMode::as_str`]'s names.
    pub fn parse(s: &str) -> Option<AccessMode> {
        AccessMode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether keys in this mode need an owner group.
    pub fn needs_group(self) -> bool {
        matches!(self, AccessMode::Group | AccessMode::UserAndGroup)
    }
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's access policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The owner user (a certificate CN).
    pub owner: String,
    /// The owner group (a certificate OU), if any.
    pub group: Option<String>,
    /// Who may use the key.
    pub mode: AccessMode,
}

/// The key operations a user or group record can grant, by their names in the config, the
/// CLI and the database.
pub const GRANTABLE: &[(&str, u32)] = &[
    ("create", op::CREATE),
    ("register", op::REGISTER),
    ("locate", op::LOCATE),
    ("check", op::CHECK),
    ("get", op::GET),
    ("get-attributes", op::GET_ATTRIBUTES),
    ("get-attribute-list", op::GET_ATTRIBUTE_LIST),
    ("add-attribute", op::ADD_ATTRIBUTE),
    ("modify-attribute", op::MODIFY_ATTRIBUTE),
    ("delete-attribute", op::DELETE_ATTRIBUTE),
    ("set-attribute", op::SET_ATTRIBUTE),
    ("obtain-lease", op::OBTAIN_LEASE),
    ("activate", op::ACTIVATE),
    ("revoke", op::REVOKE),
    ("destroy", op::DESTROY),
    ("log", op::LOG),
    ("re-key", op::RE_KEY),
    ("create-key-pair", op::CREATE_KEY_PAIR),
    ("derive-key", op::DERIVE_KEY),
    ("sign", op::SIGN),
    ("signature-verify", op::SIGNATURE_VERIFY),
    ("encrypt", op::ENCRYPT),
    ("decrypt", op::DECRYPT),
    ("mac", op::MAC),
    ("mac-verify", op::MAC_VERIFY),
    ("hash", op::HASH),
    ("rng-retrieve", op::RNG_RETRIEVE),
];

/// What the shorthand `read` grants (`all` grants every [`GRANTABLE`] operation).
const READ: &[u32] = &[
    op::LOCATE,
    op::CHECK,
    op::GET,
    op::GET_ATTRIBUTES,
    op::GET_ATTRIBUTE_LIST,
];

/// A set of granted key operations (KMIP Operation values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operations(BTreeSet<u32>);

impl Operations {
    /// Every grantable operation.
    pub fn all() -> Operations {
        Operations(GRANTABLE.iter().map(|(_, v)| *v).collect())
    }

    /// No operation.
    pub fn none() -> Operations {
        Operations::default()
    }

    /// Parses names from [`GRANTABLE`] and the shorthands `read` and `all`; the error names
    /// the first unknown one.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Operations, String> {
        let mut set = BTreeSet::new();
        for name in names {
            let name = name.as_ref().trim();
            if let Some((_, v)) = GRANTABLE.iter().find(|(n, _)| *n == name) {
                set.insert(*v);
            } else if name == "all" {
                set.extend(GRANTABLE.iter().map(|(_, v)| *v));
            } else if name == "read" {
                set.extend(READ.iter().copied());
            } else {
                return Err(name.to_owned());
            }
        }
        Ok(Operations(set))
    }

    /// Parses the comma-separated form of [`Operations::to_list`].
    pub fn parse_list(list: &str) -> Result<Operations, String> {
        let names: Vec<&str> = list.split(',').filter(|s| !s.trim().is_empty()).collect();
        Operations::parse(&names)
    }

    /// The names, in [`GRANTABLE`] order.
    pub fn names(&self) -> Vec<&'static str> {
        GRANTABLE
            .iter()
            .filter(|(_, v)| self.0.contains(v))
            .map(|(n, _)| *n)
            .collect()
    }

    /// The names, comma-separated (the database form).
    pub fn to_list(&self) -> String {
        self.names().join(",")
    }

    /// Whether `operation` is granted.
    pub fn contains(&self, operation: u32) -> bool {
        self.0.contains(&operation)
    }

    fn extend(&mut self, other: &Operations) {
        self.0.extend(other.0.iter().copied());
    }
}

/// A user or group record of the system tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// A disabled user is denied everything; a disabled group grants nothing and does not
    /// count as membership for group-mode keys.
    pub enabled: bool,
    /// The key operations it grants.
    pub operations: Operations,
}

/// The records of the system tables that name one caller: the user record of its CN and the
/// group records of its OUs (groups without a record are absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    /// The user record, if any.
    pub user: Option<Account>,
    /// `(group name, record)` for each of the caller's OUs that has a record.
    pub groups: Vec<(String, Account)>,
}

impl Accounts {
    fn group(&self, name: &str) -> Option<&Account> {
        self.groups.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// Server-wide access settings (the `[access]` config section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Members of this group (certificate OU) administer everything.
    pub admin_group: String,
    /// What a caller named by no user or group record may do; `None` denies it everything
    /// but Query and Discover Versions.
    pub unknown: Option<Operations>,
    /// Answer Item Not Found instead of Permission Denied for a key that exists but that
    /// the caller may not use.
    pub hide_existence: bool,
    /// The access mode of new keys when the request names none.
    pub default_mode: AccessMode,
}

impl Default for Settings {
    /// The settings of an `[access]` section left out (the config's defaults, defined once).
    fn default() -> Self {
        Settings::from_config(&crate::config::AccessConfig::default())
    }
}

/// Why a decision went the way it did (for the audit record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Allowed: the caller is an administrator.
    Administrator,
    /// Allowed: an informational operation (Query, Discover Versions, Interop).
    Informational,
    /// Allowed: the operation is granted and it names no key.
    Granted,
    /// Allowed: the key's access mode admits the caller.
    AccessMode(AccessMode),
    /// Denied: the caller's user record is disabled.
    UserDisabled,
    /// Denied: an administration operation from a non-administrator.
    AdminOnly,
    /// Denied: no record names the caller and unknown callers are refused.
    UnknownPrincipal,
    /// Denied: no enabled record of the caller grants the operation.
    OperationNotGranted,
    /// Denied: the key's access mode does not admit the caller.
    NotPermittedByKey(AccessMode),
}

impl Reason {
    /// A short description for the audit record: of every denial, and of every action
    /// allowed through administrator rights. `None` for the ordinary allowed cases, which the
    /// record's outcome already says.
    pub fn audit_detail(self) -> Option<String> {
        let text = match self {
            Reason::Administrator => "access: administrator",
            Reason::UserDisabled => "access denied: user disabled",
            Reason::AdminOnly => "access denied: administrators only",
            Reason::UnknownPrincipal => "access denied: caller in no user or group record",
            Reason::OperationNotGranted => "access denied: operation not granted to the caller",
            Reason::NotPermittedByKey(mode) => {
                return Some(format!("access denied: key access mode {mode}"))
            }
            Reason::Informational | Reason::Granted | Reason::AccessMode(_) => return None,
        };
        Some(text.to_owned())
    }
}

/// The outcome of an access check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the caller may proceed.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    fn allow(reason: Reason) -> Decision {
        Decision {
            allowed: true,
            reason,
        }
    }

    fn deny(reason: Reason) -> Decision {
        Decision {
            allowed: false,
            reason,
        }
    }
}

/// Whether `who` is an administrator: a member of the administrators group whose group
/// record (if any) is enabled. Does not look at the user record (see [`decide`]).
pub fn is_admin(who: &Principal, accounts: &Accounts, settings: &Settings) -> bool {
    who.ous.contains(&settings.admin_group)
        && accounts
            .group(&settings.admin_group)
            .is_none_or(|a| a.enabled)
}

/// The caller's groups that count: its OUs without the disabled ones, in certificate order.
pub fn effective_groups<'a>(
    who: &'a Principal,
    accounts: &'a Accounts,
) -> impl Iterator<Item = &'a str> {
    who.ous
        .iter()
        .filter(move |g| accounts.group(g).is_none_or(|a| a.enabled))
        .map(String::as_str)
}

/// The key operations granted to `who` by its records, or by the `unknown` setting when
/// no record names it (`None`: refused).
fn granted(accounts: &Accounts, settings: &Settings) -> Option<Operations> {
    if accounts.user.is_none() && accounts.groups.is_empty() {
        return settings.unknown.clone();
    }
    let mut ops = Operations::none();
    let enabled = accounts
        .user
        .iter()
        .chain(accounts.groups.iter().map(|(_, a)| a));
    for account in enabled.filter(|a| a.enabled) {
        ops.extend(&account.operations);
    }
    Some(ops)
}

/// May `who` perform `operation` (a KMIP Operation value), on the key with policy `key` if
/// the operation names one? See the module documentation for the rules.
pub fn decide(
    who: &Principal,
    accounts: &Accounts,
    settings: &Settings,
    key: Option<&KeyPolicy>,
    operation: u32,
) -> Decision {
    if accounts.user.as_ref().is_some_and(|u| !u.enabled) {
        return Decision::deny(Reason::UserDisabled);
    }
    if is_admin(who, accounts, settings) {
        return Decision::allow(Reason::Administrator);
    }
    if operation >= EXTENSION_OPERATIONS {
        return Decision::deny(Reason::AdminOnly);
    }
    if matches!(operation, op::QUERY | op::DISCOVER_VERSIONS | op::INTEROP) {
        return Decision::allow(Reason::Informational);
    }
    match granted(accounts, settings) {
        None => return Decision::deny(Reason::UnknownPrincipal),
        Some(ops) if !ops.contains(operation) => {
            return Decision::deny(Reason::OperationNotGranted)
        }
        Some(_) => {}
    }
    let Some(key) = key else {
        return Decision::allow(Reason::Granted);
    };
    let user_ok = who.cn == key.owner;
    let group_ok = key
        .group
        .as_deref()
        .is_some_and(|g| effective_groups(who, accounts).any(|mine| mine == g));
    let admitted = match key.mode {
        AccessMode::Any => true,
        AccessMode::Group => group_ok,
        AccessMode::User => user_ok,
        AccessMode::UserAndGroup => user_ok && group_ok,
    };
    if admitted {
        Decision::allow(Reason::AccessMode(key.mode))
    } else {
        Decision::deny(Reason::NotPermittedByKey(key.mode))
    }
}

mod from_config;
pub use from_config::{declared_accounts, NamedAccounts};

#[cfg(test)]
mod tests;
