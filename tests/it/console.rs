//! The management console over real TLS beside a real in-process server: no page or action
//! without a client certificate of the CA; sessions, CSRF tokens and POST-only changes; the
//! security headers; markup in key names and attributes rendered escaped; a user certificate
//! that sees and acts only on its own keys; create, rotate and the audit record; dual control
//! refusing an administrator without a second one's window; keyset paging; the certificates
//! page (administrators only, no key material); the seal state and unseal progress; an
//! administrator creating and rotating a key and refused a guarded destroy in headless
//! Chromium driven over the DevTools protocol; and every page in headless Chromium,
//! screenshotted (`AKM_CONSOLE_SCREENSHOTS=dir` keeps the PNGs for the book). The browser
//! logs in with its own client certificate: an NSS database in a temporary HOME holds it and
//! trusts the test CA, and Chromium's managed policy `AutoSelectCertificateForUrls` (written
//! in /etc/chromium/policies/managed while a test runs) selects it; a browser without one is
//! refused. Without Chromium, NSS's certutil/pk12util or root, the browser tests are skipped
//! with a message saying which (failed under CI=true).

use crate::support::kmip::create_key;
use crate::support::server::TestServer;
use crate::support::status::{anonymous_tls, raw, Reply};
use akm::console::{self, Console, Settings};
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::extension as ext;
use akm::kmip::ProtocolVersion as V;
use akm::status::snapshot::Source;
use rustls::RootCertStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A running console; stops when dropped.
pub(crate) struct ConsoleListener {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the console for `server` (its CA, its context) with `page_size` keys a page.
pub(crate) async fn start_console(server: &TestServer, page_size: usize) -> ConsoleListener {
    start_console_with(server, console_settings(server, page_size)).await
}

/// The test console's settings for `server` with `page_size` keys a page.
pub(crate) fn console_settings(server: &TestServer, page_size: usize) -> Settings {
    settings_on(server.dir.path(), server.ctx.backup.is_some(), page_size)
}

/// The test console's settings: its certs directory (the register of issued certificates,
/// the CRL `certs/ca.crl`) and backups under `dir`, `page_size` keys a page.
fn settings_on(dir: &Path, backups: bool, page_size: usize) -> Settings {
    let certs_dir = dir.join("certs");
    Settings {
        page_size,
        max_connections: 8,
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(600),
        max_session: Duration::from_secs(3600),
        // The example configuration, shown read-only on the configuration page.
        config_file: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/akm.toml")),
        backup_schedule: Some("daily 02:30 (UTC), keeping the newest 7".into()),
        backup_dir: backups.then(|| dir.join("backups")),
        crl: Some(certs_dir.join("ca.crl")),
        certs_dir: Some(certs_dir),
        expiry_warning_days: 30,
    }
}

/// Starts the console for `server` with `settings`.
pub(crate) async fn start_console_with(server: &TestServer, settings: Settings) -> ConsoleListener {
    start_console_on(&server.ca, server.ctx.clone(), server.dir.path(), settings).await
}

/// Starts a console for `ctx` with a server certificate of `ca` and `settings`, its certs
/// directory under `dir`. The expiry watch reads the register once, now: issue what it
/// should see before.
async fn start_console_on(
    ca: &akm::pki::Ca,
    ctx: Arc<akm::ops::Ctx>,
    dir: &Path,
    settings: Settings,
) -> ConsoleListener {
    let cert = ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let tls = akm::status::server_config_from(
        vec![cert.cert_der().unwrap()],
        cert.key_der().unwrap(),
        roots,
        vec![],
        true,
    )
    .unwrap();
    let certs_dir = dir.join("certs");
    std::fs::create_dir_all(&certs_dir).unwrap();
    let server_cert = certs_dir.join("console.crt");
    std::fs::write(&server_cert, &cert.cert_pem).unwrap();
    let watch = akm::certexpiry::Watch::new(
        akm::certexpiry::Sources {
            server_cert,
            certs_dir: certs_dir.clone(),
            crl: Some(certs_dir.join("ca.crl")),
        },
        30,
    );
    watch.refresh(akm::clock::now_secs());
    let mut source = Source::new(ctx, None, Duration::ZERO);
    source.certificates = Some(watch);
    let handle = Arc::new(akm::server::tls::TlsHandle::new(tls));
    let console = Arc::new(Console::new(Arc::new(source), settings, handle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(console::serve(listener, console, async {
        let _ = stopped.await;
    }));
    ConsoleListener {
        addr,
        stop: Some(stop),
    }
}

/// A browser-like client: one certificate, the session cookie and CSRF token it was given.
pub(crate) struct Browser {
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) cookie: Option<String>,
    pub(crate) csrf: Option<String>,
}

impl Browser {
    pub(crate) fn new(
        server: &TestServer,
        console: &ConsoleListener,
        cn: &str,
        ous: &[&str],
    ) -> Browser {
        Browser {
            addr: console.addr,
            tls: server.client_tls(cn, ous),
            cookie: None,
            csrf: None,
        }
    }

    /// A client of the console at `addr` presenting what `tls` holds.
    fn with_tls(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Browser {
        Browser {
            addr,
            tls,
            cookie: None,
            csrf: None,
        }
    }

    pub(crate) async fn send(&mut self, request: String) -> Reply {
        let reply = raw(self.addr, self.tls.clone(), request.as_bytes())
            .await
            .unwrap();
        if let Some(c) = set_cookie(&reply.head) {
            self.cookie = Some(c);
        }
        if let Some(t) = csrf_in(&reply.body) {
            self.csrf = Some(t);
        }
        reply
    }

    pub(crate) fn cookie_line(&self) -> String {
        self.cookie
            .as_ref()
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default()
    }

    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
            self.cookie_line()
        );
        self.send(req).await
    }

    /// POSTs `fields` with the session's CSRF token (signing in with a GET first if needed).
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        if self.csrf.is_none() {
            self.get("/").await;
        }
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let token = self.csrf.clone().unwrap();
        all.push(("csrf", &token));
        self.post_raw(path, &all).await
    }

    pub(crate) async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = form(fields);
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n{}Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.cookie_line(),
            body.len()
        );
        self.send(req).await
    }
}

pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                akm::console::http::encode_component(k),
                akm::console::http::encode_component(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The session cookie (`name=value`) a response sets.
pub(crate) fn set_cookie(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// The CSRF token in a page's forms.
pub(crate) fn csrf_in(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    body[at..].split('"').next().map(str::to_owned)
}

/// The Unique Identifier shown on a key's detail page.
pub(crate) fn uid_on_page(body: &str) -> String {
    let marker = "Unique Identifier<b class=\"mono\">";
    let at = body.find(marker).expect("no key detail") + marker.len();
    body[at..].split('<').next().unwrap().to_owned()
}

pub(crate) fn state_of(server: &TestServer, uid: &str) -> u32 {
    server.ctx.store.get(uid).unwrap().unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_without_a_client_certificate_of_the_ca() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    // No certificate: the handshake itself fails, or nothing but a refusal comes back.
    let anonymous = raw(
        console.addr,
        anonymous_tls(&server),
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(
        anonymous.as_ref().map_or(true, |r| r.status != 200),
        "{anonymous:?}"
    );
    // A certificate of another CA is refused too.
    let other = akm::pki::Ca::generate("another CA").unwrap();
    let stranger = other
        .issue_client(
            "admin",
            &["admins".into()],
            akm::pki::Validity::days_from_now(1),
        )
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(server.ca.cert_der().clone()).unwrap();
    let tls = akm::tls::client_config_from(
        vec![stranger.cert_der().unwrap()],
        stranger.key_der().unwrap(),
        roots,
    )
    .unwrap();
    let foreign = raw(
        console.addr,
        tls,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(
        foreign.as_ref().map_or(true, |r| r.status != 200),
        "{foreign:?}"
    );
    // With one, the console answers.
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    assert_eq!(admin.get("/").await.status, 200);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_sessions_and_csrf() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let page = admin.get("/keys").await;
    assert_eq!(page.status, 200);
    for header in [
        "X-Frame-Options: DENY",
        "X-Content-Type-Options: nosniff",
        "Cache-Control: no-store",
        "frame-ancestors 'none'",
        "script-src 'none'",
    ] {
        assert!(
            page.head.contains(header),
            "{header} missing: {}",
            page.head
        );
    }
    let cookie_line = page
        .head
        .lines()
        .find(|l| l.starts_with("Set-Cookie: "))
        .unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie_line.contains(attr), "{cookie_line}");
    }
    assert!(!page.body.contains("<script"), "no script at all");
    let count = || {
        let live = akm::store::LocateQuery {
            include_live: true,
            ..Default::default()
        };
        server.ctx.store.locate(&live).unwrap().len()
    };
    let create = [("name", "csrf-probe"), ("alg", "aes-256")];
    // No token, a wrong token, no session: refused, nothing created.
    assert_eq!(admin.post_raw("/keys/create", &create).await.status, 403);
    let wrong = [("name", "csrf-probe"), ("csrf", &"0".repeat(64))];
    assert_eq!(admin.post_raw("/keys/create", &wrong).await.status, 403);
    let mut cookieless = Browser::new(&server, &console, "admin", &["admins"]);
    cookieless.csrf = admin.csrf.clone();
    let mut with_token = create.to_vec();
    let token = admin.csrf.clone().unwrap();
    with_token.push(("csrf", &token));
    assert_eq!(
        cookieless
            .post_raw("/keys/create", &with_token)
            .await
            .status,
        403
    );
    // Another certificate (even of the same name) with this session's cookie and token: no.
    let mut thief = Browser::new(&server, &console, "admin", &["admins"]);
    thief.cookie = admin.cookie.clone();
    assert_eq!(
        thief.post_raw("/keys/create", &with_token).await.status,
        403
    );
    // A cross-site POST with the right token is refused too.
    let body = form(&with_token);
    let cross = format!(
        "POST /keys/create HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\nSec-Fetch-Site: cross-site\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        admin.cookie.clone().unwrap(),
        body.len()
    );
    assert_eq!(admin.send(cross).await.status, 403);
    assert_eq!(count(), 0);
    // A GET never changes anything.
    let get = admin
        .get("/keys/create?name=via-get&csrf=".to_owned().as_str())
        .await;
    assert_ne!(get.status, 200);
    assert_eq!(count(), 0);
    // The right session and token: created.
    let done = admin.post("/keys/create", &create).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("id=\"notice\""), "{}", done.body);
    assert_eq!(count(), 1);
    let uid = uid_on_page(&done.body);
    let before = state_of(&server, &uid);
    let get_destroy = admin
        .get(&format!("/key/action?uid={uid}&do=destroy"))
        .await;
    assert_ne!(get_destroy.status, 200);
    assert_eq!(state_of(&server, &uid), before);
    // Bad HTTP gets 4xx.
    let huge = admin
        .post_raw("/keys/create", &[("x", &"a".repeat(20_000))])
        .await;
    assert_eq!(huge.status, 413);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_names_and_attributes_renders_escaped() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let name = "<script>alert(1)</script>";
    let group = "\"><img src=x onerror=alert(2)>";
    let created = admin
        .post(
            "/keys/create",
            &[("name", name), ("group", group), ("alg", "aes-128")],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let uid = uid_on_page(&created.body);
    let list = admin.get("/keys").await;
    let detail = admin.get(&format!("/key?uid={uid}")).await;
    let audit = admin.get("/audit").await;
    let csv = admin.get("/audit.csv").await;
    for page in [&created.body, &list.body, &detail.body, &audit.body] {
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
    }
    assert!(
        detail.body.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{}",
        detail.body
    );
    assert!(
        csv.body.contains("<script>alert(1)</script>"),
        "CSV keeps the text: {}",
        csv.body
    );
    assert!(csv.head.contains("text/csv"), "{}", csv.head);
    // A search for the name finds it; the query value is escaped back into the form.
    let search = admin
        .get("/keys?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert!(search.body.contains(&uid), "{}", search.body);
    assert!(!search.body.contains("<script>"), "{}", search.body);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_and_acts_only_on_their_own_keys() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut alice = Browser::new(&server, &console, "alice", &["team-a"]);
    let mut bob = Browser::new(&server, &console, "bob", &["team-b"]);
    let created = alice
        .post("/keys/create", &[("name", "alice-key"), ("alg", "aes-256")])
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let uid = uid_on_page(&created.body);
    let before = state_of(&server, &uid);
    bob.post("/keys/create", &[("name", "bob-key"), ("alg", "aes-256")])
        .await;
    let bobs_list = bob.get("/keys").await;
    assert!(bobs_list.body.contains("bob-key"), "{}", bobs_list.body);
    assert!(!bobs_list.body.contains("alice-key"), "{}", bobs_list.body);
    assert!(!bobs_list.body.contains(&uid), "{}", bobs_list.body);
    // Not by its identifier either, nor by searching for its name.
    let peek = bob.get(&format!("/key?uid={uid}")).await;
    assert!(!peek.body.contains("alice-key"), "{}", peek.body);
    assert!(peek.body.contains("PermissionDenied"), "{}", peek.body);
    let search = bob.get("/keys?name=alice-key").await;
    assert!(!search.body.contains(&uid), "{}", search.body);
    // Acting on it is refused by the KMIP rules, and nothing changes.
    for what in ["destroy", "revoke", "rotate"] {
        let r = bob
            .post("/key/action", &[("uid", &uid), ("do", what)])
            .await;
        assert!(r.body.contains("refused"), "{what}: {}", r.body);
    }
    assert_eq!(state_of(&server, &uid), before);
    // The administrators' pages are not a user's.
    for path in ["/audit", "/audit.csv", "/dual", "/config", "/mirror"] {
        assert_eq!(bob.get(path).await.status, 403, "{path}");
    }
    assert_eq!(bob.post("/config/reload", &[]).await.status, 403);
    // The refusals are in the audit journal, by name.
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let audit = admin.get("/audit?user=bob&outcome=failure").await;
    assert!(audit.body.contains("Destroy"), "{}", audit.body);
    assert!(audit.body.contains("PermissionDenied"), "{}", audit.body);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_rotate_and_see_the_audit_record() {
    let server = TestServer::start().await;
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let created = admin
        .post(
            "/keys/create",
            &[
                ("name", "payments"),
                ("group", "pci"),
                ("alg", "aes-256"),
                ("activate", "1"),
            ],
        )
        .await;
    assert!(
        created.body.contains("created and activated"),
        "{}",
        created.body
    );
    let first = uid_on_page(&created.body);
    let rotated = admin
        .post("/key/action", &[("uid", &first), ("do", "rotate")])
        .await;
    assert!(rotated.body.contains("rotated"), "{}", rotated.body);
    let second = uid_on_page(&rotated.body);
    assert_ne!(first, second);
    // The new version links back to the old one; both are in the list, found by group.
    assert!(
        rotated.body.contains(&format!("/key?uid={first}")),
        "{}",
        rotated.body
    );
    let list = admin.get("/keys?group=pci").await;
    assert!(
        list.body.contains(&first) && list.body.contains(&second),
        "{}",
        list.body
    );
    // By creation date: today finds them, a day long past does not.
    let today = akm::audit::format_time_ms(akm::audit::now_ms())[..10].to_owned();
    let recent = admin.get(&format!("/keys?from={today}&to={today}")).await;
    assert!(recent.body.contains(&second), "{}", recent.body);
    let old = admin.get("/keys?to=1999-12-31").await;
    assert!(!old.body.contains(&second), "{}", old.body);
    let active = admin.get("/keys?state=active").await;
    assert!(active.body.contains(&second), "{}", active.body);
    // Never key material: no Get was sent, and no Key Material appears.
    assert!(!rotated.body.contains("Key Material"), "{}", rotated.body);
    let audit = admin.get("/audit?operation=ReKey").await;
    assert!(audit.body.contains(&second), "{}", audit.body);
    assert!(audit.body.contains("admin"), "{}", audit.body);
    let verify = admin.get("/audit?verify=1").await;
    assert!(verify.body.contains("chain verified"), "{}", verify.body);
    let journal = std::fs::read_to_string(server.journal_path()).unwrap();
    assert!(!journal.contains("operation=Get "), "{journal}");
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_control_refuses_an_administrator_without_a_second_ones_window() {
    let dual = akm::ops::dual::DualControl::new(vec!["destroy".into()], 10);
    let server =
        TestServer::start_with_access_and_dual(akm::policy::Settings::default(), dual).await;
    let console = start_console(&server, 50).await;
    let mut first = Browser::new(&server, &console, "admin1", &["admins"]);
    let mut second = Browser::new(&server, &console, "admin2", &["admins"]);
    let created = first
        .post("/keys/create", &[("name", "guarded"), ("alg", "aes-256")])
        .await;
    let uid = uid_on_page(&created.body);
    let refused = first
        .post("/key/action", &[("uid", &uid), ("do", "destroy")])
        .await;
    assert!(refused.body.contains("dual control"), "{}", refused.body);
    assert_ne!(state_of(&server, &uid), akm::kmip::enums::state::DESTROYED);
    // The requester cannot approve their own request; the second administrator can.
    let own = first.get("/dual").await;
    assert!(own.body.contains("yours"), "{}", own.body);
    let pending_id = |body: &str| {
        let at = body
            .find("name=\"id\" value=\"")
            .expect("no approve button")
            + "name=\"id\" value=\"".len();
        body[at..].split('"').next().unwrap().to_owned()
    };
    let id = pending_id(&second.get("/dual").await.body);
    let self_approve = first.post("/dual/approve", &[("id", &id)]).await;
    assert!(
        self_approve.body.contains("refused"),
        "{}",
        self_approve.body
    );
    // (A self-approval uses the request up, as `akm approve` does: ask again.)
    first
        .post("/key/action", &[("uid", &uid), ("do", "destroy")])
        .await;
    let id = pending_id(&second.get("/dual").await.body);
    let approved = second.post("/dual/approve", &[("id", &id)]).await;
    assert!(
        approved.body.contains("approved request"),
        "{}",
        approved.body
    );
    assert!(approved.body.contains("admin1"), "{}", approved.body);
    let done = first
        .post("/key/action", &[("uid", &uid), ("do", "destroy")])
        .await;
    assert!(done.body.contains("destroyed"), "{}", done.body);
    assert_eq!(state_of(&server, &uid), akm::kmip::enums::state::DESTROYED);
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_list_pages_by_keyset() {
    let server = TestServer::start().await;
    let console = start_console(&server, 10).await;
    let mut c = server.client("admin", V::V1_4).await;
    for i in 0..25 {
        create_key(&mut c, Some(&format!("k{i:02}"))).await;
    }
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let mut page = admin.get("/keys").await;
    let mut seen = Vec::new();
    loop {
        let rows = page.body.matches("<tr><td><a href=\"/key?uid=").count();
        seen.push(rows);
        let Some(at) = page.body.find("id=\"next\" href=\"") else {
            break;
        };
        let href = page.body[at + "id=\"next\" href=\"".len()..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        assert!(href.contains("after="), "{href}");
        page = admin.get(&href).await;
    }
    assert_eq!(seen, [10, 10, 5]);
    assert!(
        page.body.contains("k24") && !page.body.contains("k00"),
        "{}",
        page.body
    );
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_key_policies_and_backups() {
    let server =
        TestServer::start_with_dual_and_backups(akm::ops::dual::DualControl::new(vec![], 10)).await;
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let mut alice = Browser::new(&server, &console, "alice", &["team-a"]);
    // Users and groups: a record disabled here refuses its certificate everything.
    let saved = admin
        .post(
            "/accounts/set",
            &[("kind", "user"), ("name", "mallory"), ("enabled", "false")],
        )
        .await;
    assert!(saved.body.contains("saved"), "{}", saved.body);
    assert!(
        saved
            .body
            .contains("<td>mallory</td><td><b class=\"bad\">disabled</b>"),
        "{}",
        saved.body
    );
    let mut mallory = Browser::new(&server, &console, "mallory", &["team-a"]);
    let refused = mallory
        .post("/keys/create", &[("name", "m"), ("alg", "aes-256")])
        .await;
    assert!(refused.body.contains("refused"), "{}", refused.body);
    let odd = admin
        .post(
            "/accounts/set",
            &[("kind", "group"), ("name", "<b>ops</b>")],
        )
        .await;
    assert!(
        odd.body.contains("&lt;b&gt;ops&lt;/b&gt;") && !odd.body.contains("<b>ops"),
        "{}",
        odd.body
    );
    assert_eq!(alice.get("/accounts").await.status, 403);
    // A key's policy: shared with alice's group, she sees it.
    let created = admin
        .post("/keys/create", &[("name", "shared"), ("alg", "aes-256")])
        .await;
    let uid = uid_on_page(&created.body);
    assert!(!alice.get("/keys").await.body.contains(&uid));
    assert_eq!(
        alice
            .post(
                "/key/policy",
                &[("uid", &uid), ("group", "team-a"), ("mode", "group")]
            )
            .await
            .status,
        403
    );
    let changed = admin
        .post(
            "/key/policy",
            &[("uid", &uid), ("group", "team-a"), ("mode", "group")],
        )
        .await;
    assert!(
        changed.body.contains("access policy changed"),
        "{}",
        changed.body
    );
    assert!(alice.get("/keys").await.body.contains(&uid));
    // Backups: run one, see it listed, verify it; only listed names are verified.
    let empty = admin.get("/backups").await;
    assert!(empty.body.contains("no backups yet"), "{}", empty.body);
    let ran = admin.post("/backups/run", &[]).await;
    assert!(ran.body.contains("backup written"), "{}", ran.body);
    let at = ran
        .body
        .find("name=\"file\" value=\"")
        .expect("no backup listed")
        + "name=\"file\" value=\"".len();
    let file = ran.body[at..].split('"').next().unwrap().to_owned();
    assert!(file.ends_with(".akmbak"), "{file}");
    let verified = admin.post("/backups/verify", &[("file", &file)]).await;
    assert!(
        verified.body.contains("authentic and complete"),
        "{}",
        verified.body
    );
    let escape = admin
        .post("/backups/verify", &[("file", "../akm.db")])
        .await;
    assert!(
        escape.body.contains("no such backup file"),
        "{}",
        escape.body
    );
    assert_eq!(alice.post("/backups/run", &[]).await.status, 403);
    drop(console);
    server.stop().await;
}

/// The table row of the certificate `serial` on the certificates page.
fn certificate_row<'a>(body: &'a str, serial: &str) -> &'a str {
    let start = body
        .find(&format!("data-serial=\"{serial}\""))
        .unwrap_or_else(|| panic!("no row for {serial}: {body}"));
    let end = body[start..].find("</tr>").unwrap();
    &body[start..start + end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificates_page_lists_issued_certificates_to_administrators_only() {
    let server = TestServer::start().await;
    let serial = |f: &Path| akm::pki::serial_of_cert_file(f).unwrap();
    let (alice, alice_file) = issue_recorded(&server, "alice", &["users"], 365);
    let (_, soon_file) = issue_recorded(&server, "soon", &["users"], 10);
    let (_, gone_file) = issue_recorded(&server, "gone", &["users"], 100);
    revoke_recorded(&server, &[&gone_file]);
    // Revoked by another node's CRL, as mirroring records it in the store.
    let (peer_revoked, peer_file) = issue_recorded(&server, "peer-revoked", &["users"], 100);
    server.ctx.revoked_certs.add(&[akm::store::CertRevocation {
        issuer: akm::identity::issuer_of(peer_revoked.cert_der().unwrap().as_ref()).unwrap(),
        serial: serial(&peer_file),
        reason: "keyCompromise".into(),
        revoked_at: 0,
    }]);
    // Private keys beside the register (the CA's, as `akm init` leaves it, and a client's):
    // the page reads certificates only.
    let certs = server.dir.path().join("certs");
    std::fs::write(certs.join("ca.key"), server.ca.key_pem().as_bytes()).unwrap();
    std::fs::write(certs.join("alice.key"), alice.key_pem.as_bytes()).unwrap();
    let console = start_console(&server, 50).await;

    let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
    let page = admin.get("/certificates").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    let alice_row = certificate_row(body, &serial(&alice_file));
    assert!(
        alice_row.contains("CN=alice") && alice_row.contains("valid"),
        "{alice_row}"
    );
    // The exact command, with the configuration file the server reads.
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/akm.toml");
    let command = format!(
        "akm --config {} cert revoke --serial {}",
        config.display(),
        serial(&alice_file)
    );
    assert!(alice_row.contains(&command), "{alice_row}");
    let soon_row = certificate_row(body, &serial(&soon_file));
    assert!(soon_row.contains("expires soon"), "{soon_row}");
    let gone_row = certificate_row(body, &serial(&gone_file));
    assert!(gone_row.contains("revoked"), "{gone_row}");
    assert!(!gone_row.contains("cert revoke"), "{gone_row}");
    let peer_row = certificate_row(body, &serial(&peer_file));
    assert!(
        peer_row.contains("revoked") && peer_row.contains("not in this CRL file"),
        "{peer_row}"
    );
    assert!(!peer_row.contains("cert revoke"), "{peer_row}");
    // A Revoke button on the unrevoked rows only, and what it does not do (the CRL file).
    assert!(
        body.contains("id=\"revoke-how\"") && body.contains("does not hold"),
        "{body}"
    );
    assert!(
        alice_row.contains("action=\"/certificates/revoke\""),
        "{alice_row}"
    );
    for row in [gone_row, peer_row] {
        assert!(!row.contains("action=\"/certificates"), "{row}");
    }
    // The expiry watch, and the navigation.
    assert!(
        body.contains("Expiry watch") && body.contains("CN=soon"),
        "{body}"
    );
    assert!(body.contains("href=\"/certificates\""), "{body}");
    // No private key material, whatever lies in the directory.
    assert!(!body.contains("PRIVATE KEY"), "{body}");
    for pem in [server.ca.key_pem().to_string(), alice.key_pem.to_string()] {
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!body.contains(line), "key material on the page: {line}");
        }
    }

    // A user certificate is refused the page, and is not shown the way to it.
    let mut user = Browser::new(&server, &console, "alice", &["users"]);
    let refused = user.get("/certificates").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains("CN=soon"), "{}", refused.body);
    assert!(
        !refused.body.contains("href=\"/certificates\""),
        "{}",
        refused.body
    );
    let overview = user.get("/").await;
    assert!(
        !overview.body.contains("/certificates"),
        "{}",
        overview.body
    );
    drop(console);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_seal_and_the_unseal_progress() {
    let ca = akm::pki::Ca::generate(TEST_CA_CN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = akm::store::Store::open(&dir.path().join("akm.db")).unwrap();
    let (sealed, shares) =
        akm::crypto::seal::SealedKek::seal_with_shares(&[0x4B; 32], 3, 5).unwrap();
    let journal = akm::audit::JournalSettings {
        path: dir.path().join("audit").join("audit.log"),
        server_name: "akm-test".into(),
        checkpoint_every: 1000,
        checkpoint_secs: 60,
        sync: Default::default(),
    };
    let signer = akm::audit::signer::Signer::from_seed(&[0x5A; 32]);
    let audit = akm::audit::Audit::open(journal, signer, vec![]).unwrap();
    let slot = akm::crypto::slot::KekSlot::sealed(sealed);
    let ctx = Arc::new(akm::app::CtxBuilder::new(store, slot, audit).build());
    let console = start_console_on(
        &ca,
        ctx.clone(),
        dir.path(),
        settings_on(dir.path(), false, 50),
    )
    .await;
    let client = |cn: &str, ou: &str| {
        let issued = ca
            .issue_client(cn, &[ou.to_owned()], akm::pki::Validity::days_from_now(1))
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let tls = akm::tls::client_config_from(
            vec![issued.cert_der().unwrap()],
            issued.key_der().unwrap(),
            roots,
        )
        .unwrap();
        Browser::with_tls(console.addr, tls)
    };
    let (mut admin, mut user) = (client("admin", "admins"), client("alice", "users"));
    let seal_card = |body: &str| {
        let start = body.find("id=\"seal\"").expect("no seal card");
        body[start..start + body[start..].find("</div>").unwrap()].to_owned()
    };

    let none = seal_card(&admin.get("/").await.body);
    assert!(
        none.contains("sealed") && none.contains("0 of 3 shares accepted"),
        "{none}"
    );
    ctx.kek.submit_share(shares[0].0.as_str()).unwrap();
    let one = seal_card(&admin.get("/").await.body);
    assert!(one.contains("1 of 3 shares accepted"), "{one}");
    // Users see the seal state too (the overview is for every certificate).
    let seen = seal_card(&user.get("/").await.body);
    assert!(seen.contains("1 of 3 shares accepted"), "{seen}");
    ctx.kek.submit_share(shares[3].0.as_str()).unwrap();
    ctx.kek.submit_share(shares[4].0.as_str()).unwrap();
    let open = seal_card(&admin.get("/").await.body);
    assert!(
        open.contains("unsealed") && !open.contains("shares accepted"),
        "{open}"
    );
}

/// Starts `akm serve` on `config`; the child and every line it printed up to the status
/// listener's, and the console's after it when `console` is expected.
fn serve(config: &Path, console: bool) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(crate::cli::BIN)
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let last = if console {
        "management console"
    } else {
        "status page"
    };
    loop {
        let line = lines.next().expect("server exited early").unwrap();
        let done = line.contains(last);
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    (child, seen)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn akm_serve_runs_the_console_only_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::write_config(dir.path());
    let base = std::fs::read_to_string(&config).unwrap();
    let certs = dir.path().join("certs");
    let status = "[status]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(&config, format!("{base}{status}")).unwrap();
    let (child, lines) = serve(&config, false);
    assert!(!lines.iter().any(|l| l.contains("console")), "{lines:?}");
    stop(child);

    let enabled = format!("{base}{status}[console]\nenabled = true\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, enabled).unwrap();
    let (child, lines) = serve(&config, true);
    let addr: SocketAddr = lines
        .iter()
        .find_map(|l| l.strip_prefix("akm serve: management console on https://"))
        .unwrap_or_else(|| panic!("no console line: {lines:?}"))
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut roots = RootCertStore::empty();
    for c in akm::tls::load_certs(&certs.join("ca.crt")).unwrap() {
        roots.add(c).unwrap();
    }
    let admin = akm::tls::client_config_from(
        akm::tls::load_certs(&certs.join("admin.crt")).unwrap(),
        akm::tls::load_key(&certs.join("admin.key")).unwrap(),
        roots,
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let page = runtime
        .block_on(raw(
            addr,
            admin,
            b"GET /config HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ))
        .unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("[console]"),
        "the file in force is shown: {}",
        page.body
    );
    stop(child);
}

// ---- headless Chromium ----

/// The browser: `$AKM_CHROMIUM` or /usr/bin/chromium, when the browser tests can run:
/// NSS's `certutil` and `pk12util` (Debian: libnss3-tools) give the browser its client
/// certificate, and root writes Chromium's managed policy that selects it. `None`: skipped
/// with the reason (a failure under CI=true).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("AKM_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let mut missing = Vec::new();
    if !path.exists() {
        missing.push(format!(
            "{} not found: install Chromium (Debian: apt-get install chromium) or set AKM_CHROMIUM",
            path.display()
        ));
    }
    for tool in ["certutil", "pk12util"] {
        if !on_path(tool) {
            missing.push(format!(
                "{tool} not found (Debian: apt-get install libnss3-tools)"
            ));
        }
    }
    let uid = Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| o.stdout.trim_ascii() == b"0") {
        missing.push(format!(
            "not root: the test writes Chromium's managed policy in {POLICY_DIR}"
        ));
    }
    if missing.is_empty() {
        return Some(path);
    }
    let msg = missing.join("; ");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    None
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn run_tool(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test CA's CN (tests/it/support/server.rs), which the policy's filter names.
const TEST_CA_CN: &str = "akm test CA";

/// A HOME for Chromium whose NSS database (`$HOME/.pki/nssdb`, where Chromium on Linux keeps
/// client certificates and trust) trusts the test CA, so no certificate error is ignored,
/// and holds `client` with its key, imported from a PKCS#12 file as a person would import
/// theirs; with no `client`, the browser has no certificate to give.
fn nss_home(server: &TestServer, home: &Path, client: Option<&akm::pki::Issued>) -> PathBuf {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let sql = format!("sql:{}", db.display());
    run_tool("certutil", &["-N", "-d", &sql, "--empty-password"]);
    let ca = home.join("ca.pem");
    std::fs::write(&ca, server.ca.cert_pem()).unwrap();
    let ca = ca.to_str().unwrap();
    run_tool(
        "certutil",
        &["-A", "-n", "akm-test-ca", "-t", "C,,", "-i", ca, "-d", &sql],
    );
    if let Some(client) = client {
        let key = client.key_der().unwrap();
        let chain = [client.cert_der().unwrap().to_vec()];
        let p12 =
            akm::crypto::pkcs12::write(key.secret_der(), &chain, "console", "akm-test").unwrap();
        let file = home.join("client.p12");
        std::fs::write(&file, &*p12).unwrap();
        let file = file.to_str().unwrap();
        run_tool("pk12util", &["-i", file, "-d", &sql, "-W", "akm-test"]);
        std::fs::remove_file(file).unwrap();
    }
    home.to_path_buf()
}

/// Where Debian's Chromium reads managed (system) policies.
const POLICY_DIR: &str = "/etc/chromium/policies/managed";

/// Chromium merges no list across policy files, so one test at a time has its file.
static POLICY_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Chromium's managed policy `AutoSelectCertificateForUrls` for the console at `port`: the
/// browser presents the certificate of the test CA it holds without asking (headless
/// Chromium cannot ask). The file is removed when this is dropped.
struct CertificatePolicy {
    file: PathBuf,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl CertificatePolicy {
    fn install(port: u16) -> CertificatePolicy {
        let guard = POLICY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(POLICY_DIR).unwrap();
        let rule = serde_json::json!({
            "pattern": format!("https://127.0.0.1:{port}"),
            "filter": {"ISSUER": {"CN": TEST_CA_CN}},
        });
        let policy = serde_json::json!({"AutoSelectCertificateForUrls": [rule.to_string()]});
        let file =
            Path::new(POLICY_DIR).join(format!("akm-console-test-{}.json", std::process::id()));
        std::fs::write(&file, policy.to_string()).unwrap();
        CertificatePolicy {
            file,
            _one_at_a_time: guard,
        }
    }
}

impl Drop for CertificatePolicy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The flags every Chromium run gets (no `--ignore-certificate-errors`: the NSS database
/// trusts the test CA).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,860",
];

/// Runs headless Chromium with `home` as HOME on `url` with `extra` arguments; its stdout.
fn run_chromium(browser: &Path, home: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new(browser);
    cmd.args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .env("HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("cannot start chromium");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("chromium failed"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("chromium did not finish");
        }
    };
    assert!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a new KMIP connection presenting `issued` is refused (at the handshake, or closed
/// before its first request is answered).
async fn kmip_refused(server: &TestServer, issued: &akm::pki::Issued) -> bool {
    match server.connect(server.client_tls_for(issued), V::V1_4).await {
        Err(_) => true,
        Ok(mut c) => c.call(op::QUERY, vec![]).await.is_err(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_revokes_a_certificate_from_the_certificates_page() {
    let server = TestServer::start().await;
    let (bob, bob_file) = issue_recorded(&server, "bob", &["users"], 365);
    let (carol, carol_file) = issue_recorded(&server, "carol", &["users"], 365);
    let bob_serial = akm::pki::serial_of_cert_file(&bob_file).unwrap();
    let carol_serial = akm::pki::serial_of_cert_file(&carol_file).unwrap();
    let mut bob_conn = server
        .connect(server.client_tls_for(&bob), V::V1_4)
        .await
        .unwrap();
    bob_conn.call(op::QUERY, vec![]).await.unwrap();
    let console = start_console(&server, 50).await;
    let mut admin = Browser::new(&server, &console, "root", &["admins"]);
    let page = admin.get("/certificates").await;
    assert!(
        certificate_row(&page.body, &bob_serial).contains("name=\"confirm\""),
        "{}",
        page.body
    );

    // Without the confirmation box, or without the CSRF token: nothing is revoked.
    let unconfirmed = admin
        .post("/certificates/revoke", &[("serial", &bob_serial)])
        .await;
    assert!(
        unconfirmed.body.contains("tick the box"),
        "{}",
        unconfirmed.body
    );
    let no_csrf = admin
        .post_raw(
            "/certificates/revoke",
            &[("serial", &bob_serial), ("confirm", "yes")],
        )
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    assert!(server.ctx.store.cert_revocations().unwrap().is_empty());
    bob_conn.call(op::QUERY, vec![]).await.unwrap();

    // Confirmed: revoked at once, on the open connection and for new ones.
    let done = admin
        .post(
            "/certificates/revoke",
            &[("serial", &bob_serial), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("revoked: every akm node refuses it"),
        "{}",
        done.body
    );
    let row = certificate_row(&done.body, &bob_serial);
    assert!(
        row.contains("revoked") && !row.contains("/certificates/revoke"),
        "{row}"
    );
    assert!(
        bob_conn.call(op::QUERY, vec![]).await.is_err(),
        "the open connection of a revoked certificate answered"
    );
    assert!(
        kmip_refused(&server, &bob).await,
        "a new connection was accepted"
    );
    assert!(!kmip_refused(&server, &carol).await);
    let recorded = server.ctx.store.cert_revocations().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].serial, bob_serial);

    // The vendor operation itself: idempotent, and only for the trusted CA's certificates.
    let issuer = akm::identity::issuer_of(bob.cert_der().unwrap().as_ref()).unwrap();
    let mut admin_kmip = server
        .connect(server.client_tls("root", &["admins"]), V::V1_4)
        .await
        .unwrap();
    let again = admin_kmip
        .call(
            ext::OP_REVOKE_CERTIFICATE,
            ext::revoke_certificate_payload(&issuer, &bob_serial),
        )
        .await
        .unwrap();
    assert_eq!(
        again.child(ext::TAG_REVOKED_NOW).and_then(|t| t.as_bool()),
        Some(false)
    );
    match admin_kmip
        .call(
            ext::OP_REVOKE_CERTIFICATE,
            ext::revoke_certificate_payload("CN=someone else's CA", "0a"),
        )
        .await
    {
        Err(akm::client::ClientError::Failed { reason, message }) => {
            assert_eq!(reason, rr::INVALID_FIELD);
            assert!(
                message.contains("not a client CA this server trusts"),
                "{message}"
            );
        }
        other => panic!("an unknown issuer was accepted: {other:?}"),
    }
    assert_eq!(server.ctx.store.cert_revocations().unwrap().len(), 1);

    // A user may do neither, on the console nor over KMIP; carol stays valid.
    let mut alice = Browser::new(&server, &console, "alice", &["users"]);
    let refused = alice
        .post(
            "/certificates/revoke",
            &[("serial", &carol_serial), ("confirm", "yes")],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let mut alice_kmip = server.client("alice", V::V1_4).await;
    let denied = alice_kmip
        .call(
            ext::OP_REVOKE_CERTIFICATE,
            ext::revoke_certificate_payload(&issuer, &carol_serial),
        )
        .await;
    assert!(matches!(
        denied,
        Err(akm::client::ClientError::Failed { reason, .. }) if reason == rr::PERMISSION_DENIED
    ));
    assert!(!kmip_refused(&server, &carol).await);
    assert_eq!(server.ctx.store.cert_revocations().unwrap().len(), 1);

    drop(console);
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let records = crate::audit::records(&journal);
    let revocation = records
        .iter()
        .find(|r| r.get("event") == Some("revocation"))
        .expect("no revocation record");
    assert_eq!(revocation.get("user"), Some("root"));
    let detail = akm::audit::record::unescape(revocation.get("detail").unwrap_or(""));
    assert!(
        detail.contains(&bob_serial) && detail.contains("root"),
        "{detail}"
    );
    let attempts = |user: &str, outcome: &str| {
        records
            .iter()
            .filter(|r| {
                r.get("operation") == Some("x-RevokeCertificate")
                    && r.get("user") == Some(user)
                    && r.get("outcome") == Some(outcome)
            })
            .count()
    };
    // The console's and the KMIP client's revocation (the second one idempotent).
    assert_eq!(attempts("root", "success"), 2);
    // The console's and the KMIP client's refused attempts.
    assert_eq!(attempts("alice", "failure"), 2);
}

/// Issues a client certificate of the test CA valid `days` days and records it in the
/// register of issued certificates under the server's `certs/`, as `akm cert issue` does;
/// the certificate and its register file.
fn issue_recorded(
    server: &TestServer,
    cn: &str,
    ous: &[&str],
    days: u32,
) -> (akm::pki::Issued, PathBuf) {
    let ous: Vec<String> = ous.iter().map(|s| s.to_string()).collect();
    let issued = server
        .ca
        .issue_client(cn, &ous, akm::pki::Validity::days_from_now(days))
        .unwrap();
    let file = akm::pki::record_issued(&server.dir.path().join("certs"), &issued.cert_pem).unwrap();
    (issued, file)
}

/// Revokes the certificates in `files` with a CRL of the test CA at `certs/ca.crl`, as
/// `akm cert revoke` writes it; their serials.
fn revoke_recorded(server: &TestServer, files: &[&Path]) -> Vec<String> {
    let serials: Vec<String> = files
        .iter()
        .map(|f| akm::pki::serial_of_cert_file(f).unwrap())
        .collect();
    let crl = server.ca.revocation_list(&serials, 7).unwrap();
    std::fs::write(server.dir.path().join("certs/ca.crl"), crl).unwrap();
    serials
}

#[test]
fn every_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dual = akm::ops::dual::DualControl::new(vec!["destroy".into()], 10);
    let (server, console, uid, admin2) = runtime.block_on(async {
        let server = TestServer::start_with_dual_and_backups(dual).await;
        // The register the certificates page lists: the browser's own certificate, one near
        // its expiry, one revoked.
        let (admin2, _) = issue_recorded(&server, "admin2", &["admins"], 365);
        issue_recorded(&server, "svc-payments", &["pci"], 12);
        let (_, revoked) = issue_recorded(&server, "old-laptop", &["users"], 200);
        revoke_recorded(&server, &[&revoked]);
        let console = start_console(&server, 50).await;
        let mut admin = Browser::new(&server, &console, "admin", &["admins"]);
        let mut uid = String::new();
        for (name, group) in [
            ("payments-kek", "pci"),
            ("tokenization", "pci"),
            ("backup-signing", "ops"),
            ("<script>alert(1)</script>", "probe"),
        ] {
            let r = admin
                .post(
                    "/keys/create",
                    &[
                        ("name", name),
                        ("group", group),
                        ("alg", "aes-256"),
                        ("activate", "1"),
                    ],
                )
                .await;
            if name == "payments-kek" {
                uid = uid_on_page(&r.body);
            }
        }
        let rotated = admin
            .post("/key/action", &[("uid", &uid), ("do", "rotate")])
            .await;
        let uid = uid_on_page(&rotated.body);
        // A destroy refused under dual control leaves a request to approve.
        admin
            .post("/key/action", &[("uid", &uid), ("do", "destroy")])
            .await;
        admin.post("/backups/run", &[]).await;
        for (kind, name, ops) in [
            ("group", "pci", "get,locate,encrypt,decrypt"),
            ("user", "svc-payments", "all"),
        ] {
            let fields = [
                ("kind", kind),
                ("name", name),
                ("operations", ops),
                ("enabled", "true"),
            ];
            admin.post("/accounts/set", &fields).await;
        }
        (server, console, uid, admin2)
    });
    let work = tempfile::tempdir().unwrap();
    // The browser holds admin2's certificate and presents it itself.
    let home = nss_home(&server, &work.path().join("home"), Some(&admin2));
    let _policy = CertificatePolicy::install(console.addr.port());
    let base = format!("https://127.0.0.1:{}", console.addr.port());
    let keep = std::env::var_os("AKM_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    let pages = [
        ("overview", "/".to_owned()),
        ("keys", "/keys".to_owned()),
        ("key", format!("/key?uid={uid}")),
        ("dual-control", "/dual".to_owned()),
        ("accounts", "/accounts".to_owned()),
        ("backups", "/backups".to_owned()),
        ("certificates", "/certificates".to_owned()),
        ("audit", "/audit?verify=1".to_owned()),
        ("mirroring", "/mirror".to_owned()),
        ("configuration", "/config".to_owned()),
    ];
    for (name, path) in &pages {
        let url = format!("{base}{path}");
        let shot = work.path().join(format!("{name}.png"));
        run_chromium(
            &browser,
            &home,
            &work.path().join(format!("profile-{name}")),
            &url,
            &[&format!("--screenshot={}", shot.display())],
        );
        let png = std::fs::read(&shot).expect("no screenshot written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        assert!(png.len() > 10_000, "{name}: screenshot suspiciously small");
        if let Some(dir) = &keep {
            std::fs::copy(&shot, dir.join(format!("{name}.png"))).unwrap();
        }
    }
    let dom = run_chromium(
        &browser,
        &home,
        &work.path().join("profile-dom"),
        &format!("{base}/keys"),
        &["--dump-dom"],
    );
    assert!(dom.contains("admin2 (administrator)"), "{dom}");
    assert!(
        dom.contains("payments-kek") && dom.contains("tokenization"),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script>alert"), "{dom}");
    let dual_dom = run_chromium(
        &browser,
        &home,
        &work.path().join("profile-dual"),
        &format!("{base}/dual"),
        &["--dump-dom"],
    );
    assert!(dual_dom.contains("Approve"), "{dual_dom}");
    let certs_dom = run_chromium(
        &browser,
        &home,
        &work.path().join("profile-certs"),
        &format!("{base}/certificates"),
        &["--dump-dom"],
    );
    assert!(certs_dom.contains("CN=old-laptop"), "{certs_dom}");
    assert!(certs_dom.contains("cert revoke --serial"), "{certs_dom}");
    drop(console);
    runtime.block_on(server.stop());
}

// ---- headless Chromium driven over the DevTools protocol ----

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// commands in on fd 3, answers and events out on fd 4, each JSON text ended by a NUL). The
/// two descriptors are FIFOs the shell opens for Chromium (the tests use no unsafe code, so
/// they cannot set a child's descriptors themselves).
struct Devtools {
    child: std::process::Child,
    commands: std::fs::File,
    messages: std::sync::mpsc::Receiver<serde_json::Value>,
    next_id: u64,
    session: String,
}

impl Devtools {
    fn launch(browser: &Path, home: &Path, work: &Path) -> Devtools {
        use std::io::Read;
        let (to_browser, from_browser) = (work.join("cdp-in"), work.join("cdp-out"));
        for fifo in [&to_browser, &from_browser] {
            assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        }
        let child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<\"$AKM_CDP_IN\" 4>\"$AKM_CDP_OUT\"")
            .arg(browser)
            .args(CHROMIUM_FLAGS)
            .arg("--remote-debugging-pipe")
            .arg(format!(
                "--user-data-dir={}",
                work.join("profile-cdp").display()
            ))
            .env("HOME", home)
            .env("AKM_CDP_IN", &to_browser)
            .env("AKM_CDP_OUT", &from_browser)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromium");
        // The shell opens fd 3 first, then fd 4: open the other ends in that order.
        let commands = std::fs::OpenOptions::new()
            .write(true)
            .open(&to_browser)
            .unwrap();
        let mut output = std::fs::File::open(&from_browser).unwrap();
        let (tx, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(n) = output.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&chunk[..n]);
                while let Some(end) = pending.iter().position(|b| *b == 0) {
                    let text: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&text[..end]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut dt = Devtools {
            child,
            commands,
            messages,
            next_id: 0,
            session: String::new(),
        };
        let target = dt.call(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let target = target["targetId"].as_str().unwrap().to_owned();
        let attached = dt.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": target, "flatten": true}),
        );
        dt.session = attached["sessionId"].as_str().unwrap().to_owned();
        dt.call("Page.enable", serde_json::json!({}));
        dt
    }

    /// Sends a command (to the page's session once attached) and waits for its result.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::Write;
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = serde_json::Value::String(self.session.clone());
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        loop {
            let m = self.next_message(method);
            if m["id"].as_u64() == Some(id) {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
        }
    }

    fn next_message(&self, waiting_for: &str) -> serde_json::Value {
        self.messages
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("chromium did not answer {waiting_for}"))
    }

    fn wait_for_load(&self) {
        loop {
            if self.next_message("Page.loadEventFired")["method"] == "Page.loadEventFired" {
                return;
            }
        }
    }

    fn open(&mut self, url: &str) {
        let navigated = self.navigate(url);
        assert!(navigated.get("errorText").is_none(), "{url}: {navigated}");
        self.wait_for_load();
    }

    /// Starts loading `url`; the result says `errorText` if the page cannot be had at all.
    fn navigate(&mut self, url: &str) -> serde_json::Value {
        self.call("Page.navigate", serde_json::json!({"url": url}))
    }

    /// Evaluates `expression` in the page (DevTools evaluation is not page script: the
    /// console's `script-src 'none'` still holds for the page itself).
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// Runs `expression` (which clicks a button) and waits for the page it leads to.
    fn click(&mut self, expression: &str) {
        self.eval(expression);
        self.wait_for_load();
    }

    fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        );
        base64_decode(shot["data"].as_str().unwrap())
    }

    fn close(mut self) {
        let _ = self.call("Browser.close", serde_json::json!({}));
        let pid = self.child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(self.child.wait());
        });
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// Standard base64 (the DevTools screenshot encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = text.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(value(*c)) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn an_administrator_creates_rotates_and_is_refused_dual_control_in_the_browser() {
    let Some(browser) = chromium() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dual = akm::ops::dual::DualControl::new(vec!["destroy".into()], 10);
    let (server, console) = runtime.block_on(async {
        let server =
            TestServer::start_with_access_and_dual(akm::policy::Settings::default(), dual).await;
        let console = start_console(&server, 50).await;
        (server, console)
    });
    let base = format!("https://127.0.0.1:{}", console.addr.port());
    let work = tempfile::tempdir().unwrap();
    // The browser logs in with the administrator's certificate from its own NSS database,
    // chosen by the managed policy; a browser without one is refused at the handshake.
    let admin = server
        .ca
        .issue_client(
            "admin",
            &["admins".into()],
            akm::pki::Validity::days_from_now(1),
        )
        .unwrap();
    let home = nss_home(&server, &work.path().join("home"), Some(&admin));
    let bare = nss_home(&server, &work.path().join("bare"), None);
    let _policy = CertificatePolicy::install(console.addr.port());
    let keep = std::env::var_os("AKM_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    let save = |name: &str, png: Vec<u8>| {
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        if let Some(dir) = &keep {
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    };
    let bare_work = work.path().join("bare-profile");
    std::fs::create_dir_all(&bare_work).unwrap();
    let mut without = Devtools::launch(&browser, &bare, &bare_work);
    let refused = without.navigate(&format!("{base}/keys"));
    // The console's handshake requires a certificate; Chromium, having none to give,
    // reports the refusal as this error instead of any page.
    assert_eq!(
        refused["errorText"], "net::ERR_BAD_SSL_CLIENT_AUTH_CERT",
        "a browser without a certificate reached the console: {refused}"
    );
    without.close();
    let mut dt = Devtools::launch(&browser, &home, work.path());
    // Create through the form, as a person would: type, click.
    dt.open(&format!("{base}/keys"));
    dt.click(
        "document.querySelector('form.create input[name=name]').value = 'browser-key';\
         document.querySelector('form.create input[name=group]').value = 'web';\
         document.querySelector('form.create button').click()",
    );
    let created = dt.dom();
    assert!(created.contains("created and activated key"), "{created}");
    assert!(created.contains("Key browser-key"), "{created}");
    let first = uid_on_page(&created);
    // Rotate from the detail page.
    dt.click(
        "[...document.querySelectorAll('#actions button')]\
         .find(b => b.textContent.startsWith('Rotate')).click()",
    );
    let rotated = dt.dom();
    assert!(rotated.contains("rotated"), "{rotated}");
    let second = uid_on_page(&rotated);
    assert_ne!(first, second);
    save("browser-rotated", dt.screenshot());
    // Both versions in the list, found by group.
    dt.open(&format!("{base}/keys?group=web"));
    let list = dt.dom();
    assert!(list.contains(&first) && list.contains(&second), "{list}");
    // Destroy is under dual control: refused without a second administrator's window.
    dt.open(&format!("{base}/key?uid={second}"));
    dt.click(
        "[...document.querySelectorAll('#actions button')]\
         .find(b => b.textContent === 'Destroy').click()",
    );
    let refused = dt.dom();
    assert!(refused.contains("dual control"), "{refused}");
    assert!(refused.contains("class=\"notice error\""), "{refused}");
    save("browser-dual-refused", dt.screenshot());
    assert_ne!(
        state_of(&server, &second),
        akm::kmip::enums::state::DESTROYED
    );
    // The audit page shows the rotation and the refusal.
    dt.open(&format!("{base}/audit"));
    let audit = dt.dom();
    assert!(audit.contains("ReKey") && audit.contains(&first), "{audit}");
    assert!(
        audit.contains("Destroy") && audit.contains("failure"),
        "{audit}"
    );
    // The page ran no script of its own: the policy forbids it.
    assert_eq!(dt.eval("document.scripts.length"), serde_json::json!(0));
    dt.close();
    drop(console);
    runtime.block_on(server.stop());
}
