//! Reading coordination records without serde's generic machinery: replay decodes millions of
//! records, and the generic path spends most of its time dispatching on field and variant
//! names rather than copying data.
//!
//! [`fast`] reads a payload exactly as [`Recorded::encode`] writes it (named `MessagePack`,
//! log-format.md "Coordination records": every field present, in declaration order). Anything
//! else (another field order, a missing or unknown field, an unknown variant, another encoding
//! of a value) it declines, and [`Recorded::decode`] hands the payload to rmp-serde. So it
//! changes how fast records are read, never what they mean: where it answers, it answers what
//! rmp-serde would (tested differentially over every variant and every corruption of them).

mod input;

use super::context::Visibility;
use super::dependency::{ArtifactType, Dependency, DependencyStatus};
use super::event::{Event, Recorded};
use super::ids::{AgentId, BarrierName, ContextKey, DependencyId, LockName, TaskId};
use super::task::{ClaimPolicy, Priority, Task, TaskStatus};
use crate::types::Lsn;
use input::Input;

/// The record in `payload`, or `None` where rmp-serde must decide.
pub(super) fn fast(payload: &[u8]) -> Option<Recorded> {
    let mut input = Input { rest: payload };
    input.map(2)?;
    let actor = input.field(b"actor", Input::agent)?;
    let event = input.field(b"event", Input::event)?;
    Some(Recorded { actor, event })
}

/// The name of the event's variant in `payload`, and the input after it, reading only up to it
/// (past the actor). `None` when the payload is not laid out as the encoder writes it.
fn variant(payload: &[u8]) -> Option<(&[u8], Input<'_>)> {
    let mut input = Input { rest: payload };
    let fields = input.map_len()?;
    for _ in 0..fields {
        match input.raw_str()? {
            b"actor" => {
                input.raw_str()?;
            }
            b"event" => {
                input.map(1)?;
                let variant = input.raw_str()?;
                return Some((variant, input));
            }
            _ => return None,
        }
    }
    None
}

/// Whether `payload` is surely an [`Event::Custom`], reading only up to the variant name.
pub(super) fn is_custom(payload: &[u8]) -> bool {
    variant(payload).is_some_and(|(name, _)| name == b"Custom")
}

/// The event's type name ([`Event::type_name`]) as `payload` stores it, reading only up to it:
/// the variant name, or for an [`Event::Custom`] its `event_type`. `None` when the payload is not
/// laid out as the encoder writes it (the caller decodes it in full then).
pub(super) fn type_name(payload: &[u8]) -> Option<&[u8]> {
    let (name, mut input) = variant(payload)?;
    if name != b"Custom" {
        return Some(name);
    }
    input.map_len()?;
    if input.raw_str()? == b"event_type" {
        input.raw_str()
    } else {
        None
    }
}

/// The record types, read field by field in declaration order.
impl Input<'_> {
    fn agent(&mut self) -> Option<AgentId> {
        let bytes = self.raw_str()?;
        RECENT_AGENTS.with_borrow_mut(|recent| recent.get(bytes, AgentId::from_record))
    }

    fn task_id(&mut self) -> Option<TaskId> {
        let bytes = self.raw_str()?;
        RECENT_TASKS.with_borrow_mut(|recent| recent.get(bytes, TaskId::from_record))
    }

    fn key(&mut self) -> Option<ContextKey> {
        self.text().map(ContextKey::from_record)
    }

    fn dependency_id(&mut self) -> Option<DependencyId> {
        self.text().map(DependencyId::from_record)
    }

    fn barrier(&mut self) -> Option<BarrierName> {
        self.text().map(BarrierName::from_record)
    }

    fn lock(&mut self) -> Option<LockName> {
        self.text().map(LockName::from_record)
    }

    fn priority(&mut self) -> Option<Priority> {
        match self.variant()? {
            (b"Low", false) => Some(Priority::Low),
            (b"Normal", false) => Some(Priority::Normal),
            (b"High", false) => Some(Priority::High),
            (b"Critical", false) => Some(Priority::Critical),
            _ => None,
        }
    }

    fn status(&mut self) -> Option<TaskStatus> {
        match self.variant()? {
            (b"Pending", false) => Some(TaskStatus::Pending),
            (b"InProgress", false) => Some(TaskStatus::InProgress),
            (b"Blocked", true) => self.string().map(TaskStatus::Blocked),
            (b"Completed", false) => Some(TaskStatus::Completed),
            (b"Failed", true) => self.string().map(TaskStatus::Failed),
            (b"Cancelled", true) => self.string().map(TaskStatus::Cancelled),
            _ => None,
        }
    }

    fn visibility(&mut self) -> Option<Visibility> {
        match self.variant()? {
            (b"Private", false) => Some(Visibility::Private),
            (b"Shared", false) => Some(Visibility::Shared),
            (b"Restricted", true) => {
                let n = self.array_len()?;
                let mut agents = Vec::with_capacity(n.min(self.rest.len()));
                for _ in 0..n {
                    agents.push(self.agent()?);
                }
                Some(Visibility::Restricted(agents))
            }
            _ => None,
        }
    }

    fn task(&mut self) -> Option<Task> {
        self.map(18)?;
        Some(Task {
            id: self.field(b"id", Input::task_id)?,
            name: self.field(b"name", Input::string)?,
            description: self.field(b"description", Input::string)?,
            priority: self.field(b"priority", Input::priority)?,
            required_capabilities: self.field(b"required_capabilities", Input::strings)?,
            status: self.field(b"status", Input::status)?,
            assigned_to: self.field(b"assigned_to", |i| i.option(Input::agent))?,
            outputs: self.field(b"outputs", Input::strings)?,
            metadata: self.field(b"metadata", |i| i.json(0))?,
            created_at: self.field(b"created_at", Input::timestamp)?,
            updated_at: self.field(b"updated_at", Input::timestamp)?,
            attempts: self.field(b"attempts", Input::int)?,
            max_attempts: self.field(b"max_attempts", Input::int)?,
            failures: self.field(b"failures", Input::int)?,
            lease_until: self.field(b"lease_until", |i| i.option(Input::timestamp))?,
            created_by: self.field(b"created_by", Input::agent)?,
            idempotency_key: self.field(b"idempotency_key", |i| i.option(Input::string))?,
            created_lsn: self.field(b"created_lsn", Input::int)?,
        })
    }

    fn dependency(&mut self) -> Option<Dependency> {
        self.map(6)?;
        Some(Dependency {
            id: self.field(b"id", Input::dependency_id)?,
            provider: self.field(b"provider", Input::task_id)?,
            consumer: self.field(b"consumer", Input::task_id)?,
            artifact_type: self.field(b"artifact_type", |i| match i.variant()? {
                (b"File", false) => Some(ArtifactType::File),
                (b"Context", false) => Some(ArtifactType::Context),
                (b"Completion", false) => Some(ArtifactType::Completion),
                (b"Other", true) => i.string().map(ArtifactType::Other),
                _ => None,
            })?,
            artifact_path: self.field(b"artifact_path", |i| i.option(Input::string))?,
            status: self.field(b"status", |i| match i.variant()? {
                (b"Pending", false) => Some(DependencyStatus::Pending),
                (b"InProgress", false) => Some(DependencyStatus::InProgress),
                (b"Ready", false) => Some(DependencyStatus::Ready),
                (b"Failed", true) => i.string().map(DependencyStatus::Failed),
                _ => None,
            })?,
        })
    }

    /// An event: `{variant: {fields}}`.
    fn event(&mut self) -> Option<Event> {
        self.map(1)?;
        let variant = self.raw_str()?;
        let fields = self.map_len()?;
        let expected = |n: usize| (fields == n).then_some(());
        Some(match variant {
            b"AgentStarted" => {
                expected(4)?;
                Event::AgentStarted {
                    agent: self.field(b"agent", Input::agent)?,
                    role: self.field(b"role", Input::string)?,
                    capabilities: self.field(b"capabilities", Input::strings)?,
                    heartbeat_timeout_ms: self.field(b"heartbeat_timeout_ms", Input::int)?,
                }
            }
            b"AgentHeartbeat" => {
                expected(2)?;
                Event::AgentHeartbeat {
                    agent: self.field(b"agent", Input::agent)?,
                    lease_until: self.field(b"lease_until", Input::timestamp)?,
                }
            }
            b"AgentStopped" => {
                expected(2)?;
                Event::AgentStopped {
                    agent: self.field(b"agent", Input::agent)?,
                    reason: self.field(b"reason", Input::string)?,
                }
            }
            b"TaskCreated" => {
                expected(1)?;
                Event::TaskCreated { task: Box::new(self.field(b"task", Input::task)?) }
            }
            b"TaskClaimed" => {
                expected(3)?;
                Event::TaskClaimed {
                    task: self.field(b"task", Input::task_id)?,
                    agent: self.field(b"agent", Input::agent)?,
                    lease_until: self.field(b"lease_until", Input::timestamp)?,
                }
            }
            b"TaskLeaseLapsed" | b"TaskReleased" => {
                expected(2)?;
                let task = self.field(b"task", Input::task_id)?;
                let agent = self.field(b"agent", Input::agent)?;
                match variant {
                    b"TaskLeaseLapsed" => Event::TaskLeaseLapsed { task, agent },
                    _ => Event::TaskReleased { task, agent },
                }
            }
            b"TaskBlocked" => {
                expected(2)?;
                Event::TaskBlocked {
                    task: self.field(b"task", Input::task_id)?,
                    reason: self.field(b"reason", Input::string)?,
                }
            }
            b"TaskUnblocked" => {
                expected(1)?;
                Event::TaskUnblocked { task: self.field(b"task", Input::task_id)? }
            }
            b"TaskOutputAdded" => {
                expected(2)?;
                Event::TaskOutputAdded {
                    task: self.field(b"task", Input::task_id)?,
                    output: self.field(b"output", Input::string)?,
                }
            }
            b"TaskCompleted" => {
                expected(2)?;
                Event::TaskCompleted {
                    task: self.field(b"task", Input::task_id)?,
                    outputs: self.field(b"outputs", Input::strings)?,
                }
            }
            b"TaskFailed" | b"TaskAttemptFailed" => {
                expected(2)?;
                let task = self.field(b"task", Input::task_id)?;
                let error = self.field(b"error", Input::string)?;
                match variant {
                    b"TaskFailed" => Event::TaskFailed { task, error },
                    _ => Event::TaskAttemptFailed { task, error },
                }
            }
            b"ContextUpdated" => {
                expected(6)?;
                Event::ContextUpdated {
                    key: self.field(b"key", Input::key)?,
                    value: self.field(b"value", |i| i.json(0))?,
                    visibility: self.field(b"visibility", Input::visibility)?,
                    expires_at: self.field(b"expires_at", |i| i.option(Input::timestamp))?,
                    metadata: self.field(b"metadata", Input::string_map)?,
                    version: self.field(b"version", Input::int)?,
                }
            }
            b"ContextDeleted" => {
                expected(2)?;
                Event::ContextDeleted {
                    key: self.field(b"key", Input::key)?,
                    version: self.field(b"version", Input::int)?,
                }
            }
            b"DependencyRegistered" => {
                expected(1)?;
                Event::DependencyRegistered { dependency: self.field(b"dependency", Input::dependency)? }
            }
            b"DependencyReady" => {
                expected(2)?;
                Event::DependencyReady {
                    dependency: self.field(b"dependency", Input::dependency_id)?,
                    artifact_path: self.field(b"artifact_path", |i| i.option(Input::string))?,
                }
            }
            b"DependencyFailed" => {
                expected(2)?;
                Event::DependencyFailed {
                    dependency: self.field(b"dependency", Input::dependency_id)?,
                    reason: self.field(b"reason", Input::string)?,
                }
            }
            b"BarrierCreated" => {
                expected(2)?;
                Event::BarrierCreated {
                    name: self.field(b"name", Input::barrier)?,
                    participants: self.field(b"participants", Input::strings)?,
                }
            }
            b"BarrierSignalled" => {
                expected(2)?;
                Event::BarrierSignalled {
                    name: self.field(b"name", Input::barrier)?,
                    participant: self.field(b"participant", Input::string)?,
                }
            }
            b"LockAcquired" => {
                expected(3)?;
                Event::LockAcquired {
                    name: self.field(b"name", Input::lock)?,
                    holder: self.field(b"holder", Input::agent)?,
                    lease_until: self.field(b"lease_until", Input::timestamp)?,
                }
            }
            b"LockReleased" => {
                expected(2)?;
                Event::LockReleased {
                    name: self.field(b"name", Input::lock)?,
                    holder: self.field(b"holder", Input::agent)?,
                }
            }
            b"TaskAbandoned" => {
                expected(3)?;
                Event::TaskAbandoned {
                    task: self.field(b"task", Input::task_id)?,
                    agent: self.field(b"agent", Input::agent)?,
                    reason: self.field(b"reason", Input::string)?,
                }
            }
            b"TaskCancelled" => {
                expected(2)?;
                Event::TaskCancelled {
                    task: self.field(b"task", Input::task_id)?,
                    reason: self.field(b"reason", Input::string)?,
                }
            }
            b"ClaimPolicySet" => {
                expected(1)?;
                Event::ClaimPolicySet {
                    policy: self.field(b"policy", |i| match i.variant()? {
                        (b"Strict", false) => Some(ClaimPolicy::Strict),
                        (b"Aging", true) => {
                            i.map(1)?;
                            Some(ClaimPolicy::Aging { every_ms: i.field(b"every_ms", Input::int)? })
                        }
                        _ => None,
                    })?,
                }
            }
            b"Custom" => {
                expected(3)?;
                Event::Custom {
                    event_type: self.field(b"event_type", Input::string)?,
                    data: self.field(b"data", |i| i.json(0))?,
                    metadata: self.field(b"metadata", Input::string_map)?,
                }
            }
            b"DeliveryDeadLettered" => {
                expected(4)?;
                Event::DeliveryDeadLettered {
                    agent: self.field(b"agent", Input::agent)?,
                    subscription: self.field(b"subscription", Input::string)?,
                    lsn: Lsn(self.field(b"lsn", Input::int)?),
                    deliveries: self.field(b"deliveries", Input::int)?,
                }
            }
            _ => return None,
        })
    }
}

thread_local! {
    /// Agent ids this thread read last: the same few appear in nearly every record (as actor,
    /// holder, owner), and sharing one copy saves an allocation per record and memory in the
    /// state.
    static RECENT_AGENTS: std::cell::RefCell<Recent<AgentId>> = const { std::cell::RefCell::new(Recent::new()) };
    /// Task ids this thread read last: a task's creation, claim and completion follow closely.
    static RECENT_TASKS: std::cell::RefCell<Recent<TaskId>> = const { std::cell::RefCell::new(Recent::new()) };
}

/// The last few names read, newest first.
struct Recent<T> {
    names: [Option<T>; 4],
}

impl<T: Clone + AsRef<str>> Recent<T> {
    const fn new() -> Recent<T> {
        Recent { names: [None, None, None, None] }
    }

    /// The name spelled `bytes`: a shared copy if it was read lately, else made by `make` (and
    /// remembered). `None` if `bytes` is not UTF-8.
    fn get(&mut self, bytes: &[u8], make: impl FnOnce(&str) -> T) -> Option<T> {
        if let Some(known) = self.names.iter().flatten().find(|n| n.as_ref().as_bytes() == bytes) {
            return Some(known.clone());
        }
        let name = make(std::str::from_utf8(bytes).ok()?);
        self.names.rotate_right(1);
        if let Some(newest) = self.names.first_mut() {
            *newest = Some(name.clone());
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests;
