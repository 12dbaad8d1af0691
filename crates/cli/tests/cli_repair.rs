//! `maos-coord repair` and `log verify` on a store holding a coordination record that does not
//! decode: verify reports it (exit 3), repair says what it would do and changes nothing, and
//! `repair --apply` records the tombstone, after which verify and the demo's store open again.

use std::process::{Command, Output};

use maos_coord::model::EVENT_RECORD_KIND;
use maos_coord::{Log, RecordKind};

const BIN: &str = env!("CARGO_BIN_EXE_maos-coord");

fn run(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).arg("--root").arg(root).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn repair_reports_then_skips_an_undecodable_record_and_verify_agrees() {
    let root = tempfile::tempdir().unwrap();
    assert!(run(root.path(), &["demo"]).status.success());
    let log_dir = root.path().join(".maos/coordination/log");
    let bad = {
        let raw = Log::options(&log_dir).open().unwrap();
        raw.append(RecordKind::new(EVENT_RECORD_KIND).unwrap(), b"\xc1 junk").unwrap().get()
    };
    let o = run(root.path(), &["log", "verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(&format!("LSN {bad} (")), "{}", text(&o.stderr));

    let before = std::fs::read(log_dir.join("00000000000000000001.seg")).unwrap();
    let o = run(root.path(), &["repair"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("would skip (run with --apply)"), "{}", text(&o.stdout));
    assert_eq!(
        std::fs::read(log_dir.join("00000000000000000001.seg")).unwrap(),
        before,
        "a plan changes nothing"
    );

    let o = run(root.path(), &["repair", "--apply", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!((line["lsn"].as_u64(), line["action"].as_str()), (Some(bad), Some("skipped")));
    let o = run(root.path(), &["log", "verify"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("skipped by a tombstone"), "{}", text(&o.stdout));
    let o = run(root.path(), &["repair"]);
    assert!(text(&o.stdout).contains("already skipped"), "{}", text(&o.stdout));
}
