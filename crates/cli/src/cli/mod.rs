//! Argument parsing and output. Flags are parsed by clap into [`Cli`]: the global ones
//! ([`Global`]: `--root`, `--agent`, `--json`, `--allow-insecure-permissions`) on every command,
//! the rest by each command's module. A command writes through [`Out`], which turns a closed
//! pipe into a clean exit, and ends with a [`Failure`], whose kind decides the exit code
//! ([`exit`]). The JSON and text views of the library's types are in [`view`]; reading the
//! values of arguments (JSON from a file or standard input, `k=v`, visibilities) in [`input`].

mod agent_cmd;
mod audit_cmd;
mod ctx_cmd;
mod demo;
mod dep_cmd;
mod events_cmd;
mod exit;
mod graph_cmd;
mod health_cmd;
mod init;
mod input;
mod log_cmd;
mod pipeline_cmd;
mod progress;
mod repair;
mod repair_cmd;
mod replay_cmd;
mod stats_cmd;
mod store_cmd;
mod sync_cmd;
mod task_cmd;
mod timeline_cmd;
mod top;
mod top_cmd;
mod verify_cmd;
mod view;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use maos_coord::{AgentId, Coordinator, CoordinatorOptions, ErrorKind};

#[derive(Parser)]
#[command(
    name = "maos-coord",
    version,
    about = "Durable, auditable coordination store for multi-agent systems",
    after_help = exit::HELP
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the store of a project, private to its owner (directories 0700, files 0600); or
    /// give an existing store the access asked for.
    Init(init::InitArgs),
    /// Agents: register, heartbeat, stop, list, show.
    #[command(subcommand)]
    Agent(agent_cmd::AgentCommand),
    /// Tasks: create, claim, complete, fail, release, cancel, show, list, why not ready.
    #[command(subcommand)]
    Task(task_cmd::TaskCommand),
    /// Shared context: set, get, delete, list, watch.
    #[command(subcommand)]
    Ctx(ctx_cmd::CtxCommand),
    /// Application events: emit one.
    #[command(subcommand)]
    Event(events_cmd::EventCommand),
    /// The events of the store: tail them, follow them, resume a named cursor.
    #[command(subcommand)]
    Events(events_cmd::EventsCommand),
    /// Dependencies between tasks: add, mark ready, chain.
    #[command(subcommand)]
    Dep(dep_cmd::DepCommand),
    /// Barriers: create, signal, wait.
    #[command(subcommand)]
    Barrier(sync_cmd::BarrierCommand),
    /// Locks with fencing tokens: acquire, release.
    #[command(subcommand)]
    Lock(sync_cmd::LockCommand),
    /// Pipelines of task stages: create, status.
    #[command(subcommand)]
    Pipeline(pipeline_cmd::PipelineCommand),
    /// Run the demo: agent processes coordinate through one store (shared context, a barrier, a
    /// pipeline of stages); without --root in a new temporary directory, removed afterwards unless
    /// --keep. Each run on a store names what it creates after its number, so runs never meet.
    Demo(demo::DemoArgs),
    /// Inspect and maintain the log of a store.
    #[command(subcommand)]
    Log(log_cmd::LogCommand),
    /// Maintain a store: snapshots and compaction.
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// Find coordination records the store cannot decode; with --apply, record the tombstones
    /// that skip them (their bytes stay in the log).
    Repair(repair_cmd::RepairArgs),
    /// The dependency graph as Graphviz DOT, a Mermaid flowchart or JSON: tasks labelled with
    /// their name and status, dependencies from provider to consumer with theirs.
    Graph(graph_cmd::GraphArgs),
    /// A live view of the store on the terminal: agents, tasks by status, locks, barriers and
    /// the latest events, drawn again as records arrive; q quits. --once prints one frame.
    Top(top_cmd::TopArgs),
    /// Check every file of the store: each segment and its sparse index, each snapshot, each
    /// durable cursor file, the compacted-records file, the lock file. Reads only. Prints what
    /// it checked and every problem with its file and byte offset; exit code 3 on corruption.
    Verify,
    /// Write a snapshot of every projection now; prints its LSN (`store snapshot` is the same).
    Snapshot,
    /// Remove (or archive) the log segments the kept snapshots cover and every durable cursor
    /// has passed (`store compact` is the same).
    Compact(store_cmd::CompactArgs),
    /// The store's figures: records by kind, files, snapshot age, cursor lag, tasks by status and
    /// their times, dependency resolution times, lapsed leases, context keys and sizes.
    Stats,
    /// Named checks of the store's health; exit code 0 if all pass, 1 if one fails (not an error
    /// kind: the report says which).
    Health(health_cmd::HealthArgs),
    /// The whole state as of a point of the log (time travel): agents, tasks by status, context
    /// keys with their versions, dependencies, barriers, locks. Reads only; acts as no agent.
    Replay(replay_cmd::ReplayArgs),
    /// Every record that matches, oldest first, from everything the store holds: LSN, time,
    /// acting agent, operation, fields (with --json one object per line). --agent NAME selects
    /// the records by or about that agent (MAOS_AGENT does not apply). Reads only.
    Audit(audit_cmd::AuditArgs),
    /// A task's or (with --agent NAME) an agent's history as steps (created, claimed, lease
    /// lapsed, reclaimed, completed) with the time between them. Reads only.
    Timeline(timeline_cmd::TimelineArgs),
    /// Internal: one agent process of the demo.
    #[command(hide = true)]
    DemoAgent(demo::AgentArgs),
}

/// The flags every command takes.
#[derive(clap::Args, Clone)]
pub struct Global {
    /// Project root; the store is `<DIR>/.maos/coordination/` [default: .]
    #[arg(long, global = true, env = "MAOS_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// The acting agent, required by the commands that act (and by those that read context or
    /// events, which they see as this agent). For audit and timeline, given on their command
    /// line (MAOS_AGENT does not count), the agent whose records to show.
    #[arg(long, global = true, env = "MAOS_AGENT", value_name = "NAME")]
    agent: Option<String>,
    /// Machine output: one JSON object, or one per line for a stream (errors too, on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Open the store even if users its access does not allow may write to its files.
    #[arg(long, global = true)]
    allow_insecure_permissions: bool,
    /// Whether `agent` came from `MAOS_AGENT` rather than the command line.
    #[arg(skip)]
    agent_from_env: bool,
    /// The coordinators the command opened, to report after it what they found on the way.
    #[arg(skip)]
    opened: std::cell::RefCell<Vec<Coordinator>>,
}

impl Global {
    /// The project root (`.` unless given).
    pub fn root(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("."))
    }

    /// Whether `--root` (or `MAOS_ROOT`) was given.
    pub fn root_given(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }

    /// The acting agent, which `command` needs: a usage error naming the flag and the variable
    /// when neither is given.
    pub fn agent(&self, command: &str) -> Result<AgentId, Failure> {
        let name = self.agent.as_deref().ok_or_else(|| {
            Failure::Usage(format!(
                "`maos-coord {command}` needs the acting agent: give --agent NAME or set MAOS_AGENT"
            ))
        })?;
        Ok(AgentId::new(name)?)
    }

    /// The agent named by `--agent` on the command line, not `MAOS_AGENT`: for the commands
    /// that act as no agent (`audit`, `timeline`, `replay`), where `--agent` says which agent's
    /// records to show and an agent's environment must not narrow what they show.
    pub fn agent_given(&self) -> Option<&str> {
        self.agent.as_deref().filter(|_| !self.agent_from_env)
    }

    /// Where the store is and how to open it.
    pub fn store(&self) -> StoreArgs {
        StoreArgs {
            root: self.root().to_owned(),
            allow_insecure_permissions: self.allow_insecure_permissions,
        }
    }

    /// Options for a coordinator of the existing store (none is created).
    pub fn options(&self) -> Result<CoordinatorOptions, Failure> {
        let store = self.store();
        store.require()?;
        Ok(store.coordinator())
    }

    /// A coordinator of the existing store.
    pub fn open(&self) -> Result<Coordinator, Failure> {
        self.opened(self.options()?.open()?)
    }

    /// A coordinator just opened: says on standard error if opening fell back to an older
    /// snapshot, as every command does.
    pub fn opened(&self, c: Coordinator) -> Result<Coordinator, Failure> {
        verify_cmd::note_fallback(&c, self.json);
        self.opened.borrow_mut().push(c.clone());
        Ok(c)
    }
}

/// Where the store is: `<root>/.maos/coordination/`.
#[derive(Clone)]
pub struct StoreArgs {
    /// Project root.
    pub root: PathBuf,
    /// Open the store even if users its access does not allow may write to its files.
    pub allow_insecure_permissions: bool,
}

impl StoreArgs {
    /// The store directory.
    pub fn dir(&self) -> PathBuf {
        maos_coord::coordinator::store_dir(&self.root)
    }

    /// The log directory of the store.
    pub fn log_dir(&self) -> PathBuf {
        self.dir().join("log")
    }

    /// Fails unless there is a store: `--root` must be a directory holding one (only `init`
    /// and `demo` create a store).
    pub fn require(&self) -> Result<(), Failure> {
        if self.root.exists() && !self.root.is_dir() {
            return Err(Failure::new(
                ErrorKind::Invalid,
                format_args!("--root {} is not a directory", self.root.display()),
            ));
        }
        match std::fs::metadata(self.dir()) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(maos_coord::Error::NoStore { dir: self.dir() }.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(maos_coord::Error::NoStore { dir: self.dir() }.into())
            }
            Err(e) => Err(Failure::new(ErrorKind::Io, format_args!("look at {}: {e}", self.dir().display()))),
        }
    }

    /// Options for reading the store's log: its recorded access (after checking the whole store),
    /// its kinds reserved. Creates nothing.
    pub fn log_options(&self) -> Result<maos_coord::LogOptions, Failure> {
        self.require()?;
        let access = maos_coord::coordinator::checked_access(&self.dir(), self.allow_insecure_permissions)?;
        Ok(self.options_with(access))
    }

    fn options_with(&self, access: maos_coord::StoreAccess) -> maos_coord::LogOptions {
        maos_coord::Log::options(self.log_dir())
            .access(access)
            .allow_insecure_permissions(self.allow_insecure_permissions)
            .reserve_kinds(maos_coord::model::COORDINATION_KINDS)
    }

    /// Options for a coordinator of the store, which they never create. A command reads the
    /// snapshot only where it needs to (each block checked when first read): the cost of a
    /// command grows with what it touches, not with the size of the store.
    pub fn coordinator(&self) -> CoordinatorOptions {
        Coordinator::options(&self.root)
            .allow_insecure_permissions(self.allow_insecure_permissions)
            .create(false)
            .check_whole_snapshot(false)
    }
}

/// Standard output that reports a closed pipe instead of panicking.
pub struct Out(std::io::StdoutLock<'static>);

/// Output ended because the reader went away (`maos-coord log dump | head`).
pub struct PipeClosed;

impl Out {
    fn new() -> Out {
        Out(std::io::stdout().lock())
    }

    /// Writes one line.
    pub fn line(&mut self, text: impl std::fmt::Display) -> Result<(), PipeClosed> {
        writeln!(self.0, "{text}").map_err(|_| PipeClosed)
    }

    /// Writes bytes as they are: for output made piece by piece (a JSON object too large to
    /// build whole).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), PipeClosed> {
        self.0.write_all(bytes).map_err(|_| PipeClosed)
    }

    /// Writes one line and flushes it (a line of a stream, or one acknowledged once printed).
    pub fn line_flushed(&mut self, text: impl std::fmt::Display) -> Result<(), PipeClosed> {
        self.line(text)?;
        self.0.flush().map_err(|_| PipeClosed)
    }
}

/// What a command ends with.
pub enum Failure {
    /// The reader of our output went away: a clean exit.
    Pipe,
    /// The command line was not right (exit code 2), found after clap parsed it: a flag that
    /// this command needs is missing.
    Usage(String),
    /// `maos-coord health` found the store not healthy (exit code 1; not an error kind).
    Unhealthy(String),
    /// An error: its kind (which decides the exit code) and its message.
    Error {
        /// What kind of error.
        kind: ErrorKind,
        /// The one line that says what went wrong.
        message: String,
    },
}

impl Failure {
    /// An error of the command line itself (a library error converts with `?`).
    pub fn new(kind: ErrorKind, message: impl std::fmt::Display) -> Failure {
        Failure::Error { kind, message: message.to_string() }
    }
}

impl From<PipeClosed> for Failure {
    fn from(_: PipeClosed) -> Failure {
        Failure::Pipe
    }
}

impl From<maos_coord::Error> for Failure {
    fn from(e: maos_coord::Error) -> Failure {
        match e {
            maos_coord::Error::NoStore { .. } => {
                Failure::new(e.kind(), format_args!("{e} (run `maos-coord init`)"))
            }
            // It names `maos-coord repair`, which skips it.
            maos_coord::Error::UndecodableRecord { .. } => Failure::new(e.kind(), e),
            e if e.kind() == ErrorKind::Corruption => Failure::new(
                e.kind(),
                format_args!("{e} (`maos-coord verify` checks every file of the store)"),
            ),
            e => Failure::new(e.kind(), e),
        }
    }
}

/// A runtime for the library's async commands, with the timer its waits need.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(ErrorKind::Io, format_args!("cannot start a runtime: {e}")))
}

/// Parses the arguments and runs the command.
pub fn run() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let from_env = matches.value_source("agent") == Some(clap::parser::ValueSource::EnvVariable);
    let Cli { mut global, command } =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    global.agent_from_env = from_env;
    let g = &global;
    let mut out = Out::new();
    let result = match command {
        Command::Init(args) => init::run(&args, g, &mut out),
        Command::Agent(cmd) => agent_cmd::run(cmd, g, &mut out),
        Command::Task(cmd) => task_cmd::run(cmd, g, &mut out),
        Command::Ctx(cmd) => ctx_cmd::run(cmd, g, &mut out),
        Command::Event(cmd) => events_cmd::emit(cmd, g, &mut out),
        Command::Events(cmd) => events_cmd::run(cmd, g, &mut out),
        Command::Dep(cmd) => dep_cmd::run(cmd, g, &mut out),
        Command::Barrier(cmd) => sync_cmd::barrier(cmd, g, &mut out),
        Command::Lock(cmd) => sync_cmd::lock(cmd, g, &mut out),
        Command::Pipeline(cmd) => pipeline_cmd::run(cmd, g, &mut out),
        Command::Demo(args) => demo::run(&args, g, &mut out),
        Command::DemoAgent(args) => demo::agent(&args, g, &mut out),
        Command::Log(cmd) => log_cmd::run(cmd, g, &mut out),
        Command::Store(cmd) => store_cmd::run(cmd, g, &mut out),
        Command::Repair(args) => repair_cmd::run(&args, g, &mut out),
        Command::Graph(args) => graph_cmd::run(&args, g, &mut out),
        Command::Top(args) => top_cmd::run(&args, g, &mut out),
        Command::Verify => verify_cmd::run(g, &mut out),
        Command::Snapshot => store_cmd::snapshot(g, &mut out),
        Command::Compact(args) => store_cmd::compact(&args, g, &mut out),
        Command::Stats => stats_cmd::run(g, &mut out),
        Command::Health(args) => health_cmd::run(&args, g, &mut out),
        Command::Replay(args) => replay_cmd::run(&args, g, &mut out),
        Command::Audit(args) => audit_cmd::run(args, g, &mut out),
        Command::Timeline(args) => timeline_cmd::run(args, g, &mut out),
    };
    for c in g.opened.take() {
        // A command whose records crossed the automatic snapshot threshold started writing a
        // snapshot in the background: finish it, or no process of the command line ever would
        // and every later command would replay an ever longer tail.
        c.wait_for_snapshots();
        verify_cmd::note_damaged(&c, g.json);
    }
    let (code, kind, message) = match result {
        Ok(()) | Err(Failure::Pipe) => return ExitCode::from(exit::EXIT_OK),
        Err(Failure::Usage(message)) => (exit::EXIT_USAGE, "usage", message),
        Err(Failure::Unhealthy(message)) => (exit::EXIT_UNHEALTHY, "unhealthy", message),
        Err(Failure::Error { kind, message }) => (exit::code(kind), kind.as_str(), message),
    };
    if g.json {
        eprintln!("{}", serde_json::json!({"error": {"kind": kind, "message": message}}));
    } else {
        eprintln!("maos-coord: {message}");
    }
    ExitCode::from(code)
}
