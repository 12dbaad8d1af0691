//! `maos-coord audit`, `timeline` and `replay`: the store's history from the shell, in both
//! output modes, with every exit code. The histories with lapsed leases are written through the
//! library with a clock the test moves (no sleeps), then read by the command.

mod support;

use std::time::Duration;

use maos_coord::coordinator::CompactOptions;
use maos_coord::model::{AgentId, ContextKey, NewTask, TaskId, Visibility};
use maos_coord::{Coordinator, Durability, ManualClock};
use serde_json::{json, Value};
use support::{text, Store};

fn lines(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn ops(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["op"].as_str().unwrap()).collect()
}

/// Runs the command (as no agent, `MAOS_AGENT` unset) with `--json`, one object per line.
fn json_lines(s: &Store, args: &[&str]) -> Vec<Value> {
    let o = s.cmd(None, args).arg("--json").output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    lines(&String::from_utf8(o.stdout).unwrap())
}

/// Runs the command as no agent, which must succeed; its standard output.
fn ok(s: &Store, args: &[&str]) -> String {
    let o = s.cmd(None, args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Runs the command as no agent, which must fail with `code`, printing one line on standard
/// error and nothing on standard output; that line.
fn fails(s: &Store, args: &[&str], code: i32) -> String {
    let o = s.cmd(None, args).output().unwrap();
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    err
}

fn one_json(s: &Store, args: &[&str]) -> Value {
    let all = json_lines(s, args);
    assert_eq!(all.len(), 1, "{args:?}: one object");
    all.into_iter().next().unwrap()
}

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

/// A store in which w1 claims `build` and lets its lease lapse; w2 notices two minutes later,
/// reclaims it, heartbeats three times and completes it; w1 keeps a private key, w2 a shared
/// one; a second task stays pending.
async fn lapsed_and_reclaimed() -> (Store, ManualClock) {
    let s = Store::empty();
    let clock = ManualClock::starting_now();
    let c = Coordinator::options(s.root())
        .durability(Durability::Buffered)
        .lease(Duration::from_secs(60))
        .clock(clock.shared())
        .open()
        .unwrap();
    for a in ["p", "w1", "w2"] {
        c.register_agent(&agent(a), "r", vec![]).await.unwrap();
    }
    let build = TaskId::new("build").unwrap();
    c.create_task(&agent("p"), NewTask::new("build it").id(build.clone())).await.unwrap();
    c.claim_next_task(&agent("w1"), Some(&[])).await.unwrap().unwrap();
    c.set_context(&agent("w1"), &ContextKey::new("notes").unwrap(), json!("mine"), Visibility::Private)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(120));
    c.claim_next_task(&agent("w2"), Some(&[])).await.unwrap().unwrap();
    for _ in 0..3 {
        clock.advance(Duration::from_secs(10));
        c.heartbeat(&agent("w2")).await.unwrap();
    }
    c.set_context(&agent("w2"), &ContextKey::new("status").unwrap(), json!({"ok": true}), Visibility::Shared)
        .await
        .unwrap();
    c.complete_task(&agent("w2"), &build, vec!["out/app".into()]).await.unwrap();
    c.create_task(&agent("p"), NewTask::new("later").id(TaskId::new("later").unwrap())).await.unwrap();
    c.close().unwrap();
    (s, clock)
}

#[tokio::test]
async fn audit_selects_by_task_agent_key_type_and_time_in_both_modes() {
    let (s, _) = lapsed_and_reclaimed().await;
    let all = json_lines(&s, &["audit"]);
    assert_eq!(all.len() as u64, s.next_lsn() - 1, "every record");
    assert!(all.windows(2).all(|w| w[0]["lsn"].as_u64() < w[1]["lsn"].as_u64()), "oldest first");

    let build = json_lines(&s, &["audit", "--task", "build"]);
    assert_eq!(
        ops(&build),
        ["task_created", "task_claimed", "task_lease_lapsed", "task_claimed", "task_completed"]
    );
    assert_eq!((build[2]["agent"].as_str(), build[2]["holder"].as_str()), (Some("w2"), Some("w1")));

    // --agent on the command line: by or about that agent; MAOS_AGENT selects nothing.
    let w1 = json_lines(&s, &["audit", "--agent", "w1"]);
    assert_eq!(ops(&w1), ["agent_started", "task_claimed", "context_set", "task_lease_lapsed"]);
    let o = s.cmd(None, &["audit", "--json"]).env("MAOS_AGENT", "w1").output().unwrap();
    assert_eq!(
        lines(&String::from_utf8(o.stdout).unwrap()).len(),
        all.len(),
        "the environment is not a filter"
    );

    // Several criteria at once: all must match; a repeated one is any of its values.
    let claims = json_lines(&s, &["audit", "--agent", "w2", "--task", "build", "--type", "task_claimed"]);
    assert_eq!(claims.len(), 1);
    let both = json_lines(&s, &["audit", "--type", "TaskCreated", "--type", "context_set"]);
    assert_eq!(ops(&both), ["task_created", "context_set", "context_set", "task_created"]);
    assert_eq!(json_lines(&s, &["audit", "--key", "status", "--key", "notes"]).len(), 2);

    // Time bounds, both included.
    let lapse_time = build[2]["time"].as_str().unwrap();
    let since = json_lines(&s, &["audit", "--task", "build", "--since", lapse_time]);
    assert_eq!(ops(&since), ["task_lease_lapsed", "task_claimed", "task_completed"]);
    let until = json_lines(&s, &["audit", "--task", "build", "--until", lapse_time]);
    assert_eq!(ops(&until), ["task_created", "task_claimed", "task_lease_lapsed", "task_claimed"]);
    assert!(json_lines(&s, &["audit", "--until", "1h"]).is_empty(), "nothing an hour ago");

    // Values: as nobody in particular, only shared ones; as their owner, its own.
    let notes = json_lines(&s, &["audit", "--key", "notes"]);
    assert_eq!(
        (notes[0]["value"].clone(), notes[0]["withheld"].as_str()),
        (Value::Null, Some("not_visible"))
    );
    let as_owner = json_lines(&s, &["audit", "--key", "notes", "--as", "w1"]);
    assert_eq!((as_owner[0]["value"].clone(), as_owner[0].get("withheld")), (json!("mine"), None));
    assert_eq!(json_lines(&s, &["audit", "--key", "status"])[0]["value"], json!({"ok": true}));

    // Text: one line per record; the same records without the index.
    let out = ok(&s, &["audit", "--task", "build"]);
    assert_eq!(out.lines().count(), 5);
    assert!(out.lines().nth(2).unwrap().contains("task_lease_lapsed") && out.contains("holder=w1"), "{out}");
    assert_eq!(ok(&s, &["audit", "--task", "build", "--no-index"]), out);
}

#[tokio::test]
async fn a_task_timeline_shows_the_lapse_and_the_reclaim_with_the_time_between() {
    let (s, _) = lapsed_and_reclaimed().await;
    let t = one_json(&s, &["timeline", "build"]);
    assert_eq!(t["task"], "build");
    let steps: Vec<&str> =
        t["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["created", "claimed", "lease_lapsed", "reclaimed", "completed"]);
    let gaps: Vec<u64> =
        t["steps"].as_array().unwrap().iter().map(|s| s["since_previous_ms"].as_u64().unwrap()).collect();
    assert_eq!(gaps, [0, 0, 120_000, 0, 30_000]);
    assert_eq!(t["duration_ms"], 150_000);
    assert_eq!((t["steps"][3]["agent"].as_str(), t["steps"][2]["holder"].as_str()), (Some("w2"), Some("w1")));

    let out = ok(&s, &["timeline", "build"]);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows[0], "task build: 5 steps, 5 records, over 2m 30s", "{out}");
    assert!(
        rows[4].contains("+2m ") && rows[4].contains("lease_lapsed") && rows[4].contains("holder=w1"),
        "{out}"
    );
    assert!(rows[5].contains("reclaimed") && rows[5].contains(" w2 "), "{out}");
    assert!(rows[6].contains("+30s") && rows[6].contains("completed"), "{out}");
}

#[tokio::test]
async fn an_agent_timeline_folds_heartbeats_in_a_row() {
    let (s, _) = lapsed_and_reclaimed().await;
    let t = one_json(&s, &["timeline", "--agent", "w2"]);
    assert_eq!(t["agent"], "w2");
    let steps = t["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names, ["started", "lease_lapsed", "claimed", "heartbeats", "other", "completed"]);
    assert_eq!(
        (steps[3]["repeats"].as_u64(), steps[3]["since_previous_ms"].as_u64()),
        (Some(3), Some(10_000))
    );
    assert_eq!(steps[3]["last_lsn"].as_u64().unwrap(), steps[3]["lsn"].as_u64().unwrap() + 2);
    assert_eq!(steps[4]["op"], "context_set");
    let out = ok(&s, &["timeline", "--agent", "w2"]);
    assert!(out.contains("heartbeats x3") && out.contains("context_set"), "{out}");
}

#[tokio::test]
async fn replay_shows_the_state_as_of_an_lsn_or_a_time() {
    let (s, _) = lapsed_and_reclaimed().await;
    let build = json_lines(&s, &["audit", "--task", "build"]);
    let claimed_at = build[1]["lsn"].as_u64().unwrap();
    let then = one_json(&s, &["replay", "--until", &claimed_at.to_string()]);
    assert_eq!((then["lsn"].as_u64(), then["next_lsn"].as_u64()), (Some(claimed_at), Some(claimed_at + 1)));
    assert_eq!(then["tasks"]["in_progress"][0]["id"], "build");
    assert_eq!(then["tasks"]["in_progress"][0]["assigned_to"], "w1");
    assert_eq!(then["tasks"]["completed"], json!([]));
    assert_eq!(then["agents"].as_array().unwrap().len(), 3);
    assert_eq!(then["agents"][1]["holds"], json!(["build"]), "w1 held it then");

    // By time: just before the lapse was noticed, w1 still held it (its lease over unnoticed).
    let lapse_time = build[2]["time"].as_str().unwrap();
    let at = one_json(&s, &["replay", "--until", lapse_time]);
    assert_eq!(at["tasks"]["in_progress"][0]["assigned_to"], "w2", "the lapse and the reclaim at that time");
    assert_eq!(at["as_of"]["time"], lapse_time);

    let now = one_json(&s, &["replay"]);
    assert_eq!(now["lsn"].as_u64().unwrap(), s.next_lsn() - 1);
    assert_eq!(
        (now["tasks"]["completed"][0]["id"].as_str(), now["tasks"]["pending"][0]["id"].as_str()),
        (Some("build"), Some("later"))
    );
    let context: Vec<(&str, u64, &Value)> = now["context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap(), e["version"].as_u64().unwrap(), &e["value"]))
        .collect();
    assert_eq!(context, [("notes", 1, &Value::Null), ("status", 1, &json!({"ok": true}))]);
    assert_eq!(now["context"][0]["withheld"], "not_visible");
    assert_eq!(one_json(&s, &["replay", "--as", "w1"])["context"][0]["value"], "mine");
    let empty = one_json(&s, &["replay", "--until", "0"]);
    assert_eq!((empty["lsn"].as_u64(), empty["agents"].as_array().unwrap().len()), (Some(0), 0));

    let out = ok(&s, &["replay", "--until", &claimed_at.to_string()]);
    assert!(out.starts_with(&format!("state as of LSN {claimed_at} (")), "{out}");
    assert!(
        out.contains("tasks: 1 (1 in_progress)") && out.contains("agents: 3") && out.contains("locks: 0"),
        "{out}"
    );
}

#[tokio::test]
async fn every_failure_has_its_exit_code() {
    let (s, _) = lapsed_and_reclaimed().await;
    let tail = s.next_lsn();
    // Past the end of the log: an invalid value.
    let err = fails(&s, &["replay", "--until", &tail.to_string()], 1);
    assert!(err.contains("past the log's last record"), "{err}");
    // Usage: a malformed time, a timeline of nothing or of two things, replay of one agent.
    assert!(s.usage("x", &["audit", "--since", "yesterday"]).contains("neither a time"));
    assert!(fails(&s, &["timeline"], 2).contains("a task or --agent"));
    assert!(s.fails("w1", &["timeline", "build"], 2).contains("one of the two"));
    assert!(s.fails("w1", &["replay"], 2).contains("--agent does not apply"));
    // Nothing to show: a task or an agent no record names.
    let err = s.cmd(None, &["timeline", "nope", "--json"]).output().unwrap();
    assert_eq!(err.status.code(), Some(5), "{}", text(&err));
    let err: Value = serde_json::from_slice(&err.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "not_found");
    assert_eq!(s.fails("nobody", &["timeline"], 5).lines().count(), 1);
    assert!(
        json_lines(&s, &["audit", "--task", "nope"]).is_empty(),
        "an audit that finds nothing is no error"
    );
    // An invalid name.
    assert!(fails(&s, &["audit", "--task", "a->b"], 1).contains("task id"));
    // No store.
    let none = Store::empty();
    assert!(fails(&none, &["audit"], 1).contains("no store"));
}

#[tokio::test]
async fn a_point_compaction_removed_is_not_found() {
    let s = Store::empty();
    let c =
        Coordinator::options(s.root()).durability(Durability::Buffered).segment_size(8192).open().unwrap();
    let me = agent("me");
    c.register_agent(&me, "r", vec![]).await.unwrap();
    for i in 0..100 {
        let key = ContextKey::new(format!("k{}", i % 5)).unwrap();
        c.set_context(&me, &key, json!("x".repeat(100)), Visibility::Shared).await.unwrap();
    }
    c.snapshot().unwrap();
    c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() }).unwrap();
    c.close().unwrap();
    let err = fails(&s, &["replay", "--until", "3"], 5);
    assert!(err.contains("compacted"), "{err}");
    // What keyed compaction kept is still audited: each key's latest update at least.
    let k0 = json_lines(&s, &["audit", "--key", "k0"]);
    assert!(!k0.is_empty() && k0.len() < 20, "{} records", k0.len());
    assert_eq!(k0.last().unwrap()["version"], 20);
}

#[tokio::test]
async fn a_reader_who_may_not_write_the_index_audits_from_the_log() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: other users are not tried");
        return;
    }
    const NOBODY: u32 = 65534;
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = root.path().join("maos-coord");
    std::fs::copy(support::BIN, &bin).unwrap();
    let (log, mut workload) = maos_coord_test_support::workload::new_store(root.path(), 3, 40, 64 << 20);
    workload.append(&log, maos_coord::audit_index::CHUNK_SPAN + 1_000, 100);
    log.sync().unwrap();
    log.close().unwrap();
    maos_coord::coordinator::init(root.path(), maos_coord::StoreAccess::GroupRead, Some(NOBODY)).unwrap();
    let chunk = root.path().join(".maos/coordination/index/00000000000000000001.ent");
    let audit = |uid: u32, index: bool| {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["audit", "--task", "task-00000010", "--json"]).arg("--root").arg(root.path());
        if !index {
            cmd.arg("--no-index");
        }
        let o = cmd.uid(uid).gid(uid).output().unwrap();
        assert!(o.status.success(), "as {uid}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let expected = audit(0, false);
    assert!(expected.lines().count() > 2, "{expected}");
    assert_eq!(audit(NOBODY, true), expected, "the group's audit reads the log");
    assert!(!chunk.exists(), "and writes nothing");
    assert_eq!(audit(0, true), expected, "the owner's builds the index");
    assert!(chunk.exists());
    assert_eq!(audit(NOBODY, true), expected, "which the group then reads");
}
