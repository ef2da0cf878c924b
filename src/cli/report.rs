//! `akm report keys`: the key inventory auditors ask for, one row per managed object: its
//! identifier, name, type, algorithm and length, owner user and group, access mode, state,
//! dates (initial, activation, deactivation, last change) and version and rotation schedule.
//! Printed as a table, CSV (`--csv`, RFC 4180 quoting) or JSON (`--json`). A client of the
//! running server over KMIP 2.1 (which shows the rotation attributes); administrators only,
//! since only they see every key: others are refused with a plain message before anything is
//! listed. Never reads key material.

use super::admin::{connect_and_run_at, ConnArgs};
use super::CliError;
use crate::client::{Client, ClientError};
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{link_type, operation as op, result_reason as rr};
use crate::kmip::extension as ext;
use crate::kmip::ProtocolVersion;
use crate::ttlv::{Tag, Ttlv, Value};
use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};

/// Locate page size: well under the server's `max_locate_items`.
const PAGE: i32 = 1000;

/// The report's columns, in CSV and table order.
const COLUMNS: &[&str] = &[
    "uid",
    "name",
    "object_type",
    "algorithm",
    "length",
    "owner",
    "owner_group",
    "access_mode",
    "object_groups",
    "state",
    "initial_date",
    "activation_date",
    "deactivation_date",
    "last_change_date",
    "version",
    "latest_version",
    "rotate_automatic",
    "rotate_interval_secs",
    "replaces",
    "replaced_by",
];

/// `akm report ...`
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Every key and object on the server with its owner, group, state, dates and version
    /// (administrators only).
    Keys {
        /// CSV (RFC 4180, a header line first) instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
}

/// Runs `akm report ...`.
pub fn run(config: &crate::config::Config, args: ReportArgs) -> Result<(), CliError> {
    let ReportCommand::Keys { csv } = args.command;
    let admin_group = config.access.admin_group.clone();
    let out = connect_and_run_at(config, &args.conn, ProtocolVersion::V2_1, move |client| {
        Box::pin(async move {
            require_admin(client, &admin_group).await?;
            inventory(client).await
        })
    })?;
    let rows = out.as_array().cloned().unwrap_or_default();
    if args.conn.json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if csv {
        print!("{}", to_csv(&rows));
    } else {
        print_table(&rows);
    }
    Ok(())
}

/// Refuses a caller that is not an administrator, asking the server (List Accounts is an
/// administrators-only operation) rather than guessing from the certificate.
async fn require_admin(client: &mut Client, admin_group: &str) -> Result<(), CliError> {
    match client
        .call(ext::OP_LIST_ACCOUNTS, ext::list_accounts_payload(true))
        .await
    {
        Ok(_) => Ok(()),
        Err(ClientError::Failed { reason, .. }) if reason == rr::PERMISSION_DENIED => {
            Err(CliError::Client(ClientError::Failed {
                reason,
                message: format!(
                    "akm report keys is for administrators only: the certificate you connected \
                     with is not in the administrators group ({admin_group:?}); run it with an \
                     administrator's certificate (--cert, --key)"
                ),
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// One row per object the server lists.
async fn inventory(client: &mut Client) -> Result<Json, CliError> {
    let mut rows = Vec::new();
    for uid in all_uids(client).await? {
        rows.push(row(client, &uid).await?);
    }
    Ok(Json::Array(rows))
}

/// Every Unique Identifier, a page of Locate at a time.
async fn all_uids(client: &mut Client) -> Result<Vec<String>, CliError> {
    let mut uids = Vec::new();
    loop {
        let payload = vec![
            Ttlv::integer(Tag::MAXIMUM_ITEMS, PAGE),
            Ttlv::integer(
                Tag::OFFSET_ITEMS,
                i32::try_from(uids.len()).unwrap_or(i32::MAX),
            ),
        ];
        let found = client.call(op::LOCATE, payload).await?;
        let page: Vec<String> = found
            .children_with(Tag::UNIQUE_IDENTIFIER)
            .filter_map(Ttlv::as_text)
            .map(str::to_owned)
            .collect();
        let last = page.len() < PAGE as usize;
        uids.extend(page);
        if last {
            return Ok(uids);
        }
    }
}

/// The report row of one object: its attributes and its access policy.
async fn row(client: &mut Client, uid: &str) -> Result<Json, CliError> {
    let got = client
        .call(
            op::GET_ATTRIBUTES,
            vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)],
        )
        .await?;
    let attrs: Vec<Attr> = got
        .child(Tag::ATTRIBUTES)
        .map(|a| {
            a.children()
                .iter()
                .filter_map(|t| attributes::from_v2(t).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    for c in COLUMNS {
        out.insert((*c).to_owned(), Json::Null);
    }
    out.insert("uid".into(), json!(uid));
    // Never re-keyed: the first version (Rotate Generation is set by Re-key).
    out.insert("version".into(), json!(0));
    let mut groups = Vec::new();
    for a in &attrs {
        fill(&mut out, &mut groups, a);
    }
    if !groups.is_empty() {
        out.insert("object_groups".into(), json!(groups.join(";")));
    }
    let policy = client
        .call(
            ext::OP_GET_KEY_POLICY,
            vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)],
        )
        .await?;
    if let Some(p) = ext::parse_key_policy(&policy) {
        out.insert("owner".into(), json!(p.owner));
        out.insert("owner_group".into(), json!(p.group));
        out.insert("access_mode".into(), json!(p.mode));
    }
    Ok(Json::Object(out))
}

/// Puts the attribute `a` into its column, if it has one.
fn fill(out: &mut serde_json::Map<String, Json>, groups: &mut Vec<String>, a: &Attr) {
    use crate::status::gauges::{object_type_name, state_name};
    let date = |v: &Value| match v {
        Value::DateTime(s) => json!(crate::clock::rfc3339(*s)),
        Value::DateTimeExtended(us) => json!(crate::clock::rfc3339(us.div_euclid(1_000_000))),
        _ => Json::Null,
    };
    let (column, value) = match (a.name.as_str(), &a.value) {
        (attr::NAME, v) => ("name", json!(crate::ops::object_name(v))),
        (attr::OBJECT_TYPE, Value::Enumeration(e)) => ("object_type", json!(object_type_name(*e))),
        (attr::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(e)) => {
            ("algorithm", json!(crate::kmip::text::algorithm_name(*e)))
        }
        (attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(n)) => ("length", json!(n)),
        (attr::STATE, Value::Enumeration(e)) => ("state", json!(state_name(*e))),
        (attr::INITIAL_DATE, v) => ("initial_date", date(v)),
        (attr::ACTIVATION_DATE, v) => ("activation_date", date(v)),
        (attr::DEACTIVATION_DATE, v) => ("deactivation_date", date(v)),
        (attr::LAST_CHANGE_DATE, v) => ("last_change_date", date(v)),
        (attr::ROTATE_GENERATION, Value::Integer(n)) => ("version", json!(n)),
        (attr::ROTATE_LATEST, Value::Boolean(b)) => ("latest_version", json!(b)),
        (attr::ROTATE_AUTOMATIC, Value::Boolean(b)) => ("rotate_automatic", json!(b)),
        (attr::ROTATE_INTERVAL, Value::Interval(n)) => ("rotate_interval_secs", json!(n)),
        (attr::OBJECT_GROUP, Value::TextString(g)) => {
            groups.push(g.clone());
            return;
        }
        (attr::LINK, Value::Structure(fields)) => {
            let kind = fields
                .iter()
                .find(|f| f.tag == Tag::LINK_TYPE)
                .and_then(Ttlv::as_enum);
            let target = fields
                .iter()
                .find(|f| f.tag == Tag::LINKED_OBJECT_IDENTIFIER)
                .and_then(Ttlv::as_text);
            match (kind, target) {
                (Some(link_type::REPLACED_OBJECT_LINK), Some(t)) => ("replaces", json!(t)),
                (Some(link_type::REPLACEMENT_OBJECT_LINK), Some(t)) => ("replaced_by", json!(t)),
                _ => return,
            }
        }
        _ => return,
    };
    out.insert(column.to_owned(), value);
}

/// A cell as text: empty for none.
fn cell(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// RFC 4180 CSV with a header line. A cell with a comma, quote or line break is quoted
/// (quotes doubled); one a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab) gets a
/// leading `'` (OWASP's advice for CSV files opened in spreadsheets).
pub fn to_csv(rows: &[Json]) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        let cells: Vec<String> = COLUMNS.iter().map(|c| csv_cell(&cell(&r[*c]))).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV cell, quoted where needed and with a formula defused (see [`to_csv`]); also used
/// by `akm audit export --csv`, whose names and details come from clients.
pub(crate) fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn print_table(rows: &[Json]) {
    println!(
        "{:<38} {:<24} {:<13} {:<10} {:<6} {:<12} {:<12} {:<12} {:<21} {:<21} VERSION",
        "UNIQUE IDENTIFIER",
        "NAME",
        "TYPE",
        "ALGORITHM",
        "LENGTH",
        "OWNER",
        "GROUP",
        "STATE",
        "ACTIVATION",
        "DEACTIVATION"
    );
    for r in rows {
        let show = |c: &str| match cell(&r[c]) {
            s if s.is_empty() => "-".to_owned(),
            s => s,
        };
        println!(
            "{:<38} {:<24} {:<13} {:<10} {:<6} {:<12} {:<12} {:<12} {:<21} {:<21} {}",
            show("uid"),
            show("name"),
            show("object_type"),
            show("algorithm"),
            show("length"),
            show("owner"),
            show("owner_group"),
            show("state"),
            show("activation_date"),
            show("deactivation_date"),
            show("version")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        let row = json!({ "uid": "u1", "name": "x,y", "length": 256 });
        let csv = to_csv(&[row]);
        let mut lines = csv.split("\r\n");
        assert!(lines.next().unwrap().starts_with("uid,name,object_type,"));
        assert!(lines.next().unwrap().starts_with("u1,\"x,y\",,,256,"));
    }
}
