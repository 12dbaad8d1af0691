//! The audit index changes how fast an audit is, never what it answers: random queries (tasks,
//! agents, keys, types, time ranges, each alone or together) over stores of two complete index
//! chunks and a tail get the same records with and without the index, and both equal a plain filter over
//! every record of the log; also with an application record, an undecodable record a tombstone
//! skips, a damaged chunk (passed over, removed, then built again) and a keyed compaction (the
//! kept records, chunks of removed records dropped).

use maos_coord::audit_index::CHUNK_SPAN;
use maos_coord::coordinator::{CompactOptions, HistoryEntry, StoreHistory};
use maos_coord::format::entity_index::KEYS_AT;
use maos_coord::model::{AuditQuery, Recorded, Tombstone, Viewer, EVENT_RECORD_KIND, TOMBSTONE_RECORD_KIND};
use maos_coord::{Coordinator, Durability, Lsn, RecordKind, Timestamp};
use maos_coord_test_support::workload::{new_store, Workload};

/// Every coordination event of the store, as the plain filter sees them: decoded, those that do
/// not decode passed over (the test's only such record has a tombstone).
fn all_events(history: &StoreHistory) -> Vec<(Lsn, Timestamp, Recorded)> {
    let mut reader = history.log().audit_reader().unwrap();
    let mut out = Vec::new();
    while let Some(r) = reader.next().unwrap() {
        if r.kind.get() == EVENT_RECORD_KIND {
            if let Ok(recorded) = Recorded::decode(r.lsn, r.payload) {
                out.push((r.lsn, r.timestamp, recorded));
            }
        }
    }
    out
}

fn plain(
    all: &[(Lsn, Timestamp, Recorded)],
    query: &AuditQuery,
    viewer: &Viewer,
    now: Timestamp,
) -> Vec<HistoryEntry> {
    all.iter()
        .filter(|(_, time, recorded)| query.matches(recorded, *time))
        .map(|(lsn, time, recorded)| {
            let mut recorded = recorded.clone();
            let withheld = recorded.withhold_for(viewer, now);
            HistoryEntry { lsn: *lsn, time: *time, recorded, withheld }
        })
        .collect()
}

/// A small random number generator (xorshift64*), so that a failure names its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

/// A random query over the names of `workload`, with times taken from `all`.
fn query(rng: &mut Rng, workload: &Workload, all: &[(Lsn, Timestamp, Recorded)]) -> AuditQuery {
    let mut q = AuditQuery::all();
    let types =
        ["TaskClaimed", "TaskLeaseLapsed", "TaskCompleted", "ContextUpdated", "deploy", "AgentHeartbeat"];
    // Each criterion in about one query of three; sometimes two names of one.
    for _ in 0..rng.below(3).saturating_sub(1) {
        q = q.task(Workload::task(rng.below(workload.tasks as usize + 3) as u64));
    }
    for _ in 0..rng.below(3).saturating_sub(1) {
        q = q.agent(if rng.below(8) == 0 { Workload::planner() } else { Workload::worker(rng.below(17)) });
    }
    for _ in 0..rng.below(3).saturating_sub(1) {
        q = q.key(Workload::key(rng.below(workload.keys)));
    }
    for _ in 0..rng.below(3).saturating_sub(1) {
        q = q.event_type(types[rng.below(types.len())]);
    }
    let time = |rng: &mut Rng| all[rng.below(all.len())].1;
    if rng.below(3) == 0 {
        q = q.since(time(rng));
    }
    if rng.below(3) == 0 {
        q = q.until(time(rng));
    }
    q
}

fn viewer(rng: &mut Rng) -> Viewer {
    match rng.below(3) {
        0 => Viewer::Public,
        _ => Viewer::Agent(Workload::worker(rng.below(16))),
    }
}

/// Compares `queries` random queries with the index, without it, and the plain filter.
fn compare(history: &StoreHistory, workload: &Workload, rng: &mut Rng, queries: usize) {
    let all = all_events(history);
    let without_index = history.clone().use_index(false);
    for _ in 0..queries {
        let (q, v) = (query(rng, workload, &all), viewer(rng));
        let now = history.now().unwrap();
        let with = history.audit(&q, &v).unwrap();
        assert_eq!(with, without_index.audit(&q, &v).unwrap(), "{q:?} as {v:?}, seed {}", rng.0);
        assert_eq!(with, plain(&all, &q, &v, now), "{q:?} as {v:?}");
    }
}

fn chunk_file(root: &std::path::Path, first: u64) -> std::path::PathBuf {
    root.join(format!(".maos/coordination/index/{first:020}.ent"))
}

#[test]
fn random_queries_get_the_same_records_with_and_without_the_index() {
    let seed = 1_000_003u64;
    let root = tempfile::tempdir().unwrap();
    let (log, mut workload) = new_store(root.path(), seed, 40, 64 << 20);
    workload.append(&log, CHUNK_SPAN + 10_000, 50);
    // An application record, and a coordination record that does not decode (holding names
    // that queries ask for, so that scans look at it), skipped by a tombstone.
    log.append(RecordKind::new(16).unwrap(), b"w1 task-00000003 TaskClaimed").unwrap();
    let garbage =
        log.append(RecordKind::new(EVENT_RECORD_KIND).unwrap(), b"\xc1 w1 w2 task-00000003").unwrap();
    let tombstone = Tombstone { lsn: garbage, reason: "test".into() }.encode().unwrap();
    log.append(RecordKind::new(TOMBSTONE_RECORD_KIND).unwrap(), &tombstone).unwrap();
    workload.append(&log, CHUNK_SPAN + 5_000, 50);
    log.sync().unwrap();
    log.close().unwrap();

    let history = Coordinator::options(root.path()).open_history().unwrap();
    let update = history.update_index().unwrap();
    assert_eq!(update.built, [Lsn::new(1), Lsn::new(1 + CHUNK_SPAN)]);
    let mut rng = Rng(seed);
    compare(&history, &workload, &mut rng, 40);

    // A chunk whose header or bucket table (which every lookup reads) is damaged is passed
    // over and removed; the next audit builds it again. (Damage elsewhere is caught by the
    // lookups that read it: `format::entity_index` flips every byte.)
    let file = chunk_file(root.path(), 1 + CHUNK_SPAN);
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    let at = rng.below(KEYS_AT);
    bad[at] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    let q = AuditQuery::all().agent(Workload::worker(3));
    let all = all_events(&history);
    let now = history.now().unwrap();
    assert_eq!(history.audit(&q, &Viewer::Public).unwrap(), plain(&all, &q, &Viewer::Public, now));
    assert!(!file.exists(), "the damaged chunk (byte {at}) went");
    assert_eq!(history.audit(&q, &Viewer::Public).unwrap(), plain(&all, &q, &Viewer::Public, now));
    assert_eq!(std::fs::read(&file).unwrap(), good, "built again, the same");
}

#[tokio::test]
async fn after_a_keyed_compaction_the_kept_records_and_the_log_are_searched_alike() {
    let root = tempfile::tempdir().unwrap();
    let (log, mut workload) = new_store(root.path(), 99, 40, 4 << 20);
    workload.append(&log, 2 * CHUNK_SPAN + 3_000, 100);
    log.sync().unwrap();
    log.close().unwrap();
    let c =
        Coordinator::options(root.path()).durability(Durability::Buffered).snapshot_every(0).open().unwrap();
    let history = c.store_history();
    assert_eq!(history.update_index().unwrap().built.len(), 2);
    c.snapshot().unwrap();
    let report = c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() }).unwrap();
    assert!(!report.removed.is_empty(), "{report:?}");
    let start = c.log().first_lsn().unwrap();
    assert!(start > Lsn::new(1 + CHUNK_SPAN), "the first chunk's records all went: {start}");
    let update = history.update_index().unwrap();
    let gone: Vec<Lsn> =
        [1, 1 + CHUNK_SPAN].into_iter().filter(|f| f + CHUNK_SPAN <= start.get()).map(Lsn::new).collect();
    assert_eq!(update.removed, gone, "the chunks of removed records went too");
    for first in [1, 1 + CHUNK_SPAN] {
        assert_eq!(chunk_file(root.path(), first).exists(), first + CHUNK_SPAN > start.get());
    }
    let mut rng = Rng(5);
    compare(&history, &workload, &mut rng, 30);
    // The coordinator's own audit (an agent's view, the index as it stands) agrees.
    let reader = Workload::worker(2);
    let q = AuditQuery::all().agent(Workload::worker(2)).event_type("TaskCompleted");
    let now = history.now().unwrap();
    let expected = plain(&all_events(&history), &q, &Viewer::Agent(reader.clone()), now);
    assert!(expected.iter().any(|e| e.lsn < start) && expected.iter().any(|e| e.lsn >= start));
    assert_eq!(c.audit(&reader, &q).unwrap(), expected);
}
