//! `maos-coord demo`: the original design's three coordination patterns, with every agent a
//! separate process sharing one fresh store: producer and consumer through shared context, a
//! barrier, and a three-stage pipeline whose tasks wait for the stage before.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maos_coord::coordinator::PipelineStage;
use maos_coord::model::Subject;
use maos_coord::model::{AgentId, BarrierName, ContextKey, NewTask, TaskStatus, Visibility};
use maos_coord::{Coordinator, Durability};
use serde_json::json;

use maos_coord::ErrorKind;

use super::{Failure, Global, Out};

#[derive(clap::Args)]
pub struct AgentArgs {
    /// The agent's id.
    #[arg(long)]
    name: String,
    /// producer, consumer, builder or worker.
    #[arg(long)]
    role: String,
    /// Capabilities (workers).
    #[arg(long)]
    capability: Vec<String>,
}

const BARRIER: &str = "builds";
const PIPELINE: &str = "release";

/// An operating-system call of the demo failed (a temporary directory, a process, a runtime).
fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorKind::Io, e)
}

fn open(root: &Path) -> Result<Coordinator, Failure> {
    Ok(Coordinator::options(root).durability(Durability::Sync).open()?)
}

fn id(name: &str) -> Result<AgentId, Failure> {
    Ok(AgentId::new(name)?)
}

/// Runs the demo in the store of `--root`, or without it in a fresh temporary directory.
pub fn run(g: &Global, out: &mut Out) -> Result<(), Failure> {
    let temp = tempfile::tempdir().map_err(fail)?;
    let root: PathBuf = g.root_given().unwrap_or(temp.path()).to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(fail)?;
    runtime.block_on(orchestrate(&root, out))
}

async fn orchestrate(root: &Path, out: &mut Out) -> Result<(), Failure> {
    let started = Instant::now();
    out.line(format_args!("store: {}", maos_coord::coordinator::store_dir(root).display()))?;
    let c = open(root)?;
    let me = id("orchestrator")?;
    c.register_agent(&me, "orchestrator", vec![]).await?;

    out.line("\n1. producer and consumer through shared context")?;
    let consumer = spawn(root, "backend-engineer", "consumer", &[])?;
    let producer = spawn(root, "api-architect", "producer", &[])?;
    print_agent(out, producer)?;
    print_agent(out, consumer)?;

    out.line("\n2. a barrier across processes")?;
    let barrier = BarrierName::new(BARRIER)?;
    let parts = ["frontend-build", "backend-build", "database-migration"];
    c.create_barrier(&me, &barrier, parts.iter().map(|p| p.to_string()).collect()).await?;
    let builders: Vec<Child> =
        parts.iter().map(|p| spawn(root, p, "builder", &[])).collect::<Result<_, _>>()?;
    c.wait_barrier(&barrier, Duration::from_secs(30)).await?;
    out.line("  orchestrator: all three builds signalled; the barrier opened")?;
    for child in builders {
        print_agent(out, child)?;
    }

    out.line("\n3. a three-stage pipeline worked on by three agent processes")?;
    let stage = |name: &str, tasks: &[(&str, &str)]| PipelineStage {
        name: name.into(),
        tasks: tasks
            .iter()
            .map(|(t, cap)| {
                NewTask::new(*t)
                    .id(maos_coord::model::TaskId::new(*t)
                        .unwrap_or_else(|_| maos_coord::model::TaskId::generate()))
                    .requires(*cap)
            })
            .collect(),
    };
    c.create_pipeline(
        &me,
        PIPELINE,
        vec![
            stage("design", &[("create-architecture", "design")]),
            stage("implement", &[("implement-api", "rust"), ("implement-ui", "web")]),
            stage("test", &[("integration-tests", "qa")]),
        ],
    )
    .await?;
    let workers = [
        ("architect", vec!["design"]),
        ("engineer", vec!["rust", "web"]),
        ("qa-engineer", vec!["qa", "web"]),
    ];
    let children: Vec<Child> =
        workers.iter().map(|(name, caps)| spawn(root, name, "worker", caps)).collect::<Result<_, _>>()?;
    for child in children {
        print_agent(out, child)?;
    }
    let status = c.pipeline_status(PIPELINE)?;
    if status.status != TaskStatus::Completed {
        return Err(Failure::new(ErrorKind::Internal, format!("the pipeline ended as {:?}", status.status)));
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
    out.line("  completion order in the log:")?;
    for (lsn, task, agent) in &order {
        out.line(format_args!("    LSN {lsn:>3}  {task:<20} by {agent}"))?;
    }
    out.line(format_args!("  pipeline outputs: {}", status.outputs.join(", ")))?;
    let report = c
        .local_log()
        .ok_or_else(|| maos_coord::Error::Internal {
            what: "the demo store is not a local directory".into(),
        })?
        .verify()?;
    out.line(format_args!(
        "\n{} records from 9 processes, every checksum verified, in {:.2} s",
        report.records,
        started.elapsed().as_secs_f64()
    ))?;
    Ok(())
}

fn spawn(root: &Path, name: &str, role: &str, caps: &[&str]) -> Result<Child, Failure> {
    let exe = std::env::current_exe().map_err(fail)?;
    let mut cmd = Command::new(exe);
    cmd.args(["demo-agent", "--root"]).arg(root).args(["--name", name, "--role", role]);
    for cap in caps {
        cmd.args(["--capability", cap]);
    }
    cmd.stdout(Stdio::piped()).spawn().map_err(fail)
}

fn print_agent(out: &mut Out, child: Child) -> Result<(), Failure> {
    let output = child.wait_with_output().map_err(fail)?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        out.line(format_args!("  {line}"))?;
    }
    if !output.status.success() {
        return Err(Failure::new(ErrorKind::Internal, format!("an agent process failed: {}", output.status)));
    }
    Ok(())
}

pub fn agent(args: &AgentArgs, g: &Global, _out: &mut Out) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(fail)?;
    runtime.block_on(act(args, g.root()))
}

async fn act(args: &AgentArgs, root: &Path) -> Result<(), Failure> {
    let c = open(root)?;
    let me = id(&args.name)?;
    c.register_agent(&me, &args.role, args.capability.clone()).await?;
    let name = &args.name;
    match args.role.as_str() {
        "producer" => {
            let spec = json!({"version": "1.0.0", "endpoints": ["/tasks", "/agents"]});
            let version = c.set_context(&me, &ContextKey::new("api-spec")?, spec, Visibility::Shared).await?;
            println!("{name}: published api-spec version {version}");
        }
        "consumer" => {
            let key = ContextKey::new("api-spec")?;
            let mut watch = c.watch_context(&me, &key, Some(1))?;
            let (version, entry) = tokio::time::timeout(Duration::from_secs(30), watch.next())
                .await
                .map_err(|_| Failure::new(ErrorKind::Timeout, "no api-spec within 30 s"))??;
            let endpoints = entry.map(|e| e.value["endpoints"].clone()).unwrap_or_default();
            println!("{name}: received api-spec version {version}, endpoints {endpoints}");
        }
        "builder" => {
            tokio::time::sleep(Duration::from_millis(20 * (name.len() as u64 % 5))).await;
            let barrier = BarrierName::new(BARRIER)?;
            c.signal_barrier(&me, &barrier, name).await?;
            c.wait_barrier(&barrier, Duration::from_secs(30)).await?;
            println!("{name}: signalled, and passed the barrier");
        }
        "worker" => work(&c, &me).await?,
        other => return Err(Failure::new(ErrorKind::Invalid, format!("unknown demo role {other}"))),
    }
    c.stop_agent(&me, "done").await?;
    Ok(())
}

/// Claims and completes pipeline tasks until the pipeline is finished.
async fn work(c: &Coordinator, me: &AgentId) -> Result<(), Failure> {
    let caps = c.agent(me)?.map(|a| a.capabilities).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.pipeline_status(PIPELINE)?.status != TaskStatus::Completed {
        match c.claim_next_task(me, Some(&caps)).await? {
            Some(task) => {
                tokio::time::sleep(Duration::from_millis(30)).await; // the work
                c.complete_task(me, &task.id, vec![format!("{}.out", task.id)]).await?;
                println!("{me}: completed {}", task.id);
            }
            None if Instant::now() > deadline => {
                return Err(Failure::new(ErrorKind::Timeout, "the pipeline did not finish in 30 s"));
            }
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    Ok(())
}
