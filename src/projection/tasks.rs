//! The task registry, with the indexes claims need: pending tasks in claim order (priority, then
//! age), claimed tasks by the end of their lease, and claimed tasks by holder (heartbeats and
//! stops touch only the holder's tasks).
//!
//! Tasks live in a slab in creation order (tasks are never removed); the indexes hold slot
//! numbers, so keeping them right copies no id.
//!
//! A registry opened from a version-3 snapshot stands on a [`Base`]: the snapshot's tasks fill
//! the first slots of the slab as they are read (decoded once, on first use), and the
//! snapshot's own indexes answer for every task the records after it did not change. A task
//! the registry changes is *touched*: from then on the in-memory indexes hold it and the
//! snapshot's index entries for it are passed over. Every in-progress task of the snapshot is
//! touched when the registry opens, so leases and holders are in memory alone.

use std::cell::{Cell, OnceCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use super::base::{Base, PendingKey};
use super::HashMap;

use crate::model::{AgentId, Event, Priority, Task, TaskId, TaskStatus};
use crate::types::{Lsn, Timestamp};

/// Position of a task in the slab.
type Slot = u32;

/// The capabilities a task requires, sorted, without repeats.
type Needs = Box<[String]>;

fn needs_of(task: &Task) -> Needs {
    let mut needs = task.required_capabilities.clone();
    needs.sort_unstable();
    needs.dedup();
    needs.into_boxed_slice()
}

/// All tasks.
#[derive(Debug, Clone, Default)]
pub struct TaskRegistry {
    /// Boxed as [`Event::TaskCreated`] delivers them: no task is copied into the slab, and
    /// growing the slab moves pointers, not tasks (replay of the mixed benchmark: 4-6% faster).
    /// The first `base` slots are filled from the snapshot on first use.
    slab: Vec<OnceCell<Box<Task>>>,
    /// The snapshot the first slots come from, if any.
    base: Option<Arc<dyn Base>>,
    /// Slots of the snapshot whose index entries are in memory (changed since).
    touched: HashSet<Slot, foldhash::fast::RandomState>,
    /// How many entries at the start of the snapshot's claim order are touched tasks, in the
    /// whole order (0) and in each priority's part (1 + the priority's number): readers start
    /// past them. Touching is for good, so these only grow; without them every claim would pass
    /// over every task claimed before it since the snapshot.
    pending_skip: [Cell<u32>; 5],
    /// Tasks created after the snapshot, by id and by idempotency key.
    by_id: HashMap<TaskId, Slot>,
    by_key: HashMap<String, Slot>,
    /// Pending tasks in claim order (of the snapshot's: the touched ones), one set per set of
    /// required capabilities (sorted, without repeats): a claim walks only the sets the agent's
    /// capabilities meet, not every task it cannot take (with agents of different capabilities
    /// sharing one queue, those piled up in front and every claim passed over them again).
    pending: BTreeMap<Needs, BTreeSet<PendingKey>>,
    /// In-progress tasks by lease end.
    leases: BTreeSet<(Timestamp, Slot)>,
    /// In-progress tasks by holder.
    held: HashMap<AgentId, BTreeSet<Slot>>,
}

impl PartialEq for TaskRegistry {
    /// The indexes are derived from the tasks; equal tasks make equal registries.
    fn eq(&self, other: &TaskRegistry) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl TaskRegistry {
    /// A task by id.
    #[must_use]
    pub fn get(&self, id: &TaskId) -> Option<&Task> {
        self.slot_of(id).and_then(|slot| self.at(slot))
    }

    /// The task created with this idempotency key.
    #[must_use]
    pub fn by_idempotency_key(&self, key: &str) -> Option<&Task> {
        if let Some(&slot) = self.by_key.get(key) {
            return self.at(slot);
        }
        let base = self.base.as_ref()?;
        let slots = base.slots_by_idempotency_key(key).map_err(|e| base.note_damage(e)).ok()?;
        slots.into_iter().filter_map(|slot| self.at(slot)).find(|t| t.idempotency_key.as_deref() == Some(key))
    }

    /// Every task, oldest first (on a registry opened from a snapshot, reading every task).
    pub fn iter(&self) -> impl Iterator<Item = &Task> {
        (0..self.slots()).filter_map(|slot| self.at(slot))
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
        self.merged_pending(None, super::merge_many(self.pending.values().map(|keys| keys.iter().copied())))
    }

    /// Pending tasks whose required capabilities `capabilities` include (of priority `only`,
    /// when given), in claim order; tasks of the snapshot the records after it did not change
    /// come whatever they require (their requirements are read only when the task is).
    pub fn pending_for<'a>(
        &'a self,
        capabilities: &[String],
        only: Option<Priority>,
    ) -> impl Iterator<Item = &'a Task> + use<'a> {
        let range = move |keys: &'a BTreeSet<PendingKey>| -> Box<dyn Iterator<Item = PendingKey> + 'a> {
            match only {
                None => Box::new(keys.iter().copied()),
                Some(p) => {
                    Box::new(keys.range((Reverse(p), 0, 0)..=(Reverse(p), u64::MAX, Slot::MAX)).copied())
                }
            }
        };
        let met: Vec<_> = self
            .pending
            .iter()
            .filter(|(needs, _)| needs.iter().all(|n| capabilities.contains(n)))
            .map(|(_, keys)| range(keys))
            .collect();
        self.merged_pending(only, super::merge_many(met.into_iter()))
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

    /// Every task (for snapshots). Tasks of the snapshot not read yet are decoded for the
    /// image and not kept.
    pub(super) fn to_image(&self) -> Vec<Task> {
        (0..self.slots())
            .filter_map(|slot| match self.slab.get(slot as usize).and_then(OnceCell::get) {
                Some(task) => Some((**task).clone()),
                None => self.decode(slot),
            })
            .collect()
    }

    pub(super) fn from_image(mut tasks: Vec<Task>) -> TaskRegistry {
        tasks.sort_by_key(|t| t.created_lsn); // older snapshots list tasks by id
        let mut registry = TaskRegistry { slab: Vec::with_capacity(tasks.len()), ..TaskRegistry::default() };
        for task in tasks {
            registry.insert(Box::new(task));
        }
        registry
    }

    /// A registry standing on the tasks of `base`; its in-progress tasks are read and
    /// touched now.
    pub(super) fn on_base(base: Arc<dyn Base>) -> TaskRegistry {
        let in_progress = base.in_progress();
        let mut registry = TaskRegistry {
            slab: (0..base.task_count()).map(|_| OnceCell::new()).collect(),
            base: Some(base),
            ..TaskRegistry::default()
        };
        match in_progress {
            Ok(slots) => {
                for slot in slots {
                    registry.touch(slot);
                }
            }
            Err(e) => {
                if let Some(base) = &registry.base {
                    base.note_damage(e);
                }
            }
        }
        registry
    }

    /// The number of slots, as a slot number (a registry holds fewer than 2^32 tasks: inserts
    /// past that are refused).
    fn slots(&self) -> Slot {
        Slot::try_from(self.slab.len()).unwrap_or(Slot::MAX)
    }

    /// The first failed read of the snapshot this registry stands on, if any.
    pub(super) fn damage(&self) -> Option<String> {
        self.base.as_ref().and_then(|b| b.damage())
    }

    /// The snapshot this registry stands on, if any.
    pub(super) fn base(&self) -> Option<&Arc<dyn Base>> {
        self.base.as_ref()
    }

    /// The LSN of the snapshot this registry stands on, if any.
    pub(super) fn base_lsn(&self) -> Option<Lsn> {
        self.base.as_ref().map(|b| b.lsn())
    }

    fn slot_of(&self, id: &TaskId) -> Option<Slot> {
        if let Some(&slot) = self.by_id.get(id) {
            return Some(slot);
        }
        let base = self.base.as_ref()?;
        let slots = base.slots_by_id(id.as_str()).map_err(|e| base.note_damage(e)).ok()?;
        slots.into_iter().find(|&slot| self.at(slot).is_some_and(|t| t.id == *id))
    }

    /// The snapshot's task in `slot`, decoded (`None`, the failure noted, if it does not decode).
    fn decode(&self, slot: Slot) -> Option<Task> {
        let base = self.base.as_ref()?;
        base.task(slot).map_err(|e| base.note_damage(e)).ok()
    }

    /// Pending tasks in claim order: `memory` (in-memory index entries, sorted) merged with the
    /// snapshot's entries of untouched tasks.
    fn merged_pending<'a>(
        &'a self,
        only: Option<Priority>,
        memory: impl Iterator<Item = PendingKey> + 'a,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        let skip = self.pending_skip(only);
        let mut leading = true;
        let base = self.base.iter().flat_map(move |b| {
            b.pending(only, skip.get())
                .map_while(move |entry| entry.map_err(|e| b.note_damage(e)).ok())
                .filter(move |&(index, (_, _, slot))| {
                    let touched = self.touched.contains(&slot);
                    // The run of touched entries this reader starts with is passed over by
                    // every later reader too.
                    leading &= touched;
                    if leading {
                        skip.set(index + 1);
                    }
                    !touched
                })
                .map(|(_, key)| key)
        });
        super::merge_sorted(memory, base).filter_map(|(_, _, slot)| self.at(slot))
    }

    /// How many entries at the start of the snapshot's claim order (of priority `only`, when
    /// given) are touched tasks.
    fn pending_skip(&self, only: Option<Priority>) -> &Cell<u32> {
        let [all, low, normal, high, critical] = &self.pending_skip;
        match only {
            None => all,
            Some(Priority::Low) => low,
            Some(Priority::Normal) => normal,
            Some(Priority::High) => high,
            Some(Priority::Critical) => critical,
        }
    }

    /// Makes the in-memory indexes hold the snapshot's task in `slot` (before it changes).
    fn touch(&mut self, slot: Slot) {
        if (slot as usize) < self.base_len() && !self.touched.contains(&slot) && self.at(slot).is_some() {
            self.touched.insert(slot);
            self.index(slot);
        }
    }

    fn base_len(&self) -> usize {
        self.base.as_ref().map_or(0, |b| b.task_count() as usize)
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
        let range = (Reverse(priority), 0, 0)..=(Reverse(priority), u64::MAX, Slot::MAX);
        let memory =
            super::merge_many(self.pending.values().map(move |keys| keys.range(range.clone()).copied()));
        self.merged_pending(Some(priority), memory)
    }

    fn at(&self, slot: Slot) -> Option<&Task> {
        let cell = self.slab.get(slot as usize)?;
        if let Some(task) = cell.get() {
            return Some(task);
        }
        let task = self.decode(slot)?;
        Some(cell.get_or_init(|| Box::new(task)))
    }

    fn held_by(&self, agent: &AgentId) -> Vec<Slot> {
        self.held.get(agent).map(|slots| slots.iter().copied().collect()).unwrap_or_default()
    }

    /// Adds a new task. A second task with an id already present (possible only in a log
    /// written by another program) changes nothing.
    fn insert(&mut self, task: Box<Task>) {
        if self.slot_of(&task.id).is_some() {
            return;
        }
        let Ok(slot) = Slot::try_from(self.slab.len()) else { return };
        if let Some(key) = &task.idempotency_key {
            self.by_key.insert(key.clone(), slot);
        }
        self.by_id.insert(task.id.clone(), slot);
        self.slab.push(OnceCell::from(task));
        self.index(slot);
    }

    /// Changes the task `id`, keeping the indexes right.
    fn update(&mut self, id: &TaskId, time: Timestamp, change: impl FnOnce(&mut Task)) {
        if let Some(slot) = self.slot_of(id) {
            self.change(slot, time, change);
        }
    }

    fn change(&mut self, slot: Slot, time: Timestamp, change: impl FnOnce(&mut Task)) {
        self.touch(slot);
        self.unindex(slot);
        if let Some(task) = self.slab.get_mut(slot as usize).and_then(OnceCell::get_mut) {
            change(task);
            task.updated_at = time;
        }
        self.index(slot);
    }

    /// Adds the task at `slot` to the indexes its fields put it in.
    fn index(&mut self, slot: Slot) {
        let Some(task) = self.slab.get(slot as usize).and_then(OnceCell::get) else { return };
        match (&task.status, task.lease_until, &task.assigned_to) {
            (TaskStatus::Pending, ..) => {
                let key = (Reverse(task.priority), task.created_lsn, slot);
                self.pending.entry(needs_of(task)).or_default().insert(key);
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
        let Some(task) = self.slab.get(slot as usize).and_then(OnceCell::get) else { return };
        match (&task.status, task.lease_until, &task.assigned_to) {
            (TaskStatus::Pending, ..) => {
                let needs = needs_of(task);
                if let Some(keys) = self.pending.get_mut(&needs) {
                    keys.remove(&(Reverse(task.priority), task.created_lsn, slot));
                    if keys.is_empty() {
                        self.pending.remove(&needs);
                    }
                }
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
