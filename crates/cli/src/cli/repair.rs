//! What recovery found, will cut or cut, as the log commands print it; and `maos-coord log
//! repair`, the one command that cuts (and only with `--apply`, after saying what).

use maos_coord::log::JournalEntry;
use maos_coord::{RecoveryReport, TornTailReport};
use serde_json::{json, Value};

use super::{Failure, Out, StoreArgs};

/// How many entries of the recovery journal `status` and `verify` print.
pub const JOURNAL_LINES: usize = 5;

/// A torn tail as JSON.
pub fn torn_json(t: &TornTailReport) -> Value {
    json!({
        "segment": t.segment, "offset": t.offset, "bytes": t.bytes, "first_lsn": t.lsn.get(),
        "last_intact_lsn": t.last_intact.map(|l| l.get()), "removes_file": t.removed_file,
    })
}

/// One line describing a torn tail: `what` is "cut" or "would cut".
pub fn torn_text(t: &TornTailReport, what: &str) -> String {
    let lsns = match t.last_intact {
        Some(last) => format!("LSN {} to {last}", t.lsn),
        None => format!("LSN {} onwards", t.lsn),
    };
    if t.removed_file {
        format!(
            "{what} the segment file {} ({} bytes, shorter than its header)",
            t.segment.display(),
            t.bytes
        )
    } else {
        format!("{what} {} torn bytes at offset {} of {}, {lsns}", t.bytes, t.offset, t.segment.display())
    }
}

/// The read-only recovery plan as JSON: what a writable open would cut and remove.
pub fn plan_json(report: &RecoveryReport) -> Value {
    json!({
        "torn_tail": report.torn.as_ref().map(torn_json),
        "removes": report.removed,
        "adopts_records": report.adopted_records,
    })
}

/// Prints the plan of a read-only open, one line each, under the label `recovery`.
pub fn print_plan(report: &RecoveryReport, out: &mut Out) -> Result<(), Failure> {
    let mut any = false;
    if let Some(t) = &report.torn {
        out.line(format_args!(
            "recovery    pending: {}; all above the durable watermark (LSN {}), never acknowledged as \
             durable; the next writable open or `maos-coord log repair --apply` cuts them",
            torn_text(t, "would cut"),
            report.durable_lsn
        ))?;
        any = true;
    }
    for path in report.removed.iter().filter(|p| report.torn.as_ref().is_none_or(|t| &t.segment != *p)) {
        out.line(format_args!("recovery    pending: would remove the leftover {}", path.display()))?;
        any = true;
    }
    if report.adopted_records > 0 {
        out.line(format_args!(
            "recovery    pending: would adopt {} complete records of an appender that died mid-write",
            report.adopted_records
        ))?;
        any = true;
    }
    if !any {
        out.line("recovery    nothing to repair")?;
    }
    Ok(())
}

/// A journal entry as one line of text.
pub fn journal_text(e: &JournalEntry) -> String {
    let lsns = match e.last_lsn {
        Some(last) => format!("LSN {} to {last}", e.first_lsn),
        None => format!("LSN {} onwards", e.first_lsn),
    };
    let what = match e.action.as_str() {
        "removed_partial_segment" => format!("removed the partial segment {} ({} bytes)", e.segment, e.bytes),
        _ => format!("cut {} bytes at offset {} of {}, {lsns}", e.bytes, e.offset, e.segment),
    };
    format!("{}  {what}, durable below LSN {}, during {} by pid {}", e.time, e.durable_lsn, e.during, e.pid)
}

/// Prints the latest journal entries (or that there are none).
pub fn print_journal(entries: &[JournalEntry], out: &mut Out) -> Result<(), Failure> {
    if entries.is_empty() {
        out.line("journal     no repairs recorded")?;
    }
    for e in entries {
        out.line(format_args!("journal     {}", journal_text(e)))?;
    }
    Ok(())
}

/// `maos-coord log repair [--apply]`: says what recovery would cut and remove, and with `apply`
/// does it (a writable open) and says what it did.
pub fn repair(store: &StoreArgs, apply: bool, as_json: bool, out: &mut Out) -> Result<(), Failure> {
    let plan = store.log_options()?.read_only().open()?;
    let planned = plan.recovery_report().clone();
    drop(plan);
    let nothing = planned.torn.is_none() && planned.removed.is_empty() && planned.adopted_records == 0;
    if !apply || nothing {
        if as_json {
            out.line(json!({"applied": false, "plan": plan_json(&planned)}))?;
        } else {
            print_plan(&planned, out)?;
            if !nothing {
                out.line("repair      nothing changed; run again with --apply to do this")?;
            }
        }
        return Ok(());
    }
    let log = store.log_options()?.open()?;
    let done = log.recovery_report().clone();
    let repairs = log.repairs();
    let torn = done.torn.iter().chain(repairs.iter()).collect::<Vec<_>>();
    if as_json {
        out.line(json!({
            "applied": true,
            "cut": torn.iter().map(|t| torn_json(t)).collect::<Vec<_>>(),
            "removed": done.removed,
            "adopted_records": done.adopted_records,
            "next_lsn": log.next_lsn().get(),
        }))?;
    } else {
        for t in &torn {
            out.line(format_args!("repair      {}", torn_text(t, "cut")))?;
        }
        for path in done.removed.iter().filter(|p| torn.iter().all(|t| &t.segment != *p)) {
            out.line(format_args!("repair      removed the leftover {}", path.display()))?;
        }
        if done.adopted_records > 0 {
            out.line(format_args!("repair      adopted {} complete records", done.adopted_records))?;
        }
        if torn.is_empty() && done.removed.is_empty() && done.adopted_records == 0 {
            out.line("repair      nothing to repair (another process repaired it first)")?;
        }
        out.line(format_args!("repair      the log now ends before LSN {}", log.next_lsn()))?;
    }
    Ok(())
}
