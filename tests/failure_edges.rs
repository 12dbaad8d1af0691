//! Edges of the failure rules found by trying to break them: time carried by records of other
//! kinds, undecodable records that look like application events, retries after an undecodable
//! record, identifiers that could collide or not fit, tasks that can never run, and bad input.

use std::collections::BTreeMap;
use std::time::Duration;

use maos_coord::coordinator::{find_unreadable, open_store_log, skip_unreadable, PipelineStage, SetOptions};
use maos_coord::model::{
    AgentId, ArtifactType, BarrierName, ContextKey, EventFilter, NewTask, TaskId, TaskStatus, Visibility,
    EVENT_RECORD_KIND,
};
use maos_coord::{Coordinator, Durability, Error, Log, Lsn, ManualClock, RecordKind};

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn open(root: &std::path::Path, clock: &ManualClock) -> Coordinator {
    Coordinator::options(root)
        .durability(Durability::Buffered)
        .lease(Duration::from_secs(10))
        .clock(clock.shared())
        .open()
        .unwrap()
}

async fn with_agent(root: &std::path::Path, clock: &ManualClock) -> (Coordinator, AgentId) {
    let c = open(root, clock);
    let a = agent("a");
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    (c, a)
}

#[tokio::test]
async fn records_of_other_kinds_move_the_time_commands_decide_with() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    // An application record stamped an hour ahead (another host's clock, or a step back since).
    clock.advance(Duration::from_secs(3600));
    c.log().append(RecordKind::new(16).unwrap(), b"app").unwrap();
    clock.rewind(Duration::from_secs(3600));
    let claimed = c.claim_next_task(&a, None).await.unwrap().unwrap();
    assert_eq!(claimed.id, t.id);
    c.complete_task(&a, &t.id, vec![]).await.unwrap();
    let key = ContextKey::new("k").unwrap();
    let opts = SetOptions { expires_in: Some(Duration::from_secs(60)), ..SetOptions::default() };
    c.set_context_with(&a, &key, serde_json::json!(1), opts).await.unwrap();
    assert!(c.get_context(&a, &key).unwrap().is_some(), "a value set now has not expired");
}

/// A store whose record at the returned LSN reads as an application event but does not decode.
async fn custom_looking_junk(root: &std::path::Path, clock: &ManualClock) -> (Coordinator, AgentId, Lsn) {
    let (c, a) = with_agent(root, clock).await;
    c.emit_event(&a, "before", serde_json::json!(1), BTreeMap::new()).await.unwrap();
    let raw = Log::options(c.store_dir().join("log")).open().unwrap();
    let payload =
        rmp_serde::to_vec_named(&serde_json::json!({"actor": "a", "event": {"Custom": 5}})).unwrap();
    let bad = raw.append(RecordKind::new(EVENT_RECORD_KIND).unwrap(), &payload).unwrap();
    c.emit_event(&a, "after", serde_json::json!(2), BTreeMap::new()).await.unwrap();
    (c, a, bad)
}

#[tokio::test]
async fn a_subscription_that_meets_an_undecodable_record_fails_again_rather_than_skipping_it() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a, bad) = custom_looking_junk(root.path(), &clock).await;
    let mut sub = c.subscribe_from(&a, EventFilter::all().types(["before", "after"]), Lsn::FIRST).unwrap();
    assert_eq!(sub.try_next().unwrap().unwrap().recorded.event.type_name(), "before");
    for _ in 0..2 {
        let err = sub.try_next().unwrap_err();
        assert!(matches!(err, Error::UndecodableRecord { lsn, .. } if lsn == bad), "{err}");
    }
    // Repair finds it even though it looks like an application event, and then it is passed.
    let log = open_store_log(root.path()).unwrap();
    let found = find_unreadable(&log).unwrap();
    assert_eq!(found.iter().map(|u| u.lsn).collect::<Vec<_>>(), [bad]);
    skip_unreadable(&log, &found).unwrap();
    assert_eq!(sub.try_next().unwrap().unwrap().recorded.event.type_name(), "after");
}

#[tokio::test]
async fn task_ids_with_the_dependency_separator_are_refused_and_the_longest_ids_link() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let err = TaskId::new("x->y").unwrap_err();
    assert!(err.to_string().contains("`->`"), "{err}");
    let (p, q) = (TaskId::new("p".repeat(256)).unwrap(), TaskId::new("q".repeat(256)).unwrap());
    c.create_task(&a, NewTask::new("p").id(p.clone())).await.unwrap();
    c.create_task(&a, NewTask::new("q").id(q.clone())).await.unwrap();
    let dep = c.register_dependency(&a, &p, &q, ArtifactType::Completion).await.unwrap();
    assert_eq!(c.get_dependency_chain(&q).unwrap()[0].id, dep);
}

#[tokio::test]
async fn a_durable_subscription_whose_names_cannot_name_a_cursor_file_is_refused_naming_the_limit() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let longest = "s".repeat(maos_coord::coordinator::MAX_CURSOR_NAMES - 1);
    drop(c.subscribe_durable(&a, &longest, EventFilter::all()).unwrap());
    let err = c.subscribe_durable(&a, &format!("{longest}s"), EventFilter::all()).err().unwrap();
    assert!(matches!(&err, Error::InvalidArgument { reason, .. } if reason.contains("at most 105")), "{err}");
}

#[tokio::test]
async fn a_task_whose_dependency_failed_cannot_be_unblocked() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let p = c.create_task(&a, NewTask::new("p").max_attempts(1)).await.unwrap().id;
    let q = c.create_task(&a, NewTask::new("q")).await.unwrap().id;
    c.register_dependency(&a, &p, &q, ArtifactType::Completion).await.unwrap();
    c.update_task_status(&a, &q, TaskStatus::Blocked("waiting for review".into())).await.unwrap();
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    c.fail_task(&a, &p, "broken").await.unwrap();
    let before = c.log().next_lsn();
    let err = c.update_task_status(&a, &q, TaskStatus::Pending).await.unwrap_err();
    assert!(
        matches!(&err, Error::DependenciesNotReady { unmet, .. } if unmet[0].contains("failed: attempts exhausted")),
        "{err}"
    );
    assert_eq!(c.log().next_lsn(), before);
}

#[tokio::test]
async fn a_cancelled_stage_shows_in_the_pipeline_status() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let stages = vec![
        PipelineStage { name: "one".into(), tasks: vec![NewTask::new("a")] },
        PipelineStage { name: "two".into(), tasks: vec![NewTask::new("b")] },
    ];
    let ids = c.create_pipeline(&a, "p", stages).await.unwrap();
    c.cancel_task_cascade(&a, &ids[0][0], "scope cut").await.unwrap();
    let status = c.pipeline_status("p").unwrap().status;
    assert_eq!(status, TaskStatus::Cancelled(format!("task {} was cancelled", ids[0][0])));
    let err = c.list_tasks(Some("cancelled")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!(c.list_tasks(Some("Cancelled")).unwrap().len(), 2);
}

#[tokio::test]
async fn compare_and_set_on_a_deleted_key_says_why_it_failed() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let key = ContextKey::new("k").unwrap();
    c.set_context(&a, &key, serde_json::json!(1), Visibility::Shared).await.unwrap();
    c.delete_context(&a, &key).await.unwrap();
    let err = c.compare_and_set(&a, &key, serde_json::json!(2), 2).await.unwrap_err();
    assert!(err.to_string().contains("deleted or expired: set it with the Absent condition"), "{err}");
    let absent = SetOptions { condition: maos_coord::model::SetCondition::Absent, ..SetOptions::default() };
    assert_eq!(c.set_context_with(&a, &key, serde_json::json!(2), absent).await.unwrap(), 3);
}

#[tokio::test]
async fn empty_names_are_refused_and_a_second_signal_appends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let before = c.log().next_lsn();
    let errors = [
        c.create_task(&a, NewTask::new("")).await.unwrap_err(),
        c.create_task(&a, NewTask::new("t").requires("")).await.unwrap_err(),
        c.register_agent(&agent("b"), "", vec![]).await.unwrap_err(),
        c.create_barrier(&a, &BarrierName::new("b").unwrap(), vec![String::new()]).await.unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(&err, Error::InvalidName { reason, .. } if reason == "is empty"), "{err}");
    }
    assert_eq!(c.log().next_lsn(), before);
    let b = BarrierName::new("b").unwrap();
    c.create_barrier(&a, &b, vec!["x".into(), "y".into()]).await.unwrap();
    assert!(!c.signal_barrier(&a, &b, "x").await.unwrap());
    let after_first = c.log().next_lsn();
    assert!(!c.signal_barrier(&a, &b, "x").await.unwrap());
    assert_eq!(c.log().next_lsn(), after_first, "a second signal appends nothing");
}

#[tokio::test]
async fn a_record_too_large_for_the_log_is_refused_naming_what_it_records() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let (c, a) = with_agent(root.path(), &clock).await;
    let before = c.log().next_lsn();
    let err = c.create_task(&a, NewTask::new("t").description("d".repeat(2 << 20))).await.unwrap_err();
    assert!(matches!(&err, Error::ValueTooLarge { what, .. } if what == "a TaskCreated record"), "{err}");
    assert_eq!(c.log().next_lsn(), before);
}
