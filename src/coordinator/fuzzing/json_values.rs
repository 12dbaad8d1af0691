//! Body of the `json_values` fuzz target: JSON values of every shape (deep, wide, extreme
//! numbers, long and odd strings, empty containers) written through the API as context values,
//! application event data and task metadata, then read back live, after a full replay and from a
//! snapshot.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::coordinator::Coordinator;
use crate::error::Error;
use crate::log::Durability;
use crate::model::limits::{value_depth, MAX_VALUE_DEPTH};
use crate::model::{AgentId, ContextKey, Event, EventFilter, NewTask, TaskId, Visibility};
use crate::projection::State;
use crate::types::Lsn;

/// The value size limits a run uses: the default, and a small one that wide values exceed.
const LIMITS: [usize; 2] = [256 * 1024, 4096];
/// Most values written in one run.
const MAX_OPS: usize = 12;
/// Stack of the thread the body runs on: encoding, decoding, comparing and dropping a value
/// recurse once per level, and refused values nest thousands of levels deep.
const STACK: usize = 256 << 20;

/// Writes the values that `data` describes through the API of a store under `root` and checks
/// the contract:
/// - every call either succeeds, appending, or is refused with `ValueTooDeep` / `ValueTooLarge`
///   naming the value, with a depth or size past the limit, appending nothing (the log's next
///   LSN is unchanged);
/// - a value is accepted exactly when it is within both limits;
/// - every accepted value reads back identical (as JSON text, so -0.0 stays -0.0) live, after
///   reopening the store with a full replay, and after reopening it from a snapshot; and the
///   state is the same all three ways.
///
/// # Panics
/// When the contract is broken: that is the finding.
pub fn json_values(root: &Path, data: &[u8]) {
    let (root, data) = (root.to_owned(), data.to_vec());
    let body = move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(run(&root, &data));
    };
    let thread = std::thread::Builder::new().stack_size(STACK).spawn(body).expect("spawn");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// What one call returned when it accepted a value.
enum Accepted {
    /// The new version of the context key.
    Context(u64),
    /// The LSN of the event.
    Event(Lsn),
    /// The task created.
    Task(TaskId),
}

/// What was accepted, to be read back.
#[derive(Default)]
struct Expected {
    /// Every version of every context key set.
    context: BTreeMap<ContextKey, Vec<(u64, Value)>>,
    /// Application events.
    events: Vec<(Lsn, Value)>,
    /// Task metadata.
    tasks: Vec<(TaskId, Value)>,
}

async fn run(root: &Path, data: &[u8]) {
    let mut input = Input { data, at: 0 };
    let max = LIMITS[usize::from(input.byte()) % LIMITS.len()];
    let open = || {
        Coordinator::options(root)
            .durability(Durability::Buffered)
            .max_value_size(max)
            .segment_size(1 << 20)
            .open()
            .expect("open the store")
    };
    let c = open();
    let agent = AgentId::new("writer").expect("agent id");
    c.register_agent(&agent, "r", vec![]).await.expect("register");
    let mut expected = Expected::default();
    for _ in 0..MAX_OPS {
        if input.done() {
            break;
        }
        let op = input.byte() % 3;
        let key = ContextKey::new(format!("k{}", input.byte() % 3)).expect("context key");
        let value = input.value(0, &mut 20_000);
        let metadata = input.metadata();
        let before = c.log().next_lsn();
        let (what, outcome) = match op {
            0 => {
                let set = c.set_context(&agent, &key, value.clone(), Visibility::Shared).await;
                (format!("context key {key}"), set.map(Accepted::Context))
            }
            1 => {
                let emitted = c.emit_event(&agent, "probe", value.clone(), metadata).await;
                ("event data".to_owned(), emitted.map(Accepted::Event))
            }
            _ => {
                let created = c.create_task(&agent, NewTask::new("t").metadata(value.clone())).await;
                ("task metadata".to_owned(), created.map(|task| Accepted::Task(task.id)))
            }
        };
        let after = c.log().next_lsn();
        let depth = value_depth(&value);
        let size = rmp_serde::to_vec(&value).expect("encode").len();
        let within = depth <= MAX_VALUE_DEPTH && size <= max;
        match outcome {
            Ok(accepted) => {
                assert!(within, "{what}: accepted {depth} levels and {size} bytes");
                assert!(after > before, "{what}: accepted without appending");
                match accepted {
                    Accepted::Context(version) => {
                        expected.context.entry(key).or_default().push((version, value));
                    }
                    Accepted::Event(lsn) => expected.events.push((lsn, value)),
                    Accepted::Task(id) => expected.tasks.push((id, value)),
                }
            }
            Err(e) => {
                assert_eq!(after, before, "{what}: refused ({e}) but appended");
                match &e {
                    Error::ValueTooDeep { what: named, depth: found, max: limit } => {
                        assert_eq!((named, *found, *limit), (&what, depth, MAX_VALUE_DEPTH), "{e}");
                        assert!(depth > MAX_VALUE_DEPTH, "{e}");
                    }
                    Error::ValueTooLarge { what: named, size: found, max: limit } => {
                        assert_eq!((named, *found, *limit), (&what, size, max), "{e}");
                        assert!(depth <= MAX_VALUE_DEPTH && size > max, "{e}");
                    }
                    other => panic!("{what}: refused with another error: {other}"),
                }
                assert!(e.to_string().contains(&what), "the error does not name the value: {e}");
            }
        }
    }
    check(&c, &agent, &expected, "live");
    let live = c.read(State::to_image).expect("read the state");
    drop(c);

    let c = open();
    check(&c, &agent, &expected, "after a full replay");
    assert!(c.read(State::to_image).expect("read the state") == live, "a full replay gives another state");
    c.snapshot().expect("snapshot");
    drop(c);

    let c = open();
    assert!(c.skipped_snapshots().is_empty(), "{:?}", c.skipped_snapshots());
    check(&c, &agent, &expected, "from a snapshot");
    assert!(c.read(State::to_image).expect("read the state") == live, "a snapshot gives another state");
}

/// Reads every accepted value back through the API.
fn check(c: &Coordinator, agent: &AgentId, expected: &Expected, when: &str) {
    for (key, versions) in &expected.context {
        let current = c.get_context(agent, key).expect("get").expect("the key is set");
        let (version, value) = versions.last().expect("a version");
        assert_eq!(current.version, *version, "{when}: version of {key}");
        assert!(same(&current.value, value), "{when}: the value of {key} reads back otherwise");
        for (version, value) in versions {
            let past =
                c.get_context_version(agent, key, *version).expect("get a version").expect("it is there");
            assert!(same(&past.value, value), "{when}: version {version} of {key} reads back otherwise");
        }
    }
    if let Some((first, _)) = expected.events.first() {
        let filter = EventFilter::all().types(["probe"]);
        let mut events = c.subscribe_from(agent, filter, *first).expect("subscribe");
        for (lsn, value) in &expected.events {
            let delivery = events.try_next().expect("read an event").expect("the event is there");
            assert_eq!(delivery.lsn, *lsn, "{when}: events");
            let Event::Custom { data, .. } = &delivery.recorded.event else { panic!("{when}: not an event") };
            assert!(same(data, value), "{when}: the data of the event at LSN {lsn} reads back otherwise");
        }
    }
    for (id, value) in &expected.tasks {
        let task = c.get_task(id).expect("get a task").expect("the task is there");
        assert!(same(&task.metadata, value), "{when}: the metadata of task {id} reads back otherwise");
    }
}

/// Equal, and equal as JSON text: `Value`'s own equality takes -0.0 for 0.0.
fn same(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| serde_json::to_string(v).expect("JSON text");
    a == b && text(a) == text(b)
}

/// The fuzzer's bytes, read as choices; zeros once they run out.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

/// Numbers at the edges of what JSON, `MessagePack` and the integer types hold.
#[allow(clippy::cast_precision_loss)] // the floats nearest the integer bounds, on purpose
fn special(i: u8) -> Value {
    let float = |f: f64| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    match i % 24 {
        0 => json!(i64::MIN),
        1 => json!(i64::MAX),
        2 => json!(u64::MAX),
        3 => json!(0),
        4 => json!(-1),
        5 => float(-0.0),
        6 => float(0.0),
        7 => float(f64::MIN_POSITIVE),
        8 => float(f64::MAX),
        9 => float(f64::MIN),
        10 => float(f64::EPSILON),
        11 => float(5e-324),
        12 => float(-5e-324),
        13 => float(0.1),
        14 => float(i64::MIN as f64),
        15 => float(u64::MAX as f64),
        16 => json!(9_007_199_254_740_993_u64),
        17 => json!(i64::MIN + 1),
        18 => json!(1_u64 << 63),
        19 => json!(u64::from(u32::MAX) + 1),
        20 => json!(-129),
        21 => json!(255),
        22 => float(1.0),
        _ => float(-1.5e300),
    }
}

/// Pieces strings are made of: multi-byte UTF-8, NUL, controls, joiners, direction marks,
/// escapes, the largest scalar value.
const PIECES: [&str; 20] = [
    "",
    "a",
    "é",
    "ü",
    "€",
    "😀",
    "\u{0}",
    "\u{7f}",
    "\u{ffff}",
    "\u{10ffff}",
    "\u{200b}",
    "\u{202e}",
    "\"",
    "\\",
    "\n",
    "👩\u{200d}👩\u{200d}👧",
    "ﷺ",
    "𝄞",
    "\u{fffd}",
    "key",
];

impl Input<'_> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    fn string(&mut self) -> String {
        let n = self.byte() % 12;
        (0..n).map(|_| PIECES[usize::from(self.byte()) % PIECES.len()]).collect()
    }

    /// Up to 65,535 repetitions of a piece: up to 720 KB, past every size limit.
    fn long_string(&mut self) -> String {
        let piece = PIECES[usize::from(self.byte()) % PIECES.len()];
        piece.repeat(usize::from(self.u16()) * 3)
    }

    fn metadata(&mut self) -> BTreeMap<String, String> {
        let n = self.byte() % 3;
        (0..n).map(|_| (self.string(), self.string())).collect()
    }

    /// A value; `budget` bounds the number of values made in all.
    fn value(&mut self, depth: usize, budget: &mut usize) -> Value {
        *budget = budget.saturating_sub(1);
        if *budget == 0 || self.done() {
            return special(self.byte());
        }
        match self.byte() % 16 {
            0 => Value::Null,
            1 => Value::Bool(self.byte() & 1 == 1),
            2 => json!(self.u64().cast_signed()),
            3 => json!(self.u64()),
            4 => serde_json::Number::from_f64(f64::from_bits(self.u64())).map_or(Value::Null, Value::Number),
            5 | 6 => special(self.byte()),
            7 => Value::String(self.string()),
            8 => Value::String(self.long_string()),
            9 if depth < 8 => {
                let n = self.byte() % 6;
                Value::Array((0..n).map(|_| self.value(depth + 1, budget)).collect())
            }
            10 if depth < 8 => {
                let n = self.byte() % 6;
                Value::Object((0..n).map(|_| (self.string(), self.value(depth + 1, budget))).collect())
            }
            11 => self.nested(depth, budget),
            12 => {
                let n = self.u16() % 20_000;
                let first = self.byte();
                Value::Array((0..n).map(|i| special(first.wrapping_add((i & 0xFF) as u8))).collect())
            }
            13 => {
                let n = self.u16() % 5_000;
                let first = self.byte();
                Value::Object(
                    (0..n)
                        .map(|i| (format!("k{i}"), special(first.wrapping_add((i & 0xFF) as u8))))
                        .collect(),
                )
            }
            14 => {
                if self.byte() & 1 == 0 {
                    json!([])
                } else {
                    json!({})
                }
            }
            _ => json!([{}, [], "", [[[]]], {"": {}}, [null]]),
        }
    }

    /// A value wrapped in arrays and objects (chosen by the bits of one byte, repeating) to a
    /// depth around the limit, or far past it; built without recursion.
    fn nested(&mut self, depth: usize, budget: &mut usize) -> Value {
        let levels = match self.byte() % 8 {
            0 => MAX_VALUE_DEPTH - 1,
            1 => MAX_VALUE_DEPTH,
            2 => MAX_VALUE_DEPTH + 1,
            3 => 1024,
            4 => 5000,
            _ => usize::from(self.u16()) % 1100,
        };
        let levels = levels.saturating_sub(depth);
        let shape = self.byte();
        let inner = if depth < 8 { self.value(depth + 1, budget) } else { special(shape) };
        (0..levels).fold(inner, |v, i| {
            if shape >> (i % 8) & 1 == 0 {
                Value::Array(vec![v])
            } else {
                Value::Object(Map::from_iter([(String::new(), v)]))
            }
        })
    }
}
