//! Making appended records durable: group commit of syncs, the durable watermark, and the
//! background flusher of `Durability::Flush` (log-format.md, "Durability").

use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::options::Durability;
use super::{io, lock, wait, Shared};
use crate::error::Result;
use crate::format::DurableMark;
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

/// Syncs a segment (`fdatasync`) so that the caller may raise the durable LSN over what it
/// holds: `Ok` only if no failed sync's lost bytes are pending and no sync failed meanwhile.
///
/// After a failed sync, Linux marks the pages it could not write clean: they stay readable in
/// the page cache but no later sync writes them, and a later sync that succeeds says nothing
/// about them; a process that opens the file afterwards is not even told (the `fsyncgate` of
/// the Postgres project, 2018; Rebello et al., "Can Applications Recover from `fsync`
/// Failures?", USENIX ATC 2020). So every failed segment sync, in any process, is counted in
/// the lock file's page, and until a holder of the append lock has written the bytes again
/// ([`repair`]), no sync makes anything durable (log-format.md, "Durability", "A failed sync").
/// A caller holding the append lock (`locked`) repairs first; one without it repairs if it can
/// take the lock at once, else fails.
///
/// # Errors
/// The sync's [`Error::Io`]; an [`Error::Io`] (`EIO`) when a failed sync's bytes are pending and
/// the lock is taken, or a sync failed meanwhile; the repair's errors.
pub(crate) fn sync_segment(shared: &Shared, file: &File, path: &Path, locked: bool) -> Result<()> {
    let control = &shared.control;
    if control.sync_repair_pending() {
        if locked || control.held_by_this_thread() {
            repair(&shared.dir, control, true)?;
        } else if let Some(_append_lock) = control.try_lock()? {
            repair(&shared.dir, control, true)?;
        } else {
            return Err(unsynced(path));
        }
    }
    let failures = control.sync_failures();
    if control.sync_repair_pending() {
        return Err(unsynced(path));
    }
    if let Err(e) = io::sync_data(file, path) {
        tracing::error!(segment = %path.display(), error = %e, "a segment sync failed; its bytes are written again before a sync can make anything durable");
        control.note_failed_sync();
        return Err(e);
    }
    if control.sync_failures() != failures {
        return Err(unsynced(path)); // a sync failed meanwhile, here or in another process
    }
    Ok(())
}

/// Writes again, with the append lock held, every byte a failed sync may have lost, and syncs
/// it: the segments from the one holding the durable LSN to the newest, each up to the
/// published tail (`published`) or whole (at open, before the tail is trusted). A failed sync
/// only loses bytes written since the last sync that succeeded, so nothing below the durable
/// LSN. Segments compaction removed are passed over.
///
/// # Errors
/// [`Error::Io`] if a segment cannot be opened, mapped, written or synced (a failed sync is
/// counted).
pub(crate) fn repair(dir: &Path, control: &super::lock_file::LockFile, published: bool) -> Result<()> {
    let failures = control.sync_failures();
    if !control.sync_repair_pending() {
        return Ok(());
    }
    let tail = published.then(|| control.tail());
    let durable = control.durable_lsn();
    let mut bases: Vec<Lsn> =
        io::list_dir(dir)?.iter().filter_map(|n| crate::format::parse_segment_file_name(n)).collect();
    bases.sort_unstable();
    let first = bases.iter().rev().find(|b| **b <= durable).or(bases.first()).copied();
    for base in bases.into_iter().filter(|b| Some(*b) >= first && tail.is_none_or(|t| *b <= t.segment)) {
        let path = dir.join(crate::format::segment_file_name(base));
        let file = match io::open_rw(&path) {
            Ok(file) => file,
            Err(e) if super::is_not_found(&e) => continue, // compacted meanwhile
            Err(e) => return Err(e),
        };
        let len = io::file_len(&file, &path)?;
        let upto = match tail {
            Some(t) if t.segment == base => t.offset.min(len),
            _ => len,
        };
        let map = io::map_read(&file, &path, len)?;
        write_again_from(&map, &file, &path, upto)?;
        if let Err(e) = io::sync_data(&file, &path) {
            control.note_failed_sync();
            return Err(e);
        }
    }
    control.note_repaired(failures);
    Ok(())
}

fn unsynced(path: &Path) -> crate::Error {
    crate::Error::io(
        "fdatasync",
        path,
        std::io::Error::other(
            "a segment sync failed earlier: nothing is durable until its bytes were written again under the append lock (the next append does it) and a sync succeeded",
        ),
    )
}

/// Writes `map[..upto]` over the same bytes of `file`, 1 MiB at a time.
fn write_again_from(map: &[u8], file: &File, path: &Path, upto: u64) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    let end = usize::try_from(upto).unwrap_or(usize::MAX).min(map.len());
    let mut at = 0;
    while at < end {
        let to = (at + CHUNK).min(end);
        let chunk = map.get(at..to).unwrap_or_default().to_vec();
        crate::fs::file::write_at(file, path, &chunk, at as u64)?;
        at = to;
    }
    tracing::warn!(segment = %path.display(), bytes = end, "wrote a segment's bytes again after a failed sync");
    Ok(())
}

/// Longest time a syncer waits for appenders of its process that are mid-write.
const SYNC_GATHER: Duration = Duration::from_micros(500);

/// Syncs the tail segment: everything below the tail LSN read first lies in it or in sealed
/// (already synced) segments before it, so all of it becomes durable. The frames appended next
/// record the raised watermark (log-format.md, "Record frame"), so it reaches the disk with them.
fn sync_tail(shared: &Shared) -> Result<()> {
    let control = &shared.control;
    let target = control.tail_lsn();
    let base = control.tail_segment();
    let segment = shared.segment(base)?;
    sync_segment(shared, segment.file(), &segment.path, false)?;
    control.raise_durable(target);
    shared.writer.synced_segment.store(base.0, Ordering::Release);
    shared.wake.durable();
    Ok(())
}

/// When the log is closed or dropped after this process synced: records the durable watermark
/// in the newest segment's durable mark and syncs it, so that after a clean exit the disk says
/// every acknowledged record is durable, including those of the last sync, which no later frame
/// records (log-format.md, "Durable mark"). Under the append lock, so that marks only rise,
/// never change in a sealed segment and never race with recovery. Runs once: later calls find
/// nothing to mark and return `Ok`.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if the append lock cannot be taken, or the newest segment
/// cannot be opened, written or synced; [`Error::CorruptHeader`](crate::Error::CorruptHeader) if
/// its header does not decode. The records stay durable then (their frames and the lock file
/// say so); only the mark for a power cut after a clean exit is missing.
pub(crate) fn mark_on_close(shared: &Shared) -> Result<()> {
    let base = Lsn(shared.writer.synced_segment.swap(0, Ordering::AcqRel));
    if base.0 == 0 {
        return Ok(());
    }
    write_mark(shared, base)
}

fn write_mark(shared: &Shared, base: Lsn) -> Result<()> {
    let control = &shared.control;
    // Closing (or dropping) the last handle from a builder: the lock is held already.
    let _append_lock = if control.held_by_this_thread() { None } else { Some(control.lock()?) };
    let durable = control.durable_lsn();
    if control.tail_segment() != base || durable <= base {
        return Ok(()); // sealed since (wholly durable), or nothing of it synced
    }
    let segment = shared.segment(base)?;
    match segment.durable_mark() {
        DurableMark::Unsupported => return Ok(()),
        DurableMark::Below(lsn) if lsn >= durable => return Ok(()),
        _ => {}
    }
    segment.write_durable_mark(durable)?;
    sync_segment(shared, segment.file(), &segment.path, true)
}

/// The background thread of [`Durability::Flush`]. It ends when the log goes (it holds the log
/// only while it syncs) or when [`Flusher::stop`] ends and joins it.
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
        let spawned = super::spawn_started("maos-log-flush", move || loop {
            let stopped = {
                let (stop, cv) = &*signal;
                let guard = lock(stop);
                let (guard, _) = cv
                    .wait_timeout_while(guard, interval, |stopped| !*stopped)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
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

impl Flusher {
    /// Ends the thread, if it runs, and waits for it to end: a sync it is running finishes
    /// first. The thread is not started again.
    pub fn stop(&self) {
        *lock(&self.signal.0) = true;
        self.signal.1.notify_all();
        if let Some(handle) = lock(&self.handle).take() {
            // The flusher itself may drop the last handle of the log; it must not join itself.
            if handle.thread().id() != std::thread::current().id() && handle.join().is_err() {
                tracing::error!("the flush thread panicked");
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}
