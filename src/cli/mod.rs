//! The `akm` command line: `serve`, `init`, `cert issue`/`cert revoke`, and the `key`,
//! `user`, `group`, `tls`, `reload` and `conformance` commands, which are KMIP clients over mutual TLS
//! (the scripting interface). `main` maps errors to exit codes.

mod admin;
mod audit;
mod backup;
mod bench;
mod certs;
mod conformance;
pub mod custody;
mod discover;
pub mod docs;
pub mod errors;
pub(crate) mod key;
mod mirror;
mod report;
mod store;
mod transfer;
mod when;

use crate::config::Config;
use crate::{daemon, pki};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// akm: a KMIP key server.
#[derive(Debug, Parser)]
#[command(name = "akm", version, about)]
pub struct Cli {
    /// The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else
    /// /etc/akm/akm.toml: the first that exists).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text: results, and errors as {"error": {"message", "reason",
    /// "exit_code"}} on stdout (the plain message still goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,
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
    /// Verify and export audit records; print the audit public key.
    Audit(audit::AuditArgs),
    /// Manage user records on a running server (administrators only).
    User(admin::AccountArgs),
    /// Manage group records on a running server (administrators only).
    Group(admin::AccountArgs),
    /// The running server's TLS configuration (administrators only).
    Tls(admin::TlsArgs),
    /// Make the running server re-read its configuration file, as SIGHUP does: TLS files,
    /// the access section, log level (administrators only). A refused file is printed; exit 2.
    Reload(admin::ReloadArgs),
    /// KEK custody: seal a stopped node's KEK (`akm kek seal`), or show the running
    /// server's seal status (`akm kek status`, administrators only).
    Kek(custody::KekArgs),
    /// Offer a custodian share or the passphrase to a sealed server (administrators only).
    Unseal(custody::UnsealArgs),
    /// Dual control: as a second administrator, let another user perform a guarded
    /// operation for a few minutes (administrators only).
    Authorize(custody::AuthorizeArgs),
    /// Dual control: as a second administrator, approve a refused request by its id.
    Approve(custody::ApproveArgs),
    /// Take an online backup of the running server's key database into its backup directory
    /// (administrators only).
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty, stopped node (verifies the whole file first).
    Restore(backup::RestoreArgs),
    /// Replay OASIS KMIP XML test cases against a running server (a KMIP client over mTLS).
    Conformance(conformance::ConformanceArgs),
    /// A KMIP load tool for any KMIP server: ops/s, latency percentiles, server CPU and memory.
    Bench(bench::BenchArgs),
    /// Reports for auditors: `akm report keys [--csv]`, the key inventory (administrators
    /// only).
    Report(report::ReportArgs),
    /// The key store's schema: `akm store migrate [--check]` (no KEK, no server needed).
    Store {
        /// The store command.
        #[command(subcommand)]
        command: store::StoreCommand,
    },
    /// Mirroring to failover peers.
    Mirror {
        /// The mirror command.
        #[command(subcommand)]
        command: mirror::MirrorCommand,
    },
    /// Write the man pages and shell completions generated from this command line into DIR
    /// (for packagers; hidden from help).
    #[command(hide = true)]
    GenerateDocs {
        /// The directory to write `man/` and `completions/` into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
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
    /// Issue a mirror peer certificate (`mirror.crt`, `mirror.key`) and print its fingerprint.
    Peer {
        /// A host name or IP address of this node (SAN; the first is the CN); repeat for more.
        #[arg(long, required = true)]
        name: Vec<String>,
        /// Directory to write `mirror.crt` and `mirror.key` into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a certificate signing request (PEM) with the akm CA as a client certificate: its
    /// CN is the user, each OU a group; recorded for `akm cert list` and expiry warnings.
    Sign {
        /// The CSR file (PEM "CERTIFICATE REQUEST"); its signature must verify.
        #[arg(long)]
        csr: PathBuf,
        /// Days the certificate is valid (1 to 3650).
        #[arg(long, default_value_t = pki::CLIENT_DAYS)]
        days: u32,
        /// Write the certificate here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Allow the administrators group (access.admin_group) among the OUs.
        #[arg(long)]
        admin: bool,
    },
    /// List the client certificates the akm CA issued: serial, subject, expiry, revoked.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke client certificates: add them to the CRL file, re-signed with a fresh validity
    /// (with nothing to add, just re-sign it); then `akm tls reload` or SIGHUP.
    Revoke {
        /// A certificate file (PEM) to revoke; repeat for several.
        #[arg(long)]
        cert: Vec<PathBuf>,
        /// A serial number (hex) to revoke; repeat for several.
        #[arg(long)]
        serial: Vec<String>,
        /// The CRL file to update (default: the first of tls.crls).
        #[arg(long)]
        crl: Option<PathBuf>,
    },
}

/// A failure of a command; [`errors::Exit`] says which exit code each gets.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No configuration file was found in any of the places akm looks (exit 78).
    #[error("{0}")]
    NoConfig(String),
    /// A local file or directory is not accessible to this user (exit 77).
    #[error("{0}")]
    NoPermission(String),
    /// A local step failed; the message says what and how to fix it (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The server refused an operation; the message says why in plain words (exit 2).
    #[error("{0}")]
    Refused(Box<errors::Refusal>),
    /// The configuration is unusable (exit 78, EX_CONFIG).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The server could not start or initialize (exit 1).
    #[error(transparent)]
    Start(#[from] crate::app::StartError),
    /// Certificate issuance failed (exit 1).
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// A client command failed (exit 69 when no server was reached, 2 when the server refused
    /// the operation, else 1).
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// Conformance test-case files failed (exit 1); the count.
    #[error("{0} conformance test case(s) failed")]
    Conformance(usize),
    /// Bad command-line input (exit 64, EX_USAGE).
    #[error("{0}")]
    Usage(String),
    /// A KEK could not be sealed (exit 1).
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// A restore was refused or failed (exit 1); nothing was written.
    #[error("akm restore: {0}")]
    Restore(String),
    /// The audit signing key is unusable (exit 1).
    #[error("{0}")]
    Audit(String),
    /// `akm audit verify` found a fault (exit 3).
    #[error("audit verify: FAILED: {0}")]
    Tampered(String),
}

impl CliError {
    /// The process exit code (the table is [`errors::Exit`]).
    pub fn exit_code(&self) -> i32 {
        self.exit().code()
    }
}

/// Sets up logging to stderr at the configured level (RUST_LOG wins).
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// `akm cert revoke`: adds serials to the CRL file the server reads.
fn revoke(
    config: &Config,
    certs: &[PathBuf],
    mut serials: Vec<String>,
    crl: Option<PathBuf>,
    json: bool,
) -> Result<(), CliError> {
    let crl = crl
        .or_else(|| config.tls.crls.first().cloned())
        .ok_or_else(|| {
            CliError::Usage(
                "no CRL file: set tls.crls = [\"certs/ca.crl\"] in the config (so the server \
             reads it) or pass --crl"
                    .into(),
            )
        })?;
    for path in certs {
        serials.push(pki::serial_of_cert_file(path)?);
    }
    let all = pki::revoke(&config.tls.certs_dir, &crl, &serials)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "crl": crl, "revoked": all.len() })
        );
        return Ok(());
    }
    println!(
        "{} now revokes {} certificate(s); run `akm tls reload` or send SIGHUP to the server \
         (with mirroring, it then records them and every peer refuses them too, for good)",
        crl.display(),
        all.len()
    );
    Ok(())
}

/// `akm generate-docs --out DIR`: the man pages and completions, one line per file written.
fn generate_docs(out: &std::path::Path) -> Result<(), CliError> {
    let written = docs::generate(out).map_err(|e| {
        CliError::Failed(format!("cannot write the docs into {}: {e}", out.display()))
    })?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let json = cli.json;
    let command = match cli.command {
        // Verifying and exporting files must work on a machine without the server's config,
        // so the audit commands read it only when they need the signing key.
        Command::Audit(args) => {
            init_logging("warn");
            return audit::run(
                &discover::config_path_or_local(cli.config.as_deref()),
                args,
                json,
            );
        }
        // The replayer is a client for any KMIP server: with --server, --cert, --key and --ca
        // it needs no akm config file.
        Command::Conformance(args) => {
            init_logging("warn");
            return conformance::run(
                &discover::config_path_or_local(cli.config.as_deref()),
                args,
                json,
            );
        }
        // A KEK-and-configuration archive brings the configuration: none is read first.
        Command::Restore(args) if args.kek_and_config.is_some() => {
            init_logging("warn");
            return backup::run_restore_kit(
                &discover::config_path_or_local(cli.config.as_deref()),
                args,
                json,
            );
        }
        // Generated from the command-line definition alone: no config, no server.
        Command::GenerateDocs { out } => return generate_docs(&out),
        other => other,
    };
    let config = Config::load(&discover::config_path(cli.config.as_deref())?)?;
    match command {
        Command::Serve { listen } => {
            let hostname = config
                .audit
                .server_name
                .clone()
                .unwrap_or_else(crate::app::hostname);
            let remote = config.log.remote_settings(&hostname);
            let outputs = crate::logfile::Outputs {
                file: config.log.file.as_deref(),
                error_file: config.log.error_file.as_deref(),
                syslog: config
                    .log
                    .syslog
                    .as_deref()
                    .map(|p| (p, config.log.syslog_facility.code())),
                remote: &remote,
            };
            crate::logfile::init(&config.log.level, outputs).map_err(CliError::Usage)?;
            daemon::serve(&config, listen)?;
        }
        Command::Init => {
            init_logging(&config.log.level);
            let done = daemon::init_all_or_nothing(&config)?;
            if json {
                println!("{}", serde_json::json!(done));
            } else {
                println!("{done}");
            }
        }
        Command::Cert {
            command: CertCommand::Issue { cn, ou, out },
        } => {
            let (crt, key) = pki::issue_client_files(&config.tls.certs_dir, &cn, &ou, &out)?;
            if json {
                println!("{}", serde_json::json!({ "cert": crt, "key": key }));
            } else {
                println!("wrote {} and {}", crt.display(), key.display());
            }
        }
        Command::Cert {
            command: CertCommand::Peer { name, out },
        } => {
            let (crt, key, fp) = pki::issue_peer_files(&config.tls.certs_dir, &name, &out)?;
            if json {
                let out = serde_json::json!({ "cert": crt, "key": key, "fingerprint": fp });
                println!("{out}");
            } else {
                println!("wrote {} and {}", crt.display(), key.display());
                println!("fingerprint = \"{fp}\"");
            }
        }
        Command::Cert {
            command: CertCommand::Revoke { cert, serial, crl },
        } => revoke(&config, &cert, serial, crl, json)?,
        Command::Cert {
            command:
                CertCommand::Sign {
                    csr,
                    days,
                    out,
                    admin,
                },
        } => certs::sign(&config, &csr, days, out.as_deref(), admin)?,
        Command::Cert {
            command: CertCommand::List { json },
        } => certs::list(&config, json)?,
        Command::Tls(args) => {
            init_logging("warn");
            admin::run_tls(&config, args)?;
        }
        Command::Reload(args) => {
            init_logging("warn");
            admin::run_reload(&config, args)?;
        }
        Command::Key(args) => {
            init_logging("warn");
            key::run(&config, args)?;
        }
        Command::Audit(args) => audit::run(
            &discover::config_path_or_local(cli.config.as_deref()),
            args,
            json,
        )?,
        Command::User(args) => {
            init_logging("warn");
            admin::run_accounts(&config, true, args)?;
        }
        Command::Group(args) => {
            init_logging("warn");
            admin::run_accounts(&config, false, args)?;
        }
        Command::Kek(args) => {
            init_logging("warn");
            custody::run_kek(&config, args)?;
        }
        Command::Unseal(args) => {
            init_logging("warn");
            custody::run_unseal(&config, args)?;
        }
        Command::Authorize(args) => {
            init_logging("warn");
            custody::run_authorize(&config, args)?;
        }
        Command::Approve(args) => {
            init_logging("warn");
            custody::run_approve(&config, args)?;
        }
        Command::Backup(args) => {
            init_logging("warn");
            backup::run_backup(&config, args)?;
        }
        Command::Restore(args) => {
            init_logging("warn");
            backup::run_restore(&config, args, json)?;
        }
        Command::Conformance(args) => conformance::run(
            &discover::config_path_or_local(cli.config.as_deref()),
            args,
            json,
        )?,
        Command::Mirror { command } => mirror::run(&config, command, json)?,
        Command::Store { command } => {
            init_logging("warn");
            store::run(&config, command, json)?;
        }
        Command::GenerateDocs { out } => generate_docs(&out)?,
        Command::Report(args) => {
            init_logging("warn");
            report::run(&config, args)?;
        }
        Command::Bench(args) => {
            init_logging("warn");
            bench::run(&config, args)?;
        }
    }
    Ok(())
}
