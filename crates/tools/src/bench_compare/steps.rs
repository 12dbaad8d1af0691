//! The steps a run of one system is made of, each run by a process of its own (so that each
//! one's peak memory is its own): `setup` registers the agents and creates the tasks; `worker`
//! processes claim and complete them together (a claim, then one command per unit of work that
//! completes a task and claims the next); `in_process` does the same with concurrent workers in
//! one process, on tasks of its own (`crate::in_process`); `verify` checks each task was claimed and
//! completed exactly once (not counted as the system's memory); `driver` runs the context,
//! dependency and event phases; `reader` processes read the events back together; `compact`
//! gives back space. Single-caller phases time their operations in chunks, the inputs of a chunk
//! made before its clock starts.

use std::io::{BufRead, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::report::{Check, Phase, StepOutput};
use crate::store::{Result, Store, StoreBody};
use crate::workload::{Claims, TaskSpec, Workload, EVENT_TYPE};

/// Operations whose inputs are made before they are timed together.
const CHUNK: u64 = 1000;

/// One step, as the `step` command line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Register the agents, create the tasks.
    Setup,
    /// Claim and complete as worker `index`, writing each task id completed to `claims`.
    Worker {
        /// Which worker (its agent is agent `index`).
        index: u64,
        /// Where to write the ids of the tasks it completed.
        claims: PathBuf,
    },
    /// Check the claims written to the files in `claims` against the store.
    Verify {
        /// The directory of the workers' claim files.
        claims: PathBuf,
    },
    /// Context, dependency and event phases.
    Driver,
    /// Read every event back as reader `index`.
    Reader {
        /// Which reader.
        index: u64,
    },
    /// Give back space.
    Compact,
    /// Claim and complete tasks of its own with concurrent workers in one process
    /// ([`crate::in_process`]).
    InProcess,
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine.
#[must_use]
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

fn chunks(n: u64) -> impl Iterator<Item = Range<u64>> {
    (0..n.div_ceil(CHUNK)).map(move |c| c * CHUNK..((c + 1) * CHUNK).min(n))
}

pub fn phase(name: &str, ops: u64, took: Duration) -> Phase {
    Phase { name: name.to_owned(), ops, seconds: took.as_secs_f64() }
}

fn check(name: &str, passed: bool, detail: String) -> Check {
    Check { name: name.to_owned(), passed, detail }
}

/// Tells the parent this process is ready (a `ready` line) and waits for its `go` line, so that
/// the processes of a group start their operations together, after opening the store.
fn barrier() -> Result<()> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "go" {
        return Err("the benchmark did not start this process's group".into());
    }
    Ok(())
}

/// A step with its workload: what [`crate::store::with_store`] runs.
pub struct Body<'a> {
    /// The workload at this system's scale.
    pub workload: Workload,
    /// The step.
    pub step: &'a Step,
}

impl StoreBody<StepOutput> for Body<'_> {
    async fn run<S: Store>(self, store: &mut S) -> Result<StepOutput> {
        let w = &self.workload;
        match self.step {
            Step::Setup => setup(store, w).await,
            Step::Worker { index, claims } => worker(store, w, *index, claims).await,
            Step::Verify { claims } => verify(store, w, claims).await,
            Step::Driver => driver(store, w).await,
            Step::Reader { index } => reader(store, w, *index).await,
            Step::InProcess => Err("the in-process step runs its own stores (crate::in_process)".into()),
            Step::Compact => {
                let started = Instant::now();
                let mut out = StepOutput::default();
                if store.compact().await? {
                    out.phases.push(phase("compact", 1, started.elapsed()));
                }
                Ok(out)
            }
        }
    }
}

async fn setup<S: Store>(s: &mut S, w: &Workload) -> Result<StepOutput> {
    let mut out = StepOutput::default();
    let agents: Vec<_> = (0..w.sizes.agents).map(|i| w.agent(i)).collect();
    let started = Instant::now();
    for agent in &agents {
        s.register_agent(agent).await?;
    }
    out.phases.push(phase("register", w.sizes.agents, started.elapsed()));
    let mut took = Duration::ZERO;
    for chunk in chunks(w.sizes.tasks) {
        let inputs: Vec<(String, TaskSpec)> = chunk.map(|i| (w.actor(i), w.task(i))).collect();
        let started = Instant::now();
        for (actor, task) in inputs {
            s.create_task(&actor, task).await?;
        }
        took += started.elapsed();
    }
    out.phases.push(phase("create", w.sizes.tasks, took));
    Ok(out)
}

async fn worker<S: Store>(s: &mut S, w: &Workload, index: u64, claims: &Path) -> Result<StepOutput> {
    let me = w.agent(index).id;
    let mut file = BufWriter::new(std::fs::File::create(claims)?);
    barrier()?;
    let start = monotonic_ns();
    let n = claim_until_none(s, &me, &mut |task| Ok(writeln!(file, "{task}")?)).await?;
    let end = monotonic_ns();
    file.flush()?;
    Ok(StepOutput { ops: n, span_ns: Some((start, end)), ..StepOutput::default() })
}

/// Claims and completes tasks as `me` until none is left, one operation per unit of work: a
/// claim, then each completion claims the next ([`Store::complete_and_claim`]). Hands each task
/// completed to `done`; returns how many.
///
/// # Errors
/// Those of the store and of `done`.
pub async fn claim_until_none<S: Store>(
    s: &mut S,
    me: &str,
    done: &mut (dyn FnMut(&str) -> Result<()> + Send),
) -> Result<u64> {
    let mut n = 0;
    let mut next = s.claim(me).await?;
    while let Some(task) = next {
        next = s.complete_and_claim(me, &task).await?;
        done(&task)?;
        n += 1;
    }
    Ok(n)
}

async fn verify<S: Store>(s: &mut S, w: &Workload, claims: &Path) -> Result<StepOutput> {
    let mut reported = Vec::new();
    for entry in std::fs::read_dir(claims)? {
        reported.extend(std::fs::read_to_string(entry?.path())?.lines().map(str::to_owned));
    }
    let check = exactly_once(s, w, Claims::Processes, &reported).await?;
    Ok(StepOutput { checks: vec![check], ..StepOutput::default() })
}

/// The `exactly_once` check of the claim phase `claims`: every task of it reported completed by
/// one worker (`reported`, every worker's ids together), completed and claimed once in the store.
///
/// # Errors
/// Those of the store.
pub async fn exactly_once<S: Store>(
    s: &mut S,
    w: &Workload,
    claims: Claims,
    reported: &[String],
) -> Result<Check> {
    let tasks = usize::try_from(w.sizes.tasks)?;
    let mut counts = vec![0u32; tasks];
    let mut unknown = 0;
    for line in reported {
        match w.claim_task_index(claims, line).and_then(|i| counts.get_mut(usize::try_from(i).ok()?)) {
            Some(count) => *count += 1,
            None => unknown += 1,
        }
    }
    let never = counts.iter().filter(|c| **c == 0).count();
    let twice = counts.iter().filter(|c| **c > 1).count();
    let (mut not_completed, mut not_once) = (0, 0);
    for i in 0..w.sizes.tasks {
        let outcome = s.outcome(&w.claim_task_id(claims, i)).await?;
        not_completed += usize::from(!outcome.completed);
        not_once += usize::from(outcome.claims != 1);
    }
    let passed = never + twice + unknown + not_completed + not_once == 0;
    let detail = format!(
        "{tasks} tasks: {never} never reported by a worker, {twice} reported more than once, {unknown} \
         unknown ids reported; in the store {not_completed} not completed, {not_once} not claimed exactly once"
    );
    let name = match claims {
        Claims::Processes => "exactly_once",
        Claims::InProcess => "exactly_once_in_process",
    };
    Ok(check(name, passed, detail))
}

async fn driver<S: Store>(s: &mut S, w: &Workload) -> Result<StepOutput> {
    let mut out = StepOutput::default();
    // Context: sets, then gets, each of which must see the last set of its key.
    let mut took = Duration::ZERO;
    for chunk in chunks(w.sizes.context_sets) {
        let inputs: Vec<_> = chunk
            .map(|i| {
                let (key, value) = w.context_set(i);
                (w.actor(i), w.key(key), value)
            })
            .collect();
        let started = Instant::now();
        for (actor, key, value) in inputs {
            s.set_context(&actor, &key, value).await?;
        }
        took += started.elapsed();
    }
    out.phases.push(phase("context_set", w.sizes.context_sets, took));
    let mut last = vec![0u64; usize::try_from(w.sizes.context_keys)?];
    for i in 0..w.sizes.context_sets {
        if let Some(slot) = last.get_mut(usize::try_from(w.context_set_key(i))?) {
            *slot = i;
        }
    }
    let (mut took, mut wrong) = (Duration::ZERO, 0u64);
    for chunk in chunks(w.sizes.context_gets) {
        let inputs: Vec<_> = chunk
            .map(|i| {
                let key = w.context_get(i);
                (w.actor(i), w.key(key), last.get(usize::try_from(key).unwrap_or(usize::MAX)).copied())
            })
            .collect();
        let started = Instant::now();
        for (reader, key, expected) in inputs {
            let value = s.get_context(&reader, &key).await?;
            wrong += u64::from(value.as_ref().and_then(|v| v["set"].as_u64()) != expected);
        }
        took += started.elapsed();
    }
    out.phases.push(phase("context_get", w.sizes.context_gets, took));
    let detail = format!("{wrong} of {} gets did not return the key's last value", w.sizes.context_gets);
    out.checks.push(check("context_values", wrong == 0, detail));

    // Dependencies: the DAG's tasks first (not timed), then each dependency, then each ready.
    for j in 0..w.dag_tasks() {
        s.create_task(&w.actor(j), w.dag_task(j)).await?;
    }
    let mut ids = Vec::new();
    let started = Instant::now();
    for i in 0..w.sizes.dependencies {
        let edge = w.edge(i);
        let (provider, consumer) = (w.dag_task_id(edge.provider), w.dag_task_id(edge.consumer));
        ids.push(s.add_dependency(&w.actor(i), &provider, &consumer).await?);
    }
    out.phases.push(phase("dep_add", w.sizes.dependencies, started.elapsed()));
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        s.mark_ready(&w.actor(i as u64), id).await?;
    }
    out.phases.push(phase("dep_ready", w.sizes.dependencies, started.elapsed()));
    let mut not_ready = 0;
    for id in &ids {
        not_ready += u64::from(!s.is_ready(id).await?);
    }
    let detail = format!("{not_ready} of {} dependencies not ready", ids.len());
    out.checks.push(check("dependencies_ready", not_ready == 0, detail));

    let mut took = Duration::ZERO;
    for chunk in chunks(w.sizes.events) {
        let inputs: Vec<_> = chunk.map(|i| (w.actor(i), w.event(i))).collect();
        let started = Instant::now();
        for (actor, data) in inputs {
            s.emit_event(&actor, EVENT_TYPE, data).await?;
        }
        took += started.elapsed();
    }
    out.phases.push(phase("event_emit", w.sizes.events, took));
    Ok(out)
}

async fn reader<S: Store>(s: &mut S, w: &Workload, index: u64) -> Result<StepOutput> {
    let me = w.agent(index % w.sizes.agents).id;
    barrier()?;
    let start = monotonic_ns();
    let (mut next, mut out_of_order) = (0u64, 0u64);
    s.read_events(&me, EVENT_TYPE, w.sizes.events, &mut |data| {
        out_of_order += u64::from(data["seq"].as_u64() != Some(next));
        next += 1;
        Ok(())
    })
    .await?;
    let end = monotonic_ns();
    let detail = format!("reader {index}: {next} events, {out_of_order} out of order or changed");
    Ok(StepOutput {
        ops: next,
        span_ns: Some((start, end)),
        checks: vec![check("events_in_order", out_of_order == 0 && next == w.sizes.events, detail)],
        ..StepOutput::default()
    })
}
