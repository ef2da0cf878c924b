//! The audit journal on a full disk: a small tmpfs is mounted for the journal (the test needs
//! root and CAP_SYS_ADMIN, and is skipped with a message without them), filled up, and the
//! server must refuse requests with a clear error, acknowledge nothing whose record is not
//! durable, resume when space returns, and leave a chain that verifies.

use crate::audit::{options, records};
use crate::support::kmip::*;
use crate::support::server::{AuditSetup, TestServer};
use akm::audit::record::unescape;
use akm::audit::verify;
use akm::client::ClientError;
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted on drop.
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(crate) fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs for the disk-full test (needs root and CAP_SYS_ADMIN): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // A test that panicked may still hold files open on it (a server being torn down):
        // detach it lazily then, rather than leave a mount behind.
        let ok = Command::new("umount")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Writes zeros to `path` until the filesystem is full.
pub(crate) fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = [0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

fn is_audit_failure(r: &Result<akm::ttlv::Ttlv, ClientError>) -> bool {
    matches!(r, Err(ClientError::Failed { reason, message })
        if *reason == rr::GENERAL_FAILURE && message.contains("audit journal unavailable"))
}

#[tokio::test]
async fn a_full_journal_disk_refuses_requests_then_service_resumes_and_the_chain_verifies() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "256k") else {
        return;
    };
    let server = TestServer::start_audited(AuditSetup {
        journal: Some(mnt.join("audit.log")),
        checkpoint_every: Some(10),
        ..AuditSetup::default()
    })
    .await;
    let mut c = server.client("alice", V::V1_4).await;
    let mut acknowledged = Vec::new();
    acknowledged.push(create_key(&mut c, Some("before-full")).await);

    let filler = mnt.join("filler");
    fill(&filler);
    // The journal's last page may still take a record or two; then writes fail.
    let mut refused = false;
    for i in 0..200 {
        let name = format!("while-full-{i}");
        let r = c
            .call(
                op::CREATE,
                create_payload(c.version, &aes_attrs(Some(&name))),
            )
            .await;
        if is_audit_failure(&r) {
            refused = true;
            break;
        }
        acknowledged.push(uid_of(&r.unwrap()));
    }
    assert!(refused, "the journal never filled up");
    // While the disk stays full every request is refused, before it runs.
    for _ in 0..3 {
        let r = c.call(op::LOCATE, vec![]).await;
        assert!(is_audit_failure(&r), "{r:?}");
        let r = c.call(op::GET, uid(&acknowledged[0])).await;
        assert!(is_audit_failure(&r), "{r:?}");
    }

    // Space returns: service resumes.
    std::fs::remove_file(&filler).unwrap();
    acknowledged.push(create_key(&mut c, Some("after-space-returns")).await);
    let got = c.call(op::GET, uid(&acknowledged[0])).await.unwrap();
    assert_eq!(key_bytes(&got).len(), 32);

    let journal = server.journal_path();
    let _dir = server.stop().await;
    let report = verify::verify_file(&journal, &options()).unwrap();
    assert!(report.fault.is_none(), "{:?}", report.fault);
    let recs = records(&journal);
    // Every acknowledged Create has its record.
    for u in &acknowledged {
        assert!(
            recs.iter().any(|r| r.get("operation") == Some("Create")
                && r.get("outcome") == Some("success")
                && r.get("uid").map(unescape).as_deref() == Some(u.as_str())),
            "acknowledged Create of {u} has no audit record"
        );
    }
    assert!(recs.iter().any(|r| r.get("reason") == Some("resume")));
}
