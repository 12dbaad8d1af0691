//! The lock file (`log.lock`): the OS lock that serialises appenders, and a shared page through
//! which processes publish the tail of the log. Layout: log-format.md, "Lock file".

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::io::{self, SharedWords};
use crate::error::{Error, Result};
use crate::types::{Lsn, Timestamp};

pub use crate::format::lock_file::{LOCK_FILE, LOCK_FILE_LEN, LOCK_MAGIC, LOCK_VERSION};
use crate::format::lock_file::{
    WORDS, W_BOOT_ID_HI, W_BOOT_ID_LO, W_DURABLE_LSN, W_LAST_FRAME, W_LAST_TIME, W_MAGIC, W_NAMES_SYNCED,
    W_SYNC_FAILURES, W_SYNC_REPAIRED, W_TAIL_LSN, W_TAIL_OFFSET, W_TAIL_SEGMENT, W_VERSION, W_WRITE_END,
};

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

/// The open lock file (or, for a read-only open without a usable one, words of this process).
pub struct LockFile {
    path: PathBuf,
    file: Option<File>,
    words: SharedWords,
    /// Threads of this process take this before the `flock`, which all of them share (one open
    /// file description): it keeps one thread's unlock from releasing another's lock.
    in_process: Mutex<()>,
}

/// Holds the append lock; dropping it releases the lock.
pub struct AppendLock<'a> {
    control: &'a LockFile,
    _in_process: MutexGuard<'a, ()>,
    /// The lock file whose append lock this thread held before this one (0: none).
    outer: usize,
}

thread_local! {
    /// The address of the lock file whose append lock this thread holds (0: none), so that
    /// code run under the lock (a builder closing the log) does not take it again.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl<'a> AppendLock<'a> {
    fn new(control: &'a LockFile, in_process: MutexGuard<'a, ()>) -> AppendLock<'a> {
        let outer = HELD.with(|h| h.replace(std::ptr::from_ref(control) as usize));
        AppendLock { control, _in_process: in_process, outer }
    }
}

impl Drop for AppendLock<'_> {
    fn drop(&mut self) {
        let me = std::ptr::from_ref(self.control) as usize;
        HELD.with(|h| {
            if h.get() == me {
                h.set(self.outer);
            }
        });
        // Unlocking cannot meaningfully fail for a valid descriptor; closing would release anyway.
        if let Some(file) = &self.control.file {
            let _ = file.unlock();
        }
    }
}

impl LockFile {
    /// Opens the lock file in `dir`, creating and initialising it if needed, and returns it with
    /// the append lock held (open-time recovery runs under it).
    pub fn open(dir: &Path) -> Result<(LockFile, bool)> {
        let path = dir.join(LOCK_FILE);
        let file = crate::fs::open_or_create(&path, false)?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        let len = io::file_len(&file, &path)?;
        // Empty: new. All zeros: a new one whose first sync failed, or that a power cut caught
        // between its creation and its sync (a filesystem may keep the length, not the bytes).
        let fresh = len == 0 || (len == LOCK_FILE_LEN as u64 && all_zero(&file, &path)?);
        if fresh {
            let initialised = write_initial_page(&file, &path)
                .and_then(|()| io::sync_data(&file, &path))
                .and_then(|()| io::sync_dir(dir));
            if let Err(e) = initialised {
                // Back to empty, so that the next open initialises it again: never a page
                // whose magic a later sync makes durable while its first sync failed.
                let _ = file.set_len(0);
                let _ = file.unlock();
                return Err(e);
            }
        } else if len != LOCK_FILE_LEN as u64 {
            let _ = file.unlock();
            return Err(Error::CorruptLockFile {
                path,
                reason: format!("length {len}, expected {LOCK_FILE_LEN}"),
            });
        }
        let words = SharedWords::map(&file, &path, LOCK_FILE_LEN / 8)?;
        let control = LockFile { path, file: Some(file), words, in_process: Mutex::new(()) };
        if let Err(e) = control.check_identity() {
            control.unlock_file();
            return Err(e);
        }
        Ok((control, fresh))
    }

    /// Opens the lock file in `dir` for reading only, holding a shared `flock` (so that no
    /// appender is mid-publish while the caller looks at the tail) until [`LockFile::unlock_file`].
    /// `None` if there is no lock file or it may not be read: the caller then works from the
    /// segment files alone. Never creates or writes anything.
    pub fn open_read_only(dir: &Path) -> Result<Option<LockFile>> {
        let path = dir.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        file.lock_shared().map_err(|e| Error::io("lock", &path, e))?;
        let len = io::file_len(&file, &path)?;
        if len == 0 || (len == LOCK_FILE_LEN as u64 && all_zero(&file, &path)?) {
            // Being created by a first appender: as good as missing.
            return Ok(None);
        }
        if len != LOCK_FILE_LEN as u64 {
            return Err(Error::CorruptLockFile {
                path,
                reason: format!("length {len}, expected {LOCK_FILE_LEN}"),
            });
        }
        let words = SharedWords::map_read_only(&file, &path, LOCK_FILE_LEN / 8)?;
        let control = LockFile { path, file: Some(file), words, in_process: Mutex::new(()) };
        control.check_identity()?;
        Ok(Some(control))
    }

    /// A control of this process alone, for a read-only open that cannot use the lock file:
    /// [`LockFile::reset`] fills it in; it never changes afterwards.
    pub fn local(dir: &Path) -> LockFile {
        LockFile {
            path: dir.join(LOCK_FILE),
            file: None,
            words: SharedWords::local(WORDS),
            in_process: Mutex::new(()),
        }
    }

    /// Releases the `flock` taken when opening.
    pub fn unlock_file(&self) {
        if let Some(file) = &self.file {
            let _ = file.unlock();
        }
    }

    fn check_identity(&self) -> Result<()> {
        let magic = self.words.load(W_MAGIC);
        if magic != u64::from_le_bytes(LOCK_MAGIC) {
            return Err(Error::CorruptLockFile {
                path: self.path.clone(),
                reason: "bad magic (not a maos-coord lock file)".into(),
            });
        }
        let version = self.words.load(W_VERSION);
        if version != LOCK_VERSION {
            return Err(Error::UnsupportedVersion {
                path: self.path.clone(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
                supported: u32::try_from(LOCK_VERSION).unwrap_or(u32::MAX),
            });
        }
        Ok(())
    }

    /// Whether this thread holds the append lock of this lock file (code run under it, such as
    /// a builder, must not take it again).
    pub fn held_by_this_thread(&self) -> bool {
        HELD.with(std::cell::Cell::get) == std::ptr::from_ref(self) as usize
    }

    /// Takes the append lock, waiting for other threads and processes to release it.
    pub fn lock(&self) -> Result<AppendLock<'_>> {
        let in_process = crate::log::lock(&self.in_process);
        self.lock_file()?;
        Ok(AppendLock::new(self, in_process))
    }

    /// Takes the append lock if nobody holds it, without waiting; `None` if someone does (this
    /// thread included).
    pub fn try_lock(&self) -> Result<Option<AppendLock<'_>>> {
        let in_process = match self.in_process.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
        };
        if let Some(file) = &self.file {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &self.path, e)),
            }
        }
        Ok(Some(AppendLock::new(self, in_process)))
    }

    fn lock_file(&self) -> Result<()> {
        match &self.file {
            Some(file) => file.lock().map_err(|e| Error::io("lock", &self.path, e)),
            None => Ok(()),
        }
    }

    /// Wraps the lock taken by [`LockFile::open`].
    pub fn adopt_lock(&self) -> AppendLock<'_> {
        AppendLock::new(self, crate::log::lock(&self.in_process))
    }

    /// Whether the published tail was written during this boot, so that it describes page-cache
    /// state every process here shares (a tail from before a crash of the machine does not).
    pub fn written_this_boot(&self, boot: [u8; 16]) -> bool {
        let lo = self.words.load(W_BOOT_ID_LO);
        let hi = self.words.load(W_BOOT_ID_HI);
        boot != [0; 16] && (lo, hi) == boot_words(boot)
    }

    /// The LSN the next record will get: every record below it is complete and readable.
    pub fn tail_lsn(&self) -> Lsn {
        Lsn(self.words.load(W_TAIL_LSN))
    }

    /// Every record below this LSN is on stable storage.
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.words.load(W_DURABLE_LSN))
    }

    /// Raises the durable watermark to `lsn` (never lowers it).
    pub fn raise_durable(&self, lsn: Lsn) {
        self.words.fetch_max(W_DURABLE_LSN, lsn.0);
    }

    /// Base LSN of the newest segment.
    pub fn tail_segment(&self) -> Lsn {
        Lsn(self.words.load(W_TAIL_SEGMENT))
    }

    /// The whole published tail. Call with the append lock held for a consistent view.
    pub fn tail(&self) -> Tail {
        Tail {
            segment: self.tail_segment(),
            offset: self.words.load(W_TAIL_OFFSET),
            last_time: Timestamp(self.words.load(W_LAST_TIME).cast_signed()),
            last_frame: self.words.load(W_LAST_FRAME),
            lsn: self.tail_lsn(),
        }
    }

    /// Where the last appender said it would write up to.
    pub fn write_end(&self) -> u64 {
        self.words.load(W_WRITE_END)
    }

    /// Announces that bytes up to `end` of the newest segment are about to be written. Lock held.
    pub fn announce_write(&self, end: u64) {
        self.words.store(W_WRITE_END, end);
    }

    /// Publishes a new tail; readers see the records below `tail.lsn` from now on. Lock held.
    pub fn publish(&self, tail: Tail) {
        self.words.store(W_TAIL_SEGMENT, tail.segment.0);
        self.words.store(W_TAIL_OFFSET, tail.offset);
        self.words.store(W_LAST_TIME, tail.last_time.0.cast_unsigned());
        self.words.store(W_LAST_FRAME, tail.last_frame);
        self.words.store(W_TAIL_LSN, tail.lsn.0);
    }

    /// The number of segment syncs that failed in this boot, in any process (log-format.md,
    /// "Durability", "A failed sync").
    pub fn sync_failures(&self) -> u64 {
        self.words.load(W_SYNC_FAILURES)
    }

    /// How many failed syncs had their lost bytes written again and synced.
    pub fn sync_repaired(&self) -> u64 {
        self.words.load(W_SYNC_REPAIRED)
    }

    /// Whether a failed sync's lost bytes still have to be written again.
    pub fn sync_repair_pending(&self) -> bool {
        self.words.load(W_SYNC_REPAIRED) < self.sync_failures()
    }

    /// Records a failed segment sync.
    pub fn note_failed_sync(&self) {
        self.words.fetch_add(W_SYNC_FAILURES, 1);
    }

    /// Whether an open in the boot the page names synced the directories that hold the log, up
    /// to `level` (1: the log's directory and its parent; 2: also a coordinator's `.maos` and
    /// project root; log-format.md, "Durability", "Names before records").
    pub fn names_synced(&self, level: u64) -> bool {
        self.words.load(W_NAMES_SYNCED) >= level
    }

    /// Records that the directories holding the log were synced in this boot up to `level`
    /// (lock held).
    pub fn note_names_synced(&self, level: u64) {
        self.words.fetch_max(W_NAMES_SYNCED, level);
    }

    /// Records that the bytes lost by the first `failures` failed syncs were written again and
    /// synced (append lock held).
    pub fn note_repaired(&self, failures: u64) {
        self.words.fetch_max(W_SYNC_REPAIRED, failures);
    }

    /// Resets the page after recovery from the segments: the tail, and the durable watermark
    /// `durable` (the tail LSN after a recovery that synced what it kept). Lock held.
    pub fn reset(&self, boot: [u8; 16], tail: Tail, durable: Lsn) {
        let same_boot = self.written_this_boot(boot);
        let (lo, hi) = boot_words(boot);
        self.words.store(W_BOOT_ID_LO, lo);
        self.words.store(W_BOOT_ID_HI, hi);
        self.words.store(W_WRITE_END, tail.offset);
        self.words.store(W_DURABLE_LSN, durable.0);
        if !same_boot {
            // Failed syncs of another boot lost what they lost: recovery read what the disk kept.
            self.words.store(W_SYNC_FAILURES, 0);
            self.words.store(W_SYNC_REPAIRED, 0);
            self.words.store(W_NAMES_SYNCED, 0);
        }
        self.publish(tail);
    }
}

fn boot_words(boot: [u8; 16]) -> (u64, u64) {
    let (lo, hi) = boot.split_at(8);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    (word(lo), word(hi))
}

/// Creates the lock file of a new log directory `dir` that no other process can see yet (a store
/// being built before it is renamed into place), written whole and synced.
pub(crate) fn create_lock_file(dir: &Path) -> Result<()> {
    let path = dir.join(LOCK_FILE);
    let file = crate::fs::open_or_create(&path, false)?;
    write_initial_page(&file, &path)?;
    io::sync_data(&file, &path)
}

/// Whether the lock file's page is all zeros. Reads the magic first: a lock file in use has
/// one, and then nothing more is read.
fn all_zero(file: &File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 8];
    file.read_exact_at(&mut magic, 0).map_err(|e| Error::io("read", path, e))?;
    if magic != [0; 8] {
        return Ok(false);
    }
    let mut page = vec![0u8; LOCK_FILE_LEN];
    file.read_exact_at(&mut page, 0).map_err(|e| Error::io("read", path, e))?;
    Ok(page.iter().all(|&b| b == 0))
}

fn write_initial_page(file: &File, path: &Path) -> Result<()> {
    let mut page = vec![0u8; LOCK_FILE_LEN];
    if let Some(w) = page.get_mut(..8) {
        w.copy_from_slice(&LOCK_MAGIC);
    }
    if let Some(w) = page.get_mut(8..16) {
        w.copy_from_slice(&LOCK_VERSION.to_le_bytes());
    }
    crate::fs::file::write_at(file, path, &page, 0)
}
