//! Argument parsing and output. Flags are parsed by clap into [`Cli`]; each command lives in its
//! own module and writes through [`Out`], which turns a closed pipe into a clean exit. A command
//! that fails ends with a [`Failure`], whose kind decides the exit code ([`exit`]).

mod demo;
mod exit;
mod init;
mod log_cmd;
mod repair;
mod repair_cmd;
mod store_cmd;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use maos_coord::ErrorKind;

#[derive(Parser)]
#[command(
    name = "maos-coord",
    version,
    about = "Durable, auditable coordination store for multi-agent systems",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the store of a project, private to its owner (directories 0700, files 0600); or
    /// give an existing store the access asked for.
    Init(init::InitArgs),
    /// Run the demo: agent processes coordinate through one fresh store (shared context, a
    /// barrier, a three-stage pipeline).
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
    /// Internal: one agent process of the demo.
    #[command(hide = true)]
    DemoAgent(demo::AgentArgs),
}

impl Command {
    /// Whether `--json` was given: an error is then printed as JSON too.
    fn json(&self) -> bool {
        match self {
            Command::Init(args) => args.json(),
            Command::Log(cmd) => cmd.json(),
            Command::Store(cmd) => cmd.json(),
            Command::Repair(args) => args.json(),
            Command::Demo(_) | Command::DemoAgent(_) => false,
        }
    }
}

/// Where the store is: `<root>/.maos/coordination/`.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Project root; the store lives in `<root>/.maos/coordination/`.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Open the store even if users its access does not allow may write to its files.
    #[arg(long)]
    pub allow_insecure_permissions: bool,
}

impl StoreArgs {
    /// The log directory of the store.
    pub fn log_dir(&self) -> PathBuf {
        maos_coord::coordinator::store_dir(&self.root).join("log")
    }

    /// Options for reading the store's log: its recorded access (after checking the whole store),
    /// its kinds reserved. Creates nothing.
    pub fn log_options(&self) -> Result<maos_coord::LogOptions, maos_coord::Error> {
        let store = maos_coord::coordinator::store_dir(&self.root);
        let access = maos_coord::coordinator::checked_access(&store, self.allow_insecure_permissions)?;
        Ok(self.options_with(access))
    }

    /// Options for writing the store's log, as [`StoreArgs::log_options`], creating the store as
    /// a coordinator would if there is none.
    pub fn writable_log_options(&self) -> Result<maos_coord::LogOptions, maos_coord::Error> {
        let access = maos_coord::coordinator::ensure_store(&self.root, self.allow_insecure_permissions)?;
        Ok(self.options_with(access))
    }

    fn options_with(&self, access: maos_coord::StoreAccess) -> maos_coord::LogOptions {
        maos_coord::Log::options(self.log_dir())
            .access(access)
            .allow_insecure_permissions(self.allow_insecure_permissions)
            .reserve_kinds(maos_coord::model::COORDINATION_KINDS)
    }

    /// Options for a coordinator of the store.
    pub fn coordinator(&self) -> maos_coord::CoordinatorOptions {
        maos_coord::Coordinator::options(&self.root)
            .allow_insecure_permissions(self.allow_insecure_permissions)
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
}

/// What a command ends with.
pub enum Failure {
    /// The reader of our output went away: a clean exit.
    Pipe,
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
        Failure::new(e.kind(), e)
    }
}

/// Parses the arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.command.json();
    let mut out = Out::new();
    let result = match cli.command {
        Command::Init(args) => init::run(&args, &mut out),
        Command::Demo(args) => demo::run(&args, &mut out),
        Command::DemoAgent(args) => demo::agent(&args, &mut out),
        Command::Log(cmd) => log_cmd::run(cmd, &mut out),
        Command::Store(cmd) => store_cmd::run(cmd, &mut out),
        Command::Repair(args) => repair_cmd::run(&args, &mut out),
    };
    match result {
        Ok(()) | Err(Failure::Pipe) => ExitCode::from(exit::EXIT_OK),
        Err(Failure::Error { kind, message }) => {
            if json {
                let error = serde_json::json!({"error": {"kind": kind.as_str(), "message": message}});
                eprintln!("{error}");
            } else {
                eprintln!("maos-coord: {message}");
            }
            ExitCode::from(exit::code(kind))
        }
    }
}
