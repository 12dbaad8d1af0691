//! Coordination across processes: claims are exactly-once, compare-and-set loses no update,
//! barriers release agents in other processes, lock tokens only rise.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use maos_coord::model::Subject;
use maos_coord::model::{AgentId, BarrierName, ContextKey, NewTask, TaskStatus};
use maos_coord::{Coordinator, Durability};

const HARNESS: &str = env!("CARGO_BIN_EXE_maos-coord-harness");

fn spawn(root: &std::path::Path, agent: &str, args: &[&str]) -> std::process::Child {
    Command::new(HARNESS)
        .arg("--root")
        .arg(root)
        .args(["--agent", agent])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn output(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The event types of the audit trail of task `task`, oldest first.
fn trail(c: &Coordinator, reader: &AgentId, task: &maos_coord::model::TaskId) -> Vec<String> {
    let history = c.history(reader, &Subject::Task(task.to_string())).unwrap();
    history.into_iter().map(|e| e.recorded.event.type_name().to_owned()).collect()
}

#[tokio::test]
async fn ten_thousand_tasks_claimed_by_four_processes_are_each_claimed_and_completed_once() {
    four_processes_claim_and_complete_ten_thousand_tasks("claim").await;
}

/// The same, each worker completing a task and claiming the next in one command.
#[tokio::test]
async fn ten_thousand_tasks_completed_with_claim_next_by_four_processes_are_each_claimed_and_completed_once()
{
    four_processes_claim_and_complete_ten_thousand_tasks("claim-next").await;
}

async fn four_processes_claim_and_complete_ten_thousand_tasks(command: &str) {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let boss = AgentId::new("boss").unwrap();
    c.register_agent(&boss, "planner", vec![]).await.unwrap();
    for i in 0..10_000 {
        c.create_task(&boss, NewTask::new(format!("t{i}")).requires("work")).await.unwrap();
    }
    let children: Vec<_> = (0..4).map(|i| spawn(root.path(), &format!("w{i}"), &[command])).collect();
    let mut claimed = Vec::new();
    for child in children {
        claimed.extend(output(child).lines().map(|l| l.trim_start_matches("claimed ").to_owned()));
    }
    let unique: BTreeSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), 10_000, "every task claimed");
    assert_eq!(unique.len(), 10_000, "no task claimed twice");
    let tasks = c.list_tasks(None).unwrap();
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed && t.attempts == 1));
    for t in tasks.iter().step_by(500) {
        assert_eq!(trail(&c, &boss, &t.id), ["TaskCreated", "TaskClaimed", "TaskCompleted"]);
    }
}

#[tokio::test]
async fn compare_and_set_races_between_processes_lose_no_update() {
    let root = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| spawn(root.path(), &format!("c{i}"), &["cas", "--key", "counter", "--times", "200"]))
        .collect();
    for child in children {
        output(child);
    }
    let c = Coordinator::open(root.path()).unwrap();
    let reader = AgentId::new("c0").unwrap();
    let entry = c.get_context(&reader, &ContextKey::new("counter").unwrap()).unwrap().unwrap();
    assert_eq!((entry.value, entry.version), (serde_json::json!(600), 600));
}

#[tokio::test]
async fn a_barrier_releases_agents_in_other_processes() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let boss = AgentId::new("boss").unwrap();
    c.register_agent(&boss, "planner", vec![]).await.unwrap();
    let b = BarrierName::new("release").unwrap();
    c.create_barrier(&boss, &b, vec!["fe".into(), "be".into(), "db".into()]).await.unwrap();
    let children: Vec<_> = ["fe", "be"]
        .iter()
        .map(|p| spawn(root.path(), p, &["barrier", "--barrier", "release", "--participant", p]))
        .collect();
    // The last signal comes once both children signalled (and so wait in their processes).
    loop {
        let next = c.log().next_lsn();
        let signalled = c.read(|s| s.barriers[&b].signalled.len()).unwrap();
        if signalled == 2 {
            break;
        }
        // Bounded only to fail instead of hanging if a child never signals.
        assert!(
            c.log().wait_for(next, std::time::Duration::from_secs(120)).await,
            "the children never signalled"
        );
    }
    c.signal_barrier(&boss, &b, "db").await.unwrap();
    for child in children {
        assert_eq!(output(child).trim(), "passed");
    }
}

#[tokio::test]
async fn lock_fencing_tokens_rise_across_processes() {
    let root = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| spawn(root.path(), &format!("l{i}"), &["lock", "--lock", "deploy", "--times", "50"]))
        .collect();
    let mut all = Vec::new();
    for child in children {
        let tokens: Vec<u64> =
            output(child).lines().map(|l| l.trim_start_matches("token ").parse().unwrap()).collect();
        assert!(tokens.windows(2).all(|w| w[0] < w[1]), "each process sees rising tokens");
        all.extend(tokens);
    }
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), 150, "no token granted twice");
}

/// Starts a process that claims one task as `agent` and holds it; returns once it has claimed.
fn holder(root: &std::path::Path, agent: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = spawn(root, agent, &["hold"]);
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let task =
        line.trim().strip_prefix("claimed ").unwrap_or_else(|| panic!("unexpected: {line}")).to_owned();
    (child, task)
}

#[tokio::test]
async fn an_agent_restarted_after_sigkill_is_a_new_incarnation_and_its_old_claim_is_free_at_once() {
    let root = tempfile::tempdir().unwrap();
    // Long leases: only the new incarnation can free the claim within this test.
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .lease(std::time::Duration::from_secs(3600))
        .open()
        .unwrap();
    let boss = AgentId::new("boss").unwrap();
    c.register_agent(&boss, "planner", vec![]).await.unwrap();
    let t = c.create_task(&boss, NewTask::new("t").requires("work")).await.unwrap();
    let (mut child, held) = holder(root.path(), "w");
    assert_eq!(held, t.id.to_string());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let w = AgentId::new("w").unwrap();
    let other = AgentId::new("other").unwrap();
    c.register_agent(&other, "harness", vec!["work".into()]).await.unwrap();
    assert!(c.claim_next_task(&other, None).await.unwrap().is_none(), "the dead process still holds it");
    let registered = c.register_agent_with(&w, maos_coord::Registration::new("harness")).await.unwrap();
    assert_eq!(registered.released, std::slice::from_ref(&t.id));
    assert_eq!(c.claim_next_task(&other, None).await.unwrap().map(|t| t.id), Some(t.id.clone()));
    assert_eq!(
        trail(&c, &boss, &t.id),
        ["TaskCreated", "TaskClaimed", "TaskAbandoned", "TaskClaimed"],
        "the audit trail says why"
    );
}

#[tokio::test]
async fn an_agent_restarted_after_sigkill_can_resume_its_claim() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let boss = AgentId::new("boss").unwrap();
    c.register_agent(&boss, "planner", vec![]).await.unwrap();
    let t = c.create_task(&boss, NewTask::new("t").requires("work")).await.unwrap();
    let (mut child, _) = holder(root.path(), "w");
    child.kill().unwrap();
    child.wait().unwrap();
    let w = AgentId::new("w").unwrap();
    let registered =
        c.register_agent_with(&w, maos_coord::Registration::new("harness").resume(true)).await.unwrap();
    assert_eq!(
        registered.resumed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&t.id)
    );
    c.complete_task(&w, &t.id, vec![]).await.unwrap();
    assert_eq!(c.get_task(&t.id).unwrap().unwrap().status, TaskStatus::Completed);
}

/// Starts a process that holds a temporary file in `dir` of the store, as a writer does while it
/// writes; returns the process and the file once it exists.
fn temp_holder(root: &std::path::Path, dir: &str, stem: &str) -> (std::process::Child, std::path::PathBuf) {
    use std::io::BufRead;
    let mut child = spawn(root, "w", &["hold-temp", "--dir", dir, "--stem", stem]);
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    (child, std::path::PathBuf::from(line.trim()))
}

#[tokio::test]
async fn temporary_files_of_killed_writers_are_removed_and_those_of_live_writers_kept() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let me = AgentId::new("me").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let (mut dead_snap, dead_snap_file) = temp_holder(root.path(), "snapshots", "00000000000000000009.snap");
    let (mut dead_cursor, dead_cursor_file) = temp_holder(root.path(), "cursors", "6d65.73.cursor");
    let (mut live, live_file) = temp_holder(root.path(), "snapshots", "00000000000000000010.snap");
    for child in [&mut dead_snap, &mut dead_cursor] {
        child.kill().unwrap(); // SIGKILL mid-write
        child.wait().unwrap();
    }
    assert!(dead_snap_file.exists() && dead_cursor_file.exists() && live_file.exists());
    let reopened = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    assert!(!dead_snap_file.exists(), "opening removes a dead snapshot writer's file");
    assert!(live_file.exists(), "a live writer's file stays");
    reopened.snapshot().unwrap();
    assert!(live_file.exists(), "pruning keeps it too");
    drop(reopened.subscribe_durable(&me, "s", maos_coord::model::EventFilter::all()).unwrap());
    assert!(!dead_cursor_file.exists(), "a durable subscription removes a dead cursor writer's file");
    live.kill().unwrap();
    live.wait().unwrap();
    reopened.snapshot().unwrap();
    assert!(!live_file.exists(), "once its writer died, the next prune removes it");
}

#[tokio::test]
async fn temporary_files_of_killed_log_writers_are_removed_at_open_and_those_of_live_writers_kept() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let me = AgentId::new("me").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let log = maos_coord::coordinator::store_dir(root.path()).join("log");
    // A segment being created, an index and a compacted-records file being written.
    let mut dead = Vec::new();
    for stem in ["00000000000000000009.seg", "00000000000000000001.seg.idx", "compacted.log"] {
        dead.push(temp_holder(root.path(), "log", stem));
    }
    let (mut live, live_file) = temp_holder(root.path(), "log", "00000000000000000010.seg");
    // As an earlier version named a segment being created (it held no lock).
    let old_style = log.join("00000000000000000011.seg.tmp");
    std::fs::write(&old_style, b"half-created").unwrap();
    // Files of other names are never touched, however they look.
    let others =
        ["notes.seg.txt.tmp", "my.segment-backup.tmp", "compacted.log.mine.tmp", "foo.tmp", "x.seg.1.tmp"];
    for name in others {
        std::fs::write(log.join(name), b"a user's file").unwrap();
    }
    for (child, _) in &mut dead {
        child.kill().unwrap(); // SIGKILL mid-write
        child.wait().unwrap();
    }
    let mut stale: Vec<_> = dead.iter().map(|(_, f)| f.clone()).chain([old_style.clone()]).collect();
    stale.sort();
    // A read-only open says what a writable one removes, and removes nothing.
    let reader = maos_coord::Log::open_read_only(&log).unwrap();
    assert_eq!(reader.recovery_report().removed, stale);
    drop(reader);
    assert!(stale.iter().all(|f| f.exists()));
    let reopened = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let mut removed = reopened.local_log().expect("a local store").recovery_report().removed.clone();
    removed.sort();
    assert_eq!(removed, stale, "opening removes the files of dead writers");
    assert!(stale.iter().all(|f| !f.exists()));
    assert!(live_file.exists(), "a live writer's file stays");
    assert!(others.iter().all(|name| log.join(name).exists()), "other files stay");
    drop(reopened);
    live.kill().unwrap();
    live.wait().unwrap();
    let again = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    assert_eq!(
        again.local_log().expect("a local store").recovery_report().removed,
        std::slice::from_ref(&live_file)
    );
    assert!(!live_file.exists(), "once its writer died, the next open removes it");
}
