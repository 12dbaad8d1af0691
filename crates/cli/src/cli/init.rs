//! `maos-coord init`: create a store, or give an existing one the access asked for.

use maos_coord::coordinator::{init, store_dir};
use maos_coord::fs::StoreAccess;
use serde_json::json;

use super::{Failure, Global, Out};

#[derive(clap::Args)]
pub struct InitArgs {
    /// Share the store with a group (`--group`, by default the project root's group): `read`
    /// (the default) lets the group read, dump, verify and audit (directories 2750, files 0640);
    /// `write` lets agents that run as several users of the group coordinate through it
    /// (directories 2770, files 0660). Without it, the store is private to its owner.
    #[arg(long, value_name = "read|write", num_args = 0..=1, default_missing_value = "read")]
    group_shared: Option<GroupShare>,
    /// The group to share the store with (a name or a number); with --group-shared only.
    #[arg(long, requires = "group_shared")]
    group: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GroupShare {
    Read,
    Write,
}

pub fn run(args: &InitArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let access = match args.group_shared {
        None => StoreAccess::Private,
        Some(GroupShare::Read) => StoreAccess::GroupRead,
        Some(GroupShare::Write) => StoreAccess::GroupWrite,
    };
    let group = args.group.as_deref().map(group_id).transpose()?;
    let done = init(g.root(), access, group)?;
    if g.json() {
        out.line(json!({
            "store": done.store,
            "created": done.created,
            "access": done.access.name(),
            "previous_access": done.previous.map(StoreAccess::name),
            "group": done.group,
            "modes_changed": done.changed,
        }))?;
        return Ok(());
    }
    let store = store_dir(g.root());
    let shared = done.group.map_or(String::new(), |gid| format!(" with group {gid}"));
    if done.created {
        out.line(format_args!("created the store in {} (access {}{shared})", store.display(), done.access))?;
    } else {
        let was = done.previous.map_or("not recorded".to_owned(), |a| a.to_string());
        out.line(format_args!(
            "the store in {} has access {}{shared} (was {was}); {} files and directories changed",
            store.display(),
            done.access,
            done.changed
        ))?;
    }
    Ok(())
}

/// A group id from a number or a group name.
fn group_id(group: &str) -> Result<u32, Failure> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || {
        Failure::from(maos_coord::Error::InvalidArgument {
            name: "group",
            reason: format!("no group named {group:?}"),
        })
    };
    let name = std::ffi::CString::new(group).map_err(|_| unknown())?;
    // SAFETY: `name` is a valid C string; getgrnam returns null or a pointer to a static entry,
    // read at once, before any other call could overwrite it (this process runs one command).
    let entry = unsafe { libc::getgrnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(unknown());
    }
    // SAFETY: non-null, so it points to a valid `group` entry.
    Ok(unsafe { (*entry).gr_gid })
}
