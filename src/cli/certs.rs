//! `akm cert sign` and `akm cert list`: client certificates from a CSR, and the register of
//! what the akm CA issued (see `pki::issued`). Local commands: they need the CA key, so they
//! run on the node that keeps it, as the user that may read it.

use super::CliError;
use crate::config::Config;
use crate::pki::{self, CsrPolicy};
use serde_json::json;
use std::path::Path;

/// The longest validity `akm cert sign --days` accepts.
const MAX_DAYS: u32 = 3650;

/// Signs the CSR at `csr` and writes (or prints) the certificate.
pub fn sign(
    config: &Config,
    csr: &Path,
    days: u32,
    out: Option<&Path>,
    admin: bool,
) -> Result<(), CliError> {
    if days == 0 || days > MAX_DAYS {
        return Err(CliError::Usage(format!(
            "--days is {days}; give 1 to {MAX_DAYS}"
        )));
    }
    if let Some(out) = out {
        if out.exists() {
            return Err(CliError::Usage(format!(
                "{} already exists; refusing to overwrite it",
                out.display()
            )));
        }
    }
    let policy = CsrPolicy {
        admin_group: config.access.admin_group.clone(),
        allow_admin: admin,
        reserved_cns: config
            .mirror
            .iter()
            .flat_map(|m| m.peers.iter().filter_map(|p| p.cn.clone()))
            .collect(),
    };
    let (pem, cn, ous) = pki::sign_csr_file(&config.tls.certs_dir, csr, days, &policy)?;
    match out {
        Some(out) => {
            crate::secret_file::write_new_public(out, pem.as_bytes())
                .map_err(|e| CliError::Failed(format!("akm cert sign: {e}")))?;
            println!(
                "wrote {} for user {cn:?}, groups [{}], valid {days} days",
                out.display(),
                ous.join(", ")
            );
        }
        None => print!("{pem}"),
    }
    Ok(())
}

/// Lists the issued client certificates.
pub fn list(config: &Config, json_out: bool) -> Result<(), CliError> {
    let crl = config.tls.crls.first().map(|p| p.as_path());
    let certs = pki::list_issued(&config.tls.certs_dir, crl)?;
    if json_out {
        let rows: Vec<_> = certs
            .iter()
            .map(|c| {
                json!({
                    "serial": c.serial,
                    "subject": c.subject,
                    "user": c.cn,
                    "not_after": crate::clock::rfc3339(c.not_after),
                    "revoked": c.revoked,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{:<42} {:<21} {:<8} SUBJECT",
        "SERIAL", "NOT AFTER", "REVOKED"
    );
    for c in &certs {
        println!(
            "{:<42} {:<21} {:<8} {}",
            c.serial,
            crate::clock::rfc3339(c.not_after),
            if c.revoked { "yes" } else { "no" },
            c.subject
        );
    }
    Ok(())
}
