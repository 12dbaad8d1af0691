//! `maos-coord verify`: every file of the store checked (the library's `verify_store`), a
//! report of what it checked and found, exit code 3 if anything is corrupt. Also what every
//! other command says on standard error when opening the store fell back to an older snapshot.

use maos_coord::coordinator::StoreReport;
use maos_coord::finding::{Finding, Severity};
use maos_coord::{Coordinator, ErrorKind};
use serde_json::{json, Value};

use super::progress::{self, Progress};
use super::{view, Failure, Global, Out};

/// Checks every file of the store, reading only; prints the report.
pub fn run(g: &Global, out: &mut Out) -> Result<(), Failure> {
    let store = g.store();
    store.require()?;
    let json = g.json();
    let progress = Progress::bytes("verifying", json);
    let report =
        maos_coord::coordinator::verify_store(&store.root, store.allow_insecure_permissions, &mut |p| {
            progress.set(p.done, p.total);
        })?;
    if json {
        out.line(report_json(&report))?;
    } else {
        print_text(&report, out)?;
    }
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let (corrupt, repairable, derived) =
        (count(Severity::Corruption), count(Severity::Repairable), count(Severity::Derived));
    let checked = report.log.segment_bytes
        + report.log.compacted_bytes
        + report.snapshots.iter().map(|s| s.bytes).sum::<u64>();
    let found = if report.findings.is_empty() {
        "no problem".to_owned()
    } else {
        format!("{corrupt} corrupt, {repairable} repairable, {derived} derived")
    };
    progress.finish(&format!(
        "verify: {} files ({}) checked: {found}",
        report.files(),
        progress::bytes(checked)
    ));
    match report.findings.iter().find(|f| f.severity == Severity::Corruption) {
        None => Ok(()),
        Some(first) => Err(Failure::new(
            ErrorKind::Corruption,
            format_args!("corruption found ({corrupt} finding(s)); the first: {}", place(first)),
        )),
    }
}

/// A finding's place and message: `FILE, byte offset N (LSN L): MESSAGE`, or the message alone
/// when it names the file (the error every command gives for that place).
fn place(f: &Finding) -> String {
    let mut at = f.file.display().to_string();
    if f.message.contains(&at) {
        return match f.offset {
            Some(offset) if !f.message.contains("byte offset") => {
                format!("{} (byte offset {offset})", f.message)
            }
            _ => f.message.clone(),
        };
    }
    if let Some(offset) = f.offset {
        at.push_str(&format!(", byte offset {offset}"));
    }
    if let Some(lsn) = f.lsn {
        at.push_str(&format!(" (LSN {lsn})"));
    }
    format!("{at}: {}", f.message)
}

fn report_json(r: &StoreReport) -> Value {
    let log = &r.log;
    let snapshots: Vec<Value> = r
        .snapshots
        .iter()
        .map(|s| {
            json!({"file": s.path, "lsn": s.lsn.get(), "bytes": s.bytes, "written": s.written.map(view::time), "usable": s.usable})
        })
        .collect();
    let cursors: Vec<Value> = r
        .cursors
        .iter()
        .map(|c| json!({"file": c.path, "agent": c.agent, "name": c.name, "position": c.position.map(|p| p.get())}))
        .collect();
    let findings: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            json!({
                "file": f.file, "kind": f.kind.as_str(), "severity": f.severity.as_str(),
                "offset": f.offset, "lsn": f.lsn.map(|l| l.get()), "message": f.message, "remedy": f.remedy,
            })
        })
        .collect();
    json!({
        "ok": !r.corrupt(), "store": r.store, "files": r.files(),
        "first_lsn": log.first.map(|l| l.get()), "next_lsn": log.next.map(|l| l.get()),
        "durable_lsn": log.durable.map(|l| l.get()), "records": log.records, "payload_bytes": log.payload_bytes,
        "segments": log.segments, "segment_bytes": log.segment_bytes, "index_files": log.index_files,
        "compacted_records": log.compacted_records, "snapshots": snapshots, "cursors": cursors,
        "findings": findings,
    })
}

fn print_text(r: &StoreReport, out: &mut Out) -> Result<(), Failure> {
    let log = &r.log;
    out.line(format_args!("store      {}", r.store.display()))?;
    let range = match (log.first, log.next) {
        (Some(first), Some(next)) if next > first => format!("LSN {first} to {}", next.get() - 1),
        (_, Some(next)) => format!("no records (the next gets LSN {next})"),
        _ => "its end unknown (the log could not be opened)".to_owned(),
    };
    out.line(format_args!(
        "log        {range}: {} records read, {} payload bytes, in {} segment(s) ({}) with {} index file(s)",
        log.records,
        log.payload_bytes,
        log.segments,
        progress::bytes(log.segment_bytes),
        log.index_files
    ))?;
    if log.compacted_bytes > 0 {
        out.line(format_args!("compacted  {} records kept by keyed compaction", log.compacted_records))?;
    }
    let usable = r.snapshots.iter().filter(|s| s.usable).count();
    out.line(format_args!("snapshots  {} ({usable} usable)", r.snapshots.len()))?;
    out.line(format_args!("cursors    {}", r.cursors.len()))?;
    if r.findings.is_empty() {
        out.line(format_args!("ok: {} files checked, nothing wrong", r.files()))?;
        return Ok(());
    }
    for f in &r.findings {
        out.line(format_args!("{:<11}{}", f.severity.as_str(), place(f)))?;
        out.line(format_args!("{:<11}{}", "", f.remedy))?;
    }
    if r.corrupt() {
        out.line("corrupt: see the corruption findings above")?;
    } else {
        out.line(format_args!("ok: {} files checked, no corruption", r.files()))?;
    }
    Ok(())
}

/// Says on standard error which snapshots a command passed over because a block it read failed
/// its checksum (the state was rebuilt without them and the command decided again).
pub fn note_damaged(c: &Coordinator, json: bool) {
    for damaged in c.damaged_snapshots() {
        // The reason names the file and the offset.
        let message = format!(
            "passed over a damaged snapshot: {}; the state was rebuilt without it (`maos-coord verify` checks every file)",
            damaged.reason
        );
        warn(json, json!({"kind": "snapshot_damaged", "file": damaged.path, "message": message}));
    }
}

/// One warning on standard error: `warning` (with its `message`) as JSON, or the message.
fn warn(json: bool, warning: serde_json::Value) {
    if json {
        eprintln!("{}", json!({ "warning": warning }));
    } else {
        eprintln!("maos-coord: warning: {}", warning["message"].as_str().unwrap_or_default());
    }
}

/// Says on standard error that opening the store skipped a snapshot that did not check out,
/// and what the state was loaded from instead, as the library fell back.
pub fn note_fallback(c: &Coordinator, json: bool) {
    if let Some(torn) = c.local_log().and_then(|log| log.recovery_report().torn.as_ref()) {
        let message = format!(
            "opening cut a torn tail: {} bytes at offset {} of {} (from LSN {} on), written after the last sync by a process that died; nothing acknowledged as durable was there (`maos-coord log status` lists the repairs)",
            torn.bytes,
            torn.offset,
            torn.segment.display(),
            torn.lsn
        );
        warn(
            json,
            json!({"kind": "torn_tail_cut", "file": torn.segment, "offset": torn.offset, "message": message}),
        );
    }
    let from = match c.opened_from_snapshot() {
        Some(lsn) => format!("the snapshot of LSN {lsn} and the log after it"),
        None => "a full replay of the log".to_owned(),
    };
    for skipped in c.skipped_snapshots() {
        let message = format!(
            "snapshot {} skipped: {}; the state was loaded from {from} (`maos-coord verify` checks every file)",
            skipped.path.display(),
            skipped.reason
        );
        warn(json, json!({"kind": "snapshot_skipped", "file": skipped.path, "message": message}));
    }
}
