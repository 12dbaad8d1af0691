//! Writing snapshots, on demand and in the background (log-format.md, "Snapshots").
//!
//! The snapshot writer never touches the live projections: it loads the newest snapshot on disk
//! (or starts empty), replays the log up to the tail into that private copy with the same
//! `apply`, and writes the result. Commands and appends are never held up by it, whatever the
//! size of the state; the price is the replay of the records since the previous snapshot and the
//! decoding of that snapshot, on the snapshot thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::{catch_up_at, Coordinator};
use crate::error::{Error, Result};
use crate::projection::State;
use crate::snapshot::{SkippedSnapshot, Snapshots};
use crate::types::Lsn;

/// Snapshot bookkeeping of one coordinator.
pub(super) struct SnapshotState {
    pub(super) store: Snapshots,
    /// LSN of the newest snapshot this process knows of.
    last: AtomicU64,
    /// Log bytes (frames) this process appended or applied since it last started a snapshot.
    bytes_since: AtomicU64,
    /// A background snapshot is being written.
    writing: AtomicBool,
    /// One snapshot at a time per coordinator.
    writer: Mutex<()>,
    /// The background snapshot thread started last, until someone waits for it.
    background: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Snapshots skipped when the store was opened.
    pub(super) skipped: Vec<SkippedSnapshot>,
    /// The LSN of the snapshot the store was opened from (`None`: a full replay).
    pub(super) opened_from: Option<Lsn>,
}

impl SnapshotState {
    pub(super) fn new(
        store: Snapshots,
        loaded: Lsn,
        skipped: Vec<SkippedSnapshot>,
        opened_from: Option<Lsn>,
    ) -> SnapshotState {
        SnapshotState {
            store,
            last: AtomicU64::new(loaded.get()),
            bytes_since: AtomicU64::new(0),
            writing: AtomicBool::new(false),
            writer: Mutex::new(()),
            background: Mutex::new(None),
            skipped,
            opened_from,
        }
    }

    /// Counts log bytes towards the `snapshot_every_bytes` trigger.
    pub(super) fn count_bytes(&self, bytes: u64) {
        self.bytes_since.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Coordinator {
    /// Writes a snapshot of every projection now; returns its LSN (records below it are in it).
    /// The live projections are not locked meanwhile: the snapshot is built from the newest
    /// snapshot on disk plus the log after it.
    ///
    /// # Errors
    /// Replaying the log after the newest snapshot fails as every [query](Coordinator#errors) does;
    /// [`Error::Io`] if the snapshot directory cannot be read or the snapshot cannot be written;
    /// [`Error::Encode`] if the state does not encode.
    pub fn snapshot(&self) -> Result<Lsn> {
        let _one_at_a_time = crate::log::lock(&self.snapshots.writer);
        let tail = self.log.next_lsn();
        let mut state = self.newest_snapshot_state()?;
        let position = match catch_up_at(&*self.log, &self.skips, &mut state, tail) {
            Ok((_, position)) => position,
            Err(Error::Compacted { .. }) => {
                // Another process compacted past the snapshot we loaded after writing a newer one.
                state = self.newest_snapshot_state()?;
                catch_up_at(&*self.log, &self.skips, &mut state, tail)?.1
            }
            Err(e) => return Err(e),
        };
        let mut image = state.to_image();
        let mut position =
            position.or_else(|| state.log_position().filter(|_| state.base_lsn() == Some(state.next_lsn)));
        while let Some(reason) = state.damage() {
            // The snapshot it stands on has a damaged block: build the image without it.
            if let Some(lsn) = state.base_lsn() {
                self.snapshots.store.mark_damaged(lsn, reason);
            }
            state = self.newest_snapshot_state()?;
            position = catch_up_at(&*self.log, &self.skips, &mut state, tail)?.1;
            image = state.to_image();
        }
        drop(state);
        let lsn = image.next_lsn;
        self.snapshots.store.write_with_position(&image, position)?;
        self.snapshots.last.fetch_max(lsn.get(), Ordering::AcqRel);
        Ok(lsn)
    }

    fn newest_snapshot_state(&self) -> Result<State> {
        let (state, _skipped) = self.snapshots.store.load(self.log.next_lsn())?;
        Ok(state.unwrap_or_else(State::new))
    }

    /// Waits until the background snapshot this coordinator (or a clone) started, if any, is
    /// written (or has failed: background failures are logged, not returned). Call it before a
    /// process exits to leave no snapshot half-written, and in tests to observe the automatic
    /// triggers without depending on how fast the snapshot thread runs.
    pub fn wait_for_snapshots(&self) {
        let handle = crate::log::lock(&self.snapshots.background).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("the background snapshot thread panicked");
            }
        }
    }

    /// Snapshots passed over since this coordinator opened the store because a read of one
    /// failed its checksum (found when first read, with
    /// [`check_whole_snapshot(false)`](crate::CoordinatorOptions::check_whole_snapshot)): the
    /// state was rebuilt without each, and the command that found it decided again.
    #[must_use]
    pub fn damaged_snapshots(&self) -> Vec<SkippedSnapshot> {
        self.snapshots.store.damaged()
    }

    /// Snapshots skipped as invalid when this coordinator opened the store.
    #[must_use]
    pub fn skipped_snapshots(&self) -> &[SkippedSnapshot] {
        &self.snapshots.skipped
    }

    /// The LSN of the snapshot this coordinator's state was loaded from when it opened the
    /// store (the records from it on were replayed), or `None` if it replayed the whole log
    /// (there was no usable snapshot).
    #[must_use]
    pub fn opened_from_snapshot(&self) -> Option<Lsn> {
        self.snapshots.opened_from
    }

    /// Starts a background snapshot once `snapshot_every` records or `snapshot_every_bytes`
    /// bytes passed since the last one.
    pub(super) fn maybe_snapshot(&self, next: Lsn) {
        let (every, every_bytes) = (self.opts.snapshot_every, self.opts.snapshot_every_bytes);
        let records = next.get().saturating_sub(self.snapshots.last.load(Ordering::Acquire));
        let bytes = self.snapshots.bytes_since.load(Ordering::Relaxed);
        let due = (every > 0 && records >= every) || (every_bytes > 0 && bytes >= every_bytes);
        if !due || self.snapshots.writing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.snapshots.bytes_since.store(0, Ordering::Relaxed);
        let known = self.snapshots.last.load(Ordering::Acquire);
        let coordinator = self.clone();
        let spawned = std::thread::Builder::new().name("maos-snapshot".into()).spawn(move || {
            coordinator.automatic_snapshot(Lsn(known), next);
            coordinator.snapshots.writing.store(false, Ordering::Release);
        });
        match spawned {
            Ok(handle) => {
                // The previous thread, if nobody waited for it, has finished: `writing` was
                // clear, so dropping its handle detaches nothing that still runs.
                *crate::log::lock(&self.snapshots.background) = Some(handle);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a snapshot thread");
                self.snapshots.writing.store(false, Ordering::Release);
            }
        }
    }
}

/// What an automatic snapshot trigger did ([`Coordinator::automatic_snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutomaticSnapshot {
    /// This process wrote a snapshot at this LSN (and brought the audit index up to date).
    Written(Lsn),
    /// Another process was writing one (it held the snapshot writer's lock): nothing done.
    OtherWriter,
    /// A snapshot newer than the one this process knew of appeared (at this LSN) meanwhile:
    /// another process wrote it, so nothing done.
    Newer(Lsn),
    /// The snapshot or its lock failed (logged); the next trigger tries again.
    Failed,
}

impl Coordinator {
    /// What a background snapshot thread does once the trigger is due: one automatic snapshot
    /// writer per store. It takes the snapshot writer's lock without waiting and returns if
    /// another process holds it; then, if a snapshot newer than `known` (the newest this
    /// process knew of when the trigger fired) appeared, it counts from that one and returns;
    /// otherwise it writes a snapshot and brings the audit index up to date. Processes whose
    /// records cross the threshold together (workers of one store) thus write one snapshot,
    /// not one each, and do not each hold the whole state decoded to write it.
    pub(super) fn automatic_snapshot(&self, known: Lsn, trigger: Lsn) -> AutomaticSnapshot {
        let done = match self.snapshots.store.try_lock_writer() {
            Ok(None) => AutomaticSnapshot::OtherWriter,
            Err(e) => {
                tracing::error!(error = %e, "cannot take the snapshot writer's lock");
                AutomaticSnapshot::Failed
            }
            Ok(Some(_lock)) => match self.snapshots.store.newest_header() {
                Ok(Some((newest, _))) if newest > known => AutomaticSnapshot::Newer(newest),
                Err(e) => {
                    tracing::error!(error = %e, "cannot list the snapshots");
                    AutomaticSnapshot::Failed
                }
                Ok(_) => match self.snapshot() {
                    Ok(lsn) => {
                        // The audit index is kept up to date at the same pace (derived data:
                        // a failure only leaves more of the log for audits to read).
                        self.update_index_in_background();
                        AutomaticSnapshot::Written(lsn)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "background snapshot failed");
                        AutomaticSnapshot::Failed
                    }
                },
            },
        };
        match done {
            // Count from the other writer's snapshot (or, while it writes, from the trigger:
            // its snapshot will be at least that new).
            AutomaticSnapshot::Newer(lsn) => self.snapshots.last.fetch_max(lsn.get(), Ordering::AcqRel),
            AutomaticSnapshot::OtherWriter => self.snapshots.last.fetch_max(trigger.get(), Ordering::AcqRel),
            AutomaticSnapshot::Written(_) | AutomaticSnapshot::Failed => 0,
        };
        done
    }
}
