//! Mirroring between real `akm serve` processes on loopback addresses, through fault-injecting
//! proxies: propagation within a second, key material re-wrapped under each node's own KEK,
//! convergence after a cut while both sides take writes (states only forward, destroyed keys
//! stay destroyed, attribute conflicts resolved identically), three-node full mesh without
//! echo, snapshot after compaction, RPO-zero and asynchronous behaviour around a SIGKILL, and
//! refusal of a certificate that is not a configured peer. The 120-second cut and the
//! many-cycle kill runs are `#[ignore]`d; see the README.

use crate::support::cluster::{create_key, eventually, Cluster, Options};
use crate::support::kmip::{key_bytes, uid};
use crate::support::proxy::Fault;
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{operation as op, state};
use akm::ttlv::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Every node holds the same objects with the same states, attributes and material presence.
fn converged(c: &Cluster) -> bool {
    let first = c.nodes[0].objects();
    c.nodes[1..].iter().all(|n| n.objects() == first)
}

fn assert_converges(c: &Cluster, limit: Duration) {
    if !eventually(limit, || converged(c)) {
        let views: Vec<_> = c.nodes.iter().map(|n| n.objects()).collect();
        for (i, v) in views.iter().enumerate() {
            eprintln!("node {i}: {} objects", v.len());
        }
        for n in &c.nodes {
            eprintln!("---- {} log ----\n{}", n.id, n.log());
        }
        panic!("nodes did not converge within {limit:?}");
    }
}

async fn get_key(c: &mut akm::client::Client, u: &str) -> Vec<u8> {
    key_bytes(&c.call(op::GET, uid(u)).await.unwrap())
}

async fn add_attr(c: &mut akm::client::Client, u: &str, value: &str) {
    let mut p = uid(u);
    let a = Attr::new("x-note", Value::TextString(value.into()));
    p.push(attributes::to_v1(&a, None));
    c.call(op::ADD_ATTRIBUTE, p).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_on_either_node_appear_on_the_other_within_one_second() {
    let c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    let mut b = c.client(1).await;
    // Let the pushers connect (they start with the process).
    assert!(eventually(Duration::from_secs(10), || {
        c.nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.peers.iter().all(|p| p.outbound_connected))
        })
    }));
    for (from, to, client) in [(0, 1, &mut a), (1, 0, &mut b)] {
        let u = create_key(client, &format!("from-{from}")).await;
        let created = Instant::now();
        assert!(
            eventually(Duration::from_secs(1), || c.nodes[to]
                .objects()
                .contains_key(&u)),
            "key made on node {from} not on node {to} within 1 s"
        );
        eprintln!("node {from} -> node {to}: {:?}", created.elapsed());
    }
    assert_converges(&c, Duration::from_secs(5));
    // The material is the same key, wrapped under each node's own KEK.
    let uids: Vec<String> = c.nodes[0].objects().into_keys().collect();
    for u in &uids {
        assert_eq!(get_key(&mut a, u).await, get_key(&mut b, u).await);
        assert_ne!(c.nodes[0].kek_id_of(u), c.nodes[1].kek_id_of(u));
    }
    // No echo: each node pushes only its own changes, so the heads settle.
    let heads = || -> Vec<i64> { c.nodes.iter().map(|n| n.status().unwrap().head).collect() };
    std::thread::sleep(Duration::from_secs(1));
    let before = heads();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(before, heads());
    // Key material never appears in the logs.
    for n in &c.nodes {
        let log = n.log();
        for u in &uids {
            let key = hex::encode(get_key(&mut a, u).await);
            assert!(!log.to_lowercase().contains(&key));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_mirror_every_key_everywhere() {
    let c = Cluster::start(Options::nodes(3));
    let mut made = BTreeSet::new();
    for i in 0..3 {
        let mut client = c.client(i).await;
        for k in 0..3 {
            made.insert(create_key(&mut client, &format!("n{i}-k{k}")).await);
        }
    }
    assert_converges(&c, Duration::from_secs(10));
    let keys: BTreeSet<String> = c.nodes[2].objects().into_keys().collect();
    assert_eq!(keys, made);
}

/// Both sides take writes while the link is cut for `cut`; afterwards every node has every
/// key with the same attributes and states, and no destroyed key came back.
async fn cut_and_converge(cut: Duration) {
    let c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    let mut b = c.client(1).await;
    let shared: Vec<String> = {
        let mut v = Vec::new();
        for k in 0..4 {
            v.push(create_key(&mut a, &format!("shared-{k}")).await);
        }
        v
    };
    assert_converges(&c, Duration::from_secs(5));

    c.link(0, 1, Fault::Cut);
    let started = Instant::now();
    // Node 0 destroys shared-0 (pre-active keys may be destroyed); node 1 edits it meanwhile.
    a.call(op::DESTROY, uid(&shared[0])).await.unwrap();
    add_attr(&mut b, &shared[0], "edited on 1 during the cut").await;
    // Both edit shared-1: last writer (by hybrid logical clock) wins.
    add_attr(&mut a, &shared[1], "from 0").await;
    add_attr(&mut b, &shared[1], "from 1").await;
    // Node 1 activates shared-2, node 0 edits it: Active moves forward and wins.
    add_attr(&mut a, &shared[2], "edited on 0").await;
    b.call(op::ACTIVATE, uid(&shared[2])).await.unwrap();
    // New keys on both sides throughout the cut.
    let mut new_keys = Vec::new();
    let mut n = 0;
    while started.elapsed() < cut {
        new_keys.push(create_key(&mut a, &format!("cut-a-{n}")).await);
        new_keys.push(create_key(&mut b, &format!("cut-b-{n}")).await);
        n += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Nothing crossed while cut.
    assert!(!c.nodes[1].objects().contains_key(&new_keys[0]));
    c.link(0, 1, Fault::Pass);

    assert_converges(&c, Duration::from_secs(30));
    let objects = c.nodes[0].objects();
    for k in &new_keys {
        assert!(objects.contains_key(k), "{k} missing after the cut");
    }
    let destroyed = &objects[&shared[0]];
    assert_eq!(destroyed.0, state::DESTROYED, "a destroyed key came back");
    assert!(!destroyed.2, "a destroyed key has material again");
    assert_eq!(objects[&shared[2]].0, state::ACTIVE);
    // The conflicts were recorded in the audit journal.
    assert!(
        eventually(Duration::from_secs(5), || c
            .nodes
            .iter()
            .any(|n| n.audited("conflict on object"))),
        "no conflict audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_cut_with_writes_on_both_sides_converges() {
    cut_and_converge(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "on demand: a 120-second cut (see README, mirroring)"]
async fn a_two_minute_cut_with_writes_on_both_sides_converges() {
    cut_and_converge(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_link_is_noticed_and_caught_up() {
    let c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    create_key(&mut a, "before").await;
    assert_converges(&c, Duration::from_secs(5));
    c.link(0, 1, Fault::Drop);
    let during = create_key(&mut a, "during").await;
    // The pusher notices the silent link and reports it.
    assert!(eventually(Duration::from_secs(20), || {
        c.nodes[0]
            .status()
            .is_some_and(|s| s.peers[0].lag_entries > 0 && s.peers[0].last_error.is_some())
    }));
    assert!(!c.nodes[1].objects().contains_key(&during));
    c.link(0, 1, Fault::Pass);
    assert_converges(&c, Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_resume_point_was_compacted_gets_a_snapshot() {
    let mut c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    create_key(&mut a, "early").await;
    assert_converges(&c, Duration::from_secs(5));
    c.kill(1);
    let mut made = Vec::new();
    for k in 0..5 {
        made.push(create_key(&mut a, &format!("while-down-{k}")).await);
    }
    a.call(op::DESTROY, uid(&made[0])).await.unwrap();
    drop(a);
    // Compact node 0's log past node 1's resume point (node 0 stopped meanwhile).
    c.kill(0);
    {
        let store = akm::store::Store::open(&c.nodes[0].dir.join("data/akm.db")).unwrap();
        let head = store.last_change_seq().unwrap();
        assert!(store.compact_change_log(head).unwrap() > 0);
        store.close();
    }
    c.start_node(0);
    c.start_node(1);
    assert_converges(&c, Duration::from_secs(10));
    assert!(c.nodes[0].log().contains("sending a snapshot"));
    assert_eq!(c.nodes[1].objects()[&made[0]].0, state::DESTROYED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_is_not_a_configured_peer_is_refused_and_audited() {
    let c = Cluster::start(Options::nodes(2));
    // A certificate from the same CA, valid for TLS, but no node's configured peer.
    let stranger =
        c.ca.issue_peer(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(c.ca.cert_der().clone()).unwrap();
    let tls = akm::tls::client_config_from(
        vec![stranger.cert_der().unwrap()],
        stranger.key_der().unwrap(),
        roots,
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(c.nodes[0].mirror)
        .await
        .unwrap();
    let name = akm::tls::server_name("localhost").unwrap();
    let mut s = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let hello = akm::mirror::proto::Msg::Hello {
        proto: akm::mirror::proto::PROTOCOL,
        node: "n1".into(),
        settings: Default::default(),
        head: 0,
    };
    let _ = akm::mirror::proto::write_msg(&mut s, &hello).await;
    match akm::mirror::proto::read_msg(&mut s).await {
        Ok(akm::mirror::proto::Msg::Refused { reason, .. }) => {
            assert!(reason.contains("not a configured"), "{reason}")
        }
        Err(_) => {}
        Ok(other) => panic!("a stranger was answered {other:?}"),
    }
    // Another CA's certificate fails the handshake; both are audited.
    let other_ca = akm::pki::Ca::generate("other CA").unwrap();
    let foreign = other_ca.issue_peer(&["localhost".into()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(c.ca.cert_der().clone()).unwrap();
    let tls = akm::tls::client_config_from(
        vec![foreign.cert_der().unwrap()],
        foreign.key_der().unwrap(),
        roots,
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(c.nodes[0].mirror)
        .await
        .unwrap();
    let name = akm::tls::server_name("localhost").unwrap();
    if let Ok(mut s) = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
    {
        // TLS 1.3: the server's verdict arrives with the first read.
        assert!(akm::mirror::proto::read_msg(&mut s).await.is_err());
    }
    assert!(eventually(Duration::from_secs(5), || {
        let log = c.nodes[0].log();
        log.contains("certificate is not a configured peer") && log.contains("TLS handshake failed")
    }));
    let log = c.nodes[0].log();
    assert!(log.contains("mirror.refused"), "{log}");
    // The real peers still mirror.
    let mut a = c.client(0).await;
    create_key(&mut a, "still-works").await;
    assert_converges(&c, Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_and_key_policies_are_mirrored_with_last_writer_wins() {
    let c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    let u = create_key(&mut a, "shared-policy").await;
    let (ok, out) = c.nodes[0].akm(&["user", "set", "bob", "--ops", "get,locate", "--enable"]);
    assert!(ok, "{out}");
    let (ok, out) = c.nodes[1].akm(&["group", "set", "HR", "--ops", "read", "--enable"]);
    assert!(ok, "{out}");
    let (ok, out) = c.nodes[0].akm(&[
        "key", "policy", "set", &u, "--group", "HR", "--mode", "group",
    ]);
    assert!(ok, "{out}");
    assert!(eventually(Duration::from_secs(5), || {
        let b = c.nodes[1].accounts();
        b.len() == 2 && b == c.nodes[0].accounts()
    }));
    assert!(eventually(Duration::from_secs(5), || c.nodes[1]
        .policy_of(&u)
        == c.nodes[0].policy_of(&u)));
    assert_eq!(
        c.nodes[1].policy_of(&u).unwrap().1.as_deref(),
        Some("HR"),
        "the key policy did not cross"
    );
    // Conflicting edits of one record while the link is cut: the later one wins on both.
    c.link(0, 1, Fault::Cut);
    let (ok, out) = c.nodes[1].akm(&["user", "set", "bob", "--ops", "get"]);
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_millis(20));
    let (ok, out) = c.nodes[0].akm(&["user", "set", "bob", "--ops", "all"]);
    assert!(ok, "{out}");
    // A deletion on one side during the cut also wins over an older edit on the other.
    let (ok, out) = c.nodes[1].akm(&["group", "set", "HR", "--disable"]);
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_millis(20));
    let (ok, out) = c.nodes[0].akm(&["group", "delete", "HR"]);
    assert!(ok, "{out}");
    c.link(0, 1, Fault::Pass);
    assert!(eventually(Duration::from_secs(10), || c.nodes[0]
        .accounts()
        == c.nodes[1].accounts()));
    let accounts = c.nodes[1].accounts();
    let bob = &accounts[&("user".to_string(), "bob".to_string())];
    assert_eq!(
        bob.1,
        c.nodes[0].accounts()[&("user".to_string(), "bob".to_string())].1
    );
    assert_ne!(bob.1, "get", "the earlier edit won");
    assert!(!accounts.contains_key(&("group".to_string(), "HR".to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_down_past_the_log_retention_gets_a_snapshot() {
    let mut c = Cluster::start(Options {
        nodes: 2,
        mirror_extra: "log_retention_entries = 5\ncompact_interval_secs = 1\n".into(),
        ..Options::nodes(2)
    });
    let mut a = c.client(0).await;
    create_key(&mut a, "early").await;
    assert_converges(&c, Duration::from_secs(5));
    c.kill(1);
    for k in 0..20 {
        // Two entries per key, so compaction has superseded ones to drop.
        let u = create_key(&mut a, &format!("while-down-{k}")).await;
        add_attr(&mut a, &u, "edited").await;
    }
    // Node 0 compacts its log past node 1's resume point on its own.
    assert!(eventually(Duration::from_secs(10), || c.nodes[0]
        .log()
        .contains("change log compacted")));
    c.start_node(1);
    assert_converges(&c, Duration::from_secs(10));
    assert!(c.nodes[0].log().contains("sending a snapshot"));
}
