//! A synthetic history of agents at work, written straight to a store's log as the coordinator
//! would have recorded it (without running the commands), fast enough for millions of records:
//! for the audit index tests and the audit benchmark (`maos-bench-audit`).
//!
//! A planner creates tasks; workers claim them, heartbeat, add outputs, complete them, fail an
//! attempt now and then, and now and then let a lease lapse, after which another worker
//! notices and reclaims the task. Context keys are set (some privately) and application events
//! emitted in between. Up to [`Workload::OPEN`] tasks are in flight at once, so the records of
//! one task are spread over the log as in a real store.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use maos_coord::model::{
    AgentId, ContextKey, Event, Priority, Recorded, Task, TaskId, TaskStatus, Visibility, EVENT_RECORD_KIND,
};
use maos_coord::{Coordinator, Durability, Log, ManualClock, RecordKind, Timestamp};
use serde_json::json;

/// The history's generator. Deterministic for a seed.
pub struct Workload {
    rng: u64,
    /// How many workers there are (`w0`, `w1`, ...).
    pub workers: usize,
    /// How many context keys there are (`ctx/0`, ...).
    pub keys: usize,
    /// Tasks created so far (`task-00000000`, ...).
    pub tasks: u64,
    open: Vec<Open>,
    started: bool,
    clock: ManualClock,
}

/// A task in flight: its id and where it stands.
struct Open {
    id: TaskId,
    holder: Option<usize>,
    steps: u32,
}

impl Workload {
    /// Tasks in flight at once.
    pub const OPEN: usize = 256;

    /// A history with `workers` workers and `keys` context keys, timed by `clock` (which it
    /// moves on a little after every event).
    pub fn new(seed: u64, workers: usize, keys: usize, clock: ManualClock) -> Workload {
        Workload { rng: seed | 1, workers, keys, tasks: 0, open: Vec::new(), started: false, clock }
    }

    /// The planner's id.
    pub fn planner() -> AgentId {
        AgentId::new("planner").unwrap()
    }

    /// Worker `i`'s id.
    pub fn worker(i: usize) -> AgentId {
        AgentId::new(format!("w{i}")).unwrap()
    }

    /// Task `n`'s id.
    pub fn task(n: u64) -> TaskId {
        TaskId::new(format!("task-{n:08}")).unwrap()
    }

    /// Context key `i`.
    pub fn key(i: usize) -> ContextKey {
        ContextKey::new(format!("ctx/{i}")).unwrap()
    }

    /// The clock that times its events (and should time the log's records).
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn now(&self) -> Timestamp {
        maos_coord::Clock::now(&self.clock)
    }

    /// The next `n` events (the first ones register the agents).
    pub fn events(&mut self, n: usize) -> Vec<Recorded> {
        let mut out = Vec::with_capacity(n);
        if !self.started {
            self.started = true;
            for agent in std::iter::once(Workload::planner()).chain((0..self.workers).map(Workload::worker)) {
                let event = Event::AgentStarted {
                    agent: agent.clone(),
                    role: "worker".into(),
                    capabilities: vec!["rust".into()],
                    heartbeat_timeout_ms: 60_000,
                };
                out.push(Recorded { actor: agent, event });
            }
        }
        while out.len() < n {
            let step = Duration::from_micros(200 + self.next() % 2000);
            self.clock.advance(step);
            let recorded = self.one();
            out.push(recorded);
        }
        out
    }

    fn one(&mut self) -> Recorded {
        // Per 100 events: 8 context updates, 3 application events, 4 heartbeats, about 20
        // tasks created (fewer once `OPEN` are in flight) and the rest steps of tasks.
        match self.below(100) {
            0..=7 => self.context(),
            8..=10 => self.custom(),
            11..=14 => {
                let worker = Workload::worker(self.below(self.workers));
                let lease_until = self.now().plus(Duration::from_secs(300));
                Recorded {
                    actor: worker.clone(),
                    event: Event::AgentHeartbeat { agent: worker, lease_until },
                }
            }
            15..=34 if self.open.len() < Workload::OPEN => self.create(),
            _ if self.open.is_empty() => self.create(),
            _ => self.advance_task(),
        }
    }

    fn create(&mut self) -> Recorded {
        let id = Workload::task(self.tasks);
        self.tasks += 1;
        self.open.push(Open { id: id.clone(), holder: None, steps: 0 });
        let now = self.now();
        let task = Task {
            id,
            name: format!("build part {}", self.tasks),
            description: "compile and test one part".into(),
            priority: [Priority::Low, Priority::Normal, Priority::High][self.below(3)],
            required_capabilities: vec!["rust".into()],
            status: TaskStatus::Pending,
            assigned_to: None,
            outputs: Vec::new(),
            metadata: json!({"part": self.tasks}),
            created_at: now,
            updated_at: now,
            attempts: 0,
            max_attempts: 3,
            failures: 0,
            lease_until: None,
            created_by: Workload::planner(),
            idempotency_key: None,
            created_lsn: 0,
        };
        Recorded { actor: Workload::planner(), event: Event::TaskCreated { task: Box::new(task) } }
    }

    fn context(&mut self) -> Recorded {
        let actor = Workload::worker(self.below(self.workers));
        let visibility = if self.below(4) == 0 { Visibility::Private } else { Visibility::Shared };
        let event = Event::ContextUpdated {
            key: Workload::key(self.below(self.keys)),
            value: json!({"note": "progress", "n": self.next() % 1000}),
            visibility,
            expires_at: None,
            metadata: BTreeMap::new(),
            version: 1 + self.next() % 50,
        };
        Recorded { actor, event }
    }

    fn custom(&mut self) -> Recorded {
        let actor = Workload::worker(self.below(self.workers));
        let event = Event::Custom {
            event_type: ["build_done", "test_run", "deploy"][self.below(3)].into(),
            data: json!({"ok": self.below(2) == 0}),
            metadata: BTreeMap::new(),
        };
        Recorded { actor, event }
    }

    /// The next step of a task in flight: claimed, then an output, then completed (or an
    /// attempt failed, or a lease lapsed, noticed by another worker who reclaims it).
    fn advance_task(&mut self) -> Recorded {
        let at = self.below(self.open.len());
        let worker = self.below(self.workers);
        let lease_until = self.now().plus(Duration::from_secs(300));
        let roll = self.below(100);
        let Some(open) = self.open.get_mut(at) else { unreachable!("an index below the length") };
        open.steps += 1;
        let task = open.id.clone();
        let (actor, event, done) = match open.holder {
            None => {
                open.holder = Some(worker);
                let agent = Workload::worker(worker);
                (agent.clone(), Event::TaskClaimed { task, agent, lease_until }, false)
            }
            Some(holder) if roll < 8 && open.steps < 8 => {
                // The lease ran out; another worker noticed (and will reclaim it).
                open.holder = None;
                let noticed = Workload::worker((holder + 1) % self.workers);
                (noticed, Event::TaskLeaseLapsed { task, agent: Workload::worker(holder) }, false)
            }
            Some(holder) if roll < 12 && open.steps < 8 => {
                open.holder = None;
                (
                    Workload::worker(holder),
                    Event::TaskAttemptFailed { task, error: "tests failed".into() },
                    false,
                )
            }
            Some(holder) if roll < 70 && open.steps < 8 => {
                let output = format!("target/{}.o", task.as_str());
                (Workload::worker(holder), Event::TaskOutputAdded { task, output }, false)
            }
            Some(holder) => {
                let outputs = vec![format!("target/{}", task.as_str())];
                (Workload::worker(holder), Event::TaskCompleted { task, outputs }, true)
            }
        };
        if done {
            self.open.swap_remove(at);
        }
        Recorded { actor, event }
    }
}

/// A new store at `root` (made by a coordinator, then closed) and its log, opened raw with
/// segments of `segment_size` bytes and the clock of a new [`Workload`] (seed `seed`, 16
/// workers, `keys` context keys) so that the workload's records can be appended
/// ([`Workload::append`]).
pub fn new_store(root: &Path, seed: u64, keys: usize, segment_size: u64) -> (Log, Workload) {
    let options = Coordinator::options(root).durability(Durability::Buffered).segment_size(segment_size);
    options.open().unwrap().close().unwrap();
    let clock = ManualClock::starting_now();
    let max_record = u32::try_from(segment_size / 2).unwrap_or(u32::MAX).min(1 << 20);
    let log = Log::options(root.join(".maos/coordination/log"))
        .durability(Durability::Buffered)
        .segment_size(segment_size)
        .max_record_size(max_record)
        .clock(clock.shared())
        .open()
        .unwrap();
    (log, Workload::new(seed, 16, keys, clock))
}

impl Workload {
    /// Appends `records` records in batches of `batch` (every record of a batch has its time).
    pub fn append(&mut self, log: &Log, records: u64, batch: usize) {
        let kind = RecordKind::new(EVENT_RECORD_KIND).unwrap();
        let mut written = 0u64;
        while written < records {
            let n = (records - written).min(batch as u64) as usize;
            let payloads: Vec<Vec<u8>> = self.events(n).iter().map(|r| r.encode().unwrap()).collect();
            written += payloads.len() as u64;
            log.append_batch(kind, &payloads).unwrap();
        }
    }
}

/// A new store at `root` holding `records` records of a [`Workload`] (seed `seed`, 2,000 keys),
/// appended in batches of `batch`, then synced. Returns the workload (how many tasks it
/// created).
pub fn write_store(root: &Path, records: u64, seed: u64, batch: usize) -> Workload {
    let (log, mut workload) = new_store(root, seed, 2000, 64 << 20);
    workload.append(&log, records, batch);
    log.sync().unwrap();
    log.close().unwrap();
    workload
}
