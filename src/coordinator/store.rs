//! The store directory as a whole: creating it with its recorded access, checking at open that
//! nobody else may write to it, and `init` (log-format.md, "Access").

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::{self, names, Owner, StoreAccess};

/// Prepares the store directory `store` for an open: creates it if it does not exist, with
/// `access` and the group of the project root, and returns the store's access; otherwise reads
/// the recorded one (a store from before access was recorded counts as [`StoreAccess::Private`]).
/// Unless `allow_insecure`, refuses a store someone the access does not allow may write to.
///
/// A store is created whole: a directory beside it is filled (its mode, its group, the access
/// file, the log directory with its lock file, the snapshot and cursor directories) and renamed
/// into place, so that a concurrent open, by this user or another, sees no store or a complete one.
pub(crate) fn prepare(store: &Path, access: StoreAccess, allow_insecure: bool) -> Result<StoreAccess> {
    if !exists(store)? {
        if !allow_insecure {
            check_project_root(store, access)?;
        }
        create(store, access, None)?;
    }
    let access = checked_access(store, allow_insecure)?;
    fs::sweep(store, |name| fs::temp_target(name) == Some(fs::ACCESS_FILE))?;
    if let Some(maos) = store.parent() {
        sweep_built(maos, names::STORE_DIR)?;
    }
    Ok(access)
}

/// Creates the store of the project at `root` as a coordinator open would (private) if there is
/// none, and returns its access after the check of [`checked_access`].
///
/// # Errors
/// As [`checked_access`]; [`Error::Io`] if the store cannot be created.
pub fn ensure_store(root: &Path, allow_insecure: bool) -> Result<StoreAccess> {
    prepare(&super::store_dir(root), StoreAccess::Private, allow_insecure)
}

/// Whether the store directory exists; an error (naming it) if it cannot be looked at.
pub(super) fn exists(store: &Path) -> Result<bool> {
    match std::fs::metadata(store) {
        Ok(meta) => Ok(meta.is_dir()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("look at the store", store, e)),
    }
}

/// This process's effective uid.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The recorded access of the store directory `store`, after checking (unless `allow_insecure`)
/// that nobody it does not allow may write to the store, to `.maos`, or (without the sticky bit)
/// to the project root that holds them. (Another user may read a store whose modes let them, e.g.
/// an auditor: reading needs no write access.) Creates nothing; a missing store is [`StoreAccess::Private`] (the open that follows
/// reports it missing, or creates it).
///
/// # Errors
/// [`Error::InsecurePermissions`]; [`Error::Io`] if the store cannot be looked at.
pub fn checked_access(store: &Path, allow_insecure: bool) -> Result<StoreAccess> {
    if !exists(store)? {
        return Ok(StoreAccess::default());
    }
    let recorded = fs::read_access(store)?;
    let access = recorded.unwrap_or_default();
    if recorded.is_none() {
        tracing::warn!(
            store = %store.display(),
            "the store records no access (it predates recorded access): taken as private; `maos-coord init` makes it private"
        );
    }
    if allow_insecure {
        return Ok(access);
    }
    let owner = Owner::of(store)?;
    if let Some(maos) = store.parent().filter(|p| p.file_name().is_some_and(|n| n == names::MAOS_DIR)) {
        fs::check_entry(maos, access, owner)?;
    }
    check_project_root(store, access)?;
    fs::check(store, access, owner)?;
    Ok(access)
}

/// Refuses a project root (the directory that holds `.maos`) that any user may write to without
/// the sticky bit: anyone could put another `.maos` in its place.
fn check_project_root(store: &Path, access: StoreAccess) -> Result<()> {
    let Some(root) = store.parent().and_then(Path::parent) else { return Ok(()) };
    let root = if root.as_os_str().is_empty() { Path::new(".") } else { root };
    let meta = match std::fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()), // created with the store
        Err(e) => return Err(Error::io("stat", root, e)),
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(Error::InsecurePermissions {
            path: root.to_owned(),
            mode,
            access,
            reason: "may be written by any user, who could put another .maos in its place".into(),
        });
    }
    Ok(())
}

/// Creates the store directory `store` with `access`, its group `group` (default: the group of
/// the project root) for a group access. Loses quietly to a concurrent creator: returns whether
/// this call created it.
fn create(store: &Path, access: StoreAccess, group: Option<u32>) -> Result<bool> {
    let maos = store
        .parent()
        .ok_or_else(|| Error::Internal { what: "a store directory without a parent".into() })?;
    let root = maos.parent().filter(|r| !r.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !root.is_dir() {
        std::fs::create_dir_all(root).map_err(|e| Error::io("create directory", root, e))?;
    }
    let group = match access {
        StoreAccess::Private => None,
        _ => Some(group.map_or_else(|| Owner::of(root).map(|o| o.gid), Ok)?),
    };
    let me = euid();
    // `.maos`: made whole too (other users may race for it), or given the access of the store
    // that is being created in it, when this user owns it.
    if exists(maos)? {
        let meta = std::fs::metadata(maos).map_err(|e| Error::io("stat", maos, e))?;
        if meta.uid() == me {
            fs::apply(&[(maos, false)], access, group, me)?;
        }
    } else {
        let building = built_dir(root, names::MAOS_DIR, access, group)?;
        place(building, maos, root)?;
    }
    sweep_built(root, names::MAOS_DIR)?;
    let building = built_dir(maos, names::STORE_DIR, access, group)?;
    let path = building.dir.path();
    fs::record_access(path, access, true)?;
    let log = path.join(names::LOG_DIR);
    fs::create_subdir(&log)?;
    crate::log::create_lock_file(&log)?;
    for dir in [names::SNAPSHOT_DIR, names::CURSOR_DIR] {
        fs::create_subdir(&path.join(dir))?;
    }
    place(building, store, maos)
}

/// A directory being built under a temporary name. Its creator holds a shared `flock` on the
/// directory that holds it until it is placed or dropped (then removed), so that a sweep, which
/// needs that lock exclusively, never runs while one is being built.
struct Building {
    dir: tempfile::TempDir,
    _parent: std::fs::File,
}

/// A new, empty directory `<in>/<name>.<random>.new` with the mode and group of `access`.
fn built_dir(parent: &Path, name: &str, access: StoreAccess, group: Option<u32>) -> Result<Building> {
    let lock = std::fs::File::open(parent).map_err(|e| Error::io("open", parent, e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared)
        .map_err(|e| Error::io("lock", parent, e.into()))?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}."))
        .suffix(".new")
        .tempdir_in(parent)
        .map_err(|e| Error::io("create directory", parent.join(name), e))?;
    fs::apply(&[(dir.path(), false)], access, group, euid())?;
    Ok(Building { dir, _parent: lock })
}

/// Removes the directories `<in>/<name>.<random>.new` that creators killed while building left
/// behind: when nobody is building one (the exclusive lock on `parent` can be taken), every such
/// directory is a dead creator's.
fn sweep_built(parent: &Path, name: &str) -> Result<()> {
    let Ok(lock) = std::fs::File::open(parent) else { return Ok(()) };
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(()); // a creator is at work
    }
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    let prefix = format!("{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else { continue };
        if !(n.starts_with(&prefix) && n.ends_with(".new") && entry.file_type().is_ok_and(|t| t.is_dir())) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(dir = %path.display(), "removed a store directory a killed creator left");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
    }
    Ok(())
}

/// Renames a built directory to `to`, unless another process put one there first (then it is
/// removed); returns whether it was put in place.
fn place(building: Building, to: &Path, parent: &Path) -> Result<bool> {
    let Building { dir: building, _parent: lock } = building;
    // Never replaces: a plain rename would replace an empty directory another process just put
    // there, and that process's next step inside it would fail.
    if fs::file::rename_new(building.path(), to)? {
        // The directory is in place under its name: nothing of it is to be removed.
        let _ = building.keep();
        drop(lock);
        fs::sync_dir(parent)?;
        Ok(true)
    } else if to.is_dir() {
        Ok(false) // another process created it first
    } else {
        Err(Error::io("rename", building.path(), std::io::ErrorKind::AlreadyExists.into()))
    }
}

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInit {
    /// The store directory, `<root>/.maos/coordination`.
    pub store: PathBuf,
    /// A new store was created.
    pub created: bool,
    /// The access recorded before (`None`: a new store, or one from before access was
    /// recorded, or an access file that could not be read).
    pub previous: Option<StoreAccess>,
    /// The access now recorded.
    pub access: StoreAccess,
    /// The group the store is shared with (`None` for a private store).
    pub group: Option<u32>,
    /// Files and directories whose mode or group was changed.
    pub changed: usize,
}

/// Creates the store of the project at `root` with `access`, or gives an existing store that
/// access: sets the modes ([`StoreAccess::dir_mode`], [`StoreAccess::file_mode`]) of `.maos`, the
/// store directory and everything in it, with a group access also their group (`group`, by
/// default the group of the project root), and records the access, last; then opens the store
/// once (which checks it). Only the store's owner may change an existing store, and every change
/// is checked first: if one cannot be made (a file of another user that needs a change, or a
/// store other users wrote that is to become private or group-read), nothing is changed. Running
/// it again changes nothing. Agents should be stopped meanwhile: files they create during it may
/// keep the old modes (running it again fixes them).
///
/// # Errors
/// [`Error::InvalidArgument`] naming what stands in the way; errors of
/// [`crate::Coordinator::open`].
pub fn init(root: &Path, access: StoreAccess, group: Option<u32>) -> Result<StoreInit> {
    let store = super::store_dir(root);
    let mut created = false;
    let group = match access {
        StoreAccess::Private => None,
        _ => Some(match group {
            Some(gid) => gid,
            None => Owner::of(if root.is_dir() { root } else { Path::new(".") })?.gid,
        }),
    };
    let mut changed = 0;
    check_project_root(&store, access)?;
    if !exists(&store)? {
        created = create(&store, access, group)?;
    }
    // One init at a time changes a store (concurrent ones asking for different accesses would
    // leave a mixture): the lock is on the store directory, released when this returns.
    let serial = std::fs::File::open(&store).map_err(|e| Error::io("open", &store, e))?;
    rustix::fs::flock(&serial, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io("lock", &store, e.into()))?;
    // An existing store, or one a concurrent creator made first: given this access.
    let previous = if created { None } else { fs::read_access(&store).ok().flatten() };
    if !created {
        let owner = Owner::of(&store)?;
        let as_asked = previous == Some(access) && group.is_none_or(|g| g == owner.gid);
        if euid() != owner.uid && as_asked && fs::check(&store, access, owner).is_ok() {
            // Nothing to change (another user made it so, maybe a moment ago).
            drop(super::Coordinator::options(root).open()?);
            return Ok(StoreInit { store, created, previous, access, group, changed });
        }
        let owner = owner.uid;
        if euid() != owner {
            return Err(Error::InvalidArgument {
                name: "store access",
                reason: format!(
                    "{} belongs to uid {owner}: only its owner may change its access (run `maos-coord init` as that user; nothing was changed)",
                    store.display()
                ),
            });
        }
        let maos = store.parent().unwrap_or(Path::new(names::MAOS_DIR));
        // What no mode can make safe is refused before anything changes.
        fs::check_kinds(&store)?;
        changed = fs::apply(&[(maos, false), (&store, true)], access, group, owner)?;
        if previous != Some(access) {
            fs::record_access(&store, access, true)?;
        }
    }
    drop(super::Coordinator::options(root).open()?);
    Ok(StoreInit { store, created, previous, access, group, changed })
}

/// The directory holding `path`: `.` for a relative path of one component.
pub(crate) fn parent_or_cwd(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}
