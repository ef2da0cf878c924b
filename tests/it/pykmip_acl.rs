//! Access control seen by an independent client: PyKMIP 0.11 with an HR certificate (OU=HR)
//! gets a group-HR key, is refused the Finance key with Permission Denied, and its Locate
//! never lists the Finance key. The keys are made over mTLS by other HR and Finance
//! identities. Runs `tests/pykmip/acl.py` at KMIP 1.4 and 2.0; finds Python as the PyKMIP
//! interop test does (`AKM_SKIP_PYKMIP=1` skips both).

use crate::pykmip::{pykmip_python, run_with_timeout, skip_requested};
use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;
use akm::pki::Validity;
use akm::ttlv::Value;
use std::path::Path;
use std::process::Command;

/// A group-mode key created by `cn` of group `ou`.
async fn group_key(server: &TestServer, cn: &str, ou: &str, key_name: &str) -> String {
    let mut c = server
        .connect(server.client_tls(cn, &[ou]), V::V1_4)
        .await
        .unwrap();
    let mut attrs = aes_attrs(Some(key_name));
    attrs.push(Attr::new(
        "x-akm-access-mode",
        Value::TextString("group".into()),
    ));
    uid_of(
        &c.call(op::CREATE, create_payload(V::V1_4, &attrs))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pykmip_hr_client_gets_hr_keys_and_is_denied_finance_keys() {
    if skip_requested() {
        println!("skipped: PyKMIP access-control test (AKM_SKIP_PYKMIP=1)");
        return;
    }
    let python = pykmip_python().unwrap_or_else(|why| {
        panic!("PyKMIP access-control test cannot run: {why} (AKM_SKIP_PYKMIP=1 skips it)")
    });
    let server = TestServer::start().await;
    let hr_uid = group_key(&server, "alice", "HR", "hr-payroll").await;
    let finance_uid = group_key(&server, "bob", "Finance", "finance-ledger").await;

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, server.ca.cert_pem()).unwrap();
    let sam = server
        .ca
        .issue_client("sam", &["HR".into()], Validity::days_from_now(1))
        .unwrap();
    let (cert, key) = (dir.path().join("sam.crt"), dir.path().join("sam.key"));
    std::fs::write(&cert, &sam.cert_pem).unwrap();
    akm::secret_file::write_new(&key, sam.key_pem.as_bytes()).unwrap();
    let config_file = dir.path().join("pykmip.conf");
    std::fs::write(&config_file, "").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pykmip/acl.py");

    let mut failed = Vec::new();
    for version in ["1.4", "2.0"] {
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args(["--port", &server.addr.port().to_string()])
            .arg("--ca")
            .arg(&ca_file)
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--hr-uid", &hr_uid])
            .args(["--finance-uid", &finance_uid])
            .args(["--finance-name", "finance-ledger"])
            .args(["--version", version])
            .arg("--config-file")
            .arg(&config_file);
        let log = dir.path().join(format!("acl-{version}.log"));
        let (ok, output) = tokio::task::spawn_blocking(move || run_with_timeout(cmd, &log))
            .await
            .unwrap();
        println!("---- PyKMIP access control, KMIP {version} ----\n{output}");
        if !ok {
            failed.push(version);
        }
    }
    server.stop().await;
    assert!(
        failed.is_empty(),
        "PyKMIP access control failed for {failed:?}"
    );
}
