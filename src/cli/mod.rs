//! The `akm` command line: `serve`, `init`, `cert issue`, and the `key` commands, which are
//! KMIP clients over mutual TLS (the scripting interface). `main` maps errors to exit codes.

mod conformance;
mod key;

use crate::config::Config;
use crate::{daemon, pki};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// akm: a KMIP key server.
#[derive(Debug, Parser)]
#[command(name = "akm", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "config/akm.toml")]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the KMIP server (initializing first if the config allows and nothing exists yet).
    Serve {
        /// Listen on this address instead of the configured one.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Create the data directory, the KEK and a development PKI.
    Init,
    /// Client certificates from the development CA.
    Cert {
        /// The certificate command.
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Manage keys on a running server (a KMIP client over mutual TLS).
    Key(key::KeyArgs),
    /// Replay OASIS KMIP XML test cases against a running server (a KMIP client over mTLS).
    Conformance(conformance::ConformanceArgs),
}

/// `akm cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a client certificate: CN is the user, each OU a group.
    Issue {
        /// The user name (certificate CN).
        #[arg(long)]
        cn: String,
        /// A group (certificate OU); repeat for several.
        #[arg(long)]
        ou: Vec<String>,
        /// Directory to write `<cn>.crt` and `<cn>.key` into.
        #[arg(long)]
        out: PathBuf,
    },
}

/// A failure of a command, with the exit code `main` uses.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration is unusable (exit 78, EX_CONFIG).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The server could not start or initialize (exit 1).
    #[error(transparent)]
    Start(#[from] daemon::StartError),
    /// Certificate issuance failed (exit 1).
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// A client command failed (exit 1; 2 when the server refused the operation).
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// Conformance test-case files failed (exit 1); the count.
    #[error("{0} conformance test case(s) failed")]
    Conformance(usize),
    /// Bad command-line input (exit 64, EX_USAGE).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Config(_) => 78,
            CliError::Usage(_) => 64,
            CliError::Client(crate::client::ClientError::Failed { .. }) => 2,
            _ => 1,
        }
    }
}

/// Sets up logging to stderr at the configured level (RUST_LOG wins).
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve { listen } => {
            init_logging(&config.log.level);
            daemon::serve(&config, listen)?;
        }
        Command::Init => {
            init_logging(&config.log.level);
            daemon::init(&config)?;
        }
        Command::Cert {
            command: CertCommand::Issue { cn, ou, out },
        } => {
            let (crt, key) = pki::issue_client_files(&config.tls.certs_dir, &cn, &ou, &out)?;
            println!("wrote {} and {}", crt.display(), key.display());
        }
        Command::Key(args) => {
            init_logging("warn");
            key::run(&config, args)?;
        }
        Command::Conformance(args) => {
            init_logging("warn");
            conformance::run(&config, args)?;
        }
    }
    Ok(())
}
