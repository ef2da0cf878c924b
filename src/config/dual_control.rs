//! The operation names `[dual_control] operations` accepts. The rules themselves (who may
//! approve, windows, pending requests) are in `ops::dual`.

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
