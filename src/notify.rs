//! The systemd notification protocol (`sd_notify`, see systemd's `sd_notify(3)` and
//! `systemd.service(5)` `Type=notify`): one datagram of newline-separated `KEY=value`
//! assignments to the socket named by `$NOTIFY_SOCKET` (a path, or an abstract socket when it
//! starts with `@`). akm sends `READY=1` once it serves, `RELOADING=1` and `READY=1` around a
//! configuration reload, `STOPPING=1` on shutdown, `STATUS=` lines for `systemctl status`,
//! and `WATCHDOG=1` heartbeats from a task that proves the server is alive (see
//! [`watchdog`]). Without `$NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where notifications go, if anywhere.
#[derive(Debug, Clone)]
enum Target {
    /// A socket in the file system.
    Path(PathBuf),
    /// A Linux abstract socket (the name without the leading `@`).
    Abstract(Vec<u8>),
}

/// A sender of service notifications to systemd (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    target: Target,
    socket: UnixDatagram,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`; a no-op one when it is unset or empty. The variable is
    /// left in the environment: with `NotifyAccess=main` systemd ignores other processes.
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(v) if !v.is_empty() => Notifier::to(&v.to_string_lossy()),
            _ => Notifier::default(),
        }
    }

    /// A notifier sending to the socket `address` (`@name` for an abstract socket).
    pub fn to(address: &str) -> Notifier {
        let target = match address.strip_prefix('@') {
            Some(name) => Target::Abstract(name.as_bytes().to_vec()),
            None => Target::Path(PathBuf::from(address)),
        };
        match UnixDatagram::unbound() {
            Ok(socket) => Notifier {
                inner: Some(Arc::new(Inner { target, socket })),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a socket for systemd notifications");
                Notifier::default()
            }
        }
    }

    /// Whether notifications go anywhere.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Sends `state` (`KEY=value` lines). A failure is logged and otherwise ignored: systemd
    /// then acts on the missing notification (start timeout, watchdog), which is the point.
    pub fn send(&self, state: &str) {
        let Some(inner) = &self.inner else {
            return;
        };
        if let Err(e) = inner.send(state.as_bytes()) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `RELOADING=1` with the monotonic time of the reload (systemd 253+ checks it; older
    /// ones ignore it), and a status line.
    pub fn reloading(&self) {
        let mut msg = String::from("RELOADING=1\nSTATUS=reloading the configuration");
        if let Some(usec) = monotonic_usec() {
            msg.push_str(&format!("\nMONOTONIC_USEC={usec}"));
        }
        self.send(&msg);
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: draining requests");
    }

    /// A `STATUS=` line alone.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }
}

impl Inner {
    fn send(&self, bytes: &[u8]) -> std::io::Result<usize> {
        match &self.target {
            Target::Path(p) => self.socket.send_to(bytes, p),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                self.socket.send_to_addr(bytes, &addr)
            }
        }
    }
}

/// A status is one assignment: a newline would start another.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

/// CLOCK_MONOTONIC in microseconds, which std does not expose as an absolute value.
fn monotonic_usec() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nsecs = u64::try_from(t.tv_nsec).ok()?;
    Some(secs * 1_000_000 + nsecs / 1000)
}

/// The heartbeat interval systemd asks for: half of `$WATCHDOG_USEC`, if that is set for
/// this process (`$WATCHDOG_PID` absent or ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_string_lossy().trim() != std::process::id().to_string() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Sends `WATCHDOG=1` every `every` for as long as `alive` answers true within `every`.
/// `alive` is the liveness proof (the daemon's checks the async runtime, the blocking pool
/// and the store's writer thread); when it fails or hangs the heartbeat is skipped and
/// logged, so systemd's watchdog restarts a server that no longer serves. A check still
/// running from an earlier beat is not started again, so a hung store piles up nothing.
pub async fn watchdog<F, Fut>(notifier: Notifier, every: Duration, alive: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let mut pending: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    loop {
        let check = match pending.take() {
            Some(running) => running,
            None => tokio::spawn(alive()),
        };
        let mut check = check;
        match tokio::time::timeout(every, &mut check).await {
            Ok(Ok(Ok(()))) => notifier.send("WATCHDOG=1"),
            Ok(Ok(Err(why))) => {
                tracing::error!(%why, "watchdog: liveness check failed; no heartbeat")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "watchdog: liveness check panicked"),
            Err(_) => {
                tracing::error!("watchdog: liveness check did not answer in time; no heartbeat");
                pending = Some(check);
                continue;
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_socket_gets_one_datagram_per_notification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to(path.to_str().unwrap());
        assert!(n.enabled());
        n.ready("serving\non 127.0.0.1:5696");
        let mut buf = [0u8; 512];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..len],
            b"READY=1\nSTATUS=serving on 127.0.0.1:5696".as_slice()
        );
        n.reloading();
        let len = rx.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        assert!(text.starts_with("RELOADING=1\n"), "{text}");
        assert!(text.contains("\nMONOTONIC_USEC="), "{text}");
    }

    #[test]
    fn an_abstract_socket_is_reached_by_its_at_name() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("akm-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::to(&format!("@{name}")).stopping();
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert!(buf[..len].starts_with(b"STOPPING=1\n"));
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::default();
        assert!(!n.enabled());
        n.ready("x");
        // A socket that is gone is logged, not fatal.
        Notifier::to("/nonexistent/akm-notify").send("WATCHDOG=1");
    }

    /// A bound socket and a notifier to it.
    fn pair(dir: &std::path::Path) -> (UnixDatagram, Notifier) {
        let path = dir.join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        (rx, Notifier::to(path.to_str().unwrap()))
    }

    #[tokio::test]
    async fn a_failing_check_withholds_the_heartbeat() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let (rx, n) = pair(dir.path());
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let task = tokio::spawn(watchdog(n, Duration::from_millis(5), move || {
            let c = c.clone();
            async move {
                // The first three checks fail.
                match c.fetch_add(1, Ordering::SeqCst) {
                    0..=2 => Err("store writer: gone".to_string()),
                    _ => Ok(()),
                }
            }
        }));
        let mut buf = [0u8; 64];
        let len = tokio::task::spawn_blocking(move || rx.recv(&mut buf).map(|l| buf[..l].to_vec()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(len, b"WATCHDOG=1");
        assert!(
            calls.load(Ordering::SeqCst) >= 4,
            "a heartbeat for a failed check"
        );
        task.abort();
    }

    #[tokio::test]
    async fn a_hung_check_is_not_started_again_and_withholds_the_heartbeat() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let (rx, n) = pair(dir.path());
        rx.set_nonblocking(true).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let (c, r) = (calls.clone(), release.clone());
        let task = tokio::spawn(watchdog(n, Duration::from_millis(5), move || {
            let (c, r) = (c.clone(), r.clone());
            async move {
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    r.notified().await;
                }
                Ok(())
            }
        }));
        // Many intervals pass while the first check hangs.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "checks piled up");
        let mut buf = [0u8; 64];
        assert!(
            rx.recv(&mut buf).is_err(),
            "a heartbeat while the check hung"
        );
        // Once it answers, heartbeats resume.
        release.notify_one();
        rx.set_nonblocking(false).unwrap();
        let len = tokio::task::spawn_blocking(move || rx.recv(&mut buf).map(|l| buf[..l].to_vec()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(len, b"WATCHDOG=1");
        task.abort();
    }

    #[test]
    fn monotonic_time_is_available() {
        assert!(monotonic_usec().unwrap() > 0);
    }
}
