//! Where the configuration file is: `--config`, else `$AKM_CONFIG`, else `./config/akm.toml`
//! (a source checkout), else `/etc/akm/akm.toml` (the Debian package): the first that exists.
//! When none does, the error names every place and how to fix it.

use super::CliError;
use std::path::{Path, PathBuf};

/// The environment variable naming the configuration file.
pub const ENV: &str = "AKM_CONFIG";
/// The configuration of a source checkout, relative to the current directory.
pub const LOCAL: &str = "config/akm.toml";
/// The configuration the Debian package installs.
pub const SYSTEM: &str = "/etc/akm/akm.toml";

/// Whether `path` exists; a permission problem is an error naming the path, never "absent".
fn exists(path: &Path) -> Result<bool, CliError> {
    path.try_exists().map_err(|e| {
        CliError::NoPermission(format!(
            "cannot look at {} ({e}); run as a user who may read it (root, or a member of \
             group akm for the package's /etc/akm), or pass --config FILE",
            path.display()
        ))
    })
}

/// The configuration file to use: `explicit` (`--config`) as given, else the first of
/// `$AKM_CONFIG`, `./config/akm.toml` and `/etc/akm/akm.toml` that exists.
pub fn config_path(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let from_env = std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let candidates: Vec<PathBuf> = from_env
        .iter()
        .cloned()
        .chain([PathBuf::from(LOCAL), PathBuf::from(SYSTEM)])
        .collect();
    for c in &candidates {
        if exists(c)? {
            return Ok(c.clone());
        }
    }
    let env_line = match &from_env {
        Some(p) => format!("${ENV} = {} (no such file)", p.display()),
        None => format!("${ENV} (not set)"),
    };
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| ".".into());
    Err(CliError::NoConfig(format!(
        "no configuration file found; akm looked at, in order:\n  \
         1. --config FILE (not given)\n  \
         2. {env_line}\n  \
         3. ./{LOCAL} (none in {cwd})\n  \
         4. {SYSTEM} (no such file)\n\
         fix: pass --config FILE, or export {ENV}=FILE, or run from the directory holding \
         {LOCAL} (a source checkout), or install the akm package (it writes {SYSTEM})"
    )))
}

/// The configuration path for commands that work without one (audit verification, the
/// conformance replayer): the discovered file, or `./config/akm.toml` as before.
pub fn config_path_or_local(explicit: Option<&Path>) -> PathBuf {
    config_path(explicit).unwrap_or_else(|_| PathBuf::from(LOCAL))
}
