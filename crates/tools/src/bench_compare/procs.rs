//! Step processes: started from this program's own binary, waited for with `wait4` so that each
//! one's peak resident memory (`ru_maxrss`) is known, alone or as a group started together.
//!
//! A child's `ru_maxrss` counts its parent's resident memory at the time of the spawn (the child
//! runs in the parent's memory until it execs, and the kernel carries the high-water mark over
//! the exec). So the process that spawns the steps holds no store and no large data: every store
//! is filled, used and measured in children, and this process keeps only their small reports.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::report::StepOutput;
use crate::store::Result;

/// A finished step process: its report and its peak resident memory.
#[derive(Debug, Clone)]
pub struct Finished {
    /// What it printed as its last line.
    pub output: StepOutput,
    /// Its peak resident memory, KiB.
    pub max_rss_kib: i64,
}

/// Waits for `child` with `wait4`: its exit status must be success. Returns its peak RSS.
fn wait(child: &Child, what: &str) -> Result<i64> {
    let pid = i32::try_from(child.id())?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    if waited != pid {
        return Err(format!("wait4 on {what} ({pid}): {}", std::io::Error::last_os_error()).into());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{what} failed (wait status {status:#x}); its error is above").into());
    }
    Ok(usage.ru_maxrss)
}

/// The report in the last line of `text`.
fn report(text: &str, what: &str) -> Result<StepOutput> {
    let line = text.lines().last().ok_or_else(|| format!("{what} printed nothing"))?;
    serde_json::from_str(line).map_err(|e| format!("{what} printed {line:?}: {e}").into())
}

fn spawn(exe: &Path, args: &[String]) -> Result<Child> {
    Ok(Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?)
}

/// Runs one step process to its end.
///
/// # Errors
/// If it cannot be started, fails or prints no report.
pub fn run_one(exe: &Path, args: &[String], what: &str) -> Result<Finished> {
    let mut child = spawn(exe, args)?;
    drop(child.stdin.take());
    let mut text = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut text)?;
    }
    let max_rss_kib = wait(&child, what)?;
    Ok(Finished { output: report(&text, what)?, max_rss_kib })
}

/// Runs a group of step processes that start their operations together: each opens the store
/// and prints `ready`; once all have, each is sent `go`. Their reports come in the order of
/// `args`.
///
/// # Errors
/// If one cannot be started, fails or prints no report.
pub fn run_group(exe: &Path, args: &[Vec<String>], what: &str) -> Result<Vec<Finished>> {
    let mut children: Vec<(Child, Option<ChildStdin>, BufReader<ChildStdout>)> = Vec::new();
    for a in args {
        let mut child = spawn(exe, a)?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        children.push((child, stdin, BufReader::new(stdout)));
    }
    // A child that failed closes its stdout; dropping the stdins on an error ends the others
    // (they read end of file instead of `go`).
    for (i, (_, _, out)) in children.iter_mut().enumerate() {
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err(format!("{what} {i} did not start: {line:?}").into());
        }
    }
    for (_, stdin, _) in &mut children {
        if let Some(mut stdin) = stdin.take() {
            stdin.write_all(b"go\n")?;
        }
    }
    let mut finished = Vec::new();
    for (i, (child, _, mut out)) in children.into_iter().enumerate() {
        let mut text = String::new();
        out.read_to_string(&mut text)?;
        let name = format!("{what} {i}");
        let max_rss_kib = wait(&child, &name)?;
        finished.push(Finished { output: report(&text, &name)?, max_rss_kib });
    }
    Ok(finished)
}

/// This process's own peak resident memory, KiB.
#[must_use]
pub fn own_max_rss_kib() -> i64 {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live local.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) } != 0 {
        return 0;
    }
    usage.ru_maxrss
}
