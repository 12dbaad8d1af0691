//! `maos-coord ctx ...`: set (values from the line, a file or standard input; visibility,
//! expiry time, conditions, metadata), get (past versions), delete, list and watch, in both output
//! modes; absent and invisible keys are exit code 5, a failed condition 4, bad JSON 1, and
//! nothing is appended then.

mod support;

use serde_json::json;
use support::{text, with_stdin, Store};

#[test]
fn a_key_is_set_read_listed_and_deleted_in_both_output_modes() {
    let s = Store::new();
    s.register("a", &[]);
    s.register("b", &[]);
    assert_eq!(
        s.ok("a", &["ctx", "set", "api/spec", r#"{"version": 1}"#, "--metadata", "team=core"]).trim(),
        "1"
    );
    let v = s.json("a", &["ctx", "set", "api/spec", r#"{"version": 2}"#]);
    assert_eq!(v, json!({"key": "api/spec", "version": 2}));
    // Text: the value alone, as JSON, for $(...) in scripts.
    assert_eq!(s.ok("b", &["ctx", "get", "api/spec"]).trim(), r#"{"version":2}"#);
    let e = s.json("b", &["ctx", "get", "api/spec"]);
    assert_eq!(
        (e["version"].as_u64(), e["owner"].as_str(), e["visibility"].as_str()),
        (Some(2), Some("a"), Some("shared"))
    );
    assert!(e["updated_at"].as_str().unwrap().ends_with('Z') && e["expires_at"].is_null(), "{e}");
    let past = s.json("b", &["ctx", "get", "api/spec", "--version", "1"]);
    assert_eq!(
        (past["value"].clone(), past["metadata"].clone()),
        (json!({"version": 1}), json!({"team": "core"}))
    );
    s.fails("b", &["ctx", "get", "api/spec", "--version", "9"], 5);

    let file = s.root().join("value.json");
    std::fs::write(&file, "[1, 2, 3]").unwrap();
    s.ok("a", &["ctx", "set", "api/list", &format!("@{}", file.display())]);
    let o = with_stdin(s.cmd(Some("a"), &["ctx", "set", "other", "-"]), "\"from stdin\"");
    assert!(o.status.success(), "{}", text(&o));
    let list = s.json("b", &["ctx", "list", "--prefix", "api/"]);
    let keys: Vec<&str> =
        list["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["api/list", "api/spec"]);
    assert_eq!(list["entries"][0]["value"], json!([1, 2, 3]));
    let table = s.ok("b", &["ctx", "list"]);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().any(|l| l.starts_with("other") && l.ends_with("\"from stdin\"")), "{table}");

    assert_eq!(s.ok("b", &["ctx", "delete", "other"]).trim(), "2");
    let err = s.fails("b", &["ctx", "get", "other"], 5);
    assert!(err.contains("context key other is absent"), "{err}");
    assert_eq!(s.fails_json("b", &["ctx", "get", "other"], 5)["error"]["kind"], "not_found");
    // Deleting it again, or a key never set: nothing to do, nothing appended.
    let err = s.fails("b", &["ctx", "delete", "other"], 5);
    assert!(err.contains("context key other is absent"), "{err}");
    s.fails("b", &["ctx", "delete", "never-set"], 5);
    assert_eq!(
        s.json("b", &["ctx", "delete", "api/list"]),
        json!({"key": "api/list", "version": 2, "deleted": true})
    );
}

#[test]
fn visibility_expiry_and_conditions_decide_what_is_read_and_written() {
    let s = Store::new();
    for agent in ["owner", "friend", "stranger"] {
        s.register(agent, &[]);
    }
    s.ok("owner", &["ctx", "set", "mine", "1", "--visibility", "private"]);
    s.ok("owner", &["ctx", "set", "ours", "2", "--visibility", "restricted:friend"]);
    s.ok("owner", &["ctx", "set", "brief", "3", "--expires-in", "1h"]);
    assert_eq!(s.ok("owner", &["ctx", "get", "mine"]).trim(), "1");
    assert_eq!(s.ok("friend", &["ctx", "get", "ours"]).trim(), "2");
    let e = s.json("friend", &["ctx", "get", "ours"]);
    assert_eq!(
        (e["visibility"].as_str(), e["restricted_to"].clone()),
        (Some("restricted"), json!(["friend"]))
    );
    let err = s.fails("stranger", &["ctx", "get", "ours"], 5);
    assert!(err.contains("agent stranger may not read context key ours"), "{err}");
    s.fails("friend", &["ctx", "get", "mine"], 5);
    let brief = s.json("stranger", &["ctx", "get", "brief"]);
    assert!(brief["expires_at"].as_str().unwrap() > brief["updated_at"].as_str().unwrap(), "{brief}");
    let list = s.json("stranger", &["ctx", "list"]);
    let keys: Vec<&str> =
        list["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["brief"], "only what it may read");

    let before = s.next_lsn();
    let err = s.fails("owner", &["ctx", "set", "ours", "5", "--if-version", "7"], 4);
    assert_eq!(err.trim(), "maos-coord: context key ours: expected version 7, found version 1");
    assert_eq!(
        s.fails_json("owner", &["ctx", "set", "ours", "5", "--if-absent"], 4)["error"]["kind"],
        "conflict"
    );
    let err = s.fails("owner", &["ctx", "set", "ours", "{oops"], 1);
    assert!(err.contains("the value of context key ours is not JSON"), "{err}");
    let err = s.fails("owner", &["ctx", "set", "ours", "@/nonexistent/v.json"], 1);
    assert!(err.contains("cannot read file /nonexistent/v.json"), "{err}");
    assert!(s.usage("owner", &["ctx", "set", "k", "1", "--visibility", "public"]).contains("restricted:"));
    assert!(s.usage("owner", &["ctx", "set", "k", "1", "--metadata", "novalue"]).contains("KEY=VALUE"));
    assert!(s
        .usage("owner", &["ctx", "set", "k", "1", "--if-absent", "--if-version", "1"])
        .contains("cannot be used"));
    assert_eq!(s.next_lsn(), before, "refused sets append nothing");
    assert_eq!(s.ok("owner", &["ctx", "set", "ours", "5", "--if-version", "1"]).trim(), "2");
    assert_eq!(s.ok("owner", &["ctx", "set", "fresh", "1", "--if-absent"]).trim(), "1");
}

#[test]
fn a_watch_prints_each_version_as_it_is_set_one_flushed_line_each() {
    let s = Store::new();
    s.register("writer", &[]);
    s.register("reader", &[]);
    s.ok("writer", &["ctx", "set", "status", r#""starting""#]);
    let mut json_watch = s.spawn("reader", &["ctx", "watch", "status", "--from-version", "1", "--json"]);
    let mut text_watch = s.spawn("reader", &["ctx", "watch", "status", "--from-version", "1"]);
    let first = json_watch.json();
    assert_eq!((first["version"].as_u64(), first["value"].clone()), (Some(1), json!("starting")));
    assert_eq!(text_watch.line().unwrap(), "1\t\"starting\"");
    // Each later version arrives as it is set, by another process.
    s.ok("writer", &["ctx", "set", "status", r#""running""#]);
    let second = json_watch.json();
    assert_eq!(
        (second["version"].as_u64(), second["value"].clone(), second["deleted"].clone()),
        (Some(2), json!("running"), json!(false))
    );
    assert_eq!(text_watch.line().unwrap(), "2\t\"running\"");
    s.ok("writer", &["ctx", "delete", "status"]);
    assert_eq!(json_watch.json(), json!({"key": "status", "version": 3, "value": null, "deleted": true}));
    assert_eq!(text_watch.line().unwrap(), "3\t(deleted or expired)");
    // A version the reader may not read is withheld, and the watch goes on.
    s.ok("writer", &["ctx", "set", "status", r#""secret""#, "--visibility", "private"]);
    assert_eq!(json_watch.json(), json!({"key": "status", "withheld": "not_visible"}));
    assert_eq!(text_watch.line().unwrap(), "-\t(a version reader may not read)");
    s.ok("writer", &["ctx", "set", "status", r#""done""#]);
    assert_eq!(json_watch.json()["version"], json!(5));
    assert_eq!(text_watch.line().unwrap(), "5\t\"done\"");
    json_watch.stop();
    text_watch.stop();
}
