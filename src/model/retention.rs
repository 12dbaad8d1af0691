//! What keyed compaction keeps (log-format.md, "Keyed compaction"). Every event belongs to at most
//! one entity, either as its definition (a task's creation, an agent's start, a dependency's or
//! barrier's registration) or as a change. A later change of the same entity supersedes a change;
//! a later definition supersedes a definition. So a finished task keeps its creation and its final
//! record, a context key its latest update or deletion; application events belong to no entity
//! and are always kept.

use std::collections::HashMap;

use super::event::Event;
use super::ids::{AgentId, BarrierName, ContextKey, DependencyId, LockName, TaskId};
use crate::types::Lsn;

/// The thing an event is about, as far as supersession goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entity {
    /// An agent: started (definition), heartbeats and stop (changes).
    Agent(AgentId),
    /// A task: created (definition), everything after (changes).
    Task(TaskId),
    /// A context key: updates and deletion (changes).
    Context(ContextKey),
    /// A dependency: registered (definition), ready or failed (changes).
    Dependency(DependencyId),
    /// A barrier: created (definition).
    Barrier(BarrierName),
    /// One participant's signal of a barrier (changes).
    BarrierSignal(BarrierName, String),
    /// A lock: acquisitions and releases (changes).
    Lock(LockName),
}

/// Whether an event defines its entity or changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Says what the entity is.
    Definition,
    /// Says what became of it.
    Change,
}

impl Event {
    /// The entity this event defines or changes, or `None` for events that nothing supersedes.
    #[must_use]
    pub fn lineage(&self) -> Option<(Entity, Role)> {
        use Role::{Change, Definition};
        Some(match self {
            Event::AgentStarted { agent, .. } => (Entity::Agent(agent.clone()), Definition),
            Event::AgentHeartbeat { agent, .. } | Event::AgentStopped { agent, .. } => {
                (Entity::Agent(agent.clone()), Change)
            }
            Event::TaskCreated { task } => (Entity::Task(task.id.clone()), Definition),
            Event::ContextUpdated { key, .. } | Event::ContextDeleted { key, .. } => {
                (Entity::Context(key.clone()), Change)
            }
            Event::DependencyRegistered { dependency } => {
                (Entity::Dependency(dependency.id.clone()), Definition)
            }
            Event::DependencyReady { dependency, .. } | Event::DependencyFailed { dependency, .. } => {
                (Entity::Dependency(dependency.clone()), Change)
            }
            Event::BarrierCreated { name, .. } => (Entity::Barrier(name.clone()), Definition),
            Event::BarrierSignalled { name, participant } => {
                (Entity::BarrierSignal(name.clone(), participant.clone()), Change)
            }
            Event::LockAcquired { name, .. } | Event::LockReleased { name, .. } => {
                (Entity::Lock(name.clone()), Change)
            }
            // Application events belong to no entity; the claim policy is a setting, kept.
            Event::Custom { .. } | Event::ClaimPolicySet { .. } => return None,
            other => (Entity::Task(other.task()?.clone()), Change),
        })
    }
}

/// The LSN of the latest definition and the latest change of every entity seen.
#[derive(Debug, Default)]
pub struct Supersession {
    latest: HashMap<(Entity, Role), Lsn>,
}

impl Supersession {
    /// An empty record.
    #[must_use]
    pub fn new() -> Supersession {
        Supersession::default()
    }

    /// Notes the event at `lsn` (call in LSN order).
    pub fn note(&mut self, lsn: Lsn, event: &Event) {
        if let Some(key) = event.lineage() {
            self.latest.insert(key, lsn);
        }
    }

    /// Whether keyed compaction keeps the event at `lsn`: no later event of its entity and role
    /// was noted (events without an entity are always kept).
    #[must_use]
    pub fn keeps(&self, lsn: Lsn, event: &Event) -> bool {
        event.lineage().is_none_or(|key| self.latest.get(&key).is_none_or(|&latest| latest <= lsn))
    }

    /// Number of entity roles tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether nothing was noted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Visibility;
    use crate::types::Timestamp;

    fn set(key: &str, version: u64) -> Event {
        Event::ContextUpdated {
            key: ContextKey::new(key).unwrap(),
            value: serde_json::json!(version),
            visibility: Visibility::Shared,
            expires_at: None,
            metadata: std::collections::BTreeMap::new(),
            version,
        }
    }

    #[test]
    fn only_the_latest_change_and_definition_of_each_entity_are_kept() {
        let agent = AgentId::new("a").unwrap();
        let task = TaskId::generate();
        let beat = |t| Event::AgentHeartbeat { agent: agent.clone(), lease_until: Timestamp(t) };
        let events = [
            Event::AgentStarted {
                agent: agent.clone(),
                role: "r".into(),
                capabilities: vec![],
                heartbeat_timeout_ms: 1,
            },
            set("k", 1),
            Event::TaskClaimed { task: task.clone(), agent: agent.clone(), lease_until: Timestamp(9) },
            set("k", 2),
            beat(1),
            Event::TaskCompleted { task, outputs: vec![] },
            beat(2),
            Event::Custom {
                event_type: "e".into(),
                data: serde_json::json!(0),
                metadata: std::collections::BTreeMap::new(),
            },
        ];
        let mut s = Supersession::new();
        for (lsn, e) in (1..).zip(&events) {
            s.note(Lsn(lsn), e);
        }
        let kept: Vec<u64> =
            (1..).zip(&events).filter(|(lsn, e)| s.keeps(Lsn(*lsn), e)).map(|(l, _)| l).collect();
        assert_eq!(kept, [1, 4, 6, 7, 8]);
        assert_eq!(s.len(), 4, "agent definition and change, context key, task");
    }
}
