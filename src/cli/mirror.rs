//! `akm mirror status`: prints the mirror status the running server writes to its data
//! directory (peers, connected or not, lag in entries and seconds, last error). Reads only
//! that file, never the database.

use super::CliError;
use crate::config::Config;
use crate::mirror::{status, STATUS_FILE};
use clap::Subcommand;

/// `akm mirror ...`
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Peers, connected or not, lag in entries and seconds, last error.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a mirror command (`global_json`: the top-level `--json`).
pub fn run(config: &Config, command: MirrorCommand, global_json: bool) -> Result<(), CliError> {
    let MirrorCommand::Status { json } = command;
    let json = json || global_json;
    // Not mirroring is a normal way to run akm, not an error.
    if config.mirror.is_none() {
        if json {
            println!("{}", serde_json::json!({ "configured": false }));
        } else {
            println!(
                "mirroring is not configured ({} has no [mirror] section)",
                config.path.display()
            );
        }
        return Ok(());
    }
    let path = config.store.data_dir.join(STATUS_FILE);
    let st = status::read_file(&path).map_err(|e| {
        CliError::Failed(format!(
            "cannot read {} ({e}); is `akm serve` running with this config?",
            path.display()
        ))
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
    } else {
        print!("{}", status::render(&st, crate::clock::now_secs()));
    }
    Ok(())
}
