//! What KEK rotation needs from the store: which KEKs wrap stored material, a batch of rows
//! still wrapped by an old KEK, and swapping one row's wrapping only if it is unchanged since
//! it was read (a concurrent Destroy or re-key wins; the row is then simply not rewrapped).

use super::{Store, StoreError, WriteTx};
use crate::crypto::Wrapped;
use rusqlite::params;

/// A stored key's wrapping, as read for rewrapping.
#[derive(Clone, Debug)]
pub struct WrappedRow {
    /// The object.
    pub uid: String,
    /// Its key version (bound into the wrapping).
    pub key_version: i64,
    /// The wrapping as stored.
    pub wrapped: Wrapped,
}

impl Store {
    /// How many stored keys each KEK wraps, by KEK id.
    pub fn material_by_kek(&self) -> Result<Vec<(String, i64)>, StoreError> {
        if let Some(db) = self.postgres() {
            return self.pg_read(db, super::postgres::queries::material_by_kek);
        }
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT kek_id, COUNT(*) FROM material GROUP BY kek_id ORDER BY kek_id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Up to `limit` stored keys not wrapped by `kek_id`.
    pub fn material_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<WrappedRow>, StoreError> {
        if let Some(db) = self.postgres() {
            return self.pg_read(db, |c| {
                super::postgres::queries::material_not_under(c, kek_id, limit)
            });
        }
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT m.uid, o.key_version, m.kek_id, m.nonce, m.ciphertext \
                 FROM material m JOIN objects o ON o.uid = m.uid \
                 WHERE m.kek_id <> ?1 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![kek_id, limit as i64], |r| {
                Ok(WrappedRow {
                    uid: r.get(0)?,
                    key_version: r.get(1)?,
                    wrapped: Wrapped {
                        kek_id: r.get(2)?,
                        nonce: r.get(3)?,
                        ciphertext: r.get(4)?,
                    },
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

impl WriteTx<'_> {
    /// Replaces `uid`'s wrapping `old` by `new` if the row still holds `old`; returns whether
    /// it did.
    pub fn rewrap(&self, uid: &str, old: &Wrapped, new: &Wrapped) -> Result<bool, StoreError> {
        if let super::writer::TxConn::Postgres(db) = self.tx_conn() {
            return super::postgres::queries::rewrap(&mut db.client(), uid, old, new);
        }
        let n = self.conn()?.execute(
            "UPDATE material SET kek_id = ?1, nonce = ?2, ciphertext = ?3 \
             WHERE uid = ?4 AND kek_id = ?5 AND nonce = ?6",
            params![
                new.kek_id,
                new.nonce,
                new.ciphertext,
                uid,
                old.kek_id,
                old.nonce
            ],
        )?;
        Ok(n == 1)
    }
}
