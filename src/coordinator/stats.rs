//! The store's figures (`maos-coord stats`): what its log holds, by kind; its files; how old
//! its newest snapshot is; how far each durable cursor lags; tasks by status, how long they
//! wait and run; how long dependencies take; lapsed leases; context keys and their sizes.
//! What needs history is counted in one pass over the log; the rest comes from the projections.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::Coordinator;
use crate::error::Result;
use crate::log::DiskUsage;
use crate::model::{AgentId, DependencyStatus, Event, LockName, Recorded, TaskId, EVENT_RECORD_KIND};
use crate::projection::State;
use crate::types::{Lsn, Timestamp};

/// Every figure of [`Coordinator::stats`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStats {
    /// The time the figures are taken at: the coordinator's clock, never before the last record.
    pub now: Timestamp,
    /// The records of the log.
    pub records: RecordStats,
    /// The log's files, for a local store (`None` on another backend).
    pub files: Option<DiskUsage>,
    /// The newest snapshot.
    pub snapshot: SnapshotStats,
    /// Every durable subscription's cursor, by agent and name.
    pub cursors: Vec<CursorLag>,
    /// Tasks.
    pub tasks: TaskStats,
    /// Dependencies.
    pub dependencies: DependencyStats,
    /// Leases of claims and locks.
    pub leases: LeaseStats,
    /// Context keys.
    pub context: ContextStats,
}

/// What the log holds (from its first record: what compaction removed is not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// The first LSN the log holds.
    pub first_lsn: Lsn,
    /// The LSN the next record gets.
    pub next_lsn: Lsn,
    /// Every record below it is on stable storage.
    pub durable_lsn: Lsn,
    /// Records in the log.
    pub records: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// The bytes their frames take (headers and padding included).
    pub stored_bytes: u64,
    /// Records by kind (1: coordination events, 2: tombstones, 16 and up: raw appends).
    pub by_kind: BTreeMap<u16, u64>,
    /// Coordination events by type ([`Event::type_name`]; application events are counted
    /// together as `Custom`).
    pub by_event: BTreeMap<String, u64>,
}

/// The newest snapshot whose header checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Its LSN (the state after every record below it), if there is one.
    pub lsn: Option<Lsn>,
    /// When it was written (its header's time, by the writing process's system clock).
    pub written: Option<Timestamp>,
    /// The time of the last record it holds (the record before its LSN), while the log holds
    /// that record.
    pub last_record: Option<Timestamp>,
    /// Records appended since (the log's next LSN minus its LSN; all of them without one).
    pub records_since: u64,
    /// How old it is: from the time of its last record (or, once compaction removed that
    /// record, from when it was written) to now.
    pub age: Option<Duration>,
    /// Snapshots skipped as invalid when this coordinator opened the store.
    pub skipped_at_open: usize,
    /// Snapshots passed over since, a block of which failed its checksum when first read
    /// ([`Coordinator::damaged_snapshots`]).
    pub passed_over: usize,
}

/// A durable subscription's cursor and how far behind the tail it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorLag {
    /// The cursor as its file says.
    pub cursor: crate::subscription::CursorInfo,
    /// Records from its position to the tail (`None` for a damaged cursor).
    pub lag: Option<u64>,
}

/// Counts, the median and the longest of a set of durations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durations {
    /// How many.
    pub count: u64,
    /// The median (the mean of the two middle ones for an even count).
    pub median: Option<Duration>,
    /// The longest.
    pub max: Option<Duration>,
}

impl Durations {
    fn of(mut all: Vec<Duration>) -> Durations {
        all.sort_unstable();
        let n = all.len();
        let median = match n {
            0 => None,
            _ if n % 2 == 1 => all.get(n / 2).copied(),
            _ => all.get(n / 2 - 1).zip(all.get(n / 2)).map(|(a, b)| (*a + *b) / 2),
        };
        Durations { count: n as u64, median, max: all.last().copied() }
    }
}

/// Tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskStats {
    /// Tasks by status ([`TaskStatus::name`](crate::TaskStatus::name)), every task the state
    /// holds.
    pub by_status: BTreeMap<&'static str, u64>,
    /// Completed tasks among the finished ones (completed, failed, cancelled); `None` while
    /// none finished.
    pub completion_rate: Option<f64>,
    /// Each claim in the log: the time from when its task last became claimable as recorded
    /// (created, unblocked, released, its attempt failed, its lease lapsed, its holder gone)
    /// to the claim.
    pub pending_to_claimed: Durations,
    /// Each completion in the log: the time from the claim it completed to the completion.
    pub claimed_to_completed: Durations,
    /// Each completion in the log: the time from its task's creation to the completion.
    pub created_to_completed: Durations,
}

/// Dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyStats {
    /// Dependencies the state holds.
    pub total: u64,
    /// Each dependency registered in the log that became ready (its provider completed, or it
    /// was marked ready): the time from its registration to then (zero for one registered on
    /// a provider that had completed).
    pub ready: Durations,
    /// Each that failed (its provider failed or was cancelled): registration to failure.
    pub failed: Durations,
    /// Dependencies neither ready nor failed now.
    pub unresolved: u64,
}

/// Leases of claims and locks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseStats {
    /// Lapses recorded in the log (`TaskLeaseLapsed`).
    pub lapses_recorded: u64,
    /// Claims whose lease ended before now that no command noticed yet: task, holder, end.
    pub tasks_past_lease: Vec<(TaskId, AgentId, Timestamp)>,
    /// Locks whose lease ended before now, still recorded as held: lock, holder, end.
    pub locks_past_lease: Vec<(LockName, AgentId, Timestamp)>,
}

/// Context keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// Keys with a current value (deleted ones are not counted; expired ones are).
    pub keys: u64,
    /// Their current values' bytes, as JSON text.
    pub value_bytes: u64,
    /// Keys whose value expired.
    pub expired: u64,
    /// The largest keys, largest first (at most [`LARGEST_KEYS`]): key, bytes, version.
    pub largest: Vec<(String, u64, u64)>,
}

/// How many of the largest context keys [`ContextStats::largest`] lists.
pub const LARGEST_KEYS: usize = 10;

impl Coordinator {
    /// The store's figures: records by kind and coordination event (one pass over the log),
    /// the log's files, the newest snapshot's age in records and time, each durable cursor's
    /// lag, tasks by status with their completion rate and the medians of pending → claimed →
    /// completed, dependency resolution times, lapsed leases, context keys and sizes. Times are
    /// as recorded (record times) and `now` is the coordinator's clock, so with a
    /// [`ManualClock`](crate::ManualClock) every figure is exact.
    ///
    /// # Errors
    /// Those of every [query](Coordinator#errors); reading the log as
    /// [`LogReader::next`](crate::LogReader::next) does, and a coordination record that does
    /// not decode and that no tombstone skips is
    /// [`Error::UndecodableRecord`](crate::Error::UndecodableRecord); [`Error::Io`](crate::Error::Io)
    /// if the snapshot or cursor directory, or the log directory, cannot be read.
    pub fn stats(&self) -> Result<StoreStats> {
        let (now, mut stats) = self.read_at(|s, now| (now, from_state(s, now)))?;
        stats.records.first_lsn = self.log.first_lsn()?;
        stats.records.durable_lsn = self.log.durable_lsn();
        self.history_pass(&mut stats)?;
        let next = stats.records.next_lsn;
        let files = self.local_log().map(crate::Log::disk_usage).transpose()?;
        let newest = self.snapshots.store.newest_header()?;
        let last_record = match newest {
            Some((lsn, _)) if lsn > stats.records.first_lsn => self.record_time(Lsn(lsn.get() - 1))?,
            _ => None,
        };
        let snapshot = SnapshotStats {
            lsn: newest.map(|(lsn, _)| lsn),
            written: newest.map(|(_, written)| written),
            last_record,
            records_since: next.get().saturating_sub(newest.map_or(Lsn::FIRST, |(lsn, _)| lsn).get()),
            age: last_record.or(newest.map(|(_, written)| written)).map(|t| between(t, now)),
            skipped_at_open: self.skipped_snapshots().len(),
            passed_over: self.damaged_snapshots().len(),
        };
        let cursors = crate::subscription::cursors(&*self.blobs)?
            .into_iter()
            .map(|cursor| CursorLag {
                lag: cursor.position.map(|p| next.get().saturating_sub(p.get())),
                cursor,
            })
            .collect();
        Ok(StoreStats { now, files, snapshot, cursors, ..stats })
    }

    /// The time of the record `lsn`, if the log holds it.
    fn record_time(&self, lsn: Lsn) -> Result<Option<Timestamp>> {
        let mut reader = self.log.reader_from(lsn)?;
        Ok(reader.next()?.map(|r| r.timestamp))
    }

    /// Counts what needs history, reading the log from its first record to the state's tail.
    fn history_pass(&self, stats: &mut StoreStats) -> Result<()> {
        let tail = stats.records.next_lsn;
        let mut history = History::default();
        let mut reader = self.log.reader_from(stats.records.first_lsn)?;
        while reader.position() < tail {
            let Some(record) = reader.next()? else { break };
            let r = &mut stats.records;
            r.records += 1;
            r.payload_bytes += record.payload.len() as u64;
            r.stored_bytes += record.stored_len();
            *r.by_kind.entry(record.kind.get()).or_default() += 1;
            if record.kind.get() != EVENT_RECORD_KIND {
                continue;
            }
            if Recorded::is_custom(record.payload) {
                *r.by_event.entry("Custom".to_owned()).or_default() += 1;
                continue;
            }
            let (lsn, time) = (record.lsn, record.timestamp);
            let recorded = match self.skips.decode(&*self.log, lsn, record.payload) {
                Ok(Some(recorded)) => recorded,
                Ok(None) => continue,
                Err(e) => return Err(e.at(reader.last_location())),
            };
            *r.by_event.entry(recorded.event.type_name().to_owned()).or_default() += 1;
            history.note(&recorded.event, time);
        }
        history.finish(stats);
        Ok(())
    }
}

/// The figures the projections give.
fn from_state(s: &State, now: Timestamp) -> StoreStats {
    let mut tasks = TaskStats::default();
    for task in s.tasks.iter() {
        *tasks.by_status.entry(task.status.name()).or_default() += 1;
    }
    let count = |name: &str| tasks.by_status.get(name).copied().unwrap_or(0);
    let finished = count("Completed") + count("Failed") + count("Cancelled");
    #[allow(clippy::cast_precision_loss)] // task counts are far below 2^52
    let rate = (finished > 0).then(|| count("Completed") as f64 / finished as f64);
    tasks.completion_rate = rate;
    let deps: Vec<&crate::model::Dependency> =
        s.tasks.iter().flat_map(|t| s.deps.of_consumer(&t.id)).collect();
    let dependencies = DependencyStats {
        total: deps.len() as u64,
        unresolved: deps.iter().filter(|d| !d.status.is_settled()).count() as u64,
        ..DependencyStats::default()
    };
    let leases = LeaseStats {
        lapses_recorded: 0,
        tasks_past_lease: s
            .tasks
            .lapsed(now)
            .filter_map(|t| Some((t.id.clone(), t.assigned_to.clone()?, t.lease_until?)))
            .collect(),
        locks_past_lease: s
            .locks
            .iter()
            .filter(|(_, l)| l.lease_until < now)
            .map(|(name, l)| (name.clone(), l.holder.clone(), l.lease_until))
            .collect(),
    };
    let mut context = ContextStats::default();
    let mut sizes = Vec::new();
    for entry in s.context.with_prefix("") {
        let bytes = serde_json::to_vec(&entry.value).map_or(0, |v| v.len() as u64);
        context.keys += 1;
        context.value_bytes += bytes;
        context.expired += u64::from(entry.expires_at.is_some_and(|at| at <= now));
        sizes.push((entry.key.as_str().to_owned(), bytes, entry.version));
    }
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sizes.truncate(LARGEST_KEYS);
    context.largest = sizes;
    let records = RecordStats { next_lsn: s.next_lsn, ..RecordStats::default() };
    StoreStats {
        now,
        records,
        files: None,
        snapshot: SnapshotStats {
            lsn: None,
            written: None,
            last_record: None,
            records_since: 0,
            age: None,
            skipped_at_open: 0,
            passed_over: 0,
        },
        cursors: Vec::new(),
        tasks,
        dependencies,
        leases,
        context,
    }
}

/// The time from `from` to `to` (zero if `to` is earlier).
fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_micros(u64::try_from(to.as_micros().saturating_sub(from.as_micros())).unwrap_or(0))
}

/// What the history pass keeps: when each task became claimable, was claimed and was created;
/// when each dependency was registered; the durations found.
#[derive(Default)]
struct History {
    created: HashMap<TaskId, Timestamp>,
    claimable: HashMap<TaskId, Timestamp>,
    claimed: HashMap<TaskId, Timestamp>,
    /// Unresolved dependencies: when each was registered, and its provider.
    registered: HashMap<String, (Timestamp, TaskId)>,
    waits: Vec<Duration>,
    runs: Vec<Duration>,
    totals: Vec<Duration>,
    ready: Vec<Duration>,
    failed: Vec<Duration>,
    lapses: u64,
}

impl History {
    fn note(&mut self, event: &Event, time: Timestamp) {
        match event {
            Event::TaskCreated { task } => {
                self.created.insert(task.id.clone(), time);
                self.claimable.insert(task.id.clone(), time);
            }
            Event::TaskClaimed { task, .. } => {
                if let Some(since) = self.claimable.remove(task) {
                    self.waits.push(between(since, time));
                }
                self.claimed.insert(task.clone(), time);
            }
            Event::TaskCompleted { task, .. } => {
                if let Some(since) = self.claimed.remove(task) {
                    self.runs.push(between(since, time));
                }
                if let Some(since) = self.created.remove(task) {
                    self.totals.push(between(since, time));
                }
                self.provider_settled(task, time, true);
            }
            Event::TaskLeaseLapsed { task, .. } => {
                self.lapses += 1;
                self.back_to_pending(task, time);
            }
            Event::TaskReleased { task, .. }
            | Event::TaskUnblocked { task }
            | Event::TaskAttemptFailed { task, .. }
            | Event::TaskAbandoned { task, .. } => self.back_to_pending(task, time),
            Event::TaskBlocked { task, .. } => {
                self.claimed.remove(task);
                self.claimable.remove(task);
            }
            Event::TaskFailed { task, .. } | Event::TaskCancelled { task, .. } => {
                self.claimed.remove(task);
                self.claimable.remove(task);
                self.created.remove(task);
                self.provider_settled(task, time, false);
            }
            Event::DependencyRegistered { dependency } => match dependency.status {
                // Registered on a provider that had completed, failed or was cancelled.
                DependencyStatus::Ready => self.ready.push(Duration::ZERO),
                DependencyStatus::Failed(_) => self.failed.push(Duration::ZERO),
                DependencyStatus::Pending | DependencyStatus::InProgress => {
                    let entry = (time, dependency.provider.clone());
                    self.registered.insert(dependency.id.as_str().to_owned(), entry);
                }
            },
            Event::DependencyReady { dependency, .. } => {
                if let Some((since, _)) = self.registered.remove(dependency.as_str()) {
                    self.ready.push(between(since, time));
                }
            }
            Event::DependencyFailed { dependency, .. } => {
                if let Some((since, _)) = self.registered.remove(dependency.as_str()) {
                    self.failed.push(between(since, time));
                }
            }
            _ => {}
        }
    }

    /// The dependencies on `provider` follow it at `time`: ready if it completed, else failed
    /// (log-format.md, "Derived effects").
    fn provider_settled(&mut self, provider: &TaskId, time: Timestamp, completed: bool) {
        let settled: Vec<String> =
            self.registered.iter().filter(|(_, (_, p))| p == provider).map(|(id, _)| id.clone()).collect();
        for id in settled {
            if let Some((since, _)) = self.registered.remove(&id) {
                let into = if completed { &mut self.ready } else { &mut self.failed };
                into.push(between(since, time));
            }
        }
    }

    /// The task is claimable again from `time` (its claim, if any, ended).
    fn back_to_pending(&mut self, task: &TaskId, time: Timestamp) {
        self.claimed.remove(task);
        self.claimable.insert(task.clone(), time);
    }

    fn finish(self, stats: &mut StoreStats) {
        stats.tasks.pending_to_claimed = Durations::of(self.waits);
        stats.tasks.claimed_to_completed = Durations::of(self.runs);
        stats.tasks.created_to_completed = Durations::of(self.totals);
        stats.dependencies.ready = Durations::of(self.ready);
        stats.dependencies.failed = Durations::of(self.failed);
        stats.leases.lapses_recorded = self.lapses;
    }
}
