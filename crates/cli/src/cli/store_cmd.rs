//! `maos-coord store ...`: maintenance of a whole store (snapshots, compaction).

use std::path::PathBuf;

use clap::Subcommand;
use maos_coord::coordinator::CompactOptions;
use serde_json::json;

use super::{Failure, Global, Out};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Write a snapshot of every projection now; prints its LSN (with --json,
    /// `{"snapshot": LSN}`).
    Snapshot,
    /// Remove (or archive) the log segments the kept snapshots cover and every durable cursor
    /// has passed.
    Compact {
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
        #[arg(long, requires = "keyed", value_parser = humantime::parse_duration)]
        keep_events_for: Option<std::time::Duration>,
    },
}

pub fn run(cmd: StoreCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let json = g.json();
    match cmd {
        StoreCommand::Snapshot => {
            let c = g.open()?;
            let lsn = c.snapshot()?;
            if json {
                out.line(json!({"snapshot": lsn.get()}))?;
            } else {
                out.line(lsn)?;
            }
        }
        StoreCommand::Compact { force, archive, keyed, keep_events_for } => {
            let c = g.open()?;
            let keep_events_since = keep_events_for.map(|d| maos_coord::Timestamp::now().minus(d));
            let report = c.compact(&CompactOptions { force, archive, keyed, keep_events_since })?;
            let held =
                report.held_back_by.as_ref().map(|h| json!({"cursor": h.cursor, "lsn": h.position.get()}));
            if json {
                out.line(json!({
                    "limit": report.limit.get(),
                    "snapshot": report.snapshot.map(|l| l.get()),
                    "held_back_by": held,
                    "removed": report.removed,
                    "first_lsn": c.log().first_lsn()?.get(),
                    "examined": report.keyed.map(|k| k.examined),
                    "kept": report.keyed.map(|k| k.kept),
                }))?;
            } else {
                match report.snapshot {
                    None => out.line(
                        "nothing to compact: the store has no snapshot yet (run `maos-coord store snapshot`)",
                    )?,
                    Some(_) => out.line(format_args!(
                        "removed {} files; the log now starts at LSN {}",
                        report.removed.len(),
                        c.log().first_lsn()?
                    ))?,
                }
                if let Some(maos_coord::coordinator::KeyedCounts { examined, kept }) = report.keyed {
                    out.line(format_args!("kept {kept} of {examined} records examined for the audit trail"))?;
                }
                if let Some(maos_coord::coordinator::HeldBack { cursor: path, position: lsn }) =
                    &report.held_back_by
                {
                    out.line(format_args!(
                        "held back at LSN {lsn} by cursor {} (use --force to remove anyway)",
                        path.display()
                    ))?;
                }
            }
        }
    }
    Ok(())
}
