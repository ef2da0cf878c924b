//! akm's KMIP vendor extensions for KEK custody: the Seal Status and Unseal operations
//! (extension Operation values, KMIP 1.4 §9.1.3.2.27, in their own block 0x800001XX so they
//! never collide with the administration block) and the tags of their payloads (extension
//! tags 0x5401XX). Administrators only; a sealed server answers these, Query and Discover
//! Versions, and refuses everything else. `akm unseal` and `akm seal-status` are the client.
//!
//! Payloads (Request → Response):
//! - Seal Status: empty → Sealed, Seal Scheme, Unseal Threshold, Unseal Progress, KEK Id.
//! - Backup: empty → Backup File, Backup Bytes, Backup SHA-256, KEK Id (refused while
//!   sealed, like every key operation).
//! - Rotate KEK: Batch Limit (optional) → KEK Id (the new, current KEK), Rewrapped,
//!   Remaining, and one Destroyed KEK Id per retired KEK destroyed when Remaining reaches 0.
//!   The first call starts a rotation (a new KEK wraps from then on; the old one still
//!   unwraps); each call rewraps a batch; calling again after an interruption or restart
//!   resumes. `akm kek rotate` loops until Remaining is 0, showing progress.
//! - Authorize: Authorized User, Guarded Operation, Window Minutes (optional) → the same
//!   and Window Until; or Request Id alone (`akm approve`): opens the window a refused
//!   attempt asked for. The caller must be another administrator than the user named.
//! - Unseal: one of Unseal Share (Text String, a share file's line) or Unseal Passphrase
//!   (Byte String) → as Seal Status. A wrong, damaged, foreign or repeated share is refused
//!   with Invalid Field and the reason; the shares accepted so far stay.

use crate::ttlv::Tag;

/// Where the KEK stands.
pub const OP_SEAL_STATUS: u32 = 0x8000_0100;
/// Offer a custodian share or the passphrase.
pub const OP_UNSEAL: u32 = 0x8000_0101;
/// Take an online backup into the server's backup directory.
pub const OP_BACKUP: u32 = 0x8000_0102;
/// Rotate the KEK: start a rotation if none runs, rewrap one batch of stored keys.
pub const OP_ROTATE_KEK: u32 = 0x8000_0103;
/// Open a dual-control authorization window for another user.
pub const OP_AUTHORIZE: u32 = 0x8000_0104;

/// Boolean: whether the KEK is still sealed.
pub const TAG_SEALED: Tag = Tag(0x54_0101);
/// Text String: `key-file`, `shares` or `passphrase`.
pub const TAG_SEAL_SCHEME: Tag = Tag(0x54_0102);
/// Integer: shares needed.
pub const TAG_UNSEAL_THRESHOLD: Tag = Tag(0x54_0103);
/// Integer: shares accepted so far.
pub const TAG_UNSEAL_PROGRESS: Tag = Tag(0x54_0104);
/// Text String: the KEK's (non-secret) identifier.
pub const TAG_KEK_ID: Tag = Tag(0x54_0105);
/// Text String: one custodian share, as written to its file.
pub const TAG_UNSEAL_SHARE: Tag = Tag(0x54_0106);
/// Byte String: the passphrase.
pub const TAG_UNSEAL_PASSPHRASE: Tag = Tag(0x54_0107);

/// Text String: the backup file written (a path on the server).
pub const TAG_BACKUP_FILE: Tag = Tag(0x54_0108);
/// Long Integer: its size in bytes.
pub const TAG_BACKUP_BYTES: Tag = Tag(0x54_0109);
/// Text String: SHA-256 of the whole file, hex.
pub const TAG_BACKUP_SHA256: Tag = Tag(0x54_010A);

/// Integer: most keys to rewrap in this call (default 500, at most 10000).
pub const TAG_BATCH_LIMIT: Tag = Tag(0x54_010B);
/// Integer: keys rewrapped by this call.
pub const TAG_REWRAPPED: Tag = Tag(0x54_010C);
/// Integer: keys still wrapped by a retired KEK.
pub const TAG_REMAINING: Tag = Tag(0x54_010D);
/// Text String: a retired KEK no stored key references any more: out of use, kept in the
/// KEK archive (wrapped under the current KEK) only to restore backups taken under it.
pub const TAG_DESTROYED_KEK_ID: Tag = Tag(0x54_010E);

/// Text String: the user (certificate CN) an authorization window lets act.
pub const TAG_AUTHORIZED_USER: Tag = Tag(0x54_010F);
/// Text String: the guarded operation (`destroy`, `kek-rotate`, `backup`, `policy`).
pub const TAG_GUARDED_OPERATION: Tag = Tag(0x54_0110);
/// Integer: the window's length in minutes.
pub const TAG_WINDOW_MINUTES: Tag = Tag(0x54_0111);
/// Date-Time: when the window closes.
pub const TAG_WINDOW_UNTIL: Tag = Tag(0x54_0112);

/// Text String: a pending dual-control request's id (Authorize approves it).
pub const TAG_REQUEST_ID: Tag = Tag(0x54_0113);

/// Text String: where a manual backup was copied over SFTP (`user@host:path`).
pub const TAG_BACKUP_UPLOADED: Tag = Tag(0x54_0120);
/// Text String: why copying a manual backup over SFTP failed (the local backup stays).
pub const TAG_BACKUP_UPLOAD_ERROR: Tag = Tag(0x54_0121);
/// Text String: a retired KEK kept, wrapped under the current one, to restore older backups.
pub const TAG_ARCHIVED_KEK_ID: Tag = Tag(0x54_0122);
