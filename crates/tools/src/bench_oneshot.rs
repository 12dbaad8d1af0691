//! What one command costs an agent that calls the command line once per operation: process
//! start + open + command + exit, as separate processes, on a store with many live tasks and
//! context keys and a fresh snapshot. Reports the median, the 99th percentile (the slowest run
//! when there are fewer than 100) and the peak resident memory of each command, measured by
//! `wait4`'s resource usage of each child.
//! `cargo build --release -p maos-coord-cli -p maos-coord-tools --bins &&
//! target/release/maos-bench-oneshot [--tasks 100000 --keys 10000 --runs 10]`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use maos_coord::model::{AgentId, ContextKey, NewTask, Visibility};
use maos_coord::{Coordinator, Durability};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Pending tasks in the store.
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Context keys in the store (values of about 100 bytes).
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Runs of each command.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// The `maos-coord` binary (default: the one beside this program).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Use this project root: fill it first if it holds no store, and keep it (default: a
    /// temporary one, removed at the end).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Only fill the store at `--root` and exit (what the benchmark runs in a child process).
    #[arg(long, hide = true)]
    fill_only: bool,
}

/// One run of a command: how long it took and its peak resident memory.
struct Run {
    took: Duration,
    max_rss_kib: i64,
    stdout: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let binary = match args.binary.clone() {
        Some(binary) => binary,
        None => std::env::current_exe()?.with_file_name("maos-coord"),
    };
    if args.fill_only {
        let root = args.root.as_deref().ok_or("--fill-only needs --root")?;
        return fill(root, &args);
    }
    let temporary = tempfile::tempdir()?;
    let root = args.root.clone().unwrap_or_else(|| temporary.path().to_owned());
    if !maos_coord::coordinator::store_dir(&root).exists() {
        let started = Instant::now();
        // In a child process: a child's peak resident memory (`ru_maxrss`) counts its parent's
        // at the time it was spawned, so this process never holds the store's state.
        let status = Command::new(std::env::current_exe()?)
            .arg("--fill-only")
            .arg("--root")
            .arg(&root)
            .args(["--tasks", &args.tasks.to_string(), "--keys", &args.keys.to_string()])
            .status()?;
        if !status.success() {
            return Err(format!("filling the store failed: {status}").into());
        }
        println!(
            "store: {} pending tasks, {} context keys, a snapshot at its tail ({:.1} s to build)",
            args.tasks,
            args.keys,
            started.elapsed().as_secs_f64()
        );
    }
    let run = |command: &[&str]| oneshot(&binary, &root, command);
    let (mut gets, mut claims, mut completes) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.runs {
        let key = format!("key-{}", (i as u64 * 7919) % args.keys.max(1));
        gets.push(run(&["ctx", "get", &key])?);
        let claim = run(&["task", "claim"])?;
        let id = claim.stdout.split('\t').next().unwrap_or_default().trim().to_owned();
        claims.push(claim);
        completes.push(run(&["task", "complete", &id])?);
    }
    println!("| command ({} runs each, taking turns) | p50 | p99 | peak RSS (max) |", args.runs);
    println!("| --- | --- | --- | --- |");
    for (name, runs) in [("ctx get", &gets), ("task claim", &claims), ("task complete", &completes)] {
        let mut times: Vec<Duration> = runs.iter().map(|r| r.took).collect();
        times.sort();
        let p50 = times[times.len() / 2];
        let p99 = times[((times.len() * 99).div_ceil(100)).saturating_sub(1)];
        let rss = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
        println!(
            "| `maos-coord {name}` | {:.1} ms | {:.1} ms | {:.1} MiB |",
            ms(p50),
            ms(p99),
            rss as f64 / 1024.0
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A store under `root` with the tasks and keys of `args`, and a snapshot at its tail.
fn fill(root: &Path, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let c = Coordinator::options(root).durability(Durability::Buffered).snapshot_every(0).open()?;
    let (lead, worker) = (AgentId::new("lead")?, AgentId::new("worker")?);
    runtime.block_on(async {
        c.register_agent(&lead, "lead", vec![]).await?;
        c.register_agent(&worker, "worker", vec![]).await?;
        for i in 0..args.tasks {
            let spec = NewTask::new(format!("task-{i}")).description("x".repeat(64));
            c.create_task(&lead, spec).await?;
        }
        for i in 0..args.keys {
            let value = json!({"i": i, "text": "y".repeat(80)});
            c.set_context(&lead, &ContextKey::new(format!("key-{i}"))?, value, Visibility::Shared).await?;
        }
        Ok::<(), maos_coord::Error>(())
    })?;
    c.snapshot()?;
    // Buffered appends leave the log unsynced: sync it here, or the first durable command
    // would pay for syncing the whole fill.
    if let Some(log) = c.local_log() {
        log.sync()?;
    }
    c.close()?;
    Ok(())
}

/// Runs `maos-coord --root ROOT --agent worker COMMAND...` and waits for it with `wait4`. Its
/// peak resident memory counts this process's at the time of the spawn (the child shares the
/// parent's memory until it execs), which is why the store is filled by another process.
fn oneshot(binary: &Path, root: &Path, command: &[&str]) -> Result<Run, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("--root")
        .arg(root)
        .args(["--agent", "worker"])
        .args(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = i32::try_from(child.id())?;
    // The outputs are a line or two: reading one and then the other cannot fill a pipe.
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout)?;
    }
    if let Some(mut err) = child.stderr.take() {
        std::io::Read::read_to_string(&mut err, &mut stderr)?;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    let took = started.elapsed();
    if waited != pid {
        return Err(format!("wait4 on {pid}: {}", std::io::Error::last_os_error()).into());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("`maos-coord {}` failed ({status:#x}): {stderr}", command.join(" ")).into());
    }
    Ok(Run { took, max_rss_kib: usage.ru_maxrss, stdout })
}
