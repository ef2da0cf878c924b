//! Scheduled backups (`[backup] interval_secs`, or `[backup] schedule` by time of day, see
//! `cron`): every interval or at each scheduled time the server takes the same
//! online backup as `akm backup` into `backup.dir`, logs it to the backup log and the audit
//! journal as `scheduler`, then deletes the oldest backup files beyond `backup.keep`. A sealed
//! server skips the turn (nothing can be wrapped); a failure is logged and retried next turn.

use super::{create, log_backup, BackupError, BackupInfo};
use crate::audit::{Audit, AuditEvent, Outcome};
use crate::crypto::slot::KekSlot;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the scheduler needs.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The backup directory.
    pub dir: PathBuf,
    /// When backups run.
    pub when: When,
    /// Backup files kept.
    pub keep: usize,
    /// Where each backup is also copied.
    pub sftp: Option<crate::config::SftpTarget>,
}

/// When scheduled backups run.
#[derive(Clone, Debug)]
pub enum When {
    /// Every so often, the first one interval after start (`backup.interval_secs`).
    Every(Duration),
    /// At the times of a schedule (`backup.schedule`, UTC).
    At(crate::config::cron::CronSpec),
}

impl When {
    /// The configured schedule, if any (the config was validated).
    pub fn of(config: &crate::config::BackupConfig) -> Option<When> {
        if let Some(spec) = &config.schedule {
            return crate::config::cron::CronSpec::parse(spec)
                .ok()
                .map(When::At);
        }
        (config.interval_secs > 0).then(|| When::Every(Duration::from_secs(config.interval_secs)))
    }
}

/// Sleeps until the next scheduled time; `None` when the schedule never fires again.
pub async fn wait_for_turn(when: &When, tick: &mut Option<tokio::time::Interval>) -> Option<()> {
    match when {
        When::Every(every) => {
            let tick = tick.get_or_insert_with(|| {
                // The first tick of an interval is immediate: start one interval from now.
                tokio::time::interval_at(tokio::time::Instant::now() + *every, *every)
            });
            tick.tick().await;
        }
        When::At(spec) => {
            let next = spec.next_after(crate::clock::now_secs())?;
            // Sleep in bounds so a changed wall clock is noticed within a minute.
            loop {
                let left = next - crate::clock::now_secs();
                if left <= 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(left.min(60) as u64)).await;
            }
        }
    }
    Some(())
}

/// One scheduled backup of `store` (keys rewrapped under `kek`'s backup key): write, log,
/// audit, prune. The daemon runs it at each turn of `s.when` (see [`wait_for_turn`]).
pub fn turn(
    store: &Store,
    kek: &KekSlot,
    audit: &Audit,
    s: &Schedule,
) -> Result<BackupInfo, BackupError> {
    let now = crate::clock::now_secs();
    let result = create(store, kek, &s.dir, now, &mut |_, _| {});
    let (outcome, detail) = match &result {
        Ok(b) => (
            Outcome::Success,
            format!("scheduled backup {} sha256 {}", b.path.display(), b.sha256),
        ),
        Err(e) => (Outcome::Failure, format!("scheduled backup failed: {e}")),
    };
    let event = AuditEvent {
        event: "custody",
        user: Some("scheduler".into()),
        operation: Some(crate::kmip::custody::OP_BACKUP),
        outcome: Some(outcome),
        detail: Some(detail),
        ..AuditEvent::default()
    };
    if let Err(e) = audit.record(vec![event]) {
        tracing::error!(error = %e, "cannot record the scheduled backup");
    }
    let info = result?;
    log_backup(&s.dir, now, &info, "scheduler")?;
    if let Some(target) = &s.sftp {
        let _ = copy_remote(audit, &s.dir, target, &info, now, "scheduler");
    }
    prune(&s.dir, s.keep)?;
    Ok(info)
}

/// Copies the backup over SFTP and records the outcome in the backup log of `dir` and the
/// audit journal as `by`; a failure is logged and the local backup stays. Manual backups
/// (`akm backup`) and scheduled ones both come here. Returns the remote path or the error.
pub fn copy_remote(
    audit: &Audit,
    dir: &Path,
    target: &crate::config::SftpTarget,
    info: &BackupInfo,
    now: i64,
    by: &str,
) -> Result<String, String> {
    let result = target.upload(&info.path);
    let line = match &result {
        Ok(remote) => format!(
            "event=upload remote={remote} sha256={} outcome=success",
            info.sha256
        ),
        Err(e) => format!(
            "event=upload destination={} outcome=failure error={e}",
            target.destination
        ),
    };
    let log = super::log_path(dir);
    let stamped = format!(
        "time={} {}\n",
        crate::audit::format_time_ms(now * 1000),
        line.replace('\n', " ")
    );
    if let Err(e) = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, stamped.as_bytes()))
    {
        tracing::error!(error = %e, "cannot append to the backup log");
    }
    let event = AuditEvent {
        event: "custody",
        user: Some(by.to_owned()),
        operation: Some(crate::kmip::custody::OP_BACKUP),
        outcome: Some(if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }),
        detail: Some(format!("sftp {line}")),
        ..AuditEvent::default()
    };
    if let Err(e) = audit.record(vec![event]) {
        tracing::error!(error = %e, "cannot record the backup upload");
    }
    if let Err(e) = &result {
        tracing::error!(error = %e, "copying the backup over SFTP failed");
    }
    result.map_err(|e| e.to_string())
}

/// Deletes the oldest `akm-*.akmbak` files in `dir` beyond the newest `keep` (names sort by
/// time).
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let io = |source| BackupError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("akm-") && n.ends_with(".akmbak"))
        })
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep);
    let old: Vec<PathBuf> = files.drain(..excess).collect();
    for p in &old {
        std::fs::remove_file(p).map_err(io)?;
        tracing::info!(file = %p.display(), "old backup deleted (backup.keep)");
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_backups_only() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "akm-20260101T000000Z-a.akmbak",
            "akm-20260102T000000Z-b.akmbak",
            "akm-20260103T000000Z-c.akmbak",
            "backup.log",
            "other.akmbak",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let gone = prune(dir.path(), 2).unwrap();
        assert_eq!(gone, vec![dir.path().join("akm-20260101T000000Z-a.akmbak")]);
        assert!(dir.path().join("backup.log").exists());
        assert!(dir.path().join("other.akmbak").exists());
        assert!(prune(dir.path(), 2).unwrap().is_empty());
    }
}
