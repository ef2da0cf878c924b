//! The request counters the KMIP listener updates as it works: requests by operation and
//! outcome, a latency histogram per operation, open connections, TLS handshake failures and
//! messages refused before dispatch. Every update is a few relaxed atomic additions on a
//! fixed table (no lock, no allocation), so counting costs the hot path next to nothing;
//! [`Metrics::families`] hands them to [`prom::render`], which writes the Prometheus text
//! format. A leaf: the KMIP listener and the operations update it, the status listener reads it.

pub mod prom;

use prom::{Family, Kind};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in microseconds: 50 us to 5 s, roughly
/// 1-2.5-5 per decade, which covers a cached Get and a slow RSA key generation alike.
const BUCKETS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

/// Slots for standard operation codes 0..64.
const STANDARD: usize = 64;
/// Slots for each of akm's two extension ranges (0x8000_0000.., 0x8000_0100..).
const EXTENSION: usize = 16;
/// The slot of requests whose operation is unknown or outside the ranges above.
const OTHER: usize = STANDARD + 2 * EXTENSION;
/// All slots.
const SLOTS: usize = OTHER + 1;

/// One operation's counters.
#[derive(Default)]
struct OpSlot {
    success: AtomicU64,
    failure: AtomicU64,
    /// Per bucket, not cumulative (the last one is +Inf); made cumulative when rendered.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

/// The listener's counters, shared by every connection (`Ctx::metrics`).
pub struct Metrics {
    ops: Box<[OpSlot]>,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    handshake_failures: AtomicU64,
    refused_messages: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ops: (0..SLOTS).map(|_| OpSlot::default()).collect(),
            connections_open: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            refused_messages: AtomicU64::new(0),
        }
    }
}

/// The slot of operation `code` (`None`: the item named no operation).
fn slot_of(code: Option<u32>) -> usize {
    let Some(code) = code else { return OTHER };
    let c = code as usize;
    if c < STANDARD {
        return c;
    }
    for (i, base) in [0x8000_0000u32, 0x8000_0100].into_iter().enumerate() {
        if let Some(off) = code.checked_sub(base).filter(|o| (*o as usize) < EXTENSION) {
            return STANDARD + i * EXTENSION + off as usize;
        }
    }
    OTHER
}

/// The operation label of slot `i`: `name_of` its operation code, or "other".
fn slot_label(i: usize, name_of: &dyn Fn(u32) -> String) -> String {
    let code = match i {
        i if i < STANDARD => i as u32,
        i if i < STANDARD + EXTENSION => 0x8000_0000 + (i - STANDARD) as u32,
        i if i < OTHER => 0x8000_0100 + (i - STANDARD - EXTENSION) as u32,
        _ => return "other".into(),
    };
    name_of(code)
}

/// Counts an open connection until dropped.
pub struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// A connection was accepted; it counts as open until the guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }

    /// A TLS handshake failed or timed out, or the client certificate was refused.
    pub fn handshake_failed(&self) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A request message was refused before dispatch (malformed, over a limit, bad version).
    pub fn message_refused(&self) {
        self.refused_messages.fetch_add(1, Ordering::Relaxed);
    }

    /// A dispatched request message was answered after `elapsed`: each batch item, given as
    /// (operation, succeeded), counts once under its operation and outcome and observes the
    /// message's latency.
    pub fn request_finished(
        &self,
        items: impl IntoIterator<Item = (Option<u32>, bool)>,
        elapsed: Duration,
    ) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        for (operation, ok) in items {
            let slot = &self.ops[slot_of(operation)];
            let outcome = if ok { &slot.success } else { &slot.failure };
            outcome.fetch_add(1, Ordering::Relaxed);
            slot.buckets[bucket].fetch_add(1, Ordering::Relaxed);
            slot.sum_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Batch items answered so far, over all operations and outcomes.
    pub fn requests_total(&self) -> u64 {
        self.ops
            .iter()
            .map(|s| s.success.load(Ordering::Relaxed) + s.failure.load(Ordering::Relaxed))
            .sum()
    }

    /// The counters as Prometheus families, each operation labelled `name_of` its code (the
    /// caller's vocabulary: metrics itself names no KMIP operation).
    pub fn families(&self, name_of: &dyn Fn(u32) -> String) -> Vec<Family> {
        let mut requests = Family::new(
            "akm_requests_total",
            Kind::Counter,
            "KMIP batch items answered, by operation and outcome.",
        );
        let mut latency = Family::new(
            "akm_request_duration_seconds",
            Kind::Histogram,
            "Time from dispatch to a durable audit record, per request message, by operation.",
        );
        for (i, slot) in self.ops.iter().enumerate() {
            let ok = slot.success.load(Ordering::Relaxed);
            let failed = slot.failure.load(Ordering::Relaxed);
            if ok + failed == 0 {
                continue;
            }
            let op = slot_label(i, name_of);
            for (outcome, n) in [("success", ok), ("failure", failed)] {
                requests.sample("", &[("operation", &op), ("outcome", outcome)], n as f64);
            }
            self.histogram(&mut latency, slot, &op);
        }
        let gauge = |name, help, v: f64| {
            let mut f = Family::new(name, Kind::Gauge, help);
            f.sample("", &[], v);
            f
        };
        let counter = |name, help, v: u64| {
            let mut f = Family::new(name, Kind::Counter, help);
            f.sample("", &[], v as f64);
            f
        };
        vec![
            requests,
            latency,
            gauge(
                "akm_connections_open",
                "KMIP connections open now.",
                self.open_connections() as f64,
            ),
            counter(
                "akm_connections_total",
                "KMIP connections accepted.",
                self.connections_total.load(Ordering::Relaxed),
            ),
            counter(
                "akm_tls_handshake_failures_total",
                "KMIP connections whose TLS handshake failed, timed out or presented a refused certificate.",
                self.handshake_failures.load(Ordering::Relaxed),
            ),
            counter(
                "akm_messages_refused_total",
                "KMIP request messages refused before dispatch (malformed, over a limit, unsupported version).",
                self.refused_messages.load(Ordering::Relaxed),
            ),
        ]
    }

    fn histogram(&self, family: &mut Family, slot: &OpSlot, op: &str) {
        let mut cumulative = 0u64;
        for (i, bucket) in slot.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match BUCKETS_US.get(i) {
                Some(us) => format_seconds(*us),
                None => "+Inf".to_owned(),
            };
            family.sample(
                "_bucket",
                &[("operation", op), ("le", &le)],
                cumulative as f64,
            );
        }
        let sum = slot.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        family.sample("_sum", &[("operation", op)], sum);
        family.sample("_count", &[("operation", op)], cumulative as f64);
    }
}

/// Microseconds as seconds without float noise (`0.00005`, `2.5`).
fn format_seconds(us: u64) -> String {
    let text = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the status listener gives (the journal's).
    fn names(code: u32) -> String {
        crate::kmip::operations::record_name(code)
    }

    #[test]
    fn slots_cover_standard_and_extension_codes() {
        assert_eq!(slot_of(Some(1)), 1);
        assert_eq!(slot_label(slot_of(Some(1)), &names), "Create");
        assert_eq!(slot_label(slot_of(Some(0x8000_0101)), &names), "x-Unseal");
        assert_eq!(
            slot_label(slot_of(Some(0x8000_0003)), &names),
            "x-DeleteAccount"
        );
        assert_eq!(slot_of(Some(0x8000_0200)), OTHER);
        assert_eq!(slot_of(Some(u32::MAX)), OTHER);
        assert_eq!(slot_of(None), OTHER);
        assert_eq!(slot_label(OTHER, &names), "other");
    }

    #[test]
    fn buckets_are_cumulative_and_counted() {
        let m = Metrics::default();
        m.request_finished([(Some(10), true)], Duration::from_micros(40));
        m.request_finished([(Some(10), false)], Duration::from_millis(3));
        m.request_finished([(Some(10), true)], Duration::from_secs(9));
        let text = super::prom::render(&m.families(&names));
        assert!(text.contains("akm_requests_total{operation=\"Get\",outcome=\"success\"} 2\n"));
        assert!(text.contains("akm_requests_total{operation=\"Get\",outcome=\"failure\"} 1\n"));
        assert!(
            text.contains(
                "akm_request_duration_seconds_bucket{operation=\"Get\",le=\"0.00005\"} 1\n"
            ),
            "{text}"
        );
        assert!(text
            .contains("akm_request_duration_seconds_bucket{operation=\"Get\",le=\"0.005\"} 2\n"));
        assert!(
            text.contains("akm_request_duration_seconds_bucket{operation=\"Get\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("akm_request_duration_seconds_count{operation=\"Get\"} 3\n"));
        assert_eq!(m.requests_total(), 3);
    }

    #[test]
    fn open_connections_follow_the_guards() {
        let m = Metrics::default();
        let a = m.connection_opened();
        let b = m.connection_opened();
        assert_eq!(m.open_connections(), 2);
        drop(a);
        drop(b);
        assert_eq!(m.open_connections(), 0);
        assert_eq!(format_seconds(5_000_000), "5");
        assert_eq!(format_seconds(250), "0.00025");
    }
}
