//! Carriers of an audit record: the message body (`key=value`, CEF or LEEF) and its syslog
//! header (RFC 5424 or RFC 3164), and the reverse: finding a record in any line a journal or
//! a SIEM holds. Every carrier keeps the record's fields in order with their escaped values
//! (only CEF adds its own escaping of `\`), so the verifier rebuilds the exact canonical bytes.
//! A few fields use the carrier's standard key names (CEF `src`, LEEF `usrName`), mapped both
//! ways.

use super::record::{Record, RecordError};
use super::{format_time_ms, parse_time_ms};

/// The message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The record's `key=value` line.
    KeyValue,
    /// ArcSight Common Event Format.
    Cef,
    /// IBM QRadar Log Event Extended Format 2.0, `^`-delimited.
    Leef,
}

/// The syslog header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RFC 5424.
    Rfc5424,
    /// RFC 3164 (BSD syslog).
    Rfc3164,
}

const CEF_KEYS: &[(&str, &str)] = &[
    ("client", "src"),
    ("client_port", "spt"),
    ("user", "suser"),
    ("operation", "act"),
];
const LEEF_KEYS: &[(&str, &str)] = &[
    ("client", "src"),
    ("client_port", "srcPort"),
    ("user", "usrName"),
];
const LEEF_DELIMITER: char = '^';
const VENDOR: &str = "akm|akm";

fn map_key<'a>(table: &[(&'a str, &'a str)], key: &'a str, forward: bool) -> &'a str {
    table
        .iter()
        .find(|(ours, theirs)| {
            if forward {
                *ours == key
            } else {
                *theirs == key
            }
        })
        .map(|(ours, theirs)| if forward { *theirs } else { *ours })
        .unwrap_or(key)
}

/// The severity: failures are warnings, undone batch items notices, everything else
/// informational.
pub fn severity(r: &Record) -> u8 {
    match r.get("outcome") {
        Some("failure") => 4,
        Some("undone") => 5,
        _ => 6,
    }
}

/// The message body of `r` in `format`.
pub fn body(format: Format, r: &Record) -> String {
    let event = r.get("event").unwrap_or("audit");
    match format {
        Format::KeyValue => r.to_line(),
        Format::Cef => {
            let ext: Vec<String> = r
                .fields
                .iter()
                .map(|(k, v)| format!("{}={}", map_key(CEF_KEYS, k, true), v.replace('\\', "\\\\")))
                .collect();
            let name = r.get("operation").unwrap_or(event);
            // CEF severity runs 0-10: 3 for routine, 7 for a failure.
            let sev = if severity(r) == 4 { 7 } else { 3 };
            format!(
                "CEF:0|{VENDOR}|{}|{event}|{name}|{sev}|{}",
                env!("CARGO_PKG_VERSION"),
                ext.join(" ")
            )
        }
        Format::Leef => {
            let attrs: Vec<String> = r
                .fields
                .iter()
                .map(|(k, v)| format!("{}={v}", map_key(LEEF_KEYS, k, true)))
                .collect();
            format!(
                "LEEF:2.0|{VENDOR}|{}|{event}|{LEEF_DELIMITER}|{}",
                env!("CARGO_PKG_VERSION"),
                attrs.join(&LEEF_DELIMITER.to_string())
            )
        }
    }
}

/// A whole syslog message (no framing octets, no newline). An empty `hostname` leaves the
/// host out of an RFC 3164 message (the local-socket form).
pub fn syslog_message(
    framing: Framing,
    facility: u8,
    hostname: &str,
    app_name: &str,
    r: &Record,
    body: &str,
) -> String {
    let ms = r.get("time").and_then(parse_time_ms).unwrap_or(0);
    let header = Header {
        framing,
        facility,
        severity: severity(r),
        hostname,
        app_name,
        msgid: r.get("event").unwrap_or("-"),
    };
    syslog_line(&header, ms, body)
}

/// The syslog header fields of one message.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// RFC 5424 or RFC 3164.
    pub framing: Framing,
    /// The facility number.
    pub facility: u8,
    /// The severity (3 error, 4 warning, 6 informational, 7 debug).
    pub severity: u8,
    /// The HOSTNAME; empty leaves it out of an RFC 3164 message (the local-socket form).
    pub hostname: &'a str,
    /// The APP-NAME / tag.
    pub app_name: &'a str,
    /// The RFC 5424 MSGID (`-` for none).
    pub msgid: &'a str,
}

/// A whole syslog message with `header`, stamped `ms` (milliseconds since the epoch).
pub fn syslog_line(header: &Header<'_>, ms: i64, body: &str) -> String {
    let pri = u16::from(header.facility) * 8 + u16::from(header.severity);
    let pid = std::process::id();
    let (hostname, app_name) = (header.hostname, header.app_name);
    match header.framing {
        Framing::Rfc5424 => {
            let msgid = header.msgid;
            format!(
                "<{pri}>1 {} {hostname} {app_name} {pid} {msgid} - {body}",
                format_time_ms(ms)
            )
        }
        // Local sockets (/dev/log) take the BSD form without a host name, as libc sends it.
        Framing::Rfc3164 if hostname.is_empty() => {
            format!("<{pri}>{} {app_name}[{pid}]: {body}", bsd_time(ms))
        }
        Framing::Rfc3164 => format!(
            "<{pri}>{} {hostname} {app_name}[{pid}]: {body}",
            bsd_time(ms)
        ),
    }
}

/// `Mmm dd hh:mm:ss` (UTC) for RFC 3164.
fn bsd_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = format_time_ms(ms);
    let month: usize = t[5..7].parse().unwrap_or(1);
    let day: u32 = t[8..10].parse().unwrap_or(1);
    format!("{} {day:>2} {}", MONTHS[month.clamp(1, 12) - 1], &t[11..19])
}

/// Finds the audit record in `line` — a journal line, or a syslog line as a receiver wrote
/// it, carrying key=value, CEF or LEEF. `None` when the line carries no akm record at all.
pub fn extract(line: &str) -> Option<Result<Record, RecordError>> {
    if let Some(i) = line.find("CEF:0|akm|akm|") {
        return Some(parse_cef(&line[i..]));
    }
    if let Some(i) = line.find("LEEF:2.0|akm|akm|") {
        return Some(parse_leef(&line[i..]));
    }
    let start = if line.starts_with("v=1 ") {
        0
    } else {
        line.find(" v=1 serial=")? + 1
    };
    Some(Record::parse_line(line[start..].trim_end()))
}

/// The text after the `n`th `|` of a header.
fn after_pipes(s: &str, n: usize) -> Option<&str> {
    let mut rest = s;
    for _ in 0..n {
        rest = &rest[rest.find('|')? + 1..];
    }
    Some(rest)
}

fn parse_cef(s: &str) -> Result<Record, RecordError> {
    let ext = after_pipes(s, 7).ok_or(RecordError::Malformed("CEF header"))?;
    let mut r = Record::default();
    for f in ext.trim_end().split(' ').filter(|f| !f.is_empty()) {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| RecordError::NotKeyValue(f.chars().take(40).collect()))?;
        r.fields.push((
            map_key(CEF_KEYS, k, false).to_owned(),
            v.replace("\\\\", "\\"),
        ));
    }
    Ok(r)
}

fn parse_leef(s: &str) -> Result<Record, RecordError> {
    let attrs = after_pipes(s, 6).ok_or(RecordError::Malformed("LEEF header"))?;
    let mut r = Record::default();
    for f in attrs
        .trim_end()
        .split(LEEF_DELIMITER)
        .filter(|f| !f.is_empty())
    {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| RecordError::NotKeyValue(f.chars().take(40).collect()))?;
        r.fields
            .push((map_key(LEEF_KEYS, k, false).to_owned(), v.to_owned()));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut r = Record::default();
        for (k, v) in [
            ("v", "1"),
            ("serial", "42"),
            ("time", "2026-11-29T13:22:27.123Z"),
            ("server", "kms1"),
            ("event", "kmip"),
            ("client", "10.0.0.7"),
            ("client_port", "51000"),
            ("user", "alice o'brien"),
            ("operation", "Get"),
            ("outcome", "failure"),
            ("reason", "PermissionDenied"),
            ("prev", "ab"),
        ] {
            r.push(k, v);
        }
        let h = r.compute_hash();
        r.push("hash", h);
        r
    }

    #[test]
    fn every_format_in_every_framing_gives_back_the_record() {
        let r = sample();
        for format in [Format::KeyValue, Format::Cef, Format::Leef] {
            for framing in [Framing::Rfc5424, Framing::Rfc3164] {
                let b = body(format, &r);
                let msg = syslog_message(framing, 10, "kms1", "akm-audit", &r, &b);
                // As rsyslog's file output writes it: its own timestamp and host first.
                let line = format!("2026-11-29T13:22:28+00:00 kms1 akm-audit[1]: {b}");
                for l in [msg.as_str(), line.as_str()] {
                    let back = extract(l).unwrap().unwrap();
                    assert_eq!(back, r, "{format:?} {framing:?}: {l}");
                    assert_eq!(back.compute_hash(), r.get("hash").unwrap());
                }
            }
        }
    }

    #[test]
    fn headers_follow_the_rfcs() {
        let r = sample();
        let m = syslog_message(Framing::Rfc5424, 10, "kms1", "akm-audit", &r, "x");
        // authpriv (10) * 8 + warning (4)
        assert!(
            m.starts_with("<84>1 2026-11-29T13:22:27.123Z kms1 akm-audit "),
            "{m}"
        );
        assert!(m.ends_with(" kmip - x"), "{m}");
        let m = syslog_message(Framing::Rfc3164, 10, "kms1", "akm-audit", &r, "x");
        assert!(m.starts_with("<84>Nov 29 13:22:27 kms1 akm-audit["), "{m}");
        let m = syslog_message(Framing::Rfc3164, 10, "", "akm-audit", &r, "x");
        assert!(m.starts_with("<84>Nov 29 13:22:27 akm-audit["), "{m}");
        assert!(body(Format::Cef, &r).starts_with("CEF:0|akm|akm|"));
        assert!(body(Format::Cef, &r).contains(" suser=alice\\\\x20o\\\\x27brien "));
        assert!(body(Format::Leef, &r).contains("^usrName=alice\\x20o\\x27brien^"));
    }

    #[test]
    fn lines_without_a_record_are_skipped_and_broken_ones_reported() {
        assert!(extract("rsyslogd: [origin software=\"rsyslogd\"] start").is_none());
        assert!(extract("x v=1 serial=3 junk").unwrap().is_err());
        assert!(extract("CEF:0|akm|akm|0.1|kmip").unwrap().is_err());
    }
}
