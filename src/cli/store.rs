//! `akm store migrate`: applies the configured store's pending schema migrations (SQLite file
//! or PostgreSQL database) and prints the schema version before and after; `--check` only
//! reports it. Needs neither the KEK nor a running server.

use super::CliError;
use crate::config::Config;
use crate::store::{self, SchemaStatus};
use clap::Subcommand;

/// `akm store ...`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Apply the store's pending schema migrations (before starting upgraded nodes on a shared
    /// PostgreSQL database) and print the schema version before and after.
    Migrate {
        /// Only report the schema version and whether migrations are pending (exit 1 if they
        /// are); change nothing.
        #[arg(long)]
        check: bool,
    },
}

/// Runs a store command.
pub fn run(config: &Config, command: StoreCommand, json: bool) -> Result<(), CliError> {
    let StoreCommand::Migrate { check } = command;
    let failed = |e: store::StoreError| CliError::Failed(format!("akm store migrate: {e}"));
    if check {
        let status = store::schema_status(&config.store).map_err(failed)?;
        if status.pending() {
            return Err(CliError::Failed(format!(
                "akm store migrate: the {} is at schema version {}, this akm writes {}: \
                 migrations are pending (run `akm store migrate`)",
                status.database, status.version, status.supported
            )));
        }
        print_status(&status, status.version, json);
        return Ok(());
    }
    let (before, after) = store::migrate_schema(&config.store).map_err(failed)?;
    print_status(&before, after, json);
    Ok(())
}

/// One line (or one JSON object): the database, its version before and after.
fn print_status(before: &SchemaStatus, after: i64, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "database": before.database,
                "version_before": before.version,
                "version_after": after,
                "supported": before.supported,
                "pending": after < before.supported,
            })
        );
    } else if before.version == after {
        println!(
            "akm store migrate: the {} is at schema version {after}, up to date",
            before.database
        );
    } else {
        println!(
            "akm store migrate: the {} migrated from schema version {} to {after}",
            before.database, before.version
        );
    }
}
