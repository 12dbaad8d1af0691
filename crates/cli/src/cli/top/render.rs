//! Drawing one frame of `maos-coord top` (ratatui): a header line, then panels of agents,
//! tasks, locks and barriers side by side, and the latest events. [`Screen`] is a widget made
//! from an [`Overview`] alone; [`text`] renders it into a buffer tall enough for every row and
//! returns the lines (`top --once`).

use maos_coord::coordinator::Overview;
use ratatui::buffer::{Buffer, CellWidth};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget};

use super::{
    agent_rows, barrier_rows, counts, event_line, lock_rows, task_rows, AGENT_HEADER, BARRIER_HEADER,
    LOCK_HEADER, TASK_HEADER,
};

/// One frame: the store's name and the overview; `live` adds the key that quits.
pub struct Screen<'a> {
    /// The store it shows.
    pub store: &'a str,
    /// What it shows.
    pub overview: &'a Overview,
    /// Drawn on a terminal that `q` quits (otherwise, as text, every row is shown).
    pub live: bool,
}

/// The colour of a cell that holds a state: of a task (its status) or of an agent.
fn color(state: &str) -> Style {
    let word = state.split([' ', '(']).next().unwrap_or(state);
    match word {
        "in_progress" | "alive" => Style::new().fg(Color::Cyan),
        "blocked" => Style::new().fg(Color::Yellow),
        "completed" => Style::new().fg(Color::Green),
        "failed" | "gone" => Style::new().fg(Color::Red),
        "cancelled" | "stopped" => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    }
}

/// A panel's rows, one more line if there are none (`none`).
fn rows_height(rows: usize) -> u16 {
    u16::try_from(rows.max(1)).unwrap_or(u16::MAX)
}

/// A table panel: a bordered block titled `title`, a header, `rows` (columns sized to their
/// widest cell, the last one taking the rest), the cells of column `colored` coloured by state.
fn table<'a>(
    title: String,
    header: &'a [&'a str],
    rows: &'a [Vec<String>],
    colored: Option<usize>,
) -> Table<'a> {
    let mut widths: Vec<Constraint> = (0..header.len())
        .map(|i| {
            let widest = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.as_str().cell_width())
                .chain(header.get(i).map(|h| h.cell_width()))
                .max()
                .unwrap_or(0);
            Constraint::Length(widest)
        })
        .collect();
    if let Some(last) = widths.last_mut() {
        *last = Constraint::Fill(1);
    }
    let body: Vec<Row> = if rows.is_empty() {
        vec![Row::new([Cell::from("none")]).style(Style::new().fg(Color::DarkGray))]
    } else {
        rows.iter()
            .map(|r| {
                Row::new(r.iter().enumerate().map(|(i, c)| {
                    let cell = Cell::from(c.as_str());
                    if Some(i) == colored {
                        cell.style(color(c))
                    } else {
                        cell
                    }
                }))
            })
            .collect()
    };
    Table::new(body, widths)
        .header(Row::new(header.iter().copied()).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title))
}

impl Screen<'_> {
    /// The height that shows every row: what [`text`] renders into.
    pub fn full_height(&self) -> u16 {
        self.natural().into_iter().fold(1, u16::saturating_add)
    }

    /// Each panel's height with every row shown: agents, tasks, locks and barriers, events.
    fn natural(&self) -> [u16; 4] {
        let o = self.overview;
        [
            rows_height(o.agents.len()).saturating_add(3),
            rows_height(o.tasks.len()).saturating_add(3),
            rows_height(o.locks.len().max(o.barriers.len())).saturating_add(3),
            rows_height(o.events.len()).saturating_add(2),
        ]
    }

    /// The panels' heights in `height` lines: every row when it fits (tasks taking what is
    /// left); on a terminal too small, agents get at most a fifth, locks and barriers a sixth
    /// and events a quarter of it, and tasks the rest.
    fn heights(&self, height: u16) -> [Constraint; 5] {
        let [agents, _, sync, events] = self.natural();
        let (agents, sync, events) = if self.full_height() <= height {
            (agents, sync, events)
        } else {
            (agents.min(height / 5).max(3), sync.min(height / 6).max(3), events.min(height / 4).max(3))
        };
        [
            Constraint::Length(1),
            Constraint::Length(agents),
            Constraint::Fill(1),
            Constraint::Length(sync),
            Constraint::Length(events),
        ]
    }
}

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let o = self.overview;
        let [head, agents_area, tasks_area, sync_area, events_area] =
            Layout::vertical(self.heights(area.height)).areas(area);

        let lsn = o.next_lsn.get().saturating_sub(1);
        let mut header = format!("maos-coord top · {} · LSN {lsn} · {}", self.store, o.now);
        if self.live {
            header.push_str(" · q quits");
        }
        Paragraph::new(Line::styled(header, Style::new().add_modifier(Modifier::BOLD))).render(head, buf);

        let agents = agent_rows(o);
        let (alive, gone) = (
            o.agents.iter().filter(|s| !s.gone && s.agent.status == maos_coord::AgentStatus::Active).count(),
            o.agents.iter().filter(|s| s.gone).count(),
        );
        let title = format!(" Agents · {alive} alive · {gone} gone · {} in all ", o.agents.len());
        Widget::render(table(title, &AGENT_HEADER, &agents, Some(2)), agents_area, buf);

        let tasks = task_rows(o);
        let shown = tasks.len().min(usize::from(tasks_area.height.saturating_sub(3)));
        let title = format!(" Tasks · {shown} of {} shown · {} ", o.counts.total(), counts(&o.counts));
        Widget::render(table(title, &TASK_HEADER, &tasks, Some(1)), tasks_area, buf);

        let [locks_area, barriers_area] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(sync_area);
        let locks = lock_rows(o);
        Widget::render(
            table(format!(" Locks · {} ", locks.len()), &LOCK_HEADER, &locks, None),
            locks_area,
            buf,
        );
        let barriers = barrier_rows(o);
        let title = format!(" Barriers · {} ", barriers.len());
        Widget::render(table(title, &BARRIER_HEADER, &barriers, None), barriers_area, buf);

        // The latest events that fit, oldest first.
        let fit = usize::from(events_area.height.saturating_sub(2));
        let skip = o.events.len().saturating_sub(fit);
        let lines: Vec<Line> = if o.events.is_empty() {
            vec![Line::styled("none", Style::new().fg(Color::DarkGray))]
        } else {
            o.events.iter().skip(skip).map(|e| Line::raw(event_line(e))).collect()
        };
        let title = format!(" Latest events · {} ", o.events.len() - skip);
        Paragraph::new(lines).block(Block::bordered().title(title)).render(events_area, buf);
    }
}

/// The frame as text, `width` columns wide and tall enough for every row: one string per line,
/// trailing spaces trimmed (cells hidden behind a wide character are left out).
pub fn text(screen: Screen<'_>, width: u16) -> Vec<String> {
    let area = Rect::new(0, 0, width, screen.full_height());
    let mut buf = Buffer::empty(area);
    screen.render(area, &mut buf);
    lines(&buf)
}

/// The lines of a buffer.
pub fn lines(buf: &Buffer) -> Vec<String> {
    let width = usize::from(buf.area.width.max(1));
    buf.content
        .chunks(width)
        .map(|cells| {
            let mut line = String::new();
            let mut hidden: u16 = 0;
            for cell in cells {
                if hidden == 0 {
                    line.push_str(cell.symbol());
                }
                hidden = hidden.max(cell.cell_width()).saturating_sub(1);
            }
            line.trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use maos_coord::coordinator::OverviewLimits;
    use maos_coord::model::{BarrierName, ContextKey, LockName, NewTask, TaskId};
    use maos_coord::{AgentId, Coordinator, Durability, ManualClock, Timestamp, Visibility};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;

    /// 2026-05-09T07:00:00Z.
    const START: i64 = 1_778_310_000_000_000;

    /// A store with an agent that is alive, one gone silent and one stopped; tasks in progress,
    /// pending, completed and cancelled; a lock, a barrier half signalled, a context value.
    async fn store(root: &std::path::Path, tasks: usize) -> (Coordinator, ManualClock) {
        let clock = ManualClock::new(Timestamp::from_micros(START));
        let c = Coordinator::options(root)
            .durability(Durability::Buffered)
            .lease(Duration::from_secs(300))
            .heartbeat_timeout(Duration::from_secs(60))
            .clock(clock.shared())
            .open()
            .unwrap();
        let (busy, silent, done) =
            (AgentId::new("busy").unwrap(), AgentId::new("silent").unwrap(), AgentId::new("done").unwrap());
        c.register_agent(&silent, "watcher", vec![]).await.unwrap();
        c.register_agent(&done, "helper", vec![]).await.unwrap();
        c.stop_agent(&done, "finished").await.unwrap();
        clock.advance(Duration::from_secs(90));
        c.register_agent(&busy, "builder", vec![]).await.unwrap();
        let finished =
            c.create_task(&busy, NewTask::new("finished").id(TaskId::new("t-done").unwrap())).await.unwrap();
        c.claim_next_task(&busy, Some(&[])).await.unwrap();
        c.complete_task(&busy, &finished.id, vec![]).await.unwrap();
        c.create_task(&busy, NewTask::new("compile 日本語 ✓").id(TaskId::new("t-held").unwrap()))
            .await
            .unwrap();
        c.claim_next_task(&busy, Some(&[])).await.unwrap();
        let dropped =
            c.create_task(&busy, NewTask::new("dropped").id(TaskId::new("t-gone").unwrap())).await.unwrap();
        c.cancel_task(&busy, &dropped.id, "not needed").await.unwrap();
        for i in 0..tasks {
            c.create_task(
                &busy,
                NewTask::new(format!("later {i}")).id(TaskId::new(format!("t-{i}")).unwrap()),
            )
            .await
            .unwrap();
        }
        c.try_lock(&busy, &LockName::new("deploy").unwrap(), Duration::from_secs(30)).await.unwrap().unwrap();
        let barrier = BarrierName::new("builds").unwrap();
        c.create_barrier(&busy, &barrier, vec!["busy".into(), "other".into()]).await.unwrap();
        c.signal_barrier(&busy, &barrier, "busy").await.unwrap();
        let key = ContextKey::new("api-spec").unwrap();
        c.set_context(&busy, &key, serde_json::json!({"secret": "s3cr3t"}), Visibility::Private)
            .await
            .unwrap();
        (c, clock)
    }

    fn frame(backend: &TestBackend) -> String {
        lines(backend.buffer()).join("\n")
    }

    #[tokio::test]
    async fn a_frame_shows_agents_tasks_locks_barriers_and_events_from_the_overview_alone() {
        let root = tempfile::tempdir().unwrap();
        let (c, _clock) = store(root.path(), 2).await;
        let overview = c.overview(OverviewLimits::default()).unwrap();
        let mut terminal = Terminal::new(TestBackend::new(110, 40)).unwrap();
        terminal
            .draw(|f| f.render_widget(Screen { store: "S", overview: &overview, live: true }, f.area()))
            .unwrap();
        let text = frame(terminal.backend());
        for expected in [
            "maos-coord top · S · LSN ",
            "· q quits",
            " Agents · 1 alive · 1 gone · 3 in all ",
            "│busy   builder alive   t-held deploy",
            "│done   helper  stopped -      -",
            "│silent watcher gone    -      -",
            " Tasks · 5 of 5 shown · 2 pending · 1 in progress · 1 completed · 1 cancelled ",
            "│t-held in_progress            busy   until 07:06:30 compile 日本語 ✓",
            "│t-gone cancelled (not needed) -      -              dropped",
            "│deploy busy   ",
            "until 07:02:00",
            "│builds  1/2       other",
            "context_set key=api-spec version=1 visibility=private",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        assert!(!text.contains("s3cr3t"), "no context value is shown:\n{text}");
        let held = text.lines().position(|l| l.contains("t-held")).unwrap();
        let pending = text.lines().position(|l| l.contains("t-0 ")).unwrap();
        let finished = text.lines().position(|l| l.contains("t-done")).unwrap();
        assert!(held < pending && pending < finished, "the busiest first:\n{text}");
    }

    #[tokio::test]
    async fn a_small_terminal_keeps_every_panel_and_says_how_many_tasks_it_shows() {
        let root = tempfile::tempdir().unwrap();
        let (c, _clock) = store(root.path(), 40).await;
        let overview = c.overview(OverviewLimits::default()).unwrap();
        let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
        terminal
            .draw(|f| f.render_widget(Screen { store: "S", overview: &overview, live: true }, f.area()))
            .unwrap();
        let text = frame(terminal.backend());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 24);
        for panel in [" Agents ", " Tasks ", " Locks ", " Barriers ", " Latest events "] {
            assert!(text.contains(panel), "{panel:?} in\n{text}");
        }
        let task_rows = lines.iter().filter(|l| l.starts_with("│t-")).count();
        assert!(task_rows > 0, "{text}");
        assert!(task_rows >= 5, "tasks get the most room: {task_rows} rows:\n{text}");
        assert!(text.contains(&format!(" Tasks · {task_rows} of 43 shown · ")), "{task_rows} rows:\n{text}");
        // The latest event is the last line of the events panel.
        assert!(lines[22].contains("context_set"), "{text}");
    }

    #[tokio::test]
    async fn as_text_every_row_is_shown_and_wide_characters_take_their_cells() {
        let root = tempfile::tempdir().unwrap();
        let (c, clock) = store(root.path(), 3).await;
        clock.advance(Duration::from_secs(61));
        let overview = c.overview(OverviewLimits::default()).unwrap();
        let screen = Screen { store: "S", overview: &overview, live: false };
        let height = usize::from(screen.full_height());
        let text = text(screen, 80);
        assert_eq!(text.len(), height);
        assert!(!text[0].contains("q quits"), "{}", text[0]);
        for task in ["t-held", "t-done", "t-gone", "t-0", "t-1", "t-2"] {
            assert!(text.iter().any(|l| l.starts_with(&format!("│{task} "))), "{task}:\n{}", text.join("\n"));
        }
        let held = text.iter().find(|l| l.contains("compile")).unwrap();
        assert!(held.ends_with("compile 日本語 ✓") || held.contains("compile 日本語 ✓ "), "{held}");
        assert_eq!(held.as_str().cell_width(), 80, "no cell behind a wide character: {held}");
        let lock = text.iter().find(|l| l.contains("│deploy")).unwrap();
        assert!(lock.contains("lapsed 07:02:00"), "a lease that ended is lapsed: {lock}");
        assert!(text.iter().any(|l| l.contains("│busy   builder gone")), "{}", text.join("\n"));
    }
}
