//! `maos-coord demo`: the original design's three coordination patterns, every agent a process
//! of its own sharing one store: a producer and a consumer through shared context, builders
//! through a barrier, and workers through a pipeline whose stages wait for the stage before.
//!
//! Each run on a store is numbered (the version of the context key `demo/runs` it sets) and
//! names what it creates after its number (`demo-N` and its tasks, `demo-N-builds`), so runs on
//! the same store never meet what an earlier run left. The consumer watches `api-spec` from
//! the moment it says so, and the producer starts only then: it reports the version the
//! producer published. Without `--root` the store is in a temporary directory, removed at the
//! end unless `--keep`; either way the demo ends by saying where the store is, or that it was
//! removed, and with `--keep` or `--root` which commands look at it. With `--json` it prints one
//! object at the end instead of the narration.

mod agent;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::time::Instant;

use maos_coord::coordinator::{store_dir, PipelineStage};
use maos_coord::model::{BarrierName, ContextKey, NewTask, Subject, TaskId, Visibility};
use maos_coord::{AgentId, Coordinator, Durability, ErrorKind, Lsn, TaskStatus};
use serde_json::{json, Value};

pub use agent::{agent, AgentArgs};
use agent::{Role, PATIENCE};

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

/// An agent process: its name and the JSON lines it reports. Killed if it is dropped running
/// (the demo failed before it finished).
struct Running {
    name: String,
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Running {
    fn start(args: &AgentArgs, root: &PathBuf, insecure: bool) -> Result<Running, Failure> {
        let mut child = args
            .command(root, insecure)?
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| os_error(&format!("start agent process {}", args.name), &e))?;
        let stdout =
            child.stdout.take().ok_or_else(|| Failure::new(ErrorKind::Internal, "no pipe from an agent"))?;
        Ok(Running { name: args.name.clone(), child, lines: BufReader::new(stdout) })
    }

    /// Its next report, waiting for it; `None` once it ended successfully.
    fn next(&mut self) -> Result<Option<Value>, Failure> {
        let mut line = String::new();
        let read =
            self.lines.read_line(&mut line).map_err(|e| os_error(&format!("read from {}", self.name), &e))?;
        if read == 0 {
            let status = self.child.wait().map_err(|e| os_error(&format!("wait for {}", self.name), &e))?;
            if !status.success() {
                return Err(Failure::new(
                    ErrorKind::Internal,
                    format_args!("agent process {} failed ({status})", self.name),
                ));
            }
            return Ok(None);
        }
        serde_json::from_str(&line).map(Some).map_err(|e| {
            Failure::new(
                ErrorKind::Internal,
                format_args!("agent process {} reported {line:?}: {e}", self.name),
            )
        })
    }

    /// Its next report, which must come.
    fn expect(&mut self) -> Result<Value, Failure> {
        self.next()?.ok_or_else(|| {
            Failure::new(
                ErrorKind::Internal,
                format_args!("agent process {} ended without reporting", self.name),
            )
        })
    }

    /// Every report left, once it ended successfully.
    fn finish(mut self) -> Result<Vec<Value>, Failure> {
        let mut reports = Vec::new();
        while let Some(report) = self.next()? {
            reports.push(report);
        }
        Ok(reports)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `demo`: the store of `--root`, or of a new temporary directory.
pub fn run(args: &DemoArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let temp = match g.root_given() {
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
async fn orchestrate(root: &PathBuf, insecure: bool, say: &mut Say<'_>) -> Result<Value, Failure> {
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
    let mut processes = 0;
    let mut start = |name: &str, role: Role, on: &str, capabilities: &[&str]| {
        processes += 1;
        let args = AgentArgs {
            name: name.to_owned(),
            role,
            on: on.to_owned(),
            capability: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        };
        Running::start(&args, root, insecure)
    };

    say.line(format_args!("\n1. a producer and a consumer through the shared context key {SPEC}"))?;
    let mut consumer = start("backend-engineer", Role::Consumer, SPEC, &[])?;
    consumer.expect()?; // it is watching: what the producer sets from now on reaches it
    say.line(format_args!("  backend-engineer: watching {SPEC}"))?;
    let published = start("api-architect", Role::Producer, SPEC, &[])?.expect()?;
    say.line(format_args!(
        "  api-architect: published {SPEC} version {}",
        published["published"]["version"]
    ))?;
    let received = consumer.expect()?;
    consumer.finish()?;
    let r = &received["received"];
    say.line(format_args!(
        "  backend-engineer: received {SPEC} version {} from {}, endpoints {}",
        r["version"],
        r["owner"].as_str().unwrap_or_default(),
        r["endpoints"]
    ))?;

    let barrier = format!("demo-{run}-builds");
    say.line(format_args!("\n2. {} builder processes meet at the barrier {barrier}", BUILDERS.len()))?;
    let name = BarrierName::new(&barrier)?;
    c.create_barrier(&me, &name, BUILDERS.iter().map(|b| (*b).to_owned()).collect()).await?;
    let builders: Vec<Running> =
        BUILDERS.iter().map(|b| start(b, Role::Builder, &barrier, &[])).collect::<Result<_, _>>()?;
    c.wait_barrier(&name, PATIENCE).await?;
    say.line(format_args!("  orchestrator: all {} signalled; the barrier opened", BUILDERS.len()))?;
    for mut builder in builders {
        builder.expect()?;
        say.line(format_args!("  {}: signalled, and passed the barrier", builder.name))?;
        builder.finish()?;
    }

    let pipeline = format!("demo-{run}");
    let tasks = STAGES.iter().map(|(_, tasks)| tasks.len()).sum::<usize>();
    say.line(format_args!(
        "\n3. pipeline {pipeline}: {} stages, {tasks} tasks, each stage waiting for the one before; {} worker processes",
        STAGES.len(),
        WORKERS.len()
    ))?;
    let stages = STAGES
        .iter()
        .map(|(stage, tasks)| {
            let tasks = tasks
                .iter()
                .map(|(task, capability)| {
                    Ok(NewTask::new(*task)
                        .id(TaskId::new(format!("{pipeline}-{task}"))?)
                        .requires(*capability))
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            Ok(PipelineStage { name: (*stage).to_owned(), tasks })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    c.create_pipeline(&me, &pipeline, stages).await?;
    for (stage, tasks) in STAGES {
        let listed: Vec<String> =
            tasks.iter().map(|(t, cap)| format!("{pipeline}-{t} (needs {cap})")).collect();
        say.line(format_args!("  stage {stage:<10} {}", listed.join(", ")))?;
    }
    let workers: Vec<Running> =
        WORKERS.iter().map(|(w, cap)| start(w, Role::Worker, &pipeline, &[cap])).collect::<Result<_, _>>()?;
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
    for (_, tasks) in &status.stages {
        for t in tasks {
            for e in c.history(&me, &Subject::Task(t.id.to_string()))? {
                if e.recorded.event.type_name() == "TaskCompleted" {
                    order.push((e.lsn.get(), t.id.to_string(), e.recorded.actor.to_string()));
                }
            }
        }
    }
    order.sort();
    say.line("  completed, in the order of the log:")?;
    for (lsn, task, agent) in &order {
        say.line(format_args!("    LSN {lsn:>4}  {task:<28} by {agent}"))?;
    }
    say.line(format_args!("  outputs (context keys, one per task): {}", status.outputs.join(", ")))?;

    c.stop_agent(&me, "demo finished").await?;
    let report = c
        .local_log()
        .ok_or_else(|| Failure::new(ErrorKind::Internal, "the demo's store is not a local directory"))?
        .verify()?;
    let last = Lsn::new(c.log().next_lsn().get().saturating_sub(1));
    let seconds = started.elapsed().as_secs_f64();
    say.line(format_args!(
        "\n{} processes appended records {} to {last} ({} in this run); the store holds {} records, every checksum verified; {seconds:.2} s",
        processes + 1,
        first,
        last.get() + 1 - first.get(),
        report.records,
    ))?;
    Ok(json!({
        "run": run,
        "context": {"key": SPEC, "published": published["published"], "received": r},
        "barrier": {"name": barrier, "participants": BUILDERS},
        "pipeline": {
            "name": pipeline,
            "status": view::status(&status.status).0,
            "stages": status.stages.iter().map(|(name, tasks)| json!({
                "name": name,
                "tasks": tasks.iter().map(|t| json!({
                    "id": t.id.as_str(), "requires": t.required_capabilities,
                    "completed_by": t.assigned_to.as_ref().map(|a| a.as_str()), "outputs": t.outputs,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "completed": order.iter().map(|(lsn, task, agent)| json!({"lsn": lsn, "task": task, "by": agent})).collect::<Vec<_>>(),
            "outputs": status.outputs,
            "last_task": order.last().map(|(_, task, _)| task.clone()),
        },
        "processes": processes + 1,
        "records": {"first": first.get(), "last": last.get(), "store": report.records},
        "verified": true,
        "seconds": seconds,
    }))
}
