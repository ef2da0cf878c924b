//! A model-checked access policy (issue 16): random batches from eight identities (owners,
//! members of the owner group, a stranger, a read-only user, a caller in no record,
//! administrators) run against the real server over TLS, and a small reference model of
//! akm's access rules (`rules`, `predict`) says what each item may do. After every step the
//! test checks that every item got the outcome the model allows, that no object changed
//! except through items the model allowed (the SQLite change log against the model's
//! writes, and the stored objects against the model's), that Locate returned exactly what
//! the caller may see, that key material reached only callers allowed to Get it, and that
//! with hidden existence a refusal looks exactly like a missing object.
//!
//! Environment: `AKM_MODEL_SEED` (default fixed), `AKM_MODEL_STEPS` (steps per profile,
//! default 250), `AKM_MODEL_SWEEP` (count the objects in the file every N steps, default
//! 50; every object is compared at the end, and eight more after every step, in turn),
//! `AKM_MODEL_PRE_MERGE=1` (model main before the owner-scoped names and transactional
//! Batch Undo: global names, and no Locate in Undo batches).

mod gen;
mod observe;
mod predict;
mod rules;
mod wire;

use crate::support::kmip::uids_of;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::custody::{OP_AUTHORIZE, TAG_WINDOW_UNTIL};
use akm::kmip::enums::{result_reason as rr, result_status};
use akm::kmip::extension::{self as ext, parse_key_policy};
use akm::ops::dual::DualControl;
use akm::policy::{AccessMode, Operations, Settings};
use akm::ttlv::{Tag, Ttlv};
use gen::{ItemSpec, OnError, StepSpec, Steps};
use observe::{ChangeLog, Seen};
use predict::{BatchRun, Expect, Outcome};
use rules::*;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// The test's settings, from the environment.
#[derive(Clone, Debug)]
struct Config {
    seed: u64,
    steps: usize,
    sweep_every: usize,
    pre_merge: bool,
}

impl Config {
    fn from_env() -> Config {
        let num = |key: &str, default: u64| -> u64 {
            match std::env::var(key) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{key}={v:?} is not a number")),
                Err(_) => default,
            }
        };
        Config {
            seed: num("AKM_MODEL_SEED", 0x0001_65EC_0DE1),
            steps: num("AKM_MODEL_STEPS", 250) as usize,
            sweep_every: num("AKM_MODEL_SWEEP", 50).max(1) as usize,
            pre_merge: std::env::var("AKM_MODEL_PRE_MERGE").is_ok_and(|v| v == "1"),
        }
    }
}

/// Counts for the summary line.
#[derive(Debug, Default)]
struct Stats {
    steps: usize,
    batches: usize,
    items: usize,
    allowed: usize,
    denied: usize,
    hidden: usize,
    missing: usize,
    failed: usize,
    undone_batches: usize,
    /// Per item kind: allowed, denied (or hidden), missing, failed.
    per_kind: std::collections::BTreeMap<&'static str, [usize; 4]>,
}

impl Stats {
    fn count_kind(&mut self, kind: &'static str, o: Outcome) {
        let entry = self.per_kind.entry(kind).or_default();
        entry[match o {
            Outcome::Ok => 0,
            Outcome::Denied | Outcome::Hidden => 1,
            Outcome::Missing => 2,
            Outcome::Fail => 3,
        }] += 1;
    }

    fn count(&mut self, o: Outcome) {
        self.items += 1;
        match o {
            Outcome::Ok => self.allowed += 1,
            Outcome::Denied => self.denied += 1,
            Outcome::Hidden => self.hidden += 1,
            Outcome::Missing => self.missing += 1,
            Outcome::Fail => self.failed += 1,
        }
    }
}

/// The server, a connection per identity, and the model.
struct Run {
    server: TestServer,
    clients: Vec<Option<Client>>,
    profile: Profile,
    sem: Semantics,
    config: Config,
    world: World,
    windows: Vec<Window>,
    /// Identifiers of objects undone batches created (they must stay missing).
    dead: Vec<String>,
    log: ChangeLog,
    /// Key material → the objects that have it (keys derived alike from one base share it).
    materials: HashMap<Vec<u8>, BTreeSet<String>>,
    /// The message of Object Not Found, which every refusal with hidden existence must
    /// repeat exactly.
    not_found_message: Option<String>,
    stats: Stats,
    /// What the current step sent, for failure reports.
    trace: String,
    /// Where the rolling comparison of objects is (index into the creation order).
    rolling: usize,
}

/// Objects compared again after every step, in turn.
const ROLLING_CHECK: usize = 8;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn server_settings(p: &Profile) -> Settings {
    Settings {
        admin_group: ADMIN_GROUP.into(),
        unknown: p.unknown.map(|l| Operations::parse_list(l).unwrap()),
        hide_existence: p.hide_existence,
        default_mode: AccessMode::parse(p.default_mode.as_str()).unwrap(),
    }
}

impl Run {
    async fn start(profile: Profile, config: Config) -> Run {
        let dual = DualControl::new(
            profile.guarded.iter().map(|s| s.to_string()).collect(),
            profile.window_max_minutes,
        )
        .with_separate_duties(profile.separate_duties);
        let server = TestServer::start_with_access_and_dual(server_settings(&profile), dual).await;
        let log = ChangeLog::open(&server);
        Run {
            server,
            clients: IDENTITIES.iter().map(|_| None).collect(),
            profile,
            sem: Semantics {
                names_per_owner: !config.pre_merge,
            },
            config,
            world: World::default(),
            windows: Vec::new(),
            dead: Vec::new(),
            log,
            materials: HashMap::new(),
            not_found_message: None,
            stats: Stats::default(),
            trace: String::new(),
            rolling: 0,
        }
    }

    async fn client(&mut self, who: usize) -> &mut Client {
        if self.clients[who].is_none() {
            let id = IDENTITIES[who];
            let tls = self.server.client_tls(id.cn, id.ous);
            let c = self.server.connect(tls, wire::V).await.expect("connect");
            self.clients[who] = Some(c);
        }
        self.clients[who].as_mut().unwrap()
    }

    async fn send(&mut self, who: usize, msg: &Ttlv) -> Vec<wire::ItemResult> {
        let response = self.client(who).await.send(msg).await;
        let response = match response {
            Ok(r) => r,
            Err(_) => {
                // The connection may have timed out while idle: reconnect once.
                self.clients[who] = None;
                self.client(who)
                    .await
                    .send(msg)
                    .await
                    .unwrap_or_else(|e| panic!("{}: no response: {e}", self.trace))
            }
        };
        wire::results(&response)
    }

    fn caller(&self, who: usize) -> Caller {
        Caller {
            id: IDENTITIES[who],
            tables: self.world.tables.clone(),
            profile: self.profile.clone(),
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "access model violation (profile {}, seed {}, step {}): {what}\n--- step ---\n{}",
            self.profile.name, self.config.seed, self.stats.steps, self.trace
        );
    }

    /// The set-up every run starts with: the groups' and the read-only user's records.
    async fn setup(&mut self) {
        let admin1 = 6;
        let admin2 = 7;
        if self.profile.guarded.contains(&"policy") {
            self.authorize(
                admin2,
                IDENTITIES[admin1].cn,
                "policy",
                self.profile.window_max_minutes as i32,
            )
            .await;
        }
        let records: Vec<(bool, &str, &str)> = [
            Some((false, "team", "all")),
            Some((
                false,
                "other",
                "create,register,locate,get,get-attributes,add-attribute,activate",
            )),
            Some((true, "reader", "read")),
            self.profile
                .admins_record
                .map(|ops| (false, ADMIN_GROUP, ops)),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (user, name, ops) in records {
            self.set_account(admin1, user, name, Some(true), Some(ops.to_owned()))
                .await;
        }
    }

    async fn step(&mut self, spec: StepSpec) {
        self.stats.steps += 1;
        self.trace.clear();
        match spec {
            StepSpec::Batch {
                who,
                on_error,
                items,
            } => self.batch(usize::from(who), on_error, items).await,
            StepSpec::SetAccount {
                who,
                user,
                name,
                enabled,
                ops,
            } => {
                let name = account_name(user, name);
                let ops = ops.map(|o| OPS_PRESETS[usize::from(o) % OPS_PRESETS.len()].to_owned());
                self.set_account(usize::from(who), user, &name, enabled, ops)
                    .await
            }
            StepSpec::DeleteAccount { who, user, name } => {
                let name = account_name(user, name);
                self.delete_account(usize::from(who), user, &name).await
            }
            StepSpec::Authorize {
                who,
                user,
                operation,
                minutes,
            } => {
                let operation = ["destroy", "policy", "destroy", "policy", "backup"]
                    [usize::from(operation) % 5];
                let max = self.profile.window_max_minutes as i32;
                let minutes = match minutes {
                    0..=199 => 1 + i32::from(minutes) % 3,
                    m => i32::from(m) % (max + 2),
                };
                self.authorize(
                    usize::from(who),
                    IDENTITIES[usize::from(user)].cn,
                    operation,
                    minutes,
                )
                .await
            }
        }
        self.rolling_check();
        if self.stats.steps % self.config.sweep_every == 0 {
            self.count_objects();
        }
    }

    // ---- administration steps ----

    /// The outcome of an administration request on the system tables, before its own rules.
    fn admin_gate(&self, caller: &Caller, guarded: bool) -> Option<Outcome> {
        if guarded
            && self.profile.guarded.contains(&"policy")
            && !window_open(&self.windows, caller.id.cn, "policy", unix_now())
        {
            return Some(Outcome::Denied);
        }
        (!caller.may(Grant::Admin, None)).then_some(Outcome::Denied)
    }

    async fn set_account(
        &mut self,
        who: usize,
        user: bool,
        name: &str,
        enabled: Option<bool>,
        ops: Option<String>,
    ) {
        if self.window_closing(IDENTITIES[who].cn, &["policy"]) {
            return;
        }
        let caller = self.caller(who);
        let expected = self.admin_gate(&caller, true).unwrap_or_else(|| {
            if locks_out(&caller, user, name, enabled) {
                Outcome::Fail
            } else {
                Outcome::Ok
            }
        });
        let payload = ext::set_account_payload(user, name, enabled, ops.as_deref());
        let _ = write!(
            self.trace,
            "{} Set Account {} {name:?} enabled {enabled:?} ops {ops:?}: expect {expected:?}",
            caller.id.cn,
            kind_name(user)
        );
        let result = self.single(who, ext::OP_SET_ACCOUNT, payload).await;
        self.check_outcome(0, expected, &result, None);
        if expected == Outcome::Ok {
            let table = self.world.tables.table(user);
            let record = table.entry(name.to_owned()).or_insert(Record {
                enabled: true,
                ops: BTreeSet::new(),
            });
            if let Some(e) = enabled {
                record.enabled = e;
            }
            if let Some(o) = &ops {
                record.ops = expand(o);
            }
        }
        let allowed: Vec<(String, String)> = (expected == Outcome::Ok)
            .then(|| (kind_name(user).to_owned(), name.to_owned()))
            .into_iter()
            .collect();
        self.after_admin_step(&allowed);
    }

    async fn delete_account(&mut self, who: usize, user: bool, name: &str) {
        if self.window_closing(IDENTITIES[who].cn, &["policy"]) {
            return;
        }
        let caller = self.caller(who);
        let exists = if user {
            self.world.tables.users.contains_key(name)
        } else {
            self.world.tables.groups.contains_key(name)
        };
        let expected = self.admin_gate(&caller, true).unwrap_or(if exists {
            Outcome::Ok
        } else {
            Outcome::Missing
        });
        let _ = write!(
            self.trace,
            "{} Delete Account {} {name:?}: expect {expected:?}",
            caller.id.cn,
            kind_name(user)
        );
        let payload = ext::delete_account_payload(user, name);
        let result = self.single(who, ext::OP_DELETE_ACCOUNT, payload).await;
        self.check_outcome(0, expected, &result, None);
        if expected == Outcome::Ok {
            self.world.tables.table(user).remove(name);
        }
        let allowed: Vec<(String, String)> = (expected == Outcome::Ok)
            .then(|| (kind_name(user).to_owned(), name.to_owned()))
            .into_iter()
            .collect();
        self.after_admin_step(&allowed);
    }

    /// Rule (Authorize): administrators only; the operation must be guarded; never for
    /// oneself (refused as Permission Denied); 1 to `window_minutes` minutes.
    async fn authorize(&mut self, who: usize, user: &str, operation: &str, minutes: i32) {
        let caller = self.caller(who);
        let expected = if !caller.may(Grant::Admin, None) {
            Outcome::Denied
        } else if !self.profile.guarded.contains(&operation) {
            Outcome::Fail
        } else if user == caller.id.cn {
            Outcome::Denied
        } else if !(1..=self.profile.window_max_minutes).contains(&i64::from(minutes)) {
            Outcome::Fail
        } else {
            Outcome::Ok
        };
        let _ = write!(
            self.trace,
            "{} Authorize {user} to {operation} for {minutes} min: expect {expected:?}",
            caller.id.cn
        );
        let payload = wire::authorize_payload(user, operation, minutes);
        let result = self.single(who, OP_AUTHORIZE, payload).await;
        self.check_outcome(0, expected, &result, None);
        if expected == Outcome::Ok {
            let until = result
                .payload
                .as_ref()
                .and_then(|p| p.child(TAG_WINDOW_UNTIL))
                .and_then(Ttlv::as_datetime)
                .unwrap_or_else(|| self.fail("Authorize answered without Window Until".into()));
            self.windows.push(Window {
                by: caller.id.cn.to_owned(),
                user: user.to_owned(),
                operation: operation.to_owned(),
                until,
            });
        }
        self.after_admin_step(&[]);
    }

    async fn single(&mut self, who: usize, operation: u32, payload: Vec<Ttlv>) -> wire::ItemResult {
        let msg = wire::message(&[(operation, payload)], OnError::Default);
        let mut results = self.send(who, &msg).await;
        if results.len() != 1 {
            self.fail(format!(
                "{} batch items in the answer to one",
                results.len()
            ));
        }
        let r = results.remove(0);
        self.stats.count(outcome_class(&r));
        r
    }

    /// After an administration step: only the allowed record may have changed, and no
    /// object.
    fn after_admin_step(&mut self, allowed: &[(String, String)]) {
        let written = self.log.since();
        if let Some(uid) = written.objects.first() {
            self.fail(format!(
                "object {uid} changed by an administration step on the tables"
            ));
        }
        for rec in &written.records {
            if !allowed.contains(rec) {
                self.fail(format!(
                    "record {rec:?} changed, which the step did not allow"
                ));
            }
        }
    }

    /// Whether a window for `user` and one of `operations` closes within a few seconds of
    /// now: the model could then disagree with the server on whether it is open, so such a
    /// step leaves the guarded operations out (rather than sleep until the window closed).
    fn window_closing(&mut self, user: &str, operations: &[&str]) -> bool {
        let now = unix_now();
        self.windows.retain(|w| w.until > now - 10);
        self.windows.iter().any(|w| {
            w.user == user
                && operations.contains(&w.operation.as_str())
                && (now - 2..=now + 3).contains(&w.until)
        })
    }

    // ---- batches ----

    async fn batch(&mut self, who: usize, on_error: OnError, specs: Vec<ItemSpec>) {
        self.stats.batches += 1;
        let specs: Vec<ItemSpec> = if self.config.pre_merge && on_error == OnError::Undo {
            // Before the merge, Undo deletes an object a Locate found (known bug).
            specs
                .into_iter()
                .filter(|s| !matches!(s, ItemSpec::Locate(_)))
                .collect()
        } else {
            specs
        };
        if specs.is_empty() {
            return;
        }
        let closing = self.window_closing(IDENTITIES[who].cn, &["destroy", "policy"]);
        let specs: Vec<ItemSpec> = specs
            .into_iter()
            .filter(|s| {
                !closing || !matches!(s, ItemSpec::Destroy(_) | ItemSpec::SetKeyPolicy { .. })
            })
            .collect();
        if specs.is_empty() {
            return;
        }
        let caller = self.caller(who);
        let now = unix_now();
        let (items, expects, stopped, touched, journal) = {
            let mut run = BatchRun::new(
                &mut self.world,
                caller.clone(),
                self.sem,
                &self.windows,
                now,
                &self.dead,
            );
            let mut items = Vec::new();
            let mut expects: Vec<Option<Expect>> = Vec::new();
            let mut stopped = None;
            for (i, spec) in specs.iter().enumerate() {
                let item = run.concrete(spec);
                let e = stopped.is_none().then(|| run.predict(&item));
                if let Some(e) = &e {
                    if e.outcome == Outcome::Ok {
                        if let Some(p) = &e.placeholder {
                            run.placeholder = p.clone();
                        }
                    } else if on_error != OnError::Continue {
                        stopped = Some(i);
                    }
                }
                items.push(item);
                expects.push(e);
            }
            (items, expects, stopped, run.touched.clone(), run.journal())
        };
        let mut undone = stopped.is_some() && on_error == OnError::Undo;
        let _ = writeln!(self.trace, "{} batch ({on_error:?}):", caller.id.cn);
        for (i, (item, e)) in items.iter().zip(&expects).enumerate() {
            let outcome = e.as_ref().map(|e| e.outcome);
            let _ = writeln!(self.trace, "  [{i}] {item:?} -> expect {outcome:?}");
        }
        let msg = wire::message(
            &items.iter().map(wire::payload).collect::<Vec<_>>(),
            on_error,
        );
        let results = self.send(who, &msg).await;
        let _ = writeln!(self.trace, "  answer: {}", describe(&results));
        let expected_len = stopped.map_or(items.len(), |s| s + 1);
        if results.len() != expected_len {
            self.fail(format!(
                "{} batch items answered, the model expected {expected_len}",
                results.len()
            ));
        }
        if undone && self.config.pre_merge && self.undo_failed_on_a_reused_name(&expects, &results)
        {
            // Known before the merge: Undo writes back a destroyed object the failing item
            // named, whose name an earlier item reused; the store refuses the name and the
            // whole undo fails, leaving the earlier items done (and reported Success).
            undone = false;
        }
        if undone {
            self.stats.undone_batches += 1;
            journal.rollback(&mut self.world);
        }
        for (item, e) in items.iter().zip(&expects).take(results.len()) {
            if let Some(e) = e {
                self.stats.count_kind(item.label(), e.outcome);
            }
        }
        let renames = self.compare_items(&expects, &results, undone);
        self.bind_new_objects(&renames, touched, undone);
        let mut writes = self.allowed_writes(&expects, &renames);
        if undone && self.config.pre_merge {
            // Before the merge, Undo writes back every object the batch named, even one the
            // caller could not change (the content must still be unchanged).
            writes.extend(expects.iter().flatten().filter_map(|e| e.target.clone()));
        }
        self.check_store(&writes, &expects, &renames);
        self.check_material(who, &expects, &results, &renames);
    }

    /// Whether an undo failed the way main's Undo does (see `batch`): the earlier items are
    /// answered Success, and an item named a destroyed object one of whose names a live
    /// object now has.
    fn undo_failed_on_a_reused_name(
        &self,
        expects: &[Option<Expect>],
        results: &[wire::ItemResult],
    ) -> bool {
        let all_success = results.iter().zip(expects).all(|(r, e)| {
            e.as_ref().is_none_or(|e| e.outcome != Outcome::Ok)
                || r.status == result_status::SUCCESS
        });
        let reused = expects
            .iter()
            .flatten()
            .filter_map(|e| e.target.as_ref())
            .any(|t| {
                self.world.objects.get(t).is_some_and(|o| {
                    o.destroyed() && o.names.iter().any(|n| !self.world.live_named(n).is_empty())
                })
            });
        all_success && reused
    }

    /// Checks each answered item against the model; returns (provisional id, real id) of
    /// the objects the batch created.
    fn compare_items(
        &mut self,
        expects: &[Option<Expect>],
        results: &[wire::ItemResult],
        undone: bool,
    ) -> Vec<(String, String)> {
        let mut renames = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let e = expects[i].as_ref().expect("answered items were predicted");
            self.stats.count(e.outcome);
            let undone_ok = undone && e.outcome == Outcome::Ok;
            self.check_outcome(i, e.outcome, r, Some(undone_ok));
            if e.outcome != Outcome::Ok {
                continue;
            }
            let payload = r
                .payload
                .clone()
                .unwrap_or_else(|| Ttlv::structure(Tag::RESPONSE_PAYLOAD, vec![]));
            if let Some(prov) = &e.created {
                let real = crate::support::kmip::uid_of(&payload);
                renames.push((prov.clone(), real));
            }
            // An undone item's answer keeps only its Unique Identifier: nothing else to read.
            if undone && !self.config.pre_merge {
                continue;
            }
            if let Some(want) = &e.located {
                let want: BTreeSet<String> = want.iter().map(|u| rename(u, &renames)).collect();
                let got: BTreeSet<String> = uids_of(&payload).into_iter().collect();
                if want != got {
                    self.fail(format!(
                        "item {i}: Locate returned {got:?}, the model allows exactly {want:?}"
                    ));
                }
            }
            if let Some(policy) = &e.policy {
                let got = parse_key_policy(&payload)
                    .unwrap_or_else(|| self.fail(format!("item {i}: unreadable key policy")));
                let same = got.owner == policy.owner
                    && got.group == policy.group
                    && got.mode == policy.mode.as_str();
                if !same {
                    self.fail(format!(
                        "item {i}: Get Key Policy returned {got:?}, the model has {policy:?}"
                    ));
                }
            }
        }
        renames
    }

    /// Compares one answered item's status with the expected outcome class.
    fn check_outcome(
        &mut self,
        i: usize,
        want: Outcome,
        r: &wire::ItemResult,
        undone: Option<bool>,
    ) {
        let ok_status = if undone == Some(true) {
            result_status::OPERATION_UNDONE
        } else {
            result_status::SUCCESS
        };
        let agrees = match want {
            Outcome::Ok => r.status == ok_status,
            Outcome::Denied => {
                r.status == result_status::OPERATION_FAILED
                    && r.reason == Some(rr::PERMISSION_DENIED)
            }
            Outcome::Hidden | Outcome::Missing => {
                r.status == result_status::OPERATION_FAILED
                    && r.reason == Some(rr::OBJECT_NOT_FOUND)
            }
            Outcome::Fail => {
                r.status == result_status::OPERATION_FAILED
                    && !matches!(r.reason, Some(rr::PERMISSION_DENIED | rr::OBJECT_NOT_FOUND))
            }
        };
        if !agrees {
            self.fail(format!(
                "item {i}: the model expects {want:?}{}, the server answered status {} reason {:?} {:?}",
                if undone == Some(true) { " (undone)" } else { "" },
                r.status,
                r.reason,
                r.message
            ));
        }
        if matches!(want, Outcome::Hidden | Outcome::Missing) {
            // A refusal with hidden existence must read exactly like a missing object.
            match &self.not_found_message {
                None => self.not_found_message = Some(r.message.clone()),
                Some(m) if *m == r.message => {}
                Some(m) => self.fail(format!(
                    "item {i}: Object Not Found reads {:?} here but {m:?} elsewhere: it tells \
                     a hidden object from a missing one",
                    r.message
                )),
            }
        }
    }

    /// Gives the model's new objects their real identifiers (or, for an undone batch,
    /// remembers them as identifiers that must stay missing).
    fn bind_new_objects(
        &mut self,
        renames: &[(String, String)],
        mut touched: BTreeSet<String>,
        undone: bool,
    ) {
        for (prov, real) in renames {
            if undone {
                self.dead.push(real.clone());
                continue;
            }
            self.world.rename(prov, real, &touched);
            touched.remove(prov);
            touched.insert(real.clone());
        }
    }

    /// The objects the batch's allowed items may have written (an undone batch writes them
    /// back).
    fn allowed_writes(
        &self,
        expects: &[Option<Expect>],
        renames: &[(String, String)],
    ) -> BTreeSet<String> {
        expects
            .iter()
            .flatten()
            .flat_map(|e| e.writes.iter())
            .map(|u| rename(u, renames))
            .collect()
    }

    /// The change log names only objects allowed items wrote, and those objects (and every
    /// object the batch named) are stored as the model has them.
    fn check_store(
        &mut self,
        writes: &BTreeSet<String>,
        expects: &[Option<Expect>],
        renames: &[(String, String)],
    ) {
        let written = self.log.since();
        for uid in &written.objects {
            if !writes.contains(uid) {
                let owner = self.world.objects.get(uid).map(|o| o.policy.owner.clone());
                self.fail(format!(
                    "object {uid} (owner {owner:?}) was written, but no item the model allows writes it"
                ));
            }
        }
        if let Some(rec) = written.records.first() {
            self.fail(format!("record {rec:?} changed by a batch"));
        }
        let mut check: BTreeSet<String> = writes.clone();
        check.extend(written.objects.iter().cloned());
        check.extend(
            expects
                .iter()
                .flatten()
                .filter_map(|e| e.target.as_ref())
                .map(|u| rename(u, renames)),
        );
        check.extend(renames.iter().map(|(_, real)| real.clone()));
        check.extend(self.dead.iter().rev().take(renames.len()).cloned());
        for uid in check {
            self.compare_object(&uid);
        }
    }

    /// The stored object `uid` is the model's (or both have none).
    fn compare_object(&mut self, uid: &str) {
        let seen = observe::read(&self.server, uid);
        let model = self.world.objects.get(uid);
        match (seen, model) {
            (None, None) => {}
            (Some(s), None) => self.fail(format!(
                "object {uid} exists on the server (owner {}, state {}) but not in the model",
                s.owner, s.state
            )),
            (None, Some(_)) => self.fail(format!("object {uid} is gone from the server")),
            (Some(s), Some(m)) => {
                let want = Seen::of_model(m);
                if s.metadata() != want {
                    self.fail(format!(
                        "object {uid}: stored {:?}\n  model {want:?}",
                        s.metadata()
                    ));
                }
                let destroyed = m.destroyed();
                if destroyed == s.material.is_some() {
                    self.fail(format!(
                        "object {uid}: destroyed {destroyed} but material present {}",
                        s.material.is_some()
                    ));
                }
                self.check_digest(uid, &s);
                if let Some(material) = s.material {
                    self.learn_material(uid, material);
                }
            }
        }
    }

    fn check_digest(&self, uid: &str, s: &Seen) {
        if let (Some(material), Some(digest)) = (&s.material, &s.digest) {
            if akm::crypto::sha256(material) != *digest {
                self.fail(format!("object {uid}: material does not match its Digest"));
            }
        }
    }

    fn learn_material(&mut self, uid: &str, material: Vec<u8>) {
        let known = self.world.objects.get(uid).and_then(|o| o.material.clone());
        match known {
            Some(m) if m != material => self.fail(format!("object {uid}: key material changed")),
            Some(_) => {}
            None => {
                if let Some(o) = self.world.objects.get_mut(uid) {
                    o.material = Some(material.clone());
                }
            }
        }
        self.materials
            .entry(material)
            .or_default()
            .insert(uid.to_owned());
    }

    /// Key material appears in an answer only as the plaintext of a plain Get the model
    /// allowed, of that very object, and equal to the stored material; never in an undone
    /// item, whose answer keeps only its Unique Identifier.
    fn check_material(
        &mut self,
        who: usize,
        expects: &[Option<Expect>],
        results: &[wire::ItemResult],
        renames: &[(String, String)],
    ) {
        for (i, r) in results.iter().enumerate() {
            let Some(payload) = &r.payload else { continue };
            let e = expects[i].as_ref().expect("answered items were predicted");
            let target = e.target.as_ref().map(|t| rename(t, renames));
            let undone = r.status == akm::kmip::enums::result_status::OPERATION_UNDONE
                && !self.config.pre_merge;
            let mut found = Vec::new();
            wire::byte_strings(payload, &mut found);
            let mut served = false;
            for bytes in found {
                let Some(owners) = self.materials.get(&bytes) else {
                    continue;
                };
                let allowed = e.outcome == Outcome::Ok
                    && e.plain_get
                    && !undone
                    && target.as_ref().is_some_and(|t| owners.contains(t));
                if !allowed {
                    self.fail(format!(
                        "item {i}: the key material of {owners:?} was returned to {}, which the model forbids",
                        IDENTITIES[who].cn
                    ));
                }
                served = true;
            }
            let knows = target
                .as_ref()
                .and_then(|t| self.world.objects.get(t))
                .is_some_and(|o| o.material.is_some());
            if e.outcome == Outcome::Ok && e.plain_get && knows && !served && !undone {
                self.fail(format!(
                    "item {i}: Get did not return the object's material"
                ));
            }
        }
    }

    /// Compares the next few objects in creation order (so every object is compared again
    /// now and then, at a constant cost per step).
    fn rolling_check(&mut self) {
        for _ in 0..ROLLING_CHECK {
            if self.world.order.is_empty() {
                return;
            }
            self.rolling = (self.rolling + 1) % self.world.order.len();
            let uid = self.world.order[self.rolling].clone();
            self.compare_object(&uid);
        }
    }

    /// Compares every object, and the number of objects in the file.
    fn sweep(&mut self) {
        let uids: Vec<String> = self.world.objects.keys().cloned().collect();
        for uid in &uids {
            self.compare_object(uid);
        }
        for uid in self.dead.clone() {
            self.compare_object(&uid);
        }
        self.count_objects();
    }

    /// The file holds as many objects as the model.
    fn count_objects(&mut self) {
        let stored = self.log.object_count();
        if stored != self.world.objects.len() {
            self.fail(format!(
                "the database holds {stored} objects, the model {}",
                self.world.objects.len()
            ));
        }
    }
}

/// Account names Set and Delete Account steps use.
fn account_name(user: bool, i: u8) -> String {
    if user {
        IDENTITIES[usize::from(i) % IDENTITIES.len()].cn.to_owned()
    } else {
        ["team", "other", "readers", ADMIN_GROUP, "ghost"][usize::from(i) % 5].to_owned()
    }
}

fn kind_name(user: bool) -> &'static str {
    if user {
        "user"
    } else {
        "group"
    }
}

/// Operation lists Set Account steps grant.
const OPS_PRESETS: [&str; 10] = [
    "all",
    "all",
    "all",
    "read",
    "read,activate,revoke",
    "create,register,get,locate",
    "get-attributes,add-attribute,modify-attribute,delete-attribute",
    "",
    "destroy,re-key,derive-key,get,locate",
    "create,get,activate,revoke,destroy,re-key",
];

fn rename(uid: &str, renames: &[(String, String)]) -> String {
    renames
        .iter()
        .find(|(p, _)| p == uid)
        .map_or_else(|| uid.to_owned(), |(_, r)| r.clone())
}

fn outcome_class(r: &wire::ItemResult) -> Outcome {
    match (r.succeeded(), r.reason) {
        (true, _) => Outcome::Ok,
        (false, Some(rr::PERMISSION_DENIED)) => Outcome::Denied,
        (false, Some(rr::OBJECT_NOT_FOUND)) => Outcome::Missing,
        _ => Outcome::Fail,
    }
}

fn describe(results: &[wire::ItemResult]) -> String {
    results
        .iter()
        .map(|r| format!("status {} reason {:?} {:?}", r.status, r.reason, r.message))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn run_profile(profile: &Profile) {
    let config = Config::from_env();
    let started = std::time::Instant::now();
    let mut run = Run::start(profile.clone(), config.clone()).await;
    run.setup().await;
    let mut steps = Steps::new(config.seed ^ profile.name.len() as u64);
    for n in 1..=config.steps {
        let spec = steps.next_step();
        run.step(spec).await;
        if n % 10_000 == 0 {
            println!(
                "access model [{}]: {n} steps, {} objects, {:.0} s",
                profile.name,
                run.world.objects.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    run.sweep();
    let s = &run.stats;
    println!(
        "access model [{}] seed {}: {} steps, {} batches ({} undone), {} items: {} allowed, \
         {} denied, {} hidden, {} missing, {} failed; {} objects; {:.1} s",
        profile.name,
        config.seed,
        s.steps,
        s.batches,
        s.undone_batches,
        s.items,
        s.allowed,
        s.denied,
        s.hidden,
        s.missing,
        s.failed,
        run.world.objects.len(),
        started.elapsed().as_secs_f64()
    );
    let kinds: Vec<String> = s
        .per_kind
        .iter()
        .map(|(k, [ok, denied, missing, failed])| format!("{k} {ok}/{denied}/{missing}/{failed}"))
        .collect();
    println!(
        "  allowed/denied/missing/failed per item kind: {}",
        kinds.join(", ")
    );
    run.server.stop().await;
}

#[tokio::test]
async fn random_batches_stay_within_the_model_open_profile() {
    run_profile(&PROFILES[0]).await;
}

#[tokio::test]
async fn random_batches_stay_within_the_model_strict_profile() {
    run_profile(&PROFILES[1]).await;
}
