//! Time-of-day backup schedules (`[backup] schedule`), in UTC: `daily HH:MM`, a 5-field cron
//! expression (`minute hour day-of-month month day-of-week`), or a 6-field one with seconds
//! first. Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list
//! of those; day-of-week is 0-7 (0 and 7 are Sunday). As in cron, when both day-of-month and
//! day-of-week are restricted a day matching either runs. Written here rather than taken from
//! a crate: the whole grammar is this page, and it adds no dependency to a key server.

/// A parsed schedule: the allowed values of each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSpec {
    seconds: Vec<u32>,
    minutes: Vec<u32>,
    hours: Vec<u32>,
    days: Vec<u32>,
    months: Vec<u32>,
    weekdays: Vec<u32>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// The most days searched for the next run (a spec such as `0 0 31 2 *` never runs).
const SEARCH_DAYS: i64 = 366 * 5;

impl CronSpec {
    /// Parses a schedule; the error says what is wrong and what is accepted.
    pub fn parse(text: &str) -> Result<CronSpec, String> {
        let text = text.trim();
        if let Some(at) = text.strip_prefix("daily ") {
            let (h, m) = at
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("{at:?} is not a time of day HH:MM"))?;
            let h = number(h, 0, 23, "hour")?;
            let m = number(m, 0, 59, "minute")?;
            return CronSpec::parse(&format!("0 {m} {h} * * *"));
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let fields: Vec<&str> = match fields.len() {
            5 => std::iter::once("0").chain(fields).collect(),
            6 => fields,
            n => {
                return Err(format!(
                    "{n} fields: give \"daily HH:MM\" or 5 cron fields \
                     (minute hour day-of-month month day-of-week), e.g. \"30 2 * * *\""
                ))
            }
        };
        let mut weekdays = field(fields[5], 0, 7, "day-of-week")?;
        // 7 is Sunday too.
        if weekdays.contains(&7) {
            weekdays.retain(|d| *d != 7);
            if !weekdays.contains(&0) {
                weekdays.insert(0, 0);
            }
        }
        Ok(CronSpec {
            seconds: field(fields[0], 0, 59, "second")?,
            minutes: field(fields[1], 0, 59, "minute")?,
            hours: field(fields[2], 0, 23, "hour")?,
            days: field(fields[3], 1, 31, "day-of-month")?,
            months: field(fields[4], 1, 12, "month")?,
            weekdays,
            days_restricted: fields[3] != "*",
            weekdays_restricted: fields[5] != "*",
        })
    }

    fn day_matches(&self, days_since_epoch: i64) -> bool {
        let (_, month, day) = civil_from_days(days_since_epoch);
        // 1970-01-01 was a Thursday (4).
        let weekday = (days_since_epoch + 4).rem_euclid(7) as u32;
        if !self.months.contains(&month) {
            return false;
        }
        let dom = self.days.contains(&day);
        let dow = self.weekdays.contains(&weekday);
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            _ => dom && dow,
        }
    }

    /// The first time strictly after `after` (seconds since the epoch, UTC) the schedule
    /// fires, or `None` if it never does within five years.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let first_day = after.div_euclid(86_400);
        for day in first_day..first_day + SEARCH_DAYS {
            if !self.day_matches(day) {
                continue;
            }
            let start = day * 86_400;
            for h in &self.hours {
                for m in &self.minutes {
                    for s in &self.seconds {
                        let t = start + i64::from(h * 3600 + m * 60 + s);
                        if t > after {
                            return Some(t);
                        }
                    }
                }
            }
        }
        None
    }
}

fn number(text: &str, lo: u32, hi: u32, what: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("{what} {text:?} must be a number from {lo} to {hi}"))
}

/// The sorted values one field allows.
fn field(text: &str, lo: u32, hi: u32, what: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, number(s, 1, hi.max(1), &format!("{what} step"))?),
            None => (part, 1),
        };
        let (a, b) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a, lo, hi, what)?, number(b, lo, hi, what)?),
                None if part.contains('/') => (number(r, lo, hi, what)?, hi),
                None => {
                    let n = number(r, lo, hi, what)?;
                    (n, n)
                }
            },
        };
        if a > b {
            return Err(format!("{what} range {range:?} runs backwards"));
        }
        out.extend((a..=b).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let (y, m, d) = crate::clock::civil_from_days(days);
    // Month and day are 1-12 and 1-31 by construction.
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T11:58:44Z (a Monday).
    const NOW: i64 = 1_796_644_724;

    fn at(spec: &str, after: i64) -> i64 {
        CronSpec::parse(spec).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn the_calendar_is_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(NOW / 86_400), (2026, 12, 7));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn daily_runs_today_if_still_ahead_else_tomorrow() {
        let midnight = NOW - NOW % 86_400;
        assert_eq!(
            at("daily 02:30", NOW),
            midnight + 86_400 + 2 * 3600 + 30 * 60
        );
        assert_eq!(at("daily 12:00", NOW), midnight + 12 * 3600);
        assert_eq!(
            at("daily 12:00", midnight + 12 * 3600),
            midnight + 86_400 + 12 * 3600
        );
        assert_eq!(at("30 2 * * *", NOW), at("daily 02:30", NOW));
    }

    #[test]
    fn steps_ranges_lists_and_weekdays() {
        assert_eq!(at("*/15 * * * *", NOW), NOW - NOW % 900 + 900);
        assert_eq!(at("*/5 * * * * *", NOW), NOW - NOW % 5 + 5);
        let midnight = NOW - NOW % 86_400;
        // Mondays and Fridays at 09:00: today (Monday) is past 09:00, so Friday the 11th.
        assert_eq!(at("0 9 * * 1,5", NOW), midnight + 4 * 86_400 + 9 * 3600);
        // Sunday as 7: the 13th.
        assert_eq!(at("0 0 * * 7", NOW), midnight + 6 * 86_400);
        // The first of the month, or any Sunday (cron's either-day rule): Sunday the 13th.
        assert_eq!(at("0 0 1 * 0", NOW), midnight + 6 * 86_400);
        // 1 January 2027.
        assert_eq!(at("0 0 1 1 *", NOW), midnight + 25 * 86_400);
        assert_eq!(at("0 8-10/2 * * *", NOW), midnight + 86_400 + 8 * 3600);
        assert!(CronSpec::parse("0 0 31 2 *")
            .unwrap()
            .next_after(NOW)
            .is_none());
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, says) in [
            ("daily 25:00", "hour"),
            ("daily 2.30", "HH:MM"),
            ("61 * * * *", "minute"),
            ("* * *", "fields"),
            ("0 5-2 * * *", "backwards"),
            ("0 0 * 13 *", "month"),
            ("*/0 * * * *", "step"),
        ] {
            let e = CronSpec::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
