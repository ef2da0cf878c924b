//! The connection budgets against the real server: idle TCP connections that never start a
//! TLS handshake cannot keep a legitimate client out (a newcomer evicts the oldest pending
//! handshake, from its own address first), authenticated sessions are never evicted for
//! them, and a request that starts and stalls is closed at the frame deadline, not after the
//! idle timeout. Everything runs from 127.0.0.1, so the attacker and the client share one
//! source address. (The authenticated cap is tested in `bad_input.rs`.)

use crate::bad_inputs_catalogue::{closed_within, raw_tls};
use crate::support::server::{test_settings, TestServer};
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;
use akm::server::Settings;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Test settings in which only eviction frees a pending handshake's place: its deadline and
/// the idle timeout are far longer than the test.
fn eviction_only_settings() -> Settings {
    let mut settings = test_settings();
    settings.limits.handshake_timeout = Duration::from_secs(120);
    settings.limits.idle_timeout = Duration::from_secs(120);
    settings
}

/// Opens `n` TCP connections to `addr` that never send a byte.
async fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_idle_connections_do_not_keep_a_client_out() {
    let server = TestServer::start_with(eviction_only_settings()).await;
    let mut earlier = server.client("bob", V::V1_4).await;
    earlier.call(op::QUERY, vec![]).await.unwrap();
    let idle = open_idle(server.addr, 5000).await;
    let tls = server.client_tls("alice", &["users"]);
    let started = Instant::now();
    let mut c = server
        .connect(tls, V::V1_4)
        .await
        .expect("the handshake must get a place");
    c.call(op::QUERY, vec![]).await.expect("Query");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "handshake and Query took {took:?} with 5,000 idle connections open"
    );
    // The session authenticated before the flood was not evicted for it.
    earlier.call(op::QUERY, vec![]).await.unwrap();
    drop(idle);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_idle_connections_from_one_address_does_not_keep_a_client_out() {
    let server = TestServer::start_with(eviction_only_settings()).await;
    let addr = server.addr;
    // ~100 new idle connections a second for 4 s, all held: the per-address cap (64) is
    // passed after well under a second.
    let flood = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for _ in 0..400 {
            tick.tick().await;
            if let Ok(s) = TcpStream::connect(addr).await {
                held.push(s);
            }
        }
        held
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..5 {
        let tls = server.client_tls(&format!("client{i}"), &["users"]);
        let mut c = server
            .connect(tls, V::V1_4)
            .await
            .unwrap_or_else(|e| panic!("client {i} kept out by the flood: {e}"));
        c.call(op::QUERY, vec![]).await.expect("Query");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let held = flood.await.unwrap();
    assert!(held.len() >= 300, "the flood opened only {}", held.len());
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_header_is_closed_at_the_frame_deadline_not_the_idle_timeout() {
    let mut settings = test_settings();
    settings.limits.idle_timeout = Duration::from_secs(120);
    settings.limits.frame_timeout = Duration::from_secs(1);
    let server = TestServer::start_with(settings).await;
    let mut quiet = server.client("alice", V::V1_4).await;
    // Five of the eight header bytes, then silence.
    let mut s = raw_tls(&server).await;
    s.write_all(&[0x42, 0x00, 0x78, 0x01, 0x00]).await.unwrap();
    s.flush().await.unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(30)).await,
        "a partial header was held open past the frame deadline"
    );
    // A session that sent nothing is idle, not stalled mid-request: it outlives the frame
    // deadline and is served.
    quiet
        .call(op::QUERY, vec![])
        .await
        .expect("an idle session must outlive the frame deadline");
    server.stop().await;
}

/// A raw TLS session of identity "slow" whose receive buffer is a few KiB: the responses it
/// never reads fill it after a few dozen, however fast the server answers, so the test does
/// not depend on how quickly loopback's autotuned buffers fill on a loaded machine.
async fn small_window_tls(server: &TestServer) -> tokio_rustls::client::TlsStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let name = akm::tls::server_name("localhost").unwrap();
    tokio_rustls::TlsConnector::from(server.client_tls("slow", &["users"]))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// A client that sends requests and never reads the responses: once the socket buffers are
/// full the server's write blocks; at the frame deadline the server gives the connection up,
/// so its slot (here the identity's only one) is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_connection_at_the_frame_deadline() {
    let mut settings = test_settings();
    settings.limits.frame_timeout = Duration::from_secs(1);
    settings.max_connections_per_identity = 1;
    let server = TestServer::start_with(settings).await;
    let request = akm::client::request(V::V1_4, &[(op::QUERY, vec![])]).encode();
    let s = small_window_tls(&server).await;
    let (_unread, mut w) = tokio::io::split(s);
    // Pipelined Queries, never read: the writes themselves stall once the server stops
    // reading (it is blocked on its own write), so they run in a task of their own.
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        while w.write_all(&request).await.is_ok() {
            sent += 1;
        }
        sent
    });
    // While the stalled session holds the identity's slot, the same identity is refused;
    // once the server drops it, the identity is served again.
    let started = Instant::now();
    let mut refused = 0;
    let served = loop {
        let mut c = server
            .connect(server.client_tls("slow", &["users"]), V::V1_4)
            .await
            .unwrap();
        if c.call(op::QUERY, vec![]).await.is_ok() {
            break true;
        }
        refused += 1;
        if started.elapsed() > Duration::from_secs(60) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        served,
        "a client that never reads held its connection slot for a minute"
    );
    assert!(
        refused > 0,
        "the stalled session never held the identity's slot"
    );
    let sent = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the stalled session's writes never failed")
        .unwrap();
    assert!(sent > 0);
    server.stop().await;
}
