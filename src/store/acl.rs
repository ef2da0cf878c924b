//! The access-control tables: user and group records (enabled flag, granted operations) and
//! the policy columns of objects (owner, owner group, access mode). Every change goes through
//! the writer and into the change log (entity `user`, `group` or `object`) so mirroring
//! carries policy like keys.

use super::{Store, StoreError, WriteTx};
use crate::policy::{Account, Accounts, KeyPolicy, Operations};
use rusqlite::{params, Connection, OptionalExtension};

/// Which system table a record lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountKind {
    /// `acl_users`: records named by certificate CN.
    User,
    /// `acl_groups`: records named by certificate OU.
    Group,
}

impl AccountKind {
    pub(super) fn table(self) -> &'static str {
        match self {
            AccountKind::User => "acl_users",
            AccountKind::Group => "acl_groups",
        }
    }

    /// `user` or `group`: the change-log entity and the word for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Group => "group",
        }
    }
}

fn account_of(
    kind: AccountKind,
    name: &str,
    enabled: bool,
    ops: &str,
) -> Result<Account, StoreError> {
    let operations = Operations::parse_list(ops)
        .map_err(|_| StoreError::CorruptPolicy(format!("{} {name:?}", kind.as_str())))?;
    Ok(Account {
        enabled,
        operations,
    })
}

fn load_account(
    c: &Connection,
    kind: AccountKind,
    name: &str,
) -> Result<Option<Account>, StoreError> {
    let sql = format!(
        "SELECT enabled, operations FROM {} WHERE name = ?1",
        kind.table()
    );
    let row: Option<(bool, String)> = c
        .prepare_cached(&sql)?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(enabled, ops)| account_of(kind, name, enabled, &ops))
        .transpose()
}

fn list_accounts(c: &Connection, kind: AccountKind) -> Result<Vec<(String, Account)>, StoreError> {
    let sql = format!(
        "SELECT name, enabled, operations FROM {} ORDER BY name",
        kind.table()
    );
    let mut stmt = c.prepare(&sql)?;
    let rows: Vec<(String, bool, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(name, enabled, ops)| {
            let a = account_of(kind, &name, enabled, &ops)?;
            Ok((name, a))
        })
        .collect()
}

/// Past this many OUs a caller's records are read one statement each (SQLite allows at most
/// 500 terms in a compound SELECT).
const MAX_OUS_IN_ONE_STATEMENT: usize = 64;

impl Store {
    /// The records naming a caller: the user record of `cn`, the group record of each of
    /// `ous` that has one.
    pub fn accounts_for(&self, cn: &str, ous: &[String]) -> Result<Accounts, StoreError> {
        if ous.len() > MAX_OUS_IN_ONE_STATEMENT {
            return self.read(|c| {
                let user = load_account(c, AccountKind::User, cn)?;
                let mut groups = Vec::new();
                for ou in ous {
                    if let Some(a) = load_account(c, AccountKind::Group, ou)? {
                        groups.push((ou.clone(), a));
                    }
                }
                Ok(Accounts { user, groups })
            });
        }
        // One statement for the user and every group: each statement run outside a
        // transaction takes and drops SQLite's read lock, and this runs for every request.
        let mut sql = String::from("SELECT 0, enabled, operations FROM acl_users WHERE name = ?1");
        for i in 1..=ous.len() {
            sql.push_str(&format!(
                " UNION ALL SELECT {i}, enabled, operations FROM acl_groups WHERE name = ?{}",
                i + 1
            ));
        }
        sql.push_str(" ORDER BY 1");
        let names = std::iter::once(cn).chain(ous.iter().map(String::as_str));
        let found: Vec<(usize, bool, String)> = self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(names), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        let mut accounts = Accounts {
            user: None,
            groups: Vec::new(),
        };
        for (i, enabled, ops) in found {
            if i == 0 {
                accounts.user = Some(account_of(AccountKind::User, cn, enabled, &ops)?);
            } else {
                let ou = &ous[i - 1];
                let account = account_of(AccountKind::Group, ou, enabled, &ops)?;
                accounts.groups.push((ou.clone(), account));
            }
        }
        Ok(accounts)
    }

    /// Every record of one table, by name.
    pub fn accounts(&self, kind: AccountKind) -> Result<Vec<(String, Account)>, StoreError> {
        self.read(|c| list_accounts(c, kind))
    }
}

impl WriteTx<'_> {
    /// Creates or replaces a user or group record.
    pub fn put_account(
        &self,
        kind: AccountKind,
        name: &str,
        account: &Account,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            &format!(
                "INSERT INTO {} (name, enabled, operations) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET enabled = ?2, operations = ?3",
                kind.table()
            ),
            params![name, account.enabled, account.operations.to_list()],
        )?;
        self.log_entity_change(kind.as_str(), name, "put")
    }

    /// Deletes a user or group record; false if there was none.
    pub fn delete_account(&self, kind: AccountKind, name: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            &format!("DELETE FROM {} WHERE name = ?1", kind.table()),
            [name],
        )?;
        if n == 0 {
            return Ok(false);
        }
        self.log_entity_change(kind.as_str(), name, "delete")?;
        Ok(true)
    }

    /// A record inside the write transaction.
    pub fn account(&self, kind: AccountKind, name: &str) -> Result<Option<Account>, StoreError> {
        load_account(self.conn(), kind, name)
    }

    /// Replaces an object's access policy; false if there is no such object. A live object
    /// given to a new owner must not bring a name that owner already uses on a live object.
    pub fn set_key_policy(&self, uid: &str, policy: &KeyPolicy) -> Result<bool, StoreError> {
        if let Some(row) = self.get(uid)? {
            if !super::DESTROYED_STATES.contains(&row.state) {
                self.check_names_free(uid, &policy.owner, &row.names)?;
            }
        }
        let n = self.conn().execute(
            "UPDATE objects SET owner = ?2, owner_group = ?3, access_mode = ?4 WHERE uid = ?1",
            params![uid, policy.owner, policy.group, policy.mode.as_str()],
        )?;
        if n == 0 {
            return Ok(false);
        }
        self.log_entity_change("object", uid, "policy")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AccessMode;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("akm.db")).unwrap();
        (dir, store)
    }

    fn account(enabled: bool, ops: &[&str]) -> Account {
        Account {
            enabled,
            operations: Operations::parse(ops).unwrap(),
        }
    }

    #[test]
    fn a_callers_records_come_in_the_order_of_its_ous_however_many() {
        let (_d, store) = open();
        store
            .write(|tx| {
                tx.put_account(AccountKind::Group, "HR", &account(true, &["all"]))?;
                tx.put_account(AccountKind::Group, "Finance", &account(true, &["read"]))?;
                tx.put_account(AccountKind::User, "bob", &account(true, &["get"]))
            })
            .unwrap();
        let expected = vec![
            ("HR".to_owned(), account(true, &["all"])),
            ("Finance".to_owned(), account(true, &["read"])),
        ];
        let a = store
            .accounts_for("bob", &["HR".into(), "Nowhere".into(), "Finance".into()])
            .unwrap();
        assert_eq!(a.user, Some(account(true, &["get"])));
        assert_eq!(a.groups, expected);
        // A caller with more OUs than one statement takes is read one record at a time.
        let mut many: Vec<String> = (0..100).map(|i| format!("ou{i}")).collect();
        many.insert(10, "HR".into());
        many.push("Finance".into());
        let a = store.accounts_for("nobody", &many).unwrap();
        assert_eq!(a.user, None);
        assert_eq!(a.groups, expected);
    }

    #[test]
    fn accounts_round_trip_and_are_logged() {
        let (_d, store) = open();
        store
            .write(|tx| {
                tx.put_account(AccountKind::Group, "HR", &account(true, &["all"]))?;
                tx.put_account(AccountKind::Group, "Finance", &account(true, &["read"]))?;
                tx.put_account(AccountKind::User, "bob", &account(false, &[]))
            })
            .unwrap();
        let a = store
            .accounts_for("bob", &["Finance".into(), "Nowhere".into()])
            .unwrap();
        assert_eq!(a.user, Some(account(false, &[])));
        assert_eq!(a.groups, vec![("Finance".into(), account(true, &["read"]))]);
        let groups = store.accounts(AccountKind::Group).unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "Finance");
        // Replacing keeps one record.
        store
            .write(|tx| tx.put_account(AccountKind::Group, "HR", &account(false, &["get"])))
            .unwrap();
        let hr = store.accounts_for("x", &["HR".into()]).unwrap();
        assert_eq!(hr.groups, vec![("HR".into(), account(false, &["get"]))]);
        assert!(store
            .write(|tx| tx.delete_account(AccountKind::User, "bob"))
            .unwrap());
        assert!(!store
            .write(|tx| tx.delete_account(AccountKind::User, "bob"))
            .unwrap());
        let log: Vec<(String, String, String)> = store
            .read(|c| {
                let mut s = c.prepare("SELECT entity, uid, kind FROM change_log ORDER BY seq")?;
                let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        let entry = |e: &str, id: &str, k: &str| (e.to_owned(), id.to_owned(), k.to_owned());
        assert_eq!(
            log,
            vec![
                entry("group", "HR", "put"),
                entry("group", "Finance", "put"),
                entry("user", "bob", "put"),
                entry("group", "HR", "put"),
                entry("user", "bob", "delete"),
            ]
        );
    }

    #[test]
    fn corrupt_operation_lists_are_an_error_not_a_grant() {
        let (d, store) = open();
        store.close();
        let c = Connection::open(d.path().join("akm.db")).unwrap();
        c.execute(
            "INSERT INTO acl_groups (name, enabled, operations) VALUES ('HR', 1, 'get,fly')",
            [],
        )
        .unwrap();
        drop(c);
        let store = Store::open(&d.path().join("akm.db")).unwrap();
        let e = store.accounts_for("a", &["HR".into()]).unwrap_err();
        assert!(matches!(e, StoreError::CorruptPolicy(_)), "{e:?}");
    }

    #[test]
    fn key_policy_is_set_only_on_existing_objects() {
        let (_d, store) = open();
        let p = KeyPolicy {
            owner: "alice".into(),
            group: Some("HR".into()),
            mode: AccessMode::Group,
        };
        let q = p.clone();
        assert!(!store
            .write(move |tx| tx.set_key_policy("nope", &q))
            .unwrap());
    }
}
