//! The store's files as files: who may use them ([`StoreAccess`], checked at open), and the
//! temporary files of writers with the sweep that removes those a killed writer left behind.

mod access;
mod temp;

pub(crate) use access::{apply, create_dir, create_subdir, file_mode_in, open_or_create, record_access};
pub use access::{check, check_entry, read_access, Owner, StoreAccess, ACCESS_FILE};
pub use temp::fault;
pub(crate) use temp::{stale, sweep, sync_dir, temp_target, TempFile};
