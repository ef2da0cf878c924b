//! The KMIP listener: accepts TCP connections (TCP_NODELAY), completes the mutual-TLS
//! handshake within a deadline, takes the client identity once, then serves request after
//! request on the connection. Enforces two connection budgets (connections still
//! handshaking, where the oldest is evicted to admit a newcomer, see [`budget`]; and
//! authenticated connections, refused when full), the idle, frame and handshake deadlines
//! and the message size limit; on shutdown stops accepting and lets in-flight requests
//! finish. Decides no policy and runs no operation itself: each request goes to
//! `ops::dispatch` on the blocking pool.

pub mod budget;
mod conn;
mod limits;
pub mod tls;

pub(crate) use conn::{certificate_current, dispatch_audited};

use crate::logthrottle::LogThrottle as Throttle;
use crate::ops::Ctx;
use crate::ttlv::Limits;
use budget::PendingBudget;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Per-connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed idle between requests (until a request's first byte arrives).
    pub idle_timeout: Duration,
    /// Time allowed to receive the rest of a request once its first byte has arrived.
    pub frame_timeout: Duration,
    /// Decoder limits (message size, nesting).
    pub ttlv: Limits,
    /// Most batch items in one request message.
    pub max_batch_items: usize,
    /// Most attributes (Attribute structures, or children of a 2.x Attributes structure)
    /// in one request message.
    pub max_attributes: usize,
}

/// Server settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Connection limits.
    pub limits: ConnLimits,
    /// Most concurrent authenticated connections (TLS handshake done, certificate accepted);
    /// a client authenticating while they are all taken is closed.
    pub max_connections: usize,
    /// Most authenticated connections of one identity (certificate CN); one more is closed.
    pub max_connections_per_identity: usize,
    /// Most connections still in their TLS handshake; a new one beyond it evicts the oldest.
    pub max_handshaking: usize,
    /// Most connections still in their TLS handshake from one source address; a new one
    /// beyond it evicts the oldest from that address.
    pub max_handshaking_per_source: usize,
    /// Most requests being run at once over all connections; further requests wait for a
    /// slot (their connection's idle deadline still applies to reading them).
    pub max_in_flight: usize,
    /// Time in-flight requests get after shutdown begins.
    pub shutdown_grace: Duration,
}

/// Serves KMIP on `listener` until `shutdown` completes, then drains in-flight requests
/// (up to the grace period) and returns. The caller binds the listener, so tests use port 0
/// and read the address before calling.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    ctx: Arc<Ctx>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) {
    let handle = Arc::new(tls::TlsHandle::new(tls));
    serve_reloadable(listener, handle, ctx, settings, shutdown).await
}

/// Like [`serve`], taking each new connection's TLS configuration from `tls`, so replacing
/// it (new CRLs) takes effect without a restart.
pub async fn serve_reloadable(
    listener: TcpListener,
    tls: Arc<tls::TlsHandle>,
    ctx: Arc<Ctx>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(conn::Shared {
        tls,
        ctx,
        limits: settings.limits,
        handshaking: PendingBudget::new(
            settings.max_handshaking,
            settings.max_handshaking_per_source,
        ),
        authenticated: Arc::new(Semaphore::new(settings.max_connections)),
        per_identity: budget::IdentityBudget::new(settings.max_connections_per_identity),
        max_connections: settings.max_connections,
        in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        logs: conn::Logs::default(),
    });
    let accept_failed = Throttle::for_connections();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        on_accept_error(&e, &shared.handshaking, &accept_failed).await;
                        continue;
                    }
                };
                let (ticket, eviction) = shared.handshaking.admit(peer.ip());
                if let Some(evicted) = eviction {
                    shared.logs.evicted(evicted, settings.max_handshaking, settings.max_handshaking_per_source);
                }
                let conn = conn::Connection {
                    shared: shared.clone(),
                    stop: stop_rx.clone(),
                    peer,
                    local: None,
                };
                tasks.spawn(conn.run(stream, ticket));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tracing::info!(
        connections = tasks.len(),
        "shutting down: finishing in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(settings.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining connections");
        tasks.shutdown().await;
    }
}

/// After a failed accept: out of file descriptors, closes the oldest pending handshake so
/// the next accept can succeed; in any case backs off briefly instead of spinning (the error
/// repeats until something closes), and logs at most a few lines.
pub async fn on_accept_error(e: &std::io::Error, pending: &PendingBudget, log: &Throttle) {
    use rustix::io::Errno;
    let out_of_files = matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE));
    let freed = if out_of_files {
        pending.evict_oldest()
    } else {
        None
    };
    if let Some(suppressed) = log.hit() {
        tracing::warn!(error = %e, evicted_pending = ?freed, suppressed, "accept failed");
    }
    let pause = if freed.is_some() { 5 } else { 50 };
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

/// Raises this process's soft limit on open files to its hard limit, so the connection
/// budgets (each connection is a descriptor) are not cut short by a low default soft limit
/// (often 1024). Warns when even the hard limit is below what the budgets may need.
pub fn raise_open_file_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let mut soft = limit.current;
    // `None` is unlimited: nothing to raise, or no finite value to raise to.
    if let (Some(current), Some(hard)) = (limit.current, limit.maximum) {
        if current < hard {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(
                        from = current,
                        to = hard,
                        "open file limit raised to the hard limit"
                    );
                    soft = Some(hard);
                }
                Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
            }
        }
    }
    if let Some(soft) = soft.filter(|s| *s < needed) {
        tracing::warn!(
            limit = soft,
            needed,
            "the open file limit is below server.max_connections + server.max_handshaking; \
             raise LimitNOFILE in the service unit or lower the budgets"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{getrlimit, Resource};
        super::raise_open_file_limit(0);
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
    }

    #[tokio::test]
    async fn out_of_file_descriptors_evicts_the_oldest_pending_handshake() {
        use super::budget::PendingBudget;
        use crate::logthrottle::LogThrottle as Throttle;
        let pending = PendingBudget::new(8, 8);
        let (mut oldest, _) = pending.admit([192, 0, 2, 1].into());
        let (_newer, _) = pending.admit([192, 0, 2, 2].into());
        let log = Throttle::for_connections();
        let emfile = std::io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        super::on_accept_error(&emfile, &pending, &log).await;
        oldest.evicted().await;
        assert_eq!(pending.len(), 1);
        // Other accept errors only pause.
        let other = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        super::on_accept_error(&other, &pending, &log).await;
        assert_eq!(pending.len(), 1);
    }
}
