//! The `akm` binary: parses the command line and maps failures to exit codes
//! (`akm::cli::errors::Exit` is the table).
#![forbid(unsafe_code)]

use akm::cli::errors::{self, Exit};
use clap::Parser;

fn main() {
    // `--json` anywhere before `--` asks for a JSON error too, even when parsing fails.
    let wants_json = std::env::args()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let cli = match akm::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(usage_error(e, wants_json)),
    };
    if let Err(e) = akm::cli::run(cli) {
        errors::report(&e, wants_json);
        std::process::exit(e.exit_code());
    }
}

/// Prints a command-line error (or the help or version asked for) and returns the exit code:
/// usage errors exit 64, never clap's 2, which means "the server refused".
fn usage_error(e: clap::Error, json: bool) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return Exit::Ok.code();
    }
    if json {
        let rendered = e.render().to_string();
        let out = serde_json::json!({ "error": {
            "message": rendered.trim(),
            "reason": null,
            "exit_code": Exit::Usage.code(),
        }});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    let _ = e.print();
    Exit::Usage.code()
}
