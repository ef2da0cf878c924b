//! Fuzz target: the bounded TTLV decoder on arbitrary bytes. It must never panic, and whatever
//! it accepts must survive a round trip: decode(encode(x)) == x, and re-encoding gives the
//! very bytes it accepted (the decoder only takes canonical TTLV: exact lengths, zero padding,
//! no trailing bytes).
#![no_main]

use akm::ttlv::{decode, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(item) = decode(data, &limits) {
        let bytes = item.encode();
        assert_eq!(bytes, data, "accepted input is not canonical TTLV");
        let again = decode(&bytes, &limits).expect("re-encoded item does not decode");
        assert!(again == item, "decode(encode(x)) != x");
    }
});
