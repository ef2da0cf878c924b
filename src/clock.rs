//! The wall clock as Unix time: the one place akm turns a `SystemTime` into seconds or
//! milliseconds since 1970-01-01 UTC. Request times, stored dates, audit timestamps, the
//! mirror's peer status and the backup schedule all read it here, so they agree on what a
//! clock before 1970 or past the `i64` range means.
//!
//! Out of range is clamped, never an error or a panic: a time before the epoch (a clock not
//! yet set) reads as 0, and one past what an `i64` holds reads as `i64::MAX`. Code for which
//! such a time is an error of its own (a certificate's validity) asks [`try_unix_secs`].

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, now (clamped as the module says).
pub fn now_secs() -> i64 {
    unix_secs(SystemTime::now())
}

/// Milliseconds since the epoch, now (clamped as the module says).
pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// `t` in whole seconds since the epoch: 0 before it, `i64::MAX` past the `i64` range.
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// `t` in whole milliseconds since the epoch: 0 before it, `i64::MAX` past the `i64` range.
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// `t` in whole seconds since the epoch, or `None` when it is before the epoch or past the
/// `i64` range (for callers that must refuse such a time rather than clamp it).
pub fn try_unix_secs(t: SystemTime) -> Option<i64> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn before_the_epoch_reads_as_zero_and_is_refused_where_asked() {
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(unix_secs(before), 0);
        assert_eq!(unix_ms(before), 0);
        assert_eq!(try_unix_secs(before), None);
    }

    #[test]
    fn whole_units_are_truncated() {
        let t = UNIX_EPOCH + Duration::from_millis(1_234_567);
        assert_eq!(unix_secs(t), 1_234);
        assert_eq!(unix_ms(t), 1_234_567);
        assert_eq!(try_unix_secs(t), Some(1_234));
    }

    #[test]
    fn past_the_i64_range_is_clamped_or_refused() {
        // SystemTime on Linux holds any i64 seconds count: one past i64::MAX milliseconds.
        let far = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 1000 + 1);
        assert_eq!(unix_ms(far), i64::MAX);
        assert!(unix_secs(far) < i64::MAX);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_secs() > 1_577_836_800);
        assert!(now_ms() / 1000 >= now_secs() - 1);
    }
}
