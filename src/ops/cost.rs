//! The cost budget of a request message: what its items are estimated to cost in server CPU
//! before any of them runs, so one message cannot pin a thread (or, in an Undo batch, the
//! store's write lock) for minutes. The estimate reads only what the payloads state; what it
//! cannot know in advance (how many objects a Locate must read) the operation charges to the
//! request's [`Meter`] as it goes, and the meter's deadline bounds the rest. The operations
//! enforce their own per-item limits (the PBKDF2 iteration cap) as they run.
//!
//! One cost unit is about a thousand PBKDF2-HMAC-SHA-256 iterations, roughly a millisecond of
//! one core. The weights are documented in the README's security model.

use crate::config::limits::{
    DEFAULT_MAX_PBKDF2_ITERATIONS, DEFAULT_MAX_REQUEST_COST, DEFAULT_MAX_RESPONSE_BYTES,
};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::enums::operation as op;
use crate::kmip::RequestItem;
use crate::ttlv::{Tag, Ttlv, Value};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The most an Undo batch may cost: it holds the store's write lock while it runs, so every
/// other client's writes wait for it.
pub const MAX_UNDO_COST: u64 = 500;
/// How long a request message may run before its next item (or the next part of a Locate) is
/// refused: the backstop for work no estimate foresaw.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The same for an Undo batch, which holds the write lock.
pub const UNDO_DEADLINE: Duration = Duration::from_secs(2);
/// Objects a Locate reads and matches per cost unit (measured: about 30 µs each).
pub const LOCATE_OBJECTS_PER_UNIT: u64 = 30;
/// The cost of a private-key operation (an RSA-4096 signature or decryption takes about 15 ms
/// of one core in a debug build), charged to every Sign, Decrypt and Signature Verify.
const PRIVATE_KEY_OPERATION: u64 = 10;
/// PBKDF2 output is made in blocks of the PRF's output, each block costing the full iteration
/// count; SHA-1's 20 bytes is the smallest block, so the most blocks per output length.
const SMALLEST_PRF_BLOCK: u64 = 20;

/// What one request message has spent, against its budget and deadline.
#[derive(Debug)]
pub struct Meter {
    budget: u64,
    spent: Cell<u64>,
    time: Duration,
    deadline: Cell<Instant>,
}

impl Meter {
    /// A meter for a message estimated at `estimate` units, allowed `budget` units and `time`.
    pub fn new(budget: u64, estimate: u64, time: Duration) -> Meter {
        Meter {
            budget,
            spent: Cell::new(estimate),
            time,
            deadline: Cell::new(Instant::now() + time),
        }
    }

    /// Starts the time allowed again from now: an Undo batch's time counts from when it has
    /// its turn at the write lock, not from when it began to wait for it.
    pub fn restart_clock(&self) {
        self.deadline.set(Instant::now() + self.time);
    }

    /// Adds `units` spent beyond the estimate; refuses once the budget or the time is over.
    pub fn charge(&self, units: u64) -> Result<(), OpError> {
        let spent = self.spent.get().saturating_add(units);
        self.spent.set(spent);
        if spent > self.budget {
            return Err(OpError::ServerLimitExceeded(format!(
                "the request has cost more than the budget of {} units \
                 (server.max_request_cost): narrow the search or send fewer items per message",
                self.budget
            )));
        }
        self.check_time()
    }

    /// Refuses once the request has run past its deadline.
    pub fn check_time(&self) -> Result<(), OpError> {
        if Instant::now() > self.deadline.get() {
            return Err(OpError::ServerLimitExceeded(
                "the request has run past its time limit: send fewer or cheaper items per \
                 message (an Undo batch may run for 2 s, any other message for 10 s)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Per-request CPU limits (`[server]` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most cost units one request message may be estimated at.
    pub max_request_cost: u64,
    /// Most PBKDF2 iterations one Derive Key item may ask for.
    pub max_pbkdf2_iterations: u32,
    /// Most bytes of response payloads one request message may make: a small request must not
    /// make the server build a huge answer (RNG Retrieve, Locate, Get of large objects).
    pub max_response_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_request_cost: DEFAULT_MAX_REQUEST_COST,
            max_pbkdf2_iterations: DEFAULT_MAX_PBKDF2_ITERATIONS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// The estimated cost of a request message's items, in cost units.
pub fn of_message(items: &[RequestItem]) -> u64 {
    items
        .iter()
        .map(|i| of_item(i.operation, &i.payload))
        .fold(0u64, u64::saturating_add)
}

/// The estimated cost of one item: one unit, plus its expensive parts.
fn of_item(operation: u32, payload: &Ttlv) -> u64 {
    let extra = match operation {
        op::DERIVE_KEY => pbkdf2_iterations(payload)
            .saturating_mul(pbkdf2_blocks(largest_length(payload)))
            .div_ceil(1_000),
        op::CREATE_KEY_PAIR | op::RE_KEY_KEY_PAIR => key_pair_cost(largest_length(payload)),
        op::SIGN | op::DECRYPT | op::SIGNATURE_VERIFY => PRIVATE_KEY_OPERATION,
        _ => 0,
    };
    1u64.saturating_add(extra)
}

/// The Iteration Count a Derive Key payload states (0 if none: not PBKDF2).
fn pbkdf2_iterations(payload: &Ttlv) -> u64 {
    payload
        .child(Tag::DERIVATION_PARAMETERS)
        .and_then(|p| p.child(Tag::ITERATION_COUNT))
        .and_then(Ttlv::as_int)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// How many PRF blocks PBKDF2 computes for an output of `bits` (32 bytes when none is stated).
fn pbkdf2_blocks(bits: i64) -> u64 {
    let bytes = u64::try_from(bits).unwrap_or(0).div_ceil(8);
    let bytes = if bytes == 0 { 32 } else { bytes };
    bytes.div_ceil(SMALLEST_PRF_BLOCK)
}

/// RSA key generation dominates a key pair's cost and grows steeply with the modulus; EC
/// lengths (at most 521 bits) cost next to nothing.
fn key_pair_cost(bits: i64) -> u64 {
    match bits {
        ..=1024 => 1,
        1025..=2048 => 200,
        2049..=3072 => 600,
        _ => 2_000,
    }
}

/// The largest Cryptographic Length anywhere in `t`: as a 2.x attribute, or as a 1.x
/// Attribute named "Cryptographic Length". Recursion is bounded by the decoder's nesting
/// limit.
fn largest_length(t: &Ttlv) -> i64 {
    let own = if t.tag == Tag::CRYPTOGRAPHIC_LENGTH {
        t.as_int().map(i64::from).unwrap_or(0)
    } else if t.tag == Tag::ATTRIBUTE
        && t.child(Tag::ATTRIBUTE_NAME).and_then(Ttlv::as_text) == Some(attr::CRYPTOGRAPHIC_LENGTH)
    {
        t.child(Tag::ATTRIBUTE_VALUE)
            .and_then(Ttlv::as_int)
            .map(i64::from)
            .unwrap_or(0)
    } else {
        0
    };
    let children = match &t.value {
        Value::Structure(c) => c.iter().map(largest_length).max().unwrap_or(0),
        _ => 0,
    };
    own.max(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(operation: u32, payload: Vec<Ttlv>) -> RequestItem {
        RequestItem {
            operation,
            batch_id: None,
            payload: Ttlv::structure(Tag::REQUEST_PAYLOAD, payload),
        }
    }

    fn pbkdf2(iterations: i32) -> RequestItem {
        pbkdf2_of(iterations, 160)
    }

    fn pbkdf2_of(iterations: i32, bits: i32) -> RequestItem {
        item(
            op::DERIVE_KEY,
            vec![
                Ttlv::structure(
                    Tag::DERIVATION_PARAMETERS,
                    vec![Ttlv::integer(Tag::ITERATION_COUNT, iterations)],
                ),
                Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, bits),
            ],
        )
    }

    #[test]
    fn plain_items_cost_one_unit_each() {
        let items = vec![item(op::GET, vec![]), item(op::LOCATE, vec![])];
        assert_eq!(of_message(&items), 2);
    }

    #[test]
    fn pbkdf2_costs_a_unit_per_thousand_iterations() {
        assert_eq!(of_message(&[pbkdf2(1_000_000)]), 1_001);
        assert_eq!(of_message(&[pbkdf2(1)]), 2);
        // 1,024 items of ten million iterations: far over any budget, and no overflow.
        let many: Vec<_> = (0..1024).map(|_| pbkdf2(10_000_000)).collect();
        assert!(of_message(&many) > 10_000_000);
    }

    #[test]
    fn pbkdf2_costs_every_output_block() {
        // 256 bits: two 20-byte blocks at the smallest PRF; 4096 bits: 26.
        assert_eq!(of_message(&[pbkdf2_of(100_000, 256)]), 201);
        assert_eq!(of_message(&[pbkdf2_of(100_000, 4096)]), 2_601);
    }

    #[test]
    fn private_key_operations_cost_more_than_a_get() {
        assert_eq!(of_message(&[item(op::SIGN, vec![])]), 11);
        assert_eq!(of_message(&[item(op::DECRYPT, vec![])]), 11);
        assert_eq!(of_message(&[item(op::ENCRYPT, vec![])]), 1);
    }

    #[test]
    fn the_meter_refuses_past_the_budget_or_the_deadline() {
        let m = Meter::new(10, 8, Duration::from_secs(60));
        m.charge(2).unwrap();
        assert!(matches!(m.charge(1), Err(OpError::ServerLimitExceeded(_))));
        let late = Meter::new(10, 0, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(
            late.check_time(),
            Err(OpError::ServerLimitExceeded(_))
        ));
    }

    #[test]
    fn rsa_key_pairs_cost_by_modulus_in_both_encodings() {
        let v2 = item(
            op::CREATE_KEY_PAIR,
            vec![Ttlv::structure(
                Tag::COMMON_ATTRIBUTES,
                vec![Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 4096)],
            )],
        );
        assert_eq!(of_message(&[v2]), 2_001);
        let v1 = item(
            op::CREATE_KEY_PAIR,
            vec![Ttlv::structure(
                Tag::COMMON_TEMPLATE_ATTRIBUTE,
                vec![Ttlv::structure(
                    Tag::ATTRIBUTE,
                    vec![
                        Ttlv::text(Tag::ATTRIBUTE_NAME, "Cryptographic Length"),
                        Ttlv::integer(Tag::ATTRIBUTE_VALUE, 2048),
                    ],
                )],
            )],
        );
        assert_eq!(of_message(&[v1]), 201);
        let ec = item(
            op::CREATE_KEY_PAIR,
            vec![Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256)],
        );
        assert_eq!(of_message(&[ec]), 2);
    }
}
