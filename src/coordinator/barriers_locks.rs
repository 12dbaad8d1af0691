//! Barriers and locks.

use std::time::{Duration, Instant};

use super::{define, require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{AgentId, BarrierName, Event, LockName};
use crate::types::Lsn;

/// A granted lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockGrant {
    /// Fencing token: the LSN of the record that granted the lock. Every later grant of any
    /// lock has a larger token, so a resource can refuse writes carrying an older one.
    pub token: Lsn,
}

impl Coordinator {
    /// Creates a barrier that completes once every participant has signalled.
    ///
    /// Creating a barrier that exists with the same participants (in any order) changes
    /// nothing: its signals stay and nothing is appended. Other participants are
    /// [`Error::AlreadyExists`], naming those added and dropped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] without participants; [`Error::InvalidName`] for an invalid participant;
    /// [`Error::UnknownAgent`] unless `actor` is registered and active; [`Error::AlreadyExists`] for a
    /// barrier of that name with other participants; and those of every [command](Coordinator#errors).
    pub async fn create_barrier(
        &self,
        actor: &AgentId,
        name: &BarrierName,
        participants: Vec<String>,
    ) -> Result<()> {
        if participants.is_empty() {
            return Err(Error::InvalidArgument {
                name: "participants",
                reason: "a barrier needs at least one".into(),
            });
        }
        for participant in &participants {
            crate::model::validate_name("barrier participant", participant)?;
        }
        let (id, name) = (actor.clone(), name.clone());
        self.execute(actor, move |state, _| {
            require_agent(state, &id)?;
            if let Some(existing) = state.barriers.get(&name) {
                define::existing_barrier(name.as_str(), &existing.participants, &participants)?;
                return Ok((Vec::new(), ()));
            }
            Ok((vec![Event::BarrierCreated { name: name.clone(), participants: participants.clone() }], ()))
        })
        .await?;
        Ok(())
    }

    /// Signals a barrier for `participant`; returns whether the barrier is now complete.
    /// Signalling again changes nothing and appends nothing.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `actor` is registered and active; [`Error::UnknownBarrier`];
    /// [`Error::NotParticipant`] if `participant` is not one of the barrier's; and those of every
    /// [command](Coordinator#errors).
    pub async fn signal_barrier(
        &self,
        actor: &AgentId,
        name: &BarrierName,
        participant: &str,
    ) -> Result<bool> {
        let (id, barrier, participant) = (actor.clone(), name.clone(), participant.to_owned());
        self.execute(actor, move |state, _| {
            require_agent(state, &id)?;
            let b = state
                .barriers
                .get(&barrier)
                .ok_or_else(|| Error::UnknownBarrier { barrier: barrier.clone() })?;
            if !b.participants.contains(&participant) {
                return Err(Error::NotParticipant {
                    barrier: barrier.clone(),
                    participant: participant.clone(),
                });
            }
            if b.signalled.contains(&participant) {
                return Ok((Vec::new(), ())); // signalled already: nothing to record
            }
            Ok((
                vec![Event::BarrierSignalled { name: barrier.clone(), participant: participant.clone() }],
                (),
            ))
        })
        .await?;
        self.fresh(|s| s.barriers.get(name).is_some_and(crate::projection::Barrier::is_complete))
    }

    /// The lock `name` as the store last granted it: holder, end of the lease, fencing token;
    /// `None` if it was never taken or was released. A lock whose lease ended before now is
    /// free to take, though its last grant is still shown.
    ///
    /// # Errors
    /// Those of every [query](Coordinator#errors).
    pub fn lock_info(&self, name: &LockName) -> Result<Option<crate::projection::Lock>> {
        self.fresh(|s| s.locks.get(name).cloned())
    }

    /// Waits until every participant of the barrier has signalled (from any process), for at
    /// most `timeout`.
    ///
    /// # Errors
    /// [`Error::UnknownBarrier`]; [`Error::Timeout`] if the barrier is not complete within `timeout`; and
    /// those of every [query](Coordinator#errors).
    pub async fn wait_barrier(&self, name: &BarrierName, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.log.next_lsn();
            let complete =
                self.fresh(|s| s.barriers.get(name).map(crate::projection::Barrier::is_complete))?;
            match complete {
                None => return Err(Error::UnknownBarrier { barrier: name.clone() }),
                Some(true) => return Ok(()),
                Some(false) if Instant::now() >= deadline => {
                    return Err(Error::Timeout { what: format!("barrier {name}"), holder: None });
                }
                Some(false) => {
                    self.log.wait_for(next, deadline.saturating_duration_since(Instant::now())).await;
                }
            }
        }
    }

    /// Takes a lock for `lease` if it is free, lapsed, or already held by `agent` (then the
    /// lease is renewed with a new token); `None` if another agent holds it.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; and those of every
    /// [command](Coordinator#errors). A lock another agent holds is `None`, not an error.
    pub async fn try_lock(
        &self,
        agent: &AgentId,
        name: &LockName,
        lease: Duration,
    ) -> Result<Option<LockGrant>> {
        let (id, lock) = (agent.clone(), name.clone());
        let (first, position) = self
            .execute(agent, move |state, now| {
                require_agent(state, &id)?;
                let mut events = Vec::new();
                if let Some(held) = state.locks.get(&lock) {
                    if held.holder != id && held.lease_until >= now {
                        return Ok((Vec::new(), None));
                    }
                    if held.holder != id {
                        events.push(Event::LockReleased { name: lock.clone(), holder: held.holder.clone() });
                    }
                }
                let position = events.len() as u64;
                events.push(Event::LockAcquired {
                    name: lock.clone(),
                    holder: id.clone(),
                    lease_until: now.plus(lease),
                });
                Ok((events, Some(position)))
            })
            .await?;
        Ok(position.map(|p| LockGrant { token: Lsn(first.get() + p) }))
    }

    /// As [`Coordinator::try_lock`], waiting up to `timeout` for the lock.
    ///
    /// # Errors
    /// As [`Coordinator::try_lock`]; [`Error::Timeout`] if the lock is not granted within `timeout`, naming
    /// the agent that held it then.
    pub async fn lock(
        &self,
        agent: &AgentId,
        name: &LockName,
        lease: Duration,
        timeout: Duration,
    ) -> Result<LockGrant> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.log.next_lsn();
            if let Some(grant) = self.try_lock(agent, name, lease).await? {
                return Ok(grant);
            }
            let now = Instant::now();
            if now >= deadline {
                let holder = self.fresh(|s| s.locks.get(name).map(|l| l.holder.clone()))?;
                return Err(Error::Timeout { what: format!("lock {name}"), holder });
            }
            // Woken by the next record (an unlock, say), or when the holder's lease ends.
            let lease_end = self.fresh(|s| s.locks.get(name).map(|l| l.lease_until))?;
            let until_lapse = lease_end.map_or(Duration::ZERO, |t| {
                Duration::from_micros(
                    u64::try_from(t.as_micros() - self.clock_now().as_micros()).unwrap_or(0),
                )
            });
            let wait = (deadline - now).min(until_lapse + Duration::from_millis(1));
            self.log.wait_for(next, wait).await;
        }
    }

    /// Releases a lock `agent` holds.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `agent` is registered and active; [`Error::LockHeld`] if another agent
    /// holds the lock; [`Error::InvalidArgument`] if nobody does; and those of every
    /// [command](Coordinator#errors).
    pub async fn unlock(&self, agent: &AgentId, name: &LockName) -> Result<()> {
        let (id, lock) = (agent.clone(), name.clone());
        self.execute(agent, move |state, _| {
            require_agent(state, &id)?;
            match state.locks.get(&lock) {
                Some(held) if held.holder == id => {
                    Ok((vec![Event::LockReleased { name: lock.clone(), holder: id.clone() }], ()))
                }
                Some(held) => Err(Error::LockHeld { lock: lock.clone(), holder: held.holder.clone() }),
                None => {
                    Err(Error::InvalidArgument { name: "unlock", reason: format!("lock {lock} is not held") })
                }
            }
        })
        .await?;
        Ok(())
    }
}
