//! The store directory as a whole: creating it with its recorded access, checking at open that
//! nobody else may write to it, and `init` (log-format.md, "Access").

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fs::{self, StoreAccess};

/// Prepares the store directory `store` for an open: creates it (and `.maos` above it) with
/// `access` if it does not exist and records that access; otherwise reads the recorded one (a
/// store from before access was recorded counts as [`StoreAccess::Private`]). Unless `allow_insecure`,
/// refuses a store someone the access does not allow may write to. Returns the store's access.
pub(crate) fn prepare(store: &Path, access: StoreAccess, allow_insecure: bool) -> Result<StoreAccess> {
    let access = if store.is_dir() {
        fs::read_access(store)?.unwrap_or_default()
    } else {
        fs::create_dir(store, access.dir_mode())?;
        fs::record_access(store, access, false)?
    };
    if !allow_insecure {
        check(store, access)?;
    }
    Ok(access)
}

/// Refuses a store someone its access does not allow may write to: the store directory, all it
/// holds, and the `.maos` directory above it.
fn check(store: &Path, access: StoreAccess) -> Result<()> {
    let owner = fs::owner_of(store)?;
    if let Some(parent) = store.parent().filter(|p| p.file_name().is_some_and(|n| n == ".maos")) {
        fs::check_entry(parent, access, owner)?;
    }
    fs::check(store, access)
}

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInit {
    /// The store directory, `<root>/.maos/coordination`.
    pub store: PathBuf,
    /// A new store was created.
    pub created: bool,
    /// The access recorded before (`None`: a new store, or one from before access was
    /// recorded).
    pub previous: Option<StoreAccess>,
    /// The access now recorded.
    pub access: StoreAccess,
    /// Files and directories whose mode was changed to match it.
    pub changed: usize,
}

/// Creates the store of the project at `root` with `access`, or gives an existing store that
/// access: records it and sets the modes of the store's directories and files (and of `.maos`)
/// to it ([`StoreAccess::dir_mode`], [`StoreAccess::file_mode`]); then opens the store once (which checks
/// it). Running it again with the same access changes nothing.
///
/// # Errors
/// [`crate::Error::Io`] naming a file whose mode this process may not change (another user's);
/// errors of [`crate::Coordinator::open`].
pub fn init(root: &Path, access: StoreAccess) -> Result<StoreInit> {
    let store = super::store_dir(root);
    let created = !store.is_dir();
    let previous = if created { None } else { fs::read_access(&store)? };
    let mut changed = 0;
    if !created {
        if previous != Some(access) {
            fs::record_access(&store, access, true)?;
        }
        if let Some(maos) = store.parent() {
            changed += fs::apply_entry(maos, access)?;
        }
        changed += fs::apply(&store, access)?;
    }
    drop(super::Coordinator::options(root).access(access).open()?);
    Ok(StoreInit { store, created, previous, access, changed })
}
