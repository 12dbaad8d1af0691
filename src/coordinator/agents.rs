//! Agent commands: register, heartbeat, stop; and liveness queries.

use super::{require_agent, Coordinator};
use crate::error::Result;
use crate::model::{AgentId, Event};
use crate::projection::Agent;

impl Coordinator {
    /// Registers an agent (again, after a restart) with its role and capabilities.
    pub async fn register_agent(
        &self,
        agent: &AgentId,
        role: &str,
        capabilities: Vec<String>,
    ) -> Result<Agent> {
        let event = Event::AgentStarted {
            agent: agent.clone(),
            role: role.to_owned(),
            capabilities,
            heartbeat_timeout_ms: u64::try_from(self.opts.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX),
        };
        self.execute(agent, move |_, _| Ok((vec![event], ()))).await?;
        self.agent(agent)?
            .ok_or_else(|| crate::Error::UnknownAgent { agent: agent.to_string(), detail: String::new() })
    }

    /// Says the agent is alive, and extends the leases of the tasks it holds by the lease time.
    pub async fn heartbeat(&self, agent: &AgentId) -> Result<()> {
        let id = agent.clone();
        let lease = self.opts.lease;
        self.execute(agent, move |state, now| {
            require_agent(state, &id)?;
            Ok((vec![Event::AgentHeartbeat { agent: id, lease_until: now.plus(lease) }], ()))
        })
        .await?;
        Ok(())
    }

    /// Stops an agent; the tasks it holds become pending again.
    pub async fn stop_agent(&self, agent: &AgentId, reason: &str) -> Result<()> {
        let id = agent.clone();
        let reason = reason.to_owned();
        self.execute(agent, move |state, _| {
            require_agent(state, &id)?;
            Ok((vec![Event::AgentStopped { agent: id, reason }], ()))
        })
        .await?;
        Ok(())
    }

    /// An agent as registered.
    pub fn agent(&self, agent: &AgentId) -> Result<Option<Agent>> {
        self.read(|s| s.agents.get(agent.as_str()).cloned())
    }

    /// Active agents whose heartbeats stopped for longer than their timeout.
    pub fn gone_agents(&self) -> Result<Vec<AgentId>> {
        self.read_at(|s, now| s.agents.values().filter(|a| a.is_gone(now)).map(|a| a.id.clone()).collect())
    }
}
