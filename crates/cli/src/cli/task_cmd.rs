//! `maos-coord task ...`: create, create-plan, claim, complete (--claim-next), fail, release,
//! cancel, show, list, why.

use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use maos_coord::model::{NewTask, Task, TaskId};
use maos_coord::{Error, ErrorKind, Priority, TaskQuery};
use serde_json::json;

use super::{input, runtime, view, Failure, Global, Out};

#[derive(Subcommand)]
pub enum TaskCommand {
    /// Create a task; prints its id. With --depends-on, the task and its dependencies are one
    /// atomic command, whatever state the providers are in (on a failed or cancelled provider
    /// the task is created blocked). The same definition again (same --id or
    /// --idempotency-key) returns the task and appends nothing; another is exit code 4.
    Create {
        /// Short name.
        name: String,
        /// Its id (default: a new UUID v7).
        #[arg(long)]
        id: Option<String>,
        /// What to do.
        #[arg(long, default_value = "")]
        description: String,
        /// Claims take higher priorities first.
        #[arg(long, value_enum, default_value = "normal")]
        priority: PriorityArg,
        /// A capability an agent needs to claim it (repeatable).
        #[arg(long = "requires", value_name = "C")]
        requires: Vec<String>,
        /// A task that must complete first (repeatable).
        #[arg(long = "depends-on", value_name = "TASK")]
        depends_on: Vec<String>,
        /// Creating again with the same key returns the first task.
        #[arg(long, value_name = "K")]
        idempotency_key: Option<String>,
        /// Free-form JSON (or @FILE, or - for standard input).
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// Lapses and failures before the task fails for good.
        #[arg(long, value_name = "N", default_value_t = maos_coord::model::DEFAULT_MAX_ATTEMPTS)]
        max_attempts: u32,
    },
    /// Claim the best task the agent (--agent) can do; prints its id, name and `lease until TIME`
    /// (tab-separated), or exits with code 5 if there is none.
    Claim {
        /// Claim with these capabilities (repeatable; default: the agent's registered ones).
        #[arg(long = "capability", value_name = "C")]
        capabilities: Vec<String>,
        /// Wait this long for a task to become claimable (woken by the store, not polling).
        #[arg(long, value_name = "DUR", value_parser = input::duration)]
        wait: Option<Duration>,
    },
    /// Complete a task the agent holds. With --claim-next, also claim the next task for the
    /// agent in the same atomic command (one command per unit of work): prints the completion's
    /// line, then the claim's as `task claim` does (ID, name, `lease until TIME`,
    /// tab-separated); with --json, {"completed": TASK, "next": TASK or null}. Nothing to claim
    /// exits with code 5, the completion recorded all the same; a refused completion claims
    /// nothing and exits by its error as without --claim-next.
    Complete {
        /// The task.
        id: String,
        /// An output (repeatable).
        #[arg(long = "output", value_name = "O")]
        outputs: Vec<String>,
        /// Claim the best task the agent can do next, in the same command.
        #[arg(long)]
        claim_next: bool,
        /// With --claim-next: claim with these capabilities (repeatable; default: the agent's
        /// registered ones).
        #[arg(long = "capability", value_name = "C", requires = "claim_next")]
        capabilities: Vec<String>,
    },
    /// Create the tasks of a plan and their dependencies in one atomic command: every task and
    /// dependency, or nothing. FILE (or - for standard input) holds a JSON document:
    ///
    ///   {"tasks": [{"id": "build", "name": "Build", "depends_on": ["design"]}, ...]}
    ///
    /// Each task: "id" and "name" (required); "description", "priority" (low, normal, high,
    /// critical), "requires" (capabilities), "depends_on" (ids of tasks of the plan or of tasks
    /// that exist), "metadata" (any JSON), "max_attempts", "idempotency_key" (optional). Prints
    /// the tasks' ids in the order of the plan. A cycle inside the plan, an unknown task depended
    /// on, or an id given twice creates nothing; the same plan again appends nothing; a task that
    /// exists with another definition is exit code 4.
    #[command(name = "create-plan")]
    CreatePlan {
        /// The plan: a JSON file, or - for standard input.
        #[arg(value_name = "FILE|-")]
        file: String,
    },
    /// Fail the current attempt of a task the agent holds: pending again, or failed for good
    /// once its attempts are used up.
    Fail {
        /// The task.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Give a task the agent holds back (does not count against its attempts).
    Release {
        /// The task.
        id: String,
    },
    /// Cancel a task that has not finished; with --cascade every task waiting on it too.
    Cancel {
        /// The task.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Cancel every unfinished task that waits on it, directly or through others.
        #[arg(long)]
        cascade: bool,
    },
    /// One task.
    Show {
        /// The task.
        id: String,
    },
    /// Tasks, oldest first.
    List {
        /// Only tasks with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only tasks held by (or last held by) this agent.
        #[arg(long, value_name = "A")]
        assigned_to: Option<String>,
    },
    /// Why a task is not ready: the dependencies it waits on.
    Why {
        /// The task.
        id: String,
    },
}

#[derive(Clone, Copy, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityArg {
    Low,
    Normal,
    High,
    Critical,
}

impl PriorityArg {
    /// The library's priority.
    fn priority(self) -> Priority {
        match self {
            PriorityArg::Low => Priority::Low,
            PriorityArg::Normal => Priority::Normal,
            PriorityArg::High => Priority::High,
            PriorityArg::Critical => Priority::Critical,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StatusArg {
    Pending,
    InProgress,
    Blocked,
    Completed,
    Failed,
    Cancelled,
}

impl StatusArg {
    /// The library's name of the status.
    fn name(self) -> &'static str {
        match self {
            StatusArg::Pending => "Pending",
            StatusArg::InProgress => "InProgress",
            StatusArg::Blocked => "Blocked",
            StatusArg::Completed => "Completed",
            StatusArg::Failed => "Failed",
            StatusArg::Cancelled => "Cancelled",
        }
    }
}

pub fn run(cmd: TaskCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let rt = runtime()?;
    match cmd {
        TaskCommand::Create {
            name,
            id,
            description,
            priority,
            requires,
            depends_on,
            idempotency_key,
            metadata,
            max_attempts,
        } => {
            let metadata = metadata.map(|m| input::json("--metadata", &m)).transpose()?;
            let agent = g.agent("task create")?;
            let mut spec = NewTask::new(name).description(description).priority(priority.priority());
            spec.required_capabilities = requires;
            spec.max_attempts = max_attempts;
            spec.idempotency_key = idempotency_key;
            if let Some(id) = id {
                spec = spec.id(TaskId::new(id)?);
            }
            if let Some(metadata) = metadata {
                spec = spec.metadata(metadata);
            }
            let providers = depends_on.into_iter().map(TaskId::new).collect::<Result<Vec<_>, _>>()?;
            let c = g.open()?;
            let task = rt.block_on(c.create_task_depending_on(&agent, spec, providers))?;
            if g.json() {
                out.line(view::task(&task))?;
            } else {
                out.line(&task.id)?;
            }
        }
        TaskCommand::Claim { capabilities, wait } => {
            let agent = g.agent("task claim")?;
            let c = g.open()?;
            let caps = (!capabilities.is_empty()).then_some(capabilities.as_slice());
            let claimed = match wait {
                None => rt.block_on(c.claim_next_task(&agent, caps))?,
                Some(wait) => rt.block_on(c.claim_next_task_within(&agent, caps, wait))?,
            };
            let Some(task) = claimed else {
                let message = match wait {
                    None => format!("no task {agent} can claim now"),
                    Some(wait) => format!(
                        "no task {agent} can claim became claimable within {}",
                        humantime::format_duration(wait)
                    ),
                };
                let kind = if wait.is_some() { ErrorKind::Timeout } else { ErrorKind::NotFound };
                return Err(Failure::new(kind, message));
            };
            if g.json() {
                out.line(view::task(&task))?;
            } else {
                claim_line(&task, out)?;
            }
        }
        TaskCommand::Complete { id, outputs, claim_next: false, .. } => {
            let (agent, id) = (g.agent("task complete")?, TaskId::new(id)?);
            let c = g.open()?;
            rt.block_on(c.complete_task(&agent, &id, outputs))?;
            show_after(&c, &id, "completed", g, out)?;
        }
        TaskCommand::Complete { id, outputs, claim_next: true, capabilities } => {
            let (agent, id) = (g.agent("task complete")?, TaskId::new(id)?);
            let c = g.open()?;
            let caps = (!capabilities.is_empty()).then_some(capabilities.as_slice());
            let next = rt.block_on(c.complete_and_claim_next(&agent, &id, outputs, caps))?;
            let completed = get(&c, &id)?;
            if g.json() {
                out.line(
                    json!({"completed": view::task(&completed), "next": next.as_ref().map(view::task)}),
                )?;
            } else {
                let (status, _) = view::status(&completed.status);
                out.line(format_args!("completed {id}: it is {status}"))?;
                if let Some(task) = &next {
                    claim_line(task, out)?;
                }
            }
            if next.is_none() {
                let message = format!("completed {id}; no task {agent} can claim now");
                return Err(Failure::new(ErrorKind::NotFound, message));
            }
        }
        TaskCommand::CreatePlan { file } => {
            let plan = plan(&file)?;
            let agent = g.agent("task create-plan")?;
            let c = g.open()?;
            let tasks = rt.block_on(c.create_tasks(&agent, plan))?;
            if g.json() {
                out.line(json!({"tasks": tasks.iter().map(view::task).collect::<Vec<_>>()}))?;
            } else {
                for task in &tasks {
                    out.line(&task.id)?;
                }
            }
        }
        TaskCommand::Fail { id, reason } => {
            let (agent, id) = (g.agent("task fail")?, TaskId::new(id)?);
            let c = g.open()?;
            rt.block_on(c.fail_task(&agent, &id, &reason))?;
            show_after(&c, &id, "failed this attempt of", g, out)?;
        }
        TaskCommand::Release { id } => {
            let (agent, id) = (g.agent("task release")?, TaskId::new(id)?);
            let c = g.open()?;
            rt.block_on(c.release_task(&agent, &id))?;
            show_after(&c, &id, "released", g, out)?;
        }
        TaskCommand::Cancel { id, reason, cascade } => {
            let (agent, id) = (g.agent("task cancel")?, TaskId::new(id)?);
            let c = g.open()?;
            let cancelled = if cascade {
                rt.block_on(c.cancel_task_cascade(&agent, &id, &reason))?
            } else {
                rt.block_on(c.cancel_task(&agent, &id, &reason))?
            };
            if g.json() {
                let ids: Vec<&str> = cancelled.iter().map(|t| t.as_str()).collect();
                out.line(json!({"cancelled": ids, "reason": reason}))?;
            } else {
                for task in cancelled {
                    out.line(format_args!("cancelled {task}"))?;
                }
            }
        }
        TaskCommand::Show { id } => {
            let id = TaskId::new(id)?;
            let task = get(&g.open()?, &id)?;
            if g.json() {
                out.line(view::task(&task))?;
            } else {
                for line in view::task_lines(&task) {
                    out.line(line)?;
                }
            }
        }
        TaskCommand::List { status, assigned_to } => {
            let query = TaskQuery {
                status: status.map(|s| s.name().to_owned()),
                assigned_to: assigned_to.map(maos_coord::AgentId::new).transpose()?,
            };
            let tasks = g.open()?.query_tasks(&query)?;
            if g.json() {
                out.line(json!({"tasks": tasks.iter().map(view::task).collect::<Vec<_>>()}))?;
            } else {
                let rows: Vec<Vec<String>> = tasks.iter().map(view::task_row).collect();
                for line in view::table(&view::TASK_HEADER, &rows) {
                    out.line(line)?;
                }
            }
        }
        TaskCommand::Why { id } => {
            let id = TaskId::new(id)?;
            let c = g.open()?;
            let unmet = c.why_not_ready(&id)?;
            if g.json() {
                let deps: Vec<_> = unmet.iter().map(view::dependency).collect();
                out.line(json!({"id": id.as_str(), "ready": unmet.is_empty(), "unmet": deps}))?;
                return Ok(());
            }
            if unmet.is_empty() {
                out.line(format_args!("{id} waits on nothing: every dependency is ready"))?;
            }
            for d in &unmet {
                let status = view::dependency(d);
                let reason = status["reason"].as_str().map_or_else(String::new, |r| format!(": {r}"));
                out.line(format_args!(
                    "{id} waits on {} ({} {}){reason}",
                    d.provider,
                    view::artifact(&d.artifact_type),
                    status["status"].as_str().unwrap_or_default()
                ))?;
            }
        }
    }
    Ok(())
}

/// The line `task claim` prints for a task claimed: id, name, `lease until TIME`.
fn claim_line(task: &Task, out: &mut Out) -> Result<(), Failure> {
    let until = task.lease_until.map(|t| t.to_string()).unwrap_or_default();
    out.line(format_args!("{}\t{}\tlease until {until}", task.id, task.name))?;
    Ok(())
}

/// One task of a plan document (`task create-plan`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanEntry {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: Option<PriorityArg>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// A plan document: `{"tasks": [...]}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDocument {
    tasks: Vec<PlanEntry>,
}

/// The plan in `file` (`-`: standard input).
fn plan(file: &str) -> Result<Vec<maos_coord::coordinator::PlannedTask>, Failure> {
    let arg = if file == "-" { "-".to_owned() } else { format!("@{file}") };
    let value = input::json("the plan", &arg)?;
    let document: PlanDocument = serde_json::from_value(value).map_err(|e| {
        Failure::new(
            ErrorKind::Invalid,
            format_args!("the plan is not {{\"tasks\": [...]}} as `task create-plan --help` shows: {e}"),
        )
    })?;
    document
        .tasks
        .into_iter()
        .map(|entry| {
            let mut spec = NewTask::new(entry.name)
                .id(TaskId::new(entry.id)?)
                .description(entry.description)
                .priority(entry.priority.map_or(Priority::Normal, PriorityArg::priority));
            spec.required_capabilities = entry.requires;
            spec.idempotency_key = entry.idempotency_key;
            if let Some(n) = entry.max_attempts {
                spec.max_attempts = n;
            }
            if let Some(metadata) = entry.metadata {
                spec = spec.metadata(metadata);
            }
            let depends_on = entry.depends_on.into_iter().map(TaskId::new).collect::<Result<Vec<_>, _>>()?;
            Ok(maos_coord::coordinator::PlannedTask::new(spec, depends_on))
        })
        .collect()
}

/// A task that must exist.
fn get(c: &maos_coord::Coordinator, id: &TaskId) -> Result<Task, Failure> {
    Ok(c.get_task(id)?.ok_or_else(|| Error::UnknownTask { task: id.clone() })?)
}

/// After a command on a task: the task as JSON, or a line saying what was done and where the
/// task is now.
fn show_after(
    c: &maos_coord::Coordinator,
    id: &TaskId,
    done: &str,
    g: &Global,
    out: &mut Out,
) -> Result<(), Failure> {
    let task = get(c, id)?;
    if g.json() {
        out.line(view::task(&task))?;
    } else {
        let (status, reason) = view::status(&task.status);
        let reason = reason.map_or_else(String::new, |r| format!(" ({r})"));
        out.line(format_args!("{done} {id}: it is {status}{reason}"))?;
    }
    Ok(())
}
