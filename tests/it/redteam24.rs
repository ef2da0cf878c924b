//! Red team of the management console (issue 24) over real TLS with ordinary client
//! certificates and raw sockets: idle connections that never finish a request cannot lock
//! administrators out; one certificate beginning sessions in a loop ends only its own; a
//! user refused an administrators' page or action is audited by name; cookies bound to their
//! certificate, fixation, CSRF (no token, another session's, in the query string, GET to an
//! action, other content types, cross-site); a certificate revoked while its session is open;
//! the framing headers on every response; malformed HTTP; formula and header injection
//! through key names; path traversal in backup verification; hide_existence.

use crate::console::{
    console_settings, form, start_console, start_console_with, state_of, uid_on_page, Browser,
};
use crate::support::server::TestServer;
use crate::support::status::{raw, Reply};
use akm::kmip::enums::state;
use std::time::Duration;

/// The console's reply to `request` sent raw by `b` (its certificate, no cookie handling).
async fn raw_as(b: &Browser, request: &str) -> Reply {
    raw(b.addr, b.tls.clone(), request.as_bytes())
        .await
        .unwrap()
}

/// A POST of `body` with `content_type` and `b`'s cookie.
fn post_request(b: &Browser, path: &str, content_type: &str, extra: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{}{extra}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        b.cookie_line(),
        body.len()
    )
}

fn journal(server: &TestServer) -> String {
    std::fs::read_to_string(server.journal_path()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_lock_administrators_out() {
    let server = TestServer::start().await;
    let mut settings = console_settings(&server, 50);
    settings.max_connections = 4;
    // Only eviction can free a slot within the test.
    settings.header_timeout = Duration::from_secs(300);
    let console = start_console_with(&server, settings).await;
    // More TCP connections than slots, from the administrator's own address, never
    // sending a byte (no certificate needed).
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(tokio::net::TcpStream::connect(console.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    for _ in 0..3 {
        let page = tokio::time::timeout(Duration::from_secs(60), admin.get("/"))
            .await
            .expect("the administrator was locked out by idle connections");
        assert_eq!(page.status, 200);
    }
    drop(idle);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_flood_from_one_certificate_ends_only_its_own() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    assert_eq!(admin.get("/").await.status, 200);
    let mut eve = Browser::new(&server, &console, "eve", &["users"]);
    eve.get("/").await;
    let (first_cookie, first_csrf) = (eve.cookie.clone(), eve.csrf.clone());
    // Each request without a cookie begins a session: more than one certificate may hold.
    for _ in 0..40 {
        eve.cookie = None;
        eve.get("/").await;
    }
    // Eve's oldest session ended; the administrator's did not.
    eve.cookie = first_cookie;
    eve.csrf = first_csrf;
    let stale = eve
        .post("/keys/create", &[("name", "eve-key"), ("alg", "aes-256")])
        .await;
    assert_eq!(stale.status, 403, "{}", stale.body);
    let created = admin
        .post(
            "/keys/create",
            &[("name", "still-signed-in"), ("alg", "aes-256")],
        )
        .await;
    assert!(created.body.contains("created"), "{}", created.body);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_refused_administrators_pages_and_actions_is_audited() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let created = admin
        .post("/keys/create", &[("name", "theirs"), ("alg", "aes-256")])
        .await;
    let uid = uid_on_page(&created.body);
    let mut bob = Browser::new(&server, &console, "bob", &["users"]);
    for (path, fields) in [
        (
            "/accounts/set",
            vec![("name", "bob"), ("operations", "get,destroy")],
        ),
        ("/key/policy", vec![("uid", uid.as_str()), ("mode", "any")]),
        ("/backups/run", vec![]),
        ("/backups/verify", vec![("file", "x.akmbak")]),
        ("/dual/approve", vec![("id", "1")]),
        ("/config/reload", vec![]),
    ] {
        let r = bob.post(path, &fields).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    for path in [
        "/accounts",
        "/backups",
        "/audit",
        "/audit.csv",
        "/dual",
        "/config",
    ] {
        assert_eq!(bob.get(path).await.status, 403, "{path}");
    }
    // Nothing changed, and every refusal is in the journal in bob's name.
    let row = server.ctx.store.get(&uid).unwrap().unwrap();
    assert_ne!(row.access_mode, "any");
    let text = journal(&server);
    for what in [
        "POST /accounts/set",
        "POST /key/policy",
        "POST /config/reload",
        "GET /audit.csv",
    ] {
        let line = text
            .lines()
            .find(|l| {
                let detail = format!("console: {what} is for administrators");
                l.contains(&detail.replace(' ', "\\x20"))
            })
            .unwrap_or_else(|| panic!("no record of {what}: {text}"));
        assert!(line.contains("user=bob"), "{line}");
        assert!(line.contains("outcome=failure"), "{line}");
    }
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_bind_to_their_certificate_and_csrf_holds() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut alice = Browser::new(&server, &console, "alice", &["team-a"]);
    let created = alice
        .post("/keys/create", &[("name", "alice-key"), ("alg", "aes-256")])
        .await;
    let uid = uid_on_page(&created.body);
    let before = state_of(&server, &uid);
    let destroy = form(&[
        ("uid", &uid),
        ("do", "destroy"),
        ("csrf", alice.csrf.as_deref().unwrap()),
    ]);
    let urlencoded = "application/x-www-form-urlencoded";
    // Alice's cookie and token replayed with another certificate: no session.
    let mut mallory = Browser::new(&server, &console, "mallory", &["team-a"]);
    mallory.cookie = alice.cookie.clone();
    let replayed = raw_as(
        &mallory,
        &post_request(&mallory, "/key/action", urlencoded, "", &destroy),
    )
    .await;
    assert_eq!(replayed.status, 403, "{}", replayed.body);
    // Fixation: a cookie the attacker chose is never adopted.
    let chosen = "ab".repeat(32);
    mallory.cookie = Some(format!("akm_console={chosen}"));
    let page = mallory.get("/").await;
    assert!(
        page.head.contains("Set-Cookie: akm_console="),
        "{}",
        page.head
    );
    assert!(!page.head.contains(&chosen), "{}", page.head);
    // Alice's own session: no token, another session's token, the token in the query
    // string, another content type, a cross-site request, GET and HEAD to the action.
    let no_token = form(&[("uid", &uid), ("do", "destroy")]);
    let other_token = form(&[
        ("uid", &uid),
        ("do", "destroy"),
        ("csrf", mallory.csrf.as_deref().unwrap()),
    ]);
    let in_query = format!("/key/action?csrf={}", alice.csrf.as_deref().unwrap());
    for (path, ctype, extra, body, want) in [
        ("/key/action", urlencoded, "", no_token.as_str(), 403),
        ("/key/action", urlencoded, "", other_token.as_str(), 403),
        (in_query.as_str(), urlencoded, "", no_token.as_str(), 403),
        ("/key/action", "text/plain", "", destroy.as_str(), 415),
        (
            "/key/action",
            "multipart/form-data; boundary=x",
            "",
            destroy.as_str(),
            415,
        ),
        (
            "/key/action",
            urlencoded,
            "Sec-Fetch-Site: cross-site\r\n",
            destroy.as_str(),
            403,
        ),
        (
            "/key/action",
            urlencoded,
            "Sec-Fetch-Site: same-site\r\n",
            destroy.as_str(),
            403,
        ),
    ] {
        let r = raw_as(&alice, &post_request(&alice, path, ctype, extra, body)).await;
        assert_eq!(r.status, want, "{path} {ctype} {extra}: {}", r.body);
    }
    for method in ["GET", "HEAD"] {
        let r = raw_as(
            &alice,
            &format!(
                "{method} /key/action?{destroy} HTTP/1.1\r\nHost: x\r\n{}X-HTTP-Method-Override: POST\r\n\r\n",
                alice.cookie_line()
            ),
        )
        .await;
        assert_eq!(r.status, 404, "{method}");
    }
    let put = raw_as(
        &alice,
        &post_request(&alice, "/key/action", urlencoded, "", &destroy)
            .replacen("POST", "DELETE", 1),
    )
    .await;
    assert_eq!(put.status, 405);
    assert_eq!(state_of(&server, &uid), before);
    // With everything right, it works (the refusals above were for the right reasons).
    let done = raw_as(
        &alice,
        &post_request(
            &alice,
            "/key/action",
            urlencoded,
            "Sec-Fetch-Site: same-origin\r\n",
            &destroy,
        ),
    )
    .await;
    assert!(done.body.contains("destroyed"), "{}", done.body);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_during_its_session_is_refused_at_once() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let issued = server
        .ca
        .issue_client(
            "admin",
            &["admins".into()],
            akm::pki::Validity::days_from_now(1),
        )
        .unwrap();
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    admin.tls = server.client_tls_for(&issued);
    assert_eq!(admin.get("/").await.status, 200);
    let der = issued.cert_der().unwrap();
    let who = akm::identity::principal_from_der(der.as_ref()).unwrap();
    server.ctx.revoked_certs.add(&[akm::store::CertRevocation {
        issuer: akm::identity::issuer_of(der.as_ref()).unwrap(),
        serial: who.serial.clone(),
        reason: "keyCompromise".into(),
        revoked_at: 0,
    }]);
    for path in ["/", "/keys", "/audit"] {
        let r = admin.get(path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(r.body.contains("revoked"), "{}", r.body);
    }
    let post = admin
        .post(
            "/keys/create",
            &[("name", "after-revocation"), ("alg", "aes-256")],
        )
        .await;
    assert_eq!(post.status, 403, "{}", post.body);
    // Each refusal is audited in the certificate's name.
    let text = journal(&server);
    let line = text
        .lines()
        .find(|l| l.contains("console:\\x20the\\x20client\\x20certificate\\x20is\\x20revoked"))
        .unwrap_or_else(|| panic!("no record of the refusal: {text}"));
    assert!(
        line.contains("event=tls") && line.contains("user=admin"),
        "{line}"
    );
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_anonymous_and_foreign_certificates_are_refused_and_audited() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let day = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let expired = server
        .ca
        .issue_client(
            "admin",
            &["admins".into()],
            akm::pki::Validity {
                not_before: now - 2 * day,
                not_after: now - day,
            },
        )
        .unwrap();
    let other = akm::pki::Ca::generate("another CA").unwrap();
    let foreign = other
        .issue_client(
            "admin",
            &["admins".into()],
            akm::pki::Validity::days_from_now(1),
        )
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.cert_der().clone()).unwrap();
    let foreign_tls = akm::tls::client_config_from(
        vec![foreign.cert_der().unwrap()],
        foreign.key_der().unwrap(),
        roots,
    )
    .unwrap();
    let get = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for tls in [
        server.client_tls_for(&expired),
        foreign_tls,
        crate::support::status::anonymous_tls(&server),
    ] {
        let r = raw(console.addr, tls, get).await;
        assert!(r.as_ref().map_or(true, |r| r.status != 200), "{r:?}");
    }
    // Audited as the KMIP port audits refused handshakes.
    let mut refusals = 0;
    for _ in 0..50 {
        refusals = journal(&server)
            .matches("console:\\x20TLS\\x20handshake\\x20failed")
            .count();
        if refusals == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refusals, 3, "{}", journal(&server));
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_forbids_framing_and_bad_http_is_refused() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut bob = Browser::new(&server, &console, "bob", &["users"]);
    bob.get("/").await;
    let cookie = bob.cookie_line();
    let urlencoded = "Content-Type: application/x-www-form-urlencoded\r\n";
    let many = vec!["a=1"; 100].join("&");
    for (request, want) in [
        ("GET /nowhere HTTP/1.1\r\n\r\n".to_owned(), 404),
        ("GET /static/console.css HTTP/1.1\r\n\r\n".to_owned(), 200),
        ("GET /audit HTTP/1.1\r\n\r\n".to_owned(), 403),
        ("GET /keys?name=%zz HTTP/1.1\r\n\r\n".to_owned(), 400),
        ("GET /keys?name=%+1 HTTP/1.1\r\n\r\n".to_owned(), 400),
        ("GET /keys?name=%C0 HTTP/1.1\r\n\r\n".to_owned(), 400),
        ("GET https://evil.example/ HTTP/1.1\r\n\r\n".to_owned(), 400),
        ("GET / HTTP/0.9\r\n\r\n".to_owned(), 400),
        ("GET / HTTP/1.0\r\n\r\n".to_owned(), 200),
        ("GET /keys?name=a%00b HTTP/1.1\r\n\r\n".to_owned(), 200),
        ("OPTIONS / HTTP/1.1\r\n\r\n".to_owned(), 405),
        (format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000)), 431),
        (format!("POST /logout HTTP/1.1\r\n{cookie}{urlencoded}Content-Length: 999999\r\n\r\n"), 413),
        (format!("POST /logout HTTP/1.1\r\n{cookie}{urlencoded}Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"), 411),
        (format!("POST /logout HTTP/1.1\r\n{cookie}{urlencoded}Content-Length: +3\r\n\r\na=b"), 400),
        (format!("POST /logout HTTP/1.1\r\n{cookie}{urlencoded}Content-Length: {}\r\n\r\n{many}", many.len()), 400),
        (format!("POST /logout HTTP/1.1\r\n{urlencoded}Content-Length: 3\r\n\r\na=b"), 403),
    ] {
        let r = raw_as(&bob, &request).await;
        assert_eq!(r.status, want, "{request:.80}: {}", r.body);
        for h in ["X-Frame-Options: DENY", "frame-ancestors 'none'", "script-src 'none'", "nosniff"] {
            assert!(r.head.contains(h), "{h} missing on {request:.60}: {}", r.head);
        }
    }
    // Two pipelined requests: one answer, and the second (a logout) is never read.
    let token = bob.csrf.clone().unwrap();
    let logout = format!("csrf={token}");
    let pipelined = format!(
        "GET / HTTP/1.1\r\n{cookie}\r\nPOST /logout HTTP/1.1\r\n{cookie}{urlencoded}Content-Length: {}\r\n\r\n{logout}",
        logout.len()
    );
    let r = raw_as(&bob, &pipelined).await;
    assert_eq!(r.head.matches("HTTP/1.1 ").count(), 1, "{}", r.head);
    let still = bob
        .post("/keys/create", &[("name", "k"), ("alg", "aes-256")])
        .await;
    assert!(still.body.contains("created"), "{}", still.body);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_cannot_inject_formulas_headers_or_paths() {
    let server =
        TestServer::start_with_dual_and_backups(akm::ops::dual::DualControl::new(vec![], 10)).await;
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    for name in [
        "=HYPERLINK(\"http://evil\")",
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tleading-tab",
        "\rleading-cr",
        "x\r\nSet-Cookie: evil=1\r\n",
        "<script>alert(1)</script>\"'",
    ] {
        let r = admin
            .post("/keys/create", &[("name", name), ("alg", "aes-256")])
            .await;
        assert!(!r.head.contains("evil=1"), "{}", r.head);
        assert!(!r.body.contains("<script>alert"), "{}", r.body);
    }
    let csv = admin.get("/audit.csv").await;
    assert!(
        csv.head.contains("filename=\"akm-audit.csv\""),
        "{}",
        csv.head
    );
    assert!(!csv.head.contains("evil"), "{}", csv.head);
    for line in csv.body.split("\r\n").filter(|l| !l.is_empty()) {
        let line = line.strip_prefix('"').unwrap_or(line);
        for field in line.split("\",\"") {
            assert!(
                !field.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula in the export: {field:?}"
            );
        }
    }
    let audit = admin.get("/audit").await;
    assert!(!audit.body.contains("<script>alert"), "{}", audit.body);
    // Backup verification takes a listed name, never a path.
    let run = admin.post("/backups/run", &[]).await;
    assert!(run.body.contains("backup written"), "{}", run.body);
    // A verification is audited in the administrator's name (it is no KMIP operation).
    let written = run
        .body
        .split("backup written: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap()
        .to_owned();
    let name = std::path::Path::new(&written)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let verified = admin.post("/backups/verify", &[("file", &name)]).await;
    assert!(verified.body.contains("authentic"), "{}", verified.body);
    let text = journal(&server);
    let line = text
        .lines()
        .find(|l| l.contains("event=console") && l.contains("backup\\x20verify"))
        .unwrap_or_else(|| panic!("no record of the verification: {text}"));
    assert!(
        line.contains("user=admin") && line.contains("outcome=success"),
        "{line}"
    );
    for file in [
        "../../etc/passwd",
        "/etc/passwd",
        "../backups/x.akmbak",
        "..",
        "",
    ] {
        let r = admin.post("/backups/verify", &[("file", file)]).await;
        assert!(r.body.contains("no such backup file"), "{file}: {}", r.body);
    }
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_keys_look_like_missing_ones_and_cursors_leak_nothing() {
    let access = akm::policy::Settings {
        hide_existence: true,
        ..akm::policy::Settings::default()
    };
    let server = TestServer::start_with_access(access).await;
    let console = start_console(&server, 2).await;
    let mut alice = Browser::new(&server, &console, "alice", &["team-a"]);
    let mut uids = Vec::new();
    for i in 0..3 {
        let r = alice
            .post(
                "/keys/create",
                &[("name", &format!("secret-{i}")), ("alg", "aes-256")],
            )
            .await;
        uids.push(uid_on_page(&r.body));
    }
    let mut bob = Browser::new(&server, &console, "bob", &["team-b"]);
    let missing = "00000000-0000-0000-0000-000000000000";
    let seen = bob.get(&format!("/key?uid={}", uids[0])).await;
    let absent = bob.get(&format!("/key?uid={missing}")).await;
    assert_eq!(seen.status, absent.status);
    assert_eq!(
        seen.body.replace(&uids[0], "UID"),
        absent.body.replace(missing, "UID"),
        "a hidden key is told apart from a missing one"
    );
    let acted = bob
        .post("/key/action", &[("uid", &uids[0]), ("do", "destroy")])
        .await;
    let acted_missing = bob
        .post("/key/action", &[("uid", missing), ("do", "destroy")])
        .await;
    assert_eq!(
        acted.body.replace(&uids[0], "UID"),
        acted_missing.body.replace(missing, "UID")
    );
    assert_eq!(state_of(&server, &uids[0]), state::PRE_ACTIVE);
    // Paging cursors of any value show bob nothing of alice's.
    for after in ["-1", "0", "1", "2", "999999999999", "-999999999999999"] {
        let page = bob.get(&format!("/keys?after={after}")).await;
        assert_eq!(page.status, 200);
        assert!(
            !page.body.contains("secret-"),
            "after={after}: {}",
            page.body
        );
    }
    drop(console);
    server.stop().await;
}
