//! Early writeback ([`LogOptions::writeback_every`](super::LogOptions::writeback_every)) on a
//! thread of its own: an appender hands over the range it wants written out and goes on, and the
//! thread asks the kernel to start writing it (`sync_file_range`), which takes about as long as
//! queueing the I/O. Appenders never wait for it; the sync that seals a segment is what makes
//! anything durable, as before.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};

use super::io;

/// Ranges handed over but not yet started, at most.
const QUEUED: usize = 4;

/// The writeback thread of one log handle, started on first use; it ends when the handle goes.
pub(crate) struct Writeback {
    sender: OnceLock<Option<SyncSender<Request>>>,
}

struct Request {
    file: Arc<File>,
    path: PathBuf,
    from: u64,
    to: u64,
}

impl Writeback {
    pub(crate) fn new() -> Writeback {
        Writeback { sender: OnceLock::new() }
    }

    /// Hands `[from, to)` of `file` over. `false` if the thread is still busy with earlier
    /// ranges (or could not be started): the caller asks again later, for a longer range.
    pub(crate) fn request(&self, file: &Arc<File>, path: &Path, from: u64, to: u64) -> bool {
        let Some(sender) = self.sender.get_or_init(spawn) else { return false };
        sender.try_send(Request { file: file.clone(), path: path.to_owned(), from, to }).is_ok()
    }
}

fn spawn() -> Option<SyncSender<Request>> {
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
        Ok(_) => Some(sender),
        Err(e) => {
            tracing::warn!(error = %e, "could not start the writeback thread; early writeback is off");
            None
        }
    }
}
