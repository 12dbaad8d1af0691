//! The crate's one error type. Every variant names what it is about: the file, the byte offset,
//! the LSN, the option.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::model::{AgentId, BarrierName, ContextKey, DependencyId, LockName, TaskId};
use crate::types::Lsn;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in maos-coord.
///
/// `Error` is `Clone` so that one failed group commit can answer every caller that shared it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "fallocate", "fdatasync", ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },

    /// A record that should be valid is not: the log is corrupt at this place.
    #[error("corrupt log: segment {segment}, byte offset {offset}, LSN {lsn}: {reason}")]
    Corruption {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the invalid frame (or bytes) inside the segment file.
        offset: u64,
        /// The LSN the record at that place was expected to have.
        lsn: Lsn,
        /// What is wrong with it.
        reason: FrameError,
    },

    /// A segment header does not check out.
    #[error("corrupt segment header in {segment}: {reason}")]
    CorruptHeader {
        /// The segment file.
        segment: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The lock and control file is unreadable or of another format.
    #[error("invalid lock file {path}: {reason}")]
    CorruptLockFile {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The segments do not form one unbroken sequence of LSNs.
    #[error("missing log data: expected a segment starting at LSN {expected} in {dir}, found {found}")]
    SegmentGap {
        /// The log directory.
        dir: PathBuf,
        /// The LSN the next segment should start with.
        expected: Lsn,
        /// What was found instead.
        found: String,
    },

    /// [`RecoveryMode::Strict`](crate::RecoveryMode::Strict) found a torn tail and refused to cut it.
    #[error("torn tail in {segment}: {bytes} bytes at byte offset {offset} (LSN {lsn} onwards) are not a complete record; strict recovery refuses to truncate")]
    TornTail {
        /// The newest segment file.
        segment: PathBuf,
        /// Offset of the first invalid byte.
        offset: u64,
        /// Number of invalid bytes.
        bytes: u64,
        /// The LSN the first invalid record would have had.
        lsn: Lsn,
    },

    /// A record payload is larger than the configured maximum.
    #[error("record of {size} bytes exceeds the maximum record size of {max} bytes")]
    RecordTooLarge {
        /// Payload size in bytes.
        size: usize,
        /// The configured maximum.
        max: u32,
    },

    /// A batch cannot fit into one segment (batches are never split across segments).
    #[error("batch of {size} bytes does not fit into one segment ({max} bytes available per segment)")]
    BatchTooLarge {
        /// Encoded batch size in bytes.
        size: u64,
        /// Usable bytes in one segment.
        max: u64,
    },

    /// The store lies on a network filesystem, where memory maps and locks are unreliable.
    #[error("{path} is on a network filesystem ({fs}); memory maps and file locks are unreliable there, so maos-coord refuses to open a store on it")]
    NetworkFilesystem {
        /// The store directory.
        path: PathBuf,
        /// The filesystem type.
        fs: &'static str,
    },

    /// A file was written by an incompatible format version.
    #[error("{path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },

    /// A read asked for an LSN the log does not hold.
    #[error("LSN {requested} is not in the log (it holds LSNs {first} to {last})")]
    LsnOutOfRange {
        /// The LSN asked for.
        requested: Lsn,
        /// First LSN held.
        first: Lsn,
        /// Last LSN held (first - 1 when empty).
        last: Lsn,
    },

    /// The records asked for were removed by compaction.
    #[error("LSN {requested} was compacted away (the log now starts at LSN {first}); resume from the state and a later position")]
    Compacted {
        /// The LSN asked for.
        requested: Lsn,
        /// The first LSN the log still holds.
        first: Lsn,
    },

    /// An option or argument is out of range.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The option or argument.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// A name or key does not meet the rules (1 to 256 bytes, no control characters).
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// What kind of name.
        what: &'static str,
        /// The name (first 64 characters).
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No agent with this id is registered (or it has stopped).
    #[error("unknown agent {agent}{detail}")]
    UnknownAgent {
        /// The agent.
        agent: AgentId,
        /// ": it stopped" when it stopped.
        detail: String,
    },

    /// No task with this id exists.
    #[error("unknown task {task}")]
    UnknownTask {
        /// The task.
        task: TaskId,
    },

    /// A task with this id exists already (a new pipeline's task was given the id of another
    /// task).
    #[error("task {task} exists already")]
    TaskExists {
        /// The task.
        task: TaskId,
    },

    /// The task state machine does not allow this change.
    #[error("task {task} is {}: it cannot become {}", status_words(from), status_words(to))]
    IllegalTransition {
        /// The task.
        task: TaskId,
        /// Its status.
        from: &'static str,
        /// The status asked for.
        to: &'static str,
    },

    /// An agent acted on a task it does not hold.
    #[error("agent {agent} does not hold task {task} (held by {holder})")]
    NotHolder {
        /// The task.
        task: TaskId,
        /// The acting agent.
        agent: AgentId,
        /// Who holds it ("nobody" if no one).
        holder: String,
    },

    /// A task's dependencies are not all ready.
    #[error("dependencies of task {task} are not ready: {unmet:?}")]
    DependenciesNotReady {
        /// The task.
        task: TaskId,
        /// The dependencies (or provider tasks) not ready.
        unmet: Vec<String>,
    },

    /// A dependency would close a cycle.
    #[error("a dependency of task {consumer} on task {provider} would close a cycle{}", cycle_words(cycle))]
    Cycle {
        /// Provider task.
        provider: TaskId,
        /// Consumer task.
        consumer: TaskId,
        /// The tasks of the cycle, each waiting on the next and the last on the first: `consumer`,
        /// `provider`, then the tasks through which `provider` waits on `consumer`.
        cycle: Vec<TaskId>,
    },

    /// No dependency with this id exists.
    #[error("unknown dependency {dependency}")]
    UnknownDependency {
        /// The dependency.
        dependency: DependencyId,
    },

    /// A compare-and-set found another version.
    #[error("context key {key}: expected {expected}, found version {found}")]
    VersionMismatch {
        /// The key.
        key: ContextKey,
        /// What the condition wanted ("version N" or "absent").
        expected: String,
        /// The key's version (0: never set).
        found: u64,
    },

    /// No durable subscription of this agent has this name (no cursor).
    #[error("agent {agent} has no durable subscription {name}")]
    UnknownCursor {
        /// The agent.
        agent: AgentId,
        /// The subscription's name.
        name: String,
    },

    /// A context key with no live value (never set, deleted or expired) where a command needs
    /// one (deleting it).
    #[error("context key {key} is absent (never set, deleted or expired)")]
    ContextAbsent {
        /// The key.
        key: ContextKey,
    },

    /// A past version of a context key whose record compaction removed.
    #[error("version {version} of context key {key} (LSN {lsn}) was compacted away (the log now starts at LSN {first}); only the current version is kept")]
    VersionCompacted {
        /// The key.
        key: ContextKey,
        /// The version asked for.
        version: u64,
        /// The record that made it.
        lsn: Lsn,
        /// The first LSN the log still holds.
        first: Lsn,
    },

    /// A value is larger than allowed.
    #[error("value for {what} is {size} bytes; at most {max} are allowed")]
    ValueTooLarge {
        /// What the value is for.
        what: String,
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// The reader may not see this context entry.
    #[error("agent {reader} may not read context key {key} (visibility {visibility})")]
    NotVisible {
        /// The key.
        key: ContextKey,
        /// The reader.
        reader: AgentId,
        /// The entry's visibility.
        visibility: String,
    },

    /// No barrier with this name exists.
    #[error("unknown barrier {barrier}")]
    UnknownBarrier {
        /// The barrier.
        barrier: BarrierName,
    },

    /// No pipeline with this name exists.
    #[error("unknown pipeline {pipeline}")]
    UnknownPipeline {
        /// The pipeline.
        pipeline: String,
    },

    /// The participant is not one of the barrier's.
    #[error("{participant} is not a participant of barrier {barrier}")]
    NotParticipant {
        /// The barrier.
        barrier: BarrierName,
        /// The participant.
        participant: String,
    },

    /// The lock is held by another agent.
    #[error("lock {lock} is held by {holder}")]
    LockHeld {
        /// The lock.
        lock: LockName,
        /// The holder.
        holder: AgentId,
    },

    /// A subscription cursor file does not check out.
    #[error("invalid cursor file {path}: {reason}")]
    CorruptCursor {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Waiting ran out of time. A wait for a lock that another agent still holds at the end
    /// is a conflict ([`ErrorKind::Conflict`]); any other wait that ran out,
    /// [`ErrorKind::Timeout`].
    #[error("timed out waiting for {what}{}", held_by(holder.as_ref()))]
    Timeout {
        /// What was awaited.
        what: String,
        /// For a wait on a lock: the agent that held it when the wait ended.
        holder: Option<AgentId>,
    },

    /// A record payload could not be encoded.
    #[error("cannot encode a record: {reason}")]
    Encode {
        /// What the encoder said.
        reason: String,
    },

    /// A record payload could not be decoded.
    #[error("cannot decode record {lsn}: {reason}")]
    Decode {
        /// The record.
        lsn: Lsn,
        /// What the decoder said.
        reason: String,
    },

    /// The lease of a claim ran out (at `ended`): the claim is over whether or not anyone
    /// noticed or claimed the task since, and the holder may no longer act on the task.
    #[error("the lease of agent {agent} on task {} ended at {ended}: the claim is lost", join(tasks))]
    LeaseLost {
        /// The agent that held the claims.
        agent: AgentId,
        /// The tasks whose leases ended.
        tasks: Vec<TaskId>,
        /// When the (earliest) lease ended.
        ended: crate::types::Timestamp,
    },

    /// A raw append named a record kind that the layer above owns (the coordination layer's,
    /// on a store's log): such records are written only through that layer, which can read
    /// them back.
    #[error("record kind {kind} belongs to the coordination layer: write coordination records through the Coordinator API, or use a kind from 16 up")]
    ReservedKind {
        /// The kind refused.
        kind: u16,
    },

    /// A JSON value nests arrays and objects deeper than a record may carry.
    #[error("value for {what} nests {depth} levels deep; at most {max} are allowed")]
    ValueTooDeep {
        /// What the value is for (`context key K`, `event data`, `task metadata`).
        what: String,
        /// How deeply it nests.
        depth: usize,
        /// The limit ([`MAX_VALUE_DEPTH`](crate::model::limits::MAX_VALUE_DEPTH)).
        max: usize,
    },

    /// A record would not read back as written: it is refused, and nothing of its command is
    /// appended.
    #[error("a {event} record would not read back ({reason}); nothing was appended")]
    Unreadable {
        /// The event type of the record.
        event: String,
        /// What reading it back said.
        reason: String,
    },

    /// A coordination record in the log cannot be decoded (written by an older version, by
    /// hand, or by a bug) and no tombstone skips it. The store is not changed; `maos-coord
    /// repair` shows and (with `--apply`) records the tombstones that get past it.
    #[error("cannot decode coordination record LSN {lsn} (segment {}, byte offset {offset}): {reason}; `maos-coord repair` can skip it, keeping its bytes for audit", segment.display())]
    UndecodableRecord {
        /// Its LSN.
        lsn: Lsn,
        /// The segment file that holds it.
        segment: PathBuf,
        /// Byte offset of its frame in the segment file.
        offset: u64,
        /// What the decoder said.
        reason: String,
    },

    /// The log starts after its first record (compaction removed a prefix), so the store can
    /// only be rebuilt from a snapshot that covers that prefix, and none does.
    #[error("the log starts at LSN {first} (compaction removed the records before it), so the store can only be rebuilt from a snapshot in {}, and none is usable: {}", dir.display(), if rejected.is_empty() { "there is none".to_owned() } else { rejected.join("; ") })]
    NoUsableSnapshot {
        /// The snapshot directory.
        dir: PathBuf,
        /// The log's first LSN.
        first: Lsn,
        /// Each snapshot file and why it was rejected.
        rejected: Vec<String>,
    },

    /// A read of the snapshot the state stood on failed while a caller's closure read the state
    /// ([`Coordinator::read`](crate::Coordinator::read)): a block that fails its checksum, found
    /// only when first read. The state was rebuilt without that snapshot; reading again answers
    /// from the rebuilt state. (Commands and the other queries run again by themselves.)
    #[error("snapshot of LSN {lsn} is damaged ({reason}); the state was rebuilt without it: read again")]
    DamagedSnapshot {
        /// The snapshot's LSN.
        lsn: Lsn,
        /// What failed: the file, the byte offset, what is wrong.
        reason: String,
    },

    /// The agent registered again since this handle registered it: the handle speaks for an
    /// earlier incarnation, whose claims and locks were released or taken over.
    #[error("agent {agent}: incarnation {yours} was superseded by incarnation {current} (the agent registered again)")]
    StaleIncarnation {
        /// The agent.
        agent: AgentId,
        /// The incarnation this handle registered.
        yours: u64,
        /// The agent's current incarnation.
        current: u64,
    },

    /// A conflict: a create named something that exists already with another definition. (A
    /// create with the same definition is not an error: it changes nothing and appends nothing.)
    #[error("{what} {name} exists already with another definition: {difference}")]
    AlreadyExists {
        /// What kind of thing: "barrier", "task", "pipeline", "dependency".
        what: &'static str,
        /// Its name or id.
        name: String,
        /// The first difference between the existing definition and the one asked for, as
        /// `<field>: <existing> exists, <asked> asked`.
        difference: String,
    },

    /// A file or directory of the store may be written by someone its access does not allow
    /// (log-format.md, "Access"); nothing was opened. Fix the mode (or run `maos-coord init` to
    /// give the store its recorded access again), or open with
    /// [`CoordinatorOptions::allow_insecure_permissions`](crate::CoordinatorOptions::allow_insecure_permissions).
    #[error(
        "refusing to open the store: {path} {reason} (mode {mode:04o}; the store's access is {access}); \
         `maos-coord init` run by the store's owner gives the store's own files their mode and group \
         again; a directory that holds the store is fixed with chmod (`chmod o-w DIR`); or allow \
         insecure permissions (--allow-insecure-permissions)"
    )]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its mode (permission bits, set-user-ID, set-group-ID, sticky).
        mode: u32,
        /// The store's recorded access.
        access: crate::fs::StoreAccess,
        /// What is wrong: who else may write to it, or whose it is.
        reason: String,
    },

    /// No store where one was looked for, by an open that never creates one: a read-only open
    /// of a log ([`LogOptions::read_only`](crate::LogOptions::read_only)), or a coordinator
    /// told not to create its store
    /// ([`CoordinatorOptions::create`](crate::CoordinatorOptions::create)).
    #[error("no store at {dir}")]
    NoStore {
        /// The directory looked for: the log directory of a read-only open, the store directory
        /// (`<root>/.maos/coordination`) of a coordinator's.
        dir: PathBuf,
    },

    /// The log was opened read-only ([`LogOptions::read_only`](crate::LogOptions::read_only)),
    /// and this call would write.
    #[error("{what}: the log in {dir} was opened read-only")]
    ReadOnly {
        /// What was refused ("append", "sync", "compaction").
        what: &'static str,
        /// The log directory.
        dir: PathBuf,
    },

    /// A bug in maos-coord: something its own code guarantees did not hold (a group-commit
    /// leader panicked while writing the batches of other callers, a batch was never placed).
    /// Nothing a caller did or can fix; please report it.
    #[error("internal error (a bug in maos-coord): {what}")]
    Internal {
        /// What went wrong.
        what: String,
    },
}

impl Error {
    /// Wraps an I/O error with the operation and path it came from.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source: Arc::new(source) }
    }

    /// A bug in maos-coord ([`Error::Internal`]).
    pub(crate) fn internal(what: impl Into<String>) -> Error {
        Error::Internal { what: what.into() }
    }

    /// What kind of failure this is: what a caller can do about it, and the exit code of the
    /// command line. Every variant has one kind:
    ///
    /// | kind | variants |
    /// | --- | --- |
    /// | [`Io`](ErrorKind::Io) | `Io` |
    /// | [`Invalid`](ErrorKind::Invalid) | `InvalidArgument`, `InvalidName`, `RecordTooLarge`, `BatchTooLarge`, `ValueTooLarge`, `ValueTooDeep`, `ReservedKind`, `Unreadable`, `Cycle`, `NotParticipant`, `ReadOnly`, `NoStore`, `NetworkFilesystem`, `InsecurePermissions` |
    /// | [`Corruption`](ErrorKind::Corruption) | `Corruption`, `CorruptHeader`, `CorruptLockFile`, `CorruptCursor`, `SegmentGap`, `TornTail`, `UnsupportedVersion`, `Decode`, `UndecodableRecord`, `NoUsableSnapshot`, `DamagedSnapshot` |
    /// | [`Conflict`](ErrorKind::Conflict) | `VersionMismatch`, `LockHeld`, `NotHolder`, `LeaseLost`, `StaleIncarnation`, `AlreadyExists`, `TaskExists`, `IllegalTransition`, `DependenciesNotReady`; `Timeout` of a wait on a lock another agent holds |
    /// | [`NotFound`](ErrorKind::NotFound) | `UnknownAgent`, `UnknownTask`, `UnknownDependency`, `UnknownBarrier`, `UnknownPipeline`, `NotVisible`, `LsnOutOfRange`, `Compacted`, `VersionCompacted` |
    /// | [`Timeout`](ErrorKind::Timeout) | `Timeout` of any other wait |
    /// | [`Internal`](ErrorKind::Internal) | `Internal`, `Encode` |
    ///
    /// A store where none is (`NoStore`) is a mistaken `--root` or path, so `Invalid` (the command
    /// line's exit code 1, as for every other open that fails), not `NotFound`. A value the
    /// reader may not see (`NotVisible`) is, to that reader, as good as absent.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::InvalidArgument { .. }
            | Error::InvalidName { .. }
            | Error::RecordTooLarge { .. }
            | Error::BatchTooLarge { .. }
            | Error::ValueTooLarge { .. }
            | Error::ValueTooDeep { .. }
            | Error::ReservedKind { .. }
            | Error::Unreadable { .. }
            | Error::Cycle { .. }
            | Error::NotParticipant { .. }
            | Error::ReadOnly { .. }
            | Error::NoStore { .. }
            | Error::NetworkFilesystem { .. }
            | Error::InsecurePermissions { .. } => ErrorKind::Invalid,
            Error::Corruption { .. }
            | Error::CorruptHeader { .. }
            | Error::CorruptLockFile { .. }
            | Error::CorruptCursor { .. }
            | Error::SegmentGap { .. }
            | Error::TornTail { .. }
            | Error::UnsupportedVersion { .. }
            | Error::Decode { .. }
            | Error::UndecodableRecord { .. }
            | Error::NoUsableSnapshot { .. }
            | Error::DamagedSnapshot { .. } => ErrorKind::Corruption,
            Error::VersionMismatch { .. }
            | Error::LockHeld { .. }
            | Error::NotHolder { .. }
            | Error::LeaseLost { .. }
            | Error::StaleIncarnation { .. }
            | Error::AlreadyExists { .. }
            | Error::TaskExists { .. }
            | Error::IllegalTransition { .. }
            | Error::DependenciesNotReady { .. }
            | Error::Timeout { holder: Some(_), .. } => ErrorKind::Conflict,
            Error::UnknownAgent { .. }
            | Error::UnknownTask { .. }
            | Error::UnknownDependency { .. }
            | Error::UnknownBarrier { .. }
            | Error::UnknownPipeline { .. }
            | Error::NotVisible { .. }
            | Error::LsnOutOfRange { .. }
            | Error::Compacted { .. }
            | Error::VersionCompacted { .. }
            | Error::ContextAbsent { .. }
            | Error::UnknownCursor { .. } => ErrorKind::NotFound,
            Error::Timeout { holder: None, .. } => ErrorKind::Timeout,
            Error::Internal { .. } | Error::Encode { .. } => ErrorKind::Internal,
        }
    }
}

/// A status name as the state machine names it (`InProgress`) in words (`in progress`).
/// `: a waits on b, which waits on a` for the cycle `[a, b]` (nothing for none).
fn cycle_words(cycle: &[TaskId]) -> String {
    let Some(first) = cycle.first() else { return String::new() };
    let mut words: Vec<&str> = cycle.iter().map(TaskId::as_str).collect();
    words.push(first.as_str());
    format!(": {first} waits on {}", words.get(1..).unwrap_or_default().join(", which waits on "))
}

fn status_words(name: &str) -> String {
    let mut words = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            words.push(' ');
        }
        words.extend(c.to_lowercase());
    }
    words
}

/// What kind of failure an [`Error`] is ([`Error::kind`]): what a caller can do about it. The
/// command line turns each kind into its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An operating-system call failed (a full disk, a file the OS refused to open). Retrying
    /// may help once the cause is fixed.
    Io,
    /// The call was wrong: an argument or option out of range, a name or value that breaks the
    /// rules, a write to a log opened read-only, a store that is not where it was looked for or
    /// that may not be opened (a network filesystem, permissions that let others write). Fix
    /// the call; retrying it as it is fails again.
    Invalid,
    /// What the store holds does not check out: a checksum, header, lock, cursor or snapshot
    /// file, a record that does not decode, a format version this build does not read, a torn
    /// tail strict recovery refused to cut. `maos-coord log verify` and `maos-coord repair` say more.
    Corruption,
    /// The state of the store refuses the command now: a compare-and-set found another version,
    /// a lock or task is held by another agent, a lease ended, the agent registered again, a
    /// thing exists with another definition, a task cannot make this change from its status.
    /// Read the state again before deciding what to do.
    Conflict,
    /// What was asked for does not exist, no longer exists (compacted away), or may not be
    /// seen by the reader: an unknown agent, task, dependency, barrier or LSN.
    NotFound,
    /// A wait ran out of time.
    Timeout,
    /// A bug in maos-coord.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of their declaration.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Io,
        ErrorKind::Invalid,
        ErrorKind::Corruption,
        ErrorKind::Conflict,
        ErrorKind::NotFound,
        ErrorKind::Timeout,
        ErrorKind::Internal,
    ];

    /// The kind's name in `snake_case` (`"io"`, `"not_found"`, ...), as machine output shows it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Corruption => "corruption",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Task ids separated by commas, for messages.
fn join(tasks: &[TaskId]) -> String {
    tasks.iter().map(TaskId::as_str).collect::<Vec<_>>().join(", ")
}

/// ", held by AGENT" when a lock's holder is known.
fn held_by(holder: Option<&AgentId>) -> String {
    holder.map_or_else(String::new, |h| format!(", held by {h}"))
}

/// Why a frame (or the bytes where a frame should be) is invalid. See log-format.md, "Reading".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes remain than a frame header needs, and they are not all zero.
    #[error("incomplete frame header ({available} bytes left)")]
    TruncatedHeader {
        /// Bytes left in the segment.
        available: usize,
    },
    /// The frame claims more payload than the maximum record size.
    #[error("length {len} exceeds the maximum record size {max}")]
    LengthTooLarge {
        /// Length field.
        len: u32,
        /// Maximum record size.
        max: u32,
    },
    /// The frame extends past the end of the segment file.
    #[error("frame of {frame_len} bytes extends past the end of the segment ({available} bytes left)")]
    TruncatedFrame {
        /// Whole frame length.
        frame_len: u64,
        /// Bytes left in the segment.
        available: usize,
    },
    /// The checksum does not match.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// CRC in the frame.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The frame marker byte is wrong.
    #[error("bad frame marker {found:#04x}")]
    BadMarker {
        /// Marker found.
        found: u8,
    },
    /// The checksum is right but the LSN is not the next one.
    #[error("LSN {found} where {expected} was expected")]
    LsnMismatch {
        /// LSN expected at this place.
        expected: Lsn,
        /// LSN in the frame.
        found: Lsn,
    },
    /// In the compacted-records file: an LSN not above the one before it.
    #[error("LSN {found} does not follow LSN {after}")]
    LsnNotIncreasing {
        /// LSN of the previous frame.
        after: Lsn,
        /// LSN in the frame.
        found: Lsn,
    },
    /// The compacted-records file ends after another number of records than its header says.
    #[error("{found} records where the header says {header}")]
    CountMismatch {
        /// Records the header announces.
        header: u64,
        /// Records found.
        found: u64,
    },
    /// Reserved bits or fields are not zero, or the kind is 0.
    #[error("reserved field set: {what}")]
    Reserved {
        /// Which field.
        what: &'static str,
    },
    /// Bytes after the last record of a sealed segment are not zero.
    #[error("non-zero byte after the last record of a sealed segment")]
    TrailingGarbage,
    /// The last record of a sealed segment announces that its batch continues.
    #[error("sealed segment ends inside a batch")]
    IncompleteBatch,
    /// Zero bytes where a record below the durable watermark belongs: it was acknowledged as
    /// durable, so it cannot be a torn write.
    #[error("the record is missing (zero bytes), but every record below LSN {durable} was synced")]
    MissingDurable {
        /// The durable watermark.
        durable: Lsn,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_snake_case_names() {
        let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        for name in &names {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{name}");
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(ErrorKind::NotFound.to_string(), "not_found");
    }

    #[test]
    fn a_wait_on_a_held_lock_is_a_conflict_any_other_wait_a_timeout() {
        let lock = Error::Timeout { what: "lock l".into(), holder: Some(AgentId::from_record("a")) };
        assert_eq!(lock.kind(), ErrorKind::Conflict);
        assert_eq!(lock.to_string(), "timed out waiting for lock l, held by a");
        let barrier = Error::Timeout { what: "barrier b".into(), holder: None };
        assert_eq!(barrier.kind(), ErrorKind::Timeout);
        assert_eq!(barrier.to_string(), "timed out waiting for barrier b");
    }

    #[test]
    fn messages_still_name_the_thing_with_typed_ids() {
        let e = Error::LeaseLost {
            agent: AgentId::from_record("w1"),
            tasks: vec![TaskId::from_record("t1"), TaskId::from_record("t2")],
            ended: crate::types::Timestamp::default(),
        };
        assert!(e.to_string().starts_with("the lease of agent w1 on task t1, t2 ended at"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let e = Error::NotVisible {
            key: ContextKey::from_record("k"),
            reader: AgentId::from_record("b"),
            visibility: "Private".into(),
        };
        assert_eq!(e.to_string(), "agent b may not read context key k (visibility Private)");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
