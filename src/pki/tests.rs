use super::*;
use crate::crypto::backend::prim::digest;
use crate::identity::principal_from_der;
use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConnection;
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Parses `der` (which the caller keeps alive) and checks it is signed by `ca`.
fn parse_signed_by<'a>(der: &'a [u8], ca: &Ca) -> X509Certificate<'a> {
    let (rest, cert) = parse_x509_certificate(der).unwrap();
    assert!(rest.is_empty());
    let (_, ca_cert) = parse_x509_certificate(ca.cert_der()).unwrap();
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
    cert
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn expired() -> Validity {
    let now = SystemTime::now();
    Validity {
        not_before: now - Duration::from_secs(10 * SECONDS_PER_DAY),
        not_after: now - Duration::from_secs(SECONDS_PER_DAY),
    }
}

#[test]
fn generated_ca_has_the_ca_profile() {
    let ca = Ca::generate("test CA").unwrap();
    let cert = parse_signed_by(ca.cert_der(), &ca);
    assert_eq!(cert.subject().to_string(), "CN=test CA");
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    let validity = cert.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
    assert!((3652..=3654).contains(&days), "{days} days");
    assert!(ca.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
}

#[test]
fn ca_round_trips_through_pem_and_still_issues() {
    let original = Ca::generate("round trip CA").unwrap();
    let loaded = Ca::from_pem(
        original.cert_pem().as_bytes(),
        original.key_pem().as_bytes(),
    )
    .unwrap();
    assert_eq!(loaded.cert_der(), original.cert_der());
    let client = loaded
        .issue_client("alice", &names(&["users"]), Validity::days_from_now(1))
        .unwrap();
    parse_signed_by(&client.cert_der().unwrap(), &original);
}

#[test]
fn ca_from_pem_rejects_wrong_pairs_and_garbage() {
    let a = Ca::generate("A").unwrap();
    let b = Ca::generate("B").unwrap();
    let err = Ca::from_pem(a.cert_pem().as_bytes(), b.key_pem().as_bytes()).unwrap_err();
    assert!(matches!(err, PkiError::KeyMismatch), "{err:?}");

    let server = a.issue_server(&names(&["localhost"])).unwrap();
    let err = Ca::from_pem(server.cert_pem.as_bytes(), server.key_pem.as_bytes()).unwrap_err();
    assert!(matches!(err, PkiError::NotACa), "{err:?}");

    let err = Ca::from_pem(b"nonsense", a.key_pem().as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Pem {
                what: "CA certificate",
                ..
            }
        ),
        "{err:?}"
    );
    let err = Ca::from_pem(a.cert_pem().as_bytes(), a.cert_pem().as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Pem {
                what: "CA private key",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn server_certificate_has_the_sans_and_server_auth() {
    let ca = Ca::generate("CA").unwrap();
    let server = ca
        .issue_server(&names(&[
            "localhost",
            "127.0.0.1",
            "::1",
            "kms.example.net",
        ]))
        .unwrap();
    let der = server.cert_der().unwrap();
    let cert = parse_signed_by(&der, &ca);
    assert_eq!(cert.subject().to_string(), "CN=localhost");
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    let mut ipv6_loopback = [0u8; 16];
    ipv6_loopback[15] = 1;
    assert_eq!(
        san.general_names,
        vec![
            GeneralName::DNSName("localhost"),
            GeneralName::IPAddress(&[127, 0, 0, 1]),
            GeneralName::IPAddress(&ipv6_loopback),
            GeneralName::DNSName("kms.example.net"),
        ]
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
}

#[test]
fn server_names_are_checked() {
    let ca = Ca::generate("CA").unwrap();
    let err = ca.issue_server(&[]).unwrap_err();
    assert!(matches!(err, PkiError::NoServerNames), "{err:?}");
    for bad in ["", "bücher.example"] {
        let err = ca.issue_server(&names(&["localhost", bad])).unwrap_err();
        assert!(matches!(err, PkiError::InvalidServerName { .. }), "{err:?}");
    }
}

#[test]
fn client_certificate_yields_the_principal() {
    let ca = Ca::generate("CA").unwrap();
    let client = ca
        .issue_client(
            "alice",
            &names(&["admins", "ops", "backup"]),
            Validity::days_from_now(30),
        )
        .unwrap();
    assert!(!format!("{client:?}").contains("PRIVATE KEY"));
    // DER straight from the PEM text, independently of `Issued::cert_der`.
    let der = CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).unwrap();
    let cert = parse_signed_by(&der, &ca);
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);

    let principal = principal_from_der(&der).unwrap();
    assert_eq!(principal.cn, "alice");
    assert_eq!(principal.ous, names(&["admins", "ops", "backup"]));
    assert_eq!(principal.subject, "OU=admins, OU=ops, OU=backup, CN=alice");
    let sha256 = digest::digest(&digest::SHA256, der.as_ref());
    assert_eq!(principal.fingerprint, hex::encode(sha256.as_ref()));
    assert_eq!(
        principal.serial,
        hex::encode(cert.tbs_certificate.serial.to_bytes_be())
    );
}

#[test]
fn client_certificate_without_groups_and_bad_inputs() {
    let ca = Ca::generate("CA").unwrap();
    let client = ca
        .issue_client("svc", &[], Validity::days_from_now(1))
        .unwrap();
    let principal = principal_from_der(&client.cert_der().unwrap()).unwrap();
    assert_eq!((principal.cn.as_str(), principal.ous.len()), ("svc", 0));

    let err = ca
        .issue_client("", &[], Validity::days_from_now(1))
        .unwrap_err();
    assert!(matches!(err, PkiError::InvalidCommonName { .. }), "{err:?}");
    let err = ca
        .issue_client("svc", &names(&["ok", ""]), Validity::days_from_now(1))
        .unwrap_err();
    assert!(matches!(err, PkiError::EmptyOrganizationalUnit), "{err:?}");
    let now = SystemTime::now();
    let backwards = Validity {
        not_before: now,
        not_after: now,
    };
    let err = ca.issue_client("svc", &[], backwards).unwrap_err();
    assert!(matches!(err, PkiError::InvalidValidity(_)), "{err:?}");
}

#[test]
fn expired_validity_is_written_as_asked() {
    let ca = Ca::generate("CA").unwrap();
    let validity = expired();
    let client = ca.issue_client("old", &[], validity).unwrap();
    let der = client.cert_der().unwrap();
    let cert = parse_signed_by(&der, &ca);
    assert!(!cert.validity().is_valid());
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(
        cert.validity().not_after.timestamp(),
        secs(validity.not_after)
    );
}

#[test]
fn init_dev_pki_writes_the_files_and_refuses_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let files = init_dev_pki(&certs, &names(&["localhost", "127.0.0.1"])).unwrap();
    for path in files.all() {
        assert!(path.starts_with(&certs), "{}", path.display());
        assert!(path.is_file(), "{}", path.display());
    }
    for key in [
        &files.ca_key,
        &files.server_key,
        &files.admin_key,
        &files.user_key,
    ] {
        assert_eq!(mode_of(key), 0o600, "{}", key.display());
    }
    assert_eq!(mode_of(&files.ca_cert) & 0o600, 0o600);

    let ca = load_ca(&certs).unwrap();
    for (cert, cn, ou) in [
        (&files.admin_cert, "admin", "admins"),
        (&files.user_cert, "user", "users"),
    ] {
        let der = CertificateDer::from_pem_file(cert).unwrap();
        parse_signed_by(&der, &ca);
        let principal = principal_from_der(&der).unwrap();
        assert_eq!(
            (principal.cn.as_str(), principal.ous.as_slice()),
            (cn, &names(&[ou])[..])
        );
    }

    let before = fs::read(&files.ca_key).unwrap();
    let err = init_dev_pki(&certs, &names(&["localhost"])).unwrap_err();
    assert!(
        matches!(&err, PkiError::AlreadyExists { path } if *path == files.ca_cert),
        "{err:?}"
    );
    assert!(err.to_string().contains("ca.crt"));
    assert_eq!(fs::read(&files.ca_key).unwrap(), before);
}

#[test]
fn init_dev_pki_refuses_if_any_one_file_exists_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("user.key"), b"precious").unwrap();
    let err = init_dev_pki(dir.path(), &names(&["localhost"])).unwrap_err();
    assert!(err.to_string().contains("user.key"), "{err}");
    assert!(!dir.path().join("ca.key").exists());
    assert_eq!(fs::read(dir.path().join("user.key")).unwrap(), b"precious");
}

#[test]
fn issue_client_files_uses_the_ca_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    init_dev_pki(&certs, &names(&["localhost"])).unwrap();
    let out = dir.path().join("out");
    let (cert_path, key_path) =
        issue_client_files(&certs, "bob", &names(&["users", "auditors"]), &out).unwrap();
    assert_eq!(
        (cert_path.clone(), key_path.clone()),
        (out.join("bob.crt"), out.join("bob.key"))
    );
    assert_eq!(mode_of(&key_path), 0o600);
    let der = CertificateDer::from_pem_file(&cert_path).unwrap();
    parse_signed_by(&der, &load_ca(&certs).unwrap());
    let principal = principal_from_der(&der).unwrap();
    assert_eq!(principal.ous, names(&["users", "auditors"]));

    let err = issue_client_files(&certs, "bob", &[], &out).unwrap_err();
    assert!(matches!(err, PkiError::AlreadyExists { .. }), "{err:?}");
}

#[test]
fn issue_client_files_rejects_cns_that_are_not_file_names() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["", "a/b", "..", ".hidden", "nul\0byte", &"x".repeat(300)] {
        let err = issue_client_files(dir.path(), bad, &[], dir.path()).unwrap_err();
        assert!(
            matches!(err, PkiError::InvalidCommonName { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn issue_client_files_refuses_a_readable_ca_key() {
    let dir = tempfile::tempdir().unwrap();
    let files = init_dev_pki(dir.path(), &names(&["localhost"])).unwrap();
    fs::set_permissions(&files.ca_key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = issue_client_files(dir.path(), "carol", &[], dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::SecretFile(SecretFileError::InsecureMode { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("chmod 600"));
    assert!(!dir.path().join("carol.key").exists());
}

/// Runs a mutual-TLS handshake in memory and returns the client chain the server saw.
fn handshake(
    ca: &Ca,
    server: &Issued,
    client: &Issued,
    server_name: &str,
) -> Result<Vec<CertificateDer<'static>>, rustls::Error> {
    let provider = crate::crypto::backend::tls_provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let roots = Arc::new(roots);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .unwrap();
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert_der().unwrap()], server.key_der().unwrap())
        .unwrap();
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![client.cert_der().unwrap()], client.key_der().unwrap())
        .unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut c = Connection::from(ClientConnection::new(Arc::new(client_config), name).unwrap());
    let mut s = Connection::from(ServerConnection::new(Arc::new(server_config)).unwrap());
    // A full TLS 1.3 handshake takes two round trips; the bound only stops a stuck loop.
    for _ in 0..8 {
        if !c.is_handshaking() && !s.is_handshaking() {
            break;
        }
        pump(&mut c, &mut s)?;
        pump(&mut s, &mut c)?;
    }
    assert!(!s.is_handshaking());
    Ok(s.peer_certificates().unwrap().to_vec())
}

fn pump(from: &mut Connection, to: &mut Connection) -> Result<(), rustls::Error> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).unwrap();
        to.process_new_packets()?;
    }
    Ok(())
}

#[test]
fn rustls_accepts_the_issued_certificates_for_mutual_tls() {
    let ca = Ca::generate("CA").unwrap();
    let server = ca
        .issue_server(&names(&["localhost", "127.0.0.1"]))
        .unwrap();
    let client = ca
        .issue_client(
            "admin",
            &names(&["admins", "ops"]),
            Validity::days_from_now(1),
        )
        .unwrap();
    for server_name in ["localhost", "127.0.0.1"] {
        let chain = handshake(&ca, &server, &client, server_name).unwrap();
        let principal = principal_from_der(&chain[0]).unwrap();
        assert_eq!(principal.cn, "admin");
        assert_eq!(principal.ous, names(&["admins", "ops"]));
    }
}

#[test]
fn rustls_rejects_expired_and_foreign_client_certificates() {
    let ca = Ca::generate("CA").unwrap();
    let server = ca.issue_server(&names(&["localhost"])).unwrap();
    let old = ca.issue_client("old", &[], expired()).unwrap();
    let err = handshake(&ca, &server, &old, "localhost").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );

    let other = Ca::generate("other CA").unwrap();
    let stranger = other
        .issue_client("admin", &names(&["admins"]), Validity::days_from_now(1))
        .unwrap();
    let err = handshake(&ca, &server, &stranger, "localhost").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );
}
