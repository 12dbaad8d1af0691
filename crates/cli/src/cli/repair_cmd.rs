//! `maos-coord repair`: coordination records the store cannot decode, and the tombstones that
//! get past them (log-format.md, "Tombstones"). Without `--apply` it only says what it would
//! do.

use serde_json::json;

use super::{Failure, Global, Out};
use maos_coord::coordinator::{find_unreadable, skip_unreadable, Unreadable};
use maos_coord::ErrorKind;

/// Arguments of `repair`.
#[derive(clap::Args)]
pub struct RepairArgs {
    /// Record the tombstones (without it, print what would be done and change nothing). With
    /// --json, one JSON object per undecodable record.
    #[arg(long)]
    apply: bool,
}

/// Runs `repair`.
pub fn run(args: &RepairArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let store = g.store();
    let json = g.json();
    // Read-only until asked to apply: a plan creates, changes and needs nothing but reading.
    let reader = store.log_options()?.read_only().open()?;
    let unreadable = find_unreadable(&reader)?;
    drop(reader);
    let skipped = if args.apply {
        let log = store.log_options()?.open()?;
        skip_unreadable(&log, &find_unreadable(&log)?)?
    } else {
        Vec::new()
    };
    for u in &unreadable {
        let action = match (u.skipped, args.apply) {
            (true, _) => "already skipped",
            (false, true) => "skipped now",
            (false, false) => "would skip (run with --apply)",
        };
        if json {
            out.line(json!({
                "lsn": u.lsn.get(), "segment": u.segment, "offset": u.offset, "reason": u.reason,
                "action": action.split(' ').next().unwrap_or_default(),
                "skipped": u.skipped || args.apply,
            }))?;
        } else {
            out.line(describe(u, action))?;
        }
    }
    if unreadable.is_empty() && !json {
        out.line("every coordination record decodes: nothing to repair")?;
    }
    if !skipped.is_empty() && !json {
        out.line(format_args!(
            "recorded {} tombstone(s); the records stay in the log for audit",
            skipped.len()
        ))?;
    }
    Ok(())
}

/// One line about an undecodable record.
pub fn describe(u: &Unreadable, action: &str) -> String {
    format!(
        "LSN {} ({}, byte offset {}): cannot decode: {}: {action}",
        u.lsn,
        u.segment.display(),
        u.offset,
        u.reason
    )
}

/// For `log verify`: fails with exit code 3 if a coordination record does not decode and no
/// tombstone skips it.
pub fn check(log: &maos_coord::Log, out: &mut Out, as_json: bool) -> Result<(), Failure> {
    let unreadable = find_unreadable(log)?;
    let unskipped: Vec<&Unreadable> = unreadable.iter().filter(|u| !u.skipped).collect();
    if !as_json {
        for u in unreadable.iter().filter(|u| u.skipped) {
            out.line(describe(u, "skipped by a tombstone"))?;
        }
    }
    match unskipped.first() {
        None => Ok(()),
        Some(first) => Err(Failure::new(
            ErrorKind::Corruption,
            format_args!(
                "{} coordination record(s) cannot be decoded, the first: {} (`maos-coord repair` shows the fix)",
                unskipped.len(),
                describe(first, "not skipped")
            ),
        )),
    }
}
