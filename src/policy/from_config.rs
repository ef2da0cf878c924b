//! The policy's runtime values built from the `[access]` section: the server-wide
//! [`Settings`] and the user and group records the file declares. The config stays plain
//! data; the mapping of each configured name to a KMIP operation lives here, beside
//! [`GRANTABLE`].

use super::{op, AccessMode, Account, Operations, Settings, GRANTABLE, READ};
use crate::config::{AccessConfig, AccountConfig, DefaultMode, Grant};
use std::collections::BTreeMap;

/// User or group records by name.
pub type NamedAccounts = Vec<(String, Account)>;

impl Settings {
    /// The access settings `[access]` configures.
    pub fn from_config(access: &AccessConfig) -> Settings {
        let unknown = Operations::from_grants(&access.unknown_operations);
        Settings {
            admin_group: access.admin_group.clone(),
            unknown: Some(unknown).filter(|o| *o != Operations::none()),
            hide_existence: access.hide_existence,
            default_mode: access.default_mode.into(),
        }
    }
}

/// The user records (`users`) and group records (`groups`) `[access]` declares.
pub fn declared_accounts(access: &AccessConfig) -> (NamedAccounts, NamedAccounts) {
    let convert = |table: &BTreeMap<String, AccountConfig>| {
        table
            .iter()
            .map(|(name, a)| {
                let account = Account {
                    enabled: a.enabled,
                    operations: Operations::from_grants(&a.operations),
                };
                (name.clone(), account)
            })
            .collect()
    };
    (convert(&access.users), convert(&access.groups))
}

impl From<DefaultMode> for AccessMode {
    fn from(mode: DefaultMode) -> AccessMode {
        match mode {
            DefaultMode::Any => AccessMode::Any,
            DefaultMode::Group => AccessMode::Group,
            DefaultMode::User => AccessMode::User,
            DefaultMode::UserAndGroup => AccessMode::UserAndGroup,
        }
    }
}

impl Operations {
    /// The operations the configured names grant (`read` and `all` expanded).
    pub fn from_grants(grants: &[Grant]) -> Operations {
        let mut set = Operations::none();
        for grant in grants {
            match grant_operation(*grant) {
                Some(code) => {
                    set.0.insert(code);
                }
                None if *grant == Grant::Read => set.0.extend(READ.iter().copied()),
                None => set.0.extend(GRANTABLE.iter().map(|(_, v)| *v)),
            }
        }
        set
    }
}

/// The KMIP operation one configured name grants; `None` for the shorthands `read` and `all`.
fn grant_operation(grant: Grant) -> Option<u32> {
    Some(match grant {
        Grant::Create => op::CREATE,
        Grant::Register => op::REGISTER,
        Grant::Locate => op::LOCATE,
        Grant::Check => op::CHECK,
        Grant::Get => op::GET,
        Grant::GetAttributes => op::GET_ATTRIBUTES,
        Grant::GetAttributeList => op::GET_ATTRIBUTE_LIST,
        Grant::AddAttribute => op::ADD_ATTRIBUTE,
        Grant::ModifyAttribute => op::MODIFY_ATTRIBUTE,
        Grant::DeleteAttribute => op::DELETE_ATTRIBUTE,
        Grant::SetAttribute => op::SET_ATTRIBUTE,
        Grant::ObtainLease => op::OBTAIN_LEASE,
        Grant::Activate => op::ACTIVATE,
        Grant::Revoke => op::REVOKE,
        Grant::Destroy => op::DESTROY,
        Grant::Log => op::LOG,
        Grant::ReKey => op::RE_KEY,
        Grant::CreateKeyPair => op::CREATE_KEY_PAIR,
        Grant::DeriveKey => op::DERIVE_KEY,
        Grant::Sign => op::SIGN,
        Grant::SignatureVerify => op::SIGNATURE_VERIFY,
        Grant::Encrypt => op::ENCRYPT,
        Grant::Decrypt => op::DECRYPT,
        Grant::Mac => op::MAC,
        Grant::MacVerify => op::MAC_VERIFY,
        Grant::Hash => op::HASH,
        Grant::RngRetrieve => op::RNG_RETRIEVE,
        Grant::Read | Grant::All => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn access_section_builds_settings_and_records() {
        let c = Config::parse(
            "[access]\nadmin_group = \"akm-admins\"\ndefault_mode = \"group\"\n\
             unknown_operations = []\n\
             [access.groups.HR]\noperations = [\"all\"]\n\
             [access.users.bob]\nenabled = false\noperations = [\"read\", \"encrypt\"]\n",
            std::path::Path::new("/etc/akm/akm.toml"),
        )
        .unwrap();
        let s = Settings::from_config(&c.access);
        assert_eq!(s.admin_group, "akm-admins");
        assert_eq!(s.default_mode, AccessMode::Group);
        assert_eq!(s.unknown, None);
        let (users, groups) = declared_accounts(&c.access);
        assert_eq!(users[0].0, "bob");
        assert!(!users[0].1.enabled);
        assert_eq!(
            users[0].1.operations,
            Operations::parse(&["read", "encrypt"]).unwrap()
        );
        assert_eq!(groups[0].1.operations, Operations::all());
        let defaults = Config::parse("", std::path::Path::new("/etc/akm/akm.toml")).unwrap();
        assert_eq!(Settings::from_config(&defaults.access), Settings::default());
    }

    /// Every name the config accepts is the [`GRANTABLE`] name of the operation it grants,
    /// and every grantable operation has a config name: the two lists cannot drift.
    #[test]
    fn config_names_are_the_grantable_names() {
        for (name, code) in GRANTABLE {
            let grant: Grant = serde_json::from_value(serde_json::json!(name))
                .unwrap_or_else(|e| panic!("{name} is not a config name: {e}"));
            assert_eq!(grant_operation(grant), Some(*code), "{name}");
        }
        let all = Operations::from_grants(&[Grant::All]);
        assert_eq!(all, Operations::all());
        let read = Operations::from_grants(&[Grant::Read]);
        assert_eq!(read, Operations::parse(&["read"]).unwrap());
    }
}
