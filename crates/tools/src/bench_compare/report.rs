//! What steps report, what one round of one system measured, and the markdown table of the
//! medians over rounds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::store::System;

/// The phases, in order: their ids (in the raw results) and labels (in the table).
pub const PHASES: [(&str, &str); 10] = [
    ("register", "register agents"),
    ("create", "create tasks"),
    ("claim_complete", "claim + complete (8 processes; pairs/s)"),
    (
        crate::in_process::PHASE,
        "claim + complete in one process (maos: 8 tokio tasks, one handle; others: 8 threads; pairs/s)",
    ),
    ("context_set", "context set (1 KiB)"),
    ("context_get", "context get"),
    ("dep_add", "add dependencies"),
    ("dep_ready", "mark dependencies ready"),
    ("event_emit", "emit events"),
    ("event_read", "read events back (4 processes)"),
];

/// One timed phase: `ops` operations in `seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Its id in [`PHASES`].
    pub name: String,
    /// Operations done.
    pub ops: u64,
    /// Time they took.
    pub seconds: f64,
}

impl Phase {
    /// Operations per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-9)
    }
}

/// A correctness check of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked (`exactly_once`, `context_values`, `dependencies_ready`, `events_in_order`).
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// What a step process prints as its last line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutput {
    /// Phases it timed itself.
    pub phases: Vec<Phase>,
    /// Checks it made.
    pub checks: Vec<Check>,
    /// Operations of a process of a group (worker, reader).
    pub ops: u64,
    /// When a process of a group started and ended its operations (`CLOCK_MONOTONIC`, ns).
    pub span_ns: Option<(u64, u64)>,
}

/// Bytes of a directory tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Blocks allocated (what `du` counts).
    pub allocated: u64,
    /// File lengths.
    pub apparent: u64,
}

/// What one round of one system measured (one line of the raw results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    /// The round, from 1.
    pub round: usize,
    /// The system's name.
    pub system: String,
    /// The scale it ran at.
    pub scale: f64,
    /// Every phase.
    pub phases: Vec<Phase>,
    /// Peak RSS (KiB) of each process, by step (`setup`, `worker-0`, ...).
    pub rss_kib: BTreeMap<String, i64>,
    /// The largest sum of peak RSS over the processes that ran together (KiB): the setup, the
    /// workers together, the driver, the readers together, the compaction (the verifying
    /// process is the benchmark's, not the system's).
    pub peak_rss_kib: i64,
    /// The peak RSS of the process that started the steps (KiB), as of the end of this round:
    /// each step's figure includes up to this much (see `procs`).
    pub spawner_max_rss_kib: i64,
    /// The store after the run.
    pub disk: Disk,
    /// The store after compaction, for systems that have it.
    pub disk_compacted: Option<Disk>,
    /// Every check.
    pub checks: Vec<Check>,
}

/// The single-thread `fdatasync` rate on a preallocated file, 4 KiB per write.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyncProbe {
    /// The round.
    pub round: usize,
    /// Writes (each followed by `fdatasync`) per pass.
    pub ops: u64,
    /// Per second, appending into fallocated, never written blocks.
    pub fresh_per_s: f64,
    /// Per second, overwriting written blocks.
    pub overwrite_per_s: f64,
}

/// The machine and the command, for the table's heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs available.
    pub nproc: usize,
    /// Kernel release.
    pub kernel: String,
    /// CPU model.
    pub cpu: String,
    /// Filesystem type of the work directory and where it is mounted.
    pub filesystem: String,
    /// The command line.
    pub command: String,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// Medians over the rounds of one system.
struct Medians {
    rates: BTreeMap<String, f64>,
    ops: BTreeMap<String, u64>,
    rss: Option<f64>,
    disk: Option<f64>,
    compacted: Option<f64>,
    failed: Vec<String>,
}

fn medians(rounds: &[&RoundResult]) -> Medians {
    let mut rates = BTreeMap::new();
    let mut ops = BTreeMap::new();
    for (id, _) in PHASES {
        let of: Vec<&Phase> = rounds.iter().flat_map(|r| r.phases.iter().filter(|p| p.name == id)).collect();
        if let Some(m) = median(of.iter().map(|p| p.rate()).collect()) {
            rates.insert(id.to_owned(), m);
        }
        if let Some(p) = of.first() {
            ops.insert(id.to_owned(), p.ops);
        }
    }
    let mut failed: Vec<String> =
        rounds.iter().flat_map(|r| r.checks.iter().filter(|c| !c.passed).map(|c| c.name.clone())).collect();
    failed.dedup();
    Medians {
        rates,
        ops,
        rss: median(rounds.iter().map(|r| r.peak_rss_kib as f64 * 1024.0).collect()),
        disk: median(rounds.iter().map(|r| r.disk.allocated as f64).collect()),
        compacted: median(
            rounds.iter().filter_map(|r| r.disk_compacted).map(|d| d.allocated as f64).collect(),
        ),
        failed,
    }
}

/// How a row of the table is read from a system's medians.
type Cell<T> = fn(&Medians) -> T;

fn count(n: f64) -> String {
    let whole = format!("{:.0}", n.round());
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: Option<f64>) -> String {
    bytes.map_or_else(|| "—".to_owned(), |b| format!("{:.1} MiB", b / (1024.0 * 1024.0)))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".to_owned(),
    }
}

/// The markdown report: the machine and command, operations per second per phase and system,
/// memory, disk and checks, the ratios, and the `fdatasync` rates. Medians over the rounds.
#[must_use]
pub fn table(machine: &Machine, systems: &[System], results: &[RoundResult], probes: &[SyncProbe]) -> String {
    let by: BTreeMap<System, Medians> = systems
        .iter()
        .map(|s| (*s, medians(&results.iter().filter(|r| r.system == s.name()).collect::<Vec<_>>())))
        .collect();
    let rounds = results.iter().map(|r| r.round).max().unwrap_or(0);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "machine: {} CPUs ({}), Linux {}, {}",
        machine.nproc, machine.cpu, machine.kernel, machine.filesystem
    );
    let _ = writeln!(t, "command: `{}`", machine.command);
    let what = if rounds == 1 { "one round".to_owned() } else { format!("medians of {rounds} rounds") };
    let _ = writeln!(t, "{what}, systems taking turns");
    let _ = writeln!(
        t,
        "claim + complete: one operation per unit of work on every system (a first claim, then each \
         completion claims the next: maos-coord `complete_and_claim_next`, SQLite one transaction, JSON \
         files one hold of the lock)\n"
    );
    let _ = write!(t, "| phase (operations/s) | operations |");
    for s in systems {
        let _ = write!(t, " {} |", s.name());
    }
    let _ = write!(t, "\n| --- | --- |{}\n", " --- |".repeat(systems.len()));
    for (id, label) in PHASES {
        let ops_of = |json: bool| {
            by.iter()
                .filter(|(s, _)| s.is_json() == json)
                .find_map(|(_, m)| m.ops.get(id))
                .map(|n| count(*n as f64))
        };
        let ops = match (ops_of(false), ops_of(true)) {
            (Some(full), Some(json)) => format!("{full} (JSON files: {json})"),
            (one, other) => one.or(other).unwrap_or_default(),
        };
        let _ = write!(t, "| {label} | {ops} |");
        for s in systems {
            let rate = by.get(s).and_then(|m| m.rates.get(id)).map_or_else(|| "—".to_owned(), |r| count(*r));
            let _ = write!(t, " {rate} |");
        }
        t.push('\n');
    }
    let rows: [(&str, Cell<String>); 4] = [
        ("peak RSS, summed over the processes running together", |m| mib(m.rss)),
        ("bytes on disk after the run", |m| mib(m.disk)),
        ("bytes on disk after compaction (maos: keyed; SQLite: VACUUM)", |m| mib(m.compacted)),
        ("checks (exactly once, values, dependencies, event order)", |m| {
            if m.failed.is_empty() {
                "passed".to_owned()
            } else {
                format!("FAILED: {}", m.failed.join(", "))
            }
        }),
    ];
    for (label, cell) in rows {
        let _ = write!(t, "| {label} | |");
        for s in systems {
            let _ = write!(t, " {} |", by.get(s).map_or_else(|| "—".to_owned(), cell));
        }
        t.push('\n');
    }
    ratios(&mut t, &by);
    if let (Some(fresh), Some(overwrite)) = (
        median(probes.iter().map(|p| p.fresh_per_s).collect()),
        median(probes.iter().map(|p| p.overwrite_per_s).collect()),
    ) {
        let _ = writeln!(
            t,
            "\nsingle-thread 4 KiB write + `fdatasync` on a preallocated file, same run: {}/s appending into \
             fresh (fallocated, unwritten) blocks, {}/s overwriting written blocks",
            count(fresh),
            count(overwrite)
        );
    }
    t
}

/// The ratios table: maos-coord's figure over the other system's, mode for mode.
fn ratios(t: &mut String, by: &BTreeMap<System, Medians>) {
    let pairs = [
        ("Buffered / SQLite NORMAL", System::MaosBuffered, System::SqliteNormal),
        ("Sync / SQLite FULL", System::MaosSync, System::SqliteFull),
        ("Buffered / JSON buffered", System::MaosBuffered, System::JsonBuffered),
        ("Sync / JSON durable", System::MaosSync, System::JsonDurable),
    ];
    let pairs: Vec<_> =
        pairs.into_iter().filter(|(_, a, b)| by.contains_key(a) && by.contains_key(b)).collect();
    if pairs.is_empty() {
        return;
    }
    let _ = write!(
        t,
        "\nmaos-coord / other (operations/s: above 1 is faster; memory and disk: above 1 is larger)\n\n| |"
    );
    for (label, _, _) in &pairs {
        let _ = write!(t, " {label} |");
    }
    let _ = write!(t, "\n| --- |{}\n", " --- |".repeat(pairs.len()));
    let get = |s: System, f: &dyn Fn(&Medians) -> Option<f64>| by.get(&s).and_then(f);
    for (id, label) in PHASES {
        let _ = write!(t, "| {label} |");
        for (_, a, b) in &pairs {
            let rate = |m: &Medians| m.rates.get(id).copied();
            let _ = write!(t, " {} |", ratio(get(*a, &rate), get(*b, &rate)));
        }
        t.push('\n');
    }
    let rows: [(&str, Cell<Option<f64>>); 3] = [
        ("peak RSS", |m| m.rss),
        ("bytes on disk after the run", |m| m.disk),
        ("bytes on disk after compaction", |m| m.compacted),
    ];
    for (label, value) in rows {
        let _ = write!(t, "| {label} |");
        for (_, a, b) in &pairs {
            let _ = write!(t, " {} |", ratio(get(*a, &value), get(*b, &value)));
        }
        t.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1000.0), "1,000");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
