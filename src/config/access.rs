//! `[access]`, `[access.users.NAME]`, `[access.groups.NAME]`: who may do what, as plain data.
//! The policy module builds its runtime settings and records from it
//! (`policy::Settings::from_config`, `policy::declared_accounts`).

use super::{Config, ConfigError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default `access.admin_group`.
pub const DEFAULT_ADMIN_GROUP: &str = "admins";

/// `[access]`: who may do what (see the README's access control section).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Members of this group (certificate OU) administer keys, users, groups and policy.
    pub admin_group: String,
    /// Access mode of new keys when the request names none.
    pub default_mode: DefaultMode,
    /// Answer Item Not Found rather than Permission Denied for keys the caller may not use.
    pub hide_existence: bool,
    /// What callers named by no user or group record may do; empty denies them.
    pub unknown_operations: Vec<Grant>,
    /// User records (by certificate CN) written to the database at every start.
    pub users: BTreeMap<String, AccountConfig>,
    /// Group records (by certificate OU) written to the database at every start.
    pub groups: BTreeMap<String, AccountConfig>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            admin_group: DEFAULT_ADMIN_GROUP.into(),
            default_mode: DefaultMode::User,
            hide_existence: false,
            unknown_operations: vec![Grant::All],
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

/// `access.default_mode`: who may use a new key, besides administrators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultMode {
    /// Every authenticated client.
    Any,
    /// Members of the key's owner group.
    Group,
    /// The key's owner user.
    User,
    /// The owner user, and only while a member of the owner group.
    UserAndGroup,
}

/// A key operation a user or group record grants, by its name in the config, or the
/// shorthands `read` and `all`. The policy module maps each to its KMIP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Grant {
    Create,
    Register,
    Locate,
    Check,
    Get,
    GetAttributes,
    GetAttributeList,
    AddAttribute,
    ModifyAttribute,
    DeleteAttribute,
    SetAttribute,
    ObtainLease,
    Activate,
    Revoke,
    Destroy,
    Log,
    ReKey,
    CreateKeyPair,
    DeriveKey,
    Sign,
    SignatureVerify,
    Encrypt,
    Decrypt,
    Mac,
    MacVerify,
    Hash,
    RngRetrieve,
    /// Locate, Check, Get, Get Attributes, Get Attribute List.
    Read,
    /// Every operation above.
    All,
}

/// `[access.users.NAME]`, `[access.groups.NAME]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// A disabled user may do nothing; a disabled group grants nothing. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Granted key operations (names, `read`, `all`). Default none.
    #[serde(default)]
    pub operations: Vec<Grant>,
}

fn yes() -> bool {
    true
}

impl Config {
    pub(super) fn validate_access(&self) -> Result<(), ConfigError> {
        let a = &self.access;
        if a.admin_group.trim().is_empty() {
            return Err(self.invalid("access.admin_group", "must name a group (certificate OU)"));
        }
        for (key, table) in [("access.users", &a.users), ("access.groups", &a.groups)] {
            if table.keys().any(String::is_empty) {
                return Err(self.invalid(key, "has an entry with an empty name"));
            }
        }
        Ok(())
    }
}
