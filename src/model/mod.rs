//! The coordination model: identifiers, tasks, context, dependencies, and the [`Event`] enum that
//! the log records. No files here (ARCHITECTURE.md, "Layers").

mod context;
mod decode;
mod dependency;
mod event;
mod filter;
#[doc(hidden)]
pub mod fuzzing;
mod ids;
pub mod limits;
mod retention;
mod task;
mod tombstone;

pub use context::{access, Access, ContextEntry, SetCondition, Viewer, Visibility, Withheld};
pub use dependency::{ArtifactType, Dependency, DependencyStatus};
pub(crate) use event::encode_checked;
pub use event::{Event, Recorded, COORDINATION_KINDS, COORDINATION_TYPES, EVENT_RECORD_KIND};
pub use filter::{AuditQuery, EventFilter, Prefilter, Subject};
pub use ids::{
    validate_name, AgentId, BarrierName, ContextKey, DependencyId, LockName, TaskId, MAX_NAME_LEN,
};
pub use retention::{Entity, Role, Supersession};
pub use task::{ClaimPolicy, NewTask, Priority, Task, TaskStatus, DEFAULT_MAX_ATTEMPTS};
pub use tombstone::{Tombstone, TOMBSTONE_RECORD_KIND};
