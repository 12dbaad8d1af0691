//! The audit index (log-format.md, "Audit index"): for each fixed range of
//! [`CHUNK_SPAN`] LSNs, which records name each task, agent, context key and event type. An audit
//! that asks for a task's records reads the few records the index points to instead of decoding
//! the whole log.
//!
//! It is derived data, kept as blobs of [`BlobSpace::Index`] (one per range, a *chunk*): a chunk
//! that is missing is built again from the log, and one that fails a check is passed over (the
//! audit reads its range instead) and removed. Chunks are built only for ranges that are
//! complete and durable, whose records can never change; a reader checks every record the
//! index points to against the query, so a key that shares another's hash costs a decode, never a
//! wrong answer. This layer knows the blobs and the model, not the log: the coordinator reads the
//! records and hands them over.

use std::collections::{BTreeMap, BTreeSet};
use std::io::SeekFrom;
use std::sync::Arc;

use crate::backend::{BlobRead, BlobSpace, BlobStore, Commit};
use crate::error::{Error, Result};
use crate::format::entity_index::{
    chunk_name, chunk_of_name, decode_keys, decode_postings, encode, key_hash, ChunkHead, KeyKind, KEYS_AT,
};
use crate::model::{AgentId, AuditQuery, ContextKey, Recorded, TaskId};
use crate::types::Lsn;

pub use crate::format::entity_index::{chunk_start, CHUNK_SPAN};

/// The chunks of one store's audit index.
#[derive(Clone)]
pub struct AuditIndex {
    blobs: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for AuditIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditIndex").field("at", &self.blobs.space_location(BlobSpace::Index)).finish()
    }
}

/// The names a record is indexed under: its task, its actor and the agent it is about, its
/// context key, its type.
pub fn keys_of(recorded: &Recorded) -> impl Iterator<Item = (KeyKind, &str)> {
    let event = &recorded.event;
    [
        event.task().map(|t| (KeyKind::Task, t.as_str())),
        Some((KeyKind::Agent, recorded.actor.as_str())),
        event.subject_agent().filter(|a| **a != recorded.actor).map(|a| (KeyKind::Agent, a.as_str())),
        event.context_key().map(|k| (KeyKind::Context, k.as_str())),
        Some((KeyKind::Type, event.type_name())),
    ]
    .into_iter()
    .flatten()
}

/// The hashes a query looks up, one group per criterion that names something: a record is a
/// candidate when it is listed under a hash of every group.
fn groups_of(query: &AuditQuery) -> Vec<Vec<u64>> {
    let hashes =
        |kind: KeyKind, names: Vec<&str>| names.into_iter().map(|n| key_hash(kind, n)).collect::<Vec<_>>();
    [
        hashes(KeyKind::Task, query.tasks.iter().map(TaskId::as_str).collect()),
        hashes(KeyKind::Agent, query.agents.iter().map(AgentId::as_str).collect()),
        hashes(KeyKind::Context, query.keys.iter().map(ContextKey::as_str).collect()),
        hashes(KeyKind::Type, query.types.iter().map(String::as_str).collect()),
    ]
    .into_iter()
    .filter(|g| !g.is_empty())
    .collect()
}

/// A chunk being built from the records of its range, in LSN order.
#[derive(Debug)]
pub struct ChunkBuilder {
    first: Lsn,
    keys: BTreeMap<u64, Vec<u32>>,
}

impl ChunkBuilder {
    /// An empty chunk of the range that starts at `first` (a [`chunk_start`]).
    #[must_use]
    pub fn new(first: Lsn) -> ChunkBuilder {
        ChunkBuilder { first, keys: BTreeMap::new() }
    }

    /// The first LSN of its range.
    #[must_use]
    pub fn first(&self) -> Lsn {
        self.first
    }

    /// The LSN after its range.
    #[must_use]
    pub fn end(&self) -> Lsn {
        Lsn(self.first.get() + CHUNK_SPAN)
    }

    /// Indexes the record at `lsn` (inside the range, after every record added before).
    pub fn add(&mut self, lsn: Lsn, recorded: &Recorded) {
        let Some(offset) = lsn.get().checked_sub(self.first.get()).and_then(|o| u32::try_from(o).ok()) else {
            return;
        };
        for (kind, name) in keys_of(recorded) {
            let postings = self.keys.entry(key_hash(kind, name)).or_default();
            // Two names of one record may share a hash: list the record once.
            if postings.last() != Some(&offset) {
                postings.push(offset);
            }
        }
    }
}

/// A chunk being written: [`AuditIndex::create`].
pub struct NewChunk {
    builder: ChunkBuilder,
    blob: Box<dyn crate::backend::BlobWrite>,
    location: std::path::PathBuf,
}

impl NewChunk {
    /// The records of its range: [`ChunkBuilder`].
    pub fn builder(&mut self) -> &mut ChunkBuilder {
        &mut self.builder
    }

    /// Writes the chunk and puts it in place.
    ///
    /// # Errors
    /// As the blob store's writes.
    pub fn commit(self) -> Result<()> {
        let NewChunk { builder, mut blob, location } = self;
        std::io::Write::write_all(&mut blob, &encode(builder.first, &builder.keys))
            .map_err(|e| Error::io("write", location, e))?;
        blob.commit(Commit::Replace)?;
        Ok(())
    }
}

impl AuditIndex {
    /// The audit index kept among `blobs`.
    #[must_use]
    pub fn new(blobs: Arc<dyn BlobStore>) -> AuditIndex {
        AuditIndex { blobs }
    }

    /// The first LSNs of the chunks there are (whether they check out or not).
    ///
    /// # Errors
    /// As the blob store's [`list`](BlobStore::list).
    pub fn chunks(&self) -> Result<BTreeSet<Lsn>> {
        Ok(self.blobs.list(BlobSpace::Index)?.iter().filter_map(|n| chunk_of_name(n)).collect())
    }

    /// Starts writing the chunk starting at `first` (a [`chunk_start`]): its records are then
    /// added in LSN order, and [`NewChunk::commit`] puts it in place, replacing one of the same
    /// range (chunks of one range built from the same records are identical). Made before the
    /// records are read, so that a reader who may not write the store finds out at once.
    ///
    /// # Errors
    /// As the blob store's [`create`](BlobStore::create).
    pub fn create(&self, first: Lsn) -> Result<NewChunk> {
        let name = chunk_name(first);
        let blob = self.blobs.create(BlobSpace::Index, &name)?;
        let location = self.blobs.location(BlobSpace::Index, &name);
        Ok(NewChunk { builder: ChunkBuilder::new(first), blob, location })
    }

    /// Removes the chunk starting at `first`; false if there was none.
    ///
    /// # Errors
    /// As the blob store's [`delete`](BlobStore::delete).
    pub fn remove(&self, first: Lsn) -> Result<bool> {
        self.blobs.delete(BlobSpace::Index, &chunk_name(first))
    }

    /// The LSNs the chunk starting at `first` lists for `query` (sorted): every record of its
    /// range that may match (each still to be checked against the query). `None` if there is no
    /// such chunk, or it fails a check (it is then removed, to be built again, and a warning
    /// logged). A query that names nothing is answered `None`: the index cannot narrow it.
    ///
    /// # Errors
    /// As the blob store's [`open`](BlobStore::open), and reading the blob.
    pub fn lookup(&self, first: Lsn, query: &AuditQuery) -> Result<Option<Vec<Lsn>>> {
        let groups = groups_of(query);
        if groups.is_empty() {
            return Ok(None);
        }
        let name = chunk_name(first);
        let Some(mut blob) = self.blobs.open(BlobSpace::Index, &name)? else { return Ok(None) };
        let location = || self.blobs.location(BlobSpace::Index, &name);
        match read_candidates(&mut *blob, first, &groups) {
            Ok(Ok(lsns)) => Ok(Some(lsns)),
            Ok(Err(reason)) => {
                tracing::warn!(chunk = %location().display(), %reason, "passing over a damaged audit index chunk");
                drop(blob);
                if let Err(e) = self.remove(first) {
                    tracing::warn!(chunk = %location().display(), error = %e, "cannot remove it");
                }
                Ok(None)
            }
            Err(e) => Err(Error::io("read", location(), e)),
        }
    }
}

/// The candidates of a chunk: the inner error says what is wrong with the chunk, the outer one is
/// a failed read.
fn read_candidates(
    blob: &mut dyn BlobRead,
    first: Lsn,
    groups: &[Vec<u64>],
) -> std::io::Result<std::result::Result<Vec<Lsn>, String>> {
    let len = blob.seek(SeekFrom::End(0))?;
    let mut head = vec![0u8; KEYS_AT];
    if len < KEYS_AT as u64 {
        return Ok(Err(format!("{len} bytes, shorter than a header")));
    }
    read_at(blob, 0, &mut head)?;
    let head = match ChunkHead::decode(&head, first, len) {
        Ok(head) => head,
        Err(reason) => return Ok(Err(reason)),
    };
    // Postings are sorted: unions and intersections are merges. A criterion that leaves no
    // candidate ends the lookup.
    let mut found: Option<Vec<Lsn>> = None;
    for group in groups {
        let mut union: Vec<Lsn> = Vec::new();
        for &hash in group {
            match postings(blob, &head, hash)? {
                Ok(lsns) => union = merge(&union, &lsns, true),
                Err(reason) => return Ok(Err(reason)),
            }
        }
        let narrowed = match found {
            None => union,
            Some(before) => merge(&before, &union, false),
        };
        let none = narrowed.is_empty();
        found = Some(narrowed);
        if none {
            break;
        }
    }
    Ok(Ok(found.unwrap_or_default()))
}

/// The union (`union`) or the intersection of two sorted lists, sorted, without repeats.
fn merge(left: &[Lsn], right: &[Lsn], union: bool) -> Vec<Lsn> {
    let mut out =
        Vec::with_capacity(if union { left.len() + right.len() } else { left.len().min(right.len()) });
    let (mut lefts, mut rights) = (left.iter().peekable(), right.iter().peekable());
    loop {
        let next = match (lefts.peek(), rights.peek()) {
            (Some(l), Some(r)) if l < r => lefts.next().filter(|_| union),
            (Some(l), Some(r)) if l > r => rights.next().filter(|_| union),
            (Some(_), Some(_)) => {
                rights.next();
                lefts.next()
            }
            (Some(_), None) if union => lefts.next(),
            (None, Some(_)) if union => rights.next(),
            _ => break,
        };
        if let Some(&lsn) = next {
            if out.last() != Some(&lsn) {
                out.push(lsn);
            }
        }
    }
    out
}

/// The LSNs listed under `hash`.
fn postings(
    blob: &mut dyn BlobRead,
    head: &ChunkHead,
    hash: u64,
) -> std::io::Result<std::result::Result<Vec<Lsn>, String>> {
    let (range, crc) = head.bucket_of(hash);
    let mut bytes = vec![0u8; usize::try_from(range.end - range.start).unwrap_or(0)];
    read_at(blob, range.start, &mut bytes)?;
    let keys = match decode_keys(&bytes, crc) {
        Ok(keys) => keys,
        Err(reason) => return Ok(Err(reason)),
    };
    let Some(key) = keys.iter().find(|k| k.hash == hash) else { return Ok(Ok(Vec::new())) };
    let Some(range) = head.postings_of(key) else {
        return Ok(Err(format!("the postings of key {:#018x} lie outside the chunk", key.hash)));
    };
    let mut bytes = vec![0u8; usize::try_from(range.end - range.start).unwrap_or(0)];
    read_at(blob, range.start, &mut bytes)?;
    Ok(decode_postings(&bytes, key, head.first))
}

fn read_at(blob: &mut dyn BlobRead, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    blob.seek(SeekFrom::Start(offset))?;
    blob.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_are_sorted_unions_and_intersections() {
        let l = |v: &[u64]| v.iter().map(|&n| Lsn(n)).collect::<Vec<_>>();
        assert_eq!(merge(&l(&[1, 3, 5, 7]), &l(&[2, 3, 8]), true), l(&[1, 2, 3, 5, 7, 8]));
        assert_eq!(merge(&l(&[1, 3, 5, 7]), &l(&[2, 3, 7, 8]), false), l(&[3, 7]));
        assert_eq!(merge(&l(&[]), &l(&[2]), true), l(&[2]));
        assert_eq!(merge(&l(&[]), &l(&[2]), false), l(&[]));
        assert_eq!(merge(&l(&[4]), &l(&[]), true), l(&[4]));
    }
}
