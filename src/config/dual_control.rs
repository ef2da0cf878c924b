//! The operation names `[dual_control] operations` accepts. The rules themselves (who may
//! approve, windows, pending requests) are in `ops::dual`.

use serde::Deserialize;

/// `[dual_control]`: operations that need a second administrator's authorization window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DualControlConfig {
    /// Guarded operations: any of `destroy`, `kek-rotate`, `backup`, `policy` (set or
    /// delete users and groups, set key policies), `create` (Create, Create Key Pair,
    /// Register, Derive Key, Re-key), `revoke`, `attributes` (Add/Modify/Delete/Set
    /// Attribute), `export` (clear Get of a secret key, PKCS#12 too), `unseal`, `restore`
    /// (the offline `akm restore`), or `all`. Empty (the default): none.
    pub operations: Vec<String>,
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
            window_minutes: 15,
            separate_duties: false,
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
