//! The demo's side of its agent processes: starting them ([`Agents`]) and reading the JSON
//! lines each reports ([`Running`]), waiting for each line, never for time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};

use maos_coord::ErrorKind;
use serde_json::Value;

use super::agent::{AgentArgs, Role};
use super::os_error;
use crate::cli::Failure;

/// Starts the agent processes of one run on the store of the project at `root`, counting them.
pub struct Agents {
    root: PathBuf,
    insecure: bool,
    /// How many were started.
    pub started: usize,
}

impl Agents {
    /// No process started yet; `insecure`: pass `--allow-insecure-permissions` on.
    pub fn new(root: &Path, insecure: bool) -> Agents {
        Agents { root: root.to_owned(), insecure, started: 0 }
    }

    /// Starts agent `name` as `role` on `on`, with a capability (workers).
    pub fn start(
        &mut self,
        name: &str,
        role: Role,
        on: &str,
        capability: Option<&str>,
    ) -> Result<Running, Failure> {
        let args = AgentArgs {
            name: name.to_owned(),
            role,
            on: on.to_owned(),
            capability: capability.map(str::to_owned).into_iter().collect(),
        };
        let running = Running::start(&args, &self.root, self.insecure)?;
        self.started += 1;
        Ok(running)
    }
}

/// An agent process: its name and the JSON lines it reports. Killed if it is dropped running
/// (the demo failed before it finished).
pub struct Running {
    /// The agent's id.
    pub name: String,
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Running {
    fn start(args: &AgentArgs, root: &Path, insecure: bool) -> Result<Running, Failure> {
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
    fn next_report(&mut self) -> Result<Option<Value>, Failure> {
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
    pub fn report(&mut self) -> Result<Value, Failure> {
        self.next_report()?.ok_or_else(|| {
            Failure::new(
                ErrorKind::Internal,
                format_args!("agent process {} ended without reporting", self.name),
            )
        })
    }

    /// Every report left, once it ended successfully.
    pub fn finish(mut self) -> Result<Vec<Value>, Failure> {
        let mut reports = Vec::new();
        while let Some(report) = self.next_report()? {
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
