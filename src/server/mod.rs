//! The KMIP listener: accepts TCP connections (TCP_NODELAY), completes the mutual-TLS
//! handshake within a deadline, takes the client identity once, then serves request after
//! request on the connection. Enforces the connection cap, idle and read deadlines and the
//! message size limit; on shutdown stops accepting and lets in-flight requests finish. Decides
//! no policy and runs no operation itself: each request goes to `ops::dispatch` on the
//! blocking pool.

mod conn;
mod limits;
pub mod tls;

use crate::ops::Ctx;
use crate::ttlv::Limits;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Per-connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed idle between requests, and to receive one whole request.
    pub idle_timeout: Duration,
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
    /// Most concurrent connections.
    pub max_connections: usize,
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
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let in_flight = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));
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
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, max = settings.max_connections, "connection limit reached; closing new connection");
                    drop(stream);
                    continue;
                };
                let conn = conn::Connection {
                    acceptor: TlsAcceptor::from(tls.current()),
                    tls: tls.clone(),
                    ctx: ctx.clone(),
                    limits: settings.limits,
                    in_flight: in_flight.clone(),
                    stop: stop_rx.clone(),
                    peer,
                    local: None,
                };
                tasks.spawn(async move {
                    conn.run(stream).await;
                    drop(permit);
                });
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
