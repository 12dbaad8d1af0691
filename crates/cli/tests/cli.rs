//! The command-line tool: the demo, and log status, dump, append and verify from a shell.

use std::process::{Command, Output};

use maos_coord_test_support as common;

const BIN: &str = env!("CARGO_BIN_EXE_maos-coord");

fn run(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).arg("--root").arg(root).output().unwrap()
}

/// A new, empty store (only `init` and `demo` create one).
fn init(root: &std::path::Path) {
    let o = run(root, &["init"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_demo_coordinates_agent_processes_through_one_store() {
    let root = tempfile::tempdir().unwrap();
    let o = run(root.path(), &["demo"]);
    assert!(o.status.success(), "{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(text.contains("backend-engineer: received api-spec version 1"), "{text}");
    assert_eq!(text.matches("passed the barrier").count(), 3, "{text}");
    let completed: Vec<&str> = text.lines().filter(|l| l.contains("LSN") && l.contains(" by ")).collect();
    assert_eq!(completed.len(), 4, "{text}");
    assert!(
        completed[0].contains("demo-1-architecture") && completed[3].contains("integration-tests"),
        "{text}"
    );
    // --root keeps the store, which the log commands then read.
    let o = run(root.path(), &["log", "verify", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["records"].as_u64().unwrap() > 30);
}

#[test]
fn append_dump_status_round_trip_through_json() {
    let root = tempfile::tempdir().unwrap();
    init(root.path());
    let o = run(root.path(), &["log", "append", "--kind", "21", "--data", r#"{"task":"build","n":[1,2]}"#]);
    assert_eq!(stdout(&o).trim(), "1");
    run(root.path(), &["log", "append", "--kind", "22", "--data", "\"second\"", "--buffered"]);
    let o = run(root.path(), &["log", "dump", "--json"]);
    let lines: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["payload"]["task"], "build");
    assert_eq!(lines[0]["kind"], 21);
    assert_eq!(lines[1]["payload"], "second");
    assert_eq!(lines[1]["lsn"], 2);
    let o = run(root.path(), &["log", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["next_lsn"], 3);
    let o = run(root.path(), &["log", "dump", "--from", "2", "--limit", "1"]);
    assert!(stdout(&o).contains("\"second\""));
}

#[test]
fn bad_input_is_a_clear_error_with_a_nonzero_exit() {
    let root = tempfile::tempdir().unwrap();
    init(root.path());
    let o = run(root.path(), &["log", "append", "--kind", "0", "--data", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kind 0 is reserved"));
    let o = run(root.path(), &["log", "append", "--kind", "17", "--data", "{oops"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--data is not JSON"));
    let o = run(root.path(), &["log", "append", "--kind", "1", "--data", r#"{"x":1}"#]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("record kind 1 belongs to the coordination layer"));
    let o = run(root.path(), &["log", "dump", "--from", "5"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("LSN 5 is not in the log"));
}

#[test]
fn verify_exits_with_3_and_names_the_place_of_corruption() {
    use std::os::unix::fs::FileExt;
    let root = tempfile::tempdir().unwrap();
    init(root.path());
    for i in 0..3 {
        run(root.path(), &["log", "append", "--kind", "17", "--data", &i.to_string()]);
    }
    let seg = root.path().join(".maos/coordination/log/00000000000000000001.seg");
    let file = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.write_all_at(&[0xEE], 64 + 40 + 33).unwrap(); // payload of record 2
    let o = run(root.path(), &["log", "verify"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("00000000000000000001.seg") && err.contains("byte offset 104") && err.contains("LSN 2"),
        "{err}"
    );
}

#[test]
fn store_snapshot_and_compact_from_the_shell() {
    let root = tempfile::tempdir().unwrap();
    assert!(run(root.path(), &["demo"]).status.success());
    let o = run(root.path(), &["store", "compact"]);
    assert!(stdout(&o).contains("nothing to compact"), "{}", stdout(&o));
    let o = run(root.path(), &["store", "snapshot"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lsn: u64 = stdout(&o).trim().parse().unwrap();
    assert!(lsn > 30);
    let o = run(root.path(), &["store", "compact", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["snapshot"], lsn);
    assert_eq!(report["removed"].as_array().unwrap().len(), 0, "the only segment is the newest: kept");
    assert!(root.path().join(format!(".maos/coordination/snapshots/{lsn:020}.snap")).exists());
}

#[tokio::test]
async fn keyed_compaction_from_the_shell_and_dump_shows_the_kept_records() {
    let root = tempfile::tempdir().unwrap();
    drop(common::store::store(root.path()).await);
    let o = run(root.path(), &["store", "compact", "--keyed", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (kept, examined) = (report["kept"].as_u64().unwrap(), report["examined"].as_u64().unwrap());
    assert!(kept > 0 && kept < examined, "{report}");
    let first = report["first_lsn"].as_u64().unwrap();
    let o = run(root.path(), &["log", "dump", "--json"]);
    let lsns: Vec<u64> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["lsn"].as_u64().unwrap())
        .collect();
    assert_eq!(lsns.iter().filter(|&&l| l < first).count() as u64, kept);
    assert!(lsns.windows(2).all(|w| w[0] < w[1]));
    let o = run(root.path(), &["log", "verify"]);
    assert!(stdout(&o).contains(&format!("{kept} records kept by keyed compaction")), "{}", stdout(&o));
}

#[tokio::test]
async fn application_events_are_bounded_by_age_only_with_keyed_compaction() {
    let root = tempfile::tempdir().unwrap();
    drop(common::store::store(root.path()).await);
    let o = run(root.path(), &["store", "compact", "--keep-events-for", "1h"]);
    assert_eq!(o.status.code(), Some(2), "--keep-events-for needs --keyed");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--keyed"));
    let o = run(root.path(), &["store", "compact", "--keyed", "--keep-events-for", "soon"]);
    assert_eq!(o.status.code(), Some(2), "not a duration");
    let o = run(root.path(), &["store", "compact", "--keyed", "--keep-events-for", "30days", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A store with one record, made through the command line; its log directory.
fn one_record(root: &std::path::Path) -> std::path::PathBuf {
    init(root);
    let o = run(root, &["log", "append", "--kind", "100", "--data", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    root.join(".maos/coordination/log")
}

#[test]
fn a_corrupt_lock_file_is_corruption_exit_3() {
    let root = tempfile::tempdir().unwrap();
    let lock = one_record(root.path()).join("log.lock");
    std::fs::write(&lock, b"not a lock file").unwrap();
    let o = run(root.path(), &["log", "status"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&lock.display().to_string()) && err.contains("length 15"), "{err}");
}

#[test]
fn an_insecure_store_is_refused_with_exit_1_naming_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let log = one_record(root.path());
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(mode | 0o002)).unwrap();
    let o = run(root.path(), &["log", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{} may be written by any user (mode 07", log.display())), "{err}");
}

#[test]
fn with_json_an_error_is_one_json_line_on_stderr_naming_its_kind() {
    let root = tempfile::tempdir().unwrap();
    let lock = one_record(root.path()).join("log.lock");
    // An LSN past the end is not found: exit code 5.
    let o = run(root.path(), &["log", "dump", "--from", "5", "--json"]);
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "not_found", "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("LSN 5 is not in the log"), "{err}");
    assert!(o.stdout.is_empty());
    std::fs::write(&lock, b"not a lock file").unwrap();
    let o = run(root.path(), &["log", "status", "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(text.lines().count(), 1, "{text}");
    let err: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["kind"], "corruption", "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("log.lock"), "{err}");
    // Without --json, the same error is a line of text.
    let o = run(root.path(), &["log", "status"]);
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("maos-coord: invalid lock file"));
}

#[test]
fn help_documents_the_exit_codes() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    assert!(o.status.success());
    let help = stdout(&o);
    for line in ["  3  corruption found", "  4  conflict", "  5  nothing to do"] {
        assert!(help.contains(line), "{help}");
    }
}
