//! The console's certificates page (administrators): the client certificates the akm CA
//! issued (the register of [`crate::pki::list_issued`], as `akm cert list` shows it), each
//! with its expiry and whether it is revoked (by this node's CRL, or by a peer's as mirrored
//! into the store), and the expiry watch
//! ([`crate::certexpiry`]). Reads certificates only, never a key file.
//!
//! Each unrevoked row has a Revoke button (POST /certificates/revoke, with a confirmation
//! box): the Revoke Certificate vendor operation, dispatched as the administrator, which
//! records the revocation in the store, enforces it at once on every akm node and audits it.
//! Other relying parties read the CRL file, which only `akm cert revoke` can sign (with the
//! CA's private key, which the server does not hold), so each row still shows that command.

use super::html::{self, escape, time_with_age, Notice};
use super::http::Response;
use super::{dispatch, outcome_notice, Call, Console};
use crate::kmip::extension::{revoke_certificate_payload, OP_REVOKE_CERTIFICATE};
use crate::pki::IssuedCert;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::fmt::Write;
use std::path::Path;

/// GET /certificates.
pub fn certificates(console: &Console, call: &Call) -> Response {
    certificates_page(console, call, None)
}

/// The certificates page, with the outcome of an action.
fn certificates_page(console: &Console, call: &Call, notice: Option<Notice>) -> Response {
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
            body.push_str(&issued_section(console, call, dir, crl, now, warn_secs));
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
        html::page(
            &call.viewer,
            "Certificates",
            "Certificates",
            notice.as_ref(),
            &body,
        ),
    )
}

/// POST /certificates/revoke (serial, confirm=yes): Revoke Certificate as the caller, for
/// the certificate of the register with that serial. A user's request is dispatched too, so
/// the refusal is in the audit journal, and answered with the forbidden page.
pub fn revoke(console: &Console, call: &Call) -> Response {
    let serial = call
        .req
        .field("serial")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let issuer = issued_cert_issuer(console, &serial);
    if !call.viewer.admin {
        let payload = revoke_certificate_payload(issuer.as_deref().unwrap_or(""), &serial);
        let _ = dispatch(console, call, &[(OP_REVOKE_CERTIFICATE, payload)]);
        // The dispatcher audited the refusal (Permission Denied): only the page remains.
        return super::forbidden_page(call);
    }
    if call.req.field("confirm") != Some("yes") {
        let notice = Notice::error(format!(
            "not revoked: tick the box next to Revoke to confirm revoking serial {serial}"
        ));
        return certificates_page(console, call, Some(notice));
    }
    let Some(issuer) = issuer else {
        let notice = Notice::error(format!(
            "not revoked: no certificate with serial {serial:?} in the register of issued \
             certificates"
        ));
        return certificates_page(console, call, Some(notice));
    };
    let payload = revoke_certificate_payload(&issuer, &serial);
    let notice = match dispatch(console, call, &[(OP_REVOKE_CERTIFICATE, payload)]) {
        Ok(items) => {
            let done = format!(
                "certificate serial {serial} revoked: every akm node refuses it from now on \
                 (its open connections close at their next request); run its akm cert revoke \
                 command to put it in the CRL file for other relying parties"
            );
            outcome_notice(items.first(), done).0
        }
        Err(e) => Notice::error(e),
    };
    certificates_page(console, call, Some(notice))
}

/// The issuer of the registered certificate with serial `serial`, if there is one.
fn issued_cert_issuer(console: &Console, serial: &str) -> Option<String> {
    let dir = console.settings.certs_dir.as_deref()?;
    let crl = console.settings.crl.as_deref();
    let list = crate::pki::list_issued(dir, crl).ok()?;
    let cert = list
        .iter()
        .find(|c| c.serial == serial && !serial.is_empty())?;
    issuer_of_file(&cert.path)
}

/// The issuer of the PEM certificate at `path`.
fn issuer_of_file(path: &Path) -> Option<String> {
    let pem = std::fs::read(path).ok()?;
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    crate::identity::issuer_of(der.as_ref())
}

/// The register of issued client certificates, soonest expiry first.
fn issued_section(
    console: &Console,
    call: &Call,
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
         <th>Status</th><th>Revoke</th><th>For the CRL file, run</th></tr></thead><tbody>",
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
                "<tr><td colspan=\"6\" class=\"bad\">cannot read the register: {}</td></tr></tbody></table>",
                escape(&e.to_string())
            );
            return out;
        }
    };
    for c in &list {
        let by_peer = !c.revoked && revoked_in_cluster(console, c);
        let (button, command) = if c.revoked || by_peer {
            let none = "<span class=\"muted\">-</span>";
            (none.to_owned(), none.to_owned())
        } else {
            (
                revoke_button(call, &c.serial),
                format!(
                    "<span class=\"mono\">{}</span>",
                    escape(&revoke_command(console, dir, crl, &c.serial))
                ),
            )
        };
        let _ = write!(
            out,
            "<tr data-serial=\"{serial}\"><td class=\"mono\">{serial}</td><td>{}</td>\
             <td class=\"time\">{}</td><td>{}</td><td>{button}</td><td>{command}</td></tr>",
            escape(&c.subject),
            time_with_age(c.not_after, now),
            status(c, by_peer, now, warn_secs),
            serial = escape(&c.serial),
        );
    }
    if list.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"muted\">none issued</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// The Revoke button of a row: a POST with the CSRF token and a box to tick first (the
/// console runs no script, so the confirmation is a required box the server checks too).
fn revoke_button(call: &Call, serial: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/certificates/revoke\">{}\
         <input type=\"hidden\" name=\"serial\" value=\"{}\">\
         <label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> sure</label> \
         <button class=\"danger\">Revoke</button></form>",
        html::csrf_field(&call.viewer.csrf),
        escape(serial)
    )
}

/// Whether the store's cluster-wide revocations list `c`: another node's CRL revoked it and
/// mirroring brought the record here (this node refuses it, though its own CRL may not list
/// it).
fn revoked_in_cluster(console: &Console, c: &IssuedCert) -> bool {
    issuer_of_file(&c.path)
        .is_some_and(|issuer| console.ctx().revoked_certs.contains(&issuer, &c.serial))
}

/// A certificate's status in words and colour; `by_peer`: revoked in the store (online, or
/// by another node's CRL) but not in this node's CRL file.
fn status(c: &IssuedCert, by_peer: bool, now: i64, warn_secs: i64) -> &'static str {
    if c.revoked {
        "<b class=\"bad\">revoked</b>"
    } else if by_peer {
        "<b class=\"bad\">revoked</b> <span class=\"age\">in every akm node, not in this CRL file</span>"
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

/// What the Revoke button does, and what the CRL command adds.
fn revoke_section(dir: &Path, crl: Option<&Path>) -> String {
    let mut out = format!(
        "<h2>Revoking</h2><p id=\"revoke-how\">Revoke (tick the box first) revokes the \
         certificate at once on every akm node: it is recorded in the database, mirrored to \
         every peer and audited; the console and the KMIP port refuse it from then on and its \
         open connections close at their next request. It cannot be undone. It does not change \
         the CRL file, which other relying parties read: that needs a new CRL signed with the \
         CA's private key (<span class=\"mono\">{}</span>), which the server does not hold and \
         which should stay offline. On the machine that holds it, run the command in the \
         certificate's row, then reload the server (Reload on the configuration page, <span \
         class=\"mono\">akm reload</span> or SIGHUP).</p>",
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
