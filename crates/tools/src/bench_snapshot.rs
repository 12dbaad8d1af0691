//! How much a snapshot of a large state delays commands: the latency of `set_context` while
//! snapshots are written back to back on another thread, then for as many commands with no
//! snapshot running, in the same run. Also prints how long a deep copy of the live state takes, which is how long a snapshot
//! that copied the live projections under their lock would stall every command.
//! `cargo run --release --bin maos-bench-snapshot [-- --keys 200000 --tasks 100000]`

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use maos_coord::model::{AgentId, ContextKey, NewTask, Visibility};
use maos_coord::{Coordinator, Durability};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Context keys in the state (values of about 100 bytes).
    #[arg(long, default_value_t = 200_000)]
    keys: u64,
    /// Tasks in the state (every other one completed).
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Commands timed per round of the phase with snapshots (it runs until three are written).
    #[arg(long, default_value_t = 20_000)]
    commands: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let c = Coordinator::options(dir.path()).durability(Durability::Buffered).snapshot_every(0).open()?;
    let me = AgentId::new("bench")?;
    runtime.block_on(fill(&c, &me, &args))?;
    let records = c.log().next_lsn().get() - 1;

    let copy = c.read(|s| {
        let started = Instant::now();
        let image = s.to_image();
        let took = started.elapsed();
        drop(image);
        took
    })?;
    let log_dir = dir.path().join(".maos/coordination/log");
    let segments_at_start = segments(&log_dir)?;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (c, stop, done) = (c.clone(), stop.clone(), done.clone());
        std::thread::spawn(move || -> Result<Vec<Duration>, maos_coord::Error> {
            let mut durations = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                c.snapshot()?;
                durations.push(started.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(durations)
        })
    };
    // Time commands for as long as it takes to write three snapshots: the first replays the
    // whole log, the later ones load the one before and replay what came since.
    let mut busy = Timings(Vec::new());
    while done.load(Ordering::Relaxed) < 3 {
        busy.0.extend(runtime.block_on(time_commands(&c, &me, args.commands, "during"))?.0);
    }
    busy.0.sort_by(f64::total_cmp);
    let segments_after_busy = segments(&log_dir)?;
    stop.store(true, Ordering::Relaxed);
    let snapshots = writer.join().map_err(|_| "snapshot thread panicked")??;
    // As many commands again with no snapshot running: segment rollovers (which sync a whole
    // segment) hit both phases alike.
    let quiet = runtime.block_on(time_commands(&c, &me, busy.0.len() as u64, "quiet"))?;
    let segments_after_quiet = segments(&log_dir)?;

    println!("state: {} context keys, {} tasks, {records} records", args.keys, args.tasks);
    println!("deep copy of the live state (a locking snapshot's stall): {:.1} ms", ms(copy));
    let mean = snapshots.iter().sum::<Duration>() / snapshots.len().max(1) as u32;
    let last = snapshots.last().copied().unwrap_or_default();
    println!(
        "snapshots written while {1} commands ran: {0}, {2:.0} ms each on average, the last {3:.0} ms",
        snapshots.len(),
        busy.0.len(),
        ms(mean),
        ms(last)
    );
    println!("\n| set_context latency | commands | p50 | p99 | p99.9 | max | over 1 ms | over 5 ms | new segments |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let phases = [
        ("snapshots back to back", &busy, segments_after_busy - segments_at_start),
        ("no snapshot running", &quiet, segments_after_quiet - segments_after_busy),
    ];
    for (name, t, new_segments) in phases {
        let [p50, p99, p999, max] = [t.p(0.5), t.p(0.99), t.p(0.999), t.p(1.0)];
        let over = |limit: f64| t.0.iter().filter(|&&us| us > limit).count();
        println!(
            "| {name} | {} | {p50:.1} µs | {p99:.1} µs | {p999:.1} µs | {max:.1} µs | {} | {} | {new_segments} |",
            t.0.len(),
            over(1e3),
            over(5e3)
        );
    }
    println!(
        "\nratio during/quiet: p50 {:.2}x, p99 {:.2}x, max {:.2}x",
        busy.p(0.5) / quiet.p(0.5),
        busy.p(0.99) / quiet.p(0.99),
        busy.p(1.0) / quiet.p(1.0)
    );
    Ok(())
}

async fn fill(c: &Coordinator, me: &AgentId, args: &Args) -> Result<(), maos_coord::Error> {
    c.register_agent(me, "bench", vec![]).await?;
    let value = json!({"summary": "x".repeat(80)});
    for i in 0..args.keys {
        c.set_context(me, &ContextKey::new(format!("key/{i}"))?, value.clone(), Visibility::Shared).await?;
    }
    for i in 0..args.tasks {
        c.create_task(me, NewTask::new(format!("task {i}"))).await?;
        if i % 2 == 0 {
            if let Some(task) = c.claim_next_task(me, Some(&[])).await? {
                c.complete_task(me, &task.id, vec![]).await?;
            }
        }
    }
    Ok(())
}

/// Latencies in microseconds, sorted.
struct Timings(Vec<f64>);

impl Timings {
    fn p(&self, q: f64) -> f64 {
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i]
    }
}

async fn time_commands(
    c: &Coordinator,
    me: &AgentId,
    n: u64,
    tag: &str,
) -> Result<Timings, maos_coord::Error> {
    let mut micros = Vec::with_capacity(n as usize);
    for i in 0..n {
        let key = ContextKey::new(format!("{tag}/{}", i % 1000))?;
        let started = Instant::now();
        c.set_context(me, &key, json!(i), Visibility::Shared).await?;
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    Ok(Timings(micros))
}

/// Number of segment files: each new one means a rollover (the old segment is synced).
fn segments(dir: &std::path::Path) -> std::io::Result<usize> {
    let names = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    Ok(names.iter().filter(|e| e.path().extension().is_some_and(|x| x == "seg")).count())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
