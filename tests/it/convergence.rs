//! The randomized convergence checker (issue 17), in the spirit of Jepsen/Elle: three real
//! `akm serve` nodes mirroring through the fault-injecting proxies, several clients (each its
//! own user) doing random Create, Register, Re-key, scheduled rotations, Activate, Revoke,
//! Destroy, attribute edits and Locate on random nodes, an administrator changing users,
//! groups and key policies and revoking client certificates, and a seeded schedule of link
//! cuts, delays, black holes, isolations and kill -9 with restarts. When the faults stop and
//! the nodes quiesce, every node's canonical dump must be identical and the invariants must
//! hold (see [`check_round`]).
//!
//! A run is a sequence of rounds, each on a fresh cluster with its own seed; the seed decides
//! every client's and the administrator's choices and the whole fault schedule (only the
//! interleaving of real processes is not reproducible), and odd seeds run in RPO-zero mode.
//! `AKM_CONVERGENCE_SEED=S` replays one seed, `AKM_CONVERGENCE_ROUND_SECS` sets the activity
//! of a round, `AKM_CONVERGENCE_SECS=1800` runs rounds for that long (the `#[ignore]`d long
//! test).
//!
//! Checked, every one failing the run: the dumps agree within a minute (objects with every column but the local
//! row number, names, groups, a digest of the unwrapped material, users and groups, and each
//! record's stamp); no acknowledged Destroy is undone and nothing is destroyed that no client
//! tried to destroy; every uid a client was given exists; every live version is readable by
//! its owner on every node and Get returns the stored material; RPO-zero: at each kill -9,
//! every write the dead node acknowledged is on another node; a revoked certificate is
//! refused where it was revoked; one live successor per
//! version, one live holder per (owner, name), such keys stay readable and revocable,
//! scheduled rotations never fail on a name, revocations refused on every node, every node's
//! journal names every object it holds, unknown (new) tables agree.

use crate::support::cluster::{Cluster, Options};
use crate::support::kmip::{
    aes_attrs, create_payload, filters, name, register_key_payload, uid, uids_of,
};
use crate::support::proxy::Fault;
use akm::client::{Client, ClientError};
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{link_type, operation as op, revocation_reason_code as rrc, state};
use akm::kmip::ProtocolVersion;
use akm::pki::Validity;
use akm::ttlv::{Tag, Ttlv, Value};
use rusqlite::OpenFlags;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const V: ProtocolVersion = ProtocolVersion::V1_4;

/// Seeds the short run always replays: 0x5eed0001 (RPO-zero: a node killed between a commit
/// and its audit record) and 0x5eed0002 (asynchronous: a fork re-keyed again on both sides)
/// failed before those were fixed. Append every seed a long run finds failing.
/// 0x1a2_5071_3472 (asynchronous; found by a long run at 60 s rounds) left three-way forks
/// before forks were resolved by all of a version's replacements.
/// 0x1a2_5071_347a (asynchronous, 60 s rounds): a replaced version whose Rotate Latest a
/// peer's concurrent edit brought back was re-keyed a third time.
/// 0x1a2_5071_347b (RPO-zero) and 0x1a2_5071_347c (asynchronous), 60 s rounds: a node killed
/// between applying a peer's re-key and running the fork rule kept the fork.
const REGRESSION_SEEDS: &[u64] = &[
    0x5eed_0001,
    0x5eed_0002,
    0x1a2_5071_3472,
    0x1a2_5071_347a,
    0x1a2_5071_347b,
    0x1a2_5071_347c,
];

/// Activity of a round in the short run (the suite's budget is 90 s for the whole test).
const SHORT_ROUND_SECS: u64 = 12;
/// Activity of a round in a long run.
const LONG_ROUND_SECS: u64 = 60;
/// Concurrent KMIP clients, each its own user.
const CLIENTS: usize = 4;
/// How long the nodes get to agree once the faults stopped.
const QUIESCE_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Seeded choices.

/// SplitMix64: small, fast, and the same sequence for a seed on every platform.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    /// An independent stream for actor `stream` of a round.
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }

    /// One of `choices` by weight.
    fn weighted<T: Copy>(&mut self, choices: &[(u32, T)]) -> T {
        let total: u32 = choices.iter().map(|c| c.0).sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (w, t) in choices {
            if x < *w {
                return *t;
            }
            x -= w;
        }
        choices[choices.len() - 1].1
    }
}

fn env_u64(key: &str) -> Option<u64> {
    let v = std::env::var(key).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------
// The fault schedule: a pure function of the seed and the activity time.

#[derive(Clone, Copy, Debug)]
enum FaultKind {
    /// Both directions of one link.
    Link(usize, usize, Fault),
    /// Every link of one node cut.
    Isolate(usize),
    /// kill -9, restarted when the fault ends.
    Kill(usize),
}

#[derive(Clone, Copy, Debug)]
struct ScheduledFault {
    start: Duration,
    end: Duration,
    kind: FaultKind,
}

const LINKS: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];

/// The faults of a round, one starting every 0.3-2 s and lasting 0.8-6 s (so they overlap):
/// a link cut (30%), delayed by 20-300 ms per chunk (20%) or black-holed (8%), one node cut
/// off from both peers (17%), or one node killed with SIGKILL and restarted on its data when
/// the fault ends (25%; at most one node down at a time). Replaying a seed with a shorter
/// activity replays the beginning of the longer schedule.
fn fault_schedule(seed: u64, activity: Duration) -> Vec<ScheduledFault> {
    let mut rng = Rng::new(seed, 1000);
    let mut out: Vec<ScheduledFault> = Vec::new();
    let mut t = rng.millis(300, 1500);
    while t < activity {
        let length = rng.millis(800, 6000);
        let end = (t + length).min(activity);
        let node = rng.below(3) as usize;
        let &(a, b) = rng.pick(&LINKS).unwrap();
        let choice = rng.weighted(&[(30, 0u8), (20, 1), (8, 2), (17, 3), (25, 4)]);
        let kind = match choice {
            0 => FaultKind::Link(a, b, Fault::Cut),
            1 => FaultKind::Link(a, b, Fault::Delay(rng.millis(20, 300))),
            2 => FaultKind::Link(a, b, Fault::Drop),
            3 => FaultKind::Isolate(node),
            _ => {
                // At most one node down at a time: the clients always have somewhere to go.
                let busy = out
                    .iter()
                    .any(|f| matches!(f.kind, FaultKind::Kill(_)) && f.end + RESTART_GAP > t);
                if busy {
                    FaultKind::Link(a, b, Fault::Cut)
                } else {
                    FaultKind::Kill(node)
                }
            }
        };
        out.push(ScheduledFault {
            start: t,
            end,
            kind,
        });
        t += rng.millis(300, 2000);
    }
    out
}

/// Time between a restart and the next kill, so a restarted node can catch up a little.
const RESTART_GAP: Duration = Duration::from_millis(500);

/// Which fault a link has at `at`: the latest-started active one affecting it.
fn link_fault_at(schedule: &[ScheduledFault], at: Duration, a: usize, b: usize) -> Fault {
    schedule
        .iter()
        .rev()
        .filter(|f| f.start <= at && at < f.end)
        .find_map(|f| match f.kind {
            FaultKind::Link(x, y, fault) if (x, y) == (a, b) => Some(fault),
            FaultKind::Isolate(n) if n == a || n == b => Some(Fault::Cut),
            _ => None,
        })
        .unwrap_or(Fault::Pass)
}

#[derive(Default, Debug, Clone)]
struct FaultFigures {
    cuts: usize,
    delays: usize,
    drops: usize,
    isolations: usize,
    kills: usize,
}

impl FaultFigures {
    fn of(schedule: &[ScheduledFault]) -> FaultFigures {
        let mut f = FaultFigures::default();
        for s in schedule {
            match s.kind {
                FaultKind::Link(_, _, Fault::Cut) => f.cuts += 1,
                FaultKind::Link(_, _, Fault::Delay(_)) => f.delays += 1,
                FaultKind::Link(_, _, _) => f.drops += 1,
                FaultKind::Isolate(_) => f.isolations += 1,
                FaultKind::Kill(_) => f.kills += 1,
            }
        }
        f
    }

    fn total(&self) -> usize {
        self.cuts + self.delays + self.drops + self.isolations + self.kills
    }
}

// ---------------------------------------------------------------------------------------
// What the clients were told.

#[derive(Default)]
struct History {
    /// Every uid a client was given with Success (Create, Register, Re-key, Locate), with the
    /// node that said so.
    told: BTreeMap<String, usize>,
    /// New objects acknowledged by each node (Create, Register, Re-key), in order.
    acked_new: Vec<(usize, String)>,
    /// Destroys acknowledged, by node.
    acked_destroys: Vec<(usize, String)>,
    /// Every uid a Destroy was sent for (acknowledged or not).
    destroy_attempted: BTreeSet<String>,
    /// Operations by name: (attempted, succeeded, refused by the server, outcome unknown).
    ops: BTreeMap<&'static str, [usize; 4]>,
    /// Client certificates revoked, each with the node whose CRL it went into.
    revoked: Vec<RevokedCert>,
    /// Nodes whose CRL changed but whose reload has not succeeded yet.
    pending_reload: BTreeSet<usize>,
    /// RPO-zero violations seen at a kill.
    rpo_missing: Vec<String>,
    /// Acknowledged writes verified on another node at a kill (RPO-zero).
    rpo_verified: usize,
}

impl History {
    fn count(&mut self, name: &'static str, slot: usize) {
        self.ops.entry(name).or_default()[slot] += 1;
    }
}

/// A client certificate the administrator revoked (`akm cert revoke` + `akm reload`).
struct RevokedCert {
    cn: String,
    node: usize,
    tls: Arc<rustls::ClientConfig>,
}

/// What every actor of a round shares.
struct Shared {
    kmip: Vec<String>,
    configs: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    stop: AtomicBool,
    history: Mutex<History>,
    rpo_zero: bool,
}

// ---------------------------------------------------------------------------------------
// The clients.

#[derive(Clone, Copy, Debug)]
enum ClientOp {
    Create,
    CreateScheduled,
    Register,
    ReKey,
    Activate,
    Revoke,
    Destroy,
    AddAttribute,
    ModifyAttribute,
    DeleteAttribute,
    Get,
    LocateName,
}

/// How often each client operation is chosen (relative weights).
const CLIENT_OPS: &[(u32, ClientOp)] = &[
    (16, ClientOp::Create),
    (4, ClientOp::CreateScheduled),
    (7, ClientOp::Register),
    (9, ClientOp::ReKey),
    (9, ClientOp::Activate),
    (7, ClientOp::Revoke),
    (8, ClientOp::Destroy),
    (9, ClientOp::AddAttribute),
    (6, ClientOp::ModifyAttribute),
    (4, ClientOp::DeleteAttribute),
    (8, ClientOp::Get),
    (5, ClientOp::LocateName),
];

impl ClientOp {
    fn label(self) -> &'static str {
        match self {
            ClientOp::Create => "create",
            ClientOp::CreateScheduled => "create-scheduled",
            ClientOp::Register => "register",
            ClientOp::ReKey => "re-key",
            ClientOp::Activate => "activate",
            ClientOp::Revoke => "revoke",
            ClientOp::Destroy => "destroy",
            ClientOp::AddAttribute => "add-attribute",
            ClientOp::ModifyAttribute => "modify-attribute",
            ClientOp::DeleteAttribute => "delete-attribute",
            ClientOp::Get => "get",
            ClientOp::LocateName => "locate",
        }
    }
}

/// A user's names: a few plain ones (reused, so Creates collide across a partition) and a few
/// for keys on a rotation schedule.
const PLAIN_NAMES: &[&str] = &["k0", "k1", "k2", "k3", "k4"];
const SCHEDULED_NAMES: &[&str] = &["r0", "r1"];

fn note(text: String) -> Attr {
    Attr::new("x-note", Value::TextString(text))
}

/// The request for `choice`, or None when the client knows no key to aim it at.
fn request(rng: &mut Rng, choice: ClientOp, known: &[String]) -> Option<(u32, Vec<Ttlv>)> {
    let target = rng.pick(known).cloned();
    let with_uid = |operation: u32, extra: Vec<Ttlv>| {
        target.as_ref().map(|u| {
            let mut p = uid(u);
            p.extend(extra);
            (operation, p)
        })
    };
    match choice {
        ClientOp::Create => {
            let n = (rng.below(5) > 0).then(|| *rng.pick(PLAIN_NAMES).unwrap());
            Some((op::CREATE, create_payload(V, &aes_attrs(n))))
        }
        ClientOp::CreateScheduled => {
            let mut attrs = aes_attrs(Some(rng.pick(SCHEDULED_NAMES).unwrap()));
            attrs.push(Attr::new(
                "Activation Date",
                Value::DateTime(now_secs() - 1),
            ));
            attrs.push(Attr::new("Rotate Automatic", Value::Boolean(true)));
            let interval = 3 + rng.below(6) as u32;
            attrs.push(Attr::new("Rotate Interval", Value::Interval(interval)));
            Some((op::CREATE, create_payload(V, &attrs)))
        }
        ClientOp::Register => {
            let bytes: Vec<u8> = (0..4).flat_map(|_| rng.next().to_le_bytes()).collect();
            let mut attrs = vec![Attr::new("Cryptographic Usage Mask", Value::Integer(0x0C))];
            if rng.below(2) == 0 {
                attrs.push(Attr::new("Name", name(rng.pick(PLAIN_NAMES).unwrap())));
            }
            Some((op::REGISTER, register_key_payload(V, &bytes, &attrs)))
        }
        ClientOp::ReKey => with_uid(op::RE_KEY, vec![]),
        ClientOp::Activate => with_uid(op::ACTIVATE, vec![]),
        ClientOp::Revoke => {
            let code = if rng.below(4) == 0 {
                rrc::KEY_COMPROMISE
            } else {
                rrc::CESSATION_OF_OPERATION
            };
            with_uid(
                op::REVOKE,
                vec![Ttlv::structure(
                    Tag::REVOCATION_REASON,
                    vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, code)],
                )],
            )
        }
        ClientOp::Destroy => with_uid(op::DESTROY, vec![]),
        ClientOp::AddAttribute => with_uid(
            op::ADD_ATTRIBUTE,
            vec![attributes::to_v1(
                &note(format!("a{}", rng.below(1000))),
                None,
            )],
        ),
        ClientOp::ModifyAttribute => with_uid(
            op::MODIFY_ATTRIBUTE,
            vec![attributes::to_v1(
                &note(format!("m{}", rng.below(1000))),
                Some(0),
            )],
        ),
        ClientOp::DeleteAttribute => with_uid(
            op::DELETE_ATTRIBUTE,
            vec![
                Ttlv::text(Tag::ATTRIBUTE_NAME, "x-note"),
                Ttlv::integer(Tag::ATTRIBUTE_INDEX, 0),
            ],
        ),
        ClientOp::Get => with_uid(op::GET, vec![]),
        ClientOp::LocateName => {
            let n = if rng.below(2) == 0 {
                rng.pick(PLAIN_NAMES)
            } else {
                rng.pick(SCHEDULED_NAMES)
            };
            Some((
                op::LOCATE,
                filters(V, &[Attr::new("Name", name(n.unwrap()))]),
            ))
        }
    }
}

async fn connect(addr: &str, tls: Arc<rustls::ClientConfig>) -> Option<Client> {
    tokio::time::timeout(Duration::from_secs(3), Client::connect(addr, tls, V))
        .await
        .ok()?
        .ok()
}

/// One client: `user`, its own random stream, random operations on random nodes until told
/// to stop; records what it was told in the shared history.
async fn client_loop(shared: Arc<Shared>, seed: u64, index: usize, tls: Arc<rustls::ClientConfig>) {
    let mut rng = Rng::new(seed, index as u64 + 1);
    let mut conns: Vec<Option<Client>> = (0..3).map(|_| None).collect();
    let mut known: Vec<String> = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(rng.millis(20, 160)).await;
        let node = rng.below(3) as usize;
        let choice = rng.weighted(CLIENT_OPS);
        let Some((operation, payload)) = request(&mut rng, choice, &known) else {
            continue;
        };
        if conns[node].is_none() {
            conns[node] = connect(&shared.kmip[node], tls.clone()).await;
        }
        let Some(conn) = conns[node].as_mut() else {
            shared.history.lock().unwrap().count("unreachable", 0);
            continue;
        };
        let target = payload
            .iter()
            .find(|t| t.tag == Tag::UNIQUE_IDENTIFIER)
            .and_then(Ttlv::as_text)
            .map(str::to_owned);
        if let (ClientOp::Destroy, Some(t)) = (choice, &target) {
            shared
                .history
                .lock()
                .unwrap()
                .destroy_attempted
                .insert(t.clone());
        }
        let outcome =
            tokio::time::timeout(Duration::from_secs(8), conn.call(operation, payload)).await;
        let mut h = shared.history.lock().unwrap();
        h.count(choice.label(), 0);
        match outcome {
            Ok(Ok(reply)) => {
                h.count(choice.label(), 1);
                record_success(&mut h, choice, node, target, &reply, &mut known);
            }
            Ok(Err(ClientError::Failed { .. })) => h.count(choice.label(), 2),
            _ => {
                // The connection broke (a kill, a cut reply): the outcome is unknown.
                h.count(choice.label(), 3);
                conns[node] = None;
            }
        }
    }
}

/// Records what a successful operation told the client: new uids acknowledged by `node`,
/// a Destroy acknowledged, uids it may now aim at.
fn record_success(
    h: &mut History,
    choice: ClientOp,
    node: usize,
    target: Option<String>,
    reply: &Ttlv,
    known: &mut Vec<String>,
) {
    let uids = uids_of(reply);
    match choice {
        ClientOp::Create | ClientOp::CreateScheduled | ClientOp::Register | ClientOp::ReKey => {
            for u in &uids {
                h.acked_new.push((node, u.clone()));
            }
        }
        ClientOp::Destroy => h.acked_destroys.extend(target.map(|t| (node, t))),
        _ => {}
    }
    if matches!(
        choice,
        ClientOp::Create
            | ClientOp::CreateScheduled
            | ClientOp::Register
            | ClientOp::ReKey
            | ClientOp::LocateName
    ) {
        for u in uids {
            h.told.entry(u.clone()).or_insert(node);
            if !known.contains(&u) {
                known.push(u);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The administrator: users, groups, key policies and certificate revocations through the
// `akm` command line (KMIP clients of one node each).

/// Runs `akm --config <config> <args>` (a KMIP client of that node, as `admin`); returns
/// (success, output).
fn akm_cli(config: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akm"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Certificates the administrator will revoke during a round: (cn, PEM file, TLS config).
type Revocable = (String, PathBuf, Arc<rustls::ClientConfig>);

/// The administrator: every 0.3-1.2 s, on a random node, sets or deletes a user or group
/// record (never the clients' own, so owners keep access), sets a key's policy (mode `user`
/// or `any`, owner group), or revokes one of `revocable` in that node's CRL and reloads it.
fn admin_loop(shared: Arc<Shared>, seed: u64, mut revocable: Vec<Revocable>) {
    let mut rng = Rng::new(seed, 500);
    let accounts = ["acct0", "acct1", "acct2"];
    let groups = ["g0", "g1", "g2"];
    let ops_lists = ["read", "all", "get,locate", "create,get", ""];
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(rng.millis(300, 1200));
        let node = rng.below(3) as usize;
        let config = &shared.configs[node];
        let choice = rng.weighted(&[(5u32, 0u8), (2, 1), (4, 2), (2, 3), (5, 4), (1, 5)]);
        let (label, ok) = match choice {
            0 | 2 => {
                let (kind, names) = if choice == 0 {
                    ("user", &accounts)
                } else {
                    ("group", &groups)
                };
                let who = *rng.pick(names).unwrap();
                let ops = *rng.pick(&ops_lists).unwrap();
                let flag = if rng.below(3) == 0 {
                    "--disable"
                } else {
                    "--enable"
                };
                let ok = akm_cli(config, &[kind, "set", who, "--ops", ops, flag]).0;
                (if choice == 0 { "user-set" } else { "group-set" }, ok)
            }
            1 | 3 => {
                let (kind, names) = if choice == 1 {
                    ("user", &accounts)
                } else {
                    ("group", &groups)
                };
                let who = *rng.pick(names).unwrap();
                let ok = akm_cli(config, &[kind, "delete", who]).0;
                (
                    if choice == 1 {
                        "user-delete"
                    } else {
                        "group-delete"
                    },
                    ok,
                )
            }
            4 => {
                let target = {
                    let h = shared.history.lock().unwrap();
                    let told: Vec<&String> = h.told.keys().collect();
                    rng.pick(&told).map(|s| (*s).clone())
                };
                // Modes and groups that never lock the owner out of its own key.
                let mode = *rng.pick(&["user", "any"]).unwrap();
                let group = *rng.pick(&groups).unwrap();
                match target {
                    Some(u) => {
                        let ok = akm_cli(
                            config,
                            &["key", "policy", "set", &u, "--mode", mode, "--group", group],
                        )
                        .0;
                        ("key-policy-set", ok)
                    }
                    None => continue,
                }
            }
            _ => {
                let Some((cn, pem, tls)) = revocable.pop() else {
                    continue;
                };
                let pem = pem.to_string_lossy().into_owned();
                let ok = akm_cli(config, &["cert", "revoke", "--cert", &pem]).0;
                let mut h = shared.history.lock().unwrap();
                if ok {
                    h.revoked.push(RevokedCert { cn, node, tls });
                    h.pending_reload.insert(node);
                }
                ("cert-revoke", ok)
            }
        };
        let mut h = shared.history.lock().unwrap();
        h.count(label, 0);
        h.count(label, if ok { 1 } else { 2 });
        let pending: Vec<usize> = h.pending_reload.iter().copied().collect();
        drop(h);
        for n in pending {
            if akm_cli(&shared.configs[n], &["reload"]).0 {
                shared.history.lock().unwrap().pending_reload.remove(&n);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The fault driver.

fn apply_links(cluster: &Cluster, schedule: &[ScheduledFault], at: Duration) {
    for (a, b) in LINKS {
        cluster.link(a, b, link_fault_at(schedule, at, a, b));
    }
}

/// Plays the schedule against the cluster in real time; heals everything at the end.
fn fault_loop(
    shared: Arc<Shared>,
    cluster: Arc<Mutex<Cluster>>,
    schedule: Vec<ScheduledFault>,
    activity: Duration,
) {
    let started = Instant::now();
    let mut events: Vec<(Duration, usize, bool)> = Vec::new();
    for (i, f) in schedule.iter().enumerate() {
        events.push((f.start, i, true));
        events.push((f.end, i, false));
    }
    events.sort_by_key(|e| (e.0, !e.2, e.1));
    for (at, i, starts) in events {
        if at > activity {
            break;
        }
        while started.elapsed() < at {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        match schedule[i].kind {
            FaultKind::Kill(n) if starts => {
                c.kill(n);
                if shared.rpo_zero {
                    check_rpo_zero_at_kill(&shared, n);
                }
            }
            FaultKind::Kill(n) => c.start_node(n),
            _ => apply_links(&c, &schedule, at),
        }
    }
    let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
    for (a, b) in LINKS {
        c.link(a, b, Fault::Pass);
    }
    for n in 0..3 {
        if std::net::TcpStream::connect(c.nodes[n].kmip).is_err() {
            c.start_node(n);
        }
    }
}

/// RPO-zero: once node `killed` is dead, every write it acknowledged is on some other node.
fn check_rpo_zero_at_kill(shared: &Shared, killed: usize) {
    let (acked, destroyed): (Vec<String>, Vec<String>) = {
        let h = shared.history.lock().unwrap();
        (
            h.acked_new
                .iter()
                .filter(|(n, _)| *n == killed)
                .map(|(_, u)| u.clone())
                .collect(),
            h.acked_destroys
                .iter()
                .filter(|(n, _)| *n == killed)
                .map(|(_, u)| u.clone())
                .collect(),
        )
    };
    let mut elsewhere: BTreeMap<String, u32> = BTreeMap::new();
    for (n, dir) in shared.dirs.iter().enumerate() {
        if n == killed {
            continue;
        }
        if let Ok(states) = object_states(dir) {
            for (u, s) in states {
                let e = elsewhere.entry(u).or_insert(s);
                *e = (*e).max(s);
            }
        }
    }
    let mut missing = Vec::new();
    for u in &acked {
        if !elsewhere.contains_key(u) {
            missing.push(format!("created {u}"));
        }
    }
    for u in &destroyed {
        if elsewhere.get(u).is_some_and(|s| *s < state::DESTROYED) {
            missing.push(format!("destroyed {u}"));
        }
    }
    let mut h = shared.history.lock().unwrap();
    h.rpo_verified += acked.len() + destroyed.len() - missing.len();
    if !missing.is_empty() {
        h.rpo_missing.push(format!(
            "kill -9 of n{killed}: {} acknowledged writes on no other node: {}",
            missing.len(),
            missing.join(", ")
        ));
    }
}

// ---------------------------------------------------------------------------------------
// The canonical dump.

/// One object as every node must hold it. Left out as node-local: the row's `seq` (local
/// insertion order), the wrapped material (`material` table: each node's own KEK, id, nonce
/// and ciphertext; the material is compared by a digest of what Get returns instead), and the
/// change log's sequence numbers, local times and raw origin column (the stamp is kept, with
/// "this node" written as the node's id). Last Change Date is not node-local: the mirror
/// carries the writer's value (`WireObject::last_change`) and the attribute record whole.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ObjectDump {
    object_type: u32,
    state: u32,
    owner: String,
    owner_group: Option<String>,
    access_mode: String,
    algorithm: Option<u32>,
    length: Option<i32>,
    initial_date: i64,
    activation_date: Option<i64>,
    deactivation_date: Option<i64>,
    last_change: i64,
    key_version: i64,
    attributes: Vec<u8>,
    names: Vec<String>,
    groups: Vec<String>,
    has_material: bool,
    /// A digest of the plaintext material (unwrapped with this node's own KEK), the same on
    /// every node although the wrapped bytes differ.
    material: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Dump {
    objects: BTreeMap<String, ObjectDump>,
    /// (kind, name) -> (enabled, operations).
    accounts: BTreeMap<(String, String), (bool, String)>,
    /// (entity, id) -> (hlc, node) of the record's latest change.
    stamps: BTreeMap<(String, String), (i64, String)>,
    /// Tables this checker does not know (e.g. mirrored revocations once they exist), rows
    /// rendered as text, minus columns that look node-local.
    extra: BTreeMap<String, Vec<String>>,
}

const KNOWN_TABLES: &[&str] = &[
    "objects",
    "material",
    "names",
    "groups",
    "change_log",
    "acl_users",
    "acl_groups",
    "mirror_applied",
    "sqlite_sequence",
    // Node-local: how far this node's journal is known to cover its own change log.
    "audit_mark",
];

fn open_db(dir: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open_with_flags(
        dir.join("data/akm.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    c.busy_timeout(Duration::from_secs(10))?;
    Ok(c)
}

fn object_states(dir: &Path) -> rusqlite::Result<BTreeMap<String, u32>> {
    let c = open_db(dir)?;
    let mut stmt = c.prepare("SELECT uid, state FROM objects")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn dump_node(dir: &Path, node_id: &str) -> rusqlite::Result<Dump> {
    let mut c = open_db(dir)?;
    // One read transaction: a consistent view while the node keeps writing.
    let tx = c.transaction()?;
    let mut d = Dump::default();
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, col) in [("names", "name"), ("groups", "grp")] {
        let mut stmt = tx.prepare(&format!("SELECT uid, {col} FROM {table}"))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (u, n) = row?;
            names.entry(format!("{table}:{u}")).or_default().push(n);
        }
    }
    {
        let mut stmt = tx.prepare(
            "SELECT o.uid, o.object_type, o.state, o.owner, o.owner_group, o.access_mode, \
             o.algorithm, o.length, o.initial_date, o.activation_date, o.deactivation_date, \
             o.last_change, o.key_version, o.attributes, \
             EXISTS (SELECT 1 FROM material m WHERE m.uid = o.uid) FROM objects o",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                ObjectDump {
                    object_type: r.get(1)?,
                    state: r.get(2)?,
                    owner: r.get(3)?,
                    owner_group: r.get(4)?,
                    access_mode: r.get(5)?,
                    algorithm: r.get(6)?,
                    length: r.get(7)?,
                    initial_date: r.get(8)?,
                    activation_date: r.get(9)?,
                    deactivation_date: r.get(10)?,
                    last_change: r.get(11)?,
                    key_version: r.get(12)?,
                    attributes: r.get(13)?,
                    names: Vec::new(),
                    groups: Vec::new(),
                    has_material: r.get(14)?,
                    material: None,
                },
            ))
        })?;
        for row in rows {
            let (u, mut o) = row?;
            o.names = names.remove(&format!("names:{u}")).unwrap_or_default();
            o.names.sort();
            o.groups = names.remove(&format!("groups:{u}")).unwrap_or_default();
            o.groups.sort();
            d.objects.insert(u, o);
        }
    }
    unwrap_material(&tx, dir, &mut d.objects)?;
    for (kind, table) in [("user", "acl_users"), ("group", "acl_groups")] {
        let mut stmt = tx.prepare(&format!("SELECT name, enabled, operations FROM {table}"))?;
        let rows = stmt.query_map([], |r| {
            Ok(((kind.to_string(), r.get(0)?), (r.get(1)?, r.get(2)?)))
        })?;
        for row in rows {
            let (k, v) = row?;
            d.accounts.insert(k, v);
        }
    }
    {
        let mut stmt = tx.prepare(
            "SELECT c.entity, c.uid, c.hlc, c.origin FROM change_log c \
             WHERE c.seq = (SELECT MAX(seq) FROM change_log l \
                            WHERE l.entity = c.entity AND l.uid = c.uid)",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                (
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?
                        .unwrap_or_else(|| node_id.to_owned()),
                ),
            ))
        })?;
        for row in rows {
            let (k, v) = row?;
            d.stamps.insert(k, v);
        }
    }
    let tables: Vec<String> = {
        let mut stmt = tx.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for t in tables
        .iter()
        .filter(|t| !KNOWN_TABLES.contains(&t.as_str()))
    {
        d.extra.insert(t.clone(), dump_table(&tx, t)?);
    }
    Ok(d)
}

/// Fills in each object's material digest from the node's wrapped material and its KEK.
fn unwrap_material(
    tx: &rusqlite::Transaction<'_>,
    dir: &Path,
    objects: &mut BTreeMap<String, ObjectDump>,
) -> rusqlite::Result<()> {
    let kek = akm::crypto::Kek::load(&dir.join("data/kek.key")).ok();
    let mut stmt = tx.prepare("SELECT uid, kek_id, nonce, ciphertext FROM material")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            akm::crypto::Wrapped {
                kek_id: r.get(1)?,
                nonce: r.get(2)?,
                ciphertext: r.get(3)?,
            },
        ))
    })?;
    for row in rows {
        let (u, wrapped) = row?;
        let Some(o) = objects.get_mut(&u) else {
            continue;
        };
        let digest = match &kek {
            Some(kek) => match kek.unwrap(&u, o.key_version, &wrapped) {
                Ok(plain) => digest_of(&plain),
                Err(e) => format!("does not unwrap: {e}"),
            },
            None => "no KEK".into(),
        };
        o.material = Some(digest);
    }
    Ok(())
}

fn digest_of(material: &[u8]) -> String {
    hex::encode(&akm::crypto::sha256(material)[..12])
}

/// Columns of an unknown table that are node-local by their name.
fn node_local_column(name: &str) -> bool {
    matches!(
        name,
        "seq" | "id" | "rowid" | "at" | "applied_at" | "origin" | "received_at" | "loaded_at"
    )
}

fn dump_table(tx: &rusqlite::Transaction<'_>, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(&format!("SELECT * FROM \"{table}\""))?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let rows = stmt.query_map([], |r| {
        let mut cols = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if node_local_column(n) {
                continue;
            }
            let v: rusqlite::types::Value = r.get(i)?;
            cols.push(format!("{n}={v:?}"));
        }
        Ok(cols.join(" "))
    })?;
    let mut out: Vec<String> = rows.collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}

/// Which parts of two dumps differ, for the report (at most a few items each).
fn dump_differences(a: &Dump, b: &Dump, with_extra: bool) -> Vec<String> {
    let mut out = Vec::new();
    let uids: BTreeSet<&String> = a.objects.keys().chain(b.objects.keys()).collect();
    for u in uids {
        match (a.objects.get(u), b.objects.get(u)) {
            (Some(x), Some(y)) if x != y => {
                let mut fields = Vec::new();
                macro_rules! cmp {
                    ($($f:ident),*) => {$(
                        if x.$f != y.$f { fields.push(stringify!($f)); }
                    )*};
                }
                cmp!(
                    state,
                    owner,
                    owner_group,
                    access_mode,
                    activation_date,
                    deactivation_date,
                    last_change,
                    key_version,
                    attributes,
                    names,
                    groups,
                    has_material,
                    material
                );
                out.push(format!("object {u}: {}", fields.join(",")));
            }
            (Some(_), None) | (None, Some(_)) => out.push(format!("object {u}: on one side only")),
            _ => {}
        }
    }
    let keys: BTreeSet<_> = a.accounts.keys().chain(b.accounts.keys()).collect();
    for k in keys {
        if a.accounts.get(k) != b.accounts.get(k) {
            out.push(format!(
                "{} {}: {:?} vs {:?}",
                k.0,
                k.1,
                a.accounts.get(k),
                b.accounts.get(k)
            ));
        }
    }
    let keys: BTreeSet<_> = a.stamps.keys().chain(b.stamps.keys()).collect();
    for k in keys {
        if a.stamps.get(k) != b.stamps.get(k) {
            out.push(format!(
                "stamp of {} {}: {:?} vs {:?}",
                k.0,
                k.1,
                a.stamps.get(k),
                b.stamps.get(k)
            ));
        }
    }
    if with_extra && a.extra != b.extra {
        out.push(format!(
            "extra tables differ: {:?} vs {:?}",
            a.extra
                .iter()
                .map(|(t, r)| (t, r.len()))
                .collect::<Vec<_>>(),
            b.extra
                .iter()
                .map(|(t, r)| (t, r.len()))
                .collect::<Vec<_>>()
        ));
    }
    out
}

/// The dumps without their extra tables (those are compared on their own).
fn core(d: &Dump) -> Dump {
    Dump {
        extra: BTreeMap::new(),
        ..d.clone()
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

/// A failed check: which, and what was seen.
#[derive(Debug)]
struct Violation {
    check: &'static str,
    detail: String,
}

#[derive(Default)]
struct Violations(Vec<Violation>);

impl Violations {
    fn hard(&mut self, check: &'static str, detail: String) {
        self.0.push(Violation { check, detail });
    }
}

fn is_destroyed(s: u32) -> bool {
    s == state::DESTROYED || s == state::DESTROYED_COMPROMISED
}

fn short(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let n = items.len();
    let mut s = items.into_iter().take(6).collect::<Vec<_>>().join("; ");
    if n > 6 {
        s.push_str(&format!("; ... ({n} in all)"));
    }
    s
}

/// The key bytes a Get response carries, if any.
fn key_bytes(payload: &Ttlv) -> Option<Vec<u8>> {
    if payload.tag == Tag::KEY_MATERIAL {
        if let Some(b) = payload.as_bytes() {
            return Some(b.to_vec());
        }
    }
    payload.children().iter().find_map(key_bytes)
}

/// The object `u`'s link of type `kind` (Replaced Object, Replacement Object), read from
/// its attribute record.
fn link_of(u: &str, o: &ObjectDump, kind: u32) -> Option<String> {
    let row = akm::store::ObjectRow {
        uid: u.to_owned(),
        object_type: o.object_type,
        state: o.state,
        owner: o.owner.clone(),
        owner_group: o.owner_group.clone(),
        access_mode: o.access_mode.clone(),
        algorithm: o.algorithm,
        length: o.length,
        initial_date: o.initial_date,
        activation_date: o.activation_date,
        deactivation_date: o.deactivation_date,
        last_change: o.last_change,
        key_version: o.key_version,
        names: o.names.clone(),
        groups: o.groups.clone(),
        attributes: o.attributes.clone(),
        replaces: None,
    };
    let obj = akm::ops::Object::from_row(row).ok()?;
    let found = obj.all("Link").find_map(|v| match v {
        Value::Structure(c) => {
            let t = c.iter().find(|t| t.tag == Tag::LINK_TYPE)?.as_enum()?;
            (t == kind).then(|| {
                c.iter()
                    .find(|t| t.tag == Tag::LINKED_OBJECT_IDENTIFIER)
                    .and_then(Ttlv::as_text)
                    .map(str::to_owned)
            })?
        }
        _ => None,
    });
    found
}

/// Gets `u` from node `node` as `tls`; returns a digest of the material or why not.
async fn material_digest(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
    conn: &mut Option<Client>,
    u: &str,
) -> Result<String, String> {
    if conn.is_none() {
        *conn = connect(addr, tls).await;
    }
    let c = conn.as_mut().ok_or("unreachable")?;
    match tokio::time::timeout(Duration::from_secs(10), c.call(op::GET, uid(u))).await {
        Ok(Ok(r)) => key_bytes(&r)
            .map(|k| digest_of(&k))
            .ok_or_else(|| "no key material in the Get response".to_string()),
        Ok(Err(ClientError::Failed { reason, message })) => {
            Err(format!("refused 0x{reason:X}: {message}"))
        }
        Ok(Err(e)) => {
            *conn = None;
            Err(e.to_string())
        }
        Err(_) => {
            *conn = None;
            Err("timed out".into())
        }
    }
}

/// Whether `tls` is refused by node `node` (at the handshake or at the first request).
async fn refused(addr: &str, tls: Arc<rustls::ClientConfig>) -> bool {
    let Some(mut c) = connect(addr, tls).await else {
        return true;
    };
    !matches!(
        tokio::time::timeout(Duration::from_secs(5), c.call(op::LOCATE, vec![])).await,
        Ok(Ok(_))
    )
}

struct Identities {
    /// Owner name -> its TLS configuration.
    users: BTreeMap<String, Arc<rustls::ClientConfig>>,
    admin: Arc<rustls::ClientConfig>,
}

/// What the clients were told, copied out of the shared history for the checks.
struct Told {
    told: BTreeMap<String, usize>,
    acked_destroys: BTreeSet<String>,
    destroy_attempted: BTreeSet<String>,
    rpo_missing: Vec<String>,
    revoked: Vec<(String, usize, Arc<rustls::ClientConfig>)>,
}

impl Told {
    fn of(shared: &Shared) -> Told {
        let h = shared.history.lock().unwrap();
        Told {
            told: h.told.clone(),
            acked_destroys: h.acked_destroys.iter().map(|(_, u)| u.clone()).collect(),
            destroy_attempted: h.destroy_attempted.clone(),
            rpo_missing: h.rpo_missing.clone(),
            revoked: h
                .revoked
                .iter()
                .map(|r| (r.cn.clone(), r.node, r.tls.clone()))
                .collect(),
        }
    }
}

/// Every invariant of a quiesced round, against the agreed dump `d` (and each node's own
/// `dumps`); returns how many owner Gets it made.
async fn check_round(
    shared: &Shared,
    ids: &Identities,
    d: &Dump,
    dumps: &[Dump],
    violations: &mut Violations,
) -> usize {
    let told = Told::of(shared);
    check_extra_tables(dumps, violations);
    check_history(d, &told, violations);
    let named_twice = check_names_and_chains(d, violations);
    // Before the checker's own Gets, which are audited too.
    check_journals(shared, dumps, violations);
    let reads = check_material(shared, ids, d, &named_twice, violations).await;
    check_revocations(shared, &told, violations).await;
    check_rotation_logs(shared, violations);
    // Last: it writes (a Revoke).
    check_compromise_despite_duplicate_name(shared, ids, d, &named_twice, violations).await;
    reads
}

/// A key whose name another live key also holds can still be revoked as compromised by its
/// owner (tried on one such key: a write, so after every other check).
async fn check_compromise_despite_duplicate_name(
    shared: &Shared,
    ids: &Identities,
    d: &Dump,
    named_twice: &BTreeSet<String>,
    violations: &mut Violations,
) {
    let Some((u, o)) = d
        .objects
        .iter()
        .find(|(u, o)| named_twice.contains(*u) && o.state == state::ACTIVE)
    else {
        return;
    };
    let tls = ids.users.get(&o.owner).unwrap_or(&ids.admin).clone();
    let Some(mut c) = connect(&shared.kmip[0], tls).await else {
        return;
    };
    let mut payload = uid(u);
    payload.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            rrc::KEY_COMPROMISE,
        )],
    ));
    if let Ok(Err(e)) =
        tokio::time::timeout(Duration::from_secs(10), c.call(op::REVOKE, payload)).await
    {
        violations.hard(
            "a key whose name is duplicated can be revoked",
            format!(
                "Revoke (key compromise) of {u} by its owner {} on n0: {e}",
                o.owner
            ),
        );
    }
}

/// Tables this checker does not know (new mirrored records, e.g. revocations) agree.
fn check_extra_tables(dumps: &[Dump], violations: &mut Violations) {
    for (i, other) in dumps.iter().enumerate().skip(1) {
        if other.extra != dumps[0].extra {
            violations.hard(
                "extra tables identical",
                format!(
                    "n0 vs n{i}: {}",
                    short(dump_differences(&dumps[0], other, true))
                ),
            );
        }
    }
}

/// No destroyed key comes back, nothing is destroyed that no client destroyed, every uid a
/// client was told about exists, and (RPO-zero) no acknowledged write was missing at a kill.
fn check_history(d: &Dump, told: &Told, violations: &mut Violations) {
    let mut back = Vec::new();
    for u in &told.acked_destroys {
        match d.objects.get(u) {
            Some(o) if !is_destroyed(o.state) || o.has_material => {
                back.push(format!("{u} state {} material {}", o.state, o.has_material))
            }
            None => back.push(format!("{u} missing")),
            _ => {}
        }
    }
    if !back.is_empty() {
        violations.hard("no destroyed key comes back", short(back));
    }
    let unexplained: Vec<String> = d
        .objects
        .iter()
        .filter(|(u, o)| is_destroyed(o.state) && !told.destroy_attempted.contains(*u))
        .map(|(u, _)| u.clone())
        .collect();
    if !unexplained.is_empty() {
        violations.hard(
            "nothing destroyed that no client destroyed",
            short(unexplained),
        );
    }
    let lost: Vec<String> = told
        .told
        .iter()
        .filter(|(u, _)| !d.objects.contains_key(*u))
        .map(|(u, n)| format!("{u} (acknowledged by n{n})"))
        .collect();
    if !lost.is_empty() {
        violations.hard("every acknowledged object exists", short(lost));
    }
    if !told.rpo_missing.is_empty() {
        violations.hard(
            "rpo-zero: acknowledged writes survive kill -9",
            short(told.rpo_missing.clone()),
        );
    }
}

/// Each (owner, name) has one live holder, and each version at most one live successor (no
/// rotation fork). Returns the uids whose name another live object also holds.
fn check_names_and_chains(d: &Dump, violations: &mut Violations) -> BTreeSet<String> {
    let mut holders: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut successors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (u, o) in d.objects.iter().filter(|(_, o)| !is_destroyed(o.state)) {
        for n in &o.names {
            holders
                .entry((o.owner.clone(), n.clone()))
                .or_default()
                .push(u.clone());
        }
    }
    // Every version's replacements, destroyed ones included: a fork loser that forwards to
    // a sibling destroyed since is still resolved.
    for (u, o) in &d.objects {
        if let Some(p) = link_of(u, o, link_type::REPLACED_OBJECT_LINK) {
            successors.entry(p).or_default().push(u.clone());
        }
    }
    // A fork resolved the way issue 17 asks links the losing successor to the winning one
    // (its Replacement Object): only live successors not replaced by a sibling count.
    let forks: Vec<String> = successors
        .iter()
        .filter_map(|(p, us)| {
            let unresolved: Vec<&String> = us
                .iter()
                .filter(|u| !is_destroyed(d.objects[*u].state))
                .filter(|u| {
                    let next = link_of(u, &d.objects[*u], link_type::REPLACEMENT_OBJECT_LINK);
                    !next.is_some_and(|n| us.contains(&n))
                })
                .collect();
            (unresolved.len() > 1).then(|| {
                let describe = |u: &String| {
                    let o = &d.objects[u];
                    let next = link_of(u, o, link_type::REPLACEMENT_OBJECT_LINK);
                    format!(
                        "{u} [state {} names {:?} initial {} next {}]",
                        o.state,
                        o.names,
                        o.initial_date,
                        next.as_deref().unwrap_or("-")
                    )
                };
                let pred = d.objects.get(p).map_or("gone".to_owned(), |o| {
                    let next = link_of(p, o, link_type::REPLACEMENT_OBJECT_LINK);
                    format!("state {} next {}", o.state, next.as_deref().unwrap_or("-"))
                });
                format!(
                    "{p} [{pred}] replaced by {}",
                    us.iter().map(describe).collect::<Vec<_>>().join(" ")
                )
            })
        })
        .collect();
    if !forks.is_empty() {
        violations.hard(
            "one live successor per version (no rotation fork)",
            short(forks),
        );
    }
    let ambiguous: Vec<String> = holders
        .iter()
        .filter(|(_, us)| us.len() > 1)
        .map(|((owner, n), us)| format!("{owner}/{n}: {}", us.join(" ")))
        .collect();
    if !ambiguous.is_empty() {
        violations.hard("each (owner, name) has one live version", short(ambiguous));
    }
    holders
        .into_values()
        .filter(|us| us.len() > 1)
        .flatten()
        .collect()
}

/// Every node's journal names every object in its store (a change applied from a peer is
/// audited where it is applied).
fn check_journals(shared: &Shared, dumps: &[Dump], violations: &mut Violations) {
    for (n, dir) in shared.dirs.iter().enumerate() {
        let journal = journal_text(dir);
        let silent: Vec<String> = dumps[n]
            .objects
            .keys()
            .filter(|u| !journal.contains(u.as_str()))
            .cloned()
            .collect();
        if !silent.is_empty() {
            violations.hard(
                "every node audits what it applies",
                format!(
                    "n{n}: {} objects never named in its journal: {}",
                    silent.len(),
                    short(silent)
                ),
            );
        }
    }
}

/// Every live version is readable by its owner on every node, and Get returns the material
/// the nodes store. Returns how many Gets it made.
async fn check_material(
    shared: &Shared,
    ids: &Identities,
    d: &Dump,
    named_twice: &BTreeSet<String>,
    violations: &mut Violations,
) -> usize {
    let mut digests: BTreeMap<String, Vec<Result<String, String>>> = BTreeMap::new();
    let mut reads = 0;
    for n in 0..3 {
        let mut conns: BTreeMap<String, Option<Client>> = BTreeMap::new();
        for (u, o) in d.objects.iter().filter(|(_, o)| !is_destroyed(o.state)) {
            let tls = ids.users.get(&o.owner).unwrap_or(&ids.admin).clone();
            let conn = conns.entry(o.owner.clone()).or_default();
            let r = material_digest(&shared.kmip[n], tls, conn, u).await;
            reads += 1;
            digests.entry(u.clone()).or_default().push(r);
        }
    }
    // A key whose name another live key also holds may be unreadable because of that (Get
    // of a Fresh key writes, and the write checks the name): reported with the name check.
    let (mut twice, mut others) = (Vec::new(), Vec::new());
    for (u, rs) in &digests {
        for (n, r) in rs.iter().enumerate() {
            if let Err(e) = r {
                let line = format!("{u} on n{n}: {e}");
                if named_twice.contains(u) {
                    twice.push(line);
                } else {
                    others.push(line);
                }
            }
        }
    }
    if !twice.is_empty() {
        violations.hard(
            "a live version whose name is duplicated stays readable",
            short(twice),
        );
    }
    if !others.is_empty() {
        violations.hard("every live version readable by its owner", short(others));
    }
    let differing: Vec<String> = digests
        .iter()
        .filter(|(u, rs)| {
            let stored = d.objects[*u].material.as_ref();
            rs.iter().any(|r| r.is_ok() && r.as_ref().ok() != stored)
        })
        .map(|(u, rs)| format!("{u}: stored {:?}, Get {rs:?}", d.objects[u].material))
        .collect();
    if !differing.is_empty() {
        violations.hard(
            "Get returns the material every node stores",
            short(differing),
        );
    }
    reads
}

/// A revoked certificate is refused by the node where it was revoked, and by every other.
async fn check_revocations(shared: &Shared, told: &Told, violations: &mut Violations) {
    for (cn, node, tls) in &told.revoked {
        for n in 0..3 {
            if refused(&shared.kmip[n], tls.clone()).await {
                continue;
            }
            let detail = format!("certificate {cn} revoked on n{node} is accepted by n{n}");
            if n == *node {
                violations.hard("revoked certificate refused where revoked", detail);
            } else {
                violations.hard("revocations are cluster-wide", detail);
            }
        }
    }
}

/// No scheduled rotation got stuck on a name another version holds.
fn check_rotation_logs(shared: &Shared, violations: &mut Violations) {
    for (n, dir) in shared.dirs.iter().enumerate() {
        let log = std::fs::read_to_string(dir.join("akm.log")).unwrap_or_default();
        let stuck = log
            .lines()
            .filter(|l| l.contains("scheduled rotation failed") && l.contains("name already"))
            .count();
        if stuck > 0 {
            violations.hard(
                "scheduled rotations never fail on a name",
                format!("n{n}: {stuck} failed scheduled rotations, \"name already in use\""),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// A round.

struct RoundReport {
    seed: u64,
    rpo_zero: bool,
    ops: BTreeMap<&'static str, [usize; 4]>,
    faults: FaultFigures,
    objects: usize,
    rotated: usize,
    quiesced: Option<Duration>,
    reads: usize,
    rpo_verified: usize,
    violations: Violations,
    elapsed: Duration,
}

impl RoundReport {
    fn summary(&self) -> String {
        let total = |slot: usize| -> usize {
            self.ops
                .iter()
                .filter(|(k, _)| **k != "unreachable")
                .map(|(_, v)| v[slot])
                .sum()
        };
        format!(
            "seed=0x{:x} mode={} ops={} (ok {}, refused {}, unknown {}, unreachable {}) \
             faults={} (cuts {}, delays {}, black holes {}, isolations {}, kill -9 {}) \
             objects={} rotated={} quiesced={} owner-gets={} rpo-verified={} violations={} \
             in {:.0?}",
            self.seed,
            if self.rpo_zero { "rpo-zero" } else { "async" },
            total(0),
            total(1),
            total(2),
            total(3),
            self.ops.get("unreachable").map_or(0, |v| v[0]),
            self.faults.total(),
            self.faults.cuts,
            self.faults.delays,
            self.faults.drops,
            self.faults.isolations,
            self.faults.kills,
            self.objects,
            self.rotated,
            self.quiesced
                .map_or("never".to_string(), |d| format!("{d:.1?}")),
            self.reads,
            self.rpo_verified,
            self.violations.0.len(),
            self.elapsed,
        )
    }
}

/// Writes the CA key next to each node's certificates (so `akm cert revoke` can sign), gives
/// every node an (empty) CRL, lists it in `tls.crls` and reloads.
fn enable_crls(cluster: &Cluster) {
    for node in &cluster.nodes {
        let certs = node.dir.join("certs");
        akm::secret_file::write_new(&certs.join("ca.key"), cluster.ca.key_pem().as_bytes())
            .unwrap();
        let crl = certs.join("ca.crl");
        let crl = crl.to_string_lossy();
        let (ok, out) = node.akm(&["cert", "revoke", "--crl", &crl]);
        assert!(ok, "{out}");
        let config = std::fs::read_to_string(node.config()).unwrap();
        let config = config.replacen(
            "certs_dir = \"certs\"\n",
            "certs_dir = \"certs\"\ncrls = [\"certs/ca.crl\"]\n",
            1,
        );
        std::fs::write(node.config(), config).unwrap();
        let (ok, out) = node.akm(&["reload"]);
        assert!(ok, "{out}");
    }
}

fn tls_for(cluster: &Cluster, cn: &str) -> (Arc<rustls::ClientConfig>, String) {
    let issued = cluster
        .ca
        .issue_client(cn, &[], Validity::days_from_now(1))
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cluster.ca.cert_der().clone()).unwrap();
    let tls = akm::tls::client_config_from(
        vec![issued.cert_der().unwrap()],
        issued.key_der().unwrap(),
        roots,
    )
    .unwrap();
    (tls, issued.cert_pem.clone())
}

/// Polls the nodes' dumps until they agree (extra tables aside); returns the agreed dumps and
/// how long it took, or the last disagreement.
fn quiesce(shared: &Shared) -> Result<(Vec<Dump>, Duration), Vec<String>> {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < QUIESCE_LIMIT {
        let dumps: Result<Vec<Dump>, _> = shared
            .dirs
            .iter()
            .enumerate()
            .map(|(n, dir)| dump_node(dir, &format!("n{n}")))
            .collect();
        match dumps {
            Ok(dumps) => {
                let first = core(&dumps[0]);
                if dumps[1..].iter().all(|d| core(d) == first) {
                    return Ok((dumps, started.elapsed()));
                }
                last = (1..3)
                    .flat_map(|i| {
                        dump_differences(&dumps[0], &dumps[i], false)
                            .into_iter()
                            .map(move |s| format!("n0 vs n{i}: {s}"))
                    })
                    .collect();
            }
            Err(e) => last = vec![format!("dump failed: {e}")],
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

/// A fresh three-node cluster for a round: RPO-zero or asynchronous, rotation checked every
/// second, CRLs configured.
fn start_round_cluster(rpo_zero: bool) -> Cluster {
    let mode = if rpo_zero {
        "mode = \"rpo-zero\"\nrpo_timeout_ms = 1500\non_timeout = \"refuse\"\n"
    } else {
        ""
    };
    let cluster = Cluster::start(Options {
        mirror_extra: format!("{mode}\n[crypto]\nrotation_check_secs = 1\n"),
        ..Options::nodes(3)
    });
    enable_crls(&cluster);
    cluster
}

/// The clients' identities, and the certificates the administrator will revoke.
fn round_identities(cluster: &Cluster) -> (Identities, Vec<Revocable>) {
    let mut users = BTreeMap::new();
    for i in 0..CLIENTS {
        users.insert(format!("u{i}"), tls_for(cluster, &format!("u{i}")).0);
    }
    let mut revocable = Vec::new();
    for k in 0..2 {
        let cn = format!("revocable{k}");
        let (tls, pem) = tls_for(cluster, &cn);
        let file = cluster.nodes[0].dir.join(format!("{cn}.crt"));
        std::fs::write(&file, pem).unwrap();
        revocable.push((cn, file, tls));
    }
    let ids = Identities {
        users,
        admin: cluster.admin_tls(),
    };
    (ids, revocable)
}

async fn run_round(seed: u64, activity: Duration) -> RoundReport {
    let started = Instant::now();
    let rpo_zero = seed & 1 == 1;
    let cluster = start_round_cluster(rpo_zero);
    let (ids, revocable) = round_identities(&cluster);
    let shared = Arc::new(Shared {
        kmip: cluster.nodes.iter().map(|n| n.kmip.to_string()).collect(),
        configs: cluster.nodes.iter().map(|n| n.config()).collect(),
        dirs: cluster.nodes.iter().map(|n| n.dir.clone()).collect(),
        stop: AtomicBool::new(false),
        history: Mutex::new(History::default()),
        rpo_zero,
    });
    let schedule = fault_schedule(seed, activity);
    let faults = FaultFigures::of(&schedule);
    let schedule_text: Vec<String> = schedule
        .iter()
        .map(|f| format!("{:.1?}..{:.1?} {:?}", f.start, f.end, f.kind))
        .collect();
    let cluster = Arc::new(Mutex::new(cluster));

    let activity_started = Instant::now();
    let fault_thread = {
        let (shared, cluster) = (shared.clone(), cluster.clone());
        std::thread::spawn(move || fault_loop(shared, cluster, schedule, activity))
    };
    let admin_thread = {
        let shared = shared.clone();
        std::thread::spawn(move || admin_loop(shared, seed, revocable))
    };
    let clients: Vec<_> = ids
        .users
        .values()
        .enumerate()
        .map(|(i, tls)| tokio::spawn(client_loop(shared.clone(), seed, i, tls.clone())))
        .collect();
    while activity_started.elapsed() < activity {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let mut violations = Violations::default();
    let joined = tokio::task::spawn_blocking(move || {
        (fault_thread.join().is_ok(), admin_thread.join().is_ok())
    })
    .await
    .unwrap();
    if !joined.0 {
        violations.hard("nodes restart", "the fault driver panicked".into());
    }
    if !joined.1 {
        violations.hard("administration", "the administrator panicked".into());
    }
    // An operator reloads after a revocation whose reload failed (node down at the time).
    let pending: Vec<usize> = shared
        .history
        .lock()
        .unwrap()
        .pending_reload
        .iter()
        .copied()
        .collect();
    for n in pending {
        let (ok, out) = akm_cli(&shared.configs[n], &["reload"]);
        if !ok {
            violations.hard("reload after a revocation", format!("n{n}: {out}"));
        }
    }

    let sh = shared.clone();
    let quiesced = tokio::task::spawn_blocking(move || quiesce(&sh))
        .await
        .unwrap();
    let (mut objects, mut rotated, mut reads, mut quiesced_in) = (0, 0, 0, None);
    match quiesced {
        Ok((dumps, took)) => {
            quiesced_in = Some(took);
            let agreed = dumps[0].clone();
            objects = agreed.objects.len();
            rotated = rotations(&shared.dirs);
            reads = check_round(&shared, &ids, &agreed, &dumps, &mut violations).await;
        }
        Err(diff) => violations.hard(
            "every node's dump identical",
            format!("not within {QUIESCE_LIMIT:?}: {}", short(diff)),
        ),
    }
    if !violations.0.is_empty() {
        eprintln!(
            "---- seed 0x{seed:x} fault schedule ----\n{}",
            schedule_text.join("\n")
        );
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        for n in &c.nodes {
            let log = n.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "---- {} log (last 40 lines) ----\n{}",
                n.id,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
    let (ops, rpo_verified) = {
        let h = shared.history.lock().unwrap();
        (h.ops.clone(), h.rpo_verified)
    };
    RoundReport {
        rpo_verified,
        seed,
        rpo_zero,
        ops,
        faults,
        objects,
        rotated,
        quiesced: quiesced_in,
        reads,
        violations,
        elapsed: started.elapsed(),
    }
}

/// Every file of a node's audit journal (the current one and any rotated ones), as text.
fn journal_text(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("data/audit")) {
        for e in entries.flatten() {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    text
}

/// Scheduled rotations the nodes performed (their log lines).
fn rotations(dirs: &[PathBuf]) -> usize {
    dirs.iter()
        .map(|d| {
            std::fs::read_to_string(d.join("akm.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("scheduled rotation") && !l.contains("failed"))
                .count()
        })
        .sum()
}

/// Runs rounds for `seeds`, prints each round's figures and every violation, and fails on any
/// violation.
async fn run(seeds: impl Iterator<Item = u64>, activity: Duration, until: Option<Instant>) {
    let mut failures = Vec::new();
    let mut totals = (0usize, 0usize, 0usize, 0usize);
    let mut by_op: BTreeMap<&'static str, [usize; 4]> = BTreeMap::new();
    let mut findings: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for seed in seeds {
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
        let report = run_round(seed, activity).await;
        eprintln!("convergence: {}", report.summary());
        for (k, v) in &report.ops {
            let t = by_op.entry(k).or_default();
            for (sum, n) in t.iter_mut().zip(v) {
                *sum += n;
            }
        }
        for v in &report.violations.0 {
            findings
                .entry(v.check)
                .or_default()
                .insert(format!("0x{seed:x}"));
            eprintln!(
                "convergence: seed=0x{seed:x} FAILED [{}]: {}",
                v.check, v.detail
            );
        }
        totals.0 += 1;
        totals.1 += report.ops.values().map(|v| v[0]).sum::<usize>();
        totals.2 += report.faults.total();
        if !report.violations.0.is_empty() {
            totals.3 += 1;
            failures.push(format!(
                "seed 0x{seed:x} (replay: AKM_CONVERGENCE_SEED=0x{seed:x} \
                 AKM_CONVERGENCE_ROUND_SECS={}): {}",
                activity.as_secs(),
                report
                    .violations
                    .0
                    .iter()
                    .map(|v| v.check)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    eprintln!(
        "convergence: {} rounds, {} operations, {} faults, {} failing rounds",
        totals.0, totals.1, totals.2, totals.3,
    );
    eprintln!(
        "convergence: operations (attempted/ok/refused/unknown): {}",
        by_op
            .iter()
            .map(|(k, v)| format!("{k} {}/{}/{}/{}", v[0], v[1], v[2], v[3]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (check, seeds) in &findings {
        eprintln!(
            "convergence: [{check}] in {} rounds: {}",
            seeds.len(),
            seeds.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn round_secs(default: u64) -> Duration {
    Duration::from_secs(env_u64("AKM_CONVERGENCE_ROUND_SECS").unwrap_or(default))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_convergence_short_run() {
    let activity = round_secs(SHORT_ROUND_SECS);
    match env_u64("AKM_CONVERGENCE_SEED") {
        Some(seed) => run(std::iter::once(seed), activity, None).await,
        None => run(REGRESSION_SEEDS.iter().copied(), activity, None).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "on demand: AKM_CONVERGENCE_SECS=1800 (see README, mirroring)"]
async fn randomized_convergence_long_run() {
    let secs = env_u64("AKM_CONVERGENCE_SECS").unwrap_or(1800);
    let base = env_u64("AKM_CONVERGENCE_SEED").unwrap_or_else(|| now_secs() as u64 * 1000);
    let until = Instant::now() + Duration::from_secs(secs);
    run(
        (0..).map(move |r| base + r),
        round_secs(LONG_ROUND_SECS),
        Some(until),
    )
    .await;
}

#[test]
fn the_fault_schedule_is_a_function_of_the_seed_and_never_kills_two_nodes_at_once() {
    for seed in [1u64, 0x5eed_0001, 0x5eed_0002, 0x20000] {
        let long = fault_schedule(seed, Duration::from_secs(600));
        let again = fault_schedule(seed, Duration::from_secs(600));
        assert_eq!(format!("{long:?}"), format!("{again:?}"));
        // A shorter round replays the beginning of a longer one.
        let short = fault_schedule(seed, Duration::from_secs(12));
        let head: Vec<_> = long
            .iter()
            .filter(|f| f.start < Duration::from_secs(12))
            .map(|f| (f.start, format!("{:?}", f.kind)))
            .collect();
        let replay: Vec<_> = short
            .iter()
            .map(|f| (f.start, format!("{:?}", f.kind)))
            .collect();
        assert_eq!(head, replay);
        let kills: Vec<_> = long
            .iter()
            .filter(|f| matches!(f.kind, FaultKind::Kill(_)))
            .collect();
        assert!(!kills.is_empty());
        for pair in kills.windows(2) {
            assert!(pair[0].end + RESTART_GAP <= pair[1].start, "{pair:?}");
        }
    }
    assert_ne!(
        format!("{:?}", fault_schedule(1, Duration::from_secs(60))),
        format!("{:?}", fault_schedule(2, Duration::from_secs(60)))
    );
}

#[test]
fn links_take_the_latest_active_fault_and_heal_when_it_ends() {
    let s = |start, end, kind| ScheduledFault {
        start: Duration::from_secs(start),
        end: Duration::from_secs(end),
        kind,
    };
    let schedule = [
        s(1, 10, FaultKind::Link(0, 1, Fault::Cut)),
        s(2, 4, FaultKind::Link(0, 1, Fault::Drop)),
        s(3, 5, FaultKind::Isolate(2)),
    ];
    let at = |t| Duration::from_secs(t);
    assert_eq!(link_fault_at(&schedule, at(0), 0, 1), Fault::Pass);
    assert_eq!(link_fault_at(&schedule, at(1), 0, 1), Fault::Cut);
    assert_eq!(link_fault_at(&schedule, at(3), 0, 1), Fault::Drop);
    assert_eq!(link_fault_at(&schedule, at(4), 0, 1), Fault::Cut);
    assert_eq!(link_fault_at(&schedule, at(3), 1, 2), Fault::Cut);
    assert_eq!(link_fault_at(&schedule, at(5), 1, 2), Fault::Pass);
    assert_eq!(link_fault_at(&schedule, at(10), 0, 1), Fault::Pass);
}

#[test]
fn dumps_that_differ_in_one_field_are_told_apart_and_node_local_columns_are_not_compared() {
    let object = ObjectDump {
        object_type: 2,
        state: state::ACTIVE,
        owner: "u0".into(),
        owner_group: None,
        access_mode: "user".into(),
        algorithm: Some(3),
        length: Some(256),
        initial_date: 1,
        activation_date: Some(1),
        deactivation_date: None,
        last_change: 1,
        key_version: 1,
        attributes: vec![1, 2, 3],
        names: vec!["k0".into()],
        groups: vec![],
        has_material: true,
        material: Some("aa".into()),
    };
    let mut a = Dump::default();
    a.objects.insert("x".into(), object.clone());
    let mut b = a.clone();
    assert!(dump_differences(&a, &b, true).is_empty());
    b.objects.get_mut("x").unwrap().material = Some("bb".into());
    assert_eq!(dump_differences(&a, &b, true), vec!["object x: material"]);
    let mut c = a.clone();
    c.stamps
        .insert(("object".into(), "x".into()), (7, "n1".into()));
    assert_eq!(dump_differences(&a, &c, true).len(), 1);
    for local in ["seq", "at", "origin"] {
        assert!(node_local_column(local));
    }
    assert!(!node_local_column("serial"));
}
