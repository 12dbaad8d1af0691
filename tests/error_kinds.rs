//! Errors as the library returns them have the kind `Error::kind` documents for them, which
//! decides the command line's exit code: a sample of each kind, made by the calls that make it.

use std::time::Duration;

use maos_coord::model::{AgentId, BarrierName, ContextKey, LockName, NewTask, TaskId};
use maos_coord::{Coordinator, Durability, Error, ErrorKind, Log, ManualClock, RecordKind};
use serde_json::json;

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

#[tokio::test]
async fn coordination_errors_are_not_found_conflict_timeout_or_invalid() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .clock(clock.shared())
        .open()
        .unwrap();
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    c.register_agent(&b, "worker", vec![]).await.unwrap();

    // Not found: unknown ids, an unknown pipeline.
    let unknown = TaskId::new("nope").unwrap();
    let err = c.complete_task(&a, &unknown, vec![]).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownTask { task } if *task == unknown), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c.create_task(&agent("ghost"), NewTask::new("t")).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownAgent { agent, .. } if agent == "ghost"), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c.pipeline_status("none").unwrap_err();
    assert_eq!((err.kind(), err.to_string()), (ErrorKind::NotFound, "unknown pipeline none".to_owned()));

    // Conflict: a version mismatch, a task held by another agent, a wait on a held lock.
    let key = ContextKey::new("k").unwrap();
    let err = c.compare_and_set(&a, &key, json!(1), 5).await.unwrap_err();
    assert!(matches!(&err, Error::VersionMismatch { key: k, .. } if *k == key), "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap().id;
    c.claim_next_task(&a, None).await.unwrap().unwrap();
    let err = c.complete_task(&b, &t, vec![]).await.unwrap_err();
    assert!(matches!(&err, Error::NotHolder { task, agent, .. } if *task == t && *agent == b), "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let lock = LockName::new("deploy").unwrap();
    c.try_lock(&a, &lock, Duration::from_secs(60)).await.unwrap().unwrap();
    // The manual clock stands still: a's lease never ends, and a wait of zero ends at once.
    let err = c.lock(&b, &lock, Duration::from_secs(1), Duration::ZERO).await.unwrap_err();
    assert!(matches!(&err, Error::Timeout { holder: Some(h), .. } if *h == a), "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.to_string(), "timed out waiting for lock deploy, held by a");

    // Timeout: any other wait that ran out.
    let barrier = BarrierName::new("builds").unwrap();
    c.create_barrier(&a, &barrier, vec!["one".into()]).await.unwrap();
    let err = c.wait_barrier(&barrier, Duration::ZERO).await.unwrap_err();
    assert!(matches!(&err, Error::Timeout { holder: None, .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Timeout);

    // Invalid: a bad argument, a name that breaks the rules.
    let err = c.create_task(&a, NewTask::new("x").max_attempts(0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(ContextKey::new("").unwrap_err().kind(), ErrorKind::Invalid);
}

#[test]
fn opening_errors_are_invalid_or_corruption() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let err = Log::open_read_only(&dir).unwrap_err();
    assert!(matches!(err, Error::NoStore { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Invalid, "a mistaken path, not a missing id");

    let log = Log::open(&dir).unwrap();
    log.append(RecordKind::new(100).unwrap(), b"x").unwrap();
    drop(log);
    let err = Log::open(&dir).unwrap().append(RecordKind::new(0x8000).unwrap(), &vec![0; 2 << 20]);
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Invalid, "a record too large");
    std::fs::write(dir.join("log.lock"), b"not a lock file").unwrap();
    let err = Log::open_read_only(&dir).unwrap_err();
    assert!(matches!(err, Error::CorruptLockFile { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Corruption);
}

#[tokio::test]
async fn a_coordinator_told_not_to_create_its_store_finds_none_and_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let err = Coordinator::options(root.path()).create(false).open().err().unwrap();
    let store = root.path().join(".maos/coordination");
    assert!(matches!(&err, Error::NoStore { dir } if *dir == store), "{err}");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "nothing created");
    // A root that is a file: an I/O error naming the store it looked for.
    let file = root.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = Coordinator::options(&file).create(false).open().err().unwrap();
    assert!(err.to_string().contains(&file.join(".maos").display().to_string()), "{err}");
    drop(Coordinator::open(root.path()).unwrap());
    drop(Coordinator::options(root.path()).create(false).open().unwrap());
}
