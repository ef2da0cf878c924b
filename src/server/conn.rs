//! One client connection: TLS handshake, identity, then a loop of framed requests. A frame
//! whose header is broken (not a structure, longer than the limit) closes the connection; a
//! frame that is well delimited but malformed inside gets an Invalid Message response and the
//! connection carries on. The connection holds a place in the handshake budget until its
//! handshake ends (and may be evicted from it before), then a slot of the authenticated
//! budget for as long as it is open.

use super::budget::{Eviction, PendingBudget, Ticket};
use super::tls::TlsHandle;
use super::ConnLimits;
use crate::audit::{AuditError, AuditEvent, Durability, Outcome};
use crate::identity::{self, Principal};
use crate::kmip::enums::operation;
use crate::kmip::enums::result_reason as rr;
use crate::kmip::{
    self, encode_response, error_response, Failure, ProtocolVersion, RequestMessage, ResponseItem,
};
use crate::logthrottle::LogThrottle as Throttle;
use crate::ops::{self, Ctx};
use crate::store::audit_ledger::AuditScope;
use crate::ttlv::{self, Ttlv};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout, timeout_at};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// What every connection of one listener shares.
pub(super) struct Shared {
    /// The TLS configuration in force (new connections handshake with its current one; the
    /// revocations loaded since a handshake are checked on every request).
    pub tls: Arc<TlsHandle>,
    pub ctx: Arc<Ctx>,
    pub limits: ConnLimits,
    /// Connections still in their TLS handshake.
    pub handshaking: Arc<PendingBudget>,
    /// Slots of authenticated connections.
    pub authenticated: Arc<Semaphore>,
    /// Their number (for the log line when they are all taken).
    pub max_connections: usize,
    /// Authenticated connections per identity.
    pub per_identity: super::budget::IdentityBudget,
    /// The global in-flight request slots.
    pub in_flight: Arc<Semaphore>,
    pub logs: Logs,
}

/// The throttles of the connection diagnostics a flood would repeat.
#[derive(Debug)]
pub(super) struct Logs {
    evicted: Throttle,
    handshake_failed: Throttle,
    over_limit: Throttle,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            evicted: Throttle::for_connections(),
            handshake_failed: Throttle::for_connections(),
            over_limit: Throttle::for_connections(),
        }
    }
}

impl Logs {
    /// A pending handshake was closed to admit a newer connection.
    pub(super) fn evicted(&self, eviction: Eviction, max: usize, per_source: usize) {
        let Some(suppressed) = self.evicted.hit() else {
            return;
        };
        match eviction {
            Eviction::SameSource(source) => tracing::warn!(
                %source, max_handshaking_per_source = per_source, suppressed,
                "too many TLS handshakes pending from one address; closed its oldest"
            ),
            Eviction::Oldest(source) => tracing::warn!(
                %source, max_handshaking = max, suppressed,
                "too many TLS handshakes pending; closed the oldest"
            ),
        }
    }
}

/// How a connection's TLS handshake ended.
enum Handshake {
    Done(Box<TlsStream<TcpStream>>),
    Failed(std::io::Error),
    TimedOut,
    /// Closed to admit a newer connection (the handshake budget was full).
    Evicted,
}

pub(super) struct Connection {
    pub shared: Arc<Shared>,
    pub stop: watch::Receiver<bool>,
    pub peer: SocketAddr,
    /// The server's address on this connection (for audit records).
    pub local: Option<SocketAddr>,
}

impl Connection {
    /// Serves the connection `stream`, which holds `ticket` in the handshake budget until its
    /// handshake ends.
    pub(super) async fn run(mut self, stream: TcpStream, ticket: Ticket) {
        // Without NODELAY a TLS 1.3 client waits ~40 ms on delayed ACK for every new session.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(peer = %self.peer, error = %e, "could not set TCP_NODELAY");
        }
        self.local = stream.local_addr().ok();
        let metrics = self.shared.ctx.metrics.clone();
        let _open = metrics.connection_opened();
        // The handshake's and the serving loop's futures are boxed, so a connection's task
        // does not keep room for both at once (10,000 idle connections: BENCHMARKS.md).
        let tls = match Box::pin(self.handshake(stream, ticket)).await {
            Handshake::Done(tls) => *tls,
            ended => {
                metrics.handshake_failed();
                let detail = match ended {
                    Handshake::Failed(e) => {
                        self.log_handshake_failure(&format!("TLS handshake failed: {e}"));
                        "TLS handshake failed"
                    }
                    Handshake::TimedOut => {
                        self.log_handshake_failure("TLS handshake timed out");
                        "TLS handshake timed out"
                    }
                    _ => "TLS handshake not finished before newer connections needed its place",
                };
                self.audit_refused_connection(detail).await;
                return;
            }
        };
        let (who, issuer) = match principal_of(&tls) {
            Ok(p) => p,
            Err(e) => {
                self.log_handshake_failure(&format!("client certificate refused: {e}"));
                metrics.handshake_failed();
                let cert = peer_cert_sha256(&tls);
                self.audit_refused_connection_with("client certificate refused", cert)
                    .await;
                return;
            }
        };
        // Revoked on any mirrored node (this node's verifier only knows its own CRLs).
        if self.revoked(&issuer, &who) {
            tracing::warn!(peer = %self.peer, user = %who.cn, serial = %who.serial, "client certificate revoked; closing connection before any request");
            metrics.handshake_failed();
            let cert = peer_cert_sha256(&tls);
            self.audit_refused_connection_with("client certificate revoked", cert)
                .await;
            return;
        }
        if !certificate_current(&tls) {
            tracing::info!(peer = %self.peer, user = %who.cn, "resumed TLS session of an expired client certificate; closing");
            let cert = peer_cert_sha256(&tls);
            self.audit_refused_connection_with("client certificate expired", cert)
                .await;
            return;
        }
        // One identity may hold only its share of the authenticated connections.
        let Some(_share) = self.shared.per_identity.admit(&who.cn) else {
            if let Some(suppressed) = self.shared.logs.over_limit.hit() {
                tracing::warn!(peer = %self.peer, user = %who.cn, suppressed, "connection limit per identity reached (server.max_connections_per_identity); closing new connection");
            }
            return;
        };
        // Authenticated connections have their own budget, which handshakes never take.
        let Ok(_slot) = self.shared.authenticated.clone().try_acquire_owned() else {
            if let Some(suppressed) = self.shared.logs.over_limit.hit() {
                tracing::warn!(peer = %self.peer, user = %who.cn, max = self.shared.max_connections, suppressed, "connection limit reached; closing new connection");
            }
            return;
        };
        tracing::debug!(peer = %self.peer, user = %who.cn, "client connected");
        // Boxed: the task then keeps no room for the admission steps' futures above.
        Box::pin(self.serve_requests(tls, who, issuer)).await;
    }

    /// The TLS handshake, within the handshake deadline, unless the connection is evicted
    /// from the handshake budget first. The budget place is given up when this returns.
    async fn handshake(&self, stream: TcpStream, mut ticket: Ticket) -> Handshake {
        let acceptor = TlsAcceptor::from(self.shared.tls.current());
        let deadline = self.shared.limits.handshake_timeout;
        tokio::select! {
            done = timeout(deadline, acceptor.accept(stream)) => match done {
                Ok(Ok(tls)) => Handshake::Done(Box::new(tls)),
                Ok(Err(e)) => Handshake::Failed(e),
                Err(_) => Handshake::TimedOut,
            },
            () = ticket.evicted() => Handshake::Evicted,
        }
    }

    /// Logs a failed handshake (a few lines, then a count: floods repeat them).
    fn log_handshake_failure(&self, what: &str) {
        if let Some(suppressed) = self.shared.logs.handshake_failed.hit() {
            tracing::info!(peer = %self.peer, suppressed, "{what}");
        }
    }

    async fn serve_requests(
        &mut self,
        mut tls: TlsStream<TcpStream>,
        who: Principal,
        issuer: String,
    ) {
        let who = Arc::new(who);
        loop {
            let frame = tokio::select! {
                frame = read_frame(&mut tls, &self.shared.limits) => frame,
                _ = self.stop.changed() => break,
            };
            let frame = match frame {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(reason) => {
                    tracing::info!(peer = %self.peer, user = %who.cn, %reason, "closing connection");
                    break;
                }
            };
            // A CRL loaded since the handshake, or a revocation mirrored from a peer, may
            // revoke this very certificate.
            if self.revoked(&issuer, &who) {
                tracing::warn!(peer = %self.peer, user = %who.cn, serial = %who.serial, "client certificate revoked since the handshake; closing connection");
                break;
            }
            let bytes = self.handle(frame, who.clone()).await;
            // A client that stops reading must not hold its connection slot forever.
            let sent = timeout(self.shared.limits.frame_timeout, async {
                tls.write_all(&bytes).await?;
                tls.flush().await
            })
            .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::info!(peer = %self.peer, user = %who.cn, "closing connection: the client did not take its response within the frame timeout");
                    break;
                }
            }
        }
        let _ = timeout(self.shared.limits.frame_timeout, tls.shutdown()).await;
    }

    /// Whether `who`'s certificate of `issuer` is revoked: by this node's CRLs in force or by
    /// a revocation in the store (recorded here or mirrored from a peer).
    fn revoked(&self, issuer: &str, who: &Principal) -> bool {
        self.shared.tls.revokes(issuer, &who.serial)
            || self.shared.ctx.revoked_certs.contains(issuer, &who.serial)
    }

    /// An audit event for this connection.
    fn event(&self, event: &'static str, who: Option<&Principal>) -> AuditEvent {
        let local = self.local.unwrap_or(self.peer);
        AuditEvent::new(event, local, self.peer, who)
    }

    /// Records a connection refused before any request (the diagnostic log already has it).
    async fn audit_refused_connection(&self, detail: &'static str) {
        self.audit_refused_connection_with(detail, None).await;
    }

    /// Records a refused connection whose client certificate (SHA-256 `cert`) was presented.
    async fn audit_refused_connection_with(&self, detail: &'static str, cert: Option<String>) {
        let mut e = self.event("tls", None);
        e.cert_sha256 = cert;
        e.outcome = Some(Outcome::Failure);
        e.detail = Some(detail.into());
        let ctx = self.shared.ctx.clone();
        let _ = tokio::task::spawn_blocking(move || ctx.audit.record_refusal(e)).await;
    }

    /// Records a request refused before dispatch and returns `failure`'s response, or, if the
    /// record cannot be written, the audit failure instead.
    async fn refuse(
        &self,
        who: &Principal,
        version: ProtocolVersion,
        now: i64,
        failure: Failure,
    ) -> Zeroizing<Vec<u8>> {
        self.shared.ctx.metrics.message_refused();
        let mut e = self.event("message", Some(who));
        e.protocol = Some(version);
        e.outcome = Some(Outcome::Failure);
        e.reason = Some(version.result_reason(failure.reason));
        let ctx = self.shared.ctx.clone();
        let recorded = tokio::task::spawn_blocking(move || ctx.audit.record(vec![e])).await;
        match recorded {
            Ok(Ok(())) => seal(error_response(version, now, failure)),
            _ => seal(error_response(version, now, audit_failure())),
        }
    }

    /// Answers one frame with the encoded response (zeroized on drop: it may carry keys).
    async fn handle(&self, frame: Zeroizing<Vec<u8>>, who: Arc<Principal>) -> Zeroizing<Vec<u8>> {
        let now = crate::clock::now_secs();
        let decoded = match ttlv::decode(&frame, &self.shared.limits.ttlv) {
            Ok(t) => t,
            Err(e) => {
                tracing::info!(peer = %self.peer, user = %who.cn, error = %e, "undecodable request");
                let version = peek_version_bytes(&frame).unwrap_or(ProtocolVersion::V1_0);
                let failure = Failure::new(rr::INVALID_MESSAGE, "malformed TTLV");
                return self
                    .refuse(&who, version.nearest_supported(), now, failure)
                    .await;
            }
        };
        drop(frame);
        let requested = kmip::peek_version(&decoded);
        let version = requested
            .map(ProtocolVersion::nearest_supported)
            .unwrap_or(ProtocolVersion::V1_0);
        if requested.is_some_and(|v| !v.is_supported()) {
            let failure = Failure::new(
                rr::UNSUPPORTED_PROTOCOL_VERSION,
                "unsupported protocol version",
            );
            return self.refuse(&who, version, now, failure).await;
        }
        if let Err(failure) = super::limits::check(&decoded, &self.shared.limits) {
            tracing::info!(peer = %self.peer, user = %who.cn, reason = %failure.message, "request over a limit");
            return self.refuse(&who, version, now, failure).await;
        }
        let msg = match RequestMessage::parse(decoded) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(peer = %self.peer, user = %who.cn, error = %e, "invalid request");
                let failure = Failure::new(rr::INVALID_MESSAGE, e.0);
                return self.refuse(&who, version, now, failure).await;
            }
        };
        // Holds a global slot while the request runs; released when this returns. The
        // semaphore is never closed, so acquiring only waits.
        let _slot = self.shared.in_flight.clone().acquire_owned().await.ok();
        let ctx = self.shared.ctx.clone();
        let base = self.event("kmip", Some(&who));
        let answered = tokio::task::spawn_blocking(move || {
            audited_dispatch(&ctx, &who, &msg, version, now, base)
        })
        .await;
        match answered {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => seal(error_response(version, now, audit_failure())),
            Err(e) => {
                tracing::error!(error = %e, "request handler failed");
                seal(error_response(
                    version,
                    now,
                    Failure::new(rr::GENERAL_FAILURE, "internal error"),
                ))
            }
        }
    }
}

/// Runs the request only if the audit journal is writable, encodes the response (Response
/// Too Large if it exceeds the client's Maximum Response Size), and returns it only once the
/// records of what the client will be told are durable: an error means the client must get
/// the audit failure, not the response.
fn audited_dispatch(
    ctx: &Ctx,
    who: &Principal,
    msg: &RequestMessage,
    version: ProtocolVersion,
    now: i64,
    base: AuditEvent,
) -> Result<Zeroizing<Vec<u8>>, AuditError> {
    let started = std::time::Instant::now();
    ctx.audit.ready()?;
    let audit_scope = ctx.store.audit_scope();
    let (mut items, access) = ops::dispatch_recorded(ctx, who, msg, now);
    let mut bytes = seal(encode_response(version, now, &items));
    let mut performed_unanswered = Vec::new();
    if msg
        .header
        .max_response_size
        .is_some_and(|max| bytes.len() > max)
    {
        // The items ran and their changes are committed: only the answer is refused. Their
        // records must still say so and name what they wrote (a Create's new object is named
        // only in its answer), or a client could make a change the journal never names.
        performed_unanswered = items
            .iter()
            .map(|i| i.result.is_ok() && !i.undone)
            .collect();
        items = too_large(&items);
        bytes = seal(encode_response(version, now, &items));
    }
    let answered = Answered {
        items: &items,
        access: &access,
        performed_unanswered: &performed_unanswered,
        started,
        durability: durability_of(msg, &audit_scope),
    };
    record_answered(ctx, msg, &base, answered)?;
    audit_scope.recorded();
    Ok(bytes)
}

/// Runs `msg` for `who` exactly as the KMIP listener runs a request (the same dispatcher,
/// access checks, dual control and audit records), for in-process front ends such as the
/// management console: the response items, returned only once their audit records are
/// durable. `base` names the front end's connection (event, addresses, identity).
pub(crate) fn dispatch_audited(
    ctx: &Ctx,
    who: &Principal,
    msg: &RequestMessage,
    now: i64,
    base: AuditEvent,
) -> Result<Vec<ResponseItem>, AuditError> {
    let started = std::time::Instant::now();
    ctx.audit.ready()?;
    let audit_scope = ctx.store.audit_scope();
    let (items, access) = ops::dispatch_recorded(ctx, who, msg, now);
    let answered = Answered {
        items: &items,
        access: &access,
        performed_unanswered: &[],
        started,
        durability: durability_of(msg, &audit_scope),
    };
    record_answered(ctx, msg, &base, answered)?;
    audit_scope.recorded();
    Ok(items)
}

/// What a dispatched request came to, for its audit records.
struct Answered<'a> {
    /// The response items as the client is told them.
    items: &'a [ResponseItem],
    /// Every access decision taken.
    access: &'a [ops::AccessRecord],
    /// Per item: performed, but its answer was replaced by Response Too Large.
    performed_unanswered: &'a [bool],
    started: std::time::Instant,
    /// Whether the response waits for the records' sync (see [`durability_of`]).
    durability: Durability,
}

/// A request that only read (every item a read operation, nothing committed) may be answered
/// before its records are synced (`[audit] sync = "by-class"`); any other waits for them.
fn durability_of(msg: &RequestMessage, scope: &AuditScope) -> Durability {
    if is_read(msg) && !scope.changed_anything() {
        Durability::Deferred
    } else {
        Durability::Synced
    }
}

/// Records one audit event per batch item (with why access was denied and whether a
/// performed item went unanswered) and counts the request in the metrics.
fn record_answered(
    ctx: &Ctx,
    msg: &RequestMessage,
    base: &AuditEvent,
    a: Answered<'_>,
) -> Result<(), AuditError> {
    let elapsed = u64::try_from(a.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut events = AuditEvent::for_items(base, msg.header.version, &msg.items, a.items, elapsed);
    // Why access was denied (or granted only as an administrator): the item's last, most
    // specific decision (on the object, when there was one).
    for record in a.access {
        if let Some(e) = events.get_mut(record.item) {
            e.detail = record.decision.reason.audit_detail();
        }
    }
    for (e, _) in events
        .iter_mut()
        .zip(a.performed_unanswered)
        .filter(|(_, performed)| **performed)
    {
        e.detail = Some(
            "performed (its changes are committed); only its answer was over the client's \
             Maximum Response Size"
                .into(),
        );
    }
    AuditEvent::fill_names(&mut events, |uid| ctx.store.first_name(uid).ok().flatten());
    ctx.audit.record_as(events, a.durability)?;
    // The one place every dispatched request ends: counted once the client's answer is final.
    // An undone item left nothing behind: it counts as a failure.
    let outcomes = a
        .items
        .iter()
        .map(|i| (i.operation, i.result.is_ok() && !i.undone));
    ctx.metrics.request_finished(outcomes, a.started.elapsed());
    Ok(())
}

/// Operations that never change state: a request made only of these, that committed nothing,
/// is a read, whose audit record may wait for its fdatasync (`[audit] sync = "by-class"`).
/// Kept to operations that cannot consume anything (cryptographic operations may count usage).
const READ_OPERATIONS: [u32; 6] = [
    operation::GET,
    operation::GET_ATTRIBUTES,
    operation::GET_ATTRIBUTE_LIST,
    operation::LOCATE,
    operation::QUERY,
    operation::DISCOVER_VERSIONS,
];

/// Whether every item of `msg` is a read operation.
fn is_read(msg: &RequestMessage) -> bool {
    msg.items
        .iter()
        .all(|i| READ_OPERATIONS.contains(&i.operation))
}

/// The answer when the audit journal cannot be written (fail closed).
fn audit_failure() -> Failure {
    Failure::new(rr::GENERAL_FAILURE, "audit journal unavailable")
}

/// A response's wire bytes, wiped when dropped.
fn seal(response: Ttlv) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(response.encode())
}

/// The items when the real response exceeds the client's Maximum Response Size: every item
/// fails with Response Too Large.
fn too_large(items: &[ResponseItem]) -> Vec<ResponseItem> {
    items
        .iter()
        .map(|i| {
            let mut failure = Failure::new(rr::RESPONSE_TOO_LARGE, "response too large");
            // The object a performed item acted on (a new one is named only in its answer),
            // for its audit record; never sent to the client.
            failure.written = match &i.result {
                // A Locate answer lists many objects: naming the first would mislead.
                Ok(Some(payload))
                    if !i.undone && i.operation != Some(crate::kmip::enums::operation::LOCATE) =>
                {
                    payload
                        .child(crate::ttlv::Tag::UNIQUE_IDENTIFIER)
                        .and_then(Ttlv::as_text)
                        .map(str::to_owned)
                }
                _ => None,
            };
            ResponseItem {
                operation: i.operation,
                batch_id: i.batch_id.clone(),
                result: Err(failure),
                undone: false,
            }
        })
        .collect()
}

/// SHA-256 of the client certificate presented on `tls`, hex.
fn peer_cert_sha256(tls: &TlsStream<TcpStream>) -> Option<String> {
    let (_, session) = tls.get_ref();
    let cert = session.peer_certificates()?.first()?;
    Some(hex::encode(crate::crypto::backend::prim::digest::digest(
        &crate::crypto::backend::prim::digest::SHA256,
        cert.as_ref(),
    )))
}

/// Whether the client certificate is within its validity period. A full handshake has
/// checked that already; a resumed one has not (rustls carries the certificate of the full
/// handshake forward, and every resumption may be given a new ticket), so without this check
/// a client could keep an expired certificate working by reconnecting.
pub(crate) fn certificate_current(tls: &TlsStream<TcpStream>) -> bool {
    let (_, session) = tls.get_ref();
    if session.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
        return true;
    }
    let Some(cert) = session.peer_certificates().and_then(|c| c.first()) else {
        return false;
    };
    x509_parser::parse_x509_certificate(cert.as_ref())
        .map(|(_, c)| c.validity().is_valid())
        .unwrap_or(false)
}

/// The client's principal and its certificate's issuer name.
fn principal_of(tls: &TlsStream<TcpStream>) -> Result<(Principal, String), String> {
    let (_, session) = tls.get_ref();
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no client certificate")?;
    let who = identity::principal_from_der(cert.as_ref()).map_err(|e| e.to_string())?;
    let issuer = identity::issuer_of(cert.as_ref()).unwrap_or_default();
    Ok((who, issuer))
}

/// Reads one whole frame: waits up to the idle deadline for its first bytes, then gives the
/// rest of the 8-byte header and the body the frame deadline (a client that starts a request
/// and stalls is cut off then, not after the much longer idle time). The length is checked
/// against the limit before anything is allocated. `Ok(None)` is a clean close between
/// requests.
async fn read_frame(
    tls: &mut TlsStream<TcpStream>,
    limits: &ConnLimits,
) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let mut header = [0u8; 8];
    let n = match timeout(limits.idle_timeout, tls.read(&mut header)).await {
        Err(_) => return Err("idle timeout".into()),
        Ok(Err(e)) => return Err(format!("read failed: {e}")),
        Ok(Ok(0)) => return Ok(None),
        Ok(Ok(n)) => n,
    };
    let deadline = tokio::time::Instant::now() + limits.frame_timeout;
    match timeout_at(deadline, tls.read_exact(&mut header[n..])).await {
        Err(_) => return Err("request header not received within the frame timeout".into()),
        Ok(Err(e)) => return Err(format!("truncated request header: {e}")),
        Ok(Ok(_)) => {}
    }
    let total = ttlv::frame_length(&header, &limits.ttlv).map_err(|e| e.to_string())?;
    let mut frame = Zeroizing::new(vec![0u8; total]);
    frame[..8].copy_from_slice(&header);
    match timeout_at(deadline, tls.read_exact(&mut frame[8..])).await {
        Ok(Ok(_)) => Ok(Some(frame)),
        Ok(Err(e)) => Err(format!("truncated request: {e}")),
        Err(_) => Err("request not received within the frame timeout".into()),
    }
}

/// The protocol version of a request whose TTLV does not decode, read from where a
/// well-formed header keeps it, so the error response is in a version the client parses.
fn peek_version_bytes(frame: &[u8]) -> Option<ProtocolVersion> {
    // Request Message (8) → Request Header (8) → Protocol Version (8) → Major (16) → Minor (16)
    let major = frame.get(24..40)?;
    let minor = frame.get(40..56)?;
    let int = |item: &[u8], tag: [u8; 3]| -> Option<i32> {
        (item[..3] == tag && item[3] == 0x02 && item[4..8] == [0, 0, 0, 4])
            .then(|| i32::from_be_bytes([item[8], item[9], item[10], item[11]]))
    };
    Some(ProtocolVersion::new(
        int(major, [0x42, 0x00, 0x6A])?,
        int(minor, [0x42, 0x00, 0x6B])?,
    ))
}
