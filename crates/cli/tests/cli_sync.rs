//! `maos-coord dep ...`, `barrier ...`, `lock ...` and `pipeline ...` in both output modes:
//! dependencies and their chains, barriers another process waits on, locks with rising fencing
//! tokens that another process waits for, pipelines of stages; and their exit codes.

mod support;

use serde_json::json;
use support::Store;

#[test]
fn dependencies_are_added_marked_ready_and_chained() {
    let s = Store::new();
    s.register("a", &[]);
    let (x, y, z) = (s.task("a", &["x"]), s.task("a", &["y"]), s.task("a", &["z"]));
    let xy = s.ok("a", &["dep", "add", &x, &y]).trim().to_owned();
    assert_eq!(xy, format!("{x}->{y}"));
    let yz = s.json("a", &["dep", "add", &y, &z, "--artifact-type", "file"]);
    assert_eq!((yz["artifact_type"].as_str(), yz["status"].as_str()), (Some("file"), Some("pending")));
    let err = s.fails("a", &["dep", "add", &z, &x], 1);
    assert!(err.contains("would close a cycle"), "{err}");
    s.fails("a", &["dep", "add", &x, "ghost"], 5);

    let chain = s.json("a", &["dep", "chain", &z]);
    let providers: Vec<&str> =
        chain["dependencies"].as_array().unwrap().iter().map(|d| d["provider"].as_str().unwrap()).collect();
    assert_eq!(providers, [y.as_str(), x.as_str()], "nearest first");
    let table = s.ok("a", &["dep", "chain", &z]);
    assert!(table.starts_with("PROVIDER") && table.lines().count() == 3, "{table}");
    s.fails("a", &["dep", "chain", "ghost"], 5);

    let ready = s.json("a", &["dep", "ready", yz["id"].as_str().unwrap(), "--artifact-path", "target/y"]);
    assert_eq!(
        (ready["status"].as_str(), ready["artifact_path"].as_str()),
        (Some("ready"), Some("target/y"))
    );
    assert_eq!(s.ok("a", &["dep", "ready", &xy]).trim(), format!("dependency {xy} is ready"));
    let err = s.fails_json("a", &["dep", "ready", "p->q"], 5);
    assert_eq!(err["error"]["kind"], "not_found");
    assert!(s.json("a", &["task", "why", &z])["ready"].as_bool().unwrap());

    // Every dependency of one provider at once; those ready already are left as they are.
    let w = s.task("a", &["w"]);
    let xw = s.ok("a", &["dep", "add", &x, &w]).trim().to_owned();
    assert_eq!(s.json("a", &["dep", "ready-all", &x]), serde_json::json!({"provider": x, "marked": [xw]}));
    assert_eq!(
        s.ok("a", &["dep", "ready-all", &x]).trim(),
        format!("no dependency of {x} to mark: none, or all ready or failed")
    );
    s.fails("a", &["dep", "ready-all", "ghost"], 5);
}

#[test]
fn a_barrier_opens_for_the_process_waiting_on_it_once_every_participant_signalled() {
    let s = Store::new();
    for agent in ["lead", "front", "back"] {
        s.register(agent, &[]);
    }
    let created =
        s.json("lead", &["barrier", "create", "builds", "--participant", "front", "--participant", "back"]);
    assert_eq!(created, json!({"barrier": "builds", "participants": ["front", "back"]}));
    assert_eq!(
        s.ok("lead", &["barrier", "create", "builds", "--participant", "back", "--participant", "front"])
            .trim(),
        "barrier builds: back, front"
    );
    s.fails("lead", &["barrier", "create", "builds", "--participant", "front"], 4);
    let err = s.fails("lead", &["barrier", "signal", "builds"], 1);
    assert!(err.contains("lead is not a participant of barrier builds"), "{err}");
    let err = s.fails_json("lead", &["barrier", "wait", "builds", "--timeout", "1s"], 5);
    assert_eq!(err["error"]["kind"], "timeout");
    s.fails("lead", &["barrier", "wait", "nope"], 5);

    let mut waiting = s.spawn("lead", &["barrier", "wait", "builds", "--json"]);
    let first = s.json("front", &["barrier", "signal", "builds"]);
    assert_eq!(first, json!({"barrier": "builds", "participant": "front", "complete": false}));
    assert_eq!(
        s.ok("back", &["barrier", "signal", "builds"]).trim(),
        "back signalled barrier builds: it is complete"
    );
    assert_eq!(waiting.json(), json!({"barrier": "builds", "complete": true}));
    assert_eq!(waiting.finish().0, Some(0));
    assert_eq!(s.ok("lead", &["barrier", "wait", "builds"]).trim(), "barrier builds is complete");
}

#[test]
fn a_lock_grants_rising_tokens_and_a_waiting_process_gets_it_when_released() {
    let s = Store::new();
    s.register("a", &[]);
    s.register("b", &[]);
    assert_eq!(s.ok("a", &["lock", "show", "deploy"]).trim(), "lock deploy: free (not held)");
    let first: u64 = s.ok("a", &["lock", "acquire", "deploy"]).trim().parse().unwrap();
    let shown = s.ok("b", &["lock", "show", "deploy"]);
    assert!(
        shown.starts_with("lock deploy: held by a until ") && shown.contains(&format!("(token {first})")),
        "{shown}"
    );
    let shown = s.json("b", &["lock", "show", "deploy"]);
    assert_eq!(
        (shown["held"].as_bool(), shown["holder"].as_str(), shown["token"].as_u64()),
        (Some(true), Some("a"), Some(first))
    );
    let err = s.fails("b", &["lock", "acquire", "deploy"], 4);
    assert_eq!(err.trim(), "maos-coord: lock deploy is held by a");
    // A wait on a held lock that times out is a conflict too.
    let err = s.fails_json("b", &["lock", "acquire", "deploy", "--wait", "1s"], 4);
    assert!(err["error"]["message"].as_str().unwrap().contains("held by a"), "{err}");
    s.fails("b", &["lock", "release", "deploy"], 4);

    let mut waiting =
        s.spawn("b", &["lock", "acquire", "deploy", "--wait", "10m", "--lease", "1h", "--json"]);
    assert_eq!(s.json("a", &["lock", "release", "deploy"]), json!({"lock": "deploy", "released": true}));
    let grant = waiting.json();
    assert_eq!(grant["holder"], "b");
    let second = grant["token"].as_u64().unwrap();
    assert!(second > first, "{second} > {first}");
    assert_eq!(waiting.finish().0, Some(0));
    assert_eq!(s.ok("b", &["lock", "release", "deploy"]).trim(), "released lock deploy");
    let third: u64 = s.ok("a", &["lock", "acquire", "deploy"]).trim().parse().unwrap();
    assert!(third > second);
    let err = s.fails("a", &["lock", "release", "other"], 1);
    assert!(err.contains("lock other is not held"), "{err}");
    assert!(s.usage("a", &["lock", "acquire", "x", "--lease", "forever"]).contains("--lease"));
}

#[test]
fn a_pipeline_is_created_once_and_its_status_follows_its_tasks() {
    let s = Store::new();
    s.register("lead", &[]);
    s.register("dev", &["rust", "web"]);
    let stages =
        ["--stage", "design=architecture", "--stage", "build=api:rust,ui:web", "--stage", "test=integration"];
    let mut create = vec!["pipeline", "create", "release"];
    create.extend(stages);
    let made = s.json("lead", &create);
    let names: Vec<&str> =
        made["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["design", "build", "test"]);
    assert_eq!(made["stages"][1]["tasks"].as_array().unwrap().len(), 2);
    // The same stages again: the same tasks, nothing appended.
    let before = s.next_lsn();
    let again = s.ok("lead", &create);
    assert_eq!(again.lines().count(), 3);
    assert!(again.lines().nth(1).unwrap().starts_with("build\t"), "{again}");
    assert!(again.contains(made["stages"][0]["tasks"][0].as_str().unwrap()));
    assert_eq!(s.next_lsn(), before);
    let err = s.fails("lead", &["pipeline", "create", "release", "--stage", "design=architecture"], 4);
    assert!(err.contains("pipeline release exists already with another definition"), "{err}");
    assert!(s.usage("lead", &["pipeline", "create", "p", "--stage", "no-tasks"]).contains("STAGE=TASK"));

    let status = s.json("lead", &["pipeline", "status", "release"]);
    assert_eq!(
        (status["status"].as_str(), status["stages"][1]["tasks"][0]["required_capabilities"].clone()),
        (Some("pending"), json!(["rust"]))
    );
    // The stages run in order: design first.
    let design = s.json("dev", &["task", "claim"]);
    assert_eq!(design["name"], "architecture");
    s.fails("dev", &["task", "claim"], 5);
    s.ok("dev", &["task", "complete", design["id"].as_str().unwrap(), "--output", "design.md"]);
    let status = s.ok("lead", &["pipeline", "status", "release"]);
    assert!(status.starts_with("pipeline release: in_progress"), "{status}");
    assert!(status.contains("outputs: design.md"), "{status}");
    s.fails("lead", &["pipeline", "status", "nope"], 5);
}
