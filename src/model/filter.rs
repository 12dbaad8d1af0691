//! Which events a subscriber wants: by event type, by agent, and by metadata fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::Recorded;
use super::ids::{AgentId, ContextKey, TaskId};
use crate::types::Timestamp;

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

    /// Whether an event of type `type_name` ([`Event::type_name`](super::Event::type_name)) can
    /// match: a reader passes over a record whose type cannot without decoding it.
    #[must_use]
    pub fn may_match_type(&self, type_name: &str) -> bool {
        self.event_types.as_ref().is_none_or(|types| types.iter().any(|t| t == type_name))
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

/// What an audit asks for: records by several criteria at once. Each criterion that is set
/// must match (tasks, agents, keys and types are each "any of"); an empty query matches every
/// record. Times are record times, both bounds included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    /// Records about one of these tasks ([`Event::task`](super::Event::task)).
    pub tasks: Vec<TaskId>,
    /// Records by one of these agents, or about one ([`Event::subject_agent`](super::Event::subject_agent)).
    pub agents: Vec<AgentId>,
    /// Records about one of these context keys.
    pub keys: Vec<ContextKey>,
    /// Records of one of these types ([`Event::type_name`](super::Event::type_name): a variant
    /// name, or an application event's type).
    pub types: Vec<String>,
    /// Records appended at or after this time.
    pub since: Option<Timestamp>,
    /// Records appended at or before this time.
    pub until: Option<Timestamp>,
}

impl AuditQuery {
    /// Every record.
    #[must_use]
    pub fn all() -> AuditQuery {
        AuditQuery::default()
    }

    /// Also about `task` (any of those given).
    #[must_use]
    pub fn task(mut self, task: TaskId) -> AuditQuery {
        self.tasks.push(task);
        self
    }

    /// Also by or about `agent` (any of those given).
    #[must_use]
    pub fn agent(mut self, agent: AgentId) -> AuditQuery {
        self.agents.push(agent);
        self
    }

    /// Also about `key` (any of those given).
    #[must_use]
    pub fn key(mut self, key: ContextKey) -> AuditQuery {
        self.keys.push(key);
        self
    }

    /// Also of type `name` (any of those given).
    #[must_use]
    pub fn event_type(mut self, name: impl Into<String>) -> AuditQuery {
        self.types.push(name.into());
        self
    }

    /// Only records appended at or after `time`.
    #[must_use]
    pub fn since(mut self, time: Timestamp) -> AuditQuery {
        self.since = Some(time);
        self
    }

    /// Only records appended at or before `time`.
    #[must_use]
    pub fn until(mut self, time: Timestamp) -> AuditQuery {
        self.until = Some(time);
        self
    }

    /// The query of an audit trail of one [`Subject`]. `None` for a name no record can carry
    /// (not a valid id): nothing matches it.
    #[must_use]
    pub fn of_subject(subject: &Subject) -> Option<AuditQuery> {
        Some(match subject {
            Subject::Task(id) => AuditQuery::all().task(TaskId::new(id).ok()?),
            Subject::Context(key) => AuditQuery::all().key(ContextKey::new(key).ok()?),
            Subject::Agent(id) => AuditQuery::all().agent(AgentId::new(id).ok()?),
        })
    }

    /// Whether it asks for records by what they name (a task, an agent, a key or a type), which
    /// an index can answer, rather than only by time.
    #[must_use]
    pub fn names_something(&self) -> bool {
        !(self.tasks.is_empty() && self.agents.is_empty() && self.keys.is_empty() && self.types.is_empty())
    }

    /// Whether a record appended at `time` falls between the time bounds.
    #[must_use]
    pub fn in_time(&self, time: Timestamp) -> bool {
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time <= u)
    }

    /// Whether `recorded`, appended at `time`, matches every criterion.
    #[must_use]
    pub fn matches(&self, recorded: &Recorded, time: Timestamp) -> bool {
        let event = &recorded.event;
        self.in_time(time)
            && (self.tasks.is_empty() || event.task().is_some_and(|t| self.tasks.contains(t)))
            && (self.keys.is_empty() || event.context_key().is_some_and(|k| self.keys.contains(k)))
            && (self.types.is_empty() || self.types.iter().any(|t| t == event.type_name()))
            && (self.agents.is_empty()
                || self.agents.iter().any(|a| *a == recorded.actor || Some(a) == event.subject_agent()))
    }

    /// A test on a record's payload that [`AuditQuery::matches`] can only pass if it passes:
    /// every name the query asks for is stored verbatim in the payload of a record that names it
    /// (`MessagePack` strings are their UTF-8 bytes), so a payload that holds none of the names of
    /// one criterion cannot match. Lets a scan decode only the records that may match.
    #[must_use]
    pub fn prefilter(&self) -> Prefilter {
        let group = |names: Vec<&str>| -> Vec<memchr::memmem::Finder<'static>> {
            names.into_iter().map(|n| memchr::memmem::Finder::new(n).into_owned()).collect()
        };
        let groups = [
            self.tasks.iter().map(TaskId::as_str).collect::<Vec<_>>(),
            self.agents.iter().map(AgentId::as_str).collect(),
            self.keys.iter().map(ContextKey::as_str).collect(),
            self.types.iter().map(String::as_str).collect(),
        ];
        Prefilter { groups: groups.into_iter().filter(|g| !g.is_empty()).map(group).collect() }
    }
}

/// [`AuditQuery::prefilter`]: for each criterion with names, a finder per name.
#[derive(Debug, Clone)]
pub struct Prefilter {
    groups: Vec<Vec<memchr::memmem::Finder<'static>>>,
}

impl Prefilter {
    /// False only if the payload cannot hold a matching record.
    #[must_use]
    pub fn may_match(&self, payload: &[u8]) -> bool {
        self.groups.iter().all(|names| names.iter().any(|f| f.find(payload).is_some()))
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
