//! Client certificate revocations as store records: the `cert_revocations` table, written
//! through the change log (entity [`REVOCATION_ENTITY`]) so mirroring carries them to every
//! peer and snapshots include them. Rows are only ever inserted, never updated or deleted:
//! neither a peer nor a local CRL file that shrinks can undo a revocation.

use super::{Store, StoreError, WriteTx};
use rusqlite::{params, OptionalExtension};
use std::collections::HashSet;
use std::sync::RwLock;

/// The change-log entity of a revocation; its id is [`CertRevocation::id`].
pub const REVOCATION_ENTITY: &str = "revocation";

/// One revoked client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRevocation {
    /// The issuer's distinguished name, as `identity::issuer_of` writes it.
    pub issuer: String,
    /// The serial number, lower-case hex (as `Principal::serial`).
    pub serial: String,
    /// The CRL's reason (`unspecified` when it gives none).
    pub reason: String,
    /// When it was revoked (the CRL's revocation date), seconds since the epoch.
    pub revoked_at: i64,
}

impl CertRevocation {
    /// The change-log id: `<serial>@<issuer>` (a hex serial has no `@`, so the first one
    /// splits them).
    pub fn id(&self) -> String {
        format!("{}@{}", self.serial, self.issuer)
    }

    /// The (serial, issuer) of a change-log id.
    pub fn split_id(id: &str) -> Option<(&str, &str)> {
        id.split_once('@')
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRevocation> {
    Ok(CertRevocation {
        issuer: r.get(0)?,
        serial: r.get(1)?,
        reason: r.get(2)?,
        revoked_at: r.get(3)?,
    })
}

impl Store {
    /// Every revocation, in the order they were recorded.
    pub fn cert_revocations(&self) -> Result<Vec<CertRevocation>, StoreError> {
        if let Some(db) = self.postgres() {
            return self.pg_read(db, super::postgres::queries::cert_revocations);
        }
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT issuer, serial, reason, revoked_at FROM cert_revocations ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The revocation with change-log id `id`, with its stamp (origin `None`: this node).
    pub fn cert_revocation(
        &self,
        id: &str,
    ) -> Result<Option<(CertRevocation, i64, Option<String>)>, StoreError> {
        let Some((serial, issuer)) = CertRevocation::split_id(id) else {
            return Ok(None);
        };
        if let Some(db) = self.postgres() {
            return self.pg_read(db, |c| {
                let Some(found) = super::postgres::queries::cert_revocation(c, issuer, serial)?
                else {
                    return Ok(None);
                };
                let (hlc, origin) = super::postgres::queries::stamp_of(c, REVOCATION_ENTITY, id)?
                    .unwrap_or((0, None));
                Ok(Some((found, hlc, origin)))
            });
        }
        self.read(|c| {
            let found = c
                .query_row(
                    "SELECT issuer, serial, reason, revoked_at FROM cert_revocations \
                     WHERE issuer = ?1 AND serial = ?2",
                    params![issuer, serial],
                    row,
                )
                .optional()?;
            let Some(found) = found else { return Ok(None) };
            let (hlc, origin) =
                super::replica::stamp_of_entity(c, REVOCATION_ENTITY, id)?.unwrap_or((0, None));
            Ok(Some((found, hlc, origin)))
        })
    }

    /// Records the revocations of `list` that are not recorded yet, as changes made on this
    /// node (mirrored to the peers). It bypasses the commit hook: a revocation only ever
    /// takes rights away, so neither RPO-zero gating nor a settings mismatch may hold it back.
    /// Returns the ones newly recorded.
    pub fn record_cert_revocations(
        &self,
        list: Vec<CertRevocation>,
    ) -> Result<Vec<CertRevocation>, StoreError> {
        self.write_replica(move |tx| {
            let mut added = Vec::new();
            for r in list {
                if tx.put_cert_revocation(&r, None)? {
                    added.push(r);
                }
            }
            Ok(added)
        })
    }
}

impl WriteTx<'_> {
    /// Inserts `r` unless it is already recorded (then nothing changes and nothing is
    /// logged); logged as this node's change, or with a peer's stamp. Returns whether it was
    /// new.
    pub fn put_cert_revocation(
        &self,
        r: &CertRevocation,
        origin: Option<(&str, i64)>,
    ) -> Result<bool, StoreError> {
        if let super::writer::TxConn::Postgres(db) = self.tx_conn() {
            let new = super::postgres::queries::insert_revocation(&mut db.client(), r)?;
            if new {
                self.log_change_from(REVOCATION_ENTITY, &r.id(), "insert", origin)?;
            }
            return Ok(new);
        }
        let inserted = self.conn()?.execute(
            "INSERT OR IGNORE INTO cert_revocations (issuer, serial, reason, revoked_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![r.issuer, r.serial, r.reason, r.revoked_at],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        self.log_change_from(REVOCATION_ENTITY, &r.id(), "insert", origin)?;
        Ok(true)
    }
}

/// The revoked (issuer, serial) pairs in force, from the store.
#[derive(Debug, Default)]
pub struct RevokedCerts(RwLock<HashSet<(String, String)>>);

impl RevokedCerts {
    /// Every revocation recorded in `store`.
    pub fn load(store: &Store) -> Result<RevokedCerts, StoreError> {
        let set = RevokedCerts::default();
        set.add(&store.cert_revocations()?);
        Ok(set)
    }

    /// Adds revocations (applied from a peer or recorded here).
    pub fn add(&self, list: &[CertRevocation]) {
        let mut set = match self.0.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        for r in list {
            set.insert((r.issuer.clone(), r.serial.clone()));
        }
    }

    /// Whether the certificate `serial` (lower-case hex) of `issuer` is revoked.
    pub fn contains(&self, issuer: &str, serial: &str) -> bool {
        let set = match self.0.read() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        set.contains(&(issuer.to_owned(), serial.to_owned()))
    }

    /// How many certificates are revoked.
    pub fn len(&self) -> usize {
        self.0.read().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
