//! maos-coord against SQLite and one JSON file per record, on one workload, in one run
//! (`cargo build --release -p maos-coord-tools --bins && target/release/maos-bench-compare
//! [--scale 1.0 --rounds 3 --out results.jsonl]`).
//!
//! Systems: maos-coord `Buffered` and `Sync`; SQLite in WAL mode with `synchronous=NORMAL` and
//! `FULL`; one JSON file per record, buffered and durable (at a tenth of the workload). The
//! workload (fixed seed; sizes scale with `--scale`): 16 agents register; 100,000 tasks with
//! about 200 B of metadata, priorities and required capabilities are created; 8 worker
//! processes claim and complete them all (a claim, then one command per unit of work that
//! completes a task and claims the next, on every system), then each is checked to have been
//! claimed and completed exactly once; the same again with 8 concurrent workers in one process
//! on as many tasks of their own (maos-coord: tokio tasks sharing one handle; SQLite and the JSON
//! files: threads, each with its own connection); 50,000 context sets of 1 KiB over 1,000 keys and 200,000 gets;
//! 10,000 dependencies of a DAG registered, then marked ready; 100,000 application events
//! emitted, then read back by 4 subscriber processes. Per phase and system: operations per
//! second; per system: peak resident memory summed over the processes running together, bytes
//! on disk after the run and after compaction. Each round also measures the single-thread
//! `fdatasync` rate of the work directory's disk. Systems take turns; the table shows medians.

mod in_process;
mod json_files;
mod machine;
mod maos;
mod procs;
mod report;
mod sqlite;
mod steps;
mod store;
mod workload;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::report::{Machine, Phase, RoundResult, SyncProbe};
use crate::steps::{Body, Step};
use crate::store::{with_store, Mode, Result, System};
use crate::workload::{Sizes, Workload};

#[derive(Parser)]
#[command(about = "maos-coord against SQLite and one JSON file per record, on one workload")]
struct Args {
    /// Size of the workload: 1.0 is 100,000 tasks, 50,000 context sets, 200,000 gets, 10,000
    /// dependencies and 100,000 events.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Rounds; the systems take turns in each.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Systems to run, comma-separated (default: all of maos-buffered, maos-sync,
    /// sqlite-normal, sqlite-full, json-buffered, json-durable).
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// The JSON-files systems run this fraction of the workload.
    #[arg(long, default_value_t = 0.1)]
    json_fraction: f64,
    /// Seed of the workload.
    #[arg(long, default_value_t = 20_261_201)]
    seed: u64,
    /// Directory under which the stores are made (default: the system's temporary directory);
    /// the filesystem measured is this one's.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write the raw results here, one JSON object per line.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the stores after the run.
    #[arg(long)]
    keep: bool,
    /// 4 KiB writes per pass of the `fdatasync` probe (default: 2,000 at scale 1, at least 100).
    #[arg(long)]
    fsync_ops: Option<u64>,
    #[command(subcommand)]
    step: Option<StepCommand>,
}

#[derive(Subcommand)]
enum StepCommand {
    /// One step of a system's run, in a process of its own (what the benchmark starts).
    #[command(hide = true)]
    Step {
        #[arg(long)]
        system: String,
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        scale: f64,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        step: String,
        #[arg(long)]
        index: Option<u64>,
        #[arg(long)]
        claims: Option<PathBuf>,
    },
}

/// One line of the raw results.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line<'a> {
    Run { machine: &'a Machine, scale: f64, json_fraction: f64, rounds: usize, seed: u64 },
    Fdatasync(&'a SyncProbe),
    Round(&'a RoundResult),
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("maos-bench-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(StepCommand::Step { system, root, scale, seed, step, index, claims }) = args.step {
        let step = match (step.as_str(), index, claims) {
            ("setup", _, _) => Step::Setup,
            ("worker", Some(index), Some(claims)) => Step::Worker { index, claims },
            ("verify", _, Some(claims)) => Step::Verify { claims },
            ("driver", _, _) => Step::Driver,
            ("reader", Some(index), _) => Step::Reader { index },
            ("compact", _, _) => Step::Compact,
            ("in_process", _, _) => Step::InProcess,
            (other, ..) => return Err(format!("no step {other:?} with these arguments").into()),
        };
        let mode = match step {
            Step::Setup => Mode::Create,
            Step::Compact => Mode::Maintain,
            _ => Mode::Open,
        };
        let workload = Workload { seed, sizes: Sizes::at(scale) };
        let system = System::parse(&system)?;
        let output = if step == Step::InProcess {
            in_process::run(system, &root, workload)?
        } else {
            with_store(system, &root, mode, Body { workload, step: &step })?
        };
        println!("{}", serde_json::to_string(&output)?);
        return Ok(());
    }
    compare(&args)
}

/// The whole benchmark: rounds of every system taking turns, then the table.
fn compare(args: &Args) -> Result<()> {
    let systems: Vec<System> = if args.systems.is_empty() {
        System::ALL.to_vec()
    } else {
        args.systems.iter().map(|s| System::parse(s)).collect::<Result<_>>()?
    };
    // Sizes are the sizes times the scale: past 10 they no longer fit a machine's memory.
    // NaN is in no range.
    let within = |x: f64, max: f64| x > 0.0 && x <= max;
    if !within(args.scale, 10.0) || !within(args.json_fraction, 1.0) || args.rounds == 0 {
        return Err(format!(
            "--scale must be above 0 and at most 10 (got {}), --json-fraction above 0 and at most 1 (got {}), --rounds at least 1",
            args.scale, args.json_fraction
        )
        .into());
    }
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    let work = tempfile::Builder::new().prefix("maos-bench-compare-").tempdir_in(&base)?;
    let machine = machine::machine(work.path());
    let exe = std::env::current_exe()?;
    let mut out = args.out.as_ref().map(std::fs::File::create).transpose()?;
    let mut raw = |line: Line<'_>| -> Result<()> {
        if let Some(out) = out.as_mut() {
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
            out.flush()?;
        }
        Ok(())
    };
    raw(Line::Run {
        machine: &machine,
        scale: args.scale,
        json_fraction: args.json_fraction,
        rounds: args.rounds,
        seed: args.seed,
    })?;
    let fsync_ops = args.fsync_ops.unwrap_or_else(|| ((2000.0 * args.scale).round() as u64).clamp(100, 2000));
    let (mut results, mut probes) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let (fresh_per_s, overwrite_per_s) = machine::fdatasync_rates(work.path(), fsync_ops)?;
        let probe = SyncProbe { round, ops: fsync_ops, fresh_per_s, overwrite_per_s };
        raw(Line::Fdatasync(&probe))?;
        probes.push(probe);
        // Each round starts with another system, so that none always runs first or last.
        let mut order = systems.clone();
        order.rotate_left((round - 1) % systems.len());
        for system in order {
            let scale = if system.is_json() { args.scale * args.json_fraction } else { args.scale };
            eprintln!("round {round}: {} at scale {scale}", system.name());
            let result = run_system(&exe, work.path(), system, round, scale, args)?;
            raw(Line::Round(&result))?;
            results.push(result);
        }
    }
    println!("{}", report::table(&machine, &systems, &results, &probes));
    if args.keep {
        eprintln!("stores kept in {}", work.keep().display());
    }
    Ok(())
}

/// One round of one system: every step in its processes, the store measured after the run and
/// after compaction.
fn run_system(
    exe: &Path,
    work: &Path,
    system: System,
    round: usize,
    scale: f64,
    args: &Args,
) -> Result<RoundResult> {
    let dir = work.join(format!("{}-{round}", system.name()));
    let (root, claims) = (dir.join("store"), dir.join("claims"));
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&claims)?;
    let sizes = Sizes::at(scale);
    let step = |name: &str, extra: &[String]| -> Vec<String> {
        let mut a: Vec<String> =
            ["step", "--system", system.name(), "--step", name].map(String::from).to_vec();
        a.extend(["--root".into(), root.display().to_string(), "--scale".into(), scale.to_string()]);
        a.extend(["--seed".into(), args.seed.to_string()]);
        a.extend_from_slice(extra);
        a
    };
    let mut rss = BTreeMap::new();
    let (mut phases, mut checks) = (Vec::new(), Vec::new());

    let setup = procs::run_one(exe, &step("setup", &[]), "setup")?;
    rss.insert("setup".to_owned(), setup.max_rss_kib);
    phases.extend(setup.output.phases);

    let worker_args: Vec<Vec<String>> = (0..sizes.workers)
        .map(|i| {
            let file = claims.join(format!("worker-{i}.txt")).display().to_string();
            step("worker", &["--index".into(), i.to_string(), "--claims".into(), file])
        })
        .collect();
    let workers = procs::run_group(exe, &worker_args, "worker")?;
    phases.push(group_phase("claim_complete", &workers)?);
    let workers_rss = sum_rss(&mut rss, "worker", &workers);

    let verify =
        procs::run_one(exe, &step("verify", &["--claims".into(), claims.display().to_string()]), "verify")?;
    rss.insert("verify (not counted)".to_owned(), verify.max_rss_kib);
    checks.extend(verify.output.checks);

    let in_process = procs::run_one(exe, &step("in_process", &[]), "in_process")?;
    rss.insert("in_process".to_owned(), in_process.max_rss_kib);
    phases.extend(in_process.output.phases);
    checks.extend(in_process.output.checks);

    let driver = procs::run_one(exe, &step("driver", &[]), "driver")?;
    rss.insert("driver".to_owned(), driver.max_rss_kib);
    phases.extend(driver.output.phases);
    checks.extend(driver.output.checks);

    let reader_args: Vec<Vec<String>> =
        (0..sizes.readers).map(|i| step("reader", &["--index".into(), i.to_string()])).collect();
    let readers = procs::run_group(exe, &reader_args, "reader")?;
    phases.push(group_phase("event_read", &readers)?);
    checks.extend(readers.iter().flat_map(|r| r.output.checks.clone()));
    let readers_rss = sum_rss(&mut rss, "reader", &readers);

    let disk = machine::disk(&root)?;
    let mut disk_compacted = None;
    let mut compact_rss = 0;
    let compact = procs::run_one(exe, &step("compact", &[]), "compact")?;
    if !compact.output.phases.is_empty() {
        compact_rss = compact.max_rss_kib;
        rss.insert("compact".to_owned(), compact_rss);
        disk_compacted = Some(machine::disk(&root)?);
        phases.extend(compact.output.phases);
    }
    let peak_rss_kib = [
        setup.max_rss_kib,
        workers_rss,
        in_process.max_rss_kib,
        driver.max_rss_kib,
        readers_rss,
        compact_rss,
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    if !args.keep {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(RoundResult {
        round,
        system: system.name().to_owned(),
        scale,
        phases,
        rss_kib: rss,
        peak_rss_kib,
        spawner_max_rss_kib: procs::own_max_rss_kib(),
        disk,
        disk_compacted,
        checks,
    })
}

/// The phase a group of processes ran together: all their operations, from the first start to
/// the last end.
fn group_phase(name: &str, group: &[procs::Finished]) -> Result<Phase> {
    let spans: Vec<(u64, u64)> = group.iter().filter_map(|f| f.output.span_ns).collect();
    let start = spans.iter().map(|s| s.0).min().ok_or("a group without a span")?;
    let end = spans.iter().map(|s| s.1).max().ok_or("a group without a span")?;
    let ops = group.iter().map(|f| f.output.ops).sum();
    Ok(Phase { name: name.to_owned(), ops, seconds: end.saturating_sub(start) as f64 / 1e9 })
}

/// Records each process's peak RSS as `what-i`; returns their sum.
fn sum_rss(rss: &mut BTreeMap<String, i64>, what: &str, group: &[procs::Finished]) -> i64 {
    for (i, f) in group.iter().enumerate() {
        rss.insert(format!("{what}-{i}"), f.max_rss_kib);
    }
    group.iter().map(|f| f.max_rss_kib).sum()
}
