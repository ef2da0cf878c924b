//! Reloading a running server's configuration: the one path SIGHUP (`systemctl reload`) and
//! the Reload Configuration administration operation (`akm reload`, `akm tls reload`) take.
//! It re-reads `akm.toml` and validates it as a start does, reads every TLS file, and only
//! then applies: the TLS configuration (certificate, key, client CA, pins, CRLs) of the KMIP
//! listener and of the status listener, the
//! `[access]` settings and the user and group records the file declares (and with them the
//! security settings digest mirror peers compare), the revocations of the CRLs (recorded in
//! the store, so every mirror peer enforces them), the `[log] level` and new paths of the log
//! files, and `server.max_locate_items`;
//! it reopens the diagnostic log files and the audit journal (logrotate). The changed keys are
//! found by comparing the two configurations whole ([`crate::config::changed_keys`]); each
//! is applied, or named in a warning as waiting for a restart, or (`[client]`, the `akm
//! init` keys) named as unused by a running server: none is passed over silently. An invalid file
//! is refused with an error naming the key and the file, and nothing changes.

use crate::config::{Config, TlsConfig};
use crate::notify::Notifier;
use crate::ops::Ctx;
use crate::server::tls::{Loaded, TlsHandle};
use crate::tls::TlsError;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The reload state of a running server.
#[derive(Debug)]
pub struct Reload {
    /// The configuration file, as the server was started with it.
    path: PathBuf,
    /// The configuration the server started with: keys that need a restart are compared
    /// with it, so a change stays reported until the restart.
    started: Config,
    /// The configuration in force; holding the lock serializes reloads.
    current: Mutex<Config>,
    /// The TLS configuration new handshakes use.
    tls: Arc<TlsHandle>,
    /// The status listener's TLS configuration, once it has started.
    status_tls: OnceLock<Arc<TlsHandle>>,
    /// The console's TLS configuration, once it has started.
    console_tls: OnceLock<Arc<TlsHandle>>,
    /// Tells systemd a reload is under way and when it is over.
    notifier: Notifier,
}

impl Reload {
    /// The reload state of a server started with `config`.
    pub fn new(config: &Config, tls: Arc<TlsHandle>, notifier: Notifier) -> Reload {
        Reload {
            path: config.path.clone(),
            started: config.clone(),
            current: Mutex::new(config.clone()),
            tls,
            status_tls: OnceLock::new(),
            console_tls: OnceLock::new(),
            notifier,
        }
    }

    /// Has reloads also rebuild the status listener's TLS configuration `tls`.
    pub fn attach_status(&self, tls: Arc<TlsHandle>) {
        let _ = self.status_tls.set(tls);
    }

    /// Has reloads also rebuild the console's TLS configuration `tls` (new CRLs refuse
    /// revoked certificates there too).
    pub fn attach_console(&self, tls: Arc<TlsHandle>) {
        let _ = self.console_tls.set(tls);
    }

    /// Reloads the configuration into `ctx` (blocking: it reads files and writes the store).
    /// `cause` (`SIGHUP`, `akm reload`) goes to the log. On error the previous configuration
    /// stays in force and the error names the key and the file. On success, returns the keys
    /// that differ from the configuration the server started with and need a restart.
    pub fn run(&self, ctx: &Ctx, cause: &str) -> Result<Vec<String>, String> {
        let mut current = match self.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.notifier.reloading();
        let result = self.apply(ctx, &current);
        // Whatever the file says, logrotate's SIGHUP must still get its files reopened.
        reopen_files(ctx);
        match result {
            Ok(new) => {
                let applied = changed(&current, &new, Effect::Applied);
                let unused = changed(&current, &new, Effect::Unused);
                tracing::info!(
                    cause,
                    config = %self.path.display(),
                    applied = %applied.join(", "),
                    "configuration reloaded"
                );
                if !unused.is_empty() {
                    tracing::info!(
                        keys = %unused.join(", "),
                        "changed in the configuration file; read by akm init and the client \
                         commands, not by the running server"
                    );
                }
                *current = new;
                let restart = needs_restart(&self.started, &current);
                let applied = match applied.is_empty() {
                    true => String::new(),
                    false => format!("; applied {}", applied.join(", ")),
                };
                if restart.is_empty() {
                    self.notifier
                        .ready(&format!("serving; configuration reloaded{applied}"));
                } else {
                    tracing::warn!(
                        keys = %restart.join(", "),
                        "changed in the configuration file but not applied: restart akm for these"
                    );
                    self.notifier.ready(&format!(
                        "serving; configuration reloaded{applied}; restart needed for {}",
                        restart.join(", ")
                    ));
                }
                Ok(restart)
            }
            Err(e) => {
                tracing::error!(
                    cause,
                    error = %e,
                    "configuration reload refused; the previous configuration stays in force"
                );
                self.notifier
                    .ready(&format!("serving; last reload refused: {e}"));
                Err(e)
            }
        }
    }

    /// Reads and checks everything, then applies it; returns the new configuration.
    fn apply(&self, ctx: &Ctx, old: &Config) -> Result<Config, String> {
        let new = Config::load(&self.path).map_err(|e| e.to_string())?;
        // The start's module check: `crypto.require_fips` switched on in the file must not
        // leave a binary that is not the FIPS build serving under it until a restart.
        crate::app::module_allows(new.crypto.require_fips).map_err(|e| {
            format!(
                "config file {}: `crypto.require_fips`: {e}",
                new.path.display()
            )
        })?;
        let tls = read_tls(&new)?;
        let status_tls = match self.status_tls.get() {
            Some(handle) => Some((handle, read_status_tls(&new)?)),
            None => None,
        };
        let console_tls = match self.console_tls.get() {
            Some(handle) => Some((handle, read_console_tls(&new)?)),
            None => None,
        };
        let moves =
            crate::logfile::prepare_moves(new.log.file.as_deref(), new.log.error_file.as_deref())
                .map_err(|e| format!("config file {}: {e}", new.path.display()))?;
        // The only step that can fail once checking is over comes first, so a failure leaves
        // everything as it was.
        crate::app::apply_declared_accounts(&ctx.store, &new)
            .map_err(|e| format!("cannot write the [access] records to the database: {e}"))?;
        self.tls.put(tls);
        crate::revocations::record_from_crls(ctx, &new.tls);
        ctx.settings
            .replace(crate::settings_digest::SettingsDigest::of(
                &new,
                &self.started,
            ));
        crate::node_settings::publish(ctx);
        for (handle, config) in status_tls.into_iter().chain(console_tls) {
            handle.replace(config);
        }
        moves.apply();
        ctx.access
            .replace(crate::policy::Settings::from_config(&new.access));
        ctx.max_locate_items.replace(new.server.max_locate_items);
        ctx.client_ca_subjects
            .replace(crate::revocations::client_ca_subjects(&new.tls));
        if let Err(e) = crate::logfile::set_level(&new.log.level) {
            tracing::error!(error = %e, "log.level not applied");
        }
        if let Err(e) = ctx.audit.record(vec![crate::app::config_event(&new)]) {
            tracing::error!(error = %e, "cannot record the reloaded configuration in the audit journal");
        }
        warn_about_dropped_records(old, &new);
        Ok(new)
    }
}

/// Reopens the diagnostic log files and the audit journal at their paths (after logrotate
/// renamed them); a failure is logged and the old files stay in use.
fn reopen_files(ctx: &Ctx) {
    crate::logfile::reopen_all();
    match ctx.audit.reopen() {
        Ok(()) => tracing::info!("audit journal reopened"),
        Err(e) => tracing::error!(error = %e, "audit journal reopen failed"),
    }
}

/// Reads the TLS files `[tls]` names; an error names the key, the file and the config file.
fn read_tls(config: &Config) -> Result<Loaded, String> {
    Loaded::read(&config.tls).map_err(|e| {
        format!(
            "config file {}: `{}`: {e}",
            config.path.display(),
            tls_key(&config.tls, &e)
        )
    })
}

/// The status listener's TLS configuration (`status.cert`/`status.key` or the `[tls]` files).
fn read_status_tls(config: &Config) -> Result<Arc<rustls::ServerConfig>, String> {
    crate::status::server_config(config).map_err(|e| {
        format!(
            "config file {}: status listener (`status.cert`, `status.key` or `[tls]`): {e}",
            config.path.display()
        )
    })
}

/// The console's TLS configuration (`console.cert`/`console.key` or the `[tls]` files).
fn read_console_tls(config: &Config) -> Result<Arc<rustls::ServerConfig>, String> {
    crate::console::server_config(config).map_err(|e| {
        format!(
            "config file {}: console (`console.cert`, `console.key` or `[tls]`): {e}",
            config.path.display()
        )
    })
}

/// The `[tls]` key whose file a TLS error is about.
fn tls_key(tls: &TlsConfig, e: &TlsError) -> &'static str {
    let path = match e {
        TlsError::Read { path, .. } | TlsError::Pem { path, .. } => path,
        TlsError::Secret(_) => return "tls.key",
        TlsError::NoPinnedCa { .. } => return "tls.client_ca_fingerprints",
        TlsError::Verifier(_) => return "tls.client_ca / tls.crls",
        TlsError::Rustls(_) => return "tls.cert / tls.key",
    };
    let is = |p: &std::path::Path| p.display().to_string() == *path;
    if is(&tls.cert) {
        "tls.cert"
    } else if is(&tls.key) {
        "tls.key"
    } else if is(&tls.client_ca) {
        "tls.client_ca"
    } else {
        "tls.crls"
    }
}

/// Logs the records the file no longer declares, which stay in the database.
fn warn_about_dropped_records(old: &Config, new: &Config) {
    let dropped = |key: &str,
                   o: &std::collections::BTreeMap<_, _>,
                   n: &std::collections::BTreeMap<String, _>| {
        for name in o.keys().filter(|k| !n.contains_key(*k)) {
            tracing::warn!(
                record = %name,
                "{key}.{name} is no longer in the configuration file; its record stays in the \
                 database (disable it with enabled = false, or delete it with akm user/group delete)"
            );
        }
    };
    dropped("access.users", &old.access.users, &new.access.users);
    dropped("access.groups", &old.access.groups, &new.access.groups);
}

/// What a reload does with a key whose value changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Put in force by the reload.
    Applied,
    /// Read only at start: named as waiting for a restart until the server restarts.
    Restart,
    /// Read only by `akm init` and the client commands, not by a running server.
    Unused,
}

/// The keys a reload puts in force (a name covers every key under it): the TLS files of
/// the KMIP listener and of the status listener, `[access]` and its records, the log level
/// and the Locate result cap. (`log.file` and `log.error_file` may move: see [`effect`].)
const LIVE: &[&str] = &[
    "tls.cert",
    "tls.key",
    "tls.client_ca",
    "tls.crls",
    "tls.client_ca_fingerprints",
    "access",
    "log.level",
    "status.cert",
    "status.key",
    "console.cert",
    "console.key",
    "server.max_locate_items",
];

/// The keys a running server never reads: `[client]` and what `akm init` uses.
const UNUSED: &[&str] = &[
    "client",
    "tls.certs_dir",
    "tls.server_names",
    "server.auto_init",
];

/// Whether dotted `key` is `name` or under it.
fn is_under(key: &str, name: &str) -> bool {
    key.strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// What a reload from `old` to `new` does with the changed `key`. Every key a reload does
/// not apply and the server reads needs a restart, so a key added to the config is never
/// silently ignored.
pub fn effect(key: &str, old: &Config, new: &Config) -> Effect {
    // A log file may move; a stream that starts or stops going to a file may not.
    use crate::logfile::needs_restart as stream_restart;
    let stream = match key {
        "log.file" => Some((old.log.file.as_deref(), new.log.file.as_deref())),
        "log.error_file" => Some((old.log.error_file.as_deref(), new.log.error_file.as_deref())),
        _ => None,
    };
    if let Some((from, to)) = stream {
        return if stream_restart(from, to) {
            Effect::Restart
        } else {
            Effect::Applied
        };
    }
    if LIVE.iter().any(|name| is_under(key, name)) {
        Effect::Applied
    } else if UNUSED.iter().any(|name| is_under(key, name)) {
        Effect::Unused
    } else {
        Effect::Restart
    }
}

/// The changed keys between `old` and `new` that `effect` puts in `which`, sorted.
pub fn changed(old: &Config, new: &Config, which: Effect) -> Vec<String> {
    crate::config::changed_keys(old, new)
        .into_iter()
        .filter(|key| effect(key, old, new) == which)
        .collect()
}

/// The keys that differ between `old` and `new` and that a running server cannot change:
/// everything it reads but the keys applied live (and a log file that moves).
pub fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    changed(old, new, Effect::Restart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/etc/akm/akm.toml")).unwrap()
    }

    #[test]
    fn restart_keys_are_named_and_live_ones_are_not() {
        let old = parse("");
        let new = parse(
            "[server]\nlisten = \"127.0.0.1:5697\"\n[store]\ndata_dir = \"/srv/akm\"\n\
             [log]\nlevel = \"debug\"\nfile = \"/var/log/akm/akm.log\"\n\
             [access]\nadmin_group = \"ops\"\n[tls]\ncrls = [\"ca.crl\"]\n",
        );
        assert_eq!(
            needs_restart(&old, &new),
            ["log.file", "server.listen", "store.data_dir"]
        );
        assert_eq!(
            changed(&old, &new, Effect::Applied),
            ["access.admin_group", "log.level", "tls.crls"]
        );
        assert!(needs_restart(&old, &parse("")).is_empty());
        // A log file that moves needs no restart.
        let a = parse("[log]\nfile = \"/var/log/akm/a.log\"\n");
        let b = parse("[log]\nfile = \"/var/log/akm/b.log\"\nerror_file = \"e.log\"\n");
        assert_eq!(needs_restart(&a, &b), ["log.error_file"]);
        assert_eq!(changed(&a, &b, Effect::Applied), ["log.file"]);
        // The journal's sync policy is the journal thread's, set at start.
        let interval = parse("[audit]\nsync = \"interval\"\nsync_interval_ms = 20\n");
        assert_eq!(
            needs_restart(&old, &interval),
            ["audit.sync", "audit.sync_interval_ms"]
        );
        // The status listener's address waits for a restart; its certificate does not.
        let s = parse(
            "[status]\nlisten = \"127.0.0.1:9443\"\ncert = \"status.crt\"\nkey = \"status.key\"\n",
        );
        assert_eq!(needs_restart(&old, &s), ["status.listen"]);
    }

    /// Every changed key is applied, named for a restart or named as unused: a key no list
    /// mentions (a new one, or `[mirror]` appearing) needs a restart rather than being
    /// passed over.
    #[test]
    fn every_changed_key_has_an_effect() {
        let old = parse("");
        let new = parse(
            "[server]\nmax_locate_items = 7\nauto_init = true\nmax_depth = 10\n\
             [client]\nserver = \"kms:5696\"\n[dual_control]\noperations = [\"all\"]\n\
             [mirror]\nnode_id = \"a\"\nlisten = \"127.0.0.1:5697\"\n\
             [[mirror.peers]]\nnode_id = \"b\"\naddress = \"127.0.0.1:5698\"\n\
             fingerprint = \"abababababababababababababababababababababababababababababababab\"\n",
        );
        assert_eq!(
            changed(&old, &new, Effect::Applied),
            ["server.max_locate_items"]
        );
        assert_eq!(
            changed(&old, &new, Effect::Unused),
            ["client.server", "server.auto_init"]
        );
        assert_eq!(
            needs_restart(&old, &new),
            ["dual_control.operations", "mirror", "server.max_depth"]
        );
        let all = crate::config::changed_keys(&old, &new);
        assert_eq!(all.len(), 6, "{all:?}");
    }

    #[test]
    fn tls_errors_name_their_key() {
        let tls = parse("").tls;
        let read = |p: &Path| TlsError::Pem {
            path: p.display().to_string(),
            what: "x",
        };
        assert_eq!(tls_key(&tls, &read(&tls.cert)), "tls.cert");
        assert_eq!(tls_key(&tls, &read(&tls.client_ca)), "tls.client_ca");
        assert_eq!(tls_key(&tls, &read(Path::new("/x/ca.crl"))), "tls.crls");
    }
}
