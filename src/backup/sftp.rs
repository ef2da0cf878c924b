//! Copying a backup file to a remote host over SFTP with the system OpenSSH client (`sftp`
//! from openssh-client), non-interactively: key authentication only (`BatchMode`), the host
//! key checked against a known_hosts file the operator provides (`StrictHostKeyChecking`).
//! The file is uploaded under a temporary name and renamed, so the remote directory never
//! holds a partial backup under a backup's name.

use super::BackupError;
use crate::config::SftpTarget;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

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
            .arg("-o")
            .arg(format!("ConnectTimeout={}", self.connect_timeout_secs))
            // A peer that stops answering mid-transfer is dropped after three missed
            // keepalives instead of hanging the upload (and every later scheduled backup).
            .arg("-o")
            .arg(format!("ServerAliveInterval={}", self.connect_timeout_secs))
            .args(["-o", "ServerAliveCountMax=3"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg(login)
            // Its own process group, so a timeout stops the ssh it runs as well.
            .process_group(0)
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
        let limit = std::time::Duration::from_secs(self.transfer_timeout_secs);
        let (status, err) =
            wait_within(child, limit).map_err(|e| failed(format!("sftp to {login}: {e}")))?;
        match status {
            Some(s) if s.success() => Ok(format!("{login}:{remote}")),
            Some(_) => Err(failed(format!("sftp to {login} failed: {}", err.trim()))),
            None => Err(failed(format!(
                "sftp to {login} did not finish within {} s (backup.sftp.transfer_timeout_secs); \
                 it was stopped",
                self.transfer_timeout_secs
            ))),
        }
    }
}

/// Waits for `child` at most `limit`, then kills it: its exit status (None if it was killed)
/// and what it wrote on stderr.
fn wait_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::io::Result<(Option<std::process::ExitStatus>, String)> {
    use std::io::Read;
    let stderr = child.stderr.take();
    // Read on the side so a chatty sftp never blocks on a full pipe while we poll.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut text);
        }
        text
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let group = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    Ok((status, reader.join().unwrap_or_default()))
}
