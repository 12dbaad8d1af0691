//! `maos-coord task ...`: create (ids, idempotency keys, metadata from the line, a file or
//! standard input, dependencies on providers in any state), claim (with and without waiting),
//! complete, fail, release, cancel, show, list, why, in both output modes and with every exit
//! code they document; bad input appends nothing.

mod support;

use serde_json::json;
use support::{text, with_stdin, Store};

#[test]
fn a_task_is_created_shown_and_listed_in_both_output_modes() {
    let s = Store::new();
    s.register("lead", &["rust"]);
    let meta = s.root().join("meta.json");
    std::fs::write(&meta, r#"{"from": "a file"}"#).unwrap();
    let id = s.task(
        "lead",
        &[
            "build",
            "--id",
            "build-1",
            "--description",
            "compile it",
            "--priority",
            "high",
            "--requires",
            "rust",
        ],
    );
    assert_eq!(id, "build-1");
    let t = s.json(
        "lead",
        &["task", "create", "test", "--metadata", &format!("@{}", meta.display()), "--max-attempts", "5"],
    );
    assert_eq!(
        (t["name"].as_str(), t["status"].as_str(), t["reason"].clone()),
        (Some("test"), Some("pending"), json!(null))
    );
    assert_eq!((t["metadata"].clone(), t["max_attempts"].clone()), (json!({"from": "a file"}), json!(5)));
    let o =
        with_stdin(s.cmd(Some("lead"), &["task", "create", "piped", "--metadata", "-", "--json"]), "[1, 2]");
    assert!(o.status.success(), "{}", text(&o));
    let piped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(piped["metadata"], json!([1, 2]));

    let shown = s.json("lead", &["task", "show", "build-1"]);
    assert_eq!(shown["id"], "build-1");
    assert_eq!(shown["priority"], "high");
    assert_eq!(shown["required_capabilities"], json!(["rust"]));
    assert!(shown["created_at"].as_str().unwrap().ends_with('Z'), "{shown}");
    let shown = s.ok("lead", &["task", "show", "build-1"]);
    assert!(
        shown.contains("description:   compile it") && shown.contains("status:        pending"),
        "{shown}"
    );
    let err = s.fails("lead", &["task", "show", "nope"], 5);
    assert_eq!(err.trim(), "maos-coord: unknown task nope");
    assert_eq!(s.fails_json("lead", &["task", "show", "nope"], 5)["error"]["kind"], "not_found");

    let list = s.json("lead", &["task", "list"]);
    let names: Vec<&str> =
        list["tasks"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["build", "test", "piped"], "oldest first");
    let table = s.ok("lead", &["task", "list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
}

#[test]
fn creating_again_is_idempotent_and_another_definition_is_a_conflict() {
    let s = Store::new();
    s.register("lead", &[]);
    let first = s.task("lead", &["deploy", "--idempotency-key", "deploy-42"]);
    let before = s.next_lsn();
    assert_eq!(s.task("lead", &["deploy", "--idempotency-key", "deploy-42"]), first);
    assert_eq!(s.next_lsn(), before, "the same request again appends nothing");
    let err = s.fails(
        "lead",
        &["task", "create", "deploy", "--idempotency-key", "deploy-42", "--priority", "low"],
        4,
    );
    assert!(err.contains(&format!("task {first} exists already with another definition: priority")), "{err}");
    assert_eq!(
        s.fails_json("lead", &["task", "create", "other", "--idempotency-key", "deploy-42"], 4)["error"]
            ["kind"],
        "conflict"
    );
}

#[test]
fn bad_input_is_refused_naming_the_thing_and_appends_nothing() {
    let s = Store::new();
    s.register("lead", &[]);
    let before = s.next_lsn();
    let err = s.fails("lead", &["task", "create", "t", "--metadata", "{not json"], 1);
    assert!(err.contains("--metadata is not JSON: key must be a string at line 1 column 2"), "{err}");
    let err = s.fails("lead", &["task", "create", "t", "--metadata", "@/nonexistent/meta.json"], 1);
    assert!(err.contains("cannot read file /nonexistent/meta.json"), "{err}");
    let err = s.fails("lead", &["task", "create", "t", "--id", "a->b"], 1);
    assert!(err.contains("invalid task id \"a->b\""), "{err}");
    let err = s.fails("lead", &["task", "create", "t", "--max-attempts", "0"], 1);
    assert!(err.contains("max_attempts"), "{err}");
    let err = s.fails("lead", &["task", "create", "t", "--depends-on", "ghost"], 5);
    assert!(err.contains("unknown task ghost"), "{err}");
    let err = s.usage("lead", &["task", "create", "t", "--priority", "urgent"]);
    assert!(err.contains("urgent"), "{err}");
    let err = s.usage("lead", &["task", "list", "--status", "done"]);
    assert!(err.contains("in_progress"), "{err}");
    let err = s.usage("lead", &["task", "claim", "--wait", "soon"]);
    assert!(err.contains("30s"), "{err}");
    assert_eq!(s.next_lsn(), before);
}

#[test]
fn claims_print_the_task_and_its_lease_or_exit_5_when_there_is_none() {
    let s = Store::new();
    s.register("a", &["rust"]);
    s.register("b", &[]);
    let py = s.task("a", &["py", "--requires", "python", "--priority", "critical"]);
    let high = s.task("a", &["high", "--priority", "high", "--requires", "rust"]);
    let low = s.task("a", &["low", "--priority", "low"]);
    // Without --capability: the registered ones (a has rust, not python).
    let line = s.ok("a", &["task", "claim"]);
    let fields: Vec<&str> = line.trim_end().split('\t').collect();
    assert_eq!(fields[..2], [high.as_str(), "high"]);
    assert!(fields[2].starts_with("lease until ") && fields[2].ends_with('Z'), "{line}");
    let v = s.json("a", &["task", "claim", "--capability", "python"]);
    assert_eq!(
        (v["id"].as_str(), v["status"].as_str(), v["assigned_to"].as_str()),
        (Some(py.as_str()), Some("in_progress"), Some("a"))
    );
    assert!(v["lease_until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s.json("b", &["task", "claim"])["id"], low.as_str());
    let before = s.next_lsn();
    let err = s.fails("b", &["task", "claim"], 5);
    assert!(err.contains("no task b can claim now"), "{err}");
    assert_eq!(s.fails_json("b", &["task", "claim"], 5)["error"]["kind"], "not_found");
    // A wait that times out: exit code 5 too.
    let err = s.fails_json("b", &["task", "claim", "--wait", "1s"], 5);
    assert_eq!(err["error"]["kind"], "timeout", "{err}");
    assert_eq!(s.next_lsn(), before, "claiming nothing appends nothing");
    // Held by another agent: a conflict.
    let err = s.fails("b", &["task", "complete", &high], 4);
    assert!(err.contains(&format!("agent b does not hold task {high} (held by a)")), "{err}");
}

#[test]
fn a_claim_that_waits_gets_the_task_another_process_creates() {
    let s = Store::new();
    s.register("waiter", &[]);
    s.register("lead", &[]);
    let mut waiting = s.spawn("waiter", &["task", "claim", "--wait", "10m", "--json"]);
    let id = s.task("lead", &["late"]);
    let claimed = waiting.json();
    assert_eq!(
        (claimed["id"].as_str(), claimed["assigned_to"].as_str()),
        (Some(id.as_str()), Some("waiter"))
    );
    assert_eq!(waiting.finish().0, Some(0));
}

#[test]
fn complete_fail_release_and_cancel_move_the_task_in_both_output_modes() {
    let s = Store::new();
    s.register("w", &[]);
    let t = s.task("w", &["flaky", "--max-attempts", "2"]);
    s.ok("w", &["task", "claim"]);
    assert_eq!(s.ok("w", &["task", "release", &t]).trim(), format!("released {t}: it is pending"));
    s.ok("w", &["task", "claim"]);
    let v = s.json("w", &["task", "release", &t]);
    assert_eq!(
        (v["status"].as_str(), v["attempts"].as_u64(), v["failures"].as_u64()),
        (Some("pending"), Some(2), Some(0))
    );
    s.ok("w", &["task", "claim"]);
    let v = s.json("w", &["task", "fail", &t, "--reason", "flaked"]);
    assert_eq!((v["status"].as_str(), v["failures"].as_u64()), (Some("pending"), Some(1)));
    s.ok("w", &["task", "claim"]);
    let out = s.ok("w", &["task", "fail", &t, "--reason", "flaked again"]);
    assert_eq!(out.trim(), format!("failed this attempt of {t}: it is failed (attempts exhausted)"));
    let v = s.json("w", &["task", "show", &t]);
    assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("failed"), Some("attempts exhausted")));

    let done = s.task("w", &["done"]);
    s.ok("w", &["task", "claim"]);
    let v = s.json("w", &["task", "complete", &done, "--output", "a.txt", "--output", "b.txt"]);
    assert_eq!((v["status"].as_str(), v["outputs"].clone()), (Some("completed"), json!(["a.txt", "b.txt"])));
    let err = s.fails("w", &["task", "complete", &done], 4);
    assert!(err.contains("is completed: it cannot become"), "{err}");
    s.fails("w", &["task", "release", "nope"], 5);

    let root = s.task("w", &["root"]);
    let mid = s.task("w", &["mid", "--depends-on", &root]);
    let leaf = s.task("w", &["leaf", "--depends-on", &mid]);
    let other = s.task("w", &["other", "--depends-on", &root]);
    let v = s.json("w", &["task", "cancel", &root, "--reason", "scrapped", "--cascade"]);
    assert_eq!(v["cancelled"], json!([root, mid, other, leaf]));
    let lone = s.task("w", &["lone"]);
    assert_eq!(s.ok("w", &["task", "cancel", &lone, "--reason", "no"]).trim(), format!("cancelled {lone}"));
    let v = s.json("w", &["task", "show", &lone]);
    assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("cancelled"), Some("no")));
    let err = s.fails("w", &["task", "cancel", &lone, "--reason", "again"], 4);
    assert!(err.contains("is cancelled: it cannot become"), "{err}");
    assert!(s.usage("w", &["task", "cancel", &lone]).contains("--reason"));
}

#[test]
fn lists_filter_by_status_and_holder_and_why_names_the_unmet_dependencies() {
    let s = Store::new();
    s.register("a", &[]);
    s.register("b", &[]);
    let design = s.task("a", &["design"]);
    let build = s.task("a", &["build", "--depends-on", &design]);
    let ids = |agent: &str, args: &[&str]| -> Vec<String> {
        let mut all = vec!["task", "list"];
        all.extend(args);
        let v = s.json(agent, &all);
        v["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
    };
    let why = s.json("a", &["task", "why", &build]);
    assert_eq!(
        (why["ready"].as_bool(), why["unmet"][0]["provider"].as_str()),
        (Some(false), Some(design.as_str()))
    );
    assert_eq!(why["unmet"][0]["status"], "pending");
    let text = s.ok("a", &["task", "why", &build]);
    assert_eq!(text.trim(), format!("{build} waits on {design} (completion pending)"));
    s.ok("b", &["task", "claim"]);
    assert_eq!(s.json("a", &["task", "why", &build])["unmet"][0]["status"], "in_progress");
    assert_eq!(ids("a", &["--status", "in_progress"]), [design.as_str()]);
    assert_eq!(ids("a", &["--assigned-to", "b"]), [design.as_str()]);
    assert!(ids("a", &["--assigned-to", "a"]).is_empty());
    s.ok("b", &["task", "complete", &design]);
    let why = s.json("a", &["task", "why", &build]);
    assert_eq!((why["ready"].as_bool(), why["unmet"].clone()), (Some(true), json!([])));
    assert!(s.ok("a", &["task", "why", &build]).contains("waits on nothing"));
    assert_eq!(ids("a", &["--status", "completed", "--assigned-to", "b"]), [design.as_str()]);
    assert_eq!(ids("a", &["--status", "pending"]), [build.as_str()]);
    let table = s.ok("a", &["task", "list", "--status", "completed"]);
    assert!(table.lines().nth(1).unwrap().contains("completed  normal    b"), "{table}");
    s.fails("a", &["task", "why", "ghost"], 5);
}

#[test]
fn a_task_created_on_a_cancelled_provider_is_blocked_and_says_why() {
    let s = Store::new();
    s.register("a", &[]);
    let gone = s.task("a", &["gone"]);
    s.ok("a", &["task", "cancel", &gone, "--reason", "not needed"]);
    let v = s.json("a", &["task", "create", "after", "--depends-on", &gone]);
    assert_eq!(v["status"], "blocked");
    assert_eq!(v["reason"], format!("provider task {gone} was cancelled: not needed"));
    s.fails("a", &["task", "claim"], 5);
}
