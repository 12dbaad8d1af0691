//! Progress of long work (`verify`, `compact`): a bar on standard error while it runs, only when
//! standard error is a terminal, and one summary line there after it (with how long it took),
//! always. With `--json` the summary line is a JSON object, as every line on standard error is.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A piece of long work being shown.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    json: bool,
}

impl Progress {
    /// A bar of bytes done out of a total, labelled `what`.
    pub fn bytes(what: &'static str, json: bool) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            let template = "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta} left)";
            bar.set_style(
                ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(what);
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, started: Instant::now(), json }
    }

    /// A spinner labelled `what`, for work whose size is not known ahead.
    pub fn spinner(what: &'static str, json: bool) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, started: Instant::now(), json }
    }

    /// `done` of `total` bytes.
    pub fn set(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    /// Ends the bar and prints the summary, followed by the time the work took, as one line on
    /// standard error.
    pub fn finish(self, summary: &str) {
        self.bar.finish_and_clear();
        let line = format!("{summary} in {}", seconds(self.started.elapsed()));
        if self.json {
            eprintln!("{}", serde_json::json!({ "summary": line }));
        } else {
            eprintln!("maos-coord: {line}");
        }
    }
}

impl Drop for Progress {
    /// Work that ended in an error leaves no bar behind either.
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A duration as seconds with two decimals.
fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A number of bytes as a human reads it (`512 B`, `1.5 KiB`, `64.0 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // a figure for a person to read
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_as_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
