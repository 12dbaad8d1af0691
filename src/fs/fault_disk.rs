//! A disk for crash tests: the store's files stay real (so memory maps, `flock` and reads work as
//! ever), and this [`Storage`] counts every operation that changes them, fails one on cue, and
//! keeps in memory what a power cut would leave: the content of each file as of its last sync
//! and the names in each directory as of that directory's last sync. Nothing else survives a
//! power cut on a POSIX filesystem that does the least it is allowed to, so a store that
//! recovers from this image recovers from any real one that keeps more.
//!
//! A sync makes durable the bytes written since the file's last sync (every byte of a file
//! mapped for writing, whose writes the disk cannot see). A sync that fails forgets them: they
//! stay readable, but no later sync writes them unless they are written again, as Linux does
//! after a writeback error (the `fsyncgate` of the Postgres project, 2018). A sync still running
//! when an operation of another thread cuts the power fails too, and makes nothing durable: the
//! image is taken at the cut, and a real machine has no process left to tell that a sync finished.
//!
//! In the style of redb's crash-consistency tests (`tests/crash_consistency.rs`, with a backend
//! that fails after a countdown): a test runs a scripted workload once to count its operations,
//! then once for each N, failing operation N ([`FaultDisk::fail_at`]), filling the disk from
//! operation N on ([`FaultDisk::fill_at`]), or cutting the power before it
//! ([`FaultDisk::cut_power_at`]), and checks what reopens.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::storage::{Os, Storage};
use crate::error::{Error, Result};

/// What goes wrong at the chosen operation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Every operation succeeds.
    None,
    /// Operation `n` fails with `EIO`; the others succeed.
    Fail(u64),
    /// The next operation traced as this (`"fsync directory log"`) fails with `EIO`.
    FailNext(String),
    /// From operation `n` on, every write and allocation fails with `ENOSPC`.
    Fill(u64),
    /// Before operation `n`, the power goes: what was synced is kept in the image, and that
    /// operation and every later one fail with `EIO`.
    CutPower(u64),
}

/// A file's identity: its inode number and birth time (nanoseconds; 0 where the filesystem
/// keeps none), so that an inode number the system reuses names another file.
type Id = (u64, i128);

fn id(meta: &std::fs::Metadata) -> Id {
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
    (meta.ino(), born)
}

/// A directory entry as a power cut leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A file, with its length when the directory was synced: a file whose data was never
    /// synced comes back that long, all zeros (a filesystem may keep the length, not the bytes).
    File {
        id: Id,
        len: u64,
        mode: u32,
    },
    Dir {
        mode: u32,
    },
}

/// What survives a power cut.
#[derive(Debug, Clone, Default)]
struct Durable {
    /// The content of each file as of its last sync.
    data: HashMap<Id, Vec<u8>>,
    /// The entries of each directory as of its last sync.
    dirs: BTreeMap<PathBuf, BTreeMap<OsString, Entry>>,
}

#[derive(Debug)]
struct State {
    /// The byte ranges (offset, length) of each file written since its last sync.
    dirty: HashMap<Id, Vec<(u64, u64)>>,
    /// Files mapped for writing: all of each is written back at every sync.
    mapped: std::collections::HashSet<Id>,
    ops: u64,
    plan: Plan,
    durable: Durable,
    /// The durable state at the moment the power was cut.
    image: Option<Durable>,
    trace: Vec<String>,
}

/// A [`Storage`] that fails on cue and remembers what was synced (module docs). Mount it over a
/// directory with [`FaultDisk::mount`].
#[derive(Debug)]
pub struct FaultDisk {
    root: PathBuf,
    boot: [u8; 16],
    state: Mutex<State>,
}

impl FaultDisk {
    /// Mounts a new disk over `root`, which holds files already (all of them count as synced),
    /// or nothing yet; keep the returned [`super::Mounted`] alive for as long as the disk is to
    /// be used (dropping it unmounts). Open the store through a path that starts with `root` as
    /// written ([`super::mount`]). Its boot id is new: a store last written under another disk
    /// (or the real one) opens as after a reboot.
    ///
    /// # Errors
    /// [`Error::Io`] if `root` cannot be read; [`Error::InvalidArgument`] if something is mounted
    /// over it already.
    pub fn mount(root: &Path) -> Result<(Arc<FaultDisk>, super::Mounted)> {
        let mut durable = Durable::default();
        scan(root, &mut durable)?;
        let disk = Arc::new(FaultDisk {
            root: root.to_owned(),
            boot: *uuid::Uuid::now_v7().as_bytes(),
            state: Mutex::new(State {
                dirty: HashMap::new(),
                mapped: std::collections::HashSet::new(),
                ops: 0,
                plan: Plan::None,
                durable,
                image: None,
                trace: Vec::new(),
            }),
        });
        let mounted = super::mount(root, Arc::clone(&disk) as Arc<dyn Storage>)?;
        Ok((disk, mounted))
    }

    /// Operation `n` (counted from 1 since the disk was mounted) fails with `EIO`.
    pub fn fail_at(&self, n: u64) {
        self.state().plan = Plan::Fail(n);
    }

    /// The next operation whose trace line reads `what` after its number (`"fsync directory
    /// log"`, `"fdatasync log/00000000000000000001.seg"`: see [`FaultDisk::trace`]) fails with
    /// `EIO`; the others succeed.
    pub fn fail_next(&self, what: &str) {
        self.state().plan = Plan::FailNext(what.to_owned());
    }

    /// From operation `n` on, every write and allocation fails with `ENOSPC` (until
    /// [`FaultDisk::heal`]).
    pub fn fill_at(&self, n: u64) {
        self.state().plan = Plan::Fill(n);
    }

    /// The power goes before operation `n`: [`FaultDisk::write_image`] then writes what was
    /// synced by then, and every operation from `n` on fails with `EIO`.
    pub fn cut_power_at(&self, n: u64) {
        self.state().plan = Plan::CutPower(n);
    }

    /// Nothing fails any more: the disk has room again, and a power cut planned for later is
    /// called off (one that happened stays: every operation keeps failing).
    pub fn heal(&self) {
        let mut state = self.state();
        if state.image.is_none() {
            state.plan = Plan::None;
        }
    }

    /// The operations counted so far.
    #[must_use]
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Whether the power was cut.
    #[must_use]
    pub fn power_cut(&self) -> bool {
        self.state().image.is_some()
    }

    /// The last `n` operations, one line each (`"12 fdatasync log/00000000000000000001.seg"`),
    /// for messages of failed tests.
    #[must_use]
    pub fn trace(&self, n: usize) -> Vec<String> {
        let state = self.state();
        state.trace.iter().skip(state.trace.len().saturating_sub(n)).cloned().collect()
    }

    /// Writes into the empty or missing directory `to` what a power cut leaves of the mounted
    /// directory: as of the cut if the power was cut, else as of now. Files carry the modes
    /// they had when they were synced.
    ///
    /// # Errors
    /// [`Error::Io`] if `to` cannot be written.
    pub fn write_image(&self, to: &Path) -> Result<()> {
        let image = {
            let state = self.state();
            state.image.clone().unwrap_or_else(|| state.durable.clone())
        };
        write_dir(&image, &self.root, to)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an operation and decides whether it fails (`write`: it needs space).
    fn begin(&self, what: &str, path: &Path, write: bool) -> io::Result<()> {
        let mut state = self.state();
        state.ops += 1;
        let n = state.ops;
        let shown = path.strip_prefix(&self.root).unwrap_or(path).display().to_string();
        let line = format!("{what} {shown}");
        state.trace.push(format!("{n} {line}"));
        let fail = match &state.plan {
            Plan::None => None,
            Plan::Fail(at) => (n == *at).then_some(libc::EIO),
            Plan::FailNext(next) => {
                let now = *next == line;
                if now {
                    state.plan = Plan::None;
                }
                now.then_some(libc::EIO)
            }
            Plan::Fill(at) => (n >= *at && write).then_some(libc::ENOSPC),
            Plan::CutPower(at) => {
                let at = *at;
                if n == at {
                    state.image = Some(state.durable.clone());
                }
                (n >= at).then_some(libc::EIO)
            }
        };
        match fail {
            Some(errno) => {
                state.trace.push(format!("{n} failed: {}", io::Error::from_raw_os_error(errno)));
                Err(io::Error::from_raw_os_error(errno))
            }
            None => Ok(()),
        }
    }
}

impl FaultDisk {
    /// The error of a sync that began before the power was cut (by an operation of another
    /// thread) and returns after it: that sync never finished, so it fails and makes nothing
    /// durable. Were it to succeed, its caller would take for durable (and acknowledge) bytes
    /// that the image, taken at the cut, does not hold; on a real machine no process runs on
    /// past a power cut to be told that a sync finished.
    fn cut_meanwhile(&self, state: &mut State, path: &Path) -> Option<io::Error> {
        state.image.as_ref()?;
        let shown = path.strip_prefix(&self.root).unwrap_or(path).display().to_string();
        state.trace.push(format!("- failed: {shown}: the power was cut while it was being synced"));
        Some(io::Error::from_raw_os_error(libc::EIO))
    }

    /// Records what a file sync that the system finished made durable (`ino`: the file's id).
    fn finish_sync(&self, file: &File, path: &Path, ino: Id) -> io::Result<()> {
        let len = file.metadata()?.len();
        let mut state = self.state();
        if let Some(e) = self.cut_meanwhile(&mut state, path) {
            state.dirty.remove(&ino); // as for any failed sync
            return Err(e);
        }
        let dirty = state.dirty.remove(&ino).unwrap_or_default();
        let whole = state.mapped.contains(&ino);
        let durable = state.durable.data.entry(ino).or_default();
        durable.resize(usize::try_from(len).map_err(|_| io::ErrorKind::FileTooLarge)?, 0);
        let ranges = if whole { vec![(0, len)] } else { dirty };
        for (offset, n) in ranges {
            let end = (offset + n).min(len);
            let (Ok(from), Ok(to)) = (usize::try_from(offset), usize::try_from(end)) else { continue };
            if let Some(bytes) = durable.get_mut(from..to) {
                file.read_exact_at(bytes, offset)?;
            }
        }
        Ok(())
    }

    /// Records the names a directory sync that the system finished made durable.
    fn finish_sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Listed and recorded under the state's lock: a sync of the same directory by another
        // thread must not record an older listing over a newer one (a real sync never brings
        // back a removed name, nor takes back a durable one).
        let mut state = self.state();
        if let Some(e) = self.cut_meanwhile(&mut state, dir) {
            return Err(e);
        }
        let entries = list(dir)?;
        state.durable.dirs.insert(dir.to_owned(), entries);
        Ok(())
    }
}

impl Storage for FaultDisk {
    fn write_at(&self, file: &File, path: &Path, bufs: &[&[u8]], offset: u64) -> io::Result<()> {
        self.begin("write", path, true)?;
        Os.write_at(file, path, bufs, offset)?;
        let len = bufs.iter().map(|b| b.len() as u64).sum();
        self.state().dirty.entry(id(&file.metadata()?)).or_default().push((offset, len));
        Ok(())
    }

    fn allocate(&self, file: &File, path: &Path, offset: u64, len: u64, zero: bool) -> io::Result<()> {
        self.begin(if zero { "zero" } else { "allocate" }, path, !zero)?;
        Os.allocate(file, path, offset, len, zero)?;
        self.state().dirty.entry(id(&file.metadata()?)).or_default().push((offset, len));
        Ok(())
    }

    fn sync(&self, file: &File, path: &Path, data_only: bool) -> io::Result<()> {
        let ino = id(&file.metadata()?);
        if let Err(e) = self.begin(if data_only { "fdatasync" } else { "fsync" }, path, false) {
            self.state().dirty.remove(&ino); // fsyncgate: the pages are clean now, and lost
            return Err(e);
        }
        Os.sync(file, path, data_only)?;
        self.finish_sync(file, path, ino)
    }

    fn map_write(&self, file: &File, len: usize) -> io::Result<memmap2::MmapMut> {
        self.state().mapped.insert(id(&file.metadata()?));
        Os.map_write(file, len)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.begin("fsync directory", dir, false)?;
        Os.sync_dir(dir)?;
        self.finish_sync_dir(dir)
    }

    fn rename(&self, from: &Path, to: &Path, replace: bool) -> io::Result<()> {
        self.begin("rename", to, false)?;
        Os.rename(from, to, replace)
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.begin("link", to, true)?;
        Os.link(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.begin("remove", path, false)?;
        Os.remove(path)
    }

    fn boot_id(&self) -> [u8; 16] {
        self.boot
    }
}

/// The entries of `dir` as they are now.
fn list(dir: &Path) -> io::Result<BTreeMap<OsString, Entry>> {
    let mut entries = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue }; // removed meanwhile
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            entries.insert(entry.file_name(), Entry::Dir { mode });
        } else if meta.is_file() {
            entries.insert(entry.file_name(), Entry::File { id: id(&meta), len: meta.len(), mode });
        }
    }
    Ok(entries)
}

/// Records everything below `dir` as durable.
fn scan(dir: &Path, durable: &mut Durable) -> Result<()> {
    let entries = list(dir).map_err(|e| Error::io("read directory", dir, e))?;
    for (name, entry) in &entries {
        let path = dir.join(name);
        match entry {
            Entry::Dir { .. } => scan(&path, durable)?,
            Entry::File { id, .. } => {
                let data = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
                durable.data.insert(*id, data);
            }
        }
    }
    durable.dirs.insert(dir.to_owned(), entries);
    Ok(())
}

/// Writes the durable entries of `dir` (and below) into `to`.
fn write_dir(image: &Durable, dir: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("create directory", to, e))?;
    let Some(entries) = image.dirs.get(dir) else { return Ok(()) };
    for (name, entry) in entries {
        let target = to.join(name);
        let mode = match *entry {
            Entry::Dir { mode } => {
                write_dir(image, &dir.join(name), &target)?;
                mode
            }
            Entry::File { id, len, mode } => {
                let zeros = || vec![0; usize::try_from(len).unwrap_or(0)];
                let data = image.data.get(&id).cloned().unwrap_or_else(zeros);
                std::fs::write(&target, data).map_err(|e| Error::io("write", &target, e))?;
                mode
            }
        };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("chmod", &target, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::file;

    fn create(path: &Path) -> File {
        File::options().read(true).write(true).create_new(true).open(path).unwrap()
    }

    #[test]
    fn a_power_cut_keeps_synced_data_under_synced_names_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), b"there before").unwrap();
        let (disk, _mounted) = FaultDisk::mount(dir.path()).unwrap();
        let a = create(&dir.path().join("a"));
        file::write_at(&a, &dir.path().join("a"), b"synced", 0).unwrap();
        file::sync_data(&a, &dir.path().join("a")).unwrap();
        file::write_at(&a, &dir.path().join("a"), b"SYNCED, then more", 0).unwrap();
        let b = create(&dir.path().join("b"));
        file::write_at(&b, &dir.path().join("b"), b"never synced", 0).unwrap();
        file::sync_dir(dir.path()).unwrap();
        let c = create(&dir.path().join("c"));
        file::write_at(&c, &dir.path().join("c"), b"synced, name not", 0).unwrap();
        file::sync_data(&c, &dir.path().join("c")).unwrap();
        disk.cut_power_at(disk.ops() + 1);
        assert!(file::sync_data(&a, &dir.path().join("a")).is_err(), "no power");
        let image = tempfile::tempdir().unwrap();
        disk.write_image(image.path()).unwrap();
        let read = |n: &str| std::fs::read(image.path().join(n)).ok();
        assert_eq!(read("old").as_deref(), Some(&b"there before"[..]));
        assert_eq!(read("a").as_deref(), Some(&b"synced"[..]));
        assert_eq!(read("b").as_deref(), Some(&[0u8; 12][..]), "named, no data synced: zeros");
        assert_eq!(read("c"), None, "data synced, the name never was");
    }

    #[test]
    fn the_chosen_operation_fails_and_a_full_disk_refuses_writes_until_healed() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _mounted) = FaultDisk::mount(dir.path()).unwrap();
        let path = dir.path().join("f");
        let f = create(&path);
        disk.fail_at(2);
        file::write_at(&f, &path, b"1", 0).unwrap();
        let err = file::sync_data(&f, &path).unwrap_err().to_string();
        assert!(err.contains("fdatasync") && err.contains("Input/output error"), "{err}");
        file::sync_data(&f, &path).unwrap();
        disk.fill_at(4);
        let err = file::write_at(&f, &path, b"2", 1).unwrap_err().to_string();
        assert!(err.contains("No space left"), "{err}");
        file::sync_data(&f, &path).unwrap();
        disk.heal();
        file::write_at(&f, &path, b"2", 1).unwrap();
        assert_eq!(disk.trace(1), ["6 write f"]);
    }

    /// The spare segment's thread made the crash sweep of `tests/crash_consistency.rs` fail
    /// now and then: the appender's `fdatasync` of a record was running when the spare thread's
    /// next operation cut the power, returned `Ok` after the image was taken, and the record was
    /// acknowledged though the image did not hold it. Here the two threads' steps are taken one
    /// after the other, in that order.
    #[test]
    fn a_sync_still_running_when_another_thread_cuts_the_power_fails_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _mounted) = FaultDisk::mount(dir.path()).unwrap();
        let (record_path, other_path) = (dir.path().join("a"), dir.path().join("other"));
        let record = create(&record_path);
        let other = create(&other_path);
        file::sync_dir(dir.path()).unwrap();
        file::write_at(&record, &record_path, b"record", 0).unwrap();
        // The sync of `a` starts (its operation is counted and allowed) ...
        disk.begin("fdatasync", &record_path, false).unwrap();
        Os.sync(&record, &record_path, true).unwrap();
        // ... another thread's operation finds the power gone ...
        disk.cut_power_at(disk.ops() + 1);
        assert!(file::write_at(&other, &other_path, b"x", 0).is_err(), "no power");
        // ... and the sync returns after the cut: it must not say the record is durable.
        let ino = id(&record.metadata().unwrap());
        assert!(disk.finish_sync(&record, &record_path, ino).is_err(), "a sync the power cut short fails");
        assert!(disk.finish_sync_dir(dir.path()).is_err(), "so does a directory sync");
        let image = tempfile::tempdir().unwrap();
        disk.write_image(image.path()).unwrap();
        assert_eq!(std::fs::read(image.path().join("a")).unwrap(), b"", "synced as empty, never more");
        // A sync that finished before the cut keeps what it synced.
        let dir2 = tempfile::tempdir().unwrap();
        let (disk2, _mounted2) = FaultDisk::mount(dir2.path()).unwrap();
        let kept_path = dir2.path().join("b");
        let kept = create(&kept_path);
        file::sync_dir(dir2.path()).unwrap();
        file::write_at(&kept, &kept_path, b"record", 0).unwrap();
        file::sync_data(&kept, &kept_path).unwrap();
        disk2.cut_power_at(disk2.ops() + 1);
        assert!(file::sync_data(&kept, &kept_path).is_err());
        let image2 = tempfile::tempdir().unwrap();
        disk2.write_image(image2.path()).unwrap();
        assert_eq!(std::fs::read(image2.path().join("b")).unwrap(), b"record");
    }

    #[test]
    fn a_failed_sync_forgets_what_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _mounted) = FaultDisk::mount(dir.path()).unwrap();
        let path = dir.path().join("f");
        let f = create(&path);
        file::sync_dir(dir.path()).unwrap();
        file::write_at(&f, &path, b"lost", 0).unwrap();
        disk.fail_next("fdatasync f");
        assert!(file::sync_data(&f, &path).is_err());
        file::write_at(&f, &path, b"kept", 4).unwrap();
        file::sync_data(&f, &path).unwrap();
        let image = tempfile::tempdir().unwrap();
        disk.write_image(image.path()).unwrap();
        assert_eq!(std::fs::read(image.path().join("f")).unwrap(), b"\0\0\0\0kept");
    }
}
