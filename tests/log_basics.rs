//! Appending and reading back: LSNs, batches, segment rollover, seeking, limits, durability.

use maos_coord_test_support as common;

use std::time::Duration;

use common::{kind, payload, read_all, segment_files, small};
use maos_coord::{Durability, Error, Log, Lsn, RecordKind};

#[test]
fn records_come_back_in_order_with_dense_lsns_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let expected: Vec<(u64, Vec<u8>)> = (1..=500).map(|i| (i, payload(i))).collect();
    {
        let log = small(dir.path()).open().unwrap();
        for (i, p) in &expected {
            assert_eq!(log.append(kind(), p).unwrap(), Lsn::new(*i));
        }
        assert_eq!(read_all(&log), expected);
        assert_eq!(log.next_lsn(), Lsn::new(501));
    }
    assert!(segment_files(dir.path()).len() > 5, "small segments roll over");
    let log = small(dir.path()).open().unwrap();
    assert!(!log.recovery_report().tail_from_segments);
    assert_eq!(read_all(&log), expected);
    let report = log.verify().unwrap();
    assert_eq!((report.first, report.next, report.records), (Lsn::new(1), Lsn::new(501), 500));

    common::forget_tail(dir.path());
    let log = small(dir.path()).open().unwrap();
    assert!(log.recovery_report().tail_from_segments);
    assert_eq!(log.recovery_report().torn, None);
    assert_eq!(read_all(&log), expected);
}

#[test]
fn a_reader_can_start_at_any_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).open().unwrap();
    for i in 1..=300 {
        log.append(kind(), &payload(i)).unwrap();
    }
    for start in [1, 2, 57, 150, 299, 300] {
        let mut reader = log.reader_from(Lsn::new(start)).unwrap();
        let first = reader.next().unwrap().unwrap();
        assert_eq!((first.lsn, first.payload), (Lsn::new(start), payload(start).as_slice()));
    }
    let mut at_end = log.reader_from(Lsn::new(301)).unwrap();
    assert!(at_end.next().unwrap().is_none());
    log.append(kind(), b"later").unwrap();
    assert_eq!(at_end.next().unwrap().unwrap().payload, b"later", "a caught-up reader sees new records");
    assert!(matches!(log.reader_from(Lsn::new(303)), Err(Error::LsnOutOfRange { .. })));
    assert!(matches!(log.reader_from(Lsn::new(0)), Err(Error::LsnOutOfRange { .. })));
}

#[test]
fn a_batch_gets_consecutive_lsns_and_mixed_kinds_survive() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).open().unwrap();
    let a = RecordKind::new(1).unwrap();
    let b = RecordKind::new(2).unwrap();
    let appended =
        log.append_records([(a, b"x".as_slice()), (b, b"y".as_slice()), (a, b"".as_slice())]).unwrap();
    assert_eq!(
        (appended.first, appended.last(), appended.next()),
        (Lsn::new(1), Some(Lsn::new(3)), Lsn::new(4))
    );
    let mut reader = log.reader().unwrap();
    let kinds: Vec<(u16, Vec<u8>)> =
        std::iter::from_fn(|| reader.next().unwrap().map(|r| (r.kind.get(), r.payload.to_vec()))).collect();
    assert_eq!(kinds, [(1, b"x".to_vec()), (2, b"y".to_vec()), (1, Vec::new())]);
    let empty = log.append_batch::<&[u8]>(kind(), &[]).unwrap();
    assert_eq!((empty.count, log.next_lsn()), (0, Lsn::new(4)));
}

#[test]
fn timestamps_never_go_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).open().unwrap();
    for i in 0..100 {
        log.append(kind(), &payload(i)).unwrap();
    }
    let mut reader = log.reader().unwrap();
    let mut last = 0;
    while let Some(r) = reader.next().unwrap() {
        assert!(r.timestamp.as_micros() >= last);
        last = r.timestamp.as_micros();
    }
}

#[test]
fn limits_are_enforced_with_clear_errors_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).open().unwrap();
    let err = log.append(kind(), &[0u8; 1025]).unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { size: 1025, max: 1024 }), "{err}");
    let big: Vec<Vec<u8>> = (0..20).map(|_| vec![1u8; 1000]).collect();
    let err = log.append_batch(kind(), &big).unwrap_err();
    assert!(matches!(err, Error::BatchTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("does not fit into one segment"));
    assert_eq!(log.next_lsn(), Lsn::new(1));
    assert!(RecordKind::new(0).is_err());

    let err = Log::options(dir.path().join("x")).segment_size(10_000).open().unwrap_err();
    assert!(err.to_string().contains("segment size"), "{err}");
    let err = Log::options(dir.path().join("y")).segment_size(8192).max_record_size(9000).open().unwrap_err();
    assert!(err.to_string().contains("maximum record size"), "{err}");
}

#[test]
fn sync_durability_acknowledges_only_synced_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
    for i in 1..=50 {
        let lsn = log.append(kind(), &payload(i)).unwrap();
        assert!(log.durable_lsn() > lsn, "acknowledged before durable");
    }
}

/// No fallback polling in the durability tests: only a wake-up can end a wait before its
/// timeout, which merely turns a hang into a failure.
const NO_FALLBACK: Duration = Duration::from_secs(3600);
const HANG: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

#[test]
fn flush_durability_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path())
        .durability(Durability::Flush(Duration::from_millis(5)))
        .wake_fallback(NO_FALLBACK)
        .open()
        .unwrap();
    let lsn = log.append(kind(), b"soon durable").unwrap();
    assert!(runtime().block_on(log.wait_durable(lsn, HANG)), "the flusher never synced");
    assert!(log.durable_lsn() > lsn);
}

#[test]
fn waiting_for_durability_ends_with_the_sync_that_makes_the_record_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).wake_fallback(NO_FALLBACK).open().unwrap();
    let lsn = log.append(kind(), b"buffered").unwrap();
    let runtime = runtime();
    assert!(!runtime.block_on(log.wait_durable(lsn, Duration::ZERO)), "Buffered: nothing synced it");
    let syncer = log.clone();
    let sync = std::thread::spawn(move || syncer.sync().unwrap());
    // Whether the sync comes before the wait or during it, the wait ends with it.
    assert!(runtime.block_on(log.wait_durable(lsn, HANG)), "the sync did not wake the waiter");
    assert!(sync.join().unwrap() > lsn);
    assert!(runtime.block_on(log.wait_durable(lsn, Duration::ZERO)), "durable already: at once");
    let next = log.append(kind(), b"not yet").unwrap();
    assert!(!runtime.block_on(log.wait_durable(next, Duration::ZERO)));
}

#[test]
fn sync_appends_are_durable_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).durability(Durability::Sync).wake_fallback(NO_FALLBACK).open().unwrap();
    let lsn = log.append(kind(), b"synced").unwrap();
    assert!(runtime().block_on(log.wait_durable(lsn, Duration::ZERO)));
}

#[test]
fn readers_keep_reading_after_the_last_handle_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).durability(Durability::Flush(Duration::from_millis(1))).open().unwrap();
    let expected: Vec<(u64, Vec<u8>)> = (1..=100).map(|i| (i, payload(i))).collect();
    for (_, p) in &expected {
        log.append(kind(), p).unwrap();
    }
    let mut reader = log.reader().unwrap();
    log.close().unwrap();
    let mut read = Vec::new();
    while let Some(r) = reader.next().unwrap() {
        read.push((r.lsn.get(), r.payload.to_vec()));
    }
    assert_eq!(read, expected);
}

#[test]
fn a_read_only_log_closes() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path()).open().unwrap().append(kind(), b"x").unwrap();
    let log = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(read_all(&log).len(), 1);
    log.close().unwrap();
}

#[test]
fn two_handles_in_one_process_append_to_one_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let a = small(dir.path()).open().unwrap();
    let b = small(dir.path()).open().unwrap();
    for i in 0..200 {
        let log = if i % 3 == 0 { &a } else { &b };
        assert_eq!(log.append(kind(), &payload(i)).unwrap(), Lsn::new(i + 1));
    }
    assert_eq!(read_all(&a), read_all(&b));
    assert_eq!(read_all(&a).len(), 200);
}

/// Records are "writer:i"; every writer's records must all be there, in its own order.
fn assert_each_writer_in_order(log: &Log, writers: u64, each: u64) {
    let records = read_all(log);
    assert_eq!(records.len() as u64, writers * each);
    for t in 0..writers {
        let mine: Vec<u64> = records
            .iter()
            .filter_map(|(_, p)| {
                let s = String::from_utf8(p.clone()).unwrap();
                let (writer, i) = s.split_once(':').unwrap();
                (writer == t.to_string()).then(|| i.parse().unwrap())
            })
            .collect();
        assert_eq!(mine, (0..each).collect::<Vec<_>>(), "writer {t} in its own order");
    }
}

#[test]
fn concurrent_threads_share_group_commits_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let log = log.clone();
            s.spawn(move || {
                for i in 0..100u64 {
                    log.append(kind(), format!("{t}:{i}").as_bytes()).unwrap();
                }
            });
        }
    });
    assert_each_writer_in_order(&log, 8, 100);
}

#[test]
fn async_callers_share_group_commits_and_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..16u64)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in 0..50u64 {
                        let lsn = log.append_async(kind(), format!("{t}:{i}").as_bytes()).await.unwrap();
                        assert!(log.durable_lsn() > lsn, "acknowledged before durable");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_each_writer_in_order(&log, 16, 50);
}

#[test]
fn append_with_sees_every_earlier_record_and_appends_nothing_on_error() {
    use maos_coord::log::Built;
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).open().unwrap();
    // Threads and async tasks mixed: each increments the counter held by the last record.
    let increment = |log: &maos_coord::Log| {
        let reader_log = log.clone();
        move |tail: Lsn| -> maos_coord::Result<Built<u64>> {
            let last = if tail > Lsn::new(1) {
                let mut r = reader_log.reader_from(Lsn::new(tail.get() - 1))?;
                u64::from_le_bytes(r.next()?.unwrap().payload.try_into().unwrap())
            } else {
                0
            };
            Ok(Built { records: vec![(kind(), (last + 1).to_le_bytes().to_vec())], value: last + 1 })
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let log = log.clone();
            s.spawn(move || {
                for _ in 0..100 {
                    log.append_with(increment(&log)).unwrap();
                }
            });
        }
        runtime.block_on(async {
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let log = log.clone();
                    tokio::spawn(async move {
                        for _ in 0..100 {
                            let (appended, value) = log.append_with_async(increment(&log)).await.unwrap();
                            assert_eq!(appended.first.get(), value, "the counter equals the LSN");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
    });
    let values: Vec<u64> =
        read_all(&log).iter().map(|(_, p)| u64::from_le_bytes(p.as_slice().try_into().unwrap())).collect();
    assert_eq!(values, (1..=800).collect::<Vec<_>>());

    // A builder's error appends nothing and reaches the caller; an empty build appends nothing.
    let err = log
        .append_with(|_| -> maos_coord::Result<Built<()>> {
            Err(Error::InvalidArgument { name: "test", reason: "refused".into() })
        })
        .unwrap_err();
    assert!(err.to_string().contains("refused"));
    let (appended, value) = log.append_with(|tail| Ok(Built { records: vec![], value: tail })).unwrap();
    assert_eq!((appended.count, value), (0, Lsn::new(801)));
    assert_eq!(log.next_lsn(), Lsn::new(801));
}

#[test]
fn early_writeback_changes_nothing_that_is_read_back() {
    for every in [0, 4096, 1] {
        let dir = tempfile::tempdir().unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (1..=300).map(|i| (i, payload(i))).collect();
        {
            let log =
                small(dir.path()).durability(Durability::Buffered).writeback_every(every).open().unwrap();
            for (_, p) in &expected {
                log.append(kind(), p).unwrap();
            }
            assert_eq!(read_all(&log), expected, "writeback every {every} bytes");
        }
        let log = small(dir.path()).open().unwrap();
        assert_eq!(read_all(&log), expected, "writeback every {every} bytes, reopened");
        assert_eq!(log.verify().unwrap().records, 300);
    }
}
