//! Replays the OASIS KMIP XML test cases against the real server (in-process, real mutual
//! TLS). Files of one profile group build on each other (TL-M-3 locates the key TL-M-2
//! created), so each group of each suite runs, in case-number order, against its own fresh
//! server as one client identity named after the group.
//! Every file on `tests/conformance/allow-list.txt` must pass; every other file is run too
//! and its result reported, so that progress is visible without failing the build.
//! `AKM_CONFORMANCE_README=1` rewrites the book's pass-count table (docs/src/conformance.md)
//! from this run (the variable keeps its name from when the table was in the README).

use crate::support::server::TestServer;
use crate::support::xml;
use akm::conformance::{self, replay, FileReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ALLOW_LIST: &str = "tests/conformance/allow-list.txt";
const TABLE_START: &str = "<!-- conformance-table:start -->";
const TABLE_END: &str = "<!-- conformance-table:end -->";

/// Replays `files` (one profile group of one suite) in order against a fresh server.
async fn replay_group(group: &str, files: &[PathBuf]) -> Vec<FileReport> {
    let server = TestServer::start_interop().await;
    let target = replay::Target {
        addr: format!("localhost:{}", server.addr.port()),
        tls: server.client_tls(group, &["users"]),
    };
    let mut reports = Vec::with_capacity(files.len());
    for path in files {
        let outcome = replay::replay_file(path, &target).await;
        reports.push(FileReport {
            path: path.clone(),
            outcome,
        });
    }
    server.stop().await;
    reports
}

fn crate_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oasis_test_cases_replay() {
    let Some(dir) = xml::vectors_dir() else {
        println!(
            "skipped: OASIS KMIP XML vectors not found at $AKM_KMIP_VECTORS or \
             ../shared/kmip/vectors (set AKM_KMIP_VECTORS)"
        );
        return;
    };
    let allow_text = std::fs::read_to_string(crate_file(ALLOW_LIST)).unwrap();
    let allowed = conformance::parse_allow_list(&allow_text);
    let files = xml::vector_files(&dir).unwrap();
    for entry in &allowed {
        assert!(
            dir.join(entry).is_file(),
            "{ALLOW_LIST}: {entry} is not a file under {}",
            dir.display()
        );
    }
    let mut groups: BTreeMap<(String, String), Vec<PathBuf>> = BTreeMap::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let key = (
            conformance::suite_of(&path),
            conformance::profile_group(&name),
        );
        groups.entry(key).or_default().push(path);
    }
    let mut reports = Vec::new();
    let mut regressions = Vec::new();
    for ((_, group), mut paths) in groups {
        paths.sort_by_key(|p| conformance::case_order(&p.to_string_lossy()));
        for report in replay_group(&group, &paths).await {
            let relative = report.path.strip_prefix(&dir).unwrap();
            let listed = allowed.contains(&relative.to_string_lossy().into_owned());
            if listed && report.outcome.is_err() {
                regressions.push(report.render());
            }
            let note = if listed {
                ""
            } else {
                "  (not on the allow-list)"
            };
            println!("{}{note}", report.render());
            reports.push(report);
        }
    }
    let table = conformance::pass_table(&reports);
    println!("\n{table}\n{}", conformance::totals(&reports));
    if std::env::var_os("AKM_CONFORMANCE_README").is_some() {
        write_readme_table(&table);
    }
    assert!(
        regressions.is_empty(),
        "allow-listed test cases failed:\n{}",
        regressions.join("\n")
    );
    let overclaimed = overclaimed_profiles(&reports);
    assert!(
        overclaimed.is_empty(),
        "Query claims profiles whose mandatory test cases fail:\n{}",
        overclaimed.join("\n")
    );
}

/// The mandatory test cases that fail in a profile Query claims (akm::ops::PROFILES_V2 for
/// 2.1, PROFILES_V1 for 1.4), but for CS-BC-M-3, which expects a fixed ciphertext from a key
/// the server generates at random (no server can pass it).
fn overclaimed_profiles(reports: &[FileReport]) -> Vec<String> {
    let mut out = Vec::new();
    for (claimed, suite) in [
        (akm::ops::PROFILES_V2, "2.1/mandatory"),
        (akm::ops::PROFILES_V1, "1.4/mandatory"),
    ] {
        for report in reports {
            let name = report.name();
            let group = conformance::profile_group(&name);
            if report.outcome.is_err()
                && conformance::suite_of(&report.path) == suite
                && claimed.iter().any(|(_, g)| *g == group)
                && !name.starts_with("CS-BC-M-3-")
            {
                out.push(format!("{suite}/{name}"));
            }
        }
    }
    out
}

/// The book's page that shows the pass-count table.
const TABLE_PAGE: &str = "docs/src/conformance.md";

/// Replaces the text between the table markers in the book's conformance page.
fn write_readme_table(table: &str) {
    let readme = crate_file(TABLE_PAGE);
    let text = std::fs::read_to_string(&readme).unwrap();
    let (Some(start), Some(end)) = (text.find(TABLE_START), text.find(TABLE_END)) else {
        panic!("{TABLE_PAGE} lacks the {TABLE_START} / {TABLE_END} markers");
    };
    let updated = format!("{}{TABLE_START}\n{table}{}", &text[..start], &text[end..]);
    std::fs::write(&readme, updated).unwrap();
    println!("{TABLE_PAGE}: table updated");
}

#[tokio::test]
async fn replay_failures_say_where() {
    let server = TestServer::start().await;
    let target = replay::Target {
        addr: format!("localhost:{}", server.addr.port()),
        tls: server.client_tls("conformance", &["users"]),
    };
    // A request that uses a placeholder no response has bound.
    let text = r#"<KMIP><RequestMessage><RequestHeader><ProtocolVersion>
        <ProtocolVersionMajor type="Integer" value="2"/>
        <ProtocolVersionMinor type="Integer" value="1"/></ProtocolVersion>
        <BatchCount type="Integer" value="1"/></RequestHeader>
        <BatchItem><Operation type="Enumeration" value="Get"/><RequestPayload>
        <UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_5"/>
        </RequestPayload></BatchItem></RequestMessage><ResponseMessage/></KMIP>"#;
    let case = xml::TestCase::parse("UNBOUND-M-1-21.xml", text).unwrap();
    let failure = replay::replay(&case, &target).await.unwrap_err();
    assert_eq!(failure.step, Some(1));
    assert!(
        failure.details[0].contains("$UNIQUE_IDENTIFIER_5")
            && failure.details[0].contains("not bound"),
        "{failure:?}"
    );
    // A file that cannot be read.
    let missing = Path::new("/nonexistent/NOPE-M-1-21.xml");
    let failure = replay::replay_file(missing, &target).await.unwrap_err();
    assert_eq!(failure.step, None);
    assert!(
        failure.details[0].starts_with("NOPE-M-1-21.xml"),
        "{failure:?}"
    );
    // A server that is not there.
    let addr = format!("localhost:{}", server.addr.port());
    server.stop().await;
    let gone = replay::Target {
        addr: addr.clone(),
        tls: target.tls.clone(),
    };
    let failure = replay::replay(&case, &gone).await.unwrap_err();
    assert_eq!(failure.step, None);
    assert!(
        failure.details[0].starts_with(&format!("connect to {addr}")),
        "{failure:?}"
    );
}
