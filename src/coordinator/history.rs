//! A store's history for tools: audits, timelines and time travel without opening a
//! coordinator (no state is loaded, no lock taken, the log opened for reading only), and the
//! upkeep of the audit index.

use std::sync::Arc;

use super::audit::{HistoryEntry, Sources};
use super::repair::Skips;
use super::time_travel::{state_at, AsOf};
use super::{store, store_dir, Coordinator, CoordinatorOptions};
use crate::audit_index::{chunk_start, AuditIndex, CHUNK_SPAN};
use crate::backend::{BlobStore, DirBlobs, LogBackend};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fs::names;
use crate::log::Log;
use crate::model::{AuditQuery, Viewer, COORDINATION_KINDS, EVENT_RECORD_KIND};
use crate::projection::State;
use crate::snapshot::Snapshots;
use crate::types::{Lsn, Timestamp};

/// The history of a store, read-only: the state as of any point ([`StoreHistory::state_at`])
/// and audit trails ([`StoreHistory::audit`]). Made by [`CoordinatorOptions::open_history`]
/// (which loads no state and opens the log for reading only: users who may only read the store
/// can use it) or [`Coordinator::store_history`]. Cheap to clone.
///
/// It writes nothing but chunks of the audit index, which is derived data: before an audit it
/// builds the chunks the log completed since (unless [`StoreHistory::use_index`] says not to),
/// and when it may not write them it answers from the log alone.
#[derive(Clone)]
pub struct StoreHistory {
    log: Arc<dyn LogBackend>,
    snapshots: Snapshots,
    index: AuditIndex,
    skips: Arc<Skips>,
    clock: Arc<dyn Clock>,
    use_index: bool,
}

impl std::fmt::Debug for StoreHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHistory")
            .field("snapshots", &self.snapshots)
            .field("index", &self.index)
            .field("use_index", &self.use_index)
            .finish_non_exhaustive()
    }
}

/// What [`StoreHistory::update_index`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexUpdate {
    /// The chunks built (by their first LSN).
    pub built: Vec<Lsn>,
    /// The chunks removed because compaction removed every record of their range.
    pub removed: Vec<Lsn>,
    /// Records below this LSN are covered by chunks (where the log still holds them); the
    /// records from it to the tail are read whole by audits.
    pub covered_until: Lsn,
}

impl CoordinatorOptions {
    /// Opens the history of the existing store in `<root>/.maos/coordination/`, for reading:
    /// nothing is created (no store: [`Error::NoStore`]), no state is loaded, the log is opened
    /// read-only ([`LogOptions::read_only`](crate::LogOptions::read_only): a torn tail is left as
    /// it is), and only the audit index is ever written. The options' clock decides what has
    /// expired; the other options are not used.
    ///
    /// # Errors
    /// [`Error::NoStore`] if there is no store; [`Error::InsecurePermissions`] for a store others may
    /// write to (unless allowed); opening the log fails as [`LogOptions::open`](crate::LogOptions::open)
    /// does for a read-only open.
    pub fn open_history(self) -> Result<StoreHistory> {
        let dir = store_dir(&self.root);
        if !store::exists(&dir)? {
            return Err(Error::NoStore { dir });
        }
        let access = super::checked_access(&dir, self.allow_insecure_permissions)?;
        let log = Log::options(dir.join(names::LOG_DIR))
            .access(access)
            .allow_insecure_permissions(self.allow_insecure_permissions)
            .permissions_checked()
            .reserve_kinds(COORDINATION_KINDS)
            .read_only()
            .open()?;
        let blobs: Arc<dyn BlobStore> = Arc::new(DirBlobs::new(&dir));
        Ok(StoreHistory {
            log: Arc::new(log),
            snapshots: Snapshots::new(blobs.clone(), self.keep_snapshots),
            index: AuditIndex::new(blobs),
            skips: Arc::default(),
            clock: self.clock,
            use_index: true,
        })
    }
}

impl Coordinator {
    /// The history of this coordinator's store ([`StoreHistory`]), sharing its log.
    #[must_use]
    pub fn store_history(&self) -> StoreHistory {
        StoreHistory {
            log: self.log.clone(),
            snapshots: self.snapshots.store.clone(),
            index: AuditIndex::new(self.blobs.clone()),
            skips: self.skips.clone(),
            clock: self.opts.clock.clone(),
            use_index: true,
        }
    }

    /// The whole state as of `as_of` (time travel): [`StoreHistory::state_at`].
    ///
    /// # Errors
    /// As [`StoreHistory::state_at`].
    pub fn state_at(&self, as_of: AsOf) -> Result<State> {
        self.store_history().state_at(as_of)
    }

    /// Builds the chunks of the audit index the log completed since it was last brought up to
    /// date, on the snapshot thread; failures are logged.
    pub(super) fn update_index_in_background(&self) {
        if let Err(e) = self.store_history().update_index() {
            tracing::warn!(error = %e, "cannot bring the audit index up to date");
        }
    }
}

impl StoreHistory {
    /// The same history, using the audit index or not (default: used, and brought up to date
    /// before each audit). Without it, an audit reads every record the store holds; the answer is
    /// the same.
    #[must_use]
    pub fn use_index(mut self, use_index: bool) -> StoreHistory {
        self.use_index = use_index;
        self
    }

    /// The log underneath.
    #[must_use]
    pub fn log(&self) -> &dyn LogBackend {
        &*self.log
    }

    /// The time reads decide expiry with: the clock, never before the time of the last record.
    ///
    /// # Errors
    /// As reading the log's last record.
    pub fn now(&self) -> Result<Timestamp> {
        let tail = self.log.next_lsn();
        let mut last = Timestamp::from_micros(i64::MIN);
        if tail > self.log.first_lsn()? {
            if let Some(record) = self.log.reader_from(Lsn(tail.get() - 1))?.next()? {
                last = record.timestamp;
            }
        }
        Ok(self.clock.now().max(last))
    }

    /// The whole state as of `as_of` (time travel): the fold of every record up to that point
    /// ([`State::apply`], as the live state), starting from the newest snapshot at or before it
    /// when there is one. Its [`State::next_lsn`] is the LSN after the point's last record.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an LSN past the log's last record; [`Error::Compacted`] if
    /// the records up to the point start before the log does and no snapshot covers them;
    /// reading the snapshots and the log fails as every [query](Coordinator#errors) does.
    pub fn state_at(&self, as_of: AsOf) -> Result<State> {
        state_at(&*self.log, &self.skips, &self.snapshots, as_of)
    }

    /// Every record that matches `query`, oldest first, as `viewer` may see it now
    /// ([`Coordinator::audit`], without the check that the reader is a registered agent). The
    /// audit index is brought up to date first (unless [`StoreHistory::use_index`] turned it
    /// off); if that fails (a reader who may not write the store), the audit reads the log where
    /// the index does not cover it.
    ///
    /// # Errors
    /// As [`Coordinator::audit`].
    pub fn audit(&self, query: &AuditQuery, viewer: &Viewer) -> Result<Vec<HistoryEntry>> {
        if self.use_index {
            if let Err(e) = self.update_index() {
                tracing::info!(error = %e, "the audit index is not up to date: reading the log where it falls short");
            }
        }
        let now = self.now()?;
        let index = self.use_index.then_some(&self.index);
        Sources { log: &*self.log, skips: &self.skips, index }.audit(query, viewer, now)
    }

    /// Brings the audit index up to date: builds every chunk of the log that is complete and
    /// durable (below [`LogBackend::durable_lsn`], so that no crash can change its records) and
    /// missing, and removes the chunks whose records compaction removed.
    ///
    /// # Errors
    /// Reading the log fails as every [query](Coordinator#errors) does (a coordination record of a
    /// chunk that does not decode and that no tombstone skips stops it:
    /// [`Error::UndecodableRecord`]); writing or removing a chunk as the blob store's writes.
    pub fn update_index(&self) -> Result<IndexUpdate> {
        let start = self.log.audit_log_start()?;
        let durable = self.log.durable_lsn().min(self.log.next_lsn());
        let present = self.index.chunks()?;
        let mut update = IndexUpdate::default();
        for &chunk in &present {
            if chunk.get() + CHUNK_SPAN <= start.get() && self.index.remove(chunk)? {
                update.removed.push(chunk);
            }
        }
        let mut chunk = chunk_start(start);
        while chunk.get() + CHUNK_SPAN <= durable.get() {
            if !present.contains(&chunk) {
                self.build(chunk, start)?;
                update.built.push(chunk);
            }
            chunk = Lsn(chunk.get() + CHUNK_SPAN);
        }
        update.covered_until = chunk.max(start);
        Ok(update)
    }

    /// Builds the chunk starting at `chunk` from the records the log holds of it (from `start`
    /// on: those below are not the log's any more).
    fn build(&self, chunk: Lsn, start: Lsn) -> Result<()> {
        let mut new = self.index.create(chunk)?;
        let builder = new.builder();
        let mut reader = self.log.reader_from(chunk.max(start))?;
        while reader.position() < builder.end() {
            let Some(record) = reader.next()? else { break };
            if record.kind.get() != EVENT_RECORD_KIND {
                continue;
            }
            let lsn = record.lsn;
            match self.skips.decode(&*self.log, lsn, record.payload) {
                Ok(Some(recorded)) => builder.add(lsn, &recorded),
                Ok(None) => {}
                Err(e) => return Err(e.at(reader.last_location())),
            }
        }
        new.commit()
    }
}
