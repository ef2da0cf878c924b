//! The group-commit worker shared by the store writer and the audit journal: one thread, one
//! bounded queue. Callers submit jobs and block; the thread takes every job waiting (up to a
//! cap) as one group, has a [`Backend`] apply each job and then make the whole group durable
//! with one commit, and only then answers each caller. A job that panics fails alone (the
//! backend undoes it); a commit that panics fails its group alone; either way the thread goes
//! on serving. Closing the queue lets the thread finish every job already queued, then stop.
//!
//! What "apply" and "durable" mean (a SQLite transaction, an fdatasync'd append) is the
//! backend's; this module owns only the queue, the grouping, the answers and the thread. It is
//! a leaf: it names nothing else in akm.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

/// What the worker drives: applies jobs to an open group and makes the group durable.
///
/// For each group the worker calls [`apply`](Backend::apply) once per job, in arrival order
/// (or [`apply_panicked`](Backend::apply_panicked) for a job whose `apply` panicked), then
/// [`commit`](Backend::commit) once with what each job left, and sends each caller its reply
/// only after `commit` returns.
pub trait Backend: Send + 'static {
    /// What callers submit.
    type Job: Send + 'static;
    /// What one applied job left for the commit to account for.
    type Applied;
    /// What each caller is answered, after the commit.
    type Reply: Send + 'static;

    /// Whether `job` must be committed in a group of its own, after every job queued before it
    /// and before any queued after it (a barrier: a file reopen, a turn at a lock).
    fn alone(_job: &Self::Job) -> bool {
        false
    }

    /// Applies one job to the open group; nothing is durable yet.
    fn apply(&mut self, job: Self::Job) -> Self::Applied;

    /// Called in place of `apply`'s result when it panicked: undo whatever that job did to the
    /// open group (so the others commit without it) and say that it failed.
    fn apply_panicked(&mut self) -> Self::Applied;

    /// Makes the group durable: one reply per applied job, in order. A reply missing from the
    /// end is taken as [`refused`](Backend::refused).
    fn commit(&mut self, applied: Vec<Self::Applied>) -> Vec<Self::Reply>;

    /// Called after a group's `commit` panicked: leave a state the next group can start from
    /// (nothing of the failed group may be taken as durable).
    fn abandon(&mut self) {}

    /// The reply to each job of a group whose commit panicked.
    fn refused(&self) -> Self::Reply;

    /// When to call [`tick`](Backend::tick) if no job comes first (`None`: wait for a job).
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// Timed work (a periodic record, a deferred sync): called when `wake_at` has passed and
    /// after every group.
    fn tick(&mut self) {}

    /// Called once on the worker thread after the queue is closed and every queued job has
    /// been committed.
    fn shutdown(&mut self) {}
}

/// The queue length and group size.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Jobs that may wait in the queue; submitters block beyond it.
    pub queue: usize,
    /// The most jobs committed together.
    pub max_group: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            queue: 4096,
            max_group: 256,
        }
    }
}

/// The worker has stopped: the job was not taken, or its answer never came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// A submitted job's answer, to wait for.
pub struct Pending<R>(Receiver<R>);

impl<R> Pending<R> {
    /// Blocks until the job's group is committed and returns its reply.
    pub fn wait(self) -> Result<R, Stopped> {
        self.0.recv().map_err(|_| Stopped)
    }
}

/// A job in the queue with where its answer goes.
struct Queued<J, R> {
    job: J,
    reply: SyncSender<R>,
}

/// A job of backend `B` in the queue.
type QueuedJob<B> = Queued<<B as Backend>::Job, <B as Backend>::Reply>;

/// A handle to the worker thread: submit jobs, stop it.
pub struct GroupCommit<B: Backend> {
    sender: Mutex<Option<SyncSender<QueuedJob<B>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<B: Backend> GroupCommit<B> {
    /// Starts the worker thread `name`, which owns `backend` until it stops.
    pub fn start(name: &str, limits: Limits, backend: B) -> std::io::Result<GroupCommit<B>> {
        let (sender, queue) = mpsc::sync_channel(limits.queue.max(1));
        let max_group = limits.max_group.max(1);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(backend, &queue, max_group))?;
        Ok(GroupCommit {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `job` (blocking while the queue is full) and returns its pending answer.
    pub fn submit(&self, job: B::Job) -> Result<Pending<B::Reply>, Stopped> {
        let (reply, answer) = mpsc::sync_channel(1);
        // Cloned under the lock and used outside it, so submitters never wait on each other.
        let sender = self.sender.lock().ok().and_then(|s| s.clone());
        sender
            .ok_or(Stopped)?
            .send(Queued { job, reply })
            .map_err(|_| Stopped)?;
        Ok(Pending(answer))
    }

    /// Queues `job` and waits until its group is durable: its reply.
    pub fn call(&self, job: B::Job) -> Result<B::Reply, Stopped> {
        self.submit(job)?.wait()
    }

    /// Closes the queue, lets the thread commit every job already queued and run the
    /// backend's shutdown, and waits for it. Later submits fail with [`Stopped`].
    pub fn stop(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl<B: Backend> Drop for GroupCommit<B> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the thread does next.
enum Next<Q> {
    Job(Q),
    Tick,
    Closed,
}

fn run<B: Backend>(mut backend: B, queue: &Receiver<QueuedJob<B>>, max_group: usize) {
    // A job that must go alone, met while collecting a group: it starts the next one.
    let mut held = None;
    loop {
        let first = match held.take().map_or_else(|| next(&backend, queue), Next::Job) {
            Next::Job(q) => q,
            Next::Tick => {
                contained("tick", || backend.tick());
                continue;
            }
            // Every sender is gone and the queue is empty: mpsc hands over what was queued
            // before it reports the disconnection, so nothing submitted is lost.
            Next::Closed => break,
        };
        let group = collect::<B>(first, queue, max_group, &mut held);
        commit_group(&mut backend, group);
        contained("tick", || backend.tick());
    }
    contained("shutdown", || backend.shutdown());
}

/// Waits for the next job, or until the backend's wake time.
fn next<B: Backend, Q>(backend: &B, queue: &Receiver<Q>) -> Next<Q> {
    match backend.wake_at() {
        None => queue.recv().map_or(Next::Closed, Next::Job),
        Some(at) => match queue.recv_timeout(at.saturating_duration_since(Instant::now())) {
            Ok(q) => Next::Job(q),
            Err(RecvTimeoutError::Timeout) => Next::Tick,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        },
    }
}

/// `first` and whatever else is queued, up to `max_group`; a job that must go alone ends the
/// group and is kept in `held`.
fn collect<B: Backend>(
    first: QueuedJob<B>,
    queue: &Receiver<QueuedJob<B>>,
    max_group: usize,
    held: &mut Option<QueuedJob<B>>,
) -> Vec<QueuedJob<B>> {
    let alone = B::alone(&first.job);
    let mut group = vec![first];
    while !alone && group.len() < max_group {
        match queue.try_recv() {
            Ok(q) if B::alone(&q.job) => {
                *held = Some(q);
                break;
            }
            Ok(q) => group.push(q),
            Err(_) => break,
        }
    }
    group
}

/// Applies and commits one group, then answers each of its callers.
fn commit_group<B: Backend>(backend: &mut B, group: Vec<QueuedJob<B>>) {
    let (jobs, replies): (Vec<B::Job>, Vec<SyncSender<B::Reply>>) =
        group.into_iter().map(|q| (q.job, q.reply)).unzip();
    let committed = catch_unwind(AssertUnwindSafe(|| {
        let applied = jobs
            .into_iter()
            .map(|job| apply_contained(&mut *backend, job))
            .collect();
        backend.commit(applied)
    }));
    let answers = committed.unwrap_or_else(|_| {
        tracing::error!("group commit: a commit panicked; every job in its group was refused");
        contained("abandon", || backend.abandon());
        Vec::new()
    });
    let mut answers = answers.into_iter();
    for reply in replies {
        let answer = answers.next().unwrap_or_else(|| backend.refused());
        // A caller that stopped waiting needs no answer.
        let _ = reply.send(answer);
    }
}

fn apply_contained<B: Backend>(backend: &mut B, job: B::Job) -> B::Applied {
    match catch_unwind(AssertUnwindSafe(|| backend.apply(job))) {
        Ok(applied) => applied,
        Err(_) => backend.apply_panicked(),
    }
}

/// Runs `f`, logging instead of unwinding if it panics: the worker thread must outlive a bug
/// in one of its backend's hooks.
fn contained(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!(hook = what, "group commit: the backend panicked; going on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    /// A backend that records what it applied and what it made "durable", in memory.
    #[derive(Default)]
    struct Log {
        /// Jobs applied to the open group.
        open: Vec<u32>,
        /// Every committed group, in order.
        groups: Arc<Mutex<Vec<Vec<u32>>>>,
        /// Jobs committed so far (readable from the test).
        durable: Arc<Mutex<Vec<u32>>>,
        /// Set once `shutdown` has run.
        shut: Arc<Mutex<bool>>,
        /// Holds the first commit until the test releases it.
        gate: Option<Arc<Barrier>>,
        ticks: Arc<Mutex<u32>>,
        wake_every: Option<Duration>,
    }

    /// What a test job asks the backend to do.
    #[derive(Clone, Copy)]
    enum Job {
        Add(u32),
        Panic,
        PanicInCommit,
        Barrier(u32),
    }

    impl Backend for Log {
        type Job = Job;
        type Applied = Option<u32>;
        type Reply = Result<Vec<u32>, &'static str>;

        fn alone(job: &Job) -> bool {
            matches!(job, Job::Barrier(_))
        }

        fn apply(&mut self, job: Job) -> Option<u32> {
            match job {
                Job::Add(n) | Job::Barrier(n) => {
                    self.open.push(n);
                    Some(n)
                }
                Job::Panic => {
                    // Half-applied, then a bug: apply_panicked must take it back.
                    self.open.push(u32::MAX);
                    panic!("a bug in one job")
                }
                Job::PanicInCommit => {
                    self.open.push(0);
                    Some(0)
                }
            }
        }

        fn apply_panicked(&mut self) -> Option<u32> {
            self.open.retain(|&n| n != u32::MAX);
            None
        }

        fn commit(&mut self, applied: Vec<Option<u32>>) -> Vec<Self::Reply> {
            if let Some(gate) = self.gate.take() {
                gate.wait();
                gate.wait();
            }
            let group = std::mem::take(&mut self.open);
            if group.contains(&0) {
                panic!("a bug in the commit");
            }
            self.durable.lock().unwrap().extend(&group);
            self.groups.lock().unwrap().push(group.clone());
            applied
                .into_iter()
                .map(|a| a.map(|_| group.clone()).ok_or("job failed"))
                .collect()
        }

        fn abandon(&mut self) {
            self.open.clear();
        }

        fn refused(&self) -> Self::Reply {
            Err("group refused")
        }

        fn wake_at(&self) -> Option<Instant> {
            self.wake_every.map(|d| Instant::now() + d)
        }

        fn tick(&mut self) {
            *self.ticks.lock().unwrap() += 1;
        }

        fn shutdown(&mut self) {
            *self.shut.lock().unwrap() = true;
        }
    }

    fn start(log: Log) -> Arc<GroupCommit<Log>> {
        Arc::new(GroupCommit::start("test-group-commit", Limits::default(), log).unwrap())
    }

    #[test]
    fn jobs_queued_while_a_commit_runs_are_committed_together_and_answered_after_it() {
        let gate = Arc::new(Barrier::new(2));
        let log = Log {
            gate: Some(gate.clone()),
            ..Log::default()
        };
        let (groups, durable) = (log.groups.clone(), log.durable.clone());
        let worker = start(log);
        let first = worker.submit(Job::Add(1)).unwrap();
        // The first commit is now held: everything submitted meanwhile queues up.
        gate.wait();
        let pending: Vec<_> = (2..=50)
            .map(|n| worker.submit(Job::Add(n)).unwrap())
            .collect();
        assert!(durable.lock().unwrap().is_empty(), "nothing is durable yet");
        gate.wait();
        assert_eq!(first.wait().unwrap(), Ok(vec![1]));
        for (n, p) in (2..=50).zip(pending) {
            let group = p.wait().unwrap().unwrap();
            // Each answer comes after its own job is durable.
            assert!(durable.lock().unwrap().contains(&n));
            assert!(group.contains(&n));
        }
        let groups = groups.lock().unwrap().clone();
        assert_eq!(groups, vec![vec![1], (2..=50).collect::<Vec<_>>()]);
    }

    #[test]
    fn groups_are_capped_and_keep_arrival_order_under_load() {
        let gate = Arc::new(Barrier::new(2));
        let log = Log {
            gate: Some(gate.clone()),
            ..Log::default()
        };
        let groups = log.groups.clone();
        let limits = Limits {
            queue: 64,
            max_group: 10,
        };
        let worker = GroupCommit::start("test-group-commit", limits, log).unwrap();
        let first = worker.submit(Job::Add(1000)).unwrap();
        gate.wait();
        let pending: Vec<_> = (1..=25)
            .map(|n| worker.submit(Job::Add(n)).unwrap())
            .collect();
        gate.wait();
        first.wait().unwrap().unwrap();
        for p in pending {
            p.wait().unwrap().unwrap();
        }
        let groups = groups.lock().unwrap().clone();
        assert_eq!(groups[0], vec![1000]);
        let sizes: Vec<usize> = groups[1..].iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let order: Vec<u32> = groups[1..].concat();
        assert_eq!(order, (1..=25).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_job_fails_alone_and_the_worker_goes_on() {
        let gate = Arc::new(Barrier::new(2));
        let log = Log {
            gate: Some(gate.clone()),
            ..Log::default()
        };
        let groups = log.groups.clone();
        let worker = start(log);
        let first = worker.submit(Job::Add(1)).unwrap();
        gate.wait();
        // One group of three, the middle one a bug.
        let a = worker.submit(Job::Add(2)).unwrap();
        let bad = worker.submit(Job::Panic).unwrap();
        let b = worker.submit(Job::Add(3)).unwrap();
        gate.wait();
        first.wait().unwrap().unwrap();
        assert_eq!(bad.wait().unwrap(), Err("job failed"));
        assert_eq!(a.wait().unwrap(), Ok(vec![2, 3]));
        assert_eq!(b.wait().unwrap(), Ok(vec![2, 3]));
        assert_eq!(worker.call(Job::Add(4)).unwrap(), Ok(vec![4]));
        assert_eq!(groups.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_panicking_commit_fails_its_group_only() {
        let log = Log::default();
        let durable = log.durable.clone();
        let worker = start(log);
        assert_eq!(
            worker.call(Job::PanicInCommit).unwrap(),
            Err("group refused")
        );
        assert_eq!(worker.call(Job::Add(5)).unwrap(), Ok(vec![5]));
        assert_eq!(*durable.lock().unwrap(), vec![5]);
    }

    #[test]
    fn a_barrier_job_is_committed_alone_between_the_jobs_around_it() {
        let gate = Arc::new(Barrier::new(2));
        let log = Log {
            gate: Some(gate.clone()),
            ..Log::default()
        };
        let groups = log.groups.clone();
        let worker = start(log);
        let first = worker.submit(Job::Add(1)).unwrap();
        gate.wait();
        let pending = [
            Job::Add(2),
            Job::Add(3),
            Job::Barrier(4),
            Job::Add(5),
            Job::Barrier(6),
            Job::Barrier(7),
        ]
        .map(|j| worker.submit(j).unwrap());
        gate.wait();
        first.wait().unwrap().unwrap();
        for p in pending {
            p.wait().unwrap().unwrap();
        }
        let groups = groups.lock().unwrap().clone();
        assert_eq!(
            groups,
            vec![vec![1], vec![2, 3], vec![4], vec![5], vec![6], vec![7]]
        );
    }

    #[test]
    fn stop_commits_every_queued_job_then_shuts_down_and_refuses_more() {
        let gate = Arc::new(Barrier::new(2));
        let log = Log {
            gate: Some(gate.clone()),
            ..Log::default()
        };
        let (durable, shut) = (log.durable.clone(), log.shut.clone());
        let worker = start(log);
        let first = worker.submit(Job::Add(1)).unwrap();
        gate.wait();
        let pending: Vec<_> = (2..=20)
            .map(|n| worker.submit(Job::Add(n)).unwrap())
            .collect();
        let stopper = {
            let worker = worker.clone();
            std::thread::spawn(move || worker.stop())
        };
        // Let the stop close the queue while the commit is still held (a few late jobs may
        // get in first; they are committed after the others).
        for _ in 0..200 {
            if worker.submit(Job::Add(99)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        gate.wait();
        stopper.join().unwrap();
        assert!(*shut.lock().unwrap(), "shutdown ran");
        first.wait().unwrap().unwrap();
        for p in pending {
            p.wait().unwrap().unwrap();
        }
        let durable = durable.lock().unwrap().clone();
        assert_eq!(&durable[..20], (1..=20).collect::<Vec<_>>().as_slice());
        assert_eq!(worker.call(Job::Add(21)), Err(Stopped));
    }

    #[test]
    fn the_backend_is_ticked_after_each_group_and_when_idle() {
        let log = Log::default();
        let ticks = log.ticks.clone();
        let worker = start(log);
        worker.call(Job::Add(1)).unwrap().unwrap();
        // The thread ticks after the first group before it takes the second.
        worker.call(Job::Add(2)).unwrap().unwrap();
        assert!(*ticks.lock().unwrap() >= 1);

        let idle = Log {
            wake_every: Some(Duration::from_millis(5)),
            ..Log::default()
        };
        let ticks = idle.ticks.clone();
        let _worker = start(idle);
        let deadline = Instant::now() + Duration::from_secs(20);
        while *ticks.lock().unwrap() < 3 {
            assert!(Instant::now() < deadline, "no idle ticks");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
