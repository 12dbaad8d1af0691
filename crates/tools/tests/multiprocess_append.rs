//! Several processes append to one store at once: nothing lost, duplicated, reordered or
//! interleaved; LSNs dense.

use std::collections::BTreeMap;
use std::process::Command;

use maos_coord::{Log, Lsn};

const HARNESS: &str = env!("CARGO_BIN_EXE_maos-log-harness");

/// Runs the harness in several processes at once and waits for all of them to succeed.
fn run_processes(n: u32, args: impl Fn(u32) -> Vec<String>) {
    let children: Vec<_> = (0..n)
        .map(|w| Command::new(HARNESS).args(args(w)).stdout(std::process::Stdio::null()).spawn().unwrap())
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
}

fn records_by_writer(dir: &std::path::Path) -> (u64, BTreeMap<u32, Vec<u64>>) {
    let log = Log::open(dir).unwrap();
    let mut reader = log.reader().unwrap();
    let mut by_writer: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut expected = Lsn::new(1);
    while let Some(r) = reader.next().unwrap() {
        assert_eq!(r.lsn, expected, "LSNs are dense");
        expected = expected.next();
        let (writer, seq): (u32, u64) = rmp_serde::from_slice(r.payload).unwrap();
        by_writer.entry(writer).or_default().push(seq);
    }
    (expected.get() - 1, by_writer)
}

#[test]
fn four_processes_append_ten_thousand_records_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    run_processes(4, |w| {
        let w = w.to_string();
        ["append", "--dir", &d, "--writer", &w, "--count", "10000", "--durability", "buffered"]
            .map(String::from)
            .to_vec()
    });
    let (total, by_writer) = records_by_writer(dir.path());
    assert_eq!(total, 40_000);
    assert_eq!(by_writer.len(), 4);
    for (writer, seqs) in by_writer {
        assert_eq!(seqs, (0..10_000).collect::<Vec<_>>(), "writer {writer}: all present, in its own order");
    }
}

#[test]
fn batches_from_several_processes_are_never_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    run_processes(3, |w| {
        let w = w.to_string();
        ["append", "--dir", &d, "--writer", &w, "--count", "3000", "--batch", "30", "--durability", "sync"]
            .map(String::from)
            .to_vec()
    });
    let log = Log::open(dir.path()).unwrap();
    let mut reader = log.reader().unwrap();
    let mut run: Vec<(u32, u64)> = Vec::new();
    while let Some(r) = reader.next().unwrap() {
        run.push(rmp_serde::from_slice(r.payload).unwrap());
    }
    assert_eq!(run.len(), 9000);
    for chunk in run.chunks(30) {
        let writer = chunk[0].0;
        assert!(chunk.iter().all(|&(w, _)| w == writer), "a batch of 30 is contiguous: {chunk:?}");
        assert_eq!(chunk[0].1 % 30, 0);
    }
}

#[test]
fn compare_and_append_is_linearizable_across_processes() {
    // Each process reads the counter in the last record and appends it plus one, under the
    // append lock: no increment may be lost or duplicated.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    run_processes(4, |_| ["count", "--dir", &d, "--times", "500"].map(String::from).to_vec());
    let log = Log::open(dir.path()).unwrap();
    let mut reader = log.reader().unwrap();
    let mut expected = 1u64;
    while let Some(r) = reader.next().unwrap() {
        assert_eq!(u64::from_le_bytes(r.payload.try_into().unwrap()), expected, "record {}", r.lsn);
        expected += 1;
    }
    assert_eq!(expected - 1, 2000);
}
