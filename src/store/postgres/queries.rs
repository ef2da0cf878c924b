//! The PostgreSQL store's SQL: the same reads and writes as the SQLite path in `store`, one
//! function each, in PostgreSQL's dialect (`$n` parameters, `BIGINT` for the enumerations SQLite
//! keeps as INTEGER, explicit order columns where SQLite uses its rowid). The invariants (which
//! check runs before which write) stay in the shared `WriteTx` methods that call these.

use super::super::{
    LocateArg, LocateQuery, Located, ObjectRow, RowAndMaterial, StoreError, DESTROYED_STATES,
};
use super::PgClient as Client;
use crate::crypto::Wrapped;
use postgres::types::ToSql;

/// The columns [`row_from`] reads, in its order, of table alias `o`.
macro_rules! row_columns {
    () => {
        "o.uid, o.object_type, o.state, o.owner, o.algorithm, o.length, o.initial_date, \
         o.activation_date, o.deactivation_date, o.last_change, o.key_version, o.attributes, \
         o.owner_group, o.access_mode, o.replaces"
    };
}

/// A stored enumeration value back in its Rust type; out of range means a corrupt row.
fn enum_value(column: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("objects.{column} = {v}")))
}

/// An object row from the first 15 columns of `r` (as [`row_columns`] lists them), without
/// its names and groups.
fn row_from(r: &postgres::Row) -> Result<ObjectRow, StoreError> {
    Ok(ObjectRow {
        uid: r.try_get(0)?,
        object_type: enum_value("object_type", r.try_get(1)?)?,
        state: enum_value("state", r.try_get(2)?)?,
        owner: r.try_get(3)?,
        algorithm: r
            .try_get::<_, Option<i64>>(4)?
            .map(|v| enum_value("algorithm", v))
            .transpose()?,
        length: r.try_get(5)?,
        initial_date: r.try_get(6)?,
        activation_date: r.try_get(7)?,
        deactivation_date: r.try_get(8)?,
        last_change: r.try_get(9)?,
        key_version: r.try_get(10)?,
        names: Vec::new(),
        groups: Vec::new(),
        attributes: r.try_get(11)?,
        owner_group: r.try_get(12)?,
        access_mode: r.try_get(13)?,
        replaces: r.try_get(14)?,
    })
}

/// An object row without its names and groups.
pub(in crate::store) fn load_object(
    c: &mut Client,
    uid: &str,
) -> Result<Option<ObjectRow>, StoreError> {
    c.query_opt(
        concat!(
            "SELECT ",
            row_columns!(),
            " FROM objects o WHERE o.uid = $1"
        ),
        &[&uid],
    )?
    .map(|r| row_from(&r))
    .transpose()
}

/// An object row with its names and groups.
pub(in crate::store) fn load_row(
    c: &mut Client,
    uid: &str,
) -> Result<Option<ObjectRow>, StoreError> {
    let Some(mut row) = load_object(c, uid)? else {
        return Ok(None);
    };
    (row.names, row.groups) = names_and_groups(c, uid)?;
    Ok(Some(row))
}

/// An object row without its names and groups, and its wrapped material, in one statement.
pub(in crate::store) fn load_object_with_material(
    c: &mut Client,
    uid: &str,
) -> Result<Option<RowAndMaterial>, StoreError> {
    let Some(r) = c.query_opt(
        concat!(
            "SELECT ",
            row_columns!(),
            ", m.kek_id, m.nonce, m.ciphertext \
             FROM objects o LEFT JOIN material m ON m.uid = o.uid WHERE o.uid = $1"
        ),
        &[&uid],
    )?
    else {
        return Ok(None);
    };
    let material = match r.try_get::<_, Option<String>>(15)? {
        Some(kek_id) => Some(Wrapped {
            kek_id,
            nonce: r.try_get(16)?,
            ciphertext: r.try_get(17)?,
        }),
        None => None,
    };
    Ok(Some((row_from(&r)?, material)))
}

/// An object's Names and Object Groups, each in the order they were given.
pub(in crate::store) fn names_and_groups(
    c: &mut Client,
    uid: &str,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let rows = c.query(
        "SELECT 0 AS which, ord, name FROM names WHERE uid = $1 \
         UNION ALL SELECT 1, ord, grp FROM groups WHERE uid = $1 ORDER BY 1, 2",
        &[&uid],
    )?;
    let (mut names, mut groups) = (Vec::new(), Vec::new());
    for r in rows {
        let value: String = r.try_get(2)?;
        if r.try_get::<_, i32>(0)? == 0 {
            names.push(value);
        } else {
            groups.push(value);
        }
    }
    Ok((names, groups))
}

/// An object's wrapped material, if it has any.
pub(in crate::store) fn load_material(
    c: &mut Client,
    uid: &str,
) -> Result<Option<Wrapped>, StoreError> {
    c.query_opt(
        "SELECT kek_id, nonce, ciphertext FROM material WHERE uid = $1",
        &[&uid],
    )?
    .map(|r| {
        Ok(Wrapped {
            kek_id: r.try_get(0)?,
            nonce: r.try_get(1)?,
            ciphertext: r.try_get(2)?,
        })
    })
    .transpose()
}

/// An object's first Name.
pub(in crate::store) fn first_name(
    c: &mut Client,
    uid: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_opt(
        "SELECT name FROM names WHERE uid = $1 ORDER BY ord LIMIT 1",
        &[&uid],
    )?
    .map(|r| r.try_get(0))
    .transpose()?)
}

/// The newest change-log sequence number (0 if empty).
pub(in crate::store) fn last_change_seq(c: &mut Client) -> Result<i64, StoreError> {
    Ok(
        c.query_one("SELECT COALESCE(MAX(seq), 0) FROM change_log", &[])?
            .try_get(0)?,
    )
}

/// A Locate over the indexed columns (the SQL both backends share: `store::locate_sql`).
pub(in crate::store) fn locate(
    c: &mut Client,
    q: &LocateQuery,
) -> Result<Vec<Located>, StoreError> {
    let Some((sql, args)) = super::super::locate_sql(q, |n| format!("${n}")) else {
        return Ok(Vec::new());
    };
    let args: Vec<Box<dyn ToSql + Sync>> = args
        .into_iter()
        .map(|a| -> Box<dyn ToSql + Sync> {
            match a {
                LocateArg::Text(t) => Box::new(t),
                LocateArg::Big(v) => Box::new(v),
                LocateArg::Int(v) => Box::new(v),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
    c.query(&sql, &params)?
        .iter()
        .map(|r| {
            Ok(Located {
                uid: r.try_get(0)?,
                owner: r.try_get(1)?,
                owner_group: r.try_get(2)?,
                access_mode: r.try_get(3)?,
                seq: r.try_get(4)?,
            })
        })
        .collect()
}

/// Objects by Object Type and the State the dates give at `now` (see `Store::count_objects`).
pub(in crate::store) fn count_objects(
    c: &mut Client,
    now: i64,
) -> Result<Vec<(u32, u32, i64)>, StoreError> {
    c.query(
        "SELECT object_type, CASE \
           WHEN state = 1 AND activation_date <= $1 AND deactivation_date <= $1 THEN 3 \
           WHEN state = 1 AND activation_date <= $1 THEN 2 \
           WHEN state = 2 AND deactivation_date <= $1 THEN 3 \
           ELSE state END AS current, COUNT(*) FROM objects \
         GROUP BY 1, 2 ORDER BY 1, 2",
        &[&now],
    )?
    .iter()
    .map(|r| {
        Ok((
            enum_value("object_type", r.try_get(0)?)?,
            enum_value("state", r.try_get(1)?)?,
            r.try_get(2)?,
        ))
    })
    .collect()
}

/// Inserts an object row (the caller has checked its names).
pub(in crate::store) fn insert_object(c: &mut Client, row: &ObjectRow) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO objects (uid, object_type, state, owner, algorithm, length, initial_date, \
         activation_date, deactivation_date, last_change, key_version, attributes, owner_group, \
         access_mode, replaces) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            &row.uid,
            &i64::from(row.object_type),
            &i64::from(row.state),
            &row.owner,
            &row.algorithm.map(i64::from),
            &row.length,
            &row.initial_date,
            &row.activation_date,
            &row.deactivation_date,
            &row.last_change,
            &row.key_version,
            &row.attributes,
            &row.owner_group,
            &row.access_mode,
            &row.replaces,
        ],
    )?;
    Ok(())
}

/// Inserts `uid`'s wrapped material.
pub(in crate::store) fn insert_material(
    c: &mut Client,
    uid: &str,
    w: &Wrapped,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO material (uid, kek_id, nonce, ciphertext) VALUES ($1, $2, $3, $4)",
        &[&uid, &w.kek_id, &w.nonce, &w.ciphertext],
    )?;
    Ok(())
}

/// Replaces the columns of an object row that an update may change.
pub(in crate::store) fn update_object(c: &mut Client, row: &ObjectRow) -> Result<(), StoreError> {
    c.execute(
        "UPDATE objects SET state = $2, algorithm = $3, length = $4, activation_date = $5, \
         deactivation_date = $6, last_change = $7, attributes = $8, replaces = $9 WHERE uid = $1",
        &[
            &row.uid,
            &i64::from(row.state),
            &row.algorithm.map(i64::from),
            &row.length,
            &row.activation_date,
            &row.deactivation_date,
            &row.last_change,
            &row.attributes,
            &row.replaces,
        ],
    )?;
    Ok(())
}

/// Deletes an object's key material.
pub(in crate::store) fn delete_material(c: &mut Client, uid: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM material WHERE uid = $1", &[&uid])?;
    Ok(())
}

/// Whether a live object of `owner` other than `uid` holds Name `name`.
pub(in crate::store) fn name_taken(
    c: &mut Client,
    uid: &str,
    owner: &str,
    name: &str,
) -> Result<bool, StoreError> {
    Ok(c.query_opt(
        "SELECT 1 FROM names n JOIN objects o ON o.uid = n.uid \
             WHERE n.name = $1 AND n.uid <> $2 AND o.owner = $3 AND o.state NOT IN ($4, $5) \
             LIMIT 1",
        &[
            &name,
            &uid,
            &owner,
            &i64::from(DESTROYED_STATES[0]),
            &i64::from(DESTROYED_STATES[1]),
        ],
    )?
    .is_some())
}

/// Deletes the Name and Object Group index rows of `uid`.
pub(in crate::store) fn delete_names_and_groups(
    c: &mut Client,
    uid: &str,
) -> Result<(), StoreError> {
    c.execute("DELETE FROM names WHERE uid = $1", &[&uid])?;
    c.execute("DELETE FROM groups WHERE uid = $1", &[&uid])?;
    Ok(())
}

/// Inserts the Name and Object Group index rows of `row`, in its order (a repeated value is
/// kept once, as SQLite's `INSERT OR IGNORE` does).
pub(in crate::store) fn insert_names_and_groups(
    c: &mut Client,
    row: &ObjectRow,
) -> Result<(), StoreError> {
    for (sql, values) in [
        (
            "INSERT INTO names (uid, name, ord) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &row.names,
        ),
        (
            "INSERT INTO groups (uid, grp, ord) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &row.groups,
        ),
    ] {
        for (i, value) in values.iter().enumerate() {
            let ord = i32::try_from(i).unwrap_or(i32::MAX);
            c.execute(sql, &[&row.uid, value, &ord])?;
        }
    }
    Ok(())
}

/// Appends to the change log with the next sequence number (the caller holds the write lock,
/// so `MAX + 1` is gap-free and in commit order); returns it. `origin`: a peer's stamp, or
/// `None` for this node's change, stamped with a clock value above every one stored.
pub(in crate::store) fn log_change(
    c: &mut Client,
    node: &str,
    entity: &str,
    uid: &str,
    kind: &str,
    origin: Option<(&str, i64)>,
) -> Result<i64, StoreError> {
    let (peer, hlc) = match origin {
        Some((peer, hlc)) => (Some(peer), hlc),
        None => {
            let newest: i64 = c
                .query_one("SELECT COALESCE(MAX(hlc), 0) FROM change_log", &[])?
                .try_get(0)?;
            (None, (crate::clock::now_ms() << 16).max(newest + 1))
        }
    };
    Ok(c.query_one(
        "INSERT INTO change_log (seq, entity, uid, kind, at, hlc, origin, node) \
             SELECT COALESCE(MAX(seq), 0) + 1, $1::TEXT, $2::TEXT, $3::TEXT, $4::BIGINT, \
             $5::BIGINT, $6::TEXT, $7::TEXT FROM change_log RETURNING seq",
        &[
            &entity,
            &uid,
            &kind,
            &crate::clock::now_secs(),
            &hlc,
            &peer,
            &node,
        ],
    )?
    .try_get(0)?)
}

/// The stamp of the latest change to `entity` `uid`.
pub(in crate::store) fn stamp_of(
    c: &mut Client,
    entity: &str,
    uid: &str,
) -> Result<Option<(i64, Option<String>)>, StoreError> {
    c.query_opt(
        "SELECT hlc, origin FROM change_log WHERE entity = $1 AND uid = $2 \
         ORDER BY seq DESC LIMIT 1",
        &[&entity, &uid],
    )?
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .transpose()
}

/// Replaces an object's access policy columns; false if there is no such object.
pub(in crate::store) fn set_policy(
    c: &mut Client,
    uid: &str,
    owner: &str,
    group: Option<&str>,
    mode: &str,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "UPDATE objects SET owner = $2, owner_group = $3, access_mode = $4 WHERE uid = $1",
        &[&uid, &owner, &group, &mode],
    )? == 1)
}

/// The objects of `owner` that name `uid` as their Replaced Object, in uid order.
pub(in crate::store) fn owned_replacements(
    c: &mut Client,
    owner: &str,
    uid: &str,
) -> Result<Vec<String>, StoreError> {
    c.query(
        "SELECT uid FROM objects WHERE replaces = $1 AND owner = $2 ORDER BY uid",
        &[&uid, &owner],
    )?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

/// This node's change-log entries above its audit mark (at most `limit`), and how many.
pub(in crate::store) fn unaudited_changes(
    c: &mut Client,
    node: &str,
    limit: usize,
) -> Result<(Vec<super::super::audit_ledger::UnauditedChange>, usize), StoreError> {
    let mark: i64 = c
        .query_opt("SELECT seq FROM audit_mark WHERE node = $1", &[&node])?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    let total: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM change_log WHERE node = $1 AND seq > $2",
            &[&node, &mark],
        )?
        .try_get(0)?;
    let rows = c
        .query(
            "SELECT seq, entity, uid, kind, origin FROM change_log \
             WHERE node = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&node, &mark, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?
        .iter()
        .map(|r| {
            Ok(super::super::audit_ledger::UnauditedChange {
                seq: r.try_get(0)?,
                entity: r.try_get(1)?,
                uid: r.try_get(2)?,
                kind: r.try_get(3)?,
                origin: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((rows, usize::try_from(total).unwrap_or(usize::MAX)))
}

/// Moves this node's audit mark to its newest change-log entry.
pub(in crate::store) fn mark_all_audited(c: &mut Client, node: &str) -> Result<(), StoreError> {
    c.execute(
        "UPDATE audit_mark SET seq = \
         (SELECT COALESCE(MAX(seq), 0) FROM change_log WHERE node = $1) WHERE node = $1",
        &[&node],
    )?;
    Ok(())
}

/// A user or group record's columns (`table` is `acl_users` or `acl_groups`).
pub(in crate::store) fn load_account_raw(
    c: &mut Client,
    table: &str,
    name: &str,
) -> Result<Option<(bool, String)>, StoreError> {
    c.query_opt(
        &format!("SELECT enabled, operations FROM {table} WHERE name = $1"),
        &[&name],
    )?
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .transpose()
}

/// The records of `table` whose names are among `names` (in name order), or every record
/// of it (`names` None).
pub(in crate::store) fn accounts_raw(
    c: &mut Client,
    table: &str,
    names: Option<&[String]>,
) -> Result<Vec<(String, bool, String)>, StoreError> {
    let rows = match names {
        Some(names) => c.query(
            &format!(
                "SELECT name, enabled, operations FROM {table} WHERE name = ANY($1) \
                 ORDER BY name"
            ),
            &[&names],
        )?,
        None => c.query(
            &format!("SELECT name, enabled, operations FROM {table} ORDER BY name"),
            &[],
        )?,
    };
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// Creates or replaces a user or group record.
pub(in crate::store) fn put_account(
    c: &mut Client,
    table: &str,
    name: &str,
    enabled: bool,
    operations: &str,
) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT INTO {table} (name, enabled, operations) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET enabled = $2, operations = $3"
        ),
        &[&name, &enabled, &operations],
    )?;
    Ok(())
}

/// Deletes a user or group record; whether there was one.
pub(in crate::store) fn delete_account(
    c: &mut Client,
    table: &str,
    name: &str,
) -> Result<bool, StoreError> {
    Ok(c.execute(&format!("DELETE FROM {table} WHERE name = $1"), &[&name])? > 0)
}

fn revocation_from(r: &postgres::Row) -> Result<super::super::CertRevocation, StoreError> {
    Ok(super::super::CertRevocation {
        issuer: r.try_get(0)?,
        serial: r.try_get(1)?,
        reason: r.try_get(2)?,
        revoked_at: r.try_get(3)?,
    })
}

/// Every certificate revocation, in the order they were recorded.
pub(in crate::store) fn cert_revocations(
    c: &mut Client,
) -> Result<Vec<super::super::CertRevocation>, StoreError> {
    c.query(
        "SELECT issuer, serial, reason, revoked_at FROM cert_revocations ORDER BY seq",
        &[],
    )?
    .iter()
    .map(revocation_from)
    .collect()
}

/// The revocation of certificate `serial` of `issuer`, if recorded.
pub(in crate::store) fn cert_revocation(
    c: &mut Client,
    issuer: &str,
    serial: &str,
) -> Result<Option<super::super::CertRevocation>, StoreError> {
    c.query_opt(
        "SELECT issuer, serial, reason, revoked_at FROM cert_revocations \
         WHERE issuer = $1 AND serial = $2",
        &[&issuer, &serial],
    )?
    .map(|r| revocation_from(&r))
    .transpose()
}

/// Records a revocation unless it is recorded already; whether it was new.
pub(in crate::store) fn insert_revocation(
    c: &mut Client,
    r: &super::super::CertRevocation,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "INSERT INTO cert_revocations (issuer, serial, reason, revoked_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&r.issuer, &r.serial, &r.reason, &r.revoked_at],
    )? == 1)
}

/// How many stored keys each KEK wraps, by KEK id.
pub(in crate::store) fn material_by_kek(c: &mut Client) -> Result<Vec<(String, i64)>, StoreError> {
    c.query(
        "SELECT kek_id, COUNT(*) FROM material GROUP BY kek_id ORDER BY kek_id",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect()
}

/// Up to `limit` stored keys not wrapped by `kek_id`.
pub(in crate::store) fn material_not_under(
    c: &mut Client,
    kek_id: &str,
    limit: usize,
) -> Result<Vec<super::super::WrappedRow>, StoreError> {
    c.query(
        "SELECT m.uid, o.key_version, m.kek_id, m.nonce, m.ciphertext \
         FROM material m JOIN objects o ON o.uid = m.uid WHERE m.kek_id <> $1 LIMIT $2",
        &[&kek_id, &i64::try_from(limit).unwrap_or(i64::MAX)],
    )?
    .iter()
    .map(|r| {
        Ok(super::super::WrappedRow {
            uid: r.try_get(0)?,
            key_version: r.try_get(1)?,
            wrapped: Wrapped {
                kek_id: r.try_get(2)?,
                nonce: r.try_get(3)?,
                ciphertext: r.try_get(4)?,
            },
        })
    })
    .collect()
}

/// Replaces `uid`'s wrapping `old` by `new` if the row still holds `old`; whether it did.
pub(in crate::store) fn rewrap(
    c: &mut Client,
    uid: &str,
    old: &Wrapped,
    new: &Wrapped,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "UPDATE material SET kek_id = $1, nonce = $2, ciphertext = $3 \
         WHERE uid = $4 AND kek_id = $5 AND nonce = $6",
        &[
            &new.kek_id,
            &new.nonce,
            &new.ciphertext,
            &uid,
            &old.kek_id,
            &old.nonce,
        ],
    )? == 1)
}

/// Up to `limit` change-log entries after `seq`, oldest first.
pub(in crate::store) fn changes_after(
    c: &mut Client,
    seq: i64,
    limit: usize,
) -> Result<Vec<super::super::ChangeEntry>, StoreError> {
    c.query(
        "SELECT seq, entity, uid, kind, at, hlc, origin FROM change_log WHERE seq > $1 \
         ORDER BY seq LIMIT $2",
        &[&seq, &i64::try_from(limit).unwrap_or(i64::MAX)],
    )?
    .iter()
    .map(|r| {
        Ok(super::super::ChangeEntry {
            seq: r.try_get(0)?,
            entity: r.try_get(1)?,
            uid: r.try_get(2)?,
            kind: r.try_get(3)?,
            at: r.try_get(4)?,
            hlc: r.try_get(5)?,
            origin: r.try_get(6)?,
        })
    })
    .collect()
}
