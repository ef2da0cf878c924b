//! Mirroring around failures of a whole node: SIGKILL of the primary under a write load in
//! RPO-zero mode (every acknowledged write is on the peer) and in asynchronous mode (the peer
//! reports its lag and catches up when the primary returns), RPO-zero's timeout choices
//! (refuse writes, or fall back to asynchronous) and their audit records, `akm mirror status`
//! and client-side failover across several servers.

use crate::support::cluster::{create_key, eventually, Cluster, Options};
use crate::support::proxy::Fault;
use akm::client::Client;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn rpo_zero(on_timeout: &str, timeout_ms: u64) -> Options {
    Options {
        nodes: 2,
        mirror_extra: format!(
            "mode = \"rpo-zero\"\nrpo_timeout_ms = {timeout_ms}\non_timeout = \"{on_timeout}\"\n"
        ),
        ..Options::nodes(2)
    }
}

/// Starts `writers` clients creating keys on node `i` until they fail; returns the uids
/// whose creation the server acknowledged.
fn write_load(c: &Cluster, i: usize, writers: usize) -> Arc<Mutex<Vec<String>>> {
    write_load_upto(c, i, writers, usize::MAX)
}

/// Like [`write_load`], stopping once `max` writes were acknowledged.
fn write_load_upto(c: &Cluster, i: usize, writers: usize, max: usize) -> Arc<Mutex<Vec<String>>> {
    // Names are unique per load: a Name in use would refuse the Create.
    static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let load = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let acked = Arc::new(Mutex::new(Vec::new()));
    for w in 0..writers {
        let acked = acked.clone();
        let addr = c.nodes[i].kmip.to_string();
        let tls = c.admin_tls();
        tokio::spawn(async move {
            let Ok(mut client) = Client::connect(&addr, tls, ProtocolVersion::V1_4).await else {
                return;
            };
            for n in 0.. {
                if acked.lock().unwrap().len() >= max {
                    return;
                }
                let payload = crate::support::kmip::create_payload(
                    ProtocolVersion::V1_4,
                    &crate::support::kmip::aes_attrs(Some(&format!("load-{load}-{w}-{n}"))),
                );
                match client.call(op::CREATE, payload).await {
                    Ok(r) => acked.lock().unwrap().push(crate::support::kmip::uid_of(&r)),
                    Err(_) => return,
                }
            }
        });
    }
    acked
}

/// One SIGKILL of the primary in RPO-zero mode: every write the client saw acknowledged is
/// on the peer. Returns how many writes were acknowledged.
async fn rpo_zero_kill_cycle(c: &mut Cluster) -> usize {
    let acked = write_load(c, 0, 4);
    if !eventually(Duration::from_secs(20), || {
        acked.lock().unwrap().len() >= 40
    }) {
        for n in &c.nodes {
            eprintln!("---- {} status {:?}\n{}", n.id, n.status(), n.log());
        }
        panic!("only {} writes acknowledged", acked.lock().unwrap().len());
    }
    c.kill(0);
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let on_peer = c.nodes[1].objects();
    let missing: Vec<_> = acked.iter().filter(|u| !on_peer.contains_key(*u)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes are not on the peer: {missing:?}",
        missing.len()
    );
    c.start_node(0);
    let total = acked.len();
    assert!(eventually(Duration::from_secs(20), || c.nodes[0].objects()
        == c.nodes[1].objects()));
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_zero_every_acknowledged_write_survives_a_sigkill_of_the_primary() {
    let mut c = Cluster::start(rpo_zero("refuse", 5000));
    let n = rpo_zero_kill_cycle(&mut c).await;
    eprintln!("{n} acknowledged writes, all on the peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "on demand: ten SIGKILL cycles (see README, mirroring)"]
async fn rpo_zero_survives_many_sigkill_cycles() {
    let mut c = Cluster::start(rpo_zero("refuse", 5000));
    for cycle in 0..10 {
        let n = rpo_zero_kill_cycle(&mut c).await;
        eprintln!("cycle {cycle}: {n} acknowledged writes, all on the peer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mode_peer_reports_its_lag_and_catches_up_when_the_primary_returns() {
    let mut c = Cluster::start(Options::nodes(2));
    // A slow link so the peer falls behind under load.
    c.proxies[&(0, 1)].set(Fault::Delay(Duration::from_millis(100)));
    let acked = write_load(&c, 0, 4);
    let mut saw_lag = false;
    assert!(eventually(Duration::from_secs(30), || {
        saw_lag |= c.nodes[1]
            .status()
            .is_some_and(|s| s.peers[0].behind_entries > 0);
        saw_lag && acked.lock().unwrap().len() >= 60
    }));
    c.kill(0);
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    // The peer sees the primary gone and still reports what it knows.
    assert!(eventually(Duration::from_secs(15), || c.nodes[1]
        .status()
        .is_some_and(|s| !s.peers[0].inbound_connected)));
    let status = c.nodes[1].status().unwrap();
    eprintln!(
        "peer after the kill: applied {} of head {} (behind {}); has {} of {} acknowledged keys",
        status.peers[0].applied,
        status.peers[0].peer_head,
        status.peers[0].behind_entries,
        c.nodes[1]
            .objects()
            .keys()
            .filter(|u| acked.contains(*u))
            .count(),
        acked.len()
    );
    assert!(status.peers[0].peer_head >= status.peers[0].applied);
    // Writes on the survivor never waited for the dead primary.
    let mut b = c.client(1).await;
    create_key(&mut b, "on-survivor").await;
    // The primary returns (link healthy again) and the peer catches up fully.
    c.proxies[&(0, 1)].set(Fault::Pass);
    c.start_node(0);
    assert!(eventually(Duration::from_secs(30), || c.nodes[0].objects()
        == c.nodes[1].objects()));
    let on_peer = c.nodes[1].objects();
    assert!(acked.iter().all(|u| on_peer.contains_key(u)));
    // Once the primary has nothing more to send, the peer reports no lag.
    assert!(eventually(Duration::from_secs(10), || c.nodes[1]
        .status()
        .is_some_and(
            |s| s.peers[0].inbound_connected && s.peers[0].behind_entries == 0
        )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_zero_refuses_writes_when_no_peer_answers_and_recovers() {
    let mut c = Cluster::start(rpo_zero("refuse", 500));
    let mut a = c.client(0).await;
    create_key(&mut a, "replicated").await;
    c.kill(1);
    // Committed locally but not confirmed: the client is told so.
    let payload = crate::support::kmip::create_payload(
        ProtocolVersion::V1_4,
        &crate::support::kmip::aes_attrs(Some("unconfirmed")),
    );
    let e = a.call(op::CREATE, payload).await.unwrap_err().to_string();
    assert!(e.contains("no mirror peer confirmed"), "{e}");
    // From then on writes are refused up front; reads still work.
    let payload = crate::support::kmip::create_payload(
        ProtocolVersion::V1_4,
        &crate::support::kmip::aes_attrs(Some("refused")),
    );
    let e = a.call(op::CREATE, payload).await.unwrap_err().to_string();
    assert!(e.contains("writes are refused"), "{e}");
    a.call(op::LOCATE, vec![]).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || c.nodes[0]
        .status()
        .is_some_and(|s| s.mode == "refusing-writes")));
    // The peer returns, catches up, and writes are accepted again.
    c.start_node(1);
    assert!(eventually(Duration::from_secs(20), || c.nodes[0]
        .status()
        .is_some_and(|s| s.mode == "rpo-zero")));
    create_key(&mut a, "after").await;
    assert!(eventually(Duration::from_secs(5), || c.nodes[0].objects()
        == c.nodes[1].objects()));
    assert!(eventually(Duration::from_secs(5), || c.nodes[0]
        .audited("mode switch: rpo-zero -> refusing-writes")
        && c.nodes[0]
            .audited("mode switch: refusing-writes -> rpo-zero")));
    assert!(c.nodes[0].log().contains("caught up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_zero_can_fall_back_to_asynchronous() {
    let mut c = Cluster::start(rpo_zero("async", 500));
    let mut a = c.client(0).await;
    c.kill(1);
    create_key(&mut a, "waits-then-falls-back").await;
    create_key(&mut a, "asynchronous").await;
    assert!(eventually(Duration::from_secs(5), || c.nodes[0]
        .status()
        .is_some_and(|s| s.mode == "async")));
    c.start_node(1);
    assert!(eventually(Duration::from_secs(20), || c.nodes[0]
        .status()
        .is_some_and(|s| s.mode == "rpo-zero")));
    assert_eq!(c.nodes[0].objects(), c.nodes[1].objects());
    assert!(eventually(Duration::from_secs(5), || c.nodes[0]
        .audited("mode switch: rpo-zero -> async")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_status_command_and_cli_failover() {
    let mut c = Cluster::start(Options::nodes(2));
    let akm = env!("CARGO_BIN_EXE_akm");
    assert!(eventually(Duration::from_secs(10), || {
        c.nodes[0]
            .status()
            .is_some_and(|s| s.peers[0].outbound_connected && s.peers[0].inbound_connected)
    }));
    let out = std::process::Command::new(akm)
        .arg("--config")
        .arg(c.nodes[0].config())
        .args(["mirror", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("node n0") && text.contains("n1") && text.contains("up"),
        "{text}"
    );
    let out = std::process::Command::new(akm)
        .arg("--config")
        .arg(c.nodes[0].config())
        .args(["mirror", "status", "--json"])
        .output()
        .unwrap();
    let st: akm::mirror::Status = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st.node_id, "n0");

    // After the peer dies the status says so, with the error.
    c.kill(1);
    assert!(eventually(Duration::from_secs(10), || c.nodes[0]
        .status()
        .is_some_and(
            |s| !s.peers[0].outbound_connected && s.peers[0].last_error.is_some()
        )));

    // `akm key` tries the next server when one is unreachable.
    c.start_node(1);
    c.kill(0);
    let certs = c.nodes[0].dir.join("certs");
    let servers = format!("{},{}", c.nodes[0].kmip, c.nodes[1].kmip);
    let out = std::process::Command::new(akm)
        .arg("--config")
        .arg(c.nodes[0].config())
        .args(["key", "--server", &servers])
        .arg("--cert")
        .arg(certs.join("admin.crt"))
        .arg("--key")
        .arg(certs.join("admin.key"))
        .arg("--ca")
        .arg(certs.join("ca.crt"))
        .args(["create", "--name", "via-failover"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every server down: the error names each one.
    c.kill(1);
    let out = std::process::Command::new(akm)
        .arg("--config")
        .arg(c.nodes[0].config())
        .args(["key", "--server", &servers])
        .arg("--cert")
        .arg(certs.join("admin.crt"))
        .arg("--key")
        .arg(certs.join("admin.key"))
        .arg("--ca")
        .arg(certs.join("ca.crt"))
        .arg("list")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no server reachable"), "{err}");
    assert!(err.contains(&c.nodes[1].kmip.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "on demand: prints write throughput with mirroring (see README, mirroring)"]
async fn write_throughput_async_and_rpo_zero() {
    const WRITES: usize = 1000;
    for (label, opts) in [
        ("async", Options::nodes(2)),
        ("rpo-zero", rpo_zero("refuse", 5000)),
    ] {
        let c = Cluster::start(opts);
        assert!(eventually(Duration::from_secs(10), || c.nodes[0]
            .status()
            .is_some_and(|s| s.peers[0].outbound_connected)));
        let started = std::time::Instant::now();
        let acked = write_load_upto(&c, 0, 8, WRITES);
        assert!(eventually(Duration::from_secs(120), || acked
            .lock()
            .unwrap()
            .len()
            >= WRITES));
        let written = started.elapsed();
        let uids: Vec<String> = acked.lock().unwrap().clone();
        assert!(eventually(Duration::from_secs(120), || {
            let on_peer = c.nodes[1].objects();
            uids.iter().all(|u| on_peer.contains_key(u))
        }));
        let mirrored = started.elapsed();
        eprintln!(
            "{label}: {} creates acknowledged in {written:?} ({:.0}/s); all on the peer after {mirrored:?}",
            uids.len(),
            uids.len() as f64 / written.as_secs_f64()
        );
    }
}
