//! Who may read and write the store's files: the access recorded in the store, the modes it
//! gives new files and directories whatever the umask, and the check that refuses a store others
//! may write to (log-format.md, "Access").
//!
//! The rule, in the spirit of OpenSSH's `StrictModes` (`sshd_config(5)`): a program that trusts
//! what it reads from files checks first that nobody but their owner (and, when the store is
//! shared with a group on purpose, that group) can have written them.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the file, in the store directory, that records the store's [`StoreAccess`]: one line,
/// `private`, `group-read` or `group-write`.
pub const ACCESS_FILE: &str = "access";

/// Who may use a store's files besides their owner. Recorded in the store when it is created
/// ([`ACCESS_FILE`]); each new directory and file of the store gets the mode below whatever the
/// process's umask.
///
/// Visibility rules (`Private` context values, ...) are enforced by the API among agents that run
/// as one user; file modes are what keeps other users out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreAccess {
    /// Only the owner: directories `0700`, files `0600`.
    #[default]
    Private,
    /// The owner writes; the store directory's group may read, dump, verify and audit (through
    /// read-only opens): directories `2750` (set-group-ID, so new files keep the group), files
    /// `0640`.
    GroupRead,
    /// The owner and the store directory's group coordinate through the store (agents that run
    /// as several users): directories `2770`, files `0660`.
    GroupWrite,
}

impl StoreAccess {
    /// Mode of the store's directories (permission bits and set-group-ID).
    #[must_use]
    pub const fn dir_mode(self) -> u32 {
        match self {
            StoreAccess::Private => 0o700,
            StoreAccess::GroupRead => 0o2750,
            StoreAccess::GroupWrite => 0o2770,
        }
    }

    /// Mode of the store's files.
    #[must_use]
    pub const fn file_mode(self) -> u32 {
        match self {
            StoreAccess::Private => 0o600,
            StoreAccess::GroupRead => 0o640,
            StoreAccess::GroupWrite => 0o660,
        }
    }

    /// Its name in the access file and on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            StoreAccess::Private => "private",
            StoreAccess::GroupRead => "group-read",
            StoreAccess::GroupWrite => "group-write",
        }
    }

    /// Write bits that someone other than a file's owner may hold.
    const fn others_may_write(self) -> u32 {
        match self {
            StoreAccess::GroupWrite => 0o020,
            StoreAccess::Private | StoreAccess::GroupRead => 0,
        }
    }
}

impl std::fmt::Display for StoreAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StoreAccess {
    type Err = Error;

    fn from_str(s: &str) -> Result<StoreAccess> {
        match s {
            "private" => Ok(StoreAccess::Private),
            "group-read" => Ok(StoreAccess::GroupRead),
            "group-write" => Ok(StoreAccess::GroupWrite),
            other => Err(Error::InvalidArgument {
                name: "access",
                reason: format!("{other:?}: expected private, group-read or group-write"),
            }),
        }
    }
}

/// The access recorded in the store directory `store`; `None` if none is recorded (a store made
/// before access was recorded, or no store).
///
/// # Errors
/// [`Error::Io`] if the file exists but cannot be read; [`Error::InvalidArgument`] naming the
/// file if it holds something else than an access name.
pub fn read_access(store: &Path) -> Result<Option<StoreAccess>> {
    let path = store.join(ACCESS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| match e {
            Error::InvalidArgument { reason, .. } => Error::InvalidArgument {
                name: "access file",
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

/// Records `access` in the store directory `store` (durably). With `replace` false, an access
/// recorded meanwhile by another process wins; returns the access now recorded.
pub(crate) fn record_access(store: &Path, access: StoreAccess, replace: bool) -> Result<StoreAccess> {
    let temp = super::TempFile::create(store, ACCESS_FILE)?;
    temp.write_all(format!("{access}\n").as_bytes())?;
    let target = store.join(ACCESS_FILE);
    if replace {
        temp.persist(&target)?;
        return Ok(access);
    }
    if temp.persist_new(&target)? {
        Ok(access)
    } else {
        Ok(read_access(store)?.unwrap_or(access))
    }
}

/// Creates `dir` and its missing parents with `mode` (exactly: the umask does not apply), and
/// syncs the directory that holds each one created, so that every new name is durable. An
/// existing directory is left as it is.
pub(crate) fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![dir];
    while let Some(parent) = missing.last().and_then(|d| d.parent()) {
        if parent.as_os_str().is_empty() || parent.is_dir() {
            break;
        }
        missing.push(parent);
    }
    for d in missing.iter().rev() {
        match DirBuilder::new().mode(mode & 0o777).create(d) {
            Ok(()) => std::fs::set_permissions(d, Permissions::from_mode(mode))
                .map_err(|e| Error::io("chmod", *d, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(Error::io("create directory", *d, e)),
        }
    }
    // Deepest first: a name is synced only once the directory it names holds its own.
    for d in &missing {
        super::sync_dir(d.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Creates `dir` (a directory of the store) with the mode of the directory that holds it,
/// without permissions for others.
pub(crate) fn create_subdir(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let mode = std::fs::metadata(parent).map_err(|e| Error::io("stat", parent, e))?.mode() & 0o2770;
    create_dir(dir, mode)
}

/// The mode a new file in `dir` gets: the directory's read and write bits for owner and group
/// (`0700` → `0600`, `2750` → `0640`, `2770` → `0660`), never any for others.
pub(crate) fn file_mode_in(dir: &Path) -> Result<u32> {
    let mode = std::fs::metadata(dir).map_err(|e| Error::io("stat", dir, e))?.mode();
    Ok(mode & 0o660)
}

/// Opens `path` for reading and writing (appending if `append`), creating it with the mode of
/// its directory ([`file_mode_in`]) if it does not exist.
pub(crate) fn open_or_create(path: &Path, append: bool) -> Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mode = file_mode_in(dir)?;
    let open = |create: bool| {
        let mut opts = OpenOptions::new();
        opts.read(true).write(!append).append(append).mode(mode);
        if create {
            opts.create_new(true);
        }
        opts.open(path)
    };
    match open(true) {
        Ok(file) => {
            file.set_permissions(Permissions::from_mode(mode)).map_err(|e| Error::io("chmod", path, e))?;
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            open(false).map_err(|e| Error::io("open", path, e))
        }
        Err(e) => Err(Error::io("create", path, e)),
    }
}

/// Whom the files of a store must belong to: the owner (and group) of its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The uid that owns the store directory.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
}

impl Owner {
    /// The owner and group of `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] if `dir` cannot be looked at.
    pub fn of(dir: &Path) -> Result<Owner> {
        let meta = std::fs::metadata(dir).map_err(|e| Error::io("stat", dir, e))?;
        Ok(Owner { uid: meta.uid(), gid: meta.gid() })
    }
}

/// Checks that nobody but `owner` (and root, and with a group access the owner's group) may write
/// to `dir` or anything under it, and with a group access that all of it belongs to that group;
/// and that it holds only directories and regular files (a FIFO or device would block or lie to a
/// reader). `dir` itself may be reached through a symbolic link; a symbolic link inside it is
/// judged by the file it points to, and one that points to a directory is refused (it would lead
/// the store's readers where the check did not look).
///
/// # Errors
/// [`Error::InsecurePermissions`] naming the first path that fails, its mode and why;
/// [`Error::Io`] if a directory cannot be listed.
pub fn check(dir: &Path, access: StoreAccess, owner: Owner) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io("stat", dir, e))?;
    check_tree(dir, &meta, access, owner)
}

/// Checks `path` itself as [`check`] does, not what it holds.
///
/// # Errors
/// As [`check`].
pub fn check_entry(path: &Path, access: StoreAccess, owner: Owner) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    check_one(path, &meta, access, owner)
}

fn check_tree(path: &Path, meta: &std::fs::Metadata, access: StoreAccess, owner: Owner) -> Result<()> {
    if meta.file_type().is_symlink() {
        // What counts is who may write what is read through it. A directory it points to is
        // refused rather than walked (a link may lead anywhere, and round in circles).
        return match std::fs::metadata(path) {
            Ok(target) if target.is_dir() => Err(Error::InsecurePermissions {
                path: path.to_owned(),
                mode: target.mode() & 0o7777,
                access,
                reason: "is a symbolic link to a directory, which the store never makes".into(),
            }),
            Ok(target) => check_one(path, &target, access, owner),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()), // dangling: nothing to read
            Err(e) => Err(Error::io("stat", path, e)),
        };
    }
    check_one(path, meta, access, owner)?;
    if !meta.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(|e| Error::io("read directory", path, e))? {
        let entry = entry.map_err(|e| Error::io("read directory", path, e))?;
        let child = entry.path();
        let meta = match std::fs::symlink_metadata(&child) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // removed meanwhile
            Err(e) => return Err(Error::io("stat", &child, e)),
        };
        check_tree(&child, &meta, access, owner)?;
    }
    Ok(())
}

fn check_one(path: &Path, meta: &std::fs::Metadata, access: StoreAccess, owner: Owner) -> Result<()> {
    let mode = meta.mode() & 0o7777;
    let insecure =
        |reason: String| Error::InsecurePermissions { path: path.to_owned(), mode, access, reason };
    if !meta.is_file() && !meta.is_dir() {
        return Err(insecure(
            "is neither a regular file nor a directory (the store makes only those)".into(),
        ));
    }
    if mode & 0o002 != 0 {
        return Err(insecure("may be written by any user".into()));
    }
    if mode & 0o020 & !access.others_may_write() != 0 {
        return Err(insecure("may be written by its group".into()));
    }
    let (uid, gid) = (meta.uid(), meta.gid());
    if access != StoreAccess::GroupWrite && uid != owner.uid && uid != 0 {
        return Err(insecure(format!("belongs to uid {uid}, not to the store's owner (uid {})", owner.uid)));
    }
    if access != StoreAccess::Private && gid != owner.gid {
        return Err(insecure(format!(
            "belongs to group {gid}, not to the store's group (gid {})",
            owner.gid
        )));
    }
    Ok(())
}

/// Refuses anything under `dir` that no mode makes safe: what is neither a regular file nor a
/// directory, and symbolic links to directories (as [`check`] does).
///
/// # Errors
/// [`Error::InsecurePermissions`] naming it (`access` in it is the default);
/// [`Error::Io`] if a directory cannot be listed.
pub(crate) fn check_kinds(dir: &Path) -> Result<()> {
    let refuse = |path: PathBuf, mode: u32, reason: &str| {
        Err(Error::InsecurePermissions {
            path,
            mode: mode & 0o7777,
            access: StoreAccess::default(),
            reason: format!("{reason}; remove it"),
        })
    };
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
        let path = entry.map_err(|e| Error::io("read directory", dir, e))?.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue }; // removed meanwhile
        if meta.is_dir() {
            check_kinds(&path)?;
        } else if meta.file_type().is_symlink() {
            if path.is_dir() {
                return refuse(
                    path,
                    meta.mode(),
                    "is a symbolic link to a directory, which the store never makes",
                );
            }
        } else if !meta.is_file() {
            return refuse(
                path,
                meta.mode(),
                "is neither a regular file nor a directory (the store makes only those)",
            );
        }
    }
    Ok(())
}

/// Every directory and file under `dir` (itself included; symbolic links and what they point to
/// are left out), each with its metadata.
fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, std::fs::Metadata)>) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io("stat", dir, e))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let is_dir = meta.is_dir();
    out.push((dir.to_owned(), meta));
    if is_dir {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
            let path = entry.map_err(|e| Error::io("read directory", dir, e))?.path();
            match walk(&path, out) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// Gives `paths` (each with everything under it when `deep`) the modes of `access` and, if
/// `group` is given, that group. Checks first that every change can be made, so that it changes
/// all or nothing: this process must own (or, as root, may change) every entry that needs a
/// change, and unless `access` is [`StoreAccess::GroupWrite`] every entry must belong to `owner`
/// (a store that other users wrote cannot become theirs alone). Entries that vanish meanwhile (a
/// running agent removed them) are passed over. Returns how many it changed.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the first entry that stands in the way (before any
/// change); [`Error::Io`] naming an entry whose change failed.
pub(crate) fn apply(
    paths: &[(&Path, bool)],
    access: StoreAccess,
    group: Option<u32>,
    owner: u32,
) -> Result<usize> {
    let mut entries = Vec::new();
    for &(path, deep) in paths {
        if deep {
            walk(path, &mut entries)?;
        } else {
            entries.push((path.to_owned(), std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?));
        }
    }
    let want = |meta: &std::fs::Metadata| if meta.is_dir() { access.dir_mode() } else { access.file_mode() };
    let needs_change = |meta: &std::fs::Metadata| {
        group.is_some_and(|g| g != meta.gid()) || meta.mode() & 0o7777 != want(meta)
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let refuse = |path: &Path, why: String| {
        Err(Error::InvalidArgument {
            name: "store access",
            reason: format!("{}: {why} (nothing was changed)", path.display()),
        })
    };
    for (path, meta) in &entries {
        if access != StoreAccess::GroupWrite && meta.uid() != owner {
            return refuse(
                path,
                format!(
                    "belongs to uid {}, so the store cannot become {access}: only the store's owner (uid {owner}) may own its files then",
                    meta.uid()
                ),
            );
        }
        if needs_change(meta) && me != 0 && meta.uid() != me {
            return refuse(
                path,
                format!("belongs to uid {}: only its owner may change its mode or group", meta.uid()),
            );
        }
    }
    let mut changed = 0;
    for (path, meta) in &entries {
        if !needs_change(meta) {
            continue;
        }
        let vanished = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        if let Some(gid) = group.filter(|&g| g != meta.gid()) {
            match std::os::unix::fs::chown(path, None, Some(gid)) {
                Err(e) if vanished(&e) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    return Err(Error::io("chgrp (this user is not a member of that group)", path, e))
                }
                Err(e) => return Err(Error::io("chgrp", path, e)),
                Ok(()) => {}
            }
        }
        // Changing the group clears set-group-ID: the mode is set after it.
        match std::fs::set_permissions(path, Permissions::from_mode(want(meta))) {
            Err(e) if vanished(&e) => {}
            Err(e) => return Err(Error::io("chmod", path, e)),
            Ok(()) => changed += 1,
        }
    }
    Ok(changed)
}
