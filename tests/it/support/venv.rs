//! Python virtualenvs under `target/` for the tests that drive Python tools (PyKMIP as an
//! independent client, `prometheus_client` as an independent parser): made with one pinned
//! requirement when missing or broken, and built by one test at a time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The interpreter of the virtualenv `target/<name>`, with `requirement` (`package==version`)
/// installed. `ready` says whether an interpreter has what the test needs; when it fails, the
/// venv is rebuilt (`--clear`: one left half-made by an earlier failure, say without
/// ensurepip, is made again) and the requirement installed with pip. Callers are serialized,
/// so two tests sharing a venv never build it at once.
pub fn python_with(
    name: &str,
    requirement: &str,
    ready: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _only_one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    let python = venv.join("bin/python");
    if ready(&python) {
        return Ok(python);
    }
    run_setup(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        "python3 -m venv",
    )?;
    run_setup(
        Command::new(&python).args(["-m", "pip", "install", "--quiet", requirement]),
        &format!("pip install {requirement}"),
    )?;
    if ready(&python) {
        Ok(python)
    } else {
        Err(format!(
            "{} still lacks {requirement} after pip install",
            python.display()
        ))
    }
}

/// Whether `python -c code` runs and exits 0.
pub fn python_succeeds(python: &Path, code: &str) -> bool {
    Command::new(python)
        .args(["-c", code])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a set-up command; an error carries its status and output.
pub fn run_setup(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
