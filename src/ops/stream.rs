//! Multi-part Encrypt (KMIP 2.1 §6.1.18: Init Indicator, Correlation Value, Final Indicator):
//! the server keeps what each stream has been given, in memory, and answers every part with
//! the ciphertext that part completes; the final part adds the rest (and the GCM tag). A
//! stream belongs to the certificate and key that started it. At most [`MAX_STREAMS`] are
//! open (the oldest is dropped for a new one) and each holds at most [`MAX_STREAM_BYTES`].

use super::encrypt::SymParams;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use zeroize::Zeroizing;

/// Open streams at most; a new one evicts the oldest.
pub const MAX_STREAMS: usize = 1024;
/// Data one stream may accumulate.
pub const MAX_STREAM_BYTES: usize = 1 << 20;

/// One open multi-part Encrypt.
pub struct Stream {
    /// The client certificate's fingerprint.
    pub owner: String,
    /// The key.
    pub uid: String,
    /// Mode, padding, tag length.
    pub sym: SymParams,
    /// The IV the first part gave or the server made.
    pub iv: Vec<u8>,
    /// GCM associated data (from the first part).
    pub aad: Vec<u8>,
    /// Every byte of plaintext so far.
    pub data: Zeroizing<Vec<u8>>,
    /// How many ciphertext bytes earlier parts returned.
    pub emitted: usize,
    created: Instant,
}

impl Stream {
    /// A new stream.
    pub fn new(owner: String, uid: String, sym: SymParams, iv: Vec<u8>, aad: Vec<u8>) -> Stream {
        Stream {
            owner,
            uid,
            sym,
            iv,
            aad,
            data: Zeroizing::new(Vec::new()),
            emitted: 0,
            created: Instant::now(),
        }
    }
}

/// The open streams, by Correlation Value.
#[derive(Default)]
pub struct Streams {
    open: Mutex<HashMap<Vec<u8>, Stream>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streams")
    }
}

impl Streams {
    /// Keeps `stream` under `correlation`, evicting the oldest stream when full.
    pub fn put(&self, correlation: Vec<u8>, stream: Stream) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= MAX_STREAMS && !open.contains_key(&correlation) {
            let oldest = open
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                open.remove(&k);
            }
        }
        open.insert(correlation, stream);
    }

    /// Takes the stream `correlation` if `owner` started it on key `uid`.
    pub fn take(&self, correlation: &[u8], owner: &str, uid: &str) -> Option<Stream> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let s = open.get(correlation)?;
        if s.owner != owner || s.uid != uid {
            return None;
        }
        open.remove(correlation)
    }
}
