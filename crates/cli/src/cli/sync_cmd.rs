//! `maos-coord barrier ...` and `maos-coord lock ...`: waiting for each other, and taking turns.

use std::time::Duration;

use clap::Subcommand;
use maos_coord::{BarrierName, Error, LockName};
use serde_json::json;

use super::{input, runtime, view, Failure, Global, Out};

/// How long a wait without a limit waits: long enough to be for ever, short enough to add to
/// the time now.
const FOR_EVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Subcommand)]
pub enum BarrierCommand {
    /// Create a barrier that completes once every participant has signalled.
    Create {
        /// The barrier's name.
        name: String,
        /// A participant (repeatable, at least one).
        #[arg(long = "participant", value_name = "P", required = true)]
        participants: Vec<String>,
    },
    /// Signal the barrier as the agent (--agent), a participant.
    Signal {
        /// The barrier's name.
        name: String,
    },
    /// Wait until every participant has signalled (woken by the store); exit code 5 if the
    /// timeout passes first.
    Wait {
        /// The barrier's name.
        name: String,
        /// Give up after this long (default: wait for ever).
        #[arg(long, value_name = "DUR", value_parser = input::duration)]
        timeout: Option<Duration>,
    },
}

#[derive(Subcommand)]
pub enum LockCommand {
    /// Take a lock for the agent (--agent); prints its fencing token, which rises with every
    /// grant. Held by another agent: exit code 4 (after --wait, if given).
    Acquire {
        /// The lock's name.
        name: String,
        /// How long the lock is held unless released or taken again (renewing it).
        #[arg(long, value_name = "DUR", default_value = "5m", value_parser = input::span)]
        lease: Duration,
        /// Wait this long for the lock (woken by the store and by the holder's lease ending).
        #[arg(long, value_name = "DUR", value_parser = input::duration)]
        wait: Option<Duration>,
    },
    /// Release a lock the agent holds.
    Release {
        /// The lock's name.
        name: String,
    },
    /// Who holds a lock, until when, with which fencing token (or that it is free).
    Show {
        /// The lock's name.
        name: String,
    },
}

/// `barrier ...`.
pub fn barrier(cmd: BarrierCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let rt = runtime()?;
    match cmd {
        BarrierCommand::Create { name, participants } => {
            let name = BarrierName::new(name)?;
            let agent = g.agent("barrier create")?;
            let c = g.open()?;
            rt.block_on(c.create_barrier(&agent, &name, participants.clone()))?;
            if g.json() {
                out.line(json!({"barrier": name.as_str(), "participants": participants}))?;
            } else {
                out.line(format_args!("barrier {name}: {}", participants.join(", ")))?;
            }
        }
        BarrierCommand::Signal { name } => {
            let name = BarrierName::new(name)?;
            let agent = g.agent("barrier signal")?;
            let c = g.open()?;
            let complete = rt.block_on(c.signal_barrier(&agent, &name, agent.as_str()))?;
            if g.json() {
                out.line(
                    json!({"barrier": name.as_str(), "participant": agent.as_str(), "complete": complete}),
                )?;
            } else if complete {
                out.line(format_args!("{agent} signalled barrier {name}: it is complete"))?;
            } else {
                out.line(format_args!("{agent} signalled barrier {name}: others have not yet"))?;
            }
        }
        BarrierCommand::Wait { name, timeout } => {
            let name = BarrierName::new(name)?;
            let c = g.open()?;
            rt.block_on(c.wait_barrier(&name, timeout.unwrap_or(FOR_EVER)))?;
            if g.json() {
                out.line(json!({"barrier": name.as_str(), "complete": true}))?;
            } else {
                out.line(format_args!("barrier {name} is complete"))?;
            }
        }
    }
    Ok(())
}

/// `lock ...`.
pub fn lock(cmd: LockCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let rt = runtime()?;
    match cmd {
        LockCommand::Acquire { name, lease, wait } => {
            let name = LockName::new(name)?;
            let agent = g.agent("lock acquire")?;
            let c = g.open()?;
            let grant = match wait {
                Some(wait) => rt.block_on(c.lock(&agent, &name, lease, wait))?,
                None => loop {
                    if let Some(grant) = rt.block_on(c.try_lock(&agent, &name, lease))? {
                        break grant;
                    }
                    // Refused: name the holder (one that released it meanwhile: try again).
                    if let Some(held) = c.lock_info(&name)? {
                        return Err(Error::LockHeld { lock: name, holder: held.holder }.into());
                    }
                },
            };
            if g.json() {
                out.line(
                    json!({"lock": name.as_str(), "holder": agent.as_str(), "token": grant.token.get()}),
                )?;
            } else {
                out.line(grant.token)?;
            }
        }
        LockCommand::Release { name } => {
            let name = LockName::new(name)?;
            let agent = g.agent("lock release")?;
            let c = g.open()?;
            rt.block_on(c.unlock(&agent, &name))?;
            if g.json() {
                out.line(json!({"lock": name.as_str(), "released": true}))?;
            } else {
                out.line(format_args!("released lock {name}"))?;
            }
        }
        LockCommand::Show { name } => {
            let name = LockName::new(name)?;
            let c = g.open()?;
            let now = maos_coord::Timestamp::now();
            let lock = c.lock_info(&name)?;
            let held = lock.as_ref().is_some_and(|l| l.lease_until > now);
            if g.json() {
                out.line(match &lock {
                    Some(l) => json!({
                        "lock": name.as_str(), "held": held, "holder": l.holder.as_str(),
                        "lease_until": view::time(l.lease_until), "token": l.token.get(),
                    }),
                    None => json!({"lock": name.as_str(), "held": false}),
                })?;
            } else {
                out.line(match &lock {
                    Some(l) if held => format!(
                        "lock {name}: held by {} until {} (token {})",
                        l.holder,
                        view::time(l.lease_until),
                        l.token
                    ),
                    Some(l) => format!(
                        "lock {name}: free (its last holder {}'s lease ended {}, token {})",
                        l.holder,
                        view::time(l.lease_until),
                        l.token
                    ),
                    None => format!("lock {name}: free (not held)"),
                })?;
            }
        }
    }
    Ok(())
}
