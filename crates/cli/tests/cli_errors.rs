//! What every command does with a command line or a store it cannot use: an unknown command
//! (exit code 2), no store at --root (exit code 1, "run `maos-coord init`", and nothing
//! created), a --root that is a file (exit code 1), a damaged store (exit code 3).

mod support;

use std::process::Command;

use support::{text, Store, BIN};

/// One command of each kind that needs a store, as an agent would give it.
const NEED_A_STORE: &[&[&str]] = &[
    &["agent", "register", "a", "--role", "r"],
    &["agent", "heartbeat"],
    &["agent", "stop"],
    &["agent", "list"],
    &["agent", "show", "a"],
    &["task", "create", "t"],
    &["task", "claim", "--wait", "1s"],
    &["task", "complete", "t"],
    &["task", "fail", "t", "--reason", "r"],
    &["task", "release", "t"],
    &["task", "cancel", "t", "--reason", "r"],
    &["task", "show", "t"],
    &["task", "list"],
    &["task", "why", "t"],
    &["ctx", "set", "k", "1"],
    &["ctx", "get", "k"],
    &["ctx", "delete", "k"],
    &["ctx", "list"],
    &["ctx", "watch", "k"],
    &["event", "emit", "t", "1"],
    &["events", "tail", "--follow"],
    &["dep", "add", "p", "c"],
    &["dep", "ready", "p->c"],
    &["dep", "chain", "t"],
    &["barrier", "create", "b", "--participant", "a"],
    &["barrier", "signal", "b"],
    &["barrier", "wait", "b"],
    &["lock", "acquire", "l"],
    &["lock", "release", "l"],
    &["pipeline", "create", "p", "--stage", "s=t"],
    &["pipeline", "status", "p"],
    &["log", "status"],
    &["log", "verify"],
    &["log", "dump"],
    &["log", "append", "--kind", "100", "--data", "1"],
    &["store", "snapshot"],
    &["store", "compact"],
    &["repair"],
];

#[test]
fn without_a_store_every_command_but_init_says_so_and_creates_nothing() {
    let s = Store::empty();
    let store = s.root().join(".maos/coordination");
    for args in NEED_A_STORE {
        let o = s.cmd(Some("a"), args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.trim(),
            format!("maos-coord: no store at {} (run `maos-coord init`)", store.display()),
            "{args:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}");
        assert_eq!(std::fs::read_dir(s.root()).unwrap().count(), 0, "{args:?} created something");
    }
    let o = s.cmd(Some("a"), &["--json", "task", "list"]).output().unwrap();
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "invalid", "{err}");
    // init creates it, and then the commands work.
    let o = s.cmd(None, &["init"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    s.register("a", &[]);
    assert!(s.json("a", &["task", "list"])["tasks"].as_array().unwrap().is_empty());
}

#[test]
fn a_root_that_is_a_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    for args in [&["task", "list"][..], &["agent", "register", "a", "--role", "r"], &["log", "status"]] {
        let o =
            Command::new(BIN).args(args).arg("--root").arg(&file).env_remove("MAOS_ROOT").output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.trim(),
            format!("maos-coord: --root {} is not a directory", file.display()),
            "{args:?}"
        );
    }
    let o = Command::new(BIN).args(["init", "--root"]).arg(&file).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&file.display().to_string()), "{}", text(&o));
}

#[test]
fn an_unknown_command_or_flag_is_a_usage_error() {
    let s = Store::new();
    for args in [&["frobnicate"][..], &["task", "frobnicate"], &["task", "list", "--frobnicate"], &["task"]] {
        let o = s.cmd(Some("a"), args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_damaged_store_is_corruption_exit_3_naming_the_segment_and_offset() {
    use std::os::unix::fs::FileExt;
    let s = Store::new();
    s.register("a", &[]);
    s.task("a", &["t"]);
    // A byte of the first record's payload, below the durable watermark (every command syncs).
    let segment = s.root().join(".maos/coordination/log/00000000000000000001.seg");
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&segment).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, 64 + 40 + 8).unwrap();
    file.write_all_at(&[byte[0] ^ 0xFF], 64 + 40 + 8).unwrap();
    for args in [&["task", "list"][..], &["agent", "heartbeat"]] {
        let err = s.fails("a", args, 3);
        assert!(
            err.contains(&segment.display().to_string()) && err.contains("byte offset 64"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(s.fails_json("a", &["task", "list"], 3)["error"]["kind"], "corruption");
}
