//! Flipping bits: every single-bit flip in a sealed segment is reported as corruption that names
//! the segment file and the offset; never a panic, never silently skipped.

use maos_coord_test_support as common;

use std::os::unix::fs::FileExt;

use common::{kind, payload, read_all, segment_files, small};
use maos_coord::{Error, Log};

fn read_everything(dir: &std::path::Path) -> Result<usize, Error> {
    let log = small(dir).open()?;
    let mut reader = log.reader()?;
    let mut n = 0;
    while reader.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[test]
fn every_bit_flip_in_a_sealed_segment_is_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = small(dir.path()).open().unwrap();
        for i in 1..=80u64 {
            log.append(kind(), &payload(i)).unwrap();
        }
    }
    let sealed = segment_files(dir.path())[0].clone();
    let sealed_name = sealed.display().to_string();
    assert!(segment_files(dir.path()).len() >= 2);
    let total = read_everything(dir.path()).unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&sealed).unwrap();
    let len = file.metadata().unwrap().len();

    let mut flips = 0;
    for byte in 0..len {
        for bit in 0..8 {
            let mut b = [0u8];
            file.read_exact_at(&mut b, byte).unwrap();
            file.write_all_at(&[b[0] ^ (1 << bit)], byte).unwrap();
            let result = read_everything(dir.path());
            file.write_all_at(&b, byte).unwrap();
            flips += 1;
            match result {
                Err(Error::CorruptHeader { segment, .. }) => {
                    assert!(byte < 64, "header error for byte {byte}");
                    assert_eq!(segment, sealed);
                }
                Err(Error::Corruption { segment, offset, .. }) => {
                    assert_eq!(segment, sealed, "byte {byte} bit {bit}");
                    assert!(
                        offset <= byte && byte < offset + 32 + 1024 + 8,
                        "byte {byte} bit {bit} reported at offset {offset}"
                    );
                }
                other => panic!("flip of byte {byte} bit {bit} in {sealed_name} gave {other:?}"),
            }
        }
    }
    assert_eq!(flips, len * 8);
    // And the log is whole again once the bits are restored.
    assert_eq!(read_everything(dir.path()).unwrap(), total);
    assert_eq!(read_all(&Log::open(dir.path()).unwrap()).len(), total);
}
