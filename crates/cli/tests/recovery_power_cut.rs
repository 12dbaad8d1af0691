//! Power cuts, simulated with crash images: after a `Sync` workload, every state the newest
//! segment can be left in by a power cut (the synced prefix intact; each page written after the
//! last sync persisted or not, in any combination, later pages without earlier ones included)
//! reopens with every acknowledged record present and intact, and opening never fails on it. A
//! byte flipped in a record below the durable watermark the disk records is corruption, never
//! cut.

use maos_coord_test_support as common;

use std::path::{Path, PathBuf};

use common::{kind, segment_files};
use maos_coord::{Durability, Error, Log, LogOptions, Lsn, RecoveryMode};

const PAGE: usize = 4096;

fn opts(dir: &Path) -> LogOptions {
    // Segments of 64 KiB, then 128 KiB (a 64th of the 4 MiB segment size first, then doubled):
    // the workloads below roll over before their last sync, never after.
    Log::options(dir).segment_size(4 << 20).max_record_size(2048).durability(Durability::Sync)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

fn payload(rng: &mut Rng, lsn: u64) -> Vec<u8> {
    let len = 20 + rng.below(1500) as usize;
    (0..len).map(|i| (lsn as usize * 31 + i) as u8).collect()
}

/// What a power cut can leave, for one workload.
struct Scenario {
    /// The store as it was: sealed segments are taken from here.
    dir: tempfile::TempDir,
    newest: PathBuf,
    /// The newest segment as the disk held it when the last sync returned.
    synced: Vec<u8>,
    /// The newest segment as the page cache held it at the cut.
    cached: Vec<u8>,
    /// Every record appended, by LSN - 1.
    payloads: Vec<Vec<u8>>,
    /// Every record below this was acknowledged as durable.
    acknowledged: Lsn,
}

/// `synced` acknowledged records, then `unsynced` more written after the last sync.
fn workload(seed: u64, synced: u64, unsynced: u64) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let mut payloads = Vec::new();
    let log = opts(dir.path()).open().unwrap();
    for lsn in 1..=synced {
        let p = payload(&mut rng, lsn);
        assert_eq!(log.append(kind(), &p).unwrap(), Lsn::new(lsn));
        payloads.push(p);
    }
    let acknowledged = log.durable_lsn();
    assert_eq!(acknowledged, Lsn::new(synced + 1));
    // What the disk holds once the last sync returned: what the page cache holds now (nothing is
    // written between a sync and its acknowledgement).
    let newest = segment_files(dir.path()).pop().unwrap();
    let synced_image = std::fs::read(&newest).unwrap();
    let unacknowledged = opts(dir.path()).durability(Durability::Buffered).open().unwrap();
    for lsn in synced + 1..=synced + unsynced {
        let p = payload(&mut rng, lsn);
        unacknowledged.append(kind(), &p).unwrap();
        payloads.push(p);
    }
    assert_eq!(segment_files(dir.path()).pop().unwrap(), newest, "the unsynced writes stay in one segment");
    let cached = std::fs::read(&newest).unwrap();
    // Closing syncs; the images are taken already.
    drop((log, unacknowledged));
    Scenario { dir, newest, synced: synced_image, cached, payloads, acknowledged }
}

impl Scenario {
    /// Pages that differ between the synced and the cached image.
    fn dirty_pages(&self) -> Vec<usize> {
        (0..self.cached.len() / PAGE)
            .filter(|p| self.cached[p * PAGE..(p + 1) * PAGE] != self.synced[p * PAGE..(p + 1) * PAGE])
            .collect()
    }

    /// A store whose newest segment has the cached version of the pages in `persisted` and the
    /// synced version of the others, without a lock file (as after a reboot).
    fn image(&self, at: &Path, persisted: &[usize], flip: Option<usize>) -> PathBuf {
        std::fs::create_dir_all(at).unwrap();
        for seg in segment_files(self.dir.path()) {
            std::fs::copy(&seg, at.join(seg.file_name().unwrap())).unwrap();
        }
        let mut bytes = self.synced.clone();
        for &p in persisted {
            bytes[p * PAGE..(p + 1) * PAGE].copy_from_slice(&self.cached[p * PAGE..(p + 1) * PAGE]);
        }
        if let Some(i) = flip {
            bytes[i] ^= 0x10;
        }
        let newest = at.join(self.newest.file_name().unwrap());
        std::fs::write(&newest, bytes).unwrap();
        newest
    }

    /// Opens an image and checks every acknowledged record, and that what follows them is a
    /// prefix of what was written.
    fn check(&self, dir: &Path, what: &str) {
        let strict = opts(dir).recovery_mode(RecoveryMode::Strict).open();
        assert!(
            matches!(strict, Ok(_) | Err(Error::TornTail { .. })),
            "{what}: strict open gave {:?}",
            strict.err()
        );
        drop(strict);
        let read_only = Log::open_read_only(dir).unwrap_or_else(|e| panic!("{what}: read-only open: {e}"));
        let planned = read_only.next_lsn();
        drop(read_only);
        let log = opts(dir).open().unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        assert_eq!(log.next_lsn(), planned, "{what}: the read-only open saw the same end");
        assert!(log.next_lsn() >= self.acknowledged, "{what}: acknowledged records lost");
        let mut reader = log.reader().unwrap();
        let mut n = 0;
        while let Some(r) = reader.next().unwrap_or_else(|e| panic!("{what}: {e}")) {
            assert_eq!(r.payload, self.payloads[n].as_slice(), "{what}: record {}", r.lsn);
            n += 1;
        }
        assert_eq!(n as u64 + 1, log.next_lsn().get(), "{what}");
        log.append(kind(), b"after the cut").unwrap();
    }
}

/// Every subset of `pages` if there are few, otherwise a sample (plus each page alone and each
/// page missing alone).
fn subsets(pages: &[usize], rng: &mut Rng) -> Vec<Vec<usize>> {
    if pages.len() <= 8 {
        return (0..1u32 << pages.len())
            .map(|m| pages.iter().enumerate().filter(|(i, _)| m & (1 << i) != 0).map(|(_, &p)| p).collect())
            .collect();
    }
    let mut out: Vec<Vec<usize>> = pages.iter().map(|&p| vec![p]).collect();
    out.extend(pages.iter().map(|&q| pages.iter().copied().filter(|&p| p != q).collect()));
    out.extend((0..200).map(|_| pages.iter().copied().filter(|_| rng.below(2) == 0).collect()));
    out
}

#[test]
fn every_power_cut_image_reopens_with_every_acknowledged_record() {
    let work = tempfile::tempdir().unwrap();
    let mut images = 0;
    for (seed, synced, unsynced) in [(1, 40, 30), (2, 90, 20), (3, 7, 25), (5, 20, 28), (6, 60, 18)] {
        let s = workload(seed, synced, unsynced);
        let dirty = s.dirty_pages();
        assert!(dirty.len() >= 4, "seed {seed}: {dirty:?}");
        let mut rng = Rng(seed);
        for persisted in subsets(&dirty, &mut rng) {
            let dir = work.path().join(format!("{seed}-{images}"));
            s.image(&dir, &persisted, None);
            s.check(&dir, &format!("seed {seed}, pages {persisted:?} of {dirty:?} persisted"));
            std::fs::remove_dir_all(&dir).unwrap();
            images += 1;
        }
    }
    assert!(images > 300, "{images}");
}

#[test]
fn a_flipped_byte_below_the_recorded_watermark_is_corruption_on_every_image() {
    let s = workload(4, 50, 5);
    let dirty = s.dirty_pages();
    let mut rng = Rng(4);
    // The last acknowledged record's frame says every record below it was durable when it was
    // written: flip a byte of one of those (in the newest segment) on images where the later
    // pages persisted in any combination.
    let mark = Lsn::new(s.acknowledged.get() - 1);
    let base: u64 = s.newest.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    assert!(mark.get() > base + 1, "the watermark covers records of the newest segment");
    let (offset, lsn) = frame_of(&s.synced, base, mark.get() - 1);
    let work = tempfile::tempdir().unwrap();
    for (i, persisted) in subsets(&dirty, &mut rng).into_iter().enumerate().step_by(7) {
        let root = work.path().join(i.to_string());
        let dir = root.join(".maos/coordination/log");
        let newest = s.image(&dir, &persisted, Some(offset + 40));
        let before = std::fs::read(&newest).unwrap();
        for mode in [RecoveryMode::TruncateTornTail, RecoveryMode::Strict] {
            match opts(&dir).recovery_mode(mode).open() {
                Err(Error::Corruption { segment, offset: at, lsn: found, .. }) => {
                    assert_eq!((segment, at, found), (newest.clone(), offset as u64, Lsn::new(lsn)));
                }
                other => panic!("pages {persisted:?}: {:?}", other.map(|l| l.next_lsn())),
            }
        }
        assert!(matches!(Log::open_read_only(&dir), Err(Error::Corruption { .. })));
        let verify = std::process::Command::new(env!("CARGO_BIN_EXE_maos-coord"))
            .args(["log", "verify", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&verify.stderr);
        assert_eq!(verify.status.code(), Some(3), "{err}");
        assert!(
            err.contains(&format!("byte offset {offset}")) && err.contains(&format!("LSN {lsn}")),
            "{err}"
        );
        assert_eq!(std::fs::read(&newest).unwrap(), before, "never cut");
    }
}

/// Offset and LSN of the frame of record `lsn` in a segment image starting at `base`.
fn frame_of(image: &[u8], base: u64, lsn: u64) -> (usize, u64) {
    let mut at = 64;
    for _ in base..lsn {
        let len = u32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as usize;
        at += (32 + len).next_multiple_of(8);
    }
    (at, lsn)
}
