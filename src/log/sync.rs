//! Making appended records durable: group commit of syncs, the durable watermark, and the
//! background flusher of `Durability::Flush` (log-format.md, "Durability").

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::format::DurableMark;
use super::options::Durability;
use super::segment::Segment;
use super::{io, lock, wait, Shared};
use crate::error::Result;
use crate::types::Lsn;

/// Makes every record below `upto` durable.
///
/// Group commit for syncs: one thread of the process syncs at a time, and those whose records a
/// finished sync covered (or another process's sync: the watermark is shared) return without
/// syncing. Before syncing, the syncer lets the appenders of this process that are in the middle
/// of writing finish (for at most [`SYNC_GATHER`]), so that one sync covers all of them; a lone
/// caller finds nobody writing and syncs at once.
pub(crate) fn sync_to(shared: &Shared, upto: Lsn) -> Result<()> {
    sync_gathering(shared, upto, true)
}

/// As [`sync_to`]; `gather` false skips waiting for other writers (the appender thread, which
/// itself leads the next group of async callers, would only wait for itself).
pub(crate) fn sync_gathering(shared: &Shared, upto: Lsn, gather: bool) -> Result<()> {
    let control = &shared.control;
    let writer = &shared.writer;
    let mut syncing = lock(&writer.syncing);
    loop {
        if control.durable_lsn() >= upto {
            return Ok(());
        }
        if *syncing {
            syncing = wait(&writer.synced, syncing);
            continue;
        }
        *syncing = true;
        drop(syncing);
        let gather_until = Instant::now() + SYNC_GATHER;
        while gather && writer.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < gather_until {
            std::thread::yield_now();
        }
        let result = sync_tail(shared);
        syncing = lock(&writer.syncing);
        *syncing = false;
        writer.synced.notify_all();
        result?;
    }
}

/// Longest time a syncer waits for appenders of its process that are mid-write.
const SYNC_GATHER: Duration = Duration::from_micros(500);

/// Syncs the tail segment: everything below the tail LSN read first lies in it or in sealed
/// (already synced) segments before it, so all of it becomes durable. Then records that in the
/// segment's durable mark, which the next sync of the segment takes to the disk.
fn sync_tail(shared: &Shared) -> Result<()> {
    let control = &shared.control;
    let target = control.tail_lsn();
    let base = control.tail_segment();
    let segment = shared.segment(base)?;
    // This sync takes any mark written before it to the disk.
    let _ = shared.writer.mark_unsynced.compare_exchange(base.0, 0, Ordering::AcqRel, Ordering::Acquire);
    io::sync_data(segment.file(), &segment.path)?;
    control.raise_durable(target);
    record_durable_mark(shared, base, &segment, target)
}

/// Writes `target` (durable now) as the durable mark of segment `base`, if it is still the
/// newest segment and its mark is lower (log-format.md, "Durable mark"). Under the append lock,
/// so that marks only rise, are never written into a sealed segment and never race with
/// recovery; skipped when another thread of this process holds the lock (a later sync writes
/// it: a mark may lag, it is only ever a lower bound).
fn record_durable_mark(shared: &Shared, base: Lsn, segment: &Segment, target: Lsn) -> Result<()> {
    if target <= base {
        return Ok(());
    }
    let Some(_append_lock) = shared.control.try_lock()? else { return Ok(()) };
    if shared.control.tail_segment() != base {
        return Ok(()); // sealed since: wholly durable
    }
    match segment.durable_mark() {
        DurableMark::Unsupported => return Ok(()),
        DurableMark::Below(lsn) if lsn >= target => return Ok(()),
        _ => {}
    }
    segment.write_durable_mark(target)?;
    shared.writer.mark_unsynced.store(base.0, Ordering::Release);
    Ok(())
}

/// Takes a durable mark this process wrote, and no sync covered yet, to the disk: when the log
/// is dropped, so that after a clean exit the mark covers every record acknowledged.
pub(crate) fn sync_last_mark(shared: &Shared) {
    let base = shared.writer.mark_unsynced.swap(0, Ordering::AcqRel);
    if base == 0 {
        return;
    }
    let synced = shared.segment(Lsn(base)).and_then(|s| io::sync_data(s.file(), &s.path));
    if let Err(e) = synced {
        tracing::warn!(error = %e, "cannot sync the durable mark");
    }
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
        if shared.opts.read_only {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(shared);
        let signal = shared.flusher.signal.clone();
        let spawned = std::thread::Builder::new().name("maos-log-flush".into()).spawn(move || loop {
            let stopped = {
                let (stop, cv) = &*signal;
                let guard = lock(stop);
                let (guard, _) =
                    cv.wait_timeout(guard, interval).unwrap_or_else(std::sync::PoisonError::into_inner);
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
