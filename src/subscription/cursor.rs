//! Cursor files (log-format.md, "Cursor files"): where a durable subscription resumes, and how
//! many times the record at its head was handed out. Small, checksummed, replaced atomically:
//! blobs of [`BlobSpace::Cursors`], one per subscription.

use std::io::Read;

use crate::backend::{BlobSpace, BlobStore, Commit};
use crate::error::{Error, Result};
pub(crate) use crate::format::cursor::CursorState;
use crate::model::AgentId;
use crate::types::Lsn;

/// The blob name of `agent`'s subscription `name`: both in hex, so any name makes a file name.
pub(crate) fn cursor_name(agent: &AgentId, name: &str) -> String {
    format!("{}.{}.cursor", hex(agent.as_str()), hex(name))
}

fn hex(s: &str) -> String {
    use std::fmt::Write;
    s.bytes().fold(String::with_capacity(2 * s.len()), |mut out, b| {
        let _ = write!(out, "{b:02x}"); // writing to a String cannot fail
        out
    })
}

/// The subscribing agent and the subscription's name of the cursor blob (or file) `name`,
/// `<hex(agent)>.<hex(name)>.cursor`; `None` for any other name.
pub(crate) fn parse_name(name: &str) -> Option<(String, String)> {
    let (agent, sub) = name.strip_suffix(".cursor")?.split_once('.')?;
    Some((unhex(agent)?, unhex(sub)?))
}

fn unhex(s: &str) -> Option<String> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A durable subscription's cursor, as its blob says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorInfo {
    /// Where it lives (its file, in a local store).
    pub location: std::path::PathBuf,
    /// The subscribing agent.
    pub agent: String,
    /// The subscription's name.
    pub name: String,
    /// The LSN delivery resumes from (every record below it was acknowledged, dead-lettered or
    /// did not match); `None` if the blob does not check out.
    pub position: Option<Lsn>,
    /// How many times the record at its head was handed out (0: none since the position was
    /// written).
    pub deliveries: u32,
    /// What is wrong with the blob, if it does not check out (the reason of
    /// [`Error::CorruptCursor`]).
    pub damage: Option<String>,
}

/// Every durable subscription's cursor among `blobs`, by agent and name; a blob that does not
/// check out is listed with what is wrong with it.
///
/// # Errors
/// As the blob store's [`list`](BlobStore::list) and [`open`](BlobStore::open) (locally
/// [`Error::Io`]).
pub fn cursors(blobs: &dyn BlobStore) -> Result<Vec<CursorInfo>> {
    let mut out = Vec::new();
    for blob in blobs.list(BlobSpace::Cursors)? {
        let Some((agent, name)) = parse_name(&blob) else { continue };
        let location = blobs.location(BlobSpace::Cursors, &blob);
        let mut info = CursorInfo { location, agent, name, position: None, deliveries: 0, damage: None };
        match read(blobs, &blob) {
            Ok(None) => continue, // removed since it was listed
            Ok(Some(state)) => {
                info.position = Some(state.position);
                info.deliveries = state.deliveries;
            }
            Err(Error::CorruptCursor { reason, .. }) => info.damage = Some(reason),
            Err(e) => return Err(e),
        }
        out.push(info);
    }
    out.sort_by(|a, b| (&a.agent, &a.name).cmp(&(&b.agent, &b.name)));
    Ok(out)
}

/// Reads the cursor blob `name`; `None` if there is none.
pub(crate) fn read(blobs: &dyn BlobStore, name: &str) -> Result<Option<CursorState>> {
    let path = || blobs.location(BlobSpace::Cursors, name);
    let Some(mut blob) = blobs.open(BlobSpace::Cursors, name)? else { return Ok(None) };
    let mut bytes = Vec::with_capacity(64);
    blob.read_to_end(&mut bytes).map_err(|e| Error::io("read", path(), e))?;
    CursorState::decode(&bytes).map(Some).map_err(|reason| Error::CorruptCursor { path: path(), reason })
}

/// Replaces (or creates) the cursor blob `name`: durable when this returns.
pub(crate) fn write(blobs: &dyn BlobStore, name: &str, state: CursorState) -> Result<()> {
    let mut blob = blobs.create(BlobSpace::Cursors, name)?;
    std::io::Write::write_all(&mut blob, &state.encode())
        .map_err(|e| Error::io("write", blobs.location(BlobSpace::Cursors, name), e))?;
    blob.commit(Commit::Replace)?;
    Ok(())
}

/// Moves the cursor of `agent`'s subscription `name` to `lsn`, its delivery count starting
/// over: durable when this returns.
pub(crate) fn reset(blobs: &dyn BlobStore, agent: &AgentId, name: &str, lsn: Lsn) -> Result<()> {
    write(blobs, &cursor_name(agent, name), CursorState::at(lsn))
}

/// Removes the cursor of `agent`'s subscription `name`, durably.
pub(crate) fn delete(blobs: &dyn BlobStore, agent: &AgentId, name: &str) -> Result<()> {
    if blobs.delete(BlobSpace::Cursors, &cursor_name(agent, name))? {
        Ok(())
    } else {
        Err(Error::UnknownCursor { agent: agent.clone(), name: name.to_owned() })
    }
}

/// Creates the cursor blob `name` holding `state` unless one exists (another process may create
/// it at the same time: the first one stays); returns what the blob holds and whether this call
/// created it. Durable when this returns.
pub(crate) fn create(blobs: &dyn BlobStore, name: &str, state: CursorState) -> Result<(CursorState, bool)> {
    let mut blob = blobs.create(BlobSpace::Cursors, name)?;
    std::io::Write::write_all(&mut blob, &state.encode())
        .map_err(|e| Error::io("write", blobs.location(BlobSpace::Cursors, name), e))?;
    if blob.commit(Commit::New)? {
        return Ok((state, true));
    }
    match read(blobs, name)? {
        Some(existing) => Ok((existing, false)),
        None => Err(Error::io(
            "read",
            blobs.location(BlobSpace::Cursors, name),
            std::io::ErrorKind::NotFound.into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::cursor::CURSOR_MAGIC;

    fn v1(position: u64) -> Vec<u8> {
        let mut bytes = CURSOR_MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&position.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes
    }

    #[test]
    fn cursor_files_of_version_1_are_read_as_a_position_with_nothing_delivered() {
        let state = CursorState::decode(&v1(77)).unwrap();
        assert_eq!(state, CursorState::at(Lsn(77)));
        let mut damaged = v1(77);
        damaged[17] ^= 1;
        assert!(CursorState::decode(&damaged).unwrap_err().contains("checksum"));
    }

    #[test]
    fn cursor_files_are_written_in_version_2_as_log_format_md_lays_them_out() {
        let state = CursorState { position: Lsn(0x0102), head: Lsn(0x0304), deliveries: 5 };
        let bytes = state.encode();
        assert_eq!(bytes.len(), 40);
        assert_eq!(&bytes[..8], b"MAOSCUR\0");
        assert_eq!(bytes[8..12], 2u32.to_le_bytes());
        assert_eq!(bytes[12..16], 5u32.to_le_bytes());
        assert_eq!(bytes[16..24], 0x0102u64.to_le_bytes());
        assert_eq!(bytes[24..32], 0x0304u64.to_le_bytes());
        assert_eq!(bytes[32..36], crc32fast::hash(&bytes[..32]).to_le_bytes());
        assert_eq!(bytes[36..40], [0; 4]);
        assert_eq!(CursorState::decode(&bytes), Ok(state));
    }

    #[test]
    fn damaged_or_inconsistent_cursor_files_are_refused() {
        let good = CursorState { position: Lsn(10), head: Lsn(12), deliveries: 2 }.encode();
        for at in 0..good.len() {
            let mut bytes = good;
            bytes[at] ^= 0x40;
            assert!(CursorState::decode(&bytes).is_err(), "byte {at} flipped");
        }
        assert!(CursorState::decode(&good[..36]).is_err());
        let inconsistent = [
            CursorState { position: Lsn(10), head: Lsn(12), deliveries: 0 },
            CursorState { position: Lsn(10), head: Lsn(0), deliveries: 3 },
            CursorState { position: Lsn(10), head: Lsn(9), deliveries: 1 },
        ];
        for state in inconsistent {
            let err = CursorState::decode(&state.encode()).unwrap_err();
            assert!(err.contains("deliveries"), "{err}");
        }
    }
}
