//! Barriers and locks.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{AgentId, BarrierName, Event, LockName};
use crate::types::{Lsn, Timestamp};

/// A barrier: done once every participant signalled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Barrier {
    /// Who must signal.
    pub participants: Vec<String>,
    /// Who has.
    pub signalled: BTreeSet<String>,
}

impl Barrier {
    /// Whether every participant signalled.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.participants.iter().all(|p| self.signalled.contains(p))
    }
}

/// A held lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lock {
    /// Who holds it.
    pub holder: AgentId,
    /// End of the lease.
    pub lease_until: Timestamp,
    /// Fencing token: the LSN of the record that granted it (rises with every grant).
    pub token: Lsn,
}

pub(super) fn apply_barrier(barriers: &mut BTreeMap<BarrierName, Barrier>, event: Event) {
    match event {
        Event::BarrierCreated { name, participants } => {
            barriers.insert(name, Barrier { participants, signalled: BTreeSet::new() });
        }
        Event::BarrierSignalled { name, participant } => {
            if let Some(b) = barriers.get_mut(&name) {
                b.signalled.insert(participant);
            }
        }
        _ => {}
    }
}

pub(super) fn apply_lock(locks: &mut BTreeMap<LockName, Lock>, event: Event, lsn: Lsn) {
    match event {
        Event::LockAcquired { name, holder, lease_until } => {
            locks.insert(name, Lock { holder, lease_until, token: lsn });
        }
        Event::LockReleased { name, holder } if locks.get(&name).is_some_and(|l| l.holder == holder) => {
            locks.remove(&name);
        }
        _ => {}
    }
}
