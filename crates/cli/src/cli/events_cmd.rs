//! `maos-coord event emit` and `maos-coord events tail`: application events in, every event
//! out.
//!
//! `events tail --cursor NAME` reads through the durable cursor NAME of the acting agent: it
//! resumes after the last event acknowledged, and acknowledges each event only once its line
//! was written and flushed to standard output. Delivery is at least once: an event whose line
//! was written but whose acknowledgement was not (the process was killed between the two) is
//! printed again by the next run, and none is ever skipped. Once caught up, it also records how
//! far it read past events that do not match its filters, so that they do not hold compaction
//! back.

use std::collections::BTreeMap;

use clap::Subcommand;
use maos_coord::coordinator::Delivery;
use maos_coord::{AgentId, EventFilter, Lsn};
use serde_json::json;

use super::{input, runtime, view, Failure, Global, Out};

#[derive(Subcommand)]
pub enum EventCommand {
    /// Append an application event: its type and its data (JSON, @FILE, or - for standard
    /// input); prints its LSN.
    Emit {
        /// The event's type (what `events tail --type` selects).
        #[arg(value_name = "TYPE")]
        event_type: String,
        /// Its data: JSON, @FILE or -.
        #[arg(value_name = "JSON")]
        data: String,
    },
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Print the events of the store, oldest first, as the agent (--agent) may see them (context
    /// values it may not read are withheld): LSN, time, acting agent, operation, fields. With
    /// --json one object per line: {"lsn", "time", "agent", "op", ...fields}.
    Tail {
        /// Keep printing events as they are appended (woken by the store), one flushed line
        /// each, until interrupted or the reader goes away.
        #[arg(long)]
        follow: bool,
        /// Start at this LSN (default: the first the log holds).
        #[arg(long, value_name = "LSN", conflicts_with = "cursor")]
        from: Option<u64>,
        /// Only this operation (task_claimed, context_set, ...) or application event type
        /// (repeatable).
        #[arg(long = "type", value_name = "T")]
        types: Vec<String>,
        /// Only events by or about this agent (repeatable). (--agent is the reading agent.)
        #[arg(long = "filter-agent", value_name = "A")]
        agents: Vec<String>,
        /// Resume the durable cursor NAME of the agent, acknowledging each event once printed
        /// and flushed (at least once: an event printed by a run killed before it acknowledged
        /// it is printed again by the next).
        #[arg(long, value_name = "NAME")]
        cursor: Option<String>,
    },
    /// The agent's durable cursors (`events tail --cursor NAME`).
    #[command(subcommand)]
    Cursor(CursorCommand),
}

#[derive(Subcommand)]
pub enum CursorCommand {
    /// Delete the durable cursor NAME of the agent (--agent): it no longer holds compaction
    /// back; `events tail --cursor NAME` later starts it anew at the log's first LSN. No such
    /// cursor: exit code 5.
    Delete {
        /// The cursor's name.
        name: String,
    },
    /// Move the durable cursor NAME of the agent to an LSN (after a compaction forced it away:
    /// the log's first LSN), its delivery count starting over.
    Reset {
        /// The cursor's name.
        name: String,
        /// Where delivery resumes.
        #[arg(long, value_name = "LSN")]
        to: u64,
    },
}

/// `event emit`.
pub fn emit(cmd: EventCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let EventCommand::Emit { event_type, data } = cmd;
    if view::is_operation_name(&event_type) {
        return Err(Failure::new(
            maos_coord::ErrorKind::Invalid,
            format!(
                "event type {event_type} is the name of an operation of the store; an application event needs a type of its own"
            ),
        ));
    }
    let data = input::json(&format!("the data of event {event_type}"), &data)?;
    let agent = g.agent("event emit")?;
    let c = g.open()?;
    let lsn = runtime()?.block_on(c.emit_event(&agent, event_type.clone(), data, BTreeMap::new()))?;
    if g.json() {
        out.line(json!({"lsn": lsn.get(), "type": event_type}))?;
    } else {
        out.line(lsn)?;
    }
    Ok(())
}

/// `events tail`, `events cursor ...`.
pub fn run(cmd: EventsCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let (follow, from, types, agents, cursor) = match cmd {
        EventsCommand::Tail { follow, from, types, agents, cursor } => (follow, from, types, agents, cursor),
        EventsCommand::Cursor(cmd) => return cursor_command(cmd, g, out),
    };
    let mut filter = EventFilter::all();
    if !types.is_empty() {
        filter = filter.types(types.iter().flat_map(|t| view::event_types(t)));
    }
    if !agents.is_empty() {
        filter = filter.agents(agents.into_iter().map(AgentId::new).collect::<Result<Vec<_>, _>>()?);
    }
    let agent = g.agent("events tail")?;
    let c = g.open()?;
    let rt = runtime()?;
    let json = g.json();
    if let Some(name) = cursor {
        let mut sub = c.subscribe_durable(&agent, &name, filter)?;
        loop {
            let delivery = match sub.try_next()? {
                Some(delivery) => delivery,
                None if follow => rt.block_on(sub.next())?,
                None => break,
            };
            print(&delivery, json, out)?;
            sub.ack(delivery.lsn)?;
        }
        sub.ack_scanned()?;
        return Ok(());
    }
    let from = match from {
        Some(lsn) => Lsn::new(lsn),
        None => c.log().first_lsn()?,
    };
    let mut sub = c.subscribe_from(&agent, filter, from)?;
    loop {
        let delivery = match sub.try_next()? {
            Some(delivery) => delivery,
            None if follow => rt.block_on(sub.next())?,
            None => return Ok(()),
        };
        print(&delivery, json, out)?;
    }
}

/// `events cursor delete|reset`.
fn cursor_command(cmd: CursorCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let agent = g.agent("events cursor")?;
    let c = g.open()?;
    let (name, action, lsn) = match cmd {
        CursorCommand::Delete { name } => {
            c.delete_cursor(&agent, &name)?;
            (name, "deleted", None)
        }
        CursorCommand::Reset { name, to } => {
            c.reset_cursor(&agent, &name, Lsn::new(to))?;
            (name, "reset", Some(to))
        }
    };
    if g.json() {
        out.line(json!({"agent": agent.as_str(), "cursor": name, "action": action, "lsn": lsn}))?;
    } else {
        match lsn {
            Some(lsn) => out.line(format_args!("cursor {name} of {agent} now resumes at LSN {lsn}"))?,
            None => out.line(format_args!("cursor {name} of {agent} deleted"))?,
        }
    }
    Ok(())
}

/// One event, flushed.
fn print(delivery: &Delivery, json: bool, out: &mut Out) -> Result<(), Failure> {
    let event = view::event(delivery);
    if json {
        out.line_flushed(event)?;
    } else {
        out.line_flushed(view::event_line(&event))?;
    }
    Ok(())
}
