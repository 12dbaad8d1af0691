//! Agent processes for multi-process coordination tests and benchmarks.
//!
//! - `claim`: claim and complete tasks until none is left; prints `claimed TASK` per task.
//! - `claim-next`: as `claim`, each completion claiming the next task in the same command
//!   (`complete_and_claim_next`).
//! - `cas`: increment the JSON counter under a context key N times with compare-and-set.
//! - `barrier`: signal a barrier as a participant, then wait until it completes.
//! - `lock`: take and release a lock N times; prints each fencing token.
//! - `hold`: claim one task, print `claimed TASK`, then hold it until the process is killed.
//! - `hold-temp`: create a temporary file in a directory of the store as a snapshot or cursor
//!   writer does while it writes, print its path, then hold it until the process is killed.
//! - `compact`: compact the store (`--keyed`), optionally aborting the process right after a
//!   given step (`--abort-at-step`, see `maos_coord::log::fault::abort_at_compaction_step`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use maos_coord::coordinator::CompactOptions;
use maos_coord::model::{AgentId, BarrierName, ContextKey, LockName};
use maos_coord::{Coordinator, Durability, Error};

#[derive(Parser)]
#[command(about = "Agent processes for maos-coord tests and benchmarks")]
struct Args {
    /// Project root of the store.
    #[arg(long)]
    root: PathBuf,
    /// This process's agent id.
    #[arg(long)]
    agent: String,
    /// Acknowledge commands once on stable storage (default: in the page cache).
    #[arg(long)]
    sync: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Claim,
    ClaimNext,
    Hold,
    HoldTemp {
        /// Directory under the store (`snapshots`, `cursors`).
        #[arg(long)]
        dir: String,
        /// Name the temporary file is made from (`00000000000000000042.snap`).
        #[arg(long)]
        stem: String,
    },
    Cas {
        #[arg(long)]
        key: String,
        #[arg(long)]
        times: u64,
    },
    Barrier {
        #[arg(long)]
        barrier: String,
        #[arg(long)]
        participant: String,
    },
    Lock {
        #[arg(long)]
        lock: String,
        #[arg(long)]
        times: u64,
    },
    Compact {
        #[arg(long)]
        keyed: bool,
        #[arg(long)]
        abort_at_step: Option<u64>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("maos-coord-harness: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let durability = if args.sync { Durability::Sync } else { Durability::Buffered };
    let c = Coordinator::options(&args.root).durability(durability).open()?;
    let me = AgentId::new(args.agent)?;
    if let Cmd::HoldTemp { dir, stem } = &args.command {
        use std::io::Write;
        let dir = maos_coord::coordinator::store_dir(&args.root).join(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::InvalidArgument { name: "dir", reason: e.to_string() })?;
        let path = maos_coord::fs::fault::hold_temp_file(&dir, stem, b"half-written")?;
        println!("{}", path.display());
        std::io::stdout().flush().ok();
        loop {
            std::thread::park();
        }
    }
    if let Cmd::Compact { keyed, abort_at_step } = args.command {
        if let Some(step) = abort_at_step {
            maos_coord::log::fault::abort_at_compaction_step(step);
        }
        let report = c.compact(&CompactOptions { keyed, ..CompactOptions::default() })?;
        println!("removed {} files", report.removed.len());
        return Ok(());
    }
    c.register_agent(&me, "harness", vec!["work".into()]).await?;
    match args.command {
        Cmd::Claim => {
            let caps = vec!["work".to_string()];
            let started = Instant::now();
            let mut n = 0u64;
            while let Some(task) = c.claim_next_task(&me, Some(&caps)).await? {
                c.complete_task(&me, &task.id, vec![]).await?;
                println!("claimed {}", task.id);
                n += 1;
            }
            eprintln!("{me}: {n} claim+complete cycles in {:.3} s", started.elapsed().as_secs_f64());
        }
        Cmd::ClaimNext => {
            let caps = vec!["work".to_string()];
            let started = Instant::now();
            let mut n = 0u64;
            let mut next = c.claim_next_task(&me, Some(&caps)).await?;
            while let Some(task) = next {
                next = c.complete_and_claim_next(&me, &task.id, vec![], Some(&caps)).await?;
                println!("claimed {}", task.id);
                n += 1;
            }
            eprintln!(
                "{me}: {n} complete-and-claim-next commands in {:.3} s",
                started.elapsed().as_secs_f64()
            );
        }
        Cmd::Hold => {
            use std::io::Write;
            let task = c
                .claim_next_task(&me, None)
                .await?
                .ok_or(Error::Timeout { what: "a task to hold".into(), holder: None })?;
            println!("claimed {}", task.id);
            // Nothing to report if stdout is gone: the parent reads the line or has died.
            std::io::stdout().flush().ok();
            loop {
                std::thread::park();
            }
        }
        Cmd::Cas { key, times } => {
            let key = ContextKey::new(key)?;
            let mut done = 0;
            while done < times {
                let current = c.get_context(&me, &key)?;
                let (value, version) = current.map_or((0, 0), |e| (e.value.as_u64().unwrap_or(0), e.version));
                match c.compare_and_set(&me, &key, serde_json::json!(value + 1), version).await {
                    Ok(_) => done += 1,
                    Err(Error::VersionMismatch { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Cmd::Barrier { barrier, participant } => {
            let barrier = BarrierName::new(barrier)?;
            c.signal_barrier(&me, &barrier, &participant).await?;
            c.wait_barrier(&barrier, Duration::from_secs(30)).await?;
            println!("passed");
        }
        Cmd::Lock { lock, times } => {
            let lock = LockName::new(lock)?;
            for _ in 0..times {
                let grant = c.lock(&me, &lock, Duration::from_secs(30), Duration::from_secs(30)).await?;
                println!("token {}", grant.token);
                c.unlock(&me, &lock).await?;
            }
        }
        Cmd::Compact { .. } | Cmd::HoldTemp { .. } => {}
    }
    Ok(())
}
