//! `maos-coord replay [--until LSN|TIME]`: the whole state as of a point of the log (time
//! travel): agents, tasks by status, context keys with their versions, dependencies, barriers,
//! locks. Folded by the library ([`StoreHistory::state_at`](maos_coord::coordinator::StoreHistory::state_at))
//! from the newest snapshot at or before the point through the records up to it. Who reads
//! context values, and how the store is opened: as `audit` (`audit_cmd`).

use clap::Args;
use maos_coord::coordinator::{AgentSummary, AsOf};
use maos_coord::model::{ClaimPolicy, Task, Viewer};
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
    // Whether an agent was gone, and what it held, as of the point; whether a value expired,
    // now (the rule of every read).
    let then = match as_of {
        AsOf::Time(t) => t,
        AsOf::Lsn(_) => state.last_time,
    };
    let replay = Replay { state: &state, as_of, then, viewer: &viewer, now: history.now()? };
    if g.json() {
        replay.json(out)
    } else {
        replay.text(out)
    }
}

/// A state to show, and how.
struct Replay<'a> {
    state: &'a State,
    as_of: AsOf,
    /// The time of the point.
    then: Timestamp,
    viewer: &'a Viewer,
    now: Timestamp,
}

impl Replay<'_> {
    /// Tasks by status (in [`STATUSES`] order), each oldest first.
    fn tasks(&self) -> Vec<(&'static str, Vec<&Task>)> {
        let mut by_status: Vec<(&str, Vec<&Task>)> = STATUSES.iter().map(|s| (*s, Vec::new())).collect();
        for task in self.state.tasks.iter() {
            let status = view::status(&task.status).0;
            if let Some((_, tasks)) = by_status.iter_mut().find(|(s, _)| *s == status) {
                tasks.push(task);
            }
        }
        for (_, tasks) in &mut by_status {
            tasks.sort_by_key(|t| t.created_lsn);
        }
        by_status
    }

    fn agents(&self) -> impl Iterator<Item = AgentSummary> + '_ {
        self.state.agents.values().map(|a| AgentSummary::at(self.state, a, self.then))
    }

    /// Every key ever set: `key`, `version`, `deleted`, and the current entry (its value withheld
    /// where the viewer may not read it, saying why).
    fn context(&self) -> impl Iterator<Item = Value> + '_ {
        self.state.context.keys().map(|(key, history)| {
            let version = history.versions.len();
            let Some(entry) = &history.current else {
                return json!({"key": key.as_str(), "version": version, "deleted": true, "value": null});
            };
            let mut value = view::entry(entry);
            value["version"] = version.into();
            value["deleted"] = false.into();
            if let Some(why) =
                self.viewer.access(&entry.owner, &entry.visibility, entry.expires_at, self.now).withheld()
            {
                value["value"] = Value::Null;
                value["metadata"] = json!({});
                value["withheld"] = view::withheld(why).into();
            }
            value
        })
    }

    fn barriers(&self) -> impl Iterator<Item = Value> + '_ {
        self.state.barriers.iter().map(|(name, b)| {
            json!({"barrier": name.as_str(), "participants": b.participants, "signalled": b.signalled,
                   "complete": b.is_complete()})
        })
    }

    fn locks(&self) -> impl Iterator<Item = Value> + '_ {
        self.state.locks.iter().map(|(name, l)| {
            json!({"lock": name.as_str(), "holder": l.holder.as_str(), "token": l.token.get(),
                   "lease_until": view::time(l.lease_until)})
        })
    }

    /// The LSN of the state's last record (0 before the first).
    fn last(&self) -> u64 {
        self.state.next_lsn.get().saturating_sub(1)
    }

    /// One JSON object: `lsn` (the state's last record; 0 before the first), `next_lsn`, `time`
    /// (of its last record), `as_of`, `claim_policy`, `agents`, `tasks` (by status), `context`,
    /// `dependencies`, `barriers`, `locks`. Written piece by piece: a state of millions of tasks
    /// is never held as JSON whole.
    fn json(&self, out: &mut Out) -> Result<(), Failure> {
        let policy = match self.state.claim_policy {
            ClaimPolicy::Strict => json!({"policy": "strict"}),
            ClaimPolicy::Aging { every_ms } => json!({"policy": "aging", "every_ms": every_ms}),
        };
        let as_of = match self.as_of {
            AsOf::Lsn(lsn) => json!({"lsn": lsn.get()}),
            AsOf::Time(t) => json!({"time": view::time(t)}),
        };
        let head = json!({
            "lsn": self.last(), "next_lsn": self.state.next_lsn.get(),
            "time": (self.last() > 0).then(|| view::time(self.state.last_time)), "as_of": as_of,
            "claim_policy": policy,
        });
        let mut w = Pieces { out, buf: Vec::with_capacity(PIECES) };
        let head = head.to_string();
        w.put(head.strip_suffix('}').unwrap_or(&head).as_bytes())?;
        w.array("agents", self.agents().map(|s| view::agent(&s)))?;
        w.put(br#","tasks":{"#)?;
        for (i, (status, tasks)) in self.tasks().into_iter().enumerate() {
            w.put(format!("{}\"{status}\":", if i > 0 { "," } else { "" }).as_bytes())?;
            w.list(tasks.into_iter().map(view::task))?;
        }
        w.put(b"}")?;
        w.array("context", self.context())?;
        w.array("dependencies", self.state.deps.iter().map(view::dependency))?;
        w.array("barriers", self.barriers())?;
        w.array("locks", self.locks())?;
        w.put(b"}\n")?;
        w.flush()
    }

    /// A heading, then each part as a count and an indented table.
    fn text(&self, out: &mut Out) -> Result<(), Failure> {
        let last = match self.last() {
            0 => "LSN 0 (before the first record)".to_owned(),
            n => format!("LSN {n} ({})", view::time(self.state.last_time)),
        };
        match self.as_of {
            AsOf::Time(t) => {
                out.line(format_args!("state as of {}: its last record is {last}", view::time(t)))?
            }
            AsOf::Lsn(_) => out.line(format_args!("state as of {last}"))?,
        }
        let agents = self.agent_rows();
        let header = ["NAME", "ROLE", "STATUS", "INCARNATION", "LAST HEARTBEAT", "HOLDS"];
        part(out, format!("agents: {}", agents.len()), &header, &agents)?;
        let tasks = self.tasks();
        let counts: Vec<String> =
            tasks.iter().filter(|(_, t)| !t.is_empty()).map(|(s, t)| format!("{} {s}", t.len())).collect();
        let rows: Vec<Vec<String>> =
            tasks.iter().flat_map(|(_, t)| t.iter().map(|t| view::task_row(t))).collect();
        let title = match counts.len() {
            0 => "tasks: 0".to_owned(),
            _ => format!("tasks: {} ({})", rows.len(), counts.join(", ")),
        };
        part(out, title, &view::TASK_HEADER, &rows)?;
        let context = self.context_rows();
        let header = ["KEY", "VERSION", "OWNER", "VISIBILITY", "VALUE"];
        part(out, format!("context: {} keys", context.len()), &header, &context)?;
        let deps = self.dependency_rows();
        part(out, format!("dependencies: {}", deps.len()), &["ID", "STATUS", "ARTIFACT"], &deps)?;
        let barriers: Vec<Vec<String>> = self
            .state
            .barriers
            .iter()
            .map(|(name, b)| {
                let state = if b.is_complete() { "complete" } else { "waiting" };
                vec![
                    name.to_string(),
                    format!("{}/{}", b.signalled.len(), b.participants.len()),
                    state.to_owned(),
                ]
            })
            .collect();
        part(out, format!("barriers: {}", barriers.len()), &["NAME", "SIGNALLED", "STATE"], &barriers)?;
        let locks: Vec<Vec<String>> = self
            .state
            .locks
            .iter()
            .map(|(name, l)| {
                vec![name.to_string(), l.holder.to_string(), l.token.to_string(), view::time(l.lease_until)]
            })
            .collect();
        part(out, format!("locks: {}", locks.len()), &["NAME", "HOLDER", "TOKEN", "LEASE UNTIL"], &locks)?;
        let policy = match self.state.claim_policy {
            ClaimPolicy::Strict => "strict".to_owned(),
            ClaimPolicy::Aging { every_ms } => format!("aging (one level every {every_ms} ms)"),
        };
        out.line(format_args!("claim policy: {policy}"))?;
        Ok(())
    }

    /// Agents: name, role, status as of the point (stopped, gone: silent past its timeout,
    /// active), incarnation, last heartbeat, tasks held under live leases.
    fn agent_rows(&self) -> Vec<Vec<String>> {
        self.agents()
            .map(|s| {
                let a = &s.agent;
                let status = match &a.status {
                    maos_coord::AgentStatus::Stopped(_) => "stopped",
                    maos_coord::AgentStatus::Active if s.gone => "gone",
                    maos_coord::AgentStatus::Active => "active",
                };
                let holds: Vec<String> = s.holds.iter().map(ToString::to_string).collect();
                let (id, role, incarnation) = (a.id.to_string(), a.role.clone(), a.incarnation.to_string());
                vec![id, role, status.to_owned(), incarnation, view::time(a.last_heartbeat), holds.join(",")]
            })
            .collect()
    }

    /// Context keys: key, version, owner, visibility, and the value, withheld or deleted.
    fn context_rows(&self) -> Vec<Vec<String>> {
        self.context()
            .map(|e| {
                let value = if e["deleted"] == true {
                    "(deleted)".to_owned()
                } else if let Some(why) = e["withheld"].as_str() {
                    format!("(withheld: {why})")
                } else {
                    view::short(&e["value"], 50)
                };
                let owner = e.get("owner").map_or_else(|| "-".to_owned(), text);
                let visibility = e.get("visibility").map_or_else(|| "-".to_owned(), text);
                vec![text(&e["key"]), text(&e["version"]), owner, visibility, value]
            })
            .collect()
    }

    /// Dependencies: id, status (with its reason), artifact type.
    fn dependency_rows(&self) -> Vec<Vec<String>> {
        self.state
            .deps
            .iter()
            .map(|d| {
                let v = view::dependency(d);
                let status = match v["reason"].as_str() {
                    Some(reason) => format!("{} ({reason})", text(&v["status"])),
                    None => text(&v["status"]),
                };
                vec![d.id.to_string(), status, text(&v["artifact_type"])]
            })
            .collect()
    }
}

/// A JSON value as a table cell: a string as it is, anything else as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A part of the text: its title, then its rows as a table indented by two spaces.
fn part(out: &mut Out, title: String, header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
    out.line(title)?;
    if !rows.is_empty() {
        for line in view::table(header, rows) {
            out.line(format_args!("  {line}"))?;
        }
    }
    Ok(())
}

/// How much JSON is gathered before it is written.
const PIECES: usize = 1 << 16;

/// JSON written piece by piece.
struct Pieces<'a> {
    out: &'a mut Out,
    buf: Vec<u8>,
}

impl Pieces<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= PIECES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// `,"name":[...]`.
    fn array(&mut self, name: &str, items: impl Iterator<Item = Value>) -> Result<(), Failure> {
        self.put(format!(",\"{name}\":").as_bytes())?;
        self.list(items)
    }

    /// `[...]`.
    fn list(&mut self, items: impl Iterator<Item = Value>) -> Result<(), Failure> {
        self.put(b"[")?;
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            let text = item.to_string();
            self.put(text.as_bytes())?;
        }
        self.put(b"]")
    }
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
