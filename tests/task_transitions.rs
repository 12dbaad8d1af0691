//! Every path to a status has the same effects: for each way a claimed provider task `p` can
//! reach a status (a command, `update_task_status`, a lapse noticed by a claim or a heartbeat, a
//! stopped holder, a new incarnation of the holder, cancellation), every derived effect is
//! checked: the provider's status and counted failures, the dependency `p -> q`, whether the
//! consumer `q` is ready (and claimable, by the same rule), the consumer's status, and that a
//! replay of the log gives the same state.

use std::time::Duration;

use maos_coord::model::{
    AgentId, ArtifactType, DependencyId, DependencyStatus, NewTask, Priority, TaskId, TaskStatus,
};
use maos_coord::{Coordinator, Durability, Error, ManualClock, Registration};

const LEASE: Duration = Duration::from_millis(150);

struct World {
    c: Coordinator,
    clock: ManualClock,
    root: tempfile::TempDir,
    a: AgentId,
    b: AgentId,
    p: TaskId,
    q: TaskId,
    dep: DependencyId,
}

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn open(root: &std::path::Path, clock: &ManualClock) -> Coordinator {
    Coordinator::options(root)
        .durability(Durability::Buffered)
        .lease(LEASE)
        .clock(clock.shared())
        .open()
        .unwrap()
}

/// `a` holds provider `p` (which needs capability `p-work`, so `b` never claims it); `q` waits
/// on `p`.
async fn world(max_attempts: u32) -> World {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "worker", vec!["p-work".into()]).await.unwrap();
    c.register_agent(&b, "worker", vec![]).await.unwrap();
    let p = c
        .create_task(
            &a,
            NewTask::new("p").requires("p-work").priority(Priority::High).max_attempts(max_attempts),
        )
        .await
        .unwrap()
        .id;
    let q = c.create_task(&a, NewTask::new("q")).await.unwrap().id;
    let dep = c.register_dependency(&a, &p, &q, ArtifactType::Completion).await.unwrap();
    assert_eq!(c.claim_next_task(&a, None).await.unwrap().unwrap().id, p);
    assert_eq!(c.get_dependency(&dep).unwrap().unwrap().status, DependencyStatus::InProgress);
    World { c, clock, root, a, b, p, q, dep }
}

/// What a path must have brought about.
#[derive(Debug, PartialEq)]
struct Effects {
    provider: &'static str,
    failures: u32,
    dependency: &'static str,
    consumer_ready: bool,
    consumer: &'static str,
}

fn dependency_name(status: &DependencyStatus) -> &'static str {
    match status {
        DependencyStatus::Pending => "Pending",
        DependencyStatus::InProgress => "InProgress",
        DependencyStatus::Ready => "Ready",
        DependencyStatus::Failed(_) => "Failed",
    }
}

async fn observe(w: &World) -> Effects {
    let p = w.c.get_task(&w.p).unwrap().unwrap();
    let q = w.c.get_task(&w.q).unwrap().unwrap();
    let dep = w.c.get_dependency(&w.dep).unwrap().unwrap();
    let ready: Vec<TaskId> = w.c.get_ready_tasks(&w.b, None).unwrap().into_iter().map(|t| t.id).collect();
    let unmet = w.c.why_not_ready(&w.q).unwrap();
    assert_eq!(unmet.is_empty(), dep.status == DependencyStatus::Ready, "why_not_ready agrees");
    let consumer_ready = ready.contains(&w.q);
    let effects = Effects {
        provider: p.status.name(),
        failures: p.failures,
        dependency: dependency_name(&dep.status),
        consumer_ready,
        consumer: q.status.name(),
    };
    // A replay of the log gives the same state.
    let live = w.c.read(|s| s.clone()).unwrap();
    let replayed = open(w.root.path(), &w.clock).read(|s| s.clone()).unwrap();
    assert_eq!(live, replayed, "live state equals a replay");
    // And the claim rule agrees with the listing: b gets the first ready task.
    let claimed = w.c.claim_next_task(&w.b, None).await.unwrap().map(|t| t.id);
    assert_eq!(claimed, ready.first().cloned(), "claim_next_task hands out the first ready task");
    effects
}

fn expect(
    provider: &'static str,
    failures: u32,
    dependency: &'static str,
    consumer: &'static str,
) -> Effects {
    Effects { provider, failures, dependency, consumer_ready: dependency == "Ready", consumer }
}

#[tokio::test]
async fn completing_through_either_command_readies_the_consumer() {
    let w = world(3).await;
    w.c.complete_task(&w.a, &w.p, vec![]).await.unwrap();
    assert_eq!(observe(&w).await, expect("Completed", 0, "Ready", "Pending"));

    let w = world(3).await;
    w.c.update_task_status(&w.a, &w.p, TaskStatus::Completed).await.unwrap();
    assert_eq!(
        observe(&w).await,
        expect("Completed", 0, "Ready", "Pending"),
        "update_task_status(Completed)"
    );
}

#[tokio::test]
async fn giving_a_claim_back_is_free_whichever_command_does_it() {
    let w = world(3).await;
    w.c.release_task(&w.a, &w.p).await.unwrap();
    assert_eq!(observe(&w).await, expect("Pending", 0, "Pending", "Pending"));

    let w = world(3).await;
    w.c.update_task_status(&w.a, &w.p, TaskStatus::Pending).await.unwrap();
    assert_eq!(observe(&w).await, expect("Pending", 0, "Pending", "Pending"), "update_task_status(Pending)");

    let w = world(3).await;
    w.c.update_task_status(&w.a, &w.p, TaskStatus::Blocked("waiting for review".into())).await.unwrap();
    assert_eq!(observe(&w).await, expect("Blocked", 0, "Pending", "Pending"), "update_task_status(Blocked)");
}

#[tokio::test]
async fn every_claim_that_ends_without_a_result_counts_the_same() {
    // fail_task with attempts left
    let w = world(3).await;
    w.c.fail_task(&w.a, &w.p, "flaky").await.unwrap();
    assert_eq!(observe(&w).await, expect("Pending", 1, "Pending", "Pending"), "fail_task");

    // a lapse noticed by another agent's claim
    let w = world(3).await;
    w.clock.advance(LEASE * 2);
    assert!(w.c.claim_next_task(&w.b, None).await.unwrap().is_none());
    assert_eq!(observe(&w).await, expect("Pending", 1, "Pending", "Pending"), "lapse seen by a claim");

    // a lapse noticed by the holder's own heartbeat
    let w = world(3).await;
    w.clock.advance(LEASE * 2);
    assert!(matches!(w.c.heartbeat(&w.a).await.unwrap_err(), Error::LeaseLost { .. }));
    assert_eq!(observe(&w).await, expect("Pending", 1, "Pending", "Pending"), "lapse seen by a heartbeat");

    // the holder stopped
    let w = world(3).await;
    w.c.stop_agent(&w.a, "crashed").await.unwrap();
    assert_eq!(observe(&w).await, expect("Pending", 1, "Pending", "Pending"), "stop_agent");

    // the holder registered again (a new incarnation)
    let w = world(3).await;
    let again = open(w.root.path(), &w.clock);
    let registered = again.register_agent_with(&w.a, Registration::new("worker")).await.unwrap();
    assert_eq!(registered.released, std::slice::from_ref(&w.p));
    assert_eq!(observe(&w).await, expect("Pending", 1, "Pending", "Pending"), "new incarnation");
}

#[tokio::test]
async fn the_last_counted_end_fails_the_task_for_good_and_blocks_its_consumer() {
    let w = world(1).await;
    w.c.fail_task(&w.a, &w.p, "broken").await.unwrap();
    assert_eq!(observe(&w).await, expect("Failed", 1, "Failed", "Blocked"), "fail_task");

    let w = world(1).await;
    w.clock.advance(LEASE * 2);
    assert!(w.c.claim_next_task(&w.b, None).await.unwrap().is_none());
    assert_eq!(observe(&w).await, expect("Failed", 1, "Failed", "Blocked"), "lapse");

    let w = world(1).await;
    w.c.stop_agent(&w.a, "crashed").await.unwrap();
    assert_eq!(observe(&w).await, expect("Failed", 1, "Failed", "Blocked"), "stop_agent");

    let w = world(1).await;
    let again = open(w.root.path(), &w.clock);
    again.register_agent(&w.a, "worker", vec![]).await.unwrap();
    assert_eq!(observe(&w).await, expect("Failed", 1, "Failed", "Blocked"), "new incarnation");

    let w = world(3).await;
    w.c.update_task_status(&w.a, &w.p, TaskStatus::Failed("given up".into())).await.unwrap();
    assert_eq!(observe(&w).await, expect("Failed", 0, "Failed", "Blocked"), "update_task_status(Failed)");
    let q = w.c.get_task(&w.q).unwrap().unwrap();
    assert_eq!(q.status, TaskStatus::Blocked(format!("provider task {} failed: given up", w.p)));
}

#[tokio::test]
async fn cancelling_fails_the_dependency_and_blocks_or_cancels_the_consumer() {
    let w = world(3).await;
    assert_eq!(w.c.cancel_task(&w.b, &w.p, "no longer needed").await.unwrap(), std::slice::from_ref(&w.p));
    assert_eq!(observe(&w).await, expect("Cancelled", 0, "Failed", "Blocked"), "cancel_task");
    let q = w.c.get_task(&w.q).unwrap().unwrap();
    assert_eq!(
        q.status,
        TaskStatus::Blocked(format!("provider task {} was cancelled: no longer needed", w.p))
    );
    let unmet = w.c.why_not_ready(&w.q).unwrap();
    assert_eq!(
        unmet[0].status,
        DependencyStatus::Failed(format!("provider task {} was cancelled: no longer needed", w.p))
    );

    let w = world(3).await;
    w.c.update_task_status(&w.a, &w.p, TaskStatus::Cancelled("scope cut".into())).await.unwrap();
    assert_eq!(
        observe(&w).await,
        expect("Cancelled", 0, "Failed", "Blocked"),
        "update_task_status(Cancelled)"
    );

    let w = world(3).await;
    let cancelled = w.c.cancel_task_cascade(&w.b, &w.p, "scope cut").await.unwrap();
    assert_eq!(cancelled, [w.p.clone(), w.q.clone()]);
    assert_eq!(observe(&w).await, expect("Cancelled", 0, "Failed", "Cancelled"), "cancel_task_cascade");
}

#[tokio::test]
async fn a_cancelled_holder_loses_its_claim_and_a_finished_task_cannot_be_cancelled() {
    let w = world(3).await;
    w.c.cancel_task(&w.b, &w.p, "stop").await.unwrap();
    let err = w.c.complete_task(&w.a, &w.p, vec![]).await.unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { from: "Cancelled", .. }), "{err}");
    let before = w.c.log().next_lsn();
    let err = w.c.cancel_task(&w.b, &w.p, "again").await.unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { from: "Cancelled", to: "Cancelled", .. }), "{err}");
    assert_eq!(w.c.log().next_lsn(), before, "nothing appended");
}

#[tokio::test]
async fn a_dependency_on_a_provider_that_failed_for_good_is_failed_and_blocks_its_consumer() {
    let w = world(1).await;
    w.c.fail_task(&w.a, &w.p, "broken").await.unwrap();
    let late = w.c.create_task(&w.b, NewTask::new("late")).await.unwrap().id;
    let dep = w.c.register_dependency(&w.b, &w.p, &late, ArtifactType::Completion).await.unwrap();
    let reason = format!("provider task {} failed: attempts exhausted", w.p);
    assert_eq!(w.c.get_dependency(&dep).unwrap().unwrap().status, DependencyStatus::Failed(reason.clone()));
    assert_eq!(w.c.get_task(&late).unwrap().unwrap().status, TaskStatus::Blocked(reason.clone()));
    assert_eq!(w.c.why_not_ready(&late).unwrap()[0].status, DependencyStatus::Failed(reason));
}

#[tokio::test]
async fn a_dependency_registered_on_a_claimed_provider_reads_in_progress() {
    let w = world(3).await;
    let late = w.c.create_task(&w.b, NewTask::new("late")).await.unwrap().id;
    let dep = w.c.register_dependency(&w.b, &w.p, &late, ArtifactType::Completion).await.unwrap();
    assert_eq!(w.c.get_dependency(&dep).unwrap().unwrap().status, DependencyStatus::InProgress);
    w.c.complete_task(&w.a, &w.p, vec![]).await.unwrap();
    assert_eq!(w.c.get_dependency(&dep).unwrap().unwrap().status, DependencyStatus::Ready);
}

#[tokio::test]
async fn a_claim_ended_by_stopping_its_holder_counts_against_attempts() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let boss = agent("boss");
    c.register_agent(&boss, "lead", vec![]).await.unwrap();
    let t = c.create_task(&boss, NewTask::new("poison").max_attempts(2)).await.unwrap().id;
    let mut claims = 0;
    for i in 0..6 {
        let w = agent(&format!("w{i}"));
        c.register_agent(&w, "worker", vec![]).await.unwrap();
        if c.claim_next_task(&w, None).await.unwrap().is_some() {
            claims += 1;
        }
        c.stop_agent(&w, "crashed").await.unwrap();
    }
    let task = c.get_task(&t).unwrap().unwrap();
    assert_eq!(claims, 2, "claimed only while attempts remained");
    assert_eq!(
        (task.status, task.attempts, task.failures),
        (TaskStatus::Failed(maos_coord::coordinator::ATTEMPTS_EXHAUSTED.into()), 2, 2)
    );
}

#[tokio::test]
async fn a_stopped_agent_releases_its_locks() {
    let w = world(3).await;
    let lock = maos_coord::model::LockName::new("deploy").unwrap();
    w.c.try_lock(&w.a, &lock, Duration::from_secs(60)).await.unwrap().unwrap();
    assert!(w.c.try_lock(&w.b, &lock, Duration::from_secs(60)).await.unwrap().is_none());
    w.c.stop_agent(&w.a, "done").await.unwrap();
    assert!(w.c.try_lock(&w.b, &lock, Duration::from_secs(60)).await.unwrap().is_some());
}
