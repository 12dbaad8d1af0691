//! Waking readers when records are appended or become durable (log-format.md, "Reading"). In
//! this process the appender wakes waiters as it publishes, and the syncer as it raises the
//! durable watermark. Other processes' appends are seen through inotify (the `notify` crate) on
//! the log directory: appends are `pwritev` calls, which raise modify events (stores through a
//! map would not, so another process's raise of the durable watermark in the lock file's page
//! raises none). A waiter also looks again after at most the fallback poll interval, so a missed
//! event only delays it.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::{lock, Shared};
use crate::types::Lsn;

pub(crate) struct Wake {
    /// Notified when records are published or the durable watermark rises.
    changed: tokio::sync::Notify,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl Wake {
    pub fn new() -> Wake {
        Wake { changed: tokio::sync::Notify::new(), watcher: Mutex::new(None) }
    }

    /// Records were published: wake every waiter.
    pub fn appended(&self) {
        self.changed.notify_waiters();
    }

    /// The durable watermark rose: wake every waiter (each checks what it waits for).
    pub fn durable(&self) {
        self.changed.notify_waiters();
    }

    /// Stops watching the log directory ([`Log::close`](super::Log::close)). The `notify`
    /// crate's thread is asked to end but cannot be joined.
    pub fn stop_watching(&self) {
        let watcher = lock(&self.watcher).take();
        drop(watcher);
    }

    /// Watches the log directory for other processes' appends (once per log handle).
    fn ensure_watching(shared: &Arc<Shared>) {
        let mut slot = lock(&shared.wake.watcher);
        if slot.is_some() {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(shared);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let (Ok(_), Some(shared)) = (event, weak.upgrade()) {
                shared.wake.appended();
            }
        });
        match watcher.and_then(|mut w| w.watch(&shared.dir, RecursiveMode::NonRecursive).map(|()| w)) {
            Ok(w) => *slot = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the log directory; waiting falls back to polling");
            }
        }
    }
}

/// Waits until the log holds a record with LSN `lsn` (i.e. its next LSN is past it), for at most
/// `timeout`. True if it does.
pub(crate) async fn wait_for(shared: &Arc<Shared>, lsn: Lsn, timeout: Duration) -> bool {
    wait_until(shared, timeout, |shared| shared.control.tail_lsn() > lsn).await
}

/// Waits until the record with LSN `lsn` is durable (the durable watermark is past it), for at
/// most `timeout`. True if it is.
pub(crate) async fn wait_durable(shared: &Arc<Shared>, lsn: Lsn, timeout: Duration) -> bool {
    wait_until(shared, timeout, |shared| shared.control.durable_lsn() > lsn).await
}

/// Waits until `reached` holds, looking again at every wake-up and at least every
/// `wake_fallback`, for at most `timeout`. True if it holds.
async fn wait_until(shared: &Arc<Shared>, timeout: Duration, reached: impl Fn(&Shared) -> bool) -> bool {
    Wake::ensure_watching(shared);
    let deadline = Instant::now() + timeout;
    loop {
        let notified = shared.wake.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if reached(shared) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let wait = (deadline - now).min(shared.opts.wake_fallback);
        let _ = tokio::time::timeout(wait, notified).await;
    }
}
