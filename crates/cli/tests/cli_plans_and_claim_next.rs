//! `maos-coord task complete --claim-next` (the completion and the next claim in one command)
//! and `maos-coord task create-plan` (many tasks and their dependencies in one atomic command),
//! in both output modes and with the exit codes they document.

mod support;

use serde_json::json;
use support::{text, with_stdin, Store};

#[test]
fn complete_with_claim_next_completes_and_claims_in_one_command() {
    let s = Store::new();
    s.register("w", &["rust"]);
    let first = s.task("w", &["first", "--priority", "high"]);
    let next = s.task("w", &["next", "--depends-on", &first]);
    let py = s.task("w", &["py", "--requires", "python"]);
    let claimed = s.ok("w", &["task", "claim"]);
    assert!(claimed.starts_with(&format!("{first}\tfirst\tlease until ")), "{claimed}");

    let before = s.next_lsn();
    let out = s.ok("w", &["task", "complete", &first, "--claim-next", "--output", "a.txt"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("completed {first}: it is completed"), "{out}");
    assert!(lines[1].starts_with(&format!("{next}\tnext\tlease until ")), "{out}");
    assert_eq!(s.next_lsn(), before + 2, "the completion and the claim, one command");
    assert_eq!(s.json("w", &["task", "show", &first])["outputs"], json!(["a.txt"]));

    // --json, with capabilities given for the claim.
    let both = s.json("w", &["task", "complete", &next, "--claim-next", "--capability", "python"]);
    assert_eq!(
        (both["completed"]["id"].as_str(), both["completed"]["status"].as_str()),
        (Some(&*next), Some("completed"))
    );
    assert_eq!(
        (both["next"]["id"].as_str(), both["next"]["status"].as_str()),
        (Some(&*py), Some("in_progress"))
    );

    // Nothing left to claim: the completion is recorded, exit code 5.
    let o = s.run("w", &["task", "complete", &py, "--claim-next"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("completed {py}: it is completed\n"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no task w can claim now"), "{}", text(&o));
    assert_eq!(s.json("w", &["task", "show", &py])["status"], "completed");
    let o = s.cmd(Some("w"), &["task", "complete", &py, "--claim-next", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "completed already: {}", text(&o));

    // A refused completion claims nothing and exits by its error; --capability needs --claim-next.
    s.task("w", &["spare"]);
    let before = s.next_lsn();
    let err = s.fails_json("w", &["task", "complete", "nope", "--claim-next"], 5);
    assert_eq!(err["error"]["kind"], "not_found");
    s.fails("w", &["task", "complete", &first, "--claim-next"], 4);
    assert_eq!(s.next_lsn(), before, "nothing appended");
    assert!(s.usage("w", &["task", "complete", &first, "--capability", "rust"]).contains("--claim-next"));
}

#[test]
fn a_plan_is_created_at_once_from_a_file_or_standard_input() {
    let s = Store::new();
    s.register("lead", &[]);
    let spec = s.task("lead", &["spec", "--id", "spec"]);
    let plan = json!({"tasks": [
        {"id": "test", "name": "Test", "depends_on": ["build"], "requires": ["rust"]},
        {"id": "build", "name": "Build", "depends_on": ["design"], "priority": "high", "metadata": {"k": 1}},
        {"id": "design", "name": "Design", "depends_on": [spec], "description": "draw it", "max_attempts": 2},
    ]});
    let file = s.root().join("plan.json");
    std::fs::write(&file, plan.to_string()).unwrap();
    let before = s.next_lsn();
    let out = s.ok("lead", &["task", "create-plan", file.to_str().unwrap()]);
    assert_eq!(out, "test\nbuild\ndesign\n");
    assert_eq!(s.next_lsn(), before + 6, "three tasks, three dependencies");
    let build = s.json("lead", &["task", "show", "build"]);
    assert_eq!((build["priority"].as_str(), build["metadata"].clone()), (Some("high"), json!({"k": 1})));
    let why = s.ok("lead", &["task", "why", "test"]);
    assert!(why.contains("test waits on build"), "{why}");

    // The same plan again, from standard input: nothing appended, the tasks as they are.
    let o = with_stdin(s.cmd(Some("lead"), &["task", "create-plan", "-", "--json"]), &plan.to_string());
    assert!(o.status.success(), "{}", text(&o));
    let tasks: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> =
        tasks["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["test", "build", "design"]);
    assert_eq!(s.next_lsn(), before + 6);

    // Refused plans append nothing: a cycle, an unknown task, another definition, a bad document.
    let cases = [
        (
            json!({"tasks": [{"id": "x", "name": "x", "depends_on": ["y"]}, {"id": "y", "name": "y", "depends_on": ["x"]}]}),
            1,
            "x waits on y, which waits on x",
        ),
        (
            json!({"tasks": [{"id": "x", "name": "x"}, {"id": "z", "name": "z", "depends_on": ["missing"]}]}),
            5,
            "unknown task missing",
        ),
        (
            json!({"tasks": [{"id": "x", "name": "x"}, {"id": "build", "name": "Other"}]}),
            4,
            "name: \"Build\" exists, \"Other\" asked",
        ),
        (json!({"tasks": [{"id": "x", "name": "x", "dependson": []}]}), 1, "unknown field `dependson`"),
        (json!({"tasks": [{"id": "x", "name": "x"}, {"id": "x", "name": "x"}]}), 1, "given to two tasks"),
    ];
    for (plan, code, expected) in cases {
        std::fs::write(&file, plan.to_string()).unwrap();
        let err = s.fails("lead", &["task", "create-plan", file.to_str().unwrap()], code);
        assert!(err.contains(expected), "{err} (expected {expected})");
    }
    assert_eq!(s.next_lsn(), before + 6);
    s.fails("lead", &["task", "show", "x"], 5);
}
