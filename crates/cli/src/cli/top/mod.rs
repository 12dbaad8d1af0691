//! What `maos-coord top` shows, made from one [`Overview`] and nothing else: the rows of its
//! panels (this module) and their drawing ([`render`]), both pure functions of the overview, so
//! that a frame is the same on a terminal, as text (`top --once`) and in tests.

pub mod render;

use maos_coord::coordinator::{Delivery, HistoryEntry, Overview, TaskCounts};
use maos_coord::{AgentStatus, Task, Timestamp};
use serde_json::{json, Value};

use super::view;

/// A time as the clock on the wall shows it: `07:29:33` (UTC).
pub fn clock(t: Timestamp) -> String {
    let text = t.to_string();
    let time = text.split_once('T').map_or(text.as_str(), |(_, time)| time);
    time.split(['.', 'Z']).next().unwrap_or(time).to_owned()
}

/// Whether an agent is alive, gone (silent past its heartbeat timeout) or stopped.
pub fn agent_state(gone: bool, status: &AgentStatus) -> &'static str {
    match (status, gone) {
        (AgentStatus::Stopped(_), _) => "stopped",
        (AgentStatus::Active, true) => "gone",
        (AgentStatus::Active, false) => "alive",
    }
}

/// The agents panel: id, role, alive / gone / stopped, tasks held, locks held.
pub const AGENT_HEADER: [&str; 5] = ["AGENT", "ROLE", "STATE", "HOLDS", "LOCKS"];

/// One row per agent.
pub fn agent_rows(o: &Overview) -> Vec<Vec<String>> {
    o.agents
        .iter()
        .map(|s| {
            let list = |items: Vec<&str>| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
            vec![
                s.agent.id.to_string(),
                s.agent.role.clone(),
                agent_state(s.gone, &s.agent.status).to_owned(),
                list(s.holds.iter().map(|t| t.as_str()).collect()),
                list(s.locks.iter().map(|l| l.as_str()).collect()),
            ]
        })
        .collect()
}

/// The tasks panel: id, status (with its reason), holder, end of the lease, name.
pub const TASK_HEADER: [&str; 5] = ["TASK", "STATUS", "HOLDER", "LEASE", "NAME"];

/// A lease's end: `until 07:29:33`, or `lapsed 07:29:33` once it ended before `now`.
fn lease(until: Option<Timestamp>, now: Timestamp) -> String {
    match until {
        Some(t) if t < now => format!("lapsed {}", clock(t)),
        Some(t) => format!("until {}", clock(t)),
        None => "-".to_owned(),
    }
}

/// One row per task listed.
pub fn task_rows(o: &Overview) -> Vec<Vec<String>> {
    o.tasks
        .iter()
        .map(|t: &Task| {
            let (status, reason) = view::status(&t.status);
            let holding = matches!(t.status, maos_coord::TaskStatus::InProgress);
            vec![
                t.id.to_string(),
                reason.map_or_else(|| status.to_owned(), |r| format!("{status} ({r})")),
                t.assigned_to
                    .as_ref()
                    .filter(|_| holding)
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
                if holding { lease(t.lease_until, o.now) } else { "-".to_owned() },
                t.name.clone(),
            ]
        })
        .collect()
}

/// `3 pending · 1 in progress · 2 completed`: the statuses some task has, in the order tasks
/// go through them; `no tasks` when there are none.
pub fn counts(c: &TaskCounts) -> String {
    let all = [
        (c.pending, "pending"),
        (c.in_progress, "in progress"),
        (c.blocked, "blocked"),
        (c.completed, "completed"),
        (c.failed, "failed"),
        (c.cancelled, "cancelled"),
    ];
    let some: Vec<String> = all.iter().filter(|(n, _)| *n > 0).map(|(n, s)| format!("{n} {s}")).collect();
    if some.is_empty() {
        "no tasks".to_owned()
    } else {
        some.join(" · ")
    }
}

/// The locks panel: name, holder, fencing token, end of the lease.
pub const LOCK_HEADER: [&str; 4] = ["LOCK", "HOLDER", "TOKEN", "LEASE"];

/// One row per held lock.
pub fn lock_rows(o: &Overview) -> Vec<Vec<String>> {
    o.locks
        .iter()
        .map(|(name, l)| {
            vec![
                name.to_string(),
                l.holder.to_string(),
                l.token.get().to_string(),
                lease(Some(l.lease_until), o.now),
            ]
        })
        .collect()
}

/// The barriers panel: name, how many signalled, who it waits for.
pub const BARRIER_HEADER: [&str; 3] = ["BARRIER", "SIGNALLED", "WAITING FOR"];

/// One row per barrier.
pub fn barrier_rows(o: &Overview) -> Vec<Vec<String>> {
    o.barriers
        .iter()
        .map(|(name, b)| {
            let waiting: Vec<&str> =
                b.participants.iter().filter(|p| !b.signalled.contains(*p)).map(String::as_str).collect();
            vec![
                name.to_string(),
                format!(
                    "{}/{}",
                    b.participants.iter().filter(|p| b.signalled.contains(*p)).count(),
                    b.participants.len()
                ),
                if waiting.is_empty() { "- (open)".to_owned() } else { waiting.join(", ") },
            ]
        })
        .collect()
}

/// An event as `events tail` prints it, without context values and their metadata: top shows
/// which key changed and its version (values are read with `ctx get`, under the access rule).
pub fn event(e: &HistoryEntry) -> Value {
    let delivery = Delivery {
        lsn: e.lsn,
        time: e.time,
        recorded: e.recorded.clone(),
        withheld: e.withheld,
        deliveries: 1,
    };
    let mut event = view::event(&delivery);
    if let Some(map) = event.as_object_mut() {
        if map.get("op").and_then(Value::as_str) == Some("context_set") {
            map.remove("value");
            map.remove("metadata");
        }
    }
    event
}

/// An event on one line, its time as the clock shows it.
pub fn event_line(e: &HistoryEntry) -> String {
    let mut event = event(e);
    if let Some(map) = event.as_object_mut() {
        map.insert("time".into(), clock(e.time).into());
    }
    view::event_line(&event)
}

/// `top --once --json`: the overview as one object.
pub fn json(o: &Overview, store: &str) -> Value {
    let c = &o.counts;
    json!({
        "store": store,
        "next_lsn": o.next_lsn.get(),
        "time": view::time(o.now),
        "agents": o.agents.iter().map(view::agent).collect::<Vec<_>>(),
        "task_counts": {
            "pending": c.pending, "in_progress": c.in_progress, "blocked": c.blocked,
            "completed": c.completed, "failed": c.failed, "cancelled": c.cancelled, "total": c.total(),
        },
        "tasks": o.tasks.iter().map(view::task).collect::<Vec<_>>(),
        "locks": o.locks.iter().map(|(name, l)| json!({
            "lock": name.as_str(), "holder": l.holder.as_str(), "token": l.token.get(),
            "lease_until": view::time(l.lease_until), "lapsed": l.lease_until < o.now,
        })).collect::<Vec<_>>(),
        "barriers": o.barriers.iter().map(|(name, b)| json!({
            "barrier": name.as_str(), "participants": b.participants,
            "signalled": b.signalled.iter().collect::<Vec<_>>(), "open": b.is_complete(),
        })).collect::<Vec<_>>(),
        "events": o.events.iter().map(event).collect::<Vec<_>>(),
        "changes_at": o.changes_at.map(view::time),
    })
}
