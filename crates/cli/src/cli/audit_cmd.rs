//! `maos-coord audit`: every record that matches, oldest first, from everything the store holds
//! (the records keyed compaction kept included). Also what the three history commands
//! (`audit`, `timeline`, `replay`) share: opening the history, the reader, times.
//!
//! **Who reads.** These commands act as no agent: `MAOS_AGENT` does not apply to them, and
//! `--agent` on their command line names the agent whose records to show. Context values are
//! shown as `--as NAME` may read them (its own, those restricted to it, shared ones); without
//! `--as`, as nobody in particular may: only shared values that have not expired. Any other value
//! is withheld (`value` null, `withheld` saying why), as an agent's subscription withholds it.
//!
//! **Opening.** They open the store for reading only and load no state
//! ([`CoordinatorOptions::open_history`](maos_coord::CoordinatorOptions::open_history)), so users
//! who may only read the store can run them; an audit brings the audit index up to date first
//! when it may write it, and reads the log where the index does not reach otherwise.

use std::time::{Duration, SystemTime};

use clap::Args;
use maos_coord::coordinator::StoreHistory;
use maos_coord::model::{AuditQuery, Viewer};
use maos_coord::{AgentId, ContextKey, TaskId, Timestamp};

use super::{view, Failure, Global, Out};

#[derive(Args)]
pub struct AuditArgs {
    /// Only records about this task (repeatable: any of them).
    #[arg(long = "task", value_name = "T")]
    tasks: Vec<String>,
    /// Only records about this context key (repeatable).
    #[arg(long = "key", value_name = "K")]
    keys: Vec<String>,
    /// Only this operation (task_claimed, context_set, ...) or application event type
    /// (repeatable).
    #[arg(long = "type", value_name = "T")]
    types: Vec<String>,
    /// Only records appended at or after this time: RFC 3339 in UTC (2026-12-01T10:00:00Z), or
    /// a duration ago (30m, 2h).
    #[arg(long, value_name = "TIME", value_parser = time)]
    since: Option<Timestamp>,
    /// Only records appended at or before this time (as --since).
    #[arg(long, value_name = "TIME", value_parser = time)]
    until: Option<Timestamp>,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    index: IndexArgs,
}

/// Who the history commands read context values as.
#[derive(Args)]
pub struct ReaderArgs {
    /// Show context values as this agent may read them (default: as nobody in particular, who
    /// may read only shared values that have not expired).
    #[arg(long = "as", value_name = "AGENT")]
    viewer: Option<String>,
}

/// Whether an audit uses the audit index.
#[derive(Args)]
pub struct IndexArgs {
    /// Read the whole log instead of using the audit index (the answer is the same; for
    /// checking the index).
    #[arg(long)]
    no_index: bool,
}

impl ReaderArgs {
    /// Who reads context values.
    pub fn viewer(&self) -> Result<Viewer, Failure> {
        Ok(match &self.viewer {
            Some(name) => Viewer::Agent(AgentId::new(name.as_str())?),
            None => Viewer::Public,
        })
    }
}

impl IndexArgs {
    /// The store's history, opened for reading.
    pub fn open(&self, g: &Global) -> Result<StoreHistory, Failure> {
        Ok(g.options()?.open_history()?.use_index(!self.no_index))
    }
}

/// A time argument: RFC 3339 (UTC), or a duration before now.
pub fn time(text: &str) -> Result<Timestamp, String> {
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                format!("{text:?} is neither a time (2026-12-01T10:00:00Z) nor a duration ago (30m, 2h)")
            })?;
            SystemTime::now().checked_sub(ago).ok_or_else(|| format!("{text} ago is before 1970"))?
        }
    };
    let micros = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    };
    Ok(Timestamp::from_micros(micros))
}

/// A duration for people: `1m 30s 250ms`, `0s`.
pub fn duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        return if d.is_zero() { "0s".to_owned() } else { format!("{}µs", d.as_micros()) };
    }
    humantime::format_duration(Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
        .to_string()
}

/// `audit`.
pub fn run(args: AuditArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let mut query = AuditQuery { since: args.since, until: args.until, ..AuditQuery::all() };
    for task in args.tasks {
        query = query.task(TaskId::new(task)?);
    }
    for key in args.keys {
        query = query.key(ContextKey::new(key)?);
    }
    if let Some(agent) = g.agent_given() {
        query = query.agent(AgentId::new(agent)?);
    }
    query.types = args.types.iter().flat_map(|t| view::event_types(t)).collect();
    let viewer = args.reader.viewer()?;
    let entries = args.index.open(g)?.audit(&query, &viewer)?;
    for entry in &entries {
        let record = view::entry_of_history(entry);
        if g.json() {
            out.line(record)?;
        } else {
            out.line(view::event_line(&record))?;
        }
    }
    Ok(())
}
