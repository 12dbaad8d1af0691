//! The whole store at a glance, for dashboards such as `maos-coord top`: agents, tasks by
//! status, locks, barriers and the latest events, as of one LSN, with the time the answer
//! changes next without a new record (a lease or a heartbeat timeout ending).

use super::agents::summary;
use super::{AgentSummary, Coordinator, HistoryEntry};
use crate::error::Result;
use crate::model::{BarrierName, LockName, Task, TaskStatus, EVENT_RECORD_KIND};
use crate::projection::{AgentStatus, Barrier, Lock, State};
use crate::types::{Lsn, Timestamp};

/// How much of the store an [`Overview`] lists (counts always cover everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverviewLimits {
    /// At most this many tasks in [`Overview::tasks`].
    pub tasks: usize,
    /// Events from at most this many of the latest records, in [`Overview::events`].
    pub events: usize,
}

impl Default for OverviewLimits {
    /// 50 tasks, the latest 20 records.
    fn default() -> OverviewLimits {
        OverviewLimits { tasks: 50, events: 20 }
    }
}

/// How many tasks have each status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskCounts {
    /// Waiting to be claimed.
    pub pending: usize,
    /// Claimed (a lapsed lease not yet recorded included).
    pub in_progress: usize,
    /// Blocked.
    pub blocked: usize,
    /// Completed.
    pub completed: usize,
    /// Failed for good.
    pub failed: usize,
    /// Cancelled.
    pub cancelled: usize,
}

impl TaskCounts {
    /// Every task.
    #[must_use]
    pub fn total(&self) -> usize {
        self.pending + self.in_progress + self.blocked + self.completed + self.failed + self.cancelled
    }

    fn count(&mut self, status: &TaskStatus) {
        let slot = match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::InProgress => &mut self.in_progress,
            TaskStatus::Blocked(_) => &mut self.blocked,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Failed(_) => &mut self.failed,
            TaskStatus::Cancelled(_) => &mut self.cancelled,
        };
        *slot += 1;
    }
}

/// The store at a glance ([`Coordinator::overview`]), as of [`Overview::next_lsn`] and judged
/// at [`Overview::now`]. It is the raw state, as [`Coordinator::read`] gives it: the events
/// carry context values of every visibility (`withheld` is always `None`); a tool that shows
/// them to an agent applies [`model::access`](crate::model::access) itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// The first LSN it does not include: it is the state after every record below.
    pub next_lsn: Lsn,
    /// The time leases and liveness are judged at: the clock, never before the last record's
    /// time (as a command run now would decide).
    pub now: Timestamp,
    /// Every agent ever registered, by id, as [`Coordinator::list_agents`] lists them.
    pub agents: Vec<AgentSummary>,
    /// Tasks by status, all of them.
    pub counts: TaskCounts,
    /// At most [`OverviewLimits::tasks`] tasks, the busiest first: in progress (by lease end),
    /// pending (in claim order), blocked (oldest first), then the finished ones (failed,
    /// cancelled, completed), most recently changed first.
    pub tasks: Vec<Task>,
    /// Held locks, by name; one whose lease ended before `now` is listed until it is released
    /// or granted again.
    pub locks: Vec<(LockName, Lock)>,
    /// Every barrier, by name.
    pub barriers: Vec<(BarrierName, Barrier)>,
    /// The coordination events among the latest [`OverviewLimits::events`] records below
    /// `next_lsn` (those the log still holds), oldest first; records of other kinds and records
    /// a tombstone skips are left out.
    pub events: Vec<HistoryEntry>,
    /// The first time after `now` at which this answer changes without a new record: a
    /// claim's or a lock's lease ends, or an active agent's heartbeat timeout passes. `None`
    /// when nothing is due.
    pub changes_at: Option<Timestamp>,
}

/// Where a task goes in [`Overview::tasks`]: the order of its group, then its order within.
fn rank(task: &Task) -> (u8, i64) {
    let newest_first = -task.updated_at.as_micros();
    match task.status {
        TaskStatus::InProgress => (0, task.lease_until.map_or(i64::MAX, Timestamp::as_micros)),
        // Pending tasks are taken in claim order from the registry's index, not ranked here.
        TaskStatus::Pending => (1, 0),
        TaskStatus::Blocked(_) => (2, i64::try_from(task.created_lsn).unwrap_or(i64::MAX)),
        TaskStatus::Failed(_) => (3, newest_first),
        TaskStatus::Cancelled(_) => (4, newest_first),
        TaskStatus::Completed => (5, newest_first),
    }
}

/// The tasks an overview lists, busiest first.
fn listed(state: &State, limit: usize) -> Vec<Task> {
    let mut ranked: Vec<&Task> =
        state.tasks.iter().filter(|t| !matches!(t.status, TaskStatus::Pending)).collect();
    ranked.sort_by_key(|t| rank(t));
    let claimed = ranked.partition_point(|t| matches!(t.status, TaskStatus::InProgress));
    let (in_progress, rest) = ranked.split_at(claimed);
    in_progress
        .iter()
        .copied()
        .chain(state.tasks.pending_in_claim_order())
        .chain(rest.iter().copied())
        .take(limit)
        .cloned()
        .collect()
}

/// When the state read at `now` changes next without a record.
fn changes_at(state: &State, now: Timestamp) -> Option<Timestamp> {
    let tasks = state.tasks.next_lease_end(now);
    let locks = state.locks.values().map(|l| l.lease_until).filter(|&t| t > now).min();
    let agents = state
        .agents
        .values()
        .filter(|a| a.status == AgentStatus::Active)
        .map(|a| a.last_heartbeat.plus(std::time::Duration::from_millis(a.heartbeat_timeout_ms)))
        .filter(|&t| t >= now)
        .min();
    [tasks, locks, agents].into_iter().flatten().min()
}

impl Coordinator {
    /// The store at a glance: every agent (gone or not, what it holds), how many tasks have each
    /// status and the busiest of them, locks, barriers, the latest events, and when the answer
    /// changes next without a record. Everything is read from one catch-up, as of one LSN; a
    /// dashboard redraws after [`LogBackend::wait_for`](crate::backend::LogBackend::wait_for)
    /// `(overview.next_lsn, ..)` returns or at [`Overview::changes_at`], whichever comes first.
    ///
    /// Reads the projections once (every task is looked at to count it) and the latest
    /// `limits.events` records.
    ///
    /// # Errors
    /// Those of every [query](Coordinator#errors); reading the latest records fails as
    /// [`LogBackend::reader_from`](crate::backend::LogBackend::reader_from) does, and a
    /// coordination record among them that does not decode and that no tombstone skips is
    /// [`Error::UndecodableRecord`](crate::Error::UndecodableRecord).
    pub fn overview(&self, limits: OverviewLimits) -> Result<Overview> {
        let mut overview = self.read_at(|s, now| {
            let mut counts = TaskCounts::default();
            for task in s.tasks.iter() {
                counts.count(&task.status);
            }
            Overview {
                next_lsn: s.next_lsn,
                now,
                agents: s.agents.values().map(|a| summary(s, a, now)).collect(),
                counts,
                tasks: listed(s, limits.tasks),
                locks: s.locks.iter().map(|(n, l)| (n.clone(), l.clone())).collect(),
                barriers: s.barriers.iter().map(|(n, b)| (n.clone(), b.clone())).collect(),
                events: Vec::new(),
                changes_at: changes_at(s, now),
            }
        })?;
        overview.events = self.latest_events(overview.next_lsn, limits.events)?;
        Ok(overview)
    }

    /// The coordination events among the `count` records below `end`, oldest first.
    fn latest_events(&self, end: Lsn, count: usize) -> Result<Vec<HistoryEntry>> {
        let first = self.log.first_lsn()?;
        let start = Lsn::new(end.get().saturating_sub(count as u64).max(first.get()));
        let mut events = Vec::new();
        if start >= end {
            return Ok(events);
        }
        let mut records = self.log.reader_from(start)?;
        while let Some(record) = records.next()? {
            if record.lsn >= end {
                break;
            }
            if record.kind.get() != EVENT_RECORD_KIND {
                continue;
            }
            let (lsn, time) = (record.lsn, record.timestamp);
            match self.skips.decode(&*self.log, lsn, record.payload) {
                Ok(Some(recorded)) => events.push(HistoryEntry { lsn, time, recorded, withheld: None }),
                Ok(None) => {}
                Err(e) => return Err(e.at(records.last_location())),
            }
        }
        Ok(events)
    }
}
