//! Maintenance and health from the shell: `verify` (exit code 3 naming file and offset, other
//! commands refusing with the same message or falling back from a damaged snapshot and saying
//! so), `snapshot` and `compact` (and their `store` names), `stats`, `health` (exit code 1 when a
//! check fails), in both output modes; without a terminal, the only line on standard error of
//! a long command is its summary.

mod support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{text, Store};

fn flip(path: &Path, offset: u64) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x20], offset).unwrap();
}

fn store_dir(s: &Store) -> PathBuf {
    s.root().join(".maos/coordination")
}

fn only_file(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// A store with an agent, tasks (one claimed, one completed), a context key and a snapshot.
fn busy() -> Store {
    let s = Store::new();
    s.register("a", &["build"]);
    for name in ["t1", "t2", "t3"] {
        s.task("a", &[name]);
    }
    let id = s.ok("a", &["task", "claim"]).split('\t').next().unwrap().to_owned();
    s.ok("a", &["task", "complete", &id]);
    s.ok("a", &["task", "claim"]);
    s.ok("a", &["ctx", "set", "plan", r#"{"steps": 3}"#]);
    s.ok("a", &["snapshot"]);
    s
}

/// The lines of standard error.
fn stderr_lines(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr).lines().map(str::to_owned).collect()
}

#[test]
fn verify_of_a_sound_store_reports_every_file_and_only_a_summary_on_stderr() {
    let s = busy();
    let o = s.run("a", &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("snapshots  1 (1 usable)") && out.contains("ok: 3 files checked"), "{out}");
    let err = stderr_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("maos-coord: verify: 3 files (") && err[0].contains("checked: no problem in "),
        "{err:?}"
    );
    let o = s.cmd(None, &["verify", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["ok"].as_bool(), report["files"].as_u64()), (Some(true), Some(3)), "{report}");
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(report["snapshots"][0]["usable"], true);
    assert!(report["snapshots"][0]["written"].as_str().unwrap().ends_with('Z'), "RFC 3339: {report}");
    let err = stderr_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    let summary: Value = serde_json::from_str(&err[0]).unwrap();
    assert!(summary["summary"].as_str().unwrap().starts_with("verify: 3 files"), "{summary}");
}

#[test]
fn a_corrupted_segment_fails_verify_with_3_and_every_command_refuses_with_the_same_message() {
    let s = busy();
    std::fs::remove_dir_all(store_dir(&s).join("snapshots")).unwrap(); // every command reads the log
    let segment = store_dir(&s).join("log/00000000000000000001.seg");
    flip(&segment, 64 + 40 + 8);
    let o = s.run("a", &["verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().find(|l| l.starts_with("corruption ")).unwrap_or_else(|| panic!("{out}"));
    let message = line.trim_start_matches("corruption ").trim();
    assert!(
        message.contains(&segment.display().to_string()) && message.contains("byte offset 64"),
        "{message}"
    );
    let err = stderr_lines(&o);
    assert_eq!(err.len(), 2, "the summary and the error: {err:?}");
    assert!(err[1].contains(message), "{err:?}");
    // Other commands refuse with that message, and point at verify.
    let refused = s.fails("a", &["task", "list"], 3);
    assert!(refused.contains(message) && refused.contains("`maos-coord verify`"), "{refused}");
    // JSON: one object whose findings name file and offset.
    let o = s.cmd(None, &["verify", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let f = &report["findings"][0];
    assert_eq!(
        (f["kind"].as_str(), f["severity"].as_str(), f["offset"].as_u64()),
        (Some("segment"), Some("corruption"), Some(64))
    );
    assert_eq!(f["file"].as_str(), Some(segment.to_str().unwrap()));
    let err = stderr_lines(&o);
    let error: Value = serde_json::from_str(err.last().unwrap()).unwrap();
    assert_eq!(error["error"]["kind"], "corruption", "{error}");
}

#[test]
fn a_corrupted_snapshot_fails_verify_and_other_commands_fall_back_and_say_so() {
    let s = busy();
    let snapshot = only_file(&store_dir(&s).join("snapshots"), ".snap");
    flip(&snapshot, 60);
    let o = s.run("a", &["verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let place = format!("{}, byte offset 48: directory checksum mismatch", snapshot.display());
    assert!(out.contains(&place), "{out}");
    // A command falls back to a full replay: it works, and says so on stderr.
    let o = s.run("a", &["task", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("t3"));
    let err = stderr_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!(
            "maos-coord: warning: snapshot {} skipped: directory checksum mismatch",
            snapshot.display()
        )) && err[0].contains("loaded from a full replay of the log"),
        "{err:?}"
    );
    let o = s.cmd(Some("a"), &["task", "list", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let warning: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(warning["warning"]["kind"], "snapshot_skipped", "{warning}");
    assert_eq!(warning["warning"]["file"].as_str(), Some(snapshot.to_str().unwrap()));
    // health says the same, and exits with 1.
    let o = s.run("a", &["health"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL  snapshots"), "{}", text(&o));
}

#[test]
fn a_damaged_cursor_file_fails_verify_and_its_subscription() {
    let s = busy();
    s.ok("a", &["events", "tail", "--cursor", "audit"]);
    let cursor = only_file(&store_dir(&s).join("cursors"), ".cursor");
    flip(&cursor, 17);
    let o = s.cmd(None, &["verify", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &report["findings"][0];
    assert_eq!((f["kind"].as_str(), f["offset"].as_u64()), (Some("cursor"), Some(0)), "{report}");
    let message = f["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("invalid cursor file {}", cursor.display())), "{message}");
    let refused = s.fails("a", &["events", "tail", "--cursor", "audit"], 3);
    assert!(refused.contains(message), "{refused}");
}

#[test]
fn a_damaged_index_file_is_reported_as_derived_data_and_written_again() {
    // A store of small segments, made through the library.
    let s = Store::empty();
    let c = maos_coord::Coordinator::options(s.root()).segment_size(16384).open().unwrap();
    let kind = maos_coord::RecordKind::new(100).unwrap();
    for i in 0..100u32 {
        c.log().append(kind, &[i as u8; 300]).unwrap();
    }
    c.close().unwrap();
    s.register("a", &[]);
    s.ok("a", &["task", "list"]); // reads the sealed segment to its end, writing its index
    let index = store_dir(&s).join("log/00000000000000000001.seg.idx");
    assert!(index.exists());
    flip(&index, 0);
    let o = s.run("a", &["verify"]);
    assert_eq!(o.status.code(), Some(0), "derived data is not corruption: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "derived    {}, byte offset 0: invalid index file: bad magic",
            index.display()
        )),
        "{out}"
    );
    assert!(out.contains("writes it again"), "{out}");
    s.ok("a", &["task", "list"]); // reads it again with write access
    let o = s.cmd(None, &["verify", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
}

#[test]
fn snapshot_and_compact_at_the_top_and_under_store_are_one_command() {
    let s = busy();
    let lsn = s.ok("a", &["snapshot"]).trim().parse::<u64>().unwrap();
    assert_eq!(s.json("a", &["store", "snapshot"])["snapshot"].as_u64(), Some(lsn));
    let o = s.run("a", &["compact"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("removed 0 files"), "{}", text(&o));
    let err = stderr_lines(&o);
    assert_eq!(err.len(), 1, "only the summary: {err:?}");
    assert!(
        err[0].starts_with("maos-coord: compact: 0 files removed, 0 B reclaimed, no records kept for audits"),
        "{err:?}"
    );
    let o = s.cmd(None, &["store", "compact", "--keyed", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["reclaimed_bytes"].as_u64(), Some(0), "{report}");
    let summary: Value = serde_json::from_str(&stderr_lines(&o)[0]).unwrap();
    assert!(summary["summary"].as_str().unwrap().starts_with("compact: 0 files removed"), "{summary}");
    assert!(s.usage("a", &["compact", "--keep-events-for", "1h"]).contains("--keyed"));
}

#[test]
fn stats_in_both_modes() {
    let s = busy();
    let out = s.ok("a", &["stats"]);
    let parts = [
        "records      8 (LSN 1 to 8",
        "task_created                3",
        "tasks        pending 1, in_progress 1, blocked 0, completed 1",
        "context      1 key(s)",
        "snapshot     LSN 9,",
    ];
    for part in parts {
        assert!(out.contains(part), "{part}: {out}");
    }
    let stats = s.json("a", &["stats"]);
    assert_eq!(stats["records"]["by_op"]["task_created"], 3, "{stats}");
    assert_eq!(stats["records"]["by_kind"]["1"], 8, "{stats}");
    assert_eq!(stats["tasks"]["by_status"]["completed"], 1, "{stats}");
    assert_eq!(stats["tasks"]["completion_rate"], 1.0, "{stats}");
    assert_eq!(stats["tasks"]["pending_to_claimed"]["count"], 2, "{stats}");
    assert_eq!(stats["context"]["largest"][0]["key"], "plan", "{stats}");
    assert_eq!(stats["snapshot"]["lsn"], 9, "{stats}");
    assert!(stats["now"].as_str().unwrap().ends_with('Z'), "{stats}");
}

#[test]
fn health_exits_0_when_every_check_passes_and_1_when_one_fails() {
    let s = busy();
    let out = s.ok("a", &["health"]);
    for name in ["filesystem", "snapshots", "projections", "subscriptions", "leases", "gone_agents"] {
        assert!(out.lines().any(|l| l.starts_with("ok") && l.contains(name)), "{name}: {out}");
    }
    assert!(out.ends_with("healthy\n"), "{out}");
    let report = s.json("a", &["health"]);
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["checks"].as_array().unwrap().len(), 6);
    // A durable cursor behind the tail, with a limit it is over.
    s.ok("a", &["events", "tail", "--cursor", "audit"]);
    s.ok("a", &["event", "emit", "note", "1"]);
    s.ok("a", &["event", "emit", "note", "2"]);
    let o = s.run("a", &["health", "--max-lag", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL  subscriptions"), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "maos-coord: not healthy: subscriptions failed");
    let o = s.cmd(Some("a"), &["health", "--max-lag", "2", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["healthy"], false, "{report}");
    let failed: Vec<&Value> =
        report["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["details"][0].as_str().unwrap().contains("cursor audit of agent a is 2 records behind"),
        "{report}"
    );
    let error: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "unhealthy", "{error}");
    assert!(s.ok("a", &["health", "--max-lag", "3"]).ends_with("healthy\n"));
}

#[test]
fn without_a_store_or_with_a_bad_flag_the_maintenance_commands_exit_1_or_2() {
    let s = Store::empty();
    for args in [&["verify"][..], &["stats"], &["health"], &["snapshot"], &["compact"]] {
        let err = s.fails("a", args, 1);
        assert!(err.contains("no store at") && err.contains("maos-coord init"), "{args:?}: {err}");
    }
    let s = Store::new();
    for args in [&["verify", "--frobnicate"][..], &["health", "--max-lag", "many"], &["stats", "extra"]] {
        s.usage("a", args);
    }
}

#[test]
fn help_says_health_exits_1_when_a_check_fails() {
    let o = std::process::Command::new(support::BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("`maos-coord health` exits with 1 when one of its checks fails"), "{help}");
}

#[test]
fn an_undecodable_record_fails_verify_pointing_at_repair_until_a_tombstone_skips_it() {
    let s = busy();
    let log_dir = store_dir(&s).join("log");
    let bad = {
        let raw = maos_coord::Log::options(&log_dir).open().unwrap();
        let kind = maos_coord::RecordKind::new(maos_coord::model::EVENT_RECORD_KIND).unwrap();
        raw.append(kind, b"\xc1 junk").unwrap().get()
    };
    let o = s.cmd(None, &["verify", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &report["findings"][0];
    assert_eq!((f["kind"].as_str(), f["lsn"].as_u64()), (Some("segment"), Some(bad)), "{report}");
    assert!(f["message"].as_str().unwrap().contains("`maos-coord repair` can skip it"), "{report}");
    let refused = s.fails("a", &["task", "list"], 3);
    assert!(refused.contains(f["message"].as_str().unwrap()), "{refused}");
    s.ok("a", &["repair", "--apply"]);
    let o = s.run("a", &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Where the data of a version-3 snapshot starts, and where its tasks section lies
/// (log-format.md, "Snapshots", "Body, version 3").
fn tasks_section(bytes: &[u8]) -> (usize, std::ops::Range<usize>) {
    let body = &bytes[48..];
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap()) as usize;
    let sections = 10;
    let blocks = u64_at(8 + 16 * sections);
    let data = 48 + 16 + 16 * sections + 4 * blocks;
    let (start, len) = (u64_at(8 + 16), u64_at(8 + 16 + 8));
    (data, data + start..data + start + len)
}

#[test]
fn a_damaged_block_a_command_reads_is_passed_over_said_on_stderr_and_named_by_verify() {
    let s = Store::new();
    s.register("a", &[]);
    let description = "d".repeat(300);
    let ids: Vec<String> =
        (0..40).map(|i| s.task("a", &[&format!("t{i}"), "--description", &description])).collect();
    s.ok("a", &["snapshot"]);
    let snapshot = only_file(&store_dir(&s).join("snapshots"), ".snap");
    let (data, tasks) = tasks_section(&std::fs::read(&snapshot).unwrap());
    let at = data + 4096 + 10; // the second block: not read when the store opens
    assert!(tasks.contains(&at), "{tasks:?} holds byte {at}");
    flip(&snapshot, at as u64);

    // A command that reads only the first block does not notice.
    let o = s.run("a", &["task", "show", &ids[0]]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stderr_lines(&o).is_empty(), "{}", text(&o));
    // One that reads the damaged block answers from the log instead, and says so.
    let o = s.run("a", &["task", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(ids.iter().all(|id| out.contains(id.as_str())), "every task is listed: {out}");
    let err = stderr_lines(&o);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!(
            "maos-coord: warning: passed over a damaged snapshot: snapshot {} at byte {}: block 1 checksum mismatch",
            snapshot.display(),
            data + 4096
        )),
        "{err:?}"
    );
    // verify names the block.
    let o = s.run("a", &["verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let place = format!("{}, byte offset {}: block 1 checksum mismatch", snapshot.display(), data + 4096);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&place), "{}", text(&o));
}
