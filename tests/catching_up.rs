//! A long-lived handle catches up with other handles' records through a reader it keeps
//! between commands, passing over its own records (applied when appended): whatever the gap,
//! it sees exactly what was appended, in order.

use maos_coord::model::{AgentId, ContextKey, Visibility};
use maos_coord::{Coordinator, Durability};
use serde_json::json;

fn open(root: &std::path::Path) -> Coordinator {
    Coordinator::options(root).durability(Durability::Buffered).snapshot_every(0).open().unwrap()
}

#[tokio::test]
async fn a_handle_sees_every_record_of_another_after_small_and_large_gaps_and_its_own() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (open(root.path()), open(root.path()));
    let (me, other) = (AgentId::new("me").unwrap(), AgentId::new("other").unwrap());
    a.register_agent(&me, "r", vec![]).await.unwrap();
    b.register_agent(&other, "r", vec![]).await.unwrap();
    let key = ContextKey::new("k").unwrap();
    let mut expected = 0;
    // Gaps of other records: none, a few, and more than a kept reader passes over.
    for (round, gap) in [0u64, 3, 1, 2500, 7, 1100, 0].into_iter().enumerate() {
        for i in 0..gap {
            expected = round as u64 * 10_000 + i;
            b.set_context(&other, &key, json!(expected), Visibility::Shared).await.unwrap();
        }
        // A command of its own, then a query: both on top of everything the other appended.
        let own = ContextKey::new(format!("own{round}")).unwrap();
        a.set_context(&me, &own, json!(round), Visibility::Shared).await.unwrap();
        let seen = a.get_context(&me, &key).unwrap().map(|e| e.value);
        if gap > 0 || round > 0 {
            assert_eq!(seen, Some(json!(expected)), "round {round}, gap {gap}");
        }
        assert_eq!(a.read(|s| s.next_lsn).unwrap(), b.read(|s| s.next_lsn).unwrap());
    }
    let live = a.read(|s| s.clone()).unwrap();
    drop((a, b));
    assert_eq!(live, open(root.path()).read(|s| s.clone()).unwrap(), "the live state is the replayed one");
}
