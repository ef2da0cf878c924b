//! The management console: server-rendered HTML over HTTPS on its own listener (`[console]`,
//! off unless enabled, loopback unless `console.listen` says otherwise). Owns the listener,
//! client-certificate authentication, sessions with CSRF tokens, and the routes; the pages
//! are in [`keys`], [`admin`], [`certs`] and [`pages`].
//!
//! Every client must present a certificate of the client CA (the TLS handshake requires it);
//! revoked ones are refused like on the KMIP port. An administrator certificate (as the KMIP
//! port judges one) manages; a user certificate sees and acts on what the key policies let
//! that user see and do. Every change is a KMIP request item run through the same dispatcher
//! as the KMIP listener (`server::dispatch_audited`) with the caller's identity, so
//! access checks, dual control and audit records are those of KMIP: the console has no rules
//! of its own. Changes are POST only, with the session's CSRF token; no key material is ever
//! read, let alone rendered.

pub mod admin;
pub mod certs;
pub mod html;
pub mod http;
pub mod keys;
pub mod pages;
pub mod session;

use crate::identity::{self, Principal};
use crate::kmip::{ProtocolVersion, RequestMessage, ResponseItem};
use crate::ops::{Caller, Ctx};
use crate::server::tls::TlsHandle;
use crate::status::snapshot::Source;
use crate::ttlv::Ttlv;
use html::{Notice, Viewer};
use http::{Method, Refusal, Request, Response};
use session::{Current, Sessions};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore, TryAcquireError};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The console's stylesheet, its only static file.
const STYLESHEET: &str = include_str!("console.css");

/// How the console serves.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Rows per page of the key list.
    pub page_size: usize,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time allowed for the TLS handshake, and again for the whole request.
    pub header_timeout: Duration,
    /// Sessions end after this long without a request.
    pub idle_timeout: Duration,
    /// Sessions end this long after they began.
    pub max_session: Duration,
    /// The configuration file, shown read-only on the configuration page.
    pub config_file: Option<PathBuf>,
    /// The backup schedule in words (`[backup]`), if backups are scheduled.
    pub backup_schedule: Option<String>,
    /// The backup directory (`[backup] dir`) the backups page lists; `None`: no backups.
    pub backup_dir: Option<PathBuf>,
    /// The certs directory (`tls.certs_dir`) whose register of issued client certificates
    /// the certificates page lists; `None`: no register.
    pub certs_dir: Option<PathBuf>,
    /// The CRL `akm cert revoke` writes (the first of `tls.crls`); `None`: the server reads
    /// no CRL.
    pub crl: Option<PathBuf>,
    /// Days before expiry a certificate is shown as expiring (`tls.expiry_warning_days`).
    pub expiry_warning_days: u32,
}

impl Settings {
    /// The settings `[console]` gives.
    pub fn from_config(config: &crate::config::Config) -> Settings {
        let c = &config.console;
        Settings {
            page_size: c.page_size,
            max_connections: c.max_connections,
            header_timeout: c.header_timeout(),
            idle_timeout: c.idle_timeout(),
            max_session: c.max_session(),
            config_file: Some(config.path.clone()).filter(|p| !p.as_os_str().is_empty()),
            backup_schedule: backup_schedule(&config.backup),
            backup_dir: Some(config.backup.dir(&config.store)),
            certs_dir: Some(config.tls.certs_dir.clone()),
            crl: config.tls.crls.first().cloned(),
            expiry_warning_days: config.tls.expiry_warning_days,
        }
    }
}

/// `[backup]`'s schedule in words, if backups are scheduled.
fn backup_schedule(b: &crate::config::BackupConfig) -> Option<String> {
    let keep = format!("keeping the newest {}", b.keep);
    match (&b.schedule, b.interval_secs) {
        (Some(spec), _) => Some(format!("{spec} (UTC), {keep}")),
        (None, 0) => None,
        (None, secs) => Some(format!("every {secs} seconds, {keep}")),
    }
}

/// What every console connection shares.
pub struct Console {
    /// The server the console manages (its context, mirror status, certificate watch).
    pub source: Arc<Source>,
    /// The settings.
    pub settings: Settings,
    /// The sessions.
    pub sessions: Sessions,
    /// The TLS configuration (its CRLs refuse revoked certificates).
    pub tls: Arc<TlsHandle>,
}

impl Console {
    /// A console for `source` with `settings`, serving with `tls`.
    pub fn new(source: Arc<Source>, settings: Settings, tls: Arc<TlsHandle>) -> Console {
        Console {
            sessions: Sessions::new(settings.idle_timeout, settings.max_session),
            source,
            settings,
            tls,
        }
    }

    /// The server's context.
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.source.ctx
    }
}

/// The console's TLS configuration: the status listener's certificate logic with the
/// console's own `console.cert`/`console.key`, client certificates always required.
pub fn server_config(
    config: &crate::config::Config,
) -> Result<Arc<rustls::ServerConfig>, crate::tls::TlsError> {
    let t = &config.tls;
    let c = &config.console;
    let pins: Vec<[u8; 32]> = t
        .client_ca_fingerprints
        .iter()
        .filter_map(|f| crate::config::parse_fingerprint(f))
        .collect();
    crate::status::server_config_from(
        crate::tls::load_certs(c.cert.as_ref().unwrap_or(&t.cert))?,
        crate::tls::load_key(c.key.as_ref().unwrap_or(&t.key))?,
        crate::tls::pinned_roots(&t.client_ca, &pins)?,
        crate::tls::load_crls(&t.crls)?,
        true,
    )
}

/// Serves the console on `listener` until `shutdown` completes. The caller binds the
/// listener (tests use port 0).
///
/// When every slot is taken, a newcomer evicts the oldest connection still in its
/// handshake or request (from its own address first), as the KMIP port does: connections
/// that never finish a request (no certificate needed to open one) cannot lock
/// administrators out for as long as they keep opening them.
pub async fn serve(
    listener: TcpListener,
    console: Arc<Console>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(console.settings.max_connections.max(1)));
    let pending = Arc::new(Pending::default());
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors and the like: let the condition pass.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let slot = match slots.clone().try_acquire_owned() {
                    Ok(slot) => slot,
                    Err(TryAcquireError::Closed) => break,
                    Err(TryAcquireError::NoPermits) => {
                        pending.evict_one(peer.ip());
                        let Ok(slot) = slots.clone().acquire_owned().await else { break };
                        slot
                    }
                };
                let (id, evicted) = pending.add(peer.ip());
                let (console, pending) = (console.clone(), pending.clone());
                tasks.spawn(async move {
                    serve_connection(&console, stream, peer, evicted, &pending, id).await;
                    pending.done(id);
                    drop(slot);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// The connections still in their handshake or request, oldest first: the ones a newcomer
/// may evict when every slot is taken.
#[derive(Default)]
struct Pending {
    next: std::sync::atomic::AtomicU64,
    list: std::sync::Mutex<Vec<(u64, std::net::IpAddr, oneshot::Sender<()>)>>,
}

impl Pending {
    /// Registers a new connection from `ip`: its id, and what says it was evicted.
    fn add(&self, ip: std::net::IpAddr) -> (u64, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut list) = self.list.lock() {
            list.push((id, ip, tx));
        }
        (id, rx)
    }

    /// Connection `id` has its request (or is gone): no longer evictable.
    fn done(&self, id: u64) {
        if let Ok(mut list) = self.list.lock() {
            list.retain(|(i, ..)| *i != id);
        }
    }

    /// Evicts the oldest pending connection from `ip`, else the oldest of all.
    fn evict_one(&self, ip: std::net::IpAddr) {
        let Ok(mut list) = self.list.lock() else {
            return;
        };
        let at = list.iter().position(|(_, from, _)| *from == ip);
        if let Some(at) = at.or((!list.is_empty()).then_some(0)) {
            let (_, _, tx) = list.remove(at);
            let _ = tx.send(());
        }
    }
}

type ConsoleTls = tokio_rustls::server::TlsStream<TcpStream>;

/// One connection: handshake, one request, one response, close; the handshake and the
/// request each within the header timeout, and both given up if a newcomer evicts them.
async fn serve_connection(
    console: &Arc<Console>,
    stream: TcpStream,
    peer: SocketAddr,
    evicted: oneshot::Receiver<()>,
    pending: &Pending,
    id: u64,
) {
    let local = stream.local_addr().unwrap_or(peer);
    let received = tokio::select! {
        _ = evicted => {
            tracing::debug!(%peer, "console: connection evicted before its request");
            return;
        }
        r = handshake_and_request(console, stream, peer) => r,
    };
    pending.done(id);
    let Some((mut tls, request)) = received else {
        return;
    };
    let deadline = console.settings.header_timeout;
    let (response, head_only) = match request {
        Err(r) => (Response::refusal(&r), false),
        Ok(req) => {
            let head_only = req.method == Method::Head;
            let conn = Conn { local, peer };
            (answer(console, &tls, conn, req).await, head_only)
        }
    };
    let bytes = response.encode(head_only);
    if tokio::time::timeout(deadline, tls.write_all(&bytes))
        .await
        .is_ok()
    {
        let _ = tokio::time::timeout(deadline, tls.shutdown()).await;
    }
}

/// The TLS handshake and the request, each within the header timeout; `None` when the
/// handshake failed or the client went away.
async fn handshake_and_request(
    console: &Console,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(ConsoleTls, Result<Request, Refusal>)> {
    let local = stream.local_addr().unwrap_or(peer);
    let _ = stream.set_nodelay(true);
    let deadline = console.settings.header_timeout;
    let acceptor = TlsAcceptor::from(console.tls.current());
    let mut tls = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "console: TLS handshake failed");
            // As the KMIP port records its refused handshakes (no certificate, another
            // CA's, expired, revoked by a CRL).
            audit_refusal(console, local, peer, None, "console: TLS handshake failed").await;
            return None;
        }
        Err(_) => return None,
    };
    let request = match tokio::time::timeout(deadline, http::read_request(&mut tls)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) | Ok(Err(_)) => return None,
        Err(_) => Err(Refusal::BadRequest("request not received in time")),
    };
    Some((tls, request))
}

/// The addresses of a console connection (for audit records).
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    /// The console's address.
    pub local: SocketAddr,
    /// The client's.
    pub peer: SocketAddr,
}

/// A request from an authenticated client, as the pages see it.
pub struct Call {
    /// The client's identity.
    pub who: Principal,
    /// The viewer (name, administrator or not, CSRF token).
    pub viewer: Viewer,
    /// The request.
    pub req: Request,
    /// The addresses.
    pub conn: Conn,
    /// The session.
    pub session: Current,
}

/// The response to a well-formed request: authentication, the session and its CSRF check,
/// then the route.
async fn answer(console: &Arc<Console>, tls: &ConsoleTls, conn: Conn, req: Request) -> Response {
    if req.path == "/static/console.css" {
        return Response::new(200, "text/css; charset=utf-8", STYLESHEET);
    }
    let who = match authenticate(console, tls) {
        Ok(w) => w,
        Err(why) => {
            tracing::info!(peer = %conn.peer, reason = %why, "console: request refused");
            let detail = format!("console: {why}");
            audit_refusal(console, conn.local, conn.peer, presented(tls), &detail).await;
            return Response::text(403, &format!("forbidden: {why}"));
        }
    };
    let ctx = console.ctx().clone();
    let lookup = who.clone();
    let admin =
        tokio::task::spawn_blocking(move || Caller::load(&ctx, &lookup).map(|c| c.is_admin()))
            .await;
    let Ok(Ok(admin)) = admin else {
        return Response::text(503, "the access records cannot be read");
    };
    let session = match session_for(console, &who, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = Viewer {
        cn: who.cn.clone(),
        admin,
        csrf: session.csrf.clone(),
    };
    let new_cookie = session.new.then(|| session::cookie_header(&session));
    let call = Call {
        who,
        viewer,
        req,
        conn,
        session,
    };
    let console = console.clone();
    let mut response = match tokio::task::spawn_blocking(move || route(&console, &call)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "console: request handler failed");
            Response::text(500, "internal error")
        }
    };
    response.headers.extend(new_cookie);
    response
}

/// The identity of the certificate the client presented, if any (for the audit record of
/// a refusal).
fn presented(tls: &ConsoleTls) -> Option<Principal> {
    let (_, session) = tls.get_ref();
    let cert = session.peer_certificates()?.first()?;
    identity::principal_from_der(cert.as_ref()).ok()
}

/// Records a connection or request refused before any page, in `who`'s name if known,
/// within the journal's budget for refusals (a flood is summarised, not written whole).
async fn audit_refusal(
    console: &Console,
    local: SocketAddr,
    peer: SocketAddr,
    who: Option<Principal>,
    detail: &str,
) {
    let mut event = crate::audit::AuditEvent::new("tls", local, peer, who.as_ref());
    event.outcome = Some(crate::audit::Outcome::Failure);
    event.detail = Some(detail.to_owned());
    let ctx = console.ctx().clone();
    let _ = tokio::task::spawn_blocking(move || ctx.audit.record_refusal(event)).await;
}

/// The client's identity from the certificate verified at the handshake, unless it is
/// revoked or (on a resumed session) expired.
fn authenticate(console: &Console, tls: &ConsoleTls) -> Result<Principal, String> {
    let (_, session) = tls.get_ref();
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("a client certificate is required")?;
    let who = identity::principal_from_der(cert.as_ref()).map_err(|e| e.to_string())?;
    let issuer = identity::issuer_of(cert.as_ref()).unwrap_or_default();
    if console.tls.revokes(&issuer, &who.serial)
        || console.ctx().revoked_certs.contains(&issuer, &who.serial)
    {
        return Err("the client certificate is revoked".into());
    }
    if !crate::server::certificate_current(tls) {
        return Err("the client certificate has expired".into());
    }
    Ok(who)
}

/// The session of a request: a GET finds or begins one; a POST must come within a session
/// of the same certificate, with its CSRF token, and not from another site.
fn session_for(console: &Console, who: &Principal, req: &Request) -> Result<Current, Response> {
    let now = Instant::now();
    let id = req.session.as_deref();
    if req.method != Method::Post {
        return Ok(console.sessions.find_or_begin(id, &who.fingerprint, now));
    }
    if req
        .fetch_site
        .as_deref()
        .is_some_and(|s| s != "same-origin" && s != "none")
    {
        return Err(Response::text(
            403,
            "forbidden: a request from another site",
        ));
    }
    let Some(session) = console.sessions.find(id, &who.fingerprint, now) else {
        return Err(Response::text(
            403,
            "forbidden: no session, or it expired: reload the page and try again",
        ));
    };
    if !session::csrf_matches(&session, req.field("csrf")) {
        return Err(Response::text(
            403,
            "forbidden: missing or wrong CSRF token",
        ));
    }
    Ok(session)
}

/// The page or action for the request (on the blocking pool: it reads the store and files).
fn route(console: &Console, call: &Call) -> Response {
    let admin_only = |f: fn(&Console, &Call) -> Response| {
        if call.viewer.admin {
            f(console, call)
        } else {
            forbidden(console, call)
        }
    };
    match (call.req.method, call.req.path.as_str()) {
        (Method::Get | Method::Head, "/") => pages::overview(console, call),
        (Method::Get | Method::Head, "/keys") => keys::list(console, call, None),
        (Method::Get | Method::Head, "/key") => keys::detail(console, call, None),
        (Method::Post, "/keys/create") => keys::create(console, call),
        (Method::Post, "/key/action") => keys::action(console, call),
        (Method::Post, "/key/policy") => admin_only(admin::set_key_policy),
        (Method::Get | Method::Head, "/accounts") => admin_only(admin::accounts),
        (Method::Post, "/accounts/set") => admin_only(admin::set_account),
        (Method::Get | Method::Head, "/backups") => admin_only(admin::backups),
        (Method::Post, "/backups/run") => admin_only(admin::run_backup),
        (Method::Post, "/backups/verify") => admin_only(admin::verify_backup),
        (Method::Get | Method::Head, "/dual") => admin_only(pages::dual),
        (Method::Post, "/dual/approve") => admin_only(pages::approve),
        (Method::Get | Method::Head, "/audit") => admin_only(pages::audit),
        (Method::Get | Method::Head, "/audit.csv") => admin_only(pages::audit_csv),
        (Method::Get | Method::Head, "/certificates") => admin_only(certs::certificates),
        // Not admin_only: a user's attempt goes to the dispatcher too, which refuses and
        // audits it, then the user gets the forbidden page.
        (Method::Post, "/certificates/revoke") => certs::revoke(console, call),
        (Method::Get | Method::Head, "/mirror") => admin_only(pages::mirror),
        (Method::Get | Method::Head, "/config") => admin_only(pages::config),
        (Method::Post, "/config/reload") => admin_only(pages::reload),
        (Method::Post, "/logout") => {
            console.sessions.end(&call.session.id);
            Response::text(
                200,
                "signed out: close the browser to forget the certificate",
            )
        }
        (Method::Post, _) => Response::text(404, "not found"),
        (_, _) => {
            let body = "<p>No such page.</p>";
            Response::html(404, html::page(&call.viewer, "Not found", "", None, body))
        }
    }
}

/// The page a user certificate gets for an administrators' page or action, which is
/// audited as a refusal in the caller's name (as the KMIP port audits a refused request).
pub(super) fn forbidden(console: &Console, call: &Call) -> Response {
    let mut event =
        crate::audit::AuditEvent::new("message", call.conn.local, call.conn.peer, Some(&call.who));
    event.outcome = Some(crate::audit::Outcome::Failure);
    event.reason = Some(crate::kmip::enums::result_reason::PERMISSION_DENIED);
    let method = if call.req.method == Method::Post {
        "POST"
    } else {
        "GET"
    };
    // The path is one of the router's literals, never request text.
    event.detail = Some(format!(
        "console: {method} {} is for administrators",
        call.req.path
    ));
    if let Err(e) = console.ctx().audit.record_refusal(event) {
        tracing::error!(error = %e, "console: cannot write the refusal's audit record");
        return Response::text(503, "the audit journal cannot be written");
    }
    forbidden_page(call)
}

/// The 403 page itself, for a refusal already audited (an action the dispatcher refused).
pub(super) fn forbidden_page(call: &Call) -> Response {
    let body =
        "<p>This page is for administrators (a certificate in the administrators' group).</p>";
    Response::html(403, html::page(&call.viewer, "Forbidden", "", None, body))
}

/// Runs `items` (operation, payload) as one KMIP 1.4 request of the caller through the
/// KMIP dispatcher, with its audit records: the response items, or why none came.
pub fn dispatch(
    console: &Console,
    call: &Call,
    items: &[(u32, Vec<Ttlv>)],
) -> Result<Vec<ResponseItem>, String> {
    // KMIP 1.4: the attribute encoding (Template-Attribute, Attribute) the CLI uses too.
    let version = ProtocolVersion::V1_4;
    let message = crate::client::request(version, items);
    let msg = RequestMessage::parse(message).map_err(|e| e.0)?;
    let base =
        crate::audit::AuditEvent::new("kmip", call.conn.local, call.conn.peer, Some(&call.who));
    let now = crate::clock::now_secs();
    crate::server::dispatch_audited(console.ctx(), &call.who, &msg, now, base)
        .map_err(|_| "the audit journal cannot be written: nothing was done".to_owned())
}

/// The outcome of one dispatched item as a notice: `done` on success, else the failure's
/// reason and message (which for dual control names the pending request to approve).
pub fn outcome_notice(item: Option<&ResponseItem>, done: String) -> (Notice, Option<Ttlv>) {
    match item.map(|i| &i.result) {
        Some(Ok(payload)) => (Notice::good(done), payload.clone()),
        Some(Err(f)) => (
            Notice::error(format!(
                "refused: {} — {}",
                crate::audit::reason_name(f.reason),
                f.message
            )),
            None,
        ),
        None => (Notice::error("no answer"), None),
    }
}

/// A running console started by [`start`]: the status listener's handle, stopped the same way.
pub use crate::status::Running;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The certificate, key, client CA or CRLs are unusable.
    #[error("console: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// `console.listen` cannot be bound.
    #[error("console: cannot listen on {addr} (console.listen): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Starts the console `config` describes for `ctx` (inside the runtime); `Ok(None)` when
/// it is not enabled.
pub async fn start(
    config: &crate::config::Config,
    ctx: Arc<Ctx>,
    certificates: Option<Arc<crate::certexpiry::Watch>>,
) -> Result<Option<Running>, ConsoleError> {
    if !config.console.enabled {
        return Ok(None);
    }
    let tls = Arc::new(TlsHandle::new(server_config(config)?));
    let addr = config.console.listen_addr();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let addr = listener.local_addr().unwrap_or(addr);
    let mirror_status = config
        .mirror
        .as_ref()
        .map(|_| config.store.data_dir.join(crate::mirror::STATUS_FILE));
    let mut source = Source::new(
        ctx,
        mirror_status,
        Duration::from_secs(config.status.cache_secs),
    );
    source.certificates = certificates;
    let console = Arc::new(Console::new(
        Arc::new(source),
        Settings::from_config(config),
        tls.clone(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, console, async {
        let _ = stopped.await;
    }));
    Ok(Some(Running {
        addr,
        tls,
        stop,
        task,
    }))
}
