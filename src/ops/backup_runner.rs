//! The port through which the Backup custody operation takes a backup. Backups are made by
//! the `backup` module, a layer above ops: ops names only this trait and the [`BackupInfo`]
//! that crosses it, and the composition root (`app::CtxBuilder::configured`) puts backup's
//! implementation in the context. A context without one (no backup directory) refuses the
//! operation.

use crate::audit::Audit;
use crate::crypto::slot::KekSlot;
use crate::store::Store;
use std::path::PathBuf;

/// A backup written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// The KEK its data key is wrapped under.
    pub kek_id: String,
}

/// Takes backups for the Backup operation (blocking, like the operation itself). The
/// operation audits the write between the two steps, with the caller's identity.
pub trait BackupRunner: Send + Sync + std::fmt::Debug {
    /// Writes an online backup of `store` (keys under `kek`'s backup key) stamped `now`; the
    /// error says why it failed, for the audit record and the client.
    fn write(&self, store: &Store, kek: &KekSlot, now: i64) -> Result<BackupInfo, String>;

    /// Records the backup `info`, asked for by `by`, in the backup log, then copies it
    /// off-site where that is configured (the copy audited in `audit`). Returns the copy's
    /// outcome, the remote path or why it failed, or `None` when there is no off-site copy;
    /// the local backup stays either way.
    fn publish(
        &self,
        audit: &Audit,
        info: &BackupInfo,
        now: i64,
        by: &str,
    ) -> Option<Result<String, String>>;
}
