//! Dependencies between tasks: a consumer task needs an artifact a provider task makes.

use serde::{Deserialize, Serialize};

use super::ids::{DependencyId, TaskId};
use super::task::TaskStatus;

/// What kind of artifact flows along a dependency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArtifactType {
    /// A file or directory.
    File,
    /// A context entry.
    Context,
    /// The provider simply has to finish.
    Completion,
    /// Something else, named.
    Other(String),
}

/// Status of a dependency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DependencyStatus {
    /// The provider has not delivered.
    Pending,
    /// The provider is working on it.
    InProgress,
    /// Delivered: the consumer may run.
    Ready,
    /// The provider failed.
    Failed(String),
}

impl DependencyStatus {
    /// What a dependency is while its provider task `provider` has status `status`: the one
    /// rule that every way a provider changes (claim, completion, failure, release, lapse, a
    /// stopped or restarted holder, cancellation) goes through, at registration and after
    /// (log-format.md, "Derived effects"). A dependency marked ready by hand
    /// ([`crate::Coordinator::mark_dependency_ready`]) stays ready, and a failed one stays
    /// failed.
    #[must_use]
    pub fn following(provider: &TaskId, status: &TaskStatus) -> DependencyStatus {
        match status {
            TaskStatus::Pending | TaskStatus::Blocked(_) => DependencyStatus::Pending,
            TaskStatus::InProgress => DependencyStatus::InProgress,
            TaskStatus::Completed => DependencyStatus::Ready,
            TaskStatus::Failed(error) => {
                DependencyStatus::Failed(format!("provider task {provider} failed: {error}"))
            }
            TaskStatus::Cancelled(reason) => {
                DependencyStatus::Failed(format!("provider task {provider} was cancelled: {reason}"))
            }
        }
    }

    /// Ready and Failed never change by what the provider does.
    #[must_use]
    pub fn is_settled(&self) -> bool {
        matches!(self, DependencyStatus::Ready | DependencyStatus::Failed(_))
    }
}

/// A dependency of `consumer` on `provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// Its id.
    pub id: DependencyId,
    /// The task that delivers.
    pub provider: TaskId,
    /// The task that waits.
    pub consumer: TaskId,
    /// What is delivered.
    pub artifact_type: ArtifactType,
    /// Where, once ready.
    pub artifact_path: Option<String>,
    /// Status.
    pub status: DependencyStatus,
}
