//! PyKMIP 0.11's own integration suite (`kmip/tests/integration` in the PyPI sdist) run
//! against akm: for each KMIP version a fresh in-process server (port 0, PKI made at test time)
//! and a fresh client identity, a per-run `$HOME/.pykmip/pykmip.conf` whose `[akm]` section
//! points at it, then `pytest ... -m "not ignore" --config akm`. Owns fetching and unpacking
//! the sdist under `target/pykmip-sdist` and checking outcomes against the checked-in
//! exception list `tests/pykmip/suite_exceptions.txt`.
//!
//! At KMIP 1.2 and 1.4 exactly the tests not on the list must pass, and every listed test must
//! fail (an excepted test that passes fails this test, so the list stays honest). KMIP 2.0 is
//! run for information: its differences are printed, never fail the test. The suite has no
//! version setting of its own; `tests/pykmip/akm_suite_plugin.py` makes the client default to
//! the requested version. `AKM_SKIP_PYKMIP=1` skips, as for the other PyKMIP test.

use crate::pykmip::{pykmip_python, run_with_timeout, skip_requested, PemFiles};
use crate::support::server::{test_settings, TestServer};
use crate::support::venv::run_setup;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The sdist the suite comes from; the same release as the interop test's client.
const SDIST: &str = "pykmip-0.11.0";

/// Test-only Python packages the suite imports, pinned so runs are repeatable.
const SUITE_DEPS: [&str; 2] = ["pytest==9.2.0", "testtools==2.9.1"];

/// KMIP versions whose results must match the exception list.
const GATED: [&str; 2] = ["1.2", "1.4"];

/// KMIP version run for information only.
const INFORMATIONAL: &str = "2.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pykmip_integration_suite_passes_except_listed_tests() {
    if skip_requested() {
        println!("skipped: PyKMIP integration suite (AKM_SKIP_PYKMIP=1)");
        return;
    }
    let (python, suite) = tokio::task::spawn_blocking(prepare)
        .await
        .expect("prepare")
        .unwrap_or_else(|why| {
            panic!(
                "PyKMIP integration suite cannot run: {why}\nIt needs python3 with venv and \
                 pip and network access to PyPI (see README), or AKM_SKIP_PYKMIP=1 to skip \
                 on purpose."
            )
        });
    let exceptions = load_exceptions();
    let mut problems = Vec::new();
    for version in GATED {
        let (outcomes, output) = run_suite(&python, &suite, version).await;
        print!("{}", outcome_table(version, &outcomes, &exceptions));
        let found = compare(&outcomes, &exceptions);
        if !found.is_empty() {
            // The whole pytest output, tracebacks included, only when something is off.
            println!("---- full pytest output, KMIP {version} ----\n{output}");
        }
        problems.extend(found.into_iter().map(|p| format!("KMIP {version}: {p}")));
    }
    let (info, _) = run_suite(&python, &suite, INFORMATIONAL).await;
    println!("---- KMIP {INFORMATIONAL} (information only, does not fail) ----");
    print!("{}", outcome_table(INFORMATIONAL, &info, &exceptions));
    for p in compare(&info, &exceptions) {
        println!("KMIP {INFORMATIONAL}: {p}");
    }
    assert!(
        problems.is_empty(),
        "PyKMIP integration suite differs from tests/pykmip/suite_exceptions.txt:\n{}",
        problems.join("\n")
    );
}

/// Outcome of one suite test, as the plugin reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// The interpreter (with the suite's dependencies) and the unpacked sdist directory.
fn prepare() -> Result<(PathBuf, PathBuf), String> {
    let python = pykmip_python()?;
    ensure_suite_deps(&python)?;
    let suite = unpacked_sdist(&python)?;
    Ok((python, suite))
}

/// Installs pytest and testtools into the interpreter's environment when they are missing.
fn ensure_suite_deps(python: &Path) -> Result<(), String> {
    let present = Command::new(python)
        .args(["-c", "import pytest, testtools"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    run_setup(
        Command::new(python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(SUITE_DEPS),
        "pip install pytest testtools",
    )
}

/// `target/pykmip-sdist/pykmip-0.11.0`, downloaded with pip and unpacked with tar when absent.
/// It is never checked in: only the build directory holds it.
fn unpacked_sdist(python: &Path) -> Result<PathBuf, String> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pykmip-sdist");
    let dir = base.join(SDIST);
    if dir.join("kmip/tests/integration/conftest.py").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let version = SDIST.trim_start_matches("pykmip-");
    run_setup(
        Command::new(python)
            .args(["-m", "pip", "download", "--quiet", "--no-binary", ":all:"])
            .args(["--no-deps", "--dest"])
            .arg(&base)
            .arg(format!("pykmip=={version}")),
        "pip download the pykmip sdist",
    )?;
    run_setup(
        Command::new("tar")
            .arg("-xzf")
            .arg(base.join(format!("{SDIST}.tar.gz")))
            .arg("-C")
            .arg(&base),
        "unpack the pykmip sdist",
    )?;
    if dir.join("kmip/tests/integration/conftest.py").is_file() {
        Ok(dir)
    } else {
        Err(format!("{} has no kmip/tests/integration", dir.display()))
    }
}

/// Runs the suite at `version` against a fresh server and identity: test id → outcome, and
/// pytest's output.
async fn run_suite(
    python: &Path,
    suite: &Path,
    version: &str,
) -> (BTreeMap<String, Outcome>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The suite keeps one connection per test class and sleeps between some calls.
    let mut settings = test_settings();
    settings.limits.idle_timeout = Duration::from_secs(120);
    let server = TestServer::start_with(settings).await;
    let pki = PemFiles::new(&server.ca, dir.path());
    let (cert, key) = pki.client(&format!("pykmip-suite-{}", version.replace('.', "_")));
    let home = dir.path().join("home");
    write_config(&home, server.addr.port(), &cert, &key, &pki.ca_file);
    let results = dir.path().join("results.txt");
    let plugin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pykmip");

    let mut cmd = Command::new(python);
    cmd.current_dir(suite)
        .env("HOME", &home)
        .env("PYTHONPATH", &plugin_dir)
        .env("AKM_PYKMIP_KMIP_VERSION", version)
        .env("AKM_PYKMIP_RESULTS", &results)
        .args([
            "-m",
            "pytest",
            "-p",
            "akm_suite_plugin",
            "-p",
            "no:cacheprovider",
        ])
        .args([
            "kmip/tests/integration",
            "-m",
            "not ignore",
            "--config",
            "akm",
        ])
        .args(["-q", "-rfE", "-W", "ignore::DeprecationWarning"]);
    let log = dir.path().join("pytest.log");
    let (_, output) = tokio::task::spawn_blocking(move || run_with_timeout(cmd, &log))
        .await
        .expect("pytest run");
    server.stop().await;
    println!("---- PyKMIP integration suite, KMIP {version} ----");
    // The count, not every traceback: the whole output is printed when a result is unexpected.
    for line in output.lines().filter(|l| is_summary(l)) {
        println!("{line}");
    }
    let outcomes = read_outcomes(&results);
    assert!(
        !outcomes.is_empty(),
        "the suite at KMIP {version} reported no results; its output:\n{output}"
    );
    (outcomes, output)
}

/// pytest's final count line (the per-test outcomes are printed from the results file).
fn is_summary(line: &str) -> bool {
    line.contains(" passed") && line.contains(" in ")
}

/// Writes `$HOME/.pykmip/pykmip.conf` with the `[akm]` section the suite is run with. No SNI
/// and no hostname check on PyKMIP's side: `PROTOCOL_TLS` (its default, spelled out) with
/// `CERT_REQUIRED` verifies the server's chain against our CA.
fn write_config(home: &Path, port: u16, cert: &Path, key: &Path, ca: &Path) {
    let conf_dir = home.join(".pykmip");
    std::fs::create_dir_all(&conf_dir).expect("create .pykmip");
    let conf = format!(
        "[akm]\nhost=127.0.0.1\nport={port}\ncertfile={}\nkeyfile={}\nca_certs={}\n\
         cert_reqs=CERT_REQUIRED\nssl_version=PROTOCOL_TLS\ndo_handshake_on_connect=True\n\
         suppress_ragged_eofs=True\n",
        cert.display(),
        key.display(),
        ca.display()
    );
    std::fs::write(conf_dir.join("pykmip.conf"), conf).expect("write pykmip.conf");
}

/// The plugin's results file: `<outcome> <Class>::<test>` per line.
fn read_outcomes(path: &Path) -> BTreeMap<String, Outcome> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(outcome, test)| {
            let outcome = match outcome {
                "passed" => Outcome::Passed,
                "skipped" => Outcome::Skipped,
                _ => Outcome::Failed,
            };
            (test.to_owned(), outcome)
        })
        .collect()
}

/// The exception list: test id → reason.
fn load_exceptions() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pykmip/suite_exceptions.txt");
    let text = std::fs::read_to_string(&path).expect("read suite_exceptions.txt");
    parse_exceptions(&text)
}

fn parse_exceptions(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (test, reason) = line
            .split_once(char::is_whitespace)
            .unwrap_or_else(|| panic!("exception without a reason: {line:?}"));
        let reason = reason.trim();
        assert!(!reason.is_empty(), "exception without a reason: {line:?}");
        assert!(
            out.insert(test.to_owned(), reason.to_owned()).is_none(),
            "{test} is listed twice"
        );
    }
    out
}

/// One line per test, `pass`/`fail`/`skip`, the listed reason's category for an excepted
/// test, then the counts: what CI shows of the suite.
fn outcome_table(
    version: &str,
    outcomes: &BTreeMap<String, Outcome>,
    exceptions: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let (mut passed, mut excepted) = (0, 0);
    for (test, outcome) in outcomes {
        let word = match outcome {
            Outcome::Passed => "pass",
            Outcome::Failed => "fail",
            Outcome::Skipped => "skip",
        };
        passed += usize::from(*outcome == Outcome::Passed);
        let listed = exceptions
            .get(test)
            .map(|r| r.split(':').next().unwrap_or(r));
        excepted += usize::from(listed.is_some());
        match listed {
            Some(category) => out.push_str(&format!("{word} {test}  (listed: {category})\n")),
            None => out.push_str(&format!("{word} {test}\n")),
        }
    }
    out.push_str(&format!(
        "KMIP {version}: {passed} of {} passed, {excepted} listed as exceptions\n",
        outcomes.len()
    ));
    out
}

/// Everything where `outcomes` and the exception list disagree, one line each.
fn compare(
    outcomes: &BTreeMap<String, Outcome>,
    exceptions: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (test, outcome) in outcomes {
        match (outcome, exceptions.get(test)) {
            (Outcome::Passed, Some(reason)) => problems.push(format!(
                "{test} passes but is listed as an exception ({reason}): remove it from the list"
            )),
            (Outcome::Failed, None) => problems.push(format!("{test} failed")),
            (Outcome::Skipped, None) => problems.push(format!("{test} was skipped")),
            _ => {}
        }
    }
    let ran: BTreeSet<&String> = outcomes.keys().collect();
    for test in exceptions.keys().filter(|t| !ran.contains(t)) {
        problems.push(format!("{test} is listed as an exception but did not run"));
    }
    problems
}

#[test]
fn comparison_reports_unexpected_failures_passes_and_stale_entries() {
    let exceptions = parse_exceptions(
        "# comment\nA::listed_fails  refused: why\nA::listed_passes  issue-6: why\n\
         A::listed_gone  issue-6: why\n",
    );
    let outcomes: BTreeMap<String, Outcome> = [
        ("A::listed_fails", Outcome::Failed),
        ("A::listed_passes", Outcome::Passed),
        ("A::fine", Outcome::Passed),
        ("A::broken", Outcome::Failed),
        ("A::skipped", Outcome::Skipped),
    ]
    .into_iter()
    .map(|(t, o)| (t.to_owned(), o))
    .collect();
    let problems = compare(&outcomes, &exceptions);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with("A::broken failed"));
    assert!(problems[1].starts_with("A::listed_passes passes but is listed"));
    assert!(problems[2].starts_with("A::skipped was skipped"));
    assert!(problems[3].starts_with("A::listed_gone is listed"));
}

#[test]
fn checked_in_exception_list_parses_and_every_entry_has_a_category() {
    for (test, reason) in load_exceptions() {
        assert!(test.contains("::"), "{test}: not a Class::test id");
        assert!(
            ["refused:", "issue-6:", "client:", "gap:"]
                .iter()
                .any(|c| reason.starts_with(c)),
            "{test}: reason must start with a category: {reason}"
        );
    }
}

#[test]
fn outcome_table_marks_listed_tests_and_counts() {
    let exceptions = parse_exceptions("A::b  refused: why\n");
    let outcomes: BTreeMap<String, Outcome> =
        [("A::a", Outcome::Passed), ("A::b", Outcome::Failed)]
            .into_iter()
            .map(|(t, o)| (t.to_owned(), o))
            .collect();
    assert_eq!(
        outcome_table("1.2", &outcomes, &exceptions),
        "pass A::a\nfail A::b  (listed: refused)\nKMIP 1.2: 1 of 2 passed, 1 listed as exceptions\n"
    );
}
