//! Plans: many tasks and their dependencies created in one atomic batch.

use maos_coord_test_support as common;

use common::graph::setup;
use maos_coord::coordinator::PlannedTask;
use maos_coord::model::{DependencyStatus, NewTask, TaskId, TaskStatus};
use maos_coord::{Error, Priority};

fn id(name: &str) -> TaskId {
    TaskId::new(name).unwrap()
}

/// A task of a plan: id and name `name`, depending on `deps`.
fn task(name: &str, deps: &[&str]) -> PlannedTask {
    PlannedTask::new(NewTask::new(name).id(id(name)), deps.iter().map(|d| id(d)).collect())
}

#[tokio::test]
async fn a_plan_creates_its_tasks_and_dependencies_at_once_and_runs_in_dependency_order() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let done = c.create_task(&a, NewTask::new("spec").id(id("spec"))).await.unwrap().id;
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    c.complete_task(&a, &done, vec![]).await.unwrap();
    let before = c.log().next_lsn().get();
    // Consumers before their providers in the plan; one depends on a task that exists.
    let plan = vec![
        task("test", &["build", "build"]),
        task("build", &["design"]),
        task("design", &["spec"]),
        PlannedTask::new(NewTask::new("docs").id(id("docs")).priority(Priority::Low), vec![]),
    ];
    let tasks = c.create_tasks(&a, plan.clone()).await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["test", "build", "design", "docs"], "in the order of the plan");
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Pending));
    assert_eq!(c.log().next_lsn().get(), before + 4 + 3, "four tasks, three dependencies");
    let design = c.why_not_ready(&id("build")).unwrap();
    assert_eq!(design.iter().map(|d| d.status.clone()).collect::<Vec<_>>(), [DependencyStatus::Pending]);
    assert!(c.why_not_ready(&id("design")).unwrap().is_empty(), "spec completed: ready at once");

    // The same plan again appends nothing and returns the tasks as they are.
    let again = c.create_tasks(&a, plan.clone()).await.unwrap();
    assert_eq!(again, tasks);
    assert_eq!(c.log().next_lsn().get(), before + 7);
    // A plan that extends it creates only what is new.
    let mut more = plan.clone();
    more.push(task("release", &["test", "docs"]));
    let extended = c.create_tasks(&a, more).await.unwrap();
    assert_eq!(extended.len(), 5);
    assert_eq!(c.log().next_lsn().get(), before + 7 + 3);

    let mut order = Vec::new();
    while let Some(t) = c.claim_next_task(&a, Some(&[])).await.unwrap() {
        c.complete_task(&a, &t.id, vec![]).await.unwrap();
        order.push(t.name);
    }
    assert_eq!(order, ["design", "build", "test", "docs", "release"]);
}

#[tokio::test]
async fn a_bad_entry_anywhere_in_a_plan_appends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    c.create_task(&a, NewTask::new("exists").id(id("exists"))).await.unwrap();
    let before = c.log().next_lsn();
    let good = || vec![task("a", &[]), task("b", &["a", "exists"]), task("c", &["b"])];
    let with = |last: PlannedTask| {
        let mut plan = good();
        plan.push(last);
        plan
    };
    let cases: Vec<(Vec<PlannedTask>, &str)> = vec![
        (with(task("d", &["missing"])), "unknown task missing"),
        (with(task("a", &[])), "task id a is given to two tasks of the plan"),
        (with(PlannedTask::new(NewTask::new("no id"), vec![])), "task 4 (\"no id\") has no id"),
        (with(PlannedTask::new(NewTask::new("d").id(id("d")).max_attempts(0), vec![])), "max_attempts"),
        (
            with(PlannedTask::new(NewTask::new("exists").id(id("exists")).priority(Priority::High), vec![])),
            "priority",
        ),
        (with(task("d", &["d"])), "d waits on d"),
        (vec![], "a plan needs tasks"),
    ];
    for (plan, expected) in cases {
        let err = c.create_tasks(&a, plan).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err} (expected {expected})");
        assert_eq!(c.log().next_lsn(), before, "{err}: nothing appended");
    }
    assert!(c.get_task(&id("a")).unwrap().is_none());
    // Unknown providers are NotFound, as for one task; the others are invalid or a conflict.
    let err = c.create_tasks(&a, with(task("d", &["missing"]))).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownTask { task } if task.as_str() == "missing"), "{err}");
    let err = c.create_tasks(&a, with(task("exists", &["a"]))).await.unwrap_err();
    assert!(matches!(&err, Error::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("does not depend on a"), "{err}");
}

#[tokio::test]
async fn a_cycle_inside_a_plan_is_refused_naming_its_tasks() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let before = c.log().next_lsn();
    let plan =
        vec![task("a", &[]), task("b", &["a", "d"]), task("c", &["b"]), task("d", &["c"]), task("e", &["d"])];
    let err = c.create_tasks(&a, plan).await.unwrap_err();
    let Error::Cycle { cycle, consumer, provider } = &err else { panic!("{err}") };
    assert_eq!(cycle.iter().map(TaskId::as_str).collect::<Vec<_>>(), ["b", "d", "c"]);
    assert_eq!((consumer.as_str(), provider.as_str()), ("b", "d"));
    assert_eq!(
        err.to_string(),
        "a dependency of task b on task d would close a cycle: b waits on d, which waits on c, which waits on b"
    );
    assert_eq!(c.log().next_lsn(), before);
}

#[tokio::test]
async fn a_plan_on_a_failed_provider_creates_its_consumer_blocked() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let failed = c.create_task(&a, NewTask::new("failed").id(id("failed")).max_attempts(1)).await.unwrap().id;
    c.claim_next_task(&a, Some(&[])).await.unwrap().unwrap();
    c.fail_task(&a, &failed, "boom").await.unwrap();
    let tasks = c.create_tasks(&a, vec![task("x", &["failed"]), task("y", &["x"])]).await.unwrap();
    let TaskStatus::Blocked(reason) = &tasks[0].status else { panic!("{:?}", tasks[0].status) };
    assert!(reason.contains("provider task failed failed"), "{reason}");
    assert_eq!(tasks[1].status, TaskStatus::Pending);
}
