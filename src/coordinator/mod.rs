//! The coordinator (the original design's `CoordinationService`): the async API agents use.
//!
//! Every command runs as a compare-and-append on the log ([`Log::append_with`]): under the append
//! lock it catches the projections up to the tail, validates the command against that state,
//! and turns it into events, which are appended as one atomic batch. An invalid command returns
//! its error and appends nothing. Every query catches up with the log first and is answered from
//! the projections in memory. So decisions such as "this task is still free" are linearizable
//! across processes (ARCHITECTURE.md, "The path of a command").
//!
//! Subscriptions and compaction are layers of their own below it ([`crate::subscription`],
//! [`crate::compaction`]). The coordinator's methods for them (`subscribe*`, `reset_cursor`,
//! `compact`) are entry points: they check what only the coordinator knows (that the agent is
//! registered and active), then pass those layers the log, the store's snapshot files and
//! cursor directory, and, to subscriptions, the coordinator itself as their source of decoded
//! records and of the time its commands decide with.

mod agents;
mod audit;
mod barriers_locks;
mod claims;
mod compaction;
mod context;
mod define;
mod deps;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod history;
mod overview;
mod pipeline;
mod plan;
mod repair;
mod replay;
mod snapshotting;
mod stats;
mod store;
mod tasks;
mod time_travel;
mod timeline;
mod transition;
mod verify;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// The compaction and subscription layers' types, public here as they were before they had
// layers of their own.
pub use crate::compaction::{CompactOptions, CompactionReport, HeldBack, KeyedCounts};
pub use crate::subscription::{
    Delivery, DurableOptions, DurableSubscription, Subscription, MAX_CURSOR_NAMES, SCAN_PERSIST_RECORDS,
};
pub use agents::{AgentSummary, HeartbeatReport, Registered, Registration};
pub use audit::HistoryEntry;
pub use barriers_locks::LockGrant;
pub use context::SetOptions;
pub use deps::{GraphNode, TaskGraph};
pub use health::{HealthCheck, HealthOptions, HealthReport, DEFAULT_MAX_CURSOR_LAG};
pub use history::{IndexUpdate, StoreHistory};
pub use overview::{Overview, OverviewLimits, TaskCounts};
pub use pipeline::{PipelineStage, PipelineStatus};
pub use plan::PlannedTask;
pub use repair::{find_unreadable, open_store_log, skip_unreadable, Unreadable};
pub use stats::{
    ContextStats, CursorLag, DependencyStats, Durations, LeaseStats, RecordStats, SnapshotStats, StoreStats,
    TaskStats, LARGEST_KEYS,
};
pub use store::{checked_access, ensure_store, init, StoreInit};
pub use tasks::TaskQuery;
pub use time_travel::AsOf;
pub use timeline::{between, timeline, Step, StepKind};
pub use transition::ATTEMPTS_EXHAUSTED;
pub use verify::{verify_store, CursorFile, SnapshotFile, StoreReport, VerifyProgress};
pub use watch::ContextWatcher;

use crate::backend::{Backend, BlobStore, DirBlobs, LogBackend, RecordRead};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fs::{names, StoreAccess};
use crate::log::{Appended, Durability, Log};
use crate::model::{encode_checked, AgentId, Event, Recorded, EVENT_RECORD_KIND};
use crate::projection::{AgentStatus, State};
use crate::snapshot::{SkippedSnapshot, Snapshots};
use crate::types::{Lsn, RecordKind, Timestamp};
use replay::{catch_up, catch_up_at, catch_up_kept};
use snapshotting::SnapshotState;

/// The coordination service. Cheap to clone; clones share projections.
///
/// # Errors
///
/// Every query catches up with the log first, and fails as reading it does: [`Error::Io`];
/// [`Error::Corruption`], [`Error::CorruptHeader`] or [`Error::SegmentGap`] for damaged or
/// missing log data; [`Error::Compacted`] if another process compacted the log past this
/// handle's state; [`Error::UndecodableRecord`] for a coordination record that does not decode
/// and that no tombstone skips.
///
/// Every command fails as a query does (it catches up under the append lock), and besides:
/// [`Error::StaleIncarnation`] if the acting agent is an incarnation this handle registered that
/// a later registration superseded; [`Error::ValueTooLarge`] for an event record over the maximum
/// record size, [`Error::Unreadable`] for one that would not read back as written, and
/// [`Error::BatchTooLarge`] for a command whose records together do not fit one segment
/// (nothing of the command is appended); [`Error::Io`] or [`Error::CorruptHeader`] from writing
/// the newest segment; [`Error::Internal`] for a bug. Each command's own section names the
/// errors of its checks.
#[derive(Clone)]
pub struct Coordinator {
    /// The log, able to append coordination records: only the coordinator holds it.
    log: Arc<dyn LogBackend>,
    /// The same log, refusing coordination records: what [`Coordinator::log`] hands out.
    public_log: Arc<dyn LogBackend>,
    /// Where snapshots and cursors live.
    blobs: Arc<dyn BlobStore>,
    state: Arc<Mutex<State>>,
    /// The reader catching `state` up, kept between commands; locked after `state`.
    reader: Arc<Mutex<Option<Box<dyn RecordRead>>>>,
    opts: Arc<CoordinatorOptions>,
    snapshots: Arc<SnapshotState>,
    /// The incarnation of each agent this handle (and its clones) registered.
    incarnations: Arc<Mutex<HashMap<AgentId, u64>>>,
    /// Undecodable records known to be skipped by a tombstone.
    skips: Arc<repair::Skips>,
}

/// The original design's name for the coordinator.
pub type CoordinationService = Coordinator;

/// Options of a coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    root: PathBuf,
    durability: Durability,
    /// How long a claim holds a task without a heartbeat.
    pub lease: Duration,
    /// How long an agent may stay silent before it is reported gone.
    pub heartbeat_timeout: Duration,
    /// Largest encoded context value or event data.
    pub max_value_size: usize,
    /// A snapshot is written in the background every this many records (0: never).
    pub snapshot_every: u64,
    /// ... or once this process appended or read this many bytes of log since its last one
    /// (0: never).
    pub snapshot_every_bytes: u64,
    /// How many snapshots to keep.
    pub keep_snapshots: usize,
    /// Whether opening checks every block of the snapshot it loads (see
    /// [`CoordinatorOptions::check_whole_snapshot`]).
    pub check_whole_snapshot: bool,
    segment_size: Option<u64>,
    clock: Arc<dyn Clock>,
    access: StoreAccess,
    allow_insecure_permissions: bool,
    create: bool,
}

impl CoordinatorOptions {
    /// Durability of every command (default [`Durability::Sync`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> CoordinatorOptions {
        self.durability = durability;
        self
    }

    /// Lease of a claim (default 5 minutes).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> CoordinatorOptions {
        self.lease = lease;
        self
    }

    /// Heartbeat timeout of agents (default 60 seconds).
    #[must_use]
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> CoordinatorOptions {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Largest encoded context value or event data (default 256 KiB).
    #[must_use]
    pub fn max_value_size(mut self, bytes: usize) -> CoordinatorOptions {
        self.max_value_size = bytes;
        self
    }

    /// Snapshot every `records` records (default 100,000; 0 turns automatic snapshots off).
    #[must_use]
    pub fn snapshot_every(mut self, records: u64) -> CoordinatorOptions {
        self.snapshot_every = records;
        self
    }

    /// Snapshot also once this process appended or read `bytes` bytes of log (frames, headers
    /// included) since its last snapshot (default 256 MiB; 0 turns the byte trigger off). Bounds
    /// replay time when records are large.
    #[must_use]
    pub fn snapshot_every_bytes(mut self, bytes: u64) -> CoordinatorOptions {
        self.snapshot_every_bytes = bytes;
        self
    }

    /// Size of the log's segment files (default 64 MiB); records may then be at most half of it
    /// (and at most 1 MiB).
    #[must_use]
    pub fn segment_size(mut self, bytes: u64) -> CoordinatorOptions {
        self.segment_size = Some(bytes);
        self
    }

    /// Who may use the files of a store this open creates besides their owner (default
    /// [`StoreAccess::Private`]: directories `0700`, files `0600`, whatever the umask). Recorded in
    /// the store; an existing store keeps its recorded access ([`init`] changes it).
    #[must_use]
    pub fn access(mut self, access: StoreAccess) -> CoordinatorOptions {
        self.access = access;
        self
    }

    /// Open even if someone the store's access does not allow may write to its files (default
    /// false: such a store is refused with [`Error::InsecurePermissions`] naming the file and its
    /// mode). Such a store may hold records none of its agents wrote.
    #[must_use]
    pub fn allow_insecure_permissions(mut self, allow: bool) -> CoordinatorOptions {
        self.allow_insecure_permissions = allow;
        self
    }

    /// Whether opening creates the store when there is none (default true). With `false`, opening
    /// a project without a store is [`Error::NoStore`] naming the store directory
    /// (`<root>/.maos/coordination`), and nothing is created: for tools that must act on an
    /// existing store only, such as the command line's commands other than `init`.
    #[must_use]
    pub fn create(mut self, create: bool) -> CoordinatorOptions {
        self.create = create;
        self
    }

    /// Number of snapshots kept (default 2).
    #[must_use]
    pub fn keep_snapshots(mut self, keep: usize) -> CoordinatorOptions {
        self.keep_snapshots = keep;
        self
    }

    /// Whether opening checks every block of the snapshot it loads (default true). Either way
    /// the state is read from the snapshot on demand: a task, a context key, the claim order are
    /// decoded when a command first asks for them (log-format.md, "Snapshots").
    ///
    /// - `true`: opening reads the whole snapshot file once to check its block checksums, and
    ///   passes over a damaged snapshot at once ([`Coordinator::skipped_snapshots`]). What a
    ///   long-lived process wants.
    /// - `false`: opening checks the header and the directory of blocks only, and each block
    ///   when a command first reads from it, so a command reads about as much of the snapshot as
    ///   it touches. A block that fails its checksum then makes the coordinator rebuild the state
    ///   without that snapshot (from an older one, or the log) and decide the command again: no
    ///   answer and no record rests on a damaged read. What a process that runs one command
    ///   wants; the `maos-coord` command sets it.
    #[must_use]
    pub fn check_whole_snapshot(mut self, whole: bool) -> CoordinatorOptions {
        self.check_whole_snapshot = whole;
        self
    }

    /// The clock leases, expiry, heartbeat timeouts and record times are read from (default
    /// the system clock; tests inject a [`crate::ManualClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> CoordinatorOptions {
        self.clock = clock;
        self
    }

    /// Opens (creating if needed, unless [`CoordinatorOptions::create`] says not to) the store in
    /// `<root>/.maos/coordination/`: loads the newest valid snapshot and replays the log after it.
    ///
    /// # Errors
    /// [`Error::NoStore`] if there is no store and the options do not create one;
    /// [`Error::Io`] naming the store directory if it cannot be looked at (a `root` that is a
    /// file); [`Error::InsecurePermissions`] for a store others may write to (unless allowed);
    /// [`Error::InvalidArgument`] for an access file that does not parse, or a segment size out of range;
    /// opening the log fails as [`LogOptions::open`](crate::LogOptions::open) does, and the snapshot
    /// directory with [`Error::Io`]; [`Error::NoUsableSnapshot`] if compaction removed records that no usable
    /// snapshot covers; catching up with the log as every [query](Coordinator#errors) does.
    pub fn open(self) -> Result<Coordinator> {
        let store = store_dir(&self.root);
        if !self.create && !store::exists(&store)? {
            return Err(Error::NoStore { dir: store });
        }
        let access = store::prepare(&store, self.access, self.allow_insecure_permissions)?;
        let mut log_options = Log::options(store.join(names::LOG_DIR))
            .access(access)
            .allow_insecure_permissions(self.allow_insecure_permissions)
            .permissions_checked()
            .name_dirs({
                // The store may have been put in place by an open that then failed (or died)
                // before it synced the directories holding it.
                let maos = store::parent_or_cwd(&store);
                vec![maos.to_owned(), store::parent_or_cwd(maos).to_owned()]
            })
            .durability(self.durability)
            .clock(self.clock.clone());
        if let Some(bytes) = self.segment_size {
            // A record must fit a segment: small segments get a smaller record limit.
            let max_record = u32::try_from(bytes / 2).unwrap_or(u32::MAX).min(1 << 20);
            log_options = log_options.segment_size(bytes).max_record_size(max_record);
        }
        let log = log_options.open()?;
        let blobs = DirBlobs::new(&store);
        blobs.sweep_dead_writers(crate::backend::BlobSpace::Snapshots)?;
        self.open_on(Backend { log: Arc::new(log), blobs: Arc::new(blobs) })
    }

    /// Opens a coordinator on `backend` (the root, access and segment size of these options
    /// are not used: they are the local directory's): loads the newest valid snapshot of its
    /// blobs and replays its log after it. Commands decide with these options'
    /// [clock](CoordinatorOptions::clock), never before the time of the last record; the
    /// backend times records with its own, so give both the same clock
    /// ([`Backend::memory_with_clock`]) when a test moves time.
    ///
    /// # Errors
    /// [`Error::NoUsableSnapshot`] if compaction removed records that no usable snapshot covers;
    /// reading the blobs and catching up with the log fail as every [query](Coordinator#errors) does.
    pub fn open_on(self, backend: Backend) -> Result<Coordinator> {
        let Backend { log, blobs } = backend;
        let snapshots =
            Snapshots::new(blobs.clone(), self.keep_snapshots).checking_whole(self.check_whole_snapshot);
        let (state, skipped, opened_from) = load_state(&snapshots, &*log)?;
        let snapshots = SnapshotState::new(snapshots, state.next_lsn, skipped, opened_from);
        let coordinator = Coordinator {
            public_log: log.reserving(crate::model::COORDINATION_KINDS),
            log,
            blobs,
            state: Arc::new(Mutex::new(state)),
            reader: Arc::default(),
            opts: Arc::new(self),
            snapshots: Arc::new(snapshots),
            incarnations: Arc::default(),
            skips: Arc::default(),
        };
        drop(coordinator.refresh()?);
        Ok(coordinator)
    }
}

/// `<root>/.maos/coordination`.
#[must_use]
pub fn store_dir(root: &Path) -> PathBuf {
    root.join(names::MAOS_DIR).join(names::STORE_DIR)
}

impl Coordinator {
    /// Options for the store of the project at `root`.
    pub fn options(root: impl AsRef<Path>) -> CoordinatorOptions {
        CoordinatorOptions {
            root: root.as_ref().to_owned(),
            durability: Durability::Sync,
            lease: Duration::from_secs(300),
            heartbeat_timeout: Duration::from_secs(60),
            max_value_size: 256 * 1024,
            snapshot_every: 100_000,
            snapshot_every_bytes: 256 << 20,
            keep_snapshots: 2,
            check_whole_snapshot: true,
            segment_size: None,
            clock: crate::clock::system(),
            access: StoreAccess::Private,
            allow_insecure_permissions: false,
            create: true,
        }
    }

    /// Opens the store of the project at `root` with default options.
    ///
    /// # Errors
    /// As [`CoordinatorOptions::open`].
    pub fn open(root: impl AsRef<Path>) -> Result<Coordinator> {
        Coordinator::options(root).open()
    }

    /// The store directory, `<root>/.maos/coordination`.
    #[must_use]
    pub fn store_dir(&self) -> PathBuf {
        store_dir(&self.opts.root)
    }

    /// The log underneath, through the backend trait; it refuses to append coordination
    /// records ([`Error::ReservedKind`]): those are the coordinator's.
    #[must_use]
    pub fn log(&self) -> &dyn LogBackend {
        &*self.public_log
    }

    /// The file log underneath, when the store is a local directory (as [`Coordinator::open`]
    /// opens it): for tools that verify segment files or read the recovery report. It refuses
    /// coordination records as [`Coordinator::log`] does.
    #[must_use]
    pub fn local_log(&self) -> Option<&Log> {
        self.public_log.as_local()
    }

    /// Closes this handle: waits for the background snapshot this coordinator or a clone
    /// started, if any ([`Coordinator::wait_for_snapshots`]; the snapshot thread holds a clone),
    /// then closes this handle's log with [`Log::close`]. Blocks the calling thread meanwhile
    /// (from async code, call it through `spawn_blocking`).
    ///
    /// The log closes, its background threads stopped and joined and its durable mark written,
    /// only if this was its last handle: other clones of this coordinator, [`Subscription`]s,
    /// [`ContextWatcher`]s and [`DurableSubscription`]s made from it, and clones of
    /// [`Coordinator::log`] each hold one, and keep working. Otherwise only this handle goes.
    ///
    /// # Errors
    /// As [`Log::close`]: only when this was the last handle, from writing the durable mark. A
    /// background snapshot that failed was logged and is not returned.
    pub fn close(self) -> Result<()> {
        self.wait_for_snapshots();
        let Coordinator { log, public_log, .. } = self;
        // The public handle first: the log closes when its last handle does.
        public_log.close()?;
        log.close()
    }

    /// Runs a command: under the append lock, catch up, check that `actor` is not an
    /// incarnation this handle registered that a later registration superseded, let `decide`
    /// validate the command against the state at time `now` and return its events, append them.
    /// Returns the LSN of the first event appended (the next LSN when none was).
    async fn execute<T, F>(&self, actor: &AgentId, mut decide: F) -> Result<(Lsn, T)>
    where
        F: FnMut(&State, Timestamp) -> Result<(Vec<Event>, T)> + Send + 'static,
        T: Send + 'static,
    {
        let known = crate::log::lock(&self.incarnations).get(actor).copied();
        let id = actor.clone();
        self.execute_as_new(actor, move |state, now| {
            if let (Some(yours), Some(agent)) = (known, state.agents.get(id.as_str())) {
                if agent.incarnation != yours {
                    return Err(Error::StaleIncarnation {
                        agent: id.clone(),
                        yours,
                        current: agent.incarnation,
                    });
                }
            }
            decide(state, now)
        })
        .await
    }

    /// [`Coordinator::execute`] without the incarnation check (a registration starts a new one).
    ///
    /// `decide` may run more than once: a backend retries a compare-and-append that another
    /// writer beat with the newer tail ([`LogBackend::compare_and_append`]); the value of its last
    /// run is returned.
    async fn execute_as_new<T, F>(&self, actor: &AgentId, mut decide: F) -> Result<(Lsn, T)>
    where
        F: FnMut(&State, Timestamp) -> Result<(Vec<Event>, T)> + Send + 'static,
        T: Send + 'static,
    {
        let log = self.log.clone();
        let state = self.state.clone();
        let reader = self.reader.clone();
        let snapshots = self.snapshots.clone();
        let skips = self.skips.clone();
        let actor = actor.clone();
        let clock = self.opts.clock.clone();
        let max = self.log.max_record_size();
        let value = Arc::new(Mutex::new(None));
        let slot = value.clone();
        let built = Arc::new(Mutex::new((Vec::new(), 0u64)));
        let kept = built.clone();
        let appended = self
            .log
            .compare_and_append(Box::new(move |tail| {
                let mut state = crate::log::lock(&state);
                let mut reader = crate::log::lock(&reader);
                snapshots.count_bytes(catch_up_kept(&*log, &skips, &mut state, &mut reader, tail)?);
                drop(reader);
                let now = clock.now().max(state.last_time);
                let mut decided = decide(&state, now);
                while rebuild_if_damaged(&mut state, &snapshots.store, &*log, &skips, tail)? {
                    decided = decide(&state, now);
                }
                let (events, value) = decided?;
                let kind = RecordKind::new(EVENT_RECORD_KIND)?;
                let recorded: Vec<Recorded> =
                    events.into_iter().map(|event| Recorded { actor: actor.clone(), event }).collect();
                let records = recorded
                    .iter()
                    .map(|recorded| Ok((kind, encode_checked(recorded, max)?)))
                    .collect::<Result<Vec<_>>>()?;
                *crate::log::lock(&slot) = Some(value);
                let bytes =
                    records.iter().map(|(_, payload)| crate::format::frame_len(payload.len()) as u64).sum();
                *crate::log::lock(&kept) = (recorded, bytes);
                Ok(records)
            }))
            .await?;
        let (recorded, bytes) = std::mem::take(&mut *crate::log::lock(&built));
        self.apply_own(&appended, recorded, bytes);
        self.maybe_snapshot(appended.next());
        let value = crate::log::lock(&value).take();
        let value = value.ok_or_else(|| Error::internal("the builder of a compare-and-append never ran"))?;
        Ok((appended.first, value))
    }

    /// Applies the records a command just appended from the events it built, instead of
    /// reading them back from the log and decoding them: only if the state stands right before
    /// them (no other thread of this process caught up past them meanwhile) and the log said
    /// when they were recorded. The outcome is the one catching up gives ([`catch_up`] applies
    /// the same `State::apply` to the decoded records, and decoding gives back what was
    /// encoded; `live_state_equals_a_fresh_replay` in `tests/coordinator_replay.rs` compares both); anything else is left to catching up.
    /// `bytes` is what the records take in the log (frames), counted towards the snapshot
    /// trigger as catching up counts what it reads.
    fn apply_own(&self, appended: &Appended, recorded: Vec<Recorded>, bytes: u64) {
        let Some(time) = appended.time else { return };
        if recorded.len() as u64 != appended.count {
            return;
        }
        let mut state = crate::log::lock(&self.state);
        if state.next_lsn != appended.first || state.damage().is_some() {
            return;
        }
        for (lsn, recorded) in (appended.first.get()..).map(Lsn).zip(recorded) {
            // Application events pass, as in catching up.
            if matches!(recorded.event, Event::Custom { .. }) {
                state.pass(lsn, time);
            } else {
                state.apply(recorded, lsn, time);
            }
        }
        self.snapshots.count_bytes(bytes);
    }

    fn remember_incarnation(&self, agent: &AgentId, incarnation: u64) {
        crate::log::lock(&self.incarnations).insert(agent.clone(), incarnation);
    }

    /// Reads the state through `read` after catching up, with the time a command run now would
    /// decide with (the clock, never before the last record's time): queries that depend on time
    /// (expiry, leases, liveness) answer as a command would.
    pub(crate) fn read_at<T>(&self, mut read: impl FnMut(&State, Timestamp) -> T) -> Result<T> {
        let mut state = self.refresh()?;
        let now = self.opts.clock.now().max(state.last_time);
        let mut answer = read(&state, now);
        while rebuild_if_damaged(&mut state, &self.snapshots.store, &*self.log, &self.skips, Lsn::FIRST)? {
            answer = read(&state, now);
        }
        Ok(answer)
    }

    /// Reads the state through `read` after catching up, as [`Coordinator::read`] does but
    /// without checking the whole snapshot first: `read` may run again, on a state rebuilt
    /// without the snapshot, if a block it read failed its checksum.
    pub(crate) fn fresh<T>(&self, mut read: impl FnMut(&State) -> T) -> Result<T> {
        let mut state = self.refresh()?;
        let mut answer = read(&state);
        while rebuild_if_damaged(&mut state, &self.snapshots.store, &*self.log, &self.skips, Lsn::FIRST)? {
            answer = read(&state);
        }
        Ok(answer)
    }

    /// The current time by the coordinator's clock.
    pub(crate) fn clock_now(&self) -> Timestamp {
        self.opts.clock.now()
    }

    /// The projections, caught up with everything appended so far (by any process).
    fn refresh(&self) -> Result<MutexGuard<'_, State>> {
        let mut state = crate::log::lock(&self.state);
        let tail = self.log.next_lsn();
        let mut reader = crate::log::lock(&self.reader);
        self.snapshots.count_bytes(catch_up_kept(&*self.log, &self.skips, &mut state, &mut reader, tail)?);
        drop(reader);
        Ok(state)
    }

    /// Reads the state through `read`, after catching up. This is the raw state, as tools and
    /// tests inspect it: no reader and no access rule, so context entries of every visibility,
    /// expired ones included. Agents read context through [`Coordinator::get_context`] and the
    /// other reads that apply [`model::access`](crate::model::access).
    ///
    /// # Errors
    /// Those of every [query](Coordinator#errors); [`Error::DamagedSnapshot`] if a block of the
    /// snapshot the state stood on failed its checksum while `read` ran (the state is rebuilt
    /// without it: read again).
    pub fn read<T>(&self, read: impl FnOnce(&State) -> T) -> Result<T> {
        let mut state = self.refresh()?;
        // `read` runs once: check the whole snapshot first, so that it reads no damaged block.
        state.check_base();
        while rebuild_if_damaged(&mut state, &self.snapshots.store, &*self.log, &self.skips, Lsn::FIRST)? {
            state.check_base();
        }
        let answer = read(&state);
        if let (Some(reason), Some(lsn)) = (state.damage(), state.base_lsn()) {
            rebuild_if_damaged(&mut state, &self.snapshots.store, &*self.log, &self.skips, Lsn::FIRST)?;
            return Err(Error::DamagedSnapshot { lsn, reason });
        }
        Ok(answer)
    }

    /// Appends a custom event; returns its LSN.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an invalid event type, or one of the store's own
    /// ([`model::COORDINATION_TYPES`](crate::model::COORDINATION_TYPES)); [`Error::ValueTooDeep`] or [`Error::ValueTooLarge`]
    /// for data past the limits; [`Error::UnknownAgent`] unless `actor` is a registered, active agent; and
    /// those of every [command](Coordinator#errors).
    pub async fn emit_event(
        &self,
        actor: &AgentId,
        event_type: impl Into<String>,
        data: serde_json::Value,
        metadata: std::collections::BTreeMap<String, String>,
    ) -> Result<Lsn> {
        let event_type = event_type.into();
        crate::model::validate_name("event type", &event_type)?;
        if crate::model::COORDINATION_TYPES.contains(&event_type.as_str()) {
            return Err(Error::InvalidName {
                what: "event type",
                name: event_type,
                reason: "is the type of the store's own records; filters by type would mix the two".into(),
            });
        }
        self.check_value("event data", &data)?;
        let actor_id = actor.clone();
        let (lsn, ()) = self
            .execute(actor, move |state, _| {
                require_agent(state, &actor_id)?;
                Ok((
                    vec![Event::Custom {
                        event_type: event_type.clone(),
                        data: data.clone(),
                        metadata: metadata.clone(),
                    }],
                    (),
                ))
            })
            .await?;
        Ok(lsn)
    }

    /// Checks a JSON value that goes into a record: depth and size limits, naming `what`.
    fn check_value(&self, what: &str, value: &serde_json::Value) -> Result<()> {
        crate::model::limits::check_value(what, value, self.opts.max_value_size)
    }
}

/// The agent must be registered and active.
/// Loads the newest usable snapshot and checks that the log goes on from it: the state, the
/// snapshots passed over, and the LSN of the one loaded (`None`: none, a full replay).
fn load_state(
    snapshots: &Snapshots,
    log: &dyn LogBackend,
) -> Result<(State, Vec<SkippedSnapshot>, Option<Lsn>)> {
    let (state, skipped) = snapshots.load(log.next_lsn())?;
    if let Some(state) = &state {
        if let Some(position) = state.log_position() {
            // Only a hint: the log checks it, and without it a reader scans from its index.
            if let Err(e) = log.note_position(state.next_lsn, position) {
                tracing::debug!(error = %e, "the log position a snapshot kept was not taken");
            }
        }
    }
    let opened_from = state.as_ref().map(|s| s.next_lsn);
    let state = state.unwrap_or_else(State::new);
    let first = log.first_lsn()?;
    if state.next_lsn < first {
        // The records between the state and the log's start were compacted away: only a
        // snapshot at or past the log's start can rebuild the store.
        let mut rejected: Vec<String> =
            skipped.iter().map(|s| format!("{}: {}", s.path.display(), s.reason)).collect();
        if state.next_lsn > Lsn::FIRST {
            rejected.push(format!("the newest usable snapshot ends at LSN {}", state.next_lsn));
        }
        return Err(Error::NoUsableSnapshot {
            dir: snapshots.blobs().space_location(crate::backend::BlobSpace::Snapshots),
            first,
            rejected,
        });
    }
    Ok((state, skipped, opened_from))
}

/// If a read of the snapshot `state` stands on failed (a block that fails its checksum, found
/// only when a command first read it), rebuilds the state without that snapshot (from an older
/// one, or the log), caught up to `tail`, and returns true: whatever was decided or answered
/// from the damaged state must be decided again. The snapshot is passed over from then on.
fn rebuild_if_damaged(
    state: &mut State,
    snapshots: &Snapshots,
    log: &dyn LogBackend,
    skips: &repair::Skips,
    tail: Lsn,
) -> Result<bool> {
    let Some(reason) = state.damage() else { return Ok(false) };
    if let Some(lsn) = state.base_lsn() {
        snapshots.mark_damaged(lsn, reason);
    }
    let (mut rebuilt, _, _) = load_state(snapshots, log)?;
    catch_up(log, skips, &mut rebuilt, tail.max(state.next_lsn))?;
    *state = rebuilt;
    Ok(true)
}

fn require_agent(state: &State, agent: &AgentId) -> Result<()> {
    match state.agents.get(agent.as_str()) {
        Some(a) if a.status == AgentStatus::Active => Ok(()),
        Some(a) => Err(Error::UnknownAgent {
            agent: agent.clone(),
            detail: match &a.status {
                AgentStatus::Stopped(reason) => format!(": it stopped ({reason})"),
                AgentStatus::Active => String::new(),
            },
        }),
        None => Err(Error::UnknownAgent { agent: agent.clone(), detail: String::new() }),
    }
}
