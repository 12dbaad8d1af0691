//! Registered agents and their liveness.

use std::collections::BTreeMap;

use crate::model::{AgentId, Event};
use crate::types::{Lsn, Timestamp};

/// Whether an agent is running.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AgentStatus {
    /// Registered and not stopped.
    Active,
    /// Stopped, with the reason given.
    Stopped(String),
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Agent {
    /// Its id.
    pub id: AgentId,
    /// Its role.
    pub role: String,
    /// What it can do.
    pub capabilities: Vec<String>,
    /// Running or stopped.
    pub status: AgentStatus,
    /// When it registered.
    pub registered_at: Timestamp,
    /// Its last sign of life (registration or heartbeat).
    pub last_heartbeat: Timestamp,
    /// Silence longer than this makes it gone.
    pub heartbeat_timeout_ms: u64,
    /// Its incarnation: the LSN of the registration that started it. Registering the same id
    /// again starts a new incarnation (0 in snapshots written before incarnations existed).
    #[serde(default)]
    pub incarnation: u64,
}

impl Agent {
    /// Whether the agent is active but silent for longer than its timeout at `now`.
    #[must_use]
    pub fn is_gone(&self, now: Timestamp) -> bool {
        let timeout = std::time::Duration::from_millis(self.heartbeat_timeout_ms);
        self.status == AgentStatus::Active && self.last_heartbeat.plus(timeout) < now
    }

    /// Whether the agent has every capability in `required`.
    #[must_use]
    pub fn can_do(&self, required: &[String]) -> bool {
        required.iter().all(|c| self.capabilities.contains(c))
    }
}

pub(super) fn apply(agents: &mut BTreeMap<String, Agent>, event: Event, lsn: Lsn, time: Timestamp) {
    match event {
        Event::AgentStarted { agent, role, capabilities, heartbeat_timeout_ms } => {
            agents.insert(
                agent.to_string(),
                Agent {
                    id: agent,
                    role,
                    capabilities,
                    status: AgentStatus::Active,
                    registered_at: time,
                    last_heartbeat: time,
                    heartbeat_timeout_ms,
                    incarnation: lsn.get(),
                },
            );
        }
        Event::AgentHeartbeat { agent, .. } => {
            if let Some(a) = agents.get_mut(agent.as_str()) {
                a.last_heartbeat = time;
            }
        }
        Event::AgentStopped { agent, reason } => {
            if let Some(a) = agents.get_mut(agent.as_str()) {
                a.status = AgentStatus::Stopped(reason);
            }
        }
        _ => {}
    }
}
