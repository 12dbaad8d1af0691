//! The spare segment (log-format.md, "Spare segment"): a thread of the log zero-fills and syncs
//! the next segment before an appender needs it, so that `Sync` appends overwrite written blocks
//! and their `fdatasync` commits no extent conversion. Appenders never wait for it: one that
//! rolls over before the spare is ready creates the next segment as before.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;

use super::{lock, segment, Shared};
use crate::types::Lsn;

/// The filler thread of one log, started at open when the log prefills
/// ([`LogOptions::prefill_segments`](super::LogOptions::prefill_segments)).
pub(crate) struct Spares {
    state: Arc<(Mutex<State>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// Capacity of the spare to make next.
    wanted: Option<u64>,
    /// The newest segment the last request was made for: one request per segment.
    asked_for: Option<Lsn>,
    /// The thread is making a spare.
    busy: bool,
    /// No thread runs (none was started, or it was stopped): requests are dropped.
    off: bool,
}

impl Spares {
    pub fn new() -> Spares {
        Spares {
            state: Arc::new((Mutex::new(State { off: true, ..State::default() }), Condvar::new())),
            handle: Mutex::new(None),
        }
    }

    /// Starts the thread if the log prefills.
    pub fn start(shared: &Arc<Shared>) {
        if !shared.opts.prefills() {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(shared);
        let state = shared.spares.state.clone();
        lock(&state.0).off = false;
        let spawned = super::spawn_started("maos-log-spare", move || loop {
            let capacity = {
                let (s, cv) = &*state;
                let guard = lock(s);
                let mut guard = cv
                    .wait_while(guard, |s| s.wanted.is_none() && !s.off)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if guard.off {
                    return;
                }
                guard.busy = true;
                guard.wanted.take()
            };
            let made = match (capacity, weak.upgrade()) {
                (Some(capacity), Some(shared)) => {
                    Some(segment::make_spare(&shared.dir, capacity, || shared.control.lock()))
                }
                _ => None,
            };
            if let Some(Err(e)) = &made {
                // Advisory: the appender that rolls over creates the segment itself.
                tracing::warn!(error = %e, "could not make a spare segment");
            }
            let (s, cv) = &*state;
            let mut guard = lock(s);
            guard.busy = false;
            if made.is_none() {
                guard.off = true;
            }
            cv.notify_all();
            if guard.off {
                return;
            }
        });
        match spawned {
            Ok(handle) => *lock(&shared.spares.handle) = Some(handle),
            Err(e) => {
                lock(&shared.spares.state.0).off = true;
                tracing::warn!(error = %e, "cannot start the spare segment thread; segments are not prefilled");
            }
        }
    }

    /// Asks for a spare of `capacity` bytes to follow the newest segment `newest` (once per
    /// newest segment); returns at once.
    pub fn want(&self, newest: Lsn, capacity: u64) {
        let (s, cv) = &*self.state;
        let mut state = lock(s);
        if state.off || state.asked_for == Some(newest) {
            return;
        }
        state.asked_for = Some(newest);
        state.wanted = Some(capacity);
        cv.notify_all();
    }

    /// Waits until the thread has made the spares asked for so far (or has none to make).
    pub fn wait_idle(&self) {
        let (s, cv) = &*self.state;
        let guard = lock(s);
        let _idle = cv
            .wait_while(guard, |s| !s.off && (s.busy || s.wanted.is_some()))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }

    /// Ends the thread, if it runs, and waits for it to end: a spare it is making is finished
    /// first. The thread is not started again.
    pub fn stop(&self) {
        {
            let (s, cv) = &*self.state;
            lock(s).off = true;
            cv.notify_all();
        }
        if let Some(handle) = lock(&self.handle).take() {
            // The thread itself may drop the last handle of the log; it must not join itself.
            if handle.thread().id() != std::thread::current().id() && handle.join().is_err() {
                tracing::error!("the spare segment thread panicked");
            }
        }
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.stop();
    }
}
