//! A state opened from a version-3 snapshot on demand answers every query exactly as the same
//! snapshot decoded whole, and as the replay of the records it came from, before and after
//! more records are applied on top (property test over random records).

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::model::{AgentId, ContextKey, Event, Priority, Recorded, Task, TaskId, TaskStatus, Visibility};

const TASKS: u8 = 12;
const KEYS: [&str; 6] = ["a", "a/1", "a/2", "b", "b/x", "c"];

fn agent(i: u8) -> AgentId {
    AgentId::new(format!("agent{}", i % 3)).unwrap()
}

fn task_id(i: u8) -> TaskId {
    TaskId::new(format!("t{}", i % TASKS)).unwrap()
}

fn key(i: u8) -> ContextKey {
    ContextKey::new(KEYS[i as usize % KEYS.len()]).unwrap()
}

fn new_task(i: u8, priority: u8, keyed: bool) -> Task {
    Task {
        id: task_id(i),
        name: "t".into(),
        description: String::new(),
        priority: [Priority::Low, Priority::Normal, Priority::High, Priority::Critical]
            [priority as usize % 4],
        required_capabilities: Vec::new(),
        status: TaskStatus::Pending,
        assigned_to: None,
        outputs: Vec::new(),
        metadata: serde_json::json!({ "n": i }),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        attempts: 0,
        max_attempts: 3,
        failures: 0,
        lease_until: None,
        created_by: agent(0),
        idempotency_key: keyed.then(|| format!("key{}", i % TASKS)),
        created_lsn: 0,
    }
}

fn event() -> impl Strategy<Value = Event> {
    let t = 0u8..TASKS;
    prop_oneof![
        4 => (t.clone(), 0u8..4, any::<bool>()).prop_map(|(i, p, k)| Event::TaskCreated { task: Box::new(new_task(i, p, k)) }),
        3 => (t.clone(), 0u8..3, 0i64..100).prop_map(|(i, a, until)| Event::TaskClaimed { task: task_id(i), agent: agent(a), lease_until: Timestamp(until * 10) }),
        1 => (t.clone(), 0u8..3).prop_map(|(i, a)| Event::TaskLeaseLapsed { task: task_id(i), agent: agent(a) }),
        1 => (t.clone(), 0u8..3).prop_map(|(i, a)| Event::TaskReleased { task: task_id(i), agent: agent(a) }),
        1 => t.clone().prop_map(|i| Event::TaskBlocked { task: task_id(i), reason: "b".into() }),
        1 => t.clone().prop_map(|i| Event::TaskUnblocked { task: task_id(i) }),
        2 => t.clone().prop_map(|i| Event::TaskCompleted { task: task_id(i), outputs: vec!["o".into()] }),
        1 => t.clone().prop_map(|i| Event::TaskCancelled { task: task_id(i), reason: "c".into() }),
        1 => (0u8..3, 0i64..100).prop_map(|(a, until)| Event::AgentHeartbeat { agent: agent(a), lease_until: Timestamp(until * 10) }),
        1 => (0u8..3).prop_map(|a| Event::AgentStopped { agent: agent(a), reason: "s".into() }),
        3 => (0u8..6, 0i64..5).prop_map(|(k, v)| Event::ContextUpdated {
            key: key(k), value: serde_json::json!(v), visibility: Visibility::Shared,
            expires_at: None, metadata: std::collections::BTreeMap::default(), version: 0,
        }),
        1 => (0u8..6).prop_map(|k| Event::ContextDeleted { key: key(k), version: 0 }),
    ]
}

fn apply_all(state: &mut State, events: &[Event], first: u64) {
    for (i, event) in events.iter().enumerate() {
        let n = first + i as u64;
        let recorded = Recorded { actor: agent(1), event: event.clone() };
        state.apply(recorded, Lsn(n), Timestamp(n.cast_signed() * 10));
    }
}

/// The bytes of a version-3 snapshot file of `state`, and the length of its body's directory.
fn snapshot_file(state: &State) -> (Vec<u8>, usize) {
    let image = state.to_image();
    let body = sections::body(&image, None).unwrap();
    let dir = crate::format::snapshot_body::directory_len_of(&body).unwrap();
    let crc = crc32fast::hash(&body[..dir]);
    let mut bytes = header(SNAPSHOT_VERSION, image.next_lsn.get(), body.len() as u64, crc).to_vec();
    bytes.extend_from_slice(&body);
    (bytes, dir)
}

/// `state` as a version-3 snapshot file, opened on demand.
fn opened(state: &State) -> State {
    state_of(Arc::new(snapshot_file(state).0), PathBuf::from("test.snap"), false).unwrap()
}

/// Every query a command asks of tasks and context, as comparable text.
fn answers(state: &State) -> Vec<String> {
    let ids = |tasks: &mut dyn Iterator<Item = &Task>| tasks.map(|t| t.id.to_string()).collect::<Vec<_>>();
    let mut out = vec![
        format!("claim order {:?}", ids(&mut state.tasks.pending_in_claim_order())),
        format!("lapsed at 500 {:?}", ids(&mut state.tasks.lapsed(Timestamp(500)))),
        format!("next lease end {:?}", state.tasks.next_lease_end(Timestamp(0))),
        format!("count {}", state.tasks.len()),
    ];
    for p in [Priority::Critical, Priority::High, Priority::Normal, Priority::Low] {
        out.push(format!("pending at {p:?} {:?}", ids(&mut state.tasks.pending_at(p))));
    }
    for a in 0..3 {
        out.push(format!("held by {a} {:?}", ids(&mut state.tasks.held_by_agent(&agent(a)))));
    }
    for i in 0..TASKS {
        out.push(format!("task {i} {:?}", state.tasks.get(&task_id(i))));
        out.push(format!("key {i} {:?}", state.tasks.by_idempotency_key(&format!("key{i}")).map(|t| &t.id)));
    }
    for k in 0..6u8 {
        let k = key(k);
        out.push(format!(
            "ctx {k} {:?} {} {:?}",
            state.context.current(&k),
            state.context.version(&k),
            state.context.versions(&k)
        ));
    }
    for prefix in ["", "a", "a/", "b", "z"] {
        let listed: Vec<_> =
            state.context.with_prefix(prefix).map(|e| (e.key.to_string(), e.version)).collect();
        out.push(format!("prefix {prefix:?} {listed:?}"));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_state_opened_on_demand_answers_as_decoded_whole_and_as_replayed(
        before in proptest::collection::vec(event(), 0..60),
        after in proptest::collection::vec(event(), 0..40),
    ) {
        let mut replayed = State::new();
        apply_all(&mut replayed, &before, 1);
        let mut lazy = opened(&replayed);
        let mut untouched = opened(&replayed);
        let mut whole = State::from_image(replayed.to_image());
        prop_assert_eq!(answers(&lazy), answers(&replayed));
        let next = before.len() as u64 + 1;
        apply_all(&mut replayed, &after, next);
        apply_all(&mut lazy, &after, next);
        apply_all(&mut whole, &after, next);
        apply_all(&mut untouched, &after, next);
        prop_assert_eq!(answers(&untouched), answers(&replayed));
        prop_assert_eq!(answers(&lazy), answers(&replayed));
        prop_assert_eq!(answers(&whole), answers(&replayed));
        prop_assert!(lazy.damage().is_none());
        prop_assert_eq!(&lazy, &replayed);
        prop_assert_eq!(lazy.to_image(), replayed.to_image());
    }
}

#[test]
fn a_read_of_a_damaged_block_is_noted_with_the_file_and_offset() {
    let mut state = State::new();
    let events: Vec<Event> = (0..200u8)
        .map(|i| Event::TaskCreated {
            task: Box::new(Task {
                id: TaskId::new(format!("task-{i}")).unwrap(),
                ..new_task(i, i % 4, false)
            }),
        })
        .collect();
    apply_all(&mut state, &events, 1);
    let (mut bytes, dir) = snapshot_file(&state);
    let at = HEADER_LEN + dir + 2 * 4096 + 100; // in block 2: tasks
    bytes[at] ^= 0xff;
    let lazy = state_of(Arc::new(bytes.clone()), PathBuf::from("damaged.snap"), false)
        .expect("the directory checks out");
    assert!(lazy.damage().is_none(), "nothing read yet");
    assert!(lazy.tasks.get(&TaskId::new("task-0").unwrap()).is_some(), "block 0 reads fine");
    assert!(lazy.damage().is_none());
    assert!(lazy.tasks.iter().count() < 200, "the tasks of block 2 cannot be read");
    let damage = lazy.damage().expect("the failed read is noted");
    assert!(damage.contains("damaged.snap") && damage.contains("block 2 checksum mismatch"), "{damage}");
    assert!(damage.contains(&format!("at byte {}", HEADER_LEN + dir + 2 * 4096)), "{damage}");
    let whole = state_of(Arc::new(bytes), PathBuf::from("damaged.snap"), true).unwrap_err();
    assert_eq!(whole.offset, (HEADER_LEN + dir + 2 * 4096) as u64, "the block that holds the flipped byte");
    assert!(whole.reason.contains("block 2 checksum mismatch"), "{}", whole.reason);
}

/// A base that counts the claim-order entries read through it.
#[derive(Debug)]
struct Counting {
    inner: Arc<mapped::MappedSnapshot>,
    read: std::sync::atomic::AtomicU64,
}

impl crate::projection::base::Base for Counting {
    fn lsn(&self) -> Lsn {
        self.inner.lsn()
    }
    fn log_position(&self) -> Option<(Lsn, u64)> {
        self.inner.log_position()
    }
    fn task_count(&self) -> u32 {
        self.inner.task_count()
    }
    fn task(&self, slot: u32) -> Result<Task, String> {
        self.inner.task(slot)
    }
    fn slots_by_id(&self, id: &str) -> Result<Vec<u32>, String> {
        self.inner.slots_by_id(id)
    }
    fn slots_by_idempotency_key(&self, key: &str) -> Result<Vec<u32>, String> {
        self.inner.slots_by_idempotency_key(key)
    }
    fn pending(
        &self,
        only: Option<Priority>,
        from: u32,
    ) -> Box<dyn Iterator<Item = Result<(u32, crate::projection::base::PendingKey), String>> + '_> {
        Box::new(self.inner.pending(only, from).inspect(|_| {
            self.read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }))
    }
    fn in_progress(&self) -> Result<Vec<u32>, String> {
        self.inner.in_progress()
    }
    fn key_count(&self) -> u32 {
        self.inner.key_count()
    }
    fn key(&self, index: u32) -> Result<ContextKey, String> {
        self.inner.key(index)
    }
    fn key_history(&self, index: u32) -> Result<(ContextKey, crate::projection::KeyHistory), String> {
        self.inner.key_history(index)
    }
    fn key_lower_bound(&self, key: &str) -> Result<u32, String> {
        self.inner.key_lower_bound(key)
    }
    fn check_all(&self) -> Result<(), String> {
        crate::projection::base::Base::check_all(&*self.inner)
    }
    fn note_damage(&self, reason: String) {
        self.inner.note_damage(reason);
    }
    fn damage(&self) -> Option<String> {
        self.inner.damage()
    }
}

#[test]
fn claiming_every_task_of_a_snapshot_reads_its_claim_order_about_once_not_once_per_claim() {
    use crate::projection::base::Base as _;
    const N: u8 = 250;
    let mut replayed = State::new();
    let mut events = Vec::new();
    for round in 0..8u8 {
        for i in 0..N {
            let id = TaskId::new(format!("r{round}-{i}")).unwrap();
            events.push(Event::TaskCreated { task: Box::new(Task { id, ..new_task(i, i % 4, false) }) });
        }
    }
    apply_all(&mut replayed, &events, 1);
    let total = events.len() as u64;
    let (bytes, _) = snapshot_file(&replayed);
    let crc = u32::from_le_bytes(bytes[40..44].try_into().unwrap());
    let (image, snapshot) =
        mapped::MappedSnapshot::open(Arc::new(bytes), crc, PathBuf::from("t.snap")).unwrap();
    let counting = Arc::new(Counting { inner: snapshot, read: 0.into() });
    let mut state = State::on_base(image, counting.clone());
    // Claims take turns: the first in strict claim order, the first of the highest priority (as
    // aging claims look).
    for (step, next) in (0..total).zip(total + 1..) {
        let first = if step % 2 == 0 {
            state.tasks.pending_in_claim_order().next()
        } else {
            [Priority::Critical, Priority::High, Priority::Normal, Priority::Low]
                .into_iter()
                .find_map(|p| state.tasks.pending_at(p).next())
        };
        let task = first.expect("a pending task").id.clone();
        let claim = Event::TaskClaimed { task, agent: agent(0), lease_until: Timestamp(i64::MAX) };
        apply_all(&mut state, &[claim], next);
    }
    assert_eq!(state.tasks.pending_in_claim_order().count(), 0);
    let read = counting.read.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read <= 4 * total, "{read} claim-order entries read for {total} claims");
    assert_eq!(u64::from(counting.task_count()), total);
}
