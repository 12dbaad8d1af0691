//! The one seam through which the store reads wall-clock time: record times, lease ends,
//! expiry, heartbeat timeouts and aging all come from a [`Clock`]. The default is the system
//! clock; tests inject a [`ManualClock`] to move time forwards and backwards without sleeping.
//!
//! Recorded time never goes backwards whatever the clock does: the log stamps each batch with
//! `max(clock, time of the last record)` and commands decide with the same rule
//! (log-format.md, "Time").

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::types::Timestamp;

/// A source of wall-clock time (microseconds since the Unix epoch, UTC).
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock (`CLOCK_REALTIME` through [`std::time::SystemTime`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to: for tests of leases, expiry and timeouts.
///
/// Cheap to clone; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { micros: Arc::new(AtomicI64::new(start.as_micros())) }
    }

    /// A clock standing at the system clock's current time.
    #[must_use]
    pub fn starting_now() -> ManualClock {
        ManualClock::new(Timestamp::now())
    }

    /// Moves the clock forwards by `d`.
    pub fn advance(&self, d: Duration) {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Moves the clock backwards by `d` (as a wall clock stepped back by NTP or by hand).
    pub fn rewind(&self, d: Duration) {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_sub(micros, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.as_micros(), Ordering::SeqCst);
    }

    /// This clock as the shared handle options take.
    #[must_use]
    pub fn shared(&self) -> Arc<dyn Clock> {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

/// The system clock as the shared handle options take.
#[must_use]
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(Timestamp(1_000_000));
        let other = clock.clone();
        assert_eq!(clock.now(), Timestamp(1_000_000));
        clock.advance(Duration::from_millis(300));
        assert_eq!(other.now(), Timestamp(1_300_000));
        other.rewind(Duration::from_secs(1));
        assert_eq!(clock.now(), Timestamp(300_000));
        clock.set(Timestamp(7));
        assert_eq!(clock.shared().now(), Timestamp(7));
    }
}
