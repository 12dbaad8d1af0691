//! Leases under failure, on an injected clock (nothing here sleeps): a lease that ran out is
//! over whether or not anyone noticed; queries list what claims hand out; a restarted agent is a
//! new incarnation; wall-clock jumps; aging against starvation.

use std::time::Duration;

use maos_coord::model::{AgentId, ClaimPolicy, LockName, NewTask, Priority, TaskId, TaskStatus};
use maos_coord::{Coordinator, Durability, Error, ManualClock, Registration};

const LEASE: Duration = Duration::from_millis(150);

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

async fn two_agents(c: &Coordinator) -> (AgentId, AgentId) {
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    c.register_agent(&b, "worker", vec![]).await.unwrap();
    (a, b)
}

/// A store on a manual clock where agent `a` holds task `t` and agent `b` waits.
async fn one_claim() -> (tempfile::TempDir, ManualClock, Coordinator, AgentId, AgentId, TaskId) {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, b) = two_agents(&c).await;
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap().id;
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    (root, clock, c, a, b, t)
}

#[tokio::test]
async fn a_heartbeat_after_the_lease_ran_out_reports_the_lapse_and_frees_the_task() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, b) = two_agents(&c).await;
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap().id;
    let claimed = c.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.advance(LEASE * 2);
    let err = c.heartbeat(&a).await.unwrap_err();
    match &err {
        Error::LeaseLost { agent, tasks, ended } => {
            assert_eq!((agent.as_str(), tasks.as_slice()), ("a", [t.clone()].as_slice()));
            assert_eq!(Some(*ended), claimed.lease_until);
        }
        other => panic!("expected LeaseLost, got {other}"),
    }
    let task = c.get_task(&t).unwrap().unwrap();
    assert_eq!(
        (task.status, task.lease_until, task.failures),
        (TaskStatus::Pending, None, 1),
        "the lapse is recorded"
    );
    let history = c.history(&a, &maos_coord::model::Subject::Task(t.to_string())).unwrap();
    assert!(history
        .iter()
        .any(|e| e.recorded.event.type_name() == "TaskLeaseLapsed" && e.recorded.actor == a));
    assert_eq!(c.claim_next_task(&b, None).await.unwrap().map(|t| t.id), Some(t));
}

#[tokio::test]
async fn a_heartbeat_renews_live_leases_and_lists_the_lapsed_ones() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, b) = two_agents(&c).await;
    let early = c.create_task(&a, NewTask::new("early")).await.unwrap().id;
    let late = c.create_task(&a, NewTask::new("late")).await.unwrap().id;
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.advance(Duration::from_millis(100));
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.advance(Duration::from_millis(100)); // early's lease ended 50 ms ago, late's has 50 ms left
    let report = c.heartbeat(&a).await.unwrap();
    let now = c.get_task(&late).unwrap().unwrap().updated_at;
    assert_eq!(report.renewed, [(late.clone(), now.plus(LEASE))]);
    assert_eq!(report.lapsed, std::slice::from_ref(&early));
    assert_eq!(c.get_task(&late).unwrap().unwrap().lease_until, Some(now.plus(LEASE)));
    assert_eq!(c.claim_next_task(&b, None).await.unwrap().map(|t| t.id), Some(early));
}

#[tokio::test]
async fn completing_or_failing_after_the_lease_ran_out_is_refused_even_if_nobody_claimed() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, _) = two_agents(&c).await;
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap().id;
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.advance(LEASE + Duration::from_millis(1));
    let before = c.log().next_lsn();
    let errors = [
        c.complete_task(&a, &t, vec![]).await.unwrap_err(),
        c.fail_task(&a, &t, "late").await.unwrap_err(),
        c.release_task(&a, &t).await.unwrap_err(),
        c.add_output(&a, &t, "out").await.unwrap_err(),
        c.update_task_status(&a, &t, TaskStatus::Completed).await.unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(&err, Error::LeaseLost { tasks, .. } if tasks == std::slice::from_ref(&t)), "{err}");
    }
    assert_eq!(c.log().next_lsn(), before, "refusals append nothing");
    // Exactly at the end of the lease it still holds.
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path(), &clock);
    let (a, _) = two_agents(&c).await;
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap().id;
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.advance(LEASE);
    c.complete_task(&a, &t, vec![]).await.unwrap();
}

#[tokio::test]
async fn ready_tasks_list_what_a_claim_would_hand_out_including_lapsed_leases() {
    let (_root, clock, c, _a, b, t) = one_claim().await;
    assert!(c.get_ready_tasks(&b, None).unwrap().is_empty());
    clock.advance(LEASE * 2);
    let ready: Vec<TaskId> = c.get_ready_tasks(&b, None).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ready, std::slice::from_ref(&t), "a lapsed lease is claimable, so it is listed");
    assert_eq!(c.claim_next_task(&b, None).await.unwrap().map(|t| t.id), Some(t));
}

#[tokio::test]
async fn claims_and_queries_use_the_callers_capabilities_or_else_the_registered_ones() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let rust = agent("rustacean");
    c.register_agent(&rust, "engineer", vec!["rust".into()]).await.unwrap();
    let t = c.create_task(&rust, NewTask::new("compile").requires("rust")).await.unwrap().id;
    let none: &[String] = &[];
    assert!(c.get_ready_tasks(&rust, Some(none)).unwrap().is_empty(), "an empty list means no capabilities");
    assert!(c.claim_next_task(&rust, Some(none)).await.unwrap().is_none());
    let python = ["python".to_string()];
    assert!(
        c.get_ready_tasks(&rust, Some(&python)).unwrap().is_empty(),
        "the caller's list replaces the registered one"
    );
    assert_eq!(c.get_ready_tasks(&rust, None).unwrap().len(), 1, "omitted: the registered capabilities");
    assert_eq!(c.claim_next_task(&rust, None).await.unwrap().map(|t| t.id), Some(t));
}

#[tokio::test]
async fn a_restarted_agent_is_a_new_incarnation_that_releases_the_old_claims_and_locks() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let first = open(root.path(), &clock);
    let (a, b) = two_agents(&first).await;
    let t = first.create_task(&a, NewTask::new("t")).await.unwrap().id;
    first.claim_next_task(&a, None).await.unwrap().unwrap();
    let lock = LockName::new("deploy").unwrap();
    first.try_lock(&a, &lock, Duration::from_secs(600)).await.unwrap().unwrap();
    let old = first.agent(&a).unwrap().unwrap().incarnation;

    // The process died; a new one registers the same id and keeps heartbeating.
    let second = open(root.path(), &clock);
    let registered = second.register_agent_with(&a, Registration::new("worker")).await.unwrap();
    assert!(registered.incarnation > old);
    assert_eq!((registered.released.as_slice(), registered.resumed.len()), ([t.clone()].as_slice(), 0));
    for _ in 0..5 {
        clock.advance(Duration::from_millis(100));
        let report = second.heartbeat(&a).await.unwrap();
        assert!(report.renewed.is_empty(), "the old claim is not the new incarnation's");
    }
    let task = second.get_task(&t).unwrap().unwrap();
    assert_eq!((task.status, task.failures), (TaskStatus::Pending, 1), "released, counted as a lost attempt");
    assert_eq!(second.claim_next_task(&b, None).await.unwrap().map(|t| t.id), Some(t.clone()));
    assert!(second.try_lock(&b, &lock, Duration::from_secs(1)).await.unwrap().is_some(), "lock released");

    // The earlier incarnation's handle can no longer act as `a`.
    let before = second.log().next_lsn();
    for err in
        [first.heartbeat(&a).await.unwrap_err(), first.complete_task(&a, &t, vec![]).await.unwrap_err()]
    {
        assert!(
            matches!(&err, Error::StaleIncarnation { yours, current, .. } if *yours == old && *current == registered.incarnation),
            "{err}"
        );
    }
    assert_eq!(second.log().next_lsn(), before);
}

#[tokio::test]
async fn a_registration_that_resumes_takes_over_the_claims_and_locks_and_returns_them() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let first = open(root.path(), &clock);
    let (a, b) = two_agents(&first).await;
    let kept = first.create_task(&a, NewTask::new("kept")).await.unwrap().id;
    let lapsed = first.create_task(&a, NewTask::new("lapsed")).await.unwrap().id;
    first.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.advance(LEASE);
    first.claim_next_task(&a, None).await.unwrap().unwrap();
    let lock = LockName::new("deploy").unwrap();
    let grant = first.try_lock(&a, &lock, Duration::from_secs(600)).await.unwrap().unwrap();
    clock.advance(Duration::from_millis(10)); // `kept`'s lease (claimed first) has ended

    let second = open(root.path(), &clock);
    let registered = second.register_agent_with(&a, Registration::new("worker").resume(true)).await.unwrap();
    assert_eq!(
        registered.resumed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&lapsed)
    );
    assert_eq!(registered.released, std::slice::from_ref(&kept), "a claim whose lease ended lapses instead");
    assert_eq!(registered.resumed_locks, std::slice::from_ref(&lock));
    let resumed = &registered.resumed[0];
    assert_eq!(resumed.lease_until, Some(second.get_task(&lapsed).unwrap().unwrap().updated_at.plus(LEASE)));
    assert_eq!(second.read(|s| s.locks.get(&lock).map(|l| l.token)).unwrap(), Some(grant.token));
    second.complete_task(&a, &lapsed, vec![]).await.unwrap();
    assert!(first.heartbeat(&a).await.is_err(), "the earlier handle is stale");
    assert!(second.try_lock(&b, &lock, Duration::from_secs(1)).await.unwrap().is_none(), "lock kept");
}

#[tokio::test]
async fn a_backward_clock_jump_never_ends_a_lease_early() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, b) = two_agents(&c).await;
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap().id;
    let claimed = c.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.rewind(Duration::from_secs(10));
    assert!(c.claim_next_task(&b, None).await.unwrap().is_none());
    // Recorded time stands still until the clock catches up: the lease lasts longer by the jump.
    let last = c.read(|s| s.last_time).unwrap();
    assert!(last <= claimed.lease_until.unwrap());
    clock.advance(Duration::from_secs(10) + LEASE - Duration::from_millis(1));
    assert!(c.claim_next_task(&b, None).await.unwrap().is_none(), "not yet past the lease end");
    clock.advance(Duration::from_millis(2));
    assert_eq!(c.claim_next_task(&b, None).await.unwrap().map(|t| t.id), Some(t));
}

#[tokio::test]
async fn a_forward_clock_jump_ends_the_leases_it_passes() {
    let (_root, clock, c, _a, b, t) = one_claim().await;
    clock.advance(Duration::from_secs(3600));
    assert_eq!(c.claim_next_task(&b, None).await.unwrap().map(|t| t.id), Some(t));
    let times: Vec<_> = c
        .history(&b, &maos_coord::model::Subject::Task(c.get_tasks_for_agent(&b).unwrap()[0].id.to_string()))
        .unwrap()
        .into_iter()
        .map(|e| e.time)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "recorded time never goes backwards");
}

/// A fresh Low task, then rounds of: a new High task, half a second, one claim.
async fn starve(c: &Coordinator, clock: &ManualClock, rounds: usize) -> Option<usize> {
    let (a, _) = two_agents(c).await;
    let low = c.create_task(&a, NewTask::new("low").priority(Priority::Low)).await.unwrap().id;
    for round in 0..rounds {
        c.create_task(&a, NewTask::new(format!("high-{round}")).priority(Priority::High)).await.unwrap();
        clock.advance(Duration::from_millis(500));
        let claimed = c.claim_next_task(&a, None).await.unwrap().unwrap();
        c.complete_task(&a, &claimed.id, vec![]).await.unwrap();
        if claimed.id == low {
            return Some(round);
        }
    }
    None
}

#[tokio::test]
async fn strict_priority_lets_a_stream_of_high_tasks_starve_a_low_one() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    assert_eq!(c.claim_policy().unwrap(), ClaimPolicy::Strict, "strict is the default");
    assert_eq!(starve(&c, &clock, 20).await, None);
}

#[tokio::test]
async fn aging_lets_a_waiting_low_task_overtake_a_stream_of_high_ones() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let boss = agent("boss");
    c.register_agent(&boss, "lead", vec![]).await.unwrap();
    c.set_claim_policy(&boss, ClaimPolicy::Aging { every_ms: 1000 }).await.unwrap();
    // Low -> Normal after 1 s, -> High after 2 s; then it is the oldest High task.
    assert_eq!(starve(&c, &clock, 20).await, Some(3));
}

#[tokio::test]
async fn the_claim_policy_is_recorded_so_every_process_claims_in_the_same_order() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let boss = agent("boss");
    c.register_agent(&boss, "lead", vec![]).await.unwrap();
    let aging = ClaimPolicy::Aging { every_ms: 250 };
    c.set_claim_policy(&boss, aging).await.unwrap();
    let other = open(root.path(), &clock);
    assert_eq!(other.claim_policy().unwrap(), aging);
    other.snapshot().unwrap();
    assert_eq!(open(root.path(), &clock).claim_policy().unwrap(), aging, "kept in snapshots");
    let err = c.set_claim_policy(&boss, ClaimPolicy::Aging { every_ms: 0 }).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[tokio::test]
async fn under_aging_ready_tasks_and_claims_agree_on_the_order() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, b) = two_agents(&c).await;
    c.set_claim_policy(&a, ClaimPolicy::Aging { every_ms: 100 }).await.unwrap();
    for (i, priority) in [Priority::Low, Priority::Critical, Priority::Normal, Priority::Low, Priority::High]
        .into_iter()
        .enumerate()
    {
        c.create_task(&a, NewTask::new(format!("t{i}")).priority(priority)).await.unwrap();
        clock.advance(Duration::from_millis(70));
    }
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    clock.advance(LEASE * 2); // that claim lapses: its task is claimable again
    for _ in 0..5 {
        let ready: Vec<TaskId> = c.get_ready_tasks(&b, None).unwrap().into_iter().map(|t| t.id).collect();
        let claimed = c.claim_next_task(&b, None).await.unwrap().map(|t| t.id);
        assert_eq!(claimed.as_ref(), ready.first());
        clock.advance(Duration::from_millis(30));
    }
}

#[tokio::test]
async fn agents_are_listed_with_what_they_hold_while_their_leases_last() {
    let (_root, clock, c, a, b, t) = one_claim().await;
    let lock = LockName::new("deploy").unwrap();
    c.try_lock(&b, &lock, LEASE * 2).await.unwrap().unwrap();
    c.stop_agent(&b, "done").await.unwrap();
    let listed = c.list_agents().unwrap();
    assert_eq!(listed.iter().map(|s| s.agent.id.clone()).collect::<Vec<_>>(), [a.clone(), b.clone()]);
    assert_eq!((&listed[0].holds[..], listed[0].gone), (std::slice::from_ref(&t), false));
    assert!(listed[1].locks.is_empty(), "a stopped agent's locks are released");
    assert!(c.try_lock(&a, &lock, LEASE * 2).await.unwrap().is_some());
    let summary = c.agent_summary(&a).unwrap().unwrap();
    assert_eq!(summary.locks, [lock]);
    // Past the lease and the heartbeat timeout: it holds nothing and is gone, recorded or not.
    clock.advance(LEASE * 3 + Duration::from_secs(60));
    let summary = c.agent_summary(&a).unwrap().unwrap();
    assert!(summary.holds.is_empty() && summary.locks.is_empty() && summary.gone, "{summary:?}");
    assert!(c.agent_summary(&agent("nobody")).unwrap().is_none());
}
