//! The task registry, with the indexes claims need: pending tasks in claim order (priority, then
//! age), claimed tasks by the end of their lease, and claimed tasks by holder (heartbeats and
//! stops touch only the holder's tasks).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::model::{AgentId, Event, Priority, Task, TaskId, TaskStatus};
use crate::types::{Lsn, Timestamp};

/// All tasks, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRegistry {
    tasks: BTreeMap<TaskId, Task>,
    by_key: BTreeMap<String, TaskId>,
    /// Pending tasks in claim order.
    pending: BTreeSet<(Reverse<Priority>, u64, TaskId)>,
    /// In-progress tasks by lease end.
    leases: BTreeSet<(Timestamp, TaskId)>,
    /// In-progress tasks by holder.
    held: BTreeMap<AgentId, BTreeSet<TaskId>>,
}

/// What a task is indexed by.
struct Indexed {
    status: TaskStatus,
    lease: Option<Timestamp>,
    priority: Priority,
    created: u64,
    holder: Option<AgentId>,
}

impl Indexed {
    fn of(task: &Task) -> Indexed {
        Indexed {
            status: task.status.clone(),
            lease: task.lease_until,
            priority: task.priority,
            created: task.created_lsn,
            holder: task.assigned_to.clone(),
        }
    }
}

impl TaskRegistry {
    /// A task by id.
    #[must_use]
    pub fn get(&self, id: &TaskId) -> Option<&Task> {
        self.tasks.get(id)
    }

    /// The task created with this idempotency key.
    #[must_use]
    pub fn by_idempotency_key(&self, key: &str) -> Option<&Task> {
        self.by_key.get(key).and_then(|id| self.tasks.get(id))
    }

    /// Every task, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// Number of tasks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there is no task.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Pending tasks, highest priority first, then oldest.
    pub fn pending_in_claim_order(&self) -> impl Iterator<Item = &Task> {
        self.pending.iter().filter_map(|(_, _, id)| self.tasks.get(id))
    }

    /// In-progress tasks whose lease ended before `now`.
    pub fn lapsed(&self, now: Timestamp) -> impl Iterator<Item = &Task> {
        self.leases.iter().take_while(move |(until, _)| *until < now).filter_map(|(_, id)| self.tasks.get(id))
    }

    /// Tasks assigned to `agent` (held now, or last held).
    pub fn assigned_to<'a>(&'a self, agent: &'a AgentId) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.values().filter(move |t| t.assigned_to.as_ref() == Some(agent))
    }

    /// Every task (for snapshots).
    pub(super) fn to_image(&self) -> Vec<Task> {
        self.tasks.values().cloned().collect()
    }

    pub(super) fn from_image(tasks: Vec<Task>) -> TaskRegistry {
        let mut registry = TaskRegistry::default();
        for task in tasks {
            if let Some(key) = &task.idempotency_key {
                registry.by_key.insert(key.clone(), task.id.clone());
            }
            let id = task.id.clone();
            registry.tasks.insert(id.clone(), task);
            registry.reindex(&id, None);
        }
        registry
    }

    pub(super) fn apply(&mut self, event: &Event, lsn: Lsn, time: Timestamp) {
        match event {
            Event::TaskCreated { task } => {
                let mut task = (**task).clone();
                task.created_lsn = lsn.get();
                task.created_at = time;
                task.updated_at = time;
                if let Some(key) = &task.idempotency_key {
                    self.by_key.insert(key.clone(), task.id.clone());
                }
                let id = task.id.clone();
                self.tasks.insert(id.clone(), task);
                self.reindex(&id, None);
            }
            Event::TaskClaimed { task, agent, lease_until } => self.update(task, time, |t| {
                t.status = TaskStatus::InProgress;
                t.assigned_to = Some(agent.clone());
                t.attempts += 1;
                t.lease_until = Some(*lease_until);
            }),
            Event::TaskLeaseLapsed { task, .. } => self.update(task, time, |t| {
                t.failures += 1;
                t.status = TaskStatus::Pending;
                t.lease_until = None;
            }),
            Event::TaskAttemptFailed { task, .. } => self.update(task, time, |t| {
                t.failures += 1;
                t.status = TaskStatus::Pending;
                t.lease_until = None;
            }),
            Event::TaskReleased { task, .. } | Event::TaskUnblocked { task } => {
                self.update(task, time, |t| {
                    t.status = TaskStatus::Pending;
                    t.lease_until = None;
                })
            }
            Event::TaskBlocked { task, reason } => self.update(task, time, |t| {
                t.status = TaskStatus::Blocked(reason.clone());
                t.lease_until = None;
            }),
            Event::TaskOutputAdded { task, output } => {
                self.update(task, time, |t| t.outputs.push(output.clone()))
            }
            Event::TaskCompleted { task, outputs } => self.update(task, time, |t| {
                for output in outputs {
                    if !t.outputs.contains(output) {
                        t.outputs.push(output.clone());
                    }
                }
                t.status = TaskStatus::Completed;
                t.lease_until = None;
            }),
            Event::TaskFailed { task, error } => self.update(task, time, |t| {
                t.status = TaskStatus::Failed(error.clone());
                t.lease_until = None;
            }),
            _ => {}
        }
    }

    /// A heartbeat of `agent`: the leases of the tasks it holds run until `until`.
    pub(super) fn extend_leases(&mut self, agent: &AgentId, until: Timestamp, time: Timestamp) {
        for id in self.held_by(agent) {
            self.update(&id, time, |t| t.lease_until = Some(until));
        }
    }

    /// `agent` stopped: the tasks it holds are pending again.
    pub(super) fn release_all(&mut self, agent: &AgentId, time: Timestamp) {
        for id in self.held_by(agent) {
            self.update(&id, time, |t| {
                t.status = TaskStatus::Pending;
                t.lease_until = None;
            });
        }
    }

    fn held_by(&self, agent: &AgentId) -> Vec<TaskId> {
        self.held.get(agent).map(|ids| ids.iter().cloned().collect()).unwrap_or_default()
    }

    /// Changes a task, keeping the indexes right.
    fn update(&mut self, id: &TaskId, time: Timestamp, change: impl FnOnce(&mut Task)) {
        let Some(task) = self.tasks.get_mut(id) else { return };
        let before = Indexed::of(task);
        change(task);
        task.updated_at = time;
        self.reindex(id, Some(before));
    }

    fn reindex(&mut self, id: &TaskId, before: Option<Indexed>) {
        if let Some(before) = before {
            if before.status == TaskStatus::Pending {
                self.pending.remove(&(Reverse(before.priority), before.created, id.clone()));
            }
            if let Some(until) = before.lease {
                self.leases.remove(&(until, id.clone()));
            }
            if let (TaskStatus::InProgress, Some(holder)) = (&before.status, &before.holder) {
                if let Some(ids) = self.held.get_mut(holder) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.held.remove(holder);
                    }
                }
            }
        }
        let Some(task) = self.tasks.get(id) else { return };
        if task.status == TaskStatus::Pending {
            self.pending.insert((Reverse(task.priority), task.created_lsn, id.clone()));
        }
        if let (TaskStatus::InProgress, Some(until)) = (&task.status, task.lease_until) {
            self.leases.insert((until, id.clone()));
        }
        if let (TaskStatus::InProgress, Some(holder)) = (&task.status, &task.assigned_to) {
            self.held.entry(holder.clone()).or_default().insert(id.clone());
        }
    }
}
