//! Seeking uses the sparse index (saved beside sealed segments), not a scan from the start of
//! the segment; a stale or damaged index is ignored and rebuilt.

use maos_coord_test_support as common;

use std::os::unix::fs::FileExt;

use common::{kind, segment_files};
use maos_coord::{Durability, Log, Lsn};

fn opts(dir: &std::path::Path) -> maos_coord::LogOptions {
    Log::options(dir).segment_size(256 * 1024).max_record_size(4096).durability(Durability::Buffered)
}

fn fill(dir: &std::path::Path) -> u64 {
    let log = opts(dir).open().unwrap();
    for i in 0..3000u64 {
        log.append(kind(), &[i as u8; 200]).unwrap();
    }
    // A full read walks every sealed segment to its end, which saves their index files.
    log.verify().unwrap();
    log.next_lsn().get()
}

#[test]
fn a_seek_into_a_sealed_segment_does_not_scan_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let first = &segment_files(dir.path())[0];
    assert!(dir.path().join(format!("{}.idx", first.file_name().unwrap().to_str().unwrap())).exists());
    // Damage a record near the start of the first segment. A scan from the segment start would
    // stumble over it; a seek through the index jumps past it.
    let file = std::fs::OpenOptions::new().write(true).open(first).unwrap();
    file.write_all_at(&[0xFF], 64 + 32 + 5).unwrap();
    let log = opts(dir.path()).open().unwrap();
    let mut reader = log.reader_from(Lsn::new(1000)).unwrap();
    let record = reader.next().unwrap().unwrap();
    assert_eq!((record.lsn, record.payload[0]), (Lsn::new(1000), (999u64 % 256) as u8));
    // Reading from the start finds the damage.
    assert!(log.reader_from(Lsn::new(1)).unwrap().next().is_err());
}

#[test]
fn a_damaged_or_stale_index_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let first = &segment_files(dir.path())[0];
    let index = dir.path().join(format!("{}.idx", first.file_name().unwrap().to_str().unwrap()));
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[50] ^= 1;
    std::fs::write(&index, &bytes).unwrap();
    let log = opts(dir.path()).open().unwrap();
    for start in [1u64, 77, 500, 1200] {
        let r = log.reader_from(Lsn::new(start)).unwrap().next().unwrap().unwrap().lsn;
        assert_eq!(r, Lsn::new(start));
    }
    // An index that points into the wrong place (a valid file of other content) is caught too.
    let other = tempfile::tempdir().unwrap();
    {
        let log = opts(other.path()).open().unwrap();
        for i in 0..3000u64 {
            log.append(kind(), &vec![i as u8; 100 + (i % 7) as usize * 30]).unwrap();
        }
        log.verify().unwrap();
    }
    let foreign = other.path().join(index.file_name().unwrap());
    std::fs::copy(&foreign, &index).unwrap();
    let log = opts(dir.path()).open().unwrap();
    for start in [2u64, 300, 900] {
        let mut reader = log.reader_from(Lsn::new(start)).unwrap();
        let r = reader.next().unwrap().unwrap();
        assert_eq!((r.lsn, r.payload[0]), (Lsn::new(start), ((start - 1) % 256) as u8));
    }
}
