//! Log (KMIP 2.0+): writes a client's message to the server log (KMIP 2.1 §6.1.29). The
//! message is client text, so it is logged escaped and cut to a bounded length.

use super::{Call, Reply};
use crate::error::OpError;
use crate::identity::Principal;
use crate::ttlv::Tag;

/// Longest message logged, in characters; the rest is dropped.
pub const MAX_LOGGED_CHARS: usize = 1024;

/// Runs Log.
pub fn run(who: &Principal, call: &Call<'_>) -> Result<Reply, OpError> {
    let message = call
        .payload
        .child(Tag::LOG_MESSAGE)
        .ok_or_else(|| OpError::InvalidMessage("missing Log Message".into()))?
        .as_text()
        .ok_or_else(|| OpError::InvalidMessage("Log Message must be text".into()))?;
    let shown: String = message.chars().take(MAX_LOGGED_CHARS).collect();
    // Debug formatting escapes control characters, so a client cannot forge log lines.
    tracing::info!(user = %who.cn, message = ?shown, "client log message");
    Ok(Reply {
        payload: Vec::new(),
        uid: None,
    })
}
