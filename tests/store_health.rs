//! A store's health (`Coordinator::health`): each named check passes on a sound store and fails,
//! saying why, on the problem it looks for; time moves by a manual clock.

use std::sync::Arc;
use std::time::Duration;

use maos_coord::backend::DirBlobs;
use maos_coord::coordinator::{HealthOptions, HealthReport};
use maos_coord::model::{AgentId, EventFilter, LockName, NewTask};
use maos_coord::snapshot::Snapshots;
use maos_coord::{Coordinator, CoordinatorOptions, Durability, ManualClock, Timestamp};

fn options(root: &std::path::Path, clock: &ManualClock) -> CoordinatorOptions {
    Coordinator::options(root)
        .durability(Durability::Buffered)
        .snapshot_every(0)
        .lease(Duration::from_secs(300))
        .heartbeat_timeout(Duration::from_secs(60))
        .clock(clock.shared())
}

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_micros(1_800_000_000_000_000))
}

fn failed(report: &HealthReport) -> Vec<&'static str> {
    report.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

fn check<'a>(report: &'a HealthReport, name: &str) -> &'a maos_coord::coordinator::HealthCheck {
    report.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}"))
}

async fn busy(c: &Coordinator, a: &AgentId) {
    c.register_agent(a, "worker", vec![]).await.unwrap();
    for i in 0..5 {
        c.create_task(a, NewTask::new(format!("t{i}"))).await.unwrap();
        if i % 2 == 0 {
            let t = c.claim_next_task(a, None).await.unwrap().unwrap();
            c.complete_task(a, &t.id, vec![]).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_sound_store_passes_every_named_check() {
    let root = tempfile::tempdir().unwrap();
    let clock = clock();
    let c = options(root.path(), &clock).open().unwrap();
    let a = AgentId::new("a").unwrap();
    busy(&c, &a).await;
    c.snapshot().unwrap();
    busy(&c, &AgentId::new("b").unwrap()).await;
    let report = c.health(&HealthOptions::default()).unwrap();
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ["filesystem", "snapshots", "projections", "subscriptions", "leases", "gone_agents"]);
    assert!(report.healthy(), "{report:#?}");
    assert!(check(&report, "filesystem").finding.contains("writable"), "{report:#?}");
    assert!(check(&report, "projections").finding.contains("equals a full replay"), "{report:#?}");
}

#[tokio::test]
async fn a_gone_agent_holding_a_task_then_leases_past_their_end_fail() {
    let root = tempfile::tempdir().unwrap();
    let clock = clock();
    let c = options(root.path(), &clock).open().unwrap();
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.claim_next_task(&a, None).await.unwrap();
    let lock = LockName::new("l").unwrap();
    c.try_lock(&a, &lock, Duration::from_secs(600)).await.unwrap();
    // Silent past its heartbeat timeout, its lease still running.
    clock.advance(Duration::from_secs(61));
    let report = c.health(&HealthOptions::default()).unwrap();
    assert_eq!(failed(&report), ["gone_agents"], "{report:#?}");
    let gone = check(&report, "gone_agents");
    assert!(
        gone.details[0].contains(&format!("tasks [{}]", t.id)) && gone.details[0].contains("locks [l]"),
        "{gone:?}"
    );
    // Past the claim's lease: no command noticed the lapse yet. The lock's lease still runs.
    clock.advance(Duration::from_secs(300));
    let report = c.health(&HealthOptions::default()).unwrap();
    assert_eq!(failed(&report), ["leases", "gone_agents"], "{report:#?}");
    assert_eq!(check(&report, "leases").details.len(), 1);
    assert!(check(&report, "leases").details[0].starts_with(&format!("task {} held by a", t.id)));
    clock.advance(Duration::from_secs(300));
    let report = c.health(&HealthOptions::default()).unwrap();
    assert_eq!(failed(&report), ["leases"], "{report:#?}");
    assert_eq!(check(&report, "leases").details.len(), 2, "the task and the lock");
}

#[tokio::test]
async fn a_cursor_far_behind_or_damaged_fails_the_subscriptions_check() {
    let root = tempfile::tempdir().unwrap();
    let clock = clock();
    let c = options(root.path(), &clock).open().unwrap();
    let a = AgentId::new("a").unwrap();
    busy(&c, &a).await;
    drop(c.subscribe_durable(&a, "slow", EventFilter::default()).unwrap());
    let tail = c.log().next_lsn().get();
    let ok = c.health(&HealthOptions { max_cursor_lag: tail }).unwrap();
    assert!(ok.healthy(), "{ok:#?}");
    assert!(check(&ok, "subscriptions").finding.contains(&format!("{} records behind", tail - 1)), "{ok:#?}");
    let report = c.health(&HealthOptions { max_cursor_lag: tail - 1 }).unwrap();
    assert_eq!(failed(&report), ["subscriptions"], "{report:#?}");
    assert!(check(&report, "subscriptions").details[0].contains("cursor slow of agent a"), "{report:#?}");
    let cursors = root.path().join(".maos/coordination/cursors");
    let file = std::fs::read_dir(&cursors).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&file, [0u8; 40]).unwrap();
    let report = c.health(&HealthOptions::default()).unwrap();
    assert!(check(&report, "subscriptions").details[0].contains("invalid: bad magic"), "{report:#?}");
}

#[tokio::test]
async fn a_snapshot_that_disagrees_with_the_log_fails_the_projections_check() {
    let root = tempfile::tempdir().unwrap();
    let clock = clock();
    let c = options(root.path(), &clock).open().unwrap();
    let a = AgentId::new("a").unwrap();
    busy(&c, &a).await;
    // A snapshot that checks out but lost a task.
    let mut image = c.read(|s| s.to_image()).unwrap();
    image.tasks.pop();
    let blobs = Arc::new(DirBlobs::new(&root.path().join(".maos/coordination")));
    Snapshots::new(blobs, 2).write(&image).unwrap();
    c.close().unwrap();
    let c = options(root.path(), &clock).open().unwrap();
    assert_eq!(c.opened_from_snapshot(), Some(image.next_lsn));
    let report = c.health(&HealthOptions::default()).unwrap();
    assert_eq!(failed(&report), ["projections"], "{report:#?}");
    let projections = check(&report, "projections");
    assert!(
        projections.details.iter().any(|d| d.starts_with("tasks: the snapshot of LSN")),
        "{projections:?}"
    );
}

#[tokio::test]
async fn a_snapshot_skipped_at_open_fails_the_snapshots_check() {
    let root = tempfile::tempdir().unwrap();
    let clock = clock();
    let c = options(root.path(), &clock).open().unwrap();
    busy(&c, &AgentId::new("a").unwrap()).await;
    c.snapshot().unwrap();
    c.close().unwrap();
    let snapshots = root.path().join(".maos/coordination/snapshots");
    let file = std::fs::read_dir(&snapshots).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let c = options(root.path(), &clock).open().unwrap();
    let report = c.health(&HealthOptions::default()).unwrap();
    assert_eq!(failed(&report), ["snapshots"], "{report:#?}");
    let snap = check(&report, "snapshots");
    assert!(snap.finding.contains("the state came from a full replay"), "{snap:?}");
    assert!(snap.details[0].contains("checksum mismatch"), "{snap:?}");
}

#[tokio::test]
async fn a_snapshot_passed_over_for_a_damaged_block_fails_the_snapshots_check_not_the_projections() {
    let root = tempfile::tempdir().unwrap();
    let clock = clock();
    let c = options(root.path(), &clock).open().unwrap();
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "r", vec![]).await.unwrap();
    for i in 0..40 {
        c.create_task(&a, NewTask::new(format!("t{i}")).description("d".repeat(300))).await.unwrap();
    }
    c.snapshot().unwrap();
    c.close().unwrap();
    let snapshots = root.path().join(".maos/coordination/snapshots");
    let file = std::fs::read_dir(&snapshots).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&file).unwrap();
    // The second block of the data holds tasks, which opening on demand does not read.
    let body = &bytes[48..];
    let blocks = u64::from_le_bytes(body[168..176].try_into().unwrap()) as usize;
    let data = 48 + 176 + 4 * blocks;
    bytes[data + 4096 + 10] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let c = options(root.path(), &clock).check_whole_snapshot(false).open().unwrap();
    assert!(c.skipped_snapshots().is_empty(), "the directory checks out at open");
    let report = c.health(&HealthOptions::default()).unwrap();
    assert_eq!(failed(&report), ["snapshots"], "{report:#?}");
    let snap = check(&report, "snapshots");
    assert!(snap.details[0].contains("block 1 checksum mismatch"), "{snap:?}");
    assert_eq!(c.damaged_snapshots().len(), 1);
}
