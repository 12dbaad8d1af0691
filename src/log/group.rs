//! Group commit inside one process (log-format.md, "Appending"): callers queue their batches; one
//! leader writes everything queued under one append lock with one vectored write, hands the
//! leadership to the next waiter, syncs if the log's durability asks for it, and wakes exactly
//! the callers it wrote for. Each caller sleeps once; nobody is woken for someone else's group.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::options::Durability;
use super::writer::{self, Appended, Pending};
use super::{durability, lock, wait, Shared};
use crate::error::{Error, Result};

/// Batches waiting for a leader.
#[derive(Default)]
pub(crate) struct Queue {
    waiting: Vec<(Pending, Waiter)>,
    leader: bool,
    /// The appender thread is to lead the next group (its first waiter is an async task).
    appender_leads: bool,
    /// The appender thread is to end once it has no group to lead ([`Appender::stop`]).
    appender_stops: bool,
}

/// A caller waiting for its batch: a thread (which may be asked to lead) or an async task
/// (whose groups the appender thread leads, so that no task ever blocks a runtime thread).
enum Waiter {
    Thread(Arc<Slot>),
    Task(oneshot::Sender<Result<Appended>>),
}

/// Where a waiting caller learns its fate.
struct Slot {
    state: Mutex<State>,
    wake: Condvar,
}

enum State {
    Waiting,
    /// The previous leader handed over: write the queue.
    Lead,
    Done(Result<Appended>),
}

impl Slot {
    fn set(&self, state: State) {
        *lock(&self.state) = state;
        self.wake.notify_one();
    }

    /// Sleeps until the caller must lead (`None`) or is answered.
    fn wait(&self) -> Option<Result<Appended>> {
        let mut state = lock(&self.state);
        loop {
            match std::mem::replace(&mut *state, State::Waiting) {
                State::Waiting => state = wait(&self.wake, state),
                State::Lead => return None,
                State::Done(result) => return Some(result),
            }
        }
    }
}

/// Appends a batch and returns once it is written (and, under `Durability::Sync`, durable).
pub(crate) fn append(shared: &Shared, pending: Pending) -> Result<Appended> {
    if pending.is_empty() {
        return Ok(Appended { first: shared.control.tail_lsn(), count: 0, time: None });
    }
    let writer = &shared.writer;
    let slot = Arc::new(Slot { state: Mutex::new(State::Waiting), wake: Condvar::new() });
    let lead = {
        let mut queue = lock(&writer.queue);
        queue.waiting.push((pending, Waiter::Thread(slot.clone())));
        writer.in_flight.fetch_add(1, Ordering::AcqRel);
        !std::mem::replace(&mut queue.leader, true)
    };
    if !lead {
        if let Some(result) = slot.wait() {
            return result;
        }
    }
    lead_group(shared, Some(&slot)).unwrap_or_else(|| Err(lost()))
}

/// As [`append`], for async callers. Under `Durability::Sync` the task awaits its answer while
/// the appender thread leads (and syncs). Otherwise no sync is waited for and a group write
/// takes microseconds (page cache), so the task takes part in the group commit directly, as a
/// thread would: cheaper than two thread hand-offs.
pub(crate) async fn append_async(shared: &Arc<Shared>, pending: Pending) -> Result<Appended> {
    if pending.is_empty() {
        return Ok(Appended { first: shared.control.tail_lsn(), count: 0, time: None });
    }
    if shared.opts.durability != Durability::Sync {
        return append(shared, pending);
    }
    Appender::ensure_started(shared);
    let (tx, rx) = oneshot::channel();
    {
        let writer = &shared.writer;
        let mut queue = lock(&writer.queue);
        queue.waiting.push((pending, Waiter::Task(tx)));
        writer.in_flight.fetch_add(1, Ordering::AcqRel);
        if !std::mem::replace(&mut queue.leader, true) {
            queue.appender_leads = true;
            writer.appender_turn.notify_one();
        }
    }
    rx.await.unwrap_or_else(|_| Err(lost()))
}

/// Writes (and syncs) everything queued; answers every waiter but `own`, whose result it
/// returns.
fn lead_group(shared: &Shared, own: Option<&Arc<Slot>>) -> Option<Result<Appended>> {
    let writer = &shared.writer;
    let (mut batches, waiters): (Vec<Pending>, Vec<Waiter>) =
        std::mem::take(&mut lock(&writer.queue).waiting).into_iter().unzip();
    let mut unwind = AnswerOnUnwind { shared, waiters: Some(waiters), armed: true };
    let results = writer::write_group(shared, &mut batches);
    writer.in_flight.fetch_sub(batches.len(), Ordering::AcqRel);
    hand_off(shared);
    unwind.armed = false;
    let waiters = unwind.waiters.take().unwrap_or_default();

    let written_up_to = results.iter().filter_map(|r| r.as_ref().ok()).map(Appended::next).max();
    let synced = match (shared.opts.durability, written_up_to) {
        (Durability::Sync, Some(next)) => durability::sync_gathering(shared, next, own.is_some()),
        _ => Ok(()),
    };
    let mut own_result = None;
    for (waiter, result) in waiters.into_iter().zip(results) {
        let result = match (&synced, result) {
            (Err(e), Ok(_)) => Err(e.clone()),
            (_, result) => result,
        };
        match waiter {
            Waiter::Thread(slot) if own.is_some_and(|own| Arc::ptr_eq(&slot, own)) => {
                own_result = Some(result);
            }
            Waiter::Thread(slot) => slot.set(State::Done(result)),
            Waiter::Task(tx) => {
                let _ = tx.send(result); // a dropped future no longer wants the answer
            }
        }
    }
    own_result
}

fn lost() -> Error {
    Error::internal("the batch was lost by its group")
}

/// Makes the first waiter the next leader, or leaves the process without one.
fn hand_off(shared: &Shared) {
    let mut queue = lock(&shared.writer.queue);
    match queue.waiting.first() {
        Some((_, Waiter::Thread(next))) => next.set(State::Lead),
        Some((_, Waiter::Task(_))) => {
            queue.appender_leads = true;
            shared.writer.appender_turn.notify_one();
        }
        None => queue.leader = false,
    }
}

/// The thread that leads groups whose first waiter is an async task. It holds the log only
/// while it leads or waits (at most [`APPENDER_IDLE`]), so dropping the last handle closes the
/// log and the thread exits by itself; [`Appender::stop`] ends it at once and joins it.
pub(crate) struct Appender {
    thread: Mutex<AppenderThread>,
}

enum AppenderThread {
    NotStarted,
    /// Started; `None` once [`Appender::stop`] took the handle: the thread is not started
    /// again. (A thread that could not be started leaves `NotStarted`: the next async caller
    /// tries again.)
    Started(Option<JoinHandle<()>>),
}

/// What the appender thread does next.
enum Turn {
    Lead,
    /// Nothing to lead for [`APPENDER_IDLE`]: check whether the log is still open.
    Idle,
    Stop,
}

/// Longest wait of the appender thread before it checks whether the log is still open.
const APPENDER_IDLE: Duration = Duration::from_millis(100);

/// How long the appender thread polls for its next turn before it sleeps.
const APPENDER_POLL: Duration = Duration::from_micros(50);

/// Longest time the appender thread waits for the callers of its previous group to return.
const APPENDER_GATHER: Duration = Duration::from_micros(200);

impl Appender {
    pub fn new() -> Appender {
        Appender { thread: Mutex::new(AppenderThread::NotStarted) }
    }

    fn ensure_started(shared: &Arc<Shared>) {
        let mut thread = lock(&shared.appender.thread);
        if let AppenderThread::Started(_) = *thread {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(shared);
        let spawned = super::spawn_started("maos-log-append", move || {
            let mut last_group = 0;
            while let Some(shared) = weak.upgrade() {
                match Appender::wait_for_turn(&shared) {
                    Turn::Lead => {
                        Appender::gather(&shared, last_group);
                        last_group = lock(&shared.writer.queue).waiting.len();
                        lead_group(&shared, None);
                    }
                    Turn::Idle => {}
                    Turn::Stop => return,
                }
            }
        });
        match spawned {
            Ok(handle) => *thread = AppenderThread::Started(Some(handle)),
            Err(e) => tracing::error!(error = %e, "cannot start the append thread"),
        }
    }

    /// Ends the thread, if it was started, once it has led the group it is to lead (if any),
    /// and waits for it to end. Only for a log no handle can append to any more: a later async
    /// caller under `Durability::Sync` would find no thread to lead its group. Called on the
    /// appender thread itself (a builder of `append_with_async` closing the log), it does not
    /// wait for itself.
    pub fn stop(shared: &Shared) {
        let handle = match &mut *lock(&shared.appender.thread) {
            AppenderThread::Started(handle) => handle.take(),
            AppenderThread::NotStarted => None,
        };
        let Some(handle) = handle else { return };
        lock(&shared.writer.queue).appender_stops = true;
        shared.writer.appender_turn.notify_all();
        if handle.thread().id() != std::thread::current().id() && handle.join().is_err() {
            tracing::error!("the append thread panicked");
        }
    }

    /// Lets the callers answered by the previous group queue their next batches before leading,
    /// so that one write and one sync serve them all: waits while fewer batches are queued than
    /// the previous group had, for at most [`APPENDER_GATHER`]. A lone caller (previous group of
    /// one) never waits; when callers go away, the next group is smaller and so is the wait.
    fn gather(shared: &Shared, expected: usize) {
        let deadline = Instant::now() + APPENDER_GATHER;
        while lock(&shared.writer.queue).waiting.len() < expected && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    /// Waits until the appender is to lead, to stop, or [`APPENDER_IDLE`] passed. Leading
    /// comes before stopping: a group handed to the thread is written. Polls for a short while
    /// first: a caller that awaits one append after another comes back within microseconds,
    /// sooner than a sleeping thread would wake.
    fn wait_for_turn(shared: &Shared) -> Turn {
        let writer = &shared.writer;
        let poll_until = Instant::now() + APPENDER_POLL;
        while Instant::now() < poll_until {
            let mut queue = lock(&writer.queue);
            if std::mem::take(&mut queue.appender_leads) {
                return Turn::Lead;
            }
            if queue.appender_stops {
                return Turn::Stop;
            }
            drop(queue);
            std::thread::yield_now();
        }
        let queue = lock(&writer.queue);
        let (mut queue, _) = writer
            .appender_turn
            .wait_timeout_while(queue, APPENDER_IDLE, |q| !q.appender_leads && !q.appender_stops)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if std::mem::take(&mut queue.appender_leads) {
            Turn::Lead
        } else if queue.appender_stops {
            Turn::Stop
        } else {
            Turn::Idle
        }
    }
}

/// If the leader unwinds while writing, answers its group with an error and hands off, so that
/// no caller sleeps forever.
struct AnswerOnUnwind<'a> {
    shared: &'a Shared,
    waiters: Option<Vec<Waiter>>,
    armed: bool,
}

impl Drop for AnswerOnUnwind<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for waiter in self.waiters.take().unwrap_or_default() {
            let err = Error::internal("the group leader panicked while writing this batch");
            match waiter {
                Waiter::Thread(slot) => slot.set(State::Done(Err(err))),
                Waiter::Task(tx) => {
                    let _ = tx.send(Err(err));
                }
            }
        }
        hand_off(self.shared);
    }
}
