//! Which tasks an agent can claim now, and in which order: the one rule that
//! [`Coordinator::claim_next_task`](super::Coordinator::claim_next_task) and
//! [`Coordinator::get_ready_tasks`](super::Coordinator::get_ready_tasks) share, so a query never
//! lists what a claim would not hand out, nor the reverse.
//!
//! A task is claimable at time `now` by an agent with capabilities `C` when
//! - it is pending, or in progress with a lease that ended before `now` and attempts left (the
//!   claim records the lapse first);
//! - every capability it requires is in `C`;
//! - every dependency it waits on is ready.
//!
//! Claimable tasks go by the store's [`ClaimPolicy`]: highest (effective) priority first, then
//! oldest (lowest creation LSN).
//!
//! A claim in the same command as a completion
//! ([`Coordinator::complete_and_claim_next`](super::Coordinator::complete_and_claim_next)) decides
//! on the state as the completion leaves it: the dependencies the completed task provides count
//! as ready ([`After::Completing`]), as the projection makes them once the batch is applied.

use std::cmp::Reverse;

use super::transition::{end_claim, End};
use crate::error::{Error, Result};
use crate::model::{AgentId, ClaimPolicy, Event, Priority, Task, TaskId, TaskStatus};
use crate::projection::State;
use crate::types::Timestamp;

/// What the same command records before its claim, that the claim must decide after.
#[derive(Debug, Clone, Copy)]
pub(super) enum After<'a> {
    /// Nothing: the state as it is.
    Nothing,
    /// The completion of this task (held, so not claimable itself): the dependencies it
    /// provides that are not settled become ready
    /// ([`DependencyStatus::following`](crate::model::DependencyStatus::following)).
    Completing(&'a TaskId),
}

/// The capabilities a request acts with: `given` when the caller names them (an empty list
/// means none), else the agent's registered capabilities.
pub(super) fn capabilities(state: &State, agent: &AgentId, given: Option<&[String]>) -> Result<Vec<String>> {
    if let Some(given) = given {
        return Ok(given.to_vec());
    }
    state
        .agents
        .get(agent.as_str())
        .map(|a| a.capabilities.clone())
        .ok_or_else(|| Error::UnknownAgent { agent: agent.clone(), detail: String::new() })
}

/// Whether every dependency of `task` is ready once what the command records before its claim
/// (`after`) is applied.
fn dependencies_ready(state: &State, task: &TaskId, after: After<'_>) -> bool {
    match after {
        After::Nothing => state.deps.is_ready(task),
        After::Completing(completed) => {
            state.deps.unmet(task).iter().all(|d| &d.provider == completed && !d.status.is_settled())
        }
    }
}

/// Whether `task` can be claimed at `now` with `capabilities`, after `after`.
fn claimable(state: &State, task: &Task, capabilities: &[String], now: Timestamp, after: After<'_>) -> bool {
    let free = match task.status {
        TaskStatus::Pending => true,
        TaskStatus::InProgress => {
            task.lease_until.is_some_and(|until| until < now)
                && task.failures.saturating_add(1) < task.max_attempts
        }
        _ => false,
    };
    free && task.required_capabilities.iter().all(|c| capabilities.contains(c))
        && dependencies_ready(state, &task.id, after)
}

/// Where `task` stands in the claim order at `now`: smaller goes first.
fn order(policy: &ClaimPolicy, task: &Task, now: Timestamp) -> (Reverse<Priority>, u64) {
    (Reverse(policy.effective_priority(task, now)), task.created_lsn)
}

/// Every task claimable at `now` with `capabilities`, in claim order.
pub(super) fn ready<'a>(state: &'a State, capabilities: &[String], now: Timestamp) -> Vec<&'a Task> {
    let mut tasks: Vec<&Task> = state
        .tasks
        .pending_for(capabilities, None)
        .chain(state.tasks.lapsed(now))
        .filter(|t| claimable(state, t, capabilities, now, After::Nothing))
        .collect();
    tasks.sort_by_key(|t| order(&state.claim_policy, t, now));
    tasks
}

/// The first task of [`ready`], found without ordering every task: under strict priority the
/// first claimable pending task in index order; under aging the first claimable one of each
/// priority (within a priority, older tasks have aged at least as much); then the best of those
/// and of the lapsed ones.
fn best<'a>(state: &'a State, capabilities: &[String], now: Timestamp, after: After<'_>) -> Option<&'a Task> {
    let policy = &state.claim_policy;
    let is_claimable = |t: &&Task| claimable(state, t, capabilities, now, after);
    let pending: Vec<&Task> = match policy {
        ClaimPolicy::Strict => {
            state.tasks.pending_for(capabilities, None).find(is_claimable).into_iter().collect()
        }
        ClaimPolicy::Aging { .. } => [Priority::Critical, Priority::High, Priority::Normal, Priority::Low]
            .into_iter()
            .filter_map(|p| state.tasks.pending_for(capabilities, Some(p)).find(is_claimable))
            .collect(),
    };
    pending
        .into_iter()
        .chain(state.tasks.lapsed(now).filter(is_claimable))
        .min_by_key(|t| order(policy, t, now))
}

/// The records of a claim by `agent` at `now`, after `after` (recorded before them in the same
/// command), with the capabilities `given` (the agent's registered ones when `None`): every
/// lapsed lease found ends (a task whose attempts it used up fails for good), then the best
/// claimable task, if any, is claimed under a lease of `lease`. Returns the records and the task
/// claimed.
pub(super) fn claim(
    state: &State,
    agent: &AgentId,
    given: Option<&[String]>,
    lease: std::time::Duration,
    now: Timestamp,
    after: After<'_>,
) -> Result<(Vec<Event>, Option<TaskId>)> {
    let capabilities = capabilities(state, agent, given)?;
    let mut events = Vec::new();
    for task in state.tasks.lapsed(now) {
        events.extend(end_claim(state, task, End::Lapsed));
    }
    let claimed = best(state, &capabilities, now, after).map(|t| t.id.clone());
    if let Some(task) = &claimed {
        events.push(Event::TaskClaimed {
            task: task.clone(),
            agent: agent.clone(),
            lease_until: now.plus(lease),
        });
    }
    Ok((events, claimed))
}
