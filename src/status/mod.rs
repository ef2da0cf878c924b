//! The HTTPS status listener: `/health` (200 or 503 with the reason, JSON), `/metrics`
//! (Prometheus text format) and `/` (a read-only status page). Owns the listener and its TLS
//! configuration, the routes, the request counters the KMIP listener updates
//! ([`crate::metrics::Metrics`]), the rendering of metrics and page, and `[status]` in akm.toml.
//! Loopback by default; exposed beyond loopback, clients must present a certificate of the
//! client CA in an allowed group. Connections that have not yet sent their request share a
//! budget in which a newcomer evicts the oldest, so idle connections cannot keep `/health`
//! from answering. Who did what to which key is shown only to a client that presented an
//! administrator certificate; others see counts and states. Never serves key material: it
//! reads counts, states and audit records (which carry none).

pub mod gauges;
pub mod http;
pub mod page;
pub mod snapshot;

use crate::metrics::prom;

use crate::identity;
use crate::logthrottle::LogThrottle as Throttle;
use crate::server::budget::{PendingBudget, Ticket};
use crate::server::tls::TlsHandle;
use crate::tls::{self, TlsError};
use http::{Refusal, Response};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use snapshot::Source;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How many audit events the status page lists.
pub const RECENT_EVENTS: usize = 20;

/// How the listener serves.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Whether clients must present a certificate in one of `allowed_groups` (the TLS
    /// configuration must then require client certificates too).
    pub require_client_cert: bool,
    /// Groups (certificate OUs) allowed in when client certificates are required.
    pub allowed_groups: Vec<String>,
    /// Most connections waiting for their handshake or request head (a newcomer beyond it
    /// evicts the oldest), and most requests answered at once (more wait).
    pub max_connections: usize,
    /// Time allowed for the TLS handshake, and again for the request head.
    pub header_timeout: Duration,
}

/// The listener's TLS configuration: `chain`/`key` as the server certificate, client
/// certificates verified against `client_roots` and `crls`, required when `require` (else
/// optional: a loopback listener lets a browser in without one).
pub fn server_config_from(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: RootCertStore,
    crls: Vec<CertificateRevocationListDer<'static>>,
    require: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = crate::crypto::backend::tls_provider();
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .with_crls(crls);
    let verifier = if require {
        builder.build()?
    } else {
        builder.allow_unauthenticated().build()?
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The listener's TLS configuration from akm.toml: `status.cert`/`status.key` or else the
/// KMIP listener's, and the KMIP listener's client CA (with its pins) and CRLs.
pub fn server_config(
    config: &crate::config::Config,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let t = &config.tls;
    let s = &config.status;
    let pins: Vec<[u8; 32]> = t
        .client_ca_fingerprints
        .iter()
        .filter_map(|f| crate::config::parse_fingerprint(f))
        .collect();
    server_config_from(
        tls::load_certs(s.cert.as_ref().unwrap_or(&t.cert))?,
        tls::load_key(s.key.as_ref().unwrap_or(&t.key))?,
        tls::pinned_roots(&t.client_ca, &pins)?,
        tls::load_crls(&t.crls)?,
        s.client_cert_required(),
    )
}

/// Serves the status listener on `listener` until `shutdown` completes, each handshake with
/// the configuration `tls` holds at the time (a reload puts new CRLs in force). The caller
/// binds the listener (tests use port 0).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<TlsHandle>,
    source: Arc<Source>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) {
    let slots = settings.max_connections.max(1);
    // Clients are usually local: the per-address share is the whole budget.
    let waiting = PendingBudget::new(slots, slots);
    let answering = Arc::new(Semaphore::new(slots));
    let settings = Arc::new(settings);
    let (accept_log, evict_log) = (Throttle::for_connections(), Throttle::for_connections());
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        crate::server::on_accept_error(&e, &waiting, &accept_log).await;
                        continue;
                    }
                };
                let (ticket, eviction) = waiting.admit(peer.ip());
                if let (Some(_), Some(suppressed)) = (eviction, evict_log.hit()) {
                    tracing::info!(%peer, max = slots, suppressed, "status listener: connections waiting for their request at the limit; closed the oldest");
                }
                let acceptor = TlsAcceptor::from(tls.current());
                let conn = StatusConnection {
                    peer,
                    source: source.clone(),
                    settings: settings.clone(),
                    answering: answering.clone(),
                };
                tasks.spawn(conn.serve(stream, acceptor, ticket));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Status requests are short and read-only: nothing to drain.
    tasks.shutdown().await;
}

/// One status connection: handshake, one request, one response, close.
struct StatusConnection {
    peer: SocketAddr,
    source: Arc<Source>,
    settings: Arc<Settings>,
    /// Slots of requests being answered.
    answering: Arc<Semaphore>,
}

type StatusTls = tokio_rustls::server::TlsStream<TcpStream>;

impl StatusConnection {
    /// Serves the connection; `ticket` is its place among the connections waiting for a
    /// request, given up once the request head is in (or taken away for a newer one).
    async fn serve(self, stream: TcpStream, acceptor: TlsAcceptor, mut ticket: Ticket) {
        let _ = stream.set_nodelay(true);
        let received = tokio::select! {
            r = self.receive(stream, acceptor) => r,
            () = ticket.evicted() => return,
        };
        drop(ticket);
        let Some((mut tls, head)) = received else {
            return;
        };
        // Never closed: acquiring only waits.
        let _slot = self.answering.clone().acquire_owned().await.ok();
        let (response, head_only) = match head.and_then(|h| http::parse(&h)) {
            Err(r) => (Response::refusal(&r), false),
            Ok(req) => (self.answer(&tls, &req.path).await, req.head),
        };
        let bytes = response.encode(head_only);
        let timeout = self.settings.header_timeout;
        if tokio::time::timeout(timeout, tls.write_all(&bytes))
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(timeout, tls.shutdown()).await;
        }
    }

    /// The TLS handshake and the request head, each within the header timeout; `None` if
    /// the connection failed or closed first.
    async fn receive(
        &self,
        stream: TcpStream,
        acceptor: TlsAcceptor,
    ) -> Option<(StatusTls, Result<Vec<u8>, Refusal>)> {
        let peer = self.peer;
        let deadline = self.settings.header_timeout;
        let mut tls = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "status listener: TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "status listener: TLS handshake timed out");
                return None;
            }
        };
        let head = match tokio::time::timeout(deadline, http::read_head(&mut tls)).await {
            Ok(Ok(Some(h))) => h,
            Ok(Ok(None)) | Ok(Err(_)) => return None,
            Err(_) => Err(Refusal::BadRequest("request head not received in time")),
        };
        Some((tls, head))
    }

    /// The response to a well-formed request for `path`.
    async fn answer(&self, tls: &StatusTls, path: &str) -> Response {
        if let Err(why) = authorize(tls, &self.settings) {
            tracing::info!(peer = %self.peer, reason = %why, "status listener: request refused");
            return Response::text(
                403,
                "forbidden: a client certificate in an allowed group is required",
            );
        }
        let detail = if is_administrator(tls, &self.source.ctx).await {
            page::Detail::Full
        } else {
            page::Detail::Aggregate
        };
        route(path, &self.source, detail).await
    }
}

/// Whether the client presented a certificate (verified at the handshake) of an administrator
/// as the KMIP port judges one: in the administrators' group, and neither the user nor the
/// group disabled in the system tables.
async fn is_administrator(tls: &StatusTls, ctx: &Arc<crate::ops::Ctx>) -> bool {
    let (_, session) = tls.get_ref();
    let Some(who) = session
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|cert| identity::principal_from_der(cert.as_ref()).ok())
    else {
        return false;
    };
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        crate::ops::Caller::load(&ctx, &who).is_ok_and(|caller| caller.is_admin())
    })
    .await
    .unwrap_or(false)
}

/// When client certificates are required: the presented one must name an allowed group.
fn authorize(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
    settings: &Settings,
) -> Result<(), String> {
    if !settings.require_client_cert {
        return Ok(());
    }
    let (_, session) = tls.get_ref();
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no client certificate")?;
    let who = identity::principal_from_der(cert.as_ref()).map_err(|e| e.to_string())?;
    if who.ous.iter().any(|g| settings.allowed_groups.contains(g)) {
        Ok(())
    } else {
        Err(format!("{} is in no allowed group", who.cn))
    }
}

/// The response for `path` (gathered on the blocking pool: it reads the store and files),
/// with the page in `detail`.
async fn route(path: &str, source: &Arc<Source>, detail: page::Detail) -> Response {
    let kind = match path {
        "/" | "/index.html" => Route::Page,
        "/health" => Route::Health,
        "/metrics" => Route::Metrics,
        _ => return Response::text(404, "not found: try /, /health or /metrics"),
    };
    let source = source.clone();
    match tokio::task::spawn_blocking(move || respond(kind, &source, detail)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "status listener: request handler failed");
            Response::text(500, "internal error")
        }
    }
}

#[derive(Clone, Copy)]
enum Route {
    Page,
    Health,
    Metrics,
}

fn respond(route: Route, source: &Source, detail: page::Detail) -> Response {
    let snap = source.snapshot();
    match route {
        Route::Health => health(&snap),
        Route::Metrics => {
            let mut families = source
                .ctx
                .metrics
                .families(&crate::kmip::operations::record_name);
            families.extend(gauges::families(&snap, source.started_unix));
            Response::new(200, prom::CONTENT_TYPE, prom::render(&families))
        }
        Route::Page => {
            let events = source.recent_events(RECENT_EVENTS);
            Response::new(
                200,
                "text/html; charset=utf-8",
                page::render(&snap, &events, detail),
            )
        }
    }
}

fn health(snap: &snapshot::Snapshot) -> Response {
    let json = "application/json";
    match snap.unavailable() {
        None => Response::new(200, json, "{\"status\":\"ok\"}\n"),
        Some(why) => {
            let body = serde_json::json!({"status": "unavailable", "reason": why});
            Response::new(503, json, format!("{body}\n"))
        }
    }
}

/// A running HTTPS listener, the status listener or the console, started by its `start`.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its TLS configuration, which a configuration reload replaces ([`crate::reload`]).
    pub tls: Arc<TlsHandle>,
    pub(crate) stop: tokio::sync::oneshot::Sender<()>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the listener and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Why the status listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The certificate, key, client CA or CRLs are unusable.
    #[error("status listener: {0}")]
    Tls(#[from] TlsError),
    /// The configured `status.listen` address cannot be bound.
    #[error("status listener: cannot listen on {addr} (status.listen): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Starts the status listener `config` describes for `ctx` (inside the runtime). `Ok(None)`
/// when it is disabled, or when the default address is busy (logged: the KMIP service
/// matters more than its status page); an explicit `status.listen` that cannot be bound is
/// an error.
pub async fn start(
    config: &crate::config::Config,
    ctx: Arc<crate::ops::Ctx>,
    certificates: Option<Arc<crate::certexpiry::Watch>>,
) -> Result<Option<Running>, StatusError> {
    let s = &config.status;
    if !s.enabled {
        return Ok(None);
    }
    let tls = Arc::new(TlsHandle::new(server_config(config)?));
    let addr = s.listen_addr();
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(source) if s.listen.is_some() => return Err(StatusError::Bind { addr, source }),
        Err(e) => {
            tracing::warn!(%addr, error = %e, "status listener not started: the default address is busy; set status.listen or status.enabled = false");
            return Ok(None);
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    let mirror_status = config
        .mirror
        .as_ref()
        .map(|_| config.store.data_dir.join(crate::mirror::STATUS_FILE));
    let mut source = Source::new(ctx, mirror_status, Duration::from_secs(s.cache_secs));
    source.certificates = certificates;
    let source = Arc::new(source);
    let settings = Settings {
        require_client_cert: s.client_cert_required(),
        allowed_groups: s.groups(&config.access.admin_group),
        max_connections: s.max_connections,
        header_timeout: s.header_timeout(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, tls.clone(), source, settings, async {
        let _ = stopped.await;
    }));
    Ok(Some(Running {
        addr,
        tls,
        stop,
        task,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::JournalStatus;
    use crate::crypto::slot::SealStatus;
    use snapshot::Snapshot;

    fn snapshot(sealed: bool, journal_ok: bool, store: Result<(), &str>) -> Snapshot {
        Snapshot {
            seal: SealStatus {
                sealed,
                scheme: "shares",
                threshold: 2,
                progress: 0,
                kek_id: String::new(),
            },
            journal: JournalStatus {
                healthy: journal_ok,
                ..JournalStatus::default()
            },
            objects: store.map(|()| Vec::new()).map_err(str::to_owned),
            database: None,
            mirror: None,
            open_connections: 0,
            requests_total: 0,
            uptime_secs: 0,
            now_unix: 0,
            certificates: Default::default(),
        }
    }

    fn body(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn health_is_503_with_the_reason_when_not_serving() {
        let ok = health(&snapshot(false, true, Ok(())));
        assert_eq!((ok.status, body(&ok).trim()), (200, "{\"status\":\"ok\"}"));
        let sealed = health(&snapshot(true, true, Ok(())));
        assert_eq!(sealed.status, 503);
        assert!(body(&sealed).contains("KEK is sealed"), "{}", body(&sealed));
        let journal = health(&snapshot(false, false, Ok(())));
        assert_eq!(journal.status, 503);
        assert!(
            body(&journal).contains("audit journal"),
            "{}",
            body(&journal)
        );
        let store = health(&snapshot(false, true, Err("disk I/O error")));
        assert_eq!(store.status, 503);
        assert!(body(&store).contains("disk I/O error"), "{}", body(&store));
        let json: serde_json::Value = serde_json::from_slice(&store.body).unwrap();
        assert_eq!(json["status"], "unavailable");
    }

    #[test]
    fn a_sealed_server_shows_as_not_serving_on_the_page_and_in_metrics() {
        let s = snapshot(true, true, Ok(()));
        let page = page::render(&s, &Err("<missing>".into()), page::Detail::Aggregate);
        assert!(
            page.contains("badge bad\">not serving: the KEK is sealed"),
            "{page}"
        );
        assert!(page.contains("&lt;missing&gt;"), "{page}");
        let text = prom::render(&gauges::families(&s, 1));
        assert!(text.contains("\nakm_kek_sealed 1\n"), "{text}");
        assert!(text.contains("\nakm_up 0\n"), "{text}");
    }

    /// A shared database this node cannot reach: 503 naming it, down in the metrics and on
    /// the page; once reached, its round trip and connections.
    #[test]
    fn a_database_out_of_reach_is_not_serving_and_shows_in_metrics() {
        let mut s = snapshot(false, true, Ok(()));
        s.database = Some(Err("connection refused".into()));
        let down = health(&s);
        assert_eq!(down.status, 503);
        assert!(body(&down).contains("key database cannot be reached: connection refused"));
        let text = prom::render(&gauges::families(&s, 1));
        assert!(text.contains("\nakm_store_database_up 0\n"), "{text}");
        assert!(text.contains("\nakm_up 0\n"), "{text}");
        s.database = Some(Ok(crate::store::DatabaseHealth {
            node_id: "n1".into(),
            round_trip: std::time::Duration::from_millis(2),
            readers_open: 3,
            readers_idle: 2,
            pool_size: 8,
        }));
        assert_eq!(health(&s).status, 200);
        let text = prom::render(&gauges::families(&s, 1));
        assert!(text.contains("\nakm_store_database_up 1\n"), "{text}");
        assert!(
            text.contains("akm_store_database_connections{state=\"max\"} 8\n"),
            "{text}"
        );
        let page = page::render(&s, &Err(String::new()), page::Detail::Aggregate);
        assert!(page.contains("PostgreSQL store: node n1"), "{page}");
    }
}
