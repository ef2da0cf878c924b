//! `akm backup` (a KMIP client over mutual TLS, administrators only: the server snapshots its
//! database online into its backup directory) and `akm restore` (offline, on a stopped
//! node: verifies the whole backup file, then writes the database; the node's KEK comes from
//! its key file, or from its sealed file opened with custodian shares or the passphrase).

use super::admin::{connect_and_run, print, ConnArgs};
use super::CliError;
use crate::backup::{self, BackupError};
use crate::config::Config;
use crate::crypto::slot::KekSlot;
use crate::kmip::custody as ext;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// `akm backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    conn: ConnArgs,
}

/// `akm restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (`akm-*.akmbak`).
    file: PathBuf,
    /// A custodian share file, when the node's KEK is sealed with shares; repeat up to the
    /// threshold.
    #[arg(long)]
    share_file: Vec<PathBuf>,
    /// Read the passphrase from stdin, when the node's KEK is sealed with one.
    #[arg(long)]
    passphrase_stdin: bool,
    /// Only verify the file (authenticate every byte); write nothing.
    #[arg(long)]
    verify_only: bool,
}

/// Runs `akm backup`.
pub fn run_backup(config: &Config, args: BackupArgs) -> Result<(), CliError> {
    eprintln!("akm backup: the server is taking an online snapshot...");
    let out = connect_and_run(config, &args.conn, |client| {
        Box::pin(async move {
            let got = client.call(ext::OP_BACKUP, Vec::new()).await?;
            ext::backup_from(&got).ok_or_else(|| {
                CliError::Client(crate::client::ClientError::Protocol(
                    "malformed backup response".into(),
                ))
            })
        })
    })?;
    print(&out, args.conn.json);
    Ok(())
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Restore(e.to_string())
}

/// The node's KEK for a restore: its key file, or its sealed file opened here.
fn node_kek(config: &Config, args: &RestoreArgs) -> Result<KekSlot, CliError> {
    let sealed = crate::daemon::sealed_kek_path(config);
    let slot = crate::daemon::kek_files(config).load()?;
    if !slot.is_sealed() {
        return Ok(slot);
    }
    if args.passphrase_stdin {
        slot.submit_passphrase(&super::custody::read_passphrase()?)?;
    }
    for path in &args.share_file {
        let bytes = crate::secret_file::read(path).map_err(failed)?;
        let text = String::from_utf8_lossy(&bytes).to_string();
        slot.submit_share(text.trim())?;
    }
    if slot.is_sealed() {
        return Err(CliError::Usage(format!(
            "{} is sealed: give --share-file (threshold {}) or --passphrase-stdin",
            sealed.display(),
            slot.status().threshold
        )));
    }
    Ok(slot)
}

/// Whether progress bars are drawn: only for a person at a terminal, never `\r` into a pipe
/// or a log file.
fn drawing() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Ends a progress bar's line (if one was drawn).
fn end_bar() {
    if drawing() {
        eprintln!();
    }
}

/// A one-line progress bar on stderr, on a terminal only.
fn bar(stage: &str, done: u64, total: u64) {
    if !drawing() {
        return;
    }
    let pct = (done.saturating_mul(100))
        .checked_div(total)
        .unwrap_or(100)
        .min(100);
    let filled = (pct / 5) as usize;
    eprint!(
        "\r{stage:>8} [{}{}] {pct:>3}%",
        "#".repeat(filled),
        " ".repeat(20 - filled)
    );
    let _ = std::io::stderr().flush();
}

/// Runs `akm restore`.
pub fn run_restore(config: &Config, args: RestoreArgs) -> Result<(), CliError> {
    let kek = node_kek(config, &args)?;
    if args.verify_only {
        let h =
            backup::verify(&args.file, &kek, &mut |n, t| bar("verify", n, t)).map_err(failed)?;
        end_bar();
        println!(
            "akm restore: {} verified (backup {}, KEK {}, sha256 {})",
            args.file.display(),
            h.backup_id,
            h.kek_id,
            backup::file_sha256(&args.file).map_err(failed)?
        );
        return Ok(());
    }
    let mut last = String::new();
    let restored = backup::restore(
        &args.file,
        &kek,
        &config.store.database(),
        &mut |s, n, t| {
            if s != last {
                if !last.is_empty() {
                    end_bar();
                }
                last = s.to_owned();
            }
            bar(s, n, t)
        },
    );
    end_bar();
    let restored = restored.map_err(|e: BackupError| failed(e))?;
    println!(
        "akm restore: {} restored into {} ({} keys verified to unwrap; backup sha256 {})",
        args.file.display(),
        restored.database.display(),
        restored.keys,
        restored.sha256
    );
    Ok(())
}
