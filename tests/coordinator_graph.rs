//! Dependencies, barriers, locks and subscriptions through the coordinator.

use std::collections::BTreeMap;
use std::time::Duration;

use maos_coord::model::{
    AgentId, ArtifactType, BarrierName, ContextKey, DependencyStatus, EventFilter, LockName, NewTask,
    TaskStatus, Visibility,
};
use maos_coord::{Coordinator, Durability, Error};
use serde_json::json;

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

async fn setup(root: &std::path::Path) -> (Coordinator, AgentId) {
    let c = Coordinator::options(root).durability(Durability::Buffered).open().unwrap();
    let a = agent("lead");
    c.register_agent(&a, "lead", vec!["any".into()]).await.unwrap();
    (c, a)
}

#[tokio::test]
async fn dependencies_gate_claims_and_completion_readies_them() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let design = c.create_task(&a, NewTask::new("design")).await.unwrap();
    let build = c.create_task(&a, NewTask::new("build")).await.unwrap();
    let test = c.create_task(&a, NewTask::new("test")).await.unwrap();
    c.register_dependency(&a, &design.id, &build.id, ArtifactType::File).await.unwrap();
    let d2 = c.register_dependency(&a, &build.id, &test.id, ArtifactType::Completion).await.unwrap();
    let before = c.log().next_lsn();
    let err = c.register_dependency(&a, &test.id, &design.id, ArtifactType::Completion).await.unwrap_err();
    assert!(matches!(err, Error::Cycle { .. }), "{err}");
    assert_eq!(c.log().next_lsn(), before, "a refused cycle leaves nothing in the log");
    assert_eq!(
        c.get_ready_tasks(&a, None).unwrap().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["design"]
    );
    assert_eq!(c.why_not_ready(&test.id).unwrap()[0].id, d2);
    assert_eq!(c.get_dependency_chain(&test.id).unwrap().len(), 2);

    let claimed = c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    assert_eq!(claimed.id, design.id, "build and test wait for their providers");
    assert!(c.claim_next_task(&a, Some(&[])).await.unwrap().is_none());
    c.complete_task(&a, &design.id, vec!["design.md".into()]).await.unwrap();
    assert_eq!(c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap().id, build.id);
    c.mark_dependency_ready(&a, &d2, Some("target/app".into())).await.unwrap();
    let dep = c.get_dependency(&d2).unwrap().unwrap();
    assert_eq!((dep.status, dep.artifact_path.as_deref()), (DependencyStatus::Ready, Some("target/app")));
    assert!(c.why_not_ready(&test.id).unwrap().is_empty());
}

#[tokio::test]
async fn coordinate_task_refuses_until_its_providers_completed() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let api = c.create_task(&a, NewTask::new("api")).await.unwrap();
    let err = c.coordinate_task(&a, NewTask::new("client"), vec![api.id.clone()]).await.unwrap_err();
    assert!(matches!(err, Error::DependenciesNotReady { .. }), "{err}");
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    c.complete_task(&a, &api.id, vec![]).await.unwrap();
    let client = c.coordinate_task(&a, NewTask::new("client"), vec![api.id.clone()]).await.unwrap();
    assert_eq!(client.status, TaskStatus::Pending);
    assert_eq!(c.get_dependency_chain(&client.id).unwrap()[0].provider, api.id);
}

#[tokio::test]
async fn a_failed_provider_fails_its_dependencies() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let p = c.create_task(&a, NewTask::new("p").max_attempts(1)).await.unwrap();
    let q = c.create_task(&a, NewTask::new("q")).await.unwrap();
    let d = c.register_dependency(&a, &p.id, &q.id, ArtifactType::Completion).await.unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    c.fail_task(&a, &p.id, "boom").await.unwrap();
    assert_eq!(c.get_task(&p.id).unwrap().unwrap().status, TaskStatus::Failed("attempts exhausted".into()));
    assert!(matches!(c.get_dependency(&d).unwrap().unwrap().status, DependencyStatus::Failed(_)));
}

#[tokio::test]
async fn barriers_complete_when_every_participant_signalled() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let b = BarrierName::new("builds").unwrap();
    c.create_barrier(&a, &b, vec!["frontend".into(), "backend".into()]).await.unwrap();
    let err = c.signal_barrier(&a, &b, "mobile").await.unwrap_err();
    assert!(matches!(err, Error::NotParticipant { .. }), "{err}");
    assert!(!c.signal_barrier(&a, &b, "frontend").await.unwrap());
    assert!(matches!(c.wait_barrier(&b, Duration::from_millis(20)).await, Err(Error::Timeout { .. })));
    let waiter = {
        let (c, b) = (c.clone(), b.clone());
        tokio::spawn(async move { c.wait_barrier(&b, Duration::from_secs(5)).await })
    };
    assert!(c.signal_barrier(&a, &b, "backend").await.unwrap());
    waiter.await.unwrap().unwrap();
    assert!(matches!(
        c.wait_barrier(&BarrierName::new("none").unwrap(), Duration::ZERO).await,
        Err(Error::UnknownBarrier { .. })
    ));
}

#[tokio::test]
async fn locks_have_leases_and_increasing_fencing_tokens() {
    let root = tempfile::tempdir().unwrap();
    let clock = maos_coord::ManualClock::starting_now();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .clock(clock.shared())
        .open()
        .unwrap();
    let a = agent("lead");
    c.register_agent(&a, "lead", vec![]).await.unwrap();
    let b = agent("other");
    c.register_agent(&b, "r", vec![]).await.unwrap();
    let l = LockName::new("deploy").unwrap();
    let first = c.try_lock(&a, &l, Duration::from_millis(100)).await.unwrap().unwrap();
    assert!(c.try_lock(&b, &l, Duration::from_millis(100)).await.unwrap().is_none());
    let err = c.unlock(&b, &l).await.unwrap_err();
    assert!(matches!(err, Error::LockHeld { .. }), "{err}");
    clock.advance(Duration::from_millis(150)); // a's lease ends
    let second = c.lock(&b, &l, Duration::from_secs(1), Duration::from_secs(2)).await.unwrap();
    assert!(second.token > first.token, "a lapsed lease frees the lock, with a larger token");
    c.unlock(&b, &l).await.unwrap();
    let third = c.try_lock(&a, &l, Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(third.token > second.token);
    // The clock stands still: a's lease never ends while b waits, so b's wait times out.
    assert!(matches!(
        c.lock(&b, &l, Duration::from_secs(1), Duration::from_millis(30)).await,
        Err(Error::Timeout { .. })
    ));
}

#[tokio::test]
async fn subscriptions_deliver_matching_events_in_order() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let mut tasks = c.subscribe(&a, EventFilter::all().types(["TaskCreated", "TaskCompleted"])).unwrap();
    let mut custom = c.subscribe(&a, EventFilter::all().types(["deploy"]).metadata("env", "prod")).unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.emit_event(&a, "deploy", json!({"v": 1}), BTreeMap::from([("env".into(), "dev".into())]))
        .await
        .unwrap();
    let prod = c
        .emit_event(&a, "deploy", json!({"v": 2}), BTreeMap::from([("env".into(), "prod".into())]))
        .await
        .unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    c.complete_task(&a, &t.id, vec![]).await.unwrap();
    assert_eq!(tasks.next().await.unwrap().recorded.event.type_name(), "TaskCreated");
    assert_eq!(tasks.next().await.unwrap().recorded.event.type_name(), "TaskCompleted");
    assert!(tasks.try_next().unwrap().is_none());
    let d = custom.next().await.unwrap();
    assert_eq!(d.lsn, prod);
    assert!(custom.try_next().unwrap().is_none());
}

#[tokio::test]
async fn watch_context_yields_every_later_update_in_order() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let k = ContextKey::new("spec").unwrap();
    c.set_context(&a, &k, json!(1), Visibility::Shared).await.unwrap();
    let mut from_start = c.watch_context(&a, &k, Some(1)).unwrap();
    let mut live = c.watch_context(&a, &k, None).unwrap();
    c.set_context(&a, &k, json!(2), Visibility::Shared).await.unwrap();
    c.set_context(&a, &ContextKey::new("other").unwrap(), json!(0), Visibility::Shared).await.unwrap();
    c.delete_context(&a, &k).await.unwrap();
    let watched = [
        from_start.next().await.unwrap(),
        from_start.next().await.unwrap(),
        from_start.next().await.unwrap(),
    ];
    for (version, entry) in &watched {
        assert_eq!(entry, &c.get_context_version(&a, &k, *version).unwrap(), "the entry the state made");
    }
    let versions: Vec<(u64, Option<serde_json::Value>)> =
        watched.into_iter().map(|(v, e)| (v, e.map(|e| e.value))).collect();
    assert_eq!(versions, [(1, Some(json!(1))), (2, Some(json!(2))), (3, None)]);
    assert_eq!(live.next().await.unwrap().0, 2);
    assert_eq!(live.next().await.unwrap().0, 3);
}

#[tokio::test]
async fn a_pipeline_runs_its_stages_in_order() {
    use maos_coord::coordinator::PipelineStage;
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let stage = |name: &str, tasks: &[&str]| PipelineStage {
        name: name.into(),
        tasks: tasks.iter().map(|t| NewTask::new(*t)).collect(),
    };
    let ids = c
        .create_pipeline(
            &a,
            "release",
            vec![stage("design", &["arch"]), stage("implement", &["api", "ui"]), stage("test", &["it"])],
        )
        .await
        .unwrap();
    assert_eq!(ids.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2, 1]);
    assert_eq!(c.pipeline_status("release").unwrap().status, TaskStatus::Pending);
    let mut order = Vec::new();
    while let Some(t) = c.claim_next_task(&a, Some(&[])).await.unwrap() {
        c.complete_task(&a, &t.id, vec![format!("{}.out", t.name)]).await.unwrap();
        order.push(t.name);
        if order.len() == 1 {
            assert_eq!(c.pipeline_status("release").unwrap().status, TaskStatus::InProgress);
        }
    }
    assert_eq!(order[0], "arch");
    assert_eq!(order[3], "it", "the test stage runs last");
    let status = c.pipeline_status("release").unwrap();
    assert_eq!(status.status, TaskStatus::Completed);
    assert_eq!(
        status.stages.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["design", "implement", "test"]
    );
    assert_eq!(status.outputs.len(), 4);
    assert!(c.create_pipeline(&a, "release", vec![stage("x", &["y"])]).await.is_err(), "names are unique");
}

#[tokio::test]
async fn audit_history_lists_what_happened_to_a_key_and_an_agent() {
    use maos_coord::model::Subject;
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let k = ContextKey::new("spec").unwrap();
    c.set_context(&a, &k, json!(1), Visibility::Shared).await.unwrap();
    c.delete_context(&a, &k).await.unwrap();
    let key_history: Vec<String> = c
        .history(&a, &Subject::Context("spec".into()))
        .unwrap()
        .into_iter()
        .map(|e| format!("{} by {}", e.recorded.event.type_name(), e.recorded.actor))
        .collect();
    assert_eq!(key_history, ["ContextUpdated by lead", "ContextDeleted by lead"]);
    let agent_history = c.history(&a, &Subject::Agent("lead".into())).unwrap();
    assert_eq!(agent_history.first().unwrap().recorded.event.type_name(), "AgentStarted");
    assert_eq!(agent_history.len(), 3);
    assert!(
        agent_history.windows(2).all(|w| w[0].lsn < w[1].lsn && w[0].time <= w[1].time),
        "in LSN and time order"
    );
}

#[tokio::test]
async fn silent_agents_are_reported_gone_and_unknown_dependencies_are_errors() {
    let root = tempfile::tempdir().unwrap();
    let clock = maos_coord::ManualClock::starting_now();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .heartbeat_timeout(Duration::from_millis(50))
        .clock(clock.shared())
        .open()
        .unwrap();
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.register_agent(&b, "r", vec![]).await.unwrap();
    clock.advance(Duration::from_millis(40));
    c.heartbeat(&a).await.unwrap();
    clock.advance(Duration::from_millis(30));
    assert_eq!(c.gone_agents().unwrap(), std::slice::from_ref(&b));
    c.stop_agent(&b, "bye").await.unwrap();
    assert!(c.gone_agents().unwrap().is_empty(), "a stopped agent is not gone, it stopped");
    let err = c
        .mark_dependency_ready(&a, &maos_coord::model::DependencyId::new("x->y").unwrap(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownDependency { .. }), "{err}");
}
