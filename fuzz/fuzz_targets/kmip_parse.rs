//! Fuzz target: TTLV decode then the KMIP request-message parser (version peek included), as
//! the connection loop runs them. Neither may panic on any input; an error is fine.
#![no_main]

use akm::kmip::{peek_version, RequestMessage};
use akm::ttlv::{decode, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = decode(data, &Limits::default()) {
        if let Some(v) = peek_version(&item) {
            let _ = v.nearest_supported();
        }
        let _ = RequestMessage::parse(item);
    }
});
