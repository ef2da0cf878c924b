//! `akm user ...`, `akm group ...` and `akm key policy ...`: the administration commands.
//! KMIP clients over mutual TLS like `akm key`, using akm's vendor operations
//! (`kmip::extension`); the server allows them only to its administrators group. Tables for
//! people, `--json` for scripts.

use super::errors::call;
use super::CliError;
use crate::client::Client;
use crate::config::Config;
use crate::kmip::extension::{self as ext, AccountInfo, KeyPolicyInfo};
use crate::kmip::ProtocolVersion;
use crate::tls;
use crate::ttlv::{Tag, Ttlv};
use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};
use std::path::PathBuf;

/// How to reach the server (defaults from `[client]`).
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Server address; several (repeated or comma-separated) are tried in order until one is
    /// reachable (default: [client] server in the config, also comma-separated).
    #[arg(long, global = true, value_delimiter = ',')]
    pub server: Vec<String>,
    /// Client certificate, of an administrator (default: [client] cert).
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// Client private key (default: [client] key).
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// CA of the server certificate (default: [client] ca).
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `akm user ...` / `akm group ...`
#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: AccountCommand,
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// List the records.
    List,
    /// Create or change a record; what is not given is kept (a new record is enabled and
    /// grants nothing).
    Set {
        /// The name (certificate CN for users, OU for groups).
        name: String,
        /// Granted operations, comma-separated: all, read, create, register, locate, check,
        /// get, get-attributes, get-attribute-list, add-attribute, modify-attribute,
        /// delete-attribute, set-attribute, obtain-lease, activate, revoke, destroy, log ("" for
        /// none).
        #[arg(long)]
        ops: Option<String>,
        /// Enable the record.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable it (a disabled user may do nothing; a disabled group grants nothing).
        #[arg(long)]
        disable: bool,
    },
    /// Delete a record.
    Delete {
        /// The name.
        name: String,
    },
}

/// `akm tls ...`
#[derive(Debug, Args)]
pub struct TlsArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: TlsCommand,
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Make the server reload its configuration, TLS files included (CA bundle, pins, CRLs),
    /// as `akm reload` and SIGHUP do; new connections use them.
    Reload,
}

/// `akm reload`
#[derive(Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    conn: ConnArgs,
}

/// Runs `akm reload`: the server re-reads its configuration file; a refusal (the error names
/// the key and the file) is printed and fails the command.
pub fn run_reload(config: &Config, args: ReloadArgs) -> Result<(), CliError> {
    let out = connect_and_run(config, &args.conn, |client| {
        Box::pin(async move {
            let payload = call(client, ext::OP_RELOAD_CONFIG, Vec::new()).await?;
            let restart: Vec<&str> = payload
                .children_with(ext::TAG_RESTART_KEY)
                .filter_map(Ttlv::as_text)
                .collect();
            Ok(json!({ "reloaded": true, "restart_needed": restart }))
        })
    })?;
    if args.conn.json {
        print(&out, true);
        return Ok(());
    }
    println!("akm reload: the server reloaded its configuration");
    let restart = out["restart_needed"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !restart.is_empty() {
        let keys: Vec<String> = restart.iter().map(text).collect();
        println!(
            "akm reload: changed but waiting for a restart: {}",
            keys.join(", ")
        );
    }
    Ok(())
}

/// Runs `akm tls reload`.
pub fn run_tls(config: &Config, args: TlsArgs) -> Result<(), CliError> {
    let TlsCommand::Reload = args.command;
    let out = connect_and_run(config, &args.conn, |client| {
        Box::pin(async move {
            call(client, ext::OP_RELOAD_TLS, Vec::new()).await?;
            Ok(json!({ "reloaded": true }))
        })
    })?;
    print(&out, args.conn.json);
    Ok(())
}

/// `akm key policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show a key's owner, owner group and access mode.
    Show {
        /// Unique Identifier.
        uid: String,
    },
    /// Change a key's policy; what is not given is kept.
    Set {
        /// Unique Identifier.
        uid: String,
        /// New owner user.
        #[arg(long)]
        owner: Option<String>,
        /// New owner group ("" for none).
        #[arg(long)]
        group: Option<String>,
        /// New access mode: any, group, user or user-and-group.
        #[arg(long)]
        mode: Option<String>,
    },
}

/// What a command does once connected, as a future borrowing the client.
pub(super) type Work<'c> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Json, CliError>> + 'c>>;

/// Connects as `conn` says (defaults from `[client]`) and runs `f` with the client.
pub(super) fn connect_and_run<F>(config: &Config, conn: &ConnArgs, f: F) -> Result<Json, CliError>
where
    F: for<'c> FnOnce(&'c mut Client) -> Work<'c>,
{
    connect_and_run_at(config, conn, ProtocolVersion::V1_4, f)
}

/// [`connect_and_run`] speaking KMIP `version` (2.1 shows attributes 1.4 cannot, such as the
/// rotation schedule).
pub(super) fn connect_and_run_at<F>(
    config: &Config,
    conn: &ConnArgs,
    version: ProtocolVersion,
    f: F,
) -> Result<Json, CliError>
where
    F: for<'c> FnOnce(&'c mut Client) -> Work<'c>,
{
    let c = &config.client;
    let cert = conn.cert.as_ref().unwrap_or(&c.cert);
    let tls = tls::client_config(
        cert,
        conn.key.as_ref().unwrap_or(&c.key),
        conn.ca.as_ref().unwrap_or(&c.ca),
    )
    .map_err(client_files_error)?;
    let servers = if conn.server.is_empty() {
        crate::client::split_servers(&c.server)
    } else {
        conn.server.clone()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::client::ClientError::from)?;
    let result = runtime.block_on(async {
        let mut client = Client::connect_any(&servers, tls, version).await?;
        let result = f(&mut client).await;
        // close_notify: the server sees an orderly end, not a dropped connection.
        let _ = client.close().await;
        result
    });
    result.map_err(|e| e.with_identity(super::errors::identity_of(cert)))
}

/// The client certificate, key or CA file could not be used: a permission problem says so
/// (exit 77), anything else is as the TLS layer put it.
fn client_files_error(e: tls::TlsError) -> CliError {
    let denied = match &e {
        tls::TlsError::Read { source, .. } => source.kind() == std::io::ErrorKind::PermissionDenied,
        tls::TlsError::Secret(s) => s.to_string().contains("ermission denied"),
        _ => false,
    };
    if denied {
        CliError::NoPermission(format!(
            "{e}; the client files of [client] (or --cert, --key, --ca) must be readable by \
             this user: run as root (or as the akm user) or pass your own"
        ))
    } else {
        crate::client::ClientError::from(e).into()
    }
}

fn malformed() -> CliError {
    CliError::Client(crate::client::ClientError::Protocol(
        "malformed administration response".into(),
    ))
}

/// Runs `akm user` (`user` true) or `akm group`.
pub fn run_accounts(config: &Config, user: bool, args: AccountArgs) -> Result<(), CliError> {
    let json_out = args.conn.json;
    let out = connect_and_run(config, &args.conn, move |client| {
        Box::pin(async move {
            match args.command {
                AccountCommand::List => {
                    let got = call(
                        client,
                        ext::OP_LIST_ACCOUNTS,
                        ext::list_accounts_payload(user),
                    )
                    .await?;
                    accounts_json(&got)
                }
                AccountCommand::Set {
                    name,
                    ops,
                    enable,
                    disable,
                } => {
                    let enabled = match (enable, disable) {
                        (true, _) => Some(true),
                        (_, true) => Some(false),
                        _ => None,
                    };
                    let payload = ext::set_account_payload(user, &name, enabled, ops.as_deref());
                    let got = call(client, ext::OP_SET_ACCOUNT, payload).await?;
                    accounts_json(&got)
                }
                AccountCommand::Delete { name } => {
                    let payload = ext::delete_account_payload(user, &name);
                    call(client, ext::OP_DELETE_ACCOUNT, payload).await?;
                    Ok(json!({ "deleted": name }))
                }
            }
        })
    })?;
    print(&out, json_out);
    Ok(())
}

fn accounts_json(payload: &Ttlv) -> Result<Json, CliError> {
    let accounts: Vec<AccountInfo> = ext::parse_accounts(payload).ok_or_else(malformed)?;
    serde_json::to_value(accounts).map_err(|_| malformed())
}

/// Runs `akm key policy ...` with the `akm key` connection options.
pub fn run_policy(
    config: &Config,
    conn: &ConnArgs,
    command: PolicyCommand,
) -> Result<(), CliError> {
    let out = connect_and_run(config, conn, move |client| {
        Box::pin(async move {
            let got = match command {
                PolicyCommand::Show { uid } => {
                    call(
                        client,
                        ext::OP_GET_KEY_POLICY,
                        vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)],
                    )
                    .await?
                }
                PolicyCommand::Set {
                    uid,
                    owner,
                    group,
                    mode,
                } => {
                    let payload = ext::set_key_policy_payload(
                        &uid,
                        owner.as_deref(),
                        group.as_deref(),
                        mode.as_deref(),
                    );
                    call(client, ext::OP_SET_KEY_POLICY, payload).await?
                }
            };
            let p: KeyPolicyInfo = ext::parse_key_policy(&got).ok_or_else(malformed)?;
            serde_json::to_value(p).map_err(|_| malformed())
        })
    })?;
    print(&out, conn.json);
    Ok(())
}

/// Prints `out`: JSON, or an array of accounts as a table, or an object as key/value lines.
pub(super) fn print(out: &Json, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(out).unwrap_or_default());
        return;
    }
    match out {
        Json::Array(rows) => {
            println!("{:<24} {:<8} OPERATIONS", "NAME", "ENABLED");
            for r in rows {
                let ops = r["operations"]
                    .as_array()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                    .unwrap_or_default();
                println!("{:<24} {:<8} {ops}", text(&r["name"]), text(&r["enabled"]));
            }
        }
        Json::Object(map) => {
            for (k, v) in map {
                println!("{k:<10} {}", text(v));
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
