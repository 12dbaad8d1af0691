//! Limits every JSON value passes before it goes into a record, so that nothing is appended that
//! the store could not read back (log-format.md, "Limits"). The decoder of records and of
//! snapshots refuses `MessagePack` nested deeper than 1,024 levels (rmp-serde's limit); a value
//! sits a few levels down in a record and about ten in a snapshot, so values may nest at most
//! [`MAX_VALUE_DEPTH`] levels.

use serde_json::Value;

use crate::error::{Error, Result};

/// Deepest nesting of arrays and objects allowed in a stored JSON value (a scalar is depth 0,
/// `[1]` depth 1).
pub const MAX_VALUE_DEPTH: usize = 512;

/// How deeply `value` nests arrays and objects (a scalar: 0). Iterative: a value nested far
/// deeper than any stack allows is measured without recursion.
#[must_use]
pub fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// Checks the value `what` (for example `context key build/result`) against the depth limit and
/// the size limit `max_size` (bytes of its `MessagePack` encoding).
///
/// # Errors
/// [`Error::ValueTooDeep`] for a value nested deeper than [`MAX_VALUE_DEPTH`] levels,
/// [`Error::ValueTooLarge`] for one larger than `max_size`, both naming `what`; [`Error::Encode`] if
/// rmp-serde refuses to encode it.
pub fn check_value(what: &str, value: &Value, max_size: usize) -> Result<()> {
    let depth = value_depth(value);
    if depth > MAX_VALUE_DEPTH {
        return Err(Error::ValueTooDeep { what: what.to_owned(), depth, max: MAX_VALUE_DEPTH });
    }
    let size = rmp_serde::to_vec(value).map_err(|e| Error::Encode { reason: e.to_string() })?.len();
    if size > max_size {
        return Err(Error::ValueTooLarge { what: what.to_owned(), size, max: max_size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::Null, |v, _| Value::Array(vec![v]))
    }

    #[test]
    fn depth_counts_containers_and_takes_the_deepest_branch() {
        assert_eq!(value_depth(&Value::Null), 0);
        assert_eq!(value_depth(&serde_json::json!([1, {"a": [2]}, []])), 3);
        // Measuring does not recurse; building and dropping such a value does (serde_json), so
        // that part runs on a thread with a large stack.
        let deep = std::thread::Builder::new()
            .stack_size(512 << 20)
            .spawn(|| value_depth(&nested(100_000)))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(deep, 100_000);
    }

    #[test]
    fn values_past_the_limits_are_refused_naming_them() {
        assert!(check_value("v", &nested(MAX_VALUE_DEPTH), 1 << 20).is_ok());
        let err = check_value("context key deep", &nested(MAX_VALUE_DEPTH + 1), 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "value for context key deep nests {} levels deep; at most {MAX_VALUE_DEPTH} are allowed",
                MAX_VALUE_DEPTH + 1
            )
        );
        let err = check_value("event data", &serde_json::json!("x".repeat(100)), 50).unwrap_err();
        assert!(matches!(err, Error::ValueTooLarge { size: 102, max: 50, .. }), "{err}");
    }
}
