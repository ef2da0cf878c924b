//! `akm audit`: `verify` checks journal files or a SIEM's copy for tampering, `export --csv`
//! writes an audit trail for people, `public-key` prints the key that verifies checkpoints.
//! Reads files only; never talks to the server or opens its database.

use super::CliError;
use crate::audit::crosscheck::{ExpectedCheckpoint, Reference};
use crate::audit::record::{unescape, Record};
use crate::audit::signer::{PublicKey, Signer};
use crate::audit::verify::{self, Options, Report};
use crate::audit::{format, format_time_ms, now_ms};
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
        /// The last signed checkpoint must be at most this many seconds old, however the
        /// log ends; a running server's journal may then end with records after it. Without
        /// it the log must end with the checkpoint written at shutdown or rotation.
        #[arg(long)]
        max_age: Option<u64>,
        /// The serial the records must start with: 1 when the files go back to the first
        /// start, so a missing head is caught too. Without it a copy may start anywhere.
        #[arg(long)]
        first_serial: Option<u64>,
        /// A second copy of the records to compare with (a SIEM's file, in any format the
        /// verifier reads); repeat it for several files. Fails if the copy holds a record
        /// that differs from the journal's or any record past the journal's end. Give every
        /// journal file up to the current one, or the copy's later records count as cut off.
        #[arg(long, value_name = "FILE")]
        against: Vec<PathBuf>,
        /// A checkpoint seen elsewhere (a SIEM, the metric akm_audit_last_checkpoint_serial,
        /// the status page): SERIAL or SERIAL:HASH. The journal must reach it and, with
        /// HASH, hold exactly that checkpoint. Repeatable.
        #[arg(long, value_name = "SERIAL[:HASH]")]
        expect_checkpoint: Vec<ExpectedCheckpoint>,
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
pub fn run(config: &Path, args: AuditArgs, json: bool) -> Result<(), CliError> {
    match args.command {
        AuditCommand::Verify {
            files,
            public_key,
            max_age,
            first_serial,
            against,
            expect_checkpoint,
        } => {
            let keys = public_keys(config, &public_key)?;
            let mut reference = Reference::default();
            reference
                .read_copy(&against, &keys)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            for e in &expect_checkpoint {
                reference.expect_checkpoint(e);
            }
            let options = Options {
                public_keys: keys,
                max_age_secs: max_age,
                first_serial,
                now_ms: now_ms(),
            };
            verify(&files, &options, &reference, json)
        }
        AuditCommand::Export { files, .. } => export(&files),
        AuditCommand::PublicKey { out } => {
            let key = configured_key(config)?;
            match out {
                Some(path) => std::fs::write(&path, format!("{key}\n")).map_err(|e| {
                    CliError::Usage(format!("cannot write {}: {e}", path.display()))
                })?,
                None if json => {
                    println!("{}", serde_json::json!({ "public_key": key.to_string() }))
                }
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

/// The keys from `--public-key` files, or the configured signing key's.
fn public_keys(config: &Path, files: &[PathBuf]) -> Result<Vec<PublicKey>, CliError> {
    let mut keys = Vec::new();
    for path in files {
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
    Ok(keys)
}

fn verify(
    files: &[PathBuf],
    options: &Options,
    reference: &Reference,
    json: bool,
) -> Result<(), CliError> {
    let report = verify::verify_files_against(files, options, reference)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    match report.fault {
        Some(ref fault) => Err(CliError::Tampered(fault.to_string())),
        None => {
            let line = ok_line(&report, options.now_ms, reference);
            if json {
                println!("{}", serde_json::json!({ "ok": true, "summary": line }));
            } else {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// The success line. It always names the last signed checkpoint and its time, so a journal
/// that stops earlier than it should is visible to whoever reads it.
fn ok_line(report: &Report, now_ms: i64, reference: &Reference) -> String {
    let mut line = format!(
        "akm audit verify: OK: {} records (serials {}..{}), {} signed checkpoints verified, {} duplicate copies skipped",
        report.records,
        report.first.unwrap_or(0),
        report.last.unwrap_or(0),
        report.checkpoints,
        report.duplicates
    );
    if let Some(c) = &report.last_checkpoint {
        let age_s = now_ms.saturating_sub(c.time_ms).max(0) / 1000;
        line.push_str(&format!(
            "; last signed checkpoint: serial {} at {} ({}, {age_s} s ago)",
            c.serial,
            format_time_ms(c.time_ms),
            c.reason.as_deref().unwrap_or("?"),
        ));
    }
    if !reference.is_empty() {
        line.push_str(&format!(
            "; second copy: {} records compared, {} older than these files, none beyond",
            report.compared, report.before_first
        ));
        if report.other_servers > 0 {
            line.push_str(&format!(
                ", {} of other servers not compared",
                report.other_servers
            ));
        }
        if reference.unreadable > 0 {
            line.push_str(&format!(
                ", {} unreadable lines not compared",
                reference.unreadable
            ));
        }
    }
    line
}

/// A cell of the CSV export: quoted where needed, and a value a spreadsheet would run as a
/// formula defused (key names and details come from clients; auditors open these files).
fn csv_field(value: &str) -> String {
    super::report::csv_cell(value)
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
