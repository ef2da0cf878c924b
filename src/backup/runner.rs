//! The backup module's side of ops' [`BackupRunner`] port: the online backups the Backup
//! custody operation (`akm backup`) asks for, written into `[backup] dir`, logged to its
//! backup log and copied to `[backup.sftp]` like scheduled ones.

use super::{create, log_backup, schedule::copy_remote, BackupInfo};
use crate::audit::Audit;
use crate::config::SftpTarget;
use crate::crypto::slot::KekSlot;
use crate::ops::BackupRunner;
use crate::store::Store;
use std::path::PathBuf;

/// Takes backups into `dir`, copying each to `sftp` when set.
#[derive(Debug)]
pub struct Runner {
    /// The backup directory (`[backup] dir`).
    pub dir: PathBuf,
    /// Where every backup is also copied (`[backup.sftp]`).
    pub sftp: Option<SftpTarget>,
}

impl BackupRunner for Runner {
    fn write(&self, store: &Store, kek: &KekSlot, now: i64) -> Result<BackupInfo, String> {
        create(store, kek, &self.dir, now, &mut |_, _| {}).map_err(|e| e.to_string())
    }

    fn publish(
        &self,
        audit: &Audit,
        info: &BackupInfo,
        now: i64,
        by: &str,
    ) -> Option<Result<String, String>> {
        if let Err(e) = log_backup(&self.dir, now, info, by) {
            tracing::error!(error = %e, "cannot append to the backup log");
        }
        tracing::info!(file = %info.path.display(), sha256 = %info.sha256, bytes = info.bytes, "backup written");
        let target = self.sftp.as_ref()?;
        Some(copy_remote(audit, &self.dir, target, info, now, by))
    }
}
