//! `akm backup` (a KMIP client over mutual TLS, administrators only: the server snapshots its
//! database online into its backup directory) and `akm restore` (offline, on a stopped
//! node: verifies the whole backup file, then writes the database; the node's KEK comes from
//! its key file, or from its sealed file opened with custodian shares or the passphrase).

use super::admin::{connect_and_run, print, ConnArgs};
use super::CliError;
use crate::backup::{self, BackupError};
use crate::config::{Config, StoreBackend};
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
    /// Instead of the key database: write one archive of the sealed KEK, the KEK archive,
    /// the configuration and the PKI files that rebuild this node (read here, no server).
    #[arg(long)]
    kek_and_config: bool,
    /// With --kek-and-config: the archive to write (default: the backup directory).
    #[arg(long, requires = "kek_and_config")]
    out: Option<PathBuf>,
}

/// `akm restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (`akm-*.akmbak`).
    #[arg(required_unless_present = "kek_and_config")]
    file: Option<PathBuf>,
    /// Restore a KEK-and-configuration archive (from `akm backup --kek-and-config`) into this
    /// node's directories: the configuration goes to --config, the rest beside it.
    #[arg(long, value_name = "ARCHIVE", conflicts_with = "file")]
    pub(super) kek_and_config: Option<PathBuf>,
    /// With --kek-and-config: overwrite files that exist. With a backup file and a PostgreSQL
    /// store: replace the database's contents although it holds objects (stop every akm node
    /// on it first).
    #[arg(long)]
    force: bool,
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
    if args.kek_and_config {
        return backup_kit(config, args.out, args.conn.json);
    }
    eprintln!("akm backup: the server is taking an online snapshot...");
    let out = connect_and_run(config, &args.conn, |client| {
        Box::pin(async move {
            let got = client.call(ext::OP_BACKUP, Vec::new()).await?;
            super::custody::backup_from(&got).ok_or_else(|| {
                CliError::Client(crate::client::ClientError::Protocol(
                    "malformed backup response".into(),
                ))
            })
        })
    })?;
    if let Some(e) = out.get("upload_error").and_then(|e| e.as_str()) {
        eprintln!(
            "akm backup: WARNING: the backup was written but copying it over SFTP failed: {e} \
             (see the backup log; fix [backup.sftp] and run akm backup again)"
        );
    }
    print(&out, args.conn.json);
    Ok(())
}

/// `akm backup --kek-and-config`: the archive, read from this node's files.
fn backup_kit(config: &Config, out: Option<PathBuf>, json: bool) -> Result<(), CliError> {
    let failed = |e: backup::kit::KitError| CliError::Usage(format!("akm backup: {e}"));
    let out = match out {
        Some(o) => o,
        None => {
            let dir = config.backup.dir(&config.store);
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| CliError::Usage(format!("akm backup: {}: {e}", dir.display())))?;
            dir.join(backup::kit::default_name(crate::clock::now_secs()))
        }
    };
    let (files, sha256) = backup::kit::write(config, &out).map_err(failed)?;
    let summary = serde_json::json!({
        "file": out.display().to_string(),
        "sha256": sha256,
        "contains": files,
    });
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        println!(
            "akm backup: wrote {} (mode 0600, sha256 {sha256}): {}. The KEK in it is sealed: \
             a restored node still needs the custodians' shares or the passphrase.",
            out.display(),
            files.join(", ")
        );
    }
    Ok(())
}

/// `akm restore --kek-and-config ARCHIVE`: needs no configuration yet (it brings one).
pub fn run_restore_kit(
    config_path: &std::path::Path,
    args: RestoreArgs,
    json: bool,
) -> Result<(), CliError> {
    let archive = args.kek_and_config.unwrap_or_default();
    let written = backup::kit::restore(&archive, config_path, args.force).map_err(failed)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "archive": archive, "restored": written })
        );
        return Ok(());
    }
    for p in &written {
        println!("restored {}", p.display());
    }
    println!(
        "akm restore: {} files of {} restored; restore a data backup with `akm restore FILE`, \
         then start the node and unseal it",
        written.len(),
        archive.display()
    );
    Ok(())
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Restore(e.to_string())
}

/// The node's KEK for a restore: its key file, or its sealed file opened here.
fn node_kek(config: &Config, args: &RestoreArgs) -> Result<KekSlot, CliError> {
    let sealed = config.store.sealed_kek();
    let slot = crate::crypto::rotate::KekFiles::of(&config.store).load()?;
    restore_dual_control(config, &slot, args)?;
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

/// Dual control of `restore` (offline, so no second administrator can be asked): two
/// custodians must take part, each giving a share of a KEK sealed with a threshold of at
/// least 2.
fn restore_dual_control(
    config: &Config,
    slot: &KekSlot,
    args: &RestoreArgs,
) -> Result<(), CliError> {
    let guarded = crate::config::dual_control::expand(&config.dual_control.operation_names())
        .is_ok_and(|ops| ops.iter().any(|o| o == "restore"));
    if !guarded {
        return Ok(());
    }
    let status = slot.status();
    if status.scheme != "shares" || status.threshold < 2 {
        return Err(CliError::Restore(
            "restore is under dual control (dual_control.operations) and needs two custodians: \
             seal the KEK with shares first (`akm kek seal --shares N --threshold 2` or more)"
                .into(),
        ));
    }
    if args.share_file.len() < 2 {
        return Err(CliError::Restore(format!(
            "restore is under dual control (dual_control.operations): give at least two \
             custodians' --share-file (threshold {})",
            status.threshold
        )));
    }
    Ok(())
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
pub fn run_restore(config: &Config, args: RestoreArgs, json: bool) -> Result<(), CliError> {
    let Some(file) = args.file.clone() else {
        return run_restore_kit(&config.path, args, json);
    };
    if args.force && config.store.backend == StoreBackend::Sqlite {
        return Err(CliError::Usage(
            "--force with a backup file replaces a PostgreSQL database's contents; a SQLite \
             node restores only into an empty data directory: stop the server and move the old \
             database away"
                .into(),
        ));
    }
    // With the KEKs retired by rotations (kek.archive): older backups restore too.
    let kek = node_kek(config, &args)?
        .with_archive(&crate::crypto::rotate::KekFiles::of(&config.store))?;
    if args.verify_only {
        let h = backup::verify(&file, &kek, &mut |n, t| bar("verify", n, t)).map_err(failed)?;
        end_bar();
        let sha256 = backup::file_sha256(&file).map_err(failed)?;
        if json {
            println!(
                "{}",
                serde_json::json!({ "file": file, "verified": true, "backup_id": h.backup_id,
                    "kek_id": h.kek_id, "sha256": sha256 })
            );
        } else {
            println!(
                "akm restore: {} verified (backup {}, KEK {}, sha256 {sha256})",
                file.display(),
                h.backup_id,
                h.kek_id,
            );
        }
        return Ok(());
    }
    let mut last = String::new();
    let mut progress = |s: &str, n, t| {
        if s != last {
            if !last.is_empty() {
                end_bar();
            }
            last = s.to_owned();
        }
        bar(s, n, t)
    };
    let restored = match config.store.backend {
        StoreBackend::Postgres => {
            backup::restore_into_postgres(&file, &kek, &config.store, args.force, &mut progress)
        }
        StoreBackend::Sqlite => {
            backup::restore(&file, &kek, &config.store.database(), &mut progress)
        }
    };
    end_bar();
    let restored = restored.map_err(|e: BackupError| failed(e))?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "file": file, "database": restored.database,
                "keys_verified": restored.keys, "sha256": restored.sha256 })
        );
        return Ok(());
    }
    println!(
        "akm restore: {} restored into {} ({} keys verified to unwrap; backup sha256 {})",
        file.display(),
        restored.database,
        restored.keys,
        restored.sha256
    );
    Ok(())
}
