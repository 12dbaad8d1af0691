//! Group commit inside one process (log-format.md, "Appending"): callers queue their batches; one
//! leader writes everything queued under one append lock with one vectored write, hands the
//! leadership to the next waiter, syncs if the log's durability asks for it, and wakes exactly
//! the callers it wrote for. Each caller sleeps once; nobody is woken for someone else's group.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use super::options::Durability;
use super::writer::{self, Appended, Pending};
use super::{lock, sync, wait, Shared};
use crate::error::{Error, Result};

/// Batches waiting for a leader.
#[derive(Default)]
pub(crate) struct Queue {
    waiting: Vec<(Pending, Arc<Slot>)>,
    leader: bool,
}

/// Where a waiting caller learns its fate.
struct Slot {
    state: Mutex<State>,
    wake: Condvar,
}

enum State {
    Waiting,
    /// The previous leader handed over: write the queue.
    Lead,
    Done(Result<Appended>),
}

impl Slot {
    fn set(&self, state: State) {
        *lock(&self.state) = state;
        self.wake.notify_one();
    }

    /// Sleeps until the caller must lead (`None`) or is answered.
    fn wait(&self) -> Option<Result<Appended>> {
        let mut state = lock(&self.state);
        loop {
            match std::mem::replace(&mut *state, State::Waiting) {
                State::Waiting => state = wait(&self.wake, state),
                State::Lead => return None,
                State::Done(result) => return Some(result),
            }
        }
    }
}

/// Appends a batch and returns once it is written (and, under `Durability::Sync`, durable).
pub(crate) fn append(shared: &Shared, pending: Pending) -> Result<Appended> {
    if pending.is_empty() {
        return Ok(Appended { first: shared.control.tail_lsn(), count: 0 });
    }
    let writer = &shared.writer;
    let slot = Arc::new(Slot { state: Mutex::new(State::Waiting), wake: Condvar::new() });
    let lead = {
        let mut queue = lock(&writer.queue);
        queue.waiting.push((pending, slot.clone()));
        writer.in_flight.fetch_add(1, Ordering::AcqRel);
        !std::mem::replace(&mut queue.leader, true)
    };
    if !lead {
        if let Some(result) = slot.wait() {
            return result;
        }
    }
    lead_group(shared, &slot)
}

fn lead_group(shared: &Shared, own: &Arc<Slot>) -> Result<Appended> {
    let writer = &shared.writer;
    let (mut batches, slots): (Vec<Pending>, Vec<Arc<Slot>>) =
        std::mem::take(&mut lock(&writer.queue).waiting).into_iter().unzip();
    let mut unwind = AnswerOnUnwind { shared, slots: &slots, armed: true };
    let results = writer::write_group(shared, &mut batches);
    writer.in_flight.fetch_sub(batches.len(), Ordering::AcqRel);
    hand_off(shared);
    unwind.armed = false;

    let written_up_to = results.iter().filter_map(|r| r.as_ref().ok()).map(Appended::next).max();
    let synced = match (shared.opts.durability, written_up_to) {
        (Durability::Sync, Some(next)) => sync::sync_to(shared, next),
        _ => Ok(()),
    };
    let mut own_result = None;
    for (slot, result) in slots.iter().zip(results) {
        let result = match (&synced, result) {
            (Err(e), Ok(_)) => Err(e.clone()),
            (_, result) => result,
        };
        if Arc::ptr_eq(slot, own) {
            own_result = Some(result);
        } else {
            slot.set(State::Done(result));
        }
    }
    own_result.unwrap_or_else(|| Err(Error::InvalidArgument { name: "append", reason: "batch lost by its group".into() }))
}

/// Makes the first waiter the next leader, or leaves the process without one.
fn hand_off(shared: &Shared) {
    let mut queue = lock(&shared.writer.queue);
    match queue.waiting.first() {
        Some((_, next)) => next.set(State::Lead),
        None => queue.leader = false,
    }
}

/// If the leader unwinds while writing, answers its group with an error and hands off, so that
/// no caller sleeps forever.
struct AnswerOnUnwind<'a> {
    shared: &'a Shared,
    slots: &'a [Arc<Slot>],
    armed: bool,
}

impl Drop for AnswerOnUnwind<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for slot in self.slots {
            let err = Error::InvalidArgument { name: "append", reason: "the group leader panicked".into() };
            slot.set(State::Done(Err(err)));
        }
        hand_off(self.shared);
    }
}
