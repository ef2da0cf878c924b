//! Syslog sinks: each runs its own thread with a bounded queue fed by the journal thread after
//! records are durable. Transports: UDP (one datagram per record), TCP and TLS (RFC 6587
//! octet counting; TLS per RFC 5425 with a client certificate), and a local Unix datagram
//! socket (`/dev/log`). A stream sink that loses its connection keeps every record it has not
//! written and, after reconnecting, first sends again the last records it wrote before the
//! failure (they may have died in the socket buffer), so the receiver's copy has no gap; the
//! verifier skips the exact duplicates this can produce. The framing is written here rather
//! than with the `syslog` crate, which has neither TLS nor octet counting for RFC 5424.

use super::format::{self, Format, Framing};
use super::record::Record;
use crate::tls;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Records sent in one write.
const BATCH: usize = 64;
/// Records read back from the journal per send.
const BACKFILL: usize = 256;
/// Records sent again after a reconnect, in case they were lost in the dead connection.
const RESEND: usize = 64;
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a stopping sink keeps trying to deliver what it holds.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How a sink reaches its receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// UDP datagrams to host:port.
    Udp(String),
    /// TCP with octet counting to host:port.
    Tcp(String),
    /// TLS (RFC 5425) to host:port.
    Tls {
        /// host:port.
        address: String,
        /// CA bundle that signed the receiver's certificate.
        ca: PathBuf,
        /// Our client certificate.
        cert: PathBuf,
        /// Our client key.
        key: PathBuf,
        /// The name to verify in the receiver's certificate (default: the host).
        server_name: Option<String>,
    },
    /// A local Unix datagram socket, such as `/dev/log`.
    Unix(PathBuf),
}

/// A sink's settings.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// Where to send.
    pub transport: Transport,
    /// The syslog header.
    pub framing: Framing,
    /// The message body.
    pub format: Format,
    /// The syslog APP-NAME / tag.
    pub app_name: String,
    /// The syslog facility number (authpriv = 10, local0 = 16, ...).
    pub facility: u8,
    /// The HOSTNAME field.
    pub hostname: String,
    /// The most records held in memory for a receiver that is down; beyond it the oldest are
    /// dropped from memory and, once the receiver is back, read again from the journal.
    pub queue_records: usize,
    /// The audit journal, where records dropped from the queue are read back from (the file
    /// and its rotated predecessor `<journal>.1`). `None`: dropped records are lost (logged).
    pub journal: Option<PathBuf>,
}

struct State {
    pending: VecDeque<Arc<Record>>,
    stopping: bool,
    dropped: u64,
    /// The serial of the next record the receiver should get.
    expected: Option<u64>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// A running sink.
pub struct Sink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    name: String,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sink({})", self.name)
    }
}

impl Sink {
    /// Starts the sink's thread. Connection failures are retried by the thread, not returned.
    pub fn start(settings: SinkSettings) -> std::io::Result<Sink> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                stopping: false,
                dropped: 0,
                expected: None,
            }),
            wake: Condvar::new(),
        });
        let name = describe(&settings.transport);
        // Built once here so a missing or unreadable certificate stops the server at start
        // with the file named, instead of failing every reconnect later.
        let tls = tls_config(&settings.transport, "audit sink")?;
        let worker = Worker {
            tls,
            shared: shared.clone(),
            settings,
            name: name.clone(),
            conn: None,
            sent: VecDeque::new(),
            resend: false,
        };
        let thread = std::thread::Builder::new()
            .name("akm-audit-sink".into())
            .spawn(move || worker.run())?;
        Ok(Sink {
            shared,
            thread: Some(thread),
            name,
        })
    }

    /// Queues durable records for delivery (never blocks on the network).
    pub fn deliver(&self, records: &[Arc<Record>]) {
        let Ok(mut st) = self.shared.state.lock() else {
            return;
        };
        if st.expected.is_none() {
            st.expected = records.first().and_then(|r| r.serial().ok());
        }
        st.pending.extend(records.iter().cloned());
        self.shared.wake.notify_one();
    }

    /// A handle that reports this sink's backlog after the sink itself has moved into the
    /// journal thread (for the status listener's metrics).
    pub fn probe(&self) -> SinkProbe {
        SinkProbe {
            shared: self.shared.clone(),
            name: self.name.clone(),
        }
    }

    /// Delivers what it can within a short grace period, then stops the thread.
    pub fn stop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.stopping = true;
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a running sink's delivery position.
pub struct SinkProbe {
    shared: Arc<Shared>,
    name: String,
}

impl std::fmt::Debug for SinkProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SinkProbe({})", self.name)
    }
}

impl SinkProbe {
    /// The sink's receiver, as `transport://address`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Durable records up to serial `journal_serial` that the receiver has not taken yet:
    /// those queued and, after a queue overflow, those left to read back from the journal.
    pub fn backlog(&self, journal_serial: u64) -> u64 {
        let Ok(st) = self.shared.state.lock() else {
            return 0;
        };
        match st.expected {
            Some(next) => journal_serial.saturating_add(1).saturating_sub(next),
            None => st.pending.len() as u64,
        }
    }
}

fn describe(t: &Transport) -> String {
    match t {
        Transport::Udp(a) => format!("udp://{a}"),
        Transport::Tcp(a) => format!("tcp://{a}"),
        Transport::Tls { address, .. } => format!("tls://{address}"),
        Transport::Unix(p) => format!("unix://{}", p.display()),
    }
}

pub(crate) enum Conn {
    Udp(UdpSocket, std::net::SocketAddr),
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Unix(UnixDatagram, PathBuf),
}

struct Worker {
    /// The TLS client configuration of a `tls` sink.
    tls: Option<Arc<rustls::ClientConfig>>,
    shared: Arc<Shared>,
    settings: SinkSettings,
    name: String,
    conn: Option<Conn>,
    /// The last records written, sent again after a reconnect.
    sent: VecDeque<Arc<Record>>,
    resend: bool,
}

impl Worker {
    fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        let mut give_up_at: Option<Instant> = None;
        loop {
            let queued = match self.next_batch(&mut give_up_at) {
                Some(b) => b,
                None => return,
            };
            // Records dropped from the queue while the receiver was away come first.
            let backfill = self.backfill(&queued);
            let from_queue = backfill.is_empty();
            let batch = if from_queue { queued } else { backfill };
            match self.send(&batch) {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    self.delivered(batch, from_queue);
                }
                Err(e) => {
                    if self.conn.take().is_some() || backoff == Duration::from_millis(100) {
                        tracing::warn!(target: "akm::audit", sink = %self.name, error = %e, "audit sink: delivery failed; will retry from the first record not delivered");
                    }
                    self.resend = true;
                    if give_up_at.is_some_and(|t| Instant::now() >= t) {
                        return;
                    }
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Waits for records; `None` when stopping with nothing left (or the grace is over).
    fn next_batch(&mut self, give_up_at: &mut Option<Instant>) -> Option<Vec<Arc<Record>>> {
        let mut st = self.shared.state.lock().ok()?;
        loop {
            let limit = self.settings.queue_records.max(1);
            if st.pending.len() > limit {
                let excess = st.pending.len() - limit;
                st.pending.drain(..excess);
                st.dropped += excess as u64;
                tracing::warn!(target: "akm::audit", sink = %self.name, dropped = st.dropped, "audit sink queue full: oldest records dropped from memory; they will be read back from the journal");
            }
            if st.stopping && give_up_at.is_none() {
                *give_up_at = Some(Instant::now() + STOP_GRACE);
            }
            if !st.pending.is_empty() {
                return Some(st.pending.iter().take(BATCH).cloned().collect());
            }
            if st.stopping || give_up_at.is_some_and(|t| Instant::now() >= t) {
                return None;
            }
            st = self.shared.wake.wait(st).ok()?;
        }
    }

    fn delivered(&mut self, batch: Vec<Arc<Record>>, from_queue: bool) {
        if let Ok(mut st) = self.shared.state.lock() {
            if from_queue {
                let n = batch.len().min(st.pending.len());
                st.pending.drain(..n);
            }
            if let Some(last) = batch.last().and_then(|r| r.serial().ok()) {
                st.expected = Some(last.saturating_add(1));
            }
        }
        self.sent.extend(batch);
        while self.sent.len() > RESEND {
            self.sent.pop_front();
        }
    }

    /// The records between the last one delivered and the first one queued, read back from
    /// the journal (at most [`BACKFILL`] at a time); empty when there is no such gap.
    fn backfill(&self, queued: &[Arc<Record>]) -> Vec<Arc<Record>> {
        let expected = self.shared.state.lock().ok().and_then(|st| st.expected);
        let front = queued.first().and_then(|r| r.serial().ok());
        let (Some(from), Some(to)) = (expected, front) else {
            return Vec::new();
        };
        if from >= to {
            return Vec::new();
        }
        let found = match &self.settings.journal {
            Some(journal) => read_range(journal, from, to, BACKFILL),
            None => Vec::new(),
        };
        if found.is_empty() {
            tracing::error!(target: "akm::audit", sink = %self.name, from, to, "audit sink: records dropped from the queue are not in the journal any more; the receiver's copy has a gap");
            if let Ok(mut st) = self.shared.state.lock() {
                st.expected = Some(to);
            }
        }
        found
    }

    fn sleep(&self, d: Duration) {
        if let Ok(st) = self.shared.state.lock() {
            let _ = self.shared.wake.wait_timeout(st, d);
        }
    }

    fn message(&self, r: &Record) -> String {
        let body = format::body(self.settings.format, r);
        let hostname = match self.settings.transport {
            Transport::Unix(_) => "",
            _ => &self.settings.hostname,
        };
        format::syslog_message(
            self.settings.framing,
            self.settings.facility,
            hostname,
            &self.settings.app_name,
            r,
            &body,
        )
    }

    fn send(&mut self, batch: &[Arc<Record>]) -> std::io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let mut records: Vec<Arc<Record>> = Vec::new();
        if self.resend && matches!(self.conn, Some(Conn::Tcp(_)) | Some(Conn::Tls(_))) {
            records.extend(self.sent.iter().cloned());
        }
        self.resend = false;
        records.extend(batch.iter().cloned());
        let messages: Vec<String> = records.iter().map(|r| self.message(r)).collect();
        let result = match self.conn.as_mut() {
            Some(conn) => send_messages(conn, &messages),
            None => Ok(()),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn connect(&self) -> std::io::Result<Conn> {
        open(&self.settings.transport, self.tls.clone())
    }
}

/// Opens a connection to a receiver (`tls`: the client configuration of a `tls` transport).
pub(crate) fn open(
    transport: &Transport,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> std::io::Result<Conn> {
    let timeout = Duration::from_secs(5);
    match transport {
        Transport::Udp(a) => {
            let to = resolve(a)?;
            let bind = if to.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
            Ok(Conn::Udp(UdpSocket::bind(bind)?, to))
        }
        Transport::Unix(p) => Ok(Conn::Unix(UnixDatagram::unbound()?, p.clone())),
        Transport::Tcp(a) => {
            let s = TcpStream::connect_timeout(&resolve(a)?, timeout)?;
            s.set_write_timeout(Some(timeout))?;
            Ok(Conn::Tcp(s))
        }
        Transport::Tls {
            address,
            server_name,
            ..
        } => {
            let config = tls.ok_or_else(|| other("TLS sink without a TLS configuration"))?;
            let host = server_name
                .clone()
                .unwrap_or_else(|| host_of(address).to_owned());
            let name = tls::server_name(&host).map_err(other)?;
            let conn = rustls::ClientConnection::new(config, name).map_err(other)?;
            let s = TcpStream::connect_timeout(&resolve(address)?, timeout)?;
            s.set_write_timeout(Some(timeout))?;
            s.set_read_timeout(Some(timeout))?;
            let mut stream = rustls::StreamOwned::new(conn, s);
            // Complete the handshake now so a certificate problem shows up as a failure
            // to connect rather than as a lost batch.
            while stream.conn.is_handshaking() {
                stream.conn.complete_io(&mut stream.sock)?;
            }
            Ok(Conn::Tls(Box::new(stream)))
        }
    }
}

/// Sends whole messages: one datagram each, or octet-counted on a stream.
pub(crate) fn send_messages(conn: &mut Conn, messages: &[String]) -> std::io::Result<()> {
    match conn {
        Conn::Udp(s, to) => messages
            .iter()
            .try_for_each(|m| s.send_to(m.as_bytes(), *to).map(drop)),
        Conn::Unix(s, path) => messages
            .iter()
            .try_for_each(|m| s.send_to(m.as_bytes(), &*path).map(drop)),
        Conn::Tcp(s) => write_framed(s, messages),
        Conn::Tls(s) => write_framed(s.as_mut(), messages),
    }
}

/// The TLS client configuration of a `tls` transport (built once, so a missing or unreadable
/// file is named at start); `None` for the others.
pub(crate) fn tls_config(
    transport: &Transport,
    what: &str,
) -> std::io::Result<Option<Arc<rustls::ClientConfig>>> {
    match transport {
        Transport::Tls { ca, cert, key, .. } => {
            Ok(Some(tls::client_config(cert, key, ca).map_err(|e| {
                other(format!("{what} {}: {e}", describe(transport)))
            })?))
        }
        _ => Ok(None),
    }
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Up to `max` records with serials in `from..to`, from `<journal>.1` then `<journal>`.
fn read_range(journal: &Path, from: u64, to: u64, max: usize) -> Vec<Arc<Record>> {
    let mut rotated = journal.as_os_str().to_owned();
    rotated.push(".1");
    let mut out = Vec::new();
    for path in [PathBuf::from(rotated), journal.to_owned()] {
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Ok(r) = Record::parse_line(&line) else {
                continue;
            };
            match r.serial() {
                Ok(s) if (from..to).contains(&s) => out.push(Arc::new(r)),
                Ok(s) if s >= to => return out,
                _ => {}
            }
            if out.len() >= max {
                return out;
            }
        }
    }
    out
}

/// RFC 6587 octet counting: `LEN SP MSG` for each message, written in one go.
fn write_framed(w: &mut impl Write, messages: &[String]) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for m in messages {
        buf.extend_from_slice(format!("{} ", m.len()).as_bytes());
        buf.extend_from_slice(m.as_bytes());
    }
    w.write_all(&buf)?;
    w.flush()
}

fn resolve(address: &str) -> std::io::Result<std::net::SocketAddr> {
    address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| other(format!("{address} does not resolve")))
}

/// The host part of host:port (brackets removed from an IPv6 literal).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_counting_prefixes_each_message_with_its_length() {
        let mut out = Vec::new();
        write_framed(&mut out, &["abc".into(), "hello world".into()]).unwrap();
        assert_eq!(out, b"3 abc11 hello world");
    }

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("logs.example:6514"), "logs.example");
        assert_eq!(host_of("[::1]:6514"), "::1");
    }
}
