//! akm's KMIP vendor extensions: the administration operations (Operation values in the
//! extension range 8XXXXXXX, KMIP 1.4 §9.1.3.2.27) and the tags of their payloads (extension
//! tags 54XXXX, KMIP 1.4 §9.1.3.1), and the names of akm's vendor attributes (`x-akm-*`, a new
//! object's access policy). Only members of the configured administrators group may
//! call them, except Get Key Policy, which whoever may Get Attributes of the key may call;
//! `akm user`, `akm group`, `akm key policy` and `akm reload` (and `akm tls reload`) are their client.
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
//! - Reload Configuration: empty → one Restart Key per changed key that waits for a restart.
//!   The server re-reads its whole configuration file and applies what can change live (as
//!   SIGHUP does); if the new configuration is invalid
//!   it is refused with General Failure and a Result Message naming the key and the file, and
//!   the previous configuration stays in force.
//! - Reload TLS: the same as Reload Configuration (its older name, kept for `akm tls reload`).
//! - Revoke Certificate: Certificate Issuer (the issuing CA's subject, as the revocation
//!   records name it), Certificate Serial (hex) → the same two, and Revoked Now (false when it
//!   was already revoked). The issuer must be a CA of `tls.client_ca`. Recorded in the store
//!   (mirrored to every peer) and enforced at once; only ever added. The console's
//!   certificates page is its client.

use crate::ttlv::{Tag, Ttlv};

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
/// Reload the server's TLS configuration (CA bundle, pins, CRLs): new handshakes use it, and
/// open connections of certificates it revokes close at their next request. Since the whole
/// configuration became reloadable this does exactly what [`OP_RELOAD_CONFIG`] does.
pub const OP_RELOAD_TLS: u32 = 0x8000_0006;
/// Reload the server's configuration file: TLS files, `[access]`, `[log]` levels; the same
/// path as SIGHUP.
pub const OP_RELOAD_CONFIG: u32 = 0x8000_0007;
/// Revoke a client certificate of the trusted client CA, cluster-wide and at once.
pub const OP_REVOKE_CERTIFICATE: u32 = 0x8000_0008;

// akm's vendor attributes: a new object's access policy, given in Create or Register.

/// The attribute naming a new object's access mode (`any`, `group`, `user`,
/// `user-and-group`).
pub const ACCESS_MODE_ATTR: &str = "x-akm-access-mode";
/// The attribute naming a new object's owner group (one of the caller's OUs, or any group
/// for an administrator).
pub const OWNER_GROUP_ATTR: &str = "x-akm-owner-group";
/// The attribute naming a new object's owner user (administrators only).
pub const OWNER_ATTR: &str = "x-akm-owner";
/// The prefix of akm's access attributes: read-only after creation.
pub const ACCESS_ATTR_PREFIX: &str = "x-akm-";

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
/// Text String: a configuration key (`server.listen`) that a reload found changed but that
/// takes effect only at the next restart.
pub const TAG_RESTART_KEY: Tag = Tag(0x54_0009);
/// Text String: the issuer (the CA's subject) of a client certificate to revoke.
pub const TAG_CERT_ISSUER: Tag = Tag(0x54_000A);
/// Text String: the serial number of a client certificate to revoke, hex.
pub const TAG_CERT_SERIAL: Tag = Tag(0x54_000B);
/// Boolean: whether Revoke Certificate newly revoked it (false: it already was).
pub const TAG_REVOKED_NOW: Tag = Tag(0x54_000C);

/// Account Kind: the users table.
pub const KIND_USER: u32 = 1;
/// Account Kind: the groups table.
pub const KIND_GROUP: u32 = 2;

/// A user or group record as the administration operations carry it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccountInfo {
    /// The user (CN) or group (OU) name.
    pub name: String,
    /// Whether the record is enabled.
    pub enabled: bool,
    /// The granted operations, by name.
    pub operations: Vec<String>,
}

/// A key's access policy as the administration operations carry it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyPolicyInfo {
    /// The key's Unique Identifier.
    pub uid: String,
    /// Owner user.
    pub owner: String,
    /// Owner group, if any.
    pub group: Option<String>,
    /// Access mode.
    pub mode: String,
}

/// The Account Kind item for `users` (true) or groups (false).
pub fn kind_item(user: bool) -> Ttlv {
    Ttlv::enumeration(TAG_ACCOUNT_KIND, if user { KIND_USER } else { KIND_GROUP })
}

/// List Accounts request payload.
pub fn list_accounts_payload(user: bool) -> Vec<Ttlv> {
    vec![kind_item(user)]
}

/// Set Account request payload; `None` fields keep the stored value.
pub fn set_account_payload(
    user: bool,
    name: &str,
    enabled: Option<bool>,
    operations: Option<&str>,
) -> Vec<Ttlv> {
    let mut account = vec![Ttlv::text(TAG_ACCOUNT_NAME, name)];
    if let Some(e) = enabled {
        account.push(Ttlv::boolean(TAG_ENABLED, e));
    }
    if let Some(o) = operations {
        account.push(Ttlv::text(TAG_OPERATIONS, o));
    }
    vec![kind_item(user), Ttlv::structure(TAG_ACCOUNT, account)]
}

/// Delete Account request payload.
pub fn delete_account_payload(user: bool, name: &str) -> Vec<Ttlv> {
    vec![kind_item(user), Ttlv::text(TAG_ACCOUNT_NAME, name)]
}

/// Set Key Policy request payload; `None` fields keep the stored value, an empty group
/// clears it.
pub fn set_key_policy_payload(
    uid: &str,
    owner: Option<&str>,
    group: Option<&str>,
    mode: Option<&str>,
) -> Vec<Ttlv> {
    let mut p = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)];
    if let Some(o) = owner {
        p.push(Ttlv::text(TAG_OWNER, o));
    }
    if let Some(g) = group {
        p.push(Ttlv::text(TAG_OWNER_GROUP, g));
    }
    if let Some(m) = mode {
        p.push(Ttlv::text(TAG_ACCESS_MODE, m));
    }
    p
}

/// Revoke Certificate request payload.
pub fn revoke_certificate_payload(issuer: &str, serial: &str) -> Vec<Ttlv> {
    vec![
        Ttlv::text(TAG_CERT_ISSUER, issuer),
        Ttlv::text(TAG_CERT_SERIAL, serial),
    ]
}

fn text_of(t: &Ttlv, tag: Tag) -> Option<String> {
    t.child(tag).and_then(Ttlv::as_text).map(str::to_owned)
}

/// The accounts of a List Accounts or Set Account response payload; `None` if malformed.
pub fn parse_accounts(payload: &Ttlv) -> Option<Vec<AccountInfo>> {
    payload
        .children_with(TAG_ACCOUNT)
        .map(|a| {
            Some(AccountInfo {
                name: text_of(a, TAG_ACCOUNT_NAME)?,
                enabled: a.child(TAG_ENABLED)?.as_bool()?,
                operations: text_of(a, TAG_OPERATIONS)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// The policy of a Get or Set Key Policy response payload; `None` if malformed.
pub fn parse_key_policy(payload: &Ttlv) -> Option<KeyPolicyInfo> {
    Some(KeyPolicyInfo {
        uid: text_of(payload, Tag::UNIQUE_IDENTIFIER)?,
        owner: text_of(payload, TAG_OWNER)?,
        group: text_of(payload, TAG_OWNER_GROUP),
        mode: text_of(payload, TAG_ACCESS_MODE)?,
    })
}
