//! `akm key ...`: create, get, locate, list, activate, revoke, destroy and show attributes of
//! keys on a running server, over KMIP with a client certificate. Tables for people, `--json`
//! for scripts. Key material is printed only by `get`, and only in hex when asked.

use super::errors::call;
use super::CliError;
use crate::client::Client;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::kmip::attr;
use crate::kmip::attributes;
use crate::kmip::enums::{
    link_type, object_type as ot, operation as op, revocation_reason_code as rrc, state,
};
use crate::kmip::extension as ext;
use crate::kmip::text::{algorithm_name, attr, name_value, show_value, state_name};
use crate::ttlv::{Tag, Ttlv, Value};
use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};
use std::path::PathBuf;

/// Connection options and the key command.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Server address; several (repeated or comma-separated) are tried in order until one is
    /// reachable (default: [client] server in the config, also comma-separated).
    #[arg(long, global = true, value_delimiter = ',')]
    server: Vec<String>,
    /// Client certificate (default: [client] cert).
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// Client private key (default: [client] key).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// CA of the server certificate (default: [client] ca).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// The operation.
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a key (AES by default).
    Create {
        /// Name of the key (unique on the server).
        #[arg(long)]
        name: Option<String>,
        /// aes, hmac-sha256, hmac-sha384 or hmac-sha512.
        #[arg(long, default_value = "aes")]
        alg: String,
        /// Length in bits (AES: 128, 192 or 256).
        #[arg(long, default_value_t = 256)]
        length: i32,
        /// Object Group; repeat for several.
        #[arg(long)]
        group: Vec<String>,
        /// Activate it right away.
        #[arg(long)]
        activate: bool,
        /// Who may use it: any, group, user or user-and-group (default: the server's).
        #[arg(long)]
        access_mode: Option<String>,
        /// Its owner group: one of your certificate's OUs (default: the first).
        #[arg(long)]
        owner_group: Option<String>,
        /// What it may be used for, comma-separated: encrypt, decrypt, wrap-key, unwrap-key,
        /// mac-generate, mac-verify, derive-key, export.
        #[arg(long, default_value = "encrypt,decrypt")]
        usage: String,
        /// Its Deactivation Date, RFC 3339 (`2027-01-31T00:00:00Z`): from then on it only
        /// decrypts and verifies.
        #[arg(long)]
        deactivate_at: Option<String>,
        /// Rotate it on a schedule (Rotate Automatic, Rotate Interval): every `90d`, `12h`,
        /// `30m`... after it becomes active the server re-keys it.
        #[arg(long)]
        rotate_every: Option<String>,
    },
    /// Show a key's metadata; with --material, also its key bytes in hex. Name the key by its
    /// Unique Identifier, or by --name (its newest version, or --version N: 0 is the first).
    Get {
        /// Unique Identifier.
        uid: Option<String>,
        /// The key's name instead of its identifier.
        #[arg(long, conflicts_with = "uid")]
        name: Option<String>,
        /// With --name: this version of the key (0 is the first; default the newest).
        #[arg(long, requires = "name")]
        version: Option<usize>,
        /// Print the key material.
        #[arg(long)]
        material: bool,
    },
    /// Rotate a key (KMIP Re-key): its next version takes the name; the old one keeps
    /// decrypting until you revoke it.
    Rotate {
        /// Unique Identifier.
        uid: String,
    },
    /// Find your keys by name, group or state.
    Locate {
        /// Name to match.
        #[arg(long)]
        name: Option<String>,
        /// Object Group to match.
        #[arg(long)]
        group: Option<String>,
        /// State to match: pre-active, active, deactivated, compromised.
        #[arg(long)]
        state: Option<String>,
    },
    /// List all your keys with their name, algorithm and state.
    List,
    /// Activate a key.
    Activate {
        /// Unique Identifier.
        uid: String,
    },
    /// Revoke a key (deactivate it, or mark it compromised).
    Revoke {
        /// Unique Identifier.
        uid: String,
        /// unspecified, compromise, superseded or cessation.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Destroy a key's material (revoke an Active key first).
    Destroy {
        /// Unique Identifier.
        uid: String,
    },
    /// Show every attribute of a key.
    Attrs {
        /// Unique Identifier.
        uid: String,
    },
    /// Export a key wrapped under another key (never in the clear) into a new file (mode
    /// 0600) that `akm key import` reads.
    Export {
        /// Unique Identifier of the key to export.
        uid: String,
        /// An AES wrapping key (Wrap Key usage) on this server.
        #[arg(long, required_unless_present = "wrap_with_public")]
        wrap_with: Option<String>,
        /// An RSA public key (Wrap Key usage) on this server (RSA-OAEP).
        #[arg(long, conflicts_with = "wrap_with")]
        wrap_with_public: Option<String>,
        /// The file to write (default: `<uid>.akmkey`); never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import a key from an `akm key export` file: the server unwraps it with the wrapping
    /// key (for a public key, its private key) if it holds it, else keeps it wrapped.
    Import {
        /// The export file.
        file: PathBuf,
        /// Name the imported key.
        #[arg(long)]
        name: Option<String>,
        /// The key that unwraps it on this server (default: the one named in the file).
        #[arg(long)]
        unwrap_with: Option<String>,
        /// Store it wrapped even if this server cannot unwrap it for you (escrow).
        #[arg(long)]
        keep_wrapped: bool,
    },
    /// Show or change a key's access policy (changing it needs an administrator).
    Policy {
        /// The policy command.
        #[command(subcommand)]
        command: super::admin::PolicyCommand,
    },
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// Runs a key command.
pub fn run(config: &Config, args: KeyArgs) -> Result<(), CliError> {
    let conn = super::admin::ConnArgs {
        server: args.server,
        cert: args.cert,
        key: args.key,
        ca: args.ca,
        json: args.json,
    };
    if let KeyCommand::Policy { command } = args.command {
        return super::admin::run_policy(config, &conn, command);
    }
    let command = args.command;
    let out =
        super::admin::connect_and_run(config, &conn, |client| Box::pin(execute(client, command)))?;
    print_output(&out, args.json);
    Ok(())
}

/// What a command prints: JSON, rendered as a table unless --json.
fn print_output(out: &Json, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(out).unwrap_or_default());
        return;
    }
    match out {
        Json::Array(rows) => {
            println!(
                "{:<38} {:<24} {:<10} {:<7} STATE",
                "UNIQUE IDENTIFIER", "NAME", "ALGORITHM", "LENGTH"
            );
            for r in rows {
                println!(
                    "{:<38} {:<24} {:<10} {:<7} {}",
                    text(&r["uid"]),
                    text(&r["name"]),
                    text(&r["algorithm"]),
                    text(&r["length"]),
                    text(&r["state"])
                );
            }
        }
        Json::Object(map) => {
            for (k, v) in map {
                println!("{k:<28} {}", text(v));
            }
        }
        other => println!("{}", text(other)),
    }
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        other => other.to_string(),
    }
}

pub(crate) fn algorithm(name: &str) -> Result<u32, CliError> {
    crate::kmip::text::algorithm(name).map_err(|e| usage(format!("--alg: {e}")))
}

fn state_value(name: &str) -> Result<u32, CliError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "pre-active" => state::PRE_ACTIVE,
        "active" => state::ACTIVE,
        "deactivated" => state::DEACTIVATED,
        "compromised" => state::COMPROMISED,
        other => {
            return Err(usage(format!(
                "unknown --state {other:?}; use pre-active, active, deactivated or compromised"
            )))
        }
    })
}

fn uid_of(payload: &Ttlv) -> String {
    payload
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .unwrap_or("")
        .to_owned()
}

fn uid_payload(uid: &str) -> Vec<Ttlv> {
    vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)]
}

async fn execute(client: &mut Client, command: KeyCommand) -> Result<Json, CliError> {
    Ok(match command {
        KeyCommand::Create {
            name,
            alg: a,
            length,
            group,
            activate,
            access_mode,
            owner_group,
            usage: usage_names,
            deactivate_at,
            rotate_every,
        } => {
            let schedule = Schedule::parse(deactivate_at.as_deref(), rotate_every.as_deref())?;
            let mut template = vec![
                attr(
                    attr::CRYPTOGRAPHIC_ALGORITHM,
                    Value::Enumeration(algorithm(&a)?),
                ),
                attr(attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(length)),
                attr(
                    attr::CRYPTOGRAPHIC_USAGE_MASK,
                    Value::Integer(usage_mask(&usage_names)?),
                ),
            ];
            if let Some(n) = name {
                template.push(attr(attr::NAME, name_value(&n)));
            }
            template.extend(
                group
                    .into_iter()
                    .map(|g| attr(attr::OBJECT_GROUP, Value::TextString(g))),
            );
            if let Some(m) = access_mode {
                template.push(attr(ext::ACCESS_MODE_ATTR, Value::TextString(m)));
            }
            if let Some(g) = owner_group {
                template.push(attr(ext::OWNER_GROUP_ATTR, Value::TextString(g)));
            }
            template.extend(schedule.attributes());
            let payload = vec![
                Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
                Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, template),
            ];
            let uid = uid_of(&call(client, op::CREATE, payload).await?);
            if activate {
                call(client, op::ACTIVATE, uid_payload(&uid)).await?;
            }
            let mut out =
                json!({ "uid": uid, "state": if activate { "active" } else { "pre-active" } });
            schedule.describe(&mut out);
            out
        }
        KeyCommand::Policy { .. } => return Err(usage("akm key policy runs before connecting")),
        KeyCommand::Export {
            uid,
            wrap_with,
            wrap_with_public,
            out,
        } => {
            let out = out.unwrap_or_else(|| super::transfer::default_out(&uid));
            let (wrapping, public) = match (wrap_with, wrap_with_public) {
                (Some(k), _) => (k, false),
                (None, Some(k)) => (k, true),
                (None, None) => return Err(usage("give --wrap-with or --wrap-with-public")),
            };
            super::transfer::export(client, &uid, &wrapping, public, &out).await?
        }
        KeyCommand::Import {
            file,
            name,
            unwrap_with,
            keep_wrapped,
        } => super::transfer::import(client, &file, name, unwrap_with, keep_wrapped).await?,
        KeyCommand::Rotate { uid } => {
            let new = uid_of(&call(client, op::RE_KEY, uid_payload(&uid)).await?);
            json!({ "uid": new, "replaces": uid })
        }
        KeyCommand::Get {
            uid,
            name,
            version,
            material,
        } => {
            let uid = match (uid, name) {
                (Some(u), _) => u,
                (None, Some(n)) => by_name_and_version(client, &n, version).await?,
                (None, None) => return Err(usage("give a Unique Identifier or --name")),
            };
            let mut out = summary(client, &uid).await?;
            if material {
                let got = call(client, op::GET, uid_payload(&uid)).await?;
                let bytes = find_bytes(&got, Tag::KEY_MATERIAL).unwrap_or_default();
                out["material_hex"] = Json::String(hex::encode(bytes));
            }
            out
        }
        KeyCommand::Locate {
            name,
            group,
            state: st,
        } => {
            let mut filters = Vec::new();
            if let Some(n) = name {
                filters.push(attr(attr::NAME, name_value(&n)));
            }
            if let Some(g) = group {
                filters.push(attr(attr::OBJECT_GROUP, Value::TextString(g)));
            }
            if let Some(s) = st {
                filters.push(attr(attr::STATE, Value::Enumeration(state_value(&s)?)));
            }
            let found = call(client, op::LOCATE, filters).await?;
            Json::Array(
                found
                    .children_with(Tag::UNIQUE_IDENTIFIER)
                    .filter_map(Ttlv::as_text)
                    .map(|u| json!(u))
                    .collect(),
            )
        }
        KeyCommand::List => {
            let found = call(client, op::LOCATE, vec![]).await?;
            let uids: Vec<String> = found
                .children_with(Tag::UNIQUE_IDENTIFIER)
                .filter_map(Ttlv::as_text)
                .map(str::to_owned)
                .collect();
            let mut rows = Vec::new();
            for uid in uids {
                rows.push(summary(client, &uid).await?);
            }
            Json::Array(rows)
        }
        KeyCommand::Activate { uid } => {
            call(client, op::ACTIVATE, uid_payload(&uid)).await?;
            json!({ "uid": uid, "state": "active" })
        }
        KeyCommand::Revoke { uid, reason } => {
            let code = match reason.as_str() {
                "unspecified" => rrc::UNSPECIFIED,
                "compromise" => rrc::KEY_COMPROMISE,
                "superseded" => rrc::SUPERSEDED,
                "cessation" => rrc::CESSATION_OF_OPERATION,
                other => return Err(usage(format!("unknown --reason {other:?}; use unspecified, compromise, superseded or cessation"))),
            };
            let mut payload = uid_payload(&uid);
            payload.push(Ttlv::structure(
                Tag::REVOCATION_REASON,
                vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, code)],
            ));
            call(client, op::REVOKE, payload).await?;
            json!({ "uid": uid, "revoked": reason })
        }
        KeyCommand::Destroy { uid } => {
            call(client, op::DESTROY, uid_payload(&uid)).await?;
            json!({ "uid": uid, "state": "destroyed" })
        }
        KeyCommand::Attrs { uid } => {
            let got = call(client, op::GET_ATTRIBUTES, uid_payload(&uid)).await?;
            let mut map = serde_json::Map::new();
            for a in got.children_with(Tag::ATTRIBUTE) {
                if let Ok((a, _)) = attributes::from_v1(a) {
                    let shown = show_value(&a);
                    match map.get_mut(&a.name) {
                        Some(Json::Array(list)) => list.push(shown),
                        Some(prev) => *prev = Json::Array(vec![prev.clone(), shown]),
                        None => {
                            map.insert(a.name.clone(), shown);
                        }
                    }
                }
            }
            Json::Object(map)
        }
    })
}

/// The expiry and rotation schedule `akm key create` was asked for.
struct Schedule {
    deactivate_at: Option<i64>,
    rotate_every: Option<u32>,
}

impl Schedule {
    fn parse(
        deactivate_at: Option<&str>,
        rotate_every: Option<&str>,
    ) -> Result<Schedule, CliError> {
        let deactivate_at = deactivate_at
            .map(|t| {
                super::when::parse_rfc3339(t).map_err(|e| usage(format!("--deactivate-at: {e}")))
            })
            .transpose()?;
        let rotate_every = rotate_every
            .map(|d| {
                super::when::parse_duration(d).map_err(|e| usage(format!("--rotate-every: {e}")))
            })
            .transpose()?;
        Ok(Schedule {
            deactivate_at,
            rotate_every,
        })
    }

    /// Deactivation Date; Rotate Automatic with its Rotate Interval (scheduled rotation,
    /// `ops::rotation`).
    fn attributes(&self) -> Vec<Ttlv> {
        let mut out = Vec::new();
        if let Some(at) = self.deactivate_at {
            out.push(attr(attr::DEACTIVATION_DATE, Value::DateTime(at)));
        }
        if let Some(every) = self.rotate_every {
            out.push(attr(attr::ROTATE_AUTOMATIC, Value::Boolean(true)));
            out.push(attr(attr::ROTATE_INTERVAL, Value::Interval(every)));
        }
        out
    }

    fn describe(&self, out: &mut Json) {
        if let Some(at) = self.deactivate_at {
            out["deactivation_date"] = json!(rfc3339(at));
        }
        if let Some(every) = self.rotate_every {
            out["rotate_interval_secs"] = json!(every);
        }
    }
}

fn find_bytes(t: &Ttlv, tag: Tag) -> Option<Vec<u8>> {
    if t.tag == tag {
        if let Some(b) = t.as_bytes() {
            return Some(b.to_vec());
        }
    }
    t.children().iter().find_map(|c| find_bytes(c, tag))
}

/// The identifier of version `version` (0 the first) of the key named `name`, or of its newest
/// version: Locate finds the newest (the name moves with each rotation), and the Replaced
/// Object links lead back through the older ones.
async fn by_name_and_version(
    client: &mut Client,
    name: &str,
    version: Option<usize>,
) -> Result<String, CliError> {
    let found = call(client, op::LOCATE, vec![attr(attr::NAME, name_value(name))]).await?;
    let uids: Vec<&str> = found
        .children_with(Tag::UNIQUE_IDENTIFIER)
        .filter_map(Ttlv::as_text)
        .collect();
    // Names are unique per owner: an administrator (or a user shown a shared key of the same
    // name) may see several, and a guess could pick someone else's key.
    let newest = match uids.as_slice() {
        [] => {
            return Err(CliError::Failed(format!(
                "no key named {name:?} is visible to you; list your keys with `akm key list`"
            )))
        }
        [only] => only.to_string(),
        several => {
            return Err(usage(format!(
                "{} keys named {name:?} are visible to you: {}; give the Unique Identifier instead",
                several.len(),
                several.join(", ")
            )))
        }
    };
    let Some(version) = version else {
        return Ok(newest);
    };
    // Newest first, back to the first version; a chain is bounded by the keys one owns.
    let mut chain = vec![newest];
    while chain.len() <= 100_000 {
        let last = chain.last().cloned().unwrap_or_default();
        let mut payload = uid_payload(&last);
        payload.push(Ttlv::text(Tag::ATTRIBUTE_NAME, attr::LINK));
        let got = call(client, op::GET_ATTRIBUTES, payload).await?;
        let previous = got.children_with(Tag::ATTRIBUTE).find_map(|a| {
            let (a, _) = attributes::from_v1(a).ok()?;
            let Value::Structure(fields) = a.value else {
                return None;
            };
            let kind = fields.iter().find(|f| f.tag == Tag::LINK_TYPE)?.as_enum()?;
            (kind == link_type::REPLACED_OBJECT_LINK).then(|| {
                fields
                    .iter()
                    .find(|f| f.tag == Tag::LINKED_OBJECT_IDENTIFIER)
                    .and_then(Ttlv::as_text)
                    .map(str::to_owned)
            })?
        });
        match previous {
            Some(p) => chain.push(p),
            None => break,
        }
    }
    chain.reverse();
    chain.get(version).cloned().ok_or_else(|| {
        usage(format!(
            "{name:?} has versions 0 to {}; there is no version {version}",
            chain.len() - 1
        ))
    })
}

/// A key's identifier, name, algorithm, length and state, from Get Attributes.
async fn summary(client: &mut Client, uid: &str) -> Result<Json, CliError> {
    let mut payload = uid_payload(uid);
    for n in [
        attr::NAME,
        attr::CRYPTOGRAPHIC_ALGORITHM,
        attr::CRYPTOGRAPHIC_LENGTH,
        attr::STATE,
    ] {
        payload.push(Ttlv::text(Tag::ATTRIBUTE_NAME, n));
    }
    let got = call(client, op::GET_ATTRIBUTES, payload).await?;
    let mut out =
        json!({ "uid": uid, "name": null, "algorithm": null, "length": null, "state": null });
    for a in got.children_with(Tag::ATTRIBUTE) {
        let Ok((a, _)) = attributes::from_v1(a) else {
            continue;
        };
        match (a.name.as_str(), &a.value) {
            (attr::NAME, v) => out["name"] = json!(crate::ops::object_name(v)),
            (attr::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(v)) => {
                out["algorithm"] = json!(algorithm_name(*v))
            }
            (attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(v)) => out["length"] = json!(v),
            (attr::STATE, Value::Enumeration(v)) => out["state"] = json!(state_name(*v)),
            _ => {}
        }
    }
    Ok(out)
}

/// The Cryptographic Usage Mask of `--usage` names.
pub(crate) fn usage_mask(names: &str) -> Result<i32, CliError> {
    crate::kmip::text::usage_mask(names).map_err(|e| usage(format!("--usage: {e}")))
}
