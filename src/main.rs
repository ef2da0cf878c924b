//! The `akm` binary: parses the command line and maps failures to exit codes.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = akm::cli::Cli::parse();
    if let Err(e) = akm::cli::run(cli) {
        eprintln!("akm: {e}");
        std::process::exit(e.exit_code());
    }
}
