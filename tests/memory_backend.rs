//! The coordinator on a backend other than the local directory: the in-memory one, whose
//! compare-and-append is optimistic like a remote log's. Everything the coordinator, its
//! snapshots, subscriptions and compaction do goes through the backend traits, so it all works
//! here too; and a command that another writer beat is decided again on the newer tail.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use maos_coord::backend::memory::{MemoryBlobs, MemoryLog};
use maos_coord::backend::Backend;
use maos_coord::coordinator::CompactOptions;
use maos_coord::{
    AgentId, ContextKey, Coordinator, Durability, Error, EventFilter, NewTask, RecordKind, Subject,
    TaskStatus, Visibility,
};

fn open(backend: &Backend) -> Coordinator {
    Coordinator::options(".")
        .durability(Durability::Buffered)
        .snapshot_every(0)
        .open_on(backend.clone())
        .unwrap()
}

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

/// Runs a future that never waits (a command on a memory log) to its end, from code that is
/// not async.
fn at_once<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a command on a memory log waited"),
    }
}

#[tokio::test]
async fn the_coordinator_snapshots_subscribes_compacts_and_reopens_on_an_in_memory_backend() {
    let backend = Backend::memory();
    let c = open(&backend);
    assert!(c.local_log().is_none(), "not a file log");
    let me = agent("builder");
    c.register_agent(&me, "engineer", vec!["rust".into()]).await.unwrap();
    let mut durable = c.subscribe_durable(&me, "audit", EventFilter::all()).unwrap();
    let mut ids = Vec::new();
    for name in ["compile", "test", "ship"] {
        ids.push(c.create_task(&me, NewTask::new(name)).await.unwrap().id);
    }
    let claimed = c.claim_next_task(&me, None).await.unwrap().expect("a task");
    assert_eq!(claimed.id, ids[0]);
    c.complete_task(&me, &claimed.id, vec!["target/app".into()]).await.unwrap();
    let key = ContextKey::new("build/result").unwrap();
    c.set_context(&me, &key, serde_json::json!({"ok": false}), Visibility::Shared).await.unwrap();
    c.set_context(&me, &key, serde_json::json!({"ok": true}), Visibility::Shared).await.unwrap();

    // A live subscription from the start sees every event; the durable one acknowledges them.
    let tail = c.log().next_lsn();
    let mut live = c.subscribe_from(&me, EventFilter::all(), maos_coord::Lsn::new(1)).unwrap();
    let mut seen = 0;
    while live.try_next().unwrap().is_some() {
        seen += 1;
    }
    assert_eq!(seen, tail.get() - 1, "one delivery per record");
    let mut last = None;
    while let Some(delivery) = durable.try_next().unwrap() {
        last = Some(delivery.lsn);
    }
    durable.ack(last.expect("deliveries")).unwrap();

    // A snapshot, then a compaction down to it: the log loses its prefix, the state stays.
    let snapshot = c.snapshot().unwrap();
    let report = c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() }).unwrap();
    assert_eq!(report.snapshot, Some(snapshot));
    assert_eq!(c.log().first_lsn().unwrap(), report.limit);
    assert!(report.limit > maos_coord::Lsn::new(1), "{report:?}");
    let before = c.read(Clone::clone).unwrap();
    let history = c.history(&me, &Subject::Task(ids[0].to_string())).unwrap();
    assert!(!history.is_empty(), "keyed compaction kept the task's records for audits");
    drop((live, durable, c));

    // Reopened on the same backend (as another process would): from the snapshot and the log
    // after it, the same state; the durable cursor resumes after what it acknowledged.
    let c = open(&backend);
    assert_eq!(c.read(Clone::clone).unwrap(), before);
    assert_eq!(c.get_context(&me, &key).unwrap().expect("set").version, 2);
    let durable = c.subscribe_durable(&me, "audit", EventFilter::all()).unwrap();
    assert_eq!(durable.resume_position(), last.unwrap().next());
    let next = c.claim_next_task(&me, None).await.unwrap().expect("a task");
    assert_eq!(next.id, ids[1]);
}

#[tokio::test]
async fn a_command_another_writer_beat_is_decided_again_on_the_newer_tail() {
    let log = MemoryLog::new();
    let backend = Backend { log: Arc::new(log.clone()), blobs: Arc::new(MemoryBlobs::new()) };
    // Two handles with projections of their own, as two processes would have.
    let (a, b) = (open(&backend), open(&backend));
    let (x, y) = (agent("x"), agent("y"));
    a.register_agent(&x, "worker", vec![]).await.unwrap();
    b.register_agent(&y, "worker", vec![]).await.unwrap();
    let first = a.create_task(&x, NewTask::new("first")).await.unwrap().id;
    let second = a.create_task(&x, NewTask::new("second")).await.unwrap().id;

    // x decides to take the first task; before its claim commits, y takes that task.
    let (b2, y2, taken) = (b.clone(), y.clone(), first.clone());
    log.before_next_commit(move || {
        let claimed = at_once(b2.claim_next_task(&y2, None)).unwrap().expect("a task");
        assert_eq!(claimed.id, taken);
    });
    let claimed = a.claim_next_task(&x, None).await.unwrap().expect("a task");
    assert_eq!(log.conflicts(), 1, "x's first decision lost to y's append");
    assert_eq!(claimed.id, second, "decided again, x takes the task still free");
    for (task, holder) in [(&first, &y), (&second, &x)] {
        let task = a.get_task(task).unwrap().unwrap();
        assert_eq!(task.status, TaskStatus::InProgress);
        assert_eq!(task.assigned_to.as_ref(), Some(holder));
    }
    // Once more with nothing left: the retry finds nothing claimable rather than a stale task.
    let third = a.create_task(&x, NewTask::new("third")).await.unwrap().id;
    let (b2, y2) = (b.clone(), y.clone());
    log.before_next_commit(move || {
        at_once(b2.claim_next_task(&y2, None)).unwrap().expect("the third task");
    });
    assert!(a.claim_next_task(&x, None).await.unwrap().is_none());
    assert_eq!(b.get_task(&third).unwrap().unwrap().assigned_to, Some(y));
}

#[test]
fn concurrent_claims_through_two_handles_of_an_optimistic_log_are_exactly_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    runtime.block_on(async {
        let backend = Backend::memory();
        let handles = [open(&backend), open(&backend)];
        let lead = agent("lead");
        handles[0].register_agent(&lead, "lead", vec![]).await.unwrap();
        let mut created = Vec::new();
        for i in 0..200 {
            created.push(handles[0].create_task(&lead, NewTask::new(format!("t{i}"))).await.unwrap().id);
        }
        let mut workers = Vec::new();
        for w in 0..8 {
            let c = handles[w % 2].clone();
            workers.push(tokio::spawn(async move {
                let me = agent(&format!("w{w}"));
                c.register_agent(&me, "worker", vec![]).await.unwrap();
                let mut done = Vec::new();
                while let Some(task) = c.claim_next_task(&me, None).await.unwrap() {
                    c.complete_task(&me, &task.id, vec![]).await.unwrap();
                    done.push(task.id);
                }
                done
            }));
        }
        let mut done = Vec::new();
        for worker in workers {
            done.extend(worker.await.unwrap());
        }
        done.sort();
        created.sort();
        assert_eq!(done, created, "every task completed, each by one worker once");
        for c in &handles {
            assert!(c.list_tasks(None).unwrap().iter().all(|t| t.status == TaskStatus::Completed));
        }
    });
}

#[tokio::test]
async fn the_log_a_coordinator_hands_out_refuses_coordination_records_on_any_backend() {
    let c = open(&Backend::memory());
    let before = c.log().next_lsn();
    let err = c.log().append(RecordKind::new(1).unwrap(), b"forged").unwrap_err();
    assert!(matches!(err, Error::ReservedKind { kind: 1 }), "{err}");
    let err = c
        .log()
        .compare_and_append(Box::new(|_| Ok(vec![(RecordKind::new(2).unwrap(), b"forged".to_vec())])))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReservedKind { kind: 2 }), "{err}");
    assert_eq!(c.log().next_lsn(), before);
    c.log().append(RecordKind::new(16).unwrap(), b"an application record").unwrap();
}
