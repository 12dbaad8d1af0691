//! A keyed compaction killed after any step (in a harness process that aborts right after it)
//! leaves a store with the same state and a consistent audit trail, and finishing it gives what an
//! uninterrupted one gives.

use std::path::Path;
use std::process::Command;

use maos_coord::{Event, Lsn};
use maos_coord_test_support::store::{copy_store, keyed, options, state, store, trail};

const HARNESS: &str = env!("CARGO_BIN_EXE_maos-coord-harness");

/// Runs a compaction in another process that aborts right after `step`; true if it aborted.
fn compact_in_process(root: &Path, step: u64) -> bool {
    let status = Command::new(HARNESS)
        .args(["--root", root.to_str().unwrap(), "--agent", "compactor", "compact", "--keyed"])
        .args(["--abort-at-step", &step.to_string()])
        .output()
        .unwrap();
    if status.status.success() {
        return false;
    }
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.status.signal(), Some(6), "{}", String::from_utf8_lossy(&status.stderr));
    true
}

#[tokio::test]
async fn a_keyed_compaction_killed_after_any_step_leaves_the_same_state_and_a_consistent_trail() {
    let pristine = tempfile::tempdir().unwrap();
    let (c, _) = store(pristine.path()).await;
    let state_before = state(&c);
    let before = trail(&c);
    drop(c);
    let mut step = 1;
    loop {
        let dir = tempfile::tempdir().unwrap();
        copy_store(pristine.path(), dir.path());
        let aborted = compact_in_process(dir.path(), step);
        let c = options(dir.path()).open().unwrap_or_else(|e| panic!("after step {step}: {e}"));
        assert_eq!(state(&c), state_before, "after step {step}");
        let start = c.log().first_lsn().unwrap();
        let now = trail(&c);
        let installed = dir.path().join(".maos/coordination/log/compacted.log").exists();
        assert_eq!(installed, step >= 2 || !aborted, "after step {step}");
        if installed {
            // The new file covers the whole range even while segments it replaces linger.
            let finished = trail_after_full_compaction(pristine.path()).await;
            assert_eq!(now, finished, "after step {step} (log starts at {start})");
        } else {
            assert_eq!(now, before, "after step {step}");
        }
        // Finishing the interrupted compaction gives the same result as an uninterrupted one.
        c.compact(&keyed()).unwrap();
        assert_eq!(trail(&c), trail_after_full_compaction(pristine.path()).await, "after step {step}");
        c.local_log().expect("a local store").verify().unwrap();
        if !aborted {
            assert!(step > 3, "the compaction has at least three steps");
            break;
        }
        step += 1;
    }
}

/// The trail of a copy of `pristine` after one uninterrupted keyed compaction.
async fn trail_after_full_compaction(pristine: &Path) -> Vec<(Lsn, Event)> {
    let dir = tempfile::tempdir().unwrap();
    copy_store(pristine, dir.path());
    let c = options(dir.path()).open().unwrap();
    c.compact(&keyed()).unwrap();
    trail(&c)
}
