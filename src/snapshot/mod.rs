//! Snapshots: every projection as of one LSN, so that opening a store replays only the records
//! after it (log-format.md, "Snapshots"). Written to a temporary file, synced, renamed, directory
//! synced; the newest `keep` are kept. A snapshot that does not check out is skipped with a
//! warning, falling back to the one before it or to a full replay.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::projection::{State, StateImage};
use crate::types::{Lsn, Timestamp};

#[doc(hidden)]
pub mod fuzzing;
mod v1;

use crate::format::snapshot::{SnapshotHeader, SNAPSHOT_HEADER_LEN as HEADER_LEN};
pub use crate::format::snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION};

/// The snapshot files of one store.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    keep: usize,
}

/// A snapshot that was skipped when loading, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSnapshot {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

impl Snapshots {
    /// The snapshots in `dir` (created if missing), keeping the newest `keep`. Temporary files
    /// of snapshot writers that died mid-write are removed (never those of a live writer:
    /// [`crate::fs`]).
    ///
    /// # Errors
    /// [`Error::Io`] if `dir` cannot be created or read, or a dead writer's temporary file cannot be removed.
    pub fn open(dir: &Path, keep: usize) -> Result<Snapshots> {
        crate::fs::create_subdir(dir)?;
        let snapshots = Snapshots { dir: dir.to_owned(), keep: keep.max(1) };
        snapshots.sweep()?;
        Ok(snapshots)
    }

    /// Removes the temporary files of snapshot writers that died mid-write.
    fn sweep(&self) -> Result<Vec<PathBuf>> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let snapshot = |t: &str| t.strip_suffix(".snap").is_some_and(|lsn| lsn.len() == 20 && digits(lsn));
        crate::fs::sweep(&self.dir, |name| {
            // An earlier version named them `<snapshot>.<pid>.tmp`.
            let old = || {
                name.strip_suffix(".tmp")
                    .and_then(|n| n.rsplit_once('.'))
                    .is_some_and(|(target, pid)| snapshot(target) && digits(pid))
            };
            crate::fs::temp_target(name).is_some_and(snapshot) || old()
        })
    }

    /// The directory of the snapshots.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Snapshot files, newest (highest LSN) first.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read.
    pub fn list(&self) -> Result<Vec<(Lsn, PathBuf)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| Error::io("read directory", &self.dir, e))? {
            let entry = entry.map_err(|e| Error::io("read directory", &self.dir, e))?;
            let name = entry.file_name();
            let Some(digits) = name.to_str().and_then(|n| n.strip_suffix(".snap")) else { continue };
            if let Ok(lsn) = digits.parse::<u64>() {
                found.push((Lsn(lsn), entry.path()));
            }
        }
        found.sort_by_key(|(lsn, _)| std::cmp::Reverse(*lsn));
        Ok(found)
    }

    /// Writes a snapshot of `state` durably and removes all but the newest `keep`. The body is
    /// encoded straight into the file (no buffer the size of the state), then the header with its
    /// length and checksum is written in front of it.
    ///
    /// # Errors
    /// [`Error::Io`] if the snapshot cannot be written, synced and renamed into place, or an older one cannot
    /// be removed; [`Error::Encode`] if rmp-serde refuses to encode the state.
    pub fn write(&self, state: &StateImage) -> Result<PathBuf> {
        let lsn = state.next_lsn.get();
        let path = self.dir.join(format!("{lsn:020}.snap"));
        let temp = crate::fs::TempFile::create(&self.dir, &format!("{lsn:020}.snap"))?;
        let tmp = temp.path().to_owned();
        {
            let mut out = Checksummed::new(BufWriter::with_capacity(1 << 20, temp.writer()?));
            out.inner.write_all(&[0; HEADER_LEN]).map_err(|e| Error::io("write", &tmp, e))?;
            rmp_serde::encode::write_named(&mut out, state).map_err(|e| match e {
                rmp_serde::encode::Error::InvalidValueWrite(inner) => Error::io("write", &tmp, inner.into()),
                other => Error::Encode { reason: other.to_string() },
            })?;
            let (crc, len) = (out.crc.clone().finalize(), out.len);
            let file = out.inner.into_inner().map_err(|e| Error::io("write", &tmp, e.into_error()))?;
            crate::fs::file::write_at(file.file(), &tmp, &header(SNAPSHOT_VERSION, lsn, len, crc), 0)?;
        }
        temp.persist(&path)?;
        self.prune()?;
        Ok(path)
    }

    fn prune(&self) -> Result<()> {
        self.sweep()?;
        let mut removed = false;
        for (_, path) in self.list()?.into_iter().skip(self.keep) {
            // Not there: another process pruned it.
            removed |= crate::fs::file::remove(&path)?;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The newest valid snapshot whose LSN is at most `limit` (the log's next LSN), and the
    /// snapshots skipped on the way. `None` if there is none: replay from the start.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read. A snapshot that cannot be read or does not check out is
    /// skipped, not an error.
    pub fn load(&self, limit: Lsn) -> Result<(Option<State>, Vec<SkippedSnapshot>)> {
        let mut skipped = Vec::new();
        for (lsn, path) in self.list()? {
            let reason = match read_file(&path) {
                Ok(image) if image.next_lsn != lsn => {
                    format!("holds LSN {} but is named {lsn}", image.next_lsn)
                }
                Ok(image) if image.next_lsn > limit => {
                    format!("is ahead of the log, which ends before LSN {limit}")
                }
                Ok(image) => return Ok((Some(State::from_image(image)), skipped)),
                Err(reason) => reason,
            };
            tracing::warn!(snapshot = %path.display(), %reason, "skipping a snapshot");
            skipped.push(SkippedSnapshot { path, reason });
        }
        Ok((None, skipped))
    }
}

use crate::fs::sync_dir;

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
    use std::io::{Seek, SeekFrom};
    let unreadable = |e: std::io::Error| format!("cannot read it: {e}");
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut head = [0u8; HEADER_LEN];
    input.read_exact(&mut head).map_err(|e| format!("cannot read its header: {e}"))?;
    let (version, lsn, len, crc) = check_header(&head)?;
    let mut body = Checksummed::new(&mut input);
    std::io::copy(&mut body, &mut std::io::sink()).map_err(unreadable)?;
    if body.len != len {
        return Err(format!(
            "body length mismatch: the header says {len} bytes, the file holds {}",
            body.len
        ));
    }
    let computed = body.crc.finalize();
    if computed != crc {
        return Err(format!("body checksum mismatch (stored {crc:#010x}, computed {computed:#010x})"));
    }
    input.seek(SeekFrom::Start(HEADER_LEN as u64)).map_err(unreadable)?;
    let image = decode_body(version, input.take(len))?;
    if image.next_lsn.get() != lsn {
        return Err("header and body disagree on the LSN".into());
    }
    Ok(image)
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
