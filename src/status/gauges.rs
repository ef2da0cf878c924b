//! The state metrics of `/metrics`, from a [`Snapshot`]: objects by type and state, seal
//! state, audit journal position, checkpoint and sink backlog, mirror peers, process start
//! time and build info. (The request counters are in [`crate::metrics`].)

use super::snapshot::Snapshot;
use crate::kmip::enums::{object_type as ot, state as st};
use crate::metrics::prom::{Family, Kind};

/// The Object Type's name as the spec spells it, without spaces, or hex.
pub fn object_type_name(code: u32) -> String {
    let name = match code {
        ot::CERTIFICATE => "Certificate",
        ot::SYMMETRIC_KEY => "SymmetricKey",
        ot::PUBLIC_KEY => "PublicKey",
        ot::PRIVATE_KEY => "PrivateKey",
        ot::SPLIT_KEY => "SplitKey",
        ot::TEMPLATE => "Template",
        ot::SECRET_DATA => "SecretData",
        ot::OPAQUE_OBJECT => "OpaqueObject",
        ot::PGP_KEY => "PGPKey",
        ot::CERTIFICATE_REQUEST => "CertificateRequest",
        _ => return format!("0x{code:08X}"),
    };
    name.to_owned()
}

/// The State's name as the spec spells it, without spaces, or hex.
pub fn state_name(code: u32) -> String {
    let name = match code {
        st::PRE_ACTIVE => "PreActive",
        st::ACTIVE => "Active",
        st::DEACTIVATED => "Deactivated",
        st::COMPROMISED => "Compromised",
        st::DESTROYED => "Destroyed",
        st::DESTROYED_COMPROMISED => "DestroyedCompromised",
        _ => return format!("0x{code:08X}"),
    };
    name.to_owned()
}

fn single(name: &'static str, kind: Kind, help: &'static str, value: f64) -> Family {
    let mut f = Family::new(name, kind, help);
    f.sample("", &[], value);
    f
}

/// The state families of `s`, for a process that started at `started_unix`.
pub fn families(s: &Snapshot, started_unix: i64) -> Vec<Family> {
    let mut out = vec![
        {
            let mut f = Family::new("akm_build_info", Kind::Gauge, "akm's version (always 1).");
            f.sample("", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
            f
        },
        {
            let m = crate::crypto::backend::module();
            let mut f = Family::new(
                "akm_crypto_module_info",
                Kind::Gauge,
                "The cryptographic module serving this build, and whether it is a FIPS module in approved mode (always 1).",
            );
            let fips = if m.fips { "true" } else { "false" };
            f.sample("", &[("module", m.name), ("version", &m.version), ("fips", fips)], 1.0);
            f
        },
        single(
            "akm_process_start_time_seconds",
            Kind::Gauge,
            "When the server started, seconds since the epoch.",
            started_unix as f64,
        ),
        single(
            "akm_kek_sealed",
            Kind::Gauge,
            "1 while the KEK is sealed (nothing is served), 0 once unsealed.",
            f64::from(u8::from(s.seal.sealed)),
        ),
        single(
            "akm_up",
            Kind::Gauge,
            "1 when the server serves requests (KEK unsealed, audit journal writable, store readable).",
            f64::from(u8::from(s.unavailable().is_none())),
        ),
    ];
    out.push(objects(s));
    out.extend(database(s));
    out.extend(certificates(s));
    out.extend(audit(s));
    out.extend(mirror(s));
    out
}

/// Seconds until each watched certificate expires (negative once expired), and how many are
/// within the warning threshold.
fn certificates(s: &Snapshot) -> Vec<Family> {
    let (certs, threshold) = &s.certificates;
    let mut left = Family::new(
        "akm_certificate_expiry_seconds",
        Kind::Gauge,
        "Seconds until a certificate expires (negative once expired): the server's, and each unrevoked client certificate the akm CA issued (by serial: `akm cert list` names them).",
    );
    let mut expiring = 0u32;
    for c in certs {
        let secs = c.not_after - s.now_unix;
        if secs <= *threshold {
            expiring += 1;
        }
        left.sample("", &[("kind", c.kind), ("serial", &c.serial)], secs as f64);
    }
    vec![
        left,
        single(
            "akm_certificates_expiring",
            Kind::Gauge,
            "Certificates within tls.expiry_warning_days of expiry, or expired.",
            f64::from(expiring),
        ),
    ]
}

/// A shared database's reachability, round trip and reader connections (nothing on SQLite).
fn database(s: &Snapshot) -> Vec<Family> {
    let Some(db) = &s.database else {
        return Vec::new();
    };
    let mut out = vec![single(
        "akm_store_database_up",
        Kind::Gauge,
        "1 when this node reaches the shared PostgreSQL database (a trivial query at the scrape), 0 when it cannot.",
        f64::from(u8::from(db.is_ok())),
    )];
    if let Ok(h) = db {
        out.push(single(
            "akm_store_database_round_trip_seconds",
            Kind::Gauge,
            "How long the scrape's trivial query took, waiting for a reader connection included.",
            h.round_trip.as_secs_f64(),
        ));
        let mut conns = Family::new(
            "akm_store_database_connections",
            Kind::Gauge,
            "Reader connections to the database: open (in use or idle), idle, and the most the pool opens (store.pool_size).",
        );
        conns.sample("", &[("state", "open")], h.readers_open as f64);
        conns.sample("", &[("state", "idle")], h.readers_idle as f64);
        conns.sample("", &[("state", "max")], h.pool_size as f64);
        out.push(conns);
    }
    out
}

fn objects(s: &Snapshot) -> Family {
    let mut f = Family::new(
        "akm_objects",
        Kind::Gauge,
        "Managed objects by object type and state (read from the store, cached briefly).",
    );
    for c in s.objects.as_deref().unwrap_or(&[]) {
        let (t, st) = (object_type_name(c.object_type), state_name(c.state));
        f.sample("", &[("type", &t), ("state", &st)], c.count as f64);
    }
    f
}

fn audit(s: &Snapshot) -> Vec<Family> {
    let j = &s.journal;
    let mut backlog = Family::new(
        "akm_audit_sink_backlog_records",
        Kind::Gauge,
        "Durable audit records a syslog sink has not delivered yet.",
    );
    for (sink, n) in &j.sinks {
        backlog.sample("", &[("sink", sink)], *n as f64);
    }
    let mut out = vec![
        single(
            "akm_audit_journal_writable",
            Kind::Gauge,
            "1 while the audit journal can be written (requests are refused otherwise).",
            f64::from(u8::from(j.healthy)),
        ),
        single(
            "akm_audit_journal_serial",
            Kind::Gauge,
            "Serial of the last durable audit record.",
            j.serial as f64,
        ),
        single(
            "akm_audit_journal_waiting",
            Kind::Gauge,
            "Requests waiting for their audit records to be written.",
            j.waiting as f64,
        ),
        backlog,
    ];
    if j.checkpoint_serial > 0 {
        out.push(single(
            "akm_audit_last_checkpoint_serial",
            Kind::Gauge,
            "Serial of the last signed checkpoint written since start.",
            j.checkpoint_serial as f64,
        ));
        out.push(single(
            "akm_audit_last_checkpoint_time_seconds",
            Kind::Gauge,
            "When the last signed checkpoint was written, seconds since the epoch.",
            j.checkpoint_ms as f64 / 1000.0,
        ));
    }
    out
}

fn mirror(s: &Snapshot) -> Vec<Family> {
    let Some(Ok(m)) = &s.mirror else {
        return Vec::new();
    };
    let mut connected = Family::new(
        "akm_mirror_peer_connected",
        Kind::Gauge,
        "1 while the mirror link to a peer is up, by direction.",
    );
    let mut lag = Family::new(
        "akm_mirror_peer_lag_entries",
        Kind::Gauge,
        "Local changes a peer has not acknowledged.",
    );
    let mut lag_secs = Family::new(
        "akm_mirror_peer_lag_seconds",
        Kind::Gauge,
        "Age of the oldest local change a peer has not acknowledged.",
    );
    let mut behind = Family::new(
        "akm_mirror_peer_behind_entries",
        Kind::Gauge,
        "A peer's changes not applied here yet, as far as it has told us.",
    );
    let mut settings = Family::new(
        "akm_mirror_peer_settings_match",
        Kind::Gauge,
        "1 when a peer's security settings digest matches this node's, 0 when it differs (link and writes refused), -1 before they were compared.",
    );
    for p in &m.peers {
        let peer = p.node_id.as_str();
        let verdict = match p.settings_match {
            Some(true) => 1.0,
            Some(false) => 0.0,
            None => -1.0,
        };
        settings.sample("", &[("peer", peer)], verdict);
        for (dir, up) in [
            ("outbound", p.outbound_connected),
            ("inbound", p.inbound_connected),
        ] {
            connected.sample(
                "",
                &[("peer", peer), ("direction", dir)],
                f64::from(u8::from(up)),
            );
        }
        lag.sample("", &[("peer", peer)], p.lag_entries as f64);
        lag_secs.sample("", &[("peer", peer)], p.lag_seconds as f64);
        behind.sample("", &[("peer", peer)], p.behind_entries as f64);
    }
    vec![
        single(
            "akm_mirror_status_age_seconds",
            Kind::Gauge,
            "Age of the mirror status the worker last wrote.",
            (s.now_unix - m.updated_unix).max(0) as f64,
        ),
        connected,
        lag,
        lag_secs,
        behind,
        settings,
    ]
}
