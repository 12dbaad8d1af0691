//! Small stores on small segments that grow, and the spare segment that `Sync` appenders roll
//! into (log-format.md, "Segment files", "Spare segment"). Crashes of real processes in the
//! middle of zero-filling and of taking the spare are in `crates/tools/tests/multiprocess_crash.rs`.

use maos_coord_test_support as common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{kind, read_all};
use maos_coord::format::{segment_file_name, SegmentHeader};
use maos_coord::fs::FaultDisk;
use maos_coord::{Durability, Log, LogOptions, Lsn};

const SPARE: &str = "segment.spare";

/// The segments of the log in `dir`, oldest first: (base LSN, file length, header capacity).
fn segments(dir: &Path) -> Vec<(u64, u64, u64)> {
    let mut out: Vec<(u64, u64, u64)> = common::segment_files(dir)
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            let header = SegmentHeader::decode(&bytes).unwrap();
            (header.base_lsn.get(), bytes.len() as u64, header.capacity)
        })
        .collect();
    out.sort_unstable();
    out
}

fn spare(dir: &Path) -> PathBuf {
    dir.join(SPARE)
}

fn growing(dir: &Path) -> LogOptions {
    Log::options(dir).segment_size(4 << 20).max_record_size(256 << 10).durability(Durability::Buffered)
}

#[test]
fn a_new_store_starts_on_a_small_segment_and_segments_grow_to_the_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let log = growing(dir.path()).open().unwrap();
    // 4 MiB / 64 = 64 KiB for the first segment.
    assert_eq!(segments(dir.path()), [(1, 64 << 10, 64 << 10)]);
    let record = vec![5u8; 30_000];
    for _ in 0..600 {
        log.append(kind(), &record).unwrap();
    }
    let sizes: Vec<u64> = segments(dir.path())
        .iter()
        .map(|&(_, len, capacity)| {
            assert_eq!(len, capacity, "every segment is as long as its header says");
            capacity
        })
        .collect();
    assert_eq!(sizes[..7], [64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20]);
    assert!(sizes[7..].iter().all(|&s| s == 4 << 20), "{sizes:?}: the segment size is the maximum");
    assert!(!spare(dir.path()).exists(), "a Buffered log makes no spare");
    // Readers, the sparse index, seeking and verify across the mixed sizes.
    assert_eq!(read_all(&log).len(), 600);
    assert_eq!(log.verify().unwrap().records, 600);
    let mut reader = log.reader_from(Lsn::new(333)).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().lsn, Lsn::new(333));
    drop(reader);
    drop(log);
    // Recovery from the segment files alone reads the newest segment's capacity from its header.
    std::fs::remove_file(dir.path().join("log.lock")).unwrap();
    let log = growing(dir.path()).open().unwrap();
    assert!(log.recovery_report().tail_from_segments);
    assert_eq!(log.append(kind(), b"next").unwrap(), Lsn::new(601));
    // Dropping the oldest segments leaves the rest readable.
    let removed = log.remove_segments_before(Lsn::new(300), None).unwrap();
    assert!(!removed.is_empty());
    assert_eq!(read_all(&log).last().unwrap().0, 601);
}

#[test]
fn a_batch_larger_than_an_empty_small_segment_grows_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let log = growing(dir.path()).open().unwrap();
    let big = vec![9u8; 200_000];
    // Four records of 200 KB in one batch: more than the empty 64 KiB first segment holds, so it
    // grows (no next segment may take LSN 1 as its name).
    let appended = log.append_batch(kind(), &[&big, &big, &big, &big]).unwrap();
    assert_eq!(appended.first, Lsn::new(1));
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(segs[0].1, segs[0].2, "file and header agree");
    assert!(segs[0].2 >= 64 + 4 * (200_000 + 32), "{segs:?}");
    // The next segment is twice the grown one (up to the maximum).
    log.append(kind(), &big).unwrap();
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 2, "{segs:?}");
    assert_eq!(segs[1].2, (2 * segs[0].2).min(4 << 20));
    drop(log);
    std::fs::remove_file(dir.path().join("log.lock")).unwrap();
    let log = growing(dir.path()).open().unwrap();
    let records = read_all(&log);
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|(_, p)| p == &big));
}

#[test]
fn a_segment_left_longer_than_its_header_says_by_an_interrupted_growth_opens_and_grows_again() {
    let dir = tempfile::tempdir().unwrap();
    drop(growing(dir.path()).open().unwrap());
    // The file was extended, and the process died before the header named the new capacity.
    let first = dir.path().join(segment_file_name(Lsn::new(1)));
    std::fs::OpenOptions::new().write(true).open(&first).unwrap().set_len(300 << 10).unwrap();
    std::fs::remove_file(dir.path().join("log.lock")).unwrap();
    let log = growing(dir.path()).open().unwrap();
    let big = vec![3u8; 200_000];
    log.append_batch(kind(), &[&big, &big]).unwrap();
    log.append(kind(), b"small").unwrap();
    assert_eq!(read_all(&log).len(), 3);
    log.verify().unwrap();
}

#[test]
fn a_sync_log_rolls_into_its_zero_filled_spare() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::options(dir.path())
        .segment_size(64 << 10)
        .max_record_size(4096)
        .prefill_segments(true)
        .open()
        .unwrap();
    log.append(kind(), b"first").unwrap();
    // The first append asked the log's thread for a spare to follow the 8 KiB first segment.
    log.wait_for_spare_segment();
    let made = std::fs::read(spare(dir.path())).unwrap();
    assert_eq!(made.len(), 16 << 10, "twice the first segment");
    assert!(made.iter().all(|&b| b == 0), "written with zeros");
    let inode = std::fs::metadata(spare(dir.path())).unwrap().ino();
    let record = vec![1u8; 1000];
    let mut n = 1;
    while segments(dir.path()).len() < 2 {
        log.append(kind(), &record).unwrap();
        n += 1;
    }
    let second = dir.path().join(segment_file_name(Lsn::new(segments(dir.path())[1].0)));
    assert_eq!(std::fs::metadata(&second).unwrap().ino(), inode, "the spare became the next segment");
    assert_eq!(segments(dir.path())[1].2, 16 << 10);
    // Its bytes after the records are zero, and the next spare follows it.
    log.wait_for_spare_segment();
    assert_eq!(std::fs::metadata(spare(dir.path())).unwrap().len(), 32 << 10);
    assert_eq!(read_all(&log).len(), n);
    log.verify().unwrap();
    // The spare counts in the disk usage, and is never read as a segment, cold or warm.
    let usage = log.disk_usage().unwrap();
    assert_eq!((usage.segments, usage.spare_bytes), (2, 32 << 10));
    drop(log);
    std::fs::remove_file(dir.path().join("log.lock")).unwrap();
    let log = Log::options(dir.path()).segment_size(64 << 10).max_record_size(4096).open().unwrap();
    assert_eq!(read_all(&log).len(), n);
    assert!(spare(dir.path()).exists(), "a spare is kept across opens");
}

#[test]
fn a_buffered_log_makes_no_spare_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = common::small(dir.path()).open().unwrap();
    for i in 0..100u64 {
        log.append(kind(), &common::payload(i)).unwrap();
    }
    log.wait_for_spare_segment();
    assert!(!spare(dir.path()).exists());
    // Asked for explicitly, it makes one; a rollover of any appender takes it.
    assert!(log.prepare_spare_segment().unwrap());
    assert!(!log.prepare_spare_segment().unwrap(), "one is there");
    let count = segments(dir.path()).len();
    while segments(dir.path()).len() == count {
        log.append(kind(), &common::payload(7)).unwrap();
    }
    assert!(!spare(dir.path()).exists(), "the rollover took it");
    log.verify().unwrap();
}

#[test]
fn a_spare_of_another_size_or_with_a_stale_header_is_never_read_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let log = common::small(dir.path()).open().unwrap();
    log.append(kind(), b"one").unwrap();
    // A spare that a dead appender had started to take (header written, not renamed), of the
    // wrong size.
    let mut stale = SegmentHeader {
        base_lsn: Lsn::new(2),
        created: maos_coord::Timestamp::from_micros(0),
        capacity: 4096,
    }
    .encode()
    .to_vec();
    stale.resize(4096, 0);
    std::fs::write(spare(dir.path()), &stale).unwrap();
    assert!(log.prepare_spare_segment().unwrap(), "replaced by one of the right size");
    assert_eq!(std::fs::metadata(spare(dir.path())).unwrap().len(), 8192);
    for i in 0..50u64 {
        log.append(kind(), &common::payload(i)).unwrap();
    }
    assert_eq!(read_all(&log).len(), 51);
    log.verify().unwrap();
    // A spare with a header claiming the next LSN is ignored by a cold open.
    let mut claimed = SegmentHeader {
        base_lsn: log.next_lsn(),
        created: maos_coord::Timestamp::from_micros(0),
        capacity: 8192,
    }
    .encode()
    .to_vec();
    claimed.resize(8192, 0);
    drop(log);
    std::fs::write(spare(dir.path()), &claimed).unwrap();
    std::fs::remove_file(dir.path().join("log.lock")).unwrap();
    let log = common::small(dir.path()).open().unwrap();
    assert_eq!(read_all(&log).len(), 51);
    let next = log.next_lsn();
    // ... and a rollover that takes it writes the header anew.
    while log.next_lsn() == next || segments(dir.path()).last().unwrap().0 < next.get() {
        log.append(kind(), &common::payload(1)).unwrap();
    }
    log.verify().unwrap();
}

fn fault_log(dir: &Path) -> LogOptions {
    Log::options(dir)
        .segment_size(32 << 10)
        .max_record_size(2048)
        .durability(Durability::Sync)
        .prefill_segments(false)
}

/// Appends 60 records of 1000 bytes through four rollovers (8, 16, 32, 32 KiB segments), making
/// the spare explicitly before each append; returns the payloads acknowledged.
fn spare_workload(log: &Log) -> Vec<Vec<u8>> {
    let mut acked = Vec::new();
    for i in 0..60u8 {
        let _ = log.prepare_spare_segment();
        let payload = vec![i; 1000];
        if log.append(kind(), &payload).is_ok() {
            acked.push(payload);
        }
    }
    acked
}

/// Runs the workload under a fault disk that cuts the power before operation `cut` (none: count
/// them); checks that what the disk kept opens (as after a reboot) with every acknowledged record.
fn run_with_power_cut(cut: Option<u64>) -> u64 {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    if let Some(n) = cut {
        disk.cut_power_at(n);
    }
    let acked = match fault_log(&root.path().join("log")).open() {
        Ok(log) => spare_workload(&log),
        Err(_) => Vec::new(),
    };
    let ops = disk.ops();
    let image = tempfile::tempdir().unwrap();
    disk.write_image(image.path()).unwrap();
    let (_rebooted, _mounted) = FaultDisk::mount(image.path()).unwrap();
    let what = format!("power cut at {cut:?} of {ops}: {:?}", disk.trace(4));
    let log = fault_log(&image.path().join("log")).open().unwrap_or_else(|e| panic!("{what}: {e}"));
    let records = read_all(&log);
    for p in &acked {
        assert!(records.iter().any(|(_, r)| r == p), "{what}: acknowledged record {} is gone", p[0]);
    }
    log.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
    log.append(kind(), b"after").unwrap_or_else(|e| panic!("{what}: {e}"));
    ops
}

#[test]
fn a_power_cut_at_any_operation_while_spares_are_made_and_taken_loses_no_acknowledged_record() {
    let ops = run_with_power_cut(None);
    assert!(ops > 100, "{ops} operations");
    for n in 1..=ops {
        run_with_power_cut(Some(n));
    }
}

/// A store whose spare was made, and whose handle closed, before the disk is mounted (so the
/// spare's name is durable only as the copied store's); the run opens a copy under a fault
/// disk, appends across the rollover that takes the spare, and cuts the power before operation
/// `cut` (none: counts the operations). What the disk kept must open with every acknowledged
/// record.
fn run_with_a_spare_made_before(base: &Path, cut: Option<u64>) -> u64 {
    let root = tempfile::tempdir().unwrap();
    common::store::copy_store(base, root.path());
    let (disk, mounted) = FaultDisk::mount(root.path()).unwrap();
    if let Some(n) = cut {
        disk.cut_power_at(n);
    }
    let mut acked = Vec::new();
    if let Ok(log) = fault_log(&root.path().join("log")).open() {
        for i in 0..20u8 {
            let payload = vec![i; 1000];
            if log.append(kind(), &payload).is_ok() {
                acked.push(payload);
            }
        }
    }
    let ops = disk.ops();
    let what = format!("power cut at {cut:?} of {ops}: {:?}", disk.trace(8));
    let image = tempfile::tempdir().unwrap();
    disk.write_image(image.path()).unwrap();
    drop(mounted);
    let (_rebooted, _mounted) = FaultDisk::mount(image.path()).unwrap();
    let log = fault_log(&image.path().join("log")).open().unwrap_or_else(|e| panic!("{what}: {e}"));
    let records = read_all(&log);
    for p in &acked {
        assert!(records.iter().any(|(_, r)| r == p), "{what}: acknowledged record {} is gone", p[0]);
    }
    log.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
    log.append(kind(), b"after").unwrap_or_else(|e| panic!("{what}: {e}"));
    ops
}

#[test]
fn a_power_cut_at_any_operation_after_rolling_into_a_spare_made_before_the_disk_was_mounted_loses_no_acknowledged_record(
) {
    let base = tempfile::tempdir().unwrap();
    {
        let log = fault_log(&base.path().join("log")).open().unwrap();
        log.append(kind(), b"first").unwrap();
        assert!(log.prepare_spare_segment().unwrap());
    }
    let ops = run_with_a_spare_made_before(base.path(), None);
    let taken = segments(&base.path().join("log")).len();
    assert_eq!(taken, 1, "the base has one segment and the spare");
    assert!(ops > 30, "{ops} operations");
    for n in 1..=ops {
        run_with_a_spare_made_before(base.path(), Some(n));
    }
}
