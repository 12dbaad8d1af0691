//! `maos-coord replay [--until LSN|TIME]`: the whole state as of a point of the log (time
//! travel): agents, tasks by status, context keys with their versions, dependencies, barriers,
//! locks. Folded by the library ([`StoreHistory::state_at`](maos_coord::coordinator::StoreHistory::state_at))
//! from the newest snapshot at or before the point through the records up to it. Who reads
//! context values, and how the store is opened: as `audit` (`audit_cmd`).

use std::collections::BTreeMap;

use clap::Args;
use maos_coord::coordinator::{AgentSummary, AsOf};
use maos_coord::model::{ClaimPolicy, Viewer, Withheld};
use maos_coord::projection::State;
use maos_coord::{Lsn, Timestamp};
use serde_json::{json, Value};

use super::audit_cmd::{time, ReaderArgs};
use super::{view, Failure, Global, Out};

#[derive(Args)]
pub struct ReplayArgs {
    /// The point: an LSN (the state that record and those before it make; 0 for the empty
    /// state), or a time (RFC 3339 in UTC, or a duration ago: 30m, 2h); default: every record.
    #[arg(long, value_name = "LSN|TIME", value_parser = point)]
    until: Option<AsOf>,
    #[command(flatten)]
    reader: ReaderArgs,
}

/// A point: digits are an LSN, anything else a time.
fn point(text: &str) -> Result<AsOf, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(|n| AsOf::Lsn(Lsn::new(n))).map_err(|e| format!("{text}: {e}"));
    }
    time(text).map(AsOf::Time)
}

/// The statuses, in the order tasks are listed.
const STATUSES: [&str; 6] = ["pending", "in_progress", "blocked", "completed", "failed", "cancelled"];

/// `replay`.
pub fn run(args: &ReplayArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    if g.agent_given().is_some() {
        return Err(Failure::Usage(
            "`maos-coord replay` shows the whole state: --agent does not apply (--as NAME shows context values as that agent may read them)".to_owned(),
        ));
    }
    let viewer = args.reader.viewer()?;
    let history = g.options()?.open_history()?;
    let as_of = match args.until {
        Some(point) => point,
        None => AsOf::Lsn(Lsn::new(history.log().next_lsn().get().saturating_sub(1))),
    };
    let state = history.state_at(as_of)?;
    let now = history.now()?;
    // Whether an agent was gone, and what it held, as of the point.
    let then = match as_of {
        AsOf::Time(t) => t,
        AsOf::Lsn(_) => state.last_time,
    };
    let value = state_json(&state, as_of, then, &viewer, now);
    if g.json() {
        out.line(value)?;
    } else {
        for line in text(&value) {
            out.line(line)?;
        }
    }
    Ok(())
}

/// The state as JSON: `lsn` (its last record; 0 before the first), `next_lsn`, `time` (of its
/// last record), `as_of`, `claim_policy`, `agents`, `tasks` (by status), `context`,
/// `dependencies`, `barriers`, `locks`.
fn state_json(state: &State, as_of: AsOf, then: Timestamp, viewer: &Viewer, now: Timestamp) -> Value {
    let image = state.to_image();
    let agents: Vec<Value> =
        image.agents.iter().map(|a| view::agent(&AgentSummary::at(state, a, then))).collect();
    let mut tasks: BTreeMap<&str, Vec<Value>> = STATUSES.iter().map(|s| (*s, Vec::new())).collect();
    let mut sorted: Vec<_> = image.tasks.iter().collect();
    sorted.sort_by_key(|t| t.created_lsn);
    for task in sorted {
        tasks.entry(view::status(&task.status).0).or_default().push(view::task(task));
    }
    let context: Vec<Value> = image
        .context
        .iter()
        .map(|(key, history)| {
            let version = history.versions.len();
            let Some(entry) = &history.current else {
                return json!({"key": key.as_str(), "version": version, "deleted": true, "value": null});
            };
            let mut value = view::entry(entry);
            value["version"] = version.into();
            value["deleted"] = false.into();
            if let Some(why) =
                viewer.access(&entry.owner, &entry.visibility, entry.expires_at, now).withheld()
            {
                value["value"] = Value::Null;
                value["metadata"] = json!({});
                value["withheld"] = match why {
                    Withheld::Expired => "expired",
                    Withheld::NotVisible => "not_visible",
                }
                .into();
            }
            value
        })
        .collect();
    let barriers: Vec<Value> = image
        .barriers
        .iter()
        .map(|(name, b)| {
            json!({"barrier": name.as_str(), "participants": b.participants, "signalled": b.signalled,
                   "complete": b.is_complete()})
        })
        .collect();
    let locks: Vec<Value> = image
        .locks
        .iter()
        .map(|(name, l)| {
            json!({"lock": name.as_str(), "holder": l.holder.as_str(), "token": l.token.get(),
                   "lease_until": view::time(l.lease_until)})
        })
        .collect();
    let policy = match image.claim_policy {
        ClaimPolicy::Strict => json!({"policy": "strict"}),
        ClaimPolicy::Aging { every_ms } => json!({"policy": "aging", "every_ms": every_ms}),
    };
    let as_of = match as_of {
        AsOf::Lsn(lsn) => json!({"lsn": lsn.get()}),
        AsOf::Time(t) => json!({"time": view::time(t)}),
    };
    let last = state.next_lsn.get().saturating_sub(1);
    json!({
        "lsn": last, "next_lsn": state.next_lsn.get(),
        "time": (last > 0).then(|| view::time(state.last_time)), "as_of": as_of,
        "claim_policy": policy, "agents": agents, "tasks": tasks, "context": context,
        "dependencies": image.dependencies.iter().map(view::dependency).collect::<Vec<_>>(),
        "barriers": barriers, "locks": locks,
    })
}

/// The state as text: a heading, then each part as a count and an indented table.
fn text(v: &Value) -> Vec<String> {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let last = format!("LSN {} ({})", v["lsn"], s(&v["time"]));
    let heading = match v["as_of"]["time"].as_str() {
        Some(time) => format!("state as of {time}: its last record is {last}"),
        None => format!("state as of {last}"),
    };
    let mut lines = vec![heading];
    let mut part = |title: String, header: &[&str], rows: Vec<Vec<String>>| {
        lines.push(title);
        if !rows.is_empty() {
            lines.extend(view::table(header, &rows).into_iter().map(|l| format!("  {l}")));
        }
    };
    let agents = list(&v["agents"]);
    let rows = agents
        .iter()
        .map(|a| {
            let status = if a["gone"] == true && a["status"] == "active" {
                "gone".to_owned()
            } else {
                s(&a["status"])
            };
            let holds: Vec<String> = list(&a["holds"]).iter().map(s).collect();
            vec![
                s(&a["id"]),
                s(&a["role"]),
                status,
                s(&a["incarnation"]),
                s(&a["last_heartbeat"]),
                holds.join(","),
            ]
        })
        .collect();
    part(
        format!("agents: {}", agents.len()),
        &["NAME", "ROLE", "STATUS", "INCARNATION", "LAST HEARTBEAT", "HOLDS"],
        rows,
    );
    let counts: Vec<String> = STATUSES
        .iter()
        .map(|st| (st, list(&v["tasks"][st]).len()))
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| format!("{n} {st}"))
        .collect();
    let tasks: Vec<Value> = STATUSES.iter().flat_map(|st| list(&v["tasks"][st])).collect();
    let rows = tasks
        .iter()
        .map(|t| {
            let status = if t["reason"].is_null() {
                s(&t["status"])
            } else {
                format!("{} ({})", s(&t["status"]), s(&t["reason"]))
            };
            vec![s(&t["id"]), status, s(&t["priority"]), s(&t["assigned_to"]), s(&t["name"])]
        })
        .collect();
    let title = if counts.is_empty() {
        "tasks: 0".to_owned()
    } else {
        format!("tasks: {} ({})", tasks.len(), counts.join(", "))
    };
    part(title, &view::TASK_HEADER, rows);
    let context = list(&v["context"]);
    let rows = context
        .iter()
        .map(|e| {
            let value = if e["deleted"] == true {
                "(deleted)".to_owned()
            } else if let Some(why) = e["withheld"].as_str() {
                format!("(withheld: {why})")
            } else {
                view::short(&e["value"], 50)
            };
            vec![s(&e["key"]), s(&e["version"]), s(&e["owner"]), s(&e["visibility"]), value]
        })
        .collect();
    part(
        format!("context: {} keys", context.len()),
        &["KEY", "VERSION", "OWNER", "VISIBILITY", "VALUE"],
        rows,
    );
    let deps = list(&v["dependencies"]);
    let rows = deps.iter().map(|d| vec![s(&d["id"]), s(&d["status"]), s(&d["artifact_type"])]).collect();
    part(format!("dependencies: {}", deps.len()), &["ID", "STATUS", "ARTIFACT"], rows);
    let barriers = list(&v["barriers"]);
    let rows = barriers
        .iter()
        .map(|b| {
            let signalled = list(&b["signalled"]).len();
            let of = list(&b["participants"]).len();
            let done = if b["complete"] == true { "complete" } else { "waiting" };
            vec![s(&b["barrier"]), format!("{signalled}/{of}"), done.to_owned()]
        })
        .collect();
    part(format!("barriers: {}", barriers.len()), &["NAME", "SIGNALLED", "STATE"], rows);
    let locks = list(&v["locks"]);
    let rows = locks
        .iter()
        .map(|l| vec![s(&l["lock"]), s(&l["holder"]), s(&l["token"]), s(&l["lease_until"])])
        .collect();
    part(format!("locks: {}", locks.len()), &["NAME", "HOLDER", "TOKEN", "LEASE UNTIL"], rows);
    lines.push(format!("claim policy: {}", s(&v["claim_policy"]["policy"])));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_an_lsn_or_a_time() {
        assert_eq!(point("42"), Ok(AsOf::Lsn(Lsn::new(42))));
        assert_eq!(point("0"), Ok(AsOf::Lsn(Lsn::new(0))));
        assert_eq!(point("1970-01-01T00:00:01Z"), Ok(AsOf::Time(Timestamp::from_micros(1_000_000))));
        assert!(matches!(point("10m"), Ok(AsOf::Time(_))));
        assert!(point("yesterday").is_err());
    }
}
