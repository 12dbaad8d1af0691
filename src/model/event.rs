//! What the coordination log records: one [`Recorded`] event per record, MessagePack-encoded,
//! record kind [`EVENT_RECORD_KIND`]. Every change of state is one of these; the projections are
//! a fold over them (log-format.md, "Coordination records").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::context::{access, Access, Viewer, Visibility, Withheld};
use super::dependency::Dependency;
use super::ids::{AgentId, BarrierName, ContextKey, DependencyId, LockName, TaskId};
use super::task::{ClaimPolicy, Task};
use crate::error::{Error, Result};
use crate::types::{Lsn, Timestamp};

/// Record kind of coordination events in the log.
pub const EVENT_RECORD_KIND: u16 = 1;

/// Record kinds the coordination layer owns on a store's log (1: events, 2: tombstones; the
/// rest kept for it). Raw appends of these kinds through the log of a coordinator or the command line are
/// refused ([`crate::Error::ReservedKind`]); applications use kinds from 16 up.
pub const COORDINATION_KINDS: std::ops::RangeInclusive<u16> = 1..=15;

/// One recorded event and the agent whose command produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The acting agent.
    pub actor: AgentId,
    /// What happened.
    pub event: Event,
}

impl Recorded {
    /// `MessagePack` bytes of the record payload.
    ///
    /// # Errors
    /// [`Error::Encode`] if rmp-serde refuses to encode the record.
    pub fn encode(&self) -> Result<Vec<u8>> {
        rmp_serde::to_vec_named(self).map_err(|e| Error::Encode { reason: e.to_string() })
    }

    /// Decodes a record payload (directly where it is laid out as [`Recorded::encode`] writes
    /// it, through rmp-serde otherwise: the result is the same).
    ///
    /// # Errors
    /// [`Error::Decode`] naming `lsn` if the payload is not a record of this model.
    pub fn decode(lsn: Lsn, payload: &[u8]) -> Result<Recorded> {
        if let Some(recorded) = super::decode::fast(payload) {
            return Ok(recorded);
        }
        rmp_serde::from_slice(payload).map_err(|e| Error::Decode { lsn, reason: e.to_string() })
    }

    /// Withholds a context value `reader` may not read at `now` ([`access`]): a
    /// [`Event::ContextUpdated`] whose value is withheld keeps its key, visibility, expiry and
    /// version, its value becomes JSON null and its metadata empty. Returns why it was withheld;
    /// `None` for a readable value and for every other event (nothing changed).
    pub fn withhold_from(&mut self, reader: &AgentId, now: Timestamp) -> Option<Withheld> {
        self.withhold(|owner, visibility, expires_at| access(owner, visibility, expires_at, reader, now))
    }

    /// [`Recorded::withhold_from`] for a [`Viewer`], which may be no agent in particular.
    pub fn withhold_for(&mut self, viewer: &Viewer, now: Timestamp) -> Option<Withheld> {
        self.withhold(|owner, visibility, expires_at| viewer.access(owner, visibility, expires_at, now))
    }

    fn withhold(
        &mut self,
        access: impl FnOnce(&AgentId, &Visibility, Option<Timestamp>) -> Access,
    ) -> Option<Withheld> {
        let Event::ContextUpdated { value, visibility, expires_at, metadata, .. } = &mut self.event else {
            return None;
        };
        let withheld = access(&self.actor, visibility, *expires_at).withheld()?;
        *value = serde_json::Value::Null;
        metadata.clear();
        Some(withheld)
    }

    /// Whether a payload is surely an [`Event::Custom`], by reading only the `MessagePack` header
    /// up to the event's variant name (no allocation, nothing decoded): replay passes over
    /// application events, which change no projection, without decoding their data. `false`
    /// when unsure (then the payload is decoded as usual).
    #[must_use]
    pub fn is_custom(payload: &[u8]) -> bool {
        super::decode::is_custom(payload)
    }

    /// The event type name ([`Event::type_name`]) of an encoded record, read from the first
    /// bytes of `payload` without decoding the rest; `None` when the payload is not laid out as
    /// this build's encoder writes it.
    #[must_use]
    pub fn type_name_of(payload: &[u8]) -> Option<&str> {
        super::decode::type_name(payload).and_then(|name| std::str::from_utf8(name).ok())
    }
}

/// The payload of `recorded`, once it is known to fit a record of at most `max` bytes and to
/// read back as written: the one check that no record the store cannot take or read is ever
/// appended, whatever a command (or a dead letter) put into it. Too large:
/// [`Error::ValueTooLarge`] naming the record's event type.
pub(crate) fn encode_checked(recorded: &Recorded, max: u32) -> Result<Vec<u8>> {
    let payload = recorded.encode()?;
    if payload.len() > max as usize {
        return Err(Error::ValueTooLarge {
            what: format!("a {} record", recorded.event.type_name()),
            size: payload.len(),
            max: max as usize,
        });
    }
    match Recorded::decode(Lsn(0), &payload) {
        Ok(back) if back == *recorded => Ok(payload),
        Ok(_) => Err(Error::Unreadable {
            event: recorded.event.type_name().to_owned(),
            reason: "it reads back as another record".into(),
        }),
        Err(Error::Decode { reason, .. }) => {
            Err(Error::Unreadable { event: recorded.event.type_name().to_owned(), reason })
        }
        Err(e) => Err(e),
    }
}

/// Everything that can happen in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// An agent registered.
    AgentStarted {
        /// The agent.
        agent: AgentId,
        /// Its role.
        role: String,
        /// What it can do.
        capabilities: Vec<String>,
        /// Silence longer than this makes it gone.
        heartbeat_timeout_ms: u64,
    },
    /// An agent said it is alive; the leases of its tasks run until `lease_until`.
    AgentHeartbeat {
        /// The agent.
        agent: AgentId,
        /// New end of the leases of the tasks it holds.
        lease_until: Timestamp,
    },
    /// An agent stopped; the tasks it held went back to Pending.
    AgentStopped {
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: String,
    },
    /// A task was created (the whole task as it starts).
    TaskCreated {
        /// The task.
        task: Box<Task>,
    },
    /// An agent claimed a task.
    TaskClaimed {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
        /// End of the lease.
        lease_until: Timestamp,
    },
    /// A claim's lease lapsed (noticed by the command that records this).
    TaskLeaseLapsed {
        /// The task.
        task: TaskId,
        /// Whose lease lapsed.
        agent: AgentId,
    },
    /// The holder gave a task back without failing it.
    TaskReleased {
        /// The task.
        task: TaskId,
        /// The agent that held it.
        agent: AgentId,
    },
    /// A task was blocked.
    TaskBlocked {
        /// The task.
        task: TaskId,
        /// Why.
        reason: String,
    },
    /// A blocked task is pending again.
    TaskUnblocked {
        /// The task.
        task: TaskId,
    },
    /// An output was added to a task.
    TaskOutputAdded {
        /// The task.
        task: TaskId,
        /// The output.
        output: String,
    },
    /// A task completed.
    TaskCompleted {
        /// The task.
        task: TaskId,
        /// Its outputs.
        outputs: Vec<String>,
    },
    /// A task failed for good.
    TaskFailed {
        /// The task.
        task: TaskId,
        /// Why.
        error: String,
    },
    /// A task failed an attempt and is pending again (attempts remain).
    TaskAttemptFailed {
        /// The task.
        task: TaskId,
        /// Why.
        error: String,
    },
    /// A context key was set.
    ContextUpdated {
        /// The key.
        key: ContextKey,
        /// The value.
        value: serde_json::Value,
        /// Who may read it.
        visibility: Visibility,
        /// When it stops being readable.
        expires_at: Option<Timestamp>,
        /// Metadata.
        metadata: BTreeMap<String, String>,
        /// The key's new version.
        version: u64,
    },
    /// A context key was deleted.
    ContextDeleted {
        /// The key.
        key: ContextKey,
        /// The key's new version.
        version: u64,
    },
    /// A dependency between two tasks was registered.
    DependencyRegistered {
        /// The dependency.
        dependency: Dependency,
    },
    /// A dependency is ready.
    DependencyReady {
        /// The dependency.
        dependency: DependencyId,
        /// Where the artifact is.
        artifact_path: Option<String>,
    },
    /// A dependency can no longer be met.
    DependencyFailed {
        /// The dependency.
        dependency: DependencyId,
        /// Why.
        reason: String,
    },
    /// A barrier was created.
    BarrierCreated {
        /// Its name.
        name: BarrierName,
        /// Who must signal.
        participants: Vec<String>,
    },
    /// A participant signalled a barrier.
    BarrierSignalled {
        /// The barrier.
        name: BarrierName,
        /// The participant.
        participant: String,
    },
    /// A lock was taken; its fencing token is the LSN of this record.
    LockAcquired {
        /// The lock.
        name: LockName,
        /// The holder.
        holder: AgentId,
        /// End of the lease.
        lease_until: Timestamp,
    },
    /// A lock was released (or its lapsed lease was noticed).
    LockReleased {
        /// The lock.
        name: LockName,
        /// The holder it had.
        holder: AgentId,
    },
    /// An application event.
    Custom {
        /// Its type.
        event_type: String,
        /// Its data.
        data: serde_json::Value,
        /// Metadata that filters match on.
        metadata: BTreeMap<String, String>,
    },
    /// A claim ended because its holder is no longer there: it stopped, or registered again as
    /// a new incarnation without resuming its claims. Counts against the task's attempts like
    /// a lapse; the task is pending again (or failed for good, in a following record).
    TaskAbandoned {
        /// The task.
        task: TaskId,
        /// The agent that held it.
        agent: AgentId,
        /// Why the holder is gone (`stopped: ...`, `superseded by incarnation N`).
        reason: String,
    },
    /// A task was called off (final); dependencies on it fail.
    TaskCancelled {
        /// The task.
        task: TaskId,
        /// Why.
        reason: String,
    },
    /// The store's claim order was set; every later claim follows it.
    ClaimPolicySet {
        /// The order.
        policy: ClaimPolicy,
    },
    /// A durable subscription gave up on the record at `lsn`: it had been handed out
    /// `deliveries` times (at least the subscription's `max_deliveries`) without being
    /// acknowledged. The subscription's cursor then moved past it (log-format.md, "Cursor
    /// files"). Changes no state.
    DeliveryDeadLettered {
        /// The subscribing agent.
        agent: AgentId,
        /// The subscription's name.
        subscription: String,
        /// The record given up on.
        lsn: Lsn,
        /// How many times it had been handed out.
        deliveries: u32,
    },
}

/// The type names of the store's own records ([`Event::type_name`] of every variant but
/// [`Event::Custom`]): an application event may not take one, so that a filter by type never
/// mixes the two.
pub const COORDINATION_TYPES: [&str; 26] = [
    "AgentStarted",
    "AgentHeartbeat",
    "AgentStopped",
    "TaskCreated",
    "TaskClaimed",
    "TaskLeaseLapsed",
    "TaskReleased",
    "TaskBlocked",
    "TaskUnblocked",
    "TaskOutputAdded",
    "TaskCompleted",
    "TaskFailed",
    "TaskAttemptFailed",
    "ContextUpdated",
    "ContextDeleted",
    "DependencyRegistered",
    "DependencyReady",
    "DependencyFailed",
    "BarrierCreated",
    "BarrierSignalled",
    "LockAcquired",
    "LockReleased",
    "TaskAbandoned",
    "TaskCancelled",
    "ClaimPolicySet",
    "DeliveryDeadLettered",
];

impl Event {
    /// The event's type name as filters see it: the variant name, or a custom event's type.
    #[must_use]
    pub fn type_name(&self) -> &str {
        match self {
            Event::AgentStarted { .. } => "AgentStarted",
            Event::AgentHeartbeat { .. } => "AgentHeartbeat",
            Event::AgentStopped { .. } => "AgentStopped",
            Event::TaskCreated { .. } => "TaskCreated",
            Event::TaskClaimed { .. } => "TaskClaimed",
            Event::TaskLeaseLapsed { .. } => "TaskLeaseLapsed",
            Event::TaskReleased { .. } => "TaskReleased",
            Event::TaskBlocked { .. } => "TaskBlocked",
            Event::TaskUnblocked { .. } => "TaskUnblocked",
            Event::TaskOutputAdded { .. } => "TaskOutputAdded",
            Event::TaskCompleted { .. } => "TaskCompleted",
            Event::TaskFailed { .. } => "TaskFailed",
            Event::TaskAttemptFailed { .. } => "TaskAttemptFailed",
            Event::ContextUpdated { .. } => "ContextUpdated",
            Event::ContextDeleted { .. } => "ContextDeleted",
            Event::DependencyRegistered { .. } => "DependencyRegistered",
            Event::DependencyReady { .. } => "DependencyReady",
            Event::DependencyFailed { .. } => "DependencyFailed",
            Event::BarrierCreated { .. } => "BarrierCreated",
            Event::BarrierSignalled { .. } => "BarrierSignalled",
            Event::LockAcquired { .. } => "LockAcquired",
            Event::LockReleased { .. } => "LockReleased",
            Event::Custom { event_type, .. } => event_type,
            Event::TaskAbandoned { .. } => "TaskAbandoned",
            Event::TaskCancelled { .. } => "TaskCancelled",
            Event::ClaimPolicySet { .. } => "ClaimPolicySet",
            Event::DeliveryDeadLettered { .. } => "DeliveryDeadLettered",
        }
    }

    /// The task the event is about, if any.
    #[must_use]
    pub fn task(&self) -> Option<&TaskId> {
        match self {
            Event::TaskCreated { task } => Some(&task.id),
            Event::TaskClaimed { task, .. }
            | Event::TaskLeaseLapsed { task, .. }
            | Event::TaskReleased { task, .. }
            | Event::TaskBlocked { task, .. }
            | Event::TaskUnblocked { task }
            | Event::TaskOutputAdded { task, .. }
            | Event::TaskCompleted { task, .. }
            | Event::TaskFailed { task, .. }
            | Event::TaskAttemptFailed { task, .. }
            | Event::TaskAbandoned { task, .. }
            | Event::TaskCancelled { task, .. } => Some(task),
            _ => None,
        }
    }

    /// The agent the event is about (besides the actor), if any.
    #[must_use]
    pub fn subject_agent(&self) -> Option<&AgentId> {
        match self {
            Event::AgentStarted { agent, .. }
            | Event::AgentHeartbeat { agent, .. }
            | Event::AgentStopped { agent, .. }
            | Event::TaskClaimed { agent, .. }
            | Event::TaskLeaseLapsed { agent, .. }
            | Event::TaskReleased { agent, .. }
            | Event::TaskAbandoned { agent, .. } => Some(agent),
            Event::LockAcquired { holder, .. } | Event::LockReleased { holder, .. } => Some(holder),
            _ => None,
        }
    }

    /// The context key the event is about, if any.
    #[must_use]
    pub fn context_key(&self) -> Option<&ContextKey> {
        match self {
            Event::ContextUpdated { key, .. } | Event::ContextDeleted { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Metadata filters match on (custom events carry it).
    #[must_use]
    pub fn metadata(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Event::Custom { metadata, .. } | Event::ContextUpdated { metadata, .. } => Some(metadata),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContextKey, LockName, TaskId};

    #[test]
    fn is_custom_agrees_with_decoding() {
        let custom_named = AgentId::new("Custom").unwrap();
        let events = [
            Event::Custom {
                event_type: "event".into(),
                data: serde_json::json!({"Custom": 1}),
                metadata: BTreeMap::new(),
            },
            Event::Custom {
                event_type: "Custom".into(),
                data: serde_json::json!(null),
                metadata: BTreeMap::new(),
            },
            Event::ContextUpdated {
                key: ContextKey::new("Custom").unwrap(),
                value: serde_json::json!("Custom"),
                visibility: Visibility::Shared,
                expires_at: None,
                metadata: BTreeMap::new(),
                version: 1,
            },
            Event::AgentHeartbeat { agent: custom_named.clone(), lease_until: Timestamp(5) },
            Event::TaskClaimed {
                task: TaskId::generate(),
                agent: custom_named.clone(),
                lease_until: Timestamp(1),
            },
            Event::LockAcquired {
                name: LockName::new("l").unwrap(),
                holder: custom_named.clone(),
                lease_until: Timestamp(1),
            },
        ];
        for event in events {
            let payload = Recorded { actor: custom_named.clone(), event }.encode().unwrap();
            let decoded = Recorded::decode(Lsn(1), &payload).unwrap();
            assert_eq!(
                Recorded::is_custom(&payload),
                matches!(decoded.event, Event::Custom { .. }),
                "{decoded:?}"
            );
        }
        assert!(!Recorded::is_custom(b""));
        assert!(!Recorded::is_custom(&[0xde, 0xad, 0xbe, 0xef]));
    }

    #[test]
    fn a_record_that_would_not_read_back_is_refused_before_it_is_appended() {
        // Encoding and comparing 1,100 levels recurses deeper than a test thread's default stack
        // in a debug build.
        std::thread::Builder::new().stack_size(64 << 20).spawn(refuse_deep).unwrap().join().unwrap();
    }

    fn refuse_deep() {
        let deep = (0..1100).fold(serde_json::Value::Null, |v, _| serde_json::Value::Array(vec![v]));
        let event = Event::Custom {
            event_type: "deep".into(),
            data: deep,
            metadata: std::collections::BTreeMap::new(),
        };
        let actor = AgentId::new("a").unwrap();
        let err = encode_checked(&Recorded { actor: actor.clone(), event }, 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::Unreadable { event, reason } if event == "deep" && reason.contains("depth")),
            "{err}"
        );
        let fine = Event::Custom {
            event_type: "ok".into(),
            data: serde_json::json!([1]),
            metadata: std::collections::BTreeMap::new(),
        };
        assert!(encode_checked(&Recorded { actor: actor.clone(), event: fine.clone() }, 1 << 20).is_ok());
        let err = encode_checked(&Recorded { actor, event: fine }, 10).unwrap_err();
        assert!(matches!(&err, Error::ValueTooLarge { what, max: 10, .. } if what == "a ok record"), "{err}");
    }
}
