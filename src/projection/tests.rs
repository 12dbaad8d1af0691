//! Unit tests of the projections: each event's effect, and the indexes claims rely on.

use std::collections::BTreeMap;

use super::*;
use crate::model::*;
use crate::types::{Lsn, Timestamp};

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn task_id(name: &str) -> TaskId {
    TaskId::new(name).unwrap()
}

fn new_task(id: &str, priority: Priority) -> Task {
    Task {
        id: task_id(id),
        name: id.into(),
        description: String::new(),
        priority,
        required_capabilities: Vec::new(),
        status: TaskStatus::Pending,
        assigned_to: None,
        outputs: Vec::new(),
        metadata: serde_json::Value::Null,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        attempts: 0,
        max_attempts: 3,
        failures: 0,
        lease_until: None,
        created_by: agent("creator"),
        idempotency_key: Some(format!("key-{id}")),
        created_lsn: 0,
    }
}

/// Applies events in order with LSNs 1, 2, ... and times 10, 20, ...
fn fold(events: Vec<Event>) -> State {
    let mut state = State::new();
    for (i, event) in events.into_iter().enumerate() {
        let n = i as u64 + 1;
        state.apply(Recorded { actor: agent("actor"), event }, Lsn(n), Timestamp(n.cast_signed() * 10));
    }
    state
}

#[test]
fn pending_tasks_come_in_claim_order_and_claims_leave_it() {
    let state = fold(vec![
        Event::TaskCreated { task: Box::new(new_task("low", Priority::Low)) },
        Event::TaskCreated { task: Box::new(new_task("high-old", Priority::High)) },
        Event::TaskCreated { task: Box::new(new_task("high-new", Priority::High)) },
        Event::TaskClaimed { task: task_id("high-old"), agent: agent("a"), lease_until: Timestamp(1000) },
    ]);
    let order: Vec<&str> = state.tasks.pending_in_claim_order().map(|t| t.id.as_str()).collect();
    assert_eq!(order, ["high-new", "low"]);
    let claimed = state.tasks.get(&task_id("high-old")).unwrap();
    assert_eq!(
        (claimed.status.clone(), claimed.attempts, claimed.assigned_to.clone()),
        (TaskStatus::InProgress, 1, Some(agent("a")))
    );
    assert_eq!(claimed.created_lsn, 2);
    assert_eq!(state.tasks.by_idempotency_key("key-low").unwrap().id, task_id("low"));
}

#[test]
fn a_claim_walks_only_the_pending_tasks_whose_requirements_the_capabilities_meet() {
    // Agents of different capabilities share one queue: a task one agent cannot take may wait
    // in front of all it can take. `pending_for` does not walk those.
    let needs = [vec![], vec!["b"], vec!["a"], vec!["a", "b"], vec!["b", "a", "a"], vec!["c"], vec![]];
    let priorities = [Priority::Low, Priority::High, Priority::Normal, Priority::Critical];
    let mut events = Vec::new();
    for (i, need) in needs.iter().cycle().take(40).enumerate() {
        let mut task = new_task(&format!("t{i:02}"), priorities[i % 4]);
        task.required_capabilities = need.iter().map(|s| (*s).to_owned()).collect();
        events.push(Event::TaskCreated { task: Box::new(task) });
    }
    events.push(Event::TaskClaimed { task: task_id("t03"), agent: agent("x"), lease_until: Timestamp(1000) });
    let state = fold(events);
    let ids = |tasks: Vec<&Task>| tasks.into_iter().map(|t| t.id.to_string()).collect::<Vec<_>>();
    for caps in [vec![], vec!["a"], vec!["b", "a"], vec!["c", "a", "b"], vec!["d"]] {
        let caps: Vec<String> = caps.into_iter().map(str::to_owned).collect();
        let met = |t: &&Task| t.required_capabilities.iter().all(|c| caps.contains(c));
        let walked = ids(state.tasks.pending_for(&caps, None).collect());
        let expected = ids(state.tasks.pending_in_claim_order().filter(met).collect());
        assert_eq!(walked, expected, "capabilities {caps:?}");
        for p in priorities {
            let walked = ids(state.tasks.pending_for(&caps, Some(p)).collect());
            assert_eq!(walked, ids(state.tasks.pending_at(p).filter(met).collect()), "{caps:?} at {p:?}");
        }
    }
    // Of 40 tasks, those needing nothing or only "a": 17.
    assert_eq!(state.tasks.pending_for(&["a".to_owned()], None).count(), 17);
}

#[test]
fn leases_lapse_extend_and_are_returned_on_stop() {
    let mut state = fold(vec![
        Event::TaskCreated { task: Box::new(new_task("t", Priority::Normal)) },
        Event::AgentStarted {
            agent: agent("a"),
            role: "r".into(),
            capabilities: vec![],
            heartbeat_timeout_ms: 1,
        },
        Event::TaskClaimed { task: task_id("t"), agent: agent("a"), lease_until: Timestamp(100) },
    ]);
    assert_eq!(state.tasks.lapsed(Timestamp(100)).count(), 0);
    assert_eq!(state.tasks.lapsed(Timestamp(101)).count(), 1);
    state.apply(
        Recorded {
            actor: agent("a"),
            event: Event::AgentHeartbeat { agent: agent("a"), lease_until: Timestamp(500) },
        },
        Lsn(4),
        Timestamp(40),
    );
    assert_eq!(state.tasks.lapsed(Timestamp(101)).count(), 0, "the heartbeat extended the lease");
    assert_eq!(state.tasks.get(&task_id("t")).unwrap().lease_until, Some(Timestamp(500)));
    state.apply(
        Recorded {
            actor: agent("b"),
            event: Event::TaskLeaseLapsed { task: task_id("t"), agent: agent("a") },
        },
        Lsn(5),
        Timestamp(50),
    );
    let t = state.tasks.get(&task_id("t")).unwrap();
    assert_eq!((t.status.clone(), t.failures, t.lease_until), (TaskStatus::Pending, 1, None));
    assert_eq!(state.tasks.pending_in_claim_order().count(), 1);
    state.apply(
        Recorded {
            actor: agent("a"),
            event: Event::TaskClaimed { task: task_id("t"), agent: agent("a"), lease_until: Timestamp(900) },
        },
        Lsn(6),
        Timestamp(60),
    );
    state.apply(
        Recorded {
            actor: agent("a"),
            event: Event::AgentStopped { agent: agent("a"), reason: "done".into() },
        },
        Lsn(7),
        Timestamp(70),
    );
    assert_eq!(
        state.tasks.get(&task_id("t")).unwrap().status,
        TaskStatus::Pending,
        "a stopped agent's tasks return"
    );
    assert_eq!(state.agents["a"].status, AgentStatus::Stopped("done".into()));
}

#[test]
fn task_outcomes() {
    let state = fold(vec![
        Event::TaskCreated { task: Box::new(new_task("t", Priority::Normal)) },
        Event::TaskCreated { task: Box::new(new_task("u", Priority::Normal)) },
        Event::TaskClaimed { task: task_id("t"), agent: agent("a"), lease_until: Timestamp(100) },
        Event::TaskOutputAdded { task: task_id("t"), output: "a.txt".into() },
        Event::TaskCompleted { task: task_id("t"), outputs: vec!["a.txt".into(), "b.txt".into()] },
        Event::TaskBlocked { task: task_id("u"), reason: "waiting".into() },
    ]);
    let t = state.tasks.get(&task_id("t")).unwrap();
    assert_eq!(
        (t.status.clone(), t.outputs.clone()),
        (TaskStatus::Completed, vec!["a.txt".to_string(), "b.txt".into()])
    );
    assert_eq!(t.updated_at, Timestamp(50));
    assert_eq!(state.tasks.get(&task_id("u")).unwrap().status, TaskStatus::Blocked("waiting".into()));
    assert_eq!(state.tasks.pending_in_claim_order().count(), 0);
}

#[test]
fn context_versions_deletes_and_prefixes() {
    let set = |key: &str, value: i32, version: u64| Event::ContextUpdated {
        key: ContextKey::new(key).unwrap(),
        value: serde_json::json!(value),
        visibility: Visibility::Shared,
        expires_at: None,
        metadata: BTreeMap::new(),
        version,
    };
    let state = fold(vec![
        set("api/spec", 1, 1),
        set("api/spec", 2, 2),
        set("api/url", 3, 1),
        set("apix", 4, 1),
        Event::ContextDeleted { key: ContextKey::new("api/url").unwrap(), version: 2 },
        set("api/url", 5, 3),
    ]);
    let spec = ContextKey::new("api/spec").unwrap();
    let current = state.context.current(&spec).unwrap();
    assert_eq!(
        (current.value.clone(), current.version, current.created_at, current.updated_at),
        (serde_json::json!(2), 2, Timestamp(10), Timestamp(20))
    );
    assert_eq!(
        state.context.at_version(&spec, 1),
        Some(&ContextVersion { lsn: Lsn(1), created_at: Some(Timestamp(10)) })
    );
    assert!(state.context.at_version(&spec, 3).is_none() && state.context.at_version(&spec, 0).is_none());
    let url = ContextKey::new("api/url").unwrap();
    assert_eq!(
        state.context.versions(&url),
        [
            ContextVersion { lsn: Lsn(3), created_at: Some(Timestamp(30)) },
            ContextVersion { lsn: Lsn(5), created_at: None },
            ContextVersion { lsn: Lsn(6), created_at: Some(Timestamp(60)) },
        ],
        "a set after a delete starts a new life"
    );
    assert_eq!(state.context.current(&url).map(|e| (e.version, e.created_at)), Some((3, Timestamp(60))));
    let keys: Vec<&str> = state.context.with_prefix("api/").map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["api/spec", "api/url"]);
}

#[test]
fn dependencies_cycles_readiness_and_chains() {
    let dep = |id: &str, provider: &str, consumer: &str| Event::DependencyRegistered {
        dependency: Dependency {
            id: DependencyId::new(id).unwrap(),
            provider: task_id(provider),
            consumer: task_id(consumer),
            artifact_type: ArtifactType::Completion,
            artifact_path: None,
            status: DependencyStatus::Pending,
        },
    };
    let state = fold(vec![
        dep("d1", "design", "build"),
        dep("d2", "build", "test"),
        dep("d3", "lint", "test"),
        Event::DependencyReady {
            dependency: DependencyId::new("d3").unwrap(),
            artifact_path: Some("lint.log".into()),
        },
    ]);
    let deps = &state.deps;
    assert!(deps.would_cycle(&task_id("test"), &task_id("design")), "design -> build -> test -> design");
    assert!(deps.would_cycle(&task_id("build"), &task_id("build")));
    assert!(!deps.would_cycle(&task_id("design"), &task_id("test")));
    let unmet: Vec<&str> = deps.unmet(&task_id("test")).iter().map(|d| d.id.as_str()).collect();
    assert_eq!(unmet, ["d2"]);
    assert!(deps.is_ready(&task_id("design")) && !deps.is_ready(&task_id("build")));
    let chain: Vec<&str> = deps.chain(&task_id("test")).iter().map(|d| d.id.as_str()).collect();
    assert_eq!(chain, ["d2", "d3", "d1"]);
    assert_eq!(
        deps.get(&DependencyId::new("d3").unwrap()).unwrap().artifact_path.as_deref(),
        Some("lint.log")
    );
}

#[test]
fn barriers_complete_and_lock_tokens_are_the_granting_lsn() {
    let name = BarrierName::new("builds").unwrap();
    let lock = LockName::new("deploy").unwrap();
    let state = fold(vec![
        Event::BarrierCreated { name: name.clone(), participants: vec!["fe".into(), "be".into()] },
        Event::BarrierSignalled { name: name.clone(), participant: "fe".into() },
        Event::LockAcquired { name: lock.clone(), holder: agent("a"), lease_until: Timestamp(99) },
    ]);
    assert!(!state.barriers[&name].is_complete());
    assert_eq!(state.locks[&lock].token, Lsn(3));
    let mut state = state;
    state.apply(
        Recorded {
            actor: agent("x"),
            event: Event::BarrierSignalled { name: name.clone(), participant: "be".into() },
        },
        Lsn(4),
        Timestamp(40),
    );
    assert!(state.barriers[&name].is_complete());
    state.apply(
        Recorded { actor: agent("b"), event: Event::LockReleased { name: lock.clone(), holder: agent("b") } },
        Lsn(5),
        Timestamp(50),
    );
    assert!(state.locks.contains_key(&lock), "only the holder's release counts");
    state.apply(
        Recorded { actor: agent("a"), event: Event::LockReleased { name: lock.clone(), holder: agent("a") } },
        Lsn(6),
        Timestamp(60),
    );
    assert!(!state.locks.contains_key(&lock));
}

#[test]
fn subjects_match_the_records_about_them() {
    let claimed = Recorded {
        actor: agent("b"),
        event: Event::TaskLeaseLapsed { task: task_id("t"), agent: agent("a") },
    };
    assert!(Subject::Task("t".into()).matches(&claimed));
    assert!(!Subject::Task("u".into()).matches(&claimed));
    assert!(Subject::Agent("a".into()).matches(&claimed), "the agent the event is about");
    assert!(Subject::Agent("b".into()).matches(&claimed), "the actor");
    assert!(!Subject::Context("t".into()).matches(&claimed));
    let deleted = Recorded {
        actor: agent("a"),
        event: Event::ContextDeleted { key: ContextKey::new("k").unwrap(), version: 2 },
    };
    assert!(Subject::Context("k".into()).matches(&deleted));
}

#[test]
fn dependencies_follow_their_provider_task() {
    let state = fold(vec![
        Event::TaskCreated { task: Box::new(new_task("p", Priority::Normal)) },
        Event::DependencyRegistered {
            dependency: Dependency {
                id: DependencyId::new("p->q").unwrap(),
                provider: task_id("p"),
                consumer: task_id("q"),
                artifact_type: ArtifactType::File,
                artifact_path: None,
                status: DependencyStatus::Pending,
            },
        },
        Event::TaskClaimed { task: task_id("p"), agent: agent("a"), lease_until: Timestamp(100) },
    ]);
    let dep = DependencyId::new("p->q").unwrap();
    assert_eq!(state.deps.get(&dep).unwrap().status, DependencyStatus::InProgress);
    let mut state = state;
    state.apply(
        Recorded { actor: agent("a"), event: Event::TaskReleased { task: task_id("p"), agent: agent("a") } },
        Lsn(4),
        Timestamp(40),
    );
    assert_eq!(state.deps.get(&dep).unwrap().status, DependencyStatus::Pending);
}
