//! `maos-coord snapshot` and `maos-coord compact` (and their older names, `store snapshot` and
//! `store compact`): maintenance of a whole store.

use std::path::PathBuf;

use clap::Subcommand;
use maos_coord::coordinator::CompactOptions;
use serde_json::json;

use super::progress::{self, Progress};
use super::{Failure, Global, Out};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Write a snapshot of every projection now; prints its LSN (with --json,
    /// `{"snapshot": LSN}`). The same as `maos-coord snapshot`.
    Snapshot,
    /// Remove (or archive) the log segments the kept snapshots cover and every durable cursor
    /// has passed. The same as `maos-coord compact`.
    Compact(CompactArgs),
}

/// The flags of `maos-coord compact` (and `store compact`).
#[derive(clap::Args)]
pub struct CompactArgs {
    /// Remove segments even if a durable cursor has not passed them.
    #[arg(long)]
    force: bool,
    /// Move removed segments into this directory instead of deleting them.
    #[arg(long)]
    archive: Option<PathBuf>,
    /// Keyed compaction: first keep the records nothing later superseded (the latest record
    /// of each context key, the creation and final record of each task, ...) for audits.
    #[arg(long)]
    keyed: bool,
    /// With --keyed: drop application events older than this (e.g. `30days`, `12h`); by
    /// default keyed compaction keeps every one.
    #[arg(long, requires = "keyed", value_parser = super::input::duration)]
    keep_events_for: Option<std::time::Duration>,
}

pub fn run(cmd: StoreCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    match cmd {
        StoreCommand::Snapshot => snapshot(g, out),
        StoreCommand::Compact(args) => compact(&args, g, out),
    }
}

/// `maos-coord snapshot`: writes a snapshot now; prints its LSN.
pub fn snapshot(g: &Global, out: &mut Out) -> Result<(), Failure> {
    let c = g.open()?;
    let lsn = c.snapshot()?;
    if g.json() {
        out.line(json!({"snapshot": lsn.get()}))?;
    } else {
        out.line(lsn)?;
    }
    Ok(())
}

/// `maos-coord compact`: compacts; prints what it removed and kept, and a summary line on
/// standard error (bytes reclaimed, records kept, time) after a spinner on a terminal.
pub fn compact(args: &CompactArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let json = g.json();
    let c = g.open()?;
    let progress = Progress::spinner("compacting", json);
    let keep_events_since = args.keep_events_for.map(|d| maos_coord::Timestamp::now().minus(d));
    let opts = CompactOptions {
        force: args.force,
        archive: args.archive.clone(),
        keyed: args.keyed,
        keep_events_since,
    };
    let report = c.compact(&opts)?;
    let first = c.log().first_lsn()?;
    let next = c.log().next_lsn();
    let held = report.held_back_by.as_ref().map(|h| json!({"cursor": h.cursor, "lsn": h.position.get()}));
    if json {
        out.line(json!({
            "limit": report.limit.get(),
            "snapshot": report.snapshot.map(|l| l.get()),
            "held_back_by": held,
            "removed": report.removed,
            "reclaimed_bytes": report.reclaimed_bytes,
            "first_lsn": first.get(),
            "examined": report.keyed.map(|k| k.examined),
            "kept": report.keyed.map(|k| k.kept),
        }))?;
    } else {
        match report.snapshot {
            None => {
                out.line("nothing to compact: the store has no snapshot yet (run `maos-coord snapshot`)")?
            }
            Some(_) => out.line(format_args!(
                "removed {} files; the log now starts at LSN {first}",
                report.removed.len(),
            ))?,
        }
        if let Some(maos_coord::coordinator::KeyedCounts { examined, kept }) = report.keyed {
            out.line(format_args!("kept {kept} of {examined} records examined for the audit trail"))?;
        }
        if let Some(maos_coord::coordinator::HeldBack { cursor: path, position: lsn }) = &report.held_back_by
        {
            out.line(format_args!(
                "held back at LSN {lsn} by cursor {} (use --force to remove anyway)",
                path.display()
            ))?;
        }
    }
    let reclaimed = progress::bytes(report.reclaimed_bytes.unwrap_or(0));
    let moved = match &args.archive {
        Some(dir) => format!(" (moved to {})", dir.display()),
        None => String::new(),
    };
    let kept = match report.keyed {
        Some(k) => format!("{} records kept for audits", k.kept),
        None => "no records kept for audits".to_owned(),
    };
    let in_log = next.get().saturating_sub(first.get());
    progress.finish(&format!(
        "compact: {} files removed{moved}, {reclaimed} reclaimed, {kept}, {in_log} records in the log from LSN {first}",
        report.removed.len()
    ));
    Ok(())
}
