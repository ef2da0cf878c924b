//! Aggregate counts for the status listener: managed objects by Object Type and State. One
//! indexed GROUP BY on a reader connection; callers cache the answer.

use super::{Store, StoreError};

/// How many objects have one Object Type and State.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectCount {
    /// The Object Type enumeration value.
    pub object_type: u32,
    /// The State enumeration value.
    pub state: u32,
    /// How many objects.
    pub count: u64,
}

impl Store {
    /// Objects by Object Type and State (blocking: call off the async workers). The State is
    /// the one the dates give now (KMIP 2.1 §4.57, transitions 4 and 6: Pre-Active becomes
    /// Active at the Activation Date, Active becomes Deactivated at the Deactivation Date),
    /// as Get Attributes and Locate report it, even where the stored State still lags them.
    pub fn count_objects(&self) -> Result<Vec<ObjectCount>, StoreError> {
        let now = crate::clock::now_secs();
        if let Some(pg) = self.postgres() {
            let counts = self.pg_read(pg, |c| super::postgres::queries::count_objects(c, now))?;
            return Ok(counts
                .into_iter()
                .map(|(object_type, state, count)| ObjectCount {
                    object_type,
                    state,
                    count: count.max(0) as u64,
                })
                .collect());
        }
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT object_type, CASE \
                   WHEN state = 1 AND activation_date <= ?1 AND deactivation_date <= ?1 THEN 3 \
                   WHEN state = 1 AND activation_date <= ?1 THEN 2 \
                   WHEN state = 2 AND deactivation_date <= ?1 THEN 3 \
                   ELSE state END AS current, COUNT(*) FROM objects \
                 GROUP BY object_type, current ORDER BY object_type, current",
            )?;
            let rows = stmt.query_map([now], |r| {
                Ok(ObjectCount {
                    object_type: r.get(0)?,
                    state: r.get(1)?,
                    count: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}
