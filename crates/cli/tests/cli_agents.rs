//! `maos-coord agent ...`: registering (and again, resuming), heartbeats that report renewed and
//! lapsed leases, stopping, listing and showing, in both output modes; the acting agent from
//! --agent or MAOS_AGENT, and the usage error without either.

mod support;

use std::time::Duration;

use maos_coord::model::{AgentId, NewTask};
use maos_coord::{Coordinator, Durability, ManualClock, Timestamp};
use support::{text, Store};

#[test]
fn an_agent_registers_lists_shows_and_stops_in_both_output_modes() {
    let s = Store::new();
    let o = s
        .cmd(None, &["agent", "register", "builder", "--role", "engineer", "--capability", "rust"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("registered builder (incarnation 1)"));
    let v = s.json(
        "ignored",
        &["agent", "register", "tester", "--role", "qa", "--capability", "qa", "--heartbeat-timeout", "90s"],
    );
    assert_eq!(v["agent"]["id"], "tester");
    assert_eq!(v["agent"]["capabilities"], serde_json::json!(["qa"]));
    assert_eq!(v["agent"]["heartbeat_timeout_ms"], 90_000);
    assert_eq!(v["agent"]["status"], "active");
    assert!(v["incarnation"].as_u64().unwrap() > 1);

    let list = s.json("builder", &["agent", "list"]);
    let ids: Vec<&str> =
        list["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["builder", "tester"]);
    let table = s.ok("builder", &["agent", "list"]);
    assert!(table.lines().next().unwrap().starts_with("NAME"), "{table}");
    let row = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert!(table.lines().any(|l| row(l) == ["tester", "qa", "active", "qa"]), "{table}");

    let shown = s.json("builder", &["agent", "show", "builder"]);
    assert_eq!((shown["role"].as_str(), shown["gone"].as_bool()), (Some("engineer"), Some(false)));
    // RFC 3339 times.
    assert!(shown["registered_at"].as_str().unwrap().ends_with('Z'), "{shown}");
    assert!(s.ok("builder", &["agent", "show", "builder"]).contains("capabilities:    rust"));
    let err = s.fails("builder", &["agent", "show", "nobody"], 5);
    assert!(err.contains("unknown agent nobody"), "{err}");

    let stopped = s.json("tester", &["agent", "stop", "--reason", "done"]);
    assert_eq!((stopped["status"].as_str(), stopped["reason"].as_str()), (Some("stopped"), Some("done")));
    assert_eq!(s.ok("builder", &["agent", "stop"]).trim(), "stopped builder (stopped from the command line)");
    let shown = s.json("builder", &["agent", "show", "tester"]);
    assert_eq!((shown["status"].as_str(), shown["reason"].as_str()), (Some("stopped"), Some("done")));
    // A stopped agent does not act.
    let err = s.fails("tester", &["agent", "heartbeat"], 5);
    assert!(err.contains("unknown agent tester: it stopped (done)"), "{err}");
}

#[test]
fn the_acting_agent_comes_from_the_flag_or_the_environment_and_is_required() {
    let s = Store::new();
    s.register("env-agent", &[]);
    let o = s.cmd(None, &["agent", "heartbeat"]).env("MAOS_AGENT", "env-agent").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("env-agent is alive"), "{}", text(&o));
    // The flag wins over the environment, and may come before the command.
    let o = s
        .cmd(None, &["--agent", "nobody", "agent", "heartbeat"])
        .env("MAOS_AGENT", "env-agent")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let before = s.next_lsn();
    let o = s.cmd(None, &["agent", "heartbeat"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--agent") && err.contains("MAOS_AGENT") && err.contains("agent heartbeat"),
        "{err}"
    );
    let o = s.cmd(None, &["--json", "task", "claim"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "usage", "{err}");
    assert_eq!(s.next_lsn(), before, "nothing appended");
    // --root as a flag, anywhere on the line, instead of MAOS_ROOT.
    let o = std::process::Command::new(support::BIN)
        .args(["agent", "list", "--root"])
        .arg(s.root())
        .env_remove("MAOS_ROOT")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("env-agent"), "{}", text(&o));
}

#[tokio::test]
async fn a_heartbeat_prints_the_leases_it_renewed_and_those_that_had_lapsed() {
    let s = Store::new();
    // Claims made ten minutes ago: leases of a minute (over now) and one of an hour.
    let clock = ManualClock::new(Timestamp::now().minus(Duration::from_secs(600)));
    let open = |lease: u64| {
        Coordinator::options(s.root())
            .durability(Durability::Buffered)
            .clock(clock.shared())
            .lease(Duration::from_secs(lease))
            .open()
            .unwrap()
    };
    let (me, idle) = (AgentId::new("worker").unwrap(), AgentId::new("idle").unwrap());
    let (short, long) = (open(60), open(3600));
    short.register_agent(&me, "worker", vec![]).await.unwrap();
    short.register_agent(&idle, "worker", vec![]).await.unwrap();
    let lapsed = short.create_task(&me, NewTask::new("lapsed")).await.unwrap().id;
    let renewed = short.create_task(&me, NewTask::new("renewed")).await.unwrap().id;
    let lost = short.create_task(&me, NewTask::new("lost")).await.unwrap().id;
    assert_eq!(short.claim_next_task(&me, None).await.unwrap().unwrap().id, lapsed);
    assert_eq!(long.claim_next_task(&me, None).await.unwrap().unwrap().id, renewed);
    assert_eq!(short.claim_next_task(&idle, None).await.unwrap().unwrap().id, lost);
    drop((short, long));

    let shown = s.json("worker", &["agent", "show", "worker"]);
    assert_eq!(shown["holds"], serde_json::json!([renewed.as_str()]), "a lapsed lease holds nothing");
    assert_eq!(shown["gone"], true, "silent for ten minutes");
    let v = s.json("worker", &["agent", "heartbeat"]);
    assert_eq!(v["lapsed"], serde_json::json!([lapsed.as_str()]));
    assert_eq!(v["renewed"][0]["id"], renewed.as_str());
    assert!(v["renewed"][0]["lease_until"].as_str().unwrap().ends_with('Z'));
    let text = s.ok("worker", &["agent", "heartbeat"]);
    assert!(text.starts_with(&format!("renewed {renewed} until ")), "{text}");
    let task = s.json("worker", &["task", "show", lapsed.as_str()]);
    assert_eq!((task["status"].as_str(), task["failures"].as_u64()), (Some("pending"), Some(1)));
    // Every claim lapsed: the lapse is recorded and the answer is a lost lease (exit code 4).
    let err = s.fails("idle", &["agent", "heartbeat"], 4);
    assert!(err.contains(&format!("the lease of agent idle on task {lost} ended")), "{err}");
    assert_eq!(s.json("idle", &["task", "show", lost.as_str()])["status"], "pending");
}

#[test]
fn registering_again_releases_the_earlier_claims_unless_it_resumes_them() {
    let s = Store::new();
    s.register("w", &[]);
    let first = s.task("w", &["first"]);
    let second = s.task("w", &["second"]);
    s.ok("w", &["task", "claim"]);
    let v = s.json("w", &["agent", "register", "w", "--role", "worker"]);
    assert_eq!(v["released"], serde_json::json!([first]));
    s.ok("w", &["task", "claim"]);
    let v = s.json("w", &["agent", "register", "w", "--role", "worker", "--resume"]);
    assert_eq!(v["resumed"], serde_json::json!([first]), "{v}");
    let out = s.ok("w", &["agent", "register", "w", "--role", "worker", "--resume"]);
    assert!(out.contains(&format!("resumed: {first}")), "{out}");
    assert!(!out.contains(&second));
}
