//! The lock file (`log.lock`): the OS lock that serialises appenders, and a shared page through
//! which processes publish the tail of the log. Layout: log-format.md, "Lock file".

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::io::{self, SharedWords};
use crate::error::{Error, Result};
use crate::types::{Lsn, Timestamp};

/// File name of the lock file inside the log directory.
pub const LOCK_FILE: &str = "log.lock";
/// `b"MAOSLCK\0"`.
pub const LOCK_MAGIC: [u8; 8] = *b"MAOSLCK\0";
/// Version of the lock file layout.
pub const LOCK_VERSION: u64 = 1;
/// Size of the lock file.
pub const LOCK_FILE_LEN: usize = 4096;

// Word indices (byte offset / 8), as in log-format.md.
const W_MAGIC: usize = 0;
const W_VERSION: usize = 1;
const W_BOOT_ID_LO: usize = 2;
const W_BOOT_ID_HI: usize = 3;
const W_TAIL_LSN: usize = 4;
const W_TAIL_SEGMENT: usize = 5;
const W_TAIL_OFFSET: usize = 6;
const W_WRITE_END: usize = 7;
const W_DURABLE_LSN: usize = 8;
const W_LAST_TIME: usize = 9;
const W_LAST_FRAME: usize = 10;
const WORDS: usize = 11;
const _: () = assert!(WORDS * 8 <= LOCK_FILE_LEN);

/// Where the next record goes, as published in the lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// LSN of the next record.
    pub lsn: Lsn,
    /// Base LSN of the newest segment.
    pub segment: Lsn,
    /// Byte offset in the newest segment where the next frame starts.
    pub offset: u64,
    /// Time of the last record.
    pub last_time: Timestamp,
    /// Offset of the last frame in the newest segment; 0 while it has none.
    pub last_frame: u64,
}

/// The open lock file.
pub struct Control {
    path: PathBuf,
    file: File,
    words: SharedWords,
}

/// Holds the append lock; dropping it releases the lock.
pub struct AppendLock<'a> {
    control: &'a Control,
}

impl Drop for AppendLock<'_> {
    fn drop(&mut self) {
        // Unlocking cannot meaningfully fail for a valid descriptor; closing would release anyway.
        let _ = self.control.file.unlock();
    }
}

impl Control {
    /// Opens the lock file in `dir`, creating and initialising it if needed, and returns it with
    /// the append lock held (open-time recovery runs under it).
    pub fn open(dir: &Path) -> Result<(Control, bool)> {
        let path = dir.join(LOCK_FILE);
        let file = io::open_rw(&path, true)?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        let len = io::file_len(&file, &path)?;
        let fresh = len == 0;
        if fresh {
            write_initial_page(&file, &path)?;
            io::sync_data(&file, &path)?;
            io::sync_dir(dir)?;
        } else if len != LOCK_FILE_LEN as u64 {
            let _ = file.unlock();
            return Err(Error::CorruptControl {
                path,
                reason: format!("length {len}, expected {LOCK_FILE_LEN}"),
            });
        }
        let words = SharedWords::map(&file, &path, LOCK_FILE_LEN / 8)?;
        let control = Control { path, file, words };
        if let Err(e) = control.check_identity() {
            let _ = control.file.unlock();
            return Err(e);
        }
        Ok((control, fresh))
    }

    fn check_identity(&self) -> Result<()> {
        let magic = self.words.word(W_MAGIC).load(Relaxed);
        if magic != u64::from_le_bytes(LOCK_MAGIC) {
            return Err(Error::CorruptControl {
                path: self.path.clone(),
                reason: "bad magic (not a maos-coord lock file)".into(),
            });
        }
        let version = self.words.word(W_VERSION).load(Relaxed);
        if version != LOCK_VERSION {
            return Err(Error::UnsupportedVersion {
                path: self.path.clone(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
                supported: LOCK_VERSION as u32,
            });
        }
        Ok(())
    }

    /// Takes the append lock, waiting for other processes to release it.
    pub fn lock(&self) -> Result<AppendLock<'_>> {
        self.file.lock().map_err(|e| Error::io("lock", &self.path, e))?;
        Ok(AppendLock { control: self })
    }

    /// Wraps the lock taken by [`Control::open`].
    pub fn adopt_lock(&self) -> AppendLock<'_> {
        AppendLock { control: self }
    }

    /// Whether the published tail was written during this boot, so that it describes page-cache
    /// state every process here shares (a tail from before a crash of the machine does not).
    pub fn written_this_boot(&self, boot: [u8; 16]) -> bool {
        let lo = self.words.word(W_BOOT_ID_LO).load(Relaxed);
        let hi = self.words.word(W_BOOT_ID_HI).load(Relaxed);
        boot != [0; 16] && (lo, hi) == boot_words(boot)
    }

    /// The LSN the next record will get: every record below it is complete and readable.
    pub fn tail_lsn(&self) -> Lsn {
        Lsn(self.words.word(W_TAIL_LSN).load(Acquire))
    }

    /// Every record below this LSN is on stable storage.
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.words.word(W_DURABLE_LSN).load(Acquire))
    }

    /// Raises the durable watermark to `lsn` (never lowers it).
    pub fn raise_durable(&self, lsn: Lsn) {
        self.words.word(W_DURABLE_LSN).fetch_max(lsn.0, AcqRel);
    }

    /// Base LSN of the newest segment.
    pub fn tail_segment(&self) -> Lsn {
        Lsn(self.words.word(W_TAIL_SEGMENT).load(Acquire))
    }

    /// The whole published tail. Call with the append lock held for a consistent view.
    pub fn tail(&self) -> Tail {
        Tail {
            segment: self.tail_segment(),
            offset: self.words.word(W_TAIL_OFFSET).load(Acquire),
            last_time: Timestamp(self.words.word(W_LAST_TIME).load(Acquire) as i64),
            last_frame: self.words.word(W_LAST_FRAME).load(Acquire),
            lsn: self.tail_lsn(),
        }
    }

    /// Where the last appender said it would write up to.
    pub fn write_end(&self) -> u64 {
        self.words.word(W_WRITE_END).load(Acquire)
    }

    /// Announces that bytes up to `end` of the newest segment are about to be written. Lock held.
    pub fn announce_write(&self, end: u64) {
        self.words.word(W_WRITE_END).store(end, Release);
    }

    /// Publishes a new tail; readers see the records below `tail.lsn` from now on. Lock held.
    pub fn publish(&self, tail: Tail) {
        self.words.word(W_TAIL_SEGMENT).store(tail.segment.0, Release);
        self.words.word(W_TAIL_OFFSET).store(tail.offset, Release);
        self.words.word(W_LAST_TIME).store(tail.last_time.0 as u64, Release);
        self.words.word(W_LAST_FRAME).store(tail.last_frame, Release);
        self.words.word(W_TAIL_LSN).store(tail.lsn.0, Release);
    }

    /// Resets the page after recovery from the segments: the tail, and everything below it
    /// durable. Lock held.
    pub fn reset(&self, boot: [u8; 16], tail: Tail) {
        let (lo, hi) = boot_words(boot);
        self.words.word(W_BOOT_ID_LO).store(lo, Release);
        self.words.word(W_BOOT_ID_HI).store(hi, Release);
        self.words.word(W_WRITE_END).store(tail.offset, Release);
        self.words.word(W_DURABLE_LSN).store(tail.lsn.0, Release);
        self.publish(tail);
    }
}

fn boot_words(boot: [u8; 16]) -> (u64, u64) {
    let (lo, hi) = boot.split_at(8);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    (word(lo), word(hi))
}

fn write_initial_page(file: &File, path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut page = vec![0u8; LOCK_FILE_LEN];
    if let Some(w) = page.get_mut(..8) {
        w.copy_from_slice(&LOCK_MAGIC);
    }
    if let Some(w) = page.get_mut(8..16) {
        w.copy_from_slice(&LOCK_VERSION.to_le_bytes());
    }
    file.write_all_at(&page, 0).map_err(|e| Error::io("write", path, e))
}
