//! Which events a subscriber wants: by event type, by agent, and by metadata fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::Recorded;
use super::ids::AgentId;

/// A filter on events. Each part that is set must match; an empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventFilter {
    /// Event type names ([`Event::type_name`](super::Event::type_name)); `None` matches any.
    pub event_types: Option<Vec<String>>,
    /// Agents: an event matches if its actor or the agent it is about is listed; `None` matches
    /// any.
    pub agents: Option<Vec<AgentId>>,
    /// Metadata fields that must be present with exactly these values.
    pub metadata: BTreeMap<String, String>,
}

impl EventFilter {
    /// Matches every event.
    #[must_use]
    pub fn all() -> EventFilter {
        EventFilter::default()
    }

    /// Only these event types.
    #[must_use]
    pub fn types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> EventFilter {
        self.event_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Only events by or about these agents.
    #[must_use]
    pub fn agents(mut self, agents: impl IntoIterator<Item = AgentId>) -> EventFilter {
        self.agents = Some(agents.into_iter().collect());
        self
    }

    /// Only events whose metadata has `key` = `value`.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> EventFilter {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Whether `recorded` passes the filter.
    #[must_use]
    pub fn matches(&self, recorded: &Recorded) -> bool {
        let event = &recorded.event;
        let type_ok =
            self.event_types.as_ref().is_none_or(|types| types.iter().any(|t| t == event.type_name()));
        let agent_ok = self.agents.as_ref().is_none_or(|agents| {
            agents.iter().any(|a| *a == recorded.actor || Some(a) == event.subject_agent())
        });
        let metadata_ok = self.metadata.is_empty()
            || event.metadata().is_some_and(|m| self.metadata.iter().all(|(k, v)| m.get(k) == Some(v)));
        type_ok && agent_ok && metadata_ok
    }
}

/// What an audit trail is asked for: the records about one task, context key or agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Subject {
    /// A task.
    Task(String),
    /// A context key.
    Context(String),
    /// An agent, as the actor or as the agent the event is about.
    Agent(String),
}

impl Subject {
    /// Whether `recorded` is about this subject.
    #[must_use]
    pub fn matches(&self, recorded: &Recorded) -> bool {
        let event = &recorded.event;
        match self {
            Subject::Task(id) => event.task().is_some_and(|t| t.as_str() == id),
            Subject::Context(key) => event.context_key().is_some_and(|k| k.as_str() == key),
            Subject::Agent(id) => {
                recorded.actor.as_str() == id || event.subject_agent().is_some_and(|a| a.as_str() == id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::Event;
    use crate::model::ids::TaskId;

    fn agent(name: &str) -> AgentId {
        AgentId::new(name).unwrap()
    }

    fn custom(actor: &str, kind: &str, meta: &[(&str, &str)]) -> Recorded {
        Recorded {
            actor: agent(actor),
            event: Event::Custom {
                event_type: kind.into(),
                data: serde_json::json!({}),
                metadata: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
        }
    }

    #[test]
    fn an_empty_filter_matches_everything() {
        assert!(EventFilter::all().matches(&custom("a", "x", &[])));
    }

    #[test]
    fn event_types_match_variant_names_and_custom_types() {
        let f = EventFilter::all().types(["build-done", "TaskClaimed"]);
        assert!(f.matches(&custom("a", "build-done", &[])));
        assert!(!f.matches(&custom("a", "deploy", &[])));
        let claimed = Recorded {
            actor: agent("a"),
            event: Event::TaskClaimed {
                task: TaskId::new("t").unwrap(),
                agent: agent("a"),
                lease_until: crate::types::Timestamp::default(),
            },
        };
        assert!(f.matches(&claimed));
    }

    #[test]
    fn agents_match_the_actor_or_the_subject() {
        let f = EventFilter::all().agents([agent("b")]);
        assert!(f.matches(&custom("b", "x", &[])));
        assert!(!f.matches(&custom("a", "x", &[])));
        let lapsed = Recorded {
            actor: agent("a"),
            event: Event::TaskLeaseLapsed { task: TaskId::new("t").unwrap(), agent: agent("b") },
        };
        assert!(f.matches(&lapsed), "a lapse of b's lease, noticed by a, concerns b");
    }

    #[test]
    fn metadata_fields_must_all_match() {
        let f = EventFilter::all().metadata("team", "red").metadata("env", "ci");
        assert!(f.matches(&custom("a", "x", &[("team", "red"), ("env", "ci"), ("extra", "1")])));
        assert!(!f.matches(&custom("a", "x", &[("team", "red")])));
        assert!(!f.matches(&custom("a", "x", &[("team", "blue"), ("env", "ci")])));
        let no_metadata =
            Recorded { actor: agent("a"), event: Event::TaskUnblocked { task: TaskId::new("t").unwrap() } };
        assert!(!f.matches(&no_metadata));
    }

    #[test]
    fn all_parts_must_match_together() {
        let f = EventFilter::all().types(["x"]).agents([agent("a")]).metadata("k", "v");
        assert!(f.matches(&custom("a", "x", &[("k", "v")])));
        assert!(!f.matches(&custom("b", "x", &[("k", "v")])));
        assert!(!f.matches(&custom("a", "y", &[("k", "v")])));
    }
}
