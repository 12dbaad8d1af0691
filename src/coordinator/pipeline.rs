//! Pipelines: stages of tasks run in order; every task of a stage depends on every task of the
//! stage before. A pipeline is its tasks, marked in their metadata (`pipeline`, `stage`), and
//! their dependencies, all created in one atomic batch; its status and outputs derive from them.

use std::collections::BTreeSet;

use serde_json::json;

use super::{define, require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{AgentId, NewTask, Task, TaskId, TaskStatus};
use crate::projection::State;

/// One stage: tasks that may run at the same time.
#[derive(Debug, Clone)]
pub struct PipelineStage {
    /// Stage name.
    pub name: String,
    /// Its tasks.
    pub tasks: Vec<NewTask>,
}

/// Where a pipeline stands.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineStatus {
    /// `Pending`, `InProgress`, `Completed`, `Failed` (naming a failed task) or `Cancelled`
    /// (naming a cancelled task; failure goes first).
    pub status: TaskStatus,
    /// Each stage's name and tasks, in order.
    pub stages: Vec<(String, Vec<Task>)>,
    /// Outputs of every task, stage by stage.
    pub outputs: Vec<String>,
}

impl Coordinator {
    /// Creates a pipeline: its tasks and the dependencies between consecutive stages; returns
    /// the ids of the tasks, stage by stage.
    ///
    /// Creating a pipeline that exists with the same stages (names, and the same task
    /// definitions in the same order; tasks without an id compare by definition) returns its
    /// task ids and appends nothing; other stages are refused with [`Error::AlreadyExists`]
    /// naming the first difference. A task id given that another task has is
    /// [`Error::TaskExists`]; one given to two tasks of the request is
    /// [`Error::InvalidArgument`].
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an invalid pipeline name, or task ids that make too long a dependency id;
    /// [`Error::InvalidArgument`] for no stages, a stage without tasks, or a task id given twice;
    /// [`Error::ValueTooDeep`] or [`Error::ValueTooLarge`] for task metadata past the limits;
    /// [`Error::UnknownAgent`] unless `actor` is registered and active; [`Error::AlreadyExists`] for a
    /// pipeline of that name with other stages; [`Error::TaskExists`] for a task id another task has; and
    /// those of every [command](Coordinator#errors).
    pub async fn create_pipeline(
        &self,
        actor: &AgentId,
        name: &str,
        stages: Vec<PipelineStage>,
    ) -> Result<Vec<Vec<TaskId>>> {
        crate::model::validate_name("pipeline name", name)?;
        if stages.is_empty() || stages.iter().any(|s| s.tasks.is_empty()) {
            return Err(Error::InvalidArgument {
                name: "stages",
                reason: "a pipeline needs stages with tasks".into(),
            });
        }
        for (i, task) in stages.iter().flat_map(|s| &s.tasks).enumerate() {
            self.check_value(&format!("metadata of pipeline task {}", i + 1), &task.metadata)?;
        }
        let mut given = std::collections::BTreeSet::new();
        if let Some(twice) =
            stages.iter().flat_map(|s| &s.tasks).filter_map(|t| t.id.as_ref()).find(|id| !given.insert(*id))
        {
            return Err(Error::InvalidArgument {
                name: "stages",
                reason: format!("task id {twice} is given to two tasks of the pipeline"),
            });
        }
        let (id, name) = (actor.clone(), name.to_owned());
        let (_, ids) = self
            .execute(actor, move |state, _| {
                require_agent(state, &id)?;
                let existing = stages_of(state, &name);
                if !existing.is_empty() {
                    define::existing_pipeline(&name, &existing, &stages)?;
                    let ids = existing.iter().map(|(_, tasks)| tasks.iter().map(|t| t.id.clone()).collect());
                    return Ok((Vec::new(), ids.collect()));
                }
                let mut events = Vec::new();
                let mut ids: Vec<Vec<TaskId>> = Vec::new();
                let mut batch = BTreeSet::new();
                for (i, stage) in stages.clone().into_iter().enumerate() {
                    let mut stage_ids = Vec::new();
                    for spec in stage.tasks {
                        let task_id = spec.id.clone().unwrap_or_else(TaskId::generate);
                        if state.tasks.get(&task_id).is_some() {
                            return Err(Error::TaskExists { task: task_id.clone() });
                        }
                        let metadata = json!({"pipeline": name, "stage": i, "stage_name": stage.name, "data": spec.metadata});
                        let spec = spec.id(task_id.clone()).metadata(metadata);
                        let providers = ids.last().map_or(&[][..], Vec::as_slice);
                        events.extend(super::tasks::creation(state, &id, &task_id, spec, providers, &batch)?);
                        stage_ids.push(task_id);
                    }
                    batch.extend(stage_ids.iter().cloned());
                    ids.push(stage_ids);
                }
                Ok((events, ids))
            })
            .await?;
        Ok(ids)
    }

    /// Status, tasks and outputs of a pipeline.
    ///
    /// # Errors
    /// [`Error::UnknownPipeline`] if none has this name; and those of every [query](Coordinator#errors).
    pub fn pipeline_status(&self, name: &str) -> Result<PipelineStatus> {
        self.fresh(|s| {
            let stages: Vec<(String, Vec<Task>)> = stages_of(s, name)
                .into_iter()
                .map(|(stage, tasks)| (stage, tasks.into_iter().cloned().collect()))
                .collect();
            if stages.is_empty() {
                return Err(Error::UnknownPipeline { pipeline: name.to_owned() });
            }
            let all: Vec<&Task> = stages.iter().flat_map(|(_, t)| t).collect();
            let status = if let Some(failed) = all.iter().find(|t| matches!(t.status, TaskStatus::Failed(_)))
            {
                TaskStatus::Failed(format!("task {} failed", failed.id))
            } else if let Some(cancelled) = all.iter().find(|t| matches!(t.status, TaskStatus::Cancelled(_)))
            {
                TaskStatus::Cancelled(format!("task {} was cancelled", cancelled.id))
            } else if all.iter().all(|t| t.status == TaskStatus::Completed) {
                TaskStatus::Completed
            } else if all.iter().any(|t| t.status != TaskStatus::Pending) {
                TaskStatus::InProgress
            } else {
                TaskStatus::Pending
            };
            let outputs = all.iter().flat_map(|t| t.outputs.iter().cloned()).collect();
            Ok(PipelineStatus { status, stages, outputs })
        })?
    }
}

/// The stages of pipeline `name` (empty if there is none): each stage's name and tasks, in the
/// order they were created.
fn stages_of<'a>(state: &'a State, name: &str) -> Vec<(String, Vec<&'a Task>)> {
    let mut tasks: Vec<&Task> = state
        .tasks
        .iter()
        .filter(|t| t.metadata.get("pipeline").and_then(|p| p.as_str()) == Some(name))
        .collect();
    tasks.sort_by_key(|t| (t.metadata.get("stage").and_then(serde_json::Value::as_u64), t.created_lsn));
    let mut stages: Vec<(String, Vec<&Task>)> = Vec::new();
    for t in tasks {
        let stage = t.metadata.get("stage").and_then(serde_json::Value::as_u64);
        let stage = stage.and_then(|s| usize::try_from(s).ok()).unwrap_or(0);
        let stage_name = t.metadata.get("stage_name").and_then(|n| n.as_str()).unwrap_or_default();
        if stages.len() <= stage {
            stages.resize(stage + 1, (String::new(), Vec::new()));
        }
        if let Some(slot) = stages.get_mut(stage) {
            stage_name.clone_into(&mut slot.0);
            slot.1.push(t);
        }
    }
    stages
}
