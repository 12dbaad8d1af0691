//! Cursor files (log-format.md, "Cursor files"): where a durable subscription resumes, and how
//! many times the record at its head was handed out. Small, checksummed, replaced atomically.

use std::path::{Path, PathBuf};

use crate::fs::TempFile;

use crate::error::{Error, Result};
pub(crate) use crate::format::cursor::CursorState;
use crate::model::AgentId;
use crate::types::Lsn;

/// The directory of a store's cursor files.
pub(crate) fn cursor_dir(store: &Path) -> PathBuf {
    store.join(crate::fs::names::CURSOR_DIR)
}

/// The cursor file of `agent`'s subscription `name`.
pub(crate) fn cursor_path(store: &Path, agent: &AgentId, name: &str) -> PathBuf {
    cursor_dir(store).join(format!("{}.{}.cursor", hex(agent.as_str()), hex(name)))
}

fn hex(s: &str) -> String {
    use std::fmt::Write;
    s.bytes().fold(String::with_capacity(2 * s.len()), |mut out, b| {
        let _ = write!(out, "{b:02x}"); // writing to a String cannot fail
        out
    })
}

/// Reads a cursor file; `None` if there is none.
pub(crate) fn read(path: &Path) -> Result<Option<CursorState>> {
    match std::fs::read(path) {
        Ok(bytes) => CursorState::decode(&bytes)
            .map(Some)
            .map_err(|reason| Error::CorruptCursor { path: path.to_owned(), reason }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Replaces (or creates) a cursor file: durable when this returns.
pub(crate) fn write(path: &Path, state: CursorState) -> Result<()> {
    let dir = parent(path)?;
    write_temporary(dir, path, state)?.persist(path)
}

/// Moves the cursor of `agent`'s subscription `name` in the store at `store` to `lsn`, its
/// delivery count starting over: durable when this returns.
pub(crate) fn reset(store: &Path, agent: &AgentId, name: &str, lsn: Lsn) -> Result<()> {
    write(&cursor_path(store, agent, name), CursorState::at(lsn))
}

/// Creates a cursor file holding `state` unless one exists (another process may create it at
/// the same time: the first one stays); returns what the file holds and whether this call
/// created it. Durable when this returns.
pub(crate) fn create(path: &Path, state: CursorState) -> Result<(CursorState, bool)> {
    let dir = parent(path)?;
    let tmp = write_temporary(dir, path, state)?;
    // A hard link never replaces an existing file: creating and filling it is one step.
    let linked = crate::fs::file::link_new(tmp.path(), path);
    drop(tmp); // removes the temporary name
    if linked? {
        sync_dir(dir)?;
        return Ok((state, true));
    }
    match read(path)? {
        Some(existing) => Ok((existing, false)),
        None => Err(Error::io("read", path, std::io::ErrorKind::NotFound.into())),
    }
}

fn parent(path: &Path) -> Result<&Path> {
    path.parent()
        .ok_or_else(|| Error::internal(format!("the cursor file {} has no directory", path.display())))
}

/// Writes and syncs a temporary file `<cursor file name>.PID.N.tmp` beside `path`, locked
/// while this process writes it ([`crate::fs::TempFile`]).
fn write_temporary(dir: &Path, path: &Path, state: CursorState) -> Result<TempFile> {
    crate::fs::create_subdir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("cursor");
    let tmp = TempFile::create(dir, name)?;
    tmp.write_all(&state.encode())?;
    crate::fs::file::sync_all(tmp.file(), tmp.path())?;
    Ok(tmp)
}

/// Removes the temporary cursor files in the store's cursor directory that writers killed
/// mid-write left behind.
pub(crate) fn sweep(store: &Path) -> Result<Vec<PathBuf>> {
    crate::fs::sweep(&cursor_dir(store), |name| {
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        crate::fs::temp_target(name)
            .and_then(|t| t.strip_suffix(".cursor"))
            .and_then(|t| t.split_once('.'))
            .is_some_and(|(agent, name)| hex(agent) && hex(name))
    })
}

use crate::fs::sync_dir;

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
