//! maos-coord: an append-only, event-sourced coordination store for multi-agent systems.
//!
//! Agents (separate OS processes on one host) share tasks, context and events through one durable,
//! auditable store under `.maos/coordination/` of a project. Layers, bottom up:
//! [`log`] (segmented, checksummed, memory-mapped, many appending processes, group commit, crash
//! recovery), [`backend`] (the traits the layers above reach the store through: the log's
//! compare-and-append, reads and waits, and named blobs; the local directory and memory
//! implement them), [`model`] (what is recorded), [`projection`] (state as a fold of the
//! records), [`snapshot`] (the state as of one LSN, in one blob), [`subscription`] (live and durable
//! subscriptions, cursor files), [`compaction`] (which prefix of the log may go) and
//! [`coordinator`] (the async API). The byte-exact on-disk format is `log-format.md` at the
//! repository root; how the layers fit together, the path of a command and the invariants are in
//! `ARCHITECTURE.md` beside it.
//!
//! # Example
//!
//! ```
//! use maos_coord::{AgentId, ContextKey, Coordinator, Durability, NewTask, Visibility};
//!
//! # fn main() -> Result<(), maos_coord::Error> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
//! # runtime.block_on(async {
//! let project = tempfile::tempdir().expect("temporary directory");
//! let c = Coordinator::options(project.path()).durability(Durability::Buffered).open()?;
//! let me = AgentId::new("builder")?;
//! c.register_agent(&me, "engineer", vec!["rust".into()]).await?;
//! let task = c.create_task(&me, NewTask::new("compile").requires("rust")).await?;
//! let claimed = c.claim_next_task(&me, Some(&["rust".into()])).await?.expect("a task");
//! assert_eq!(claimed.id, task.id);
//! c.complete_task(&me, &claimed.id, vec!["target/app".into()]).await?;
//!
//! let key = ContextKey::new("build/result")?;
//! c.set_context(&me, &key, serde_json::json!({"ok": true}), Visibility::Shared).await?;
//! assert_eq!(c.get_context(&me, &key)?.expect("set").version, 1);
//!
//! // The log underneath: every change above is a record.
//! let mut reader = c.log().reader()?;
//! let mut records = 0;
//! while reader.next()?.is_some() {
//!     records += 1;
//! }
//! assert_eq!(records, 5);
//! # Ok::<(), maos_coord::Error>(())
//! # })
//! # }
//! ```
#![warn(clippy::pedantic)]
// Pedantic lints whose fixes would make this crate worse, one per line with the reason:
// a decoder's match over every event kind, or a fuzz driver's table of operations, reads best whole
#![allow(clippy::too_many_lines)]
// pairs such as `build`/`built`, `stage`/`stages` and `temp`/`tmp` (a file and its path) are clear
#![allow(clippy::similar_names)]
// every file name the store matches is one it wrote, exact and case-sensitive (log-format.md)
#![allow(clippy::case_sensitive_file_extension_comparisons)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

#[cfg(not(target_os = "linux"))]
compile_error!("maos-coord currently supports Linux only (fallocate, statfs magic numbers, boot id)");

pub mod audit_index;
pub mod backend;
pub mod clock;
pub mod compaction;
pub mod coordinator;
mod error;
pub mod finding;
#[doc(hidden)]
pub mod format;
pub mod fs;
pub mod log;
pub mod model;
pub mod projection;
pub mod snapshot;
pub mod subscription;
mod types;

/// The README's code blocks, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use coordinator::{
    AgentSummary, CoordinationService, Coordinator, CoordinatorOptions, HeartbeatReport, Registered,
    Registration, SetOptions, TaskQuery,
};
pub use error::{Error, ErrorKind, FrameError, Result};
pub use fs::StoreAccess;
pub use log::{
    Appended, Durability, Log, LogOptions, LogReader, Record, RecoveryMode, RecoveryReport, TornTailReport,
    VerifyReport,
};
pub use model::{
    AgentId, BarrierName, ContextEntry, ContextKey, Event, EventFilter, LockName, NewTask, Priority, Subject,
    Task, TaskId, TaskStatus, Visibility,
};
pub use projection::{Agent, AgentStatus};
pub use types::{Lsn, RecordKind, Timestamp};
