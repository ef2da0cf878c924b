//! `deploy/akm.service` as systemd reads it: `systemd-analyze verify` has nothing to say
//! about it (run on a copy whose ExecStart names the binary under test, since /usr/bin/akm
//! is only there once the package is installed), and `systemd-analyze security --offline`
//! rates the committed file at an overall exposure of at most 2.0. Needs no running systemd.
//! Without systemd-analyze the test is skipped, except under CI=true, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The highest exposure the unit may have (the bar).
const MAX_EXPOSURE: f64 = 2.0;

fn unit_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/akm.service")
}

/// `systemd-analyze`, or `None` (after saying why) when the test should be skipped.
fn systemd_analyze() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("systemd-analyze"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze not found: .ci/run installs the systemd package"
        );
        eprintln!("skipped: systemd-analyze not found (install the systemd package)");
    }
    found
}

#[test]
fn the_unit_is_type_notify_with_the_packaged_paths() {
    let text = std::fs::read_to_string(unit_file()).unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=/usr/bin/akm serve --config /etc/akm/akm.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=akm",
        "StateDirectory=akm",
        "StateDirectoryMode=0700",
        "ConfigurationDirectory=akm",
        "LimitCORE=0",
    ] {
        assert!(
            text.lines().any(|l| l.trim() == line),
            "deploy/akm.service lacks {line}"
        );
    }
    assert!(text.lines().any(|l| l.starts_with("WatchdogSec=")));
}

#[test]
fn systemd_analyze_verify_is_clean() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(unit_file()).unwrap().replace(
        "ExecStart=/usr/bin/akm ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_akm")),
    );
    let copy = dir.path().join("akm.service");
    std::fs::write(&copy, text).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // systemd-analyze exits 0 on unknown keys and the like, but says so on stderr.
    let about_us: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("akm.service"))
        .collect();
    assert!(
        out.status.success() && about_us.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// The number on the "Overall exposure level for akm.service: 1.2 OK" line.
fn overall_exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let (_, rest) = line.rsplit_once(':')?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn systemd_analyze_security_exposure_is_at_most_two() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit_file())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let exposure = overall_exposure(&report).unwrap_or_else(|| {
        panic!(
            "no overall exposure in: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    println!("systemd-analyze security: overall exposure {exposure}");
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{report}"
    );
}

#[test]
fn the_exposure_line_parses() {
    assert_eq!(
        overall_exposure("x\n→ Overall exposure level for akm.service: 1.2 OK 🙂\n"),
        Some(1.2)
    );
    assert_eq!(overall_exposure("nothing"), None);
}
