//! The undo journal of a batch sent with Batch Error Continuation Option Undo (if any item
//! fails, the server undoes the items before it). Before an item runs, the object it names is
//! recorded as it was (row and wrapped material); an object an item creates is recorded as
//! new. Undoing writes every record back, newest first, and deletes the new objects.

use super::{Call, Ctx, Reply};
use crate::crypto::Wrapped;
use crate::error::OpError;
use crate::store::ObjectRow;

/// One object's state before the batch touched it; `None` for an object the batch created.
type Before = Option<(ObjectRow, Option<Wrapped>)>;

/// What a batch changed, in order.
#[derive(Default)]
pub struct Journal {
    entries: Vec<(String, Before)>,
}

impl Journal {
    fn has(&self, uid: &str) -> bool {
        self.entries.iter().any(|(u, _)| u == uid)
    }

    /// Records the object `call` names (its Unique Identifier or the ID Placeholder) as it is
    /// now, unless the journal already has it. Reads only; an unknown object is not recorded
    /// (the item will fail on it anyway).
    pub fn before(&mut self, ctx: &Ctx, call: &Call<'_>) -> Result<(), OpError> {
        let Ok(uid) = call.uid() else {
            return Ok(());
        };
        if self.has(&uid) {
            return Ok(());
        }
        if let Some(row) = ctx.store.get(&uid)? {
            let material = ctx.store.get_material(&uid)?;
            self.entries.push((uid, Some((row, material))));
        }
        Ok(())
    }

    /// Records an object a successful item created (its identifier was not known before).
    pub fn after(&mut self, reply: &Reply) {
        if let Some(uid) = &reply.uid {
            if !self.has(uid) {
                self.entries.push((uid.clone(), None));
            }
        }
    }

    /// Puts every recorded object back, newest record first, in one durable write.
    pub fn undo(self, ctx: &Ctx) -> Result<(), OpError> {
        ctx.store.write(move |tx| {
            for (uid, before) in self.entries.iter().rev() {
                let before = before.as_ref().map(|(row, m)| (row, m.as_ref()));
                tx.restore(uid, before)?;
            }
            Ok(())
        })
    }
}
