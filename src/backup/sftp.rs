//! Copying a backup file to a remote host over SFTP with the system OpenSSH client (`sftp`
//! from openssh-client), non-interactively: key authentication only (`BatchMode`), the host
//! key checked against a known_hosts file the operator provides (`StrictHostKeyChecking`).
//! The file is uploaded under a temporary name and renamed, so the remote directory never
//! holds a partial backup under a backup's name.

use super::BackupError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where scheduled backups are copied (`[backup.sftp]`).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpTarget {
    /// `user@host:directory` on the remote host.
    pub destination: String,
    /// The SSH port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The private key to log in with (mode 0600).
    pub identity: PathBuf,
    /// The known_hosts file holding the remote host's key.
    pub known_hosts: PathBuf,
}

fn default_port() -> u16 {
    22
}

fn failed(what: String) -> BackupError {
    BackupError::Io {
        path: "sftp".into(),
        source: std::io::Error::other(what),
    }
}

impl SftpTarget {
    /// Splits the destination into (`user@host`, directory).
    pub fn split(&self) -> Option<(&str, &str)> {
        let (login, dir) = self.destination.split_once(':')?;
        (!login.is_empty() && !dir.is_empty() && !dir.contains(['"', '\n', '\r']))
            .then_some((login, dir))
    }

    /// Uploads `file` into the remote directory under its own name.
    pub fn upload(&self, file: &Path) -> Result<String, BackupError> {
        let (login, dir) = self
            .split()
            .ok_or_else(|| failed(format!("bad sftp destination {:?}", self.destination)))?;
        let local = file.display().to_string();
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| failed("backup file name is not text".into()))?;
        if local.contains(['"', '\n', '\r']) {
            return Err(failed("backup path holds a quote or newline".into()));
        }
        let remote = format!("{}/{name}", dir.trim_end_matches('/'));
        let partial = format!("{}/.{name}.part", dir.trim_end_matches('/'));
        let batch = format!("put \"{local}\" \"{partial}\"\nrename \"{partial}\" \"{remote}\"\n");
        let mut child = Command::new("sftp")
            .args(["-b", "-", "-q", "-P", &self.port.to_string(), "-i"])
            .arg(&self.identity)
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg(login)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot run sftp (install openssh-client): {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(batch.as_bytes())
                .map_err(|e| failed(format!("sftp: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(format!("sftp: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(failed(format!("sftp to {login} failed: {}", err.trim())));
        }
        Ok(format!("{login}:{remote}"))
    }
}
