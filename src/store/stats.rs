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
    /// Objects by Object Type and State (blocking: call off the async workers).
    pub fn count_objects(&self) -> Result<Vec<ObjectCount>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT object_type, state, COUNT(*) FROM objects \
                 GROUP BY object_type, state ORDER BY object_type, state",
            )?;
            let rows = stmt.query_map([], |r| {
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
