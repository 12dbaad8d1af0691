//! `maos-coord timeline TASK` and `maos-coord timeline --agent A`: the audit trail of a task or
//! an agent as steps (created, claimed, lease lapsed, reclaimed, completed), each with the time
//! since the step before; heartbeats in a row are one step. Who reads, and how the store is
//! opened: as `audit` (`audit_cmd`).

use clap::Args;
use maos_coord::coordinator::{between, Step, StepKind};
use maos_coord::model::Subject;
use maos_coord::{AgentId, Error, TaskId};
use serde_json::{json, Value};

use super::audit_cmd::{duration, IndexArgs, ReaderArgs};
use super::{view, Failure, Global, Out};

#[derive(Args)]
pub struct TimelineArgs {
    /// The task (or give --agent NAME for an agent's timeline).
    #[arg(value_name = "TASK")]
    task: Option<String>,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    index: IndexArgs,
}

/// `timeline`.
pub fn run(args: TimelineArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let (subject, unknown) = match (args.task, g.agent_given()) {
        (Some(task), None) => {
            let task = TaskId::new(task)?;
            (Subject::Task(task.to_string()), Error::UnknownTask { task })
        }
        (None, Some(agent)) => {
            let agent = AgentId::new(agent)?;
            (Subject::Agent(agent.to_string()), Error::UnknownAgent { agent, detail: String::new() })
        }
        _ => {
            return Err(Failure::Usage(
                "`maos-coord timeline` needs a task or --agent NAME (one of the two)".to_owned(),
            ))
        }
    };
    let viewer = args.reader.viewer()?;
    let steps = args.index.open(g)?.timeline(&subject, &viewer)?;
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else { return Err(unknown.into()) };
    let total = between(first.entry.time, last.last.1);
    let (what, name) = match &subject {
        Subject::Task(id) => ("task", id.as_str()),
        Subject::Agent(id) | Subject::Context(id) => ("agent", id.as_str()),
    };
    if g.json() {
        let steps: Vec<Value> = steps.iter().map(step_json).collect();
        out.line(json!({what: name, "steps": steps, "duration_ms": u64::try_from(total.as_millis()).unwrap_or(u64::MAX)}))?;
        return Ok(());
    }
    let records: u64 = steps.iter().map(|s| s.repeats).sum();
    out.line(format_args!(
        "{what} {name}: {} steps, {records} records, over {}",
        steps.len(),
        duration(total)
    ))?;
    let rows: Vec<Vec<String>> = steps.iter().enumerate().map(|(i, s)| step_row(s, i == 0, what)).collect();
    for line in view::table(&["TIME", "AFTER", "STEP", "BY", "DETAILS"], &rows) {
        out.line(line)?;
    }
    Ok(())
}

/// A step as JSON: the record's view (`lsn`, `time`, `agent`, `op`, its fields) with `step` and
/// `since_previous_ms`, and for heartbeats in a row `repeats`, `last_lsn` and `last_time`.
fn step_json(step: &Step) -> Value {
    let mut value = view::entry_of_history(&step.entry);
    if let Some(map) = value.as_object_mut() {
        map.insert("step".into(), step.kind.as_str().into());
        let since = u64::try_from(step.since_previous.as_millis()).unwrap_or(u64::MAX);
        map.insert("since_previous_ms".into(), since.into());
        if step.repeats > 1 {
            map.insert("repeats".into(), step.repeats.into());
            map.insert("last_lsn".into(), step.last.0.get().into());
            map.insert("last_time".into(), view::time(step.last.1).into());
        }
    }
    value
}

/// A step on one line: time, time since the step before (none for the first), step, acting
/// agent, details (the event's fields but the subject, and the LSNs).
fn step_row(step: &Step, first: bool, subject: &str) -> Vec<String> {
    let record = view::entry_of_history(&step.entry);
    let name = match step.kind {
        StepKind::Other => record.get("op").and_then(Value::as_str).unwrap_or("other").to_owned(),
        StepKind::Heartbeats if step.repeats > 1 => format!("heartbeats x{}", step.repeats),
        StepKind::Heartbeats => "heartbeat".to_owned(),
        kind => kind.as_str().to_owned(),
    };
    let after = if first { String::new() } else { format!("+{}", duration(step.since_previous)) };
    let lsns = if step.repeats > 1 {
        format!("LSN {}..{}, the last at {}", step.entry.lsn, step.last.0, view::time(step.last.1))
    } else {
        format!("LSN {}", step.entry.lsn)
    };
    let skip: &[&str] = if subject == "task" { &["task"] } else { &[] };
    let fields = view::field_pairs(&record, skip);
    let details = if fields.is_empty() { lsns } else { format!("{fields} ({lsns})") };
    vec![view::time(step.entry.time), after, name, step.entry.recorded.actor.to_string(), details]
}
