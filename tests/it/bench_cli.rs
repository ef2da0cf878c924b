//! `akm bench`, the KMIP load tool, against the real `akm serve`: a short mixed run over
//! persistent connections at 1.4 and 2.1 with batches, a run with a new TLS connection per
//! request, the idle-connection memory mode, and its usage and connection errors. The figures
//! themselves are for BENCHMARKS.md; the tests assert what the tool reports, never timings.

use crate::cli::{akm, json, serve, write_config};
use serde_json::Value as Json;

/// A short run: quick enough for the suite, long enough for requests to complete.
const SHORT: [&str; 4] = ["--warmup", "0.2", "--duration", "0.8"];

fn bench(config: &std::path::Path, port: u16, args: &[&str]) -> Json {
    let mut all = vec!["bench", "--json", "--keys", "4"];
    all.extend_from_slice(&SHORT);
    all.extend_from_slice(args);
    json(&akm(config, port, &all))
}

/// `akm bench --idle count` against the server `pid` on `port`: its JSON report.
fn idle(config: &std::path::Path, port: u16, pid: &str, count: usize) -> Json {
    let count = count.to_string();
    let args = [
        "bench",
        "--json",
        "--idle",
        &count,
        "--warmup",
        "0",
        "--server-pid",
        pid,
    ];
    json(&akm(config, port, &args))
}

#[test]
fn bench_reports_throughput_latency_and_server_cost() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    let pid = server.id().to_string();

    let r = bench(
        &config,
        port,
        &[
            "--mix",
            "get=4,locate=2,create=1,register=1",
            "--connections",
            "4",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert!(r["operations"].as_u64().unwrap() > 0, "{r}");
    assert!(r["ops_per_second"].as_f64().unwrap() > 0.0, "{r}");
    let lat = &r["latency_ms"];
    for (lo, hi) in [
        ("p50", "p90"),
        ("p90", "p99"),
        ("p99", "p999"),
        ("p999", "max"),
    ] {
        assert!(lat[lo].as_f64() <= lat[hi].as_f64(), "{lo} <= {hi}: {r}");
    }
    assert!(r["server_cpu_us_per_op"].as_f64().is_some(), "{r}");
    assert!(r["server_peak_rss_kib"].as_u64().unwrap() > 0, "{r}");
    assert!(r["load_tool_cpu_us_per_op"].as_f64().is_some(), "{r}");

    // KMIP 2.1 encodings, several items per message.
    let r = bench(
        &config,
        port,
        &["--kmip", "2.1", "--mix", "get=1,locate=1", "--batch", "3"],
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(
        r["operations"].as_u64().unwrap(),
        3 * r["requests"].as_u64().unwrap()
    );

    // A new mutual-TLS connection for every request.
    let r = bench(&config, port, &["--new-connection", "--connections", "2"]);
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["new_connection_per_request"], true);
    assert!(r["operations"].as_u64().unwrap() > 0, "{r}");
    // The server issues session tickets, so reconnections resume their session...
    let (opened, resumed) = (r["tls_connections"].as_u64(), r["tls_resumed"].as_u64());
    assert!(opened.unwrap() > 0 && resumed.unwrap() > 0, "{r}");
    // ... unless the tool is told not to offer resumption.
    let r = bench(
        &config,
        port,
        &["--new-connection", "--no-resumption", "--connections", "2"],
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["tls_resumption"], false);
    assert!(r["tls_connections"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["tls_resumed"], 0, "{r}");

    // Encrypt of 1 KiB (the default) with AES-256-GCM: the server makes each IV.
    let r = bench(&config, port, &["--mix", "encrypt", "--connections", "2"]);
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["encrypt_data_bytes"], 1024, "{r}");
    assert!(r["operations"].as_u64().unwrap() > 0, "{r}");

    // Idle connections held open while the server's memory is read.
    let r = idle(&config, port, &pid, 8);
    assert_eq!(r["idle_connections"], 8, "{r}");
    assert_eq!(r["failed_connections"], 0, "{r}");
    assert!(r["server_rss_kib"].as_u64().unwrap() > 0, "{r}");

    server.kill().unwrap();
    server.wait().unwrap();
}

/// A connection the server closes right after the TLS handshake (here: over its identity's
/// share, `server.max_connections_per_identity`) is not an idle connection held: the tool
/// counts it as failed and says why, instead of reporting memory for connections that are gone.
#[test]
fn idle_mode_counts_connections_the_server_closed_after_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "auto_init = true\n",
        "auto_init = true\nmax_connections_per_identity = 3\n",
    );
    std::fs::write(&config, text).unwrap();
    let (mut server, port) = serve(&config);
    let pid = server.id().to_string();
    let r = idle(&config, port, &pid, 5);
    assert_eq!(r["idle_connections"], 3, "{r}");
    assert_eq!(r["failed_connections"], 2, "{r}");
    assert!(r["first_error"].as_str().is_some(), "{r}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn bench_counts_operations_the_server_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    // A Locate at 1.4 is fine; Encrypt may not be offered by the server: whatever it answers,
    // every failed item is counted and the first failure is shown, and the run completes.
    let r = bench(&config, port, &["--mix", "encrypt", "--connections", "1"]);
    let errors = r["errors"].as_u64().unwrap();
    if errors > 0 {
        assert_eq!(r["errors_by_operation"]["encrypt"], errors, "{r}");
        assert!(
            r["first_error"]
                .as_str()
                .unwrap()
                .contains("operation failed"),
            "{r}"
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn bench_refuses_bad_options_and_reports_an_unreachable_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    for bad in [
        &["bench", "--connections", "0"][..],
        &["bench", "--connections", "257"],
        &["bench", "--batch", "0"],
        &["bench", "--mix", "fly=1"],
        &["bench", "--kmip", "3.0"],
        &["bench", "--duration", "0"],
        &["bench", "--idle", "2"],
        &["bench", "--mix", "encrypt", "--data-bytes", "0"],
        &["bench", "--mix", "encrypt", "--data-bytes", "524289"],
    ] {
        let out = akm(&config, port, bad);
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {out:?}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
    // Nothing listens any more: the keys cannot be prepared, a connection error (exit 69).
    let out = akm(
        &config,
        port,
        &["bench", "--duration", "0.2", "--warmup", "0"],
    );
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("connection"),
        "{out:?}"
    );
}
