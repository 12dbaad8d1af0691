//! `maos-coord demo`: runs on one store again and again, each with names of its own, the
//! consumer receiving the version the producer published; labels that count what was created;
//! outputs that exist; a temporary store removed (and said so) or kept with `--keep`, and the
//! commands it prints to look at a kept store, which work.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{text, Store, BIN};

/// The demo without `--root` (nor `MAOS_ROOT`): in a temporary directory of its own.
fn demo_without_root(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("demo")
        .args(args)
        .env_remove("MAOS_ROOT")
        .env_remove("MAOS_AGENT")
        .output()
        .unwrap()
}

/// Runs a command the demo printed (`maos-coord --root DIR ...`, no word quoted) through the
/// binary; its standard output.
fn run_printed(command: &str) -> String {
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("maos-coord"), "{command}");
    let o = Command::new(BIN).args(words).env_remove("MAOS_ROOT").output().unwrap();
    assert!(o.status.success(), "{command}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Each task of a run and the agent that completed it, from the demo's JSON.
fn completed_by(report: &Value) -> Vec<(String, String)> {
    report["pipeline"]["completed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["task"].as_str().unwrap().to_owned(), c["by"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn two_runs_on_one_root_both_succeed_and_the_consumer_gets_the_version_the_producer_published() {
    let s = Store::empty();
    let mut reports = Vec::new();
    for run in 1..=2 {
        let o = s.cmd(None, &["demo", "--json"]).output().unwrap();
        assert!(o.status.success(), "run {run}: {}", text(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(out.lines().count(), 1, "one object: {out}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["run"], run, "{report}");
        let context = &report["context"];
        assert_eq!(context["published"]["version"], run, "each run publishes a new version: {report}");
        assert_eq!(context["received"]["version"], context["published"]["version"], "{report}");
        assert_eq!(context["received"]["owner"], "api-architect");
        assert_eq!(report["pipeline"]["name"], format!("demo-{run}"));
        assert_eq!(report["pipeline"]["status"], "completed");
        assert_eq!(report["kept"], true, "a store under --root stays");
        let n = run.to_string();
        let expected: Vec<(String, String)> = [
            ("architecture", "architect"),
            ("api", "rust-engineer"),
            ("ui", "web-engineer"),
            ("integration-tests", "qa-engineer"),
        ]
        .iter()
        .map(|(t, by)| (format!("demo-{n}-{t}"), (*by).to_owned()))
        .collect();
        let mut done = completed_by(&report);
        done.sort_by_key(|(task, _)| expected.iter().position(|(t, _)| t == task));
        assert_eq!(done, expected, "each task by the one worker with its capability, in this run");
        let (first, last) =
            (report["records"]["first"].as_u64().unwrap(), report["records"]["last"].as_u64().unwrap());
        assert!(first <= last && report["records"]["store"].as_u64() == Some(last), "{report}");
        reports.push(report);
    }
    assert_eq!(
        reports[1]["records"]["first"].as_u64(),
        reports[0]["records"]["last"].as_u64().map(|l| l + 1),
        "the second run appends after the first"
    );
    // The outputs are context values the workers set, readable by any agent.
    s.register("reader", &[]);
    for report in &reports {
        for output in report["pipeline"]["outputs"].as_array().unwrap() {
            let entry = s.json("reader", &["ctx", "get", output.as_str().unwrap()]);
            assert!(entry["value"]["result"].as_str().unwrap().ends_with(" done"), "{entry}");
        }
    }
}

#[test]
fn the_demo_says_what_runs_and_ends_with_commands_that_look_at_the_store() {
    let s = Store::empty();
    let o = s.cmd(None, &["demo"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let store = s.root().join(".maos/coordination");
    for expected in [
        format!("store: {}", store.display()),
        "run 1 of the demo on this store".to_owned(),
        "  api-architect: published api-spec version 1".to_owned(),
        "  backend-engineer: received api-spec version 1 from api-architect".to_owned(),
        "2. 3 builder processes meet at the barrier demo-1-builds".to_owned(),
        "3. pipeline demo-1: 3 stages, 4 tasks, each stage waiting for the one before; 4 worker processes".to_owned(),
        "  stage implement  demo-1-api (needs rust), demo-1-ui (needs web)".to_owned(),
        "  qa-engineer: completed demo-1-integration-tests, its result in context key demo-1/integration-tests"
            .to_owned(),
        "10 processes appended records 1 to ".to_owned(),
        format!("The store stays in {}. Look at it", store.display()),
    ] {
        assert!(out.contains(&expected), "{expected:?} in\n{out}");
    }
    assert!(!out.contains("qa-engineer: completed demo-1-ui"), "{out}");
    let commands: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("maos-coord "))
        .map(|l| l.split("  ").next().unwrap())
        .collect();
    let root = s.root().display().to_string();
    assert_eq!(
        commands,
        [
            format!("--root {root} audit"),
            format!("--root {root} timeline demo-1-integration-tests"),
            format!("--root {root} graph --task demo-1-integration-tests"),
            format!("--root {root} top --once"),
        ]
    );
    // Every command the demo suggests runs.
    let audit = run_printed(&format!("maos-coord {}", commands[0]));
    assert!(audit.contains("task_completed"), "{audit}");
    let timeline = run_printed(&format!("maos-coord {}", commands[1]));
    assert!(timeline.contains("completed"), "{timeline}");
    let graph = run_printed(&format!("maos-coord {}", commands[2]));
    assert!(graph.contains(r#""demo-1-api" -> "demo-1-integration-tests""#), "{graph}");
    assert_eq!(graph.matches("\\ncompleted\"").count(), 4, "{graph}");
    let top = run_printed(&format!("maos-coord {}", commands[3]));
    assert!(top.contains("│qa-engineer ") && top.contains("│demo-1-ui "), "{top}");
}

#[test]
fn without_root_the_demo_removes_its_store_and_says_so() {
    let o = demo_without_root(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let line =
        out.lines().find(|l| l.starts_with("The store was in a temporary directory, now removed: ")).unwrap();
    let dir = line
        .trim_start_matches("The store was in a temporary directory, now removed: ")
        .split(". ")
        .next()
        .unwrap();
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with("(in a temporary directory, removed at the end; --keep keeps it)"),
        "{out}"
    );
    assert!(!Path::new(dir).exists(), "{dir} is gone");
    assert!(!out.contains("Look at it"), "no commands for a store that is gone:\n{out}");
}

#[test]
fn with_keep_the_temporary_store_stays_and_the_commands_it_prints_work() {
    let o = demo_without_root(&["--keep", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let store = Path::new(report["store"].as_str().unwrap()).to_owned();
    let root = store.parent().and_then(Path::parent).unwrap().to_owned();
    let _kept = RemovedAtEnd(root.clone());
    assert_eq!(report["kept"], true);
    assert!(store.join("log").is_dir(), "{report}");
    let next: Vec<&str> = report["next"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(next.len(), 4, "{report}");
    for (command, word) in next.iter().zip(["audit", "timeline", "graph", "top --once"]) {
        assert!(command.starts_with(&format!("maos-coord --root {} {word}", root.display())), "{command}");
    }
    let graph: Value = serde_json::from_str(&run_printed(&format!("{} --json", next[2]))).unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 4, "{graph}");
    let top: Value = serde_json::from_str(&run_printed(&format!("{} --json", next[3]))).unwrap();
    assert_eq!(top["task_counts"]["completed"], 4, "{top}");
}

/// A directory the demo kept, removed when the test ends (passed or not).
struct RemovedAtEnd(std::path::PathBuf);

impl Drop for RemovedAtEnd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_root_that_is_a_file_is_refused_naming_it() {
    let s = Store::empty();
    let file = s.root().join("a-file");
    std::fs::write(&file, "not a project").unwrap();
    let o = Command::new(BIN).args(["demo", "--root"]).arg(&file).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        format!("maos-coord: --root {} is not a directory", file.display())
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a project");
}
