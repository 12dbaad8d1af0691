//! Dependency commands and queries: register (cycles refused), mark ready, ready tasks, chains,
//! and why a task is not ready.

use super::{define, require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{
    AgentId, ArtifactType, Dependency, DependencyId, DependencyStatus, Event, Task, TaskId, TaskStatus,
};

impl Coordinator {
    /// Registers that `consumer` needs an artifact of `provider`; refuses (appending nothing) a
    /// dependency that would close a cycle. Returns its id, `<provider>-><consumer>`.
    ///
    /// Registering a dependency that exists with the same artifact type returns its id and
    /// appends nothing; with another artifact type it is [`Error::AlreadyExists`].
    pub async fn register_dependency(
        &self,
        actor: &AgentId,
        provider: &TaskId,
        consumer: &TaskId,
        artifact_type: ArtifactType,
    ) -> Result<DependencyId> {
        let (id, provider, consumer) = (actor.clone(), provider.clone(), consumer.clone());
        let (_, dep) = self
            .execute(actor, move |state, _| {
                require_agent(state, &id)?;
                for task in [&provider, &consumer] {
                    if state.tasks.get(task).is_none() {
                        return Err(Error::UnknownTask { task: task.to_string() });
                    }
                }
                let dep_id = DependencyId::new(format!("{provider}->{consumer}"))?;
                if let Some(existing) = state.deps.get(&dep_id) {
                    define::existing_dependency(existing, &artifact_type)?;
                    return Ok((Vec::new(), dep_id));
                }
                if state.deps.would_cycle(&provider, &consumer) {
                    return Err(Error::Cycle {
                        provider: provider.to_string(),
                        consumer: consumer.to_string(),
                    });
                }
                let status = match state.tasks.get(&provider).map(|t| &t.status) {
                    Some(TaskStatus::Completed) => DependencyStatus::Ready,
                    _ => DependencyStatus::Pending,
                };
                let dependency = Dependency {
                    id: dep_id.clone(),
                    provider,
                    consumer,
                    artifact_type,
                    artifact_path: None,
                    status,
                };
                Ok((vec![Event::DependencyRegistered { dependency }], dep_id))
            })
            .await?;
        Ok(dep)
    }

    /// Marks a dependency ready, with where its artifact is.
    pub async fn mark_dependency_ready(
        &self,
        actor: &AgentId,
        dependency: &DependencyId,
        artifact_path: Option<String>,
    ) -> Result<()> {
        let (id, dependency) = (actor.clone(), dependency.clone());
        self.execute(actor, move |state, _| {
            require_agent(state, &id)?;
            if state.deps.get(&dependency).is_none() {
                return Err(Error::UnknownDependency { dependency: dependency.to_string() });
            }
            Ok((vec![Event::DependencyReady { dependency, artifact_path }], ()))
        })
        .await?;
        Ok(())
    }

    /// A dependency by id.
    pub fn get_dependency(&self, dependency: &DependencyId) -> Result<Option<Dependency>> {
        self.read(|s| s.deps.get(dependency).cloned())
    }

    /// Pending tasks `agent` could claim now: its capabilities suffice and every dependency is
    /// ready.
    pub fn get_ready_tasks(&self, agent: &AgentId) -> Result<Vec<Task>> {
        self.read(|s| {
            let Some(a) = s.agents.get(agent.as_str()) else {
                return Err(Error::UnknownAgent { agent: agent.to_string(), detail: String::new() });
            };
            Ok(s.tasks
                .pending_in_claim_order()
                .filter(|t| a.can_do(&t.required_capabilities) && s.deps.is_ready(&t.id))
                .cloned()
                .collect())
        })?
    }

    /// Every dependency `task` waits on, directly or through other tasks, nearest first.
    pub fn get_dependency_chain(&self, task: &TaskId) -> Result<Vec<Dependency>> {
        self.read(|s| s.deps.chain(task).into_iter().cloned().collect())
    }

    /// Why `task` is not ready: its dependencies that are not ready (empty if it is ready).
    pub fn why_not_ready(&self, task: &TaskId) -> Result<Vec<Dependency>> {
        self.read(|s| {
            if s.tasks.get(task).is_none() {
                return Err(Error::UnknownTask { task: task.to_string() });
            }
            Ok(s.deps.unmet(task).into_iter().cloned().collect())
        })?
    }
}
