//! `[access]`, `[access.users.NAME]`, `[access.groups.NAME]`: who may do what.

use super::{Config, ConfigError};
use crate::policy::{self, AccessMode, Account, Operations};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[access]`: who may do what (see the README's access control section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Members of this group (certificate OU) administer keys, users, groups and policy.
    pub admin_group: String,
    /// Access mode of new keys when the request names none.
    pub default_mode: String,
    /// Answer Item Not Found rather than Permission Denied for keys the caller may not use.
    pub hide_existence: bool,
    /// What callers named by no user or group record may do; empty denies them.
    pub unknown_operations: Vec<String>,
    /// User records (by certificate CN) written to the database at every start.
    pub users: BTreeMap<String, AccountConfig>,
    /// Group records (by certificate OU) written to the database at every start.
    pub groups: BTreeMap<String, AccountConfig>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            admin_group: "admins".into(),
            default_mode: "user".into(),
            hide_existence: false,
            unknown_operations: vec!["all".into()],
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

/// User or group records by name.
pub type NamedAccounts = Vec<(String, Account)>;

/// `[access.users.NAME]`, `[access.groups.NAME]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// A disabled user may do nothing; a disabled group grants nothing. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Granted key operations (names, `read`, `all`). Default none.
    #[serde(default)]
    pub operations: Vec<String>,
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
        if AccessMode::parse(&a.default_mode).is_none() {
            return Err(self.invalid(
                "access.default_mode",
                format!(
                    "is {:?}; use \"any\", \"group\", \"user\" or \"user-and-group\"",
                    a.default_mode
                ),
            ));
        }
        if let Err(bad) = Operations::parse(&a.unknown_operations) {
            return Err(self.invalid("access.unknown_operations", unknown_op(&bad)));
        }
        for (key, table) in [("access.users", &a.users), ("access.groups", &a.groups)] {
            for (name, acct) in table {
                if name.is_empty() {
                    return Err(self.invalid(key, "has an entry with an empty name"));
                }
                if let Err(bad) = Operations::parse(&acct.operations) {
                    return Err(
                        self.invalid(key, format!("{name}.operations: {}", unknown_op(&bad)))
                    );
                }
            }
        }
        Ok(())
    }

    /// The access settings (validated).
    pub fn access_settings(&self) -> policy::Settings {
        let a = &self.access;
        let unknown = Operations::parse(&a.unknown_operations).unwrap_or_default();
        policy::Settings {
            admin_group: a.admin_group.clone(),
            unknown: Some(unknown).filter(|o| *o != Operations::none()),
            hide_existence: a.hide_existence,
            default_mode: AccessMode::parse(&a.default_mode).unwrap_or(AccessMode::User),
        }
    }

    /// The user records (`users`) and group records (`groups`) the config declares.
    pub fn declared_accounts(&self) -> (NamedAccounts, NamedAccounts) {
        let convert = |table: &BTreeMap<String, AccountConfig>| {
            table
                .iter()
                .map(|(name, a)| {
                    let account = Account {
                        enabled: a.enabled,
                        operations: Operations::parse(&a.operations).unwrap_or_default(),
                    };
                    (name.clone(), account)
                })
                .collect()
        };
        (convert(&self.access.users), convert(&self.access.groups))
    }
}

fn unknown_op(bad: &str) -> String {
    let names: Vec<&str> = policy::GRANTABLE.iter().map(|(n, _)| *n).collect();
    format!(
        "has unknown operation {bad:?}; use \"all\", \"read\" or some of {}",
        names.join(", ")
    )
}
