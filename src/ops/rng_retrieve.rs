//! RNG Retrieve (KMIP 2.1 §6.1.45): Data Length random bytes from the server's generator
//! (the same one that makes keys), at most [`MAX_RANDOM`] per call.

use super::{Call, Reply};
use crate::crypto::random_bytes;
use crate::error::OpError;
use crate::ttlv::{Tag, Ttlv};

/// The most bytes one call returns: far more than any key or seed needs, small enough that a
/// request cannot make the server allocate without bound.
pub const MAX_RANDOM: i32 = 64 * 1024;

/// Runs RNG Retrieve.
pub fn run(call: &Call<'_>) -> Result<Reply, OpError> {
    let len = call
        .payload
        .child(Tag::DATA_LENGTH)
        .ok_or_else(|| OpError::InvalidMessage("missing Data Length".into()))?
        .as_int()
        .ok_or_else(|| OpError::InvalidMessage("Data Length must be an Integer".into()))?;
    if !(1..=MAX_RANDOM).contains(&len) {
        return Err(OpError::InvalidField(format!(
            "Data Length must be 1 to {MAX_RANDOM} bytes"
        )));
    }
    let bytes = random_bytes(len as usize);
    Ok(Reply {
        payload: vec![Ttlv::bytes(Tag::DATA, bytes.to_vec())],
        uid: None,
    })
}
