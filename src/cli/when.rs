//! Times and durations as operators type them on the command line: RFC 3339 date-times
//! (`2027-01-31T00:00:00Z`, `2027-01-31T01:00:00+01:00`) and durations with a unit
//! (`90d`, `12h`, `30m`, `45s`, `2w`).

/// Seconds since the epoch of an RFC 3339 date-time with `Z` or a `±HH:MM` offset; fractions
/// of a second are accepted and dropped (KMIP Date-Time has whole seconds).
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 date-time; write it like 2027-01-31T00:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(bad());
    }
    if second > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let hh = num(s.len() - 5..s.len() - 3)?;
            let mm = num(s.len() - 2..s.len())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hh * 3600 + mm * 60)
        }
        _ => return Err(bad()),
    };
    let days = crate::audit::days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Seconds in a duration such as `90d`, `12h`, `30m`, `45s` or `2w` (a bare number is
/// seconds). Refuses zero and anything past what a KMIP Interval holds (about 136 years).
pub fn parse_duration(s: &str) -> Result<u32, String> {
    let bad = |why: &str| format!("{s:?} is not a duration ({why}); write it like 90d, 12h or 30m");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad("no number"))?;
    let per: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad("the unit is one of s, m, h, d, w")),
    };
    let secs = n.checked_mul(per).ok_or_else(|| bad("too long"))?;
    if secs == 0 {
        return Err(bad("it must be longer than zero"));
    }
    u32::try_from(secs).map_err(|_| bad("too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_with_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2026-11-29T13:16:18Z"), Ok(1_795_958_178));
        assert_eq!(
            parse_rfc3339("2026-11-29T14:16:18.250+01:00"),
            Ok(1_795_958_178)
        );
        assert_eq!(
            parse_rfc3339("2026-11-29T12:16:18-01:00"),
            Ok(1_795_958_178)
        );
        for bad in [
            "2026-11-29",
            "2026-13-01T00:00:00Z",
            "2026-11-29T13:16:18",
            "tomorrow",
        ] {
            assert!(
                parse_rfc3339(bad).unwrap_err().contains("RFC 3339"),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("unit"));
        assert!(parse_duration("99999999d")
            .unwrap_err()
            .contains("too long"));
    }
}
