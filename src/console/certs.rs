//! The console's certificates page (administrators): the client certificates the akm CA
//! issued (the register of [`crate::pki::list_issued`], as `akm cert list` shows it), each
//! with its expiry and whether it is revoked (by this node's CRL, or by a peer's as mirrored
//! into the store), and the expiry watch
//! ([`crate::certexpiry`]). Reads certificates only, never a key file.
//!
//! Revoking is not a button here: `akm cert revoke` signs a new CRL with the CA's private key,
//! which the server does not hold (it stays offline), so each row shows the exact command to
//! run where the CA key is, and the page says to reload afterwards.

use super::html::{self, escape, time_with_age};
use super::http::Response;
use super::{Call, Console};
use crate::pki::IssuedCert;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::fmt::Write;
use std::path::Path;

/// GET /certificates.
pub fn certificates(console: &Console, call: &Call) -> Response {
    let now = crate::clock::now_secs();
    let snap = console.source.snapshot();
    let warn_secs = i64::from(console.settings.expiry_warning_days) * 86_400;
    let mut body = String::new();
    match &console.settings.certs_dir {
        None => {
            body.push_str("<p class=\"muted\">No certs directory (tls.certs_dir) is known.</p>")
        }
        Some(dir) => {
            let crl = console.settings.crl.as_deref();
            body.push_str(&issued_section(console, dir, crl, now, warn_secs));
            body.push_str(&revoke_section(dir, crl));
        }
    }
    body.push_str(&super::pages::certificates_table(
        "Expiry watch",
        &snap.certificates,
        now,
    ));
    let _ = write!(
        body,
        "<p class=\"muted\">The expiry watch reads these every hour and warns (log and audit \
         record) {} days ahead (tls.expiry_warning_days).</p>",
        console.settings.expiry_warning_days
    );
    Response::html(
        200,
        html::page(&call.viewer, "Certificates", "Certificates", None, &body),
    )
}

/// The register of issued client certificates, soonest expiry first.
fn issued_section(
    console: &Console,
    dir: &Path,
    crl: Option<&Path>,
    now: i64,
    warn_secs: i64,
) -> String {
    let mut out = format!(
        "<h2>Issued client certificates</h2><p class=\"muted\">The register of <span \
         class=\"mono\">akm cert issue</span> and <span class=\"mono\">akm cert sign</span> in \
         <span class=\"mono\">{}</span>; revoked means listed in {}.</p>\
         <table id=\"issued\"><thead><tr><th>Serial</th><th>Subject</th><th>Expires</th>\
         <th>Status</th><th>To revoke, run</th></tr></thead><tbody>",
        escape(&dir.join(crate::pki::ISSUED_DIR).display().to_string()),
        match crl {
            Some(p) => format!(
                "<span class=\"mono\">{}</span>",
                escape(&p.display().to_string())
            ),
            None => "no CRL (tls.crls is empty)".into(),
        }
    );
    let list = match crate::pki::list_issued(dir, crl) {
        Ok(list) => list,
        Err(e) => {
            let _ = write!(
                out,
                "<tr><td colspan=\"5\" class=\"bad\">cannot read the register: {}</td></tr></tbody></table>",
                escape(&e.to_string())
            );
            return out;
        }
    };
    for c in &list {
        let by_peer = !c.revoked && revoked_in_cluster(console, c);
        let command = if c.revoked || by_peer {
            "<span class=\"muted\">-</span>".to_owned()
        } else {
            format!(
                "<span class=\"mono\">{}</span>",
                escape(&revoke_command(console, dir, crl, &c.serial))
            )
        };
        let _ = write!(
            out,
            "<tr data-serial=\"{serial}\"><td class=\"mono\">{serial}</td><td>{}</td>\
             <td class=\"time\">{}</td><td>{}</td><td>{command}</td></tr>",
            escape(&c.subject),
            time_with_age(c.not_after, now),
            status(c, by_peer, now, warn_secs),
            serial = escape(&c.serial),
        );
    }
    if list.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"muted\">none issued</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// Whether the store's cluster-wide revocations list `c`: another node's CRL revoked it and
/// mirroring brought the record here (this node refuses it, though its own CRL may not list
/// it).
fn revoked_in_cluster(console: &Console, c: &IssuedCert) -> bool {
    let Ok(pem) = std::fs::read(&c.path) else {
        return false;
    };
    let Ok(der) = CertificateDer::from_pem_slice(&pem) else {
        return false;
    };
    crate::identity::issuer_of(der.as_ref())
        .is_some_and(|issuer| console.ctx().revoked_certs.contains(&issuer, &c.serial))
}

/// A certificate's status in words and colour; `by_peer`: revoked by another node's CRL.
fn status(c: &IssuedCert, by_peer: bool, now: i64, warn_secs: i64) -> &'static str {
    if c.revoked {
        "<b class=\"bad\">revoked</b>"
    } else if by_peer {
        "<b class=\"bad\">revoked</b> <span class=\"age\">by a peer's CRL</span>"
    } else if c.not_after <= now {
        "<b class=\"bad\">expired</b>"
    } else if c.not_after - now < warn_secs {
        "<b class=\"bad\">expires soon</b>"
    } else {
        "<b class=\"ok\">valid</b>"
    }
}

/// The `akm cert revoke` command for `serial`, naming the configuration file the server
/// reads and, when `tls.crls` is empty, the CRL to write.
fn revoke_command(console: &Console, dir: &Path, crl: Option<&Path>, serial: &str) -> String {
    let mut cmd = String::from("akm");
    if let Some(config) = &console.settings.config_file {
        let _ = write!(
            cmd,
            " --config {}",
            shell_word(&config.display().to_string())
        );
    }
    let _ = write!(cmd, " cert revoke --serial {}", shell_word(serial));
    if crl.is_none() {
        let default = dir.join("ca.crl");
        let _ = write!(cmd, " --crl {}", shell_word(&default.display().to_string()));
    }
    cmd
}

/// `text` as one shell word: as is when it is plainly safe, else single-quoted.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Why revoking is a command, not a button, and what follows it.
fn revoke_section(dir: &Path, crl: Option<&Path>) -> String {
    let mut out = format!(
        "<h2>Revoking</h2><p id=\"revoke-how\">The console cannot revoke a certificate: a \
         revocation is a new CRL signed with the CA's private key (<span class=\"mono\">{}</span>), \
         which the server does not hold and which should stay offline. On the machine that holds \
         it, run the command in the certificate's row, then reload the server (Reload on the \
         configuration page, <span class=\"mono\">akm reload</span> or SIGHUP). From then on the \
         console and the KMIP port refuse the certificate, and with mirroring every peer does too.</p>",
        escape(&dir.join("ca.key").display().to_string())
    );
    if crl.is_none() {
        let _ = write!(
            out,
            "<p class=\"bad\">tls.crls is empty, so the server reads no CRL: add <span \
             class=\"mono\">crls = [\"{}\"]</span> under [tls] before revoking.</p>",
            escape(&dir.join("ca.crl").display().to_string())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_spaces_or_quotes_stay_one_shell_word() {
        assert_eq!(shell_word("/etc/akm/akm.toml"), "/etc/akm/akm.toml");
        assert_eq!(shell_word("/a b/c'd"), "'/a b/c'\\''d'");
        assert_eq!(shell_word(""), "''");
    }
}
