//! Shared context: versioned JSON values under validated keys, with visibility and expiry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::{AgentId, ContextKey};
use crate::types::Timestamp;

/// Who may read a context entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Visibility {
    /// Only the owner.
    Private,
    /// Every agent.
    #[default]
    Shared,
    /// The owner and these agents.
    Restricted(Vec<AgentId>),
}

impl Visibility {
    /// Whether `reader` may read an entry owned by `owner`.
    #[must_use]
    pub fn allows(&self, owner: &AgentId, reader: &AgentId) -> bool {
        match self {
            Visibility::Private => owner == reader,
            Visibility::Shared => true,
            Visibility::Restricted(agents) => owner == reader || agents.contains(reader),
        }
    }
}

/// One version of a context entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextEntry {
    /// The key.
    pub key: ContextKey,
    /// The value.
    pub value: serde_json::Value,
    /// Who set it.
    pub owner: AgentId,
    /// Who may read it.
    pub visibility: Visibility,
    /// Version of the key: 1 for the first set, rising by one with each set or delete.
    pub version: u64,
    /// When the key was first set (in its current life, since the last delete).
    pub created_at: Timestamp,
    /// When this version was set.
    pub updated_at: Timestamp,
    /// After this time the entry reads as absent.
    pub expires_at: Option<Timestamp>,
    /// Free-form string metadata.
    pub metadata: BTreeMap<String, String>,
}

impl ContextEntry {
    /// Whether the entry has expired at `now`.
    #[must_use]
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// How a set may depend on the current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SetCondition {
    /// Always.
    #[default]
    Always,
    /// Only if the key's current version is this one.
    VersionIs(u64),
    /// Only if the key is absent (never set, deleted, or expired).
    Absent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_rules() {
        let owner = AgentId::new("owner").unwrap();
        let friend = AgentId::new("friend").unwrap();
        let other = AgentId::new("other").unwrap();
        assert!(Visibility::Private.allows(&owner, &owner));
        assert!(!Visibility::Private.allows(&owner, &other));
        assert!(Visibility::Shared.allows(&owner, &other));
        let restricted = Visibility::Restricted(vec![friend.clone()]);
        assert!(restricted.allows(&owner, &friend) && restricted.allows(&owner, &owner));
        assert!(!restricted.allows(&owner, &other));
    }
}
