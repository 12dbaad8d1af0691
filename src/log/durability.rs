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

/// Syncs the segment `base` (`fdatasync`) and says whether the sync made its records durable.
///
/// After a failed sync, Linux marks the pages it could not write clean: they stay readable in
/// the page cache but no later sync writes them, and a later sync that succeeds says nothing
/// about them (the `fsyncgate` of the Postgres project, 2018; Rebello et al., "Can Applications
/// Recover from `fsync` Failures?", USENIX ATC 2020). A process opened after the failure is not
/// even told. So a failed sync is recorded in the lock file's page, for every process
/// (log-format.md, "Durability", "A failed sync"), and until the segment's bytes were written
/// again, from the page cache, no sync of it makes anything durable. The bytes are written
/// again under the append lock, by the next appender ([`write_again_if_needed`]) or here when the
/// caller holds the lock (`locked_upto`: the published tail's offset in this segment).
///
/// # Errors
/// The sync's [`Error::Io`]; also an [`Error::Io`] (`EIO`) when a sync of this segment failed
/// earlier and its bytes were not written again yet, or a sync failed meanwhile.
pub(crate) fn sync_segment(
    shared: &Shared,
    base: Lsn,
    file: &File,
    path: &Path,
    locked_upto: Option<u64>,
) -> Result<()> {
    let control = &shared.control;
    if control.failed_sync() == Some((base, true)) {
        match locked_upto {
            Some(upto) => {
                write_again(shared, base, file, path, upto)?;
                control.note_rewritten(base);
            }
            None => return Err(unsynced(path)),
        }
    }
    let before = control.failed_sync_word();
    if let Err(e) = io::sync_data(file, path) {
        tracing::error!(segment = %path.display(), error = %e, "a segment sync failed; its bytes are written again before a sync can make them durable");
        control.note_failed_sync(base);
        return Err(e);
    }
    // A sync that failed meanwhile, here or in another process, may have lost pages this one
    // did not write.
    if control.failed_sync_word() != before || (before != 0 && !control.clear_failed_sync(before)) {
        return Err(unsynced(path));
    }
    Ok(())
}

/// Under the append lock, with the published tail `tail`: writes again the bytes of the segment
/// whose sync failed, so that the next sync of it makes them durable.
pub(crate) fn write_again_if_needed(shared: &Shared, tail: &super::lock_file::Tail) -> Result<()> {
    let control = &shared.control;
    let Some((base, true)) = control.failed_sync() else { return Ok(()) };
    let segment = shared.segment(base)?;
    let upto = if tail.segment == base { tail.offset } else { segment.map().len() as u64 };
    write_again(shared, base, segment.file(), &segment.path, upto)?;
    control.note_rewritten(base);
    Ok(())
}

/// At open, under the append lock: if a sync failed in this boot and its segment's bytes were
/// not made durable since, writes the whole segment again and syncs it (recovery then trusts
/// what it reads). A failed-sync word from another boot is cleared by recovery from the
/// segments, which reads what the disk kept.
pub(crate) fn repair_failed_sync(dir: &Path, control: &super::lock_file::LockFile) -> Result<()> {
    if !control.written_this_boot(io::boot_id(dir)) {
        return Ok(());
    }
    let Some((base, _)) = control.failed_sync() else { return Ok(()) };
    let path = dir.join(crate::format::segment_file_name(base));
    if path.is_file() {
        let file = io::open_rw(&path)?;
        let len = io::file_len(&file, &path)?;
        let map = io::map_read(&file, &path, len)?;
        write_again_from(&map, &file, &path, len)?;
        io::sync_data(&file, &path)?;
    }
    control.clear_failed_sync(control.failed_sync_word());
    Ok(())
}

fn unsynced(path: &Path) -> crate::Error {
    crate::Error::io(
        "fdatasync",
        path,
        std::io::Error::other(
            "an earlier sync of this segment failed: nothing in it is durable until the next append has written its bytes again and a sync succeeded",
        ),
    )
}

/// Writes the bytes `[0, upto)` of the segment `base` again, from its map, 1 MiB at a time.
/// Called with the append lock held: nothing below the tail changes meanwhile, and no durable
/// mark is written.
fn write_again(shared: &Shared, base: Lsn, file: &File, path: &Path, upto: u64) -> Result<()> {
    let map = shared.segment(base)?.remap_if_grown()?;
    write_again_from(&map, file, path, upto)
}

/// Writes `map[..upto]` over the same bytes of `file`.
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
    sync_segment(shared, base, segment.file(), &segment.path, None)?;
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
    let upto = control.tail().offset;
    sync_segment(shared, base, segment.file(), &segment.path, Some(upto))
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
