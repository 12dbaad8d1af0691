//! Snapshots: every projection as of one LSN, so that opening a store replays only the records
//! after it (log-format.md, "Snapshots"). Written to a temporary file, synced, renamed, directory
//! synced; the newest `keep` are kept. A snapshot that does not check out is skipped with a
//! warning, falling back to the one before it or to a full replay.

use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{BlobSpace, BlobStore, Commit};
use crate::error::{Error, Result};
use crate::projection::{State, StateImage};
use crate::types::{Lsn, Timestamp};

#[doc(hidden)]
pub mod fuzzing;
mod mapped;
mod sections;
#[cfg(test)]
mod tests;
mod v1;

use crate::format::snapshot::{SnapshotHeader, SNAPSHOT_HEADER_LEN as HEADER_LEN};
pub use crate::format::snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use crate::format::Damage;

/// The snapshots of one store: blobs of [`BlobSpace::Snapshots`] named `<20-digit LSN>.snap`.
#[derive(Clone)]
pub struct Snapshots {
    blobs: Arc<dyn BlobStore>,
    keep: usize,
    /// Snapshots a read of which failed after they were opened (a block that fails its
    /// checksum): [`Snapshots::load`] passes over them from then on.
    damaged: Arc<std::sync::Mutex<std::collections::BTreeMap<Lsn, String>>>,
    /// Whether loading checks every block of a version-3 snapshot.
    check_whole: bool,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("at", &self.blobs.space_location(BlobSpace::Snapshots))
            .field("keep", &self.keep)
            .field("check_whole", &self.check_whole)
            .field("damaged", &crate::log::lock(&self.damaged).keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A snapshot that was skipped when loading, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSnapshot {
    /// Where it is (its file, in a local store).
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// The blob name of the snapshot of `lsn`.
fn name_of(lsn: Lsn) -> String {
    format!("{:020}.snap", lsn.get())
}

impl Snapshots {
    /// The snapshots among `blobs`, keeping the newest `keep` (at least 1).
    #[must_use]
    pub fn new(blobs: Arc<dyn BlobStore>, keep: usize) -> Snapshots {
        Snapshots { blobs, keep: keep.max(1), damaged: Arc::default(), check_whole: true }
    }

    /// The blobs the snapshots are kept among.
    #[must_use]
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Snapshots, newest (highest LSN) first: their LSN and blob name.
    ///
    /// # Errors
    /// As the blob store's [`list`](BlobStore::list) (locally [`Error::Io`] if the directory cannot be read).
    pub fn list(&self) -> Result<Vec<(Lsn, String)>> {
        let mut found = Vec::new();
        for name in self.blobs.list(BlobSpace::Snapshots)? {
            let Some(digits) = name.strip_suffix(".snap") else { continue };
            if let Ok(lsn) = digits.parse::<u64>() {
                found.push((Lsn(lsn), name));
            }
        }
        found.sort_by_key(|(lsn, _)| std::cmp::Reverse(*lsn));
        Ok(found)
    }

    /// Takes the lock that admits one automatic snapshot writer per store, without waiting;
    /// `None` if another holds it ([`BlobStore::try_lock_writer`]).
    ///
    /// # Errors
    /// As the blob store's [`try_lock_writer`](BlobStore::try_lock_writer).
    pub fn try_lock_writer(&self) -> Result<Option<crate::backend::WriterLock>> {
        self.blobs.try_lock_writer(BlobSpace::Snapshots)
    }

    /// Where the snapshot blob `name` lives, for messages.
    #[must_use]
    pub fn location(&self, name: &str) -> PathBuf {
        self.blobs.location(BlobSpace::Snapshots, name)
    }

    /// Writes a snapshot of `state` durably and removes all but the newest `keep`; returns where
    /// it lives. The body's sections are built in memory (log-format.md, "Body, version 3": the
    /// directory's block checksums cover them all), then the header and the body are written in
    /// one pass.
    ///
    /// # Errors
    /// As the blob store's writes (locally [`Error::Io`] if the snapshot cannot be written, synced and
    /// renamed into place, or an older one cannot be removed); [`Error::Encode`] if rmp-serde refuses to
    /// encode the state.
    pub fn write(&self, state: &StateImage) -> Result<PathBuf> {
        self.write_with_position(state, None)
    }

    /// [`Snapshots::write`], keeping `position`: where the log said the record at the
    /// snapshot's LSN is ([`RecordRead::byte_position`](crate::backend::RecordRead::byte_position)),
    /// for the reader that opens the store from this snapshot.
    ///
    /// # Errors
    /// As [`Snapshots::write`].
    pub fn write_with_position(&self, state: &StateImage, position: Option<(Lsn, u64)>) -> Result<PathBuf> {
        let lsn = state.next_lsn.get();
        let name = name_of(state.next_lsn);
        let location = self.location(&name);
        let body = sections::body(state, position)?;
        let directory = crate::format::snapshot_body::directory_len_of(&body)
            .map_err(|d| Error::internal(format!("a snapshot body just encoded: {}", d.reason)))?;
        let crc = crc32fast::hash(body.get(..directory).unwrap_or_default());
        let mut blob = self.blobs.create(BlobSpace::Snapshots, &name)?;
        blob.write_all(&header(SNAPSHOT_VERSION, lsn, body.len() as u64, crc))
            .and_then(|()| blob.write_all(&body))
            .map_err(|e| Error::io("write", &location, e))?;
        blob.commit(Commit::Replace)?;
        self.prune()?;
        Ok(location)
    }

    fn prune(&self) -> Result<()> {
        for (_, name) in self.list()?.into_iter().skip(self.keep) {
            // Not there: another process pruned it.
            self.blobs.delete(BlobSpace::Snapshots, &name)?;
        }
        Ok(())
    }

    /// Checks and decodes the snapshot blob `name`: `None` if it is gone (another process
    /// pruned it), `Some(Err)` with what is wrong with it if it cannot be opened, read or
    /// decoded, or does not check out.
    #[must_use]
    pub fn read(&self, name: &str) -> Option<std::result::Result<StateImage, String>> {
        match self.blobs.open(BlobSpace::Snapshots, name) {
            Ok(None) => None,
            Ok(Some(blob)) => Some(read_from(blob)),
            Err(e) => Some(Err(format!("cannot open it: {e}"))),
        }
    }

    /// The newest snapshot whose header checks out (its body is not read): its LSN and when it
    /// was written. `None` if there is none.
    ///
    /// # Errors
    /// As the blob store's [`list`](BlobStore::list). A snapshot that cannot be opened or whose
    /// header does not check out is passed over.
    pub fn newest_header(&self) -> Result<Option<(Lsn, Timestamp)>> {
        for (lsn, name) in self.list()? {
            let Ok(Some(mut blob)) = self.blobs.open(BlobSpace::Snapshots, &name) else { continue };
            let mut head = [0u8; HEADER_LEN];
            if blob.read_exact(&mut head).is_err() {
                continue;
            }
            if let (Ok(header), Ok(written)) = (SnapshotHeader::check(&head), SnapshotHeader::written(&head))
            {
                if header.lsn == lsn.get() {
                    return Ok(Some((lsn, written)));
                }
            }
        }
        Ok(None)
    }

    /// The newest valid snapshot whose LSN is at most `limit` (the log's next LSN), and the
    /// snapshots skipped on the way. `None` if there is none: replay from the start.
    ///
    /// # Errors
    /// As the blob store's [`list`](BlobStore::list). A snapshot that cannot be opened or read, or
    /// does not check out, is skipped, not an error.
    pub fn load(&self, limit: Lsn) -> Result<(Option<State>, Vec<SkippedSnapshot>)> {
        let mut skipped = Vec::new();
        for (lsn, name) in self.list()? {
            let known = crate::log::lock(&self.damaged).get(&lsn).cloned();
            let reason = match known.map_or_else(|| self.open_state(&name), |reason| Some(Err(reason))) {
                None => continue, // pruned since it was listed
                Some(Ok(state)) if state.next_lsn != lsn => {
                    format!("holds LSN {} but is named {lsn}", state.next_lsn)
                }
                Some(Ok(state)) if state.next_lsn > limit => {
                    format!("is ahead of the log, which ends before LSN {limit}")
                }
                Some(Ok(state)) => return Ok((Some(state), skipped)),
                Some(Err(reason)) => reason,
            };
            let path = self.location(&name);
            tracing::warn!(snapshot = %path.display(), %reason, "skipping a snapshot");
            skipped.push(SkippedSnapshot { path, reason });
        }
        Ok((None, skipped))
    }
}

/// The header of a snapshot (format `version`) of `lsn` whose body has `len` bytes and CRC `crc`.
impl Snapshots {
    /// These snapshots, loading a version-3 snapshot with every block checked (`true`, the
    /// default) or with its header and directory checked and each block when first read.
    #[must_use]
    pub fn checking_whole(mut self, whole: bool) -> Snapshots {
        self.check_whole = whole;
        self
    }

    /// Records that a read of the snapshot at `lsn` failed after it was opened (`reason`
    /// names the file, the offset and what is wrong): [`Snapshots::load`] passes over it from
    /// now on, in this process (and every clone of this handle).
    pub fn mark_damaged(&self, lsn: Lsn, reason: String) {
        tracing::warn!(%lsn, %reason, "passing over a damaged snapshot from now on");
        crate::log::lock(&self.damaged).entry(lsn).or_insert(reason);
    }

    /// [`Snapshots::load`], with every block of the snapshot loaded checked (whatever
    /// [`Snapshots::checking_whole`] says): one with a damaged block is marked damaged and the
    /// next is loaded instead.
    ///
    /// # Errors
    /// As [`Snapshots::load`].
    pub fn load_checked(&self, limit: Lsn) -> Result<(Option<State>, Vec<SkippedSnapshot>)> {
        loop {
            let (state, skipped) = self.load(limit)?;
            if let Some(loaded) = &state {
                loaded.check_base();
                if let (Some(reason), Some(lsn)) = (loaded.damage(), loaded.base_lsn()) {
                    self.mark_damaged(lsn, reason);
                    continue;
                }
            }
            return Ok((state, skipped));
        }
    }

    /// The snapshots [marked damaged](Snapshots::mark_damaged) so far, with why.
    #[must_use]
    pub fn damaged(&self) -> Vec<SkippedSnapshot> {
        crate::log::lock(&self.damaged)
            .iter()
            .map(|(lsn, reason)| SkippedSnapshot {
                path: self.location(&name_of(*lsn)),
                reason: reason.clone(),
            })
            .collect()
    }

    /// The state snapshot `name` describes (`None` if it is gone): a version-3 snapshot is
    /// mapped and read on demand (its header and directory checked now, each block when first
    /// read); an older one is decoded whole.
    fn open_state(&self, name: &str) -> Option<std::result::Result<State, String>> {
        let bytes = match self.blobs.map(BlobSpace::Snapshots, name) {
            Ok(None) => return None,
            Ok(Some(bytes)) => bytes,
            Err(e) => return Some(Err(format!("cannot open it: {e}"))),
        };
        Some(state_of(bytes, self.location(name), self.check_whole).map_err(|d| d.reason))
    }
}

/// The state a whole snapshot file describes, as [`Snapshots::load`] opens it.
fn state_of(
    bytes: crate::backend::BlobBytes,
    location: PathBuf,
    check_whole: bool,
) -> std::result::Result<State, Damage> {
    let all = (*bytes).as_ref();
    let header = SnapshotHeader::check(all.get(..HEADER_LEN).unwrap_or(all))?;
    if header.version < 3 {
        return Ok(State::from_image(decode_old(all, &header)?));
    }
    body_length(&header, all.len())?;
    let (image, snapshot) = mapped::MappedSnapshot::open(bytes, header.body_crc, location)?;
    if image.next_lsn.get() != header.lsn {
        return Err(Damage::at(16, "header and body disagree on the LSN"));
    }
    if check_whole {
        snapshot.check_all()?;
    }
    Ok(mapped::MappedSnapshot::state(image, snapshot))
}

/// Checks that a file of `file_len` bytes holds the body `header` announces.
fn body_length(header: &SnapshotHeader, file_len: usize) -> std::result::Result<(), Damage> {
    let held = (file_len - HEADER_LEN.min(file_len)) as u64;
    if held != header.body_len {
        return Err(Damage {
            offset: HEADER_LEN as u64 + held.min(header.body_len),
            reason: format!(
                "body length mismatch: the header says {} bytes, the file holds {held}",
                header.body_len
            ),
        });
    }
    Ok(())
}

/// Checks every byte of a version-3 snapshot file and decodes all of it.
fn decode_v3(bytes: Vec<u8>, header: &SnapshotHeader) -> std::result::Result<StateImage, Damage> {
    body_length(header, bytes.len())?;
    let (image, snapshot) =
        mapped::MappedSnapshot::open(Arc::new(bytes), header.body_crc, PathBuf::from("(snapshot)"))?;
    if image.next_lsn.get() != header.lsn {
        return Err(Damage::at(16, "header and body disagree on the LSN"));
    }
    snapshot.check_all()?;
    let state = mapped::MappedSnapshot::state(image, snapshot.clone());
    let image = state.to_image();
    if let Some(reason) = state.damage() {
        return Err(Damage::at(HEADER_LEN, reason));
    }
    let keys: Vec<_> = image.context.iter().map(|(k, _)| k.clone()).collect();
    snapshot.check_indexes(&image.tasks, &keys)?;
    Ok(image)
}

/// Checks and decodes a whole snapshot file of any version.
fn decode_whole(bytes: Vec<u8>) -> std::result::Result<StateImage, Damage> {
    let header = SnapshotHeader::check(bytes.get(..HEADER_LEN).unwrap_or(&bytes))?;
    if header.version >= 3 {
        return decode_v3(bytes, &header);
    }
    decode_old(&bytes, &header)
}

/// Checks and decodes a whole snapshot file of version 1 or 2, whose header checked out.
fn decode_old(bytes: &[u8], header: &SnapshotHeader) -> std::result::Result<StateImage, Damage> {
    body_length(header, bytes.len())?;
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    let computed = crc32fast::hash(body);
    if computed != header.body_crc {
        return Err(Damage::at(
            HEADER_LEN,
            format!("body checksum mismatch (stored {:#010x}, computed {computed:#010x})", header.body_crc),
        ));
    }
    let image = decode_body(header.version, body).map_err(|reason| Damage::at(HEADER_LEN, reason))?;
    if image.next_lsn.get() != header.lsn {
        return Err(Damage::at(16, "header and body disagree on the LSN"));
    }
    Ok(image)
}

fn header(version: u32, lsn: u64, len: u64, crc: u32) -> [u8; HEADER_LEN] {
    SnapshotHeader { version, lsn, body_len: len, body_crc: crc }.encode(Timestamp::now())
}

/// Checks and decodes a snapshot file, read into memory whole; the error says what is wrong.
/// The body's checksums (version 3: every block's) are checked before anything is decoded, so
/// the decoder only ever sees bytes that were written as they are.
///
/// # Errors
/// What is wrong, as text: the file cannot be read; its header is too short, of another format or version, or
/// fails its checksum; the body's length or checksum disagrees with the header; the body does not decode;
/// header and body name different LSNs.
pub fn read_file(path: &Path) -> std::result::Result<StateImage, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    read_from(BufReader::with_capacity(1 << 20, file))
}

/// Checks and decodes a snapshot from `input`, as [`read_file`] does.
///
/// # Errors
/// What is wrong, as text, as for [`read_file`].
pub fn read_from(input: impl Read + Seek) -> std::result::Result<StateImage, String> {
    check_from(input).map(|checked| checked.image).map_err(|d| d.reason)
}

/// A snapshot that checks out: its state, and what its header says besides.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSnapshot {
    /// The state it holds.
    pub image: StateImage,
    /// When it was written (its header's time).
    pub written: Timestamp,
    /// Its length in bytes, header included.
    pub len: u64,
}

/// Checks and decodes a snapshot from `input`, as [`read_from`] does, saying where it is wrong.
///
/// # Errors
/// What is wrong and at which byte offset: in the header, the field
/// ([`SnapshotHeader::check`]); a body whose length or checksum disagrees with the header, the
/// body's start (48, the bytes its checksum covers start there), or for a body longer than the
/// header says, where the extra bytes start; a body that does not decode, where the decoder
/// stopped; header and body that name different LSNs, the header's LSN (16).
pub fn check_from(mut input: impl Read + Seek) -> std::result::Result<CheckedSnapshot, Damage> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(|e| Damage::at(0, format!("cannot read it: {e}")))?;
    let head = bytes.get(..HEADER_LEN).unwrap_or(&bytes);
    SnapshotHeader::check(head)?;
    let written = SnapshotHeader::written(head)?;
    let len = bytes.len() as u64;
    let image = decode_whole(bytes)?;
    Ok(CheckedSnapshot { image, written, len })
}

/// Decodes a body of snapshot format `version`.
fn decode_body(version: u32, body: impl Read) -> std::result::Result<StateImage, String> {
    let undecodable = |e: rmp_serde::decode::Error| format!("body does not decode: {e}");
    if version == 1 {
        return rmp_serde::from_read(body).map(v1::upgrade).map_err(undecodable);
    }
    rmp_serde::from_read(body).map_err(undecodable)
}

/// Checks and decodes the bytes of a snapshot file; the error says what is wrong.
///
/// # Errors
/// What is wrong, as text, as for [`read_file`].
pub fn decode(bytes: &[u8]) -> std::result::Result<StateImage, String> {
    decode_whole(bytes.to_vec()).map_err(|d| d.reason)
}
