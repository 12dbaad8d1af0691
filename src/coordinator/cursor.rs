//! Durable subscriptions: a named per-agent cursor, saved in a small checksummed file
//! (log-format.md, "Cursor files"), from which a subscription resumes after a restart. Delivery
//! is at-least-once, in LSN order, without gaps: what was delivered but not acknowledged is
//! delivered again.

use std::path::{Path, PathBuf};

use super::watch::{Delivery, Subscription};
use super::Coordinator;
use crate::error::{Error, Result};
use crate::log::format::{u32_at, u64_at};
use crate::model::{AgentId, EventFilter};
use crate::types::Lsn;

/// `b"MAOSCUR\0"`.
pub const CURSOR_MAGIC: [u8; 8] = *b"MAOSCUR\0";
const CURSOR_VERSION: u32 = 1;
const CURSOR_LEN: usize = 32;

/// A subscription whose position survives restarts.
pub struct DurableSubscription {
    subscription: Subscription,
    path: PathBuf,
    dir: PathBuf,
    acked: Lsn,
}

impl DurableSubscription {
    /// The next matching event, waiting for one if needed.
    pub async fn next(&mut self) -> Result<Delivery> {
        self.subscription.next().await
    }

    /// The next matching event already in the log, if any.
    pub fn try_next(&mut self) -> Result<Option<Delivery>> {
        self.subscription.try_next()
    }

    /// Records that everything up to `lsn` is processed: after a restart, delivery resumes after
    /// it. Durable when this returns. An older LSN than already acknowledged changes nothing.
    pub fn ack(&mut self, lsn: Lsn) -> Result<()> {
        let next = lsn.next();
        if next <= self.acked {
            return Ok(());
        }
        write_cursor(&self.dir, &self.path, next)?;
        self.acked = next;
        Ok(())
    }

    /// Where delivery resumes after a restart.
    #[must_use]
    pub fn resume_position(&self) -> Lsn {
        self.acked
    }
}

impl Coordinator {
    /// A durable subscription of `agent` named `name`: it resumes from the position last
    /// acknowledged (the first record of the log if never), and delivers the events matching
    /// `filter` from there on.
    pub fn subscribe_durable(
        &self,
        agent: &AgentId,
        name: &str,
        filter: EventFilter,
    ) -> Result<DurableSubscription> {
        crate::model::validate_name("subscription name", name)?;
        let dir = self.store_dir().join("cursors");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let path = dir.join(format!("{}.{}.cursor", hex(agent.as_str()), hex(name)));
        let acked = match std::fs::read(&path) {
            Ok(bytes) => {
                decode(&bytes).map_err(|reason| Error::CorruptCursor { path: path.clone(), reason })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.log.first_lsn()?,
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let subscription = self.subscribe_from(agent, filter, acked)?;
        Ok(DurableSubscription { subscription, path, dir, acked })
    }
}

/// The cursor file of `agent`'s subscription `name`.
pub(super) fn cursor_path(store: &Path, agent: &AgentId, name: &str) -> PathBuf {
    store.join("cursors").join(format!("{}.{}.cursor", hex(agent.as_str()), hex(name)))
}

/// Reads a cursor file: the LSN delivery resumes from.
pub(super) fn read_cursor(path: &Path) -> Result<Lsn> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    decode(&bytes).map_err(|reason| Error::CorruptCursor { path: path.to_owned(), reason })
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn write_cursor(dir: &Path, path: &Path, next: Lsn) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let mut bytes = Vec::with_capacity(CURSOR_LEN);
    bytes.extend_from_slice(&CURSOR_MAGIC);
    bytes.extend_from_slice(&CURSOR_VERSION.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&next.get().to_le_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io("fsync", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

fn decode(bytes: &[u8]) -> std::result::Result<Lsn, String> {
    if bytes.len() != CURSOR_LEN {
        return Err(format!("{} bytes, expected {CURSOR_LEN}", bytes.len()));
    }
    if bytes.get(..8) != Some(CURSOR_MAGIC.as_slice()) {
        return Err("bad magic".into());
    }
    if u32_at(bytes, 24) != crc32fast::hash(bytes.get(..24).unwrap_or_default()) {
        return Err("checksum mismatch".into());
    }
    if u32_at(bytes, 8) != CURSOR_VERSION || u32_at(bytes, 12) != 0 || u32_at(bytes, 28) != 0 {
        return Err(format!("unsupported version {}", u32_at(bytes, 8)));
    }
    Ok(Lsn(u64_at(bytes, 16)))
}
