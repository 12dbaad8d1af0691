//! The queries behind the command line's debug views: the dependency graph (whole, or the part
//! connected to one task) and the store at a glance (agents, tasks by status, locks, barriers,
//! the latest events, and when the answer changes without a record).

use std::time::Duration;

use maos_coord::coordinator::{GraphNode, OverviewLimits, TaskCounts};
use maos_coord::model::{AgentId, ArtifactType, BarrierName, DependencyStatus, LockName, NewTask, TaskId};
use maos_coord::{Coordinator, Durability, Error, ManualClock, TaskStatus};

const LEASE: Duration = Duration::from_secs(60);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(100);

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn open(root: &std::path::Path, clock: &ManualClock) -> Coordinator {
    Coordinator::options(root)
        .durability(Durability::Buffered)
        .lease(LEASE)
        .heartbeat_timeout(HEARTBEAT_TIMEOUT)
        .clock(clock.shared())
        .open()
        .unwrap()
}

fn ids(nodes: &[GraphNode]) -> Vec<&str> {
    nodes.iter().map(|n| n.id.as_str()).collect()
}

async fn task(c: &Coordinator, a: &AgentId, id: &str, name: &str) -> TaskId {
    c.create_task(a, NewTask::new(name).id(TaskId::new(id).unwrap())).await.unwrap().id
}

#[tokio::test]
async fn the_graph_holds_every_task_and_dependency_with_their_status() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let a = agent("lead");
    c.register_agent(&a, "lead", vec![]).await.unwrap();
    let design = task(&c, &a, "design", "design \"the\" [api]").await;
    let build = task(&c, &a, "build", "build").await;
    let lone = task(&c, &a, "lone", "lone").await;
    c.register_dependency(&a, &design, &build, ArtifactType::File).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    c.complete_task(&a, &design, vec![]).await.unwrap();

    let graph = c.dependency_graph(None).unwrap();
    assert_eq!(ids(&graph.nodes), ["design", "build", "lone"], "every task, oldest first");
    assert_eq!(graph.nodes[0].name, "design \"the\" [api]");
    assert_eq!(graph.nodes[0].status, TaskStatus::Completed);
    assert_eq!(graph.nodes[1].status, TaskStatus::Pending);
    assert_eq!(graph.edges.len(), 1);
    let edge = &graph.edges[0];
    assert_eq!((edge.provider.as_str(), edge.consumer.as_str()), ("design", "build"));
    assert_eq!(
        (edge.status.clone(), edge.artifact_type.clone()),
        (DependencyStatus::Ready, ArtifactType::File)
    );

    let alone = c.dependency_graph(Some(&lone)).unwrap();
    assert_eq!(ids(&alone.nodes), ["lone"], "a task without dependencies is its own part");
    assert!(alone.edges.is_empty());
}

#[tokio::test]
async fn the_graph_around_a_task_is_the_part_connected_to_it_in_either_direction() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let a = agent("lead");
    c.register_agent(&a, "lead", vec![]).await.unwrap();
    // Two parts: a diamond a -> {b, c} -> d with e also feeding c, and x -> y.
    for id in ["a", "b", "c", "d", "e", "x", "y"] {
        task(&c, &a, id, id).await;
    }
    let t = |id: &str| TaskId::new(id).unwrap();
    for (p, q) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("e", "c"), ("x", "y")] {
        c.register_dependency(&a, &t(p), &t(q), ArtifactType::Completion).await.unwrap();
    }
    for around in ["a", "d", "e", "b"] {
        let part = c.dependency_graph(Some(&t(around))).unwrap();
        assert_eq!(ids(&part.nodes), ["a", "b", "c", "d", "e"], "around {around}");
        let edges: Vec<&str> = part.edges.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(edges, ["a->b", "a->c", "b->d", "c->d", "e->c"], "around {around}");
    }
    let other = c.dependency_graph(Some(&t("y"))).unwrap();
    assert_eq!(ids(&other.nodes), ["x", "y"]);
    assert_eq!(other.edges.len(), 1);
    assert_eq!(c.dependency_graph(None).unwrap().edges.len(), 6);

    let err = c.dependency_graph(Some(&t("nope"))).unwrap_err();
    assert!(matches!(&err, Error::UnknownTask { task } if task.as_str() == "nope"), "{err}");
}

#[tokio::test]
async fn the_overview_counts_every_task_and_lists_the_busiest_first() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let a = agent("worker");
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    let done = task(&c, &a, "done", "done").await;
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    c.complete_task(&a, &done, vec![]).await.unwrap();
    let held = task(&c, &a, "held", "held").await;
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    let cancelled = task(&c, &a, "cancelled", "cancelled").await;
    c.cancel_task(&a, &cancelled, "not needed").await.unwrap();
    task(&c, &a, "low", "low").await;
    c.create_task(
        &a,
        NewTask::new("urgent").id(TaskId::new("urgent").unwrap()).priority(maos_coord::Priority::High),
    )
    .await
    .unwrap();

    let o = c.overview(OverviewLimits::default()).unwrap();
    assert_eq!(o.next_lsn, c.log().next_lsn());
    assert_eq!(
        o.counts,
        TaskCounts { pending: 2, in_progress: 1, completed: 1, cancelled: 1, ..TaskCounts::default() }
    );
    assert_eq!(o.counts.total(), 5);
    let listed: Vec<&str> = o.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        listed,
        ["held", "urgent", "low", "cancelled", "done"],
        "in progress, pending in claim order, then finished ones"
    );
    assert_eq!(o.agents.len(), 1);
    assert_eq!(o.agents[0].holds, [held]);

    let few = c.overview(OverviewLimits { tasks: 2, events: 0 }).unwrap();
    assert_eq!(few.tasks.len(), 2, "the list is cut, the counts are not");
    assert_eq!(few.counts.total(), 5);
    assert!(few.events.is_empty());
}

#[tokio::test]
async fn the_overview_shows_liveness_locks_barriers_and_the_latest_events() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = open(root.path(), &clock);
    let (a, b) = (agent("alive"), agent("silent"));
    c.register_agent(&b, "worker", vec![]).await.unwrap();
    clock.advance(Duration::from_secs(50));
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    let lock = LockName::new("deploy").unwrap();
    c.try_lock(&a, &lock, Duration::from_secs(30)).await.unwrap().unwrap();
    let barrier = BarrierName::new("builds").unwrap();
    c.create_barrier(&a, &barrier, vec!["one".into(), "two".into()]).await.unwrap();
    c.signal_barrier(&a, &barrier, "one").await.unwrap();

    let o = c.overview(OverviewLimits::default()).unwrap();
    assert!(o.agents.iter().all(|s| !s.gone));
    assert_eq!(o.locks.len(), 1);
    assert_eq!((o.locks[0].0.as_str(), o.locks[0].1.holder.as_str()), ("deploy", "alive"));
    assert_eq!(o.barriers.len(), 1);
    assert_eq!(o.barriers[0].1.signalled.len(), 1);
    // The lock's lease (30 s from now) ends before the silent agent's timeout (50 s from now).
    assert_eq!(o.changes_at, Some(o.now.plus(Duration::from_secs(30))));
    let types: Vec<&str> = o.events.iter().map(|e| e.recorded.event.type_name()).collect();
    assert_eq!(types, ["AgentStarted", "AgentStarted", "LockAcquired", "BarrierCreated", "BarrierSignalled"]);
    assert!(o.events.windows(2).all(|w| w[0].lsn < w[1].lsn), "oldest first");

    let latest = c.overview(OverviewLimits { tasks: 0, events: 2 }).unwrap();
    let types: Vec<&str> = latest.events.iter().map(|e| e.recorded.event.type_name()).collect();
    assert_eq!(types, ["BarrierCreated", "BarrierSignalled"], "only the latest records");

    clock.advance(Duration::from_secs(31));
    let o = c.overview(OverviewLimits::default()).unwrap();
    assert_eq!(o.changes_at, Some(o.now.plus(Duration::from_secs(19))), "the silent agent's timeout is next");
    clock.advance(Duration::from_secs(20));
    let o = c.overview(OverviewLimits::default()).unwrap();
    let gone: Vec<(&str, bool)> = o.agents.iter().map(|s| (s.agent.id.as_str(), s.gone)).collect();
    assert_eq!(gone, [("alive", false), ("silent", true)]);
    assert_eq!(o.changes_at, Some(o.now.plus(Duration::from_secs(49))), "the other agent's timeout");
    assert_eq!(o.locks.len(), 1, "a lapsed lock is listed until it is released or granted again");
}
