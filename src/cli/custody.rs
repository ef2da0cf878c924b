//! `akm kek seal` (offline: turns a node's plain development KEK file into a sealed one with
//! custodian shares or a passphrase), `akm kek status` and `akm unseal` (KMIP clients over
//! mutual TLS, administrators only: the Seal Status and Unseal extension operations), and the
//! readers that turn the custody extension responses into the JSON the CLI prints.

use super::admin::{connect_and_run, print, ConnArgs};
use super::CliError;
use crate::config::Config;
use crate::crypto::seal::{Argon2Params, SealedKek};
use crate::crypto::{Kek, KEK_LEN};
use crate::kmip::custody as ext;
use crate::secret_file;
use crate::ttlv::Ttlv;
use clap::{Args, Subcommand};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// `akm kek ...`
#[derive(Debug, Args)]
pub struct KekArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: KekCommand,
}

#[derive(Debug, Subcommand)]
enum KekCommand {
    /// Seal the KEK of a stopped node: encrypt it under a master key split into custodian
    /// shares (--shares N --threshold M --out DIR) or derived from a passphrase read from
    /// stdin (--passphrase-stdin), then delete the plain KEK file.
    Seal {
        /// Number of custodian shares (N).
        #[arg(long, requires_all = ["threshold", "out"], conflicts_with = "passphrase_stdin")]
        shares: Option<usize>,
        /// Shares needed to unseal (M).
        #[arg(long)]
        threshold: Option<usize>,
        /// Directory for the share files (share-1.txt ... share-N.txt, mode 0600): hand each
        /// to its custodian and delete it here. `-` shows the shares once on stdout instead.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Derive the master key from a passphrase (first line of stdin) with Argon2id.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Show whether the running server is sealed and the unseal progress.
    Status,
    /// Rotate the running server's KEK online: a new KEK wraps from now on and every stored
    /// key is rewrapped in batches, with progress; the old KEK is retired when nothing
    /// references it. Run it again to resume an interrupted rotation.
    Rotate {
        /// Keys rewrapped per request.
        #[arg(long, default_value_t = 500)]
        batch: i32,
    },
}

/// `akm authorize`
#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The user (certificate CN) who may then act.
    #[arg(long)]
    user: String,
    /// The guarded operation: destroy, kek-rotate, backup or policy.
    #[arg(long)]
    op: String,
    /// Window length in minutes (default and most: dual_control.window_minutes).
    #[arg(long)]
    minutes: Option<i32>,
}

/// Runs `akm authorize`: as a second administrator, opens a dual-control window.
pub fn run_authorize(config: &Config, args: AuthorizeArgs) -> Result<(), CliError> {
    let mut payload = vec![
        Ttlv::text(ext::TAG_AUTHORIZED_USER, args.user.clone()),
        Ttlv::text(ext::TAG_GUARDED_OPERATION, args.op.clone()),
    ];
    if let Some(m) = args.minutes {
        payload.push(Ttlv::integer(ext::TAG_WINDOW_MINUTES, m));
    }
    let out = connect_and_run(config, &args.conn, move |client| {
        Box::pin(async move {
            let got = client.call(ext::OP_AUTHORIZE, payload).await?;
            authorize_from(&got).ok_or_else(malformed)
        })
    })?;
    print(&out, args.conn.json);
    Ok(())
}

/// `akm approve`
#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The request id a dual-control refusal named.
    id: String,
}

/// Runs `akm approve`: as a second administrator, approves a refused request.
pub fn run_approve(config: &Config, args: ApproveArgs) -> Result<(), CliError> {
    let payload = vec![Ttlv::text(ext::TAG_REQUEST_ID, args.id.clone())];
    let out = connect_and_run(config, &args.conn, move |client| {
        Box::pin(async move {
            let got = client.call(ext::OP_AUTHORIZE, payload).await?;
            authorize_from(&got).ok_or_else(malformed)
        })
    })?;
    print(&out, args.conn.json);
    Ok(())
}

/// `akm unseal`
#[derive(Debug, Args)]
pub struct UnsealArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// A custodian share file (as `akm kek seal` wrote it).
    #[arg(long, conflicts_with = "passphrase_stdin")]
    share_file: Option<PathBuf>,
    /// Read the passphrase from the first line of stdin.
    #[arg(long)]
    passphrase_stdin: bool,
}

fn usage(m: impl Into<String>) -> CliError {
    CliError::Usage(m.into())
}

pub(super) fn read_passphrase() -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| usage(format!("cannot read the passphrase from stdin: {e}")))?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
    ))
}

/// Runs `akm kek ...`.
pub fn run_kek(config: &Config, args: KekArgs) -> Result<(), CliError> {
    match args.command {
        KekCommand::Seal {
            shares,
            threshold,
            out,
            passphrase_stdin,
        } => seal(config, shares, threshold, out, passphrase_stdin),
        KekCommand::Rotate { batch } => rotate(config, &args.conn, batch),
        KekCommand::Status => {
            let out = connect_and_run(config, &args.conn, |client| {
                Box::pin(async move {
                    let got = client.call(ext::OP_SEAL_STATUS, Vec::new()).await?;
                    status_from(&got).ok_or_else(malformed)
                })
            })?;
            print(&out, args.conn.json);
            Ok(())
        }
    }
}

/// Calls Rotate KEK until nothing is left under a retired KEK, printing progress.
fn rotate(config: &Config, conn: &ConnArgs, batch: i32) -> Result<(), CliError> {
    let out = connect_and_run(config, conn, move |client| {
        Box::pin(async move {
            let mut total = 0i64;
            loop {
                let got = client
                    .call(
                        ext::OP_ROTATE_KEK,
                        vec![Ttlv::integer(ext::TAG_BATCH_LIMIT, batch)],
                    )
                    .await?;
                let step = rotate_from(&got).ok_or_else(malformed)?;
                total += step["rewrapped"].as_i64().unwrap_or(0);
                let remaining = step["remaining"].as_i64().unwrap_or(0);
                eprintln!(
                    "akm kek rotate: KEK {}: {total} rewrapped, {remaining} remaining",
                    step["kek_id"].as_str().unwrap_or("?")
                );
                if remaining == 0 {
                    let mut done = step;
                    done["rewrapped"] = total.into();
                    return Ok(done);
                }
            }
        })
    })?;
    let mut out = out;
    if out["retired"].as_array().is_some_and(|r| !r.is_empty()) {
        let archive = crate::crypto::rotate::KekFiles::of(&config.store).archive();
        eprintln!(
            "akm kek rotate: the retired KEK is kept in {}, wrapped under the new KEK, so \
             backups taken before this rotation stay restorable with `akm restore`",
            archive.display()
        );
        out["kept_in"] = archive.display().to_string().into();
    }
    print(&out, conn.json);
    Ok(())
}

fn malformed() -> CliError {
    CliError::Client(crate::client::ClientError::Protocol(
        "malformed custody response".into(),
    ))
}

fn seal(
    config: &Config,
    shares: Option<usize>,
    threshold: Option<usize>,
    out: Option<PathBuf>,
    passphrase_stdin: bool,
) -> Result<(), CliError> {
    let plain = config.store.kek();
    let sealed_path = config.store.sealed_kek();
    if sealed_path.exists() {
        return Err(usage(format!("{} already exists", sealed_path.display())));
    }
    let bytes = secret_file::read(&plain).map_err(|e| usage(e.to_string()))?;
    if bytes.len() != KEK_LEN {
        return Err(usage(format!("{} is not a KEK file", plain.display())));
    }
    let kek_id = Kek::from_bytes(&bytes)?.id().to_owned();
    let sealed = match (shares, passphrase_stdin) {
        (Some(n), false) => {
            let m = threshold.ok_or_else(|| usage("--shares needs --threshold"))?;
            let dir = out.ok_or_else(|| usage("--shares needs --out"))?;
            let (sealed, texts) = SealedKek::seal_with_shares(&bytes, m, n)?;
            if dir.as_os_str() == "-" {
                // Shown once: each custodian copies their line; nothing is written to disk.
                for t in &texts {
                    print!("{}", t.0.as_str());
                }
                eprintln!(
                    "akm kek seal: {n} shares shown above, once (one line each); any {m} unseal"
                );
            } else {
                write_shares(&dir, &texts)?;
                println!(
                    "akm kek seal: {n} shares written to {} (share-1.txt ... share-{n}.txt); any {m} unseal",
                    dir.display()
                );
            }
            sealed
        }
        (None, true) => {
            let pass = read_passphrase()?;
            SealedKek::seal_with_passphrase(&bytes, &pass, Argon2Params::STRONG)?
        }
        _ => {
            return Err(usage(
                "give --shares N --threshold M --out DIR, or --passphrase-stdin",
            ))
        }
    };
    sealed.write_new(&sealed_path)?;
    // Only once the sealed file is durably written does the plain KEK go.
    std::fs::remove_file(&plain)
        .map_err(|e| usage(format!("cannot remove {}: {e}", plain.display())))?;
    eprintln!(
        "akm kek seal: KEK {kek_id} sealed in {}; {} removed. The server now starts sealed: run `akm unseal`.",
        sealed_path.display(),
        plain.display()
    );
    Ok(())
}

fn write_shares(dir: &Path, texts: &[crate::crypto::seal::ShareText]) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    for (i, t) in texts.iter().enumerate() {
        let path = dir.join(format!("share-{}.txt", i + 1));
        secret_file::write_new(&path, t.0.as_bytes()).map_err(|e| usage(e.to_string()))?;
    }
    Ok(())
}

/// Runs `akm unseal`: offers one share or the passphrase and prints the progress.
pub fn run_unseal(config: &Config, args: UnsealArgs) -> Result<(), CliError> {
    let item = match (&args.share_file, args.passphrase_stdin) {
        (Some(path), false) => {
            let bytes = secret_file::read(path).map_err(|e| usage(e.to_string()))?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| usage(format!("{} is not a share file", path.display())))?;
            Ttlv::text(ext::TAG_UNSEAL_SHARE, text.trim().to_owned())
        }
        (None, true) => Ttlv::bytes(ext::TAG_UNSEAL_PASSPHRASE, read_passphrase()?.to_vec()),
        _ => return Err(usage("give --share-file FILE or --passphrase-stdin")),
    };
    let out = connect_and_run(config, &args.conn, move |client| {
        Box::pin(async move {
            let got = client.call(ext::OP_UNSEAL, vec![item]).await?;
            status_from(&got).ok_or_else(malformed)
        })
    })?;
    print(&out, args.conn.json);
    Ok(())
}

/// Reads a status back from a response payload (the client side).
pub fn status_from(payload: &Ttlv) -> Option<serde_json::Value> {
    Some(serde_json::json!({
        "sealed": payload.child(ext::TAG_SEALED)?.as_bool()?,
        "scheme": payload.child(ext::TAG_SEAL_SCHEME)?.as_text()?,
        "threshold": payload.child(ext::TAG_UNSEAL_THRESHOLD)?.as_int()?,
        "progress": payload.child(ext::TAG_UNSEAL_PROGRESS)?.as_int()?,
        "kek_id": payload.child(ext::TAG_KEK_ID)?.as_text()?,
    }))
}

/// Reads a backup response (the client side).
pub fn backup_from(payload: &Ttlv) -> Option<serde_json::Value> {
    let mut out = serde_json::json!({
        "file": payload.child(ext::TAG_BACKUP_FILE)?.as_text()?,
        "bytes": payload.child(ext::TAG_BACKUP_BYTES)?.as_long()?,
        "sha256": payload.child(ext::TAG_BACKUP_SHA256)?.as_text()?,
        "kek_id": payload.child(ext::TAG_KEK_ID)?.as_text()?,
    });
    for (key, tag) in [
        ("uploaded", ext::TAG_BACKUP_UPLOADED),
        ("upload_error", ext::TAG_BACKUP_UPLOAD_ERROR),
    ] {
        if let Some(t) = payload.child(tag).and_then(Ttlv::as_text) {
            out[key] = t.into();
        }
    }
    Some(out)
}

/// Reads a Rotate KEK response (the client side).
pub fn rotate_from(payload: &Ttlv) -> Option<serde_json::Value> {
    let destroyed: Vec<&str> = payload
        .children()
        .iter()
        .filter(|c| c.tag == ext::TAG_DESTROYED_KEK_ID)
        .filter_map(Ttlv::as_text)
        .collect();
    Some(serde_json::json!({
        "kek_id": payload.child(ext::TAG_KEK_ID)?.as_text()?,
        "rewrapped": payload.child(ext::TAG_REWRAPPED)?.as_int()?,
        "remaining": payload.child(ext::TAG_REMAINING)?.as_int()?,
        // Retired from use; kept in the KEK archive for restoring older backups.
        "retired": destroyed,
    }))
}

/// Reads an Authorize response (the client side).
pub fn authorize_from(payload: &Ttlv) -> Option<serde_json::Value> {
    Some(serde_json::json!({
        "user": payload.child(ext::TAG_AUTHORIZED_USER)?.as_text()?,
        "operation": payload.child(ext::TAG_GUARDED_OPERATION)?.as_text()?,
        "until": crate::audit::format_time_ms(payload.child(ext::TAG_WINDOW_UNTIL)?.as_datetime()? * 1000),
    }))
}
