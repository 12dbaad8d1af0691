//! `maos-coord demo`: the original design's three coordination patterns, every agent a process
//! of its own sharing one store: a producer and a consumer through shared context, builders
//! through a barrier, and workers through a pipeline whose stages wait for the stage before.
//!
//! Each run on a store is numbered (the version of the context key `demo/runs` it sets) and
//! names what it creates after its number (`demo-N` and its tasks, `demo-N-builds`), so runs on
//! the same store never meet what an earlier run left. The consumer says when it watches
//! `api-spec`, and only then does the producer start, so the consumer reports the version the
//! producer published. Without `--root` the store is in a temporary directory, removed at the
//! end unless `--keep`; either way the demo ends by saying where the store is, or that it was
//! removed, and with `--keep` or `--root` which commands look at it. With `--json` it prints one
//! object at the end instead of the narration.

mod agent;
mod process;

use std::path::{Path, PathBuf};
use std::time::Instant;

use maos_coord::coordinator::{store_dir, PipelineStage};
use maos_coord::model::{BarrierName, ContextKey, NewTask, Subject, TaskId, Visibility};
use maos_coord::{AgentId, Coordinator, Durability, ErrorKind, Lsn, TaskStatus};
use serde_json::{json, Value};

pub use agent::{agent, AgentArgs};
use agent::{Role, PATIENCE};
use process::{Agents, Running};

use super::{view, Failure, Global, Out};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Keep the store (without --root, the temporary directory it is in) and end with the
    /// commands that look at it. A store under --root is always kept.
    #[arg(long)]
    keep: bool,
}

/// The pipeline of each run: stages in order, each task's name and the capability it needs.
const STAGES: [(&str, &[(&str, &str)]); 3] = [
    ("design", &[("architecture", "design")]),
    ("implement", &[("api", "rust"), ("ui", "web")]),
    ("test", &[("integration-tests", "qa")]),
];

/// The worker processes, one per capability: each task goes to the one worker that can do it.
const WORKERS: [(&str, &str); 4] =
    [("architect", "design"), ("rust-engineer", "rust"), ("web-engineer", "web"), ("qa-engineer", "qa")];

/// The builder processes that meet at the barrier.
const BUILDERS: [&str; 3] = ["frontend-build", "backend-build", "database-migration"];

/// The context key the producer publishes to the consumer, one new version per run.
const SPEC: &str = "api-spec";

/// An operating-system call of the demo failed.
fn os_error(what: &str, e: &std::io::Error) -> Failure {
    Failure::new(ErrorKind::Io, format_args!("cannot {what}: {e}"))
}

/// The narration: a line of text, unless the demo answers with one JSON object.
struct Say<'a> {
    out: &'a mut Out,
    quiet: bool,
}

impl Say<'_> {
    fn line(&mut self, text: impl std::fmt::Display) -> Result<(), Failure> {
        if !self.quiet {
            self.out.line_flushed(text)?;
        }
        Ok(())
    }
}

/// `demo`: the store of `--root`, or of a new temporary directory.
pub fn run(args: &DemoArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let temp = match g.root_given() {
        Some(root) if root.exists() && !root.is_dir() => {
            return Err(Failure::new(
                ErrorKind::Invalid,
                format_args!("--root {} is not a directory", root.display()),
            ));
        }
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| os_error("make a temporary directory", &e))?),
    };
    let root: PathBuf =
        g.root_given().or(temp.as_ref().map(tempfile::TempDir::path)).unwrap_or(Path::new(".")).to_owned();
    let store = store_dir(&root);
    let json = g.json();
    let mut say = Say { out, quiet: json };
    match (&temp, args.keep) {
        (Some(_), false) => say.line(format_args!(
            "store: {} (in a temporary directory, removed at the end; --keep keeps it)",
            store.display()
        ))?,
        _ => say.line(format_args!("store: {}", store.display()))?,
    }
    let insecure = g.store().allow_insecure_permissions;
    let mut report = super::runtime()?.block_on(orchestrate(&root, insecure, &mut say))?;
    let next = next_steps(&root, &report);
    let kept = match temp {
        Some(dir) if !args.keep => {
            let path = dir.path().to_owned();
            dir.close().map_err(|e| os_error(&format!("remove {}", path.display()), &e))?;
            say.line(format_args!(
                "\nThe store was in a temporary directory, now removed: {}. `maos-coord demo --keep` keeps it to look at.",
                path.display()
            ))?;
            false
        }
        Some(dir) => {
            let _kept: PathBuf = dir.keep();
            true
        }
        None => true,
    };
    if kept {
        let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
        say.line(format_args!(
            "\nThe store stays in {}. Look at it (`maos-coord` is {exe}):",
            store.display()
        ))?;
        let width = next.iter().map(|(c, _)| c.chars().count()).max().unwrap_or(0);
        for (command, what) in &next {
            say.line(format_args!("  {command:<width$}  {what}"))?;
        }
    }
    if json {
        if let Some(map) = report.as_object_mut() {
            map.insert("store".into(), store.display().to_string().into());
            map.insert("kept".into(), kept.into());
            let next: Vec<&str> =
                if kept { next.iter().map(|(c, _)| c.as_str()).collect() } else { Vec::new() };
            map.insert("next".into(), json!(next));
        }
        out.line(report)?;
    }
    Ok(())
}

/// A word as a shell reads it: quoted when it holds anything but plain characters.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | ',' | '='));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The commands that look at the store after a run, and what each shows.
fn next_steps(root: &Path, report: &Value) -> Vec<(String, &'static str)> {
    let at = format!("maos-coord --root {}", shell_word(&root.display().to_string()));
    let last = report["pipeline"]["last_task"].as_str().unwrap_or_default();
    vec![
        (format!("{at} audit"), "every record, oldest first"),
        (format!("{at} timeline {}", shell_word(last)), "one task's history, step by step"),
        (
            format!("{at} graph --task {}", shell_word(last)),
            "this run's pipeline as Graphviz DOT (--format mermaid)",
        ),
        (format!("{at} top --once"), "agents, tasks, locks, barriers and the latest events"),
    ]
}

/// Runs the three patterns and returns what happened, as the JSON the demo prints.
async fn orchestrate(root: &Path, insecure: bool, say: &mut Say<'_>) -> Result<Value, Failure> {
    let started = Instant::now();
    let c = Coordinator::options(root)
        .allow_insecure_permissions(insecure)
        .durability(Durability::Sync)
        .open()?;
    let first = c.log().next_lsn();
    let me = AgentId::new("orchestrator")?;
    c.register_agent(&me, "orchestrator", vec![]).await?;
    let runs = ContextKey::new("demo/runs")?;
    let run = c.set_context(&me, &runs, json!({"by": "maos-coord demo"}), Visibility::Shared).await?;
    say.line(format_args!("run {run} of the demo on this store"))?;
    let mut agents = Agents::new(root, insecure);
    let context = shared_context(&mut agents, say)?;
    let barrier = barrier(&c, &me, run, &mut agents, say).await?;
    let pipeline = pipeline(&c, &me, run, &mut agents, say).await?;
    c.stop_agent(&me, "demo finished").await?;
    let verified = c
        .local_log()
        .ok_or_else(|| Failure::new(ErrorKind::Internal, "the demo's store is not a local directory"))?
        .verify()?;
    let last = Lsn::new(c.log().next_lsn().get().saturating_sub(1));
    let processes = agents.started + 1;
    let seconds = started.elapsed().as_secs_f64();
    say.line(format_args!(
        "\n{processes} processes appended records {first} to {last} ({} in this run); the store holds {} records, every checksum verified; {seconds:.2} s",
        last.get() + 1 - first.get(),
        verified.records,
    ))?;
    Ok(json!({
        "run": run,
        "context": context,
        "barrier": barrier,
        "pipeline": pipeline,
        "processes": processes,
        "records": {"first": first.get(), "last": last.get(), "store": verified.records},
        "verified": true,
        "seconds": seconds,
    }))
}

/// A producer and a consumer through the context key [`SPEC`]: the consumer watches it first
/// and says so, then the producer publishes a new version, which the consumer receives.
fn shared_context(agents: &mut Agents, say: &mut Say<'_>) -> Result<Value, Failure> {
    say.line(format_args!("\n1. a producer and a consumer through the shared context key {SPEC}"))?;
    let mut consumer = agents.start("backend-engineer", Role::Consumer, SPEC, None)?;
    consumer.report()?; // it is watching: what the producer sets from now on reaches it
    say.line(format_args!("  backend-engineer: watching {SPEC}"))?;
    let published = agents.start("api-architect", Role::Producer, SPEC, None)?.report()?;
    let published = &published["published"];
    say.line(format_args!("  api-architect: published {SPEC} version {}", published["version"]))?;
    let received = consumer.report()?;
    consumer.finish()?;
    let received = &received["received"];
    say.line(format_args!(
        "  backend-engineer: received {SPEC} version {} from {}, endpoints {}",
        received["version"],
        received["owner"].as_str().unwrap_or_default(),
        received["endpoints"]
    ))?;
    Ok(json!({"key": SPEC, "published": published, "received": received}))
}

/// The builders signal a barrier of this run and wait for it to open.
async fn barrier(
    c: &Coordinator,
    me: &AgentId,
    run: u64,
    agents: &mut Agents,
    say: &mut Say<'_>,
) -> Result<Value, Failure> {
    let barrier = format!("demo-{run}-builds");
    say.line(format_args!("\n2. {} builder processes meet at the barrier {barrier}", BUILDERS.len()))?;
    let name = BarrierName::new(&barrier)?;
    c.create_barrier(me, &name, BUILDERS.iter().map(|b| (*b).to_owned()).collect()).await?;
    let builders: Vec<Running> =
        BUILDERS.iter().map(|b| agents.start(b, Role::Builder, &barrier, None)).collect::<Result<_, _>>()?;
    c.wait_barrier(&name, PATIENCE).await?;
    say.line(format_args!("  orchestrator: all {} signalled; the barrier opened", BUILDERS.len()))?;
    for mut builder in builders {
        builder.report()?;
        say.line(format_args!("  {}: signalled, and passed the barrier", builder.name))?;
        builder.finish()?;
    }
    Ok(json!({"name": barrier, "participants": BUILDERS}))
}

/// The pipeline of this run ([`STAGES`]), worked on by the [`WORKERS`]; what each completed, in
/// the order of the log, and the outputs.
async fn pipeline(
    c: &Coordinator,
    me: &AgentId,
    run: u64,
    agents: &mut Agents,
    say: &mut Say<'_>,
) -> Result<Value, Failure> {
    let pipeline = format!("demo-{run}");
    let tasks = STAGES.iter().map(|(_, tasks)| tasks.len()).sum::<usize>();
    say.line(format_args!(
        "\n3. pipeline {pipeline}: {} stages, {tasks} tasks, each stage waiting for the one before; {} worker processes",
        STAGES.len(),
        WORKERS.len()
    ))?;
    let mut stages = Vec::new();
    for (stage, tasks) in STAGES {
        let listed: Vec<String> =
            tasks.iter().map(|(t, cap)| format!("{pipeline}-{t} (needs {cap})")).collect();
        say.line(format_args!("  stage {stage:<10} {}", listed.join(", ")))?;
        let tasks = tasks
            .iter()
            .map(|(task, cap)| {
                Ok(NewTask::new(*task).id(TaskId::new(format!("{pipeline}-{task}"))?).requires(*cap))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        stages.push(PipelineStage { name: stage.to_owned(), tasks });
    }
    c.create_pipeline(me, &pipeline, stages).await?;
    let workers: Vec<Running> = WORKERS
        .iter()
        .map(|(w, cap)| agents.start(w, Role::Worker, &pipeline, Some(cap)))
        .collect::<Result<_, _>>()?;
    for worker in workers {
        let name = worker.name.clone();
        for done in worker.finish()? {
            say.line(format_args!(
                "  {name}: completed {}, its result in context key {}",
                done["completed"].as_str().unwrap_or_default(),
                done["output"].as_str().unwrap_or_default()
            ))?;
        }
    }
    let status = c.pipeline_status(&pipeline)?;
    if status.status != TaskStatus::Completed {
        let (status, _) = view::status(&status.status);
        return Err(Failure::new(ErrorKind::Internal, format_args!("pipeline {pipeline} ended {status}")));
    }
    let mut order: Vec<(u64, String, String)> = Vec::new();
    for t in status.stages.iter().flat_map(|(_, tasks)| tasks) {
        for e in c.history(me, &Subject::Task(t.id.to_string()))? {
            if e.recorded.event.type_name() == "TaskCompleted" {
                order.push((e.lsn.get(), t.id.to_string(), e.recorded.actor.to_string()));
            }
        }
    }
    order.sort();
    say.line("  completed, in the order of the log:")?;
    for (lsn, task, agent) in &order {
        say.line(format_args!("    LSN {lsn:>4}  {task:<28} by {agent}"))?;
    }
    say.line(format_args!("  outputs (context keys, one per task): {}", status.outputs.join(", ")))?;
    let stages: Vec<Value> = status
        .stages
        .iter()
        .map(|(name, tasks)| {
            let tasks: Vec<Value> = tasks
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id.as_str(), "requires": t.required_capabilities,
                        "completed_by": t.assigned_to.as_ref().map(|a| a.as_str()), "outputs": t.outputs,
                    })
                })
                .collect();
            json!({"name": name, "tasks": tasks})
        })
        .collect();
    let completed: Vec<Value> =
        order.iter().map(|(lsn, task, agent)| json!({"lsn": lsn, "task": task, "by": agent})).collect();
    Ok(json!({
        "name": pipeline,
        "status": view::status(&status.status).0,
        "stages": stages,
        "completed": completed,
        "outputs": status.outputs,
        "last_task": order.last().map(|(_, task, _)| task.clone()),
    }))
}
