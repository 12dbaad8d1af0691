//! Writing the sections of a version-3 snapshot body from a state image (log-format.md,
//! "Snapshots", "Body, version 3").

use std::cmp::Reverse;

use crate::error::{Error, Result};
use crate::format::snapshot_body::{encode_body, fnv1a64, HashEntry, PendingEntry, SECTIONS};
use crate::model::{Priority, TaskStatus};
use crate::projection::StateImage;
use crate::types::Lsn;

/// The priority's number in the pending section: 0 (low) to 3 (critical).
pub(super) fn priority_number(priority: Priority) -> u8 {
    match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    }
}

/// The priority numbered `n` in the pending section.
pub(super) fn priority_of(n: u8) -> Option<Priority> {
    Some(match n {
        0 => Priority::Low,
        1 => Priority::Normal,
        2 => Priority::High,
        3 => Priority::Critical,
        _ => return None,
    })
}

fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| Error::Encode { reason: e.to_string() })
}

/// The four index sections over `tasks` (in slot order): task ids, idempotency keys, pending,
/// in progress.
///
/// # Errors
/// [`Error::InvalidArgument`] past 2^32 tasks.
pub(super) fn task_indexes(tasks: &[&crate::model::Task]) -> Result<[Vec<u8>; 4]> {
    let (mut ids, mut keys, mut pending, mut in_progress) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (slot, task) in tasks.iter().enumerate() {
        let slot = u32::try_from(slot)
            .map_err(|_| Error::InvalidArgument { name: "tasks", reason: "more than 2^32 tasks".into() })?;
        ids.push(HashEntry { hash: fnv1a64(task.id.as_str().as_bytes()), slot });
        if let Some(key) = &task.idempotency_key {
            keys.push(HashEntry { hash: fnv1a64(key.as_bytes()), slot });
        }
        match task.status {
            TaskStatus::Pending => pending.push((Reverse(task.priority), task.created_lsn, slot)),
            TaskStatus::InProgress => in_progress.push(slot),
            _ => {}
        }
    }
    ids.sort_unstable();
    keys.sort_unstable();
    pending.sort_unstable();
    Ok([
        ids.iter().flat_map(HashEntry::encode).collect(),
        keys.iter().flat_map(HashEntry::encode).collect(),
        pending
            .iter()
            .flat_map(|&(Reverse(p), lsn, slot)| {
                PendingEntry { lsn, slot, priority: priority_number(p) }.encode()
            })
            .collect(),
        in_progress.iter().flat_map(|s| s.to_le_bytes()).collect(),
    ])
}

/// The body (directory and data) of a version-3 snapshot of `image`.
///
/// # Errors
/// [`Error::Encode`] if a part does not encode; [`Error::InvalidArgument`] past 2^32 tasks.
pub(super) fn body(image: &StateImage, position: Option<(Lsn, u64)>) -> Result<Vec<u8>> {
    let meta = StateImage {
        next_lsn: image.next_lsn,
        last_time: image.last_time,
        agents: image.agents.clone(),
        tasks: Vec::new(),
        context: (),
        dependencies: image.dependencies.clone(),
        barriers: image.barriers.clone(),
        locks: image.locks.clone(),
        claim_policy: image.claim_policy,
    };
    let meta = encode(&meta)?;

    // In creation order; of two tasks with one id (only an image decoded from a damaged or
    // foreign older snapshot has them) the first, as decoding such an image into a state keeps.
    let mut tasks: Vec<&crate::model::Task> = image.tasks.iter().collect();
    tasks.sort_by_key(|t| t.created_lsn);
    let mut ids = std::collections::HashSet::new();
    tasks.retain(|t| ids.insert(t.id.as_str()));
    let (mut task_data, mut task_offsets) = (Vec::new(), Vec::with_capacity(8 * (tasks.len() + 1)));
    for task in &tasks {
        task_offsets.extend_from_slice(&(task_data.len() as u64).to_le_bytes());
        rmp_serde::encode::write_named(&mut task_data, task)
            .map_err(|e| Error::Encode { reason: e.to_string() })?;
    }
    task_offsets.extend_from_slice(&(task_data.len() as u64).to_le_bytes());
    let [ids, keys, pending, in_progress] = task_indexes(&tasks)?;

    // In key order; of two entries of one key (only an image decoded from a damaged or foreign
    // older snapshot has them) the last, as decoding such an image into a state keeps.
    let context: std::collections::BTreeMap<&str, &crate::projection::KeyHistory> =
        image.context.iter().map(|(key, history)| (key.as_str(), history)).collect();
    let (mut key_data, mut key_offsets) = (Vec::new(), Vec::with_capacity(8 * (context.len() + 1)));
    for (key, history) in context {
        key_offsets.extend_from_slice(&(key_data.len() as u64).to_le_bytes());
        let key = key.as_bytes();
        let len = u32::try_from(key.len()).map_err(|_| Error::InvalidArgument {
            name: "context key",
            reason: "longer than 4 GiB".into(),
        })?;
        key_data.extend_from_slice(&len.to_le_bytes());
        key_data.extend_from_slice(key);
        rmp_serde::encode::write_named(&mut key_data, history)
            .map_err(|e| Error::Encode { reason: e.to_string() })?;
    }
    key_offsets.extend_from_slice(&(key_data.len() as u64).to_le_bytes());
    let position: Vec<u8> = position
        .map(|(segment, offset)| [segment.get(), offset].iter().flat_map(|v| v.to_le_bytes()).collect())
        .unwrap_or_default();
    // In the order of `Section`.
    let sections: [Vec<u8>; SECTIONS] =
        [meta, task_data, task_offsets, ids, keys, pending, in_progress, key_data, key_offsets, position];
    Ok(encode_body(&sections))
}
