//! Names of the coordination model (agents, tasks, context keys, ...), validated where they
//! enter: 1 to 256 bytes of UTF-8 without control characters.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest name or key, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Checks a name: 1 to [`MAX_NAME_LEN`] bytes, no control characters.
///
/// # Errors
/// [`Error::InvalidName`] naming `what` for an empty name, one longer than [`MAX_NAME_LEN`] bytes, or one
/// with a control character.
pub fn validate_name(what: &'static str, name: &str) -> Result<()> {
    validate_up_to(what, name, MAX_NAME_LEN)
}

/// Checks an identifier: a name, and for a task id no `->`, which joins provider and consumer
/// in a dependency id (so that no two dependencies share an id); a dependency id may be as long
/// as two task ids and the `->` between them.
fn validate_id(what: &'static str, name: &str) -> Result<()> {
    match what {
        "dependency id" => validate_up_to(what, name, 2 * MAX_NAME_LEN + 2),
        "task id" if name.contains("->") => Err(Error::InvalidName {
            what,
            name: name.chars().take(64).collect(),
            reason: "contains `->`, which joins provider and consumer in dependency ids".into(),
        }),
        _ => validate_name(what, name),
    }
}

fn validate_up_to(what: &'static str, name: &str, max: usize) -> Result<()> {
    let reason = if name.is_empty() {
        "is empty".to_owned()
    } else if name.len() > max {
        format!("is {} bytes long; at most {max} are allowed", name.len())
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!("contains the control character {c:?}")
    } else {
        return Ok(());
    };
    Err(Error::InvalidName { what, name: name.chars().take(64).collect(), reason })
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            /// [`Error::InvalidName`] for an empty name, one longer than [`MAX_NAME_LEN`] bytes (a dependency
            /// id may be as long as two task ids and the `->` between them), one with a control character,
            /// and a task id containing `->`.
            pub fn new(name: impl Into<String>) -> Result<$name> {
                let name = name.into();
                validate_id($what, &name)?;
                Ok($name(name.into()))
            }

            /// The name.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A name read from a record, as serde reads it (unvalidated: the record was
            /// validated when it was appended).
            pub(crate) fn from_record(name: &str) -> $name {
                $name(name.into())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name> {
                $name::new(s)
            }
        }
    };
}

name_type!(
    /// Identifies an agent.
    AgentId,
    "agent id"
);
name_type!(
    /// Identifies a task (given, or a generated UUID v7).
    TaskId,
    "task id"
);
name_type!(
    /// A context key.
    ContextKey,
    "context key"
);
name_type!(
    /// Identifies a dependency between two tasks.
    DependencyId,
    "dependency id"
);
name_type!(
    /// Names a barrier.
    BarrierName,
    "barrier name"
);
name_type!(
    /// Names a lock.
    LockName,
    "lock name"
);

impl TaskId {
    /// A new time-ordered id (UUID v7).
    #[must_use]
    pub fn generate() -> TaskId {
        TaskId(uuid::Uuid::now_v7().to_string().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(ContextKey::new("api-spec/v1").is_ok());
        assert!(ContextKey::new("x".repeat(256)).is_ok());
        let e = ContextKey::new("x".repeat(257)).unwrap_err().to_string();
        assert!(e.contains("257 bytes"), "{e}");
        let e = AgentId::new("").unwrap_err().to_string();
        assert!(e.contains("agent id") && e.contains("empty"), "{e}");
        let e = TaskId::new("a\nb").unwrap_err().to_string();
        assert!(e.contains("control character"), "{e}");
        let e = TaskId::new("x->y").unwrap_err().to_string();
        assert!(e.contains("`->`"), "{e}");
        let long = "t".repeat(256);
        assert!(DependencyId::new(format!("{long}->{long}")).is_ok(), "two longest task ids link");
    }

    #[test]
    fn generated_task_ids_are_ordered_by_time() {
        let a = TaskId::generate();
        let b = TaskId::generate();
        assert!(a < b);
    }
}
