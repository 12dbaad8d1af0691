//! Barriers and locks through the coordinator.

use maos_coord_test_support as common;

use common::graph::{agent, setup};
use std::time::Duration;

use maos_coord::model::{BarrierName, LockName};
use maos_coord::{Coordinator, Durability, Error};
#[tokio::test]
async fn barriers_complete_when_every_participant_signalled() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let b = BarrierName::new("builds").unwrap();
    c.create_barrier(&a, &b, vec!["frontend".into(), "backend".into()]).await.unwrap();
    let err = c.signal_barrier(&a, &b, "mobile").await.unwrap_err();
    assert!(matches!(err, Error::NotParticipant { .. }), "{err}");
    assert!(!c.signal_barrier(&a, &b, "frontend").await.unwrap());
    assert!(matches!(c.wait_barrier(&b, Duration::from_millis(20)).await, Err(Error::Timeout { .. })));
    let waiter = {
        let (c, b) = (c.clone(), b.clone());
        tokio::spawn(async move { c.wait_barrier(&b, Duration::from_secs(5)).await })
    };
    assert!(c.signal_barrier(&a, &b, "backend").await.unwrap());
    waiter.await.unwrap().unwrap();
    assert!(matches!(
        c.wait_barrier(&BarrierName::new("none").unwrap(), Duration::ZERO).await,
        Err(Error::UnknownBarrier { .. })
    ));
}

#[tokio::test]
async fn locks_have_leases_and_increasing_fencing_tokens() {
    let root = tempfile::tempdir().unwrap();
    let clock = maos_coord::ManualClock::starting_now();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .clock(clock.shared())
        .open()
        .unwrap();
    let a = agent("lead");
    c.register_agent(&a, "lead", vec![]).await.unwrap();
    let b = agent("other");
    c.register_agent(&b, "r", vec![]).await.unwrap();
    let l = LockName::new("deploy").unwrap();
    assert_eq!(c.lock_info(&l).unwrap(), None, "never taken");
    let first = c.try_lock(&a, &l, Duration::from_millis(100)).await.unwrap().unwrap();
    let info = c.lock_info(&l).unwrap().unwrap();
    assert_eq!((info.holder, info.token), (a.clone(), first.token));
    assert!(c.try_lock(&b, &l, Duration::from_millis(100)).await.unwrap().is_none());
    let err = c.unlock(&b, &l).await.unwrap_err();
    assert!(matches!(err, Error::LockHeld { .. }), "{err}");
    clock.advance(Duration::from_millis(150)); // a's lease ends
    let second = c.lock(&b, &l, Duration::from_secs(1), Duration::from_secs(2)).await.unwrap();
    assert!(second.token > first.token, "a lapsed lease frees the lock, with a larger token");
    c.unlock(&b, &l).await.unwrap();
    let third = c.try_lock(&a, &l, Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(third.token > second.token);
    // The clock stands still: a's lease never ends while b waits, so b's wait times out.
    assert!(matches!(
        c.lock(&b, &l, Duration::from_secs(1), Duration::from_millis(30)).await,
        Err(Error::Timeout { .. })
    ));
}
