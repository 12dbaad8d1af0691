//! Recovery when a log is opened, and repair of the bytes of an appender that died mid-write
//! (log-format.md, "Recovery").

use std::fs::File;
use std::path::{Path, PathBuf};

use super::analysis::{self, Verdict, Watermark};
use super::io;
use super::journal::{self, JournalEntry};
use super::lock_file::{LockFile, Tail};
use super::options::{LogOptions, RecoveryMode};
use super::scan::{self, ScanStart};
use super::segment::{self, Segment};
use crate::error::{Error, Result};
use crate::format::{self, DurableMark, SegmentHeader, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::types::{Lsn, Timestamp};

/// What recovery found and did when a log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The tail was rebuilt from the segment files (a new store, or the first open since the
    /// machine booted) rather than taken from the lock file.
    pub tail_from_segments: bool,
    /// LSN of the next record after recovery.
    pub next_lsn: Lsn,
    /// The torn tail that was cut off (or, for a read-only open, that a writable open would cut),
    /// if any.
    pub torn: Option<TornTailReport>,
    /// Complete records of an appender that died before publishing them, now part of the log.
    pub adopted_records: u64,
    /// Files removed (or, read-only, that a writable open would remove): leftover temporary
    /// files, a newest segment with an incomplete header.
    pub removed: Vec<PathBuf>,
    /// The durable watermark the newest segment was judged against: every record below it was
    /// acknowledged as durable, so damage there is corruption and is never cut.
    pub durable_lsn: Lsn,
    /// Whether the records from `durable_lsn` on are known not to have been acknowledged as
    /// durable. False only for a newest segment in format version 1 (no durable mark) opened
    /// cold: then an invalid frame followed by an intact one is taken for corruption, as
    /// version 1 did.
    pub watermark_known: bool,
    /// The log was opened read-only: nothing was changed, and `torn` and `removed` describe what
    /// a writable open (or `maos-coord log repair --apply`) would cut and remove.
    pub read_only: bool,
}

/// A torn tail that recovery cut off (or, read-only, found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTailReport {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset where the cut bytes started.
    pub offset: u64,
    /// Number of bytes cut (zeroed); for a removed segment file, its length.
    pub bytes: u64,
    /// LSN the first cut record would have had.
    pub lsn: Lsn,
    /// LSN of the last intact record among the cut bytes, if any: records written after the last
    /// sync that reached the disk behind a hole, or the start of a batch whose end is missing.
    /// None of them had been acknowledged as durable.
    pub last_intact: Option<Lsn>,
    /// The whole segment file was removed (a newest segment shorter than its header).
    pub removed_file: bool,
}

/// Recovers the log in `dir`. Runs with the append lock held.
pub fn recover(dir: &Path, control: &LockFile, opts: &LogOptions) -> Result<RecoveryReport> {
    let boot = io::boot_id(dir);
    if control.written_this_boot(boot) {
        // Bytes a failed sync of this boot may have lost are written again first, so that what
        // recovery reads and then trusts is what reaches the disk (log-format.md, "Durability").
        super::durability::repair(dir, control, false)?;
    }
    let this_boot = this_boot_watermark(control, boot);
    let tail_path = dir.join(format::segment_file_name(control.tail_segment()));
    if this_boot.is_some() && tail_path.is_file() && !newer_segment(dir, control.tail_segment())? {
        let file = io::open_rw(&tail_path)?;
        let len = io::file_len(&file, &tail_path)?;
        let map = io::map_read(&file, &tail_path, len)?;
        if !tail_matches_segment(control.tail(), control.write_end(), &map, opts) {
            drop(map);
            return cold_recover(dir, control, opts, boot, this_boot);
        }
        let (torn, adopted_records) = repair_interrupted(control, opts, &tail_path, &file, &map, "open")?;
        return Ok(RecoveryReport {
            tail_from_segments: false,
            next_lsn: control.tail_lsn(),
            torn,
            adopted_records,
            removed: sweep(dir)?,
            durable_lsn: control.durable_lsn(),
            watermark_known: true,
            read_only: false,
        });
    }
    cold_recover(dir, control, opts, boot, this_boot)
}

/// Looks at the log in `dir` as [`recover`] would, changing nothing, for a read-only open.
/// `lock` is the lock file opened read-only (with a shared `flock`), if it could be. Returns the
/// control to read through: the lock file itself while it describes the segments (the tail then
/// moves as other processes append), otherwise a control of this process holding the tail found
/// in the segments.
///
/// # Errors
/// [`Error::NoStore`] if there is no segment file; corruption as [`recover`] reports it.
pub fn inspect(dir: &Path, lock: Option<LockFile>, opts: &LogOptions) -> Result<(LockFile, RecoveryReport)> {
    let boot = io::boot_id(dir);
    let this_boot = lock.as_ref().and_then(|c| this_boot_watermark(c, boot));
    let warm = match (&lock, this_boot) {
        (Some(control), Some(_)) => inspect_warm(dir, control, opts)?,
        _ => None,
    };
    if let (Some(control), Some(report)) = (lock.as_ref().filter(|_| warm.is_some()), &warm) {
        control.unlock_file();
        if let Some(torn) = &report.torn {
            refuse_if_strict(opts, torn)?;
        }
    }
    // Otherwise the lock file (if any) stays open, and locked, until the segments are examined.
    let _held = match (lock, warm) {
        (Some(control), Some(report)) => return Ok((control, report)),
        (lock, _) => lock,
    };
    let mut report =
        RecoveryReport { tail_from_segments: true, read_only: true, ..RecoveryReport::default() };
    report.removed = crate::fs::stale(dir, is_log_temp)?;
    let Some(newest) = examine_newest(dir, opts, this_boot, &mut report, false)? else {
        return Err(Error::NoStore { dir: dir.to_owned() });
    };
    if let Some(torn) = &newest.verdict.torn {
        refuse_if_strict(opts, torn)?;
        report.torn = Some(torn.clone());
    }
    let control = LockFile::local(dir);
    control.reset([0; 16], newest.verdict.tail, newest.watermark.lsn);
    report.next_lsn = newest.verdict.tail.lsn;
    report.durable_lsn = newest.watermark.lsn;
    report.watermark_known = newest.watermark.known;
    Ok((control, report))
}

/// The report of a read-only open that can follow the lock file (of this boot, and agreeing with
/// the newest segment), or `None` if it cannot. Called with the shared lock held: no appender is
/// mid-write, so bytes past the tail are a dead appender's, which the next appender repairs.
fn inspect_warm(dir: &Path, control: &LockFile, opts: &LogOptions) -> Result<Option<RecoveryReport>> {
    let tail_path = dir.join(format::segment_file_name(control.tail_segment()));
    if !tail_path.is_file() || newer_segment(dir, control.tail_segment())? {
        return Ok(None);
    }
    let file = io::open_read(&tail_path)?;
    let len = io::file_len(&file, &tail_path)?;
    let map = io::map_read(&file, &tail_path, len)?;
    if !tail_matches_segment(control.tail(), control.write_end(), &map, opts) {
        return Ok(None);
    }
    let (adopted_records, torn) = match interrupted(control, opts, &tail_path, &map) {
        Some((repaired, torn)) => (repaired.lsn.0.saturating_sub(control.tail_lsn().0), torn),
        None => (0, None),
    };
    Ok(Some(RecoveryReport {
        next_lsn: control.tail_lsn(),
        torn,
        adopted_records,
        removed: crate::fs::stale(dir, is_log_temp)?,
        durable_lsn: control.durable_lsn(),
        watermark_known: true,
        read_only: true,
        ..RecoveryReport::default()
    }))
}

/// The newest segment and the durable watermark of the lock file, if the lock file was written
/// during this boot: within a boot it is exact (it is raised only after a sync returned).
fn this_boot_watermark(control: &LockFile, boot: [u8; 16]) -> Option<(Lsn, Lsn)> {
    // A durable LSN past the tail is impossible in a lock file the log wrote: such a page is not
    // evidence of what was synced.
    let consistent = control.durable_lsn() <= control.tail_lsn();
    (control.written_this_boot(boot) && consistent).then(|| (control.tail_segment(), control.durable_lsn()))
}

/// Whether the segment image agrees with the published tail: the last frame is where the lock
/// file says, carries the LSN before the tail and ends at the tail offset. A store whose files
/// were replaced, truncated or copied after the lock file was written fails this and is
/// recovered from its segments.
fn tail_matches_segment(tail: Tail, write_end: u64, image: &[u8], opts: &LogOptions) -> bool {
    let header_ok = SegmentHeader::decode(image).is_ok_and(|h| h.base_lsn == tail.segment);
    if !header_ok || tail.offset < SEGMENT_HEADER_LEN as u64 {
        return false;
    }
    // Nothing was written after the tail but what an interrupted append announced: a lock file
    // older than the segments (a store copied while in use) would hide records that the next
    // append overwrites.
    let end = usize::try_from(tail.offset.max(write_end)).unwrap_or(usize::MAX);
    let after = image.get(end..).unwrap_or_default();
    if format::nonzero(after.get(..FRAME_HEADER_LEN).unwrap_or(after)) {
        return false;
    }
    if tail.last_frame == 0 {
        return tail.offset == SEGMENT_HEADER_LEN as u64 && tail.lsn == tail.segment;
    }
    let rest = image.get(format::offset_index(tail.last_frame)..).unwrap_or_default();
    let expected = Lsn(tail.lsn.0.wrapping_sub(1));
    matches!(
        format::decode_frame(rest, expected, opts.max_record_size),
        format::Decoded::Frame(f) if tail.last_frame + f.len as u64 == tail.offset && !f.batch_continues()
    )
}

/// Whether a segment newer than the lock file's tail segment exists (the lock file is older
/// than the segments).
fn newer_segment(dir: &Path, tail_segment: Lsn) -> Result<bool> {
    Ok(io::list_dir(dir)?.iter().filter_map(|n| format::parse_segment_file_name(n)).any(|b| b > tail_segment))
}

/// Whether `name` is a temporary file of the log's writers: a segment being created, an index
/// or compacted-records file being written (log-format.md, "Temporary files"). Those of earlier
/// versions (`<segment>.seg.tmp`, `<segment>.seg.idx.<pid>.tmp`, `compacted.log.tmp`, unlocked)
/// count too. Exact names only: nothing else is ever removed.
fn is_log_temp(name: &str) -> bool {
    let segment = |n: &str| format::parse_segment_file_name(n).is_some();
    let index = |n: &str| n.strip_suffix(".idx").is_some_and(segment);
    let compacted = super::compacted_file::COMPACTED_FILE;
    if let Some(target) = crate::fs::temp_target(name) {
        return segment(target)
            || index(target)
            || target == compacted
            || target == super::segment::SPARE_FILE;
    }
    let Some(old) = name.strip_suffix(".tmp") else { return false };
    let old_index = old
        .rsplit_once('.')
        .is_some_and(|(stem, pid)| index(stem) && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
    segment(old) || old_index || old == compacted
}

/// Removes the temporary files that writers which died left in `dir` (never a live writer's).
fn sweep(dir: &Path) -> Result<Vec<PathBuf>> {
    crate::fs::sweep(dir, is_log_temp)
}

fn cold_recover(
    dir: &Path,
    control: &LockFile,
    opts: &LogOptions,
    boot: [u8; 16],
    this_boot: Option<(Lsn, Lsn)>,
) -> Result<RecoveryReport> {
    let mut report =
        RecoveryReport { tail_from_segments: true, watermark_known: true, ..RecoveryReport::default() };
    report.removed = sweep(dir)?;
    let Some(newest) = examine_newest(dir, opts, this_boot, &mut report, true)? else {
        Segment::create(dir, Lsn::FIRST, opts.first_segment_size(), opts.prefills())?;
        let tail = Tail {
            lsn: Lsn::FIRST,
            segment: Lsn::FIRST,
            offset: SEGMENT_HEADER_LEN as u64,
            last_time: Timestamp(0),
            last_frame: 0,
        };
        control.reset(boot, tail, Lsn::FIRST);
        report.next_lsn = Lsn::FIRST;
        report.durable_lsn = Lsn::FIRST;
        return Ok(report);
    };
    let Newest { base, path, file, len, capacity, verdict, watermark, mark } = newest;
    if let Some(torn) = &verdict.torn {
        refuse_if_strict(opts, torn)?;
        journal::append(dir, &JournalEntry::cut(torn, "open", watermark.lsn))?;
        io::zero_range(&file, &path, torn.offset, torn.offset + torn.bytes)?;
        report.torn = Some(torn.clone());
    }
    if len < capacity {
        io::preallocate(&file, &path, capacity)?;
    }
    io::sync_data(&file, &path)?;
    let tail = verdict.tail;
    // Everything kept is durable now: say so in the segment too, so that the next cold open
    // judges these records as acknowledged.
    let mark_behind = match mark {
        DurableMark::Unsupported => false,
        DurableMark::Below(lsn) => lsn < tail.lsn,
        DurableMark::Unset | DurableMark::Damaged => tail.lsn > base,
    };
    if mark_behind {
        segment::write_durable_mark(&file, &path, tail.lsn)?;
        io::sync_data(&file, &path)?;
    }
    control.reset(boot, tail, tail.lsn);
    report.next_lsn = tail.lsn;
    report.durable_lsn = watermark.lsn;
    report.watermark_known = watermark.known;
    Ok(report)
}

/// The newest segment, its durable mark, and the verdict on its bytes.
struct Newest {
    base: Lsn,
    path: PathBuf,
    file: File,
    len: u64,
    capacity: u64,
    verdict: Verdict,
    watermark: Watermark,
    mark: DurableMark,
}

/// Finds the newest segment (removing, with `apply`, newer files shorter than a header) and
/// judges its bytes; `None` if there is no segment.
fn examine_newest(
    dir: &Path,
    opts: &LogOptions,
    this_boot: Option<(Lsn, Lsn)>,
    report: &mut RecoveryReport,
    apply: bool,
) -> Result<Option<Newest>> {
    let Some((base, path, file, len)) = newest_segment(dir, opts, report, apply)? else {
        return Ok(None);
    };
    let map = io::map_read(&file, &path, len)?;
    let header = SegmentHeader::decode(&map)
        .map_err(|e| Error::CorruptHeader { segment: path.clone(), reason: e.to_string() })?;
    if header.base_lsn != base {
        return Err(Error::CorruptHeader {
            segment: path,
            reason: format!("header says base LSN {}, file name says {base}", header.base_lsn),
        });
    }
    let trusted = this_boot.filter(|(segment, _)| *segment == base).map(|(_, durable)| durable);
    let recorded = scan::recorded_durable(&map, base, opts.max_record_size);
    let watermark = Watermark::of(base, &map, recorded, trusted);
    let verdict = analysis::judge(&path, &map, base, watermark, opts.max_record_size)?;
    let mark = DurableMark::read(&map);
    drop(map);
    Ok(Some(Newest { base, path, file, len, capacity: header.capacity, verdict, watermark, mark }))
}

/// Finds the newest segment file, removing (or, in strict mode, refusing; read-only, only
/// reporting) a newest segment whose header was never completely written.
fn newest_segment(
    dir: &Path,
    opts: &LogOptions,
    report: &mut RecoveryReport,
    apply: bool,
) -> Result<Option<(Lsn, PathBuf, File, u64)>> {
    let mut bases: Vec<Lsn> =
        io::list_dir(dir)?.iter().filter_map(|n| format::parse_segment_file_name(n)).collect();
    bases.sort_unstable();
    while let Some(base) = bases.pop() {
        let path = dir.join(format::segment_file_name(base));
        let file = if apply { io::open_rw(&path)? } else { io::open_read(&path)? };
        let len = io::file_len(&file, &path)?;
        if len >= SEGMENT_HEADER_LEN as u64 {
            return Ok(Some((base, path, file, len)));
        }
        let torn = TornTailReport {
            segment: path.clone(),
            offset: 0,
            bytes: len,
            lsn: base,
            last_intact: None,
            removed_file: true,
        };
        refuse_if_strict(opts, &torn)?;
        drop(file);
        if apply {
            journal::append(dir, &JournalEntry::cut(&torn, "open", base))?;
            io::remove_synced(&path, dir)?;
        }
        report.removed.push(path);
        report.torn = Some(torn);
    }
    Ok(None)
}

/// Repairs what an appender that died between announcing a write and publishing it left in the
/// newest segment: complete batches are adopted, the rest is zeroed. Runs with the append lock
/// held; `image` is a map of the newest segment. Returns the cut bytes and the adopted records.
pub fn repair_interrupted(
    control: &LockFile,
    opts: &LogOptions,
    path: &Path,
    file: &File,
    image: &[u8],
    during: &str,
) -> Result<(Option<TornTailReport>, u64)> {
    let Some((repaired, torn)) = interrupted(control, opts, path, image) else { return Ok((None, 0)) };
    if let Some(torn) = &torn {
        refuse_if_strict(opts, torn)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        journal::append(dir, &JournalEntry::cut(torn, during, control.durable_lsn()))?;
        io::zero_range(file, path, torn.offset, torn.offset + torn.bytes)?;
    }
    let adopted = repaired.lsn.0 - control.tail_lsn().0;
    control.publish(repaired);
    control.announce_write(repaired.offset);
    Ok((torn, adopted))
}

/// What an appender that died mid-write left between the published tail and the write end
/// (none if the write end is not past the tail): the tail after adopting its complete batches,
/// and the bytes to cut after them.
fn interrupted(
    control: &LockFile,
    opts: &LogOptions,
    path: &Path,
    image: &[u8],
) -> Option<(Tail, Option<TornTailReport>)> {
    let tail = control.tail();
    let end = control.write_end().min(image.len() as u64);
    if end <= tail.offset {
        return None;
    }
    let written = image.get(..format::offset_index(end)).unwrap_or_default();
    let start =
        ScanStart { offset: tail.offset, lsn: tail.lsn, time: tail.last_time, last_frame: tail.last_frame };
    let s = scan::scan(written, start, opts.max_record_size, |_, _| {});
    let garbage_end = scan::nonzero_end(written, s.committed_offset);
    let torn = (garbage_end > s.committed_offset).then(|| TornTailReport {
        segment: path.to_owned(),
        offset: s.committed_offset,
        bytes: garbage_end - s.committed_offset,
        lsn: s.committed_lsn,
        last_intact: scan::last_intact(
            written,
            s.committed_offset,
            garbage_end,
            s.committed_lsn,
            opts.max_record_size,
        ),
        removed_file: false,
    });
    let repaired = Tail {
        lsn: s.committed_lsn,
        segment: tail.segment,
        offset: s.committed_offset,
        last_time: s.last_time.max(tail.last_time),
        last_frame: s.last_frame,
    };
    Some((repaired, torn))
}

fn refuse_if_strict(opts: &LogOptions, torn: &TornTailReport) -> Result<()> {
    match opts.recovery {
        RecoveryMode::TruncateTornTail => Ok(()),
        RecoveryMode::Strict => Err(Error::TornTail {
            segment: torn.segment.clone(),
            offset: torn.offset,
            bytes: torn.bytes,
            lsn: torn.lsn,
        }),
    }
}
