//! A backend in memory: a log that is a vector of records and blobs that are a map, shared by
//! every handle made from it and gone with the process. For tests, and for programs that want
//! the coordination API without a store on disk.
//!
//! Its compare-and-append is optimistic, as a remote log's is: the builder runs without a
//! lock, and the batch goes in only if the tail is still the one the builder saw; otherwise it
//! runs again on the newer tail ([`MemoryLog::conflicts`] counts how often). Commands on it are
//! therefore decided again when another writer beat them, as they will be on a distributed log.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::{
    Backend, BlobRead, BlobSpace, BlobStore, BlobWrite, BoxFuture, Build, Commit, LogBackend, RecordRead,
    Records,
};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::{Appended, KeyedCompaction, Record, RefusedKinds};
use crate::types::{Lsn, RecordKind, Timestamp};

/// Largest payload of one record of a [`MemoryLog`] by default (1 MiB, as the file log's).
pub const MEMORY_MAX_RECORD: u32 = 1 << 20;

impl Backend {
    /// A new, empty backend in memory ([`MemoryLog`], [`MemoryBlobs`]) whose records are timed
    /// by the system clock.
    #[must_use]
    pub fn memory() -> Backend {
        Backend::memory_with_clock(crate::clock::system())
    }

    /// A new, empty backend in memory whose records are timed by `clock`: give it the clock of
    /// the coordinator's options ([`CoordinatorOptions::clock`](crate::CoordinatorOptions::clock))
    /// when a test moves time, as the file log is given it.
    #[must_use]
    pub fn memory_with_clock(clock: Arc<dyn Clock>) -> Backend {
        Backend { log: Arc::new(MemoryLog::with_clock(clock)), blobs: Arc::new(MemoryBlobs::new()) }
    }
}

/// One record as kept.
struct Stored {
    lsn: Lsn,
    timestamp: Timestamp,
    kind: RecordKind,
    payload: Vec<u8>,
}

impl Stored {
    fn record(&self) -> Record<'_> {
        Record { lsn: self.lsn, timestamp: self.timestamp, kind: self.kind, payload: &self.payload }
    }
}

/// The records: the log from `first`, and those a keyed compaction kept.
struct Held {
    first: Lsn,
    log: Vec<Arc<Stored>>,
    kept: Vec<Arc<Stored>>,
    /// The time of the last record: a record is never timed before it.
    last_time: Timestamp,
}

impl Held {
    fn next_lsn(&self) -> Lsn {
        Lsn::new(self.first.get() + self.log.len() as u64)
    }

    fn at(&self, lsn: Lsn) -> Option<&Arc<Stored>> {
        let index = usize::try_from(lsn.get().checked_sub(self.first.get())?).ok()?;
        self.log.get(index)
    }
}

struct Shared {
    records: RwLock<Held>,
    appended: tokio::sync::Notify,
    conflicts: AtomicU64,
    /// Run once, between the builder of the next compare-and-append and its commit.
    before_commit: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// One compaction at a time.
    compacting: Mutex<()>,
    clock: Arc<dyn Clock>,
}

/// A log in memory. Clones are handles to the same log.
#[derive(Clone)]
pub struct MemoryLog {
    shared: Arc<Shared>,
    reserved: RefusedKinds,
    max_record: u32,
}

impl Default for MemoryLog {
    fn default() -> MemoryLog {
        MemoryLog::new()
    }
}

impl MemoryLog {
    /// An empty log whose records are timed by the system clock.
    #[must_use]
    pub fn new() -> MemoryLog {
        MemoryLog::with_clock(crate::clock::system())
    }

    /// An empty log whose records are timed by `clock`.
    #[must_use]
    pub fn with_clock(clock: Arc<dyn Clock>) -> MemoryLog {
        MemoryLog {
            shared: Arc::new(Shared {
                records: RwLock::new(Held {
                    first: Lsn::FIRST,
                    log: Vec::new(),
                    kept: Vec::new(),
                    last_time: Timestamp::from_micros(0),
                }),
                appended: tokio::sync::Notify::new(),
                conflicts: AtomicU64::new(0),
                before_commit: Mutex::new(None),
                compacting: Mutex::new(()),
                clock,
            }),
            reserved: RefusedKinds::default(),
            max_record: MEMORY_MAX_RECORD,
        }
    }

    /// How many compare-and-appends found that another writer had appended since their builder
    /// saw the tail, and ran it again.
    #[must_use]
    pub fn conflicts(&self) -> u64 {
        self.shared.conflicts.load(Ordering::Relaxed)
    }

    /// Runs `hook` once, after the builder of the next compare-and-append returns and before
    /// its batch is committed: a test appends there to make that compare-and-append lose.
    pub fn before_next_commit(&self, hook: impl FnOnce() + Send + 'static) {
        *crate::log::lock(&self.shared.before_commit) = Some(Box::new(hook));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.shared.records.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.shared.records.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks a batch: kinds this handle refuses, record sizes.
    fn check(&self, records: &Records) -> Result<()> {
        if let Some((kind, _)) = records.iter().find(|(kind, _)| self.reserved.contains(kind.get())) {
            return Err(Error::ReservedKind { kind: kind.get() });
        }
        if let Some((_, payload)) = records.iter().find(|(_, p)| p.len() > self.max_record as usize) {
            return Err(Error::RecordTooLarge { size: payload.len(), max: self.max_record });
        }
        Ok(())
    }

    /// Appends `records` if the tail is `expected` (any tail for `None`).
    fn commit(&self, expected: Option<Lsn>, records: Records) -> std::result::Result<Appended, Records> {
        let mut log = self.write();
        let first = log.next_lsn();
        if expected.is_some_and(|tail| tail != first) {
            return Err(records);
        }
        let timestamp = self.shared.clock.now().max(log.last_time);
        log.last_time = timestamp;
        let count = records.len() as u64;
        for (i, (kind, payload)) in (0u64..).zip(records) {
            let lsn = Lsn::new(first.get() + i);
            log.log.push(Arc::new(Stored { lsn, timestamp, kind, payload }));
        }
        drop(log);
        self.shared.appended.notify_waiters();
        Ok(Appended { first, count, time: (count > 0).then_some(timestamp) })
    }
}

/// A reader of a [`MemoryLog`]: the record it lends is the one it holds.
struct MemoryReader {
    log: MemoryLog,
    next: Lsn,
    /// The records a keyed compaction kept still to read, for an audit reader.
    kept: std::vec::IntoIter<Arc<Stored>>,
    /// An audit reader passes over records compacted away while it reads (they are gaps for
    /// it); a dense reader reports them ([`Error::Compacted`]).
    audit: bool,
    current: Option<Arc<Stored>>,
}

impl RecordRead for MemoryReader {
    fn next(&mut self) -> Result<Option<Record<'_>>> {
        if let Some(kept) = self.kept.next() {
            self.current = Some(kept);
        } else {
            let records = self.log.read();
            if self.next < records.first {
                if !self.audit {
                    return Err(Error::Compacted { requested: self.next, first: records.first });
                }
                self.next = records.first;
            }
            let found = records.at(self.next).cloned();
            drop(records);
            let Some(found) = found else { return Ok(None) };
            self.next = found.lsn.next();
            self.current = Some(found);
        }
        Ok(self.current.as_deref().map(Stored::record))
    }

    fn position(&self) -> Lsn {
        self.kept.as_slice().first().map_or(self.next, |kept| kept.lsn)
    }

    fn last_location(&self) -> (PathBuf, u64) {
        (PathBuf::from("memory"), self.current.as_ref().map_or(0, |s| s.lsn.get()))
    }
}

impl LogBackend for MemoryLog {
    fn next_lsn(&self) -> Lsn {
        self.read().next_lsn()
    }

    fn first_lsn(&self) -> Result<Lsn> {
        Ok(self.read().first)
    }

    /// Nothing of a memory log survives the process: every record is as durable as it will be
    /// once appended.
    fn durable_lsn(&self) -> Lsn {
        self.next_lsn()
    }

    fn max_record_size(&self) -> u32 {
        self.max_record
    }

    fn reader_from(&self, lsn: Lsn) -> Result<Box<dyn RecordRead>> {
        let records = self.read();
        if lsn < records.first {
            return Err(Error::Compacted { requested: lsn, first: records.first });
        }
        if lsn > records.next_lsn() {
            return Err(Error::InvalidArgument {
                name: "lsn",
                reason: format!("LSN {lsn} is past the tail (the next LSN is {})", records.next_lsn()),
            });
        }
        drop(records);
        Ok(Box::new(MemoryReader {
            log: self.clone(),
            next: lsn,
            kept: Vec::new().into_iter(),
            audit: false,
            current: None,
        }))
    }

    fn audit_reader(&self) -> Result<Box<dyn RecordRead>> {
        let records = self.read();
        let kept = records.kept.clone();
        let next = records.first;
        drop(records);
        Ok(Box::new(MemoryReader {
            log: self.clone(),
            next,
            kept: kept.into_iter(),
            audit: true,
            current: None,
        }))
    }

    fn wait_for(&self, lsn: Lsn, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let waiting = async {
                loop {
                    // Registered before the look, so an append between the two still wakes it.
                    let appended = self.shared.appended.notified();
                    if self.next_lsn() > lsn {
                        return;
                    }
                    appended.await;
                }
            };
            tokio::time::timeout(timeout, waiting).await.is_ok()
        })
    }

    fn compare_and_append(&self, mut build: Build) -> BoxFuture<'_, Result<Appended>> {
        Box::pin(async move {
            loop {
                let tail = self.next_lsn();
                let records = build(tail)?;
                self.check(&records)?;
                let hook = crate::log::lock(&self.shared.before_commit).take();
                if let Some(hook) = hook {
                    hook();
                }
                match self.commit(Some(tail), records) {
                    Ok(appended) => return Ok(appended),
                    Err(_) => {
                        self.shared.conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    }

    fn append_records(&self, records: Records) -> Result<Appended> {
        self.check(&records)?;
        self.commit(None, records).map_err(|_| Error::internal("an unconditional append met a condition"))
    }

    fn discard_before(&self, limit: Lsn, _archive: Option<&Path>) -> Result<Vec<PathBuf>> {
        let _one = crate::log::lock(&self.shared.compacting);
        let mut records = self.write();
        Ok(drop_prefix(&mut records, limit).into_iter().collect())
    }

    /// Keeps the records `keep` says yes to, of those an earlier keyed compaction kept and of
    /// the prefix below `limit`, then drops the prefix. `keep` runs without the log's lock (it
    /// may read the log); compactions run one at a time.
    fn compact_keyed(
        &self,
        limit: Lsn,
        _archive: Option<&Path>,
        keep: &mut dyn FnMut(&Record<'_>) -> Result<bool>,
    ) -> Result<KeyedCompaction> {
        let _one = crate::log::lock(&self.shared.compacting);
        let (limit, candidates) = {
            let records = self.read();
            let limit = limit.min(records.next_lsn());
            if limit <= records.first {
                return Ok(KeyedCompaction::default());
            }
            let below = |s: &&Arc<Stored>| s.lsn < limit;
            let candidates: Vec<Arc<Stored>> =
                records.kept.iter().chain(records.log.iter().take_while(below)).cloned().collect();
            (limit, candidates)
        };
        let mut kept = Vec::new();
        for stored in &candidates {
            if keep(&stored.record())? {
                kept.push(stored.clone());
            }
        }
        let mut records = self.write();
        let removed = drop_prefix(&mut records, limit);
        let kept_count = kept.len() as u64;
        records.kept = kept;
        Ok(KeyedCompaction {
            new_start: Some(limit),
            examined: candidates.len() as u64,
            kept: kept_count,
            removed: removed.into_iter().collect(),
        })
    }

    fn reserving(&self, kinds: RangeInclusive<u16>) -> Arc<dyn LogBackend> {
        Arc::new(MemoryLog { reserved: self.reserved.and(kinds), ..self.clone() })
    }

    fn close(self: Arc<Self>) -> Result<()> {
        Ok(())
    }
}

/// Blobs in memory. Clones are handles to the same blobs.
#[derive(Clone, Default)]
pub struct MemoryBlobs {
    blobs: Arc<Mutex<BTreeMap<BlobKey, Arc<Vec<u8>>>>>,
}

/// A blob's space and name.
type BlobKey = (BlobSpace, String);

impl MemoryBlobs {
    /// No blobs.
    #[must_use]
    pub fn new() -> MemoryBlobs {
        MemoryBlobs::default()
    }
}

/// Drops the records below `limit` (compactions hold `compacting`, so the prefix is the one the
/// caller looked at); what was dropped, as its range.
fn drop_prefix(records: &mut Held, limit: Lsn) -> Option<PathBuf> {
    let limit = limit.min(records.next_lsn());
    let count = usize::try_from(limit.get().saturating_sub(records.first.get())).ok()?;
    if count == 0 {
        return None;
    }
    let removed = PathBuf::from(format!("memory records {}..{limit}", records.first));
    records.log.drain(..count);
    records.first = limit;
    Some(removed)
}

/// A blob being written to a [`MemoryBlobs`].
struct MemoryBlob {
    blobs: MemoryBlobs,
    key: (BlobSpace, String),
    bytes: Vec<u8>,
}

impl Write for MemoryBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BlobWrite for MemoryBlob {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let written = self.bytes.len();
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(bytes.len())?))
            .filter(|range| range.end <= written);
        let Some(target) = range.and_then(|range| self.bytes.get_mut(range)) else {
            return Err(Error::InvalidArgument {
                name: "offset",
                reason: format!(
                    "{} bytes at offset {offset} run past the {written} bytes written",
                    bytes.len()
                ),
            });
        };
        target.copy_from_slice(bytes);
        Ok(())
    }

    fn commit(self: Box<Self>, mode: Commit) -> Result<bool> {
        let MemoryBlob { blobs, key, bytes } = *self;
        let mut map = crate::log::lock(&blobs.blobs);
        if mode == Commit::New && map.contains_key(&key) {
            return Ok(false);
        }
        map.insert(key, Arc::new(bytes));
        Ok(true)
    }
}

impl BlobStore for MemoryBlobs {
    fn create(&self, space: BlobSpace, name: &str) -> Result<Box<dyn BlobWrite>> {
        Ok(Box::new(MemoryBlob { blobs: self.clone(), key: (space, name.to_owned()), bytes: Vec::new() }))
    }

    fn open(&self, space: BlobSpace, name: &str) -> Result<Option<Box<dyn BlobRead>>> {
        let bytes = crate::log::lock(&self.blobs).get(&(space, name.to_owned())).cloned();
        Ok(bytes.map(|bytes| Box::new(Cursor::new(bytes.to_vec())) as Box<dyn BlobRead>))
    }

    fn list(&self, space: BlobSpace) -> Result<Vec<String>> {
        let map = crate::log::lock(&self.blobs);
        Ok(map.keys().filter(|(s, _)| *s == space).map(|(_, name)| name.clone()).collect())
    }

    fn delete(&self, space: BlobSpace, name: &str) -> Result<bool> {
        Ok(crate::log::lock(&self.blobs).remove(&(space, name.to_owned())).is_some())
    }

    fn sweep(&self, _space: BlobSpace) -> Result<()> {
        Ok(())
    }

    fn sync_space(&self, _space: BlobSpace) -> Result<()> {
        Ok(())
    }

    fn location(&self, space: BlobSpace, name: &str) -> PathBuf {
        PathBuf::from(format!("memory:{}/{name}", space.name()))
    }

    fn space_location(&self, space: BlobSpace) -> PathBuf {
        PathBuf::from(format!("memory:{}", space.name()))
    }
}
