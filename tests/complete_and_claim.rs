//! `complete_and_claim_next`: the completion of a held task and the claim of the next one in one
//! atomic batch; refused as `complete_task` refuses, appending nothing; nothing ready completes
//! and claims nothing.

use std::time::Duration;

use maos_coord::model::{AgentId, NewTask, Priority, Subject, TaskId, TaskStatus};
use maos_coord::{Coordinator, Durability, Error, ManualClock, Timestamp};

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

/// A store whose claims hold leases of 200 ms on a clock the test moves, with `agents`
/// registered (with no capabilities).
async fn store(agents: &[&AgentId]) -> (tempfile::TempDir, ManualClock, Coordinator) {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .lease(Duration::from_millis(200))
        .clock(clock.shared())
        .open()
        .unwrap();
    for a in agents {
        c.register_agent(a, "worker", vec![]).await.unwrap();
    }
    (root, clock, c)
}

/// The LSN and type of every record about `task`, and the time it was appended.
fn trail(c: &Coordinator, reader: &AgentId, task: &TaskId) -> Vec<((u64, String), Timestamp)> {
    c.history(reader, &Subject::Task(task.to_string()))
        .unwrap()
        .into_iter()
        .map(|e| ((e.lsn.get(), e.recorded.event.type_name().to_owned()), e.time))
        .collect()
}

#[tokio::test]
async fn the_completion_and_the_next_claim_are_one_batch() {
    let w = agent("worker");
    let (_root, _clock, c) = store(&[]).await;
    c.register_agent(&w, "worker", vec!["rust".into()]).await.unwrap();
    let first = c.create_task(&w, NewTask::new("first").priority(Priority::High)).await.unwrap().id;
    let low = c.create_task(&w, NewTask::new("low").priority(Priority::Low)).await.unwrap().id;
    let python = c.create_task(&w, NewTask::new("py").priority(Priority::Critical).requires("python"));
    let python = python.await.unwrap().id;
    // Waits only on `first`: ready once the completion is applied, so the claim may take it.
    let next = NewTask::new("next").priority(Priority::High);
    let next = c.create_task_depending_on(&w, next, vec![first.clone()]).await.unwrap().id;
    assert_eq!(c.claim_next_task(&w, None).await.unwrap().unwrap().id, first);

    let before = c.log().next_lsn().get();
    let claimed = c.complete_and_claim_next(&w, &first, vec!["out.txt".into()], None).await.unwrap();
    let claimed = claimed.expect("a task to claim");
    assert_eq!(claimed.id, next, "the claim sees the dependency the completion readied");
    assert_eq!((claimed.status, claimed.assigned_to.as_ref()), (TaskStatus::InProgress, Some(&w)));
    assert!(claimed.lease_until.is_some());
    assert_eq!(c.log().next_lsn().get(), before + 2, "one command: the completion and the claim");
    let done = c.get_task(&first).unwrap().unwrap();
    assert_eq!((done.status, done.outputs), (TaskStatus::Completed, vec!["out.txt".to_owned()]));
    // Both records in one batch: consecutive LSNs, one append time.
    let (completed, completed_at) = trail(&c, &w, &first).pop().unwrap();
    let (claim, claimed_at) = trail(&c, &w, &next).pop().unwrap();
    assert_eq!((completed, claim), ((before, "TaskCompleted".into()), (before + 1, "TaskClaimed".into())));
    assert_eq!(completed_at, claimed_at);

    // Capabilities given stand for the registered ones (rust): with python, the python task.
    let claimed = c.complete_and_claim_next(&w, &next, vec![], Some(&["python".into()])).await.unwrap();
    assert_eq!(claimed.unwrap().id, python, "with python, the critical python task comes first");
    let claimed = c.complete_and_claim_next(&w, &python, vec![], None).await.unwrap();
    assert_eq!(claimed.unwrap().id, low);
}

#[tokio::test]
async fn a_refused_completion_appends_nothing_and_errs_as_complete_task() {
    let (w, other) = (agent("worker"), agent("other"));
    let (_root, clock, c) = store(&[&w, &other]).await;
    let held = c.create_task(&w, NewTask::new("held")).await.unwrap().id;
    let spare = c.create_task(&w, NewTask::new("spare")).await.unwrap().id;
    assert_eq!(c.claim_next_task(&other, None).await.unwrap().unwrap().id, held);
    let before = c.log().next_lsn();
    let cases: Vec<(AgentId, TaskId)> = vec![
        (w.clone(), held.clone()),                 // held by another: NotHolder
        (w.clone(), spare.clone()),                // pending: NotHolder
        (w.clone(), TaskId::new("nope").unwrap()), // UnknownTask
        (agent("ghost"), held.clone()),            // UnknownAgent
    ];
    for (a, t) in cases {
        let both = c.complete_and_claim_next(&a, &t, vec![], None).await.unwrap_err();
        let alone = c.complete_task(&a, &t, vec![]).await.unwrap_err();
        assert_eq!(both.to_string(), alone.to_string());
        assert_eq!(both.kind(), alone.kind());
    }
    assert_eq!(c.log().next_lsn(), before, "nothing appended");
    // Once the lease ended: LeaseLost, and the spare task stays unclaimed.
    clock.advance(Duration::from_secs(1));
    let err = c.complete_and_claim_next(&other, &held, vec![], None).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    assert_eq!(c.log().next_lsn(), before);
    assert_eq!(c.get_task(&spare).unwrap().unwrap().status, TaskStatus::Pending);
    // A completed task cannot be completed again.
    let t = c.claim_next_task(&w, None).await.unwrap().unwrap().id;
    c.complete_task(&w, &t, vec![]).await.unwrap();
    let err = c.complete_and_claim_next(&w, &t, vec![], None).await.unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { .. }), "{err}");
}

#[tokio::test]
async fn with_nothing_ready_the_task_completes_and_none_is_claimed() {
    let w = agent("worker");
    let (_root, _clock, c) = store(&[&w]).await;
    let only = c.create_task(&w, NewTask::new("only")).await.unwrap().id;
    let _needs = c.create_task(&w, NewTask::new("needs").requires("gpu")).await.unwrap();
    c.claim_next_task(&w, None).await.unwrap().unwrap();
    let before = c.log().next_lsn().get();
    assert!(c.complete_and_claim_next(&w, &only, vec![], None).await.unwrap().is_none());
    assert_eq!(c.log().next_lsn().get(), before + 1, "the completion alone");
    assert_eq!(c.get_task(&only).unwrap().unwrap().status, TaskStatus::Completed);
}

#[tokio::test]
async fn a_lapsed_lease_found_by_the_claim_is_recorded_and_its_task_claimed() {
    let (w, gone) = (agent("worker"), agent("gone"));
    let (_root, clock, c) = store(&[&w, &gone]).await;
    let lapsing = c.create_task(&w, NewTask::new("lapsing").priority(Priority::High)).await.unwrap().id;
    let mine = c.create_task(&w, NewTask::new("mine")).await.unwrap().id;
    assert_eq!(c.claim_next_task(&gone, None).await.unwrap().unwrap().id, lapsing);
    clock.advance(Duration::from_millis(150));
    assert_eq!(c.claim_next_task(&w, None).await.unwrap().unwrap().id, mine);
    clock.advance(Duration::from_millis(100)); // gone's lease ended; w's has not
    let claimed = c.complete_and_claim_next(&w, &mine, vec![], None).await.unwrap().unwrap();
    assert_eq!(claimed.id, lapsing);
    let types: Vec<String> = trail(&c, &w, &lapsing).into_iter().map(|((_, t), _)| t).collect();
    assert_eq!(types, ["TaskCreated", "TaskClaimed", "TaskLeaseLapsed", "TaskClaimed"]);
}
