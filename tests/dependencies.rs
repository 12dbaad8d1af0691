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

#[tokio::test]
async fn a_task_created_with_dependencies_follows_each_provider_in_one_batch() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let [pending, claimed, done] = ["pending", "claimed", "done"].map(NewTask::new);
    let pending = c.create_task(&a, pending).await.unwrap().id;
    let claimed = c.create_task(&a, claimed.priority(maos_coord::Priority::Critical)).await.unwrap().id;
    let done = c.create_task(&a, done.priority(maos_coord::Priority::High)).await.unwrap().id;
    assert_eq!(c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap().id, claimed);
    assert_eq!(c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap().id, done);
    c.complete_task(&a, &done, vec![]).await.unwrap();
    let before = c.log().next_lsn();
    let providers = vec![pending.clone(), claimed.clone(), done.clone(), pending.clone()];
    let t = c.create_task_depending_on(&a, NewTask::new("t"), providers.clone()).await.unwrap();
    assert_eq!(c.log().next_lsn().get(), before.get() + 4, "the task and three dependencies, at once");
    assert_eq!(t.status, TaskStatus::Pending);
    let statuses: Vec<DependencyStatus> =
        c.why_not_ready(&t.id).unwrap().into_iter().map(|d| d.status).collect();
    assert_eq!(statuses, [DependencyStatus::Pending, DependencyStatus::InProgress]);
    // The same definition again appends nothing; a provider it does not depend on is another.
    let again = c.create_task_depending_on(&a, NewTask::new("t").id(t.id.clone()), providers).await.unwrap();
    assert_eq!((again.id, c.log().next_lsn()), (t.id.clone(), before.next().next().next().next()));
    let other = c.create_task(&a, NewTask::new("other")).await.unwrap().id;
    let err =
        c.create_task_depending_on(&a, NewTask::new("t").id(t.id.clone()), vec![other]).await.unwrap_err();
    assert!(err.to_string().contains("does not depend on"), "{err}");
    assert_eq!(c.get_dependency_chain(&t.id).unwrap().len(), 3);
}

#[tokio::test]
async fn a_task_created_on_a_failed_or_cancelled_provider_is_blocked_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let failed = c.create_task(&a, NewTask::new("failed").max_attempts(1)).await.unwrap().id;
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    c.fail_task(&a, &failed, "boom").await.unwrap();
    let cancelled = c.create_task(&a, NewTask::new("cancelled")).await.unwrap().id;
    c.cancel_task(&a, &cancelled, "not needed").await.unwrap();
    for provider in [&failed, &cancelled] {
        let t = c.create_task_depending_on(&a, NewTask::new("t"), vec![provider.clone()]).await.unwrap();
        let TaskStatus::Blocked(reason) = &t.status else { panic!("{:?}", t.status) };
        assert!(reason.contains(&format!("provider task {provider}")), "{reason}");
        assert!(matches!(c.why_not_ready(&t.id).unwrap()[0].status, DependencyStatus::Failed(_)));
    }
    assert!(c.claim_next_task(&a, Some(&[])).await.unwrap().is_none());
}

#[tokio::test]
async fn a_task_on_an_unknown_provider_is_refused_and_nothing_is_appended() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let p = c.create_task(&a, NewTask::new("p")).await.unwrap().id;
    let before = c.log().next_lsn();
    let ghost = maos_coord::TaskId::new("ghost").unwrap();
    let err = c.create_task_depending_on(&a, NewTask::new("t"), vec![p, ghost.clone()]).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownTask { task } if *task == ghost), "{err}");
    assert_eq!(c.log().next_lsn(), before);
    let err = c.get_dependency_chain(&ghost).unwrap_err();
    assert!(matches!(err, Error::UnknownTask { .. }), "{err}");
}

#[tokio::test]
async fn marking_a_ready_dependency_again_appends_nothing_and_a_provider_readies_all_its_dependencies_at_once(
) {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let api = c.create_task(&a, NewTask::new("api")).await.unwrap();
    let mut consumers = Vec::new();
    for name in ["ui", "cli", "docs"] {
        consumers.push(c.create_task(&a, NewTask::new(name)).await.unwrap());
    }
    let mut deps = Vec::new();
    for t in &consumers {
        deps.push(c.register_dependency(&a, &api.id, &t.id, ArtifactType::File).await.unwrap());
    }
    // One marked by itself, then the provider's: only the other two are marked, in one batch.
    c.mark_dependency_ready(&a, &deps[0], None).await.unwrap();
    let before = c.log().next_lsn();
    c.mark_dependency_ready(&a, &deps[0], None).await.unwrap();
    assert_eq!(c.log().next_lsn(), before, "marking a ready dependency again appends nothing");
    let mut marked = c.mark_provider_ready(&a, &api.id, None).await.unwrap();
    marked.sort();
    let mut rest = deps[1..].to_vec();
    rest.sort();
    assert_eq!(marked, rest);
    assert_eq!(c.log().next_lsn().get(), before.get() + 2, "one record per dependency marked");
    assert!(deps.iter().all(|d| c.get_dependency(d).unwrap().unwrap().status == DependencyStatus::Ready));
    let before = c.log().next_lsn();
    assert!(c.mark_provider_ready(&a, &api.id, None).await.unwrap().is_empty());
    assert_eq!(c.log().next_lsn(), before, "all ready already: nothing appended");
    // A new artifact path is a change: every dependency is marked again, with it.
    assert_eq!(c.mark_provider_ready(&a, &api.id, Some("target/api".into())).await.unwrap().len(), 3);
    assert!(deps
        .iter()
        .all(|d| c.get_dependency(d).unwrap().unwrap().artifact_path.as_deref() == Some("target/api")));
    let ghost = maos_coord::model::TaskId::new("ghost").unwrap();
    let before = c.log().next_lsn();
    assert!(matches!(c.mark_provider_ready(&a, &ghost, None).await, Err(Error::UnknownTask { .. })));
    assert_eq!(c.log().next_lsn(), before);
}

#[tokio::test]
async fn a_failed_dependency_stays_failed_when_marked_ready() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let provider = c.create_task(&a, NewTask::new("provider")).await.unwrap();
    let consumer = c.create_task(&a, NewTask::new("consumer")).await.unwrap();
    let dep = c.register_dependency(&a, &provider.id, &consumer.id, ArtifactType::Completion).await.unwrap();
    c.cancel_task(&a, &provider.id, "not needed").await.unwrap();
    assert!(matches!(c.get_dependency(&dep).unwrap().unwrap().status, DependencyStatus::Failed(_)));
    let before = c.log().next_lsn();
    let err = c.mark_dependency_ready(&a, &dep, None).await.unwrap_err();
    assert!(err.to_string().contains("a failed dependency stays failed"), "{err}");
    assert!(c.mark_provider_ready(&a, &provider.id, None).await.unwrap().is_empty());
    assert_eq!(c.log().next_lsn(), before, "nothing appended");
    assert!(matches!(c.get_dependency(&dep).unwrap().unwrap().status, DependencyStatus::Failed(_)));
}
