//! The console's HTML: the page frame (navigation, who is signed in, logout), forms with
//! their CSRF field, states in words and colour, times in UTC with their age. Every value
//! that is not a literal of this file goes through [`escape`] (the status page's, the one
//! escaper of the crate): names, identifiers and attributes come from clients.

pub use crate::status::page::escape;
use std::fmt::Write;

/// Who is looking, as every page shows it.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The certificate's CN.
    pub cn: String,
    /// Whether the certificate is an administrator's (as the KMIP port judges one).
    pub admin: bool,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
}

/// The sections of the navigation, with the path each opens and whether only
/// administrators see it.
const NAV: &[(&str, &str, bool)] = &[
    ("Overview", "/", false),
    ("Keys", "/keys", false),
    ("Dual control", "/dual", true),
    ("Users and groups", "/accounts", true),
    ("Backups", "/backups", true),
    ("Certificates", "/certificates", true),
    ("Audit", "/audit", true),
    ("Mirroring", "/mirror", true),
    ("Configuration", "/config", true),
];

/// A whole page: `title`, the navigation with `active` marked, a notice if any, and `body`.
pub fn page(
    viewer: &Viewer,
    title: &str,
    active: &str,
    notice: Option<&Notice>,
    body: &str,
) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · akm console</title>\
         <link rel=\"stylesheet\" href=\"/static/console.css\"></head><body>\
         <header><span class=\"brand\">akm console</span><nav>",
        escape(title)
    );
    for (name, path, admin_only) in NAV {
        if *admin_only && !viewer.admin {
            continue;
        }
        let class = if *name == active { " class=\"on\"" } else { "" };
        let _ = write!(out, "<a href=\"{path}\"{class}>{name}</a>");
    }
    let role = if viewer.admin {
        "administrator"
    } else {
        "user"
    };
    let _ = write!(
        out,
        "</nav><span class=\"who\"><span id=\"who\">{} ({role})</span>\
         <form method=\"post\" action=\"/logout\">{}<button>Sign out</button></form>\
         </span></header><main><h1>{}</h1>",
        escape(&viewer.cn),
        csrf_field(&viewer.csrf),
        escape(title)
    );
    if let Some(n) = notice {
        let _ = write!(
            out,
            "<div class=\"notice {}\" id=\"notice\">{}</div>",
            n.kind,
            escape(&n.text)
        );
    }
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// A message at the top of a page: the outcome of an action.
#[derive(Clone, Debug)]
pub struct Notice {
    /// `good`, `error` or `info` (the CSS class).
    pub kind: &'static str,
    /// The text (escaped when shown).
    pub text: String,
}

impl Notice {
    /// An action that succeeded.
    pub fn good(text: impl Into<String>) -> Notice {
        Notice {
            kind: "good",
            text: text.into(),
        }
    }

    /// An action that was refused or failed.
    pub fn error(text: impl Into<String>) -> Notice {
        Notice {
            kind: "error",
            text: text.into(),
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(token)
    )
}

/// A one-button POST form to `action` carrying `fields` (name, value) and the CSRF token.
pub fn button_form(
    viewer: &Viewer,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> String {
    let mut out = format!("<form class=\"inline\" method=\"post\" action=\"{action}\">");
    out.push_str(&csrf_field(&viewer.csrf));
    for (name, value) in fields {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    let _ = write!(
        out,
        "<button class=\"{class}\">{}</button></form>",
        escape(label)
    );
    out
}

/// A key state in words, coloured by its CSS class.
pub fn state_badge(state: u32) -> String {
    let name = crate::kmip::text::state_name(state);
    format!("<span class=\"state {name}\">{name}</span>")
}

/// `secs` (since the epoch) as a UTC time with its age relative to `now`.
pub fn time_with_age(secs: i64, now: i64) -> String {
    if secs <= 0 {
        return "<span class=\"muted\">-</span>".into();
    }
    format!(
        "{} <span class=\"age\">{}</span>",
        utc(secs),
        escape(&relative_age(now - secs))
    )
}

/// `secs` as `2026-12-07 15:04:05 UTC`.
pub fn utc(secs: i64) -> String {
    crate::clock::rfc3339(secs)
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// An age in words: `42s ago`, `5m ago`, `3h ago`, `12d ago`, or `in 2d` for the future.
pub fn relative_age(delta: i64) -> String {
    let (amount, future) = (delta.unsigned_abs(), delta < 0);
    let text = match amount {
        0..=59 => format!("{amount}s"),
        60..=3599 => format!("{}m", amount / 60),
        3600..=86_399 => format!("{}h", amount / 3600),
        _ => format!("{}d", amount / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_in_the_frame_is_escaped() {
        let viewer = Viewer {
            cn: "<b>eve</b>".into(),
            admin: false,
            csrf: "\"><script>".into(),
        };
        let html = page(
            &viewer,
            "<i>t</i>",
            "Keys",
            Some(&Notice::error("<script>alert(1)</script>")),
            "",
        );
        assert!(!html.contains("<b>eve") && !html.contains("<script>") && !html.contains("<i>t"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // A user sees no administrator sections.
        assert!(!html.contains("/audit") && html.contains("/keys"));
    }

    #[test]
    fn times_are_utc_with_their_age() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(relative_age(30), "30s ago");
        assert_eq!(relative_age(7200), "2h ago");
        assert_eq!(relative_age(-3 * 86_400), "in 3d");
        assert!(time_with_age(100, 160).contains("1m ago"));
    }
}
