//! The KEK-and-configuration archive (`akm backup --kek-and-config`, `akm restore
//! --kek-and-config`): one file holding what rebuilds a node beside a data backup — the
//! configuration file, the KEK as stored on disk (the sealed file, never a clear KEK), the KEK
//! archive of retired KEKs (wrapped), the audit signing key, and the TLS, mirror and SFTP
//! files the configuration names. Paths are kept relative to the configuration file's
//! directory when they lie under it, so the set restores beside a configuration placed
//! elsewhere. The file is written 0600; every entry carries its SHA-256 and the whole file
//! ends with the SHA-256 of all before it, checked before anything is written back.
//!
//! Layout (text headers, raw contents): `AKM-KEK-CONFIG 1\n`, then per file
//! `file <mode octal> <length> <sha256> <path>\n<bytes>\n`, then `end <sha256>\n`.

use crate::config::Config;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &str = "AKM-KEK-CONFIG 1\n";

/// Why an archive could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The node keeps its KEK in the clear (key-file mode): the archive never holds that.
    #[error("the KEK of this node is a clear key file ({0}); seal it first with `akm kek seal` (the archive holds only a sealed KEK)")]
    ClearKek(String),
    /// The archive is damaged or not one.
    #[error("{0}: not an intact KEK-and-configuration archive ({1}); nothing was written")]
    Damaged(String, &'static str),
    /// An entry names a file the archived configuration does not.
    #[error("the archive holds {0}, which its configuration does not name; nothing was written")]
    Foreign(String),
    /// A file the archive would write exists.
    #[error("{0} exists; restore into an empty node, or pass --force to overwrite")]
    Exists(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KitError + '_ {
    move |e| KitError::Io(path.display().to_string(), e)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(
        crate::crypto::backend::prim::digest::digest(
            &crate::crypto::backend::prim::digest::SHA256,
            bytes,
        )
        .as_ref(),
    )
}

/// One file of the set: where it lives now, and the path recorded for it.
struct Member {
    source: PathBuf,
    recorded: String,
}

/// Every file `config` names that rebuilds the node, whether or not it exists.
fn named_paths(config: &Config) -> Vec<PathBuf> {
    let sealed = config.store.sealed_kek();
    let files = crate::crypto::rotate::KekFiles::of(&config.store);
    let mut paths = vec![config.path.clone(), sealed, files.archive()];
    paths.push(config.audit.signing_key_path(&config.store));
    let tls = &config.tls;
    paths.extend([tls.cert.clone(), tls.key.clone(), tls.client_ca.clone()]);
    paths.extend(tls.crls.iter().cloned());
    paths.extend(["ca.crt", "ca.key", "mirror.crt", "mirror.key"].map(|n| tls.certs_dir.join(n)));
    if let Some(m) = &config.mirror {
        paths.extend([&m.cert, &m.key, &m.ca].into_iter().flatten().cloned());
    }
    paths.extend(
        [&config.status.cert, &config.status.key]
            .into_iter()
            .flatten()
            .cloned(),
    );
    // The operator's client credentials the configuration names (`akm` commands on the node).
    let client = &config.client;
    paths.extend([client.cert.clone(), client.key.clone(), client.ca.clone()]);
    if let Some(t) = &config.backup.sftp {
        paths.extend([t.identity.clone(), t.known_hosts.clone()]);
    }
    paths
}

/// The files `config` names that rebuild the node (those that exist).
fn members(config: &Config) -> Result<Vec<Member>, KitError> {
    let base = config.path.parent().unwrap_or(Path::new(".")).to_owned();
    if !config.store.sealed_kek().exists() {
        return Err(KitError::ClearKek(config.store.kek().display().to_string()));
    }
    let mut out: Vec<Member> = Vec::new();
    for p in named_paths(config) {
        if !p.is_file() || out.iter().any(|m| m.source == p) {
            continue;
        }
        let recorded = if p == config.path {
            // Restored to wherever --config points.
            "@config".to_owned()
        } else {
            p.strip_prefix(&base)
                .map(|r| r.to_path_buf())
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        };
        out.push(Member {
            source: p,
            recorded,
        });
    }
    Ok(out)
}

/// The archive's default name for a time: `akm-kek-config-YYYYMMDDTHHMMSSZ.akmkc`.
pub fn default_name(now: i64) -> String {
    let t = crate::audit::format_time_ms(now * 1000);
    let compact: String = t
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect();
    format!("akm-kek-config-{compact}Z.akmkc")
}

/// Writes the archive of `config`'s node to `out` (a new file, 0600); returns the files
/// included (as recorded) and the archive's SHA-256.
pub fn write(config: &Config, out: &Path) -> Result<(Vec<String>, String), KitError> {
    let mut body = MAGIC.as_bytes().to_vec();
    let mut names = Vec::new();
    for m in members(config)? {
        let bytes = std::fs::read(&m.source).map_err(io(&m.source))?;
        let mode = std::fs::metadata(&m.source)
            .map_err(io(&m.source))?
            .permissions()
            .mode()
            & 0o777;
        body.extend(
            format!(
                "file {mode:o} {} {} {}\n",
                bytes.len(),
                sha256(&bytes),
                m.recorded
            )
            .as_bytes(),
        );
        body.extend(&bytes);
        body.push(b'\n');
        names.push(m.recorded);
    }
    let digest = sha256(&body);
    body.extend(format!("end {digest}\n").as_bytes());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(io(out))?;
    f.write_all(&body).map_err(io(out))?;
    f.sync_all().map_err(io(out))?;
    Ok((names, digest))
}

/// One file read back from an archive.
struct Entry {
    mode: u32,
    path: String,
    bytes: Vec<u8>,
}

/// Parses and checks a whole archive.
fn read(file: &Path) -> Result<Vec<Entry>, KitError> {
    let data = std::fs::read(file).map_err(io(file))?;
    let damaged = |why| KitError::Damaged(file.display().to_string(), why);
    let body_len = data[..data.len().saturating_sub(1)]
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .ok_or_else(|| damaged("too short"))?;
    let (body, trailer) = data.split_at(body_len);
    let expected = format!("end {}\n", sha256(body));
    if trailer != expected.as_bytes() {
        return Err(damaged("its checksum does not match: truncated or altered"));
    }
    let rest = body
        .strip_prefix(MAGIC.as_bytes())
        .ok_or_else(|| damaged("no archive header"))?;
    let mut rest = rest;
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let eol = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| damaged("bad entry"))?;
        let header = std::str::from_utf8(&rest[..eol]).map_err(|_| damaged("bad entry"))?;
        let mut f = header.splitn(5, ' ');
        let (Some("file"), Some(mode), Some(len), Some(sum), Some(path)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(damaged("bad entry"));
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| damaged("bad mode"))?;
        let len: usize = len.parse().map_err(|_| damaged("bad length"))?;
        let start = eol + 1;
        if rest.len() < start + len + 1 || rest[start + len] != b'\n' {
            return Err(damaged("an entry is cut short"));
        }
        let bytes = rest[start..start + len].to_vec();
        if sha256(&bytes) != sum {
            return Err(damaged("an entry's checksum does not match"));
        }
        entries.push(Entry {
            mode: mode & 0o777,
            path: path.to_owned(),
            bytes,
        });
        rest = &rest[start + len + 1..];
    }
    Ok(entries)
}

/// Restores `file` for a node whose configuration goes to `config_path` (other relative
/// paths beside it). Refuses, before writing anything, to overwrite an existing file unless
/// `force`. Returns the paths written.
pub fn restore(file: &Path, config_path: &Path, force: bool) -> Result<Vec<PathBuf>, KitError> {
    let entries = read(file)?;
    let base = config_path.parent().unwrap_or(Path::new(".")).to_owned();
    let target = |e: &Entry| match e.path.as_str() {
        "@config" => config_path.to_owned(),
        p => base.join(p),
    };
    // Only the files the archived configuration itself names are written back: a crafted
    // archive cannot place a file anywhere else (its checksums are not a signature).
    let config_text = entries
        .iter()
        .find(|e| e.path == "@config")
        .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
        .ok_or_else(|| {
            KitError::Damaged(file.display().to_string(), "it holds no configuration")
        })?;
    let archived = Config::parse(&config_text, config_path).map_err(|_| {
        KitError::Damaged(
            file.display().to_string(),
            "its configuration does not load with this akm",
        )
    })?;
    let named = named_paths(&archived);
    if let Some(e) = entries.iter().find(|e| !named.contains(&target(e))) {
        return Err(KitError::Foreign(e.path.clone()));
    }
    if !force {
        if let Some(e) = entries.iter().find(|e| target(e).exists()) {
            return Err(KitError::Exists(target(e).display().to_string()));
        }
    }
    let mut written = Vec::new();
    for e in &entries {
        let path = target(e);
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(dir))?;
        }
        // Written beside and renamed: a restore stopped half-way leaves no partial file.
        let tmp = path.with_extension("restoring");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(e.mode)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(&e.bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `(path, bytes)` entries in the on-disk layout, checksums included.
    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = MAGIC.as_bytes().to_vec();
        for (path, bytes) in entries {
            body.extend(format!("file 600 {} {} {path}\n", bytes.len(), sha256(bytes)).bytes());
            body.extend_from_slice(bytes);
            body.push(b'\n');
        }
        let end = format!("end {}\n", sha256(&body));
        body.extend(end.bytes());
        body
    }

    #[test]
    fn an_entry_the_archived_configuration_does_not_name_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("crafted.akmkc");
        std::fs::write(
            &file,
            archive(&[
                ("@config", b"[server]\n"),
                ("../outside/authorized_keys", b"ssh-ed25519 AAAA attacker\n"),
            ]),
        )
        .unwrap();
        let config = dir.path().join("node/config/akm.toml");
        let refused = restore(&file, &config, false).unwrap_err();
        assert!(matches!(refused, KitError::Foreign(ref p) if p.contains("authorized_keys")));
        assert!(!config.exists(), "the configuration was written anyway");
        assert!(!dir.path().join("node/outside").exists());
    }
}
