//! Agents that are shell scripts: the README's agent loop, pasted as it is, does every task
//! there is; and three shell agents, separate processes, create 300 tasks in chains of
//! dependencies, then claim and complete every one of them exactly once, in dependency order
//! (once more while a fourth process writes snapshots under them, so that their commands open
//! the store from snapshots read on demand; once more completing with `task complete
//! --claim-next`, which claims the next task in the same command).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::{text, Store, BIN};

/// `bash -c script` in the project `root`, with the command on its PATH and nothing of ours in
/// its environment.
fn bash(root: &Path, script: &str, args: &[&str]) -> Command {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).arg("agent").args(args);
    cmd.current_dir(root).env("PATH", path).env_remove("MAOS_AGENT").env("MAOS_ROOT", root);
    cmd
}

/// The README's bash code block: the agent loop.
fn readme_loop() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("```bash\n").expect("a bash block in the README") + "```bash\n".len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_owned()
}

#[test]
fn the_readme_agent_loop_does_every_task_and_stops_when_there_is_none() {
    let s = Store::new();
    s.register("lead", &[]);
    let build = s.task("lead", &["build", "--requires", "build"]);
    let test = s.task("lead", &["test", "--requires", "build", "--depends-on", &build]);
    let other = s.task("lead", &["paint", "--requires", "brush"]);
    let script = readme_loop();
    assert!(script.contains("--wait 10s"), "{script}");
    // The loop ends when a claim waited for nothing: 1 s instead of the README's 10 s.
    let o = bash(s.root(), &script.replace("--wait 10s", "--wait 1s"), &[]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("doing build\ncompleted") && out.contains("doing test\ncompleted"), "{out}");
    for id in [&build, &test] {
        let t = s.json("lead", &["task", "show", id]);
        assert_eq!((t["status"].as_str(), t["assigned_to"].as_str()), (Some("completed"), Some("worker-1")));
    }
    assert_eq!(s.json("lead", &["task", "show", &other])["status"], "pending", "nobody can paint");
    assert_eq!(s.json("lead", &["agent", "show", "worker-1"])["status"], "stopped");
}

/// One shell agent: registers, creates its 100 tasks (chains of 10, each task depending on the
/// one before), then claims and completes tasks, anyone's, until none is left to do (the loop
/// after this part: [`CLAIM_THEN_COMPLETE`] or [`COMPLETE_WITH_CLAIM_NEXT`]).
const AGENT: &str = r#"
set -u
me=$1
export MAOS_AGENT=$me
maos-coord agent register "$me" --role worker > /dev/null || exit 1
prev=
for i in $(seq 1 100); do
  if [ $((i % 10)) -eq 1 ]; then after=(); else after=(--depends-on "$prev"); fi
  prev=$(maos-coord task create "$me-$i" --id "$me-$i" "${after[@]}") || exit 1
done
while true; do
  if task=$(maos-coord task claim --wait 2s); then
    WORK
  else
    code=$?
    [ "$code" -eq 5 ] || exit "$code"
    maos-coord --json task list --status pending | grep -q '"id"' && continue
    maos-coord --json task list --status in_progress | grep -q '"id"' && continue
    exit 0
  fi
done
"#;

/// The work on a task claimed ([`AGENT`]'s `WORK`): complete it.
const CLAIM_THEN_COMPLETE: &str = r#"
    id=${task%%$'\t'*}
    maos-coord task complete "$id" --output "by-$me" > /dev/null || exit 1
    echo "$id"
"#;

/// The work on a task claimed ([`AGENT`]'s `WORK`): complete it and claim the next in the same
/// command (`task complete --claim-next`, exit code 5 when there was none to claim), until none
/// is, then back to waiting claims.
const COMPLETE_WITH_CLAIM_NEXT: &str = r#"
    while true; do
      id=${task%%$'\t'*}
      if out=$(maos-coord task complete "$id" --claim-next --output "by-$me"); then
        echo "$id"
        task=$(printf '%s\n' "$out" | tail -n 1)
      else
        code=$?
        [ "$code" -eq 5 ] || exit "$code"
        echo "$id"
        break
      fi
    done
"#;

/// A fourth process: writes snapshots one after another until the file `agents-done` appears
/// (so every agent's command may open the store from a snapshot another process just wrote),
/// and prints how many it wrote.
const SNAPSHOTTER: &str = r#"
set -u
n=0
while true; do
  maos-coord snapshot > /dev/null || exit 1
  n=$((n + 1))
  [ -e agents-done ] && break
done
echo "$n"
"#;

#[test]
fn three_shell_agents_create_claim_and_complete_300_tasks_exactly_once() {
    three_shell_agents(CLAIM_THEN_COMPLETE, false);
}

#[test]
fn three_shell_agents_do_every_task_exactly_once_while_snapshots_are_written_under_them() {
    three_shell_agents(CLAIM_THEN_COMPLETE, true);
}

#[test]
fn three_shell_agents_completing_with_claim_next_do_every_task_exactly_once_in_dependency_order() {
    three_shell_agents(COMPLETE_WITH_CLAIM_NEXT, false);
}

/// Three agents running [`AGENT`] with `work`.
fn three_shell_agents(work: &str, with_snapshots: bool) {
    let agent = AGENT.replace("    WORK\n", work.trim_start_matches('\n'));
    let s = Store::new();
    let agents = ["ant", "bee", "cat"];
    let children: Vec<Child> = agents
        .iter()
        .map(|a| bash(s.root(), &agent, &[a]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let snapshotter = with_snapshots.then(|| {
        bash(s.root(), SNAPSHOTTER, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    });
    let outputs: Vec<_> = children.into_iter().map(|child| child.wait_with_output().unwrap()).collect();
    // Before any assertion, so that the snapshotter stops whatever the agents did.
    std::fs::write(s.root().join("agents-done"), b"").unwrap();
    let mut done_by: BTreeMap<String, String> = BTreeMap::new();
    for (agent, o) in agents.iter().zip(outputs) {
        assert!(o.status.success(), "{agent}: {}", text(&o));
        for id in String::from_utf8(o.stdout).unwrap().lines() {
            assert!(done_by.insert(id.to_owned(), (*agent).to_owned()).is_none(), "{id} completed twice");
        }
    }
    if let Some(snapshotter) = snapshotter {
        let o = snapshotter.wait_with_output().unwrap();
        assert!(o.status.success(), "snapshotter: {}", text(&o));
        let written: u32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        assert!(written >= 1, "{}", text(&o));
        let snapshots = std::fs::read_dir(s.root().join(".maos/coordination/snapshots")).unwrap().count();
        assert!(snapshots >= 1);
    }
    assert_eq!(done_by.len(), 300);

    // Through the binary: every task completed, claimed once, by the agent that says it did.
    let tasks = s.json("ant", &["task", "list"]);
    let tasks = tasks["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 300);
    for t in tasks {
        let id = t["id"].as_str().unwrap();
        assert_eq!((t["status"].as_str(), t["attempts"].as_u64()), (Some("completed"), Some(1)), "{t}");
        assert_eq!(t["assigned_to"].as_str(), done_by.get(id).map(String::as_str), "{t}");
        assert_eq!(t["outputs"][0].as_str().unwrap(), format!("by-{}", done_by[id]));
    }
    // The log: one claim and one completion per task, and each task claimed only after the
    // task it depends on completed.
    let o = s
        .cmd(Some("ant"), &["events", "tail", "--json", "--type", "task_claimed", "--type", "task_completed"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<Value> =
        String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut claimed: BTreeMap<String, u64> = BTreeMap::new();
    let mut completed: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        let (task, lsn) = (e["task"].as_str().unwrap().to_owned(), e["lsn"].as_u64().unwrap());
        let seen = if e["op"] == "task_claimed" { &mut claimed } else { &mut completed };
        assert!(seen.insert(task, lsn).is_none(), "{e}");
    }
    assert_eq!((claimed.len(), completed.len()), (300, 300));
    for agent in agents {
        for i in (1..=100).filter(|i| i % 10 != 1) {
            let (before, task) = (format!("{agent}-{}", i - 1), format!("{agent}-{i}"));
            assert!(completed[&before] < claimed[&task], "{task} was claimed before {before} completed");
        }
    }
}
