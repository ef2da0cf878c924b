//! Who counts as a mirror peer (akm issue 16, finding 4), over real `akm serve` processes and
//! real TLS: a peer must be identified by something an ordinary client cannot hold (a pinned
//! fingerprint, or a CN under a dedicated mirror CA) and present a peer certificate
//! (serverAuth and clientAuth), on the listening and on the dialing side. A CN-only peer under
//! the client CA is refused at start. A flood of refused connections gives a handful of log
//! lines and a summary, not one line each (finding 10).

use crate::support::cluster::{create_key, eventually, Cluster, Options, PeerIdentity};
use akm::mirror::proto::{self, Msg, PROTOCOL};
use akm::pki::{Issued, Validity};
use akm::server::tls;
use akm::tls::{client_config_from, server_name};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_akm");

/// Whether every node's pushers are connected.
fn all_connected(c: &Cluster) -> bool {
    eventually(Duration::from_secs(15), || {
        c.nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.peers.iter().all(|p| p.outbound_connected))
        })
    })
}

/// Connects to a mirror listener with `cert` (trusting `trust`), says hello as `node`, and
/// returns the answer: `Err` when the handshake or the read failed.
async fn hello_as(
    addr: SocketAddr,
    cert: &Issued,
    trust: &akm::pki::Ca,
    node: &str,
) -> Result<Msg, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.cert_der().clone()).unwrap();
    let config = client_config_from(
        vec![cert.cert_der().unwrap()],
        cert.key_der().unwrap(),
        roots,
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = server_name("localhost").unwrap();
    let mut s = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let hello = Msg::Hello {
        proto: PROTOCOL,
        node: node.into(),
        settings: Default::default(),
        head: 0,
    };
    let _ = proto::write_msg(&mut s, &hello).await;
    proto::read_msg(&mut s).await.map_err(|e| e.to_string())
}

/// Refused: the handshake or the read failed, or the answer is `Refused`; never a welcome.
fn assert_refused(answer: Result<Msg, String>, who: &str) {
    match answer {
        Err(_) | Ok(Msg::Refused { .. }) => {}
        Ok(other) => panic!("{who} was answered {other:?}"),
    }
}

/// An ordinary client certificate, as `akm cert issue --cn <cn> --ou HR` issues it.
fn client_cert(ca: &akm::pki::Ca, cn: &str) -> Issued {
    ca.issue_client(cn, &["HR".into()], Validity::days_from_now(1))
        .unwrap()
}

#[test]
fn a_cn_only_peer_under_the_client_ca_is_refused_at_start_naming_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::write_config(dir.path());
    let base = std::fs::read_to_string(&config).unwrap();
    let init = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let serve = |mirror: &str| {
        std::fs::write(&config, format!("{base}{mirror}")).unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let section = "[mirror]\nnode_id = \"a\"\nlisten = \"127.0.0.1:0\"\n";
    let pinned = format!(
        "[[mirror.peers]]\nnode_id = \"b\"\naddress = \"127.0.0.1:1\"\nfingerprint = \"{}\"\n",
        "ab".repeat(32)
    );
    let cn_only = "[[mirror.peers]]\nnode_id = \"c\"\naddress = \"127.0.0.1:2\"\ncn = \"akm-c\"\n";
    // The mirror CA defaults to the client CA: refused when the config is read.
    let (code, err) = serve(&format!("{section}{pinned}{cn_only}"));
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("`mirror.peers[2].cn`"), "{err}");
    assert!(
        err.contains("fingerprint") && err.contains("mirror.ca") && err.contains("dedicated"),
        "{err}"
    );
    // A copy of the client CA under another name is the same CA: refused at start.
    std::fs::copy(
        dir.path().join("certs/ca.crt"),
        dir.path().join("certs/mirror-ca.crt"),
    )
    .unwrap();
    let copied = format!("{section}ca = \"../certs/mirror-ca.crt\"\n{cn_only}");
    let (code, err) = serve(&copied);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("`mirror.peers[1].cn`"), "{err}");
    assert!(
        err.contains("holds a certificate of tls.client_ca"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_dedicated_mirror_ca_a_client_certificate_or_one_without_server_auth_is_no_peer() {
    let c = Cluster::start(Options {
        identity: PeerIdentity::CnUnderMirrorCa,
        ..Options::nodes(2)
    });
    let mirror_ca = c.mirror_ca.as_ref().unwrap();
    // The CN peers mirror.
    assert!(all_connected(&c), "{}", c.nodes[0].log());
    let mut a = c.client(0).await;
    let uid = create_key(&mut a, "cn-peers").await;
    assert!(eventually(Duration::from_secs(10), || c.nodes[1]
        .objects()
        .contains_key(&uid)));
    let listener = c.nodes[0].mirror;
    // An ordinary client certificate with the peer's CN, from the client CA: not even TLS.
    let ordinary = client_cert(&c.ca, "akm-n1");
    assert_refused(
        hello_as(listener, &ordinary, mirror_ca, "n1").await,
        "a client certificate from the client CA",
    );
    // From the mirror CA itself, with the peer's CN but clientAuth only: refused as no peer
    // certificate.
    let no_server_auth = client_cert(mirror_ca, "akm-n1");
    assert_refused(
        hello_as(listener, &no_server_auth, mirror_ca, "n1").await,
        "a mirror CA certificate without serverAuth",
    );
    assert!(eventually(Duration::from_secs(5), || {
        let log = c.nodes[0].log();
        log.contains("TLS handshake failed") && log.contains("not a mirror peer certificate")
    }));
    assert!(eventually(Duration::from_secs(5), || c.nodes[0]
        .audited("not a mirror peer certificate")));
    // The real peer still mirrors.
    let uid = create_key(&mut a, "still-mirrors").await;
    assert!(eventually(Duration::from_secs(10), || c.nodes[1]
        .objects()
        .contains_key(&uid)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialing_side_refuses_a_peer_whose_certificate_lacks_client_auth() {
    let mut c = Cluster::start(Options {
        identity: PeerIdentity::CnUnderMirrorCa,
        ..Options::nodes(2)
    });
    assert!(all_connected(&c), "{}", c.nodes[0].log());
    // Node 1 is replaced by an impostor holding a mirror CA server certificate with node 1's
    // CN and names (serverAuth only): TLS verifies, the peer check must not.
    c.kill(1);
    let mirror_ca = c.mirror_ca.as_ref().unwrap();
    let impostor = mirror_ca
        .issue_server(&["akm-n1".into(), "localhost".into()])
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(mirror_ca.cert_der().clone()).unwrap();
    let server = tls::server_config_from(
        vec![impostor.cert_der().unwrap()],
        impostor.key_der().unwrap(),
        roots,
        Vec::new(),
    )
    .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(c.nodes[1].mirror).unwrap();
    let listener = socket.listen(16).unwrap();
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(15), listener.accept())
        .await
        .expect("node 0 reconnects")
        .unwrap();
    let mut s = tokio_rustls::TlsAcceptor::from(server)
        .accept(tcp)
        .await
        .expect("TLS itself verifies");
    // Node 0 sends nothing (no hello, no changes) and records the refusal.
    match tokio::time::timeout(Duration::from_secs(10), proto::read_msg(&mut s)).await {
        Ok(Err(_)) => {}
        Ok(Ok(m)) => panic!("node 0 sent {m:?} to a certificate without clientAuth"),
        Err(_) => panic!("node 0 neither refused nor closed"),
    }
    let _ = s.shutdown().await;
    assert!(eventually(Duration::from_secs(5), || {
        c.nodes[0]
            .log()
            .contains("is not peer n1's configured certificate: certificate is not a mirror peer")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_peer_refuses_a_client_certificate_and_another_peer_certificate_with_its_cn() {
    let c = Cluster::start(Options::nodes(2));
    assert!(all_connected(&c), "{}", c.nodes[0].log());
    // The peers' certificates have CN "localhost"; so do these two.
    let listener = c.nodes[0].mirror;
    let ordinary = client_cert(&c.ca, "localhost");
    assert_refused(
        hello_as(listener, &ordinary, &c.ca, "n1").await,
        "a client certificate with the peer's CN",
    );
    let other = c.ca.issue_peer(&["localhost".into()]).unwrap();
    assert_refused(
        hello_as(listener, &other, &c.ca, "n1").await,
        "another peer certificate with the peer's CN",
    );
    assert!(eventually(Duration::from_secs(5), || {
        let log = c.nodes[0].log();
        log.contains("not a mirror peer certificate")
            && log.contains("certificate is not a configured peer")
    }));
    let mut a = c.client(0).await;
    let uid = create_key(&mut a, "pinned").await;
    assert!(eventually(Duration::from_secs(10), || c.nodes[1]
        .objects()
        .contains_key(&uid)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_mirror_connections_logs_a_handful_of_lines_and_a_summary() {
    const FLOOD: usize = 500;
    let mut c = Cluster::start(Options::nodes(1));
    let addr = c.nodes[0].mirror;
    for _ in 0..FLOOD {
        // Not TLS: each one fails the handshake and is refused.
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut rest),
        )
        .await;
    }
    // A clean stop writes the summary of what was left out.
    assert!(c.stop(0), "{}", c.nodes[0].log());
    let log = c.nodes[0].log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    let one_by_one = warnings
        .iter()
        .filter(|l| l.contains("mirror connection refused"))
        .count();
    let summaries: Vec<u64> = warnings
        .iter()
        .filter_map(|l| {
            let (count, _) = l.split_once(" mirror connections refused in the last ")?;
            count.rsplit(' ').next()?.parse().ok()
        })
        .collect();
    assert!(
        warnings.len() <= 12,
        "{} warnings for {FLOOD} refusals:\n{}",
        warnings.len(),
        warnings.join("\n")
    );
    assert!((1..=10).contains(&one_by_one), "{log}");
    assert!(!summaries.is_empty(), "{log}");
    // Every refusal is counted, give or take the harness's own probe that the listener is up.
    let counted = one_by_one as u64 + summaries.iter().sum::<u64>();
    assert!(
        (FLOOD as u64 - 10..=FLOOD as u64 + 2).contains(&counted),
        "{counted} of {FLOOD} refusals accounted for:\n{log}"
    );
    assert!(log.contains("last from 127.0.0.1:"), "{log}");
}
