//! The JSON views of the library's types, the same for every command (and the conventions a
//! later MCP server is to share): times are RFC 3339 strings; statuses, priorities and
//! operations snake_case strings, with reasons in their own `reason` field; a task carries
//! `id`; an event is `{"lsn", "time", "agent", "op", ...fields}` with `agent` the acting agent.
//! They are made here, from the types' fields, not from the library's serde derives (which
//! are the record format). Also the text forms: aligned tables and one-line events.

use maos_coord::coordinator::{AgentSummary, Delivery, HistoryEntry, PipelineStatus};
use maos_coord::model::{
    ArtifactType, ClaimPolicy, ContextEntry, Dependency, DependencyStatus, Event, Recorded, Task, TaskStatus,
    Withheld,
};
use maos_coord::{Lsn, Priority, Timestamp, Visibility};
use serde_json::{json, Map, Value};

/// A time: RFC 3339 with microseconds, in UTC.
pub fn time(t: Timestamp) -> String {
    t.to_string()
}

/// A task status and its reason.
pub fn status(status: &TaskStatus) -> (&'static str, Option<&str>) {
    match status {
        TaskStatus::Pending => ("pending", None),
        TaskStatus::InProgress => ("in_progress", None),
        TaskStatus::Blocked(r) => ("blocked", Some(r)),
        TaskStatus::Completed => ("completed", None),
        TaskStatus::Failed(r) => ("failed", Some(r)),
        TaskStatus::Cancelled(r) => ("cancelled", Some(r)),
    }
}

/// A priority.
pub fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Critical => "critical",
    }
}

/// A task.
pub fn task(t: &Task) -> Value {
    let (status, reason) = status(&t.status);
    json!({
        "id": t.id.as_str(), "name": t.name, "description": t.description,
        "priority": priority(t.priority), "required_capabilities": t.required_capabilities,
        "status": status, "reason": reason,
        "assigned_to": t.assigned_to.as_ref().map(|a| a.as_str()),
        "lease_until": t.lease_until.map(time), "outputs": t.outputs, "metadata": t.metadata,
        "attempts": t.attempts, "failures": t.failures, "max_attempts": t.max_attempts,
        "created_at": time(t.created_at), "updated_at": time(t.updated_at),
        "created_by": t.created_by.as_str(), "idempotency_key": t.idempotency_key,
    })
}

/// An agent, whether it is gone, and what it holds.
pub fn agent(s: &AgentSummary) -> Value {
    let a = &s.agent;
    let (status, reason) = match &a.status {
        maos_coord::AgentStatus::Active => ("active", None),
        maos_coord::AgentStatus::Stopped(reason) => ("stopped", Some(reason.as_str())),
    };
    json!({
        "id": a.id.as_str(), "role": a.role, "capabilities": a.capabilities,
        "status": status, "reason": reason, "gone": s.gone,
        "registered_at": time(a.registered_at), "last_heartbeat": time(a.last_heartbeat),
        "heartbeat_timeout_ms": a.heartbeat_timeout_ms, "incarnation": a.incarnation,
        "holds": s.holds.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "locks": s.locks.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
    })
}

/// A visibility: its name and, when restricted, the agents it lists.
fn visibility(v: &Visibility) -> (&'static str, Vec<&str>) {
    match v {
        Visibility::Shared => ("shared", Vec::new()),
        Visibility::Private => ("private", Vec::new()),
        Visibility::Restricted(agents) => ("restricted", agents.iter().map(|a| a.as_str()).collect()),
    }
}

/// A context entry.
pub fn entry(e: &ContextEntry) -> Value {
    let (visibility, readers) = visibility(&e.visibility);
    json!({
        "key": e.key.as_str(), "version": e.version, "value": e.value, "owner": e.owner.as_str(),
        "visibility": visibility, "restricted_to": readers, "metadata": e.metadata,
        "created_at": time(e.created_at), "updated_at": time(e.updated_at),
        "expires_at": e.expires_at.map(time),
    })
}

/// An artifact type: `completion`, `file`, `context`, or the name of another.
pub fn artifact(a: &ArtifactType) -> &str {
    match a {
        ArtifactType::Completion => "completion",
        ArtifactType::File => "file",
        ArtifactType::Context => "context",
        ArtifactType::Other(name) => name,
    }
}

/// A dependency.
pub fn dependency(d: &Dependency) -> Value {
    let (status, reason) = match &d.status {
        DependencyStatus::Pending => ("pending", None),
        DependencyStatus::InProgress => ("in_progress", None),
        DependencyStatus::Ready => ("ready", None),
        DependencyStatus::Failed(reason) => ("failed", Some(reason.as_str())),
    };
    json!({
        "id": d.id.as_str(), "provider": d.provider.as_str(), "consumer": d.consumer.as_str(),
        "artifact_type": artifact(&d.artifact_type), "artifact_path": d.artifact_path,
        "status": status, "reason": reason,
    })
}

/// A pipeline: its status (as a task's), its stages with their tasks, its outputs.
pub fn pipeline(name: &str, p: &PipelineStatus) -> Value {
    let (status, reason) = status(&p.status);
    let stages: Vec<Value> = p
        .stages
        .iter()
        .map(|(stage, tasks)| json!({"name": stage, "tasks": tasks.iter().map(task).collect::<Vec<_>>()}))
        .collect();
    json!({"pipeline": name, "status": status, "reason": reason, "stages": stages, "outputs": p.outputs})
}

/// The operations, snake_case, and the library's names of their events.
const OPS: [(&str, &str); 26] = [
    ("agent_started", "AgentStarted"),
    ("agent_heartbeat", "AgentHeartbeat"),
    ("agent_stopped", "AgentStopped"),
    ("task_created", "TaskCreated"),
    ("task_claimed", "TaskClaimed"),
    ("task_lease_lapsed", "TaskLeaseLapsed"),
    ("task_released", "TaskReleased"),
    ("task_blocked", "TaskBlocked"),
    ("task_unblocked", "TaskUnblocked"),
    ("task_output_added", "TaskOutputAdded"),
    ("task_completed", "TaskCompleted"),
    ("task_failed", "TaskFailed"),
    ("task_attempt_failed", "TaskAttemptFailed"),
    ("task_abandoned", "TaskAbandoned"),
    ("task_cancelled", "TaskCancelled"),
    ("context_set", "ContextUpdated"),
    ("context_deleted", "ContextDeleted"),
    ("dependency_registered", "DependencyRegistered"),
    ("dependency_ready", "DependencyReady"),
    ("dependency_failed", "DependencyFailed"),
    ("barrier_created", "BarrierCreated"),
    ("barrier_signalled", "BarrierSignalled"),
    ("lock_acquired", "LockAcquired"),
    ("lock_released", "LockReleased"),
    ("claim_policy_set", "ClaimPolicySet"),
    ("delivery_dead_lettered", "DeliveryDeadLettered"),
];

/// The event types a `--type` value selects: an operation (`task_claimed`), the library's
/// name of one (`TaskClaimed`), or the type of an application event (`event emit TYPE`).
pub fn event_types(asked: &str) -> Vec<String> {
    match OPS.iter().find(|(op, _)| *op == asked) {
        // An operation selects the coordination events only, never an application event that
        // took its name (`event emit` refuses such names; a store may hold older ones).
        Some((_, name)) => vec![(*name).to_owned()],
        None => vec![asked.to_owned()],
    }
}

/// Whether `name` is the name of an operation (`task_claimed`) or of a coordination event as
/// the library names it (`TaskClaimed`), or `custom`: an application event may not take it, so
/// that `events tail --type` cannot be misled.
pub fn is_operation_name(name: &str) -> bool {
    name == "custom" || name == "Custom" || OPS.iter().any(|(op, library)| *op == name || *library == name)
}

/// The operation of an event: `custom` for an application event (its type in `type`).
pub fn op(event: &Event) -> String {
    if let Event::Custom { .. } = event {
        return "custom".to_owned();
    }
    op_of(event.type_name())
}

/// The operation of the library's name of an event (`Custom` for application events).
pub fn op_of(name: &str) -> String {
    if name == "Custom" {
        return "custom".to_owned();
    }
    OPS.iter().find(|(_, n)| *n == name).map_or_else(|| snake(name), |(op, _)| (*op).to_owned())
}

/// `TaskLeaseLapsed` as `task_lease_lapsed` (for an event a newer library adds).
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A delivered event: `{"lsn", "time", "agent", "op", ...fields}`. An agent an event is about
/// other than the acting one is `holder` (of a task or lock) or `subscriber`.
pub fn event(d: &Delivery) -> Value {
    record(d.lsn, d.time, &d.recorded, d.withheld)
}

/// A record of an audit trail: as a delivered [`event`].
pub fn entry_of_history(e: &HistoryEntry) -> Value {
    record(e.lsn, e.time, &e.recorded, e.withheld)
}

/// Why a context value was withheld: `expired` or `not_visible`.
pub fn withheld(why: Withheld) -> &'static str {
    match why {
        Withheld::Expired => "expired",
        Withheld::NotVisible => "not_visible",
    }
}

/// A recorded event at `lsn`, appended at `time`, with its value withheld if `withheld` says so.
fn record(lsn: Lsn, t: Timestamp, recorded: &Recorded, withheld: Option<Withheld>) -> Value {
    let mut fields = fields(&recorded.event);
    if let Some(why) = withheld {
        fields.insert("withheld".into(), self::withheld(why).into());
    }
    let mut out = Map::new();
    out.insert("lsn".into(), lsn.get().into());
    out.insert("time".into(), time(t).into());
    out.insert("agent".into(), recorded.actor.as_str().into());
    out.insert("op".into(), op(&recorded.event).into());
    out.extend(fields);
    Value::Object(out)
}

/// The fields of an event, besides those every event has.
fn fields(event: &Event) -> Map<String, Value> {
    let value = match event {
        Event::AgentStarted { role, capabilities, heartbeat_timeout_ms, .. } => {
            json!({"role": role, "capabilities": capabilities, "heartbeat_timeout_ms": heartbeat_timeout_ms})
        }
        Event::AgentHeartbeat { lease_until, .. } => json!({"lease_until": time(*lease_until)}),
        Event::AgentStopped { reason, .. } => json!({"reason": reason}),
        Event::TaskCreated { task: t } => {
            let mut view = task(t);
            if let Some(map) = view.as_object_mut() {
                map.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "name"
                            | "description"
                            | "priority"
                            | "required_capabilities"
                            | "metadata"
                            | "max_attempts"
                            | "idempotency_key"
                    )
                });
                map.insert("task".into(), t.id.as_str().into());
            }
            view
        }
        Event::TaskClaimed { task, agent, lease_until } => {
            json!({"task": task.as_str(), "holder": agent.as_str(), "lease_until": time(*lease_until)})
        }
        Event::TaskLeaseLapsed { task, agent } | Event::TaskReleased { task, agent } => {
            json!({"task": task.as_str(), "holder": agent.as_str()})
        }
        Event::TaskAbandoned { task, agent, reason } => {
            json!({"task": task.as_str(), "holder": agent.as_str(), "reason": reason})
        }
        Event::TaskBlocked { task, reason }
        | Event::TaskFailed { task, error: reason }
        | Event::TaskAttemptFailed { task, error: reason }
        | Event::TaskCancelled { task, reason } => json!({"task": task.as_str(), "reason": reason}),
        Event::TaskUnblocked { task } => json!({"task": task.as_str()}),
        Event::TaskOutputAdded { task, output } => json!({"task": task.as_str(), "output": output}),
        Event::TaskCompleted { task, outputs } => json!({"task": task.as_str(), "outputs": outputs}),
        Event::ContextUpdated { key, value, visibility: v, expires_at, metadata, version } => {
            let (visibility, readers) = visibility(v);
            json!({
                "key": key.as_str(), "version": version, "value": value, "visibility": visibility,
                "restricted_to": readers, "expires_at": expires_at.map(time), "metadata": metadata,
            })
        }
        Event::ContextDeleted { key, version } => json!({"key": key.as_str(), "version": version}),
        Event::DependencyRegistered { dependency: d } => {
            let mut view = dependency(d);
            if let Some(map) = view.as_object_mut() {
                let id = map.remove("id").unwrap_or_default();
                map.insert("dependency".into(), id);
            }
            view
        }
        Event::DependencyReady { dependency, artifact_path } => {
            json!({"dependency": dependency.as_str(), "artifact_path": artifact_path})
        }
        Event::DependencyFailed { dependency, reason } => {
            json!({"dependency": dependency.as_str(), "reason": reason})
        }
        Event::BarrierCreated { name, participants } => {
            json!({"barrier": name.as_str(), "participants": participants})
        }
        Event::BarrierSignalled { name, participant } => {
            json!({"barrier": name.as_str(), "participant": participant})
        }
        Event::LockAcquired { name, holder, lease_until } => {
            json!({"lock": name.as_str(), "holder": holder.as_str(), "lease_until": time(*lease_until)})
        }
        Event::LockReleased { name, holder } => json!({"lock": name.as_str(), "holder": holder.as_str()}),
        Event::Custom { event_type, data, metadata } => {
            json!({"type": event_type, "data": data, "metadata": metadata})
        }
        Event::ClaimPolicySet { policy } => match policy {
            ClaimPolicy::Strict => json!({"policy": "strict"}),
            ClaimPolicy::Aging { every_ms } => json!({"policy": "aging", "every_ms": every_ms}),
        },
        Event::DeliveryDeadLettered { agent, subscription, lsn, deliveries } => json!({
            "subscriber": agent.as_str(), "subscription": subscription, "record": lsn.get(),
            "deliveries": deliveries,
        }),
        // An event a newer library adds: its operation, no fields yet.
        _ => json!({}),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// An event on one line: LSN, time, agent, operation, then its fields as `name=value`.
pub fn event_line(event: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let get = |k: &str| event.get(k).map(text).unwrap_or_default();
    let mut line = format!("{:>8}  {}  {:<16} {}", get("lsn"), get("time"), get("agent"), get("op"));
    let fields = field_pairs(event, &[]);
    if !fields.is_empty() {
        line.push(' ');
        line.push_str(&fields);
    }
    line
}

/// The fields of an event as `name=value` pairs, but those every event has (`lsn`, `time`,
/// `agent`, `op`), those named in `skip` and empty ones.
pub fn field_pairs(event: &Value, skip: &[&str]) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut pairs = Vec::new();
    if let Some(map) = event.as_object() {
        for (k, v) in map {
            let empty = v.is_null()
                || v.as_str().is_some_and(str::is_empty)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(Map::is_empty);
            if !matches!(k.as_str(), "lsn" | "time" | "agent" | "op") && !skip.contains(&k.as_str()) && !empty
            {
                pairs.push(format!("{k}={}", text(v)));
            }
        }
    }
    pairs.join(" ")
}

/// A task on one line of a table: id, status, priority, holder, name.
pub fn task_row(t: &Task) -> Vec<String> {
    let (status, reason) = status(&t.status);
    let status = reason.map_or_else(|| status.to_owned(), |r| format!("{status} ({r})"));
    vec![
        t.id.to_string(),
        status,
        priority(t.priority).to_owned(),
        t.assigned_to.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
        t.name.clone(),
    ]
}

/// The header of [`task_row`]s.
pub const TASK_HEADER: [&str; 5] = ["ID", "STATUS", "PRIORITY", "ASSIGNED", "NAME"];

/// A task as `name: value` lines.
pub fn task_lines(t: &Task) -> Vec<String> {
    let (status, reason) = status(&t.status);
    let mut lines = vec![
        format!("id:            {}", t.id),
        format!("name:          {}", t.name),
        format!("status:        {status}{}", reason.map_or_else(String::new, |r| format!(" ({r})"))),
        format!("priority:      {}", priority(t.priority)),
    ];
    if !t.description.is_empty() {
        lines.push(format!("description:   {}", t.description));
    }
    if !t.required_capabilities.is_empty() {
        lines.push(format!("requires:      {}", t.required_capabilities.join(", ")));
    }
    if let Some(holder) = &t.assigned_to {
        lines.push(format!("assigned to:   {holder}"));
    }
    if let Some(until) = t.lease_until {
        lines.push(format!("lease until:   {until}"));
    }
    lines.push(format!("attempts:      {} ({} failed, at most {})", t.attempts, t.failures, t.max_attempts));
    if !t.outputs.is_empty() {
        lines.push(format!("outputs:       {}", t.outputs.join(", ")));
    }
    if !t.metadata.is_null() {
        lines.push(format!("metadata:      {}", t.metadata));
    }
    lines.push(format!("created:       {} by {}", t.created_at, t.created_by));
    lines.push(format!("updated:       {}", t.updated_at));
    lines
}

/// Rows as lines of columns aligned two spaces apart (the last column unpadded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let head: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let all: Vec<&Vec<String>> = std::iter::once(&head).chain(rows).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| all.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0))
        .collect();
    all.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

/// A JSON value on one line, cut to `max` characters.
pub fn short(value: &Value, max: usize) -> String {
    let text = value.to_string();
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_snake_case_of_its_event_but_context_set() {
        for (op, name) in OPS {
            if name != "ContextUpdated" {
                assert_eq!(snake(name), op);
            }
            assert_eq!(event_types(op), [name], "an operation selects coordination events only");
            assert!(is_operation_name(op) && is_operation_name(name));
        }
        assert_eq!(event_types("build_done"), ["build_done"]);
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![vec!["a".to_owned(), "long cell".to_owned(), "x".to_owned()]];
        assert_eq!(table(&["ID", "B", "C"], &rows), ["ID  B          C", "a   long cell  x"]);
    }
}
