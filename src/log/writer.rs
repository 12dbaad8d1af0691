//! Appending: encoding batches, group commit inside a process, the append protocol across
//! processes, segment rollover and syncing (log-format.md, "Appending").

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex};

use super::lock_file::Tail;
use super::recovery::{self, TornTailReport};
use super::scan::{self, ScanStart};
use super::segment::Segment;
use super::writeback::Writeback;
use super::{group, io, lock, Shared};
use crate::error::{Error, Result};
use crate::format::{self, SegmentHeader, FLAG_BATCH_CONTINUES, SEGMENT_HEADER_LEN};
use crate::types::{Lsn, RecordKind, Timestamp};

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// LSN of the first record of the batch.
    pub first: Lsn,
    /// Number of records.
    pub count: u64,
    /// The time recorded in the batch's frames (`None` for an empty batch): what a reader of
    /// these records gets as their [`Record::timestamp`](crate::log::Record::timestamp).
    pub time: Option<Timestamp>,
}

impl Appended {
    /// LSN of the last record (`None` for an empty batch).
    #[must_use]
    pub fn last(&self) -> Option<Lsn> {
        self.count.checked_sub(1).map(|n| Lsn(self.first.0 + n))
    }

    /// The LSN after the batch.
    #[must_use]
    pub fn next(&self) -> Lsn {
        Lsn(self.first.0 + self.count)
    }
}

/// A batch encoded as frames whose LSN, time and checksum are filled in under the append lock.
pub(crate) struct Pending {
    buf: Vec<u8>,
    count: u64,
    /// Offset of the last frame inside `buf`.
    last_frame: usize,
    /// A batch built under the append lock, from the tail LSN, once everything before it is
    /// published: see [`Log::append_with`](super::Log::append_with).
    deferred: Option<Build>,
}

/// Builds a batch under the append lock from the tail LSN.
pub(crate) type Build = Box<dyn FnOnce(Lsn) -> Result<Pending> + Send>;

impl Pending {
    /// Encodes records, checking each against the maximum record size.
    pub fn encode<'a>(
        records: impl IntoIterator<Item = (RecordKind, &'a [u8])>,
        max_record_size: u32,
    ) -> Result<Pending> {
        let mut pending = Pending { buf: Vec::new(), count: 0, last_frame: 0, deferred: None };
        for (kind, payload) in records {
            if payload.len() > max_record_size as usize {
                return Err(Error::RecordTooLarge { size: payload.len(), max: max_record_size });
            }
            pending.last_frame = pending.buf.len();
            format::push_unfinished_frame(&mut pending.buf, kind, payload);
            pending.count += 1;
        }
        Ok(pending)
    }

    /// A batch that `build` makes under the append lock.
    pub fn deferred(build: Build) -> Pending {
        Pending { buf: Vec::new(), count: 0, last_frame: 0, deferred: Some(build) }
    }

    /// Whether the batch holds no record (and none is to be built).
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.deferred.is_none()
    }

    /// Sets LSNs from `first`, the time, the batch flags and the durable distance (from
    /// `durable`, if given), and computes the checksums.
    fn finalize(&mut self, first: Lsn, time: Timestamp, durable: Option<Lsn>) {
        let mut at = 0;
        for i in 0..self.count {
            let Some(rest) = self.buf.get_mut(at..) else { return };
            let len = format::encoded_frame_len(rest);
            let flags = if i + 1 < self.count { FLAG_BATCH_CONTINUES } else { 0 };
            if let Some(frame) = rest.get_mut(..len) {
                format::finalize_frame_durable(frame, Lsn(first.0 + i), time, flags, durable);
            }
            at += len;
        }
    }
}

/// Early writeback is asked for in whole blocks of this size: a multiple of every page size
/// Linux uses, so the page the next append writes into is never among them.
const WRITEBACK_PAGE: u64 = 64 << 10;

/// The in-process side of appending: the group-commit queue, the newest segment's file, the
/// sync state.
pub(crate) struct Writer {
    pub(super) queue: Mutex<group::Queue>,
    active: Mutex<Option<Active>>,
    /// Batches of this process queued but not yet written.
    pub(super) in_flight: AtomicUsize,
    /// Whether a thread of this process is syncing; `synced` wakes those waiting for it.
    pub(super) syncing: Mutex<bool>,
    pub(super) synced: Condvar,
    /// Wakes the appender thread when it is to lead a group.
    pub(super) appender_turn: Condvar,
    repairs: Mutex<Vec<TornTailReport>>,
    pub(super) writeback: Writeback,
    /// Base LSN of the segment this process last synced (0: none): its durable mark is written
    /// when the log is dropped.
    pub(super) synced_segment: AtomicU64,
}

/// The newest segment, as the current leader writes it.
///
/// Frames are written with `pwrite`, not through a map: whole new pages then need no zero-fill
/// fault before they are overwritten (measured: half the time of a map copy at 256 B records),
/// and a write raises inotify events, which map stores never do. Readers still read through maps
/// of the same page cache.
struct Active {
    base: Lsn,
    path: PathBuf,
    file: Arc<File>,
    capacity: u64,
    /// Writeback was last requested up to this offset.
    written_back: u64,
    /// The segment's header is version 2: frames record the durable watermark.
    records_durable: bool,
    /// The tail this process last published or found consistent in this segment: a tail equal
    /// to it needs no check.
    known_tail: Option<Tail>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            queue: Mutex::new(group::Queue::default()),
            active: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            syncing: Mutex::new(false),
            synced: Condvar::new(),
            appender_turn: Condvar::new(),
            repairs: Mutex::new(Vec::new()),
            writeback: Writeback::new(),
            synced_segment: AtomicU64::new(0),
        }
    }

    /// Torn tails this process cut while appending (left by appenders that died mid-write).
    pub fn repairs(&self) -> Vec<TornTailReport> {
        lock(&self.repairs).clone()
    }
}

/// Writes a group under the append lock: catch up with other processes, place the batches one
/// after another, write them with one `pwritev` per segment touched, publish once.
pub(super) fn write_group(shared: &Shared, group: &mut [Pending]) -> Vec<Result<Appended>> {
    let fail_all = |e: Error| group.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
    let _append_lock = match shared.control.lock() {
        Ok(l) => l,
        Err(e) => return fail_all(e),
    };
    let mut active = lock(&shared.writer.active);
    let mut tail = shared.control.tail();
    if let Err(e) = catch_up(shared, &mut active, &mut tail) {
        return fail_all(e);
    }
    if let Err(e) = super::durability::repair(&shared.dir, &shared.control, true) {
        return fail_all(e);
    }
    let mut run =
        Run { start: tail, tail, time: shared.opts.clock.now().max(tail.last_time), placed: Vec::new() };
    let mut results: Vec<Option<Result<Appended>>> = group.iter().map(|_| None).collect();
    let usable = shared.opts.usable_segment_bytes();
    for i in 0..group.len() {
        if let Some(build) = group.get_mut(i).and_then(|p| p.deferred.take()) {
            // The builder reads the log up to the tail: publish what this group placed so far.
            if let Err(e) = flush(shared, &mut active, &mut run, group, &mut results) {
                fail_rest(&mut results, &e);
                break;
            }
            shared.control.publish(run.start);
            match build(run.tail.lsn) {
                Ok(built) if built.count == 0 => {
                    set(&mut results, i, Ok(Appended { first: run.tail.lsn, count: 0, time: None }));
                    continue;
                }
                Ok(built) => {
                    if let Some(slot) = group.get_mut(i) {
                        *slot = built;
                    }
                }
                Err(e) => {
                    set(&mut results, i, Err(e));
                    continue;
                }
            }
        }
        let len = group.get(i).map_or(0, |p| p.buf.len() as u64);
        if len > usable {
            set(&mut results, i, Err(Error::BatchTooLarge { size: len, max: usable }));
            continue;
        }
        if let Err(e) = make_room(shared, &mut active, &mut run, group, &mut results, len) {
            fail_rest(&mut results, &e);
            break;
        }
        // The segment the batch goes to (after a rollover, the new one).
        let records_durable = match ensure_active(shared, &mut active, run.tail.segment) {
            Ok(current) => current.records_durable,
            Err(e) => {
                fail_rest(&mut results, &e);
                break;
            }
        };
        let durable = records_durable.then(|| shared.control.durable_lsn());
        if let Some(pending) = group.get_mut(i) {
            run.place(i, pending, durable);
        }
    }
    if let Err(e) = flush(shared, &mut active, &mut run, group, &mut results) {
        fail_rest(&mut results, &e);
    }
    shared.control.publish(run.start);
    if let Some(current) = active.as_mut().filter(|a| a.base == run.start.segment) {
        current.known_tail = Some(run.start);
    }
    shared.wake.appended();
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::internal("the batch was never placed"))))
        .collect()
}

/// Batches placed after one another in the newest segment, not yet written.
struct Run {
    /// The tail before the run: what is written and may be published.
    start: Tail,
    /// The tail after the run.
    tail: Tail,
    time: Timestamp,
    /// Index in the group and where each batch landed.
    placed: Vec<(usize, Appended)>,
}

impl Run {
    /// Places a batch after the run; `durable` is the durable watermark to record in its frames
    /// (log-format.md, "Record frame"), `None` for a version-1 segment.
    fn place(&mut self, index: usize, pending: &mut Pending, durable: Option<Lsn>) {
        pending.finalize(self.tail.lsn, self.time, durable);
        let appended = Appended { first: self.tail.lsn, count: pending.count, time: Some(self.time) };
        self.tail.last_frame = self.tail.offset + pending.last_frame as u64;
        self.tail.offset += pending.buf.len() as u64;
        self.tail.lsn = appended.next();
        self.tail.last_time = self.time;
        self.placed.push((index, appended));
    }
}

/// Makes sure `len` more bytes fit the newest segment, writing the run and rolling over if not.
fn make_room(
    shared: &Shared,
    active: &mut Option<Active>,
    run: &mut Run,
    group: &[Pending],
    results: &mut [Option<Result<Appended>>],
    len: u64,
) -> Result<()> {
    let capacity = ensure_active(shared, active, run.tail.segment)?.capacity;
    if run.tail.offset + len <= capacity {
        return Ok(());
    }
    flush(shared, active, run, group, results)?;
    let current = ensure_active(shared, active, run.tail.segment)?;
    if run.tail.offset == SEGMENT_HEADER_LEN as u64 && run.tail.lsn == run.tail.segment {
        // No record in it yet, so no next segment can take the tail LSN as its name: the
        // segment grows instead.
        let capacity = shared.opts.next_segment_size(current.capacity, len);
        return grow_empty(current, capacity);
    }
    roll_over(shared, current, &mut run.tail, len)?;
    run.start = run.tail;
    Ok(())
}

/// Writes the placed batches with one vectored write and answers their callers.
fn flush(
    shared: &Shared,
    active: &mut Option<Active>,
    run: &mut Run,
    group: &[Pending],
    results: &mut [Option<Result<Appended>>],
) -> Result<()> {
    if run.placed.is_empty() {
        return Ok(());
    }
    let current = ensure_active(shared, active, run.start.segment)?;
    shared.control.announce_write(run.tail.offset);
    let bufs: Vec<&[u8]> =
        run.placed.iter().filter_map(|(i, _)| group.get(*i)).map(|p| p.buf.as_slice()).collect();
    let written = match fault::abort_point() {
        Some(cut) => {
            fault::write_prefix_and_abort(&current.file, &current.path, &bufs, run.start.offset, cut)
        }
        None => io::write_vectored_at(&current.file, &current.path, &bufs, run.start.offset),
    };
    let placed = std::mem::take(&mut run.placed);
    match written {
        Ok(()) => {
            for (i, appended) in placed {
                set(results, i, Ok(appended));
            }
            run.start = run.tail;
            start_writeback(shared, current, run.start.offset);
            Ok(())
        }
        Err(e) => {
            for (i, _) in placed {
                set(results, i, Err(e.clone()));
            }
            run.tail = run.start;
            Err(e)
        }
    }
}

fn set(results: &mut [Option<Result<Appended>>], i: usize, r: Result<Appended>) {
    if let Some(slot) = results.get_mut(i) {
        *slot = Some(r);
    }
}

fn fail_rest(results: &mut [Option<Result<Appended>>], e: &Error) {
    for slot in results.iter_mut().filter(|s| s.is_none()) {
        *slot = Some(Err(e.clone()));
    }
}

/// Maps the newest segment (another process may have rolled over since this one last wrote)
/// and repairs what an appender that died mid-write left behind.
fn catch_up(shared: &Shared, active_slot: &mut Option<Active>, tail: &mut Tail) -> Result<()> {
    let active = ensure_active(shared, active_slot, tail.segment)?;
    if active.known_tail != Some(*tail) && !tail_consistent(active, tail) {
        rebuild_tail(shared, active, tail)?;
    }
    active.known_tail = Some(*tail);
    if shared.control.write_end() > tail.offset {
        let len = io::file_len(&active.file, &active.path)?;
        let image = io::map_read(&active.file, &active.path, len)?;
        let (torn, _adopted) = recovery::repair_interrupted(
            &shared.control,
            &shared.opts,
            &active.path,
            &active.file,
            &image,
            "append",
        )?;
        *tail = shared.control.tail();
        if let Some(torn) = torn {
            lock(&shared.writer.repairs).push(torn);
        }
        finish_rollover(shared, tail)?;
        ensure_active(shared, active_slot, tail.segment)?.known_tail = Some(*tail);
    }
    Ok(())
}

/// Whether the words of a published tail agree with each other and with the segment: the frame
/// at `last_frame` carries LSN `lsn - 1` and ends at `offset` (with no frame yet, the offset is
/// the first after the header and the LSN the segment's base). A process that died while
/// publishing (the words are stored one by one, the LSN last) leaves them disagreeing: the new
/// offset with the old LSN, say; appending after such a tail would write frames with LSNs that
/// are already taken (log-format.md, "Appending", step 1).
fn tail_consistent(active: &Active, tail: &Tail) -> bool {
    use std::os::unix::fs::FileExt;
    if tail.last_frame == 0 {
        return tail.offset == SEGMENT_HEADER_LEN as u64 && tail.lsn == tail.segment;
    }
    let mut head = [0u8; 16];
    if active.file.read_exact_at(&mut head, tail.last_frame).is_err() {
        return false;
    }
    let len = format::u32_at(&head, 0) as usize;
    let lsn = format::u64_at(&head, 8);
    tail.last_frame.saturating_add(format::frame_len(len) as u64) == tail.offset
        && lsn.saturating_add(1) == tail.lsn.0
}

/// Rebuilds a tail whose words disagree from the segment: its complete batches up to the write
/// end, never behind the published LSN (readers may have read up to it).
fn rebuild_tail(shared: &Shared, active: &Active, tail: &mut Tail) -> Result<()> {
    let len = io::file_len(&active.file, &active.path)?;
    let image = io::map_read(&active.file, &active.path, len)?;
    let end = format::offset_index(shared.control.write_end().max(tail.offset)).min(image.len());
    let written = image.get(..end).unwrap_or_default();
    let s = scan::scan(written, ScanStart::segment(tail.segment), shared.opts.max_record_size, |_, _| {});
    if s.committed_lsn < tail.lsn {
        return Ok(()); // the segment holds less than was published: readers report it, naming it
    }
    let rebuilt = Tail {
        lsn: s.committed_lsn,
        segment: tail.segment,
        offset: s.committed_offset,
        last_time: s.last_time.max(tail.last_time),
        last_frame: s.last_frame,
    };
    tracing::warn!(segment = %active.path.display(), from = ?tail, to = ?rebuilt, "rebuilt a tail left half-published by a process that died");
    shared.control.publish(rebuilt);
    *tail = rebuilt;
    Ok(())
}

fn ensure_active<'a>(shared: &Shared, active: &'a mut Option<Active>, base: Lsn) -> Result<&'a mut Active> {
    if active.as_ref().is_none_or(|a| a.base != base) {
        *active = None;
        *active = Some(open_active(shared, base)?);
    }
    active.as_mut().ok_or_else(|| Error::internal(format!("segment {base} could not be mapped")))
}

fn open_active(shared: &Shared, base: Lsn) -> Result<Active> {
    use std::os::unix::fs::FileExt;
    let path = shared.dir.join(format::segment_file_name(base));
    let file = io::open_rw(&path)?;
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut header, 0).map_err(|e| Error::io("read header", &path, e))?;
    let capacity = SegmentHeader::decode(&header)
        .map_err(|e| Error::CorruptHeader { segment: path.clone(), reason: e.to_string() })?
        .capacity;
    let records_durable = format::u32_at(&header, 8) == format::SEGMENT_VERSION;
    if io::file_len(&file, &path)? < capacity {
        io::preallocate(&file, &path, capacity)?;
    }
    // A new newest segment: a spare for the one after it is wanted.
    shared.spares.want(base, shared.opts.next_segment_size(capacity, 0));
    Ok(Active {
        base,
        path,
        file: Arc::new(file),
        capacity,
        written_back: SEGMENT_HEADER_LEN as u64,
        records_durable,
        known_tail: None,
    })
}

/// Fault injection for crash tests: make the process abort in the middle of copying a batch.
#[doc(hidden)]
pub mod fault {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use std::fs::File;
    use std::path::Path;

    use crate::error::Result;

    pub use crate::log::segment::fault::{abort_after_zero_chunks, abort_at_spare_step};

    static ABORT_AFTER_BYTES: AtomicU64 = AtomicU64::new(u64::MAX);
    static ABORT_AT_COMPACTION_STEP: AtomicU64 = AtomicU64::new(u64::MAX);
    static ABORT_IN_ROLLOVER: AtomicBool = AtomicBool::new(false);

    /// Arms a fault in segment rollover: the process aborts once the next segment is created
    /// (renamed into place) and before it is published as the tail segment. For crash tests
    /// only.
    pub fn abort_in_rollover() {
        ABORT_IN_ROLLOVER.store(true, Ordering::SeqCst);
    }

    pub(super) fn rollover_step() {
        if ABORT_IN_ROLLOVER.load(Ordering::Relaxed) {
            std::process::abort();
        }
    }

    /// Arms a fault in compaction: the process aborts right after step `step` (1: the new
    /// compacted-records file is synced under its temporary name; 2: it is renamed into place;
    /// 3 and on: one more removed segment). For crash tests only.
    pub fn abort_at_compaction_step(step: u64) {
        ABORT_AT_COMPACTION_STEP.store(step, Ordering::SeqCst);
    }

    pub(crate) fn compaction_step(step: u64) {
        if ABORT_AT_COMPACTION_STEP.load(Ordering::Relaxed) == step {
            std::process::abort();
        }
    }

    /// Arms the fault: the next group write stops after `bytes` bytes and the process aborts,
    /// leaving a torn write behind. For crash tests only.
    pub fn abort_mid_write(bytes: u64) {
        ABORT_AFTER_BYTES.store(bytes, Ordering::SeqCst);
    }

    pub(super) fn abort_point() -> Option<u64> {
        let armed = ABORT_AFTER_BYTES.load(Ordering::Relaxed);
        (armed != u64::MAX).then_some(armed)
    }

    pub(super) fn write_prefix_and_abort(
        file: &File,
        path: &Path,
        bufs: &[&[u8]],
        offset: u64,
        cut: u64,
    ) -> Result<()> {
        let joined: Vec<u8> = bufs.concat();
        let prefix = joined.get(..crate::format::offset_index(cut).min(joined.len())).unwrap_or_default();
        let _ = crate::fs::file::write_at(file, path, prefix, offset);
        std::process::abort();
    }
}

/// Once `writeback_every` bytes of the segment were written since the last request, hands them
/// to the writeback thread, so that dirty pages do not pile up until the seal. Only whole pages:
/// the page the next append writes into is left alone, or that append would wait for its
/// writeback to finish.
fn start_writeback(shared: &Shared, current: &mut Active, written: u64) {
    let every = shared.opts.writeback_every;
    let end = written & !(WRITEBACK_PAGE - 1);
    if every == 0 || end < current.written_back.saturating_add(every) {
        return;
    }
    if shared.writer.writeback.request(&current.file, &current.path, current.written_back, end) {
        current.written_back = end;
    }
}

/// Seals the newest segment (syncs it, so that only the newest segment can ever have a torn
/// tail) and starts the next one at the tail LSN.
fn roll_over(shared: &Shared, current: &Active, tail: &mut Tail, batch: u64) -> Result<()> {
    shared.control.publish(*tail);
    super::durability::sync_segment(shared, &current.file, &current.path, true)?;
    shared.control.raise_durable(tail.lsn);
    // A rollover in flight, announced as a write to the end of the sealed segment: if this
    // process dies once the next segment exists and before it is published, the next appender
    // sees the write end past the tail and finishes the rollover (`finish_rollover`), rather
    // than appending to the sealed segment records that the next segment's name claims.
    shared.control.announce_write(current.capacity.max(tail.offset + 1));
    let capacity = shared.opts.next_segment_size(current.capacity, batch);
    if !Segment::create_from_spare(&shared.dir, tail.lsn, capacity)? {
        Segment::create(&shared.dir, tail.lsn, capacity, false)?;
    }
    fault::rollover_step();
    *tail = Tail {
        lsn: tail.lsn,
        segment: tail.lsn,
        offset: SEGMENT_HEADER_LEN as u64,
        last_time: tail.last_time,
        last_frame: 0,
    };
    // Published before the write end comes down, so that no moment shows the old tail with
    // nothing announced past it.
    shared.control.publish(*tail);
    shared.control.announce_write(tail.offset);
    Ok(())
}

/// Grows the newest segment, which holds no record, to `capacity` (log-format.md, "Segment
/// files": a batch larger than a small first segment): the file is extended first, then the
/// header names the new capacity and is synced. A crash in between leaves a file longer than its
/// header's capacity, which is read like any other (the bytes past it are zero) and grown again.
/// Append lock held.
fn grow_empty(current: &mut Active, capacity: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    io::preallocate(&current.file, &current.path, capacity)?;
    let mut old = [0u8; SEGMENT_HEADER_LEN];
    current.file.read_exact_at(&mut old, 0).map_err(|e| Error::io("read header", &current.path, e))?;
    let mut header = SegmentHeader::decode(&old)
        .map_err(|e| Error::CorruptHeader { segment: current.path.clone(), reason: e.to_string() })?;
    header.capacity = capacity;
    let mut bytes = header.encode();
    if current.records_durable {
        // The durable mark is kept as it is (it is outside the header CRC).
        let mark = format::HDR_DURABLE_MARK..format::HDR_DURABLE_MARK + format::DURABLE_MARK_LEN;
        if let (Some(to), Some(from)) = (bytes.get_mut(mark.clone()), old.get(mark)) {
            to.copy_from_slice(from);
        }
    }
    crate::fs::file::write_at(&current.file, &current.path, &bytes, 0)?;
    io::sync_data(&current.file, &current.path)?;
    current.capacity = capacity;
    current.records_durable = true;
    Ok(())
}

/// Finishes the rollover of an appender that died after creating the next segment and before
/// publishing it (log-format.md, "Appending", step 2): if the segment named by the tail LSN
/// exists while the tail is still in the segment before it, it becomes the tail segment.
/// Called with the append lock held, after a write end past the tail was found and repaired.
fn finish_rollover(shared: &Shared, tail: &mut Tail) -> Result<()> {
    if tail.segment == tail.lsn {
        return Ok(());
    }
    let next = shared.dir.join(format::segment_file_name(tail.lsn));
    match std::fs::symlink_metadata(&next) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("stat", &next, e)),
    }
    // Its creator may have died, or failed, between the rename and the directory sync: its name
    // is made durable before any record is acknowledged in it.
    io::sync_dir(&shared.dir)?;
    let finished = Tail {
        lsn: tail.lsn,
        segment: tail.lsn,
        offset: SEGMENT_HEADER_LEN as u64,
        last_time: tail.last_time,
        last_frame: 0,
    };
    tracing::warn!(segment = %next.display(), "finished a rollover left unpublished by a process that died or failed");
    shared.control.publish(finished);
    shared.control.announce_write(finished.offset);
    *tail = finished;
    Ok(())
}
