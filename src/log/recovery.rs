//! Recovery when a log is opened, and repair of the bytes of an appender that died mid-write
//! (log-format.md, "Recovery").

use std::fs::File;
use std::path::{Path, PathBuf};

use super::control::{Control, Tail};
use super::format::{self, SegmentHeader, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::options::{LogOptions, RecoveryMode};
use super::scan::{self, ScanStart, Stop};
use super::{io, segment::Segment};
use crate::error::{Error, Result};
use crate::types::{Lsn, Timestamp};

/// What recovery found and did when a log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The tail was rebuilt from the segment files (a new store, or the first open since the
    /// machine booted) rather than taken from the lock file.
    pub cold: bool,
    /// LSN of the next record after recovery.
    pub next_lsn: Lsn,
    /// The torn tail that was cut off, if any.
    pub torn: Option<TornTailReport>,
    /// Complete records of an appender that died before publishing them, now part of the log.
    pub adopted_records: u64,
    /// Files removed: leftover temporary files, a newest segment with an incomplete header.
    pub removed: Vec<PathBuf>,
}

/// A torn tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTailReport {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset where the cut bytes started.
    pub offset: u64,
    /// Number of bytes cut (zeroed).
    pub bytes: u64,
    /// LSN the first cut record would have had.
    pub lsn: Lsn,
}

/// Recovers the log in `dir`. Runs with the append lock held.
pub fn recover(dir: &Path, control: &Control, opts: &LogOptions) -> Result<RecoveryReport> {
    let boot = io::boot_id();
    let tail_segment = control.tail_segment();
    let tail_path = dir.join(format::segment_file_name(tail_segment));
    if control.written_this_boot(boot) && tail_path.is_file() && !newer_segment(dir, tail_segment)? {
        let file = io::open_rw(&tail_path, false)?;
        let len = io::file_len(&file, &tail_path)?;
        let map = io::map_read(&file, &tail_path, len)?;
        if !tail_matches_segment(control.tail(), control.write_end(), &map, opts) {
            drop(map);
            return cold_recover(dir, control, opts, boot);
        }
        let (torn, adopted_records) = repair_interrupted(control, opts, &tail_path, &file, &map)?;
        return Ok(RecoveryReport {
            cold: false,
            next_lsn: control.tail_lsn(),
            torn,
            adopted_records,
            removed: Vec::new(),
        });
    }
    cold_recover(dir, control, opts, boot)
}

/// Whether a segment file newer than the tail segment exists: the lock file is older than the
/// segments (or an appender died between creating a segment and publishing it, where recovery
/// from the segments is as right).
fn newer_segment(dir: &Path, tail_segment: Lsn) -> Result<bool> {
    Ok(io::list_dir(dir)?.iter().filter_map(|n| format::parse_segment_file_name(n)).any(|b| b > tail_segment))
}

/// Whether the segment image agrees with the published tail: the last frame is where the lock
/// file says, carries the LSN before the tail and ends at the tail offset, and nothing was
/// written after the tail but what an interrupted append announced (`write_end`). A store whose
/// files were replaced, truncated, or copied after the lock file was (a store copied while in
/// use: the segments hold records the copied lock file does not know, which trusting it would
/// hide and the next append overwrite) fails this and is recovered from its segments.
fn tail_matches_segment(tail: Tail, write_end: u64, image: &[u8], opts: &LogOptions) -> bool {
    let header_ok = SegmentHeader::decode(image).is_ok_and(|h| h.base_lsn == tail.segment);
    if !header_ok || tail.offset < SEGMENT_HEADER_LEN as u64 {
        return false;
    }
    let end = usize::try_from(tail.offset.max(write_end)).unwrap_or(usize::MAX);
    let after = image.get(end..).unwrap_or_default();
    if format::nonzero(after.get(..FRAME_HEADER_LEN).unwrap_or(after)) {
        return false;
    }
    if tail.last_frame == 0 {
        return tail.offset == SEGMENT_HEADER_LEN as u64 && tail.lsn == tail.segment;
    }
    let rest = image.get(tail.last_frame as usize..).unwrap_or_default();
    let expected = Lsn(tail.lsn.0.wrapping_sub(1));
    matches!(
        format::decode_frame(rest, expected, opts.max_record_size),
        format::Decoded::Frame(f) if tail.last_frame + f.len as u64 == tail.offset && !f.batch_continues()
    )
}

fn cold_recover(dir: &Path, control: &Control, opts: &LogOptions, boot: [u8; 16]) -> Result<RecoveryReport> {
    let mut report = RecoveryReport { cold: true, ..RecoveryReport::default() };
    for name in io::list_dir(dir)? {
        if name.ends_with(".seg.tmp") || (name.contains(".seg.idx.") && name.ends_with(".tmp")) {
            let path = dir.join(&name);
            io::remove_synced(&path, dir)?;
            report.removed.push(path);
        }
    }
    let Some((base, path, file, len)) = newest_segment(dir, opts, &mut report)? else {
        Segment::create(dir, Lsn::FIRST, opts.segment_size)?;
        let tail = Tail {
            lsn: Lsn::FIRST,
            segment: Lsn::FIRST,
            offset: SEGMENT_HEADER_LEN as u64,
            last_time: Timestamp(0),
            last_frame: 0,
        };
        control.reset(boot, tail);
        report.next_lsn = Lsn::FIRST;
        return Ok(report);
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
    let s = scan::scan(&map, ScanStart::segment(base), opts.max_record_size, |_, _| {});
    let garbage_end = scan::nonzero_end(&map, s.committed_offset);
    if garbage_end > s.committed_offset {
        if let Stop::Invalid { offset, reason } = &s.stop {
            if scan::valid_frame_follows(&map, *offset, s.stop_lsn.next(), opts.max_record_size) {
                return Err(Error::Corruption {
                    segment: path,
                    offset: *offset,
                    lsn: s.stop_lsn,
                    reason: reason.clone(),
                });
            }
        }
        let torn = TornTailReport {
            segment: path.clone(),
            offset: s.committed_offset,
            bytes: garbage_end - s.committed_offset,
            lsn: s.committed_lsn,
        };
        refuse_if_strict(opts, &torn)?;
        io::zero_range(&file, &path, s.committed_offset, garbage_end)?;
        report.torn = Some(torn);
    }
    drop(map);
    if len < header.capacity {
        io::preallocate(&file, &path, header.capacity)?;
    }
    io::sync_data(&file, &path)?;
    let tail = Tail {
        lsn: s.committed_lsn,
        segment: base,
        offset: s.committed_offset,
        last_time: s.last_time,
        last_frame: s.last_frame,
    };
    control.reset(boot, tail);
    report.next_lsn = s.committed_lsn;
    Ok(report)
}

/// Finds the newest segment file, removing (or, in strict mode, refusing) a newest segment whose
/// header was never completely written.
fn newest_segment(
    dir: &Path,
    opts: &LogOptions,
    report: &mut RecoveryReport,
) -> Result<Option<(Lsn, PathBuf, File, u64)>> {
    let mut bases: Vec<Lsn> =
        io::list_dir(dir)?.iter().filter_map(|n| format::parse_segment_file_name(n)).collect();
    bases.sort_unstable();
    while let Some(base) = bases.pop() {
        let path = dir.join(format::segment_file_name(base));
        let file = io::open_rw(&path, false)?;
        let len = io::file_len(&file, &path)?;
        if len >= SEGMENT_HEADER_LEN as u64 {
            return Ok(Some((base, path, file, len)));
        }
        let torn = TornTailReport { segment: path.clone(), offset: 0, bytes: len, lsn: base };
        refuse_if_strict(opts, &torn)?;
        drop(file);
        io::remove_synced(&path, dir)?;
        report.removed.push(path);
        report.torn = Some(torn);
    }
    Ok(None)
}

/// Repairs what an appender that died between announcing a write and publishing it left in the
/// newest segment: complete batches are adopted, the rest is zeroed. Runs with the append lock
/// held; `image` is a map of the newest segment. Returns the cut bytes and the adopted records.
pub fn repair_interrupted(
    control: &Control,
    opts: &LogOptions,
    path: &Path,
    file: &File,
    image: &[u8],
) -> Result<(Option<TornTailReport>, u64)> {
    let tail = control.tail();
    let end = control.write_end().min(image.len() as u64);
    if end <= tail.offset {
        return Ok((None, 0));
    }
    let written = image.get(..end as usize).unwrap_or_default();
    let start =
        ScanStart { offset: tail.offset, lsn: tail.lsn, time: tail.last_time, last_frame: tail.last_frame };
    let s = scan::scan(written, start, opts.max_record_size, |_, _| {});
    let garbage_end = scan::nonzero_end(written, s.committed_offset);
    let torn = (garbage_end > s.committed_offset).then(|| TornTailReport {
        segment: path.to_owned(),
        offset: s.committed_offset,
        bytes: garbage_end - s.committed_offset,
        lsn: s.committed_lsn,
    });
    if let Some(torn) = &torn {
        refuse_if_strict(opts, torn)?;
        io::zero_range(file, path, s.committed_offset, garbage_end)?;
    }
    let adopted = s.committed_lsn.0 - tail.lsn.0;
    let repaired = Tail {
        lsn: s.committed_lsn,
        segment: tail.segment,
        offset: s.committed_offset,
        last_time: s.last_time.max(tail.last_time),
        last_frame: s.last_frame,
    };
    control.publish(repaired);
    control.announce_write(repaired.offset);
    Ok((torn, adopted))
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
