//! Replays every saved fuzz input (`fuzz/regressions/<target>/`) through the fuzz targets' code,
//! so that a crash once found stays fixed. The seeds there are valid and torn images; a crash
//! input found by `cargo fuzz` is added beside them.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn saved_decode_record_inputs_do_not_panic() {
    let inputs = inputs("decode_record");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        maos_coord::log::fuzzing::decode_record(&data);
    }
}

#[test]
fn saved_decode_event_inputs_decode_alike() {
    let inputs = inputs("decode_event");
    assert!(inputs.len() >= maos_coord::model::fuzzing::sample_records().len());
    for (_, data) in inputs {
        maos_coord::model::fuzzing::decode_event(&data);
    }
}

#[test]
fn saved_open_segment_inputs_do_not_panic() {
    let inputs = inputs("open_segment");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        let dir = tempfile::tempdir().unwrap();
        maos_coord::log::fuzzing::open_segment(dir.path(), &data);
    }
}

#[test]
fn the_valid_seed_segment_written_from_the_spec_is_readable() {
    // fuzz/regressions/open_segment/valid-4-records was written by hand from log-format.md
    // (not by this crate): reading it checks the code against the spec.
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/open_segment/valid-4-records"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000000000000001.seg"), data).unwrap();
    let log = maos_coord::Log::options(dir.path()).segment_size(8192).max_record_size(4096).open().unwrap();
    let mut reader = log.reader().unwrap();
    let mut got = Vec::new();
    while let Some(r) = reader.next().unwrap() {
        got.push((r.lsn.get(), r.kind.get(), r.payload.to_vec()));
    }
    assert_eq!(
        got,
        [
            (1, 7, b"hello".to_vec()),
            (2, 7, b"batch-a".to_vec()),
            (3, 7, b"batch-b".to_vec()),
            (4, 7, Vec::new())
        ]
    );
}

#[test]
fn saved_ops_vs_model_inputs_agree_with_the_model() {
    let inputs = inputs("ops_vs_model");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        let dir = tempfile::tempdir().unwrap();
        maos_coord::coordinator::fuzzing::ops_vs_model(dir.path(), &data);
    }
}

/// Replays the saved inputs of `target` through `body`, each in a new temporary directory.
fn replay(target: &str, body: impl Fn(&Path, &[u8])) {
    let inputs = inputs(target);
    assert!(inputs.len() >= 3, "seeds of {target}");
    for (name, data) in inputs {
        eprintln!("{name}");
        let dir = tempfile::tempdir().unwrap();
        body(dir.path(), &data);
    }
}

#[test]
fn saved_snapshot_file_inputs_keep_the_contract() {
    replay("snapshot_file", maos_coord::snapshot::fuzzing::snapshot_file);
}

#[test]
fn saved_cursor_file_inputs_keep_the_contract() {
    replay("cursor_file", maos_coord::subscription::fuzzing::cursor_file);
}

#[test]
fn saved_index_file_inputs_keep_the_contract() {
    replay("index_file", maos_coord::log::fuzzing::index_file);
}

#[test]
fn saved_compacted_file_inputs_keep_the_contract() {
    replay("compacted_file", maos_coord::log::fuzzing::compacted_file);
}

#[test]
fn saved_lock_file_inputs_keep_the_contract() {
    replay("lock_file", maos_coord::log::fuzzing::lock_file);
}

#[test]
fn saved_json_values_inputs_keep_the_contract() {
    replay("json_values", maos_coord::coordinator::fuzzing::json_values);
}
