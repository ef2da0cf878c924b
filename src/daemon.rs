//! Starting the server from a [`Config`]: first-start initialization (KEK and development
//! PKI), opening the node through the composition root ([`crate::app::open_context`]: crypto
//! self-test, store, audit journal), building TLS, binding the listener, and serving until
//! SIGTERM or SIGINT; telling systemd (`Type=notify`) when it is ready, alive (watchdog),
//! reloading (SIGHUP, see [`crate::reload`]) and stopping.

use crate::app::{create_private_dir, open_context, settings, StartError};
use crate::audit::signer::Signer;
use crate::config::Config;
use crate::crypto::Kek;
use crate::notify::Notifier;
use crate::ops::Ctx;
use crate::pki;
use crate::reload::Reload;
use crate::server::{self, tls};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The names `akm init` puts in the server certificate.
fn server_names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
    }
    for n in &config.tls.server_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// Whether `path` exists; a permission problem is an error naming it, never "absent".
fn present(path: &Path) -> Result<bool, StartError> {
    path.try_exists().map_err(|source| StartError::Unreadable {
        path: path.display().to_string(),
        source,
    })
}

/// Checks that the node's files can be looked at: the data directory, the KEK (plain and
/// sealed) and the database. An unreadable data directory must never pass for an empty one.
fn check_visible(config: &Config) -> Result<(), StartError> {
    let data = &config.store.data_dir;
    if present(data)? {
        std::fs::read_dir(data).map_err(|source| StartError::Unreadable {
            path: data.display().to_string(),
            source,
        })?;
    }
    for p in [
        config.store.kek(),
        config.store.sealed_kek(),
        config.store.database(),
    ] {
        present(&p)?;
    }
    Ok(())
}

/// `akm init`, all or nothing: a failure part-way removes what this run wrote (see
/// [`crate::first_start`]).
pub fn init_all_or_nothing(config: &Config) -> Result<Initialized, StartError> {
    check_visible(config)?;
    let before = crate::first_start::FirstStart::record(config).map_err(|source| {
        StartError::Unreadable {
            path: config.store.data_dir.display().to_string(),
            source,
        }
    })?;
    init(config).inspect_err(|_| undo_first_start(&before))
}

/// Undoes a failed first start and says so.
fn undo_first_start(before: &crate::first_start::FirstStart) {
    let removed = before.undo();
    if !removed.is_empty() {
        eprintln!(
            "akm: the first start failed; removed what it had created so the next start begins \
             afresh: {}",
            removed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// What `akm init` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Initialized {
    /// The KEK file.
    pub kek: std::path::PathBuf,
    /// The audit checkpoint signing key.
    pub audit_signing_key: std::path::PathBuf,
    /// Its public key (`ed25519:<hex>`).
    pub audit_public_key: String,
    /// The development PKI's directory.
    pub certs_dir: std::path::PathBuf,
}

impl std::fmt::Display for Initialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "akm init: KEK written to {}", self.kek.display())?;
        writeln!(
            f,
            "akm init: audit signing key written to {} (public key {})",
            self.audit_signing_key.display(),
            self.audit_public_key
        )?;
        write!(
            f,
            "akm init: development PKI written to {} (ca.crt, ca.crl, server.crt/key, admin.crt/key, user.crt/key)",
            self.certs_dir.display()
        )
    }
}

/// `akm init`: creates the data directory, the KEK and the development PKI.
pub fn init(config: &Config) -> Result<Initialized, StartError> {
    check_visible(config)?;
    let kek_path = config.store.kek();
    if kek_path.exists() {
        return Err(StartError::Exists(kek_path.display().to_string()));
    }
    if config.store.sealed_kek().exists() {
        return Err(StartError::Exists(
            config.store.sealed_kek().display().to_string(),
        ));
    }
    // A shared database is reached, migrated and checked before anything is written here.
    let shared = open_shared_store_to_init(config)?;
    create_private_dir(&config.store.data_dir)?;
    if let Some(parent) = kek_path.parent() {
        create_private_dir(parent)?;
    }
    pki::init_dev_pki(&config.tls.certs_dir, &server_names(config))?;
    // An empty CRL, so `tls.crls` can name it from the start and `akm cert revoke` adds to it.
    pki::revoke(
        &config.tls.certs_dir,
        &config.tls.certs_dir.join("ca.crl"),
        &[],
    )?;
    let kek = Kek::generate(&kek_path)?;
    if let Some(store) = shared {
        store.check_database_kek(kek.id(), &[])?;
        store.close();
    }
    let audit_key = config.audit.signing_key_path(&config.store);
    if let Some(parent) = audit_key.parent() {
        create_private_dir(parent)?;
    }
    let signer = Signer::generate(&audit_key)?;
    Ok(Initialized {
        kek: kek_path,
        audit_signing_key: audit_key,
        audit_public_key: signer.public_key().to_string(),
        certs_dir: config.tls.certs_dir.clone(),
    })
}

/// For `akm init` on a PostgreSQL store: the store, connected and migrated, when no node has
/// recorded a KEK for it yet. A database that already has one belongs to running nodes: a new
/// node joins with their KEK, not a new one.
fn open_shared_store_to_init(config: &Config) -> Result<Option<crate::store::Store>, StartError> {
    if config.store.shared_node_id().is_none() {
        return Ok(None);
    }
    let store = crate::store::Store::open_configured(&config.store)?;
    if let Some(existing) = store.database_kek()? {
        store.close();
        return Err(StartError::JoinNotInit(existing));
    }
    Ok(Some(store))
}

/// True when there is nothing yet: no KEK (plain or sealed) and no database.
pub fn needs_init(config: &Config) -> bool {
    !config.store.kek().exists()
        && !config.store.sealed_kek().exists()
        && !config.store.database().exists()
}

/// Takes the scheduled backups (`[backup] interval_secs` or `schedule`) on the blocking pool
/// until the task is dropped or aborted; a sealed server skips the turn.
async fn backup_on_schedule(ctx: Arc<Ctx>, schedule: crate::backup::schedule::Schedule) {
    let mut tick = None;
    loop {
        if crate::backup::schedule::wait_for_turn(&schedule.when, &mut tick)
            .await
            .is_none()
        {
            tracing::warn!("backup.schedule never fires again: no more scheduled backups");
            return;
        }
        if ctx.kek.is_sealed() {
            tracing::warn!("scheduled backup skipped: the server is sealed");
            continue;
        }
        let (c, s) = (ctx.clone(), schedule.clone());
        match tokio::task::spawn_blocking(move || {
            crate::backup::schedule::turn(&c.store, &c.kek, &c.audit, &s)
        })
        .await
        {
            Ok(Ok(info)) => {
                tracing::info!(file = %info.path.display(), sha256 = %info.sha256, "scheduled backup written")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "scheduled backup failed; retrying next interval")
            }
            Err(e) => tracing::error!(error = %e, "scheduled backup task failed"),
        }
    }
}

/// How many rotation checks a peer stays the schedule owner after it was last heard from.
const SCHEDULE_GRACE_CHECKS: u32 = 3;

/// Every `every`, re-keys the keys due for scheduled rotation (on the blocking pool: it uses
/// the store). Mirrored, only the schedule owner does (one node: see
/// [`crate::mirror::Mirror::owns_schedules`]), so a key is rotated once per period. Runs
/// until the server stops.
async fn rotate_on_schedule(
    ctx: Arc<Ctx>,
    every: Duration,
    mirror: Option<Arc<crate::mirror::Mirror>>,
) {
    loop {
        tokio::time::sleep(every).await;
        if let Some(m) = &mirror {
            if !m.owns_schedules(every * SCHEDULE_GRACE_CHECKS) {
                tracing::debug!("scheduled rotation: a peer with a lower node id runs it");
                continue;
            }
        }
        if !runs_schedules_on_shared_store(&ctx, every * SCHEDULE_GRACE_CHECKS).await {
            continue;
        }
        let c = ctx.clone();
        let now = crate::clock::now_secs();
        if let Err(e) =
            tokio::task::spawn_blocking(move || crate::ops::rotation::rotate_due(&c, now)).await
        {
            tracing::error!(error = %e, "scheduled rotation task failed");
        }
    }
}

/// On a database shared by several nodes, whether this node runs the scheduled rotations now:
/// the one holding the lease (renewed at each check; a holder that stops loses it after
/// `hold`). Always true on SQLite.
async fn runs_schedules_on_shared_store(ctx: &Arc<Ctx>, hold: Duration) -> bool {
    if !ctx.store.is_shared() {
        return true;
    }
    let c = ctx.clone();
    let lease = tokio::task::spawn_blocking(move || c.store.take_lease(SCHEDULE_LEASE, hold)).await;
    match lease {
        Ok(Ok(None)) => true,
        Ok(Ok(Some(held))) => {
            tracing::debug!(holder = %held.holder, "scheduled rotation: another node runs it");
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "scheduled rotation skipped: cannot take its lease");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduled rotation lease task failed");
            false
        }
    }
}

/// On a database shared with other nodes, which write to it with no link to this one: the
/// tasks that compare their security settings with this node's (client writes refused while
/// they differ) and put in force what they revoke. None on SQLite.
fn follow_other_nodes(ctx: &Arc<Ctx>) -> Vec<tokio::task::JoinHandle<()>> {
    if !ctx.store.is_shared() {
        return Vec::new();
    }
    vec![
        tokio::spawn(crate::node_settings::compare_with_other_nodes(ctx.clone())),
        tokio::spawn(crate::revocations::follow_shared_store(ctx.clone())),
    ]
}

/// The lease that makes one node of a shared database run the scheduled rotations.
const SCHEDULE_LEASE: &str = "scheduled-rotation";

/// Renews this process's hold on its node id on a shared database until the server stops
/// (see [`crate::store::Store::claim_node_id`]); returns, with why, once another process holds
/// it: this one stalled past its hold (stopped, swapped out, cut off from the database) and a
/// second process started as the same node meanwhile. Two processes writing as one node would
/// mix their change-log entries and audit marks, so the caller stops serving.
async fn hold_node_id(ctx: Arc<Ctx>) -> crate::store::StoreError {
    loop {
        tokio::time::sleep(crate::store::NODE_LEASE / 3).await;
        let c = ctx.clone();
        match tokio::task::spawn_blocking(move || c.store.renew_node_id()).await {
            Ok(Ok(())) => {}
            Ok(Err(e @ crate::store::StoreError::NodeIdInUse { .. })) => {
                tracing::error!(error = %e, "store: another process took this node's id while this one stalled: stopping");
                return e;
            }
            // The database unreachable: the hold lapses if this lasts, and the next renewal
            // that reaches it says whether another process took it meanwhile.
            Ok(Err(e)) => tracing::error!(error = %e, "store: cannot renew this node's id"),
            Err(e) => tracing::error!(error = %e, "store: node id renewal task failed"),
        }
    }
}

/// Resolves with why this node's id was lost to another process, if it ever is (never on
/// SQLite, or while the hold is renewed).
async fn node_id_lost(
    hold: Option<tokio::task::JoinHandle<crate::store::StoreError>>,
) -> crate::store::StoreError {
    match hold {
        Some(task) => match task.await {
            Ok(lost) => lost,
            // Aborted at shutdown, or panicked (logged by the runtime): not a loss to act on.
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// `akm serve`: initializes if allowed and needed, then serves until a signal arrives. A
/// failure to start is also put in the service status for `systemctl status`.
pub fn serve(config: &Config, listen: Option<SocketAddr>) -> Result<(), StartError> {
    let notifier = Notifier::from_env();
    check_visible(config)?;
    // A first start that fails (cannot bind, a bad setting found after the PKI was made)
    // leaves nothing behind: no error returns once the server accepts connections.
    let first_start = if config.server.auto_init && needs_init(config) {
        Some(
            crate::first_start::FirstStart::record(config).map_err(|source| {
                StartError::Unreadable {
                    path: config.store.data_dir.display().to_string(),
                    source,
                }
            })?,
        )
    } else {
        None
    };
    let result = start_and_serve(config, listen, &notifier);
    if let (Err(_), Some(before)) = (&result, &first_start) {
        undo_first_start(before);
    }
    if let Err(e) = &result {
        notifier.status(&format!("failed: {e}"));
    }
    result
}

fn start_and_serve(
    config: &Config,
    listen: Option<SocketAddr>,
    notifier: &Notifier,
) -> Result<(), StartError> {
    if config.server.auto_init && needs_init(config) {
        println!("akm serve: empty data directory and auto_init = true: initializing");
        notifier.status("initializing: KEK and development PKI");
        println!("{}", init(config)?);
    }
    config.check_mirror_trust()?;
    notifier.status("starting: self-tests, store, audit journal, TLS");
    let tls = Arc::new(tls::TlsHandle::from_config(&config.tls)?);
    let mut ctx = open_context(config)?;
    let reload = Arc::new(Reload::new(config, tls.clone(), notifier.clone()));
    let r = reload.clone();
    ctx.reload = Some(crate::ops::Reloader(Arc::new(move |ctx| {
        r.run(ctx, "akm reload")
    })));
    // What this node's CRLs revoke becomes a mirrored record, enforced by every peer.
    crate::revocations::record_from_crls(&ctx, &config.tls);
    let ctx = Arc::new(ctx);
    let addr = listen.unwrap_or_else(|| config.listen_addr());
    // Every connection is a descriptor: the budgets, the store, the journal and a margin.
    let s = &config.server;
    let needed = s.max_connections + s.max_handshaking + config.status.max_connections + 256;
    server::raise_open_file_limit(needed as u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let lost = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let bound = listener.local_addr().unwrap_or(addr);
        // Before announcing ourselves: from then on a SIGHUP means "reload", never "exit",
        // and SIGTERM/SIGINT drain and stop rather than kill.
        reload_on_sighup(reload.clone(), ctx.clone());
        let shutdown = shutdown_signal();
        println!("akm serve: listening on {bound} (KMIP over mutual TLS)");
        println!(
            "akm serve: client certificates are in {} (admin.crt/admin.key, user.crt/user.key, CA ca.crt)",
            config.tls.certs_dir.display()
        );
        println!(
            "akm serve: audit journal {} (checkpoints verify with {})",
            ctx.audit.path().display(),
            ctx.audit.public_key()
        );
        let kek = ctx.kek.status();
        if kek.sealed {
            println!(
                "akm serve: the KEK is SEALED ({}, {} needed): nothing is served until `akm unseal`",
                kek.scheme, kek.threshold
            );
        } else {
            println!("akm serve: KEK auto-unsealed from a key file (development only, NOT FOR PRODUCTION)");
        }
        tracing::info!(%bound, "serving");
        let certificates = crate::certexpiry::Watch::new(
            crate::certexpiry::Sources {
                server_cert: config.tls.cert.clone(),
                certs_dir: config.tls.certs_dir.clone(),
                crl: config.tls.crls.first().cloned(),
            },
            config.tls.expiry_warning_days,
        );
        let expiry_watch = tokio::spawn(crate::certexpiry::run(certificates.clone(), ctx.clone()));
        let status = crate::status::start(config, ctx.clone(), Some(certificates.clone())).await?;
        if let Some(s) = &status {
            reload.attach_status(s.tls.clone());
            println!("akm serve: status page, /health and /metrics on https://{}/", s.addr);
        }
        let console =
            crate::console::start(config, ctx.clone(), Some(certificates)).await?;
        if let Some(c) = &console {
            reload.attach_console(c.tls.clone());
            println!("akm serve: management console on https://{}/ (client certificates)", c.addr);
        }
        let (stop_mirror, mirror_stopped) = tokio::sync::watch::channel(false);
        let mut mirror = None;
        if let Some(m) = &config.mirror {
            let status_file = config.store.data_dir.join(crate::mirror::STATUS_FILE);
            let started =
                crate::mirror::start(m.clone(), ctx.clone(), status_file, mirror_stopped).await?;
            mirror = Some(started);
        }
        let rotation = tokio::spawn(rotate_on_schedule(
            ctx.clone(),
            Duration::from_secs(config.crypto.rotation_check_secs),
            mirror.clone(),
        ));
        let node_id_hold = ctx
            .store
            .is_shared()
            .then(|| tokio::spawn(hold_node_id(ctx.clone())));
        let node_id_abort = node_id_hold.as_ref().map(|t| t.abort_handle());
        let lost = Arc::new(std::sync::Mutex::new(None));
        let followers = follow_other_nodes(&ctx);
        let scheduled = crate::backup::schedule::When::of(&config.backup).map(|when| {
            tokio::spawn(backup_on_schedule(
                ctx.clone(),
                crate::backup::schedule::Schedule {
                    dir: config.backup.dir(&config.store),
                    when,
                    keep: config.backup.keep,
                    sftp: config.backup.sftp.clone(),
                },
            ))
        });
        // Self-tests passed, the store and the audit journal are open and the listener is
        // bound (connections queue until the accept loop below takes them): ready.
        let sealed = if kek.sealed { "; KEK sealed, waiting for custodians" } else { "" };
        notifier.ready(&format!("serving KMIP on {bound}{sealed}"));
        // Heartbeats only once ready, so none can overtake READY=1.
        let watchdog = crate::notify::watchdog_interval().map(|every| {
            tracing::info!(every_ms = every.as_millis() as u64, "systemd watchdog heartbeats on");
            tokio::spawn(crate::notify::watchdog(notifier.clone(), every, liveness(ctx.clone())))
        });
        let stopping = {
            let n = notifier.clone();
            let lost = lost.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    e = node_id_lost(node_id_hold) => {
                        if let Ok(mut l) = lost.lock() {
                            *l = Some(e);
                        }
                    }
                }
                n.stopping();
            }
        };
        server::serve_reloadable(listener, tls, ctx.clone(), settings(config), stopping).await;
        if let Some(s) = status {
            s.stop().await;
        }
        if let Some(c) = console {
            c.stop().await;
        }
        rotation.abort();
        expiry_watch.abort();
        for task in scheduled.into_iter().chain(watchdog).chain(followers) {
            task.abort();
        }
        if let Some(hold) = node_id_abort {
            hold.abort();
        }
        let _ = stop_mirror.send(true);
        if let Some(m) = mirror {
            m.summarise_refusals(true);
        }
        let lost = lost.lock().ok().and_then(|mut l| l.take());
        Ok::<_, StartError>(lost)
    })?;
    if let Some(lost) = lost {
        // Stopped serving (drained like a SIGTERM); the store and the journal close as at any
        // stop, and the process ends in failure naming the other holder.
        ctx.store.close();
        ctx.audit.close();
        return Err(StartError::Store(lost));
    }
    ctx.store.close();
    // The final checkpoint closes the journal: a verifier knows nothing was cut off after it.
    ctx.audit.close();
    tracing::info!("stopped");
    Ok(())
}

/// Takes over SIGHUP (whose default would end the process) and reloads the configuration on
/// each one until the process ends. Registers the handler before returning, so a SIGHUP that
/// arrives once the server announced itself never kills it.
fn reload_on_sighup(reload: Arc<Reload>, ctx: Arc<Ctx>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload only with akm reload");
            return;
        }
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let (r, c) = (reload.clone(), ctx.clone());
            // The reload logs its outcome; it reads files and writes the store, so it runs on
            // the blocking pool.
            if let Err(e) = tokio::task::spawn_blocking(move || r.run(&c, "SIGHUP").map(drop)).await
            {
                tracing::error!(error = %e, "SIGHUP: reload task failed");
            }
        }
    });
}

/// The watchdog's liveness proof: the async runtime runs this task and its timer, the
/// blocking pool (where every request runs) takes a job, and the store's writer thread
/// answers a round trip.
fn liveness(
    ctx: Arc<Ctx>,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
    move || {
        let c = ctx.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.store.ping())
                .await
                .map_err(|e| format!("blocking pool: {e}"))?
                .map_err(|e| format!("store writer: {e}"))
        })
    }
}

/// Listens for SIGTERM and SIGINT from the moment it is called; the future it returns
/// completes at the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered here, not when the future is first polled: a SIGTERM that arrives between
    // READY and the start of the accept loop must not take the default action (exit at once).
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            },
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT");
                std::future::pending::<()>().await
            }
        }
    }
}
