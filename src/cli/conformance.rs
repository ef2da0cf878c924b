//! `akm conformance replay`: replays OASIS KMIP XML test-case files against a running server
//! (a KMIP client over mutual TLS, connecting like `akm key`) and prints one line per file,
//! the path-level differences of a failure, and a final `N passed, M failed` line. With
//! `--server`, `--cert`, `--key` and `--ca` it reads no config file (it can test any KMIP
//! server from any machine); a missing one is taken from `[client]` in the config.

use super::CliError;
use crate::client::ClientError;
use crate::config::{ClientConfig, Config};
use crate::conformance::{self, replay, FileReport};
use crate::tls;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// `akm conformance ...`
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// The conformance command.
    #[command(subcommand)]
    command: ConformanceCommand,
}

#[derive(Debug, Subcommand)]
enum ConformanceCommand {
    /// Replay test-case files, one connection per file; exit 1 if any fails.
    Replay {
        /// Server address (default: [client] server in the config).
        #[arg(long)]
        server: Option<String>,
        /// Client certificate (default: [client] cert).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Client private key (default: [client] key).
        #[arg(long)]
        key: Option<PathBuf>,
        /// CA of the server certificate (default: [client] ca).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Also print a Markdown table of pass counts per profile group and suite.
        #[arg(long)]
        table: bool,
        /// The test-case files (`.xml`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs a conformance command; `config_path` is read only when a connection option is
/// missing.
pub fn run(config_path: &Path, args: ConformanceArgs, json: bool) -> Result<(), CliError> {
    let ConformanceCommand::Replay {
        server,
        cert,
        key,
        ca,
        table,
        files,
    } = args.command;
    let c = match (&server, &cert, &key, &ca) {
        (Some(_), Some(_), Some(_), Some(_)) => ClientConfig::default(),
        _ => client_defaults(config_path)?,
    };
    let tls = tls::client_config(
        cert.as_ref().unwrap_or(&c.cert),
        key.as_ref().unwrap_or(&c.key),
        ca.as_ref().unwrap_or(&c.ca),
    )
    .map_err(ClientError::from)?;
    let target = replay::Target {
        addr: server.unwrap_or_else(|| c.server.clone()),
        tls,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::from)?;
    let reports: Vec<FileReport> = runtime.block_on(async {
        let mut reports = Vec::with_capacity(files.len());
        for path in files {
            let outcome = replay::replay_file(&path, &target).await;
            let report = FileReport { path, outcome };
            if !json {
                println!("{}", report.render());
            }
            reports.push(report);
        }
        reports
    });
    let failed = reports.iter().filter(|r| r.outcome.is_err()).count();
    if json {
        let files: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "file": r.path,
                    "passed": r.outcome.is_ok(),
                    "result": r.render(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "files": files,
            "passed": reports.len() - failed,
            "failed": failed,
            "totals": conformance::totals(&reports),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        if table {
            print!("\n{}", conformance::pass_table(&reports));
        }
        println!("{}", conformance::totals(&reports));
    }
    if failed > 0 {
        return Err(CliError::Conformance(failed));
    }
    Ok(())
}

/// `[client]` of the config file, for the connection options not given on the command line.
fn client_defaults(config_path: &Path) -> Result<ClientConfig, CliError> {
    Config::load(config_path).map(|c| c.client).map_err(|e| {
        CliError::Usage(format!(
            "akm conformance replay: give --server, --cert, --key and --ca, or a config \
                 file whose [client] section has them ({e})"
        ))
    })
}
