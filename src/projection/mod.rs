//! Projections: the state the store shows, as a fold of its records. [`State::apply`] is the one
//! code path for live updates and for replay; it reads time only from records, so replaying the
//! same log always gives the same state (ARCHITECTURE.md, "Invariants": determinism).
//!
//! `apply` trusts that the coordinator validated each event before appending it; an event that
//! refers to something unknown (possible only in a log written by another program) changes
//! nothing, the same way live and in replay.

mod agents;
mod barriers_locks;
pub mod base;
mod context;
mod deps;
mod tasks;

use std::collections::BTreeMap;

pub use agents::{Agent, AgentStatus};
pub use barriers_locks::{Barrier, Lock};
pub use context::{entry_of, ContextIndex, ContextVersion, KeyHistory};
pub use deps::DependencyGraph;
pub use tasks::TaskRegistry;

use crate::model::{BarrierName, ClaimPolicy, Event, LockName, Recorded};
use crate::types::{Lsn, Timestamp};

/// Hash maps of the projections: looked up for nearly every record replayed, so hashed with
/// foldhash (fast on short strings, seeded per process) rather than `SipHash`.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A [`State`] as plain data: what a snapshot stores (log-format.md, "Snapshots"). `Context` is
/// the shape of the context part, which older snapshot versions stored differently.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateImage<Context = Vec<(crate::model::ContextKey, KeyHistory)>> {
    /// The first LSN not applied.
    pub next_lsn: Lsn,
    /// Time of the last applied record.
    pub last_time: Timestamp,
    /// Agents.
    pub agents: Vec<Agent>,
    /// Tasks.
    pub tasks: Vec<crate::model::Task>,
    /// Context keys and their versions.
    pub context: Context,
    /// Dependencies.
    pub dependencies: Vec<crate::model::Dependency>,
    /// Barriers.
    pub barriers: Vec<(BarrierName, Barrier)>,
    /// Locks.
    pub locks: Vec<(LockName, Lock)>,
    /// The claim order (absent in snapshots written before it existed: strict).
    #[serde(default)]
    pub claim_policy: ClaimPolicy,
}

impl<C> StateImage<C> {
    /// The same image with its context part converted by `convert`.
    pub fn map_context<D>(self, convert: impl FnOnce(C) -> D) -> StateImage<D> {
        StateImage {
            next_lsn: self.next_lsn,
            last_time: self.last_time,
            agents: self.agents,
            tasks: self.tasks,
            context: convert(self.context),
            dependencies: self.dependencies,
            barriers: self.barriers,
            locks: self.locks,
            claim_policy: self.claim_policy,
        }
    }
}

/// Every projection, as of [`State::next_lsn`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Registered agents.
    pub agents: BTreeMap<String, Agent>,
    /// Tasks.
    pub tasks: TaskRegistry,
    /// Context entries and their versions.
    pub context: ContextIndex,
    /// Dependencies between tasks.
    pub deps: DependencyGraph,
    /// Barriers.
    pub barriers: BTreeMap<BarrierName, Barrier>,
    /// Locks.
    pub locks: BTreeMap<LockName, Lock>,
    /// The order claims take pending tasks in.
    pub claim_policy: ClaimPolicy,
    /// The next LSN to apply.
    pub next_lsn: Lsn,
    /// Time of the last applied record.
    pub last_time: Timestamp,
}

impl State {
    /// An empty state, before the first record.
    #[must_use]
    pub fn new() -> State {
        State { next_lsn: Lsn::FIRST, ..State::default() }
    }

    /// Applies the record at `lsn`, appended at `time` (consuming it: what it carries moves into
    /// the projections).
    pub fn apply(&mut self, recorded: Recorded, lsn: Lsn, time: Timestamp) {
        let Recorded { actor, event } = recorded;
        match event {
            Event::AgentStarted { .. } | Event::AgentHeartbeat { .. } | Event::AgentStopped { .. } => {
                match &event {
                    Event::AgentHeartbeat { agent, lease_until } => {
                        self.tasks.extend_leases(agent, *lease_until, time);
                    }
                    Event::AgentStopped { agent, .. } => {
                        // Logs written before claims ended in their own records (TaskAbandoned)
                        // left them to this record; commands now end them first.
                        for task in self.tasks.release_all(agent, time) {
                            self.follow(&task);
                        }
                    }
                    _ => {}
                }
                agents::apply(&mut self.agents, event, lsn, time);
            }
            Event::TaskCreated { .. }
            | Event::TaskClaimed { .. }
            | Event::TaskLeaseLapsed { .. }
            | Event::TaskReleased { .. }
            | Event::TaskBlocked { .. }
            | Event::TaskUnblocked { .. }
            | Event::TaskOutputAdded { .. }
            | Event::TaskCompleted { .. }
            | Event::TaskFailed { .. }
            | Event::TaskAttemptFailed { .. }
            | Event::TaskAbandoned { .. }
            | Event::TaskCancelled { .. } => {
                // Creating a task or adding an output leaves its status as it was.
                let changes_status =
                    !matches!(event, Event::TaskCreated { .. } | Event::TaskOutputAdded { .. });
                let task = event.task().filter(|_| changes_status).cloned();
                self.tasks.apply(event, lsn, time);
                if let Some(task) = task {
                    self.follow(&task);
                }
            }
            Event::ClaimPolicySet { policy } => self.claim_policy = policy,
            Event::ContextUpdated { .. } | Event::ContextDeleted { .. } => {
                self.context.apply(actor, event, lsn, time);
            }
            Event::DependencyRegistered { .. }
            | Event::DependencyReady { .. }
            | Event::DependencyFailed { .. } => {
                self.deps.apply(event);
            }
            Event::BarrierCreated { .. } | Event::BarrierSignalled { .. } => {
                barriers_locks::apply_barrier(&mut self.barriers, event);
            }
            Event::LockAcquired { .. } | Event::LockReleased { .. } => {
                barriers_locks::apply_lock(&mut self.locks, event, lsn);
            }
            Event::Custom { .. } | Event::DeliveryDeadLettered { .. } => {}
        }
        self.pass(lsn, time);
    }

    /// The dependencies `task` provides follow its status (the one rule,
    /// [`DependencyStatus::following`](crate::model::DependencyStatus::following)).
    fn follow(&mut self, task: &crate::model::TaskId) {
        if let Some(t) = self.tasks.get(task) {
            self.deps.follow_provider(task, &t.status);
        }
    }

    /// Moves past a record that changes no projection (an application event, found by
    /// [`Recorded::is_custom`] without decoding it): what [`State::apply`] does for one.
    pub fn pass(&mut self, lsn: Lsn, time: Timestamp) {
        self.next_lsn = lsn.next();
        self.last_time = self.last_time.max(time);
    }

    /// The state as plain data, for a snapshot (indexes and the graph are rebuilt on load).
    #[must_use]
    pub fn to_image(&self) -> StateImage {
        StateImage {
            next_lsn: self.next_lsn,
            last_time: self.last_time,
            agents: self.agents.values().cloned().collect(),
            tasks: self.tasks.to_image(),
            context: self.context.to_image(),
            dependencies: self.deps.to_image(),
            barriers: self.barriers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            locks: self.locks.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            claim_policy: self.claim_policy,
        }
    }

    /// The state a snapshot describes whose tasks and context `base` reads on demand; `image`
    /// holds the rest (its `tasks` and `context` are not used).
    #[must_use]
    pub fn on_base<C>(image: StateImage<C>, base: std::sync::Arc<dyn base::Base>) -> State {
        State {
            next_lsn: image.next_lsn,
            last_time: image.last_time,
            agents: image.agents.into_iter().map(|a| (a.id.to_string(), a)).collect(),
            tasks: TaskRegistry::on_base(base.clone()),
            context: ContextIndex::on_base(base),
            deps: DependencyGraph::from_image(image.dependencies),
            barriers: image.barriers.into_iter().collect(),
            locks: image.locks.into_iter().collect(),
            claim_policy: image.claim_policy,
        }
    }

    /// The first read of the snapshot this state stands on that failed (a block that fails
    /// its checksum, an entry that does not decode), if any: an answer read from such a state
    /// may miss what the failed read held. See [`base`].
    #[must_use]
    pub fn damage(&self) -> Option<String> {
        self.tasks.damage().or_else(|| self.context.damage())
    }

    /// Checks every byte of the snapshot this state stands on, if any (a no-op for blocks
    /// already checked); a failure is [noted](State::damage).
    pub fn check_base(&self) {
        if let Some(base) = self.tasks.base() {
            let _noted = base.check_all();
        }
    }

    /// Where the log said the record at [`State::base_lsn`] is, if the snapshot this state
    /// stands on recorded it.
    #[must_use]
    pub fn log_position(&self) -> Option<(Lsn, u64)> {
        self.tasks.base().and_then(|b| b.log_position())
    }

    /// The LSN of the snapshot this state stands on (`None`: it is all in memory).
    #[must_use]
    pub fn base_lsn(&self) -> Option<Lsn> {
        self.tasks.base_lsn()
    }

    /// The state a snapshot image describes.
    #[must_use]
    pub fn from_image(image: StateImage) -> State {
        State {
            next_lsn: image.next_lsn,
            last_time: image.last_time,
            agents: image.agents.into_iter().map(|a| (a.id.to_string(), a)).collect(),
            tasks: TaskRegistry::from_image(image.tasks),
            context: ContextIndex::from_image(image.context),
            deps: DependencyGraph::from_image(image.dependencies),
            barriers: image.barriers.into_iter().collect(),
            locks: image.locks.into_iter().collect(),
            claim_policy: image.claim_policy,
        }
    }
}

/// Merges two iterators, each sorted by `first` (`first(a, b)`: `a` goes before `b`).
fn merge_sorted_by<T, A, B, F>(a: A, b: B, first: F) -> impl Iterator<Item = T>
where
    A: Iterator<Item = T>,
    B: Iterator<Item = T>,
    F: Fn(&T, &T) -> bool,
{
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if first(y, x) => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// Merges iterators each sorted in ascending order (a few: each step compares their heads).
fn merge_many<T: Ord + Copy, I: Iterator<Item = T>>(
    iters: impl Iterator<Item = I>,
) -> impl Iterator<Item = T> {
    let mut iters: Vec<std::iter::Peekable<I>> = iters.map(Iterator::peekable).collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, T)> = None;
        for (i, it) in iters.iter_mut().enumerate() {
            if let Some(&head) = it.peek() {
                if best.is_none_or(|(_, b)| head < b) {
                    best = Some((i, head));
                }
            }
        }
        let (i, _) = best?;
        iters.get_mut(i).and_then(Iterator::next)
    })
}

/// Merges two iterators sorted in ascending order.
fn merge_sorted<T: Ord, A, B>(a: A, b: B) -> impl Iterator<Item = T>
where
    A: Iterator<Item = T>,
    B: Iterator<Item = T>,
{
    merge_sorted_by(a, b, |x, y| x < y)
}

#[cfg(test)]
mod tests;
