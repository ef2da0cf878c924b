//! akm's administration operations (KMIP vendor extensions, see `kmip::extension`): the user
//! and group records of the system tables, and the access policy of keys. The dispatcher lets
//! only administrators reach them, except Get Key Policy, open to whoever may read the key's
//! attributes; every change goes through the store's writer and its change log (Revoke
//! Certificate through `revoke_certificate`).

use super::{Call, Caller, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::extension::*;
use crate::policy::{AccessMode, Account, KeyPolicy, Operations};
use crate::store::AccountKind;
use crate::ttlv::{Tag, Ttlv};

/// An administration operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// List Accounts.
    ListAccounts,
    /// Set Account.
    SetAccount,
    /// Delete Account.
    DeleteAccount,
    /// Get Key Policy.
    GetKeyPolicy,
    /// Set Key Policy.
    SetKeyPolicy,
    /// Reload TLS (the older name of Reload Configuration).
    ReloadTls,
    /// Reload Configuration.
    ReloadConfig,
    /// Revoke Certificate (a client certificate of the trusted CA, cluster-wide).
    RevokeCertificate,
}

/// The administration operation with this Operation value, if it is one.
pub fn admin_operation(operation: u32) -> Option<AdminOp> {
    Some(match operation {
        OP_LIST_ACCOUNTS => AdminOp::ListAccounts,
        OP_SET_ACCOUNT => AdminOp::SetAccount,
        OP_DELETE_ACCOUNT => AdminOp::DeleteAccount,
        OP_GET_KEY_POLICY => AdminOp::GetKeyPolicy,
        OP_SET_KEY_POLICY => AdminOp::SetKeyPolicy,
        OP_RELOAD_TLS => AdminOp::ReloadTls,
        OP_RELOAD_CONFIG => AdminOp::ReloadConfig,
        OP_REVOKE_CERTIFICATE => AdminOp::RevokeCertificate,
        _ => return None,
    })
}

/// Runs an administration operation. The dispatcher has checked that the caller is an
/// administrator, except for Get Key Policy, which checks the key's own policy.
pub(super) fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>, op: AdminOp) -> Result<Reply, OpError> {
    let payload = match op {
        AdminOp::ListAccounts => list(ctx, call)?,
        AdminOp::SetAccount => set_account(ctx, who, call)?,
        AdminOp::DeleteAccount => delete_account(ctx, call)?,
        AdminOp::GetKeyPolicy => get_key_policy(ctx, who, call)?,
        AdminOp::SetKeyPolicy => set_key_policy(ctx, call)?,
        AdminOp::ReloadTls | AdminOp::ReloadConfig => reload(ctx)?,
        AdminOp::RevokeCertificate => revoke_certificate(ctx, who, call)?,
    };
    Ok(Reply { payload, uid: None })
}

fn kind(call: &Call<'_>) -> Result<AccountKind, OpError> {
    match call.payload.child(TAG_ACCOUNT_KIND).map(Ttlv::as_enum) {
        Some(Some(KIND_USER)) => Ok(AccountKind::User),
        Some(Some(KIND_GROUP)) => Ok(AccountKind::Group),
        Some(_) => Err(OpError::InvalidField(
            "Account Kind must be 1 (user) or 2 (group)".into(),
        )),
        None => Err(OpError::InvalidMessage("missing Account Kind".into())),
    }
}

fn text<'a>(parent: &'a Ttlv, tag: Tag, what: &str) -> Result<Option<&'a str>, OpError> {
    match parent.child(tag) {
        None => Ok(None),
        Some(t) => t
            .as_text()
            .map(Some)
            .ok_or_else(|| OpError::InvalidField(format!("{what} must be a Text String"))),
    }
}

/// A user or group name: what a certificate CN or OU can hold, bounded.
fn check_name(name: &str) -> Result<(), OpError> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(OpError::InvalidField(
            "Account Name must be 1 to 256 characters without control characters".into(),
        ));
    }
    Ok(())
}

fn account_ttlv(name: &str, a: &Account) -> Ttlv {
    Ttlv::structure(
        TAG_ACCOUNT,
        vec![
            Ttlv::text(TAG_ACCOUNT_NAME, name),
            Ttlv::boolean(TAG_ENABLED, a.enabled),
            Ttlv::text(TAG_OPERATIONS, a.operations.to_list()),
        ],
    )
}

fn list(ctx: &Ctx, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let kind = kind(call)?;
    Ok(ctx
        .store
        .accounts(kind)?
        .iter()
        .map(|(name, a)| account_ttlv(name, a))
        .collect())
}

/// Refuses a change that would leave no administrator able to undo it: disabling the
/// administrators group, or the calling administrator's own user record.
fn check_not_lockout(who: &Caller, kind: AccountKind, name: &str) -> Result<(), OpError> {
    let locks_out = match kind {
        AccountKind::Group => name == who.settings().admin_group,
        AccountKind::User => name == who.cn,
    };
    if locks_out {
        return Err(OpError::InvalidField(format!(
            "disabling {} {name:?} would lock administrators out; change access.admin_group \
             or ask another administrator",
            kind.as_str()
        )));
    }
    Ok(())
}

fn set_account(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let kind = kind(call)?;
    let acct = call
        .payload
        .child(TAG_ACCOUNT)
        .ok_or_else(|| OpError::InvalidMessage("missing Account".into()))?;
    let name = text(acct, TAG_ACCOUNT_NAME, "Account Name")?
        .ok_or_else(|| OpError::InvalidMessage("missing Account Name".into()))?
        .to_owned();
    check_name(&name)?;
    let enabled = match acct.child(TAG_ENABLED) {
        None => None,
        Some(t) => Some(
            t.as_bool()
                .ok_or_else(|| OpError::InvalidField("Enabled must be a Boolean".into()))?,
        ),
    };
    if enabled == Some(false) {
        check_not_lockout(who, kind, &name)?;
    }
    let operations = text(acct, TAG_OPERATIONS, "Operations")?
        .map(|list| {
            Operations::parse_list(list)
                .map_err(|bad| OpError::InvalidField(format!("unknown operation {bad:?}")))
        })
        .transpose()?;
    let stored = ctx.store.write(move |tx| {
        let mut a = tx.account(kind, &name)?.unwrap_or(Account {
            enabled: true,
            operations: Operations::none(),
        });
        if let Some(e) = enabled {
            a.enabled = e;
        }
        if let Some(o) = operations {
            a.operations = o;
        }
        tx.put_account(kind, &name, &a)?;
        Ok::<_, OpError>((name, a))
    })?;
    Ok(vec![account_ttlv(&stored.0, &stored.1)])
}

fn delete_account(ctx: &Ctx, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let kind = kind(call)?;
    let name = text(call.payload, TAG_ACCOUNT_NAME, "Account Name")?
        .ok_or_else(|| OpError::InvalidMessage("missing Account Name".into()))?
        .to_owned();
    if !ctx.store.write(move |tx| tx.delete_account(kind, &name))? {
        return Err(OpError::NotFound);
    }
    Ok(Vec::new())
}

fn policy_ttlv(uid: &str, p: &KeyPolicy) -> Vec<Ttlv> {
    let mut out = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid),
        Ttlv::text(TAG_OWNER, p.owner.clone()),
    ];
    if let Some(g) = &p.group {
        out.push(Ttlv::text(TAG_OWNER_GROUP, g.clone()));
    }
    out.push(Ttlv::text(TAG_ACCESS_MODE, p.mode.as_str()));
    out
}

fn get_key_policy(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let uid = call.uid()?;
    let obj = super::load_for(
        ctx,
        who,
        &uid,
        crate::kmip::enums::operation::GET_ATTRIBUTES,
    )?;
    Ok(policy_ttlv(&uid, &obj.key_policy()))
}

fn set_key_policy(ctx: &Ctx, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let uid = call.uid()?;
    let owner = text(call.payload, TAG_OWNER, "Owner")?.map(str::to_owned);
    let group = text(call.payload, TAG_OWNER_GROUP, "Owner Group")?.map(str::to_owned);
    let mode = text(call.payload, TAG_ACCESS_MODE, "Access Mode")?
        .map(|m| {
            AccessMode::parse(m).ok_or_else(|| {
                OpError::InvalidField(format!(
                    "Access Mode {m:?} is not any, group, user or user-and-group"
                ))
            })
        })
        .transpose()?;
    if let Some(o) = &owner {
        check_name(o)?;
    }
    if let Some(g) = group.as_deref().filter(|g| !g.is_empty()) {
        check_name(g)?;
    }
    let id = uid.clone();
    let policy = ctx.store.write(move |tx| {
        let row = tx.get(&id)?.ok_or(OpError::NotFound)?;
        // From the columns alone: the policy of a key whose record does not decode can
        // still be changed.
        let mut p = super::Object::row_policy(&row)?;
        if let Some(o) = owner {
            p.owner = o;
        }
        if let Some(g) = group {
            p.group = Some(g).filter(|g| !g.is_empty());
        }
        if let Some(m) = mode {
            p.mode = m;
        }
        if p.mode.needs_group() && p.group.is_none() {
            return Err(OpError::InvalidField(format!(
                "access mode {} needs an owner group",
                p.mode
            )));
        }
        tx.set_key_policy(&id, &p)?;
        Ok(p)
    })?;
    Ok(policy_ttlv(&uid, &policy))
}

/// Reload Configuration (and Reload TLS): the reload path SIGHUP takes, which logs the
/// outcome itself; a refusal goes back to the administrator with its reason.
fn reload(ctx: &Ctx) -> Result<Vec<Ttlv>, OpError> {
    let reload = ctx
        .reload
        .as_ref()
        .ok_or(OpError::FeatureNotSupported("configuration reload"))?;
    let restart = (reload.0)(ctx).map_err(OpError::ReloadFailed)?;
    Ok(restart
        .into_iter()
        .map(|key| Ttlv::text(TAG_RESTART_KEY, key))
        .collect())
}

/// Revoke Certificate: the certificate the payload names, revoked cluster-wide at once.
fn revoke_certificate(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Vec<Ttlv>, OpError> {
    let issuer = text(call.payload, TAG_CERT_ISSUER, "Certificate Issuer")?
        .ok_or_else(|| OpError::InvalidMessage("missing Certificate Issuer".into()))?;
    let serial = text(call.payload, TAG_CERT_SERIAL, "Certificate Serial")?
        .ok_or_else(|| OpError::InvalidMessage("missing Certificate Serial".into()))?;
    let newly = super::revoke_certificate::revoke_online(ctx, &who.cn, issuer, serial, call.now)?;
    Ok(vec![
        Ttlv::text(TAG_CERT_ISSUER, issuer),
        Ttlv::text(TAG_CERT_SERIAL, serial),
        Ttlv::boolean(TAG_REVOKED_NOW, newly),
    ])
}
