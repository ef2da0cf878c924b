//! `akm audit`: `verify` checks journal files or a SIEM's copy for tampering, `export --csv`
//! writes an audit trail for people, `public-key` prints the key that verifies checkpoints.
//! Reads files only; never talks to the server or opens its database.

use super::CliError;
use crate::audit::record::{unescape, Record};
use crate::audit::signer::{PublicKey, Signer};
use crate::audit::verify::{self, Options};
use crate::audit::{format, now_ms};
use crate::config::Config;
use clap::{Args, Subcommand};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// `akm audit ...`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The audit command.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check audit records (journal files, or a syslog receiver's files holding key=value, CEF
    /// or LEEF records, RFC 5424 or 3164) for modified, deleted, inserted, reordered,
    /// truncated or forked records. Files are read in the order given (oldest first).
    Verify {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A public key file (`ed25519:<hex>` lines, from `akm audit public-key`); repeat it
        /// (or put several lines in one file) for logs that span a signing-key change.
        /// Default: the configured signing key.
        #[arg(long)]
        public_key: Vec<PathBuf>,
        /// Accept a log that ends after its last checkpoint (a running server's journal) if
        /// that checkpoint is at most this many seconds old. Without it the log must end
        /// with the checkpoint written at shutdown or rotation.
        #[arg(long)]
        max_age: Option<u64>,
        /// The serial the records must start with: 1 when the files go back to the first
        /// start, so a missing head is caught too. Without it a copy may start anywhere.
        #[arg(long)]
        first_serial: Option<u64>,
    },
    /// Write the records as CSV (one row per record, values unescaped) to stdout.
    Export {
        /// CSV output (the only format).
        #[arg(long, required = true)]
        csv: bool,
        /// The files to export.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the public key that verifies this server's checkpoints.
    PublicKey {
        /// Write it to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Columns of the CSV export, in order.
const CSV_COLUMNS: &[&str] = &[
    "serial",
    "time",
    "server",
    "server_addr",
    "event",
    "client",
    "client_port",
    "user",
    "groups",
    "cert_sha256",
    "protocol",
    "operation",
    "uid",
    "name",
    "outcome",
    "reason",
    "detail",
    "duration_ms",
    "config_sha256",
];

/// Runs an audit command; the config at `config` is read only when the command needs the
/// signing key from it.
pub fn run(config: &Path, args: AuditArgs) -> Result<(), CliError> {
    match args.command {
        AuditCommand::Verify {
            files,
            public_key,
            max_age,
            first_serial,
        } => verify(config, &files, public_key, max_age, first_serial),
        AuditCommand::Export { files, .. } => export(&files),
        AuditCommand::PublicKey { out } => {
            let key = configured_key(config)?;
            match out {
                Some(path) => std::fs::write(&path, format!("{key}\n")).map_err(|e| {
                    CliError::Usage(format!("cannot write {}: {e}", path.display()))
                })?,
                None => println!("{key}"),
            }
            Ok(())
        }
    }
}

fn configured_key(config: &Path) -> Result<PublicKey, CliError> {
    let config = Config::load(config)?;
    let path = config.audit.signing_key_path(&config.store);
    Signer::load(&path)
        .map(|s| s.public_key())
        .map_err(|e| CliError::Audit(format!("audit signing key: {e}")))
}

fn verify(
    config: &Path,
    files: &[PathBuf],
    public_key: Vec<PathBuf>,
    max_age: Option<u64>,
    first_serial: Option<u64>,
) -> Result<(), CliError> {
    let mut keys = Vec::new();
    for path in &public_key {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            keys.push(
                PublicKey::parse(line)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?,
            );
        }
    }
    if keys.is_empty() {
        keys.push(configured_key(config)?);
    }
    let options = Options {
        public_keys: keys,
        max_age_secs: max_age,
        first_serial,
        now_ms: now_ms(),
    };
    let report =
        verify::verify_files(files, &options).map_err(|e| CliError::Usage(e.to_string()))?;
    match report.fault {
        Some(fault) => Err(CliError::Tampered(fault.to_string())),
        None => {
            println!(
                "akm audit verify: OK: {} records (serials {}..{}), {} signed checkpoints verified, {} duplicate copies skipped",
                report.records,
                report.first.unwrap_or(0),
                report.last.unwrap_or(0),
                report.checkpoints,
                report.duplicates
            );
            Ok(())
        }
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn csv_row(r: &Record) -> String {
    CSV_COLUMNS
        .iter()
        .map(|c| csv_field(&unescape(r.get(c).unwrap_or(""))))
        .collect::<Vec<_>>()
        .join(",")
}

fn export(files: &[PathBuf]) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e: std::io::Error| CliError::Usage(format!("cannot write the export: {e}"));
    writeln!(out, "{}", CSV_COLUMNS.join(",")).map_err(io)?;
    for path in files {
        let file = std::fs::File::open(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        for line in BufReader::new(file).lines() {
            let line =
                line.map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
            if let Some(Ok(r)) = format::extract(&line) {
                writeln!(out, "{}", csv_row(&r)).map_err(io)?;
            }
        }
    }
    Ok(())
}
