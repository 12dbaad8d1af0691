//! Tasks: priorities, the status state machine, and what a task holds.

use serde::{Deserialize, Serialize};

use super::ids::{AgentId, TaskId};
use crate::types::Timestamp;

/// How urgent a task is; claims take the highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum Priority {
    /// Whenever there is time.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Before normal work.
    High,
    /// Before everything else.
    Critical,
}

/// Where a task is in its life (log-format.md, "Task state machine").
///
/// ```text
///   Pending ──claim──▶ InProgress ──complete──▶ Completed (final)
///     ▲  │               │  │  └────fail─────▶ Failed (final)
///     │  └──block──▶ Blocked ◀┘      (released: back to Pending; lease lapsed, holder
///     └──unblock──────┘                stopped or restarted, attempt failed: back to Pending,
///                                      or Failed once the attempts are used up)
///   Pending, InProgress, Blocked ──cancel──▶ Cancelled (final)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskStatus {
    /// Waiting to be claimed.
    Pending,
    /// Claimed by an agent that holds a lease on it.
    InProgress,
    /// Waiting for something outside the store.
    Blocked(String),
    /// Done (final).
    Completed,
    /// Given up (final).
    Failed(String),
    /// Called off before it finished, with the reason (final).
    Cancelled(String),
}

impl TaskStatus {
    /// The status without its reason, for messages and filters.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            TaskStatus::Pending => "Pending",
            TaskStatus::InProgress => "InProgress",
            TaskStatus::Blocked(_) => "Blocked",
            TaskStatus::Completed => "Completed",
            TaskStatus::Failed(_) => "Failed",
            TaskStatus::Cancelled(_) => "Cancelled",
        }
    }

    /// Completed, Failed and Cancelled never change again.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed(_) | TaskStatus::Cancelled(_))
    }

    /// Whether the state machine allows going from this status to `next`.
    #[must_use]
    pub fn can_become(&self, next: &TaskStatus) -> bool {
        use TaskStatus::{Blocked, Cancelled, Completed, Failed, InProgress, Pending};
        matches!(
            (self, next),
            (Pending, InProgress | Blocked(_) | Failed(_) | Cancelled(_))
                | (InProgress, Pending | Blocked(_) | Completed | Failed(_) | Cancelled(_))
                | (Blocked(_), Pending | Failed(_) | Cancelled(_))
        )
    }
}

/// Defaults of a new task.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

impl Priority {
    /// The priority `levels` levels above this one, at most [`Priority::Critical`] (aging).
    #[must_use]
    pub fn raised(self, levels: u64) -> Priority {
        const ORDER: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Critical];
        let at = ORDER.iter().position(|p| *p == self).unwrap_or(0) as u64;
        let to = usize::try_from(at.saturating_add(levels).min(3)).unwrap_or(3);
        ORDER.get(to).copied().unwrap_or(Priority::Critical)
    }
}

/// The order in which claims take pending tasks: a setting of the store, recorded in its log
/// ([`crate::model::Event::ClaimPolicySet`]), so that every process claims in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ClaimPolicy {
    /// Highest priority first, then oldest (the default). A steady stream of higher-priority
    /// tasks can keep a lower one waiting for ever.
    #[default]
    Strict,
    /// As `Strict`, by effective priority: a task's priority rises one level for every
    /// `every_ms` milliseconds since it was created, up to `Critical`; among equal effective
    /// priorities the oldest goes first. Bounds how long any claimable task waits behind newer
    /// ones (the aging of operating-system schedulers).
    Aging {
        /// Milliseconds of waiting that raise a task's priority by one level (at least 1).
        every_ms: u64,
    },
}

impl ClaimPolicy {
    /// The priority `task` is claimed at, at time `now`.
    #[must_use]
    pub fn effective_priority(&self, task: &Task, now: Timestamp) -> Priority {
        match *self {
            ClaimPolicy::Strict => task.priority,
            ClaimPolicy::Aging { every_ms } => {
                let waited_ms = now.as_micros().saturating_sub(task.created_at.as_micros()).max(0) / 1000;
                let levels = u64::try_from(waited_ms).unwrap_or(0) / every_ms.max(1);
                task.priority.raised(levels)
            }
        }
    }
}

/// What creating a task asks for ([`NewTask::new`] and its setters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Its id; generated (UUID v7) if `None`.
    pub id: Option<TaskId>,
    /// Short name.
    pub name: String,
    /// What to do.
    pub description: String,
    /// Priority.
    pub priority: Priority,
    /// Capabilities an agent needs to claim it.
    pub required_capabilities: Vec<String>,
    /// Free-form JSON.
    pub metadata: serde_json::Value,
    /// Lease lapses and failures before the task fails for good.
    pub max_attempts: u32,
    /// Creating again with the same key returns the first task and appends nothing.
    pub idempotency_key: Option<String>,
}

impl NewTask {
    /// A task with this name and defaults for the rest.
    pub fn new(name: impl Into<String>) -> NewTask {
        NewTask {
            id: None,
            name: name.into(),
            description: String::new(),
            priority: Priority::Normal,
            required_capabilities: Vec::new(),
            metadata: serde_json::Value::Null,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            idempotency_key: None,
        }
    }

    /// Sets the id.
    #[must_use]
    pub fn id(mut self, id: TaskId) -> NewTask {
        self.id = Some(id);
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> NewTask {
        self.description = description.into();
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> NewTask {
        self.priority = priority;
        self
    }

    /// Adds a required capability.
    #[must_use]
    pub fn requires(mut self, capability: impl Into<String>) -> NewTask {
        self.required_capabilities.push(capability.into());
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Value) -> NewTask {
        self.metadata = metadata;
        self
    }

    /// Sets the attempt limit.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> NewTask {
        self.max_attempts = attempts;
        self
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> NewTask {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// A task as the projection holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Short name.
    pub name: String,
    /// What to do.
    pub description: String,
    /// Priority.
    pub priority: Priority,
    /// Capabilities needed to claim it.
    pub required_capabilities: Vec<String>,
    /// Current status.
    pub status: TaskStatus,
    /// The agent holding (or last holding) it.
    pub assigned_to: Option<AgentId>,
    /// Outputs added so far.
    pub outputs: Vec<String>,
    /// Free-form JSON.
    pub metadata: serde_json::Value,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Claims so far.
    pub attempts: u32,
    /// Lease lapses and failures allowed.
    pub max_attempts: u32,
    /// Lapses and failures so far.
    pub failures: u32,
    /// End of the current claim's lease.
    pub lease_until: Option<Timestamp>,
    /// Who created it.
    pub created_by: AgentId,
    /// The idempotency key it was created with.
    pub idempotency_key: Option<String>,
    /// LSN of the record that created it (claims among equal priorities go oldest first).
    pub created_lsn: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_allows_exactly_the_documented_moves() {
        use TaskStatus::*;
        let all =
            [Pending, InProgress, Blocked("b".into()), Completed, Failed("f".into()), Cancelled("c".into())];
        let allowed: Vec<(&str, &str)> = all
            .iter()
            .flat_map(|a| all.iter().filter(|b| a.can_become(b)).map(move |b| (a.name(), b.name())))
            .collect();
        assert_eq!(
            allowed,
            [
                ("Pending", "InProgress"),
                ("Pending", "Blocked"),
                ("Pending", "Failed"),
                ("Pending", "Cancelled"),
                ("InProgress", "Pending"),
                ("InProgress", "Blocked"),
                ("InProgress", "Completed"),
                ("InProgress", "Failed"),
                ("InProgress", "Cancelled"),
                ("Blocked", "Pending"),
                ("Blocked", "Failed"),
                ("Blocked", "Cancelled"),
            ]
        );
        assert!(
            Completed.is_final()
                && Failed(String::new()).is_final()
                && Cancelled(String::new()).is_final()
                && !Blocked(String::new()).is_final()
        );
        assert!(
            Priority::Critical > Priority::High
                && Priority::High > Priority::Normal
                && Priority::Normal > Priority::Low
        );
    }
}
