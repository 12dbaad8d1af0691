//! Coordination throughput: claim + complete cycles per second with 1 and 8 agent processes,
//! under `Buffered` and `Sync`. Each configuration runs three times on a fresh store; the median
//! is printed. `cargo run --release --bin maos-bench-coord [-- --tasks 4000 --sync-tasks 1000]`

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Parser;
use maos_coord::model::{AgentId, NewTask};
use maos_coord::{Coordinator, Durability};

#[derive(Parser)]
struct Args {
    /// Tasks per run under `Buffered`.
    #[arg(long, default_value_t = 4000)]
    tasks: u64,
    /// Tasks per run under `Sync`.
    #[arg(long, default_value_t = 1000)]
    sync_tasks: u64,
    /// Records replayed by the open-time replay measurement.
    #[arg(long, default_value_t = 1_000_000)]
    replay_records: u64,
    /// Records of the mixed replay measurement (tasks, context, heartbeats, application events).
    #[arg(long, default_value_t = 1_000_000)]
    mixed_records: u64,
    /// Keep the mixed store in this directory and reuse it when it exists (to profile the replay).
    #[arg(long)]
    mixed_store: Option<std::path::PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let harness = std::env::current_exe()?.with_file_name("maos-coord-harness");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    println!("| durability | processes | tasks | claim+complete cycles/s (median of 3) |");
    println!("| --- | --- | --- | --- |");
    for (durability, tasks) in [(Durability::Buffered, args.tasks), (Durability::Sync, args.sync_tasks)] {
        for processes in [1usize, 8] {
            let mut rates = Vec::new();
            for _ in 0..3 {
                let dir = tempfile::tempdir()?;
                runtime.block_on(create_tasks(dir.path(), tasks))?;
                rates.push(claim_all(
                    &harness,
                    dir.path(),
                    processes,
                    durability == Durability::Sync,
                    tasks,
                )?);
            }
            rates.sort_by(f64::total_cmp);
            let name = if durability == Durability::Sync { "Sync" } else { "Buffered" };
            println!("| {name} | {processes} | {tasks} | {:.0} |", rates[1]);
        }
    }
    replay(args.replay_records)?;
    runtime.block_on(replay_mixed(args.mixed_records, args.mixed_store.as_deref()))?;
    Ok(())
}

/// Full replay of what agents typically write: per ten records a task created, claimed and
/// completed, three context updates (over 1,000 keys), a heartbeat and three application events.
async fn replay_mixed(records: u64, keep: Option<&Path>) -> Result<(), Box<dyn std::error::Error>> {
    let temporary = tempfile::tempdir()?;
    let root = keep.unwrap_or(temporary.path());
    if !root.join(".maos").exists() {
        write_mixed(root, records).await?;
    }
    // A kept store holds however many records it was written with.
    let records = maos_coord::Log::open(root.join(".maos/coordination/log"))?.next_lsn().get() - 1;
    let took = median_open(root)?;
    println!(
        "open with full replay of {records} mixed records: {took:.3} s (median of 3), {:.2} M records/s",
        records as f64 / took / 1e6
    );
    Ok(())
}

/// Writes the mixed workload of [`replay_mixed`] into a new store at `root`.
async fn write_mixed(root: &Path, records: u64) -> Result<(), Box<dyn std::error::Error>> {
    use maos_coord::model::{ContextKey, Visibility};
    let c = Coordinator::options(root)
        .durability(Durability::Buffered)
        .snapshot_every(0)
        .snapshot_every_bytes(0)
        .open()?;
    let me = AgentId::new("worker")?;
    c.register_agent(&me, "worker", vec![]).await?;
    let mut i = 0u64;
    while c.log().next_lsn().get() <= records {
        let task = c.create_task(&me, NewTask::new(format!("t{i}"))).await?;
        c.claim_next_task(&me, Some(&[])).await?;
        c.complete_task(&me, &task.id, vec![format!("out/{i}")]).await?;
        for k in 0..3 {
            let key = ContextKey::new(format!("key/{}", (i * 3 + k) % 1000))?;
            c.set_context(&me, &key, serde_json::json!({"i": i, "k": k}), Visibility::Shared).await?;
        }
        c.heartbeat(&me).await?;
        for k in 0..3 {
            c.emit_event(&me, "progress", serde_json::json!({"step": k}), Default::default()).await?;
        }
        i += 1;
    }
    Ok(())
}

/// Median of three timed opens of the store at `root`, in seconds.
fn median_open(root: &Path) -> Result<f64, maos_coord::Error> {
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let c = Coordinator::options(root).durability(Durability::Buffered).snapshot_every(0).open()?;
        times.push(started.elapsed().as_secs_f64());
        drop(c);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[1])
}

/// Opening a store replays its log into the projections: records per second of that replay.
fn replay(records: u64) -> Result<(), Box<dyn std::error::Error>> {
    use maos_coord::model::EVENT_RECORD_KIND;
    let dir = tempfile::tempdir()?;
    let log = maos_coord::Log::options(dir.path().join(".maos/coordination/log"))
        .durability(Durability::Buffered)
        .open()?;
    let kind = maos_coord::RecordKind::new(EVENT_RECORD_KIND)?;
    let actor = AgentId::new("writer")?;
    for _ in 0..records / 1000 {
        log.append_batch(kind, &batch_of(&actor, 1000)?)?;
    }
    drop(log);
    let took = median_open(dir.path())?;
    println!(
        "\nopen with full replay of {records} custom-event records: {took:.3} s (median of 3), {:.2} M records/s",
        records as f64 / took / 1e6
    );
    // A recent snapshot, then 1,000 more records: opening replays only those.
    let c = Coordinator::options(dir.path()).durability(Durability::Buffered).open()?;
    c.snapshot()?;
    drop(c);
    let log = maos_coord::Log::options(dir.path().join(".maos/coordination/log"))
        .durability(Durability::Buffered)
        .open()?;
    log.append_batch(kind, &batch_of(&actor, 1000)?)?;
    drop(log);
    println!(
        "open of the same store with a snapshot 1,000 records old: {:.1} ms (median of 3)",
        median_open(dir.path())? * 1e3
    );
    Ok(())
}

fn batch_of(actor: &AgentId, n: u64) -> Result<Vec<Vec<u8>>, maos_coord::Error> {
    use maos_coord::model::{Event, Recorded};
    (0..n)
        .map(|i| {
            let event = Event::Custom {
                event_type: "progress".into(),
                data: serde_json::json!({"step": i}),
                metadata: std::collections::BTreeMap::new(),
            };
            Recorded { actor: actor.clone(), event }.encode()
        })
        .collect()
}

async fn create_tasks(root: &Path, n: u64) -> Result<(), maos_coord::Error> {
    let c = Coordinator::options(root).durability(Durability::Buffered).open()?;
    let me = AgentId::new("planner")?;
    c.register_agent(&me, "planner", vec![]).await?;
    for i in 0..n {
        c.create_task(&me, NewTask::new(format!("t{i}")).requires("work")).await?;
    }
    Ok(())
}

fn claim_all(
    harness: &Path,
    root: &Path,
    processes: usize,
    sync: bool,
    tasks: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|i| {
            let mut cmd = Command::new(harness);
            cmd.arg("--root").arg(root).args(["--agent", &format!("w{i}")]);
            if sync {
                cmd.arg("--sync");
            }
            cmd.arg("claim").stdout(Stdio::null()).stderr(Stdio::null()).spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        if !child.wait()?.success() {
            return Err("a claiming process failed".into());
        }
    }
    Ok(tasks as f64 / started.elapsed().as_secs_f64())
}
