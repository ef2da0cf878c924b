//! A throttle for floods of one kind of diagnostic log line (refused mirror connections, and
//! other listeners' refusals): the first few events are logged as they come, the rest of the
//! interval's events are only counted, and one summary line per interval says how many were
//! left out and what the last one was. While the flood lasts, each further interval gives one
//! summary and no individual lines; after a quiet interval the first few are logged again.
//!
//! Lock-light: counting is atomic; the description of the last event left out is stored with
//! `try_lock` and simply not updated when another thread holds the lock. The audit journal has
//! its own budget ([`crate::audit::Audit::record_refusal`]); this one is for the log only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts events of one kind and decides which to log.
#[derive(Debug)]
pub struct LogThrottle {
    /// Events logged individually at the start of a quiet interval.
    burst: u64,
    interval_ms: u64,
    origin: Instant,
    /// Start of the current interval, milliseconds after `origin`.
    window_start_ms: AtomicU64,
    /// Events counted in the current interval (starts at `burst` after a flooded interval).
    in_window: AtomicU64,
    /// Events left out since the last summary.
    suppressed: AtomicU64,
    /// Description of the last event left out.
    last: Mutex<String>,
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Log this event in full.
    pub log: bool,
    /// The summary of the interval that just ended, to log before anything else.
    pub summary: Option<Summary>,
}

/// The events left out in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// How many were left out.
    pub suppressed: u64,
    /// How long the interval lasted, in whole seconds (at least 1).
    pub secs: u64,
    /// The description of the last one left out (empty if it could not be recorded).
    pub last: String,
}

impl LogThrottle {
    /// Logs the first `burst` events of a quiet `interval`, then summarises once per interval.
    pub fn new(burst: u64, interval: Duration) -> LogThrottle {
        LogThrottle {
            burst,
            interval_ms: u64::try_from(interval.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            origin: Instant::now(),
            window_start_ms: AtomicU64::new(0),
            in_window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            last: Mutex::new(String::new()),
        }
    }

    /// Counts one event. `describe` (called only for an event left out) says what it was, for
    /// the summary; keep it short and free of secrets.
    pub fn event(&self, describe: impl FnOnce() -> String) -> Verdict {
        let summary = self.roll(false);
        if self.in_window.fetch_add(1, Ordering::AcqRel) < self.burst {
            return Verdict { log: true, summary };
        }
        self.suppressed.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut last) = self.last.try_lock() {
            *last = describe();
        }
        Verdict {
            log: false,
            summary,
        }
    }

    /// The summary of an interval that has ended with events left out, if any. Call it
    /// periodically, so the summary comes even when the flood stops.
    pub fn flush(&self) -> Option<Summary> {
        self.roll(false)
    }

    /// The summary of everything left out so far, whether or not the interval has ended
    /// (at shutdown).
    pub fn flush_now(&self) -> Option<Summary> {
        self.roll(true)
    }

    /// Starts a new interval if the current one has ended (or `force`); returns what the
    /// ended one left out. Exactly one of several racing callers wins the roll.
    fn roll(&self, force: bool) -> Option<Summary> {
        let now = self.now_ms();
        let start = self.window_start_ms.load(Ordering::Acquire);
        let elapsed = now.saturating_sub(start);
        if !force && elapsed < self.interval_ms {
            return None;
        }
        if self
            .window_start_ms
            .compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return None;
        }
        let suppressed = self.suppressed.swap(0, Ordering::AcqRel);
        // A flooded interval is followed by one without individual lines: a lasting flood
        // gives one summary per interval and nothing else.
        let spent = if suppressed > 0 { self.burst } else { 0 };
        self.in_window.store(spent, Ordering::Release);
        if suppressed == 0 {
            return None;
        }
        let last = self
            .last
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        Some(Summary {
            suppressed,
            secs: (elapsed / 1000).max(1),
            last,
        })
    }

    /// The usual setting for connection diagnostics (refused, evicted or failed connections
    /// of the KMIP and status listeners): 5 lines, then a summary every 10 seconds.
    pub fn for_connections() -> LogThrottle {
        LogThrottle::new(5, Duration::from_secs(10))
    }

    /// The short form for callers that write one kind of line and append the count:
    /// `Some(n)` means write this line and say that `n` lines like it were left out before
    /// it; `None` means leave it out.
    pub fn hit(&self) -> Option<u64> {
        let verdict = self.event(String::new);
        match (verdict.log, verdict.summary) {
            (true, summary) => Some(summary.map_or(0, |s| s.suppressed)),
            (false, Some(summary)) => Some(summary.suppressed),
            (false, None) => None,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(t: &LogThrottle, n: usize) -> (usize, Vec<Summary>) {
        let mut lines = 0;
        let mut summaries = Vec::new();
        for i in 0..n {
            let v = t.event(|| format!("event {i}"));
            lines += usize::from(v.log);
            summaries.extend(v.summary);
        }
        (lines, summaries)
    }

    #[test]
    fn the_first_few_are_logged_and_the_rest_summarised() {
        let t = LogThrottle::new(3, Duration::from_secs(3600));
        let (lines, summaries) = logged(&t, 500);
        assert_eq!(lines, 3);
        assert!(summaries.is_empty());
        assert_eq!(t.flush(), None, "the interval has not ended");
        let s = t.flush_now().unwrap();
        assert_eq!(s.suppressed, 497);
        assert_eq!(s.last, "event 499");
        assert_eq!(t.flush_now(), None, "nothing left out since");
    }

    #[test]
    fn a_lasting_flood_gives_one_summary_per_interval_and_a_quiet_interval_resets() {
        let t = LogThrottle::new(2, Duration::from_millis(200));
        assert_eq!(logged(&t, 10).0, 2);
        std::thread::sleep(Duration::from_millis(250));
        // The next interval: its first event carries the summary; nothing is logged in full.
        let (lines, summaries) = logged(&t, 10);
        assert_eq!(lines, 0);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].suppressed, 8);
        std::thread::sleep(Duration::from_millis(250));
        let s = t.flush().unwrap();
        assert_eq!((s.suppressed, s.last.as_str()), (10, "event 9"));
        // A quiet interval later, the first few are logged again.
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.flush(), None);
        assert_eq!(logged(&t, 5).0, 2);
    }

    #[test]
    fn racing_threads_count_every_event_once() {
        let t = std::sync::Arc::new(LogThrottle::new(4, Duration::from_secs(3600)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || logged(&t, 250).0)
            })
            .collect();
        let lines: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(lines, 4);
        assert_eq!(t.flush_now().unwrap().suppressed, 996);
    }
}
