//! The mirror connections. The listener accepts peers over mutual TLS, refuses (and records)
//! any certificate that is not a configured peer's or not a peer certificate (serverAuth and
//! clientAuth; the dialer checks the same of the peer it reaches), and applies what the peer
//! pushes. One
//! pusher per peer connects out, resumes after the sequence number the peer last applied (or
//! sends a snapshot when that part of the log is compacted), streams new changes as they
//! commit, and pings when idle so a dead link is noticed.

use super::apply::{self, to_wire};
use super::events;
use super::proto::{self, AccountRecord, Item, Msg, ProtoError, PROTOCOL};
use super::Mirror;
use crate::config::mirror::{MirrorConfig, PeerConfig};
use crate::identity::principal_from_der;
use crate::store::{AccountKind, CertRevocation, ChangeEntry, REVOCATION_ENTITY};
use crate::tls::{self, TlsError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

/// How long a handshake or a hello may take.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// How long a pusher waits for an acknowledgement.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// A pusher with nothing to send pings this often.
const PING_EVERY: Duration = Duration::from_secs(1);
/// A receiver that hears nothing for this long drops the connection.
const RECEIVE_IDLE: Duration = Duration::from_secs(10);
/// Changes read from the log at a time.
const BATCH: usize = 256;
/// How often the listener checks whether a summary of refused connections is due.
const SUMMARY_CHECK_EVERY: Duration = Duration::from_secs(5);

/// The TLS configurations of both directions.
pub(super) struct Tls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl Tls {
    /// Loads the mirror certificate, key and CA.
    pub(super) fn load(config: &MirrorConfig) -> Result<Arc<Tls>, TlsError> {
        let (cert, key, ca) = (
            config.cert.clone().unwrap_or_default(),
            config.key.clone().unwrap_or_default(),
            config.ca.clone().unwrap_or_default(),
        );
        let no_crls: &[std::path::PathBuf] = &[];
        Ok(Arc::new(Tls {
            server: crate::server::tls::server_config(&cert, &key, &ca, no_crls)?,
            client: tls::client_config(&cert, &key, &ca)?,
        }))
    }
}

/// Why a mirror connection ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Refused(String),
    #[error("unexpected message from peer")]
    Unexpected,
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("apply: {0}")]
    Apply(#[from] apply::ApplyError),
    #[error("cannot read local key material: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("internal task failed")]
    Join,
}

async fn within<T, E: Into<LinkError>>(
    limit: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, LinkError> {
    match timeout(limit, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(LinkError::Timeout(what)),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LinkError> + Send + 'static,
) -> Result<T, LinkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| LinkError::Join)?
}

/// What the other end of a mirror connection presented.
struct Presented {
    cn: String,
    fingerprint: String,
    /// Whether it is a peer certificate: extended key usages serverAuth and clientAuth both
    /// (an ordinary client certificate has clientAuth only).
    peer_eku: bool,
}

/// Why a certificate without both extended key usages is refused.
const NOT_A_PEER_CERTIFICATE: &str = "certificate is not a mirror peer certificate (it needs \
     extended key usages serverAuth and clientAuth, as `akm cert peer` issues)";

/// The CN, SHA-256 fingerprint and key usages of the certificate the other end presented.
fn presented(certs: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Presented {
    let Some(der) = certs.and_then(|c| c.first()) else {
        return Presented {
            cn: "-".into(),
            fingerprint: "-".into(),
            peer_eku: false,
        };
    };
    let (cn, fingerprint) = match principal_from_der(der) {
        Ok(p) => (p.cn, p.fingerprint),
        Err(_) => ("-".into(), hex::encode(crate::crypto::sha256(der))),
    };
    Presented {
        cn,
        fingerprint,
        peer_eku: has_peer_eku(der),
    }
}

/// Whether a DER certificate lists both serverAuth and clientAuth as extended key usages.
fn has_peer_eku(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::prelude::parse_x509_certificate(der) else {
        return false;
    };
    matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.server_auth && eku.value.client_auth)
}

/// The configured peer whose certificate this is, or why there is none.
fn identify<'a>(peers: &'a [PeerConfig], who: &Presented) -> Result<&'a PeerConfig, &'static str> {
    if !who.peer_eku {
        return Err(NOT_A_PEER_CERTIFICATE);
    }
    peers
        .iter()
        .find(|p| p.matches(&who.fingerprint, &who.cn))
        .ok_or("certificate is not a configured peer")
}

// ---------------------------------------------------------------- receiving side

/// Accepts peer connections until shutdown.
pub(super) async fn accept_loop(
    listener: TcpListener,
    tls: Arc<Tls>,
    mirror: Arc<Mirror>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut summarise = tokio::time::interval(SUMMARY_CHECK_EVERY);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = summarise.tick() => {
                mirror.summarise_refusals(false);
                continue;
            }
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "mirror accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => {
                mirror.summarise_refusals(true);
                return;
            }
        };
        let (tls, mirror, shutdown) = (tls.clone(), mirror.clone(), shutdown.clone());
        tokio::spawn(async move {
            receive(tcp, remote, tls, mirror, shutdown).await;
        });
    }
}

async fn receive(
    tcp: TcpStream,
    remote: std::net::SocketAddr,
    tls: Arc<Tls>,
    mirror: Arc<Mirror>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let mut stream = match timeout(HANDSHAKE, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = format!("TLS handshake failed: {e}");
            events::refused(&mirror, Some(remote), "-", "-", &reason);
            return;
        }
        Err(_) => {
            events::refused(&mirror, Some(remote), "-", "-", "TLS handshake timed out");
            return;
        }
    };
    let who = presented(stream.get_ref().1.peer_certificates());
    let (cn, fingerprint) = (who.cn.clone(), who.fingerprint.clone());
    let peer = match identify(&mirror.config.peers, &who) {
        Ok(peer) => peer.clone(),
        Err(why) => {
            events::refused(&mirror, Some(remote), &cn, &fingerprint, why);
            let reason = "certificate is not a configured mirror peer".to_string();
            let refused = Msg::Refused {
                reason,
                settings: None,
            };
            let _ = proto::write_msg(&mut stream, &refused).await;
            return;
        }
    };
    let node = peer.node_id.clone();
    let result = tokio::select! {
        r = serve_peer(stream, remote, &cn, &fingerprint, &peer, &mirror) => r,
        _ = shutdown.changed() => Ok(()),
    };
    if let Err(e) = &result {
        mirror.with_peer(&node, |p| p.last_error = Some(format!("inbound: {e}")));
    }
    if let Err(e) = result {
        tracing::info!(peer = %node, %remote, error = %e, "mirror inbound connection ended");
    }
}

type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;
type Incoming = tokio::sync::mpsc::Receiver<Result<Msg, ProtoError>>;

/// Reads messages into a channel, so the receiver can take every change already sent in one
/// go and apply them in one transaction.
fn read_into_channel(
    mut rd: tokio::io::ReadHalf<ServerStream>,
) -> (Incoming, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel(BATCH);
    let task = tokio::spawn(async move {
        loop {
            let msg = proto::read_msg(&mut rd).await;
            let end = msg.is_err();
            if tx.send(msg).await.is_err() || end {
                return;
            }
        }
    });
    (rx, task)
}

async fn next_msg(incoming: &mut Incoming, limit: Duration) -> Result<Msg, LinkError> {
    let msg = timeout(limit, incoming.recv())
        .await
        .map_err(|_| LinkError::Timeout("waiting for the peer"))?;
    match msg {
        Some(m) => Ok(m?),
        None => Err(LinkError::Timeout("peer closed the connection")),
    }
}

async fn serve_peer(
    stream: ServerStream,
    remote: std::net::SocketAddr,
    cn: &str,
    fingerprint: &str,
    peer: &PeerConfig,
    mirror: &Arc<Mirror>,
) -> Result<(), LinkError> {
    let (rd, mut wr) = tokio::io::split(stream);
    let (mut incoming, reader) = read_into_channel(rd);
    let _reader = AbortOnDrop(reader);
    let node = peer.node_id.clone();
    let theirs = match next_msg(&mut incoming, HANDSHAKE).await? {
        Msg::Hello {
            proto,
            node: n,
            settings,
            head,
        } if proto == PROTOCOL && n == node => {
            mirror.with_peer(&node, |p| p.peer_head = p.peer_head.max(head));
            settings
        }
        Msg::Hello { proto, node: n, .. } => {
            let reason = format!(
                "hello from node {n:?} speaking protocol {proto}; expected node {node:?}, protocol {PROTOCOL}"
            );
            events::refused(mirror, Some(remote), cn, fingerprint, &reason);
            let refused = Msg::Refused {
                reason: reason.clone(),
                settings: None,
            };
            proto::write_msg(&mut wr, &refused).await?;
            return Err(LinkError::Refused(reason));
        }
        _ => return Err(LinkError::Unexpected),
    };
    // The settings this link is agreed under: a reload that changes ours ends the link, and
    // the peer's next hello compares them again.
    let agreed = mirror.settings();
    let differ = mirror.compare_settings(&node, &theirs);
    if !differ.is_empty() {
        let reason = settings_reason(&differ);
        let refused = Msg::Refused {
            reason: reason.clone(),
            settings: Some((*agreed).clone()),
        };
        proto::write_msg(&mut wr, &refused).await?;
        return Err(LinkError::Refused(reason));
    }
    let store_mirror = mirror.clone();
    let n = node.clone();
    let applied = blocking(move || Ok(store_mirror.ctx.store.applied_seq(&n)?)).await?;
    let welcome = Msg::Welcome {
        proto: PROTOCOL,
        node: mirror.node_id().to_owned(),
        applied,
        settings: (*agreed).clone(),
        head: *mirror.head.borrow(),
    };
    proto::write_msg(&mut wr, &welcome).await?;
    mirror.with_peer(&node, |p| p.applied = applied);
    let _open = InboundOpen::new(mirror, &node);
    let mut applied = applied;
    let mut pending: Option<Msg> = None;
    loop {
        let msg = match pending.take() {
            Some(m) => m,
            None => next_msg(&mut incoming, RECEIVE_IDLE).await?,
        };
        settings_unchanged(mirror, &agreed)?;
        match msg {
            Msg::Change { .. } | Msg::Snapshot { .. } => {
                // Take every change already received (up to a batch) into one transaction.
                let mut batch = Vec::new();
                let mut head = None;
                let mut next = Some(msg);
                while let Some(m) = next.take() {
                    match m {
                        Msg::Change { seq, head: h, item } => {
                            head = Some(h);
                            batch.push((Some(seq), item));
                        }
                        Msg::Snapshot { item } => batch.push((None, item)),
                        other => {
                            pending = Some(other);
                            break;
                        }
                    }
                    if batch.len() < BATCH {
                        next = match incoming.try_recv() {
                            Ok(m) => Some(m?),
                            Err(_) => None,
                        };
                    }
                }
                let last = batch.iter().filter_map(|(seq, _)| *seq).max();
                apply_items(mirror, &node, batch).await?;
                if let Some(seq) = last {
                    applied = applied.max(seq);
                    mirror.with_peer(&node, |p| {
                        p.applied = applied;
                        p.peer_head = head.unwrap_or(p.peer_head);
                        p.last_applied_unix = crate::clock::now_secs();
                    });
                    proto::write_msg(&mut wr, &Msg::Ack { seq }).await?;
                }
            }
            Msg::SnapshotEnd { upto } => {
                let (m, n) = (mirror.clone(), node.clone());
                blocking(move || {
                    Ok(m.ctx
                        .store
                        .write_replica(move |tx| tx.set_applied(&n, upto))?)
                })
                .await?;
                applied = applied.max(upto);
                mirror.with_peer(&node, |p| {
                    p.applied = applied;
                    p.peer_head = p.peer_head.max(upto);
                    p.last_applied_unix = crate::clock::now_secs();
                });
                proto::write_msg(&mut wr, &Msg::Ack { seq: upto }).await?;
            }
            Msg::Ping { head, done } => {
                mirror.with_peer(&node, |p| {
                    p.peer_head = head;
                    p.applied = p.applied.max(done);
                });
                proto::write_msg(&mut wr, &Msg::Ack { seq: applied }).await?;
            }
            _ => return Err(LinkError::Unexpected),
        }
    }
}

/// Why a link is refused when the security settings differ.
fn settings_reason(differ: &[String]) -> String {
    format!(
        "security settings differ in: {}; make them identical on both nodes (reload, or restart \
         for dual_control and crypto.pci_mode)",
        differ.join(", ")
    )
}

/// Ends a link whose agreed settings are no longer this node's (a reload changed them), so
/// the next hello compares them again.
fn settings_unchanged(
    mirror: &Mirror,
    agreed: &crate::settings_digest::SettingsDigest,
) -> Result<(), LinkError> {
    if *mirror.settings() == *agreed {
        return Ok(());
    }
    Err(LinkError::Refused(
        "this node's security settings changed; comparing them with the peer again".into(),
    ))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts an accepted inbound connection while it lives: a stale connection (the link was
/// black-holed) may end after its replacement is up, and must not mark the peer down.
struct InboundOpen<'a> {
    mirror: &'a Mirror,
    node: &'a str,
}

impl<'a> InboundOpen<'a> {
    fn new(mirror: &'a Mirror, node: &'a str) -> InboundOpen<'a> {
        mirror.with_peer(node, |p| {
            p.inbound_connections += 1;
            p.inbound_connected = true;
        });
        InboundOpen { mirror, node }
    }
}

impl Drop for InboundOpen<'_> {
    fn drop(&mut self) {
        self.mirror.with_peer(self.node, |p| {
            p.inbound_connections = p.inbound_connections.saturating_sub(1);
            p.inbound_connected = p.inbound_connections > 0;
        });
    }
}

async fn apply_items(
    mirror: &Arc<Mirror>,
    from: &str,
    items: Vec<(Option<i64>, Item)>,
) -> Result<(), LinkError> {
    let (m, from) = (mirror.clone(), from.to_owned());
    blocking(move || {
        let ctx = &m.ctx;
        let described: Vec<events::Applied> = items.iter().map(|(_, i)| describe(i)).collect();
        let revocations: Vec<Option<CertRevocation>> =
            items.iter().map(|(_, i)| revocation_of(i)).collect();
        let audit_scope = ctx.store.audit_scope();
        let (results, resolutions) = apply::apply_batch(
            &ctx.store,
            &ctx.kek,
            m.node_id(),
            &from,
            items,
            Some(ctx.attribute_limits),
        )?;
        let mut applied = Vec::new();
        for ((outcome, conflict), (what, revocation)) in results
            .into_iter()
            .zip(described.into_iter().zip(revocations))
        {
            if let Some(c) = conflict {
                events::conflict(ctx, &from, &c);
            }
            if outcome == apply::Outcome::Applied {
                if let Some(r) = revocation {
                    // In force for new handshakes and open connections' next requests.
                    ctx.revoked_certs.add(std::slice::from_ref(&r));
                }
                applied.push(what);
            }
        }
        let recorded = events::applied(ctx, &from, &applied);
        if super::resolve::after_resolving(&m, &resolutions) && recorded {
            audit_scope.recorded();
        }
        Ok(())
    })
    .await
}

/// What an item changes, for the `mirror.apply` audit record.
fn describe(item: &Item) -> events::Applied {
    let (entity, id, origin, operation) = match item {
        Item::Object(w) => (
            "object",
            w.uid.clone(),
            w.node.clone(),
            format!("put state {}", w.state),
        ),
        Item::Account {
            entity,
            name,
            record,
            node,
            ..
        } => (
            if entity == "group" { "group" } else { "user" },
            name.clone(),
            node.clone(),
            if record.is_some() { "put" } else { "delete" }.to_owned(),
        ),
        Item::Deleted { uid, node, .. } => ("object", uid.clone(), node.clone(), "delete".into()),
        Item::Revocation {
            issuer,
            serial,
            reason,
            node,
            ..
        } => (
            "revocation",
            format!("{serial}@{issuer}"),
            node.clone(),
            format!("revoke client certificate serial {serial} of issuer {issuer} ({reason})"),
        ),
    };
    events::Applied {
        entity,
        id,
        origin,
        operation,
    }
}

/// The revocation an item carries, if it is one.
fn revocation_of(item: &Item) -> Option<CertRevocation> {
    match item {
        Item::Revocation {
            issuer,
            serial,
            reason,
            revoked_at,
            ..
        } => Some(CertRevocation {
            issuer: issuer.clone(),
            serial: serial.clone(),
            reason: reason.clone(),
            revoked_at: *revoked_at,
        }),
        _ => None,
    }
}

/// A revocation as an item (its stamp: origin `None` is this node).
fn revocation_item(mirror: &Mirror, r: CertRevocation, hlc: i64, origin: Option<String>) -> Item {
    Item::Revocation {
        issuer: r.issuer,
        serial: r.serial,
        reason: r.reason,
        revoked_at: r.revoked_at,
        hlc,
        node: origin.unwrap_or_else(|| mirror.node_id().to_owned()),
    }
}

// ---------------------------------------------------------------- pushing side

/// Pushes this node's changes to `peer` until shutdown, reconnecting after failures.
pub(super) async fn push_loop(
    peer: PeerConfig,
    tls: Arc<Tls>,
    mirror: Arc<Mirror>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = tokio::select! {
            r = push(&peer, &tls, &mirror) => r,
            _ = shutdown.changed() => return,
        };
        let (connected, error) = match result {
            Ok(connected) => (connected, None),
            Err((connected, e)) => (connected, Some(e)),
        };
        mirror.with_peer(&peer.node_id, |p| {
            p.outbound_connected = false;
            if let Some(e) = &error {
                p.last_error = Some(format!("outbound: {e}"));
            }
        });
        if let Some(e) = error {
            tracing::debug!(peer = %peer.node_id, error = %e, "mirror push connection ended");
        }
        backoff = if connected {
            Duration::from_millis(100)
        } else {
            (backoff * 2).min(Duration::from_secs(1))
        };
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One connection's life. The flag says whether the peer accepted us (to reset backoff).
async fn push(
    peer: &PeerConfig,
    tls: &Tls,
    mirror: &Arc<Mirror>,
) -> Result<bool, (bool, LinkError)> {
    let mut stream = connect(peer, tls, mirror).await.map_err(|e| (false, e))?;
    let agreed = mirror.settings();
    let applied = hello(&mut stream, peer, mirror, &agreed)
        .await
        .map_err(|e| (false, e))?;
    mirror.with_peer(&peer.node_id, |p| {
        p.outbound_connected = true;
        p.last_error = None;
    });
    let (rd, wr) = tokio::io::split(stream);
    let mut pusher = Pusher::new(rd, wr, mirror.clone(), &peer.node_id, agreed);
    pusher.run(applied).await.map_err(|e| (true, e))?;
    Ok(true)
}

async fn connect(
    peer: &PeerConfig,
    tls: &Tls,
    mirror: &Mirror,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, LinkError> {
    let tcp = within(HANDSHAKE, "connecting", TcpStream::connect(&peer.address)).await?;
    let _ = tcp.set_nodelay(true);
    let name = tls::server_name(&peer.tls_name()).map_err(|e| LinkError::Refused(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    let stream = within(
        HANDSHAKE,
        "in the TLS handshake",
        connector.connect(name, tcp),
    )
    .await?;
    let who = presented(stream.get_ref().1.peer_certificates());
    // The certificate must be this peer's, not merely some configured peer's.
    let verdict = identify(std::slice::from_ref(peer), &who);
    if let Err(why) = verdict {
        let reason = format!(
            "certificate of {} is not peer {}'s configured certificate: {why}",
            peer.address, peer.node_id
        );
        let remote = stream.get_ref().0.peer_addr().ok();
        events::refused(mirror, remote, &who.cn, &who.fingerprint, &reason);
        return Err(LinkError::Refused(reason));
    }
    Ok(stream)
}

/// Hello/Welcome; returns the last of our sequence numbers the peer applied.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &PeerConfig,
    mirror: &Arc<Mirror>,
    agreed: &crate::settings_digest::SettingsDigest,
) -> Result<i64, LinkError> {
    let hello = Msg::Hello {
        proto: PROTOCOL,
        node: mirror.node_id().to_owned(),
        settings: agreed.clone(),
        head: *mirror.head.borrow(),
    };
    proto::write_msg(stream, &hello).await?;
    match within(HANDSHAKE, "waiting for welcome", proto::read_msg(stream)).await? {
        Msg::Welcome {
            proto,
            node,
            applied,
            settings,
            head,
        } if proto == PROTOCOL && node == peer.node_id => {
            mirror.with_peer(&node, |p| p.peer_head = p.peer_head.max(head));
            // Checked on this side too: a peer must not be fed writes its settings would
            // refuse, whatever it answered.
            let differ = mirror.compare_settings(&node, &settings);
            if !differ.is_empty() {
                return Err(LinkError::Refused(settings_reason(&differ)));
            }
            Ok(applied)
        }
        Msg::Welcome { node, proto, .. } => Err(LinkError::Refused(format!(
            "peer answered as node {node:?} with protocol {proto}"
        ))),
        Msg::Refused {
            reason,
            settings: Some(theirs),
        } => {
            mirror.compare_settings(&peer.node_id, &theirs);
            Err(LinkError::Refused(format!("peer refused: {reason}")))
        }
        Msg::Refused { reason, .. } => Err(LinkError::Refused(format!("peer refused: {reason}"))),
        _ => Err(LinkError::Unexpected),
    }
}

type Stream = tokio_rustls::client::TlsStream<TcpStream>;

/// The pushing half of one connection. Acknowledgements are read by a separate task and
/// arrive on a channel, so waiting for them can be combined with announcing a moving head
/// without ever abandoning a half-read frame.
struct Pusher {
    wr: tokio::io::WriteHalf<Stream>,
    acks: tokio::sync::mpsc::Receiver<Result<Msg, ProtoError>>,
    reader: tokio::task::JoinHandle<()>,
    head: watch::Receiver<i64>,
    mirror: Arc<Mirror>,
    node: String,
    last_ping: tokio::time::Instant,
    /// The settings this link was agreed under.
    agreed: Arc<crate::settings_digest::SettingsDigest>,
}

impl Pusher {
    fn new(
        mut rd: tokio::io::ReadHalf<Stream>,
        wr: tokio::io::WriteHalf<Stream>,
        mirror: Arc<Mirror>,
        node: &str,
        agreed: Arc<crate::settings_digest::SettingsDigest>,
    ) -> Pusher {
        let (tx, acks) = tokio::sync::mpsc::channel(256);
        let reader = tokio::spawn(async move {
            loop {
                let msg = proto::read_msg(&mut rd).await;
                let end = msg.is_err();
                if tx.send(msg).await.is_err() || end {
                    return;
                }
            }
        });
        Pusher {
            wr,
            acks,
            reader,
            head: mirror.head.subscribe(),
            mirror,
            node: node.to_owned(),
            last_ping: tokio::time::Instant::now(),
            agreed,
        }
    }

    async fn send(&mut self, msg: &Msg) -> Result<(), LinkError> {
        Ok(proto::write_msg(&mut self.wr, msg).await?)
    }

    async fn run(&mut self, applied: i64) -> Result<(), LinkError> {
        let mut pos = applied;
        self.mirror.set_acked(&self.node, pos);
        let m = self.mirror.clone();
        let (complete, newest) = blocking(move || {
            Ok((
                m.ctx.store.log_complete_after(pos)?,
                m.ctx.store.last_change_seq()?,
            ))
        })
        .await?;
        // Entries after the peer's resume point were compacted away, or the peer has applied
        // more than this log holds (this node's database was replaced): send a snapshot.
        if !complete || pos > newest {
            pos = self.snapshot().await?;
            self.mirror.set_acked(&self.node, pos);
        }
        loop {
            settings_unchanged(&self.mirror, &self.agreed)?;
            self.head.borrow_and_update();
            let m = self.mirror.clone();
            let (entries, newest) = blocking(move || {
                let entries = m.ctx.store.changes_after(pos, BATCH)?;
                Ok((entries, m.ctx.store.last_change_seq()?))
            })
            .await?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                self.mirror.set_acked(&self.node, pos);
                self.idle(newest, pos).await?;
                continue;
            };
            let msgs = build_changes(&self.mirror, entries, newest).await?;
            let want = msgs.iter().filter_map(change_seq).max();
            for msg in &msgs {
                self.send(msg).await?;
            }
            drop(msgs);
            if let Some(want) = want {
                self.wait_ack(want, pos).await?;
            }
            pos = last;
            self.mirror.set_acked(&self.node, pos);
        }
    }

    /// Waits for new commits; pings when none come so a dead link is noticed.
    async fn idle(&mut self, newest: i64, done: i64) -> Result<(), LinkError> {
        tokio::select! {
            _ = self.head.changed() => Ok(()),
            _ = tokio::time::sleep(PING_EVERY) => {
                self.send(&Msg::Ping { head: newest, done }).await?;
                self.wait_ack(i64::MIN, done).await
            }
        }
    }

    /// Waits for an acknowledgement of `want`. Meanwhile tells the peer (at most every
    /// 100 ms) how far our head has moved, so it can report how far behind it is. Gives up
    /// when the peer acknowledges nothing for [`ACK_WAIT`].
    async fn wait_ack(&mut self, want: i64, done: i64) -> Result<(), LinkError> {
        let mut deadline = tokio::time::Instant::now() + ACK_WAIT;
        loop {
            tokio::select! {
                msg = self.acks.recv() => match msg {
                    Some(Ok(Msg::Ack { seq })) if seq >= want => return Ok(()),
                    Some(Ok(Msg::Ack { .. })) => {
                        deadline = tokio::time::Instant::now() + ACK_WAIT;
                    }
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(_)) => return Err(LinkError::Unexpected),
                    None => return Err(LinkError::Timeout("peer closed the connection")),
                },
                changed = self.head.changed() => {
                    if changed.is_ok() && self.last_ping.elapsed() >= Duration::from_millis(100) {
                        self.last_ping = tokio::time::Instant::now();
                        let head = *self.head.borrow();
                        self.send(&Msg::Ping { head, done }).await?;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(LinkError::Timeout("waiting for an acknowledgement"));
                }
            }
        }
    }

    /// Sends every object and every user and group record (the peer's resume point was compacted
    /// away); returns the sequence
    /// number the snapshot covers.
    async fn snapshot(&mut self) -> Result<i64, LinkError> {
        let m = self.mirror.clone();
        let (upto, uids) =
            blocking(move || Ok((m.ctx.store.last_change_seq()?, m.ctx.store.all_uids()?))).await?;
        tracing::info!(peer = %self.node, objects = uids.len(), upto, "mirror: sending a snapshot");
        let m = self.mirror.clone();
        let accounts = blocking(move || {
            let mut items = Vec::new();
            for kind in [AccountKind::User, AccountKind::Group] {
                for name in m.ctx.store.account_names(kind)? {
                    items.push(account_item(&m, kind, &name)?);
                }
            }
            // Every revocation, so a peer that catches up by snapshot misses none.
            for r in m.ctx.store.cert_revocations()? {
                if let Some((r, hlc, origin)) = m.ctx.store.cert_revocation(&r.id())? {
                    items.push(revocation_item(&m, r, hlc, origin));
                }
            }
            Ok(items)
        })
        .await?;
        for item in accounts {
            self.send(&Msg::Snapshot { item }).await?;
        }
        for chunk in uids.chunks(64) {
            let (m, chunk) = (self.mirror.clone(), chunk.to_vec());
            let items = blocking(move || {
                let mut items = Vec::with_capacity(chunk.len());
                for uid in &chunk {
                    if let Some(obj) = m.ctx.store.replica_object(uid)? {
                        let wire = to_wire(obj, &m.ctx.kek, m.node_id())?;
                        items.push(Item::Object(Box::new(wire)));
                    }
                }
                Ok(items)
            })
            .await?;
            for item in items {
                self.send(&Msg::Snapshot { item }).await?;
            }
        }
        self.send(&Msg::SnapshotEnd { upto }).await?;
        self.wait_ack(upto, 0).await?;
        Ok(upto)
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn account_item(mirror: &Mirror, kind: AccountKind, name: &str) -> Result<Item, LinkError> {
    let a = mirror.ctx.store.replica_account(kind, name)?;
    Ok(Item::Account {
        entity: kind.as_str().to_owned(),
        name: name.to_owned(),
        record: a.record.map(|(enabled, operations)| AccountRecord {
            enabled,
            operations,
        }),
        hlc: a.hlc,
        node: a.origin.unwrap_or_else(|| mirror.node_id().to_owned()),
    })
}

fn change_seq(m: &Msg) -> Option<i64> {
    match m {
        Msg::Change { seq, .. } => Some(*seq),
        _ => None,
    }
}

/// The messages for a batch of log entries: this node's own changes (never the other ones
/// applied from peers, which would echo), each object once, at its latest entry. Revocations
/// are the exception: they are relayed whatever their origin, so one reaches every node even
/// if the node that made it is lost before pushing it to all; a node that already has one
/// logs nothing when it arrives again, so relaying ends there.
async fn build_changes(
    mirror: &Arc<Mirror>,
    entries: Vec<ChangeEntry>,
    head: i64,
) -> Result<Vec<Msg>, LinkError> {
    let mut latest: HashMap<(String, String), ChangeEntry> = HashMap::new();
    let pushed = |e: &ChangeEntry| e.origin.is_none() || e.entity == REVOCATION_ENTITY;
    for e in entries.into_iter().filter(pushed) {
        latest.insert((e.entity.clone(), e.uid.clone()), e);
    }
    let mut wanted: Vec<ChangeEntry> = latest.into_values().collect();
    wanted.sort_by_key(|e| e.seq);
    let m = mirror.clone();
    blocking(move || {
        wanted
            .into_iter()
            .map(|e| {
                let item = item_for(&m, &e.entity, &e.uid, e.hlc)?;
                Ok(Msg::Change {
                    seq: e.seq,
                    head,
                    item,
                })
            })
            .collect()
    })
    .await
}

/// The current version of a record as an item (blocking). New kinds of mirrored records
/// (change-log entities) are added here, in `apply`, and in the snapshot.
fn item_for(mirror: &Mirror, entity: &str, uid: &str, hlc: i64) -> Result<Item, LinkError> {
    let ctx = &mirror.ctx;
    let kind = match entity {
        "user" => Some(AccountKind::User),
        "group" => Some(AccountKind::Group),
        _ => None,
    };
    if let Some(kind) = kind {
        return account_item(mirror, kind, uid);
    }
    if entity == REVOCATION_ENTITY {
        return match ctx.store.cert_revocation(uid)? {
            Some((r, hlc, origin)) => Ok(revocation_item(mirror, r, hlc, origin)),
            // Rows are never deleted; a missing one means a damaged database.
            None => Err(LinkError::Refused(format!(
                "revocation {uid} is in the change log but not in the database"
            ))),
        };
    }
    Ok(match ctx.store.replica_object(uid)? {
        Some(obj) => Item::Object(Box::new(to_wire(obj, &ctx.kek, mirror.node_id())?)),
        None => Item::Deleted {
            uid: uid.to_owned(),
            hlc,
            node: mirror.node_id().to_owned(),
        },
    })
}
