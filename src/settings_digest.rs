//! The digest of the security settings mirrored peers must agree on: the settings that decide
//! who may do what. Peers exchange it in the mirror hello and refuse the link when it differs,
//! naming the differing sections (each section is digested on its own for that). Only public
//! settings go in (no key material, no file contents, no secrets), and only values in force:
//! `[dual_control]` and `crypto.pci_mode` change at a restart, `[access]` at a reload.
//!
//! Sections: `access` (admin group, default mode, hide existence, unknown callers'
//! operations), `access.records` (the user and group records the file declares),
//! `dual_control` (guarded operations, window, separation of duties), `crypto.pci_mode`,
//! `refused_algorithms` (the algorithms this build refuses), `fips_build` (whether this is the
//! FIPS flavour, whose every operation runs in the FIPS module) and `name_scope` (the rule
//! that makes a Name unique).

use crate::config::Config;
use crate::policy::{self, NamedAccounts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The name-uniqueness rule this build enforces (change the text when the rule changes, so
/// peers with different rules refuse each other).
const NAME_SCOPE: &str = "a Name is unique among the live objects of one owner";

/// Per-section SHA-256 digests (hex) of the settings in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDigest {
    /// Section name → hex SHA-256 of its canonical text.
    pub sections: BTreeMap<String, String>,
}

impl SettingsDigest {
    /// The settings in force: `[access]` from `access` (the file as last loaded or reloaded),
    /// `[dual_control]` and `crypto.pci_mode` from `started` (the file the server started
    /// with: those need a restart).
    pub fn of(access: &Config, started: &Config) -> SettingsDigest {
        let mut texts = BTreeMap::new();
        let s = policy::Settings::from_config(&access.access);
        texts.insert(
            "access",
            format!(
                "admin_group={:?}\ndefault_mode={}\nhide_existence={}\nunknown_operations={}\n",
                s.admin_group,
                s.default_mode.as_str(),
                s.hide_existence,
                s.unknown.map_or_else(|| "-".into(), |o| o.to_list())
            ),
        );
        let (users, groups) = policy::declared_accounts(&access.access);
        texts.insert(
            "access.records",
            format!("users:\n{}groups:\n{}", records(&users), records(&groups)),
        );
        let d = &started.dual_control;
        let mut ops = d.operation_names();
        ops.sort();
        ops.dedup();
        texts.insert(
            "dual_control",
            format!(
                "operations={ops:?}\nwindow_minutes={}\nseparate_duties={}\n",
                d.window_minutes, d.separate_duties
            ),
        );
        texts.insert("crypto.pci_mode", format!("{}\n", started.crypto.pci_mode));
        texts.insert("refused_algorithms", refused_algorithms());
        texts.insert("fips_build", fips_build(crate::crypto::backend::FIPS_BUILD));
        texts.insert("name_scope", format!("{NAME_SCOPE}\n"));
        SettingsDigest {
            sections: texts
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.to_owned(),
                        hex::encode(crate::crypto::sha256(v.as_bytes())),
                    )
                })
                .collect(),
        }
    }

    /// One digest over every section (hex).
    pub fn overall(&self) -> String {
        let text: String = self
            .sections
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        hex::encode(crate::crypto::sha256(text.as_bytes()))
    }

    /// The first 16 hex digits of [`overall`](Self::overall), for tables.
    pub fn short(&self) -> String {
        self.overall()[..16].to_owned()
    }

    /// The sections whose digests differ (or that only one side has), sorted.
    pub fn differing(&self, other: &SettingsDigest) -> Vec<String> {
        let mut names: Vec<&String> = self.sections.keys().chain(other.sections.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|k| self.sections.get(*k) != other.sections.get(*k))
            .cloned()
            .collect()
    }
}

fn records(list: &NamedAccounts) -> String {
    let mut sorted: Vec<_> = list
        .iter()
        .map(|(name, a)| {
            format!(
                "{name:?} enabled={} operations={}\n",
                a.enabled,
                a.operations.to_list()
            )
        })
        .collect();
    sorted.sort();
    sorted.concat()
}

/// The build flavour: a FIPS node must neither take keys a default node generated outside the
/// module nor have its clients' writes served by one, so the two flavours refuse each other.
fn fips_build(fips: bool) -> String {
    format!("fips_build={fips}\n")
}

/// The Cryptographic Algorithm codes this build refuses (the standard range and the
/// extension range's first codes).
fn refused_algorithms() -> String {
    (0..=0xFFFFu32)
        .chain(0x8000_0000..=0x8000_00FF)
        .filter(|a| crate::crypto::digest::refused_algorithm(*a).is_some())
        .map(|a| format!("{a:#x}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("akm.toml");
        std::fs::write(&path, extra).unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn equal_settings_agree_and_differences_are_named() {
        let a = config("");
        let b = config("[dual_control]\noperations = [\"destroy\"]\n");
        let c = config("[access]\nhide_existence = true\n[crypto]\npci_mode = true\n");
        let da = SettingsDigest::of(&a, &a);
        assert_eq!(da, SettingsDigest::of(&config(""), &config("")));
        assert!(da.differing(&da).is_empty());
        assert_eq!(da.overall().len(), 64);
        let db = SettingsDigest::of(&b, &b);
        assert_eq!(da.differing(&db), vec!["dual_control".to_string()]);
        let dc = SettingsDigest::of(&c, &c);
        assert_eq!(
            da.differing(&dc),
            vec!["access".to_string(), "crypto.pci_mode".to_string()]
        );
        // Restart-only sections come from the started configuration, [access] from the new.
        let reloaded = SettingsDigest::of(&c, &a);
        assert_eq!(da.differing(&reloaded), vec!["access".to_string()]);
        assert!(da.sections.contains_key("refused_algorithms"));
        assert!(da.sections.contains_key("name_scope"));
        // A default node and a FIPS node differ in the flavour, and so refuse each other.
        let flavour = &da.sections["fips_build"];
        let fips = crate::crypto::backend::FIPS_BUILD;
        let sha = |t: String| hex::encode(crate::crypto::sha256(t.as_bytes()));
        assert_eq!(flavour, &sha(fips_build(fips)));
        assert_ne!(flavour, &sha(fips_build(!fips)));
        assert_eq!(
            da.differing(&SettingsDigest::default()).len(),
            da.sections.len()
        );
    }
}
