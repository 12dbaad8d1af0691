//! Claim + complete with concurrent workers in one process, on tasks of its own (the issue's
//! "8 concurrent tokio tasks sharing one handle in one process"): maos-coord runs 8 tokio tasks
//! on a multi-thread runtime, each with a clone of one coordinator (clones share its state and
//! log); SQLite and the JSON files, whose expert equivalent is a connection (or an open store)
//! per thread, run 8 threads, each with its own. Every worker loops as a worker process does
//! ([`claim_until_none`]). The tasks are created, and the exactly-once check made, before and
//! after the clock.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::maos::MaosStore;
use crate::report::StepOutput;
use crate::steps::{claim_until_none, exactly_once, monotonic_ns, phase};
use crate::store::{with_store, Mode, Result, Store, StoreBody, System};
use crate::workload::{Claims, Workload};

/// The phase's id.
pub const PHASE: &str = "claim_complete_in_process";

/// What one worker did: the tasks it completed, and when it started and ended
/// (`CLOCK_MONOTONIC`, ns).
type Done = (Vec<String>, u64, u64);

/// Runs the step on the store of `system` at `root`.
///
/// # Errors
/// Those of the stores, and a worker that panicked.
pub fn run(system: System, root: &Path, w: Workload) -> Result<StepOutput> {
    with_store(system, root, Mode::Open, Create { w })?;
    let workers: Vec<String> = (0..w.sizes.workers).map(|i| w.agent(i).id).collect();
    let done = match system {
        System::MaosBuffered | System::MaosSync => tokio_tasks(root, system.durable(), &workers)?,
        _ => threads(system, root, &workers)?,
    };
    let start = done.iter().map(|d| d.1).min().ok_or("no worker")?;
    let end = done.iter().map(|d| d.2).max().ok_or("no worker")?;
    let reported: Vec<String> = done.into_iter().flat_map(|d| d.0).collect();
    let took = Duration::from_nanos(end.saturating_sub(start));
    let ops = u64::try_from(reported.len())?;
    let check = with_store(system, root, Mode::Open, Check { w, reported })?;
    Ok(StepOutput { phases: vec![phase(PHASE, ops, took)], checks: vec![check], ..StepOutput::default() })
}

/// maos-coord: one coordinator, a tokio task per worker on a multi-thread runtime, each with a
/// clone of it.
fn tokio_tasks(root: &Path, sync: bool, workers: &[String]) -> Result<Vec<Done>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = MaosStore::open(root, sync, Mode::Open)?;
    let done = runtime.block_on(async {
        let tasks: Vec<_> = workers
            .iter()
            .map(|me| {
                let (mut store, me) = (store.clone(), me.clone());
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    let start = monotonic_ns();
                    claim_until_none(&mut store, &me, &mut |task| {
                        ids.push(task.to_owned());
                        Ok(())
                    })
                    .await?;
                    Ok::<Done, crate::store::BoxError>((ids, start, monotonic_ns()))
                })
            })
            .collect();
        let mut done = Vec::new();
        for task in tasks {
            done.push(task.await??);
        }
        Ok::<_, crate::store::BoxError>(done)
    })?;
    store.close()?;
    Ok(done)
}

/// SQLite and the JSON files: a thread per worker, each with its own connection (its own open
/// store); they start together once all have opened.
fn threads(system: System, root: &Path, workers: &[String]) -> Result<Vec<Done>> {
    let barrier = Arc::new(Barrier::new(workers.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter()
            .map(|me| {
                let barrier = barrier.clone();
                scope.spawn(move || with_store(system, root, Mode::Open, Worker { me, barrier }))
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| "a worker thread panicked")?).collect()
    })
}

/// Creates the step's tasks.
struct Create {
    w: Workload,
}

impl StoreBody<()> for Create {
    async fn run<S: Store>(self, store: &mut S) -> Result<()> {
        for i in 0..self.w.sizes.tasks {
            store.create_task(&self.w.actor(i), self.w.claim_task(Claims::InProcess, i)).await?;
        }
        Ok(())
    }
}

/// One worker thread: waits for the others, then claims until none is left.
struct Worker<'a> {
    me: &'a str,
    barrier: Arc<Barrier>,
}

impl StoreBody<Done> for Worker<'_> {
    async fn run<S: Store>(self, store: &mut S) -> Result<Done> {
        self.barrier.wait();
        let mut ids = Vec::new();
        let start = monotonic_ns();
        claim_until_none(store, self.me, &mut |task| {
            ids.push(task.to_owned());
            Ok(())
        })
        .await?;
        Ok((ids, start, monotonic_ns()))
    }
}

/// The exactly-once check of the step's tasks.
struct Check {
    w: Workload,
    reported: Vec<String>,
}

impl StoreBody<crate::report::Check> for Check {
    async fn run<S: Store>(self, store: &mut S) -> Result<crate::report::Check> {
        exactly_once(store, &self.w, Claims::InProcess, &self.reported).await
    }
}
