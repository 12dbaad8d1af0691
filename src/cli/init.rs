//! `maos-coord init`: create a store, or give an existing one the access asked for.

use maos_coord::coordinator::{init, store_dir};
use maos_coord::fs::StoreAccess;
use serde_json::json;

use super::{Failure, Out};

#[derive(clap::Args)]
pub struct InitArgs {
    /// Project root; the store lives in `<root>/.maos/coordination/`.
    #[arg(long, default_value = ".")]
    root: std::path::PathBuf,
    /// Share the store with the group of its directory: `read` (the default) lets the group
    /// read, dump, verify and audit (directories 2750, files 0640); `write` lets agents that run
    /// as several users of the group coordinate through it (directories 2770, files 0660).
    #[arg(long, value_name = "read|write", num_args = 0..=1, default_missing_value = "read")]
    group_shared: Option<GroupShare>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GroupShare {
    Read,
    Write,
}

impl InitArgs {
    /// Whether `--json` was given (errors are then printed as JSON too).
    pub fn json(&self) -> bool {
        self.json
    }
}

pub fn run(args: &InitArgs, out: &mut Out) -> Result<(), Failure> {
    let access = match args.group_shared {
        None => StoreAccess::Private,
        Some(GroupShare::Read) => StoreAccess::GroupRead,
        Some(GroupShare::Write) => StoreAccess::GroupWrite,
    };
    let done = init(&args.root, access)?;
    if args.json {
        out.line(json!({
            "store": done.store,
            "created": done.created,
            "access": done.access.name(),
            "previous_access": done.previous.map(StoreAccess::name),
            "modes_changed": done.changed,
        }))?;
        return Ok(());
    }
    let store = store_dir(&args.root);
    if done.created {
        out.line(format_args!("created the store in {} (access {})", store.display(), done.access))?;
    } else {
        let was = done.previous.map_or("not recorded".to_owned(), |a| a.to_string());
        out.line(format_args!(
            "the store in {} has access {} (was {was}); {} modes changed",
            store.display(),
            done.access,
            done.changed
        ))?;
    }
    Ok(())
}
