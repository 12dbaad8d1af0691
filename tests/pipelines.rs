//! Pipelines through the coordinator.

use maos_coord_test_support as common;

use common::graph::setup;
use maos_coord::model::{NewTask, TaskStatus};
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
