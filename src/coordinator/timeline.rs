//! Timelines: the audit trail of a task or an agent as the steps a person reads (created,
//! claimed, lease lapsed, reclaimed, completed), each with the time since the step before.
//! Heartbeats in a row are one step.

use std::time::Duration;

use super::audit::HistoryEntry;
use super::history::StoreHistory;
use crate::error::Result;
use crate::model::{AuditQuery, Event, Subject, TaskId, Viewer};
use crate::types::{Lsn, Timestamp};

/// What a step was, from the side of the timeline's subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepKind {
    /// The task was created.
    Created,
    /// The task was claimed (for the first time in this timeline).
    Claimed,
    /// The task was claimed again, after an earlier claim in this timeline ended.
    Reclaimed,
    /// A claim's lease ran out (recorded by whoever noticed).
    LeaseLapsed,
    /// Its holder released the task.
    Released,
    /// The task was blocked.
    Blocked,
    /// The task was unblocked.
    Unblocked,
    /// An output was added.
    OutputAdded,
    /// The task was completed.
    Completed,
    /// An attempt failed (the task is pending again).
    AttemptFailed,
    /// The task failed for good.
    Failed,
    /// The claim ended because its holder stopped or registered again.
    Abandoned,
    /// The task was cancelled.
    Cancelled,
    /// The agent registered.
    Started,
    /// The agent registered again (a new incarnation).
    Restarted,
    /// The agent sent heartbeats ([`Step::repeats`] of them in a row).
    Heartbeats,
    /// The agent stopped.
    Stopped,
    /// Anything else the agent did (context, dependencies, barriers, locks, application events):
    /// the event says what.
    Other,
}

impl StepKind {
    /// Its name, in `snake_case`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Created => "created",
            StepKind::Claimed => "claimed",
            StepKind::Reclaimed => "reclaimed",
            StepKind::LeaseLapsed => "lease_lapsed",
            StepKind::Released => "released",
            StepKind::Blocked => "blocked",
            StepKind::Unblocked => "unblocked",
            StepKind::OutputAdded => "output_added",
            StepKind::Completed => "completed",
            StepKind::AttemptFailed => "attempt_failed",
            StepKind::Failed => "failed",
            StepKind::Abandoned => "abandoned",
            StepKind::Cancelled => "cancelled",
            StepKind::Started => "started",
            StepKind::Restarted => "restarted",
            StepKind::Heartbeats => "heartbeats",
            StepKind::Stopped => "stopped",
            StepKind::Other => "other",
        }
    }
}

/// One step of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What it was.
    pub kind: StepKind,
    /// Its record (the first of them, for heartbeats in a row).
    pub entry: HistoryEntry,
    /// How many records it stands for: more than 1 only for heartbeats in a row.
    pub repeats: u64,
    /// The LSN and time of its last record (its own, but for heartbeats in a row).
    pub last: (Lsn, Timestamp),
    /// Time from the previous step's last record to this step's first (zero for the first step).
    pub since_previous: Duration,
}

/// The steps of an audit trail (oldest first, as [`StoreHistory::audit`] returns it).
#[must_use]
pub fn timeline(entries: Vec<HistoryEntry>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut claimed: Vec<TaskId> = Vec::new();
    let mut started = false;
    for entry in entries {
        let last = (entry.lsn, entry.time);
        if let (Event::AgentHeartbeat { agent, .. }, Some(step)) = (&entry.recorded.event, steps.last_mut()) {
            let same =
                matches!(&step.entry.recorded.event, Event::AgentHeartbeat { agent: a, .. } if a == agent);
            if step.kind == StepKind::Heartbeats && same {
                step.repeats += 1;
                step.last = last;
                continue;
            }
        }
        let kind = kind_of(&entry.recorded.event, &mut claimed, &mut started);
        let since_previous = steps.last().map_or(Duration::ZERO, |s| between(s.last.1, entry.time));
        steps.push(Step { kind, entry, repeats: 1, last, since_previous });
    }
    steps
}

/// The time from `from` to `to` (zero if `to` is earlier, which recorded times never are).
#[must_use]
pub fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_micros(u64::try_from(to.as_micros().saturating_sub(from.as_micros())).unwrap_or(0))
}

fn kind_of(event: &Event, claimed: &mut Vec<TaskId>, started: &mut bool) -> StepKind {
    match event {
        Event::TaskCreated { .. } => StepKind::Created,
        Event::TaskClaimed { task, .. } => {
            if claimed.contains(task) {
                StepKind::Reclaimed
            } else {
                claimed.push(task.clone());
                StepKind::Claimed
            }
        }
        Event::TaskLeaseLapsed { .. } => StepKind::LeaseLapsed,
        Event::TaskReleased { .. } => StepKind::Released,
        Event::TaskBlocked { .. } => StepKind::Blocked,
        Event::TaskUnblocked { .. } => StepKind::Unblocked,
        Event::TaskOutputAdded { .. } => StepKind::OutputAdded,
        Event::TaskCompleted { .. } => StepKind::Completed,
        Event::TaskAttemptFailed { .. } => StepKind::AttemptFailed,
        Event::TaskFailed { .. } => StepKind::Failed,
        Event::TaskAbandoned { .. } => StepKind::Abandoned,
        Event::TaskCancelled { .. } => StepKind::Cancelled,
        Event::AgentStarted { .. } => {
            let again = std::mem::replace(started, true);
            if again {
                StepKind::Restarted
            } else {
                StepKind::Started
            }
        }
        Event::AgentHeartbeat { .. } => StepKind::Heartbeats,
        Event::AgentStopped { .. } => StepKind::Stopped,
        _ => StepKind::Other,
    }
}

impl StoreHistory {
    /// The timeline of a task (its records) or an agent (the records by or about it), as
    /// `viewer` may see them: [`timeline`] of [`StoreHistory::audit`]. A task's claims show as
    /// claimed then reclaimed; in an agent's timeline, a claim is `reclaimed` only if that agent
    /// claimed the task before.
    ///
    /// # Errors
    /// As [`StoreHistory::audit`].
    pub fn timeline(&self, subject: &Subject, viewer: &Viewer) -> Result<Vec<Step>> {
        let Some(query) = AuditQuery::of_subject(subject) else { return Ok(Vec::new()) };
        Ok(timeline(self.audit(&query, viewer)?))
    }
}
