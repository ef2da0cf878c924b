//! Key versions and rotation (Re-key, KMIP 2.1 §6.1.42) against the real server: each Re-key
//! makes the next version, the name moves to it, the versions are linked both ways and
//! numbered by Rotate Generation, and data encrypted under every earlier version stays
//! decryptable, also after the old versions are deactivated.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    block_cipher_mode as bcm, link_type, operation as op, result_reason as rr,
    revocation_reason_code as rrc, state,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

fn gcm() -> Ttlv {
    Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::GCM)],
    )
}

async fn locate_name(c: &mut Client, n: &str) -> Vec<String> {
    let v = c.version;
    let got = c
        .call(op::LOCATE, filters(v, &[Attr::new("Name", name(n))]))
        .await
        .unwrap();
    uids_of(&got)
}

/// Ciphertext, IV and tag of `data` under key `u`.
async fn encrypt(c: &mut Client, u: &str, data: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut req = uid(u);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, data));
    let got = c.call(op::ENCRYPT, req).await.unwrap();
    let b = |t| got.child(t).and_then(Ttlv::as_bytes).unwrap().to_vec();
    (
        b(Tag::DATA),
        b(Tag::IV_COUNTER_NONCE),
        b(Tag::AUTHENTICATED_ENCRYPTION_TAG),
    )
}

async fn decrypt(c: &mut Client, u: &str, sealed: &(Vec<u8>, Vec<u8>, Vec<u8>)) -> Vec<u8> {
    let mut req = uid(u);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, sealed.0.clone()));
    req.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, sealed.1.clone()));
    req.push(Ttlv::bytes(
        Tag::AUTHENTICATED_ENCRYPTION_TAG,
        sealed.2.clone(),
    ));
    let got = c.call(op::DECRYPT, req).await.unwrap();
    got.child(Tag::DATA)
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec()
}

fn links(attrs: &[Attr]) -> Vec<(u32, String)> {
    attrs
        .iter()
        .filter(|a| a.name == "Link")
        .filter_map(|a| match &a.value {
            Value::Structure(c) => Some((
                c.iter().find(|t| t.tag == Tag::LINK_TYPE)?.as_enum()?,
                c.iter()
                    .find(|t| t.tag == Tag::LINKED_OBJECT_IDENTIFIER)?
                    .as_text()?
                    .to_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_key_rotated_three_times_decrypts_data_from_every_version() {
    let server = TestServer::start().await;
    let mut c = server.client("app", V::V2_1).await;
    let first = create_key(&mut c, Some("orders")).await;
    c.call(op::ACTIVATE, uid(&first)).await.unwrap();
    let mut versions = vec![first];
    let mut sealed = Vec::new();
    for round in 0..4 {
        // The application always uses the key by name: it finds the newest version.
        let current = locate_name(&mut c, "orders").await;
        assert_eq!(current, [versions[round].clone()]);
        let data = format!("record written under version {round}");
        sealed.push((
            data.clone(),
            encrypt(&mut c, &current[0], data.as_bytes()).await,
        ));
        if round < 3 {
            let next = uid_of(&c.call(op::RE_KEY, uid(&current[0])).await.unwrap());
            versions.push(next);
        }
    }
    assert_eq!(versions.len(), 4);
    for (i, u) in versions.iter().enumerate() {
        let attrs = get_attrs(
            &mut c,
            u,
            &[
                "Rotate Generation",
                "Rotate Latest",
                "Link",
                "Name",
                "State",
            ],
        )
        .await;
        let get = |n: &str| attrs.iter().find(|a| a.name == n).map(|a| a.value.clone());
        assert_eq!(get("Rotate Generation"), Some(Value::Integer(i as i32)));
        assert_eq!(get("Rotate Latest"), Some(Value::Boolean(i == 3)));
        assert_eq!(get("State"), Some(Value::Enumeration(state::ACTIVE)));
        assert_eq!(
            get("Name").is_some(),
            i == 3,
            "only the newest version has the name"
        );
        let l = links(&attrs);
        if i > 0 {
            assert!(l.contains(&(link_type::REPLACED_OBJECT_LINK, versions[i - 1].clone())));
        }
        if i < 3 {
            assert!(l.contains(&(link_type::REPLACEMENT_OBJECT_LINK, versions[i + 1].clone())));
        }
    }
    // Every version decrypts what was encrypted under it.
    for (u, (data, s)) in versions.iter().zip(&sealed) {
        assert_eq!(decrypt(&mut c, u, s).await, data.as_bytes());
    }
    // Retire the old versions: they still decrypt, but no longer encrypt.
    for u in &versions[..3] {
        let mut rv = uid(u);
        rv.push(Ttlv::structure(
            Tag::REVOCATION_REASON,
            vec![Ttlv::enumeration(
                Tag::REVOCATION_REASON_CODE,
                rrc::SUPERSEDED,
            )],
        ));
        c.call(op::REVOKE, rv).await.unwrap();
    }
    for (u, (data, s)) in versions.iter().zip(&sealed) {
        assert_eq!(decrypt(&mut c, u, s).await, data.as_bytes());
    }
    let mut req = uid(&versions[0]);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, b"new data".to_vec()));
    assert_eq!(
        reason(c.call(op::ENCRYPT, req).await),
        rr::WRONG_KEY_LIFECYCLE_STATE
    );
    // The versions have different key material.
    let digests: std::collections::BTreeSet<_> = {
        let mut d = std::collections::BTreeSet::new();
        for u in &versions {
            let got = c.call(op::GET, uid(u)).await.unwrap();
            d.insert(key_bytes(&got));
        }
        d
    };
    assert_eq!(digests.len(), 4);
    server.stop().await;
}

#[tokio::test]
async fn rekey_errors_and_offset() {
    let server = TestServer::start().await;
    let mut c = server.client("app", V::V1_4).await;
    let k = create_key(&mut c, Some("rk")).await;
    c.call(op::ACTIVATE, uid(&k)).await.unwrap();
    // With an Offset, the replacement activates that long after now: Pre-Active until then.
    let mut req = uid(&k);
    req.push(Ttlv::new(Tag::OFFSET, Value::Interval(86400)));
    let next = uid_of(&c.call(op::RE_KEY, req).await.unwrap());
    assert_eq!(state_of(&mut c, &next).await, state::PRE_ACTIVE);
    // A replaced key is not replaced again (versions stay a single chain).
    assert_eq!(
        reason(c.call(op::RE_KEY, uid(&k)).await),
        rr::PERMISSION_DENIED
    );
    // Not found, not a symmetric key, someone else's, destroyed.
    assert_eq!(
        reason(c.call(op::RE_KEY, uid("nope")).await),
        rr::ITEM_NOT_FOUND
    );
    let mut other = server.client("mallory", V::V1_4).await;
    assert_eq!(
        reason(other.call(op::RE_KEY, uid(&next)).await),
        rr::PERMISSION_DENIED
    );
    let gone = create_key(&mut c, None).await;
    c.call(op::DESTROY, uid(&gone)).await.unwrap();
    assert_eq!(
        reason(c.call(op::RE_KEY, uid(&gone)).await),
        rr::ITEM_NOT_FOUND
    );
    // A Re-key that names a server-set attribute is refused.
    let mut req = uid(&next);
    req.push(template(
        V::V1_4,
        &[Attr::new("State", Value::Enumeration(1))],
    ));
    assert_eq!(reason(c.call(op::RE_KEY, req).await), rr::INVALID_FIELD);
    server.stop().await;
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const DAY: u32 = 86_400;

/// Creates a named AES key, active since two days ago, with `extra` attributes.
async fn scheduled_key(c: &mut Client, key_name: &str, extra: Vec<Attr>) -> String {
    let mut attrs = aes_attrs(Some(key_name));
    attrs.push(Attr::new(
        "Activation Date",
        Value::DateTime(now() - 2 * i64::from(DAY)),
    ));
    attrs.extend(extra);
    uid_of(
        &c.call(op::CREATE, create_payload(c.version, &attrs))
            .await
            .unwrap(),
    )
}

fn schedule(interval: u32) -> Vec<Attr> {
    vec![
        Attr::new("Rotate Automatic", Value::Boolean(true)),
        Attr::new("Rotate Interval", Value::Interval(interval)),
    ]
}

async fn rotate_at(server: &TestServer, at: i64) -> Vec<akm::ops::rotation::Rotated> {
    let ctx = server.ctx.clone();
    tokio::task::spawn_blocking(move || akm::ops::rotation::rotate_due(&ctx, at))
        .await
        .unwrap()
}

#[tokio::test]
async fn scheduled_rotation_rolls_due_keys_and_deactivates_only_when_asked() {
    let server = TestServer::start().await;
    let mut c = server.client("ops", V::V2_1).await;
    let daily = scheduled_key(&mut c, "daily", schedule(DAY)).await;
    let mut with_offset = schedule(DAY);
    with_offset.push(Attr::new("Rotate Offset", Value::Interval(3600)));
    let retiring = scheduled_key(&mut c, "retiring", with_offset).await;
    let manual = scheduled_key(&mut c, "manual", vec![]).await;
    let weekly = scheduled_key(&mut c, "weekly", schedule(7 * DAY)).await;

    let t = now();
    let rotated = rotate_at(&server, t).await;
    let mut old: Vec<&str> = rotated.iter().map(|r| r.old_uid.as_str()).collect();
    old.sort_unstable();
    let mut expected = vec![daily.as_str(), retiring.as_str()];
    expected.sort_unstable();
    assert_eq!(old, expected, "{rotated:?}");
    assert!(rotated.iter().all(|r| r.result.is_ok()), "{rotated:?}");

    // The name moved; the old version stays Active, with no Deactivation Date.
    let current = locate_name(&mut c, "daily").await;
    assert_eq!(current.len(), 1);
    assert_ne!(current[0], daily);
    let attrs = get_attrs(&mut c, &daily, &["State", "Deactivation Date"]).await;
    assert_eq!(attrs.len(), 1, "{attrs:?}");
    assert_eq!(attrs[0].value, Value::Enumeration(state::ACTIVE));
    // The schedule carries over to the new version.
    let attrs = get_attrs(
        &mut c,
        &current[0],
        &["Rotate Automatic", "Rotate Interval", "Rotate Generation"],
    )
    .await;
    assert_eq!(attrs.len(), 3, "{attrs:?}");
    // A policy with a Rotate Offset deactivates the old version that long after.
    let attrs = get_attrs(&mut c, &retiring, &["Deactivation Date"]).await;
    assert_eq!(attrs[0].value, Value::DateTime(t + 3600));
    // Keys without a schedule, or not yet due, are untouched.
    assert_eq!(locate_name(&mut c, "manual").await, vec![manual]);
    assert_eq!(locate_name(&mut c, "weekly").await, vec![weekly]);

    // Nothing is due again until the next interval has passed; then the new version rolls.
    assert!(rotate_at(&server, t + 10).await.is_empty());
    let again = rotate_at(&server, t + i64::from(DAY)).await;
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again.iter().any(|r| r.old_uid == current[0]));

    // Every rotation is in the audit journal.
    let journal = std::fs::read_to_string(server.ctx.audit.path()).unwrap();
    assert!(journal.contains("rotation"), "{journal}");
    assert!(journal.contains(&daily));
    server.stop().await;
}

/// `akm` with `--config` and `--server`, as an operator runs it.
fn akm_cli(config: &std::path::Path, port: u16, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_akm"))
        .arg("--config")
        .arg(config)
        .args(args)
        .args(["--server", &format!("localhost:{port}")])
        .output()
        .unwrap()
}

#[test]
fn the_cli_rotates_a_key_and_gets_it_by_name_and_version() {
    use crate::cli::{json, serve, write_config};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    let created = json(&akm_cli(
        &config,
        port,
        &["key", "create", "--name", "ledger", "--activate", "--json"],
    ));
    let mut versions = vec![created["uid"].as_str().unwrap().to_owned()];
    for _ in 0..2 {
        let last = versions.last().unwrap().clone();
        let rotated = json(&akm_cli(&config, port, &["key", "rotate", &last, "--json"]));
        assert_eq!(rotated["replaces"], last.as_str());
        versions.push(rotated["uid"].as_str().unwrap().to_owned());
    }
    let newest = json(&akm_cli(
        &config,
        port,
        &["key", "get", "--name", "ledger", "--json"],
    ));
    assert_eq!(newest["uid"], versions[2].as_str());
    for (v, uid) in versions.iter().enumerate() {
        let got = json(&akm_cli(
            &config,
            port,
            &[
                "key",
                "get",
                "--name",
                "ledger",
                "--version",
                &v.to_string(),
                "--json",
            ],
        ));
        assert_eq!(got["uid"], uid.as_str(), "version {v}");
    }
    let missing = akm_cli(
        &config,
        port,
        &["key", "get", "--name", "ledger", "--version", "7"],
    );
    assert_eq!(missing.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("versions 0 to 2"));
    // A name nobody holds is no usage error: exit 1, saying so.
    let unknown = akm_cli(&config, port, &["key", "get", "--name", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no key named \"nope\""));
    server.kill().unwrap();
    server.wait().unwrap();
}
