//! `maos-coord stats`: the store's figures (the library's `Coordinator::stats`), as text or as
//! one JSON object. Durations are in seconds (`…_seconds`), times RFC 3339.

use std::time::Duration;

use maos_coord::coordinator::{Durations, StoreStats};
use serde_json::{json, Map, Value};

use super::progress;
use super::{view, Failure, Global, Out};

/// Task statuses in the order they are shown: the library's name and the shown one.
const STATUSES: [(&str, &str); 6] = [
    ("Pending", "pending"),
    ("InProgress", "in_progress"),
    ("Blocked", "blocked"),
    ("Completed", "completed"),
    ("Failed", "failed"),
    ("Cancelled", "cancelled"),
];

pub fn run(g: &Global, out: &mut Out) -> Result<(), Failure> {
    let stats = g.open()?.stats()?;
    if g.json() {
        out.line(to_json(&stats))?;
    } else {
        print_text(&stats, out)?;
    }
    Ok(())
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn durations(d: &Durations) -> Value {
    json!({"count": d.count, "median_seconds": d.median.map(seconds), "max_seconds": d.max.map(seconds)})
}

fn to_json(s: &StoreStats) -> Value {
    let r = &s.records;
    let by_kind: Map<String, Value> = r.by_kind.iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    let by_op: Map<String, Value> =
        r.by_event.iter().map(|(name, n)| (view::op_of(name), json!(n))).collect();
    let by_status: Map<String, Value> = STATUSES
        .iter()
        .map(|(name, shown)| ((*shown).to_owned(), json!(s.tasks.by_status.get(name).copied().unwrap_or(0))))
        .collect();
    let files = s.files.as_ref().map(|f| {
        json!({
            "segments": f.segments, "segment_bytes": f.segment_bytes, "index_files": f.index_files,
            "index_bytes": f.index_bytes, "compacted_bytes": f.compacted_bytes,
            "spare_bytes": f.spare_bytes,
        })
    });
    let cursors: Vec<Value> = s
        .cursors
        .iter()
        .map(|c| {
            json!({
                "agent": c.cursor.agent, "name": c.cursor.name, "file": c.cursor.location,
                "position": c.cursor.position.map(|p| p.get()), "lag": c.lag,
                "deliveries": c.cursor.deliveries, "damage": c.cursor.damage,
            })
        })
        .collect();
    let l = &s.leases;
    let tasks_past: Vec<Value> = l
        .tasks_past_lease
        .iter()
        .map(|(t, a, until)| json!({"task": t.as_str(), "holder": a.as_str(), "lease_until": view::time(*until)}))
        .collect();
    let locks_past: Vec<Value> = l
        .locks_past_lease
        .iter()
        .map(|(n, a, until)| json!({"lock": n.as_str(), "holder": a.as_str(), "lease_until": view::time(*until)}))
        .collect();
    let largest: Vec<Value> =
        s.context.largest.iter().map(|(k, b, v)| json!({"key": k, "bytes": b, "version": v})).collect();
    json!({
        "now": view::time(s.now),
        "records": {
            "first_lsn": r.first_lsn.get(), "next_lsn": r.next_lsn.get(), "durable_lsn": r.durable_lsn.get(),
            "records": r.records, "payload_bytes": r.payload_bytes, "stored_bytes": r.stored_bytes,
            "by_kind": by_kind, "by_op": by_op,
        },
        "files": files,
        "snapshot": {
            "lsn": s.snapshot.lsn.map(|l| l.get()), "written": s.snapshot.written.map(view::time),
            "last_record": s.snapshot.last_record.map(view::time),
            "records_since": s.snapshot.records_since, "age_seconds": s.snapshot.age.map(seconds),
            "skipped_at_open": s.snapshot.skipped_at_open,
            "passed_over": s.snapshot.passed_over,
        },
        "cursors": cursors,
        "tasks": {
            "by_status": by_status, "completion_rate": s.tasks.completion_rate,
            "pending_to_claimed": durations(&s.tasks.pending_to_claimed),
            "claimed_to_completed": durations(&s.tasks.claimed_to_completed),
            "created_to_completed": durations(&s.tasks.created_to_completed),
        },
        "dependencies": {
            "total": s.dependencies.total, "unresolved": s.dependencies.unresolved,
            "ready": durations(&s.dependencies.ready), "failed": durations(&s.dependencies.failed),
        },
        "leases": {"lapses_recorded": l.lapses_recorded, "tasks_past_lease": tasks_past, "locks_past_lease": locks_past},
        "context": {
            "keys": s.context.keys, "value_bytes": s.context.value_bytes, "expired": s.context.expired,
            "largest": largest,
        },
    })
}

/// A duration for a person: `1.5 s`, `2m 3s`.
fn human(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.3} s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

fn durations_text(d: &Durations) -> String {
    match (d.median, d.max) {
        (Some(median), Some(max)) => {
            format!("median {}, max {} ({} measured)", human(median), human(max), d.count)
        }
        _ => "none measured".to_owned(),
    }
}

fn print_text(s: &StoreStats, out: &mut Out) -> Result<(), Failure> {
    let r = &s.records;
    out.line(format_args!(
        "records      {} (LSN {} to {}; durable below {}), {} payload bytes, {} stored",
        r.records,
        r.first_lsn,
        r.next_lsn.get().saturating_sub(1),
        r.durable_lsn,
        r.payload_bytes,
        progress::bytes(r.stored_bytes)
    ))?;
    let kinds: Vec<String> = r.by_kind.iter().map(|(k, n)| format!("kind {k}: {n}")).collect();
    out.line(format_args!(
        "  by kind    {}",
        if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") }
    ))?;
    for (name, n) in &r.by_event {
        out.line(format_args!("  {:<28}{n}", view::op_of(name)))?;
    }
    if let Some(f) = &s.files {
        out.line(format_args!(
            "files        {} segment(s) ({}), {} index file(s) ({}), compacted records {}{}",
            f.segments,
            progress::bytes(f.segment_bytes),
            f.index_files,
            progress::bytes(f.index_bytes),
            progress::bytes(f.compacted_bytes),
            if f.spare_bytes > 0 {
                format!(", spare segment {}", progress::bytes(f.spare_bytes))
            } else {
                String::new()
            }
        ))?;
    }
    let snap = &s.snapshot;
    match (snap.lsn, snap.age) {
        (Some(lsn), Some(age)) => out.line(format_args!(
            "snapshot     LSN {lsn}, {} old, {} records since",
            human(age),
            snap.records_since
        ))?,
        _ => out.line(format_args!("snapshot     none ({} records to replay)", snap.records_since))?,
    }
    if snap.skipped_at_open > 0 {
        out.line(format_args!(
            "             {} skipped as invalid when the store opened",
            snap.skipped_at_open
        ))?;
    }
    if snap.passed_over > 0 {
        out.line(format_args!(
            "             {} passed over: a block failed its checksum when read",
            snap.passed_over
        ))?;
    }
    out.line(format_args!("cursors      {}", s.cursors.len()))?;
    for c in &s.cursors {
        match (c.cursor.position, &c.cursor.damage) {
            (_, Some(damage)) => {
                out.line(format_args!("  {} of {}: invalid: {damage}", c.cursor.name, c.cursor.agent))?;
            }
            (position, None) => out.line(format_args!(
                "  {} of {}: at LSN {}, {} records behind",
                c.cursor.name,
                c.cursor.agent,
                position.map_or(0, |p| p.get()),
                c.lag.unwrap_or(0)
            ))?,
        }
    }
    let counts: Vec<String> = STATUSES
        .iter()
        .map(|(name, shown)| format!("{shown} {}", s.tasks.by_status.get(name).copied().unwrap_or(0)))
        .collect();
    out.line(format_args!("tasks        {}", counts.join(", ")))?;
    let rate = s.tasks.completion_rate.map_or("none finished".to_owned(), |r| format!("{:.1}%", r * 100.0));
    out.line(format_args!("  completion rate          {rate} (completed of finished)"))?;
    out.line(format_args!("  pending → claimed        {}", durations_text(&s.tasks.pending_to_claimed)))?;
    out.line(format_args!("  claimed → completed      {}", durations_text(&s.tasks.claimed_to_completed)))?;
    out.line(format_args!("  created → completed      {}", durations_text(&s.tasks.created_to_completed)))?;
    let d = &s.dependencies;
    out.line(format_args!("dependencies {} ({} unresolved)", d.total, d.unresolved))?;
    out.line(format_args!("  registered → ready       {}", durations_text(&d.ready)))?;
    out.line(format_args!("  registered → failed      {}", durations_text(&d.failed)))?;
    let l = &s.leases;
    out.line(format_args!(
        "leases       {} lapses recorded; {} claim(s) and {} lock(s) held past their end now",
        l.lapses_recorded,
        l.tasks_past_lease.len(),
        l.locks_past_lease.len()
    ))?;
    let c = &s.context;
    out.line(format_args!(
        "context      {} key(s), {} of values, {} expired",
        c.keys,
        progress::bytes(c.value_bytes),
        c.expired
    ))?;
    for (key, bytes, version) in &c.largest {
        out.line(format_args!("  {key}  {bytes} bytes, version {version}"))?;
    }
    Ok(())
}
