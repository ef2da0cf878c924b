//! Diagnostic log lines to remote syslog receivers (`[[log.remote]]`): each receiver gets the
//! server's log lines at or above its own level (warnings by default) over UDP, TCP (octet
//! counting) or TLS (RFC 5425, client certificate), in RFC 5424 or RFC 3164 framing, through
//! the audit sinks' transports (`audit::sink`). Logging never waits for the network: a line is
//! formatted and handed to the receiver's thread through a bounded queue, and dropped (and
//! counted, reported when the receiver is back) when the queue is full. Lines are the same
//! as the local log's, which never carry key material.

use crate::audit::format::{syslog_line, Framing, Header};
use crate::audit::sink::{self, Conn, Transport};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One receiver's settings (from `[[log.remote]]`, validated).
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// Where to send.
    pub transport: Transport,
    /// The syslog header.
    pub framing: Framing,
    /// The facility number.
    pub facility: u8,
    /// The APP-NAME / tag.
    pub app_name: String,
    /// The HOSTNAME.
    pub hostname: String,
    /// The lowest level sent (a `[log] level` value: `warn`, `info`, `basic`, ...).
    pub level: String,
    /// Lines held while the receiver is down; beyond it new lines are dropped.
    pub queue_lines: usize,
}

/// A running receiver: a `MakeWriter` for a tracing layer.
#[derive(Clone, Debug)]
pub struct RemoteLog {
    tx: SyncSender<String>,
    settings: Arc<RemoteSettings>,
    dropped: Arc<AtomicU64>,
}

impl RemoteLog {
    /// Starts the receiver's thread. A `tls` receiver's certificate files are read now, so a
    /// missing one stops the server at start with the file named.
    pub fn start(settings: RemoteSettings) -> std::io::Result<RemoteLog> {
        let tls = sink::tls_config(&settings.transport, "log.remote")?;
        let (tx, rx) = sync_channel(settings.queue_lines.max(1));
        let settings = Arc::new(settings);
        let dropped = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            settings: settings.clone(),
            tls,
            dropped: dropped.clone(),
        };
        std::thread::Builder::new()
            .name("akm-log-remote".into())
            .spawn(move || worker.run(rx))?;
        Ok(RemoteLog {
            tx,
            settings,
            dropped,
        })
    }
}

/// One event's message.
pub struct RemoteEvent {
    log: RemoteLog,
    severity: u8,
}

impl Write for RemoteEvent {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let s = &self.log.settings;
        let header = Header {
            framing: s.framing,
            facility: s.facility,
            severity: self.severity,
            hostname: &s.hostname,
            app_name: &s.app_name,
            msgid: "-",
        };
        let line = syslog_line(&header, crate::clock::now_ms(), text.trim_end());
        if self.log.tx.try_send(line).is_err() {
            self.log.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RemoteLog {
    type Writer = RemoteEvent;
    fn make_writer(&'a self) -> RemoteEvent {
        RemoteEvent {
            log: self.clone(),
            severity: 6,
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> RemoteEvent {
        let severity = match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        RemoteEvent {
            log: self.clone(),
            severity,
        }
    }
}

struct Worker {
    settings: Arc<RemoteSettings>,
    tls: Option<Arc<rustls::ClientConfig>>,
    dropped: Arc<AtomicU64>,
}

impl Worker {
    /// Delivers queued lines until the server's logging goes away, reconnecting with backoff.
    fn run(self, rx: Receiver<String>) {
        let mut pending: VecDeque<String> = VecDeque::new();
        let mut conn: Option<Conn> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let wait = if pending.is_empty() {
                Duration::from_secs(3600)
            } else {
                backoff
            };
            match rx.recv_timeout(wait) {
                Ok(line) => pending.push_back(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.deliver(&mut conn, &mut pending);
                    return;
                }
            }
            while pending.len() < self.settings.queue_lines {
                match rx.try_recv() {
                    Ok(line) => pending.push_back(line),
                    Err(_) => break,
                }
            }
            if self.deliver(&mut conn, &mut pending) {
                backoff = Duration::from_millis(100);
            } else {
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Sends what is pending; false (connection dropped, lines kept) on failure.
    fn deliver(&self, conn: &mut Option<Conn>, pending: &mut VecDeque<String>) -> bool {
        if pending.is_empty() {
            return true;
        }
        if conn.is_none() {
            match sink::open(&self.settings.transport, self.tls.clone()) {
                Ok(c) => *conn = Some(c),
                Err(_) => return false,
            }
        }
        let lost = self.dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            pending.push_back(self.note(&format!(
                "{lost} log line(s) were dropped while this receiver was unreachable"
            )));
        }
        let Some(c) = conn.as_mut() else {
            return false;
        };
        match sink::send_messages(c, pending.make_contiguous()) {
            Ok(()) => {
                pending.clear();
                true
            }
            Err(_) => {
                *conn = None;
                false
            }
        }
    }

    /// A warning of this receiver's own, framed like the others.
    fn note(&self, text: &str) -> String {
        let s = &self.settings;
        let header = Header {
            framing: s.framing,
            facility: s.facility,
            severity: 4,
            hostname: &s.hostname,
            app_name: &s.app_name,
            msgid: "-",
        };
        syslog_line(
            &header,
            crate::clock::now_ms(),
            &format!(" WARN akm::logremote: {text}"),
        )
    }
}

impl crate::config::LogConfig {
    /// The remote receivers as `logremote` takes them, with `hostname` in their headers.
    pub fn remote_settings(&self, hostname: &str) -> Vec<RemoteSettings> {
        self.remote
            .iter()
            .map(|r| RemoteSettings {
                transport: crate::audit::settings::receiver_transport(
                    r.transport.into(),
                    &r.address,
                    [&r.tls_ca, &r.tls_cert, &r.tls_key],
                    &r.tls_server_name,
                ),
                framing: crate::audit::settings::framing(r.framing),
                facility: r.facility.code(),
                app_name: r.app_name.clone(),
                hostname: hostname.to_owned(),
                level: r.level.clone(),
                queue_lines: r.queue_lines,
            })
            .collect()
    }
}
