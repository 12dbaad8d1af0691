//! Early writeback ([`LogOptions::writeback_every`](super::LogOptions::writeback_every)) on a
//! thread of its own: an appender hands over the range it wants written out and goes on, and the
//! thread asks the kernel to start writing it (`sync_file_range`), which takes about as long as
//! queueing the I/O. Appenders never wait for it; the sync that seals a segment is what makes
//! anything durable, as before.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{io, lock};

/// Ranges handed over but not yet started, at most.
const QUEUED: usize = 4;

/// The writeback thread of one log, started on first use. It ends when the log goes (its
/// channel closes) or when [`Writeback::stop`] ends and joins it ([`Log::close`](super::Log::close)).
pub(crate) struct Writeback {
    thread: Mutex<Thread>,
}

enum Thread {
    /// Not asked for yet.
    NotStarted,
    Running {
        sender: SyncSender<Request>,
        handle: JoinHandle<()>,
    },
    /// Could not be started, or stopped: early writeback is off.
    Off,
}

struct Request {
    file: Arc<File>,
    path: PathBuf,
    from: u64,
    to: u64,
}

impl Writeback {
    pub(crate) fn new() -> Writeback {
        Writeback { thread: Mutex::new(Thread::NotStarted) }
    }

    /// Hands `[from, to)` of `file` over. `false` if the thread is still busy with earlier
    /// ranges (or could not be started, or was stopped): the caller asks again later, for a
    /// longer range.
    pub(crate) fn request(&self, file: &Arc<File>, path: &Path, from: u64, to: u64) -> bool {
        let mut thread = lock(&self.thread);
        if let Thread::NotStarted = *thread {
            *thread = spawn();
        }
        let Thread::Running { sender, .. } = &*thread else { return false };
        sender.try_send(Request { file: file.clone(), path: path.to_owned(), from, to }).is_ok()
    }

    /// Ends the thread, if it runs, once it has started the ranges already handed over, and
    /// waits for it to end. Early writeback stays off afterwards.
    pub(crate) fn stop(&self) {
        let thread = std::mem::replace(&mut *lock(&self.thread), Thread::Off);
        if let Thread::Running { sender, handle } = thread {
            drop(sender); // closes the channel: the thread's loop ends
            if handle.join().is_err() {
                tracing::error!("the writeback thread panicked");
            }
        }
    }
}

fn spawn() -> Thread {
    let (sender, requests) = sync_channel::<Request>(QUEUED);
    let spawned = super::spawn_started("maos-log-writeback", move || {
        for r in requests {
            if let Err(e) = io::start_writeback(&r.file, &r.path, r.from, r.to.saturating_sub(r.from)) {
                // Advisory: the sync that seals the segment reports any real I/O error.
                tracing::warn!(error = %e, "could not start writeback");
            }
        }
    });
    match spawned {
        Ok(handle) => Thread::Running { sender, handle },
        Err(e) => {
            tracing::warn!(error = %e, "could not start the writeback thread; early writeback is off");
            Thread::Off
        }
    }
}
