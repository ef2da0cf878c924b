//! Mirrored nodes agree on who may do what (issue 17, items 2 to 4), with real `akm serve`
//! processes: a client certificate revoked on one node is refused by every node (new
//! connections and open ones, after a restart, after a snapshot, and a shrinking CRL does not
//! undo it); peers whose security settings differ refuse the link and client writes, show it
//! in `akm mirror status` and audit it, and resume once the settings agree; every node audits
//! the changes it applies from a peer.

use crate::support::cluster::{create_key, eventually, Cluster, Options};
use crate::support::proxy::Fault;
use akm::client::Client;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion;
use akm::pki::{Issued, Validity};
use akm::tls;
use rustls::RootCertStore;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn links_up(c: &Cluster) -> bool {
    c.nodes.iter().all(|n| {
        n.status().is_some_and(|s| {
            s.peers
                .iter()
                .all(|p| p.outbound_connected && p.inbound_connected)
        })
    })
}

fn wait_links_up(c: &Cluster) {
    assert!(
        eventually(Duration::from_secs(15), || links_up(c)),
        "links did not come up: {:?}",
        c.nodes.iter().map(|n| n.status()).collect::<Vec<_>>()
    );
}

/// Every audit record of `event` in node `dir`'s journal, as (uid, detail).
fn audit_records(dir: &Path, event: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("data/audit/audit.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| akm::audit::record::Record::parse_line(l).ok())
        .filter(|r| r.get("event") == Some(event))
        .map(|r| {
            (
                r.get("uid").unwrap_or("").to_owned(),
                akm::audit::record::unescape(r.get("detail").unwrap_or("")),
            )
        })
        .collect()
}

/// The revoked serials in node `dir`'s database.
fn stored_revocations(dir: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(
        dir.join("data/akm.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let Ok(mut stmt) = c.prepare("SELECT serial FROM cert_revocations") else {
        return Vec::new();
    };
    let rows = stmt.query_map([], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

fn client_tls(c: &Cluster, issued: &Issued) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(c.ca.cert_der().clone()).unwrap();
    tls::client_config_from(
        vec![issued.cert_der().unwrap()],
        issued.key_der().unwrap(),
        roots,
    )
    .unwrap()
}

/// Whether `issued` can connect to node `i` and have a request answered.
pub(crate) async fn served(c: &Cluster, i: usize, issued: &Issued) -> bool {
    let addr = c.nodes[i].kmip.to_string();
    let Ok(mut client) = Client::connect(&addr, client_tls(c, issued), ProtocolVersion::V1_4).await
    else {
        return false;
    };
    client.call(op::QUERY, vec![]).await.is_ok()
}

/// Has node `i` read `certs/ca.crl` (with `pem` in it) and reload.
fn set_crl_and_reload(c: &Cluster, i: usize, pem: &str) {
    let node = &c.nodes[i];
    std::fs::write(node.dir.join("certs/ca.crl"), pem).unwrap();
    let config = std::fs::read_to_string(node.config()).unwrap();
    if !config.contains("crls = ") {
        let with = config.replacen(
            "[tls]\ncerts_dir = \"certs\"\n",
            "[tls]\ncerts_dir = \"certs\"\ncrls = [\"certs/ca.crl\"]\n",
            1,
        );
        assert_ne!(with, config);
        std::fs::write(node.config(), with).unwrap();
    }
    let (ok, out) = node.akm(&["tls", "reload"]);
    assert!(ok, "akm tls reload on node {i}: {out}");
}

/// Appends `text` to node `i`'s configuration file.
fn append_config(c: &Cluster, i: usize, text: &str) {
    let path = c.nodes[i].config();
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(text);
    std::fs::write(&path, config).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_on_one_node_is_refused_by_every_node_for_good() {
    let mut c = Cluster::start(Options::nodes(2));
    wait_links_up(&c);
    let carol =
        c.ca.issue_client("carol", &[], Validity::days_from_now(1))
            .unwrap();
    let dave =
        c.ca.issue_client("dave", &[], Validity::days_from_now(1))
            .unwrap();
    let serial = akm::identity::principal_from_der(carol.cert_der().unwrap().as_ref())
        .unwrap()
        .serial;
    // Carol holds a connection to node 1 open across the revocation.
    let mut open = Client::connect(
        &c.nodes[1].kmip.to_string(),
        client_tls(&c, &carol),
        ProtocolVersion::V1_4,
    )
    .await
    .unwrap();
    open.call(op::QUERY, vec![]).await.unwrap();
    assert!(served(&c, 1, &carol).await && served(&c, 0, &carol).await);

    // Revoked on node 0 only: its CRL, then a reload.
    set_crl_and_reload(
        &c,
        0,
        &c.ca
            .revocation_list(std::slice::from_ref(&serial), 1)
            .unwrap(),
    );
    assert!(
        eventually(Duration::from_secs(10), || stored_revocations(
            &c.nodes[1].dir
        )
        .contains(&serial)),
        "the revocation did not reach node 1"
    );
    // Node 1 has no CRL at all, yet refuses carol: new connections and the open one.
    assert!(!served(&c, 1, &carol).await, "node 1 still serves carol");
    assert!(
        open.call(op::QUERY, vec![]).await.is_err(),
        "carol's open connection to node 1 still answered"
    );
    assert!(!served(&c, 0, &carol).await);
    // Not a blanket refusal: dave, from the same CA, is served by both.
    assert!(served(&c, 1, &dave).await && served(&c, 0, &dave).await);
    // Audited where it was recorded and where it was applied.
    assert!(audit_records(&c.nodes[0].dir, "revocation")
        .iter()
        .any(|(_, d)| d.contains(&serial)));
    assert!(audit_records(&c.nodes[1].dir, "mirror.apply")
        .iter()
        .any(|(u, d)| u.starts_with(&serial) && d.contains("revocation") && d.contains("n0")));
    assert!(eventually(Duration::from_secs(5), || {
        audit_records(&c.nodes[1].dir, "tls")
            .iter()
            .any(|(_, d)| d.contains("client certificate revoked"))
    }));

    // A restart keeps it (it is in node 1's database, not only in memory).
    c.kill(1);
    c.start_node(1);
    assert!(
        !served(&c, 1, &carol).await,
        "node 1 serves carol after a restart"
    );

    // Neither node undoes it when node 0's CRL no longer lists it.
    set_crl_and_reload(&c, 0, &c.ca.revocation_list(&[], 1).unwrap());
    assert!(
        !served(&c, 0, &carol).await,
        "a shrinking CRL un-revoked carol on node 0"
    );
    assert!(!served(&c, 1, &carol).await);
    assert!(served(&c, 0, &dave).await);
}

/// An administrator's online revocation (the console's Revoke button: Revoke Certificate)
/// on node 0, with no CRL anywhere, reaches node 1, which refuses the certificate too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_revocation_on_one_node_is_refused_by_its_peer() {
    use akm::kmip::extension as ext;
    let c = Cluster::start(Options::nodes(2));
    wait_links_up(&c);
    let erin =
        c.ca.issue_client("erin", &[], Validity::days_from_now(1))
            .unwrap();
    let principal = akm::identity::principal_from_der(erin.cert_der().unwrap().as_ref()).unwrap();
    let issuer = akm::identity::issuer_of(erin.cert_der().unwrap().as_ref()).unwrap();
    assert!(served(&c, 1, &erin).await);
    let mut admin = c.client(0).await;
    admin
        .call(
            ext::OP_REVOKE_CERTIFICATE,
            ext::revoke_certificate_payload(&issuer, &principal.serial),
        )
        .await
        .unwrap();
    assert!(!served(&c, 0, &erin).await, "node 0 still serves erin");
    assert!(
        eventually(Duration::from_secs(10), || stored_revocations(
            &c.nodes[1].dir
        )
        .contains(&principal.serial)),
        "the revocation did not reach node 1"
    );
    assert!(!served(&c, 1, &erin).await, "node 1 still serves erin");
    assert!(audit_records(&c.nodes[0].dir, "revocation")
        .iter()
        .any(|(_, d)| d.contains(&principal.serial) && d.contains("administrator admin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_catching_up_by_snapshot_gets_every_revocation() {
    let mut c = Cluster::start(Options::nodes(2));
    wait_links_up(&c);
    let erin =
        c.ca.issue_client("erin", &[], Validity::days_from_now(1))
            .unwrap();
    let serial = akm::identity::principal_from_der(erin.cert_der().unwrap().as_ref())
        .unwrap()
        .serial;
    c.kill(1);
    set_crl_and_reload(
        &c,
        0,
        &c.ca
            .revocation_list(std::slice::from_ref(&serial), 1)
            .unwrap(),
    );
    let mut a = c.client(0).await;
    create_key(&mut a, "while-down").await;
    drop(a);
    c.kill(0);
    {
        // Compact node 0's log, and drop the revocation's entry too (as if a future
        // compaction did): only the snapshot can carry it now.
        let store = akm::store::Store::open(&c.nodes[0].dir.join("data/akm.db")).unwrap();
        let head = store.last_change_seq().unwrap();
        store.compact_change_log(head).unwrap();
        store.close();
        let db = rusqlite::Connection::open(c.nodes[0].dir.join("data/akm.db")).unwrap();
        let gone = db
            .execute("DELETE FROM change_log WHERE entity = 'revocation'", [])
            .unwrap();
        assert_eq!(gone, 1);
    }
    c.start_node(0);
    c.start_node(1);
    assert!(
        eventually(Duration::from_secs(15), || stored_revocations(
            &c.nodes[1].dir
        )
        .contains(&serial)),
        "the snapshot did not carry the revocation"
    );
    assert!(c.nodes[0].log().contains("sending a snapshot"));
    assert!(!served(&c, 1, &erin).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_different_security_settings_refuse_the_link_and_writes_until_they_agree() {
    let mut c = Cluster::start(Options::nodes(2));
    wait_links_up(&c);
    let mut a = c.client(0).await;
    let before = create_key(&mut a, "before").await;
    assert!(eventually(Duration::from_secs(5), || c.nodes[1]
        .objects()
        .contains_key(&before)));
    drop(a);

    // Node 1 restarts with dual control over Destroy; node 0 has none.
    c.kill(1);
    append_config(&c, 1, "\n[dual_control]\noperations = [\"destroy\"]\n");
    c.start_node(1);
    let differs = |i: usize| {
        c.nodes[i].status().is_some_and(|s| {
            s.peers
                .iter()
                .all(|p| p.settings_match == Some(false) && p.settings_differ == ["dual_control"])
        })
    };
    assert!(
        eventually(Duration::from_secs(15), || differs(0) && differs(1)),
        "the difference is not flagged on both sides: {:?}",
        c.nodes.iter().map(|n| n.status()).collect::<Vec<_>>()
    );
    // Neither side takes writes (a Destroy node 1 would hold for a second administrator
    // can be done through neither), and nothing flows between them.
    for i in 0..2 {
        let mut client = c.client(i).await;
        let refused = client
            .call(
                op::CREATE,
                crate::support::kmip::create_payload(
                    ProtocolVersion::V1_4,
                    &crate::support::kmip::aes_attrs(Some(&format!("during-{i}"))),
                ),
            )
            .await;
        let text = format!("{refused:?}");
        assert!(
            refused.is_err() && text.contains("security settings"),
            "node {i} took a write: {text}"
        );
        let destroy = client
            .call(op::DESTROY, crate::support::kmip::uid(&before))
            .await;
        assert!(destroy.is_err(), "node {i} destroyed a key");
    }
    assert!(!links_up(&c));
    let (ok, table) = c.nodes[0].akm(&["mirror", "status"]);
    assert!(ok && table.contains("DIFFER: dual_control"), "{table}");
    for n in &c.nodes {
        assert!(
            audit_records(&n.dir, "mirror.settings")
                .iter()
                .any(|(_, d)| d.contains("differ") && d.contains("dual_control")),
            "no mirror.settings record on {}",
            n.id
        );
    }

    // The operator makes them agree; the link and writes resume, and the status says so.
    c.kill(0);
    append_config(&c, 0, "\n[dual_control]\noperations = [\"destroy\"]\n");
    c.start_node(0);
    wait_links_up(&c);
    assert!(eventually(Duration::from_secs(10), || {
        c.nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.peers.iter().all(|p| p.settings_match == Some(true)))
        })
    }));
    let mut b = c.client(1).await;
    let after = create_key(&mut b, "after").await;
    assert!(eventually(Duration::from_secs(5), || c.nodes[0]
        .objects()
        .contains_key(&after)));
    let (_, table) = c.nodes[1].akm(&["mirror", "status"]);
    assert!(table.contains("match"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_change_reloaded_on_one_node_drops_the_link_until_the_other_reloads() {
    let c = Cluster::start(Options::nodes(2));
    wait_links_up(&c);
    let access = "\n[access]\nhide_existence = true\n[access.users.zed]\noperations = [\"get\"]\n";
    append_config(&c, 1, access);
    let (ok, out) = c.nodes[1].akm(&["reload"]);
    assert!(ok, "{out}");
    let differs = |i: usize| {
        c.nodes[i].status().is_some_and(|s| {
            s.peers.iter().all(|p| {
                p.settings_match == Some(false) && p.settings_differ == ["access", "access.records"]
            })
        })
    };
    assert!(
        eventually(Duration::from_secs(15), || differs(0) && differs(1)),
        "{:?}",
        c.nodes.iter().map(|n| n.status()).collect::<Vec<_>>()
    );
    // Node 0 reloads the same while the difference is known (its client writes are
    // refused meanwhile, the operator's records are not).
    append_config(&c, 0, access);
    let (ok, out) = c.nodes[0].akm(&["reload"]);
    assert!(ok, "{out}");
    wait_links_up(&c);
    assert!(eventually(Duration::from_secs(10), || {
        c.nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.peers.iter().all(|p| p.settings_match == Some(true)))
        })
    }));
    for n in &c.nodes {
        assert!(audit_records(&n.dir, "mirror.settings")
            .iter()
            .any(|(_, d)| d.contains("agree")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_audits_the_changes_it_applies_from_a_peer() {
    let c = Cluster::start(Options::nodes(2));
    wait_links_up(&c);
    let mut a = c.client(0).await;
    let u = create_key(&mut a, "audited").await;
    a.call(op::ACTIVATE, crate::support::kmip::uid(&u))
        .await
        .unwrap();
    let applied = || {
        audit_records(&c.nodes[1].dir, "mirror.apply")
            .into_iter()
            .filter(|(id, d)| id == &u && d.contains("from peer n0") && d.contains("object"))
            .count()
    };
    assert!(
        eventually(Duration::from_secs(10), || applied() >= 1),
        "no mirror.apply record for {u} on node 1"
    );
    // The receiving node's journal, with those records, still verifies as one chain.
    let journal = c.nodes[1].dir.join("data/audit/audit.log");
    let (ok, out) = c.nodes[1].akm(&[
        "audit",
        "verify",
        "--max-age",
        "3600",
        journal.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    // The node that made the change did not record it as applied.
    assert!(!audit_records(&c.nodes[0].dir, "mirror.apply")
        .iter()
        .any(|(id, _)| id == &u));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_a_node_cut_off_from_its_origin_through_another_peer() {
    let c = Cluster::start(Options::nodes(3));
    wait_links_up(&c);
    let frank =
        c.ca.issue_client("frank", &[], Validity::days_from_now(1))
            .unwrap();
    let serial = akm::identity::principal_from_der(frank.cert_der().unwrap().as_ref())
        .unwrap()
        .serial;
    // Node 0 cannot reach node 2 (nor node 2 node 0); node 1 reaches both.
    c.link(0, 2, Fault::Cut);
    set_crl_and_reload(
        &c,
        0,
        &c.ca
            .revocation_list(std::slice::from_ref(&serial), 1)
            .unwrap(),
    );
    assert!(
        eventually(Duration::from_secs(10), || stored_revocations(
            &c.nodes[2].dir
        )
        .contains(&serial)),
        "the revocation was not relayed to node 2"
    );
    assert!(!served(&c, 2, &frank).await);
    // Relayed once: node 2 applied it (from node 1) and nothing echoes on.
    assert!(audit_records(&c.nodes[2].dir, "mirror.apply")
        .iter()
        .any(|(u, d)| u.starts_with(&serial)
            && d.contains("from peer n1")
            && d.contains("made on node n0")));
}

/// Dual control on mirrored nodes: a Create guarded on both is refused until a second
/// administrator opens a window on the node that takes it; the peer then applies the
/// replicated key without asking anyone (approval is given once, where the request came in),
/// while its own clients stay guarded (windows are per node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_applies_a_dual_controlled_change_without_a_second_approval() {
    use akm::kmip::custody as ext;
    use akm::ttlv::Ttlv;
    let mut c = Cluster::start(Options::nodes(2));
    wait_links_up(&c);
    for i in 0..2 {
        c.kill(i);
        append_config(&c, i, "\n[dual_control]\noperations = [\"create\"]\n");
        c.start_node(i);
    }
    wait_links_up(&c);
    let payload = |n: &str| {
        crate::support::kmip::create_payload(
            ProtocolVersion::V1_4,
            &crate::support::kmip::aes_attrs(Some(n)),
        )
    };
    let mut admin = c.client(0).await;
    let refused = admin.call(op::CREATE, payload("dc")).await;
    assert!(
        format!("{refused:?}").contains("dual control"),
        "{refused:?}"
    );
    let mut alice = c.client_in(0, "alice", &["admins"]).await;
    alice
        .call(
            ext::OP_AUTHORIZE,
            vec![
                Ttlv::text(ext::TAG_AUTHORIZED_USER, "admin"),
                Ttlv::text(ext::TAG_GUARDED_OPERATION, "create"),
            ],
        )
        .await
        .unwrap();
    let created = admin.call(op::CREATE, payload("dc")).await.unwrap();
    let uid = crate::support::kmip::uid_of(&created);
    assert!(
        eventually(Duration::from_secs(10), || c.nodes[1]
            .objects()
            .contains_key(&uid)),
        "the peer did not apply the approved Create"
    );
    let mut on_peer = c.client(1).await;
    let refused = on_peer.call(op::CREATE, payload("dc-peer")).await;
    assert!(
        format!("{refused:?}").contains("dual control"),
        "{refused:?}"
    );
}
