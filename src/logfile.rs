//! Diagnostic log streams: the trace stream (everything at the configured level) and the
//! error stream (warnings and errors only), each to stderr or to its own file, and optionally
//! both to a local syslog socket under their own app-names (`akm`, `akm-error`). Files are
//! reopened at their configured path on SIGHUP, so logrotate can rename them and signal the
//! server. The trace streams' level can be replaced while running (a configuration reload,
//! through tracing-subscriber's reload layer). The audit stream is not here: it is the audit
//! journal and its syslog sinks.

use crate::config::log_level::{check_level, filter_for};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// A log file that can be reopened at its path after a rotation (cheap to clone: clones
/// share the file).
#[derive(Debug, Clone)]
pub struct LogFile(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// The path the file is (re)opened at; a reload may move it.
    path: Mutex<PathBuf>,
    file: Mutex<File>,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

impl LogFile {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<LogFile> {
        Ok(LogFile(Arc::new(Inner {
            path: Mutex::new(path.to_owned()),
            file: Mutex::new(open_append(path)?),
        })))
    }

    /// The path the file is (re)opened at.
    pub fn path(&self) -> PathBuf {
        match self.0.path.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reopens the file at its path (a rotated file stays with whoever renamed it).
    pub fn reopen(&self) -> std::io::Result<()> {
        let fresh = open_append(&self.path())?;
        self.put(fresh);
        Ok(())
    }

    /// Continues in `file`, opened at `path`, from the next event on.
    fn move_to(&self, path: PathBuf, file: File) {
        if let Ok(mut p) = self.0.path.lock() {
            *p = path;
        }
        self.put(file);
    }

    fn put(&self, fresh: File) {
        if let Ok(mut f) = self.0.file.lock() {
            *f = fresh;
        }
    }
}

/// Writes one formatted event to a [`LogFile`].
pub struct LogWriter(LogFile);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0 .0.file.lock() {
            Ok(mut f) => f.write(buf),
            Err(_) => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.clone())
    }
}

/// Sends each formatted event as one RFC 3164 datagram to a local syslog socket.
#[derive(Clone, Debug)]
pub struct SyslogWriter {
    socket: Arc<std::os::unix::net::UnixDatagram>,
    path: PathBuf,
    facility: u8,
    app_name: &'static str,
}

impl SyslogWriter {
    /// A writer to the socket at `path` (e.g. `/dev/log`) for `app_name` in `facility`.
    pub fn new(path: &Path, facility: u8, app_name: &'static str) -> std::io::Result<SyslogWriter> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        // A syslog daemon that stops reading must not block the server: events are dropped.
        socket.set_nonblocking(true)?;
        Ok(SyslogWriter {
            socket: Arc::new(socket),
            path: path.to_owned(),
            facility,
            app_name,
        })
    }
}

/// One event's datagram, with the severity of the event's level.
pub struct SyslogEvent {
    writer: SyslogWriter,
    severity: u8,
}

impl Write for SyslogEvent {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let pri = u16::from(self.writer.facility) * 8 + u16::from(self.severity);
        let msg = format!(
            "<{pri}>{}[{}]: {}",
            self.writer.app_name,
            std::process::id(),
            text.trim_end()
        );
        // A full or absent syslog socket must not stop the server: the event is dropped.
        let _ = self
            .writer
            .socket
            .send_to(msg.as_bytes(), &self.writer.path);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogEvent;
    fn make_writer(&'a self) -> SyslogEvent {
        SyslogEvent {
            writer: self.clone(),
            severity: 6,
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogEvent {
        let severity = match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        SyslogEvent {
            writer: self.clone(),
            severity,
        }
    }
}

static OPEN_FILES: OnceLock<Vec<LogFile>> = OnceLock::new();

/// The trace stream's file and the error stream's file, as set up by [`init`].
static STREAM_FILES: OnceLock<(Option<LogFile>, Option<LogFile>)> = OnceLock::new();

/// New paths for the log files, opened and ready to take over ([`prepare_moves`]).
#[derive(Debug, Default)]
pub struct Moves(Vec<(LogFile, PathBuf, File)>);

impl Moves {
    /// Puts the new files in force.
    pub fn apply(self) {
        for (log, path, file) in self.0 {
            tracing::info!(from = %log.path().display(), to = %path.display(), "log file moved");
            log.move_to(path, file);
        }
    }
}

/// For a reload: opens the new `[log] file` and `error_file` paths of streams that already
/// go to a file, without using them yet. A stream that would go from stderr (or nowhere) to a
/// file or back needs a restart and is left alone ([`needs_restart`] names it). The error
/// names the key and the file that cannot be opened.
pub fn prepare_moves(file: Option<&Path>, error_file: Option<&Path>) -> Result<Moves, String> {
    let Some((trace, errors)) = STREAM_FILES.get() else {
        return Ok(Moves::default());
    };
    let mut moves = Vec::new();
    for (key, current, wanted) in [
        ("log.file", trace, file),
        ("log.error_file", errors, error_file),
    ] {
        if let (Some(log), Some(path)) = (current, wanted) {
            if log.path() != path {
                let f = open_append(path)
                    .map_err(|e| format!("`{key}`: cannot open {}: {e}", path.display()))?;
                moves.push((log.clone(), path.to_owned(), f));
            }
        }
    }
    Ok(Moves(moves))
}

/// Whether changing a stream's file from `old` to `new` needs a restart: moving a file does
/// not, but sending a stream to a file, or no longer, does.
pub fn needs_restart(old: Option<&Path>, new: Option<&Path>) -> bool {
    old.is_some() != new.is_some()
}

/// The filter of each trace stream (file or stderr, syslog `akm`), replaceable at run time.
type LevelHandle = tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>;

static LEVEL_HANDLES: OnceLock<Vec<LevelHandle>> = OnceLock::new();

/// The levels a filter directive may name (any case).
/// Puts a new `[log] level` in force on the trace streams; the error streams stay at
/// warnings. RUST_LOG, when set, still wins (as at start). Does nothing before [`init`].
pub fn set_level(level: &str) -> Result<(), String> {
    check_level(level)?;
    for handle in LEVEL_HANDLES.get().into_iter().flatten() {
        handle
            .reload(env_filter(level))
            .map_err(|e| format!("cannot change the log level: {e}"))?;
    }
    if std::env::var_os("RUST_LOG").is_some() {
        tracing::warn!("RUST_LOG is set: it overrides log.level, which was not applied");
    } else if is_chatty(level) {
        warn_chatty(level);
    }
    Ok(())
}

/// Reopens every diagnostic log file (on SIGHUP).
pub fn reopen_all() {
    for f in OPEN_FILES.get().into_iter().flatten() {
        if let Err(e) = f.reopen() {
            tracing::error!(path = %f.path().display(), error = %e, "cannot reopen log file");
        }
    }
}

/// Whether a level logs more than `basic`, which earns a warning at startup.
pub fn is_chatty(level: &str) -> bool {
    let f = filter_for(level);
    f.contains("debug") || f.contains("trace")
}

/// Where the diagnostic streams go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outputs<'a> {
    /// The trace stream's file; stderr if `None`.
    pub file: Option<&'a Path>,
    /// The error stream's file; none if `None`.
    pub error_file: Option<&'a Path>,
    /// A local syslog socket for both streams (app-names `akm` and `akm-error`), and the
    /// facility number.
    pub syslog: Option<(&'a Path, u8)>,
    /// Remote syslog receivers, each at its own level.
    pub remote: &'a [crate::logremote::RemoteSettings],
}

fn env_filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter_for(level)))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Sets up the trace stream (at `level`; RUST_LOG wins) and the error stream (warnings and
/// errors only) as `outputs` says. Returns an error naming what cannot be opened.
pub fn init(level: &str, outputs: Outputs<'_>) -> Result<(), String> {
    let mut layers: Vec<BoxedLayer> = Vec::new();
    let mut files = Vec::new();
    let mut handles = Vec::new();
    let (mut trace_file, mut error_file) = (None, None);
    let mut trace_filter = || {
        let (filter, handle) = tracing_subscriber::reload::Layer::new(env_filter(level));
        handles.push(handle);
        filter
    };
    match outputs.file {
        Some(p) => {
            let f = open_log(p)?;
            files.push(f.clone());
            trace_file = Some(f.clone());
            layers.push(file_layer(f, trace_filter()));
        }
        None => layers.push(
            tracing_subscriber::fmt::layer()
                // Colour codes only for a person at a terminal, never into files or pipes.
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .with_filter(trace_filter())
                .boxed(),
        ),
    }
    if let Some(p) = outputs.error_file {
        let f = open_log(p)?;
        files.push(f.clone());
        error_file = Some(f.clone());
        layers.push(file_layer(f, EnvFilter::new("warn")));
    }
    if let Some((path, facility)) = outputs.syslog {
        let open = |app| {
            SyslogWriter::new(path, facility, app)
                .map_err(|e| format!("cannot open a socket for syslog {}: {e}", path.display()))
        };
        layers.push(syslog_layer(open("akm")?, trace_filter()));
        layers.push(syslog_layer(open("akm-error")?, EnvFilter::new("warn")));
    }
    for r in outputs.remote {
        let log = crate::logremote::RemoteLog::start(r.clone()).map_err(|e| e.to_string())?;
        let filter = EnvFilter::try_new(filter_for(&r.level))
            .map_err(|e| format!("`log.remote.level` {:?}: {e}", r.level))?;
        layers.push(syslog_layer(log, filter));
    }
    let _ = OPEN_FILES.set(files);
    let _ = STREAM_FILES.set((trace_file, error_file));
    let _ = LEVEL_HANDLES.set(handles);
    let _ = tracing_subscriber::registry().with(layers).try_init();
    if is_chatty(level) {
        warn_chatty(level);
    }
    Ok(())
}

fn warn_chatty(level: &str) {
    tracing::warn!(
        level,
        "diagnostic log level {level} writes much more to disk and may expose sensitive \
         detail (identifiers, names, client addresses); use basic in production"
    );
}

/// A layer of the diagnostic streams.
type BoxedLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

fn open_log(p: &Path) -> Result<LogFile, String> {
    LogFile::open(p).map_err(|e| format!("cannot open log file {}: {e}", p.display()))
}

fn file_layer<F>(f: LogFile, filter: F) -> BoxedLayer
where
    F: tracing_subscriber::layer::Filter<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(f)
        .with_filter(filter)
        .boxed()
}

/// Syslog stamps its own time, so the event carries none.
fn syslog_layer<W, F>(w: W, filter: F) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    F: tracing_subscriber::layer::Filter<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .without_time()
        .with_writer(w)
        .with_filter(filter)
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_in_the_level_is_refused_naming_the_valid_values() {
        for ok in [
            "none",
            "basic",
            "verbose",
            "debug",
            "info",
            "WARN",
            "akm=debug",
            "info,akm=trace",
        ] {
            assert!(check_level(ok).is_ok(), "{ok}");
        }
        for bad in ["inof", "akm=loud", "verbos", "info,debgu", ""] {
            let e = check_level(bad).unwrap_err();
            assert!(
                e.contains("valid: none, basic, verbose, debug"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn levels_map_to_filters() {
        assert_eq!(filter_for("none"), "off");
        assert_eq!(filter_for("basic"), "info");
        assert_eq!(filter_for("akm=trace"), "akm=trace");
        assert!(is_chatty("verbose") && is_chatty("debug") && !is_chatty("basic"));
    }

    #[test]
    fn a_log_file_is_reopened_at_its_path_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("akm.log");
        let f = LogFile::open(&path).unwrap();
        f.make_writer().write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.path().join("akm.log.1")).unwrap();
        f.make_writer().write_all(b"two\n").unwrap();
        f.reopen().unwrap();
        f.make_writer().write_all(b"three\n").unwrap();
        let old = std::fs::read_to_string(dir.path().join("akm.log.1")).unwrap();
        assert_eq!(old, "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
