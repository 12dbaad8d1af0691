//! The store's files as files: every change to them goes through one seam ([`Storage`], with
//! the real [`Os`] and a fault-injecting twin for crash tests), who may use them
//! ([`StoreAccess`], checked at open), and the temporary files of writers with the sweep that
//! removes those a killed writer left behind.

mod access;
mod fault_disk;
pub(crate) mod file;
pub mod storage;
mod temp;

pub(crate) use access::{
    apply, check_kinds, create_dir, create_subdir, file_mode_in, open_or_create, record_access,
};
pub use access::{check, check_entry, read_access, Owner, StoreAccess, ACCESS_FILE};
pub use fault_disk::FaultDisk;
pub(crate) use file::sync_dir;
pub use storage::{mount, Mounted, OpenMode, Os, Storage};
pub use temp::fault;
pub(crate) use temp::{stale, sweep, temp_target, TempFile};

/// The names of the store's directories and files (log-format.md, "Directory layout").
pub mod names {
    pub use super::access::ACCESS_FILE;
    pub use crate::format::compacted::COMPACTED_FILE;
    pub use crate::format::lock_file::LOCK_FILE;

    /// The directory of a project that holds maos state.
    pub const MAOS_DIR: &str = ".maos";
    /// The store directory inside [`MAOS_DIR`].
    pub const STORE_DIR: &str = "coordination";
    /// The log's directory inside the store.
    pub const LOG_DIR: &str = "log";
    /// The snapshots' directory inside the store.
    pub const SNAPSHOT_DIR: &str = "snapshots";
    /// The durable cursors' directory inside the store.
    pub const CURSOR_DIR: &str = "cursors";
    /// The audit index's directory inside the store.
    pub const INDEX_DIR: &str = "index";
    /// The lock in the snapshots' directory that admits one automatic snapshot writer at a time.
    pub const SNAPSHOT_WRITER_LOCK: &str = "writer.lock";
    /// The compaction lock in the log directory.
    pub const COMPACT_LOCK: &str = "compact.lock";
    /// The recovery journal in the log directory.
    pub const JOURNAL_FILE: &str = "recovery.journal";
}
