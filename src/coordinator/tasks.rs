//! Task commands: create (idempotent), claim with leases, complete, fail, release, block, and the
//! queries on tasks.

use std::cmp::Reverse;

use super::{require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{
    AgentId, ArtifactType, Dependency, DependencyId, DependencyStatus, Event, NewTask, Task, TaskId,
    TaskStatus,
};
use crate::projection::State;
use crate::types::Timestamp;

/// Why a task failed for good after too many lapses or failures.
pub const ATTEMPTS_EXHAUSTED: &str = "attempts exhausted";

impl Coordinator {
    /// Creates a task. With an idempotency key that was used before, returns the first task and
    /// appends nothing. With the id of a task that exists (whatever the key): the same
    /// definition returns that task as it is now and appends nothing; another is
    /// [`Error::AlreadyExists`] naming the first field that differs (name, description,
    /// priority, required capabilities (in any order), metadata, max_attempts, idempotency key).
    pub async fn create_task(&self, actor: &AgentId, spec: NewTask) -> Result<Task> {
        self.create_with_dependencies(actor, spec, Vec::new()).await
    }

    /// The original design's `coordinate_task`: refuses while any of `dependencies` (provider
    /// tasks) has not completed; otherwise creates the task and registers its (ready)
    /// dependencies on them. Given the id of a task that exists, as
    /// [`Coordinator::create_task`], where the same definition also means depending on every
    /// provider in `dependencies`.
    pub async fn coordinate_task(
        &self,
        actor: &AgentId,
        spec: NewTask,
        dependencies: Vec<TaskId>,
    ) -> Result<Task> {
        self.create_with_dependencies(actor, spec, dependencies).await
    }

    async fn create_with_dependencies(
        &self,
        actor: &AgentId,
        spec: NewTask,
        providers: Vec<TaskId>,
    ) -> Result<Task> {
        self.check_size("task metadata", &spec.metadata)?;
        if spec.max_attempts == 0 {
            return Err(Error::InvalidArgument { name: "max_attempts", reason: "must be at least 1".into() });
        }
        let actor_id = actor.clone();
        let (_, id) = self
            .execute(actor, move |state, _| {
                require_agent(state, &actor_id)?;
                if let Some(existing) =
                    spec.idempotency_key.as_deref().and_then(|k| state.tasks.by_idempotency_key(k))
                {
                    if spec.id.as_ref() != Some(&existing.id) {
                        return Ok((Vec::new(), existing.id.clone()));
                    }
                }
                let id = spec.id.clone().unwrap_or_else(TaskId::generate);
                if let Some(existing) = state.tasks.get(&id) {
                    super::define::existing_task(state, existing, &spec, &providers)?;
                    return Ok((Vec::new(), id));
                }
                let unmet: Vec<String> = providers
                    .iter()
                    .filter(|p| state.tasks.get(p).is_none_or(|t| t.status != TaskStatus::Completed))
                    .map(ToString::to_string)
                    .collect();
                if !unmet.is_empty() {
                    return Err(Error::DependenciesNotReady { task: id.to_string(), unmet });
                }
                let mut events = vec![Event::TaskCreated { task: Box::new(new_task(&id, spec, &actor_id)) }];
                for provider in providers {
                    let dependency = Dependency {
                        id: DependencyId::new(format!("{provider}->{id}"))?,
                        provider,
                        consumer: id.clone(),
                        artifact_type: ArtifactType::Completion,
                        artifact_path: None,
                        status: DependencyStatus::Ready,
                    };
                    events.push(Event::DependencyRegistered { dependency });
                }
                Ok((events, id))
            })
            .await?;
        self.get_task(&id)?.ok_or(Error::UnknownTask { task: id.to_string() })
    }

    /// Claims the best task `agent` can do: highest priority first, then oldest, among pending
    /// tasks whose required capabilities are in `capabilities` and whose dependencies are all
    /// ready. Tasks whose lease lapsed are recorded as such and are claimable again (or fail
    /// for good once their attempts are used up). `None` if nothing is claimable.
    pub async fn claim_next_task(&self, agent: &AgentId, capabilities: &[String]) -> Result<Option<Task>> {
        let id = agent.clone();
        let capabilities = capabilities.to_vec();
        let lease = self.opts.lease;
        let (_, claimed) = self
            .execute(agent, move |state, now| {
                require_agent(state, &id)?;
                let claimable = |t: &Task| {
                    t.required_capabilities.iter().all(|c| capabilities.contains(c))
                        && state.deps.is_ready(&t.id)
                };
                let mut events = Vec::new();
                let mut best: Option<&Task> = None;
                for task in state.tasks.lapsed(now) {
                    let holder = task.assigned_to.clone().unwrap_or_else(|| id.clone());
                    events.push(Event::TaskLeaseLapsed { task: task.id.clone(), agent: holder });
                    if task.failures + 1 >= task.max_attempts {
                        events.extend(fail_for_good(state, &task.id, ATTEMPTS_EXHAUSTED));
                    } else if claimable(task) && best.is_none_or(|b| claim_order(task) < claim_order(b)) {
                        best = Some(task);
                    }
                }
                if let Some(task) = state.tasks.pending_in_claim_order().find(|t| claimable(t)) {
                    if best.is_none_or(|b| claim_order(task) < claim_order(b)) {
                        best = Some(task);
                    }
                }
                let claimed = best.map(|t| t.id.clone());
                if let Some(task) = &claimed {
                    events.push(Event::TaskClaimed {
                        task: task.clone(),
                        agent: id,
                        lease_until: now.plus(lease),
                    });
                }
                Ok((events, claimed))
            })
            .await?;
        match claimed {
            Some(id) => self.get_task(&id),
            None => Ok(None),
        }
    }

    /// Completes a task the agent holds; the dependencies it provides become ready.
    pub async fn complete_task(&self, agent: &AgentId, task: &TaskId, outputs: Vec<String>) -> Result<()> {
        self.holder_command(agent, task, TaskStatus::Completed, move |state, task| {
            let mut events = vec![Event::TaskCompleted { task: task.clone(), outputs }];
            for dep in
                state.deps.of_provider(task).into_iter().filter(|d| d.status != DependencyStatus::Ready)
            {
                events.push(Event::DependencyReady {
                    dependency: dep.id.clone(),
                    artifact_path: dep.artifact_path.clone(),
                });
            }
            events
        })
        .await
    }

    /// Fails the current attempt of a task the agent holds: it is pending again, or, once its
    /// attempts are used up, failed for good.
    pub async fn fail_task(&self, agent: &AgentId, task: &TaskId, error: &str) -> Result<()> {
        let error = error.to_owned();
        self.holder_command(agent, task, TaskStatus::Failed(error.clone()), move |state, task| {
            let mut events = vec![Event::TaskAttemptFailed { task: task.clone(), error }];
            if state.tasks.get(task).is_some_and(|t| t.failures + 1 >= t.max_attempts) {
                events.extend(fail_for_good(state, task, ATTEMPTS_EXHAUSTED));
            }
            events
        })
        .await
    }

    /// Gives a task the agent holds back, without failing it.
    pub async fn release_task(&self, agent: &AgentId, task: &TaskId) -> Result<()> {
        let id = agent.clone();
        self.holder_command(agent, task, TaskStatus::Pending, move |_, task| {
            vec![Event::TaskReleased { task: task.clone(), agent: id }]
        })
        .await
    }

    /// Adds an output to a task the agent holds.
    pub async fn add_output(&self, agent: &AgentId, task: &TaskId, output: &str) -> Result<()> {
        let output = output.to_owned();
        self.holder_command(agent, task, TaskStatus::InProgress, move |_, task| {
            vec![Event::TaskOutputAdded { task: task.clone(), output }]
        })
        .await
    }

    /// Changes a task's status along the state machine: `Blocked` (a pending task, or one the
    /// agent holds), `Pending` (unblocks, or releases a held task), `Completed` and `Failed`
    /// (for good) of a held task. Claiming is [`Coordinator::claim_next_task`].
    pub async fn update_task_status(&self, agent: &AgentId, task: &TaskId, status: TaskStatus) -> Result<()> {
        let id = agent.clone();
        let task_id = task.clone();
        self.execute(agent, move |state, _| {
            let current = acting_on(state, &id, &task_id)?;
            if !current.status.can_become(&status) || status == TaskStatus::InProgress {
                return Err(illegal(current, &status));
            }
            if current.status == TaskStatus::InProgress {
                check_holder(current, &id)?;
            }
            let events = match status {
                TaskStatus::Blocked(reason) => vec![Event::TaskBlocked { task: task_id, reason }],
                TaskStatus::Pending if matches!(current.status, TaskStatus::Blocked(_)) => {
                    vec![Event::TaskUnblocked { task: task_id }]
                }
                TaskStatus::Pending => vec![Event::TaskReleased { task: task_id, agent: id }],
                TaskStatus::Completed => vec![Event::TaskCompleted { task: task_id, outputs: Vec::new() }],
                TaskStatus::Failed(error) => fail_for_good(state, &task_id, &error),
                TaskStatus::InProgress => Vec::new(),
            };
            Ok((events, ()))
        })
        .await?;
        Ok(())
    }

    /// Runs a command on a task that `agent` must hold (in progress, assigned to it), checking
    /// that the task may become `next`.
    async fn holder_command<F>(
        &self,
        agent: &AgentId,
        task: &TaskId,
        next: TaskStatus,
        events: F,
    ) -> Result<()>
    where
        F: FnOnce(&State, &TaskId) -> Vec<Event> + Send + 'static,
    {
        let id = agent.clone();
        let task_id = task.clone();
        self.execute(agent, move |state, _| {
            let current = acting_on(state, &id, &task_id)?;
            if current.status.is_final()
                || (next != TaskStatus::InProgress && !current.status.can_become(&next))
            {
                return Err(illegal(current, &next));
            }
            check_holder(current, &id)?;
            Ok((events(state, &task_id), ()))
        })
        .await?;
        Ok(())
    }

    /// A task by id.
    pub fn get_task(&self, task: &TaskId) -> Result<Option<Task>> {
        self.read(|s| s.tasks.get(task).cloned())
    }

    /// Tasks assigned to an agent (held now, or last held).
    pub fn get_tasks_for_agent(&self, agent: &AgentId) -> Result<Vec<Task>> {
        self.read(|s| s.tasks.assigned_to(agent).cloned().collect())
    }

    /// Tasks, all or those whose status has this name (`Pending`, `InProgress`, `Blocked`,
    /// `Completed`, `Failed`), oldest first.
    pub fn list_tasks(&self, status: Option<&str>) -> Result<Vec<Task>> {
        self.read(|s| {
            s.tasks.iter().filter(|t| status.is_none_or(|n| t.status.name() == n)).cloned().collect()
        })
    }
}

fn claim_order(task: &Task) -> (Reverse<crate::model::Priority>, u64) {
    (Reverse(task.priority), task.created_lsn)
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

/// A task fails for good: its dependants' dependencies fail with it.
fn fail_for_good(state: &State, task: &TaskId, error: &str) -> Vec<Event> {
    let mut events = vec![Event::TaskFailed { task: task.clone(), error: error.to_owned() }];
    for dep in state.deps.of_provider(task) {
        events.push(Event::DependencyFailed {
            dependency: dep.id.clone(),
            reason: format!("provider task {task} failed: {error}"),
        });
    }
    events
}

/// The acting agent must be active and the task must exist.
fn acting_on<'a>(state: &'a State, agent: &AgentId, task: &TaskId) -> Result<&'a Task> {
    require_agent(state, agent)?;
    state.tasks.get(task).ok_or_else(|| Error::UnknownTask { task: task.to_string() })
}

fn check_holder(task: &Task, agent: &AgentId) -> Result<()> {
    if task.status == TaskStatus::InProgress && task.assigned_to.as_ref() == Some(agent) {
        return Ok(());
    }
    let holder = match (&task.status, &task.assigned_to) {
        (TaskStatus::InProgress, Some(holder)) => holder.to_string(),
        _ => "nobody".to_owned(),
    };
    Err(Error::NotHolder { task: task.id.to_string(), agent: agent.to_string(), holder })
}

fn illegal(task: &Task, next: &TaskStatus) -> Error {
    Error::IllegalTransition { task: task.id.to_string(), from: task.status.name(), to: next.name() }
}
