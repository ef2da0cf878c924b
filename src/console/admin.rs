//! The console's administration pages: users and groups (List Accounts; enable, disable or
//! grant operations with Set Account), a key's access policy (Set Key Policy, from the key's
//! page), and backups (run one with the Backup operation, list the files in the backup
//! directory, verify one, see the schedule). Changes are KMIP items through
//! [`super::dispatch`]: the administrators-only rule, dual control (`policy`, `backup`) and
//! the audit records are the KMIP port's. Verifying a backup only reads: it authenticates
//! the whole file under the KEK, as `akm backup verify` does.

use super::html::{self, button_form, escape, time_with_age, Notice};
use super::http::Response;
use super::{dispatch, outcome_notice, Call, Console};
use crate::kmip::custody::{OP_BACKUP, TAG_BACKUP_BYTES, TAG_BACKUP_FILE, TAG_BACKUP_SHA256};
use crate::kmip::extension::{self as ext, OP_LIST_ACCOUNTS, OP_SET_ACCOUNT, OP_SET_KEY_POLICY};
use crate::ttlv::{Tag, Ttlv};
use std::fmt::Write;
use std::path::PathBuf;

/// Most backup files listed.
const MAX_BACKUPS_LISTED: usize = 200;

/// GET /accounts: the user and group records.
pub fn accounts(console: &Console, call: &Call) -> Response {
    accounts_page(console, call, None)
}

fn accounts_page(console: &Console, call: &Call, notice: Option<Notice>) -> Response {
    let items = [
        (OP_LIST_ACCOUNTS, ext::list_accounts_payload(true)),
        (OP_LIST_ACCOUNTS, ext::list_accounts_payload(false)),
    ];
    let answered = match dispatch(console, call, &items) {
        Ok(a) => a,
        Err(e) => {
            return page(
                call,
                "Users and groups",
                Some(Notice::error(e)),
                String::new(),
            )
        }
    };
    let mut body = String::from(
        "<p>Records of the system tables: a disabled user or group is refused everything; the \
         operations listed are granted to keys the policy lets the member use. A certificate \
         whose CN or OU has no record follows <code>access.unknown</code>.</p>",
    );
    for (i, (title, user)) in [("Users", true), ("Groups", false)].iter().enumerate() {
        let accounts = answered
            .get(i)
            .and_then(|item| item.result.as_ref().ok())
            .and_then(Option::as_ref)
            .and_then(ext::parse_accounts);
        let _ = write!(
            body,
            "<h2>{title}</h2><table id=\"{}\"><thead><tr><th>Name</th><th>State</th>\
             <th>Operations</th><th></th></tr></thead><tbody>",
            if *user { "users" } else { "groups" }
        );
        let kind = if *user { "user" } else { "group" };
        for a in accounts.unwrap_or_default() {
            let (state, toggle, label) = if a.enabled {
                ("<b class=\"ok\">enabled</b>", "false", "Disable")
            } else {
                ("<b class=\"bad\">disabled</b>", "true", "Enable")
            };
            let button = button_form(
                &call.viewer,
                "/accounts/set",
                &[("kind", kind), ("name", &a.name), ("enabled", toggle)],
                label,
                if a.enabled { "danger" } else { "primary" },
            );
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{state}</td><td>{}</td><td>{button}</td></tr>",
                escape(&a.name),
                escape(&a.operations.join(", "))
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(
        body,
        "<h2>Add or change a record</h2><form class=\"create\" method=\"post\" action=\"/accounts/set\">{}\
         <label>Kind <select name=\"kind\"><option value=\"user\">user (CN)</option>\
         <option value=\"group\">group (OU)</option></select></label>\
         <label>Name <input name=\"name\" required maxlength=\"256\"></label>\
         <label>Operations <input name=\"operations\" placeholder=\"get,locate,encrypt\"></label>\
         <label>State <select name=\"enabled\"><option value=\"true\">enabled</option>\
         <option value=\"false\">disabled</option></select></label>\
         <button class=\"primary\">Save</button></form>",
        html::csrf_field(&call.viewer.csrf)
    );
    page(call, "Users and groups", notice, body)
}

fn page(call: &Call, title: &str, notice: Option<Notice>, body: String) -> Response {
    let active = if title == "Backups" {
        "Backups"
    } else {
        "Users and groups"
    };
    Response::html(
        200,
        html::page(&call.viewer, title, active, notice.as_ref(), &body),
    )
}

/// POST /accounts/set: Set Account as the caller.
pub fn set_account(console: &Console, call: &Call) -> Response {
    let Some(name) = call.req.field("name") else {
        return accounts_page(console, call, Some(Notice::error("a record needs a name")));
    };
    let user = call.req.field("kind") != Some("group");
    let enabled = call.req.field("enabled").map(|e| e == "true");
    let payload = ext::set_account_payload(user, name, enabled, call.req.field("operations"));
    let notice = match dispatch(console, call, &[(OP_SET_ACCOUNT, payload)]) {
        Ok(items) => outcome_notice(items.first(), format!("saved {name:?}")).0,
        Err(e) => Notice::error(e),
    };
    accounts_page(console, call, Some(notice))
}

/// The form that changes a key's access policy (administrators; the key page shows it).
pub fn key_policy_form(call: &Call, uid: &str, group: Option<&str>, mode: &str) -> String {
    let mut modes = String::new();
    for m in ["user", "group", "user-and-group", "any"] {
        let selected = if m == mode { " selected" } else { "" };
        let _ = write!(modes, "<option value=\"{m}\"{selected}>{m}</option>");
    }
    format!(
        "<form class=\"create\" method=\"post\" action=\"/key/policy\">{}\
         <input type=\"hidden\" name=\"uid\" value=\"{}\"><b>Change policy</b> \
         <label>Owner group <input name=\"group\" value=\"{}\"></label>\
         <label>Access mode <select name=\"mode\">{modes}</select></label>\
         <button>Save policy</button></form>",
        html::csrf_field(&call.viewer.csrf),
        escape(uid),
        escape(group.unwrap_or(""))
    )
}

/// POST /key/policy: Set Key Policy as the caller, then the key's page.
pub fn set_key_policy(console: &Console, call: &Call) -> Response {
    let Some(uid) = call.req.field("uid") else {
        return super::keys::list(console, call, Some(Notice::error("no key named")));
    };
    // An empty group clears it (the field is sent even when empty).
    let group = call
        .req
        .form
        .iter()
        .find(|(k, _)| k == "group")
        .map(|(_, v)| v.as_str());
    let payload = ext::set_key_policy_payload(uid, None, group, call.req.field("mode"));
    let notice = match dispatch(console, call, &[(OP_SET_KEY_POLICY, payload)]) {
        Ok(items) => outcome_notice(items.first(), "access policy changed".into()).0,
        Err(e) => Notice::error(e),
    };
    super::keys::detail_of(console, call, uid, Some(notice))
}

/// The backup files in the backup directory, newest first: (name, size, modified).
fn backup_files(dir: &std::path::Path) -> std::io::Result<Vec<(String, u64, i64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".akmbak") || name.starts_with('.') {
            continue;
        }
        let meta = entry.metadata()?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        files.push((name, meta.len(), modified));
    }
    files.sort_by(|a, b| b.0.cmp(&a.0));
    files.truncate(MAX_BACKUPS_LISTED);
    Ok(files)
}

/// GET /backups: the schedule, the files, and buttons to run and verify.
pub fn backups(console: &Console, call: &Call) -> Response {
    backups_page(console, call, None)
}

fn backups_page(console: &Console, call: &Call, notice: Option<Notice>) -> Response {
    let Some(dir) = &console.settings.backup_dir else {
        let body = "<p>Backups are not configured on this server (<code>[backup] dir</code>).</p>";
        return page(call, "Backups", notice, body.into());
    };
    let mut body = format!(
        "<p>Directory <span class=\"mono\">{}</span>. Schedule: {}.</p><div class=\"actions\">{}</div>",
        escape(&dir.display().to_string()),
        escape(
            console
                .settings
                .backup_schedule
                .as_deref()
                .unwrap_or("none (manual backups only)")
        ),
        button_form(&call.viewer, "/backups/run", &[], "Run a backup now", "primary")
    );
    body.push_str(
        "<table id=\"backups\"><thead><tr><th>File</th><th>Size</th><th>Written</th><th></th>\
         </tr></thead><tbody>",
    );
    let now = crate::clock::now_secs();
    // The directory appears with the first backup.
    let listed = match backup_files(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    };
    match listed {
        Ok(files) if files.is_empty() => {
            body.push_str("<tr><td colspan=\"4\" class=\"muted\">no backups yet</td></tr>")
        }
        Ok(files) => {
            for (name, size, modified) in files {
                let verify = button_form(
                    &call.viewer,
                    "/backups/verify",
                    &[("file", &name)],
                    "Verify",
                    "",
                );
                let _ = write!(
                    body,
                    "<tr><td class=\"mono\">{}</td><td class=\"n\">{size}</td><td>{}</td><td>{verify}</td></tr>",
                    escape(&name),
                    time_with_age(modified, now)
                );
            }
        }
        Err(e) => {
            let _ = write!(
                body,
                "<tr><td colspan=\"4\" class=\"bad\">cannot list: {}</td></tr>",
                escape(&e.to_string())
            );
        }
    }
    body.push_str("</tbody></table>");
    page(call, "Backups", notice, body)
}

/// POST /backups/run: the Backup operation as the caller.
pub fn run_backup(console: &Console, call: &Call) -> Response {
    let notice = match dispatch(console, call, &[(OP_BACKUP, Vec::new())]) {
        Ok(items) => {
            let (notice, payload) = outcome_notice(items.first(), String::new());
            match payload {
                Some(p) => Notice::good(format!(
                    "backup written: {} ({} bytes, SHA-256 {})",
                    text(&p, TAG_BACKUP_FILE),
                    p.child(TAG_BACKUP_BYTES)
                        .and_then(Ttlv::as_long)
                        .unwrap_or_default(),
                    text(&p, TAG_BACKUP_SHA256)
                )),
                None => notice,
            }
        }
        Err(e) => Notice::error(e),
    };
    backups_page(console, call, Some(notice))
}

fn text(payload: &Ttlv, tag: Tag) -> String {
    payload
        .child(tag)
        .and_then(Ttlv::as_text)
        .unwrap_or("")
        .to_owned()
}

/// POST /backups/verify: authenticates one listed backup file under the KEK.
pub fn verify_backup(console: &Console, call: &Call) -> Response {
    let Some(dir) = console.settings.backup_dir.clone() else {
        return backups_page(console, call, None);
    };
    // Only a file the listing shows: a name, never a path.
    let listed = backup_files(&dir).unwrap_or_default();
    let Some(name) = call
        .req
        .field("file")
        .filter(|f| listed.iter().any(|(n, ..)| n == f))
    else {
        return backups_page(console, call, Some(Notice::error("no such backup file")));
    };
    let path: PathBuf = dir.join(name);
    let verdict = crate::backup::verify(&path, &console.ctx().kek, &mut |_, _| {});
    // Not a KMIP operation, so recorded here: who verified which file, and the verdict.
    let mut event =
        crate::audit::AuditEvent::new("console", call.conn.local, call.conn.peer, Some(&call.who));
    event.outcome = Some(if verdict.is_ok() {
        crate::audit::Outcome::Success
    } else {
        crate::audit::Outcome::Failure
    });
    event.detail = Some(format!("backup verify {name}"));
    if let Err(e) = console.ctx().audit.record(vec![event]) {
        let n = Notice::error(format!("the audit journal cannot be written: {e}"));
        return backups_page(console, call, Some(n));
    }
    let notice = match verdict {
        Ok(header) => Notice::good(format!(
            "{name}: authentic and complete (KEK {})",
            header.kek_id
        )),
        Err(e) => Notice::error(format!("{name}: FAILED verification: {e}")),
    };
    tracing::info!(user = %call.who.cn, file = %name, "console: backup verified");
    backups_page(console, call, Some(notice))
}
