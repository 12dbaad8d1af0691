//! A coordination store with history, snapshots and many small segments, for compaction tests.

use std::path::{Path, PathBuf};

use maos_coord::coordinator::CompactOptions;
use maos_coord::model::{AgentId, ContextKey, NewTask, Recorded, Visibility, EVENT_RECORD_KIND};
use maos_coord::projection::State;
use maos_coord::{Coordinator, CoordinatorOptions, Durability, Event, Lsn};
use serde_json::json;

pub fn options(root: &Path) -> CoordinatorOptions {
    Coordinator::options(root).durability(Durability::Buffered).snapshot_every(0).segment_size(16384)
}

pub fn segments(root: &Path) -> Vec<PathBuf> {
    super::segment_files(&root.join(".maos/coordination/log"))
}

/// Forty tasks created, claimed and completed, and three context keys set over and over.
pub async fn busy(c: &Coordinator, me: &AgentId, round: u32) {
    for i in 0..40 {
        let t = c.create_task(me, NewTask::new(format!("r{round}-{i}"))).await.unwrap();
        c.claim_next_task(me, Some(&[])).await.unwrap();
        c.complete_task(me, &t.id, vec![]).await.unwrap_or(());
        c.set_context(
            me,
            &ContextKey::new(format!("k{}", i % 3)).unwrap(),
            json!([round, i]),
            Visibility::Shared,
        )
        .await
        .unwrap();
    }
}

/// A store with two snapshots and records after them, over many small segments.
pub async fn store(root: &Path) -> (Coordinator, AgentId) {
    let c = options(root).open().unwrap();
    let me = AgentId::new("a").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    for round in 0..3 {
        busy(&c, &me, round).await;
        if round > 0 {
            c.snapshot().unwrap();
        }
    }
    (c, me)
}

pub fn state(c: &Coordinator) -> State {
    c.read(|s| s.clone()).unwrap()
}

/// The options of a keyed compaction.
pub fn keyed() -> CompactOptions {
    CompactOptions { keyed: true, ..CompactOptions::default() }
}

/// Everything the store holds for audits, as (LSN, event).
pub fn trail(c: &Coordinator) -> Vec<(Lsn, Event)> {
    let mut reader = c.log().audit_reader().unwrap();
    let mut out = Vec::new();
    while let Some(r) = reader.next().unwrap() {
        assert_eq!(r.kind.get(), EVENT_RECORD_KIND);
        out.push((r.lsn, Recorded::decode(r.lsn, r.payload).unwrap().event));
    }
    out
}

/// Copies a whole store directory tree.
pub fn copy_store(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
