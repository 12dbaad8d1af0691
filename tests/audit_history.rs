//! The audit trail of a key and of an agent through the coordinator.

use maos_coord_test_support as common;

use common::graph::setup;
use maos_coord::model::{ContextKey, Visibility};
use serde_json::json;
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
