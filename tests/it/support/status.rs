//! Runs the real status listener in-process on 127.0.0.1:0 beside a [`TestServer`] (same CA,
//! same context, so KMIP requests move its counters), and a small HTTPS client that sends raw
//! request bytes and returns what came back.

use super::server::TestServer;
use akm::status::snapshot::Source;
use akm::status::{self, Settings};
use rustls::RootCertStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// The administrators' group of test status listeners: a certificate in it sees users and
/// objects on the page.
pub const ADMIN_GROUP: &str = "admins";

/// A running status listener.
pub struct StatusListener {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for StatusListener {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the status listener for `server`. With `require`, clients need a certificate of
/// the server's CA in one of `groups` (as when `status.listen` is not loopback).
pub async fn start(server: &TestServer, require: bool, groups: &[&str]) -> StatusListener {
    start_limited(server, require, groups, 8).await
}

/// Like [`start`], with at most `max_connections` connections at once.
pub async fn start_limited(
    server: &TestServer,
    require: bool,
    groups: &[&str],
    max_connections: usize,
) -> StatusListener {
    let cert = server
        .ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(server.ca.cert_der().clone()).unwrap();
    let tls = status::server_config_from(
        vec![cert.cert_der().unwrap()],
        cert.key_der().unwrap(),
        roots,
        vec![],
        require,
    )
    .unwrap();
    // No caching: each test request sees the store as it is.
    let source = Arc::new(Source::new(server.ctx.clone(), None, Duration::ZERO));
    let settings = Settings {
        require_client_cert: require,
        allowed_groups: groups.iter().map(|g| g.to_string()).collect(),
        max_connections,
        header_timeout: Duration::from_secs(2),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let tls = Arc::new(akm::server::tls::TlsHandle::new(tls));
    tokio::spawn(status::serve(listener, tls, source, settings, async {
        let _ = stopped.await;
    }));
    StatusListener {
        addr,
        stop: Some(stop),
    }
}

/// A client TLS configuration trusting `server`'s CA, presenting no certificate.
pub fn anonymous_tls(server: &TestServer) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(server.ca.cert_der().clone()).unwrap();
    let provider = akm::crypto::backend::tls_provider();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// What came back for one request.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `request` (raw bytes) over TLS and reads the reply to the end of the connection.
pub async fn raw(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    request: &[u8],
) -> std::io::Result<Reply> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut io = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    io.write_all(request).await?;
    io.flush().await?;
    let mut bytes = Vec::new();
    io.read_to_end(&mut bytes).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    Ok(Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// `GET path` without a client certificate.
pub async fn get(server: &TestServer, listener: &StatusListener, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    raw(listener.addr, anonymous_tls(server), request.as_bytes())
        .await
        .unwrap()
}
