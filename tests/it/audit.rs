//! The audit journal against the real server: every request (allowed, denied, malformed) and
//! every refused connection leaves one record; the chain of a real journal verifies; and for
//! each kind of tampering, an altered copy of that real journal is reported with exactly that
//! fault at exactly that serial, by the library and by `akm audit verify`.

use crate::support::kmip::*;
use crate::support::server::{audit_public_key, AuditSetup, TestServer};
use akm::audit::record::{unescape, Record};
use akm::audit::verify::{self, FaultKind, Options, Report};
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;
use std::path::{Path, PathBuf};

/// Verify options for test journals: the test key, archive mode (must end closed).
pub fn options() -> Options {
    Options {
        public_keys: vec![audit_public_key()],
        max_age_secs: None,
        first_serial: None,
        now_ms: akm::audit::now_ms(),
    }
}

/// Verifies `lines` written to a temp file.
fn verify_lines(lines: &[String]) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.log");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    verify::verify_file(&path, &options()).unwrap()
}

/// The journal's records, parsed.
pub fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| Record::parse_line(l).unwrap())
        .collect()
}

/// Runs a mix of allowed, denied, failing and malformed requests, stops the server and
/// returns its journal (moved out of the server's temp dir).
async fn real_journal(out: &Path) -> PathBuf {
    let server = TestServer::start_audited(AuditSetup {
        checkpoint_every: Some(5),
        ..AuditSetup::default()
    })
    .await;
    let mut alice = server.client("alice", V::V1_4).await;
    let mut bob = server.client("bob", V::V2_0).await;
    for i in 0..6 {
        let uid = create_key(&mut alice, Some(&format!("audit-key-{i}"))).await;
        alice.call(op::GET, uid_payload(&uid)).await.unwrap();
        // Bob may not read Alice's key: a denied request is recorded too.
        let denied = bob.call(op::GET, uid_payload(&uid)).await;
        assert_ne!(reason(denied), 0);
    }
    let missing = alice.call(op::GET, uid_payload("no-such-key")).await;
    assert_eq!(reason(missing), rr::ITEM_NOT_FOUND);
    // A well-framed but malformed message.
    let mut bad = akm::client::request(V::V1_4, &[(op::DISCOVER_VERSIONS, vec![])]).encode();
    bad[24 + 12] = 0xFF;
    alice.send_bytes(&bad).await.unwrap();
    let journal = server.journal_path();
    let dir = server.stop().await;
    let kept = out.join("audit.log");
    std::fs::copy(&journal, &kept).unwrap();
    drop(dir);
    kept
}

fn uid_payload(u: &str) -> Vec<akm::ttlv::Ttlv> {
    uid(u)
}

#[tokio::test]
async fn every_request_is_recorded_with_normalized_fields_and_the_chain_verifies() {
    let out = tempfile::tempdir().unwrap();
    let journal = real_journal(out.path()).await;
    let report = verify::verify_file(&journal, &options()).unwrap();
    assert!(report.fault.is_none(), "{:?}", report.fault);
    let recs = records(&journal);
    assert_eq!(report.records, recs.len() as u64);
    assert!(report.checkpoints >= 5, "{report:?}");
    // Serials run 1.. without gaps; the journal starts with `start` and ends with `stop` and
    // the final checkpoint.
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.serial().unwrap(), i as u64 + 1);
    }
    assert_eq!(recs[0].get("event"), Some("start"));
    assert_eq!(recs[recs.len() - 2].get("event"), Some("stop"));
    assert_eq!(recs.last().unwrap().get("reason"), Some("final"));

    let kmip: Vec<&Record> = recs
        .iter()
        .filter(|r| r.get("event") == Some("kmip"))
        .collect();
    assert_eq!(kmip.len(), 6 * 3 + 1);
    let create = kmip[0];
    for key in [
        "time",
        "server",
        "server_addr",
        "client",
        "client_port",
        "user",
        "groups",
        "cert_sha256",
        "protocol",
        "operation",
        "uid",
        "name",
        "outcome",
        "duration_ms",
    ] {
        assert!(
            create.get(key).is_some(),
            "Create record lacks {key}: {}",
            create.to_line()
        );
    }
    assert_eq!(create.get("operation"), Some("Create"));
    assert_eq!(create.get("user"), Some("alice"));
    assert_eq!(create.get("groups"), Some("users"));
    assert_eq!(create.get("protocol"), Some("1.4"));
    assert_eq!(create.get("client"), Some("127.0.0.1"));
    assert_eq!(unescape(create.get("name").unwrap()), "audit-key-0");
    assert_eq!(create.get("outcome"), Some("success"));
    assert!(create.get("time").unwrap().ends_with('Z'));
    let denied = kmip[2];
    assert_eq!(denied.get("user"), Some("bob"));
    assert_eq!(denied.get("protocol"), Some("2.0"));
    assert_eq!(denied.get("outcome"), Some("failure"));
    assert!(denied.get("reason").is_some(), "{}", denied.to_line());
    assert_eq!(denied.get("uid"), kmip[0].get("uid"));
    // The Get requests carry no Name: the record still names the key.
    assert_eq!(kmip[1].get("operation"), Some("Get"));
    assert_eq!(unescape(kmip[1].get("name").unwrap()), "audit-key-0");
    let missing = kmip.last().unwrap();
    assert_eq!(missing.get("reason"), Some("ItemNotFound"));
    let malformed = recs
        .iter()
        .find(|r| r.get("event") == Some("message"))
        .expect("the malformed message is recorded");
    assert_eq!(malformed.get("reason"), Some("InvalidMessage"));
    assert_eq!(malformed.get("outcome"), Some("failure"));
}

/// The journal's lines and the index of a plain `kmip` record with two more plain records
/// after it, past the first few.
fn lines_and_target(journal: &Path) -> (Vec<String>, usize) {
    let lines: Vec<String> = std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let plain = |i: usize| {
        lines
            .get(i)
            .is_some_and(|l| Record::parse_line(l).unwrap().get("event") == Some("kmip"))
    };
    let k = (4..lines.len())
        .find(|&i| plain(i) && plain(i + 1) && plain(i - 1))
        .unwrap();
    (lines, k)
}

fn serial_of(line: &str) -> u64 {
    Record::parse_line(line).unwrap().serial().unwrap()
}

/// `line` with `key` set to `value` and its hash recomputed (a careful forger).
fn forge(line: &str, key: &str, value: &str) -> Record {
    let mut r = Record::parse_line(line).unwrap();
    for f in r.fields.iter_mut() {
        if f.0 == key {
            f.1 = value.to_owned();
        }
    }
    rehash(&mut r);
    r
}

fn rehash(r: &mut Record) {
    let h = r.compute_hash();
    for f in r.fields.iter_mut() {
        if f.0 == "hash" {
            f.1 = h.clone();
        }
    }
}

fn expect(report: Report, kind: FaultKind, serial: u64) {
    let fault = report.fault.expect("a fault is reported");
    assert_eq!((fault.kind, fault.serial), (kind, serial), "{fault}");
}

#[tokio::test]
async fn each_kind_of_tampering_is_reported_at_its_serial() {
    let out = tempfile::tempdir().unwrap();
    let journal = real_journal(out.path()).await;
    let (lines, k) = lines_and_target(&journal);
    let s = serial_of(&lines[k]);

    // Modified: one value changed in place.
    let mut m = lines.clone();
    m[k] = m[k]
        .replace("user=alice", "user=mallory")
        .replace("user=bob", "user=mallory");
    assert_ne!(m[k], lines[k]);
    expect(verify_lines(&m), FaultKind::Modified, s);

    // Modified and re-hashed: the next record's link gives it away.
    let mut m = lines.clone();
    m[k] = forge(&lines[k], "outcome", "success").to_line();
    m[k] = forge(&m[k], "user", "mallory").to_line();
    expect(verify_lines(&m), FaultKind::Modified, s);

    // Deleted.
    let mut d = lines.clone();
    d.remove(k);
    expect(verify_lines(&d), FaultKind::Deleted, s);

    // Inserted: a forged record that links correctly, placed before the real one.
    let mut i = lines.clone();
    i.insert(k, forge(&lines[k], "user", "mallory").to_line());
    expect(verify_lines(&i), FaultKind::Inserted, s);

    // Reordered: two records swapped.
    let mut r = lines.clone();
    r.swap(k, k + 1);
    expect(verify_lines(&r), FaultKind::Reordered, s);

    // Truncated: the last records (including the final checkpoint) cut off.
    let t = lines[..lines.len() - 3].to_vec();
    let last_kept = serial_of(t.last().unwrap());
    expect(verify_lines(&t), FaultKind::Truncated, last_kept + 1);

    // Forked: the chain goes on from record s-1 a second time (a restored copy went on).
    let mut f = lines[..k + 2].to_vec();
    f.push(forge(&lines[k], "uid", "other").to_line());
    expect(verify_lines(&f), FaultKind::Forked, s);

    // The whole tail rewritten and re-hashed: the next checkpoint's signature fails.
    let mut w: Vec<Record> = lines
        .iter()
        .map(|l| Record::parse_line(l).unwrap())
        .collect();
    for f in w[k].fields.iter_mut() {
        if f.0 == "user" {
            f.1 = "mallory".into();
        }
    }
    for j in k..w.len() {
        if j > k {
            let prev = w[j - 1].get("hash").unwrap().to_owned();
            for f in w[j].fields.iter_mut() {
                if f.0 == "prev" {
                    f.1 = prev.clone();
                }
            }
        }
        rehash(&mut w[j]);
    }
    let cp = w[k..]
        .iter()
        .find(|r| r.is_checkpoint())
        .unwrap()
        .serial()
        .unwrap();
    let rewritten: Vec<String> = w.iter().map(Record::to_line).collect();
    expect(verify_lines(&rewritten), FaultKind::Modified, cp);

    // The head cut off: only noticed when the log must start at serial 1.
    let headless = lines[3..].to_vec();
    assert!(verify_lines(&headless).fault.is_none());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("headless.log");
    std::fs::write(&path, headless.join("\n") + "\n").unwrap();
    let mut from_start = options();
    from_start.first_serial = Some(1);
    expect(
        verify::verify_file(&path, &from_start).unwrap(),
        FaultKind::Deleted,
        1,
    );
    assert!(verify::verify_file(&journal, &from_start)
        .unwrap()
        .fault
        .is_none());

    // Exact copies (a sink re-sending after a reconnect) are not a fault.
    let mut dup = lines[..k + 2].to_vec();
    dup.extend_from_slice(&lines[k - 1..]);
    let report = verify_lines(&dup);
    assert!(report.fault.is_none(), "{:?}", report.fault);
    assert_eq!(report.duplicates, 3);

    // A wrong public key fails at the first checkpoint.
    let mut wrong = options();
    wrong.public_keys = vec![akm::audit::signer::Signer::from_seed(&[1; 32]).public_key()];
    let report = verify::verify_file(&journal, &wrong).unwrap();
    assert_eq!(report.fault.unwrap().kind, FaultKind::Modified);
}

#[tokio::test]
async fn a_refused_connection_is_recorded() {
    let server = TestServer::start().await;
    let stranger = akm::pki::Ca::generate("stranger CA").unwrap();
    let issued = stranger
        .issue_client("eve", &[], akm::pki::Validity::days_from_now(1))
        .unwrap();
    let refused = server
        .connect(server.client_tls_for(&issued), V::V1_4)
        .await;
    if let Ok(mut c) = refused {
        // TLS 1.3 reports the client certificate's rejection on the first read.
        assert!(c.call(op::DISCOVER_VERSIONS, vec![]).await.is_err());
    }
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let recs = records(&journal);
    let tls = recs
        .iter()
        .find(|r| r.get("event") == Some("tls"))
        .expect("the refused handshake is recorded");
    assert_eq!(tls.get("outcome"), Some("failure"));
    assert!(tls.get("client").is_some());
}

#[tokio::test]
async fn a_response_too_large_is_recorded_as_the_failure_the_client_got() {
    use akm::ttlv::{Tag, Ttlv, Value};
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let u = create_key(&mut c, Some("too-large")).await;
    let mut msg = akm::client::request(V::V1_4, &[(op::GET, uid(&u))]);
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::integer(Tag::MAXIMUM_RESPONSE_SIZE, 1));
        }
    }
    c.send(&msg).await.unwrap();
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let get = records(&journal)
        .into_iter()
        .find(|r| r.get("operation") == Some("Get"))
        .unwrap();
    assert_eq!(get.get("outcome"), Some("failure"));
    assert_eq!(get.get("reason"), Some("ResponseTooLarge"));
}

#[test]
fn a_unix_datagram_sink_delivers_records() {
    use akm::audit::format::{Format, Framing};
    use akm::audit::sink::{Sink, SinkSettings, Transport};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log.sock");
    let receiver = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    let mut sink = Sink::start(SinkSettings {
        transport: Transport::Unix(socket),
        framing: Framing::Rfc3164,
        format: Format::KeyValue,
        app_name: "akm-audit".into(),
        facility: 10,
        hostname: "h".into(),
        queue_records: 10,
        journal: None,
    })
    .unwrap();
    let mut r = Record::default();
    r.push("v", "1");
    r.push("serial", "1");
    r.push("event", "start");
    sink.deliver(&[std::sync::Arc::new(r.clone())]);
    let mut buf = [0u8; 4096];
    let n = receiver.recv(&mut buf).unwrap();
    let got = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(got.starts_with("<86>"), "{got}");
    assert!(got.ends_with(&format!(": {}", r.to_line())), "{got}");
    sink.stop();
}

/// On demand: `cargo test --release --test it audit_throughput -- --ignored --nocapture`.
/// Prints audited requests per second with 16 concurrent clients (each request's record is
/// fsynced before its response; concurrent records share one fdatasync).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn audit_throughput() {
    let server = TestServer::start().await;
    let mut setup = server.client("bench", V::V1_4).await;
    let u = create_key(&mut setup, Some("bench-key")).await;
    let per_client = 300;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut c = server.client(&format!("bench{i}"), V::V1_4).await;
        let u = u.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_client {
                // Denied (another user's key): a full dispatch and a record, no key unwrap.
                let _ = c.call(op::GET, uid(&u)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = 16 * per_client;
    println!(
        "audit_throughput: {n} audited requests in {secs:.2} s = {:.0} requests/s",
        n as f64 / secs
    );
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let report = verify::verify_file(&journal, &options()).unwrap();
    assert!(report.fault.is_none());
}

#[tokio::test]
async fn a_certificate_refused_for_its_identity_is_recorded_with_its_fingerprint() {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
    use rustls::RootCertStore;
    // A trusted CA that signs a client certificate without a common name.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "audit test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = akm::pki::Ca::from_pem(ca_cert.pem().as_bytes(), ca_key.serialize_pem().as_bytes())
        .unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut leaf_params = CertificateParams::new(vec![]).unwrap();
    leaf_params.distinguished_name = DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "users");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let server_cert = ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let tls = akm::server::tls::server_config_from(
        vec![server_cert.cert_der().unwrap()],
        server_cert.key_der().unwrap(),
        roots.clone(),
        vec![],
    )
    .unwrap();
    let server = TestServer::start_with_tls(ca, tls, crate::support::server::test_settings()).await;
    let client_tls = akm::tls::client_config_from(
        vec![leaf.der().clone()],
        rustls_pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        roots,
    )
    .unwrap();
    if let Ok(mut c) = server.connect(client_tls, V::V1_4).await {
        assert!(c.call(op::DISCOVER_VERSIONS, vec![]).await.is_err());
    }
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let fingerprint = hex::encode(akm::crypto::backend::prim::digest::digest(
        &akm::crypto::backend::prim::digest::SHA256,
        leaf.der(),
    ));
    let refused = records(&journal)
        .into_iter()
        .find(|r| r.get("event") == Some("tls"))
        .expect("the refused certificate is recorded");
    assert_eq!(refused.get("cert_sha256"), Some(fingerprint.as_str()));
    assert_eq!(
        unescape(refused.get("detail").unwrap()),
        "client certificate refused"
    );
}
