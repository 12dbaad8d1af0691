//! What a change of a task's status brings with it, derived in one place. Every command that
//! moves a task (complete, fail, release, block, cancel and `update_task_status`, a claim or a
//! heartbeat that finds a lapsed lease, `stop_agent`, a new incarnation of the holder) asks here
//! for its records, so two paths to one status cannot disagree (log-format.md, "Derived
//! effects").
//!
//! Recorded here: the task's own record; its failure for good once an end that counts uses up
//! its attempts; the pending consumers of a provider that failed or was cancelled, blocked with
//! a reason naming it (or cancelled with it, by cascade). Derived by the projection from those
//! records, by one rule ([`DependencyStatus::following`]): the status of the dependencies a task
//! provides, and so which tasks are ready.

use std::collections::{BTreeSet, VecDeque};

use crate::model::{AgentId, DependencyStatus, Event, Task, TaskId, TaskStatus};
use crate::projection::State;

/// Why a task failed for good after too many counted ends of its claims.
pub const ATTEMPTS_EXHAUSTED: &str = "attempts exhausted";

/// How a claim ends.
#[derive(Debug, Clone)]
pub(super) enum End {
    /// The holder finished the task.
    Completed { outputs: Vec<String> },
    /// The holder failed this attempt (counts).
    AttemptFailed { error: String },
    /// The holder gave the task back (free of charge).
    Released,
    /// The holder blocked the task on something outside the store (free of charge).
    Blocked { reason: String },
    /// The lease ran out (counts).
    Lapsed,
    /// The holder stopped or registered again as a new incarnation (counts).
    Abandoned { reason: String },
}

impl End {
    /// Whether this end counts against the task's attempts: every end without a result that
    /// the holder did not choose, and failed attempts. Completing, releasing and blocking are
    /// free.
    fn counts(&self) -> bool {
        matches!(self, End::AttemptFailed { .. } | End::Lapsed | End::Abandoned { .. })
    }
}

/// The records that end `task`'s current claim (held by `task.assigned_to`) this way.
pub(super) fn end_claim(state: &State, task: &Task, end: End) -> Vec<Event> {
    let id = task.id.clone();
    let holder = || task.assigned_to.clone().unwrap_or_else(|| task.created_by.clone());
    let counts = end.counts();
    let mut events = vec![match end {
        End::Completed { outputs } => Event::TaskCompleted { task: id.clone(), outputs },
        End::AttemptFailed { error } => Event::TaskAttemptFailed { task: id.clone(), error },
        End::Released => Event::TaskReleased { task: id.clone(), agent: holder() },
        End::Blocked { reason } => Event::TaskBlocked { task: id.clone(), reason },
        End::Lapsed => Event::TaskLeaseLapsed { task: id.clone(), agent: holder() },
        End::Abandoned { reason } => Event::TaskAbandoned { task: id.clone(), agent: holder(), reason },
    }];
    if counts && task.failures.saturating_add(1) >= task.max_attempts {
        events.extend(fail_for_good(state, &id, ATTEMPTS_EXHAUSTED));
    }
    events
}

/// The claims `agent` holds end this way (a stop, a new incarnation).
pub(super) fn end_claims_of(state: &State, agent: &AgentId, end: &End) -> Vec<Event> {
    let held: Vec<&Task> = state.tasks.held_by_agent(agent).collect();
    held.into_iter().flat_map(|task| end_claim(state, task, end.clone())).collect()
}

/// `task` fails for good: the consumers waiting on it are blocked, naming it.
pub(super) fn fail_for_good(state: &State, task: &TaskId, error: &str) -> Vec<Event> {
    let mut events = vec![Event::TaskFailed { task: task.clone(), error: error.to_owned() }];
    let status = TaskStatus::Failed(error.to_owned());
    block_consumers(state, task, &status, &mut events);
    events
}

/// `task` is cancelled. Without `cascade` the pending consumers waiting on it are blocked,
/// naming it; with `cascade` every task that waits on it, directly or through others, and has
/// not finished is cancelled too. Returns the records and the cancelled tasks, `task` first.
pub(super) fn cancel(state: &State, task: &TaskId, reason: &str, cascade: bool) -> (Vec<Event>, Vec<TaskId>) {
    let mut events = vec![Event::TaskCancelled { task: task.clone(), reason: reason.to_owned() }];
    if !cascade {
        block_consumers(state, task, &TaskStatus::Cancelled(reason.to_owned()), &mut events);
        return (events, vec![task.clone()]);
    }
    let mut cancelled = vec![task.clone()];
    let mut seen = BTreeSet::from([task.clone()]);
    let mut queue = VecDeque::from([task.clone()]);
    while let Some(provider) = queue.pop_front() {
        for dep in state.deps.of_provider(&provider) {
            let Some(consumer) = state.tasks.get(&dep.consumer) else { continue };
            if consumer.status.is_final() || dep.status.is_settled() || !seen.insert(consumer.id.clone()) {
                continue;
            }
            let reason = format!("provider task {provider} was cancelled");
            events.push(Event::TaskCancelled { task: consumer.id.clone(), reason });
            cancelled.push(consumer.id.clone());
            queue.push_back(consumer.id.clone());
        }
    }
    (events, cancelled)
}

/// The status a dependency registered now on `provider` starts with (the same rule the
/// projection follows afterwards), and the record that blocks `consumer` when the provider can
/// never deliver.
pub(super) fn register_on(
    state: &State,
    provider: &Task,
    consumer: &TaskId,
) -> (DependencyStatus, Option<Event>) {
    let status = DependencyStatus::following(&provider.id, &provider.status);
    let block = match (&status, state.tasks.get(consumer)) {
        (DependencyStatus::Failed(reason), Some(c)) if c.status == TaskStatus::Pending => {
            Some(Event::TaskBlocked { task: consumer.clone(), reason: reason.clone() })
        }
        _ => None,
    };
    (status, block)
}

/// Blocks the pending consumers of the dependencies of `provider` that its new status
/// `status` fails (a dependency marked ready by hand still delivers).
fn block_consumers(state: &State, provider: &TaskId, status: &TaskStatus, events: &mut Vec<Event>) {
    let DependencyStatus::Failed(reason) = DependencyStatus::following(provider, status) else { return };
    for dep in state.deps.of_provider(provider) {
        if dep.status.is_settled() {
            continue;
        }
        if state.tasks.get(&dep.consumer).is_some_and(|c| c.status == TaskStatus::Pending) {
            events.push(Event::TaskBlocked { task: dep.consumer.clone(), reason: reason.clone() });
        }
    }
}
