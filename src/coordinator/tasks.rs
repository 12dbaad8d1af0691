//! Task commands: create (idempotent), claim with leases, complete, fail, release, block, and the
//! queries on tasks.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::claims::{self, After};
use super::transition::{self, end_claim, End};
use super::{require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{
    AgentId, ArtifactType, Dependency, DependencyId, DependencyStatus, Event, NewTask, Task, TaskId,
    TaskStatus,
};
use crate::types::Timestamp;

impl Coordinator {
    /// Creates a task. With an idempotency key that was used before, or an id that exists, and
    /// the same definition, returns the task as it is and appends nothing; with another
    /// definition it is [`Error::AlreadyExists`] naming the first difference (as idempotency keys
    /// of HTTP APIs: a key reused for another request is a conflict). The name and required
    /// capabilities must be valid names (not empty, at most 256 bytes, no control characters). With the id of a task that exists (whatever the key): the same
    /// definition returns that task as it is now and appends nothing; another is
    /// [`Error::AlreadyExists`] naming the first field that differs (name, description,
    /// priority, required capabilities (in any order), metadata, `max_attempts`, idempotency key).
    ///
    /// # Errors
    /// [`Error::ValueTooDeep`] or [`Error::ValueTooLarge`] for metadata past the limits;
    /// [`Error::InvalidName`] for an invalid name or required capability; [`Error::InvalidArgument`] for
    /// `max_attempts` of 0; [`Error::UnknownAgent`] unless `actor` is registered and active;
    /// [`Error::AlreadyExists`] for an idempotency key or id already used with another definition; and those
    /// of every [command](Coordinator#errors).
    pub async fn create_task(&self, actor: &AgentId, spec: NewTask) -> Result<Task> {
        self.create_with_dependencies(actor, spec, Vec::new(), Providers::Completed).await
    }

    /// Creates a task and registers its dependencies on the tasks `providers` (each needing the
    /// provider's completion, [`ArtifactType::Completion`]) in one atomic command, whatever state
    /// the providers are in: each dependency starts as its provider's status makes it
    /// ([`DependencyStatus::following`]: ready on a completed provider, in progress on a claimed
    /// one, pending on a pending or blocked one), and on a provider that failed for good or was
    /// cancelled it starts failed and the new task is created blocked, with a reason naming that
    /// provider, since it can never become ready. A provider named twice counts once. Given the
    /// id (or idempotency key) of a task that exists, as [`Coordinator::create_task`], where the
    /// same definition also means depending on every provider asked for.
    ///
    /// # Errors
    /// As [`Coordinator::create_task`]; [`Error::UnknownTask`] naming the first provider that does
    /// not exist (nothing is created); [`Error::InvalidName`] for task ids that make too long a
    /// dependency id.
    pub async fn create_task_depending_on(
        &self,
        actor: &AgentId,
        spec: NewTask,
        providers: Vec<TaskId>,
    ) -> Result<Task> {
        let mut seen = BTreeSet::new();
        let providers = providers.into_iter().filter(|p| seen.insert(p.clone())).collect();
        self.create_with_dependencies(actor, spec, providers, Providers::AnyState).await
    }

    /// The original design's `coordinate_task`: refuses while any of `dependencies` (provider
    /// tasks) has not completed; otherwise creates the task and registers its (ready)
    /// dependencies on them. Given the id of a task that exists, as
    /// [`Coordinator::create_task`], where the same definition also means depending on every
    /// provider in `dependencies`.
    ///
    /// # Errors
    /// As [`Coordinator::create_task`]; [`Error::DependenciesNotReady`] naming the providers that have not
    /// completed (or do not exist); [`Error::InvalidName`] for task ids that make too long a dependency id.
    pub async fn coordinate_task(
        &self,
        actor: &AgentId,
        spec: NewTask,
        dependencies: Vec<TaskId>,
    ) -> Result<Task> {
        self.create_with_dependencies(actor, spec, dependencies, Providers::Completed).await
    }

    async fn create_with_dependencies(
        &self,
        actor: &AgentId,
        spec: NewTask,
        providers: Vec<TaskId>,
        accept: Providers,
    ) -> Result<Task> {
        self.check_task("task metadata", &spec)?;
        let actor_id = actor.clone();
        let (_, id) = self
            .execute(actor, move |state, _| {
                require_agent(state, &actor_id)?;
                if let Some(existing) =
                    spec.idempotency_key.as_deref().and_then(|k| state.tasks.by_idempotency_key(k))
                {
                    // As idempotency keys of HTTP APIs: the same request again gets the first
                    // answer; the key reused for another request is a conflict.
                    super::define::existing_task(state, existing, &spec, &providers)?;
                    return Ok((Vec::new(), existing.id.clone()));
                }
                let id = spec.id.clone().unwrap_or_else(TaskId::generate);
                if let Some(existing) = state.tasks.get(&id) {
                    super::define::existing_task(state, existing, &spec, &providers)?;
                    return Ok((Vec::new(), id));
                }
                if accept == Providers::Completed {
                    let unmet: Vec<String> = providers
                        .iter()
                        .filter(|p| state.tasks.get(p).is_none_or(|t| t.status != TaskStatus::Completed))
                        .map(ToString::to_string)
                        .collect();
                    if !unmet.is_empty() {
                        return Err(Error::DependenciesNotReady { task: id.clone(), unmet });
                    }
                }
                let events = creation(state, &actor_id, &id, spec.clone(), &providers, &BTreeSet::new())?;
                Ok((events, id))
            })
            .await?;
        self.get_task(&id)?.ok_or(Error::UnknownTask { task: id })
    }

    /// Checks the definition of a new task: its metadata (named `metadata` in errors) within the
    /// limits, a valid name and valid required capabilities, at least one attempt.
    pub(super) fn check_task(&self, metadata: &str, spec: &NewTask) -> Result<()> {
        self.check_value(metadata, &spec.metadata)?;
        crate::model::validate_name("task name", &spec.name)?;
        for capability in &spec.required_capabilities {
            crate::model::validate_name("required capability", capability)?;
        }
        if spec.max_attempts == 0 {
            return Err(Error::InvalidArgument { name: "max_attempts", reason: "must be at least 1".into() });
        }
        Ok(())
    }

    /// Claims the best task `agent` can do (log-format.md, "Claim order"): among the tasks
    /// claimable now (pending or with a lapsed lease, every required capability among
    /// `capabilities`, every dependency ready), the highest priority first (effective priority
    /// under [`ClaimPolicy::Aging`](crate::model::ClaimPolicy)), then the oldest. `capabilities`:
    /// the caller's list when given (an empty list means none), the agent's registered ones when
    /// `None`. Every lapsed lease found is recorded (and a task whose attempts it used up fails
    /// for good). The claim holds a lease of [`CoordinatorOptions::lease`](super::CoordinatorOptions)
    /// that [`Coordinator::heartbeat`] renews. `None` if nothing is claimable; the same rule as
    /// [`Coordinator::get_ready_tasks`], whose first task this is.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; and those of every
    /// [command](Coordinator#errors). Nothing to claim is `None`, not an error.
    pub async fn claim_next_task(
        &self,
        agent: &AgentId,
        capabilities: Option<&[String]>,
    ) -> Result<Option<Task>> {
        let id = agent.clone();
        let capabilities = capabilities.map(<[String]>::to_vec);
        let lease = self.opts.lease;
        let (_, claimed) = self
            .execute(agent, move |state, now| {
                require_agent(state, &id)?;
                claims::claim(state, &id, capabilities.as_deref(), lease, now, After::Nothing)
            })
            .await?;
        match claimed {
            Some(id) => self.get_task(&id),
            None => Ok(None),
        }
    }

    /// As [`Coordinator::claim_next_task`], waiting up to `timeout` for a task to become
    /// claimable: `None` if none did in that time. Between attempts it sleeps until the log
    /// holds a record it has not seen (from any process: a new task, a completion that readies a
    /// dependency, a release) or until the next lease of a claim ends (a lapsed task may be
    /// claimed again), whichever comes first; it never polls. Needs a Tokio runtime with its
    /// timer enabled.
    ///
    /// # Errors
    /// As [`Coordinator::claim_next_task`]. Nothing claimable in time is `None`, not an error.
    pub async fn claim_next_task_within(
        &self,
        agent: &AgentId,
        capabilities: Option<&[String]>,
        timeout: Duration,
    ) -> Result<Option<Task>> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.log.next_lsn();
            if let Some(task) = self.claim_next_task(agent, capabilities).await? {
                return Ok(Some(task));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // The first lease to end from now on: a task held under it may be claimable then.
            let until_lapse = self.read_at(|s, now| {
                s.tasks.next_lease_end(now).map(|end| {
                    Duration::from_micros(u64::try_from(end.as_micros() - now.as_micros()).unwrap_or(0))
                })
            })?;
            let wait =
                until_lapse.map_or(deadline - now, |d| (deadline - now).min(d + Duration::from_millis(1)));
            self.log.wait_for(next, wait).await;
        }
    }

    /// Completes a task the agent holds under a live lease; the dependencies it provides become
    /// ready. [`Error::LeaseLost`] once the lease ended, even if nobody claimed the task since.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; [`Error::UnknownTask`];
    /// [`Error::IllegalTransition`] for a task not in progress; [`Error::NotHolder`] if another agent holds
    /// it; [`Error::LeaseLost`] once the lease ended; and those of every [command](Coordinator#errors).
    pub async fn complete_task(&self, agent: &AgentId, task: &TaskId, outputs: Vec<String>) -> Result<()> {
        self.end_held(agent, task, TaskStatus::Completed, End::Completed { outputs }).await
    }

    /// Completes a task the agent holds (as [`Coordinator::complete_task`]) and claims the next
    /// task for the same agent (as [`Coordinator::claim_next_task`], with `capabilities` as
    /// there), in one command: the completion and the claim are one atomic batch of records, so
    /// no crash leaves one without the other, and a worker pays one command per unit of work
    /// (as `bd close --claim-next` does). The claim decides on the state the completion leaves:
    /// a task that waited only on the completed one may be the one claimed. Returns the task
    /// claimed, or `None` if nothing is claimable (the completion is recorded all the same).
    ///
    /// # Errors
    /// Exactly those of [`Coordinator::complete_task`], and nothing is appended when the
    /// completion is refused. Nothing to claim is `None`, not an error.
    pub async fn complete_and_claim_next(
        &self,
        agent: &AgentId,
        task: &TaskId,
        outputs: Vec<String>,
        capabilities: Option<&[String]>,
    ) -> Result<Option<Task>> {
        let (id, task_id) = (agent.clone(), task.clone());
        let capabilities = capabilities.map(<[String]>::to_vec);
        let lease = self.opts.lease;
        let (_, claimed) = self
            .execute(agent, move |state, now| {
                let end = End::Completed { outputs: outputs.clone() };
                let mut events = held_end(state, &id, &task_id, &TaskStatus::Completed, end, now)?;
                let after = After::Completing(&task_id);
                let (claim, claimed) = claims::claim(state, &id, capabilities.as_deref(), lease, now, after)?;
                events.extend(claim);
                Ok((events, claimed))
            })
            .await?;
        match claimed {
            Some(id) => self.get_task(&id),
            None => Ok(None),
        }
    }

    /// Fails the current attempt of a task the agent holds under a live lease: it is pending
    /// again, or, once its attempts are used up, failed for good (its pending consumers are
    /// then blocked). [`Error::LeaseLost`] once the lease ended.
    ///
    /// # Errors
    /// As [`Coordinator::complete_task`], but a pending or blocked task is [`Error::NotHolder`]:
    /// [`Error::IllegalTransition`] is for a finished one.
    pub async fn fail_task(&self, agent: &AgentId, task: &TaskId, error: &str) -> Result<()> {
        let end = End::AttemptFailed { error: error.to_owned() };
        self.end_held(agent, task, TaskStatus::Failed(error.to_owned()), end).await
    }

    /// Gives a task the agent holds back, without failing it: a release by a live holder does
    /// not count against the task's attempts. [`Error::LeaseLost`] once the lease ended.
    ///
    /// # Errors
    /// As [`Coordinator::complete_task`], but a blocked task is [`Error::NotHolder`]:
    /// [`Error::IllegalTransition`] is for a pending or finished one.
    pub async fn release_task(&self, agent: &AgentId, task: &TaskId) -> Result<()> {
        self.end_held(agent, task, TaskStatus::Pending, End::Released).await
    }

    /// Adds an output to a task the agent holds under a live lease.
    ///
    /// # Errors
    /// As [`Coordinator::complete_task`], but a pending or blocked task is [`Error::NotHolder`]:
    /// [`Error::IllegalTransition`] is for a finished one.
    pub async fn add_output(&self, agent: &AgentId, task: &TaskId, output: &str) -> Result<()> {
        let (id, task_id, output) = (agent.clone(), task.clone(), output.to_owned());
        self.execute(agent, move |state, now| {
            let current = acting_on(state, &id, &task_id)?;
            if current.status.is_final() {
                return Err(illegal(current, &TaskStatus::InProgress));
            }
            check_holder(current, &id, now)?;
            Ok((vec![Event::TaskOutputAdded { task: task_id.clone(), output: output.clone() }], ()))
        })
        .await?;
        Ok(())
    }

    /// Cancels a task that has not finished (any active agent may; a holder loses its claim):
    /// its status becomes `Cancelled(reason)` (final), the dependencies on it fail, and the
    /// pending tasks waiting on it are blocked with a reason naming it. Returns the cancelled
    /// task.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; [`Error::UnknownTask`];
    /// [`Error::IllegalTransition`] for a finished task; and those of every [command](Coordinator#errors).
    pub async fn cancel_task(&self, agent: &AgentId, task: &TaskId, reason: &str) -> Result<Vec<TaskId>> {
        self.cancel(agent, task, reason, false).await
    }

    /// As [`Coordinator::cancel_task`], and every unfinished task that waits on it, directly or
    /// through others, is cancelled too. Returns the cancelled tasks, `task` first.
    ///
    /// # Errors
    /// As [`Coordinator::cancel_task`].
    pub async fn cancel_task_cascade(
        &self,
        agent: &AgentId,
        task: &TaskId,
        reason: &str,
    ) -> Result<Vec<TaskId>> {
        self.cancel(agent, task, reason, true).await
    }

    async fn cancel(
        &self,
        agent: &AgentId,
        task: &TaskId,
        reason: &str,
        cascade: bool,
    ) -> Result<Vec<TaskId>> {
        let (id, task_id, reason) = (agent.clone(), task.clone(), reason.to_owned());
        let (_, cancelled) = self
            .execute(agent, move |state, _| {
                let current = acting_on(state, &id, &task_id)?;
                let next = TaskStatus::Cancelled(reason.clone());
                if !current.status.can_become(&next) {
                    return Err(illegal(current, &next));
                }
                Ok(transition::cancel(state, &task_id, &reason, cascade))
            })
            .await?;
        Ok(cancelled)
    }

    /// Changes a task's status along the state machine ([`TaskStatus`]), with the same effects
    /// as the command for that move: `Blocked` (a pending task, or one the agent holds),
    /// `Pending` (unblocks, or releases a held task, as [`Coordinator::release_task`]),
    /// `Completed` of a held task (as [`Coordinator::complete_task`]), `Failed` (for good, from
    /// any unfinished status; a held task only by its holder), `Cancelled` (as
    /// [`Coordinator::cancel_task`]). Unblocking a task one of whose dependencies failed is
    /// [`Error::DependenciesNotReady`] naming them: it can never run. Acting on a held task needs a live lease. Claiming is
    /// [`Coordinator::claim_next_task`].
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; [`Error::UnknownTask`];
    /// [`Error::IllegalTransition`] for a move the state machine does not allow, and for `InProgress`; acting
    /// on a held task other than by cancelling it, [`Error::NotHolder`] if another agent holds it and
    /// [`Error::LeaseLost`] once the lease ended; [`Error::DependenciesNotReady`] for unblocking a task one
    /// of whose dependencies failed; and those of every [command](Coordinator#errors).
    pub async fn update_task_status(&self, agent: &AgentId, task: &TaskId, status: TaskStatus) -> Result<()> {
        let id = agent.clone();
        let task_id = task.clone();
        self.execute(agent, move |state, now| {
            let current = acting_on(state, &id, &task_id)?;
            if !current.status.can_become(&status) || status == TaskStatus::InProgress {
                return Err(illegal(current, &status));
            }
            let held = current.status == TaskStatus::InProgress;
            if held && !matches!(status, TaskStatus::Cancelled(_)) {
                check_holder(current, &id, now)?;
            }
            let events = match status.clone() {
                TaskStatus::Cancelled(reason) => transition::cancel(state, &task_id, &reason, false).0,
                TaskStatus::Failed(error) => transition::fail_for_good(state, &task_id, &error),
                TaskStatus::Blocked(reason) if held => end_claim(state, current, End::Blocked { reason }),
                TaskStatus::Blocked(reason) => vec![Event::TaskBlocked { task: task_id.clone(), reason }],
                TaskStatus::Pending if held => end_claim(state, current, End::Released),
                TaskStatus::Pending => {
                    // A task waiting on a dependency that can never be met stays blocked.
                    let failed: Vec<String> = state
                        .deps
                        .of_consumer(&task_id)
                        .into_iter()
                        .filter_map(|d| match &d.status {
                            crate::model::DependencyStatus::Failed(reason) => {
                                Some(format!("{}: {reason}", d.id))
                            }
                            _ => None,
                        })
                        .collect();
                    if !failed.is_empty() {
                        return Err(Error::DependenciesNotReady { task: task_id.clone(), unmet: failed });
                    }
                    vec![Event::TaskUnblocked { task: task_id.clone() }]
                }
                TaskStatus::Completed => end_claim(state, current, End::Completed { outputs: Vec::new() }),
                TaskStatus::InProgress => Vec::new(),
            };
            Ok((events, ()))
        })
        .await?;
        Ok(())
    }

    /// Ends the claim `agent` holds on `task` this way (the task may become `next`).
    async fn end_held(&self, agent: &AgentId, task: &TaskId, next: TaskStatus, end: End) -> Result<()> {
        let id = agent.clone();
        let task_id = task.clone();
        self.execute(agent, move |state, now| {
            Ok((held_end(state, &id, &task_id, &next, end.clone(), now)?, ()))
        })
        .await?;
        Ok(())
    }

    /// A task by id.
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn get_task(&self, task: &TaskId) -> Result<Option<Task>> {
        self.fresh(|s| s.tasks.get(task).cloned())
    }

    /// Tasks assigned to an agent (held now, or last held).
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn get_tasks_for_agent(&self, agent: &AgentId) -> Result<Vec<Task>> {
        self.fresh(|s| s.tasks.assigned_to(agent).cloned().collect())
    }

    /// Tasks, all or those whose status has this name (`Pending`, `InProgress`, `Blocked`,
    /// `Completed`, `Failed`, `Cancelled`), oldest first.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another status name; and those of every [query](Coordinator#errors).
    pub fn list_tasks(&self, status: Option<&str>) -> Result<Vec<Task>> {
        self.query_tasks(&TaskQuery { status: status.map(str::to_owned), assigned_to: None })
    }

    /// The tasks that match every part of `query` that is set, oldest first.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a status name that is not one of those
    /// [`TaskStatus::name`] gives; and those of every [query](Coordinator#errors).
    pub fn query_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        const NAMES: [&str; 6] = ["Pending", "InProgress", "Blocked", "Completed", "Failed", "Cancelled"];
        let status = query.status.as_deref();
        if let Some(name) = status.filter(|n| !NAMES.contains(n)) {
            return Err(Error::InvalidArgument {
                name: "status",
                reason: format!("{name:?} is not one of {}", NAMES.join(", ")),
            });
        }
        let holder = query.assigned_to.as_ref();
        self.fresh(|s| {
            s.tasks
                .iter()
                .filter(|t| status.is_none_or(|n| t.status.name() == n))
                .filter(|t| holder.is_none_or(|a| t.assigned_to.as_ref() == Some(a)))
                .cloned()
                .collect()
        })
    }
}

/// Which tasks [`Coordinator::query_tasks`] lists: each part that is set must match; the
/// default lists every task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Only tasks whose status has this name, as [`TaskStatus::name`] gives it (`Pending`,
    /// `InProgress`, `Blocked`, `Completed`, `Failed`, `Cancelled`).
    pub status: Option<String>,
    /// Only tasks assigned to this agent: held by it now, or last held by it
    /// ([`Task::assigned_to`]).
    pub assigned_to: Option<AgentId>,
}

/// Which providers creating a task with dependencies accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Providers {
    /// Only completed ones ([`Coordinator::coordinate_task`]).
    Completed,
    /// Any that exists ([`Coordinator::create_task_depending_on`]).
    AnyState,
}

/// The records that create task `id` as `spec` says, by `creator`, with dependencies on
/// `providers` (each needing the provider's completion): tasks of `batch` (created earlier in the
/// same batch, so pending) or tasks that exist, in whatever state: each dependency starts as its
/// provider's status makes it ([`DependencyStatus::following`]), and on a provider that failed
/// for good or was cancelled the new task is created blocked, with a reason naming the first such
/// provider, since it can never become ready. What creating tasks with dependencies records,
/// whatever command does it (a task, a plan, a pipeline).
///
/// # Errors
/// [`Error::UnknownTask`] naming the first provider neither in `batch` nor existing;
/// [`Error::InvalidName`] for task ids that make too long a dependency id.
pub(super) fn creation(
    state: &crate::projection::State,
    creator: &AgentId,
    id: &TaskId,
    spec: NewTask,
    providers: &[TaskId],
    batch: &BTreeSet<TaskId>,
) -> Result<Vec<Event>> {
    let mut events = vec![Event::TaskCreated { task: Box::new(new_task(id, spec, creator)) }];
    let mut blocked = None;
    for provider in providers {
        let status = if batch.contains(provider) {
            DependencyStatus::Pending
        } else {
            let provider_task =
                state.tasks.get(provider).ok_or_else(|| Error::UnknownTask { task: provider.clone() })?;
            DependencyStatus::following(provider, &provider_task.status)
        };
        if let (DependencyStatus::Failed(reason), None) = (&status, &blocked) {
            blocked = Some(reason.clone());
        }
        let dependency = Dependency {
            id: DependencyId::new(format!("{provider}->{id}"))?,
            provider: provider.clone(),
            consumer: id.clone(),
            artifact_type: ArtifactType::Completion,
            artifact_path: None,
            status,
        };
        events.push(Event::DependencyRegistered { dependency });
    }
    if let Some(reason) = blocked {
        // As registering a dependency on such a provider blocks a pending consumer.
        events.push(Event::TaskBlocked { task: id.clone(), reason });
    }
    Ok(events)
}

pub(super) fn new_task(id: &TaskId, spec: NewTask, creator: &AgentId) -> Task {
    Task {
        id: id.clone(),
        name: spec.name,
        description: spec.description,
        priority: spec.priority,
        required_capabilities: spec.required_capabilities,
        status: TaskStatus::Pending,
        assigned_to: None,
        outputs: Vec::new(),
        metadata: spec.metadata,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        attempts: 0,
        max_attempts: spec.max_attempts,
        failures: 0,
        lease_until: None,
        created_by: creator.clone(),
        idempotency_key: spec.idempotency_key,
        created_lsn: 0,
    }
}

/// The records that end the claim `agent` holds on `task` this way at `now` (the task may become
/// `next`): refused unless the agent is active and holds the task under a live lease, and the
/// task may move to `next`.
fn held_end(
    state: &crate::projection::State,
    agent: &AgentId,
    task: &TaskId,
    next: &TaskStatus,
    end: End,
    now: Timestamp,
) -> Result<Vec<Event>> {
    let current = acting_on(state, agent, task)?;
    if current.status.is_final() || !current.status.can_become(next) {
        return Err(illegal(current, next));
    }
    check_holder(current, agent, now)?;
    Ok(end_claim(state, current, end))
}

/// The acting agent must be active and the task must exist.
fn acting_on<'a>(state: &'a crate::projection::State, agent: &AgentId, task: &TaskId) -> Result<&'a Task> {
    require_agent(state, agent)?;
    state.tasks.get(task).ok_or_else(|| Error::UnknownTask { task: task.clone() })
}

/// `agent` must hold `task` (in progress, assigned to it) under a lease that has not ended at
/// `now`: a lease that ran out is over whether or not anyone noticed.
fn check_holder(task: &Task, agent: &AgentId, now: Timestamp) -> Result<()> {
    if task.status == TaskStatus::InProgress && task.assigned_to.as_ref() == Some(agent) {
        return match task.lease_until {
            Some(until) if until < now => {
                Err(Error::LeaseLost { agent: agent.clone(), tasks: vec![task.id.clone()], ended: until })
            }
            _ => Ok(()),
        };
    }
    let holder = match (&task.status, &task.assigned_to) {
        (TaskStatus::InProgress, Some(holder)) => holder.to_string(),
        _ => "nobody".to_owned(),
    };
    Err(Error::NotHolder { task: task.id.clone(), agent: agent.clone(), holder })
}

fn illegal(task: &Task, next: &TaskStatus) -> Error {
    Error::IllegalTransition { task: task.id.clone(), from: task.status.name(), to: next.name() }
}
