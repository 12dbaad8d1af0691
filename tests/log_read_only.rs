//! Opening a log read-only: nothing is created or written, writes are refused, and readers follow
//! other handles' appends while the lock file is current.

use maos_coord_test_support as common;

use common::{kind, payload, read_all, small};
use maos_coord::{Error, Log, Lsn};

#[test]
fn a_read_only_log_follows_appends_and_refuses_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let writer = small(dir.path()).open().unwrap();
    for i in 1..=5 {
        writer.append(kind(), &payload(i)).unwrap();
    }
    let reader = small(dir.path()).read_only().open().unwrap();
    assert!(reader.recovery_report().read_only && !reader.recovery_report().tail_from_segments);
    assert_eq!(read_all(&reader).len(), 5);
    for i in 6..=60 {
        writer.append(kind(), &payload(i)).unwrap(); // across segments
    }
    assert_eq!(reader.next_lsn(), Lsn::new(61), "the lock file's tail is followed");
    assert_eq!(read_all(&reader), read_all(&writer));
    assert!(matches!(reader.append(kind(), b"x"), Err(Error::ReadOnly { what: "append", .. })));
    assert!(matches!(reader.sync(), Err(Error::ReadOnly { what: "sync", .. })));
    assert!(matches!(reader.remove_segments_before(Lsn::new(10), None), Err(Error::ReadOnly { .. })));
    assert_eq!(writer.next_lsn(), Lsn::new(61), "nothing was appended");
}

#[test]
fn a_read_only_open_needs_a_store_and_creates_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("log");
    assert!(matches!(Log::open_read_only(&missing), Err(Error::NoStore { dir }) if dir == missing));
    assert!(!missing.exists());
    std::fs::create_dir(&missing).unwrap();
    assert!(matches!(Log::open_read_only(&missing), Err(Error::NoStore { .. })));
    assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0, "not even a lock file");
}

#[test]
fn without_a_lock_file_the_segments_alone_give_the_records() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = small(dir.path()).open().unwrap();
        for i in 1..=40 {
            log.append(kind(), &payload(i)).unwrap();
        }
    }
    common::forget_tail(dir.path());
    let log = small(dir.path()).read_only().open().unwrap();
    assert!(log.recovery_report().tail_from_segments);
    assert_eq!(read_all(&log).len(), 40);
    assert_eq!(log.verify().unwrap().records, 40);
    assert!(!dir.path().join("log.lock").exists(), "the read-only open made no lock file");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".idx")),
        "no index file was saved"
    );
}
