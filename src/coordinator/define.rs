//! Creating what exists. A create whose name (barrier name, task id, pipeline name, provider and
//! consumer of a dependency) is taken compares the definition asked for with the recorded one:
//! the same definition is an idempotent no-op (nothing is appended; what happened since, such as
//! a barrier's signals or a task's progress, is kept), another definition is refused with
//! [`Error::AlreadyExists`] naming the first difference. The comparisons are here, in one place.

use std::collections::BTreeSet;
use std::fmt::Debug;

use super::PipelineStage;
use crate::error::{Error, Result};
use crate::model::{ArtifactType, Dependency, NewTask, Task, TaskId};
use crate::projection::State;

/// Longest rendering of one value in a difference.
const SHOWN: usize = 80;

/// Compares two definitions field by field, remembering the first field that differs.
#[derive(Debug, Default)]
pub(super) struct Compare {
    difference: Option<String>,
}

impl Compare {
    /// A comparison with nothing found yet.
    pub(super) fn new() -> Compare {
        Compare::default()
    }

    /// Compares one field by equality.
    #[must_use]
    pub(super) fn field<T: PartialEq + Debug + ?Sized>(self, name: &str, existing: &T, asked: &T) -> Compare {
        self.field_shown(name, existing == asked, || (format!("{existing:?}"), format!("{asked:?}")))
    }

    /// Compares a JSON field by equality.
    #[must_use]
    pub(super) fn json(self, name: &str, existing: &serde_json::Value, asked: &serde_json::Value) -> Compare {
        self.field_shown(name, existing == asked, || (existing.to_string(), asked.to_string()))
    }

    /// Compares a field whose order and repetitions do not matter (a set of names); a difference
    /// names what the definition asked for adds and drops.
    #[must_use]
    pub(super) fn set(self, name: &str, existing: &[String], asked: &[String]) -> Compare {
        let (old, new): (BTreeSet<&String>, BTreeSet<&String>) =
            (existing.iter().collect(), asked.iter().collect());
        self.check(name, old == new, || {
            let list = |names: Vec<&&String>| names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
            let mut changes = Vec::new();
            let added: Vec<_> = new.difference(&old).collect();
            if !added.is_empty() {
                changes.push(format!("adds {}", list(added)));
            }
            let dropped: Vec<_> = old.difference(&new).collect();
            if !dropped.is_empty() {
                changes.push(format!("drops {}", list(dropped)));
            }
            format!("the definition asked for {}", changes.join(" and "))
        })
    }

    /// A field that is the same when `same`; otherwise `describe` says how it differs.
    #[must_use]
    pub(super) fn check(self, name: &str, same: bool, describe: impl FnOnce() -> String) -> Compare {
        if self.difference.is_some() || same {
            return self;
        }
        Compare { difference: Some(format!("{name}: {}", describe())) }
    }

    /// Runs `compare` on a part of the definition, naming the part before each difference found
    /// in it.
    #[must_use]
    pub(super) fn part(self, part: &str, compare: impl FnOnce(Compare) -> Compare) -> Compare {
        if self.difference.is_some() {
            return self;
        }
        Compare { difference: compare(Compare::new()).difference.map(|d| format!("{part}: {d}")) }
    }

    /// `Ok` if nothing differed, else [`Error::AlreadyExists`] about `what` `name`.
    pub(super) fn finish(self, what: &'static str, name: &str) -> Result<()> {
        match self.difference {
            None => Ok(()),
            Some(difference) => Err(Error::AlreadyExists { what, name: name.to_owned(), difference }),
        }
    }

    fn field_shown(self, name: &str, same: bool, show: impl FnOnce() -> (String, String)) -> Compare {
        self.check(name, same, || {
            let (existing, asked) = show();
            format!("{} exists, {} asked", shorten(existing), shorten(asked))
        })
    }
}

/// At most [`SHOWN`] characters of a rendered value.
fn shorten(shown: String) -> String {
    match shown.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", shown.get(..end).unwrap_or_default()),
        None => shown,
    }
}

/// Compares the definition of task `existing` with `asked`: name, description, priority,
/// required capabilities (as a set), metadata (`existing_metadata`: what the creator gave, which
/// for a pipeline's task is inside the metadata the pipeline wraps around it), `max_attempts`,
/// idempotency key, and the id when `asked` has one.
pub(super) fn task(
    compare: Compare,
    existing: &Task,
    existing_metadata: &serde_json::Value,
    asked: &NewTask,
) -> Compare {
    let compare = match &asked.id {
        Some(id) => compare.field("id", existing.id.as_str(), id.as_str()),
        None => compare,
    };
    compare
        .field("name", &existing.name, &asked.name)
        .field("description", &existing.description, &asked.description)
        .field("priority", &existing.priority, &asked.priority)
        .set("required capabilities", &existing.required_capabilities, &asked.required_capabilities)
        .json("metadata", existing_metadata, &asked.metadata)
        .field("max_attempts", &existing.max_attempts, &asked.max_attempts)
        .field("idempotency key", &existing.idempotency_key, &asked.idempotency_key)
}

/// Creating task `existing` again as `asked`, with dependencies on `providers`: `Ok` if that is
/// its definition (and it depends on every provider asked for), else [`Error::AlreadyExists`].
pub(super) fn existing_task(
    state: &State,
    existing: &Task,
    asked: &NewTask,
    providers: &[TaskId],
) -> Result<()> {
    let depends_on: BTreeSet<&TaskId> =
        state.deps.of_consumer(&existing.id).into_iter().map(|d| &d.provider).collect();
    let missing: Vec<String> =
        providers.iter().filter(|p| !depends_on.contains(p)).map(ToString::to_string).collect();
    task(Compare::new(), existing, &existing.metadata, asked)
        .check("dependencies", missing.is_empty(), || {
            format!("the task does not depend on {}", missing.join(", "))
        })
        .finish("task", existing.id.as_str())
}

/// Creating pipeline `name` again with `asked` stages, where it has the `existing` stages (names
/// and tasks in creation order): the same number of stages, and stage by stage the same name and
/// the same tasks in the same order (compared as [`task`] does, a pipeline's own metadata aside).
/// Stages and tasks are counted from 1 in the difference.
pub(super) fn existing_pipeline(
    name: &str,
    existing: &[(String, Vec<&Task>)],
    asked: &[PipelineStage],
) -> Result<()> {
    let mut compare = Compare::new().field("number of stages", &existing.len(), &asked.len());
    for (i, ((stage_name, tasks), stage)) in existing.iter().zip(asked).enumerate() {
        compare = compare.part(&format!("stage {}", i + 1), |c| {
            let mut c = c.field("name", stage_name, &stage.name).field(
                "number of tasks",
                &tasks.len(),
                &stage.tasks.len(),
            );
            for (j, (t, spec)) in tasks.iter().zip(&stage.tasks).enumerate() {
                let data = t.metadata.get("data").unwrap_or(&serde_json::Value::Null);
                c = c.part(&format!("task {}", j + 1), |c| task(c, t, data, spec));
            }
            c
        });
    }
    compare.finish("pipeline", name)
}

/// Registering dependency `existing` again with `artifact_type`.
pub(super) fn existing_dependency(existing: &Dependency, artifact_type: &ArtifactType) -> Result<()> {
    Compare::new()
        .field("artifact type", &existing.artifact_type, artifact_type)
        .finish("dependency", existing.id.as_str())
}

/// Creating a barrier with `participants` again.
pub(super) fn existing_barrier(name: &str, existing: &[String], participants: &[String]) -> Result<()> {
    Compare::new().set("participants", existing, participants).finish("barrier", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn the_first_difference_is_named_and_later_ones_are_not() {
        let difference = Compare::new()
            .field("same", &1, &1)
            .field("count", &1, &2)
            .field("other", &"a", &"b")
            .finish("thing", "t")
            .unwrap_err();
        assert_eq!(
            difference.to_string(),
            "thing t exists already with another definition: count: 1 exists, 2 asked"
        );
        assert!(Compare::new()
            .field("x", &1, &1)
            .json("j", &serde_json::json!([1]), &serde_json::json!([1]))
            .finish("thing", "t")
            .is_ok());
    }

    #[test]
    fn sets_ignore_order_and_repetition_and_name_what_is_added_and_dropped() {
        assert!(existing_barrier("b", &names(&["a", "b"]), &names(&["b", "a", "a"])).is_ok());
        let err = existing_barrier("b", &names(&["a", "b"]), &names(&["a", "c", "d"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "barrier b exists already with another definition: participants: the definition asked for adds c, d and drops b"
        );
    }

    #[test]
    fn parts_prefix_their_differences_and_long_values_are_shortened() {
        let long = "x".repeat(200);
        let Err(Error::AlreadyExists { difference, .. }) =
            Compare::new().part("stage 1", |c| c.field("name", long.as_str(), "y")).finish("pipeline", "p")
        else {
            panic!("a difference");
        };
        assert!(difference.starts_with("stage 1: name: \"xxx"), "{difference}");
        assert!(difference.ends_with("… exists, \"y\" asked"), "{difference}");
        assert!(difference.chars().count() < 120, "{difference}");
    }
}
