//! `akm bench`: a KMIP load tool. It speaks standard KMIP (TTLV over mutual TLS) so it can be
//! pointed at any KMIP server, akm or not: persistent connections or a new TLS connection per
//! operation, a weighted mix of Create, Register, Get, Locate and Encrypt, KMIP 1.2/1.4/2.0/2.1,
//! several batch items per message, a warm-up, and a report of ops/s, latency percentiles,
//! errors, its own CPU per operation and (given the server's PID) the server's CPU per
//! operation and peak memory. It also holds idle connections open to measure server memory.

use super::CliError;
use crate::client::{self, Client, ClientError};
use crate::config::Config;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{
    block_cipher_mode, cryptographic_algorithm as alg, key_format_type as kft, name_type,
    object_type as ot, operation as op,
};
use crate::kmip::ProtocolVersion;
use crate::tls;
use crate::ttlv::{Tag, Ttlv, Value};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most persistent connections one run drives.
const MAX_CONNECTIONS: usize = 256;
/// The largest Encrypt plaintext the load tool sends (under the server's default 1 MiB
/// message limit, with room for the response's tag and IV).
const MAX_DATA_BYTES: usize = 512 * 1024;

/// Linux reports process CPU time in clock ticks of USER_HZ, which is 100 on every
/// architecture's user-space ABI (so no libc call is needed to read it).
const TICKS_PER_SECOND: f64 = 100.0;

/// Load tool options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Server address host:port (default: [client] server in the config).
    #[arg(long)]
    server: Option<String>,
    /// Client certificate (default: [client] cert).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client private key (default: [client] key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// CA of the server certificate (default: [client] ca).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Concurrent connections (1 to 256), each with one request in flight.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Open a new TLS connection for every request (full handshake, or resumption when the
    /// server issues session tickets or caches sessions).
    #[arg(long)]
    new_connection: bool,
    /// Never resume a TLS session: every new connection makes a full handshake with
    /// certificate verification on both sides (measures clients that do not resume).
    #[arg(long)]
    no_resumption: bool,
    /// Operation mix by weight, e.g. `get=8,locate=1,create=1` (create, register, get,
    /// locate, encrypt).
    #[arg(long, default_value = "get")]
    mix: String,
    /// KMIP version: 1.2, 1.4, 2.0 or 2.1.
    #[arg(long, default_value = "1.4")]
    kmip: String,
    /// Batch items per request message.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many operations (batch items) instead of at the end of --duration;
    /// with `--mix create --warmup 0 --keep` this fills a server with a known number of keys.
    #[arg(long)]
    count: Option<u64>,
    /// Keys created before the run for Get, Locate and Encrypt to use.
    #[arg(long, default_value_t = 64)]
    keys: usize,
    /// Bytes of plaintext in each Encrypt (AES-256-GCM, the server chooses the IV).
    #[arg(long, default_value_t = 1024)]
    data_bytes: usize,
    /// The server's process ID: report its CPU time per operation and peak memory (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Instead of a load: open this many TLS connections, send one Discover Versions on
    /// each, hold them idle and report the server's resident memory (needs --server-pid).
    #[arg(long)]
    idle: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Keep the keys the run created (by default they are destroyed at the end, Active ones
    /// revoked first); with `--mix create --count N` this fills a server with N keys.
    #[arg(long)]
    keep: bool,
}

/// An operation the load tool sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Register,
    Get,
    Locate,
    Encrypt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "create" => Op::Create,
            "register" => Op::Register,
            "get" => Op::Get,
            "locate" => Op::Locate,
            "encrypt" => Op::Encrypt,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Register => "register",
            Op::Get => "get",
            Op::Locate => "locate",
            Op::Encrypt => "encrypt",
        }
    }
}

/// The weighted mix, expanded to a schedule that is walked round-robin: with weights
/// `get=8,create=1` every ninth request is a Create, evenly spread and reproducible.
fn parse_mix(mix: &str) -> Result<Vec<Op>, CliError> {
    let mut schedule = Vec::new();
    for part in mix.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
        let op = Op::parse(name)
            .ok_or_else(|| CliError::Usage(format!("--mix: unknown operation {name:?}")))?;
        let weight: usize = weight
            .trim()
            .parse()
            .ok()
            .filter(|w| (1..=1000).contains(w))
            .ok_or_else(|| CliError::Usage(format!("--mix: bad weight in {part:?} (1-1000)")))?;
        schedule.extend(std::iter::repeat_n(op, weight));
    }
    if schedule.is_empty() {
        return Err(CliError::Usage("--mix names no operation".into()));
    }
    Ok(interleave(schedule))
}

/// Spreads each operation evenly over the schedule instead of in runs.
fn interleave(mut ops: Vec<Op>) -> Vec<Op> {
    let n = ops.len();
    let mut keyed: Vec<(usize, Op)> = Vec::with_capacity(n);
    let mut seen: Vec<(Op, usize, usize)> = Vec::new();
    for op in &ops {
        match seen.iter_mut().find(|(o, _, _)| o == op) {
            Some(entry) => entry.2 += 1,
            None => seen.push((*op, 0, 1)),
        }
    }
    for (op, _, count) in &seen {
        for i in 0..*count {
            keyed.push(((i * 2 + 1) * n / (count * 2), *op));
        }
    }
    keyed.sort_by_key(|(pos, _)| *pos);
    ops.clear();
    ops.extend(keyed.into_iter().map(|(_, op)| op));
    ops
}

fn parse_version(s: &str) -> Result<ProtocolVersion, CliError> {
    Ok(match s {
        "1.2" => ProtocolVersion::V1_2,
        "1.4" => ProtocolVersion::V1_4,
        "2.0" => ProtocolVersion::V2_0,
        "2.1" => ProtocolVersion::V2_1,
        _ => {
            return Err(CliError::Usage(format!(
                "--kmip {s:?}: use 1.2, 1.4, 2.0 or 2.1"
            )))
        }
    })
}

/// What every connection task needs to build requests.
struct Plan {
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    version: ProtocolVersion,
    schedule: Vec<Op>,
    batch: usize,
    new_connection: bool,
    /// Keys for Get and Encrypt, names for Locate.
    keys: Vec<(String, String)>,
    /// The plaintext every Encrypt sends.
    plaintext: Vec<u8>,
    warmup_end: Instant,
    end: Instant,
    /// Operations still to send when --count is given.
    remaining: Option<std::sync::atomic::AtomicI64>,
    /// Whether to note the keys Create and Register make, to destroy them at the end.
    collect_created: bool,
}

/// One connection task's results.
#[derive(Default)]
struct Tally {
    /// Latency of each measured request message, in nanoseconds.
    latencies: Vec<u64>,
    /// Measured operations (batch items) that succeeded, and that failed, per operation.
    ok: Vec<(Op, u64)>,
    errors: Vec<(Op, u64)>,
    /// The first error message seen, to say why.
    first_error: Option<String>,
    /// Measured TLS connections opened, and how many of them resumed a session.
    connections: u64,
    resumed: u64,
    /// Keys Create and Register made (warm-up included), when the run cleans up.
    created: Vec<String>,
}

impl Tally {
    fn count(list: &mut Vec<(Op, u64)>, op: Op) {
        Tally::add(list, op, 1);
    }

    fn add(list: &mut Vec<(Op, u64)>, op: Op, n: u64) {
        match list.iter_mut().find(|(o, _)| *o == op) {
            Some(e) => e.1 += n,
            None => list.push((op, n)),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (op, n) in other.ok {
            Tally::add(&mut self.ok, op, n);
        }
        for (op, n) in other.errors {
            Tally::add(&mut self.errors, op, n);
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.connections += other.connections;
        self.resumed += other.resumed;
        self.created.extend(other.created);
    }
}

/// A Name attribute value.
fn name_value(n: &str) -> Value {
    Value::Structure(vec![
        Ttlv::text(Tag::NAME_VALUE, n),
        Ttlv::enumeration(Tag::NAME_TYPE, name_type::UNINTERPRETED_TEXT_STRING),
    ])
}

/// Attributes in the version's request encoding (1.x Template-Attribute or 2.x Attributes).
fn template(version: ProtocolVersion, attrs: &[Attr]) -> Ttlv {
    if version.is_v2() {
        Ttlv::structure(
            Tag::ATTRIBUTES,
            attrs.iter().map(attributes::to_v2).collect(),
        )
    } else {
        Ttlv::structure(
            Tag::TEMPLATE_ATTRIBUTE,
            attrs.iter().map(|a| attributes::to_v1(a, None)).collect(),
        )
    }
}

/// AES-256 key attributes (usable for encrypt and decrypt), with an optional name.
fn aes_attrs(name: Option<&str>) -> Vec<Attr> {
    let mut a = vec![
        Attr::new(attr::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(alg::AES)),
        Attr::new(attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
        Attr::new(attr::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(0x0C)),
    ];
    if let Some(n) = name {
        a.push(Attr::new(attr::NAME, name_value(n)));
    }
    a
}

/// The batch item for `op`; `n` picks the key it works on.
fn item(plan: &Plan, op: Op, n: usize) -> (u32, Vec<Ttlv>) {
    let v = plan.version;
    let (uid, name) = &plan.keys[n % plan.keys.len()];
    match op {
        Op::Create => (
            op::CREATE,
            vec![
                Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
                template(v, &aes_attrs(None)),
            ],
        ),
        Op::Register => {
            let material = [0x42u8; 32];
            (
                op::REGISTER,
                vec![
                    Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
                    template(v, &aes_attrs(None)),
                    Ttlv::structure(
                        Tag::SYMMETRIC_KEY,
                        vec![Ttlv::structure(
                            Tag::KEY_BLOCK,
                            vec![
                                Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                                Ttlv::structure(
                                    Tag::KEY_VALUE,
                                    vec![Ttlv::bytes(Tag::KEY_MATERIAL, material.to_vec())],
                                ),
                                Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                                Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
                            ],
                        )],
                    ),
                ],
            )
        }
        Op::Get => (
            op::GET,
            vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())],
        ),
        Op::Locate => {
            let attr = Attr::new(attr::NAME, name_value(name));
            let filters = if v.is_v2() {
                vec![template(v, &[attr])]
            } else {
                vec![attributes::to_v1(&attr, None)]
            };
            (op::LOCATE, filters)
        }
        Op::Encrypt => (
            op::ENCRYPT,
            vec![
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
                Ttlv::structure(
                    Tag::CRYPTOGRAPHIC_PARAMETERS,
                    vec![
                        Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, block_cipher_mode::GCM),
                        Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    ],
                ),
                // No IV: the server chooses a fresh one per request, as a real client of GCM
                // should let it (a fixed IV under one key is GCM misuse), and the only GCM
                // encryption the FIPS build performs (docs/src/fips.md).
                Ttlv::bytes(Tag::DATA, plan.plaintext.clone()),
            ],
        ),
    }
}

/// Drives one connection until the end of the run.
async fn worker(plan: Arc<Plan>, index: usize) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Client> = None;
    // Each task starts at its own place in the schedule and key list.
    let mut n = index * 7919;
    let mut failed_connects = 0u32;
    loop {
        let start = Instant::now();
        if start >= plan.end {
            break;
        }
        let measured = start >= plan.warmup_end;
        if let Some(left) = &plan.remaining {
            let before = left.fetch_sub(plan.batch as i64, std::sync::atomic::Ordering::Relaxed);
            if before <= 0 {
                break;
            }
        }
        let ops: Vec<Op> = (0..plan.batch)
            .map(|i| plan.schedule[(n + i) % plan.schedule.len()])
            .collect();
        let items: Vec<(u32, Vec<Ttlv>)> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| item(&plan, *op, n + i))
            .collect();
        n += plan.batch;
        let fresh = conn.is_none();
        let outcome = async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => {
                    conn.insert(Client::connect(&plan.addr, plan.tls.clone(), plan.version).await?)
                }
            };
            c.batch(&items).await
        }
        .await;
        if fresh && measured {
            if let Some(c) = &conn {
                tally.connections += 1;
                tally.resumed += u64::from(c.resumed());
            }
        }
        let elapsed = start.elapsed();
        if plan.new_connection || outcome.is_err() {
            conn = None;
        }
        match outcome {
            Ok(results) => {
                failed_connects = 0;
                if plan.collect_created {
                    tally.created.extend(created_uids(&ops, &results));
                }
                if !measured {
                    continue;
                }
                tally.latencies.push(elapsed.as_nanos() as u64);
                for (i, op) in ops.iter().enumerate() {
                    match results.get(i) {
                        Some(Ok(_)) => Tally::count(&mut tally.ok, *op),
                        Some(Err(e)) => {
                            Tally::count(&mut tally.errors, *op);
                            tally.first_error.get_or_insert_with(|| e.to_string());
                        }
                        None => {
                            Tally::count(&mut tally.errors, *op);
                            tally
                                .first_error
                                .get_or_insert_with(|| "response lacks a batch item".into());
                        }
                    }
                }
            }
            Err(e) => {
                if measured {
                    for op in &ops {
                        Tally::count(&mut tally.errors, *op);
                    }
                }
                tally.first_error.get_or_insert_with(|| e.to_string());
                // A server that is gone should not be hammered in a tight loop.
                failed_connects += 1;
                if failed_connects > 3 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
    tally
}

/// The identifiers of the keys that the Create and Register items of a response made.
fn created_uids<'a>(
    ops: &'a [Op],
    results: &'a [client::ItemResult],
) -> impl Iterator<Item = String> + 'a {
    ops.iter().zip(results).filter_map(|(op, r)| match (op, r) {
        (Op::Create | Op::Register, Ok(payload)) => payload
            .child(Tag::UNIQUE_IDENTIFIER)
            .and_then(Ttlv::as_text)
            .map(str::to_owned),
        _ => None,
    })
}

/// CPU time (user + system) of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// A memory figure in KiB from /proc/<pid>/status (`VmHWM`, `VmRSS`).
fn memory_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The latency at quantile `q` of sorted nanosecond samples, in milliseconds.
fn percentile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

/// Creates the keys Get, Locate and Encrypt work on (activated when Encrypt is in the mix)
/// into `keys`, which keeps those made so far if a later one fails (to clean them up).
async fn prepare_keys(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
    version: ProtocolVersion,
    count: usize,
    activate: bool,
    keys: &mut Vec<(String, String)>,
) -> Result<(), ClientError> {
    let mut c = Client::connect(addr, tls, version).await?;
    let run = format!("{:x}", std::process::id() ^ (crate::clock::now_ms() as u32));
    for i in 0..count.max(1) {
        let name = format!("akm-bench-{run}-{i}");
        let payload = vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
            template(version, &aes_attrs(Some(&name))),
        ];
        let created = c.call(op::CREATE, payload).await?;
        let uid = created
            .child(Tag::UNIQUE_IDENTIFIER)
            .and_then(Ttlv::as_text)
            .ok_or_else(|| ClientError::Protocol("Create response without an identifier".into()))?
            .to_owned();
        if activate {
            c.call(
                op::ACTIVATE,
                vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())],
            )
            .await?;
        }
        keys.push((uid, name));
    }
    let _ = c.close().await;
    Ok(())
}

/// Destroys `uids` (revoking those that are Active first), a batch of requests at a time.
/// Returns those it could not destroy.
async fn destroy_keys(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
    version: ProtocolVersion,
    uids: &[String],
) -> Vec<String> {
    let Ok(mut c) = Client::connect(addr, tls, version).await else {
        return uids.to_vec();
    };
    let mut left = Vec::new();
    for chunk in uids.chunks(50) {
        let payload = |u: &String| vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, u.clone())];
        let destroys: Vec<(u32, Vec<Ttlv>)> =
            chunk.iter().map(|u| (op::DESTROY, payload(u))).collect();
        let Ok(results) = c.batch(&destroys).await else {
            left.extend(chunk.iter().cloned());
            continue;
        };
        // An Active key must be revoked before it can be destroyed.
        for (u, r) in chunk.iter().zip(results) {
            if r.is_ok() {
                continue;
            }
            let revoke = vec![
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, u.clone()),
                Ttlv::structure(
                    Tag::REVOCATION_REASON,
                    vec![Ttlv::enumeration(
                        Tag::REVOCATION_REASON_CODE,
                        crate::kmip::enums::revocation_reason_code::CESSATION_OF_OPERATION,
                    )],
                ),
            ];
            let undone = c.call(op::REVOKE, revoke).await.is_ok()
                && c.call(op::DESTROY, payload(u)).await.is_ok();
            if !undone {
                left.push(u.clone());
            }
        }
    }
    let _ = c.close().await;
    left
}

/// Destroys what the run created and says where anything was left.
async fn clean_up(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
    version: ProtocolVersion,
    created: &[String],
) -> serde_json::Value {
    let left = destroy_keys(addr, tls, version, created).await;
    if !left.is_empty() {
        let shown: Vec<&str> = left.iter().take(10).map(String::as_str).collect();
        eprintln!(
            "akm bench: could not destroy {} of the {} keys it created on {addr}; they are \
             still there (first: {}{}): remove them with `akm key revoke` and `akm key destroy`",
            left.len(),
            created.len(),
            shown.join(", "),
            if left.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
    json!({
        "created": created.len(),
        "destroyed": created.len() - left.len(),
        "left_on_server": left,
    })
}

/// Resolves the connection options against the config's [client] section.
fn connection(
    config: &Config,
    args: &BenchArgs,
) -> Result<(String, Arc<rustls::ClientConfig>), CliError> {
    let c = &config.client;
    let tls = tls::client_config(
        args.cert.as_ref().unwrap_or(&c.cert),
        args.key.as_ref().unwrap_or(&c.key),
        args.ca.as_ref().unwrap_or(&c.ca),
    )
    .map_err(ClientError::from)?;
    let tls = if args.no_resumption {
        let mut c = (*tls).clone();
        c.resumption = rustls::client::Resumption::disabled();
        Arc::new(c)
    } else {
        tls
    };
    let addr = match &args.server {
        Some(s) => s.clone(),
        None => client::split_servers(&c.server)
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Usage("no server: pass --server".into()))?,
    };
    Ok((addr, tls))
}

/// Runs `akm bench`.
pub fn run(config: &Config, args: BenchArgs) -> Result<(), CliError> {
    if !(1..=MAX_CONNECTIONS).contains(&args.connections) {
        return Err(CliError::Usage(format!(
            "--connections must be 1 to {MAX_CONNECTIONS}"
        )));
    }
    if !(1..=crate::kmip::MAX_BATCH_ITEMS).contains(&args.batch) {
        return Err(CliError::Usage("--batch must be 1 to 1024".into()));
    }
    let duration_ok = args.duration > 0.0 && args.duration <= 86_400.0;
    if !duration_ok || !(0.0..=3600.0).contains(&args.warmup) {
        return Err(CliError::Usage(
            "--duration must be over 0 (at most a day), --warmup 0 to 3600 seconds".into(),
        ));
    }
    if !(1..=MAX_DATA_BYTES).contains(&args.data_bytes) {
        return Err(CliError::Usage(format!(
            "--data-bytes must be 1 to {MAX_DATA_BYTES}"
        )));
    }
    let version = parse_version(&args.kmip)?;
    let schedule = parse_mix(&args.mix)?;
    let (addr, tls) = connection(config, &args)?;
    // One thread: the load tool should cost little next to the server it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::from)?;
    let report = if let Some(count) = args.idle {
        runtime.block_on(idle(&addr, tls, version, count, &args))?
    } else {
        runtime.block_on(load(addr, tls, version, schedule, &args))?
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_text(&report);
    }
    Ok(())
}

/// The load run: prepares keys, runs the connection tasks, and builds the report.
async fn load(
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    version: ProtocolVersion,
    schedule: Vec<Op>,
    args: &BenchArgs,
) -> Result<serde_json::Value, CliError> {
    let needs_keys = schedule
        .iter()
        .any(|o| matches!(o, Op::Get | Op::Locate | Op::Encrypt));
    let keys = if needs_keys {
        let activate = schedule.contains(&Op::Encrypt);
        let mut keys = Vec::with_capacity(args.keys);
        let prepared = prepare_keys(&addr, tls.clone(), version, args.keys, activate, &mut keys);
        if let Err(e) = prepared.await {
            if !args.keep {
                let made: Vec<String> = keys.into_iter().map(|(u, _)| u).collect();
                clean_up(&addr, tls.clone(), version, &made).await;
            }
            return Err(e.into());
        }
        keys
    } else {
        vec![(String::new(), String::new())]
    };
    let pid = args.server_pid.map(|p| p.to_string());
    let start = Instant::now();
    let warmup_end = start + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        addr: addr.clone(),
        tls,
        version,
        schedule,
        batch: args.batch,
        new_connection: args.new_connection,
        keys,
        plaintext: vec![0x61u8; args.data_bytes],
        warmup_end,
        end: warmup_end + Duration::from_secs_f64(args.duration),
        remaining: args
            .count
            .map(|n| std::sync::atomic::AtomicI64::new(n.min(i64::MAX as u64) as i64)),
        collect_created: !args.keep,
    });
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(worker(plan.clone(), i)))
        .collect();
    tokio::time::sleep_until(warmup_end.into()).await;
    let server_cpu0 = pid.as_deref().and_then(cpu_seconds);
    let own_cpu0 = cpu_seconds("self");
    let measure_start = Instant::now();
    let mut total = Tally::default();
    for t in tasks {
        total.merge(
            t.await
                .map_err(|e| CliError::Usage(format!("worker: {e}")))?,
        );
    }
    let wall = measure_start.elapsed().as_secs_f64();
    let own_cpu = cpu_seconds("self").zip(own_cpu0).map(|(b, a)| b - a);
    let server_cpu = pid
        .as_deref()
        .and_then(cpu_seconds)
        .zip(server_cpu0)
        .map(|(b, a)| b - a);
    total.latencies.sort_unstable();
    let ok: u64 = total.ok.iter().map(|(_, n)| n).sum();
    let errors: u64 = total.errors.iter().map(|(_, n)| n).sum();
    let ops = ok + errors;
    let per_op_us = |cpu: Option<f64>| cpu.filter(|_| ops > 0).map(|c| c * 1e6 / ops as f64);
    let cleanup = if args.keep {
        json!({ "kept": true })
    } else {
        let mut created: Vec<String> = plan.keys.iter().map(|(u, _)| u.clone()).collect();
        created.retain(|u| !u.is_empty());
        created.append(&mut total.created);
        clean_up(&addr, plan.tls.clone(), version, &created).await
    };
    let l = &total.latencies;
    Ok(json!({
        "cleanup": cleanup,
        "server": addr,
        "kmip": args.kmip,
        "mix": args.mix,
        "encrypt_data_bytes": args.data_bytes,
        "connections": args.connections,
        "new_connection_per_request": args.new_connection,
        "tls_resumption": !args.no_resumption,
        "tls_connections": total.connections,
        "tls_resumed": total.resumed,
        "batch": args.batch,
        "seconds": wall,
        "operations": ops,
        "ops_per_second": ok as f64 / wall,
        "requests": l.len(),
        "errors": errors,
        "errors_by_operation": total.errors.iter().map(|(o, n)| (o.name(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        "first_error": total.first_error,
        "latency_ms": {
            "p50": percentile_ms(l, 0.50),
            "p90": percentile_ms(l, 0.90),
            "p99": percentile_ms(l, 0.99),
            "p999": percentile_ms(l, 0.999),
            "max": l.last().map(|n| *n as f64 / 1e6).unwrap_or(0.0),
        },
        "load_tool_cpu_us_per_op": per_op_us(own_cpu),
        "server_cpu_us_per_op": per_op_us(server_cpu),
        "server_peak_rss_kib": pid.as_deref().and_then(|p| memory_kib(p, "VmHWM")),
        "server_rss_kib": pid.as_deref().and_then(|p| memory_kib(p, "VmRSS")),
    }))
}

/// Opens `count` TLS connections, holds them idle, and reports the server's memory.
async fn idle(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
    version: ProtocolVersion,
    count: usize,
    args: &BenchArgs,
) -> Result<serde_json::Value, CliError> {
    let pid = args
        .server_pid
        .map(|p| p.to_string())
        .ok_or_else(|| CliError::Usage("--idle needs --server-pid".into()))?;
    let before = memory_kib(&pid, "VmRSS");
    let mut held = Vec::with_capacity(count);
    let mut failures = 0usize;
    let mut first_error = None;
    for _ in 0..count {
        // One Discover Versions on each: a TLS 1.3 client is done with its handshake before
        // the server has checked its certificate, so only an answer shows the server took it.
        let opened = match Client::connect(addr, tls.clone(), version).await {
            Ok(mut c) => c.call(op::DISCOVER_VERSIONS, vec![]).await.map(|_| c),
            Err(e) => Err(e),
        };
        match opened {
            Ok(c) => held.push(c),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    // Let the server finish its side of the last handshakes before reading its memory.
    tokio::time::sleep(Duration::from_secs_f64(args.warmup.max(1.0))).await;
    let after = memory_kib(&pid, "VmRSS");
    let per_conn = before
        .zip(after)
        .filter(|_| !held.is_empty())
        .map(|(b, a)| (a.saturating_sub(b) as f64) / held.len() as f64);
    Ok(json!({
        "server": addr,
        "idle_connections": held.len(),
        "failed_connections": failures,
        "first_error": first_error,
        "server_rss_kib_before": before,
        "server_rss_kib": after,
        "server_kib_per_connection": per_conn,
        "server_peak_rss_kib": memory_kib(&pid, "VmHWM"),
    }))
}

/// The report for people.
fn print_text(r: &serde_json::Value) {
    let Some(map) = r.as_object() else { return };
    for (k, v) in map {
        match v {
            serde_json::Value::Object(inner) => {
                let parts: Vec<String> = inner
                    .iter()
                    .map(|(ik, iv)| format!("{ik}={}", fmt_num(iv)))
                    .collect();
                println!("{k:<26} {}", parts.join(" "));
            }
            other => println!("{k:<26} {}", fmt_num(other)),
        }
    }
}

fn fmt_num(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(f) if v.is_f64() => format!("{f:.3}"),
        _ => v.to_string().trim_matches('"').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_weighted_and_spread() {
        let s = parse_mix("get=3,create=1").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s.iter().filter(|o| **o == Op::Get).count(), 3);
        assert_eq!(s.iter().filter(|o| **o == Op::Create).count(), 1);
        let s = parse_mix("get=2,locate=2").unwrap();
        assert_ne!(s[0], s[1], "operations are interleaved, not in runs: {s:?}");
    }

    #[test]
    fn bad_mix_is_a_usage_error() {
        for bad in ["", "fly=1", "get=0", "get=x", "get=5000"] {
            assert!(matches!(parse_mix(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("2.1").unwrap(), ProtocolVersion::V2_1);
        assert!(parse_version("3.0").is_err());
    }

    #[test]
    fn percentiles_of_sorted_samples() {
        let v: Vec<u64> = (1..=1000).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 500.0);
        assert_eq!(percentile_ms(&v, 0.99), 990.0);
        assert_eq!(percentile_ms(&v, 0.999), 999.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn own_process_cpu_and_memory_are_readable() {
        assert!(cpu_seconds("self").is_some());
        assert!(memory_kib("self", "VmRSS").is_some());
        assert!(cpu_seconds("0").is_none());
    }
}
