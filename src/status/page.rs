//! The status page for people: one server-rendered HTML document with inline CSS and no
//! script, read-only. Shows the server state, version and uptime, object counts by state,
//! mirror peers and their lag, audit journal and sink state, and the newest audit events
//! (operation, outcome, time; and to administrators only, who and which object: never key
//! material). Every value is HTML-escaped, since names and identifiers come from clients.

use super::gauges::{object_type_name, state_name};
use super::snapshot::{RecentEvent, Snapshot};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2733;background:#f6f8fa}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px}\
.sub{color:#5a6776;margin-bottom:16px}\
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}\
.ok{background:#1f883d}.bad{background:#cf222e}\
.cards{display:flex;gap:12px;flex-wrap:wrap}\
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;min-width:130px}\
.card b{display:block;font-size:20px}\
table{border-collapse:collapse;background:#fff;border:1px solid #d0d7de;font-size:13px}\
th,td{padding:4px 8px;border-bottom:1px solid #eaeef2;text-align:left;white-space:nowrap;\
max-width:340px;overflow:hidden;text-overflow:ellipsis}\
th{background:#eef1f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.failure{color:#cf222e}.success{color:#1f883d}.muted{color:#5a6776}";

/// Seconds as `1d 2h 3m 4s`, leaving out leading zero units.
fn duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// A journal time (`2026-01-02T03:04:05.678Z`) to the second, as `2026-01-02 03:04:05`.
fn short_time(time: &str) -> String {
    match time.get(..19) {
        Some(t) if time.len() == 24 => t.replacen('T', " ", 1),
        _ => time.to_owned(),
    }
}

/// How much the reader may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Everything, including users, clients, object identifiers and names (a client that
    /// presented an administrator certificate).
    Full,
    /// Counts and states, and the recent events without who or which object.
    Aggregate,
}

/// The whole page.
pub fn render(s: &Snapshot, events: &Result<Vec<RecentEvent>, String>, detail: Detail) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>akm status</title><style>{STYLE}</style></head><body>"
    );
    header(&mut out, s);
    objects(&mut out, s);
    certificates(&mut out, s, detail);
    audit(&mut out, s);
    mirror(&mut out, s);
    recent(&mut out, events, detail);
    out.push_str("</body></html>\n");
    out
}

fn header(out: &mut String, s: &Snapshot) {
    let (class, text) = match s.unavailable() {
        None => ("ok", "serving".to_owned()),
        Some(why) => ("bad", format!("not serving: {why}")),
    };
    let _ = write!(
        out,
        "<h1>akm key server <span id=\"state\" class=\"badge {class}\">{}</span></h1>\
         <div class=\"sub\">version {} &middot; crypto {} &middot; up {} &middot; KEK {} ({}) &middot; \
         {} KMIP connections open &middot; {} requests answered</div>",
        escape(&text),
        escape(env!("CARGO_PKG_VERSION")),
        escape(&crate::crypto::backend::module().describe()),
        duration(s.uptime_secs),
        if s.seal.sealed { "sealed" } else { "unsealed" },
        escape(s.seal.scheme),
        s.open_connections,
        s.requests_total,
    );
    if let Some(db) = &s.database {
        let text = match db {
            Ok(h) => format!(
                "PostgreSQL store: node {}, reached in {} ms, {} of {} reader connections open",
                h.node_id,
                h.round_trip.as_millis(),
                h.readers_open,
                h.pool_size
            ),
            Err(e) => format!("PostgreSQL store: unreachable ({e})"),
        };
        let _ = write!(
            out,
            "<div class=\"sub\" id=\"database\">{}</div>",
            escape(&text)
        );
    }
}

/// The server certificate's expiry, and the client certificates within the warning
/// threshold (named only to administrators; others see how many).
fn certificates(out: &mut String, s: &Snapshot, detail: Detail) {
    let (certs, threshold) = &s.certificates;
    if certs.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Certificates</h2><table id=\"certificates\"><tr><th>certificate</th>\
                  <th>serial</th><th>expires</th><th>left</th></tr>",
    );
    let mut hidden = 0;
    for c in certs {
        let left = c.not_after - s.now_unix;
        let soon = left <= *threshold;
        if c.kind == "client" && (!soon || detail == Detail::Aggregate) {
            hidden += usize::from(soon);
            continue;
        }
        let when = crate::audit::format_time_ms(c.not_after.saturating_mul(1000));
        let (class, left_text) = match (left <= 0, soon) {
            (true, _) => ("failure", "EXPIRED".to_owned()),
            (false, true) => ("failure", format!("{} (renew soon)", duration(left))),
            (false, false) => ("success", duration(left)),
        };
        let _ = write!(
            out,
            "<tr><td>{} {}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            escape(c.kind),
            escape(&c.subject),
            escape(&c.serial),
            escape(&short_time(&when)),
            escape(&left_text)
        );
    }
    out.push_str("</table>");
    if hidden > 0 {
        let _ = write!(
            out,
            "<p class=\"failure\">{hidden} client certificate(s) expire soon (shown to administrators)</p>"
        );
    }
}

fn objects(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Objects</h2>");
    let counts = match &s.objects {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"failure\">cannot count objects: {}</p>",
                escape(e)
            );
            return;
        }
    };
    let mut by_state: BTreeMap<u32, u64> = BTreeMap::new();
    for c in counts {
        *by_state.entry(c.state).or_default() += c.count;
    }
    let total: u64 = by_state.values().sum();
    let _ = write!(
        out,
        "<div class=\"cards\" id=\"key-counts\"><div class=\"card\">total<b>{total}</b></div>"
    );
    for (state, n) in &by_state {
        let _ = write!(
            out,
            "<div class=\"card\">{}<b>{n}</b></div>",
            escape(&state_name(*state))
        );
    }
    out.push_str("</div>");
    if counts.is_empty() {
        return;
    }
    out.push_str("<p></p><table><tr><th>type</th><th>state</th><th>count</th></tr>");
    for c in counts {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&object_type_name(c.object_type)),
            escape(&state_name(c.state)),
            c.count
        );
    }
    out.push_str("</table>");
}

fn audit(out: &mut String, s: &Snapshot) {
    let j = &s.journal;
    let _ = write!(
        out,
        "<h2>Audit journal</h2><div class=\"cards\">\
         <div class=\"card\">journal<b class=\"{}\">{}</b></div>\
         <div class=\"card\">last serial<b>{}</b></div>\
         <div class=\"card\">last checkpoint<b>{}</b></div>\
         <div class=\"card\">waiting<b>{}</b></div></div>",
        if j.healthy { "success" } else { "failure" },
        if j.healthy { "writable" } else { "UNWRITABLE" },
        j.serial,
        if j.checkpoint_serial > 0 {
            format!(
                "#{} &middot; {} ago",
                j.checkpoint_serial,
                duration((s.now_unix - j.checkpoint_ms / 1000).max(0))
            )
        } else {
            "none yet".into()
        },
        j.waiting
    );
    if j.sinks.is_empty() {
        out.push_str("<p class=\"muted\">no syslog sinks configured</p>");
        return;
    }
    out.push_str("<p></p><table><tr><th>sink</th><th>backlog (records)</th></tr>");
    for (name, backlog) in &j.sinks {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{backlog}</td></tr>",
            escape(name)
        );
    }
    out.push_str("</table>");
}

fn mirror(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Mirror peers</h2>");
    let m = match &s.mirror {
        None => {
            out.push_str("<p class=\"muted\">mirroring is not configured</p>");
            return;
        }
        Some(Err(e)) => {
            let _ = write!(
                out,
                "<p class=\"failure\">mirror status unavailable: {}</p>",
                escape(e)
            );
            return;
        }
        Some(Ok(m)) => m,
    };
    let _ = write!(
        out,
        "<p>node {} &middot; mode {} &middot; head {} &middot; status {} old</p>\
         <table><tr><th>peer</th><th>address</th><th>out</th><th>lag (entries)</th>\
         <th>lag (s)</th><th>in</th><th>behind</th><th>settings</th><th>last error</th></tr>",
        escape(&m.node_id),
        escape(&m.mode),
        m.head,
        duration((s.now_unix - m.updated_unix).max(0))
    );
    let up = |b: bool| {
        if b {
            "<span class=\"success\">up</span>"
        } else {
            "<span class=\"failure\">down</span>"
        }
    };
    for p in &m.peers {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.node_id),
            escape(&p.address),
            up(p.outbound_connected),
            p.lag_entries,
            p.lag_seconds,
            up(p.inbound_connected),
            p.behind_entries,
            escape(&p.settings_verdict()),
            escape(p.last_error.as_deref().unwrap_or("-"))
        );
    }
    out.push_str("</table>");
}

fn recent(out: &mut String, events: &Result<Vec<RecentEvent>, String>, detail: Detail) {
    out.push_str("<h2>Recent audit events</h2>");
    let events = match events {
        Ok(e) => e,
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"failure\">cannot read the audit journal: {}</p>",
                escape(e)
            );
            return;
        }
    };
    if detail == Detail::Aggregate {
        recent_aggregate(out, events);
        return;
    }
    out.push_str(
        "<table id=\"audit-events\"><tr><th>serial</th><th>time (UTC)</th><th>event</th>\
         <th>operation</th><th>outcome</th><th>reason</th><th>user</th><th>client</th>\
         <th>object</th><th>name</th></tr>",
    );
    for e in events {
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.serial,
            escape(&short_time(&e.time)),
            escape(&e.event),
            escape(&e.operation),
            outcome_class(e),
            escape(&e.outcome),
            escape(&e.reason),
            escape(&e.user),
            escape(&e.client),
            escape(&e.uid),
            escape(&e.name),
        );
    }
    out.push_str("</table>");
}

/// The recent events without who made them or on which object: for readers without an
/// administrator certificate.
fn recent_aggregate(out: &mut String, events: &[RecentEvent]) {
    out.push_str(
        "<p class=\"muted\">users, clients and objects are shown only to a client that \
         presents an administrator certificate</p>\
         <table id=\"audit-events\"><tr><th>serial</th><th>time (UTC)</th><th>event</th>\
         <th>operation</th><th>outcome</th><th>reason</th></tr>",
    );
    for e in events {
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td>\
             <td>{}</td></tr>",
            e.serial,
            escape(&short_time(&e.time)),
            escape(&e.event),
            escape(&e.operation),
            outcome_class(e),
            escape(&e.outcome),
            escape(&e.reason),
        );
    }
    out.push_str("</table>");
}

fn outcome_class(e: &RecentEvent) -> &'static str {
    if e.outcome == "failure" {
        "failure"
    } else {
        "success"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_formats_durations() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(65), "1m 5s");
        assert_eq!(duration(3_700), "1h 1m 40s");
        assert_eq!(duration(90_061), "1d 1h 1m 1s");
        assert_eq!(
            short_time("2026-01-02T03:04:05.678Z"),
            "2026-01-02 03:04:05"
        );
        assert_eq!(short_time("odd"), "odd");
    }
}
