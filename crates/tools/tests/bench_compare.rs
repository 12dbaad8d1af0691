//! `maos-bench-compare` at a tiny scale, every system: every check passes (each task claimed
//! and completed exactly once, by worker processes and by concurrent workers in one process;
//! context values, dependencies, event order), every phase is in
//! the table and in the raw results with the operations the workload asks for. Nothing here
//! depends on how fast anything ran.

use std::process::Command;

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_maos-bench-compare");

const SYSTEMS: [&str; 6] =
    ["maos-buffered", "maos-sync", "sqlite-normal", "sqlite-full", "json-buffered", "json-durable"];

const PHASES: [(&str, &str); 10] = [
    ("register", "register agents"),
    ("create", "create tasks"),
    ("claim_complete", "claim + complete (8 processes"),
    ("claim_complete_in_process", "claim + complete in one process"),
    ("context_set", "context set"),
    ("context_get", "context get"),
    ("dep_add", "add dependencies"),
    ("dep_ready", "mark dependencies ready"),
    ("event_emit", "emit events"),
    ("event_read", "read events back"),
];

#[test]
fn a_tiny_run_of_every_system_passes_its_checks_and_reports_every_phase() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.jsonl");
    let output = Command::new(BENCH)
        .args(["--scale", "0.002", "--rounds", "1", "--fsync-ops", "20", "--dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(&raw)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    // The table: a row per phase with a figure for every system, and the checks passed.
    let header = stdout.lines().find(|l| l.starts_with("| phase")).unwrap();
    for system in SYSTEMS {
        assert!(header.contains(system), "{header}");
    }
    for (_, label) in PHASES {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {label}")))
            .unwrap_or_else(|| panic!("{stdout}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells.len(), 2 + SYSTEMS.len(), "{row}");
        assert!(cells[2..].iter().all(|c| c.chars().next().is_some_and(|d| d.is_ascii_digit())), "{row}");
    }
    let checks = stdout.lines().find(|l| l.starts_with("| checks")).unwrap();
    assert_eq!(checks.matches("passed").count(), SYSTEMS.len(), "{checks}");
    assert!(stdout.contains("Sync / SQLite FULL"), "{stdout}");
    assert!(stdout.contains("overwriting written blocks"), "{stdout}");
    assert!(stdout.contains("claim + complete: one operation per unit of work on every system"), "{stdout}");

    // The raw results: one round per system with every phase at the scale asked for, each
    // check passed, the exactly-once one among them.
    let lines: Vec<Value> =
        std::fs::read_to_string(&raw).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["kind"], "run");
    assert_eq!(lines.iter().filter(|l| l["kind"] == "fdatasync").count(), 1);
    let rounds: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "round").collect();
    assert_eq!(rounds.len(), SYSTEMS.len());
    for system in SYSTEMS {
        let round = rounds.iter().find(|r| r["system"] == system).unwrap();
        let json = system.starts_with("json");
        // 200 tasks at scale 0.002; the JSON files run a tenth of it.
        let tasks = if json { 20 } else { 200 };
        let phase =
            |name: &str| round["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned();
        for (name, _) in PHASES {
            assert!(phase(name).is_some(), "{system}: no {name}");
        }
        assert_eq!(phase("create").unwrap()["ops"], tasks, "{system}");
        assert_eq!(phase("claim_complete").unwrap()["ops"], tasks, "{system}");
        assert_eq!(phase("claim_complete_in_process").unwrap()["ops"], tasks, "{system}");
        assert_eq!(phase("event_read").unwrap()["ops"], 4 * tasks, "{system}");
        let checks = round["checks"].as_array().unwrap();
        let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
        for name in [
            "exactly_once",
            "exactly_once_in_process",
            "context_values",
            "dependencies_ready",
            "events_in_order",
        ] {
            assert!(names.contains(&name), "{system}: {names:?}");
        }
        assert!(checks.iter().all(|c| c["passed"] == true), "{system}: {checks:?}");
        assert!(round["disk"]["allocated"].as_u64().unwrap() > 0, "{system}");
        assert_eq!(round["disk_compacted"].is_null(), json, "{system}");
        assert!(round["peak_rss_kib"].as_i64().unwrap() > 0, "{system}");
    }
    // The stores are removed after the run; only the raw results stay.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("raw.jsonl")]);
}

/// The exactly-once check fails when a task is reported twice, another never, and none was
/// completed in the store.
#[test]
fn the_exactly_once_check_fails_on_a_task_reported_twice_and_tasks_never_completed() {
    let dir = tempfile::tempdir().unwrap();
    let (root, claims) = (dir.path().join("store"), dir.path().join("claims"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&claims).unwrap();
    let step = |name: &str, extra: &[&str]| {
        let output = Command::new(BENCH)
            .args(["step", "--system", "sqlite-normal", "--scale", "0.00002", "--seed", "7", "--step", name])
            .arg("--root")
            .arg(&root)
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str::<Value>(stdout.lines().last().unwrap()).unwrap()
    };
    // Two tasks at this scale: task-0000000 and task-0000001.
    let setup = step("setup", &[]);
    assert_eq!(setup["phases"][1]["ops"], 2);
    std::fs::write(claims.join("worker-0.txt"), "task-0000000\ntask-0000000\n").unwrap();
    let verify = step("verify", &["--claims", claims.to_str().unwrap()]);
    let check = &verify["checks"][0];
    assert_eq!(check["name"], "exactly_once");
    assert_eq!(check["passed"], false, "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.contains("1 never reported"), "{detail}");
    assert!(detail.contains("1 reported more than once"), "{detail}");
    assert!(detail.contains("2 not completed"), "{detail}");
}
