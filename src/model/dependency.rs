//! Dependencies between tasks: a consumer task needs an artifact a provider task makes.

use serde::{Deserialize, Serialize};

use super::ids::{DependencyId, TaskId};

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
