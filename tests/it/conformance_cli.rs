//! `akm conformance replay` as an operator runs it against `akm serve`: a passing and a
//! failing test-case file give one line each, a path-level difference, the final
//! `N passed, M failed` line and exit code 1; an unreadable file fails without stopping the
//! others.

use crate::cli::{serve, write_config};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_akm");

/// A one-exchange test case: Create an AES key, expecting `status` (and the object type).
fn create_case(status: &str) -> String {
    format!(
        r#"<KMIP>
<RequestMessage>
  <RequestHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="2"/>
      <ProtocolVersionMinor type="Integer" value="1"/>
    </ProtocolVersion>
    <BatchCount type="Integer" value="1"/>
  </RequestHeader>
  <BatchItem>
    <Operation type="Enumeration" value="Create"/>
    <RequestPayload>
      <ObjectType type="Enumeration" value="SymmetricKey"/>
      <Attributes>
        <CryptographicAlgorithm type="Enumeration" value="AES"/>
        <CryptographicLength type="Integer" value="256"/>
      </Attributes>
    </RequestPayload>
  </BatchItem>
</RequestMessage>
<ResponseMessage>
  <ResponseHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="2"/>
      <ProtocolVersionMinor type="Integer" value="1"/>
    </ProtocolVersion>
    <TimeStamp type="DateTime" value="$NOW"/>
    <BatchCount type="Integer" value="1"/>
  </ResponseHeader>
  <BatchItem>
    <Operation type="Enumeration" value="Create"/>
    <ResultStatus type="Enumeration" value="{status}"/>
    <ResponsePayload>
      <ObjectType type="Enumeration" value="SymmetricKey"/>
      <UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
    </ResponsePayload>
  </BatchItem>
</ResponseMessage>
</KMIP>
"#
    )
}

fn replay(config: &Path, port: u16, files: &[&Path]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["conformance", "replay", "--table", "--server"])
        .arg(format!("localhost:{port}"))
        .args(files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

#[test]
fn replay_reports_each_file_and_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    let good = dir.path().join("GOOD-M-1-21.xml");
    let bad = dir.path().join("BAD-M-1-21.xml");
    let missing = dir.path().join("MISSING-M-1-21.xml");
    std::fs::write(&good, create_case("Success")).unwrap();
    std::fs::write(&bad, create_case("OperationFailed")).unwrap();

    let (code, out) = replay(&config, port, &[&good]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS GOOD-M-1-21.xml (1 steps)"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 0 failed"), "{out}");

    let (code, out) = replay(&config, port, &[&bad, &missing, &good]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL BAD-M-1-21.xml: step 1"), "{out}");
    assert!(
        out.contains(
            "ResponseMessage/BatchItem/ResultStatus: expected OperationFailed, got Success"
        ),
        "{out}"
    );
    assert!(out.contains("FAIL MISSING-M-1-21.xml"), "{out}");
    assert!(out.contains("| GOOD | - | - | 1/1 | - |"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 2 failed"), "{out}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// With `--server`, `--cert`, `--key` and `--ca` the replayer reads no config file: it runs
/// from a directory that has none. Without them and without a config, it says what to give.
#[test]
fn replay_needs_no_config_file_with_the_four_connection_options() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    let elsewhere = tempfile::tempdir().unwrap();
    let good = elsewhere.path().join("GOOD-M-1-21.xml");
    std::fs::write(&good, create_case("Success")).unwrap();
    let certs = dir.path().join("certs");
    let out = Command::new(BIN)
        .current_dir(elsewhere.path())
        .args(["conformance", "replay", "--server"])
        .arg(format!("localhost:{port}"))
        .arg("--cert")
        .arg(certs.join("admin.crt"))
        .arg("--key")
        .arg(certs.join("admin.key"))
        .arg("--ca")
        .arg(certs.join("ca.crt"))
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS GOOD-M-1-21.xml (1 steps)"),
        "{stdout}"
    );
    let out = Command::new(BIN)
        .current_dir(elsewhere.path())
        .args(["conformance", "replay", "--server"])
        .arg(format!("localhost:{port}"))
        .arg(&good)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--cert, --key and --ca"), "{stderr}");
    server.kill().unwrap();
    server.wait().unwrap();
}
