//! The command line around recovery: read-only commands never change, create or need write
//! access to the store; damage to acknowledged records is corruption (exit code 3), never cut;
//! torn tails are cut only by `log repair --apply`, which says what it cuts and journals it.

use maos_coord_test_support as common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use maos_coord::{Durability, Log, RecordKind};

const BIN: &str = env!("CARGO_BIN_EXE_maos-coord");

fn run_as(prefix: &[&str], bin: &str, root: &Path, args: &[&str]) -> Output {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args).arg("--root").arg(root).output().unwrap()
}

fn run(root: &Path, args: &[&str]) -> Output {
    run_as(&[], BIN, root, args)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn log_dir(root: &Path) -> PathBuf {
    root.join(".maos/coordination/log")
}

/// Every file of the store's log directory and its bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(log_dir(root))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// A store of `n` records appended with `Sync` (acknowledged as durable); returns the segment.
fn synced_store(root: &Path, n: u64) -> PathBuf {
    let log = Log::options(log_dir(root)).durability(Durability::Sync).open().unwrap();
    for i in 1..=n {
        log.append(RecordKind::new(17).unwrap(), &rmp_serde::to_vec(&i).unwrap()).unwrap();
    }
    common::segment_files(&log_dir(root)).pop().unwrap()
}

/// Offset just past the last record of a segment, and the offset of that record's frame.
fn last_frame(seg: &Path) -> (u64, u64) {
    let bytes = std::fs::read(seg).unwrap();
    let (mut at, mut last) = (64usize, 64usize);
    while bytes[at..at + 32].iter().any(|&b| b != 0) {
        last = at;
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += (32 + len).next_multiple_of(8);
    }
    (at as u64, last as u64)
}

#[test]
fn a_flipped_byte_in_the_last_acknowledged_record_is_corruption_and_verify_exits_3() {
    for cold in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let seg = synced_store(root.path(), 2001);
        let (_, last) = last_frame(&seg);
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
        file.write_all_at(&[0x5A], last + 33).unwrap();
        if cold {
            std::fs::remove_file(log_dir(root.path()).join("log.lock")).unwrap();
            // as after a reboot
        }
        let before = snapshot(root.path());
        let o = run(root.path(), &["log", "verify"]);
        assert_eq!(o.status.code(), Some(3), "cold {cold}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        let name = seg.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            err.contains(&name) && err.contains(&format!("byte offset {last}")) && err.contains("LSN 2001"),
            "cold {cold}: {err}"
        );
        let o = run(root.path(), &["log", "repair", "--apply"]);
        assert_eq!(o.status.code(), Some(3), "repair never cuts acknowledged records: {}", text(&o));
        assert_eq!(snapshot(root.path()), before, "cold {cold}: the store was modified");
    }
}

#[test]
fn verify_never_modifies_the_store() {
    let root = tempfile::tempdir().unwrap();
    let seg = synced_store(root.path(), 20);
    let (end, _) = last_frame(&seg);
    // Bytes of a write that was never acknowledged: a torn tail.
    std::fs::OpenOptions::new().write(true).open(&seg).unwrap().write_all_at(b"half a frame", end).unwrap();
    std::fs::remove_file(log_dir(root.path()).join("log.lock")).unwrap();
    let before = snapshot(root.path());
    let o = run(root.path(), &["log", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("ok: 20 records") && text(&o).contains("would cut 12 torn bytes"),
        "{}",
        text(&o)
    );
    for args in [&["log", "status"][..], &["log", "dump"], &["log", "status", "--json"], &["log", "repair"]] {
        let o = run(root.path(), args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
    assert_eq!(snapshot(root.path()), before, "a read-only command modified the store");

    let o = run(root.path(), &["log", "repair", "--apply"]);
    assert!(
        o.status.success() && text(&o).contains(&format!("cut 12 torn bytes at offset {end}")),
        "{}",
        text(&o)
    );
    let o = run(root.path(), &["log", "status"]);
    let status = text(&o);
    assert!(
        status.contains("nothing to repair") && status.contains(&format!("cut 12 bytes at offset {end}")),
        "{status}"
    );
    let o = run(root.path(), &["log", "verify", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["recovery_journal"][0]["first_lsn"], 21, "{v}");
    assert_eq!(v["records"], 20);
}

#[test]
fn read_only_commands_do_not_create_a_store() {
    let parent = tempfile::tempdir().unwrap();
    let mistyped = parent.path().join("mistyped");
    for args in [&["log", "status"][..], &["log", "verify"], &["log", "dump"], &["log", "repair"]] {
        let o = run(&mistyped, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("no store at"), "{args:?}: {}", text(&o));
        assert!(!mistyped.exists(), "{args:?} created {}", mistyped.display());
    }
}

/// How to run a process that file modes stop: as another uid when this one is root (CI is),
/// otherwise as ourselves. `None` if that cannot be arranged.
fn unprivileged() -> Option<Vec<&'static str>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some(Vec::new());
    }
    let has = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if has("setpriv") {
        return Some(vec!["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    None
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_reader_without_write_access_can_verify_and_dump() {
    let Some(prefix) = unprivileged() else {
        eprintln!("skipped: running as root without setpriv, so file modes cannot be tested");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    synced_store(root.path(), 30);
    // The binary where the other user can run it; the store readable but not writable.
    let bin = root.path().join("maos-coord");
    std::fs::copy(BIN, &bin).unwrap();
    chmod(&bin, 0o755);
    let store = root.path().join("project");
    std::fs::create_dir(&store).unwrap();
    std::fs::rename(root.path().join(".maos"), store.join(".maos")).unwrap();
    let log = log_dir(&store);
    for entry in std::fs::read_dir(&log).unwrap() {
        chmod(&entry.unwrap().path(), 0o444);
    }
    for dir in [log.clone(), log.parent().unwrap().to_owned(), store.join(".maos"), store.clone()] {
        chmod(&dir, 0o555);
    }
    chmod(root.path(), 0o755);
    let bin = bin.to_str().unwrap();

    let o = run_as(&prefix, bin, &store, &["log", "append", "--kind", "17", "--data", "1"]);
    assert_eq!(o.status.code(), Some(1), "writing must be refused: {}", text(&o));
    for lock_mode in [0o444, 0o000] {
        chmod(&log.join("log.lock"), lock_mode);
        let o = run_as(&prefix, bin, &store, &["log", "verify"]);
        assert!(
            o.status.success() && text(&o).contains("ok: 30 records"),
            "lock {lock_mode:o}: {}",
            text(&o)
        );
        let o = run_as(&prefix, bin, &store, &["log", "dump", "--json"]);
        assert!(o.status.success(), "lock {lock_mode:o}: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 30);
        let o = run_as(&prefix, bin, &store, &["log", "status"]);
        assert!(o.status.success(), "lock {lock_mode:o}: {}", text(&o));
    }
    for dir in [store.clone(), store.join(".maos"), log.parent().unwrap().to_owned(), log.clone()] {
        chmod(&dir, 0o755); // let the temporary directory be removed
    }
}

#[test]
fn status_reports_failed_syncs_not_repaired_yet_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    synced_store(root.path(), 3);
    // Two failed segment syncs of this boot, none repaired (log-format.md, "Lock file": the
    // counters at bytes 88 and 96).
    let lock = std::fs::OpenOptions::new().write(true).open(log_dir(root.path()).join("log.lock")).unwrap();
    lock.write_all_at(&2u64.to_le_bytes(), 88).unwrap();
    drop(lock);
    let before = snapshot(root.path());
    let out = run(root.path(), &["log", "status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["unrepaired_sync_failures"], 2, "{status}");
    let out = run(root.path(), &["log", "status"]);
    assert!(text(&out).contains("2 failed segment sync(s) not repaired yet"), "{}", text(&out));
    assert_eq!(snapshot(root.path()), before, "status changes nothing");
    // The next writable open repairs; then nothing is pending.
    drop(Log::options(log_dir(root.path())).open().unwrap());
    let out = run(root.path(), &["log", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["unrepaired_sync_failures"], 0, "{status}");
}

#[test]
fn status_of_an_empty_log_says_it_holds_no_records() {
    let root = tempfile::tempdir().unwrap();
    drop(Log::options(log_dir(root.path())).open().unwrap());
    let out = run(root.path(), &["log", "status"]);
    assert!(text(&out).contains("records     none (the next gets LSN 1)"), "{}", text(&out));
}

#[test]
fn a_command_whose_open_cuts_a_torn_tail_says_so_on_stderr() {
    let root = tempfile::tempdir().unwrap();
    assert!(run(root.path(), &["init"]).status.success());
    let seg = synced_store(root.path(), 5);
    let (end, _) = last_frame(&seg);
    std::fs::OpenOptions::new().write(true).open(&seg).unwrap().write_all_at(b"half a frame", end).unwrap();
    std::fs::remove_file(log_dir(root.path()).join("log.lock")).unwrap();
    let o = run(root.path(), &["task", "list"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stderr.contains(&format!("opening cut a torn tail: 12 bytes at offset {end}")), "{stderr}");
    let o = run(root.path(), &["task", "list"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("torn"), "said once, by the open that cut it");
}
