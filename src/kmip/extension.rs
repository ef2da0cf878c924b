//! akm's KMIP vendor extensions: the administration operations (Operation values in the
//! extension range 8XXXXXXX, KMIP 1.4 §9.1.3.2.27) and the tags of their payloads (extension
//! tags 54XXXX, KMIP 1.4 §9.1.3.1). Only members of the configured administrators group may
//! call them; `akm user`, `akm group` and `akm key policy` are their client.
//!
//! Payloads (Request → Response):
//! - List Accounts: Account Kind → one Account per record, by name.
//! - Set Account: Account Kind, Account (Name; Enabled and Operations optional: a new record
//!   defaults to enabled with no operations, an existing one keeps what is not given) → the
//!   Account as stored.
//! - Delete Account: Account Kind, Account Name → empty (Item Not Found if none).
//! - Get Key Policy: Unique Identifier → Unique Identifier, Owner, Owner Group (absent if
//!   none), Access Mode.
//! - Set Key Policy: Unique Identifier; Owner, Owner Group (empty text: none), Access Mode,
//!   each optional → the resulting policy, as Get Key Policy.

use crate::ttlv::Tag;

/// List the user or group records.
pub const OP_LIST_ACCOUNTS: u32 = 0x8000_0001;
/// Create or update a user or group record.
pub const OP_SET_ACCOUNT: u32 = 0x8000_0002;
/// Delete a user or group record.
pub const OP_DELETE_ACCOUNT: u32 = 0x8000_0003;
/// Show a key's access policy.
pub const OP_GET_KEY_POLICY: u32 = 0x8000_0004;
/// Change a key's access policy.
pub const OP_SET_KEY_POLICY: u32 = 0x8000_0005;

/// Enumeration: which table ([`KIND_USER`] or [`KIND_GROUP`]).
pub const TAG_ACCOUNT_KIND: Tag = Tag(0x54_0001);
/// Structure: one user or group record.
pub const TAG_ACCOUNT: Tag = Tag(0x54_0002);
/// Text String: the user (CN) or group (OU) name.
pub const TAG_ACCOUNT_NAME: Tag = Tag(0x54_0003);
/// Boolean: whether the record is enabled.
pub const TAG_ENABLED: Tag = Tag(0x54_0004);
/// Text String: granted operations, comma-separated (`get,locate`; `read` and `all` too).
pub const TAG_OPERATIONS: Tag = Tag(0x54_0005);
/// Text String: a key's owner user.
pub const TAG_OWNER: Tag = Tag(0x54_0006);
/// Text String: a key's owner group.
pub const TAG_OWNER_GROUP: Tag = Tag(0x54_0007);
/// Text String: a key's access mode (`any`, `group`, `user`, `user-and-group`).
pub const TAG_ACCESS_MODE: Tag = Tag(0x54_0008);

/// Account Kind: the users table.
pub const KIND_USER: u32 = 1;
/// Account Kind: the groups table.
pub const KIND_GROUP: u32 = 2;
