//! One agent process of the demo (`maos-coord demo-agent`, hidden): it opens the store the
//! demo made, registers, does its part, stops, and reports each step to the demo as one JSON
//! line on standard output, flushed (the demo waits for these lines, never for time).

use std::path::Path;
use std::time::{Duration, Instant};

use maos_coord::model::{BarrierName, ContextKey, Visibility};
use maos_coord::{AgentId, Coordinator, Durability, ErrorKind, TaskStatus};
use serde_json::json;

use crate::cli::{Failure, Global, Out};

/// How long an agent waits for another (a version, a barrier, a task) before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What an agent process of the demo does.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Publishes a new version of a context key.
    Producer,
    /// Watches a context key and reports the next version set.
    Consumer,
    /// Signals a barrier and waits for it to open.
    Builder,
    /// Claims and completes the tasks of a pipeline it can do until the pipeline is finished.
    Worker,
}

impl Role {
    /// Its name, as registered.
    pub fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Builder => "builder",
            Role::Worker => "worker",
        }
    }
}

#[derive(clap::Args)]
pub struct AgentArgs {
    /// The agent's id.
    #[arg(long)]
    pub name: String,
    /// What it does.
    #[arg(long, value_enum)]
    pub role: Role,
    /// What it works on: the context key (producer, consumer), the barrier (builder) or the
    /// pipeline (worker).
    #[arg(long)]
    pub on: String,
    /// Its capabilities (workers).
    #[arg(long)]
    pub capability: Vec<String>,
}

impl AgentArgs {
    /// The command line that starts this agent on the store of the project at `root`.
    pub fn command(&self, root: &Path, insecure: bool) -> Result<std::process::Command, Failure> {
        let exe =
            std::env::current_exe().map_err(|e| super::os_error("find the command's executable", &e))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("demo-agent").arg("--root").arg(root);
        if insecure {
            cmd.arg("--allow-insecure-permissions");
        }
        cmd.args(["--name", &self.name, "--role", self.role.name(), "--on", &self.on]);
        for capability in &self.capability {
            cmd.args(["--capability", capability]);
        }
        Ok(cmd)
    }
}

/// `demo-agent`.
pub fn agent(args: &AgentArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let c = g.options()?.durability(Durability::Sync).open()?;
    crate::cli::runtime()?.block_on(act(args, &c, out))
}

async fn act(args: &AgentArgs, c: &Coordinator, out: &mut Out) -> Result<(), Failure> {
    let me = AgentId::new(&args.name)?;
    c.register_agent(&me, args.role.name(), args.capability.clone()).await?;
    match args.role {
        Role::Producer => {
            let key = ContextKey::new(&args.on)?;
            let spec = json!({"endpoints": ["/tasks", "/agents"], "by": me.as_str()});
            let version = c.set_context(&me, &key, spec, Visibility::Shared).await?;
            out.line_flushed(json!({"published": {"key": key.as_str(), "version": version}}))?;
        }
        Role::Consumer => {
            let key = ContextKey::new(&args.on)?;
            // Every version set from now on; the demo starts the producer once it reads this.
            let mut watch = c.watch_context(&me, &key, None)?;
            out.line_flushed(json!({"watching": key.as_str()}))?;
            let (version, entry) = tokio::time::timeout(PATIENCE, watch.next()).await.map_err(|_| {
                Failure::new(ErrorKind::Timeout, format_args!("no new version of {key} within 30 s"))
            })??;
            let (owner, endpoints) =
                entry.map(|e| (e.owner.to_string(), e.value["endpoints"].clone())).unwrap_or_default();
            out.line_flushed(json!({"received": {
                "key": key.as_str(), "version": version, "owner": owner, "endpoints": endpoints,
            }}))?;
        }
        Role::Builder => {
            let barrier = BarrierName::new(&args.on)?;
            c.signal_barrier(&me, &barrier, &args.name).await?;
            c.wait_barrier(&barrier, PATIENCE).await?;
            out.line_flushed(json!({"passed": barrier.as_str()}))?;
        }
        Role::Worker => work(c, &me, &args.on, out).await?,
    }
    c.stop_agent(&me, "done").await?;
    Ok(())
}

/// Claims and completes the tasks of `pipeline` it can do until the pipeline is finished,
/// sleeping between claims until the store has a new record (a task of the stage before was
/// completed, by another process). Each task's work is a result set as a context value
/// `PIPELINE/NAME`, the task's output.
async fn work(c: &Coordinator, me: &AgentId, pipeline: &str, out: &mut Out) -> Result<(), Failure> {
    let capabilities = c.agent(me)?.map(|a| a.capabilities).unwrap_or_default();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = c.log().next_lsn();
        let status = c.pipeline_status(pipeline)?.status;
        if status != TaskStatus::Pending && status != TaskStatus::InProgress {
            return Ok(());
        }
        if let Some(task) = c.claim_next_task(me, Some(&capabilities)).await? {
            let key = ContextKey::new(format!("{pipeline}/{}", task.name))?;
            let result = json!({"task": task.id.as_str(), "result": format!("{} done", task.name)});
            c.set_context(me, &key, result, Visibility::Shared).await?;
            c.complete_task(me, &task.id, vec![key.to_string()]).await?;
            out.line_flushed(json!({"completed": task.id.as_str(), "output": key.as_str()}))?;
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !c.log().wait_for(seen, left).await {
            return Err(Failure::new(
                ErrorKind::Timeout,
                format_args!("pipeline {pipeline} did not finish within 30 s"),
            ));
        }
    }
}
