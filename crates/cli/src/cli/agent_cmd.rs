//! `maos-coord agent ...`: register, heartbeat, stop, list, show.

use std::time::Duration;

use clap::Subcommand;
use maos_coord::{AgentId, Error, Registration};
use serde_json::json;

use super::{input, runtime, view, Failure, Global, Out};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Register an agent (a new incarnation of NAME): the earlier incarnation's claims are
    /// released and its locks freed, unless --resume takes them over.
    Register {
        /// The agent's id.
        name: String,
        /// Its role.
        #[arg(long)]
        role: String,
        /// A capability (repeatable): `task claim` without --capability claims with these.
        #[arg(long = "capability", value_name = "C")]
        capabilities: Vec<String>,
        /// Silence longer than this makes the agent gone (default 60s).
        #[arg(long, value_name = "DUR", value_parser = input::span)]
        heartbeat_timeout: Option<Duration>,
        /// Take over the claims and locks of the earlier incarnation (a restarted agent that
        /// can finish its work).
        #[arg(long)]
        resume: bool,
    },
    /// Say the agent (--agent) is alive and renew the leases of its claims; prints which it
    /// renewed and which had lapsed (exit code 4 if every one had).
    Heartbeat,
    /// Stop the agent (--agent): its claims end (counting against their attempts), its locks
    /// are released.
    Stop {
        /// Why.
        #[arg(long, default_value = "stopped from the command line")]
        reason: String,
    },
    /// Every agent ever registered: role, status (active, stopped, gone), capabilities, what
    /// it holds.
    List,
    /// One agent.
    Show {
        /// The agent's id.
        name: String,
    },
}

pub fn run(cmd: AgentCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let rt = runtime()?;
    match cmd {
        AgentCommand::Register { name, role, capabilities, heartbeat_timeout, resume } => {
            let agent = AgentId::new(name)?;
            let mut options = g.options()?;
            if let Some(timeout) = heartbeat_timeout {
                options = options.heartbeat_timeout(timeout);
            }
            let c = g.opened(options.open()?)?;
            let registration = Registration::new(role).capabilities(capabilities).resume(resume);
            let done = rt.block_on(c.register_agent_with(&agent, registration))?;
            let resumed: Vec<String> = done.resumed.iter().map(|t| t.id.to_string()).collect();
            let released: Vec<String> = done.released.iter().map(ToString::to_string).collect();
            let locks: Vec<String> = done.resumed_locks.iter().map(ToString::to_string).collect();
            if g.json() {
                let summary = c.agent_summary(&agent)?.ok_or_else(|| unknown(&agent))?;
                out.line(json!({
                    "agent": view::agent(&summary), "incarnation": done.incarnation,
                    "resumed": resumed, "resumed_locks": locks, "released": released,
                }))?;
                return Ok(());
            }
            out.line(format_args!("registered {agent} (incarnation {})", done.incarnation))?;
            for (what, list) in [("resumed", &resumed), ("kept locks", &locks), ("released", &released)] {
                if !list.is_empty() {
                    out.line(format_args!("{what}: {}", list.join(", ")))?;
                }
            }
        }
        AgentCommand::Heartbeat => {
            let agent = g.agent("agent heartbeat")?;
            let c = g.open()?;
            let report = rt.block_on(c.heartbeat(&agent))?;
            if g.json() {
                let renewed: Vec<_> = report
                    .renewed
                    .iter()
                    .map(|(task, until)| json!({"id": task.as_str(), "lease_until": view::time(*until)}))
                    .collect();
                let lapsed: Vec<&str> = report.lapsed.iter().map(|t| t.as_str()).collect();
                out.line(json!({"agent": agent.as_str(), "renewed": renewed, "lapsed": lapsed}))?;
                return Ok(());
            }
            if report.renewed.is_empty() && report.lapsed.is_empty() {
                out.line(format_args!("{agent} is alive; it holds no claims"))?;
            }
            for (task, until) in &report.renewed {
                out.line(format_args!("renewed {task} until {until}"))?;
            }
            for task in &report.lapsed {
                out.line(format_args!("lapsed {task}: its lease had ended, the claim is lost"))?;
            }
        }
        AgentCommand::Stop { reason } => {
            let agent = g.agent("agent stop")?;
            let c = g.open()?;
            rt.block_on(c.stop_agent(&agent, &reason))?;
            if g.json() {
                out.line(json!({"agent": agent.as_str(), "status": "stopped", "reason": reason}))?;
            } else {
                out.line(format_args!("stopped {agent} ({reason})"))?;
            }
        }
        AgentCommand::List => {
            let agents = g.open()?.list_agents()?;
            if g.json() {
                out.line(json!({"agents": agents.iter().map(view::agent).collect::<Vec<_>>()}))?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|s| {
                    let a = &s.agent;
                    let status = match (&a.status, s.gone) {
                        (maos_coord::AgentStatus::Stopped(_), _) => "stopped",
                        (_, true) => "gone",
                        _ => "active",
                    };
                    vec![
                        a.id.to_string(),
                        a.role.clone(),
                        status.to_owned(),
                        a.capabilities.join(","),
                        s.holds.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                    ]
                })
                .collect();
            for line in view::table(&["NAME", "ROLE", "STATUS", "CAPABILITIES", "HOLDS"], &rows) {
                out.line(line)?;
            }
        }
        AgentCommand::Show { name } => {
            let agent = AgentId::new(name)?;
            let s = g.open()?.agent_summary(&agent)?.ok_or_else(|| unknown(&agent))?;
            if g.json() {
                out.line(view::agent(&s))?;
                return Ok(());
            }
            let a = &s.agent;
            let status = match &a.status {
                maos_coord::AgentStatus::Active if s.gone => "gone (active, but silent too long)".to_owned(),
                maos_coord::AgentStatus::Active => "active".to_owned(),
                maos_coord::AgentStatus::Stopped(reason) => format!("stopped ({reason})"),
            };
            let list = |items: Vec<String>| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
            for line in [
                format!("id:              {}", a.id),
                format!("role:            {}", a.role),
                format!("status:          {status}"),
                format!("capabilities:    {}", list(a.capabilities.clone())),
                format!("registered:      {} (incarnation {})", a.registered_at, a.incarnation),
                format!("last heartbeat:  {} (timeout {} ms)", a.last_heartbeat, a.heartbeat_timeout_ms),
                format!("holds:           {}", list(s.holds.iter().map(ToString::to_string).collect())),
                format!("locks:           {}", list(s.locks.iter().map(ToString::to_string).collect())),
            ] {
                out.line(line)?;
            }
        }
    }
    Ok(())
}

/// An agent that was never registered.
fn unknown(agent: &AgentId) -> Failure {
    Error::UnknownAgent { agent: agent.clone(), detail: String::new() }.into()
}
