//! Creating what exists never resets it: the same definition is a no-op that appends nothing and
//! keeps what happened since; another definition is refused, naming the difference, and appends
//! nothing either. Barriers, tasks with an id, pipelines, dependencies.

use std::time::Duration;

use maos_coord::coordinator::PipelineStage;
use maos_coord::model::{AgentId, ArtifactType, BarrierName, NewTask, Priority, TaskId, TaskStatus};
use maos_coord::{Coordinator, Durability, Error};
use serde_json::json;

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A store with two registered agents (both run the same setup).
async fn setup(root: &std::path::Path) -> (Coordinator, AgentId, AgentId) {
    let c = Coordinator::options(root).durability(Durability::Buffered).open().unwrap();
    let (a, b) = (agent("setup-1"), agent("setup-2"));
    for id in [&a, &b] {
        c.register_agent(id, "setup", vec![]).await.unwrap();
    }
    (c, a, b)
}

/// The difference an [`Error::AlreadyExists`] names about `what`; panics on any other result.
fn difference<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) -> String {
    match result {
        Err(Error::AlreadyExists { what: found, difference, .. }) if found == what => difference,
        other => panic!("expected AlreadyExists about a {what}, got {other:?}"),
    }
}

#[tokio::test]
async fn creating_a_barrier_again_keeps_its_signals() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let phase = BarrierName::new("phase-1").unwrap();
    c.create_barrier(&first, &phase, names(&["a", "b"])).await.unwrap();
    assert!(!c.signal_barrier(&first, &phase, "a").await.unwrap());

    let before = c.log().next_lsn();
    c.create_barrier(&second, &phase, names(&["a", "b"])).await.unwrap();
    c.create_barrier(&second, &phase, names(&["b", "a"])).await.unwrap();
    assert_eq!(c.log().next_lsn(), before, "the same definition appends nothing");

    assert!(c.signal_barrier(&second, &phase, "b").await.unwrap(), "a's signal was kept");
    c.wait_barrier(&phase, Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn creating_a_barrier_with_other_participants_is_refused_naming_them() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let phase = BarrierName::new("phase-1").unwrap();
    c.create_barrier(&first, &phase, names(&["a", "b"])).await.unwrap();
    c.signal_barrier(&first, &phase, "a").await.unwrap();

    let before = c.log().next_lsn();
    let err = c.create_barrier(&second, &phase, names(&["a", "c"])).await;
    assert_eq!(difference(err, "barrier"), "participants: the definition asked for adds c and drops b");
    let err = c.create_barrier(&second, &phase, names(&["a", "b", "c"])).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "barrier phase-1 exists already with another definition: participants: the definition asked \
         for adds c"
    );
    assert_eq!(c.log().next_lsn(), before, "a refused create appends nothing");
    assert_eq!(c.read(|s| s.barriers.get(&phase).unwrap().signalled.len()).unwrap(), 1);
}

/// A task definition with every field set.
fn full_task(id: &TaskId) -> NewTask {
    NewTask::new("compile")
        .id(id.clone())
        .description("build the workspace")
        .priority(Priority::High)
        .requires("rust")
        .requires("linux")
        .metadata(json!({"crate": "core"}))
        .max_attempts(5)
        .idempotency_key("compile-1")
}

#[tokio::test]
async fn creating_a_task_again_with_its_id_returns_it_as_it_is_and_appends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let id = TaskId::new("compile").unwrap();
    let created = c.create_task(&first, full_task(&id)).await.unwrap();
    c.claim_next_task(&first, Some(&names(&["rust", "linux"]))).await.unwrap().unwrap();

    let before = c.log().next_lsn();
    let mut reordered = full_task(&id);
    reordered.required_capabilities.reverse();
    let again = c.create_task(&second, reordered).await.unwrap();
    assert_eq!(c.log().next_lsn(), before, "the same definition appends nothing");
    assert_eq!((again.id.clone(), again.created_lsn), (created.id, created.created_lsn));
    assert_eq!(again.status, TaskStatus::InProgress, "the claim was kept");
    assert_eq!(again.assigned_to, Some(first.clone()));
}

#[tokio::test]
async fn creating_a_task_with_its_id_and_another_definition_is_refused_naming_the_field() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let id = TaskId::new("compile").unwrap();
    c.create_task(&first, full_task(&id)).await.unwrap();
    let cases: [(&str, NewTask); 7] = [
        ("name", NewTask { name: "link".into(), ..full_task(&id) }),
        ("description", full_task(&id).description("other")),
        ("priority", full_task(&id).priority(Priority::Low)),
        ("required capabilities", full_task(&id).requires("gpu")),
        ("metadata", full_task(&id).metadata(json!({"crate": "cli"}))),
        ("max_attempts", full_task(&id).max_attempts(1)),
        ("idempotency key", NewTask { idempotency_key: None, ..full_task(&id) }),
    ];
    let before = c.log().next_lsn();
    for (field, spec) in cases {
        let difference = difference(c.create_task(&second, spec).await, "task");
        assert!(difference.starts_with(&format!("{field}: ")), "{field}: {difference}");
    }
    let err = c.create_task(&second, full_task(&id).priority(Priority::Low)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "task compile exists already with another definition: priority: High exists, Low asked"
    );
    assert_eq!(c.log().next_lsn(), before, "refused creates append nothing");
}

#[tokio::test]
async fn coordinating_an_existing_task_with_a_provider_it_does_not_depend_on_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let api = c.create_task(&first, NewTask::new("api")).await.unwrap();
    c.claim_next_task(&first, Some(&[])).await.unwrap();
    c.complete_task(&first, &api.id, vec![]).await.unwrap();
    let other = c.create_task(&first, NewTask::new("other")).await.unwrap();
    let client = TaskId::new("client").unwrap();
    c.coordinate_task(&first, NewTask::new("client").id(client.clone()), vec![api.id.clone()]).await.unwrap();

    let before = c.log().next_lsn();
    let again = c.coordinate_task(&second, NewTask::new("client").id(client.clone()), vec![api.id.clone()]);
    assert_eq!(again.await.unwrap().id, client, "the same task with the same provider");
    let err = c.coordinate_task(&second, NewTask::new("client").id(client.clone()), vec![other.id.clone()]);
    assert_eq!(
        difference(err.await, "task"),
        format!("dependencies: the task does not depend on {}", other.id)
    );
    assert_eq!(c.log().next_lsn(), before);
}

fn stage(name: &str, tasks: &[&str]) -> PipelineStage {
    PipelineStage { name: name.into(), tasks: tasks.iter().map(|t| NewTask::new(*t)).collect() }
}

fn release() -> Vec<PipelineStage> {
    vec![stage("design", &["arch"]), stage("implement", &["api", "ui"]), stage("test", &["it"])]
}

#[tokio::test]
async fn creating_a_pipeline_again_returns_its_tasks_and_appends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let ids = c.create_pipeline(&first, "release", release()).await.unwrap();
    let arch = c.claim_next_task(&first, Some(&[])).await.unwrap().unwrap();
    c.complete_task(&first, &arch.id, vec![]).await.unwrap();

    let before = c.log().next_lsn();
    assert_eq!(c.create_pipeline(&second, "release", release()).await.unwrap(), ids);
    assert_eq!(c.log().next_lsn(), before, "the same stages append nothing");
    assert_eq!(c.pipeline_status("release").unwrap().status, TaskStatus::InProgress, "progress kept");
}

#[tokio::test]
async fn creating_a_pipeline_with_other_stages_is_refused_naming_the_difference() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let mut with_id = release();
    with_id[2].tasks[0] = NewTask::new("it").id(TaskId::new("it-1").unwrap());
    c.create_pipeline(&first, "release", with_id.clone()).await.unwrap();
    assert_eq!(c.create_pipeline(&second, "release", with_id.clone()).await.unwrap()[2][0].as_str(), "it-1");

    let changed = |change: &dyn Fn(&mut Vec<PipelineStage>)| {
        let mut stages = with_id.clone();
        change(&mut stages);
        stages
    };
    let cases: Vec<(&str, Vec<PipelineStage>)> = vec![
        ("number of stages: 3 exists, 2 asked", changed(&|s| drop(s.pop()))),
        ("stage 2: name: \"implement\" exists, \"build\" asked", changed(&|s| s[1].name = "build".into())),
        ("stage 2: number of tasks: 2 exists, 1 asked", changed(&|s| drop(s[1].tasks.pop()))),
        (
            "stage 2: task 2: priority: Normal exists, Critical asked",
            changed(&|s| s[1].tasks[1].priority = Priority::Critical),
        ),
        (
            "stage 1: task 1: metadata: null exists, {\"x\":1} asked",
            changed(&|s| s[0].tasks[0].metadata = json!({"x": 1})),
        ),
        (
            "stage 3: task 1: id: \"it-1\" exists, \"it-2\" asked",
            changed(&|s| s[2].tasks[0].id = Some(TaskId::new("it-2").unwrap())),
        ),
    ];
    let before = c.log().next_lsn();
    for (expected, stages) in cases {
        assert_eq!(difference(c.create_pipeline(&second, "release", stages).await, "pipeline"), expected);
    }
    assert_eq!(c.log().next_lsn(), before, "refused creates append nothing");
}

#[tokio::test]
async fn registering_a_dependency_again_returns_it_and_appends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let design = c.create_task(&first, NewTask::new("design")).await.unwrap();
    let build = c.create_task(&first, NewTask::new("build")).await.unwrap();
    let dep = c.register_dependency(&first, &design.id, &build.id, ArtifactType::File).await.unwrap();
    c.mark_dependency_ready(&first, &dep, Some("design.md".into())).await.unwrap();

    let before = c.log().next_lsn();
    let again = c.register_dependency(&second, &design.id, &build.id, ArtifactType::File).await.unwrap();
    assert_eq!(again, dep);
    assert_eq!(c.log().next_lsn(), before, "the same definition appends nothing");
    let kept = c.get_dependency(&dep).unwrap().unwrap();
    assert_eq!(kept.artifact_path.as_deref(), Some("design.md"), "its readiness was kept");
}

#[tokio::test]
async fn registering_a_dependency_with_another_artifact_type_is_refused_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let (c, first, second) = setup(root.path()).await;
    let design = c.create_task(&first, NewTask::new("design")).await.unwrap();
    let build = c.create_task(&first, NewTask::new("build")).await.unwrap();
    c.register_dependency(&first, &design.id, &build.id, ArtifactType::File).await.unwrap();

    let before = c.log().next_lsn();
    let err = c.register_dependency(&second, &design.id, &build.id, ArtifactType::Completion).await;
    assert_eq!(difference(err, "dependency"), "artifact type: File exists, Completion asked");
    assert_eq!(c.log().next_lsn(), before, "a refused create appends nothing");
}

#[tokio::test]
async fn a_pipeline_that_gives_one_task_id_to_two_tasks_is_refused_and_appends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "lead", vec![]).await.unwrap();
    let same = TaskId::new("build").unwrap();
    let stages = vec![
        PipelineStage { name: "one".into(), tasks: vec![NewTask::new("x").id(same.clone())] },
        PipelineStage { name: "two".into(), tasks: vec![NewTask::new("y").id(same.clone())] },
    ];
    let before = c.log().next_lsn();
    let err = c.create_pipeline(&a, "p", stages).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { reason, .. } if reason.contains("task id build")),
        "{err}"
    );
    assert_eq!(c.log().next_lsn(), before);
}
