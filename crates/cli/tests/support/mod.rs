//! Running the `maos-coord` binary on a store of the test's own: each command as an agent,
//! its output as text or JSON, its exit code.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_maos-coord");

/// A project with a store, made by `maos-coord init`.
pub struct Store {
    pub dir: tempfile::TempDir,
}

impl Store {
    /// A new project and its store.
    pub fn new() -> Store {
        let store = Store::empty();
        let o = store.cmd(None, &["init"]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        store
    }

    /// A new project without a store.
    pub fn empty() -> Store {
        Store { dir: tempfile::tempdir().unwrap() }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The command, as `agent` (if any), with `--root` given through `MAOS_ROOT` and nothing
    /// else taken from the environment.
    pub fn cmd(&self, agent: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_remove("MAOS_AGENT").env("MAOS_ROOT", self.root());
        if let Some(agent) = agent {
            cmd.args(["--agent", agent]);
        }
        cmd
    }

    /// Runs the command as `agent`.
    pub fn run(&self, agent: &str, args: &[&str]) -> Output {
        self.cmd(Some(agent), args).output().unwrap()
    }

    /// Runs the command as `agent`, which must succeed; its standard output.
    pub fn ok(&self, agent: &str, args: &[&str]) -> String {
        let o = self.run(agent, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs the command as `agent` with `--json`, which must succeed and print one object.
    pub fn json(&self, agent: &str, args: &[&str]) -> Value {
        let o = self.cmd(Some(agent), args).arg("--json").output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(out.lines().count(), 1, "one object: {out}");
        serde_json::from_str(&out).unwrap()
    }

    /// Runs the command as `agent`, which must fail with `code`, print nothing on standard
    /// output and one line on standard error; that line.
    pub fn fails(&self, agent: &str, args: &[&str], code: i32) -> String {
        let o = self.run(agent, args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout: {}", text(&o));
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        err
    }

    /// Runs the command as `agent`, which clap must refuse (exit code 2, nothing on standard
    /// output); its standard error.
    pub fn usage(&self, agent: &str, args: &[&str]) -> String {
        let o = self.run(agent, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o));
        String::from_utf8(o.stderr).unwrap()
    }

    /// As [`Store::fails`] with `--json`: the error object of standard error.
    pub fn fails_json(&self, agent: &str, args: &[&str], code: i32) -> Value {
        let o = self.cmd(Some(agent), args).arg("--json").output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o));
        let err: Value = serde_json::from_slice(&o.stderr).unwrap();
        assert!(err["error"]["kind"].is_string() && err["error"]["message"].is_string(), "{err}");
        err
    }

    /// Registers `agent` with `role` and these capabilities.
    pub fn register(&self, agent: &str, capabilities: &[&str]) {
        let mut args = vec!["agent", "register", agent, "--role", "worker"];
        for c in capabilities {
            args.extend(["--capability", c]);
        }
        let o = self.cmd(None, &args).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }

    /// Creates a task as `agent`; its id.
    pub fn task(&self, agent: &str, args: &[&str]) -> String {
        let mut all = vec!["task", "create"];
        all.extend(args);
        self.ok(agent, &all).trim().to_owned()
    }

    /// Starts the command as `agent` with its standard output piped, line by line.
    pub fn spawn(&self, agent: &str, args: &[&str]) -> Running {
        let mut child =
            self.cmd(Some(agent), args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        Running { child, lines }
    }

    /// The next LSN of the store's log.
    pub fn next_lsn(&self) -> u64 {
        let o = self.cmd(None, &["log", "status", "--json"]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["next_lsn"].as_u64().unwrap()
    }
}

/// A command running in the background.
pub struct Running {
    pub child: Child,
    lines: BufReader<ChildStdout>,
}

impl Running {
    /// Its next line of output (waiting for it); `None` once it closed its output.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.lines.read_line(&mut line).unwrap() {
            0 => None,
            _ => Some(line.trim_end_matches('\n').to_owned()),
        }
    }

    /// Its next line, as JSON.
    pub fn json(&mut self) -> Value {
        let line = self.line().expect("a line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Waits for it to end; its exit code and the rest of its output.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let mut rest = String::new();
        while let Some(line) = self.line() {
            rest.push_str(&line);
            rest.push('\n');
        }
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err).unwrap();
        (status.code(), rest + &err)
    }

    /// Closes its output (as a reader that went away would): the process, still running.
    pub fn close_output(self) -> Child {
        let Running { child, lines } = self;
        drop(lines);
        child
    }

    /// Ends it (it follows a stream for ever).
    pub fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Feeds `input` to the command's standard input; its output.
pub fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// What the command printed, for failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
