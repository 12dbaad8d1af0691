//! Plans: many tasks created in one command, each with its dependencies on tasks of the same
//! plan (by the ids the plan gives them) or on tasks that exist, all in one atomic batch: either
//! every task and dependency of the plan is recorded or nothing is. What is recorded for each
//! task is what creating it alone records ([`super::tasks::creation`], which pipelines use too).

use std::collections::{BTreeMap, BTreeSet};

use super::{define, require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{AgentId, NewTask, Task, TaskId};

/// One task of a plan: its definition, which must give it an id (the name other tasks of the
/// plan depend on it by), and the tasks it depends on (each needing that task's completion).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    /// The task; its `id` is required.
    pub spec: NewTask,
    /// Tasks of the plan (by id) or tasks that exist, that must complete first. A task named
    /// twice counts once.
    pub depends_on: Vec<TaskId>,
}

impl PlannedTask {
    /// A task of a plan depending on `depends_on`.
    #[must_use]
    pub fn new(spec: NewTask, depends_on: Vec<TaskId>) -> PlannedTask {
        PlannedTask { spec, depends_on }
    }
}

impl Coordinator {
    /// Creates the tasks of `plan` and their dependencies in one atomic command; returns the
    /// tasks, in the order of the plan. Tasks are recorded providers first (in plan order
    /// otherwise), each as [`Coordinator::create_task_depending_on`] records it: a dependency on
    /// a task of the plan starts pending; one on a task that exists starts as that task's status
    /// makes it, and on a task that failed for good or was cancelled the new task is created
    /// blocked.
    ///
    /// Idempotent as [`Coordinator::create_task`]: a task of the plan whose id (or idempotency
    /// key) a task has already, with the same definition and depending on every task the plan
    /// names for it, is left as it is (so the same plan again appends nothing, and a plan that
    /// extends an earlier one creates only its new tasks); with another definition the whole
    /// plan is refused with [`Error::AlreadyExists`] naming the task and the first difference.
    ///
    /// # Errors
    /// Nothing is appended on any of them. [`Error::InvalidArgument`] for an empty plan, a task
    /// without an id, or an id given to two tasks of the plan (naming it); [`Error::Cycle`] for
    /// dependencies inside the plan that form a cycle, naming its tasks; [`Error::UnknownTask`]
    /// naming the first task depended on that is neither in the plan nor in the store; as
    /// [`Coordinator::create_task`] for each task's definition (errors about metadata name the
    /// task); [`Error::InvalidName`] for task ids that make too long a dependency id; and those
    /// of every [command](Coordinator#errors), [`Error::BatchTooLarge`] among them for a plan
    /// whose records do not fit one segment.
    pub async fn create_tasks(&self, actor: &AgentId, plan: Vec<PlannedTask>) -> Result<Vec<Task>> {
        if plan.is_empty() {
            return Err(Error::InvalidArgument { name: "plan", reason: "a plan needs tasks".into() });
        }
        let mut ids = Vec::with_capacity(plan.len());
        let mut given = BTreeSet::new();
        for (i, planned) in plan.iter().enumerate() {
            let Some(id) = planned.spec.id.clone() else {
                return Err(Error::InvalidArgument {
                    name: "plan",
                    reason: format!("task {} ({:?}) has no id", i + 1, planned.spec.name),
                });
            };
            if !given.insert(id.clone()) {
                return Err(Error::InvalidArgument {
                    name: "plan",
                    reason: format!("task id {id} is given to two tasks of the plan"),
                });
            }
            self.check_task(&format!("metadata of task {id}"), &planned.spec)?;
            ids.push(id);
        }
        let plan: Vec<PlannedTask> = plan
            .into_iter()
            .map(|mut p| {
                let mut seen = BTreeSet::new();
                p.depends_on.retain(|d| seen.insert(d.clone()));
                p
            })
            .collect();
        let order = providers_first(&ids, &plan)?;
        let actor_id = actor.clone();
        let (_, created) = self
            .execute(actor, move |state, _| {
                require_agent(state, &actor_id)?;
                let mut events = Vec::new();
                let mut batch = BTreeSet::new();
                let mut created: Vec<TaskId> = ids.clone();
                for &i in &order {
                    let (Some(planned), Some(id)) = (plan.get(i), ids.get(i)) else { continue };
                    let spec = &planned.spec;
                    let existing = spec
                        .idempotency_key
                        .as_deref()
                        .and_then(|k| state.tasks.by_idempotency_key(k))
                        .or_else(|| state.tasks.get(id));
                    if let Some(existing) = existing {
                        define::existing_task(state, existing, spec, &planned.depends_on)?;
                        if let Some(slot) = created.get_mut(i) {
                            slot.clone_from(&existing.id);
                        }
                        continue;
                    }
                    let records = super::tasks::creation(
                        state,
                        &actor_id,
                        id,
                        spec.clone(),
                        &planned.depends_on,
                        &batch,
                    )?;
                    events.extend(records);
                    batch.insert(id.clone());
                }
                Ok((events, created))
            })
            .await?;
        created
            .iter()
            .map(|id| self.get_task(id)?.ok_or_else(|| Error::UnknownTask { task: id.clone() }))
            .collect()
    }
}

/// The indexes of the plan's tasks (`ids[i]` is task `i`'s id), each after the tasks of the plan
/// it depends on, otherwise in plan order (Kahn's algorithm, taking the first task of the plan
/// whose providers are all placed).
///
/// # Errors
/// [`Error::Cycle`] if dependencies inside the plan form a cycle, naming its tasks.
fn providers_first(ids: &[TaskId], plan: &[PlannedTask]) -> Result<Vec<usize>> {
    let index: BTreeMap<&TaskId, usize> = ids.iter().enumerate().map(|(i, id)| (id, i)).collect();
    // For each task, the tasks of the plan it waits on, and those that wait on it.
    let waits_on: Vec<Vec<usize>> =
        plan.iter().map(|p| p.depends_on.iter().filter_map(|d| index.get(d).copied()).collect()).collect();
    let mut waited_by: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    let mut unplaced: Vec<usize> = waits_on.iter().map(Vec::len).collect();
    for (consumer, providers) in waits_on.iter().enumerate() {
        for &provider in providers {
            if let Some(list) = waited_by.get_mut(provider) {
                list.push(consumer);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..ids.len()).filter(|&i| unplaced.get(i) == Some(&0)).collect();
    let mut order = Vec::with_capacity(ids.len());
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for &consumer in waited_by.get(next).into_iter().flatten() {
            if let Some(count) = unplaced.get_mut(consumer) {
                *count -= 1;
                if *count == 0 {
                    ready.insert(consumer);
                }
            }
        }
    }
    if order.len() == ids.len() {
        return Ok(order);
    }
    // Every task left waits on another task left: walk from one along what it waits on until a
    // task comes again; from its first visit on, the walk is a cycle.
    let left = |i: &usize| unplaced.get(*i).is_some_and(|c| *c > 0);
    let mut walk: Vec<usize> = (0..ids.len()).find(|i| left(i)).into_iter().collect();
    while let Some(&at) = walk.last() {
        let Some(&next) = waits_on.get(at).into_iter().flatten().find(|p| left(p)) else { break };
        if let Some(start) = walk.iter().position(|&i| i == next) {
            let cycle: Vec<TaskId> = walk.iter().skip(start).filter_map(|&i| ids.get(i).cloned()).collect();
            let (consumer, provider) = (cycle.first().cloned(), cycle.get(1).or(cycle.first()).cloned());
            if let (Some(consumer), Some(provider)) = (consumer, provider) {
                return Err(Error::Cycle { provider, consumer, cycle });
            }
        }
        walk.push(next);
    }
    Err(Error::internal("the tasks of a plan that are left form no cycle"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(edges: &[(&str, &[&str])]) -> (Vec<TaskId>, Vec<PlannedTask>) {
        let ids: Vec<TaskId> = edges.iter().map(|(id, _)| TaskId::new(*id).unwrap()).collect();
        let plan = edges
            .iter()
            .map(|(id, deps)| {
                let depends_on = deps.iter().map(|d| TaskId::new(*d).unwrap()).collect();
                PlannedTask::new(NewTask::new(*id).id(TaskId::new(*id).unwrap()), depends_on)
            })
            .collect();
        (ids, plan)
    }

    #[test]
    fn providers_come_first_and_the_plan_order_otherwise() {
        let (ids, p) = plan(&[
            ("test", &["build"]),
            ("docs", &[]),
            ("build", &["design", "elsewhere"]),
            ("design", &[]),
        ]);
        let order: Vec<&str> =
            providers_first(&ids, &p).unwrap().into_iter().map(|i| ids[i].as_str()).collect();
        assert_eq!(order, ["docs", "design", "build", "test"]);
    }

    #[test]
    fn a_cycle_is_named_by_its_tasks() {
        let (ids, p) = plan(&[("a", &[]), ("b", &["a", "d"]), ("c", &["b"]), ("d", &["c"]), ("e", &["d"])]);
        let err = providers_first(&ids, &p).unwrap_err();
        let Error::Cycle { cycle, .. } = &err else { panic!("{err}") };
        let names: Vec<&str> = cycle.iter().map(TaskId::as_str).collect();
        assert_eq!(names, ["b", "d", "c"], "{err}");
        assert!(err.to_string().ends_with(": b waits on d, which waits on c, which waits on b"), "{err}");
        let (ids, p) = plan(&[("self", &["self"])]);
        let err = providers_first(&ids, &p).unwrap_err();
        assert!(err.to_string().ends_with(": self waits on self"), "{err}");
    }
}
