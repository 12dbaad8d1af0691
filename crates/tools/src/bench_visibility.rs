//! Append-to-visible and append-to-delivery latency for a reader in another process (or, with
//! `--in-process`, in a thread of the appending process).
//!
//! `maos-bench-visibility [--records N] [--dir D] [--wait] [--in-process]` starts a follower that
//! reads at the tail, then appends N records (`Buffered`, one at a time, 200 µs apart). Without
//! `--wait` the follower busy-polls (visibility); with it, it sleeps in `Log::wait_for` until woken
//! (delivery: in-process wake-up, or file notification across processes). Each payload carries the
//! CLOCK_MONOTONIC time taken just before `append` was called; the follower subtracts it from the
//! time it first sees the record, and prints the percentiles.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Parser, Subcommand};
use maos_coord::{Durability, Log, Lsn, RecordKind};

#[derive(Parser)]
#[command(about = "Append-to-visible latency between two processes")]
struct Args {
    #[arg(long, default_value_t = 20_000)]
    records: u64,
    /// Store directory (a fresh temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Sleep until woken instead of busy-polling.
    #[arg(long)]
    wait: bool,
    /// Follow from a thread of this process instead of another process.
    #[arg(long)]
    in_process: bool,
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Role {
    /// Internal: the reading process.
    Follow {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        records: u64,
        #[arg(long)]
        wait: bool,
    },
}

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn open(dir: &Path) -> Result<Log, String> {
    Log::options(dir).durability(Durability::Buffered).open().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Follow { dir, from, records, wait }) => follow(&dir, from, records, wait),
        None => lead(args.dir, args.records, args.wait, args.in_process),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("maos-bench-visibility: {e}");
            ExitCode::FAILURE
        }
    }
}

fn lead(dir: Option<PathBuf>, records: u64, wait: bool, in_process: bool) -> Result<(), String> {
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = dir.unwrap_or_else(|| temp.path().to_owned());
    let log = open(&dir)?;
    let kind = RecordKind::new(1).map_err(|e| e.to_string())?;
    let from = log.next_lsn();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let follower_dir = dir.clone();
    let mut follower = if in_process {
        let thread = std::thread::spawn(move || follow(&follower_dir, from.get(), records, wait));
        Follower::Thread(Some(thread))
    } else {
        let mut cmd = Command::new(exe);
        cmd.args(["follow", "--dir"]).arg(&dir);
        cmd.args(["--from", &from.get().to_string(), "--records", &records.to_string()]);
        if wait {
            cmd.arg("--wait");
        }
        Follower::Process(cmd.spawn().map_err(|e| e.to_string())?)
    };
    std::thread::sleep(Duration::from_millis(300)); // let the follower open and start polling
    for _ in 0..records {
        let start = now_ns();
        log.append(kind, &start.to_le_bytes()).map_err(|e| e.to_string())?;
        let pause = now_ns() + 200_000;
        while now_ns() < pause {
            std::hint::spin_loop();
        }
    }
    match &mut follower {
        Follower::Thread(thread) => {
            thread.take().ok_or("no follower")?.join().map_err(|_| "follower panicked")?
        }
        Follower::Process(child) => {
            let status = child.wait().map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("follower failed: {status}"))
            }
        }
    }
}

enum Follower {
    Thread(Option<std::thread::JoinHandle<Result<(), String>>>),
    Process(std::process::Child),
}

fn follow(dir: &Path, from: u64, records: u64, wait: bool) -> Result<(), String> {
    let log = open(dir)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut reader = log.reader_from(Lsn::new(from)).map_err(|e| e.to_string())?;
    let mut latencies = Vec::with_capacity(records as usize);
    while (latencies.len() as u64) < records {
        match reader.next().map_err(|e| e.to_string())? {
            Some(record) => {
                let seen = now_ns();
                let sent = u64::from_le_bytes(record.payload.try_into().map_err(|_| "bad payload")?);
                latencies.push(seen.saturating_sub(sent));
            }
            None if wait => {
                runtime.block_on(log.wait_for(reader.position(), Duration::from_secs(5)));
            }
            None => std::hint::spin_loop(),
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let what = if wait { "append-to-delivery (woken)" } else { "append-to-visible (busy poll)" };
    println!(
        "{what} latency, {records} records (Buffered, 40-byte frames): \
         p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    Ok(())
}
