//! The operation names `[dual_control] operations` accepts. The rules themselves (who may
//! approve, windows, pending requests) are in `ops::dual`.

use serde::{Deserialize, Serialize};

/// Default `dual_control.window_minutes`.
pub const DEFAULT_WINDOW_MINUTES: i64 = 15;

/// `[dual_control]`: operations that need a second administrator's authorization window.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DualControlConfig {
    /// Guarded operations: any of `destroy`, `kek-rotate`, `backup`, `policy` (set or
    /// delete users and groups, set key policies), `create` (Create, Create Key Pair,
    /// Register, Derive Key, Re-key), `revoke`, `attributes` (Add/Modify/Delete/Set
    /// Attribute), `export` (clear Get of a secret key, PKCS#12 too), `unseal`, `restore`
    /// (the offline `akm restore`), or `all`. Empty (the default): none.
    pub operations: Vec<Guarded>,
    /// Longest authorization window, in minutes (also the default length).
    pub window_minutes: i64,
    /// Separation of duties: administrators may read key material (Get) only if their user
    /// or group records also grant it as key users and the key's policy admits them.
    pub separate_duties: bool,
}

impl Default for DualControlConfig {
    fn default() -> Self {
        DualControlConfig {
            operations: Vec::new(),
            window_minutes: DEFAULT_WINDOW_MINUTES,
            separate_duties: false,
        }
    }
}

impl DualControlConfig {
    /// The configured operations by name (`all` unexpanded), as `ops::dual` takes them.
    pub fn operation_names(&self) -> Vec<String> {
        self.operations
            .iter()
            .map(|g| g.name().to_owned())
            .collect()
    }
}

/// One `dual_control.operations` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Guarded {
    Destroy,
    KekRotate,
    Backup,
    Policy,
    Create,
    Revoke,
    Attributes,
    Export,
    Unseal,
    Restore,
    /// Every operation above.
    All,
}

impl Guarded {
    /// The name in the config file (one of [`GUARDABLE`], or `all`).
    pub fn name(self) -> &'static str {
        match self {
            Guarded::Destroy => "destroy",
            Guarded::KekRotate => "kek-rotate",
            Guarded::Backup => "backup",
            Guarded::Policy => "policy",
            Guarded::Create => "create",
            Guarded::Revoke => "revoke",
            Guarded::Attributes => "attributes",
            Guarded::Export => "export",
            Guarded::Unseal => "unseal",
            Guarded::Restore => "restore",
            Guarded::All => "all",
        }
    }
}

/// The operation names `[dual_control] operations` accepts (and `all`).
pub const GUARDABLE: &[&str] = &[
    "destroy",
    "kek-rotate",
    "backup",
    "policy",
    "create",
    "revoke",
    "attributes",
    "export",
    "unseal",
    "restore",
];

/// The configured names with `all` expanded, or the first unknown name.
pub fn expand(names: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for n in names {
        if n == "all" {
            out.extend(GUARDABLE.iter().map(|g| g.to_string()));
        } else if GUARDABLE.contains(&n.as_str()) {
            out.push(n.clone());
        } else {
            return Err(n.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name of [`GUARDABLE`] parses as the variant whose name it is.
    #[test]
    fn guardable_names_are_the_variants() {
        for name in GUARDABLE.iter().chain(&["all"]) {
            let g: Guarded = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(g.name(), *name);
        }
    }
}
