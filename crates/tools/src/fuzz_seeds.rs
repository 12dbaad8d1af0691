//! Writes the seed inputs of the file fuzz targets into `fuzz/regressions/<target>/` at the
//! repository root: valid files written by the library, and damaged ones. The seeds are committed; run
//! `cargo run --bin maos-fuzz-seeds` to write them again.
// A tool run by hand: a failure to write a seed is a panic with its message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use maos_coord::log::fuzzing::template::template;
use maos_coord::model::{
    AgentId, ArtifactType, BarrierName, ContextEntry, ContextKey, EventFilter, LockName, NewTask, Visibility,
};
use maos_coord::projection::StateImage;
use maos_coord::subscription::fuzzing::repair as repair_cursor_file;
use maos_coord::{Coordinator, Durability, Lsn, RecoveryMode};
use serde_json::json;

fn save(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x10;
    out
}

fn main() {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(seeds());
}

async fn seeds() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    let store = c.store_dir();
    let a = AgentId::new("agent-a").unwrap();
    let b = AgentId::new("agent-b").unwrap();

    // Snapshots: an empty store, then one with every kind of projection.
    let empty = c.snapshot().unwrap();
    let empty = std::fs::read(store.join("snapshots").join(format!("{:020}.snap", empty.get()))).unwrap();
    c.register_agent(&a, "builder", vec!["rust".into()]).await.unwrap();
    c.register_agent(&b, "tester", vec![]).await.unwrap();
    let t1 = c.create_task(&a, NewTask::new("parse").metadata(json!({"n": [1, -2, 3.5]}))).await.unwrap();
    let t2 = c.create_task(&a, NewTask::new("test")).await.unwrap();
    c.register_dependency(&a, &t1.id, &t2.id, ArtifactType::Completion).await.unwrap();
    c.claim_next_task(&a, None).await.unwrap();
    let key = ContextKey::new("plan").unwrap();
    c.set_context(&a, &key, json!({"steps": ["a", "b"], "ü": null}), Visibility::Shared).await.unwrap();
    c.set_context(&b, &key, json!(u64::MAX), Visibility::Private).await.unwrap();
    c.create_barrier(&a, &BarrierName::new("sync").unwrap(), vec!["x".into()]).await.unwrap();
    c.try_lock(&b, &LockName::new("db").unwrap(), std::time::Duration::from_secs(30)).await.unwrap();
    c.emit_event(&a, "progress", json!({"done": 1}), BTreeMap::new()).await.unwrap();
    let full = c.snapshot().unwrap();
    let full = std::fs::read(store.join("snapshots").join(format!("{:020}.snap", full.get()))).unwrap();
    save("snapshot_file", "valid-empty-store", &empty);
    save("snapshot_file", "valid-store", &full);
    save("snapshot_file", "valid-version-1", &version_1(&full));
    save("snapshot_file", "valid-version-2", &version_2(&full));
    save(
        "snapshot_file",
        "altered-log-position",
        &maos_coord::snapshot::fuzzing::repair(&flip(&full, full.len() - 5)),
    );
    save("snapshot_file", "damaged-body-byte", &flip(&full, full.len() - 5));
    save("snapshot_file", "damaged-truncated", &full[..full.len() - 9]);
    let mut bad_version = full.clone();
    bad_version[8] = 4;
    save("snapshot_file", "damaged-version-4", &bad_version);
    let mut huge = full.clone();
    huge[32..40].copy_from_slice(&(1u64 << 60).to_le_bytes());
    save("snapshot_file", "damaged-huge-length", &huge);

    // Cursor files: new, with a delivery counted, version 1, damaged.
    let mut sub = c.subscribe_durable(&a, "orders", EventFilter::all()).unwrap();
    let cursors = store.join("cursors");
    let only_cursor = || {
        let entry = std::fs::read_dir(&cursors).unwrap().next().unwrap().unwrap();
        std::fs::read(entry.path()).unwrap()
    };
    let fresh = only_cursor();
    sub.try_next().unwrap().unwrap();
    let delivered = only_cursor();
    drop(sub);
    save("cursor_file", "valid-new", &fresh);
    save("cursor_file", "valid-delivered", &delivered);
    let mut v1 = b"MAOSCUR\0".to_vec();
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&0u32.to_le_bytes());
    v1.extend_from_slice(&77u64.to_le_bytes());
    v1.extend_from_slice(&[0; 8]);
    save("cursor_file", "valid-version-1", &repair_cursor_file(&v1));
    save("cursor_file", "damaged-checksum", &flip(&delivered, 17));
    save("cursor_file", "damaged-short", &delivered[..36]);
    let mut inconsistent = delivered.clone();
    inconsistent[24..32].copy_from_slice(&0u64.to_le_bytes());
    save("cursor_file", "damaged-head-without-lsn", &repair_cursor_file(&inconsistent));
    drop(c);

    // Index files of the template's sealed segments: [segment, first seek, file bytes].
    let t = template();
    let indexes: Vec<&Vec<u8>> =
        t.files.iter().filter(|(n, _)| n.ends_with(".idx")).map(|(_, b)| b).collect();
    let with = |segment: u8, seek: u8, bytes: &[u8]| [&[segment, seek][..], bytes].concat();
    save("index_file", "valid-segment-0", &with(0, 3, indexes[0]));
    save("index_file", "valid-segment-1", &with(1, 40, indexes[1]));
    let mut entry = indexes[0].to_vec();
    entry[12..16].copy_from_slice(&2u32.to_le_bytes());
    let crc_at = entry.len() - 4;
    entry.truncate(crc_at);
    entry.extend_from_slice(&(Lsn::new(5).get()).to_le_bytes());
    entry.extend_from_slice(&200u64.to_le_bytes());
    entry.extend_from_slice(&[0; 4]);
    save("index_file", "damaged-entry-mid-frame", &with(0, 5, &entry));
    let mut huge = indexes[0].to_vec();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    save("index_file", "damaged-huge-count", &with(0, 0, &huge));
    save("index_file", "damaged-truncated", &with(1, 9, &indexes[1][..30]));

    // The compacted-records file of a keyed compaction of the template that kept every third
    // record (the fuzz target puts it beside the whole template: as if the compaction stopped
    // before removing segments), and one of a longer log, whose range ends past the template's.
    let dir = tempfile::tempdir().unwrap();
    t.write_to(dir.path());
    let log = maos_coord::log::fuzzing::template::open(dir.path(), RecoveryMode::Strict).unwrap();
    log.compact_keyed(log.next_lsn(), None, |r| Ok(r.lsn.get() % 3 == 0)).unwrap();
    let kept = std::fs::read(dir.path().join("compacted.log")).unwrap();
    save("compacted_file", "valid-every-third", &kept);
    save("compacted_file", "damaged-frame-byte", &flip(&kept, 64 + 40));
    save("compacted_file", "damaged-truncated", &kept[..kept.len() - 8]);
    let mut count = kept.clone();
    count[32] += 1;
    save("compacted_file", "damaged-record-count", &maos_coord::log::fuzzing::repair_compacted_file(&count));
    let dir = tempfile::tempdir().unwrap();
    let log = maos_coord::log::fuzzing::template::open(dir.path(), RecoveryMode::Strict).unwrap();
    let kind = maos_coord::RecordKind::new(7).unwrap();
    for i in 0..120u32 {
        log.append(kind, &vec![i as u8; (i * 29 % 300) as usize]).unwrap();
    }
    log.compact_keyed(log.next_lsn(), None, |r| Ok(r.lsn.get() % 3 == 0)).unwrap();
    save(
        "compacted_file",
        "damaged-range-past-the-log",
        &std::fs::read(dir.path().join("compacted.log")).unwrap(),
    );

    // Lock files: the log's own page (flags 0, edited), and whole files (flags bit 1).
    save("lock_file", "page-as-written", &[0]);
    save("lock_file", "page-strict-write-end-ahead", &[1, 7 << 2, 6]);
    save("lock_file", "page-other-boot", &[0, (2 << 2) | 3, 5]);
    save("lock_file", "page-tail-back", &[0, 4 << 2, 0xff]);
    // A page one record behind the newest segment, as a lock file copied before the last append
    // was: tail LSN, tail offset and write end at the last frame, last frame at the one before.
    let newest = *t.segments.last().unwrap();
    let frames: Vec<_> = t.frames.iter().filter(|f| f.0 == newest).collect();
    let (last, before) = (frames[frames.len() - 1], frames[frames.len() - 2]);
    let mut behind = vec![0u8];
    for (word, value) in [(4u8, last.1.get()), (6, last.2), (7, last.2), (10, before.2)] {
        behind.push((word << 2) | 2);
        behind.extend_from_slice(&value.to_le_bytes());
    }
    save("lock_file", "page-one-record-behind-the-segment", &behind);
    save("lock_file", "file-empty", &[2]);
    save("lock_file", "file-short", &[2, b'M', b'A', b'O', b'S']);
    let mut other = t.lock.clone();
    other[8] = 2;
    save("lock_file", "file-version-2", &[&[2u8][..], &other].concat());

    // JSON values: [limit, then per value: op, key, value...].
    // (see Input in src/coordinator/fuzzing/json_values.rs: op, key, value, metadata).
    let specials =
        [0, 0, 0, 5, 2, 0, 1, 1, 5, 5, 0, 2, 0, 5, 0, 0, 0, 1, 9, 5, 5, 11, 5, 12, 5, 14, 6, 16, 5, 18, 0];
    save("json_values", "specials", &specials);
    let deep = [0, 1, 0, 11, 1, 0, 0, 0, 0, 1, 11, 2, 1, 0, 0, 2, 2, 11, 0, 0xaa, 0, 0];
    save("json_values", "depth-at-the-limit", &deep);
    let wide = [1, 0, 0, 12, 0x2c, 0x01, 0, 0, 1, 0, 8, 5, 0x90, 0x01, 0, 2, 0, 13, 0xe8, 0x03, 0, 0];
    save("json_values", "wide-and-long-small-limit", &wide);
    let empty = [
        0, 0, 2, 14, 0, 0, 1, 0, 14, 1, 2, 3, 5, 9, 15, 1, 6, 0, 2, 10, 11, 2, 0, 15, 0, 0, 1, 7, 5, 16, 17,
        18, 19, 12, 0,
    ];
    save("json_values", "empty-containers-and-strings", &empty);
}

/// The same store as a version-1 snapshot: every version of every key in full.
/// The same snapshot with a version-2 body (one `MessagePack` map).
fn version_2(snapshot: &[u8]) -> Vec<u8> {
    let image = maos_coord::snapshot::decode(snapshot).unwrap();
    let mut file = snapshot[..48].to_vec();
    file[8] = 2;
    file.extend_from_slice(&rmp_serde::to_vec_named(&image).unwrap());
    maos_coord::snapshot::fuzzing::repair(&file)
}

fn version_1(v2: &[u8]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct VersionV1 {
        lsn: Lsn,
        entry: Option<ContextEntry>,
    }
    let image = maos_coord::snapshot::decode(v2).unwrap();
    let old: StateImage<Vec<(ContextKey, Vec<VersionV1>)>> = image.map_context(|keys| {
        keys.into_iter()
            .map(|(key, history)| {
                let lsn = history.versions.last().map_or(Lsn::new(0), |v| v.lsn);
                (key, vec![VersionV1 { lsn, entry: history.current }])
            })
            .collect()
    });
    let mut file = v2[..48].to_vec();
    file[8] = 1;
    file.extend_from_slice(&rmp_serde::to_vec_named(&old).unwrap());
    maos_coord::snapshot::fuzzing::repair(&file)
}
