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

/// Where a task is in its life.
///
/// ```text
///   Pending ──claim──▶ InProgress ──complete──▶ Completed (final)
///     ▲  │               │  │  └────fail─────▶ Failed (final)
///     │  └──block──▶ Blocked ◀┘      (lease lapsed or released: back to Pending;
///     └──unblock──────┘                attempts exhausted: Failed)
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
        }
    }

    /// Completed and Failed never change again.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed(_))
    }

    /// Whether the state machine allows going from this status to `next`.
    #[must_use]
    pub fn can_become(&self, next: &TaskStatus) -> bool {
        use TaskStatus::{Blocked, Completed, Failed, InProgress, Pending};
        matches!(
            (self, next),
            (Pending, InProgress | Blocked(_) | Failed(_))
                | (InProgress, Pending | Blocked(_) | Completed | Failed(_))
                | (Blocked(_), Pending | Failed(_))
        )
    }
}

/// Defaults of a new task.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

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
        let all = [Pending, InProgress, Blocked("b".into()), Completed, Failed("f".into())];
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
                ("InProgress", "Pending"),
                ("InProgress", "Blocked"),
                ("InProgress", "Completed"),
                ("InProgress", "Failed"),
                ("Blocked", "Pending"),
                ("Blocked", "Failed"),
            ]
        );
        assert!(
            Completed.is_final() && Failed(String::new()).is_final() && !Blocked(String::new()).is_final()
        );
        assert!(
            Priority::Critical > Priority::High
                && Priority::High > Priority::Normal
                && Priority::Normal > Priority::Low
        );
    }
}
