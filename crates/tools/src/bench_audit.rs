//! Audits on a large store: the same questions answered by decoding every record (what
//! `Coordinator::history` did before the audit index), by a scan that decodes only the records
//! whose bytes hold the names asked for, and through the audit index; what building the index
//! costs and takes on disk; the command line end to end (`audit`, `timeline`, `replay`).
//!
//! `cargo build --release --workspace && target/release/maos-bench-audit [--records 10000000]
//! [--store DIR]`. The store is a synthetic history of 16 workers (`maos-coord-test-support`'s
//! `workload`), written through the raw log with a snapshot half-way; `--store` keeps it (and
//! reuses it when it exists).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use maos_coord::coordinator::{HistoryEntry, StoreHistory};
use maos_coord::model::{AuditQuery, Recorded, Subject, Viewer, EVENT_RECORD_KIND};
use maos_coord::{Coordinator, Durability, Log, Lsn};
use maos_coord_test_support::workload::{new_store, Workload};

#[derive(Parser)]
struct Args {
    /// Records in the store.
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Keep the store here, and reuse it if it exists.
    #[arg(long)]
    store: Option<PathBuf>,
    /// The `maos-coord` command (default: beside this binary).
    #[arg(long)]
    cli: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args = Args::parse();
    let temporary = tempfile::tempdir()?;
    let root = args.store.clone().unwrap_or_else(|| temporary.path().to_owned());
    if !root.join(".maos").exists() {
        write(&root, args.records)?;
    }
    let history = Coordinator::options(&root).open_history()?;
    let tail = history.log().next_lsn();
    println!("store: {} records, {} of log", tail.get() - 1, size(&root.join(".maos/coordination/log"))?);
    let tasks = count_tasks(&history, tail)?;
    let task = Workload::task(tasks / 2);
    let queries: Vec<(String, AuditQuery)> = vec![
        (format!("one task ({task})"), AuditQuery::all().task(task.clone())),
        ("one context key (ctx/7)".into(), AuditQuery::all().key(Workload::key(7))),
        ("one agent (w3), every record".into(), AuditQuery::all().agent(Workload::worker(3))),
        ("one type (TaskLeaseLapsed)".into(), AuditQuery::all().event_type("TaskLeaseLapsed")),
        (
            "an agent's completions (w3, TaskCompleted)".into(),
            AuditQuery::all().agent(Workload::worker(3)).event_type("TaskCompleted"),
        ),
    ];

    println!("\n## before: one full decode per record per query (the former Coordinator::history)");
    let started = Instant::now();
    let c = Coordinator::options(&root).durability(Durability::Buffered).snapshot_every(0).open()?;
    println!(
        "open a coordinator (newest snapshot + replay of the records after it): {}",
        secs(started.elapsed())
    );
    drop(c);
    let (took, found) = timed(3, || decode_everything(&history, &Subject::Task(task.to_string())))?;
    println!("history of one task, every record decoded: {} ({found} records)", secs(took));

    println!("\n## scan: only records whose bytes hold the names asked for are decoded (no index)");
    let scan = history.clone().use_index(false);
    for (name, q) in &queries {
        let (took, found) = timed(3, || audit(&scan, q))?;
        println!("{name}: {} ({found} records)", secs(took));
    }

    println!("\n## the audit index");
    remove_index(&root)?;
    let started = Instant::now();
    let update = history.update_index()?;
    println!(
        "build from nothing: {} for {} chunks, {} on disk (records below LSN {} covered)",
        secs(started.elapsed()),
        update.built.len(),
        size(&root.join(".maos/coordination/index"))?,
        update.covered_until
    );
    let started = Instant::now();
    let again = history.update_index()?;
    println!(
        "bring up to date when nothing is missing: {} ({} built)",
        secs(started.elapsed()),
        again.built.len()
    );
    for (name, q) in &queries {
        let (took, found) = timed(5, || audit(&history, q))?;
        println!("{name}: {} ({found} records)", secs(took));
    }
    let first = audit_entries(&history, &queries[0].1)?;
    let (since, until) = (first.first().map(|e| e.time), first.last().map(|e| e.time));
    if let (Some(since), Some(until)) = (since, until) {
        let q = AuditQuery::all().agent(Workload::worker(3)).since(since).until(until);
        let (took, found) = timed(5, || audit(&history, &q))?;
        println!("one agent (w3) within one task's lifetime: {} ({found} records)", secs(took));
    }
    let (same, total) = compare(&history, &scan, &queries)?;
    println!("answers equal with and without the index: {same} of {total} queries");

    match args.cli.clone().or_else(|| beside("maos-coord")) {
        Some(cli) => command_line(&cli, &root, &task, tail)?,
        None => println!("\n(no maos-coord beside this binary: command-line timings skipped)"),
    }
    Ok(())
}

/// Writes the store: half the records, a snapshot (through a coordinator), the other half.
fn write(root: &Path, records: u64) -> Result<()> {
    let started = Instant::now();
    let (log, mut workload) = new_store(root, 1, 2000, 64 << 20);
    let half = records / 2;
    workload.append(&log, half, 1000);
    log.sync()?;
    log.close()?;
    let c = Coordinator::options(root).durability(Durability::Buffered).snapshot_every(0).open()?;
    let snapshot = c.snapshot()?;
    c.close()?;
    let log = Log::options(root.join(".maos/coordination/log"))
        .durability(Durability::Buffered)
        .clock(workload.clock().shared())
        .open()?;
    workload.append(&log, records - half, 1000);
    log.sync()?;
    log.close()?;
    println!(
        "wrote {records} records ({} tasks) in {}, a snapshot at LSN {snapshot}",
        workload.tasks,
        secs(started.elapsed())
    );
    Ok(())
}

/// How many tasks the workload created: the highest task number plus one (from the last
/// `TaskCreated` near the end of the log).
fn count_tasks(history: &StoreHistory, tail: Lsn) -> Result<u64> {
    let mut reader = history.log().reader_from(Lsn::new(tail.get().saturating_sub(10_000).max(1)))?;
    let mut most = 0;
    while let Some(r) = reader.next()? {
        if let Ok(Recorded { event: maos_coord::Event::TaskCreated { task }, .. }) =
            Recorded::decode(r.lsn, r.payload)
        {
            let n: u64 = task.id.as_str().trim_start_matches("task-").parse().unwrap_or(0);
            most = most.max(n + 1);
        }
    }
    Ok(most)
}

/// The former audit: every coordination record of the store decoded and matched.
fn decode_everything(history: &StoreHistory, subject: &Subject) -> Result<usize> {
    let mut reader = history.log().audit_reader()?;
    let mut found = 0;
    while let Some(r) = reader.next()? {
        if r.kind.get() == EVENT_RECORD_KIND && subject.matches(&Recorded::decode(r.lsn, r.payload)?) {
            found += 1;
        }
    }
    Ok(found)
}

fn audit_entries(history: &StoreHistory, q: &AuditQuery) -> Result<Vec<HistoryEntry>> {
    Ok(history.audit(q, &Viewer::Public)?)
}

fn audit(history: &StoreHistory, q: &AuditQuery) -> Result<usize> {
    Ok(audit_entries(history, q)?.len())
}

/// Whether each query gets the same records with and without the index.
fn compare(
    history: &StoreHistory,
    scan: &StoreHistory,
    queries: &[(String, AuditQuery)],
) -> Result<(usize, usize)> {
    let mut same = 0;
    for (_, q) in queries {
        if audit_entries(history, q)? == audit_entries(scan, q)? {
            same += 1;
        }
    }
    Ok((same, queries.len()))
}

/// The command line end to end: a new process each time, the store's pages in the page cache.
fn command_line(cli: &Path, root: &Path, task: &maos_coord::TaskId, tail: Lsn) -> Result<()> {
    println!("\n## the command line (one process per run; median of 5)");
    let snapshot = std::fs::read_dir(root.join(".maos/coordination/snapshots"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".snap")?.parse::<u64>().ok())
        .max()
        .unwrap_or(1);
    let runs: Vec<(String, Vec<String>)> = vec![
        (
            format!("audit --task {task} --json"),
            vec!["audit".into(), "--task".into(), task.to_string(), "--json".into()],
        ),
        (format!("timeline {task}"), vec!["timeline".into(), task.to_string()]),
        ("audit --key ctx/7".into(), vec!["audit".into(), "--key".into(), "ctx/7".into()]),
        (
            format!("audit --task {task} --no-index"),
            vec!["audit".into(), "--task".into(), task.to_string(), "--no-index".into()],
        ),
        (
            format!("replay --until {} --json (1,000 records after the snapshot)", snapshot + 999),
            vec!["replay".into(), "--until".into(), (snapshot + 999).to_string(), "--json".into()],
        ),
        (
            format!(
                "replay --until {} --json (the last record: {} records after the snapshot)",
                tail.get() - 1,
                tail.get() - snapshot
            ),
            vec!["replay".into(), "--until".into(), (tail.get() - 1).to_string(), "--json".into()],
        ),
    ];
    for (name, args) in runs {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let out =
                Command::new(cli).args(&args).env("MAOS_ROOT", root).env_remove("MAOS_AGENT").output()?;
            times.push(started.elapsed());
            if !out.status.success() {
                return Err(format!("{name}: {}", String::from_utf8_lossy(&out.stderr)).into());
            }
            bytes = out.stdout.len();
        }
        times.sort();
        println!("maos-coord {name}: {} ({bytes} bytes of output)", secs(times[2]));
    }
    Ok(())
}

/// Median of `runs` runs of `f`, and what it found.
fn timed(runs: usize, mut f: impl FnMut() -> Result<usize>) -> Result<(Duration, usize)> {
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..runs {
        let started = Instant::now();
        found = f()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[runs / 2], found))
}

fn secs(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn size(dir: &Path) -> Result<String> {
    let mut bytes = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            bytes += meta.len();
        }
    }
    Ok(format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20)))
}

fn remove_index(root: &Path) -> Result<()> {
    let dir = root.join(".maos/coordination/index");
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

fn beside(name: &str) -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name(name);
    path.exists().then_some(path)
}
