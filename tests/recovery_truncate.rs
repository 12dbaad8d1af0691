//! Truncating the log at every byte offset: reopening keeps exactly the complete records (and
//! complete batches) before the cut, and the log accepts appends again.

use maos_coord_test_support as common;

use common::{copy_dir, forget_tail, kind, payload, read_all, segment_files, small};
use maos_coord::{Lsn, RecoveryMode};

#[test]
fn reopening_a_log_cut_at_any_offset_keeps_exactly_the_complete_records() {
    let pristine = tempfile::tempdir().unwrap();
    let mut ends = Vec::new(); // (segment index, offset after record, lsn)
    {
        let log = small(pristine.path()).open().unwrap();
        for i in 1..=60u64 {
            log.append(kind(), &payload(i)).unwrap();
        }
    }
    let segments = segment_files(pristine.path());
    assert!(segments.len() >= 2, "the cut must cross segment boundaries");
    // Where every record ends, per segment, read back from the pristine log.
    let all = read_all(&small(pristine.path()).open().unwrap());
    for (seg_index, seg) in segments.iter().enumerate() {
        let bytes = std::fs::read(seg).unwrap();
        let mut at = 64usize;
        loop {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            if bytes[at..at + 32].iter().all(|&b| b == 0) {
                break;
            }
            let lsn = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
            at += (32 + len).next_multiple_of(8);
            ends.push((seg_index, at as u64, lsn));
        }
    }
    assert_eq!(ends.len(), 60);

    let work = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for (seg_index, seg) in segments.iter().enumerate() {
        let len = std::fs::metadata(seg).unwrap().len();
        let last_record_end = ends.iter().filter(|e| e.0 == seg_index).map(|e| e.1).max().unwrap_or(64);
        // Every offset up to just past the last record, then a few inside the zero tail.
        let offsets = (0..=last_record_end + 8).chain([len / 2, len - 1, len]);
        for cut in offsets.filter(|&c| c <= len) {
            let dir = work.path().join(format!("{seg_index}-{cut}"));
            copy_dir(pristine.path(), &dir);
            for later in &segments[seg_index + 1..] {
                std::fs::remove_file(dir.join(later.file_name().unwrap())).unwrap();
            }
            let file =
                std::fs::OpenOptions::new().write(true).open(dir.join(seg.file_name().unwrap())).unwrap();
            file.set_len(cut).unwrap();
            drop(file);

            let survivors =
                ends.iter().filter(|e| e.0 < seg_index || (e.0 == seg_index && e.1 <= cut)).count();
            let log = small(&dir).open().unwrap_or_else(|e| panic!("segment {seg_index} cut at {cut}: {e}"));
            let got = read_all(&log);
            assert_eq!(got, all[..survivors], "segment {seg_index} cut at {cut}");
            assert_eq!(log.next_lsn(), Lsn::new(survivors as u64 + 1));
            // The log goes on from there.
            log.append(kind(), b"after the cut").unwrap();
            assert_eq!(read_all(&log).last().unwrap().1, b"after the cut");
            drop(log);
            std::fs::remove_dir_all(&dir).unwrap();
            cases += 1;
        }
    }
    assert!(cases > 1000, "{cases}");
}

#[test]
fn a_batch_cut_in_the_middle_disappears_whole() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = small(dir.path()).open().unwrap();
        log.append(kind(), b"single").unwrap();
        log.append_batch(kind(), &[b"b1".as_slice(), b"b2", b"b3"]).unwrap();
    }
    let seg = &segment_files(dir.path())[0];
    // single: 64..104, b1: 104..144, b2: 144..184, b3: 184..224. Cut inside b3.
    std::fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(200).unwrap();
    forget_tail(dir.path());
    let log = small(dir.path()).open().unwrap();
    assert_eq!(read_all(&log), [(1, b"single".to_vec())]);
    let torn = log.recovery_report().torn.clone().unwrap();
    // The torn region runs from the end of the last complete batch to the last non-zero byte:
    // b3's surviving header bytes end with its LSN field (192..200, value 4 in byte 192).
    assert_eq!((torn.offset, torn.bytes, torn.lsn), (104, 193 - 104, Lsn::new(2)));

    // Strict mode refuses instead of cutting.
    drop(log);
    let dir2 = tempfile::tempdir().unwrap();
    {
        let log = small(dir2.path()).open().unwrap();
        log.append_batch(kind(), &[b"b1".as_slice(), b"b2"]).unwrap();
    }
    let seg = &segment_files(dir2.path())[0];
    std::fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(120).unwrap();
    forget_tail(dir2.path());
    let err = small(dir2.path()).recovery_mode(RecoveryMode::Strict).open().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("torn tail") && text.contains("byte offset 64"), "{text}");
    assert!(text.contains(&segment_files(dir2.path())[0].display().to_string()), "{text}");
}
