//! Whether a store is healthy (`maos-coord health`): named checks, each with what it found.
//! The filesystem is local, writable and has room for a new segment; the snapshots load; the
//! projections equal a replay; durable cursors keep up; no claim or lock is held past the end of
//! its lease; no gone agent holds tasks or locks.

use super::{catch_up, Coordinator};
use crate::error::Result;
use crate::projection::State;
use crate::types::{Lsn, Timestamp};

/// What [`Coordinator::health`] judges by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthOptions {
    /// A durable cursor this many records or more behind the tail fails the `subscriptions`
    /// check (default [`DEFAULT_MAX_CURSOR_LAG`]).
    pub max_cursor_lag: u64,
}

/// The default of [`HealthOptions::max_cursor_lag`]: the default interval between snapshots
/// (a cursor further behind holds compaction back past one snapshot interval).
pub const DEFAULT_MAX_CURSOR_LAG: u64 = 100_000;

impl Default for HealthOptions {
    fn default() -> HealthOptions {
        HealthOptions { max_cursor_lag: DEFAULT_MAX_CURSOR_LAG }
    }
}

/// One named check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Its name: `filesystem`, `snapshots`, `projections`, `subscriptions`, `leases`,
    /// `gone_agents`.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What it found, in one sentence.
    pub finding: String,
    /// One line per thing that failed it (a cursor, a task, an agent), or that it looked at.
    pub details: Vec<String>,
}

impl HealthCheck {
    fn new(
        name: &'static str,
        details: Vec<String>,
        ok: &str,
        failed: impl FnOnce(usize) -> String,
    ) -> HealthCheck {
        let finding = if details.is_empty() { ok.to_owned() } else { failed(details.len()) };
        HealthCheck { name, ok: details.is_empty(), finding, details }
    }
}

/// What [`Coordinator::health`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The time the store was judged at (the coordinator's clock, never before the last record).
    pub now: Timestamp,
    /// Every check, in the order they ran.
    pub checks: Vec<HealthCheck>,
}

impl HealthReport {
    /// Whether every check passed (`maos-coord health` exits with 0, else 1).
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

impl Coordinator {
    /// Runs every check of a store's health (see [`HealthCheck::name`]):
    /// - `filesystem`: the log directory is on a local filesystem, a file can be written and
    ///   synced there (an unnamed temporary file, gone when it is closed), and it has room for a
    ///   new segment (a store on another backend passes: it has no directory);
    /// - `snapshots`: every snapshot opening looked at loaded (none was skipped as invalid);
    /// - `projections`: the state loaded from the newest snapshot and replayed to the tail
    ///   equals a full replay of the log, or, when compaction removed its start, a replay from
    ///   the oldest usable snapshot; and the live projections equal both;
    /// - `subscriptions`: every durable cursor checks out, lies within the log, and is less than
    ///   `max_cursor_lag` records behind the tail;
    /// - `leases`: no claim and no lock is still held past the end of its lease (a lapse no
    ///   command noticed yet);
    /// - `gone_agents`: no agent silent past its heartbeat timeout still holds a task or a lock
    ///   under a live lease.
    ///
    /// # Errors
    /// Those of every [query](Coordinator#errors); replaying the log as they do;
    /// [`Error::Io`](crate::Error::Io) if the snapshot or cursor directory cannot be read. What
    /// a check finds is never an error.
    pub fn health(&self, opts: &HealthOptions) -> Result<HealthReport> {
        // Every block of the snapshot the state stands on is checked first (a damaged one is
        // passed over, and the snapshots check says so).
        let live = self.read(State::clone)?;
        let now = self.clock_now().max(live.last_time);
        let checks = vec![
            self.filesystem_check(),
            self.snapshots_check(),
            self.projections_check(&live)?,
            self.subscriptions_check(live.next_lsn, opts.max_cursor_lag)?,
            leases_check(&live, now),
            self.gone_agents_check()?,
        ];
        Ok(HealthReport { now, checks })
    }

    fn filesystem_check(&self) -> HealthCheck {
        let Some(log) = self.local_log() else {
            return HealthCheck::new(
                "filesystem",
                Vec::new(),
                "not a local store: no directory to check",
                |_| String::new(),
            );
        };
        let dir = log.dir();
        let mut failed = Vec::new();
        let mut facts = Vec::new();
        match rustix::fs::statfs(dir) {
            Ok(stat) => {
                #[allow(clippy::cast_sign_loss)] // a magic number: its bits matter, not its sign
                let magic = stat.f_type as u64;
                match crate::log::network_filesystem_name(magic) {
                    Some(fs) => failed.push(format!("{} is on a network filesystem ({fs})", dir.display())),
                    None => facts.push(format!("local ({})", filesystem_name(magic))),
                }
            }
            Err(e) => failed.push(format!("statfs {}: {e}", dir.display())),
        }
        match write_probe(dir) {
            Ok(()) => facts.push("writable".to_owned()),
            Err(e) => failed.push(format!("cannot write and sync a file in {}: {e}", dir.display())),
        }
        let needed = log.opts().segment_size;
        match rustix::fs::statvfs(dir) {
            Ok(v) => {
                let free = v.f_bavail.saturating_mul(v.f_frsize);
                if free < needed {
                    failed.push(format!(
                        "{free} bytes free in {}; a new segment needs {needed}",
                        dir.display()
                    ));
                } else {
                    facts.push(format!("{free} bytes free"));
                }
            }
            Err(e) => failed.push(format!("statvfs {}: {e}", dir.display())),
        }
        let ok = format!("{}: {}", dir.display(), facts.join(", "));
        HealthCheck::new("filesystem", failed, &ok, |n| format!("{n} problem(s) with {}", dir.display()))
    }

    fn snapshots_check(&self) -> HealthCheck {
        let passed_over = self.damaged_snapshots();
        let details: Vec<String> = self
            .skipped_snapshots()
            .iter()
            .chain(&passed_over)
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect();
        let ok = match self.opened_from_snapshot() {
            Some(lsn) => format!("opened from the snapshot of LSN {lsn}; none skipped"),
            None => "no snapshot: opened by a full replay of the log".to_owned(),
        };
        HealthCheck::new("snapshots", details, &ok, |n| {
            let from = self
                .opened_from_snapshot()
                .map_or("a full replay".to_owned(), |l| format!("the snapshot of LSN {l}"));
            format!(
                "{n} snapshot(s) skipped as invalid when the store was opened or passed over when a block of one failed its checksum; the state came from {from}"
            )
        })
    }

    fn projections_check(&self, live: &State) -> Result<HealthCheck> {
        let tail = live.next_lsn;
        let snapshots = &self.snapshots.store;
        let (newest, _) = snapshots.load_checked(tail)?;
        let newest_lsn = newest.as_ref().map(|s| s.next_lsn);
        let mut from_newest = newest.unwrap_or_else(State::new);
        catch_up(&*self.log, &self.skips, &mut from_newest, tail)?;
        let first = self.log.first_lsn()?;
        let (base, base_lsn) = if first <= Lsn::FIRST {
            (State::new(), None)
        } else {
            let oldest = self.oldest_usable_snapshot(first, tail)?;
            let lsn = oldest.as_ref().map(|s| s.next_lsn);
            (oldest.unwrap_or_else(State::new), lsn)
        };
        // The same start replays to the same state: once is enough.
        let replayed = if base_lsn == newest_lsn {
            None
        } else {
            let mut replayed = base;
            catch_up(&*self.log, &self.skips, &mut replayed, tail)?;
            Some(replayed)
        };
        let replayed = replayed.as_ref().unwrap_or(&from_newest);
        let newest_name = newest_lsn.map_or_else(
            || format!("a full replay to LSN {tail}"),
            |l| format!("the snapshot of LSN {l} replayed to LSN {tail}"),
        );
        let base_name = base_lsn.map_or_else(
            || format!("a full replay to LSN {tail}"),
            |l| format!("the oldest usable snapshot (LSN {l}) replayed to LSN {tail}"),
        );
        let mut details = Vec::new();
        for part in differences(&from_newest, replayed) {
            details.push(format!("{part}: {newest_name} differs from {base_name}"));
        }
        for part in differences(live, replayed) {
            details.push(format!("{part}: the live projections differ from {base_name}"));
        }
        let ok = if newest_lsn == base_lsn {
            format!("{newest_name} equals the live projections (no other starting point to compare with)")
        } else {
            format!("{newest_name} equals {base_name} and the live projections")
        };
        Ok(HealthCheck::new("projections", details, &ok, |n| format!("{n} difference(s) from a replay")))
    }

    /// The oldest snapshot that loads, lies at or past the log's first record and not past `tail`.
    fn oldest_usable_snapshot(&self, first: Lsn, tail: Lsn) -> Result<Option<State>> {
        let store = &self.snapshots.store;
        for (lsn, name) in store.list()?.into_iter().rev() {
            if lsn < first || lsn > tail {
                continue;
            }
            if let Some(Ok(image)) = store.read(&name) {
                if image.next_lsn == lsn {
                    return Ok(Some(State::from_image(image)));
                }
            }
        }
        Ok(None)
    }

    fn subscriptions_check(&self, tail: Lsn, max_lag: u64) -> Result<HealthCheck> {
        let cursors = crate::subscription::cursors(&*self.blobs)?;
        let first = self.log.first_lsn()?;
        let mut details = Vec::new();
        let mut furthest = 0;
        for c in &cursors {
            let who = format!("cursor {} of agent {}", c.name, c.agent);
            match (c.position, &c.damage) {
                (_, Some(damage)) => details.push(format!("{who} ({}): invalid: {damage}", c.location.display())),
                (Some(p), None) if p < first => details.push(format!(
                    "{who} is at LSN {p}, which compaction removed (the log starts at LSN {first}): its subscription fails until reset"
                )),
                (Some(p), None) => {
                    let lag = tail.get().saturating_sub(p.get());
                    furthest = furthest.max(lag);
                    if lag >= max_lag {
                        details.push(format!("{who} is {lag} records behind the tail (at LSN {p}; fewer than {max_lag} allowed)"));
                    }
                }
                (None, None) => {}
            }
        }
        let ok = match cursors.len() {
            0 => "no durable subscription".to_owned(),
            n => format!("{n} durable cursor(s), the furthest {furthest} records behind the tail"),
        };
        Ok(HealthCheck::new("subscriptions", details, &ok, |n| {
            format!("{n} of {} durable cursor(s) fail", cursors.len())
        }))
    }

    fn gone_agents_check(&self) -> Result<HealthCheck> {
        let details = self
            .list_agents()?
            .into_iter()
            .filter(|a| a.gone && (!a.holds.is_empty() || !a.locks.is_empty()))
            .map(|a| {
                let tasks: Vec<&str> = a.holds.iter().map(crate::TaskId::as_str).collect();
                let locks: Vec<&str> = a.locks.iter().map(crate::LockName::as_str).collect();
                format!(
                    "agent {} is gone (last heartbeat {}) and holds tasks [{}], locks [{}]",
                    a.agent.id,
                    a.agent.last_heartbeat,
                    tasks.join(", "),
                    locks.join(", ")
                )
            })
            .collect();
        Ok(HealthCheck::new("gone_agents", details, "no gone agent holds a task or a lock", |n| {
            format!("{n} gone agent(s) still hold tasks or locks")
        }))
    }
}

fn leases_check(s: &State, now: Timestamp) -> HealthCheck {
    let mut details: Vec<String> = s
        .tasks
        .lapsed(now)
        .map(|t| {
            let holder = t.assigned_to.as_ref().map_or("nobody", crate::AgentId::as_str);
            let until = t.lease_until.map_or_else(String::new, |u| u.to_string());
            format!("task {} held by {holder}: its lease ended at {until}", t.id)
        })
        .collect();
    details.extend(
        s.locks.iter().filter(|(_, l)| l.lease_until < now).map(|(name, l)| {
            format!("lock {name} held by {}: its lease ended at {}", l.holder, l.lease_until)
        }),
    );
    HealthCheck::new("leases", details, "no claim or lock is held past the end of its lease", |n| {
        format!("{n} claim(s) or lock(s) held past the end of their lease (no command noticed yet)")
    })
}

/// The projections in which `a` and `b` differ, by name.
fn differences(a: &State, b: &State) -> Vec<&'static str> {
    let parts = [
        ("position", a.next_lsn == b.next_lsn && a.last_time == b.last_time),
        ("agents", a.agents == b.agents),
        ("tasks", a.tasks == b.tasks),
        ("context", a.context == b.context),
        ("dependencies", a.deps == b.deps),
        ("barriers", a.barriers == b.barriers),
        ("locks", a.locks == b.locks),
        ("claim policy", a.claim_policy == b.claim_policy),
    ];
    parts.iter().filter(|(_, same)| !same).map(|(name, _)| *name).collect()
}

/// Writes and syncs a page to an unnamed temporary file in `dir` (`O_TMPFILE`: no name, gone
/// when closed).
fn write_probe(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = tempfile::tempfile_in(dir)?;
    file.write_all(&[0u8; 4096])?;
    file.sync_data()
}

/// The name of a local filesystem by its `statfs` magic number, or the number in hex.
fn filesystem_name(magic: u64) -> String {
    let name = match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0xF2F5_2010 => "f2fs",
        _ => return format!("filesystem {magic:#x}"),
    };
    name.to_owned()
}
