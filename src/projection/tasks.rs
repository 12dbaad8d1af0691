//! The task registry, with the indexes claims need: pending tasks in claim order (priority, then
//! age), claimed tasks by the end of their lease, and claimed tasks by holder (heartbeats and
//! stops touch only the holder's tasks).
//!
//! Tasks live in a slab in creation order (tasks are never removed); the indexes hold slot
//! numbers, so keeping them right copies no id.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::HashMap;

use crate::model::{AgentId, Event, Priority, Task, TaskId, TaskStatus};
use crate::types::{Lsn, Timestamp};

/// Position of a task in the slab.
type Slot = u32;

/// All tasks.
#[derive(Debug, Clone, Default)]
pub struct TaskRegistry {
    /// Boxed as [`Event::TaskCreated`] delivers them: no task is copied into the slab, and
    /// growing the slab moves pointers, not tasks (replay of the mixed benchmark: 4-6% faster).
    #[allow(clippy::vec_box)]
    slab: Vec<Box<Task>>,
    by_id: HashMap<TaskId, Slot>,
    by_key: HashMap<String, Slot>,
    /// Pending tasks in claim order.
    pending: BTreeSet<(Reverse<Priority>, u64, Slot)>,
    /// In-progress tasks by lease end.
    leases: BTreeSet<(Timestamp, Slot)>,
    /// In-progress tasks by holder.
    held: HashMap<AgentId, BTreeSet<Slot>>,
}

impl PartialEq for TaskRegistry {
    /// The indexes are derived from the tasks; equal tasks make equal registries.
    fn eq(&self, other: &TaskRegistry) -> bool {
        self.slab == other.slab
    }
}

impl TaskRegistry {
    /// A task by id.
    #[must_use]
    pub fn get(&self, id: &TaskId) -> Option<&Task> {
        self.by_id.get(id).and_then(|&slot| self.at(slot))
    }

    /// The task created with this idempotency key.
    #[must_use]
    pub fn by_idempotency_key(&self, key: &str) -> Option<&Task> {
        self.by_key.get(key).and_then(|&slot| self.at(slot))
    }

    /// Every task, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Task> {
        self.slab.iter().map(|t| &**t)
    }

    /// Number of tasks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether there is no task.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Pending tasks, highest priority first, then oldest.
    pub fn pending_in_claim_order(&self) -> impl Iterator<Item = &Task> {
        self.pending.iter().filter_map(|&(_, _, slot)| self.at(slot))
    }

    /// In-progress tasks whose lease ended before `now`.
    pub fn lapsed(&self, now: Timestamp) -> impl Iterator<Item = &Task> {
        self.leases.iter().take_while(move |(until, _)| *until < now).filter_map(|&(_, slot)| self.at(slot))
    }

    /// The first end of a claim's lease after `now`: when the next claimed task may lapse.
    #[must_use]
    pub fn next_lease_end(&self, now: Timestamp) -> Option<Timestamp> {
        let after = Timestamp::from_micros(now.as_micros().saturating_add(1));
        self.leases.range((after, 0)..).next().map(|&(until, _)| until)
    }

    /// Tasks assigned to `agent` (held now, or last held).
    pub fn assigned_to<'a>(&'a self, agent: &'a AgentId) -> impl Iterator<Item = &'a Task> + 'a {
        self.iter().filter(move |t| t.assigned_to.as_ref() == Some(agent))
    }

    /// Every task (for snapshots).
    pub(super) fn to_image(&self) -> Vec<Task> {
        self.iter().cloned().collect()
    }

    pub(super) fn from_image(mut tasks: Vec<Task>) -> TaskRegistry {
        tasks.sort_by_key(|t| t.created_lsn); // older snapshots list tasks by id
        let mut registry = TaskRegistry { slab: Vec::with_capacity(tasks.len()), ..TaskRegistry::default() };
        for task in tasks {
            registry.insert(Box::new(task));
        }
        registry
    }

    pub(super) fn apply(&mut self, event: Event, lsn: Lsn, time: Timestamp) {
        match event {
            Event::TaskCreated { mut task } => {
                task.created_lsn = lsn.get();
                task.created_at = time;
                task.updated_at = time;
                self.insert(task);
            }
            Event::TaskClaimed { task, agent, lease_until } => self.update(&task, time, |t| {
                t.status = TaskStatus::InProgress;
                t.assigned_to = Some(agent);
                t.attempts += 1;
                t.lease_until = Some(lease_until);
            }),
            Event::TaskLeaseLapsed { task, .. }
            | Event::TaskAttemptFailed { task, .. }
            | Event::TaskAbandoned { task, .. } => {
                self.update(&task, time, |t| {
                    t.failures += 1;
                    t.status = TaskStatus::Pending;
                    t.lease_until = None;
                });
            }
            Event::TaskReleased { task, .. } | Event::TaskUnblocked { task } => {
                self.update(&task, time, |t| {
                    t.status = TaskStatus::Pending;
                    t.lease_until = None;
                });
            }
            Event::TaskBlocked { task, reason } => self.update(&task, time, |t| {
                t.status = TaskStatus::Blocked(reason);
                t.lease_until = None;
            }),
            Event::TaskOutputAdded { task, output } => self.update(&task, time, |t| t.outputs.push(output)),
            Event::TaskCompleted { task, outputs } => self.update(&task, time, |t| {
                for output in outputs {
                    if !t.outputs.contains(&output) {
                        t.outputs.push(output);
                    }
                }
                t.status = TaskStatus::Completed;
                t.lease_until = None;
            }),
            Event::TaskFailed { task, error } => self.update(&task, time, |t| {
                t.status = TaskStatus::Failed(error);
                t.lease_until = None;
            }),
            Event::TaskCancelled { task, reason } => self.update(&task, time, |t| {
                t.status = TaskStatus::Cancelled(reason);
                t.lease_until = None;
            }),
            _ => {}
        }
    }

    /// A heartbeat of `agent`: the leases of the tasks it holds run until `until`.
    pub(super) fn extend_leases(&mut self, agent: &AgentId, until: Timestamp, time: Timestamp) {
        for slot in self.held_by(agent) {
            self.change(slot, time, |t| t.lease_until = Some(until));
        }
    }

    /// `agent` stopped (a log written before claims ended in records of their own): the tasks
    /// it holds are pending again. Returns them.
    pub(super) fn release_all(&mut self, agent: &AgentId, time: Timestamp) -> Vec<TaskId> {
        let slots = self.held_by(agent);
        for &slot in &slots {
            self.change(slot, time, |t| {
                t.status = TaskStatus::Pending;
                t.lease_until = None;
            });
        }
        slots.into_iter().filter_map(|slot| self.at(slot).map(|t| t.id.clone())).collect()
    }

    /// The tasks `agent` holds (in progress, assigned to it), in creation order.
    pub fn held_by_agent<'a>(&'a self, agent: &AgentId) -> impl Iterator<Item = &'a Task> + 'a {
        self.held_by(agent).into_iter().filter_map(|slot| self.at(slot))
    }

    /// Pending tasks of one priority, oldest first.
    pub fn pending_at(&self, priority: Priority) -> impl Iterator<Item = &Task> {
        self.pending
            .range((Reverse(priority), 0, 0)..=(Reverse(priority), u64::MAX, Slot::MAX))
            .filter_map(|&(_, _, slot)| self.at(slot))
    }

    fn at(&self, slot: Slot) -> Option<&Task> {
        self.slab.get(slot as usize).map(|t| &**t)
    }

    fn held_by(&self, agent: &AgentId) -> Vec<Slot> {
        self.held.get(agent).map(|slots| slots.iter().copied().collect()).unwrap_or_default()
    }

    /// Adds a new task. A second task with an id already present (possible only in a log
    /// written by another program) changes nothing.
    fn insert(&mut self, task: Box<Task>) {
        if self.by_id.contains_key(&task.id) {
            return;
        }
        let Ok(slot) = Slot::try_from(self.slab.len()) else { return };
        if let Some(key) = &task.idempotency_key {
            self.by_key.insert(key.clone(), slot);
        }
        self.by_id.insert(task.id.clone(), slot);
        self.slab.push(task);
        self.index(slot);
    }

    /// Changes the task `id`, keeping the indexes right.
    fn update(&mut self, id: &TaskId, time: Timestamp, change: impl FnOnce(&mut Task)) {
        if let Some(&slot) = self.by_id.get(id) {
            self.change(slot, time, change);
        }
    }

    fn change(&mut self, slot: Slot, time: Timestamp, change: impl FnOnce(&mut Task)) {
        self.unindex(slot);
        if let Some(task) = self.slab.get_mut(slot as usize) {
            change(task);
            task.updated_at = time;
        }
        self.index(slot);
    }

    /// Adds the task at `slot` to the indexes its fields put it in.
    fn index(&mut self, slot: Slot) {
        let Some(task) = self.slab.get(slot as usize) else { return };
        match (&task.status, task.lease_until, &task.assigned_to) {
            (TaskStatus::Pending, ..) => {
                self.pending.insert((Reverse(task.priority), task.created_lsn, slot));
            }
            (TaskStatus::InProgress, lease, holder) => {
                if let Some(until) = lease {
                    self.leases.insert((until, slot));
                }
                if let Some(holder) = holder {
                    match self.held.get_mut(holder) {
                        Some(slots) => {
                            slots.insert(slot);
                        }
                        None => {
                            self.held.insert(holder.clone(), BTreeSet::from([slot]));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Removes the task at `slot` from the indexes (before a change).
    fn unindex(&mut self, slot: Slot) {
        let Some(task) = self.slab.get(slot as usize) else { return };
        match (&task.status, task.lease_until, &task.assigned_to) {
            (TaskStatus::Pending, ..) => {
                self.pending.remove(&(Reverse(task.priority), task.created_lsn, slot));
            }
            (TaskStatus::InProgress, lease, holder) => {
                if let Some(until) = lease {
                    self.leases.remove(&(until, slot));
                }
                if let Some(slots) = holder.as_ref().and_then(|h| self.held.get_mut(h)) {
                    slots.remove(&slot);
                    if slots.is_empty() {
                        if let Some(holder) = holder {
                            self.held.remove(holder);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}
