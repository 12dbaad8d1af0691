//! A coordinator with one registered agent, for the tests of dependencies, barriers, locks,
//! subscriptions, pipelines and audit trails.

use maos_coord::model::AgentId;
use maos_coord::{Coordinator, Durability};

pub fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

pub async fn setup(root: &std::path::Path) -> (Coordinator, AgentId) {
    let c = Coordinator::options(root).durability(Durability::Buffered).open().unwrap();
    let a = agent("lead");
    c.register_agent(&a, "lead", vec!["any".into()]).await.unwrap();
    (c, a)
}
