//! Certificate expiry watch: the server's own certificate and every client certificate the
//! akm CA issued and has not revoked (the register of `pki::issued`) are read at start and
//! every hour; each one within `tls.expiry_warning_days` of its not-after time (or past it)
//! earns a warning in the log and an audit record (`event=certificate`), repeated once a day
//! while it lasts. The status page and `/metrics` show every watched certificate's time left
//! ([`Watch::current`]). Reads certificates only, never keys.

use crate::audit::{AuditEvent, Outcome};
use crate::ops::Ctx;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the certificates are read again.
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);
/// How long before a warning about the same certificate is repeated.
const REPEAT_SECS: i64 = 86_400;

/// One watched certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// `server` (the TLS certificate akm serves) or `client` (issued by the akm CA).
    pub kind: &'static str,
    /// The subject's CN (empty if none).
    pub cn: String,
    /// The subject, as text.
    pub subject: String,
    /// The serial number, hex.
    pub serial: String,
    /// Not valid after, seconds since the epoch.
    pub not_after: i64,
}

/// Where the certificates are.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The server certificate (PEM; the first certificate of the chain is the server's).
    pub server_cert: PathBuf,
    /// The certs directory holding the register of issued certificates.
    pub certs_dir: PathBuf,
    /// The CRL whose serials are not watched (revoked certificates cannot be used anyway).
    pub crl: Option<PathBuf>,
}

/// The watched certificates and the warning threshold, shared with the status listener.
#[derive(Debug)]
pub struct Watch {
    sources: Sources,
    threshold_secs: i64,
    /// Replaced whole by each refresh; the status listener reads it without a lock.
    current: arc_swap::ArcSwap<Vec<Expiry>>,
    /// Serial → when it was last warned about.
    warned: Mutex<HashMap<String, i64>>,
}

impl Watch {
    /// A watch over `sources` warning `threshold_days` ahead; nothing read yet.
    pub fn new(sources: Sources, threshold_days: u32) -> Arc<Watch> {
        Arc::new(Watch {
            sources,
            threshold_secs: i64::from(threshold_days) * 86_400,
            current: arc_swap::ArcSwap::default(),
            warned: Mutex::new(HashMap::new()),
        })
    }

    /// The warning threshold, in seconds.
    pub fn threshold_secs(&self) -> i64 {
        self.threshold_secs
    }

    /// The certificates as last read, soonest expiry first.
    pub fn current(&self) -> Vec<Expiry> {
        self.current.load().to_vec()
    }

    /// Reads the certificates again and returns those within the threshold at `now` that
    /// are due a warning (never warned, or warned over a day ago).
    pub fn refresh(&self, now: i64) -> Vec<Expiry> {
        let certs = read(&self.sources);
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let due: Vec<Expiry> = certs
            .iter()
            .filter(|c| c.not_after - now <= self.threshold_secs)
            .filter(|c| {
                warned
                    .get(&c.serial)
                    .is_none_or(|at| now - at >= REPEAT_SECS)
            })
            .cloned()
            .collect();
        for c in &due {
            warned.insert(c.serial.clone(), now);
        }
        self.current.store(Arc::new(certs));
        due
    }
}

/// The server certificate and the unrevoked issued client certificates, soonest first.
/// Unreadable files are logged and left out (a warning watch must not stop the server).
fn read(sources: &Sources) -> Vec<Expiry> {
    let mut out = Vec::new();
    match crate::pki::certificate_expiry(&sources.server_cert) {
        Ok((serial, subject, cn, not_after)) => out.push(Expiry {
            kind: "server",
            cn,
            subject,
            serial,
            not_after,
        }),
        Err(e) => tracing::warn!(path = %sources.server_cert.display(), error = %e,
            "certificate expiry watch: cannot read the server certificate"),
    }
    match crate::pki::list_issued(&sources.certs_dir, sources.crl.as_deref()) {
        Ok(issued) => out.extend(issued.into_iter().filter(|c| !c.revoked).map(|c| Expiry {
            kind: "client",
            cn: c.cn,
            subject: c.subject,
            serial: c.serial,
            not_after: c.not_after,
        })),
        Err(e) => tracing::warn!(error = %e,
            "certificate expiry watch: cannot read the issued client certificates"),
    }
    out.sort_by(|a, b| (a.not_after, &a.serial).cmp(&(b.not_after, &b.serial)));
    out
}

/// The warning text for `c` at `now`; `named`: with the subject (the log), else without
/// (the audit record's detail, which the status page shows to anyone; its user field names
/// the CN for those allowed to see it).
pub fn describe(c: &Expiry, now: i64, named: bool) -> String {
    let left = c.not_after - now;
    let when = crate::audit::format_time_ms(c.not_after.saturating_mul(1000));
    let which = if named {
        format!("{} certificate {} (serial {})", c.kind, c.subject, c.serial)
    } else {
        format!("{} certificate serial {}", c.kind, c.serial)
    };
    if left <= 0 {
        format!("{which} EXPIRED at {when}")
    } else {
        format!("{which} expires at {when}, in {} days", left / 86_400)
    }
}

/// Checks now: warns (log and audit) about certificates due a warning.
pub fn check(watch: &Watch, ctx: &Ctx) {
    let now = crate::clock::now_secs();
    for c in watch.refresh(now) {
        let text = describe(&c, now, true);
        tracing::warn!(
            kind = c.kind,
            serial = %c.serial,
            "{text}; renew it before then (`akm cert sign` for clients)"
        );
        let event = AuditEvent {
            event: "certificate",
            user: (!c.cn.is_empty()).then(|| c.cn.clone()),
            outcome: Some(Outcome::Failure),
            detail: Some(describe(&c, now, false)),
            ..AuditEvent::default()
        };
        if let Err(e) = ctx.audit.record(vec![event]) {
            tracing::error!(error = %e, "certificate expiry watch: cannot write the audit record");
        }
    }
}

/// Checks at start and every [`CHECK_EVERY`] until the server stops (on the blocking pool:
/// it reads files and waits for the audit journal).
pub async fn run(watch: Arc<Watch>, ctx: Arc<Ctx>) {
    loop {
        let (w, c) = (watch.clone(), ctx.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || check(&w, &c)).await {
            tracing::error!(error = %e, "certificate expiry check failed");
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_repeat_daily_and_say_expired() {
        let c = Expiry {
            kind: "client",
            cn: "bob".into(),
            subject: "CN=bob".into(),
            serial: "0a".into(),
            not_after: 10 * 86_400,
        };
        assert!(describe(&c, 0, true).contains("CN=bob (serial 0a) expires"));
        assert!(describe(&c, 0, false)
            .ends_with("serial 0a expires at 1970-01-11T00:00:00.000Z, in 10 days"));
        assert!(describe(&c, 11 * 86_400, true).contains("EXPIRED"));
    }
}
