//! The store directory as a whole: creating it with its recorded access, checking at open that
//! nobody else may write to it, and `init` (log-format.md, "Access").

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::{self, Owner, StoreAccess};

/// Prepares the store directory `store` for an open: creates it if it does not exist, with
/// `access` and the group of the project root, and returns the store's access; otherwise reads
/// the recorded one (a store from before access was recorded counts as [`StoreAccess::Private`]).
/// Unless `allow_insecure`, refuses a store someone the access does not allow may write to.
///
/// A store is created whole: a directory beside it is filled (its mode, its group, the access
/// file) and renamed into place, so that a concurrent open sees no store or a complete one.
pub(crate) fn prepare(store: &Path, access: StoreAccess, allow_insecure: bool) -> Result<StoreAccess> {
    if !store.is_dir() {
        create(store, access, None)?;
    }
    checked_access(store, allow_insecure)
}

/// Creates the store of the project at `root` as a coordinator open would (private) if there is
/// none, and returns its access after the check of [`checked_access`].
///
/// # Errors
/// As [`checked_access`]; [`Error::Io`] if the store cannot be created.
pub fn ensure_store(root: &Path, allow_insecure: bool) -> Result<StoreAccess> {
    prepare(&super::store_dir(root), StoreAccess::Private, allow_insecure)
}

/// The recorded access of the store directory `store`, after checking (unless `allow_insecure`)
/// that nobody it does not allow may write to the store. Creates nothing; a missing store is
/// [`StoreAccess::Private`] (the open that follows reports it missing, or creates it).
///
/// # Errors
/// [`Error::InsecurePermissions`]; [`Error::Io`] if the store cannot be looked at.
pub fn checked_access(store: &Path, allow_insecure: bool) -> Result<StoreAccess> {
    if !store.is_dir() {
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
    if !allow_insecure {
        let owner = Owner::of(store)?;
        if let Some(maos) = store.parent().filter(|p| p.file_name().is_some_and(|n| n == fs::names::MAOS_DIR))
        {
            fs::check_entry(maos, access, owner)?;
        }
        fs::check(store, access, owner)?;
    }
    Ok(access)
}

/// Creates the store directory `store` with `access`, its group `group` (default: the group of
/// the project root) for a group access. Loses quietly to a concurrent creator.
fn create(store: &Path, access: StoreAccess, group: Option<u32>) -> Result<()> {
    let maos = store
        .parent()
        .ok_or_else(|| Error::Internal { what: "a store directory without a parent".into() })?;
    let root = maos.parent().unwrap_or(Path::new("."));
    if !root.as_os_str().is_empty() && !root.is_dir() {
        std::fs::create_dir_all(root).map_err(|e| Error::io("create directory", root, e))?;
    }
    let group = match access {
        StoreAccess::Private => None,
        _ => Some(group.map_or_else(
            || Owner::of(if root.as_os_str().is_empty() { Path::new(".") } else { root }).map(|o| o.gid),
            Ok,
        )?),
    };
    if !maos.is_dir() {
        fs::create_dir(maos, access.dir_mode())?;
        if group.is_some() {
            fs::apply(&[(maos, false)], access, group)?;
        }
    }
    let building = tempfile::Builder::new()
        .prefix("coordination.")
        .suffix(".new")
        .tempdir_in(maos)
        .map_err(|e| Error::io("create directory", maos, e))?;
    fs::apply(&[(building.path(), false)], access, group)?;
    fs::record_access(building.path(), access, true)?;
    match std::fs::rename(building.path(), store) {
        Ok(()) => {
            // The directory is in place under its name: nothing of it is to be removed.
            let _ = building.keep();
            fs::sync_dir(maos)
        }
        // Another process created the store first (rename onto a non-empty directory).
        Err(e) if store.is_dir() && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
            Ok(())
        }
        Err(e) => Err(Error::io("rename", building.path(), e)),
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
/// once (which checks it). Every change is checked first: if this process may not make one of
/// them (a file of another user), nothing is changed. Running it again changes nothing.
///
/// # Errors
/// [`Error::InvalidArgument`] naming a file this process may not change; errors of
/// [`crate::Coordinator::open`].
pub fn init(root: &Path, access: StoreAccess, group: Option<u32>) -> Result<StoreInit> {
    let store = super::store_dir(root);
    let created = !store.is_dir();
    let previous = if created { None } else { fs::read_access(&store).ok().flatten() };
    let group = match access {
        StoreAccess::Private => None,
        _ => Some(match group {
            Some(gid) => gid,
            None if root.is_dir() => std::fs::metadata(root).map_err(|e| Error::io("stat", root, e))?.gid(),
            None => Owner::of(Path::new("."))?.gid,
        }),
    };
    let mut changed = 0;
    if created {
        create(&store, access, group)?;
    } else {
        let maos = store.parent().unwrap_or(Path::new(fs::names::MAOS_DIR));
        changed = fs::apply(&[(maos, false), (&store, true)], access, group)?;
        if previous != Some(access) {
            fs::record_access(&store, access, true)?;
        }
    }
    drop(super::Coordinator::options(root).open()?);
    Ok(StoreInit { store, created, previous, access, group, changed })
}
