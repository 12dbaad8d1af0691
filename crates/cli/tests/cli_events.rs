//! `maos-coord event emit` and `maos-coord events tail`: application events in (data from the
//! line, a file or standard input), every event out as `{"lsn", "time", "agent", "op", ...}`
//! lines or text, filtered by operation and agent, followed as they are appended, and resumed
//! through a durable cursor that never skips an event.

mod support;

use serde_json::{json, Value};
use support::{text, with_stdin, Store};

fn lines(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn ops(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["op"].as_str().unwrap()).collect()
}

#[test]
fn events_are_emitted_and_tailed_in_both_output_modes() {
    let s = Store::new();
    s.register("a", &[]);
    s.register("b", &[]);
    assert_eq!(s.json("a", &["event", "emit", "build_done", r#"{"ok": true}"#])["type"], "build_done");
    let o = with_stdin(s.cmd(Some("b"), &["event", "emit", "deployed", "-"]), r#"{"env": "prod"}"#);
    assert!(o.status.success(), "{}", text(&o));
    let lsn: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    let t = s.task("a", &["t"]);
    s.ok("b", &["task", "claim"]);
    s.ok("a", &["ctx", "set", "secret", "42", "--visibility", "private"]);

    let o = s.cmd(Some("b"), &["events", "tail", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let all = lines(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(
        ops(&all),
        ["agent_started", "agent_started", "custom", "custom", "task_created", "task_claimed", "context_set"]
    );
    for e in &all {
        assert!(
            e["lsn"].is_u64() && e["time"].as_str().unwrap().ends_with('Z') && e["agent"].is_string(),
            "{e}"
        );
    }
    assert_eq!(
        (all[3]["lsn"].as_u64(), all[3]["type"].as_str(), all[3]["data"].clone()),
        (Some(lsn), Some("deployed"), json!({"env": "prod"}))
    );
    assert_eq!(
        (all[5]["task"].as_str(), all[5]["holder"].as_str(), all[5]["agent"].as_str()),
        (Some(t.as_str()), Some("b"), Some("b"))
    );
    // b may not read a's private value: it is withheld, and says so.
    assert_eq!((all[6]["value"].clone(), all[6]["withheld"].as_str()), (json!(null), Some("not_visible")));

    let text = s.ok("a", &["events", "tail"]);
    let last = text.lines().last().unwrap();
    assert!(last.contains(" a ") && last.contains("context_set") && last.contains("value=42"), "{text}");
    assert_eq!(text.lines().count(), 7);

    let filtered = |args: &[&str]| {
        let mut all = vec!["events", "tail", "--json"];
        all.extend(args);
        let o = s.cmd(Some("a"), &all).output().unwrap();
        assert!(o.status.success(), "{}", support::text(&o));
        lines(&String::from_utf8(o.stdout).unwrap())
    };
    assert_eq!(
        ops(&filtered(&["--type", "task_claimed", "--type", "context_set"])),
        ["task_claimed", "context_set"]
    );
    assert_eq!(ops(&filtered(&["--type", "TaskCreated"])), ["task_created"]);
    assert_eq!(filtered(&["--type", "deployed"])[0]["type"], "deployed");
    assert_eq!(ops(&filtered(&["--filter-agent", "b"])), ["agent_started", "custom", "task_claimed"]);
    let from = filtered(&["--from", &lsn.to_string()]);
    assert_eq!(from[0]["lsn"].as_u64(), Some(lsn));
    assert_eq!(from.len(), 4);
}

#[test]
fn bad_event_data_is_refused_and_appends_nothing() {
    let s = Store::new();
    s.register("a", &[]);
    let before = s.next_lsn();
    let err = s.fails("a", &["event", "emit", "t", "[1,"], 1);
    assert!(err.contains("the data of event t is not JSON"), "{err}");
    let err = s.fails_json("a", &["event", "emit", "t", "@/nonexistent/data.json"], 1);
    assert!(err["error"]["message"].as_str().unwrap().contains("/nonexistent/data.json"), "{err}");
    let err = s.fails("a", &["event", "emit", "", "1"], 1);
    assert!(err.contains("invalid event type"), "{err}");
    // An application event cannot pose as an operation of the store.
    for name in ["task_claimed", "TaskClaimed", "custom"] {
        let err = s.fails("a", &["event", "emit", name, "{}"], 1);
        assert!(err.contains("is the name of an operation"), "{err}");
    }
    assert_eq!(s.next_lsn(), before);
    let err = s.fails("a", &["events", "tail", "--from", "999"], 5);
    assert!(err.contains("LSN 999"), "{err}");
    assert!(s.usage("a", &["events", "tail", "--from", "1", "--cursor", "c"]).contains("cannot be used"));
}

#[test]
fn following_prints_each_event_as_it_is_appended_and_ends_quietly_when_the_reader_goes() {
    let s = Store::new();
    s.register("a", &[]);
    let mut follow =
        s.spawn("a", &["events", "tail", "--follow", "--json", "--type", "custom", "--type", "ping"]);
    s.ok("a", &["event", "emit", "ping", "1"]);
    assert_eq!(follow.json()["data"], 1);
    s.ok("a", &["event", "emit", "ping", "2"]);
    assert_eq!(follow.json()["data"], 2);
    // The reader goes away: the next event ends the follower, quietly.
    let mut child = follow.close_output();
    s.ok("a", &["event", "emit", "ping", "3"]);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!((status.code(), err.as_str()), (Some(0), ""));
}

#[test]
fn a_named_cursor_resumes_after_what_it_acknowledged_and_never_skips() {
    let s = Store::new();
    s.register("reader", &[]);
    s.register("writer", &[]);
    for i in 0..3 {
        s.ok("writer", &["event", "emit", "job", &i.to_string()]);
    }
    let tail = |args: &[&str]| {
        let mut all = vec!["events", "tail", "--json", "--cursor", "jobs", "--type", "job"];
        all.extend(args);
        lines(&s.ok("reader", &all))
    };
    let data = |events: &[Value]| events.iter().map(|e| e["data"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(data(&tail(&[])), [0, 1, 2]);
    assert!(tail(&[]).is_empty(), "acknowledged: not printed again");
    s.ok("writer", &["event", "emit", "job", "3"]);
    assert_eq!(data(&tail(&[])), [3]);
    // Text mode through the same cursor.
    s.ok("writer", &["event", "emit", "job", "4"]);
    let out = s.ok("reader", &["events", "tail", "--cursor", "jobs", "--type", "job"]);
    assert!(out.trim_end().ends_with("custom data=4 type=job"), "{out}");

    // Following, killed at any moment after a line: the next run starts at that event or the
    // one after it (at least once), never later.
    let mut follow =
        s.spawn("reader", &["events", "tail", "--json", "--cursor", "jobs", "--type", "job", "--follow"]);
    s.ok("writer", &["event", "emit", "job", "5"]);
    assert_eq!(follow.json()["data"], 5);
    follow.stop();
    s.ok("writer", &["event", "emit", "job", "6"]);
    let resumed = data(&tail(&[]));
    assert!(resumed == [5, 6] || resumed == [6], "{resumed:?}");
    // A cursor of another agent starts from the beginning.
    s.register("other", &[]);
    let o = s
        .cmd(Some("other"), &["events", "tail", "--json", "--cursor", "jobs", "--type", "job"])
        .output()
        .unwrap();
    assert_eq!(data(&lines(&String::from_utf8(o.stdout).unwrap())), [0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_cursor_is_deleted_or_reset_by_name_and_an_unknown_one_is_nothing_to_do() {
    let s = Store::new();
    s.register("a", &[]);
    s.ok("a", &["event", "emit", "job", "1"]);
    s.ok("a", &["events", "tail", "--cursor", "once"]);
    let reset = s.json("a", &["events", "cursor", "reset", "once", "--to", "1"]);
    assert_eq!(reset, json!({"agent": "a", "cursor": "once", "action": "reset", "lsn": 1}));
    let err = s.fails("a", &["events", "cursor", "reset", "once", "--to", "999"], 1);
    assert!(err.contains("999"), "{err}");
    assert_eq!(s.ok("a", &["events", "cursor", "delete", "once"]).trim(), "cursor once of a deleted");
    let err = s.fails("a", &["events", "cursor", "delete", "once"], 5);
    assert!(err.contains("agent a has no durable subscription once"), "{err}");
    assert_eq!(s.fails_json("a", &["events", "cursor", "delete", "never"], 5)["error"]["kind"], "not_found");
}
