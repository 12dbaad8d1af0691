//! Verifying a whole store (`verify_store`): every segment and its sparse index, every snapshot,
//! every cursor file, the compacted-records file and the lock file are checked, reading only;
//! each problem is a finding naming the file and the byte offset, and one damaged file does not
//! hide another.

use maos_coord_test_support as common;

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::store::{keyed, options, segments, store};
use maos_coord::coordinator::{verify_store, StoreReport};
use maos_coord::finding::{FileKind, Severity};
use maos_coord::model::EventFilter;

fn verify(root: &Path) -> StoreReport {
    let mut calls = Vec::new();
    let report = verify_store(root, false, &mut |p| calls.push(p)).unwrap();
    let last = calls.last().copied().expect("progress was reported");
    assert_eq!(last.done, last.total, "progress ends at its total");
    assert!(calls.windows(2).all(|w| w[0].done <= w[1].done), "progress only goes forward");
    report
}

/// Every file of the store and its bytes.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

fn flip(path: &Path, offset: u64) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x20], offset).unwrap();
}

fn store_dir(root: &Path) -> PathBuf {
    root.join(".maos/coordination")
}

fn first_in(dir: &Path, suffix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found.into_iter().next().unwrap_or_else(|| panic!("no {suffix} in {}", dir.display()))
}

/// A store with many segments and their index files, two snapshots, a durable cursor and a
/// compacted-records file.
async fn full_store(root: &Path) {
    let (c, me) = store(root).await;
    let mut sub = c.subscribe_durable(&me, "audit", EventFilter::default()).unwrap();
    let first = sub.next().await.unwrap();
    sub.ack(first.lsn).unwrap();
    drop(sub);
    c.compact(&maos_coord::coordinator::CompactOptions { force: true, ..keyed() }).unwrap();
    c.close().unwrap();
    // Reading the whole log with write access writes the index of every sealed segment.
    let c = options(root).open().unwrap();
    let mut reader = c.log().reader().unwrap();
    while reader.next().unwrap().is_some() {}
    c.close().unwrap();
}

#[tokio::test]
async fn a_sound_store_has_no_finding_and_verifying_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let before = files(root.path());
    let report = verify(root.path());
    assert_eq!(report.findings, [], "{report:#?}");
    assert!(!report.corrupt());
    let log = &report.log;
    assert_eq!(log.segments, segments(root.path()).len());
    assert!(log.index_files > 0 && log.index_files == log.segments - 1, "{log:?}");
    assert!(log.compacted_records > 0, "{log:?}");
    assert_eq!(log.records, log.next.unwrap().get() - log.first.unwrap().get());
    assert!(report.snapshots.len() == 2 && report.snapshots.iter().all(|s| s.usable && s.written.is_some()));
    assert_eq!(report.cursors.len(), 1);
    assert_eq!((report.cursors[0].agent.as_str(), report.cursors[0].name.as_str()), ("a", "audit"));
    assert_eq!(files(root.path()), before, "verify changed the store");
}

#[tokio::test]
async fn every_damaged_file_is_named_with_its_byte_offset_not_only_the_first() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let store = store_dir(root.path());
    // A record's payload in a sealed segment, a snapshot's directory of blocks, a cursor's position.
    let sealed = segments(root.path())[1].clone();
    flip(&sealed, 64 + 40);
    let snapshot = first_in(&store.join("snapshots"), ".snap");
    flip(&snapshot, 60);
    let cursor = first_in(&store.join("cursors"), ".cursor");
    flip(&cursor, 17);
    let report = verify(root.path());
    assert!(report.corrupt());
    let of = |kind: FileKind| {
        report.findings.iter().find(|f| f.kind == kind).unwrap_or_else(|| panic!("{report:#?}"))
    };
    let segment = of(FileKind::Segment);
    assert_eq!((&segment.file, segment.offset, segment.severity), (&sealed, Some(64), Severity::Corruption));
    assert!(segment.message.contains("checksum mismatch") && segment.lsn.is_some(), "{segment:?}");
    let snap = of(FileKind::Snapshot);
    assert_eq!((&snap.file, snap.offset), (&snapshot, Some(48)), "the body starts at 48: {snap:?}");
    assert!(snap.message.starts_with("directory checksum mismatch"), "{snap:?}");
    let cur = of(FileKind::Cursor);
    assert_eq!((&cur.file, cur.offset), (&cursor, Some(0)), "the CRC covers bytes 0..32: {cur:?}");
    assert!(
        cur.message.contains(&cursor.display().to_string()) && cur.message.contains("checksum"),
        "{cur:?}"
    );
    // The damaged sealed segment's index no longer matches the frames after the damage, but
    // nothing past the damage is judged.
    assert_eq!(
        report.findings.iter().filter(|f| f.severity == Severity::Corruption).count(),
        3,
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_damaged_segment_is_reported_with_the_message_every_reader_gives() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let newest = segments(root.path()).pop().unwrap();
    flip(&newest, 64 + 40);
    let report = verify(root.path());
    let finding = report.findings.iter().find(|f| f.kind == FileKind::Segment).expect("a finding");
    // Every reader of that record (every command that reads it) fails with the same message.
    let c = options(root.path()).open().unwrap();
    let mut reader = c.log().reader().unwrap();
    let err = loop {
        match reader.next() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the damage was read over"),
            Err(e) => break e,
        }
    };
    assert_eq!(finding.message, err.to_string());
}

#[tokio::test]
async fn a_damaged_index_is_derived_data_reported_and_written_again() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let sealed = segments(root.path())[0].clone();
    let index = PathBuf::from(format!("{}.idx", sealed.display()));
    flip(&index, 20); // the base LSN field, under the CRC
    let report = verify(root.path());
    assert!(!report.corrupt(), "derived data is not corruption: {report:#?}");
    let found: Vec<_> = report.findings.iter().filter(|f| f.kind == FileKind::Index).collect();
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!((&found[0].file, found[0].offset, found[0].severity), (&index, Some(0), Severity::Derived));
    // Readers ignore it; a process that reads the segment to its end with write access
    // writes it again.
    let c = options(root.path()).open().unwrap();
    let mut reader = c.log().reader().unwrap();
    while reader.next().unwrap().is_some() {}
    c.close().unwrap();
    assert_eq!(verify(root.path()).findings, []);
}

#[tokio::test]
async fn an_index_whose_entry_misses_its_frame_is_reported_at_that_entry() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let sealed = segments(root.path())[0].clone();
    let index = PathBuf::from(format!("{}.idx", sealed.display()));
    let mut bytes = std::fs::read(&index).unwrap();
    let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    assert!(count >= 1);
    // The end offset (bytes 32..40) one frame short, the CRC made right again.
    let end = u64::from_le_bytes(bytes[32..40].try_into().unwrap());
    bytes[32..40].copy_from_slice(&(end + 8).to_le_bytes());
    let crc_at = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..crc_at]);
    bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&index, &bytes).unwrap();
    let report = verify(root.path());
    let found = report.findings.iter().find(|f| f.kind == FileKind::Index).expect("a finding");
    assert_eq!((found.offset, found.severity), (Some(24), Severity::Derived), "{found:?}");
    assert!(found.message.contains(&format!("byte offset {}", end + 8)), "{found:?}");
}

#[tokio::test]
async fn a_damaged_lock_file_is_reported_and_the_segments_are_still_checked() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let lock = store_dir(root.path()).join("log/log.lock");
    flip(&lock, 3); // the magic
    let sealed = segments(root.path())[1].clone();
    flip(&sealed, 64 + 40);
    let report = verify(root.path());
    let kinds: Vec<(FileKind, Option<u64>)> = report.findings.iter().map(|f| (f.kind, f.offset)).collect();
    assert!(kinds.contains(&(FileKind::LockFile, Some(0))), "{report:#?}");
    assert!(kinds.contains(&(FileKind::Segment, Some(64))), "{report:#?}");
    let lock_finding = report.findings.iter().find(|f| f.kind == FileKind::LockFile).unwrap();
    assert!(lock_finding.message.contains("bad magic"), "{lock_finding:?}");
}

#[tokio::test]
async fn a_damaged_lock_file_alone_is_reported_with_its_remedy_and_the_records_are_still_decoded() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let lock = store_dir(root.path()).join("log/log.lock");
    for at in [3, 9] {
        // The magic, then the version.
        flip(&lock, at);
        let report = verify(root.path());
        let lock_findings: Vec<_> = report.findings.iter().filter(|f| f.kind == FileKind::LockFile).collect();
        assert_eq!(lock_findings.len(), 1, "{report:#?}");
        assert!(lock_findings[0].remedy.contains("removing it"), "{:?}", lock_findings[0]);
        assert_eq!(report.findings.len(), 1, "nothing else is wrong: {report:#?}");
        flip(&lock, at);
    }
}

#[tokio::test]
async fn a_compacted_store_without_a_usable_snapshot_cannot_be_opened_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let snapshots = store_dir(root.path()).join("snapshots");
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        flip(&entry.unwrap().path(), 2);
    }
    let report = verify(root.path());
    let store = report.findings.iter().find(|f| f.kind == FileKind::Store).expect("a store finding");
    let err = options(root.path()).open().err().expect("no usable snapshot");
    assert_eq!(store.message, err.to_string());
    assert_eq!(report.findings.iter().filter(|f| f.kind == FileKind::Snapshot).count(), 2, "{report:#?}");
}

#[tokio::test]
async fn a_torn_tail_is_repairable_not_corruption() {
    let root = tempfile::tempdir().unwrap();
    full_store(root.path()).await;
    let newest = segments(root.path()).pop().unwrap();
    let log = maos_coord::Log::open_read_only(store_dir(root.path()).join("log")).unwrap();
    let next = log.next_lsn();
    drop(log);
    // Bytes of a write never acknowledged, after a reboot (no lock file of this boot).
    let bytes = std::fs::read(&newest).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    let end = end.next_multiple_of(8);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .write_all_at(b"half a frame", end)
        .unwrap();
    std::fs::remove_file(store_dir(root.path()).join("log/log.lock")).unwrap();
    let report = verify(root.path());
    assert!(!report.corrupt(), "{report:#?}");
    let torn = report.findings.iter().find(|f| f.severity == Severity::Repairable).expect("a torn tail");
    assert_eq!((&torn.file, torn.offset, torn.lsn), (&newest, Some(end), Some(next)), "{torn:?}");
}
