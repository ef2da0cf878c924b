//! The console's other pages: the overview (serving state, seal status and unseal progress,
//! key counts, journal, certificates nearing expiry), dual control (pending requests to
//! approve, open windows), audit (recent records with search, chain verification, CSV
//! export), mirroring (peers, lag, errors) and configuration (the file read-only, reload).
//! Reads reuse the status listener's snapshot and journal tail and the audit verifier;
//! approve and reload are KMIP items through [`super::dispatch`]. All but the overview are
//! for administrators (the router checks).

use super::html::{self, button_form, escape, time_with_age, Notice};
use super::http::Response;
use super::{dispatch, outcome_notice, Call, Console};
use crate::kmip::custody::{OP_AUTHORIZE, TAG_REQUEST_ID};
use crate::kmip::extension::OP_RELOAD_CONFIG;
use crate::status::gauges::{object_type_name, state_name};
use crate::status::snapshot::{read_tail, RecentEvent};
use crate::ttlv::Ttlv;
use std::fmt::Write;

/// Most audit records one page or export reads.
const MAX_AUDIT_ROWS: usize = 1000;

/// Config keys whose values are never shown (none should hold secrets, but a file may).
const SECRET_WORDS: &[&str] = &["password", "passphrase", "secret", "token"];

fn now() -> i64 {
    crate::clock::now_secs()
}

/// GET /: the server at a glance.
pub fn overview(console: &Console, call: &Call) -> Response {
    let snap = console.source.snapshot();
    let mut body = String::new();
    let serving = match snap.unavailable() {
        None => "<b class=\"ok\">serving</b>".to_owned(),
        Some(why) => format!("<b class=\"bad\">not serving: {}</b>", escape(&why)),
    };
    let seal = &snap.seal;
    let seal_text = if seal.sealed {
        format!(
            "<b class=\"bad\">sealed</b> ({}: {} of {} shares accepted)",
            escape(seal.scheme),
            seal.progress,
            seal.threshold
        )
    } else {
        format!("<b class=\"ok\">unsealed</b> ({})", escape(seal.scheme))
    };
    let _ = write!(
        body,
        "<div class=\"cards\"><div class=\"card\" id=\"serving\">Server<b>{serving}</b></div>\
         <div class=\"card\" id=\"seal\">KEK<b>{seal_text}</b></div>\
         <div class=\"card\">Uptime<b>{}</b></div>\
         <div class=\"card\">Requests<b>{}</b></div></div>",
        escape(&html::relative_age(snap.uptime_secs).replace(" ago", "")),
        snap.requests_total
    );
    if !seal.sealed && !seal.kek_id.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\">KEK id <span class=\"mono\">{}</span></p>",
            escape(&seal.kek_id)
        );
    }
    if call.viewer.admin {
        body.push_str(&counts_table(&snap.objects));
        let j = &snap.journal;
        let _ = write!(
            body,
            "<h2>Audit journal</h2><table class=\"kv\"><tr><th>State</th><td>{}</td></tr>\
             <tr><th>Last record</th><td>{}</td></tr><tr><th>Last checkpoint</th><td>{}</td></tr></table>",
            if j.healthy { "<b class=\"ok\">writable</b>" } else { "<b class=\"bad\">cannot be written</b>" },
            j.serial,
            if j.checkpoint_ms > 0 { time_with_age(j.checkpoint_ms / 1000, now()) } else { "none yet".into() },
        );
        body.push_str(&certificates_table(
            "Certificates",
            &snap.certificates,
            now(),
        ));
        body.push_str(
            "<p><a href=\"/certificates\">Every issued certificate, and how to revoke one</a></p>",
        );
    }
    Response::html(
        200,
        html::page(&call.viewer, "Overview", "Overview", None, &body),
    )
}

fn counts_table(objects: &Result<Vec<crate::store::ObjectCount>, String>) -> String {
    let mut out = String::from(
        "<h2>Objects</h2><table id=\"counts\"><thead><tr><th>Type</th><th>State</th><th>Count</th></tr></thead><tbody>",
    );
    match objects {
        Ok(counts) => {
            for c in counts {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    escape(&object_type_name(c.object_type)),
                    escape(&state_name(c.state)),
                    c.count
                );
            }
        }
        Err(e) => {
            let _ = write!(
                out,
                "<tr><td colspan=\"3\" class=\"bad\">{}</td></tr>",
                escape(e)
            );
        }
    }
    out.push_str("</tbody></table>");
    out
}

/// The certificates the expiry watch reads, soonest expiry first, those within the warning
/// period in red.
pub(super) fn certificates_table(
    heading: &str,
    certs: &(Vec<crate::certexpiry::Expiry>, i64),
    now: i64,
) -> String {
    let (list, warn) = certs;
    let mut out = format!(
        "<h2>{heading}</h2><table id=\"certificates\"><thead><tr><th>Kind</th><th>Subject</th>\
         <th>Serial</th><th>Expires</th></tr></thead><tbody>",
    );
    for c in list.iter().take(50) {
        let soon = c.not_after - now < *warn;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"{}\">{}</td></tr>",
            escape(c.kind),
            escape(&c.subject),
            escape(&c.serial),
            if soon { "bad" } else { "" },
            time_with_age(c.not_after, now)
        );
    }
    if list.is_empty() {
        out.push_str("<tr><td colspan=\"4\" class=\"muted\">none watched</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// GET /dual: requests refused under dual control, waiting for a second administrator, and
/// the windows open.
pub fn dual(console: &Console, call: &Call) -> Response {
    dual_page(console, call, None)
}

fn dual_page(console: &Console, call: &Call, notice: Option<Notice>) -> Response {
    let t = now();
    let dual = &console.ctx().dual;
    let mut body = String::from(
        "<p>A guarded operation runs only in a window a second administrator opened. A refused \
         attempt waits here; another administrator may approve it (never the requester).</p>\
         <h2>Waiting for approval</h2><table id=\"pending\"><thead><tr><th>Request</th><th>User</th>\
         <th>Operation</th><th>Asked</th><th></th></tr></thead><tbody>",
    );
    let pending = dual.pending_requests(t);
    for (id, user, operation, at) in &pending {
        let approve = if *user == call.viewer.cn {
            "<span class=\"muted\">yours: another administrator must approve</span>".to_owned()
        } else {
            button_form(
                &call.viewer,
                "/dual/approve",
                &[("id", id)],
                "Approve",
                "primary",
            )
        };
        let _ = write!(
            body,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{approve}</td></tr>",
            escape(id),
            escape(user),
            escape(operation),
            time_with_age(*at, t)
        );
    }
    if pending.is_empty() {
        body.push_str("<tr><td colspan=\"5\" class=\"muted\">none</td></tr>");
    }
    body.push_str(
        "</tbody></table><h2>Open windows</h2><table id=\"windows\"><thead><tr><th>User</th>\
         <th>Operation</th><th>Opened by</th><th>Closes</th></tr></thead><tbody>",
    );
    let windows = dual.open_windows(t);
    for g in &windows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&g.user),
            escape(&g.operation),
            escape(&g.by),
            time_with_age(g.until, t)
        );
    }
    if windows.is_empty() {
        body.push_str("<tr><td colspan=\"4\" class=\"muted\">none</td></tr>");
    }
    body.push_str("</tbody></table>");
    Response::html(
        200,
        html::page(
            &call.viewer,
            "Dual control",
            "Dual control",
            notice.as_ref(),
            &body,
        ),
    )
}

/// POST /dual/approve: Authorize with the pending request's id, as the caller.
pub fn approve(console: &Console, call: &Call) -> Response {
    let Some(id) = call.req.field("id") else {
        return dual_page(console, call, Some(Notice::error("no request named")));
    };
    let payload = vec![Ttlv::text(TAG_REQUEST_ID, id)];
    let notice = match dispatch(console, call, &[(OP_AUTHORIZE, payload)]) {
        Ok(items) => {
            outcome_notice(
                items.first(),
                format!("approved request {id}: its window is open"),
            )
            .0
        }
        Err(e) => Notice::error(e),
    };
    dual_page(console, call, Some(notice))
}

/// The recent records matching the `user`, `operation`, `uid` and `outcome` filters.
fn audit_rows(console: &Console, call: &Call) -> Result<Vec<RecentEvent>, String> {
    let n = call
        .req
        .param("n")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, MAX_AUDIT_ROWS);
    let events =
        read_tail(console.ctx().audit.path(), MAX_AUDIT_ROWS).map_err(|e| e.to_string())?;
    let want = |k: &str, v: &str| call.req.param(k).is_none_or(|f| v.contains(f));
    Ok(events
        .into_iter()
        .filter(|e| {
            want("user", &e.user)
                && want("operation", &e.operation)
                && want("uid", &e.uid)
                && want("outcome", &e.outcome)
        })
        .take(n)
        .collect())
}

/// GET /audit: recent records (newest first) with a search form, and `verify=1` checks the
/// chain of the journal file.
pub fn audit(console: &Console, call: &Call) -> Response {
    let mut body = String::from("<form class=\"search\" method=\"get\" action=\"/audit\">");
    for (k, label) in [
        ("user", "User"),
        ("operation", "Operation"),
        ("uid", "Key"),
        ("outcome", "Outcome"),
    ] {
        let _ = write!(
            body,
            "<label>{label} <input name=\"{k}\" value=\"{}\"></label>",
            escape(call.req.param(k).unwrap_or(""))
        );
    }
    body.push_str(
        "<button>Search</button></form><div class=\"actions\">\
         <a href=\"/audit?verify=1\">Verify the chain</a> · <a href=\"/audit.csv\">Export CSV</a></div>",
    );
    if call.req.param("verify").is_some() {
        body.push_str(&verify_section(console));
    }
    let rows = match audit_rows(console, call) {
        Ok(r) => r,
        Err(e) => {
            let n = Notice::error(format!("the journal cannot be read: {e}"));
            return Response::html(
                503,
                html::page(&call.viewer, "Audit", "Audit", Some(&n), &body),
            );
        }
    };
    body.push_str(
        "<table id=\"audit\"><thead><tr><th>Serial</th><th>Time (UTC)</th><th>Event</th><th>User</th>\
         <th>Client</th><th>Operation</th><th>Key</th><th>Outcome</th><th>Reason / detail</th></tr></thead><tbody>",
    );
    for e in &rows {
        let key = if e.name.is_empty() {
            e.uid.clone()
        } else {
            format!("{} ({})", e.name, e.uid)
        };
        let class = if e.outcome == "success" {
            "ok"
        } else if e.outcome == "failure" {
            "bad"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr><td class=\"n\">{}</td><td class=\"time\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"mono\">{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            e.serial,
            escape(&journal_time(&e.time)),
            escape(&e.event),
            escape(&e.user),
            escape(&e.client),
            escape(&e.operation),
            escape(&key),
            escape(&e.outcome),
            escape(&e.reason)
        );
    }
    if rows.is_empty() {
        body.push_str("<tr><td colspan=\"9\" class=\"muted\">no records match</td></tr>");
    }
    body.push_str("</tbody></table>");
    Response::html(200, html::page(&call.viewer, "Audit", "Audit", None, &body))
}

/// A journal time (`2026-01-02T03:04:05.678Z`) as the console shows times
/// (`2026-01-02 03:04:05`, UTC as the column says).
fn journal_time(time: &str) -> String {
    match time.get(..19) {
        Some(t) if time.ends_with('Z') => t.replacen('T', " ", 1),
        _ => time.to_owned(),
    }
}

/// The verifier's verdict on the journal file in use: hash chain, serials and checkpoint
/// signatures, as `akm audit verify` checks them.
fn verify_section(console: &Console) -> String {
    let audit = &console.ctx().audit;
    let options = crate::audit::verify::Options {
        public_keys: vec![audit.public_key().clone()],
        // A live journal: any checkpoint age (the chain itself is what is checked here).
        max_age_secs: Some(u64::MAX / 4),
        now_ms: crate::audit::now_ms(),
        first_serial: None,
    };
    match crate::audit::verify::verify_file(audit.path(), &options) {
        Ok(report) => match report.fault {
            None => format!(
                "<div class=\"notice good\" id=\"verify\">chain verified: {} records, {} signed \
                 checkpoints, serials {} to {}</div>",
                report.records,
                report.checkpoints,
                report.first.unwrap_or(0),
                report.last.unwrap_or(0)
            ),
            Some(fault) => format!(
                "<div class=\"notice error\" id=\"verify\">chain BROKEN: {}</div>",
                escape(&fault.to_string())
            ),
        },
        Err(e) => format!(
            "<div class=\"notice error\" id=\"verify\">cannot verify: {}</div>",
            escape(&e.to_string())
        ),
    }
}

/// GET /audit.csv: the recent records (with the page's filters) as CSV.
pub fn audit_csv(console: &Console, call: &Call) -> Response {
    let rows = match audit_rows(console, call) {
        Ok(r) => r,
        Err(e) => return Response::text(503, &format!("the journal cannot be read: {e}")),
    };
    let mut out =
        String::from("serial,time,event,user,client,operation,uid,name,outcome,reason\r\n");
    for e in &rows {
        let fields = [
            e.serial.to_string(),
            e.time.clone(),
            e.event.clone(),
            e.user.clone(),
            e.client.clone(),
            e.operation.clone(),
            e.uid.clone(),
            e.name.clone(),
            e.outcome.clone(),
            e.reason.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    let mut r = Response::new(200, "text/csv; charset=utf-8", out);
    r.headers
        .push("Content-Disposition: attachment; filename=\"akm-audit.csv\"".into());
    r
}

/// A CSV field, quoted; one a spreadsheet would run as a formula gets a leading `'`.
fn csv_field(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

/// GET /mirror: the peers, their lag and last errors.
pub fn mirror(console: &Console, call: &Call) -> Response {
    let snap = console.source.snapshot();
    let t = now();
    let body = match &snap.mirror {
        None => {
            "<p>Mirroring is not configured on this node (<code>[mirror]</code>).</p>".to_owned()
        }
        Some(Err(e)) => format!(
            "<p class=\"bad\">The mirror status cannot be read: {}</p>",
            escape(e)
        ),
        Some(Ok(m)) => {
            let mut b = format!(
                "<div class=\"cards\"><div class=\"card\">Node<b>{}</b></div><div class=\"card\">Mode<b>{}</b></div>\
                 <div class=\"card\">Head<b>{}</b></div><div class=\"card\">Updated<b>{}</b></div></div>\
                 <table id=\"peers\"><thead><tr><th>Peer</th><th>Address</th><th>Out</th><th>In</th>\
                 <th>Lag (entries)</th><th>Lag (s)</th><th>Behind</th><th>Last ack</th><th>Settings</th><th>Last error</th></tr></thead><tbody>",
                escape(&m.node_id),
                escape(&m.mode),
                m.head,
                time_with_age(m.updated_unix, t)
            );
            for p in &m.peers {
                let yes = |v: bool| {
                    if v {
                        "<b class=\"ok\">connected</b>"
                    } else {
                        "<b class=\"bad\">down</b>"
                    }
                };
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                     <td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td></tr>",
                    escape(&p.node_id),
                    escape(&p.address),
                    yes(p.outbound_connected),
                    yes(p.inbound_connected),
                    p.lag_entries,
                    p.lag_seconds,
                    p.behind_entries,
                    time_with_age(p.last_ack_unix, t),
                    escape(&p.settings_verdict()),
                    escape(p.last_error.as_deref().unwrap_or(""))
                );
            }
            b.push_str("</tbody></table>");
            b
        }
    };
    Response::html(
        200,
        html::page(&call.viewer, "Mirroring", "Mirroring", None, &body),
    )
}

/// GET /config: the configuration file, read-only (values of secret-sounding keys hidden).
pub fn config(console: &Console, call: &Call) -> Response {
    config_page(console, call, None)
}

fn config_page(console: &Console, call: &Call, notice: Option<Notice>) -> Response {
    let mut body = format!(
        "<p>Security settings digest in force: <span class=\"mono\">{}</span>. Changes are made \
         in the file and put in force with a reload (as SIGHUP and <code>akm reload</code> do).</p>",
        escape(&console.ctx().settings.current().short())
    );
    body.push_str(&button_form(
        &call.viewer,
        "/config/reload",
        &[],
        "Reload configuration",
        "primary",
    ));
    match &console.settings.config_file {
        None => body.push_str("<p class=\"muted\">No configuration file.</p>"),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => {
                let _ = write!(
                    body,
                    "<h2>{}</h2><pre id=\"config\">{}</pre>",
                    escape(&path.display().to_string()),
                    escape(&redact(&text))
                );
            }
            Err(e) => {
                let _ = write!(
                    body,
                    "<p class=\"bad\">{}: {}</p>",
                    escape(&path.display().to_string()),
                    escape(&e.to_string())
                );
            }
        },
    }
    Response::html(
        200,
        html::page(
            &call.viewer,
            "Configuration",
            "Configuration",
            notice.as_ref(),
            &body,
        ),
    )
}

/// `text` with the values of keys that sound secret replaced.
fn redact(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once('=') {
            Some((key, _))
                if SECRET_WORDS
                    .iter()
                    .any(|w| key.to_ascii_lowercase().contains(w))
                    && !key.trim_start().starts_with('#') =>
            {
                format!("{key}= \"(hidden)\"")
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// POST /config/reload: Reload Configuration as the caller.
pub fn reload(console: &Console, call: &Call) -> Response {
    let notice = match dispatch(console, call, &[(OP_RELOAD_CONFIG, Vec::new())]) {
        Ok(items) => outcome_notice(items.first(), "configuration reloaded".into()).0,
        Err(e) => Notice::error(e),
    };
    config_page(console, call, Some(notice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=1+1"), "\"'=1+1\"");
        assert_eq!(csv_field("ok"), "\"ok\"");
    }

    #[test]
    fn secret_values_are_hidden() {
        let r =
            redact("[backup.sftp]\npassword = \"x\"\n# password = \"kept comment\"\nhost = \"h\"");
        assert!(r.contains("password = \"(hidden)\"") && !r.contains("\"x\""));
        assert!(r.contains("host = \"h\""));
    }
}
