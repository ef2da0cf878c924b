//! Rotation and names on mirrored nodes (real `akm serve` processes, issue 17): a scheduled
//! rotation is made once, by the schedule owner, however many nodes mirror the key; a key
//! re-keyed on both sides of a cut converges to one version chain in which the other version
//! is renamed, deactivated, linked and still readable by its owner; the same Name created by
//! one owner on both sides of a cut is kept by one object and suffixed on the other, the same
//! on every node, while another owner's object of that name is left alone.

use crate::support::cluster::{eventually, Cluster, Node, Options};
use crate::support::kmip::{
    aes_attrs, create_payload, filters, get_attrs, key_bytes, name, uid, uid_of, uids_of,
};
use crate::support::proxy::Fault;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{block_cipher_mode as bcm, link_type, operation as op, state};
use akm::ttlv::{Tag, Ttlv, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Two nodes checking for due rotations every second.
fn pair() -> Cluster {
    Cluster::start(Options {
        mirror_extra: "\n[crypto]\nrotation_check_secs = 1\n".into(),
        ..Options::nodes(2)
    })
}

fn wait_connected(c: &Cluster) {
    assert!(eventually(Duration::from_secs(15), || {
        c.nodes.iter().all(|n| {
            n.status().is_some_and(|s| {
                s.peers
                    .iter()
                    .all(|p| p.outbound_connected && p.inbound_connected)
            })
        })
    }));
}

fn assert_converges(c: &Cluster) {
    settles(c, |_| true);
}

/// Waits until every node holds the same objects and `done` holds on each (the conflict rule
/// runs just after a peer's change is applied, so equal views may precede it by a moment).
fn settles(c: &Cluster, done: impl Fn(&Node) -> bool) {
    let same = || {
        let first = c.nodes[0].objects();
        c.nodes[1..].iter().all(|n| n.objects() == first) && c.nodes.iter().all(&done)
    };
    if !eventually(Duration::from_secs(30), same) {
        for n in &c.nodes {
            eprintln!("---- {} log ----\n{}", n.id, n.log());
        }
        panic!("nodes did not converge");
    }
}

/// The live objects holding Name `n` on `node`, as its database says.
fn holders(node: &Node, n: &str) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(
        node.dir.join("data/akm.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = c
        .prepare(
            "SELECT o.uid FROM names n JOIN objects o ON o.uid = n.uid \
             WHERE n.name = ?1 AND o.state NOT IN (5, 6) ORDER BY o.uid",
        )
        .unwrap();
    let rows = stmt.query_map([n], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// The audit records of `event` in `node`'s journal: (outcome, uid, detail).
fn audit_records(node: &Node, event: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(node.dir.join("data/audit/audit.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| akm::audit::record::Record::parse_line(l).ok())
        .filter(|r| r.get("event") == Some(event))
        .map(|r| {
            let field = |k| akm::audit::record::unescape(r.get(k).unwrap_or(""));
            (field("outcome"), field("uid"), field("detail"))
        })
        .collect()
}

async fn locate(c: &mut Client, n: &str) -> Vec<String> {
    let got = c
        .call(
            op::LOCATE,
            filters(c.version, &[Attr::new("Name", name(n))]),
        )
        .await
        .unwrap();
    uids_of(&got)
}

async fn create(c: &mut Client, n: &str, extra: Vec<Attr>) -> String {
    let mut attrs = aes_attrs(Some(n));
    attrs.extend(extra);
    uid_of(
        &c.call(op::CREATE, create_payload(c.version, &attrs))
            .await
            .unwrap(),
    )
}

async fn rekey(c: &mut Client, u: &str) -> String {
    uid_of(&c.call(op::RE_KEY, uid(u)).await.unwrap())
}

fn links(attrs: &[Attr]) -> BTreeSet<(u32, String)> {
    attrs
        .iter()
        .filter(|a| a.name == "Link")
        .filter_map(|a| match &a.value {
            Value::Structure(f) => Some((
                f.iter().find(|t| t.tag == Tag::LINK_TYPE)?.as_enum()?,
                f.iter()
                    .find(|t| t.tag == Tag::LINKED_OBJECT_IDENTIFIER)?
                    .as_text()?
                    .to_owned(),
            )),
            _ => None,
        })
        .collect()
}

fn value<'a>(attrs: &'a [Attr], n: &str) -> Option<&'a Value> {
    attrs.iter().find(|a| a.name == n).map(|a| &a.value)
}

fn gcm() -> Ttlv {
    Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::GCM)],
    )
}

async fn encrypt(c: &mut Client, u: &str, data: &[u8]) -> [Vec<u8>; 3] {
    let mut req = uid(u);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, data));
    let got = c.call(op::ENCRYPT, req).await.unwrap();
    let b = |t| got.child(t).and_then(Ttlv::as_bytes).unwrap().to_vec();
    [
        b(Tag::DATA),
        b(Tag::IV_COUNTER_NONCE),
        b(Tag::AUTHENTICATED_ENCRYPTION_TAG),
    ]
}

async fn decrypt(c: &mut Client, u: &str, sealed: &[Vec<u8>; 3]) -> Vec<u8> {
    let mut req = uid(u);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, sealed[0].clone()));
    req.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, sealed[1].clone()));
    req.push(Ttlv::bytes(
        Tag::AUTHENTICATED_ENCRYPTION_TAG,
        sealed[2].clone(),
    ));
    let got = c.call(op::DECRYPT, req).await.unwrap();
    got.child(Tag::DATA)
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_rotation_on_a_mirrored_pair_is_made_once_by_the_schedule_owner() {
    let c = pair();
    wait_connected(&c);
    let mut alice = c.client_as(1, "alice").await;
    let first = create(
        &mut alice,
        "orders",
        vec![
            Attr::new("Activation Date", Value::DateTime(now() - 2 * 86_400)),
            Attr::new("Rotate Automatic", Value::Boolean(true)),
            Attr::new("Rotate Interval", Value::Interval(3)),
        ],
    )
    .await;
    // Long enough for several rotations (one every three seconds).
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_converges(&c);

    // One holder of the name, the same on both nodes, and it is not the first version.
    let current = holders(&c.nodes[0], "orders");
    assert_eq!(current.len(), 1, "{current:?}");
    assert_eq!(holders(&c.nodes[1], "orders"), current);
    assert_ne!(current[0], first);
    // Every rotation was made by n0 (the lowest node id); n1 made none, and none failed.
    let rotations = audit_records(&c.nodes[0], "rotation");
    assert!(rotations.len() >= 2, "{rotations:?}");
    assert!(
        rotations.iter().all(|(outcome, _, _)| outcome == "success"),
        "{rotations:?}"
    );
    assert_eq!(audit_records(&c.nodes[1], "rotation"), vec![]);
    // One linear chain: each version replaced at most once, every version but the first
    // replaces one.
    let objects = c.nodes[1].objects();
    let mut replaced = BTreeSet::new();
    for u in objects.keys() {
        let attrs = get_attrs(&mut alice, u, &["Link"]).await;
        for (kind, target) in links(&attrs) {
            if kind == link_type::REPLACED_OBJECT_LINK {
                assert!(replaced.insert(target.clone()), "{target} replaced twice");
            }
        }
    }
    assert_eq!(replaced.len() + 1, objects.len());
    for n in &c.nodes {
        assert!(!n.log().contains("name already in use"), "{}", n.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_nodes_both_rotate_and_their_chains_join_when_the_link_heals() {
    let c = pair();
    wait_connected(&c);
    let mut alice = c.client_as(0, "alice").await;
    let first = create(
        &mut alice,
        "ledger",
        vec![
            Attr::new("Activation Date", Value::DateTime(now() - 2 * 86_400)),
            Attr::new("Rotate Automatic", Value::Boolean(true)),
            Attr::new("Rotate Interval", Value::Interval(4)),
        ],
    )
    .await;
    wait_for(&c, &[&first]);
    c.link(0, 1, Fault::Cut);
    // n1 no longer hears from n0: after the grace (three checks) it runs the schedule too.
    assert!(
        eventually(Duration::from_secs(20), || !audit_records(
            &c.nodes[1],
            "rotation"
        )
        .is_empty()),
        "n1 never took over the schedule"
    );
    let during = c.nodes[0].objects().len();
    c.link(0, 1, Fault::Pass);
    settles(&c, |n| holders(n, "ledger").len() == 1);
    assert!(c.nodes[0].objects().len() > during);

    // Every version is still there and readable by its owner, on both nodes.
    let objects = c.nodes[0].objects();
    for i in 0..2 {
        let mut client = c.client_as(i, "alice").await;
        for u in objects.keys() {
            let got = client.call(op::GET, uid(u)).await.unwrap();
            assert_eq!(key_bytes(&got).len(), 32, "{u}");
        }
    }
    // The schedule goes on from the one current version, with no failures.
    tokio::time::sleep(Duration::from_secs(5)).await;
    settles(&c, |n| holders(n, "ledger").len() == 1);
    for n in &c.nodes {
        let rotations = audit_records(n, "rotation");
        assert!(
            rotations.iter().all(|(outcome, _, _)| outcome == "success"),
            "{rotations:?}"
        );
        assert!(!n.log().contains("name already in use"));
    }
    assert!(c
        .nodes
        .iter()
        .any(|n| !audit_records(n, "mirror.resolve").is_empty()));
}

/// Waits until the links are up and every node holds `uids`.
fn wait_for(c: &Cluster, uids: &[&str]) {
    assert!(eventually(Duration::from_secs(15), || c.nodes.iter().all(
        |n| {
            let o = n.objects();
            uids.iter().all(|u| o.contains_key(*u))
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_re_keyed_on_both_sides_of_a_cut_converges_to_one_chain_and_keeps_both_versions() {
    let c = Cluster::start(Options::nodes(2));
    wait_connected(&c);
    let mut a = c.client_as(0, "alice").await;
    let mut b = c.client_as(1, "alice").await;
    let key = create(&mut a, "payments", vec![]).await;
    a.call(op::ACTIVATE, uid(&key)).await.unwrap();
    wait_for(&c, &[&key]);
    assert_converges(&c);

    c.link(0, 1, Fault::Cut);
    let k0 = rekey(&mut a, &key).await;
    let k1 = rekey(&mut b, &key).await;
    let sealed0 = encrypt(&mut a, &k0, b"under the version made on n0").await;
    let sealed1 = encrypt(&mut b, &k1, b"under the version made on n1").await;
    c.link(0, 1, Fault::Pass);
    wait_for(&c, &[&k0, &k1]);
    settles(&c, |n| holders(n, "payments").len() == 1);

    // The rule: earliest Initial Date, then the smaller uid, keeps the name.
    let dates = [
        get_attrs(&mut a, &k0, &["Initial Date"]).await,
        get_attrs(&mut a, &k1, &["Initial Date"]).await,
    ];
    let key_of = |d: &[Attr], u: &str| (format!("{:?}", value(d, "Initial Date")), u.to_owned());
    let (winner, loser) = if key_of(&dates[0], &k0) <= key_of(&dates[1], &k1) {
        (k0.clone(), k1.clone())
    } else {
        (k1.clone(), k0.clone())
    };
    let suffixed = format!("payments (conflict {})", &loser[..8]);
    for client in [&mut a, &mut b] {
        assert_eq!(locate(client, "payments").await, vec![winner.clone()]);
        assert_eq!(locate(client, &suffixed).await, vec![loser.clone()]);
        let attrs = get_attrs(client, &loser, &["State", "Link"]).await;
        assert_eq!(
            value(&attrs, "State"),
            Some(&Value::Enumeration(state::DEACTIVATED))
        );
        let loser_links = links(&attrs);
        assert!(loser_links.contains(&(link_type::REPLACEMENT_OBJECT_LINK, winner.clone())));
        assert!(loser_links.contains(&(link_type::REPLACED_OBJECT_LINK, key.clone())));
        let old = links(&get_attrs(client, &key, &["Link"]).await);
        assert_eq!(
            old,
            BTreeSet::from([(link_type::REPLACEMENT_OBJECT_LINK, winner.clone())])
        );
        // Both versions stay readable by their owner: what either protected still decrypts.
        assert_eq!(
            decrypt(client, &k0, &sealed0).await,
            b"under the version made on n0"
        );
        assert_eq!(
            decrypt(client, &k1, &sealed1).await,
            b"under the version made on n1"
        );
        assert_eq!(
            key_bytes(&client.call(op::GET, uid(&loser)).await.unwrap()).len(),
            32
        );
    }
    // Another user may not read the loser.
    let mut mallory = c.client_as(1, "mallory").await;
    assert!(mallory.call(op::GET, uid(&loser)).await.is_err());
    // The resolution is audited, and the chain keeps rotating from the winner only.
    assert!(c
        .nodes
        .iter()
        .any(|n| !audit_records(n, "mirror.resolve").is_empty()));
    assert!(b.call(op::RE_KEY, uid(&loser)).await.is_err());
    let next = rekey(&mut b, &winner).await;
    wait_for(&c, &[&next]);
    assert_converges(&c);
    assert_eq!(holders(&c.nodes[0], "payments"), vec![next.clone()]);
    assert_eq!(holders(&c.nodes[1], "payments"), vec![next]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_name_created_on_both_sides_of_a_cut_is_kept_by_one_and_suffixed_on_the_other() {
    let c = Cluster::start(Options::nodes(2));
    wait_connected(&c);
    let mut a = c.client_as(0, "alice").await;
    let mut b = c.client_as(1, "alice").await;
    let mut bob = c.client_as(1, "bob").await;
    c.link(0, 1, Fault::Cut);
    let u0 = create(&mut a, "shared-name", vec![]).await;
    let u1 = create(&mut b, "shared-name", vec![]).await;
    // Names are per owner: bob's key of the same name is no conflict.
    let bobs = create(&mut bob, "shared-name", vec![]).await;
    c.link(0, 1, Fault::Pass);
    wait_for(&c, &[&u0, &u1, &bobs]);
    settles(&c, |n| holders(n, "shared-name").len() == 2);

    let alices: BTreeSet<String> = [u0.clone(), u1.clone()].into();
    let kept = holders(&c.nodes[0], "shared-name");
    assert_eq!(kept.len(), 2, "alice's winner and bob's key: {kept:?}");
    assert!(kept.contains(&bobs));
    let winner = kept.iter().find(|u| alices.contains(*u)).unwrap().clone();
    let loser = alices.iter().find(|u| **u != winner).unwrap().clone();
    let suffixed = format!("shared-name (conflict {})", &loser[..8]);
    for n in &c.nodes {
        assert_eq!(holders(n, "shared-name"), kept);
        assert_eq!(holders(n, &suffixed), vec![loser.clone()]);
    }
    for client in [&mut a, &mut b] {
        assert_eq!(locate(client, "shared-name").await, vec![winner.clone()]);
        // Both stay as they were otherwise (Pre-Active), and readable.
        for u in [&u0, &u1] {
            let attrs = get_attrs(client, u, &["State"]).await;
            assert_eq!(
                value(&attrs, "State"),
                Some(&Value::Enumeration(state::PRE_ACTIVE))
            );
            assert_eq!(
                key_bytes(&client.call(op::GET, uid(u)).await.unwrap()).len(),
                32
            );
        }
    }
    assert_eq!(locate(&mut bob, "shared-name").await, vec![bobs.clone()]);
    assert!(bob.call(op::GET, uid(&loser)).await.is_err());
    let resolved: Vec<_> = c
        .nodes
        .iter()
        .flat_map(|n| audit_records(n, "mirror.resolve"))
        .collect();
    assert!(
        resolved
            .iter()
            .any(|(_, u, detail)| *u == loser && detail.contains(&suffixed)),
        "{resolved:?}"
    );
}
