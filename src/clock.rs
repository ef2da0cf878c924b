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

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (the era/day-of-era
/// method: exact for every `i64` day a `SystemTime` can hold).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian (the inverse of
/// [`civil_from_days`]; the caller checks that the date exists).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch as an RFC 3339 UTC time ("2026-11-29T13:16:18Z").
pub fn rfc3339(secs: i64) -> String {
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    fn dates_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_958_178), "2026-11-29T13:16:18Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn the_calendar_round_trips() {
        for days in [-719_468, -1, 0, 11_016, 20_794, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_secs() > 1_577_836_800);
        assert!(now_ms() / 1000 >= now_secs() - 1);
    }
}
