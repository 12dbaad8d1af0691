//! A process killed while it publishes the tail (the lock file's words are stored one by one,
//! the LSN last) leaves the new offset beside the old LSN. The next appender must not take those
//! LSNs again: it rebuilds the tail from the segment.

use maos_coord_test_support as common;

use std::os::unix::fs::FileExt;

use common::{kind, read_all, small};
use maos_coord::Lsn;

#[test]
fn a_tail_left_half_published_by_a_dead_process_is_rebuilt_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).open().unwrap();
    log.append_batch(kind(), &[b"a".as_slice(), b"b"]).unwrap();
    let appended = log.append_batch(kind(), &[b"c".as_slice(), b"d", b"e"]).unwrap();
    assert_eq!(appended.first, Lsn::new(3));
    // As if the publisher of the second batch died before its last store: the LSN word (offset
    // 32 of log.lock) still says 3, the offset and last-frame words say after "e".
    let lock = std::fs::OpenOptions::new().write(true).open(dir.path().join("log.lock")).unwrap();
    lock.write_all_at(&3u64.to_le_bytes(), 32).unwrap();
    assert_eq!(log.next_lsn(), Lsn::new(3));
    let next = log.append(kind(), b"f").unwrap();
    assert_eq!(next, Lsn::new(6), "the records a dead publisher wrote keep their LSNs");
    let payloads: Vec<Vec<u8>> = read_all(&log).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        payloads,
        [b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec(), b"e".to_vec(), b"f".to_vec()]
    );
    drop(log);
    let reopened = small(dir.path()).open().unwrap();
    assert_eq!(read_all(&reopened).len(), 6);
}
