//! `maos-coord top`: a live view of the store on the terminal (ratatui, crossterm): agents
//! (alive, gone, stopped; what they hold), tasks by status, locks and barriers, the latest
//! events. It draws [`Coordinator::overview`] and sleeps until the store wakes it: a new record
//! from any process ([`LogBackend::wait_for`]), or the moment the overview says it changes
//! without one (a lease or a heartbeat timeout ending); a key press or a resize draws again, and
//! `q` (or Esc, or Ctrl-C) quits. `top --once` prints one frame as text (with `--json`, the
//! overview as one object) and needs no terminal.
//!
//! [`Coordinator::overview`]: maos_coord::Coordinator::overview
//! [`LogBackend::wait_for`]: maos_coord::backend::LogBackend::wait_for

use std::io::IsTerminal;
use std::time::Duration;

use maos_coord::coordinator::{Overview, OverviewLimits};
use maos_coord::{Coordinator, ErrorKind};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use super::top::{self, render::Screen};
use super::{runtime, Failure, Global, Out};

#[derive(clap::Args)]
pub struct TopArgs {
    /// Print one frame as text and exit (with --json, the overview as one object); needs no
    /// terminal.
    #[arg(long)]
    once: bool,
    /// List at most N tasks, the busiest first (the counts by status cover every task).
    #[arg(long, value_name = "N", default_value_t = 50)]
    tasks: usize,
    /// Show the events among the latest N records.
    #[arg(long, value_name = "N", default_value_t = 20)]
    events: usize,
}

/// The width of a frame printed where there is no terminal to measure.
const TEXT_WIDTH: u16 = 120;

/// How long the live view sleeps when no record comes and nothing is due (it then draws again).
const IDLE: Duration = Duration::from_secs(24 * 60 * 60);

/// `top`.
pub fn run(args: &TopArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    if g.json() && !args.once {
        return Err(Failure::Usage(
            "`maos-coord top --json` needs --once: the live view draws on a terminal".into(),
        ));
    }
    let limits = OverviewLimits { tasks: args.tasks, events: args.events };
    let c = g.open()?;
    let store = c.store_dir().display().to_string();
    let terminal = std::io::stdout().is_terminal();
    if args.once {
        let overview = c.overview(limits)?;
        if g.json() {
            out.line(top::json(&overview, &store))?;
            return Ok(());
        }
        let width = if terminal {
            ratatui::crossterm::terminal::size().map_or(TEXT_WIDTH, |(w, _)| w)
        } else {
            TEXT_WIDTH
        };
        for line in top::render::text(Screen { store: &store, overview: &overview, live: false }, width) {
            out.line(line)?;
        }
        return Ok(());
    }
    if !terminal {
        return Err(Failure::new(
            ErrorKind::Invalid,
            "`maos-coord top` draws on a terminal and standard output is not one: `top --once` prints one frame as text",
        ));
    }
    live(&c, &store, limits)
}

/// The live view, until `q`: the terminal in raw mode on its alternate screen, restored after.
fn live(c: &Coordinator, store: &str, limits: OverviewLimits) -> Result<(), Failure> {
    let rt = runtime()?;
    let mut terminal = ratatui::try_init().map_err(|e| terminal_error(&e))?;
    let result = rt.block_on(watch(c, store, limits, &mut terminal));
    let restored = ratatui::try_restore().map_err(|e| terminal_error(&e));
    result.and(restored)
}

fn terminal_error(e: &std::io::Error) -> Failure {
    Failure::new(ErrorKind::Io, format_args!("cannot draw on the terminal: {e}"))
}

/// Draws, sleeps until the store or a key wakes it, draws again.
async fn watch(
    c: &Coordinator,
    store: &str,
    limits: OverviewLimits,
    terminal: &mut DefaultTerminal,
) -> Result<(), Failure> {
    let mut keys = keys();
    loop {
        let overview = c.overview(limits)?;
        terminal
            .draw(|frame| {
                frame.render_widget(Screen { store, overview: &overview, live: true }, frame.area())
            })
            .map_err(|e| terminal_error(&e))?;
        tokio::select! {
            _ = c.log().wait_for(overview.next_lsn, until_change(&overview)) => {}
            key = keys.recv() => match key {
                Some(event) if !quits(&event) => {}
                // `q`, or the terminal's input ended.
                _ => return Ok(()),
            },
        }
    }
}

/// How long the overview stays true without a record: until its next change, just past it.
fn until_change(o: &Overview) -> Duration {
    o.changes_at.map_or(IDLE, |at| {
        let micros = u64::try_from(at.as_micros().saturating_sub(o.now.as_micros())).unwrap_or(0);
        Duration::from_micros(micros) + Duration::from_millis(1)
    })
}

/// Whether an input event quits: `q`, Esc, or Ctrl-C (which raw mode delivers as a key).
fn quits(event: &Event) -> bool {
    let Event::Key(key) = event else { return false };
    key.kind == KeyEventKind::Press
        && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
            || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)))
}

/// The terminal's input events, read on a thread of their own (reading blocks); the channel
/// closes when reading fails. The thread ends with the process.
fn keys() -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}
