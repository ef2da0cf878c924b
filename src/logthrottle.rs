//! Throttling of repetitive diagnostic log lines (refused, evicted or failed connections), so
//! a flood of them cannot flood the log: the first few lines of each period are written, the
//! rest are counted, and the next line written says how many were left out. Owns nothing but
//! the counting; the caller writes the line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets through at most `burst` events per `period`; counts the others.
#[derive(Debug)]
pub struct Throttle {
    burst: u64,
    period: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    window_start: Instant,
    used: u64,
    suppressed: u64,
}

impl Throttle {
    /// A throttle writing the first `burst` lines of every `period`.
    pub fn new(burst: u64, period: Duration) -> Throttle {
        Throttle {
            burst: burst.max(1),
            period,
            state: Mutex::new(State {
                window_start: Instant::now(),
                used: 0,
                suppressed: 0,
            }),
        }
    }

    /// The usual setting for connection diagnostics: 5 lines every 10 seconds.
    pub fn for_connections() -> Throttle {
        Throttle::new(5, Duration::from_secs(10))
    }

    /// Records one event. `Some(n)`: write this line, and say that `n` lines like it were
    /// left out since the last one written; `None`: leave this one out.
    pub fn hit(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.window_start.elapsed() >= self.period {
            s.window_start = Instant::now();
            s.used = 0;
        }
        if s.used >= self.burst {
            s.suppressed += 1;
            return None;
        }
        s.used += 1;
        Some(std::mem::take(&mut s.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_lines_pass_then_a_summary_counts_the_rest() {
        let t = Throttle::new(2, Duration::from_millis(50));
        assert_eq!(t.hit(), Some(0));
        assert_eq!(t.hit(), Some(0));
        for _ in 0..10 {
            assert_eq!(t.hit(), None);
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.hit(), Some(10), "the next line reports what was left out");
        assert_eq!(t.hit(), Some(0));
        assert_eq!(t.hit(), None);
    }
}
