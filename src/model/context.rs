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
        expired(self.expires_at, now)
    }

    /// What `reader` may do with this entry at `now`: [`access`].
    #[must_use]
    pub fn access(&self, reader: &AgentId, now: Timestamp) -> Access {
        access(&self.owner, &self.visibility, self.expires_at, reader, now)
    }
}

/// Whether a reader may read a context value: the outcome of [`access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// The reader may read it.
    Readable,
    /// It expired: it is absent for every reader.
    Expired,
    /// Its visibility does not include the reader.
    NotVisible,
}

impl Access {
    /// Why the value is withheld from the reader; `None` if it is readable.
    #[must_use]
    pub fn withheld(self) -> Option<Withheld> {
        match self {
            Access::Readable => None,
            Access::Expired => Some(Withheld::Expired),
            Access::NotVisible => Some(Withheld::NotVisible),
        }
    }
}

/// Why a delivered context value was withheld (replaced by JSON null, its metadata emptied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Withheld {
    /// The value expired before it was delivered.
    Expired,
    /// The value's visibility does not include the reader.
    NotVisible,
}

/// The one rule of every read of context (get, list, past versions, watches, subscriptions,
/// audit trails): a value set by `owner` with `visibility`, expiring at `expires_at`, is
/// readable by `reader` at time `now` if and only if `now` is before `expires_at` and the
/// visibility allows the reader (the owner always; [`Visibility::Restricted`] the agents it
/// lists too; [`Visibility::Shared`] everyone).
///
/// Expiry is decided first: an expired value is [`Access::Expired`] for every reader, so a reader
/// the visibility excludes learns no more than that the value is absent.
#[must_use]
pub fn access(
    owner: &AgentId,
    visibility: &Visibility,
    expires_at: Option<Timestamp>,
    reader: &AgentId,
    now: Timestamp,
) -> Access {
    if expired(expires_at, now) {
        Access::Expired
    } else if visibility.allows(owner, reader) {
        Access::Readable
    } else {
        Access::NotVisible
    }
}

/// Who reads context values through a path that shows records (an audit trail, a replay of the
/// state at a past point): an agent, or nobody in particular.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// An agent: [`access`] with it as the reader.
    Agent(AgentId),
    /// No agent in particular (a person or a tool auditing the store): the same rule for a reader
    /// that no visibility names and that owns nothing, so only shared values that have not
    /// expired are readable, which every agent may read.
    Public,
}

impl Viewer {
    /// What this viewer may do with a value `owner` set with `visibility`, expiring at
    /// `expires_at`, at `now`: [`access`].
    #[must_use]
    pub fn access(
        &self,
        owner: &AgentId,
        visibility: &Visibility,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Access {
        match self {
            Viewer::Agent(reader) => access(owner, visibility, expires_at, reader, now),
            Viewer::Public if expired(expires_at, now) => Access::Expired,
            Viewer::Public if *visibility == Visibility::Shared => Access::Readable,
            Viewer::Public => Access::NotVisible,
        }
    }
}

/// A value expiring at `expires_at` has expired at `now` (from its expiry time on).
fn expired(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|t| t <= now)
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

    #[test]
    fn access_decides_expiry_first_then_visibility() {
        let owner = AgentId::new("owner").unwrap();
        let other = AgentId::new("other").unwrap();
        let at = |t| Some(Timestamp(t));
        let private = Visibility::Private;
        assert_eq!(access(&owner, &private, None, &owner, Timestamp(5)), Access::Readable);
        assert_eq!(access(&owner, &private, at(6), &owner, Timestamp(5)), Access::Readable);
        assert_eq!(access(&owner, &private, at(5), &owner, Timestamp(5)), Access::Expired, "at its expiry");
        assert_eq!(access(&owner, &private, None, &other, Timestamp(5)), Access::NotVisible);
        assert_eq!(access(&owner, &private, at(4), &other, Timestamp(5)), Access::Expired);
        assert_eq!(access(&owner, &Visibility::Shared, at(6), &other, Timestamp(5)), Access::Readable);
        assert_eq!(Access::Readable.withheld(), None);
        assert_eq!(Access::Expired.withheld(), Some(Withheld::Expired));
        assert_eq!(Access::NotVisible.withheld(), Some(Withheld::NotVisible));
    }

    #[test]
    fn the_public_viewer_reads_only_shared_values_that_have_not_expired() {
        let owner = AgentId::new("owner").unwrap();
        let at = |t| Some(Timestamp(t));
        let public = Viewer::Public;
        assert_eq!(public.access(&owner, &Visibility::Shared, None, Timestamp(5)), Access::Readable);
        assert_eq!(public.access(&owner, &Visibility::Shared, at(5), Timestamp(5)), Access::Expired);
        assert_eq!(public.access(&owner, &Visibility::Private, None, Timestamp(5)), Access::NotVisible);
        let restricted = Visibility::Restricted(vec![owner.clone()]);
        assert_eq!(public.access(&owner, &restricted, None, Timestamp(5)), Access::NotVisible);
        assert_eq!(public.access(&owner, &Visibility::Private, at(4), Timestamp(5)), Access::Expired);
        let agent = Viewer::Agent(owner.clone());
        assert_eq!(agent.access(&owner, &Visibility::Private, None, Timestamp(5)), Access::Readable);
    }
}
