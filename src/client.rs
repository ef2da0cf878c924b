//! A small KMIP client over mutual TLS: builds request messages, sends them as TTLV and reads
//! the responses. The `akm key` commands and the integration tests use it; it never opens the
//! database.

use crate::kmip::enums::result_status;
use crate::kmip::ProtocolVersion;
use crate::tls;
use crate::ttlv::{self, Limits, Tag, Ttlv};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The response is not valid TTLV.
    #[error("undecodable response: {0}")]
    Decode(#[from] ttlv::DecodeError),
    /// The response is valid TTLV but not the expected message.
    #[error("unexpected response: {0}")]
    Protocol(String),
    /// The server answered with Operation Failed.
    #[error("operation failed: reason 0x{reason:X}: {message}")]
    Failed {
        /// Result Reason.
        reason: u32,
        /// Result Message.
        message: String,
    },
}

impl ClientError {
    /// The error in plain words with the fix where akm knows one: a TLS alert from the server
    /// means it refused this client's certificate; a certificate error means this client
    /// refused the server's. Other errors as they are.
    pub fn explained(&self) -> String {
        match self {
            // connect_any's summary of every address tried needs no "connection:" prefix.
            ClientError::Io(e) if e.kind() == std::io::ErrorKind::NotConnected => e.to_string(),
            ClientError::Io(e) => explain_io(e).unwrap_or_else(|| self.to_string()),
            other => other.to_string(),
        }
    }

    /// Whether the server was never reached (or never completed a handshake): the connection
    /// or TLS failed, as opposed to a request the server answered.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Io(_))
    }
}

/// A TLS or connection failure put in plain words, when it is one akm can explain.
fn explain_io(e: &std::io::Error) -> Option<String> {
    use rustls::{AlertDescription as A, CertificateError as C};
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        return Some(format!(
            "connection refused ({e}): is `akm serve` running and listening on that address?"
        ));
    }
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let ours = "check the client certificate (--cert, [client] cert): it must be issued by a \
                CA the server trusts (its tls.client_ca), unexpired and not revoked; `akm cert \
                issue` makes one from the development CA";
    Some(match tls {
        rustls::Error::AlertReceived(A::CertificateRevoked) => {
            format!("the server refused this client's certificate: it is revoked; {ours}")
        }
        rustls::Error::AlertReceived(A::CertificateExpired) => {
            format!("the server refused this client's certificate: it has expired; {ours}")
        }
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateUnknown
            | A::UnknownCA
            | A::DecryptError
            | A::AccessDenied
            | A::CertificateRequired
            | A::HandshakeFailure),
        ) => format!("the server refused this client's certificate (TLS alert {alert:?}); {ours}"),
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "the server's certificate is not issued by the CA this client trusts (--ca, \
             [client] ca): check the address is the right server and [client] ca is its CA"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired: renew it (tls.cert on the server)".to_owned()
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "the server's certificate does not name the host this client connected to: connect \
             by a name it carries (akm init puts localhost, 127.0.0.1 and the host name in it; \
             add names with tls.server_names)"
            .to_owned(),
        rustls::Error::InvalidCertificate(other) => {
            format!("this client refused the server's certificate: {other:?}")
        }
        other => format!("TLS failed: {other}"),
    })
}

/// How long [`Client::connect_any`] gives each server.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The addresses in a comma-separated list (`"a:5696, b:5696"`), blanks dropped.
pub fn split_servers(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One batch item's outcome.
pub type ItemResult = Result<Ttlv, ClientError>;

/// A connection to a KMIP server.
pub struct Client {
    stream: TlsStream<TcpStream>,
    /// The protocol version requests are sent in.
    pub version: ProtocolVersion,
}

/// Builds a request message in `version` with one batch item per (operation, payload).
pub fn request(version: ProtocolVersion, items: &[(u32, Vec<Ttlv>)]) -> Ttlv {
    let mut children = vec![Ttlv::structure(
        Tag::REQUEST_HEADER,
        vec![
            version.to_ttlv(),
            Ttlv::integer(Tag::BATCH_COUNT, items.len() as i32),
        ],
    )];
    for (op, payload) in items {
        children.push(Ttlv::structure(
            Tag::BATCH_ITEM,
            vec![
                Ttlv::enumeration(Tag::OPERATION, *op),
                Ttlv::structure(Tag::REQUEST_PAYLOAD, payload.clone()),
            ],
        ));
    }
    Ttlv::structure(Tag::REQUEST_MESSAGE, children)
}

/// The outcome of each batch item of a response: its payload, or its failure.
pub fn response_items(response: &Ttlv) -> Result<Vec<ItemResult>, ClientError> {
    if response.tag != Tag::RESPONSE_MESSAGE {
        return Err(ClientError::Protocol("not a Response Message".into()));
    }
    Ok(response
        .children_with(Tag::BATCH_ITEM)
        .map(|item| {
            let status = item.child(Tag::RESULT_STATUS).and_then(Ttlv::as_enum);
            if status == Some(result_status::SUCCESS) {
                Ok(item
                    .child(Tag::RESPONSE_PAYLOAD)
                    .cloned()
                    .unwrap_or_else(|| Ttlv::structure(Tag::RESPONSE_PAYLOAD, vec![])))
            } else {
                Err(ClientError::Failed {
                    reason: item
                        .child(Tag::RESULT_REASON)
                        .and_then(Ttlv::as_enum)
                        .unwrap_or(0),
                    message: item
                        .child(Tag::RESULT_MESSAGE)
                        .and_then(Ttlv::as_text)
                        .unwrap_or("")
                        .to_owned(),
                })
            }
        })
        .collect())
}

impl Client {
    /// Connects to `addr` (host:port), verifying the server certificate for the host.
    pub async fn connect(
        addr: &str,
        config: Arc<rustls::ClientConfig>,
        version: ProtocolVersion,
    ) -> Result<Client, ClientError> {
        let host = addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(addr);
        let name = tls::server_name(host)?;
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream = TlsConnector::from(config).connect(name, tcp).await?;
        Ok(Client { stream, version })
    }

    /// Whether this connection resumed an earlier TLS session (no full handshake).
    pub fn resumed(&self) -> bool {
        self.stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// Connects to the first of `addrs` that answers: a server that cannot be reached (refused,
    /// timed out, TLS failure) is skipped, so a client fails over to a mirror peer. Only the
    /// connection fails over; a request is never resent to a second server.
    pub async fn connect_any(
        addrs: &[String],
        config: Arc<rustls::ClientConfig>,
        version: ProtocolVersion,
    ) -> Result<Client, ClientError> {
        let mut failures = Vec::new();
        for addr in addrs {
            let attempt = tokio::time::timeout(
                CONNECT_TIMEOUT,
                Client::connect(addr, config.clone(), version),
            )
            .await;
            match attempt {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(e)) => failures.push(format!("{addr}: {}", e.explained())),
                Err(_) => failures.push(format!("{addr}: timed out")),
            }
        }
        if failures.is_empty() {
            failures.push("no server address given".into());
        }
        Err(ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            format!("no server reachable ({})", failures.join("; ")),
        )))
    }

    /// Closes the connection cleanly: TLS close_notify, then the end of the stream, so the
    /// server sees an orderly goodbye rather than a dropped connection.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Sends raw bytes and reads one response message.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<Ttlv, ClientError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        self.read_response().await
    }

    /// Reads one response message.
    pub async fn read_response(&mut self) -> Result<Ttlv, ClientError> {
        let limits = Limits {
            max_message_bytes: 64 * 1024 * 1024,
            ..Limits::default()
        };
        let mut header = [0u8; 8];
        self.stream.read_exact(&mut header).await?;
        let total = ttlv::frame_length(&header, &limits)?;
        let mut frame = zeroize::Zeroizing::new(vec![0u8; total]);
        frame[..8].copy_from_slice(&header);
        self.stream.read_exact(&mut frame[8..]).await?;
        Ok(ttlv::decode(&frame, &limits)?)
    }

    /// Sends a request message and returns the response message.
    pub async fn send(&mut self, request: &Ttlv) -> Result<Ttlv, ClientError> {
        let bytes = zeroize::Zeroizing::new(request.encode());
        self.send_bytes(&bytes).await
    }

    /// Sends several operations in one message and returns each item's outcome.
    pub async fn batch(
        &mut self,
        items: &[(u32, Vec<Ttlv>)],
    ) -> Result<Vec<ItemResult>, ClientError> {
        let response = self.send(&request(self.version, items)).await?;
        response_items(&response)
    }

    /// Runs one operation and returns its Response Payload.
    pub async fn call(&mut self, operation: u32, payload: Vec<Ttlv>) -> Result<Ttlv, ClientError> {
        self.batch(&[(operation, payload)])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("response without batch item".into()))?
    }
}
