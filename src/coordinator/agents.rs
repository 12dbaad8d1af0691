//! Agent commands: register (each registration a new incarnation), heartbeat, stop; and
//! liveness queries.

use super::transition::{end_claim, end_claims_of, End};
use super::{require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{AgentId, Event, LockName, Task, TaskId};
use crate::projection::{Agent, AgentStatus, State};
use crate::types::Timestamp;

/// What registering an agent asks for ([`Coordinator::register_agent_with`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registration {
    /// Its role.
    pub role: String,
    /// What it can do (the capabilities claims use when the caller names none).
    pub capabilities: Vec<String>,
    /// Take over the claims and locks of the agent's earlier incarnation instead of releasing
    /// them (a restarted process that knows it can finish the work it held).
    pub resume: bool,
}

impl Registration {
    /// A registration with this role, no capabilities, not resuming.
    pub fn new(role: impl Into<String>) -> Registration {
        Registration { role: role.into(), ..Registration::default() }
    }

    /// Sets the capabilities.
    #[must_use]
    pub fn capabilities(mut self, capabilities: Vec<String>) -> Registration {
        self.capabilities = capabilities;
        self
    }

    /// Resumes the earlier incarnation's claims and locks.
    #[must_use]
    pub fn resume(mut self, resume: bool) -> Registration {
        self.resume = resume;
        self
    }
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// The agent as registered now.
    pub agent: Agent,
    /// Its new incarnation: the LSN of its registration record.
    pub incarnation: u64,
    /// Claims of the earlier incarnation taken over (with `resume`), their leases renewed.
    pub resumed: Vec<Task>,
    /// Locks of the earlier incarnation kept (with `resume`).
    pub resumed_locks: Vec<LockName>,
    /// Claims of the earlier incarnation that ended: released as abandoned without `resume`,
    /// lapsed (their lease had ended) with it. Each counts against its task's attempts.
    pub released: Vec<TaskId>,
}

/// What a heartbeat did to the leases of the claims the agent held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatReport {
    /// Claims renewed, each with the new end of its lease.
    pub renewed: Vec<(TaskId, Timestamp)>,
    /// Claims whose lease had already ended: recorded as lapsed, no longer held.
    pub lapsed: Vec<TaskId>,
}

/// An agent as it stands now ([`Coordinator::list_agents`], [`Coordinator::agent_summary`]):
/// its registration, whether it is gone, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    /// The agent as registered (status, capabilities, last heartbeat, incarnation).
    pub agent: Agent,
    /// Active but silent for longer than its heartbeat timeout ([`Agent::is_gone`]) at the time
    /// a command run now would decide with.
    pub gone: bool,
    /// The tasks it holds under a lease that has not ended, oldest first.
    pub holds: Vec<TaskId>,
    /// The locks it holds under a lease that has not ended, by name.
    pub locks: Vec<LockName>,
}

impl Coordinator {
    /// Registers an agent with its role and capabilities; see
    /// [`Coordinator::register_agent_with`] (this registration does not resume).
    ///
    /// # Errors
    /// As [`Coordinator::register_agent_with`].
    pub async fn register_agent(
        &self,
        agent: &AgentId,
        role: &str,
        capabilities: Vec<String>,
    ) -> Result<Agent> {
        let registration = Registration::new(role).capabilities(capabilities);
        Ok(self.register_agent_with(agent, registration).await?.agent)
    }

    /// Registers an agent. Every registration starts a new **incarnation** (numbered by the
    /// LSN of its record; the etcd lease / Kafka producer-epoch idea): registering an id that is
    /// already active ends the earlier incarnation. Its claims are recorded as abandoned (each
    /// counts against its task's attempts) and its locks released, unless `resume` asks to take
    /// them over; then they are returned, with the leases of the claims renewed (a claim whose
    /// lease had already ended lapses instead). This handle remembers the incarnation: commands
    /// it runs later as this agent after another registration of the same id fail with
    /// [`Error::StaleIncarnation`], so an earlier process never extends or completes the claims
    /// of a later one.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an invalid role or capability; otherwise those of every
    /// [command](Coordinator#errors) but [`Error::StaleIncarnation`] (a registration starts a new
    /// incarnation).
    pub async fn register_agent_with(
        &self,
        agent: &AgentId,
        registration: Registration,
    ) -> Result<Registered> {
        crate::model::validate_name("role", &registration.role)?;
        for capability in &registration.capabilities {
            crate::model::validate_name("capability", capability)?;
        }
        let id = agent.clone();
        let lease = self.opts.lease;
        let timeout_ms = u64::try_from(self.opts.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX);
        let (first, (position, resumed, resumed_locks, released)) = self
            .execute_as_new(agent, move |state, now| {
                let mut events = Vec::new();
                let (mut resumed, mut resumed_locks, mut released) = (Vec::new(), Vec::new(), Vec::new());
                if state.agents.get(id.as_str()).is_some_and(|a| a.status == AgentStatus::Active) {
                    for task in state.tasks.held_by_agent(&id) {
                        let lapsed = task.lease_until.is_some_and(|until| until < now);
                        if registration.resume && !lapsed {
                            resumed.push(task.id.clone());
                            continue;
                        }
                        let end = if lapsed {
                            End::Lapsed
                        } else {
                            End::Abandoned { reason: "superseded by a new incarnation".into() }
                        };
                        events.extend(end_claim(state, task, end));
                        released.push(task.id.clone());
                    }
                    let locks = locks_of(state, &id);
                    if registration.resume {
                        resumed_locks = locks;
                    } else {
                        events.extend(
                            locks.into_iter().map(|name| Event::LockReleased { name, holder: id.clone() }),
                        );
                    }
                }
                let position = events.len() as u64;
                events.push(Event::AgentStarted {
                    agent: id.clone(),
                    role: registration.role.clone(),
                    capabilities: registration.capabilities.clone(),
                    heartbeat_timeout_ms: timeout_ms,
                });
                if !resumed.is_empty() {
                    events.push(Event::AgentHeartbeat { agent: id.clone(), lease_until: now.plus(lease) });
                }
                Ok((events, (position, resumed, resumed_locks, released)))
            })
            .await?;
        let incarnation = first.get() + position;
        self.remember_incarnation(agent, incarnation);
        let (found, resumed) = self.fresh(|s| {
            let resumed: Vec<Task> = resumed.iter().filter_map(|t| s.tasks.get(t).cloned()).collect();
            (s.agents.get(agent.as_str()).cloned(), resumed)
        })?;
        let agent =
            found.ok_or_else(|| Error::UnknownAgent { agent: agent.clone(), detail: String::new() })?;
        Ok(Registered { agent, incarnation, resumed, resumed_locks, released })
    }

    /// Says the agent is alive and renews the leases of the claims it holds, by
    /// [`CoordinatorOptions::lease`](super::CoordinatorOptions) from now. A claim whose lease
    /// already ended is not renewed: it is recorded as lapsed (counted against its task's
    /// attempts) and reported, and another agent may claim the task. The report lists both;
    /// when the agent held claims and every one had lapsed, the lapses are recorded and the
    /// answer is [`Error::LeaseLost`].
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; [`Error::LeaseLost`] when every claim
    /// it held had lapsed (the lapses are recorded); and those of every [command](Coordinator#errors).
    pub async fn heartbeat(&self, agent: &AgentId) -> Result<HeartbeatReport> {
        let id = agent.clone();
        let lease = self.opts.lease;
        let (_, (report, ended)) = self
            .execute(agent, move |state, now| {
                require_agent(state, &id)?;
                let until = now.plus(lease);
                let mut events = Vec::new();
                let mut report = HeartbeatReport::default();
                let mut ended: Option<Timestamp> = None;
                for task in state.tasks.held_by_agent(&id) {
                    match task.lease_until {
                        Some(end) if end < now => {
                            events.extend(end_claim(state, task, End::Lapsed));
                            report.lapsed.push(task.id.clone());
                            ended = Some(ended.map_or(end, |e| e.min(end)));
                        }
                        _ => report.renewed.push((task.id.clone(), until)),
                    }
                }
                events.push(Event::AgentHeartbeat { agent: id.clone(), lease_until: until });
                Ok((events, (report, ended)))
            })
            .await?;
        if report.renewed.is_empty() && !report.lapsed.is_empty() {
            return Err(Error::LeaseLost {
                agent: agent.clone(),
                tasks: report.lapsed.clone(),
                ended: ended.unwrap_or_default(),
            });
        }
        Ok(report)
    }

    /// Stops an agent: the claims it holds end as abandoned (each counts against its task's
    /// attempts, as a lapse does; the tasks are pending again or, attempts used up, failed for
    /// good), its locks are released.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; and those of every
    /// [command](Coordinator#errors).
    pub async fn stop_agent(&self, agent: &AgentId, reason: &str) -> Result<()> {
        let id = agent.clone();
        let reason = reason.to_owned();
        self.execute(agent, move |state, _| {
            require_agent(state, &id)?;
            let end = End::Abandoned { reason: format!("agent stopped: {reason}") };
            let mut events = end_claims_of(state, &id, &end);
            events.extend(
                locks_of(state, &id).into_iter().map(|name| Event::LockReleased { name, holder: id.clone() }),
            );
            events.push(Event::AgentStopped { agent: id.clone(), reason: reason.clone() });
            Ok((events, ()))
        })
        .await?;
        Ok(())
    }

    /// An agent as registered.
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn agent(&self, agent: &AgentId) -> Result<Option<Agent>> {
        self.fresh(|s| s.agents.get(agent.as_str()).cloned())
    }

    /// Every agent ever registered (active or stopped), by id, with whether it is gone and what
    /// it holds, as of the time a command run now would decide with.
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn list_agents(&self) -> Result<Vec<AgentSummary>> {
        self.read_at(|s, now| s.agents.values().map(|a| summary(s, a, now)).collect())
    }

    /// One agent as [`Coordinator::list_agents`] lists it; `None` if it was never registered.
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn agent_summary(&self, agent: &AgentId) -> Result<Option<AgentSummary>> {
        self.read_at(|s, now| s.agents.get(agent.as_str()).map(|a| summary(s, a, now)))
    }

    /// Active agents whose heartbeats stopped for longer than their timeout.
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn gone_agents(&self) -> Result<Vec<AgentId>> {
        self.read_at(|s, now| s.agents.values().filter(|a| a.is_gone(now)).map(|a| a.id.clone()).collect())
    }
}

impl AgentSummary {
    /// What [`Coordinator::list_agents`] says of `agent` in `state` at `now` (for a state of the
    /// past, [`Coordinator::state_at`]: whether it was gone then, what it held).
    #[must_use]
    pub fn at(state: &State, agent: &Agent, now: Timestamp) -> AgentSummary {
        summary(state, agent, now)
    }
}

/// What [`Coordinator::list_agents`] says of `agent` at `now`.
pub(super) fn summary(state: &State, agent: &Agent, now: Timestamp) -> AgentSummary {
    let mut holds: Vec<&Task> = state
        .tasks
        .held_by_agent(&agent.id)
        .filter(|t| t.lease_until.is_none_or(|until| until >= now))
        .collect();
    holds.sort_by_key(|t| t.created_lsn);
    let locks = state
        .locks
        .iter()
        .filter(|(_, l)| l.holder == agent.id && l.lease_until >= now)
        .map(|(name, _)| name.clone())
        .collect();
    AgentSummary {
        agent: agent.clone(),
        gone: agent.is_gone(now),
        holds: holds.into_iter().map(|t| t.id.clone()).collect(),
        locks,
    }
}

/// The locks `agent` holds, by name.
fn locks_of(state: &State, agent: &AgentId) -> Vec<LockName> {
    state.locks.iter().filter(|(_, l)| l.holder == *agent).map(|(name, _)| name.clone()).collect()
}
