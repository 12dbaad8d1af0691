//! Snapshots: every projection as of one LSN, so that opening a store replays only the records
//! after it (log-format.md, "Snapshots"). Written to a temporary file, synced, renamed, directory
//! synced; the newest `keep` are kept. A snapshot that does not check out is skipped with a
//! warning, falling back to the one before it or to a full replay.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{BlobSpace, BlobStore, Commit};
use crate::error::{Error, Result};
use crate::projection::{State, StateImage};
use crate::types::{Lsn, Timestamp};

#[doc(hidden)]
pub mod fuzzing;
mod v1;

use crate::format::snapshot::{SnapshotHeader, SNAPSHOT_HEADER_LEN as HEADER_LEN};
pub use crate::format::snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use crate::format::Damage;

/// The snapshots of one store: blobs of [`BlobSpace::Snapshots`] named `<20-digit LSN>.snap`.
#[derive(Clone)]
pub struct Snapshots {
    blobs: Arc<dyn BlobStore>,
    keep: usize,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("at", &self.blobs.space_location(BlobSpace::Snapshots))
            .field("keep", &self.keep)
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
        Snapshots { blobs, keep: keep.max(1) }
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

    /// Where the snapshot blob `name` lives, for messages.
    #[must_use]
    pub fn location(&self, name: &str) -> PathBuf {
        self.blobs.location(BlobSpace::Snapshots, name)
    }

    /// Writes a snapshot of `state` durably and removes all but the newest `keep`; returns where
    /// it lives. The body is encoded straight into the blob (no buffer the size of the state),
    /// then the header with its length and checksum is written in front of it.
    ///
    /// # Errors
    /// As the blob store's writes (locally [`Error::Io`] if the snapshot cannot be written, synced and
    /// renamed into place, or an older one cannot be removed); [`Error::Encode`] if rmp-serde refuses to
    /// encode the state.
    pub fn write(&self, state: &StateImage) -> Result<PathBuf> {
        let lsn = state.next_lsn.get();
        let name = name_of(state.next_lsn);
        let location = self.location(&name);
        let mut blob = self.blobs.create(BlobSpace::Snapshots, &name)?;
        {
            let mut out = Checksummed::new(BufWriter::with_capacity(1 << 20, &mut blob));
            out.inner.write_all(&[0; HEADER_LEN]).map_err(|e| Error::io("write", &location, e))?;
            rmp_serde::encode::write_named(&mut out, state).map_err(|e| match e {
                rmp_serde::encode::Error::InvalidValueWrite(inner) => {
                    Error::io("write", &location, inner.into())
                }
                other => Error::Encode { reason: other.to_string() },
            })?;
            let (crc, len) = (out.crc.clone().finalize(), out.len);
            out.inner.flush().map_err(|e| Error::io("write", &location, e))?;
            drop(out);
            blob.write_at(0, &header(SNAPSHOT_VERSION, lsn, len, crc))?;
        }
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
            let reason = match self.read(&name) {
                None => continue, // pruned since it was listed
                Some(Ok(image)) if image.next_lsn != lsn => {
                    format!("holds LSN {} but is named {lsn}", image.next_lsn)
                }
                Some(Ok(image)) if image.next_lsn > limit => {
                    format!("is ahead of the log, which ends before LSN {limit}")
                }
                Some(Ok(image)) => return Ok((Some(State::from_image(image)), skipped)),
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
fn header(version: u32, lsn: u64, len: u64, crc: u32) -> [u8; HEADER_LEN] {
    SnapshotHeader { version, lsn, body_len: len, body_crc: crc }.encode(Timestamp::now())
}

/// Checks and decodes a snapshot file, streaming it (no buffer the size of the file); the error
/// says what is wrong. The body's length and checksum are checked in a first pass, so the
/// decoder only ever sees bytes that were written as they are.
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
    let unreadable = |e: std::io::Error| Damage::at(0, format!("cannot read it: {e}"));
    let mut head = [0u8; HEADER_LEN];
    input.read_exact(&mut head).map_err(|e| Damage::at(0, format!("cannot read its header: {e}")))?;
    let header = SnapshotHeader::check(&head)?;
    let written = SnapshotHeader::written(&head)?;
    let len = header.body_len;
    let mut body = Checksummed::new(&mut input);
    std::io::copy(&mut body, &mut std::io::sink()).map_err(unreadable)?;
    let body_start = HEADER_LEN as u64;
    if body.len != len {
        return Err(Damage {
            offset: body_start + body.len.min(len),
            reason: format!("body length mismatch: the header says {len} bytes, the file holds {}", body.len),
        });
    }
    let computed = body.crc.finalize();
    if computed != header.body_crc {
        return Err(Damage {
            offset: body_start,
            reason: format!(
                "body checksum mismatch (stored {:#010x}, computed {computed:#010x})",
                header.body_crc
            ),
        });
    }
    input.seek(SeekFrom::Start(body_start)).map_err(unreadable)?;
    let mut counted = Checksummed::new(input.take(len));
    let image = decode_body(header.version, &mut counted)
        .map_err(|reason| Damage { offset: body_start + counted.len, reason })?;
    if image.next_lsn.get() != header.lsn {
        return Err(Damage::at(16, "header and body disagree on the LSN"));
    }
    Ok(CheckedSnapshot { image, written, len: body_start + len })
}

/// Decodes a body of snapshot format `version`.
fn decode_body(version: u32, body: impl Read) -> std::result::Result<StateImage, String> {
    let undecodable = |e: rmp_serde::decode::Error| format!("body does not decode: {e}");
    if version == 1 {
        return rmp_serde::from_read(body).map(v1::upgrade).map_err(undecodable);
    }
    rmp_serde::from_read(body).map_err(undecodable)
}

/// Checks a header; returns the version, LSN, body length and body CRC it announces.
fn check_header(header: &[u8]) -> std::result::Result<(u32, u64, u64, u32), String> {
    let h = SnapshotHeader::decode(header)?;
    Ok((h.version, h.lsn, h.body_len, h.body_crc))
}

/// A reader or writer that checksums and counts the bytes passing through.
struct Checksummed<T> {
    inner: T,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<T> Checksummed<T> {
    fn new(inner: T) -> Checksummed<T> {
        Checksummed { inner, crc: crc32fast::Hasher::new(), len: 0 }
    }
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or_default();
        self.crc.update(written);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or_default();
        self.crc.update(read);
        self.len += n as u64;
        Ok(n)
    }
}

/// Checks and decodes the bytes of a snapshot file; the error says what is wrong.
///
/// # Errors
/// What is wrong, as text, as for [`read_file`].
pub fn decode(bytes: &[u8]) -> std::result::Result<StateImage, String> {
    let (version, lsn, len, crc) = check_header(bytes.get(..HEADER_LEN).ok_or("shorter than a header")?)?;
    let len = usize::try_from(len).map_err(|_| "body length overflows".to_owned())?;
    let body = bytes.get(HEADER_LEN..).filter(|b| b.len() == len).ok_or("body length mismatch")?;
    if crc32fast::hash(body) != crc {
        return Err("body checksum mismatch".into());
    }
    let image = decode_body(version, body)?;
    if image.next_lsn.get() != lsn {
        return Err("header and body disagree on the LSN".into());
    }
    Ok(image)
}
