//! `[log] level` values: the names akm accepts (`none`, `basic`, `verbose`, `debug`, or a
//! tracing filter), the filter each stands for, and the check validation runs. The log
//! streams (`logfile`, `logremote`) apply them.

use tracing_subscriber::EnvFilter;

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Whether `level` (a `[log] level` value) is a usable filter; the error says why not. Each
/// comma-separated directive must be a level or `target=level`: tracing would take a bare
/// word such as `inof` as a target name and silently log nothing.
pub fn check_level(level: &str) -> Result<(), String> {
    let filter = filter_for(level);
    for directive in filter.split(',').map(str::trim) {
        let named = match directive.rsplit_once('=') {
            Some((target, lvl)) => {
                !target.is_empty() && LEVELS.contains(&lvl.to_ascii_lowercase().as_str())
            }
            None => LEVELS.contains(&directive.to_ascii_lowercase().as_str()),
        };
        if !named {
            return Err(format!(
                "is {level:?}: {directive:?} is not a level (valid: none, basic, verbose, \
                 debug, or a filter of {} such as akm=debug)",
                LEVELS.join(", ")
            ));
        }
    }
    EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| format!("is {level:?}, not a level: {e}"))
}

/// The tracing filter for a `[log] level`: `none`, `basic`, `verbose`, `debug`, or a tracing
/// filter such as `akm=debug`.
pub fn filter_for(level: &str) -> String {
    match level {
        "none" => "off".into(),
        "basic" => "info".into(),
        "verbose" => "info,akm=debug".into(),
        "debug" => "debug".into(),
        other => other.into(),
    }
}
