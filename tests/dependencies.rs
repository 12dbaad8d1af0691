//! Dependencies through the coordinator: gating claims, readiness, failed and unknown providers.

use maos_coord_test_support as common;

use common::graph::{agent, setup};
use std::time::Duration;

use maos_coord::model::{ArtifactType, DependencyStatus, NewTask, TaskStatus};
use maos_coord::{Coordinator, Durability, Error};
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
