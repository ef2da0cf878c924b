//! The console's key pages: the list (search by name, group and state; keyset paging, so a
//! page deep into a million keys costs what the first one does), a key's detail (attributes,
//! links, rotation chain, access policy; never key material: no Get is ever sent), and the
//! actions create, activate, rotate, revoke and destroy. Every action and the detail's
//! attributes are KMIP items run through the KMIP dispatcher with the caller's identity
//! ([`super::dispatch`]), so access checks, dual control and audit records apply unchanged.
//! The list uses the same visibility rule as Locate ([`crate::ops::Caller::sees`]).

use super::html::{self, button_form, escape, state_badge, time_with_age, Notice};
use super::http::{encode_component, Response};
use super::{dispatch, outcome_notice, Call, Console};
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{
    object_type as ot, operation as op, revocation_reason_code as rrc, state,
};
use crate::kmip::text as kmip_text;
use crate::ops::Caller;
use crate::status::gauges::object_type_name;
use crate::store::{LocateQuery, Located, ObjectRow};
use crate::ttlv::{Tag, Ttlv, Value};
use std::fmt::Write;

/// How many stored rows one list page may read to fill itself with rows the caller may see.
const MAX_SCAN_ROUNDS: usize = 20;

/// The states the search offers, by the name shown.
const STATES: &[(&str, u32)] = &[
    ("pre-active", state::PRE_ACTIVE),
    ("active", state::ACTIVE),
    ("deactivated", state::DEACTIVATED),
    ("compromised", state::COMPROMISED),
    ("destroyed", state::DESTROYED),
    ("destroyed-compromised", state::DESTROYED_COMPROMISED),
];

/// The list filters of a request.
#[derive(Default)]
struct Filters {
    name: Option<String>,
    group: Option<String>,
    state: Option<u32>,
    /// Created on or after this day (`YYYY-MM-DD`, UTC).
    from: Option<String>,
    /// Created on or before this day.
    to: Option<String>,
    after: Option<i64>,
}

impl Filters {
    fn of(call: &Call) -> Filters {
        let p = |k: &str| call.req.param(k).map(str::to_owned);
        Filters {
            name: p("name"),
            group: p("group"),
            state: call
                .req
                .param("state")
                .and_then(|s| STATES.iter().find(|(n, _)| *n == s))
                .map(|(_, v)| *v),
            from: p("from").filter(|d| day_start(d).is_some()),
            to: p("to").filter(|d| day_start(d).is_some()),
            after: call.req.param("after").and_then(|a| a.parse().ok()),
        }
    }

    /// The query string of these filters with `after` as the cursor.
    fn link(&self, after: Option<i64>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("name", &self.name),
            ("group", &self.group),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", encode_component(v)));
            }
        }
        if let Some(s) = self.state {
            parts.push(format!("state={}", kmip_text::state_name(s)));
        }
        if let Some(a) = after {
            parts.push(format!("after={a}"));
        }
        format!("/keys?{}", parts.join("&"))
    }
}

/// The first second of day `YYYY-MM-DD` (UTC), if it is one.
fn day_start(day: &str) -> Option<i64> {
    let mut parts = day.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if day.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(crate::clock::days_from_civil(y, m, d) * 86_400)
}

/// The caller as the access rules see them, or the page saying why not.
fn caller(console: &Console, call: &Call) -> Result<Caller, Response> {
    Caller::load(console.ctx(), &call.who)
        .map_err(|_| Response::text(503, "the access records cannot be read"))
}

/// One page of the objects the caller may see that match `f`, after its cursor, and
/// whether more may follow.
fn page_of(
    console: &Console,
    who: &Caller,
    f: &Filters,
) -> Result<(Vec<(i64, ObjectRow)>, bool), String> {
    let size = console.settings.page_size;
    let destroyed = matches!(
        f.state,
        Some(state::DESTROYED | state::DESTROYED_COMPROMISED)
    );
    let mut query = LocateQuery {
        names: f.name.iter().cloned().collect(),
        groups: f.group.iter().cloned().collect(),
        state: f.state,
        include_live: !destroyed,
        include_destroyed: destroyed,
        after_seq: f.after,
        limit: Some(size + 1),
        created_from: f.from.as_deref().and_then(day_start),
        // Through the end of that day.
        created_before: f.to.as_deref().and_then(day_start).map(|t| t + 86_400),
        ..LocateQuery::default()
    };
    if !who.is_admin() {
        query.visible_to = Some((who.cn.clone(), who.ous.clone()));
    }
    let mut seen: Vec<Located> = Vec::new();
    let mut more = false;
    for round in 1..=MAX_SCAN_ROUNDS {
        let batch = console
            .ctx()
            .store
            .locate_with_policy(&query)
            .map_err(|e| e.to_string())?;
        let exhausted = batch.len() <= size;
        let last = batch.last().map(|l| l.seq);
        seen.extend(batch.into_iter().filter(|l| who.sees(l)));
        if seen.len() > size {
            seen.truncate(size);
            more = true;
            break;
        }
        if exhausted {
            break;
        }
        // Rows the caller may not see filled this read: read on, a bounded number of
        // times; the next page carries on from the last row shown.
        query.after_seq = last;
        more = round == MAX_SCAN_ROUNDS;
    }
    let uids: Vec<String> = seen.iter().map(|l| l.uid.clone()).collect();
    let mut rows = console
        .ctx()
        .store
        .get_many(&uids)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(seen.len());
    for l in &seen {
        if let Some(i) = rows.iter().position(|r| r.uid == l.uid) {
            out.push((l.seq, rows.swap_remove(i)));
        }
    }
    Ok((out, more))
}

/// The key list with its search form, create form and pager.
pub fn list(console: &Console, call: &Call, notice: Option<Notice>) -> Response {
    let who = match caller(console, call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let f = Filters::of(call);
    let (rows, more) = match page_of(console, &who, &f) {
        Ok(p) => p,
        Err(e) => {
            let n = Notice::error(format!("the store cannot be read: {e}"));
            return Response::html(503, html::page(&call.viewer, "Keys", "Keys", Some(&n), ""));
        }
    };
    let now = crate::clock::now_secs();
    let mut body = search_form(&f);
    body.push_str(&create_form(call));
    body.push_str(
        "<table id=\"keys\"><thead><tr><th>Name</th><th>Unique Identifier</th><th>Type</th>\
         <th>Algorithm</th><th>State</th><th>Owner</th><th>Groups</th><th>Created</th>\
         <th>Last change</th></tr></thead><tbody>",
    );
    for (_, r) in &rows {
        let name = r.names.first().map(String::as_str).unwrap_or("");
        let alg = match (r.algorithm, r.length) {
            (Some(a), Some(l)) => format!("{} {l}", kmip_text::algorithm_name(a)),
            (Some(a), None) => kmip_text::algorithm_name(a),
            _ => "-".into(),
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"/key?uid={}\">{}</a></td><td class=\"mono\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            encode_component(&r.uid),
            if name.is_empty() {
                "<span class=\"muted\">(no name)</span>".to_owned()
            } else {
                escape(name)
            },
            escape(&r.uid),
            escape(&object_type_name(r.object_type)),
            escape(&alg),
            state_badge(r.state),
            escape(&r.owner),
            escape(&r.groups.join(", ")),
            time_with_age(r.initial_date, now),
            time_with_age(r.last_change, now),
        );
    }
    if rows.is_empty() {
        body.push_str("<tr><td colspan=\"9\" class=\"muted\">No keys match.</td></tr>");
    }
    body.push_str("</tbody></table><div class=\"pager\">");
    if f.after.is_some() {
        let _ = write!(
            body,
            "<a href=\"{}\">« first page</a> ",
            escape(&f.link(None))
        );
    }
    if more {
        let last = rows.last().map(|(seq, _)| *seq);
        let _ = write!(
            body,
            "<a id=\"next\" href=\"{}\">next page »</a>",
            escape(&f.link(last))
        );
    }
    body.push_str("</div>");
    let page = html::page(&call.viewer, "Keys", "Keys", notice.as_ref(), &body);
    Response::html(200, page)
}

fn search_form(f: &Filters) -> String {
    let mut out = String::from("<form class=\"search\" method=\"get\" action=\"/keys\">");
    let _ = write!(
        out,
        "<label>Name <input name=\"name\" value=\"{}\"></label>\
         <label>Group <input name=\"group\" value=\"{}\"></label>\
         <label>Created from <input type=\"date\" name=\"from\" value=\"{}\"></label>\
         <label>to <input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <label>State <select name=\"state\"><option value=\"\">live (any)</option>",
        escape(f.name.as_deref().unwrap_or("")),
        escape(f.group.as_deref().unwrap_or("")),
        escape(f.from.as_deref().unwrap_or("")),
        escape(f.to.as_deref().unwrap_or("")),
    );
    for (name, value) in STATES {
        let selected = if f.state == Some(*value) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option value=\"{name}\"{selected}>{name}</option>");
    }
    out.push_str("</select></label><button>Search</button></form>");
    out
}

fn create_form(call: &Call) -> String {
    format!(
        "<form class=\"create\" method=\"post\" action=\"/keys/create\">{}<b>New key</b> \
         <label>Name <input name=\"name\" required maxlength=\"200\"></label>\
         <label>Group <input name=\"group\" maxlength=\"200\"></label>\
         <label>Algorithm <select name=\"alg\"><option value=\"aes-256\">AES-256</option>\
         <option value=\"aes-128\">AES-128</option><option value=\"hmac-sha256\">HMAC-SHA256</option>\
         </select></label><label><input type=\"checkbox\" name=\"activate\" value=\"1\" checked> \
         activate</label><button class=\"primary\">Create</button></form>",
        html::csrf_field(&call.viewer.csrf)
    )
}

/// POST /keys/create: a Create (and an Activate) as the caller.
pub fn create(console: &Console, call: &Call) -> Response {
    let Some(name) = call.req.field("name") else {
        return list(console, call, Some(Notice::error("a new key needs a name")));
    };
    let (alg, length, usage) = match call.req.field("alg").unwrap_or("aes-256") {
        "aes-256" => ("aes", 256, "encrypt,decrypt"),
        "aes-128" => ("aes", 128, "encrypt,decrypt"),
        "hmac-sha256" => ("hmac-sha256", 256, "mac-generate,mac-verify"),
        _ => return list(console, call, Some(Notice::error("unknown algorithm"))),
    };
    let (Ok(alg), Ok(mask)) = (kmip_text::algorithm(alg), kmip_text::usage_mask(usage)) else {
        return list(console, call, Some(Notice::error("unknown algorithm")));
    };
    let mut template = vec![
        kmip_text::attr("Cryptographic Algorithm", Value::Enumeration(alg)),
        kmip_text::attr("Cryptographic Length", Value::Integer(length)),
        kmip_text::attr("Cryptographic Usage Mask", Value::Integer(mask)),
        kmip_text::attr("Name", kmip_text::name_value(name)),
    ];
    if let Some(g) = call.req.field("group") {
        template.push(kmip_text::attr(
            "Object Group",
            Value::TextString(g.to_owned()),
        ));
    }
    let payload = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, template),
    ];
    let mut items = vec![(op::CREATE, payload)];
    let activate = call.req.field("activate").is_some();
    if activate {
        // The new key's identifier reaches the Activate as the ID Placeholder.
        items.push((op::ACTIVATE, Vec::new()));
    }
    let answered = match dispatch(console, call, &items) {
        Ok(a) => a,
        Err(e) => return list(console, call, Some(Notice::error(e))),
    };
    let (notice, payload) = outcome_notice(answered.first(), format!("created key {name:?}"));
    let Some(uid) = payload.as_ref().and_then(uid_in) else {
        return list(console, call, Some(notice));
    };
    let notice = match answered.get(1) {
        Some(_) => {
            let (n, _) = outcome_notice(
                answered.get(1),
                format!("created and activated key {name:?}"),
            );
            n
        }
        None => notice,
    };
    detail_of(console, call, &uid, Some(notice))
}

fn uid_in(payload: &Ttlv) -> Option<String> {
    payload
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .map(str::to_owned)
}

/// POST /key/action: activate, rotate, revoke or destroy the key `uid` as the caller.
pub fn action(console: &Console, call: &Call) -> Response {
    let Some(uid) = call.req.field("uid") else {
        return list(console, call, Some(Notice::error("no key named")));
    };
    let ident = || vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)];
    let (operation, payload, done) = match call.req.field("do") {
        Some("activate") => (op::ACTIVATE, ident(), "activated".to_owned()),
        Some("rotate") => (
            op::RE_KEY,
            ident(),
            "rotated: the new version is shown".to_owned(),
        ),
        Some("destroy") => (
            op::DESTROY,
            ident(),
            "destroyed (its material is gone)".to_owned(),
        ),
        Some("revoke") => {
            let (code, word) = match call.req.field("reason").unwrap_or("unspecified") {
                "compromise" => (rrc::KEY_COMPROMISE, "compromise"),
                "superseded" => (rrc::SUPERSEDED, "superseded"),
                "cessation" => (rrc::CESSATION_OF_OPERATION, "cessation of operation"),
                _ => (rrc::UNSPECIFIED, "unspecified"),
            };
            let mut p = ident();
            p.push(Ttlv::structure(
                Tag::REVOCATION_REASON,
                vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, code)],
            ));
            (op::REVOKE, p, format!("revoked ({word})"))
        }
        _ => return detail_of(console, call, uid, Some(Notice::error("unknown action"))),
    };
    let answered = match dispatch(console, call, &[(operation, payload)]) {
        Ok(a) => a,
        Err(e) => return detail_of(console, call, uid, Some(Notice::error(e))),
    };
    let (notice, payload) = outcome_notice(answered.first(), done);
    // A rotation answers with the new version: show that one.
    let shown = match (operation, payload.as_ref().and_then(uid_in)) {
        (op::RE_KEY, Some(new)) => new,
        _ => uid.to_owned(),
    };
    detail_of(console, call, &shown, Some(notice))
}

/// GET /key?uid=: one key's detail.
pub fn detail(console: &Console, call: &Call, notice: Option<Notice>) -> Response {
    match call.req.param("uid") {
        Some(uid) => detail_of(console, call, uid, notice),
        None => list(console, call, Some(Notice::error("no key named"))),
    }
}

/// The detail page of `uid`: Get Attributes as the caller (refused as KMIP would refuse
/// it), then the policy and rotation chain from the store.
pub(super) fn detail_of(
    console: &Console,
    call: &Call,
    uid: &str,
    notice: Option<Notice>,
) -> Response {
    let ident = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)];
    let answered = match dispatch(console, call, &[(op::GET_ATTRIBUTES, ident)]) {
        Ok(a) => a,
        Err(e) => return error_page(call, 503, &e),
    };
    let attrs: Vec<Attr> = match answered.first().map(|i| &i.result) {
        Some(Ok(Some(payload))) => payload
            .children_with(Tag::ATTRIBUTE)
            .filter_map(|a| attributes::from_v1(a).ok().map(|(a, _)| a))
            .collect(),
        Some(Err(f)) => {
            let why = format!(
                "key {uid:?}: {} — {}",
                crate::audit::reason_name(f.reason),
                f.message
            );
            let mut page = error_page(call, 404, &why);
            if let Some(n) = notice {
                // An action's outcome still shows (a destroyed key may now be unreadable).
                let body = format!("<p>{}</p>", escape(&why));
                page = Response::html(
                    200,
                    html::page(&call.viewer, "Key", "Keys", Some(&n), &body),
                );
            }
            return page;
        }
        _ => Vec::new(),
    };
    let row = console.ctx().store.get(uid).ok().flatten();
    let now = crate::clock::now_secs();
    let name = attrs
        .iter()
        .find(|a| a.name == "Name")
        .and_then(|a| crate::ops::object_name(&a.value))
        .unwrap_or_default();
    let mut body = String::new();
    if let Some(r) = &row {
        let _ = write!(
            body,
            "<div class=\"cards\"><div class=\"card\">State<b>{}</b></div>\
             <div class=\"card\">Unique Identifier<b class=\"mono\">{}</b></div>\
             <div class=\"card\">Version<b>{}</b></div>\
             <div class=\"card\">Created<b>{}</b></div></div>",
            state_badge(r.state),
            escape(&r.uid),
            r.key_version,
            time_with_age(r.initial_date, now),
        );
        body.push_str(&actions(call, r));
        let _ = write!(
            body,
            "<h2>Access policy</h2><table class=\"kv\" id=\"policy\"><tr><th>Owner</th><td>{}</td></tr>\
             <tr><th>Owner group</th><td>{}</td></tr><tr><th>Access mode</th><td>{}</td></tr></table>",
            escape(&r.owner),
            escape(r.owner_group.as_deref().unwrap_or("-")),
            escape(&r.access_mode),
        );
        if call.viewer.admin {
            body.push_str(&super::admin::key_policy_form(
                call,
                &r.uid,
                r.owner_group.as_deref(),
                &r.access_mode,
            ));
        }
    }
    body.push_str(&links_table(&attrs));
    if let Some(r) = &row {
        body.push_str(&chain_table(console, call, r, now));
    }
    body.push_str("<h2>Attributes</h2><table id=\"attributes\"><thead><tr><th>Attribute</th><th>Value</th></tr></thead><tbody>");
    for a in &attrs {
        let shown = match (a.name.as_str(), kmip_text::show_value(a)) {
            ("Name", _) => crate::ops::object_name(&a.value).unwrap_or_default(),
            (_, serde_json::Value::String(s)) => s,
            (_, other) => other.to_string(),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"mono\">{}</td></tr>",
            escape(&a.name),
            escape(&shown)
        );
    }
    body.push_str("</tbody></table>");
    let title = if name.is_empty() {
        format!("Key {uid}")
    } else {
        format!("Key {name}")
    };
    Response::html(
        200,
        html::page(&call.viewer, &title, "Keys", notice.as_ref(), &body),
    )
}

/// The action buttons a key in its state offers (the dispatcher still decides).
fn actions(call: &Call, r: &ObjectRow) -> String {
    let v = &call.viewer;
    let uid = r.uid.as_str();
    let mut out = String::from("<div class=\"actions\" id=\"actions\">");
    let button = |what: &str, label: &str, class: &str| {
        button_form(
            v,
            "/key/action",
            &[("uid", uid), ("do", what)],
            label,
            class,
        )
    };
    if r.state == state::PRE_ACTIVE {
        out.push_str(&button("activate", "Activate", "primary"));
    }
    if matches!(r.state, state::PRE_ACTIVE | state::ACTIVE) && r.object_type == ot::SYMMETRIC_KEY {
        out.push_str(&button("rotate", "Rotate (new version)", ""));
    }
    if matches!(r.state, state::PRE_ACTIVE | state::ACTIVE) {
        let _ = write!(
            out,
            "<form class=\"inline\" method=\"post\" action=\"/key/action\">{}\
             <input type=\"hidden\" name=\"uid\" value=\"{}\"><input type=\"hidden\" name=\"do\" value=\"revoke\">\
             <select name=\"reason\"><option value=\"unspecified\">unspecified</option>\
             <option value=\"superseded\">superseded</option><option value=\"cessation\">cessation</option>\
             <option value=\"compromise\">compromise</option></select>\
             <button class=\"danger\">Revoke</button></form>",
            html::csrf_field(&v.csrf),
            escape(uid)
        );
    }
    if !matches!(r.state, state::DESTROYED | state::DESTROYED_COMPROMISED) {
        out.push_str(&button("destroy", "Destroy", "danger"));
    }
    out.push_str("</div>");
    out
}

/// The key's links (Link attributes), each to its object's page.
fn links_table(attrs: &[Attr]) -> String {
    let mut out = String::from("<h2>Links</h2><table id=\"links\"><thead><tr><th>Link</th><th>Object</th></tr></thead><tbody>");
    let mut any = false;
    for a in attrs.iter().filter(|a| a.name == "Link") {
        let Value::Structure(parts) = &a.value else {
            continue;
        };
        let kind = parts
            .iter()
            .find(|p| p.tag == Tag::LINK_TYPE)
            .and_then(Ttlv::as_enum);
        let target = parts
            .iter()
            .find(|p| p.tag == Tag::LINKED_OBJECT_IDENTIFIER)
            .and_then(Ttlv::as_text);
        let (Some(kind), Some(target)) = (kind, target) else {
            continue;
        };
        let name = crate::kmip::names::value_name("Link Type", kind).unwrap_or("Link");
        let _ = write!(
            out,
            "<tr><td>{}</td><td><a class=\"mono\" href=\"/key?uid={}\">{}</a></td></tr>",
            escape(name),
            encode_component(target),
            escape(target)
        );
        any = true;
    }
    if !any {
        out.push_str("<tr><td colspan=\"2\" class=\"muted\">none</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// The versions before this one, newest first, by their Replaced Object links (only those
/// the caller may see).
fn chain_table(console: &Console, call: &Call, r: &ObjectRow, now: i64) -> String {
    let Ok(who) = Caller::load(console.ctx(), &call.who) else {
        return String::new();
    };
    let mut out = String::from("<h2>Earlier versions</h2><table id=\"versions\"><thead><tr><th>Unique Identifier</th><th>State</th><th>Created</th></tr></thead><tbody>");
    let mut next = crate::store::replaced_object_of(&r.attributes);
    let mut shown = 0;
    while let Some(uid) = next.take() {
        let Some(prev) = console.ctx().store.get(&uid).ok().flatten() else {
            break;
        };
        let located = Located {
            uid: prev.uid.clone(),
            owner: prev.owner.clone(),
            owner_group: prev.owner_group.clone(),
            access_mode: prev.access_mode.clone(),
            seq: 0,
        };
        if !who.sees(&located) || shown >= 50 {
            break;
        }
        let _ = write!(
            out,
            "<tr><td><a class=\"mono\" href=\"/key?uid={}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            encode_component(&prev.uid),
            escape(&prev.uid),
            state_badge(prev.state),
            time_with_age(prev.initial_date, now)
        );
        shown += 1;
        next = crate::store::replaced_object_of(&prev.attributes);
    }
    if shown == 0 {
        out.push_str(
            "<tr><td colspan=\"3\" class=\"muted\">none: this is the first version</td></tr>",
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn error_page(call: &Call, status: u16, why: &str) -> Response {
    let n = Notice::error(why);
    Response::html(
        status,
        html::page(&call.viewer, "Key", "Keys", Some(&n), ""),
    )
}

#[cfg(test)]
mod tests {
    use super::day_start;

    #[test]
    fn days_are_read_strictly() {
        assert_eq!(day_start("1970-01-02"), Some(86_400));
        assert_eq!(day_start("2026-12-07"), Some(1_796_601_600));
        for bad in ["2026-13-01", "2026-1-1", "x", "2026-12-07T00", "2026--1-01"] {
            assert_eq!(day_start(bad), None, "{bad}");
        }
    }
}
