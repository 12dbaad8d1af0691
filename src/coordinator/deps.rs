//! Dependency commands and queries: register (cycles refused), mark ready, ready tasks, chains,
//! why a task is not ready, and the graph they form.

use super::{claims, define, require_agent, transition, Coordinator};
use crate::error::{Error, Result};
use crate::model::{
    AgentId, ArtifactType, ClaimPolicy, Dependency, DependencyId, DependencyStatus, Event, Task, TaskId,
    TaskStatus,
};

/// A task as a node of the dependency graph ([`Coordinator::dependency_graph`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// The task's id.
    pub id: TaskId,
    /// Its name.
    pub name: String,
    /// Its status now.
    pub status: TaskStatus,
}

/// The dependency graph, or the part of it connected to one task
/// ([`Coordinator::dependency_graph`]): tasks as nodes, dependencies as edges from provider to
/// consumer, each with its status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskGraph {
    /// The tasks, oldest first.
    pub nodes: Vec<GraphNode>,
    /// The dependencies between them, in id order (`PROVIDER->CONSUMER`): each one's provider
    /// and consumer are among [`TaskGraph::nodes`].
    pub edges: Vec<Dependency>,
}

impl Coordinator {
    /// Registers that `consumer` needs an artifact of `provider`; refuses (appending nothing) a
    /// dependency that would close a cycle. Returns its id. The dependency starts as its
    /// provider's status makes it ([`DependencyStatus::following`](crate::model::DependencyStatus::following)): ready on a completed
    /// provider, in progress on a claimed one, failed on one that failed for good or was
    /// cancelled; then a pending consumer is blocked, with a reason naming the provider, since
    /// it can never become ready.
    ///
    /// Registering a dependency that exists with the same artifact type returns its id and
    /// appends nothing; with another artifact type it is [`Error::AlreadyExists`].
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `actor` is registered and active; [`Error::UnknownTask`] for a provider
    /// or consumer that does not exist; [`Error::AlreadyExists`] for the dependency with another artifact
    /// type; [`Error::Cycle`] if it would close a cycle; [`Error::InvalidName`] if the two task ids make too
    /// long a dependency id; and those of every [command](Coordinator#errors).
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
                        return Err(Error::UnknownTask { task: TaskId::clone(task) });
                    }
                }
                let dep_id = DependencyId::new(format!("{provider}->{consumer}"))?;
                if let Some(existing) = state.deps.get(&dep_id) {
                    define::existing_dependency(existing, &artifact_type)?;
                    return Ok((Vec::new(), dep_id));
                }
                if state.deps.would_cycle(&provider, &consumer) {
                    // The consumer delivers, through others, to the provider: the provider waits on
                    // them back to the consumer.
                    let mut cycle = vec![consumer.clone()];
                    cycle.extend(state.deps.chain_between(&consumer, &provider).into_iter().skip(1).rev());
                    return Err(Error::Cycle {
                        provider: provider.clone(),
                        consumer: consumer.clone(),
                        cycle,
                    });
                }
                let provider_task = state
                    .tasks
                    .get(&provider)
                    .ok_or_else(|| Error::UnknownTask { task: provider.clone() })?;
                let (status, block) = transition::register_on(state, provider_task, &consumer);
                let dependency = Dependency {
                    id: dep_id.clone(),
                    provider: provider.clone(),
                    consumer: consumer.clone(),
                    artifact_type: artifact_type.clone(),
                    artifact_path: None,
                    status,
                };
                let mut events = vec![Event::DependencyRegistered { dependency }];
                events.extend(block);
                Ok((events, dep_id))
            })
            .await?;
        Ok(dep)
    }

    /// Marks a dependency ready, with where its artifact is.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `actor` is registered and active; [`Error::UnknownDependency`];
    /// [`Error::InvalidArgument`] for a failed dependency (its provider failed or was cancelled:
    /// it stays failed); and those of every [command](Coordinator#errors).
    pub async fn mark_dependency_ready(
        &self,
        actor: &AgentId,
        dependency: &DependencyId,
        artifact_path: Option<String>,
    ) -> Result<()> {
        let (id, dependency) = (actor.clone(), dependency.clone());
        self.execute(actor, move |state, _| {
            require_agent(state, &id)?;
            let Some(found) = state.deps.get(&dependency) else {
                return Err(Error::UnknownDependency { dependency: dependency.clone() });
            };
            if let DependencyStatus::Failed(why) = &found.status {
                return Err(Error::InvalidArgument {
                    name: "dependency",
                    reason: format!("{dependency} failed ({why}): a failed dependency stays failed"),
                });
            }
            if !readies(found, artifact_path.as_ref()) {
                return Ok((Vec::new(), ()));
            }
            Ok((
                vec![Event::DependencyReady {
                    dependency: dependency.clone(),
                    artifact_path: artifact_path.clone(),
                }],
                (),
            ))
        })
        .await?;
        Ok(())
    }

    /// Marks every dependency `provider` provides ready, in one atomic command, with
    /// `artifact_path` when given; returns the ids of those it marked, in id order. A dependency
    /// that is ready already (with that path, when one is given) is left as it is: marking again
    /// appends nothing, and when every one is ready the command appends nothing at all. A failed
    /// one (its provider failed or was cancelled) stays failed and is not marked.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `actor` is a registered, active agent;
    /// [`Error::UnknownTask`] if `provider` is not a task; and those of every
    /// [command](Coordinator#errors).
    pub async fn mark_provider_ready(
        &self,
        actor: &AgentId,
        provider: &TaskId,
        artifact_path: Option<String>,
    ) -> Result<Vec<DependencyId>> {
        let (id, provider) = (actor.clone(), provider.clone());
        let (_, marked) = self
            .execute(actor, move |state, _| {
                require_agent(state, &id)?;
                if state.tasks.get(&provider).is_none() {
                    return Err(Error::UnknownTask { task: provider.clone() });
                }
                let marked: Vec<DependencyId> = state
                    .deps
                    .of_provider(&provider)
                    .into_iter()
                    .filter(|d| readies(d, artifact_path.as_ref()))
                    .map(|d| d.id.clone())
                    .collect();
                let events = marked
                    .iter()
                    .map(|d| Event::DependencyReady {
                        dependency: d.clone(),
                        artifact_path: artifact_path.clone(),
                    })
                    .collect();
                Ok((events, marked))
            })
            .await?;
        Ok(marked)
    }

    /// A dependency by id.
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn get_dependency(&self, dependency: &DependencyId) -> Result<Option<Dependency>> {
        self.fresh(|s| s.deps.get(dependency).cloned())
    }

    /// The tasks `agent` could claim now, in the order claims take them: the same rule as
    /// [`Coordinator::claim_next_task`] (whose answer is the first of these), including tasks
    /// whose lease lapsed and that have attempts left. `capabilities`: the caller's list when
    /// given (an empty list means none), the agent's registered ones when `None`.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] if `capabilities` is `None` and `agent` was never registered; and those of
    /// every [query](Coordinator#errors).
    pub fn get_ready_tasks(&self, agent: &AgentId, capabilities: Option<&[String]>) -> Result<Vec<Task>> {
        self.read_at(|s, now| {
            let capabilities = claims::capabilities(s, agent, capabilities)?;
            Ok(claims::ready(s, &capabilities, now).into_iter().cloned().collect())
        })?
    }

    /// Sets the order claims take pending tasks in, for every process (recorded in the log):
    /// [`ClaimPolicy::Strict`] (the default) or [`ClaimPolicy::Aging`]. `every_ms` of aging
    /// must be at least 1.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for aging every 0 ms; [`Error::UnknownAgent`] unless `actor` is registered
    /// and active; and those of every [command](Coordinator#errors).
    pub async fn set_claim_policy(&self, actor: &AgentId, policy: ClaimPolicy) -> Result<()> {
        if policy == (ClaimPolicy::Aging { every_ms: 0 }) {
            return Err(Error::InvalidArgument {
                name: "aging interval",
                reason: "must be at least 1 ms".into(),
            });
        }
        let id = actor.clone();
        self.execute(actor, move |state, _| {
            require_agent(state, &id)?;
            Ok((vec![Event::ClaimPolicySet { policy }], ()))
        })
        .await?;
        Ok(())
    }

    /// The store's claim order.
    ///
    /// # Errors
    /// Only those of every [query](Coordinator#errors).
    pub fn claim_policy(&self) -> Result<ClaimPolicy> {
        self.fresh(|s| s.claim_policy)
    }

    /// Every dependency `task` waits on, directly or through other tasks, nearest first.
    ///
    /// # Errors
    /// [`Error::UnknownTask`]; and those of every [query](Coordinator#errors).
    pub fn get_dependency_chain(&self, task: &TaskId) -> Result<Vec<Dependency>> {
        self.fresh(|s| {
            if s.tasks.get(task).is_none() {
                return Err(Error::UnknownTask { task: TaskId::clone(task) });
            }
            Ok(s.deps.chain(task).into_iter().cloned().collect())
        })?
    }

    /// Why `task` is not ready: its dependencies that are not ready (empty if it is ready); a
    /// failed one says which provider failed or was cancelled, and why.
    ///
    /// # Errors
    /// [`Error::UnknownTask`]; and those of every [query](Coordinator#errors).
    pub fn why_not_ready(&self, task: &TaskId) -> Result<Vec<Dependency>> {
        self.fresh(|s| {
            if s.tasks.get(task).is_none() {
                return Err(Error::UnknownTask { task: TaskId::clone(task) });
            }
            Ok(s.deps.unmet(task).into_iter().cloned().collect())
        })?
    }

    /// The dependency graph: every task as a node (with its name and status), every dependency
    /// as an edge from its provider to its consumer (with its status). With `around`, only the
    /// part connected to that task: the tasks reachable from it by following dependencies in
    /// either direction, and the dependencies between them (just the task when it has none).
    ///
    /// Nodes come oldest first, edges in id order. A dependency whose provider or consumer is
    /// not a task (which only a log written by another program can hold) is left out.
    ///
    /// # Errors
    /// [`Error::UnknownTask`] if `around` names a task that does not exist; and those of every
    /// [query](Coordinator#errors).
    pub fn dependency_graph(&self, around: Option<&TaskId>) -> Result<TaskGraph> {
        self.fresh(|s| {
            let node =
                |t: &Task| GraphNode { id: t.id.clone(), name: t.name.clone(), status: t.status.clone() };
            let Some(task) = around else {
                let nodes: Vec<GraphNode> = s.tasks.iter().map(node).collect();
                let edges = s
                    .deps
                    .iter()
                    .filter(|d| s.tasks.get(&d.provider).is_some() && s.tasks.get(&d.consumer).is_some())
                    .cloned()
                    .collect();
                return Ok(TaskGraph { nodes, edges });
            };
            if s.tasks.get(task).is_none() {
                return Err(Error::UnknownTask { task: task.clone() });
            }
            let part = s.deps.connected(task);
            let mut tasks: Vec<&Task> = part.iter().filter_map(|id| s.tasks.get(id)).collect();
            tasks.sort_by_key(|t| t.created_lsn);
            let mut edges: Vec<Dependency> = tasks
                .iter()
                .flat_map(|t| s.deps.of_consumer(&t.id))
                .filter(|d| s.tasks.get(&d.provider).is_some())
                .cloned()
                .collect();
            edges.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(TaskGraph { nodes: tasks.into_iter().map(node).collect(), edges })
        })?
    }
}

/// Whether marking `dependency` ready (with `artifact_path`, if given) changes it; never for a
/// failed one, which stays failed.
fn readies(dependency: &Dependency, artifact_path: Option<&String>) -> bool {
    match dependency.status {
        DependencyStatus::Failed(_) => false,
        DependencyStatus::Ready => {
            artifact_path.is_some_and(|path| dependency.artifact_path.as_ref() != Some(path))
        }
        _ => true,
    }
}
