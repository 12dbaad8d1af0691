//! `maos-coord demo`: several agent processes append to one store at the same time; the store
//! is then replayed and checked, and what happened is printed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use maos_coord::{Durability, Log, RecordKind};
use serde::{Deserialize, Serialize};

use super::{Failure, Out, StoreArgs, EXIT_ERROR};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Project root for the store (default: a fresh temporary directory, removed afterwards).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Number of agent processes.
    #[arg(long, default_value_t = 4)]
    agents: u32,
    /// Records each agent appends.
    #[arg(long, default_value_t = 500)]
    records: u64,
}

#[derive(clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    name: String,
    #[arg(long)]
    records: u64,
}

/// What a demo agent records.
#[derive(Serialize, Deserialize)]
struct Note {
    agent: String,
    seq: u64,
    what: String,
}

const KIND_NOTE: u16 = 100;

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Error(e.to_string(), EXIT_ERROR)
}

pub fn run(args: &DemoArgs, out: &mut Out) -> Result<(), Failure> {
    let temp = tempfile::tempdir().map_err(fail)?;
    let store = StoreArgs { root: args.root.clone().unwrap_or_else(|| temp.path().to_owned()) };
    out.line(format_args!("store: {}", store.root.join(".maos/coordination").display()))?;
    let log = Log::options(store.log_dir()).durability(Durability::Sync).open()?;
    let start_lsn = log.next_lsn();
    let exe = std::env::current_exe().map_err(fail)?;
    let started = Instant::now();
    out.line(format_args!(
        "starting {} agent processes, {} records each (Sync durability)",
        args.agents, args.records
    ))?;
    let children = (0..args.agents)
        .map(|i| {
            Command::new(&exe)
                .args(["demo-agent", "--root"])
                .arg(&store.root)
                .args(["--name", &format!("agent-{i}"), "--records", &args.records.to_string()])
                .spawn()
                .map_err(fail)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        let status = child.wait().map_err(fail)?;
        if !status.success() {
            return Err(fail(format!("an agent process failed: {status}")));
        }
    }
    let elapsed = started.elapsed();
    replay(&log, start_lsn, args, elapsed, out)
}

fn replay(
    log: &Log,
    from: maos_coord::Lsn,
    args: &DemoArgs,
    elapsed: std::time::Duration,
    out: &mut Out,
) -> Result<(), Failure> {
    let mut reader = log.reader_from(from)?;
    let mut per_agent: BTreeMap<String, u64> = BTreeMap::new();
    let mut switches = 0u64;
    let mut previous = String::new();
    let mut total = 0u64;
    while let Some(record) = reader.next()? {
        let note: Note = rmp_serde::from_slice(record.payload)
            .map_err(|e| fail(format!("record {} does not decode: {e}", record.lsn)))?;
        let expected = per_agent.entry(note.agent.clone()).or_insert(0);
        if note.seq != *expected {
            return Err(fail(format!("record {}: {} seq {} out of order", record.lsn, note.agent, note.seq)));
        }
        *expected += 1;
        if note.agent != previous {
            switches += 1;
            previous = note.agent;
        }
        total += 1;
    }
    out.line(format_args!(
        "appended {total} records from {} processes in {:.2} s ({:.0} records/s, each acknowledged durable)",
        per_agent.len(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    ))?;
    for (agent, count) in &per_agent {
        out.line(format_args!("  {agent}: {count} records, all present, in order"))?;
    }
    out.line(format_args!(
        "the log interleaves the agents {switches} times; LSNs {from} to {} are dense",
        log.next_lsn().get() - 1
    ))?;
    let report = log.verify()?;
    out.line(format_args!(
        "verify: {} records in {} segment(s), every checksum correct",
        report.records, report.segments
    ))?;
    if per_agent.values().any(|&n| n != args.records) || per_agent.len() != args.agents as usize {
        return Err(fail("records are missing"));
    }
    Ok(())
}

pub fn agent(args: &AgentArgs, _out: &mut Out) -> Result<(), Failure> {
    let log = Log::options(args.store.log_dir()).durability(Durability::Sync).open()?;
    let kind = RecordKind::new(KIND_NOTE)?;
    let mut seq = 0;
    while seq < args.records {
        // Alternate single records and small atomic batches.
        let n = if seq % 3 == 0 { 4.min(args.records - seq) } else { 1 };
        let notes = (seq..seq + n)
            .map(|s| {
                let what = if s % 7 == 0 { "checkpoint" } else { "progress" };
                rmp_serde::to_vec(&Note { agent: args.name.clone(), seq: s, what: what.into() }).map_err(fail)
            })
            .collect::<Result<Vec<_>, _>>()?;
        log.append_batch(kind, &notes)?;
        seq += n;
    }
    Ok(())
}
