//! The caller as the operations see it: the certificate's [`Principal`], the system-table
//! records that name it (loaded once per request message), the access settings, and the
//! record of every access decision taken for it. Operations ask it for decisions; it calls
//! the pure `policy::decide` and turns a denial into Permission Denied (or Item Not Found
//! when `hide_existence` is set). Also derives the access policy of a new object from the
//! request (`x-akm-*` attributes) and the caller's identity.

use super::Ctx;
use crate::error::OpError;
use crate::identity::Principal;
use crate::kmip::attributes::Attr;
use crate::policy::{self, AccessMode, Accounts, Decision, KeyPolicy, Settings};
use crate::store::Located;
use crate::ttlv::Value;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

pub use crate::kmip::extension::{
    ACCESS_ATTR_PREFIX, ACCESS_MODE_ATTR, OWNER_ATTR, OWNER_GROUP_ATTR,
};

/// One access decision, for the audit log: who, what, on which object, and the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRecord {
    /// The batch item (0-based) the decision was taken for.
    pub item: usize,
    /// The KMIP Operation value.
    pub operation: u32,
    /// The object, when the decision was about one.
    pub uid: Option<String>,
    /// The caller's user (certificate CN).
    pub user: String,
    /// The caller's groups (certificate OUs).
    pub groups: Vec<String>,
    /// The caller's certificate serial (hex).
    pub serial: String,
    /// The caller's certificate SHA-256 fingerprint (hex).
    pub fingerprint: String,
    /// The outcome and why.
    pub decision: Decision,
}

/// A user or group name given in an `x-akm-` attribute: what a certificate CN or OU can be.
fn check_name(attr: &str, name: String) -> Result<String, OpError> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(OpError::InvalidField(format!(
            "{attr} must be 1 to 256 characters without control characters"
        )));
    }
    Ok(name)
}

/// The caller of one request message. Cheap to clone (the writer thread gets a clone).
#[derive(Clone, Debug)]
pub struct Caller {
    principal: Arc<Principal>,
    accounts: Arc<Accounts>,
    settings: Arc<Settings>,
    item: usize,
    records: Arc<Mutex<Vec<AccessRecord>>>,
}

impl Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl Caller {
    /// Loads the records that name `who`.
    pub fn load(ctx: &Ctx, who: &Principal) -> Result<Caller, OpError> {
        let accounts = ctx.store.accounts_for(&who.cn, &who.ous)?;
        Ok(Caller::new(who.clone(), accounts, ctx.access.current()))
    }

    /// A caller with the given records and settings.
    pub fn new(principal: Principal, accounts: Accounts, settings: Arc<Settings>) -> Caller {
        Caller {
            principal: Arc::new(principal),
            accounts: Arc::new(accounts),
            settings,
            item: 0,
            records: Arc::default(),
        }
    }

    /// Sets the batch item later decisions belong to.
    pub(super) fn at_item(&mut self, item: usize) {
        self.item = item;
    }

    /// Takes the decisions recorded so far.
    pub(super) fn take_records(&self) -> Vec<AccessRecord> {
        self.records
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.accounts.user.as_ref().is_none_or(|u| u.enabled)
            && policy::is_admin(&self.principal, &self.accounts, &self.settings)
    }

    /// The same caller judged as a key user only, without administrator rights (separation
    /// of duties: an administrator reads key material only if also granted as a key user).
    /// Its decisions are recorded with the caller's.
    pub fn without_admin(&self) -> Caller {
        let mut settings = (*self.settings).clone();
        // No certificate OU holds a NUL, so no one is an administrator under these settings.
        settings.admin_group = "\0".into();
        Caller {
            settings: Arc::new(settings),
            ..self.clone()
        }
    }

    /// The access settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn decide(&self, key: Option<&KeyPolicy>, uid: Option<&str>, operation: u32) -> Decision {
        let decision = policy::decide(
            &self.principal,
            &self.accounts,
            &self.settings,
            key,
            operation,
        );
        if !decision.allowed {
            tracing::info!(user = %self.cn, operation = %crate::audit::operation_name(operation), uid, reason = ?decision.reason, "access denied");
        }
        if let Ok(mut records) = self.records.lock() {
            records.push(AccessRecord {
                item: self.item,
                operation,
                uid: uid.map(str::to_owned),
                user: self.principal.cn.clone(),
                groups: self.principal.ous.clone(),
                serial: self.principal.serial.clone(),
                fingerprint: self.principal.fingerprint.clone(),
                decision,
            });
        }
        decision
    }

    /// Requires that the caller may perform `operation` at all (no object in view).
    pub fn require(&self, operation: u32) -> Result<(), OpError> {
        match self.decide(None, None, operation).allowed {
            true => Ok(()),
            false => Err(OpError::PermissionDenied),
        }
    }

    /// Requires that the caller may perform `operation` on object `uid` with policy `key`. A
    /// denial is Permission Denied, or Item Not Found when existence is hidden.
    pub fn require_key(&self, key: &KeyPolicy, uid: &str, operation: u32) -> Result<(), OpError> {
        match self.decide(Some(key), Some(uid), operation).allowed {
            true => Ok(()),
            false if self.settings.hide_existence => Err(OpError::NotFound),
            false => Err(OpError::PermissionDenied),
        }
    }

    /// Whether Locate may list this object (not recorded: one Locate may weigh thousands).
    pub fn sees(&self, located: &Located) -> bool {
        let Some(mode) = AccessMode::parse(&located.access_mode) else {
            tracing::error!(uid = %located.uid, "stored access mode is unreadable; object hidden");
            return false;
        };
        let key = KeyPolicy {
            owner: located.owner.clone(),
            group: located.owner_group.clone(),
            mode,
        };
        policy::decide(
            &self.principal,
            &self.accounts,
            &self.settings,
            Some(&key),
            crate::kmip::enums::operation::LOCATE,
        )
        .allowed
    }

    /// Takes the `x-akm-*` attributes out of a new object's attributes and returns the
    /// object's policy: owner the caller (an administrator may name another), owner group
    /// the one named (one of the caller's groups unless an administrator) or else the
    /// caller's first OU, mode the one named or else the configured default. A group mode
    /// needs a group; a caller without OU gets `user` by default.
    pub fn policy_for_new(&self, attrs: &mut Vec<Attr>) -> Result<KeyPolicy, OpError> {
        let mut mode = None;
        let mut group = None;
        let mut owner = None;
        let mut err = None;
        attrs.retain(|a| {
            if !a.name.starts_with(ACCESS_ATTR_PREFIX) {
                return true;
            }
            let text = match &a.value {
                Value::TextString(t) => t.clone(),
                _ => {
                    err.get_or_insert(OpError::InvalidField(format!(
                        "{} must be a Text String",
                        a.name
                    )));
                    return false;
                }
            };
            let slot = match a.name.as_str() {
                ACCESS_MODE_ATTR => &mut mode,
                OWNER_GROUP_ATTR => &mut group,
                OWNER_ATTR => &mut owner,
                other => {
                    err.get_or_insert(OpError::InvalidField(format!(
                        "unknown akm attribute {other:?}"
                    )));
                    return false;
                }
            };
            if slot.replace(text).is_some() {
                err.get_or_insert(OpError::InvalidField(format!(
                    "{} takes a single value",
                    a.name
                )));
            }
            false
        });
        if let Some(e) = err {
            return Err(e);
        }
        self.new_policy(owner, group, mode)
    }

    fn new_policy(
        &self,
        owner: Option<String>,
        group: Option<String>,
        mode: Option<String>,
    ) -> Result<KeyPolicy, OpError> {
        let admin = self.is_admin();
        let owner = match owner {
            Some(o) if o != self.cn && !admin => return Err(OpError::PermissionDenied),
            Some(o) => check_name(OWNER_ATTR, o)?,
            None => self.cn.clone(),
        };
        let group = match group {
            Some(g) if !admin && !self.ous.contains(&g) => return Err(OpError::PermissionDenied),
            Some(g) => Some(check_name(OWNER_GROUP_ATTR, g)?),
            // The first group that counts: a disabled group would leave the key to nobody.
            None => policy::effective_groups(&self.principal, &self.accounts)
                .next()
                .map(str::to_owned),
        };
        let mode = match mode {
            Some(m) => AccessMode::parse(&m).ok_or_else(|| {
                OpError::InvalidField(format!(
                    "{ACCESS_MODE_ATTR} {m:?} is not any, group, user or user-and-group"
                ))
            })?,
            None if self.settings.default_mode.needs_group() && group.is_none() => AccessMode::User,
            None => self.settings.default_mode,
        };
        if mode.needs_group() && group.is_none() {
            return Err(OpError::InvalidField(format!(
                "access mode {mode} needs an owner group: set {OWNER_GROUP_ATTR} or use a \
                 certificate with an OU"
            )));
        }
        Ok(KeyPolicy { owner, group, mode })
    }
}
