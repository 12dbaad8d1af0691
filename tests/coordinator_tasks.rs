//! Tasks through the coordinator: creation, idempotency, claims in order, leases, attempts,
//! holders, the state machine, and errors that append nothing.

use std::time::Duration;

use maos_coord::model::{AgentId, NewTask, Priority, TaskId, TaskStatus};
use maos_coord::{Coordinator, Durability, Error, ManualClock};

fn open(root: &std::path::Path) -> Coordinator {
    open_with(root, &ManualClock::starting_now())
}

/// Leases of 200 ms on a clock that moves only when the test moves it.
fn open_with(root: &std::path::Path, clock: &ManualClock) -> Coordinator {
    Coordinator::options(root)
        .durability(Durability::Buffered)
        .lease(Duration::from_millis(200))
        .clock(clock.shared())
        .open()
        .unwrap()
}

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn claims_take_the_highest_priority_then_the_oldest_that_the_agent_can_do() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let a = agent("worker");
    c.register_agent(&a, "builder", caps(&["rust"])).await.unwrap();
    let low = c.create_task(&a, NewTask::new("low").priority(Priority::Low)).await.unwrap();
    let high1 = c.create_task(&a, NewTask::new("high1").priority(Priority::High)).await.unwrap();
    let _python =
        c.create_task(&a, NewTask::new("py").priority(Priority::Critical).requires("python")).await.unwrap();
    let high2 = c.create_task(&a, NewTask::new("high2").priority(Priority::High)).await.unwrap();
    let order: Vec<TaskId> = [
        c.claim_next_task(&a, Some(&caps(&["rust"]))).await.unwrap().unwrap().id,
        c.claim_next_task(&a, Some(&caps(&["rust"]))).await.unwrap().unwrap().id,
        c.claim_next_task(&a, Some(&caps(&["rust"]))).await.unwrap().unwrap().id,
    ]
    .into();
    assert_eq!(order, [high1.id, high2.id, low.id]);
    assert!(
        c.claim_next_task(&a, Some(&caps(&["rust"]))).await.unwrap().is_none(),
        "the python task needs python"
    );
    let claimed = c.get_task(&order[0]).unwrap().unwrap();
    assert_eq!(
        (claimed.status, claimed.assigned_to, claimed.attempts),
        (TaskStatus::InProgress, Some(a.clone()), 1)
    );
}

#[tokio::test]
async fn creating_again_with_an_idempotency_key_returns_the_first_task_only_for_the_same_request() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let a = agent("a");
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let first = c.create_task(&a, NewTask::new("build").idempotency_key("build-42")).await.unwrap();
    let next = c.log().next_lsn();
    let again = c.create_task(&a, NewTask::new("build").idempotency_key("build-42")).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(c.log().next_lsn(), next, "nothing appended");
    // The key reused for another task is a conflict naming the difference, not the first task.
    let err = c.create_task(&a, NewTask::new("other name").idempotency_key("build-42")).await.unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists { difference, .. } if difference.starts_with("name")),
        "{err}"
    );
    let err = c
        .create_task(&a, NewTask::new("build").id(TaskId::new("x").unwrap()).idempotency_key("build-42"))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::AlreadyExists { difference, .. } if difference.starts_with("id")), "{err}");
    assert_eq!(c.get_task(&TaskId::new("x").unwrap()).unwrap(), None);
    assert_eq!(c.log().next_lsn(), next, "nothing appended");
    let err = c.create_task(&a, NewTask::new("x").id(first.id.clone())).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { what: "task", .. }), "{err}");
}

#[tokio::test]
async fn a_lapsed_lease_makes_the_task_claimable_and_records_whose_lease_lapsed() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open_with(root.path(), &clock);
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.register_agent(&b, "r", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    assert!(c.claim_next_task(&b, Some(&[])).await.unwrap().is_none(), "a holds the lease");
    clock.advance(Duration::from_millis(250));
    let reclaimed = c.claim_next_task(&b, Some(&[])).await.unwrap().unwrap();
    assert_eq!(
        (reclaimed.id.clone(), reclaimed.assigned_to.clone(), reclaimed.attempts),
        (t.id.clone(), Some(b.clone()), 2)
    );
    let history = c.history(&b, &maos_coord::model::Subject::Task(t.id.to_string())).unwrap();
    let lapse = history.iter().find(|e| e.recorded.event.type_name() == "TaskLeaseLapsed").unwrap();
    assert_eq!(lapse.recorded.event.subject_agent(), Some(&a), "the record names whose lease lapsed");
    assert_eq!(lapse.recorded.actor, b);
    // The lapsed holder can no longer complete it.
    let err = c.complete_task(&a, &t.id, vec![]).await.unwrap_err();
    assert!(matches!(err, Error::NotHolder { .. }), "{err}");
}

#[tokio::test]
async fn heartbeats_extend_leases() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open_with(root.path(), &clock);
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.register_agent(&b, "r", vec![]).await.unwrap();
    c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    for _ in 0..4 {
        clock.advance(Duration::from_millis(150));
        let report = c.heartbeat(&a).await.unwrap();
        assert_eq!((report.renewed.len(), report.lapsed.len()), (1, 0));
    }
    assert!(c.claim_next_task(&b, Some(&[])).await.unwrap().is_none(), "heartbeats kept the lease");
}

#[tokio::test]
async fn attempts_are_exhausted_after_max_attempts_lapses_or_failures() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open_with(root.path(), &clock);
    let a = agent("a");
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("flaky").max_attempts(3)).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    c.fail_task(&a, &t.id, "crashed").await.unwrap();
    assert_eq!(c.get_task(&t.id).unwrap().unwrap().status, TaskStatus::Pending);
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    clock.advance(Duration::from_millis(250)); // second attempt lapses
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    c.fail_task(&a, &t.id, "crashed again").await.unwrap();
    let failed = c.get_task(&t.id).unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.failures, failed.attempts),
        (TaskStatus::Failed("attempts exhausted".into()), 3, 3)
    );
}

#[tokio::test]
async fn release_gives_a_task_back_without_failing_it() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let a = agent("a");
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    c.add_output(&a, &t.id, "half.txt").await.unwrap();
    c.release_task(&a, &t.id).await.unwrap();
    let released = c.get_task(&t.id).unwrap().unwrap();
    assert_eq!(
        (released.status, released.failures, released.outputs),
        (TaskStatus::Pending, 0, vec!["half.txt".to_string()])
    );
}

#[tokio::test]
async fn invalid_commands_are_typed_errors_and_append_nothing() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let (a, b, ghost) = (agent("a"), agent("b"), agent("ghost"));
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.register_agent(&b, "r", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    let before = c.log().next_lsn();
    let unknown = TaskId::new("nope").unwrap();
    let errors = [
        c.create_task(&ghost, NewTask::new("x")).await.unwrap_err(),
        c.complete_task(&b, &t.id, vec![]).await.unwrap_err(),
        c.complete_task(&a, &unknown, vec![]).await.unwrap_err(),
        c.update_task_status(&a, &t.id, TaskStatus::InProgress).await.unwrap_err(),
        c.create_task(&a, NewTask::new("x").max_attempts(0)).await.unwrap_err(),
    ];
    assert!(matches!(&errors[0], Error::UnknownAgent { agent, .. } if agent == "ghost"), "{}", errors[0]);
    assert!(matches!(&errors[1], Error::NotHolder { holder, .. } if holder == "a"), "{}", errors[1]);
    assert!(matches!(&errors[2], Error::UnknownTask { .. }), "{}", errors[2]);
    assert!(
        matches!(&errors[3], Error::IllegalTransition { from: "InProgress", to: "InProgress", .. }),
        "{}",
        errors[3]
    );
    assert!(matches!(&errors[4], Error::InvalidArgument { .. }), "{}", errors[4]);
    c.complete_task(&a, &t.id, vec!["out".into()]).await.unwrap();
    let after_complete = c.log().next_lsn();
    let err = c.update_task_status(&a, &t.id, TaskStatus::Blocked("late".into())).await.unwrap_err();
    assert_eq!(err.to_string(), format!("task {} is completed: it cannot become blocked", t.id));
    assert_eq!(c.log().next_lsn(), after_complete);
    assert_eq!(after_complete.get(), before.get() + 1, "only the completion was appended");
    c.stop_agent(&b, "done").await.unwrap();
    let err = c.claim_next_task(&b, Some(&[])).await.unwrap_err();
    assert!(err.to_string().contains("it stopped (done)"), "{err}");
}

#[tokio::test]
async fn the_state_survives_reopening_and_other_handles_see_it() {
    let root = tempfile::tempdir().unwrap();
    let a = agent("a");
    let id = {
        let c = open(root.path());
        c.register_agent(&a, "r", vec![]).await.unwrap();
        let t = c.create_task(&a, NewTask::new("persist")).await.unwrap();
        c.claim_next_task(&a, Some(&[])).await.unwrap();
        t.id
    };
    let c = open(root.path());
    let t = c.get_task(&id).unwrap().unwrap();
    assert_eq!((t.status, t.assigned_to), (TaskStatus::InProgress, Some(a.clone())));
    assert_eq!(c.get_tasks_for_agent(&a).unwrap().len(), 1);
    assert_eq!(c.list_tasks(Some("InProgress")).unwrap().len(), 1);
    assert_eq!(c.list_tasks(Some("Pending")).unwrap().len(), 0);
}

#[tokio::test]
async fn a_coordination_record_that_does_not_decode_is_an_error_naming_its_lsn() {
    let root = tempfile::tempdir().unwrap();
    {
        let c = open(root.path());
        c.register_agent(&agent("a"), "r", vec![]).await.unwrap();
        // Written by hand (or an older version): the coordinator's own log handle refuses it.
        let log = maos_coord::Log::options(c.store_dir().join("log")).open().unwrap();
        let kind = maos_coord::RecordKind::new(maos_coord::model::EVENT_RECORD_KIND).unwrap();
        log.append(kind, b"\xc1 not messagepack").unwrap();
        // Records of other kinds are skipped by the projections.
        c.log().append(maos_coord::RecordKind::new(999).unwrap(), b"someone else's").unwrap();
    }
    let err = Coordinator::open(root.path()).err().unwrap();
    assert!(matches!(err, Error::UndecodableRecord { lsn, .. } if lsn.get() == 2), "{err}");
    assert!(err.to_string().contains("cannot decode coordination record LSN 2"), "{err}");
}

#[tokio::test]
async fn tasks_are_queried_by_status_and_by_the_agent_they_are_assigned_to() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let (a, b) = (agent("a"), agent("b"));
    for x in [&a, &b] {
        c.register_agent(x, "r", vec![]).await.unwrap();
    }
    let t1 = c.create_task(&a, NewTask::new("one")).await.unwrap().id;
    let t2 = c.create_task(&a, NewTask::new("two")).await.unwrap().id;
    c.create_task(&a, NewTask::new("three")).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    c.claim_next_task(&b, Some(&[])).await.unwrap();
    c.complete_task(&b, &t2, vec![]).await.unwrap();
    let ids =
        |q: maos_coord::TaskQuery| c.query_tasks(&q).unwrap().into_iter().map(|t| t.id).collect::<Vec<_>>();
    let by =
        |agent: &AgentId| maos_coord::TaskQuery { assigned_to: Some(agent.clone()), ..Default::default() };
    assert_eq!(ids(by(&a)), [t1.as_str()]);
    assert_eq!(ids(by(&b)), [t2.as_str()], "last held counts too");
    let done_by_b = maos_coord::TaskQuery { status: Some("Completed".into()), ..by(&b) };
    assert_eq!(ids(done_by_b), [t2]);
    let pending_of_a = maos_coord::TaskQuery { status: Some("Pending".into()), ..by(&a) };
    assert!(ids(pending_of_a).is_empty());
    assert_eq!(ids(maos_coord::TaskQuery::default()).len(), 3);
    let err = c.query_tasks(&maos_coord::TaskQuery { status: Some("done".into()), ..Default::default() });
    assert!(err.unwrap_err().to_string().contains("\"done\" is not one of Pending"));
}

#[tokio::test]
async fn a_claim_that_waits_is_woken_by_a_task_another_handle_creates() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.register_agent(&b, "r", vec![]).await.unwrap();
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move { c.claim_next_task_within(&b, Some(&[]), Duration::from_secs(60)).await })
    };
    let other = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let t = other.create_task(&a, NewTask::new("late")).await.unwrap();
    let claimed = waiting.await.unwrap().unwrap().unwrap();
    assert_eq!((claimed.id, claimed.assigned_to), (t.id, Some(agent("b"))));
    // Nothing claimable within the time: None, not an error.
    let none = c.claim_next_task_within(&a, Some(&[]), Duration::from_millis(50)).await.unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn a_claim_that_waits_is_woken_when_a_lease_ends() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .lease(Duration::from_millis(100))
        .open()
        .unwrap();
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.register_agent(&b, "r", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("held")).await.unwrap().id;
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    // No record comes: only the end of a's lease can hand the task to b.
    let claimed = c.claim_next_task_within(&b, Some(&[]), Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.attempts, claimed.failures), (t, 2, 1));
}
