//! Waking readers when records are appended (log-format.md, "Reading"). In this process the
//! appender wakes waiters as it publishes. Other processes' appends are seen through inotify (the
//! `notify` crate) on the log directory: appends are `pwritev` calls, which raise modify events
//! (stores through a map would not). A waiter also looks again after at most the fallback poll
//! interval, so a missed event only delays it.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::{lock, Shared};
use crate::types::Lsn;

pub(crate) struct Wake {
    appended: tokio::sync::Notify,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl Wake {
    pub fn new() -> Wake {
        Wake { appended: tokio::sync::Notify::new(), watcher: Mutex::new(None) }
    }

    /// Records were published: wake every waiter.
    pub fn appended(&self) {
        self.appended.notify_waiters();
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
    Wake::ensure_watching(shared);
    let deadline = Instant::now() + timeout;
    loop {
        let notified = shared.wake.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.control.tail_lsn() > lsn {
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
