//! Keyed compaction: the state is unchanged, the audit trail keeps exactly the records nothing
//! later superseded, and a second compaction drops what became superseded since. A process killed
//! after any step of it is tested with the harness that runs it, in
//! `crates/tools/tests/keyed_compaction.rs`.

use maos_coord_test_support as common;

use std::collections::HashSet;
use std::path::Path;

use common::store::{busy, keyed, options, segments, state, store, trail};
use maos_coord::coordinator::CompactOptions;
use maos_coord::model::{AgentId, ContextKey, Event, Subject, Visibility};
use maos_coord::{Clock, Coordinator, Error, Lsn, Timestamp};
use serde_json::json;

/// The trail keyed compaction must leave, computed by brute force from the trail before it: below
/// `start`, a record stays iff no later record has the same entity and role.
fn expected_after(before: &[(Lsn, Event)], start: Lsn) -> Vec<(Lsn, Event)> {
    let mut later = HashSet::new();
    let mut kept: Vec<(Lsn, Event)> = before
        .iter()
        .rev()
        .filter(|(lsn, event)| {
            let lineage = event.lineage();
            let superseded = lineage.as_ref().is_some_and(|l| later.contains(l));
            if let Some(l) = lineage {
                later.insert(l);
            }
            *lsn >= start || !superseded
        })
        .cloned()
        .collect();
    kept.reverse();
    kept
}

/// When each record the store holds for audits was appended.
fn times(c: &Coordinator) -> std::collections::HashMap<Lsn, Timestamp> {
    let mut reader = c.log().audit_reader().unwrap();
    let mut out = std::collections::HashMap::new();
    while let Some(r) = reader.next().unwrap() {
        out.insert(r.lsn, r.timestamp);
    }
    out
}

fn assert_strictly_increasing(trail: &[(Lsn, Event)]) {
    assert!(trail.windows(2).all(|w| w[0].0 < w[1].0), "audit trail out of order");
}

#[tokio::test]
async fn keyed_compaction_keeps_exactly_the_unsuperseded_records_and_the_state() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    let state_before = state(&c);
    let before = trail(&c);
    let n = segments(root.path()).len();

    let report = c.compact(&keyed()).unwrap();
    let start = c.log().first_lsn().unwrap();
    assert!(start > Lsn::new(1) && segments(root.path()).len() < n, "{report:?}");
    let maos_coord::coordinator::KeyedCounts { examined, kept } = report.keyed.unwrap();
    assert_eq!(examined, start.get() - 1);
    let after = trail(&c);
    assert_eq!(after, expected_after(&before, start));
    assert_eq!(kept as usize, after.iter().filter(|(l, _)| *l < start).count());
    assert!(kept > 0 && kept < examined * 3 / 5, "kept {kept} of {examined}");
    assert_strictly_increasing(&after);

    // A finished task below the range keeps its creation and its final record.
    let finished = before.iter().find_map(|(_, e)| match e {
        Event::TaskCompleted { task, .. } => Some(task.clone()),
        _ => None,
    });
    let history = c.history(&me, &Subject::Task(finished.unwrap().to_string())).unwrap();
    let names: Vec<&str> = history.iter().map(|e| e.recorded.event.type_name()).collect();
    assert_eq!(names, ["TaskCreated", "TaskCompleted"]);
    // A key's history holds no superseded update below the range.
    let below =
        c.history(&me, &Subject::Context("k0".into())).unwrap().iter().filter(|e| e.lsn < start).count();
    assert!(below <= 1, "{below} records of k0 below LSN {start}");

    let verified = c.local_log().expect("a local store").verify().unwrap();
    assert_eq!(verified.compacted_records, kept);
    drop(c);
    let reopened = options(root.path()).open().unwrap();
    assert_eq!(state(&reopened), state_before);
    assert_eq!(trail(&reopened), after);
    busy(&reopened, &me, 7).await;
}

#[tokio::test]
async fn a_second_keyed_compaction_drops_what_was_superseded_since() {
    let root = tempfile::tempdir().unwrap();
    let c = options(root.path()).open().unwrap();
    let me = AgentId::new("a").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let solo = ContextKey::new("solo").unwrap();
    c.set_context(&me, &solo, json!(1), Visibility::Shared).await.unwrap();
    let solo_records = |c: &Coordinator| -> Vec<Lsn> {
        c.history(&me, &Subject::Context("solo".into())).unwrap().into_iter().map(|e| e.lsn).collect()
    };
    let first_set = solo_records(&c)[0];
    for round in 0..3 {
        busy(&c, &me, round).await;
        c.snapshot().unwrap();
    }
    c.compact(&keyed()).unwrap();
    assert_eq!(solo_records(&c), [first_set], "kept: nothing superseded it yet");
    assert!(first_set < c.log().first_lsn().unwrap());

    c.set_context(&me, &solo, json!(2), Visibility::Shared).await.unwrap();
    let second_set = solo_records(&c)[1];
    for round in 10..12 {
        busy(&c, &me, round).await;
        c.snapshot().unwrap();
    }
    let before = trail(&c);
    let state_before = state(&c);
    c.compact(&keyed()).unwrap();
    let start = c.log().first_lsn().unwrap();
    assert!(second_set < start);
    let after = trail(&c);
    assert_eq!(after, expected_after(&before, start));
    assert_eq!(solo_records(&c), [second_set], "the first record moved out of the file");
    assert_eq!(state(&c), state_before);
}

#[tokio::test]
async fn archive_and_plain_compaction_after_keyed_compaction() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    let archive = root.path().join("archive");
    let report = c
        .compact(&CompactOptions { keyed: true, archive: Some(archive.clone()), ..CompactOptions::default() })
        .unwrap();
    let archived = std::fs::read_dir(&archive).unwrap().count();
    assert_eq!(archived, report.removed.len());
    // A plain compaction later removes segments without keeping anything of them; the kept
    // records of the earlier keyed compaction stay.
    let kept = c.local_log().expect("a local store").verify().unwrap().compacted_records;
    for round in 20..22 {
        busy(&c, &me, round).await;
        c.snapshot().unwrap();
    }
    c.compact(&CompactOptions::default()).unwrap();
    let after = trail(&c);
    assert_eq!(after.iter().filter(|(l, _)| *l < report.limit).count() as u64, kept);
    assert_strictly_increasing(&after);
}

#[tokio::test]
async fn a_damaged_compacted_file_is_reported_by_name_and_compaction_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    c.compact(&keyed()).unwrap();
    busy(&c, &me, 5).await;
    c.snapshot().unwrap();
    busy(&c, &me, 6).await;
    c.snapshot().unwrap();
    let file = root.path().join(".maos/coordination/log/compacted.log");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    let err = c.local_log().expect("a local store").verify().unwrap_err().to_string();
    assert!(err.contains("compacted.log"), "{err}");
    let segments_before = segments(root.path());
    assert!(c.compact(&keyed()).is_err());
    assert_eq!(segments(root.path()), segments_before);
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}

#[tokio::test]
async fn application_events_before_the_bound_are_dropped_and_later_ones_kept() {
    let root = tempfile::tempdir().unwrap();
    let clock = maos_coord::ManualClock::starting_now();
    let c = options(root.path()).clock(clock.shared()).open().unwrap();
    let me = AgentId::new("a").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    for i in 0..40 {
        c.emit_event(&me, "old", json!(i), Default::default()).await.unwrap();
    }
    busy(&c, &me, 0).await;
    clock.advance(std::time::Duration::from_millis(5));
    let since = clock.now();
    for i in 0..40 {
        c.emit_event(&me, "new", json!(i), Default::default()).await.unwrap();
    }
    for round in 1..4 {
        busy(&c, &me, round).await;
        c.snapshot().unwrap();
    }
    let state_before = state(&c);
    let before = trail(&c);
    let appended = times(&c);

    let err = c.compact(&CompactOptions { keep_events_since: Some(since), ..CompactOptions::default() });
    assert!(matches!(err, Err(Error::InvalidArgument { name: "keep_events_since", .. })), "{err:?}");
    let opts = CompactOptions { keyed: true, keep_events_since: Some(since), ..CompactOptions::default() };
    c.compact(&opts).unwrap();
    let start = c.log().first_lsn().unwrap();
    let custom =
        |event: &Event, kind: &str| matches!(event, Event::Custom { event_type, .. } if event_type == kind);
    assert!(
        before.iter().any(|(l, e)| *l < start && custom(e, "new")),
        "some new events lay in the compacted range"
    );
    let old_below = |(l, e): &&(Lsn, Event)| *l < start && custom(e, "old");
    assert_eq!(before.iter().filter(old_below).count(), 40, "every old event lay in the compacted range");

    let expected: Vec<(Lsn, Event)> = expected_after(&before, start)
        .into_iter()
        .filter(|(l, e)| *l >= start || !matches!(e, Event::Custom { .. }) || appended[l] >= since)
        .collect();
    let after = trail(&c);
    assert_eq!(after, expected);
    assert!(!after.iter().any(|(_, e)| custom(e, "old")));
    assert_eq!(after.iter().filter(|(_, e)| custom(e, "new")).count(), 40, "every new event is kept");
    assert_eq!(state(&c), state_before);
}

#[test]
fn a_compacted_file_whose_range_ends_past_the_log_is_reported_by_name() {
    // The compacted-records file of a longer log, beside a shorter one: its range ends past the
    // end of this log. Audits, verification and compaction report the file, not an LSN.
    let open =
        |dir: &Path| maos_coord::Log::options(dir).segment_size(8192).max_record_size(2048).open().unwrap();
    let kind = maos_coord::RecordKind::new(7).unwrap();
    let (longer, shorter) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (long, short) = (open(longer.path()), open(shorter.path()));
    for (log, records) in [(&long, 120), (&short, 60)] {
        for _ in 0..records {
            log.append(kind, &[1; 200]).unwrap();
        }
    }
    long.compact_keyed(long.next_lsn(), None, |_| Ok(true)).unwrap();
    let foreign = std::fs::read(longer.path().join("compacted.log")).unwrap();
    std::fs::write(shorter.path().join("compacted.log"), &foreign).unwrap();

    let audit = || -> maos_coord::Result<u64> {
        let mut reader = short.audit_reader()?;
        let mut n = 0;
        while reader.next()?.is_some() {
            n += 1;
        }
        Ok(n)
    };
    let errors = [
        audit().unwrap_err(),
        short.verify().unwrap_err(),
        short.compact_keyed(short.next_lsn(), None, |_| Ok(true)).unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::CorruptHeader { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("compacted.log") && message.contains("past the end of the log"),
            "{message}"
        );
    }
    assert_eq!(std::fs::read(shorter.path().join("compacted.log")).unwrap(), foreign);
    assert_eq!(short.first_lsn().unwrap(), Lsn::new(1), "nothing was removed");
}
