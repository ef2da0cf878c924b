//! Names (the KMIP Name attribute) are unique per owner user, the key management domain: an
//! owner cannot hold two live objects of one name, two owners can. So with `hide_existence`
//! a Create under another user's key name tells the caller nothing, and nobody can take a
//! name away from another user by using it first. Checked over mutual TLS against the real
//! server (Create, Add Attribute, Locate, Re-key, Set Key Policy), through the CLI, and on a
//! mirrored pair of `akm serve` processes.

use crate::support::cluster::{eventually, Cluster, Options};
use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::{Client, ClientError};
use akm::kmip::attributes::{to_v1, Attr};
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::extension as ext;
use akm::kmip::ProtocolVersion as V;
use akm::policy::{AccessMode, Operations, Settings};
use akm::ttlv::{Ttlv, Value};
use std::collections::BTreeSet;
use std::time::Duration;

async fn server() -> TestServer {
    TestServer::start_with_access(Settings {
        admin_group: "admins".into(),
        unknown: Some(Operations::all()),
        hide_existence: true,
        default_mode: AccessMode::User,
    })
    .await
}

async fn user(server: &TestServer, cn: &str) -> Client {
    let ous: &[&str] = if cn == "admin" { &["admins"] } else { &[] };
    server
        .connect(server.client_tls(cn, ous), V::V1_4)
        .await
        .unwrap()
}

async fn located(c: &mut Client, n: &str) -> Vec<String> {
    let v = c.version;
    uids_of(
        &c.call(op::LOCATE, filters(v, &[Attr::new("Name", name(n))]))
            .await
            .unwrap(),
    )
}

fn create(key_name: &str, extra: &[Attr]) -> Vec<Ttlv> {
    let mut attrs = aes_attrs(Some(key_name));
    attrs.extend_from_slice(extra);
    create_payload(V::V1_4, &attrs)
}

#[track_caller]
fn assert_name_taken(r: Result<Ttlv, ClientError>) {
    match r {
        Err(ClientError::Failed { reason, message }) => {
            assert_eq!(reason, rr::INVALID_FIELD, "{message}");
            assert_eq!(message, "name already in use");
        }
        other => panic!("expected \"name already in use\", got {other:?}"),
    }
}

fn add_name(u: &str, n: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(to_v1(&Attr::new("Name", name(n)), None));
    p
}

#[tokio::test]
async fn an_owner_may_use_another_owners_name_but_not_its_own_twice() {
    let server = server().await;
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let mut admin = user(&server, "admin").await;
    let a = create_key(&mut alice, Some("payroll")).await;
    // Bob asks for alice's name and gets a key, as he would for a name nobody uses: nothing
    // tells him hers exists.
    let b = create_key(&mut bob, Some("payroll")).await;
    assert_ne!(a, b);
    create_key(&mut bob, Some("never-used-elsewhere")).await;
    assert_eq!(reason(bob.call(op::GET, uid(&a)).await), rr::ITEM_NOT_FOUND);
    assert_eq!(located(&mut bob, "payroll").await, vec![b.clone()]);
    // Each owner's own duplicate is refused, by Create and by Add Attribute.
    assert_name_taken(bob.call(op::CREATE, create("payroll", &[])).await);
    assert_name_taken(alice.call(op::CREATE, create("payroll", &[])).await);
    let spare = create_key(&mut bob, None).await;
    assert_name_taken(
        bob.call(op::ADD_ATTRIBUTE, add_name(&spare, "payroll"))
            .await,
    );
    // ... while a name only alice uses is free for bob's spare key.
    create_key(&mut alice, Some("alice-only")).await;
    bob.call(op::ADD_ATTRIBUTE, add_name(&spare, "alice-only"))
        .await
        .unwrap();
    // Locate by name: each owner finds only their own; the administrator sees both.
    assert_eq!(located(&mut alice, "payroll").await, vec![a.clone()]);
    assert_eq!(located(&mut bob, "payroll").await, vec![b.clone()]);
    let both: BTreeSet<String> = located(&mut admin, "payroll").await.into_iter().collect();
    assert_eq!(both, BTreeSet::from([a.clone(), b.clone()]));
    // Handing bob's key to alice would give her two live keys named "payroll".
    assert_name_taken(
        admin
            .call(
                ext::OP_SET_KEY_POLICY,
                ext::set_key_policy_payload(&b, Some("alice"), None, None),
            )
            .await,
    );
    bob.call(op::GET, uid(&b)).await.unwrap();
    // Once alice's key is destroyed the name is hers to use again.
    alice.call(op::DESTROY, uid(&a)).await.unwrap();
    create_key(&mut alice, Some("payroll")).await;
    server.stop().await;
}

#[tokio::test]
async fn re_key_moves_the_name_within_its_owner_only() {
    let server = server().await;
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let a = create_key(&mut alice, Some("ledger")).await;
    let b = create_key(&mut bob, Some("ledger")).await;
    let a2 = uid_of(&alice.call(op::RE_KEY, uid(&a)).await.unwrap());
    assert_eq!(located(&mut alice, "ledger").await, vec![a2.clone()]);
    assert_eq!(located(&mut bob, "ledger").await, vec![b.clone()]);
    let b2 = uid_of(&bob.call(op::RE_KEY, uid(&b)).await.unwrap());
    assert_eq!(located(&mut bob, "ledger").await, vec![b2]);
    assert_eq!(located(&mut alice, "ledger").await, vec![a2.clone()]);
    // The old version gave its name up: re-keying it again is refused as before, and
    // the new one rotates on.
    assert!(alice.call(op::RE_KEY, uid(&a)).await.is_err());
    alice.call(op::RE_KEY, uid(&a2)).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_callers_own_key_is_located_before_a_shared_one_of_the_same_name() {
    let server = server().await;
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let open = Attr::new("x-akm-access-mode", Value::TextString("any".into()));
    let shared = uid_of(&bob.call(op::CREATE, create("team", &[open])).await.unwrap());
    assert_eq!(located(&mut alice, "team").await, vec![shared.clone()]);
    // Bob took the name first; alice still gets a key of her own under it, and a client
    // that takes the first match gets hers, though bob's is older.
    let own = create_key(&mut alice, Some("team")).await;
    assert_eq!(located(&mut alice, "team").await, vec![own, shared.clone()]);
    assert_eq!(located(&mut bob, "team").await, vec![shared]);
    server.stop().await;
}

#[test]
fn the_cli_refuses_to_guess_between_keys_of_one_name() {
    use crate::cli::{json, serve, write_config};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    let akm = |args: &[&str]| {
        std::process::Command::new(crate::cli::BIN)
            .arg("--config")
            .arg(&config)
            .args(args)
            .args(["--server", &format!("localhost:{port}")])
            .output()
            .unwrap()
    };
    let first = json(&akm(&["key", "create", "--name", "dup", "--json"]));
    let first = first["uid"].as_str().unwrap().to_owned();
    let moved = akm(&["key", "policy", "set", &first, "--owner", "bob"]);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    // The name is now bob's; the administrator may use it for a key of her own.
    let second = json(&akm(&["key", "create", "--name", "dup", "--json"]));
    let second = second["uid"].as_str().unwrap().to_owned();
    let out = akm(&["key", "get", "--name", "dup"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 keys named \"dup\"") && err.contains(&first) && err.contains(&second),
        "{err}"
    );
    // Giving hers to bob too would give him two.
    let out = akm(&["key", "policy", "set", &second, "--owner", "bob"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name already in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// (owner, names) of every object on a node, read from its database.
fn owners_of(node: &crate::support::cluster::Node, uids: &[&str]) -> Vec<Option<String>> {
    uids.iter()
        .map(|u| node.policy_of(u).map(|(owner, _, _)| owner))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirrored_pair_holds_both_owners_keys_of_one_name() {
    let c = Cluster::start(Options::nodes(2));
    let mut alice = c.client_as(0, "alice").await;
    let mut bob = c.client_as(1, "bob").await;
    let a = create_key(&mut alice, Some("shared-name")).await;
    // Bob creates his on the other node once alice's is there: the mirrored copy of her key
    // does not take the name from him.
    assert!(
        eventually(Duration::from_secs(20), || c.nodes[1]
            .policy_of(&a)
            .is_some()),
        "alice's key did not reach n1: {}",
        c.nodes[1].log()
    );
    let b = create_key(&mut bob, Some("shared-name")).await;
    let wanted = vec![Some("alice".to_string()), Some("bob".to_string())];
    for node in &c.nodes {
        assert!(
            eventually(Duration::from_secs(20), || owners_of(node, &[&a, &b])
                == wanted),
            "{} did not get both keys: {}",
            node.id,
            node.log()
        );
    }
    // Each node answers each owner with that owner's key only, and still refuses an owner's
    // second live key of the name, whichever node made the first.
    for i in 0..2 {
        let mut alice = c.client_as(i, "alice").await;
        let mut bob = c.client_as(i, "bob").await;
        assert_eq!(located(&mut alice, "shared-name").await, vec![a.clone()]);
        assert_eq!(located(&mut bob, "shared-name").await, vec![b.clone()]);
        assert_name_taken(alice.call(op::CREATE, create("shared-name", &[])).await);
        assert_name_taken(bob.call(op::CREATE, create("shared-name", &[])).await);
    }
}
