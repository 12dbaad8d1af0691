//! Appending: encoding batches, group commit inside a process, the append protocol across
//! processes, segment rollover and syncing (log-format.md, "Appending").

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;

use super::control::Tail;
use super::format::{self, SegmentHeader, FLAG_BATCH_CONTINUES, SEGMENT_HEADER_LEN};
use super::options::Durability;
use super::recovery::{self, TornTailReport};
use super::segment::Segment;
use super::{io, lock, wait, Shared};
use crate::error::{Error, Result};
use crate::types::{Lsn, RecordKind, Timestamp};

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// LSN of the first record of the batch.
    pub first: Lsn,
    /// Number of records.
    pub count: u64,
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
}

impl Pending {
    /// Encodes records, checking each against the maximum record size.
    pub fn encode<'a>(
        records: impl IntoIterator<Item = (RecordKind, &'a [u8])>,
        max_record_size: u32,
    ) -> Result<Pending> {
        let mut pending = Pending { buf: Vec::new(), count: 0, last_frame: 0 };
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

    /// Sets LSNs from `first`, the time and the batch flags, and computes the checksums.
    fn finalize(&mut self, first: Lsn, time: Timestamp) {
        let mut at = 0;
        for i in 0..self.count {
            let Some(rest) = self.buf.get_mut(at..) else { return };
            let len = format::encoded_frame_len(rest);
            let flags = if i + 1 < self.count { FLAG_BATCH_CONTINUES } else { 0 };
            if let Some(frame) = rest.get_mut(..len) {
                format::finalize_frame(frame, Lsn(first.0 + i), time, flags);
            }
            at += len;
        }
    }
}

/// The in-process side of appending: the group-commit queue and the write map.
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    turn: Condvar,
    active: Mutex<Option<Active>>,
    sync_lock: Mutex<()>,
    repairs: Mutex<Vec<TornTailReport>>,
}

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<(u64, Pending)>,
    leader: bool,
    done: HashMap<u64, Result<Appended>>,
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
    file: File,
    capacity: u64,
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            queue: Mutex::new(Queue::default()),
            turn: Condvar::new(),
            active: Mutex::new(None),
            sync_lock: Mutex::new(()),
            repairs: Mutex::new(Vec::new()),
        }
    }

    /// Torn tails this process cut while appending (left by appenders that died mid-write).
    pub fn repairs(&self) -> Vec<TornTailReport> {
        lock(&self.repairs).clone()
    }
}

/// Appends a batch: joins (or leads) a group commit, then waits for the log's durability.
pub(crate) fn append(shared: &Shared, pending: Pending) -> Result<Appended> {
    if pending.count == 0 {
        return Ok(Appended { first: shared.control.tail_lsn(), count: 0 });
    }
    let appended = group_commit(shared, pending)?;
    if shared.opts.durability == Durability::Sync {
        sync_to(shared, appended.next())?;
    }
    Ok(appended)
}

/// Callers queue their batches; whoever finds no leader becomes one, writes everything queued
/// under one append lock and one publish, and answers every caller it wrote for.
fn group_commit(shared: &Shared, pending: Pending) -> Result<Appended> {
    let writer = &shared.writer;
    let mut queue = lock(&writer.queue);
    let ticket = queue.next_ticket;
    queue.next_ticket += 1;
    queue.waiting.push((ticket, pending));
    loop {
        if let Some(result) = queue.done.remove(&ticket) {
            return result;
        }
        if queue.leader {
            queue = wait(&writer.turn, queue);
            continue;
        }
        queue.leader = true;
        let mut group = std::mem::take(&mut queue.waiting);
        drop(queue);
        let mut leadership = Leadership { writer, tickets: group.iter().map(|(t, _)| *t).collect() };
        let results = write_group(shared, &mut group);
        leadership.tickets.clear();
        queue = lock(&writer.queue);
        queue.leader = false;
        queue.done.extend(results);
        writer.turn.notify_all();
    }
}

/// Hands leadership back if the leader unwinds, answering its group with an error so that no
/// caller waits forever.
struct Leadership<'a> {
    writer: &'a Writer,
    tickets: Vec<u64>,
}

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let mut queue = lock(&self.writer.queue);
        queue.leader = false;
        for t in self.tickets.drain(..) {
            let err = Error::InvalidArgument { name: "append", reason: "the group leader panicked".into() };
            queue.done.insert(t, Err(err));
        }
        self.writer.turn.notify_all();
    }
}

/// Writes a group under the append lock: catch up with other processes, place the batches one
/// after another, write them with one `pwritev` per segment touched, publish once.
fn write_group(shared: &Shared, group: &mut [(u64, Pending)]) -> Vec<(u64, Result<Appended>)> {
    let fail_all = |e: Error| group.iter().map(|(t, _)| (*t, Err(e.clone()))).collect::<Vec<_>>();
    let _append_lock = match shared.control.lock() {
        Ok(l) => l,
        Err(e) => return fail_all(e),
    };
    let mut active = lock(&shared.writer.active);
    let mut tail = shared.control.tail();
    if let Err(e) = catch_up(shared, &mut active, &mut tail) {
        return fail_all(e);
    }
    let mut run = Run { start: tail, tail, time: Timestamp::now().max(tail.last_time), placed: Vec::new() };
    let mut results: Vec<Option<Result<Appended>>> = group.iter().map(|_| None).collect();
    let usable = shared.opts.usable_segment_bytes(shared.opts.segment_size);
    for i in 0..group.len() {
        let len = group.get(i).map_or(0, |(_, p)| p.buf.len() as u64);
        if len > usable {
            set(&mut results, i, Err(Error::BatchTooLarge { size: len, max: usable }));
            continue;
        }
        if let Err(e) = make_room(shared, &mut active, &mut run, group, &mut results, len) {
            fail_rest(&mut results, &e);
            break;
        }
        if let Some((_, pending)) = group.get_mut(i) {
            run.place(i, pending);
        }
    }
    if let Err(e) = flush(shared, &mut active, &mut run, group, &mut results) {
        fail_rest(&mut results, &e);
    }
    shared.control.publish(run.start);
    group
        .iter()
        .zip(results)
        .map(|((t, _), r)| (*t, r.unwrap_or_else(|| Err(internal("batch was never placed")))))
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
    fn place(&mut self, index: usize, pending: &mut Pending) {
        pending.finalize(self.tail.lsn, self.time);
        let appended = Appended { first: self.tail.lsn, count: pending.count };
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
    group: &[(u64, Pending)],
    results: &mut [Option<Result<Appended>>],
    len: u64,
) -> Result<()> {
    let capacity = ensure_active(shared, active, run.tail.segment)?.capacity;
    if run.tail.offset + len <= capacity {
        return Ok(());
    }
    flush(shared, active, run, group, results)?;
    let current = ensure_active(shared, active, run.tail.segment)?;
    roll_over(shared, current, &mut run.tail)?;
    run.start = run.tail;
    Ok(())
}

/// Writes the placed batches with one vectored write and answers their callers.
fn flush(
    shared: &Shared,
    active: &mut Option<Active>,
    run: &mut Run,
    group: &[(u64, Pending)],
    results: &mut [Option<Result<Appended>>],
) -> Result<()> {
    if run.placed.is_empty() {
        return Ok(());
    }
    let current = ensure_active(shared, active, run.start.segment)?;
    shared.control.announce_write(run.tail.offset);
    let bufs: Vec<&[u8]> =
        run.placed.iter().filter_map(|(i, _)| group.get(*i)).map(|(_, p)| p.buf.as_slice()).collect();
    let written = match fault::abort_point() {
        Some(cut) => fault::write_prefix_and_abort(&current.file, &bufs, run.start.offset, cut),
        None => io::write_all_vectored_at(&current.file, &current.path, &bufs, run.start.offset),
    };
    let placed = std::mem::take(&mut run.placed);
    match written {
        Ok(()) => {
            for (i, appended) in placed {
                set(results, i, Ok(appended));
            }
            run.start = run.tail;
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

fn internal(what: &str) -> Error {
    Error::InvalidArgument { name: "append", reason: what.into() }
}

/// Maps the newest segment (another process may have rolled over since this one last wrote)
/// and repairs what an appender that died mid-write left behind.
fn catch_up(shared: &Shared, active: &mut Option<Active>, tail: &mut Tail) -> Result<()> {
    let active = ensure_active(shared, active, tail.segment)?;
    if shared.control.write_end() > tail.offset {
        let len = io::file_len(&active.file, &active.path)?;
        let image = io::map_read(&active.file, &active.path, len)?;
        let (torn, _adopted) =
            recovery::repair_interrupted(&shared.control, &shared.opts, &active.path, &active.file, &image)?;
        *tail = shared.control.tail();
        if let Some(torn) = torn {
            lock(&shared.writer.repairs).push(torn);
        }
    }
    Ok(())
}

fn ensure_active<'a>(shared: &Shared, active: &'a mut Option<Active>, base: Lsn) -> Result<&'a mut Active> {
    if active.as_ref().is_none_or(|a| a.base != base) {
        *active = None;
        *active = Some(open_active(shared, base)?);
    }
    active.as_mut().ok_or_else(|| Error::InvalidArgument {
        name: "segment",
        reason: format!("segment {base} could not be mapped"),
    })
}

fn open_active(shared: &Shared, base: Lsn) -> Result<Active> {
    use std::os::unix::fs::FileExt;
    let path = shared.dir.join(format::segment_file_name(base));
    let file = io::open_rw(&path, false)?;
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut header, 0).map_err(|e| Error::io("read header", &path, e))?;
    let capacity = SegmentHeader::decode(&header)
        .map_err(|e| Error::CorruptHeader { segment: path.clone(), reason: e.to_string() })?
        .capacity;
    if io::file_len(&file, &path)? < capacity {
        io::preallocate(&file, &path, capacity)?;
    }
    Ok(Active { base, path, file, capacity })
}

/// Fault injection for crash tests: make the process abort in the middle of copying a batch.
#[doc(hidden)]
pub mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};

    use std::fs::File;
    use std::os::unix::fs::FileExt;

    use crate::error::Result;

    static ABORT_AFTER_BYTES: AtomicU64 = AtomicU64::new(u64::MAX);

    /// Arms the fault: the next group write stops after `bytes` bytes and the process aborts,
    /// leaving a torn write behind. For crash tests only.
    pub fn abort_mid_write(bytes: u64) {
        ABORT_AFTER_BYTES.store(bytes, Ordering::SeqCst);
    }

    pub(super) fn abort_point() -> Option<u64> {
        let armed = ABORT_AFTER_BYTES.load(Ordering::Relaxed);
        (armed != u64::MAX).then_some(armed)
    }

    pub(super) fn write_prefix_and_abort(file: &File, bufs: &[&[u8]], offset: u64, cut: u64) -> Result<()> {
        let joined: Vec<u8> = bufs.concat();
        let prefix = joined.get(..(cut as usize).min(joined.len())).unwrap_or_default();
        let _ = file.write_all_at(prefix, offset);
        std::process::abort();
    }
}

/// Seals the newest segment (syncs it, so that only the newest segment can ever have a torn
/// tail) and starts the next one at the tail LSN.
fn roll_over(shared: &Shared, current: &Active, tail: &mut Tail) -> Result<()> {
    shared.control.publish(*tail);
    io::sync_data(&current.file, &current.path)?;
    shared.control.raise_durable(tail.lsn);
    Segment::create(&shared.dir, tail.lsn, shared.opts.segment_size)?;
    *tail = Tail {
        lsn: tail.lsn,
        segment: tail.lsn,
        offset: SEGMENT_HEADER_LEN as u64,
        last_time: tail.last_time,
        last_frame: 0,
    };
    shared.control.announce_write(tail.offset);
    shared.control.publish(*tail);
    Ok(())
}

/// Makes every record below `upto` durable. One sync at a time per process; a caller whose
/// records a sync in flight (or any other process's sync) already covered returns at once.
pub(crate) fn sync_to(shared: &Shared, upto: Lsn) -> Result<()> {
    let control = &shared.control;
    if control.durable_lsn() >= upto {
        return Ok(());
    }
    let _one_sync = lock(&shared.writer.sync_lock);
    if control.durable_lsn() >= upto {
        return Ok(());
    }
    // Everything below `target` is written; it lies in the tail segment or in sealed (already
    // synced) segments before it, so syncing the tail segment makes all of it durable.
    let target = control.tail_lsn();
    let segment = shared.segment(control.tail_segment())?;
    io::sync_data(segment.file(), &segment.path)?;
    control.raise_durable(target);
    Ok(())
}

/// The background thread of [`Durability::Flush`].
pub(crate) struct Flusher {
    signal: Arc<(Mutex<bool>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    pub fn new() -> Flusher {
        Flusher { signal: Arc::new((Mutex::new(false), Condvar::new())), handle: Mutex::new(None) }
    }

    /// Starts the thread if the log's durability asks for one.
    pub fn start(shared: &Arc<Shared>) {
        let Durability::Flush(interval) = shared.opts.durability else { return };
        let weak: Weak<Shared> = Arc::downgrade(shared);
        let signal = shared.flusher.signal.clone();
        let spawned = std::thread::Builder::new().name("maos-log-flush".into()).spawn(move || loop {
            let stopped = {
                let (stop, cv) = &*signal;
                let guard = lock(stop);
                let (guard, _) = cv.wait_timeout(guard, interval).unwrap_or_else(std::sync::PoisonError::into_inner);
                *guard
            };
            let Some(shared) = weak.upgrade().filter(|_| !stopped) else { return };
            let tail = shared.control.tail_lsn();
            if shared.control.durable_lsn() < tail {
                if let Err(e) = sync_to(&shared, tail) {
                    tracing::error!(error = %e, "background flush failed");
                }
            }
        });
        match spawned {
            Ok(handle) => *lock(&shared.flusher.handle) = Some(handle),
            Err(e) => tracing::error!(error = %e, "cannot start the flush thread"),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        *lock(&self.signal.0) = true;
        self.signal.1.notify_all();
        if let Some(handle) = lock(&self.handle).take() {
            // The flusher itself may drop the last handle of the log; it must not join itself.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}
