//! The debug views through the binary: `graph` (DOT, Mermaid and JSON, tasks with odd names,
//! the part around one task) and `top` (one frame as text or JSON; the live view on a
//! pseudo-terminal, drawn again when another process appends, quitting on `q`), in both output
//! modes with the exit codes they document.

mod support;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use support::{text, Store};

/// Task names with every character DOT and Mermaid treat specially.
const ODD: &str = r#"say "hi" [x] {y} <b>&amp; #1 `c` a|b \N end\"#;

fn odd_store() -> Store {
    let s = Store::new();
    s.register("lead", &[]);
    s.task("lead", &[ODD, "--id", r#"odd "id" \"#]);
    s.task("lead", &["build", "--id", "build", "--depends-on", r#"odd "id" \"#]);
    s.task("lead", &["lone", "--id", "lone"]);
    s
}

#[test]
fn graph_prints_dot_by_default_with_odd_names_escaped() {
    let s = odd_store();
    let dot = s.ok("lead", &["graph"]);
    let expected = [
        "digraph dependencies {",
        "  node [shape=box, style=rounded];",
        r#"  "odd \"id\" \\" [label="say \"hi\" [x] {y} <b>&amp; #1 `c` a|b \\N end\\\npending", tooltip="odd \"id\" \\", color=black];"#,
        r#"  "build" [label="build\npending", tooltip="build", color=black];"#,
        r#"  "lone" [label="lone\npending", tooltip="lone", color=black];"#,
        r#"  "odd \"id\" \\" -> "build" [label="pending", style=dashed, color=black];"#,
        "}",
    ];
    assert_eq!(dot.lines().collect::<Vec<_>>(), expected, "{dot}");
    assert_eq!(s.ok("lead", &["graph", "--format", "dot"]), dot);
    let wrapped = s.json("lead", &["graph", "--format", "dot"]);
    assert_eq!(wrapped, json!({"format": "dot", "text": dot}), "--json wraps the text");
}

#[test]
fn graph_as_mermaid_puts_every_special_character_in_an_entity_code() {
    let s = odd_store();
    let mermaid = s.ok("lead", &["graph", "--format", "mermaid"]);
    let expected = [
        "graph TD",
        r#"  %% t0: odd "id" \"#,
        r#"  t0["say #quot;hi#quot; [x] {y} #lt;b#gt;#amp;amp; #35;1 #96;c#96; a#124;b \N end\<br>pending"]"#,
        "  %% t1: build",
        r#"  t1["build<br>pending"]"#,
        "  %% t2: lone",
        r#"  t2["lone<br>pending"]"#,
        r#"  t0 -.->|"pending"| t1"#,
        "  classDef pending fill:#ffffff,stroke:#333333",
        "  class t0,t1,t2 pending",
    ];
    assert_eq!(mermaid.lines().collect::<Vec<_>>(), expected, "{mermaid}");
    let wrapped = s.json("lead", &["graph", "--format", "mermaid"]);
    assert_eq!(wrapped["format"], "mermaid");
    assert_eq!(wrapped["text"], mermaid.as_str());
}

#[test]
fn graph_as_json_gives_names_statuses_and_dependencies_as_they_are() {
    let s = odd_store();
    s.ok("lead", &["task", "claim"]);
    let graph = s.json("lead", &["graph"]);
    assert_eq!(
        s.ok("lead", &["graph", "--format", "json"]).trim(),
        graph.to_string(),
        "one object either way"
    );
    assert_eq!(graph["task"], json!(null));
    let nodes: Vec<(&str, &str, &str)> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["name"].as_str().unwrap(), n["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        nodes,
        [(r#"odd "id" \"#, ODD, "in_progress"), ("build", "build", "pending"), ("lone", "lone", "pending")]
    );
    assert_eq!(graph["edges"].as_array().unwrap().len(), 1);
    let edge = &graph["edges"][0];
    assert_eq!(
        (&edge["provider"], &edge["consumer"], &edge["status"]),
        (&json!(r#"odd "id" \"#), &json!("build"), &json!("in_progress"))
    );
}

#[test]
fn graph_around_a_task_shows_only_its_part_and_an_unknown_task_is_exit_code_5() {
    let s = odd_store();
    let part = s.json("lead", &["graph", "--task", "build"]);
    assert_eq!(part["task"], "build");
    let ids: Vec<&str> =
        part["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [r#"odd "id" \"#, "build"], "lone is not connected to build");
    let alone = s.ok("lead", &["graph", "--task", "lone", "--format", "mermaid"]);
    assert_eq!(alone.lines().filter(|l| l.contains("-->") || l.contains("-.->")).count(), 0, "{alone}");
    assert!(alone.contains(r#"t0["lone<br>pending"]"#), "{alone}");

    let before = s.next_lsn();
    assert_eq!(s.fails("lead", &["graph", "--task", "nope"], 5).trim(), "maos-coord: unknown task nope");
    assert_eq!(s.fails_json("lead", &["graph", "--task", "nope"], 5)["error"]["kind"], "not_found");
    let usage = s.usage("lead", &["graph", "--format", "png"]);
    assert!(usage.contains("png"), "{usage}");
    assert_eq!(s.next_lsn(), before, "looking appends nothing");
}

#[test]
fn graph_and_top_without_a_store_say_so_and_create_nothing() {
    let s = Store::empty();
    let store = s.root().join(".maos/coordination");
    for args in [&["graph"][..], &["top", "--once"], &["top", "--once", "--json"]] {
        let o = s.cmd(None, args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(&format!("no store at {}", store.display())),
            "{args:?}: {}",
            text(&o)
        );
        assert_eq!(std::fs::read_dir(s.root()).unwrap().count(), 0, "{args:?} created something");
    }
}

/// A store with two agents (one holding a task and a lock), tasks in three states, a barrier
/// and a private context value.
fn busy_store() -> Store {
    let s = Store::new();
    // Heartbeat timeouts far longer than the test: both agents stay alive whatever the pace.
    for args in [&["builder-1", "--capability", "rust"][..], &["watcher"]] {
        let mut register = vec!["agent", "register", "--role", "worker", "--heartbeat-timeout", "1h"];
        register.extend(args);
        let o = s.cmd(None, &register).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    s.task("builder-1", &["compile the api", "--id", "api", "--requires", "rust"]);
    s.task("builder-1", &["write the docs", "--id", "docs", "--requires", "docs"]);
    s.task("builder-1", &["tidy up", "--id", "tidy", "--requires", "rust"]);
    s.ok("builder-1", &["task", "claim"]);
    s.ok("builder-1", &["task", "complete", "api"]);
    s.ok("builder-1", &["task", "claim"]);
    s.ok("builder-1", &["lock", "acquire", "deploy", "--lease", "10m"]);
    s.ok(
        "builder-1",
        &["barrier", "create", "release", "--participant", "builder-1", "--participant", "watcher"],
    );
    s.ok("watcher", &["barrier", "signal", "release"]);
    s.ok("builder-1", &["ctx", "set", "api-key", r#""hunter2""#, "--visibility", "private"]);
    s
}

#[test]
fn top_once_prints_one_frame_with_the_agents_tasks_locks_barriers_and_events() {
    let s = busy_store();
    let frame = s.ok("watcher", &["top", "--once"]);
    let lines: Vec<&str> = frame.lines().collect();
    assert!(lines[0].starts_with("maos-coord top · ") && lines[0].contains(" · LSN "), "{frame}");
    assert!(!lines[0].contains("q quits"), "one frame, nothing to quit: {frame}");
    for expected in [
        " Agents · 2 alive · 0 gone · 2 in all ",
        "│builder-1 worker alive tidy  deploy",
        "│watcher   worker alive -     -",
        " Tasks · 3 of 3 shown · 1 pending · 1 in progress · 1 completed ",
        "│tidy in_progress builder-1 until ",
        "│docs pending",
        "│api  completed",
        "compile the api",
        "│deploy builder-1",
        "│release 1/2       builder-1",
        "context_set key=api-key version=1 visibility=private",
    ] {
        assert!(frame.contains(expected), "{expected:?} in\n{frame}");
    }
    assert!(!frame.contains("hunter2"), "context values are not shown:\n{frame}");
    assert!(lines.iter().all(|l| l.chars().count() <= 120), "120 columns without a terminal:\n{frame}");

    let few = s.ok("watcher", &["top", "--once", "--tasks", "1", "--events", "2"]);
    assert!(few.contains(" Tasks · 1 of 3 shown · "), "{few}");
    assert!(few.contains(" Latest events · 2 "), "{few}");
}

#[test]
fn top_once_as_json_is_the_overview_in_one_object() {
    let s = busy_store();
    let top = s.json("watcher", &["top", "--once"]);
    let agents: Vec<(&str, bool, &str)> = top["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["gone"].as_bool().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(agents, [("builder-1", false, "active"), ("watcher", false, "active")]);
    assert_eq!(top["agents"][0]["holds"], json!(["tidy"]));
    assert_eq!(
        top["task_counts"],
        json!({"pending": 1, "in_progress": 1, "blocked": 0, "completed": 1, "failed": 0, "cancelled": 0, "total": 3})
    );
    let tasks: Vec<(&str, &str)> = top["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(tasks, [("tidy", "in_progress"), ("docs", "pending"), ("api", "completed")]);
    assert_eq!(
        (&top["locks"][0]["lock"], &top["locks"][0]["holder"], &top["locks"][0]["lapsed"]),
        (&json!("deploy"), &json!("builder-1"), &json!(false))
    );
    assert_eq!(
        top["barriers"][0],
        json!({"barrier": "release", "participants": ["builder-1", "watcher"], "signalled": ["watcher"], "open": false})
    );
    let events = top["events"].as_array().unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (&last["op"], &last["key"], last.get("value")),
        (&json!("context_set"), &json!("api-key"), None)
    );
    assert_eq!(top["next_lsn"].as_u64(), Some(s.next_lsn()));
    assert!(top["time"].as_str().unwrap().ends_with('Z') && top["changes_at"].is_string(), "{top}");
}

#[test]
fn top_without_once_needs_a_terminal_and_its_json_needs_once() {
    let s = busy_store();
    let err = s.fails("watcher", &["top"], 1);
    assert!(err.contains("standard output is not one: `top --once`"), "{err}");
    assert!(s.usage("watcher", &["top", "--once", "--tasks", "x"]).contains("'x'"));
    let err = s.fails_json("watcher", &["top"], 2);
    assert_eq!(err["error"]["kind"], "usage");
    assert!(err["error"]["message"].as_str().unwrap().contains("needs --once"), "{err}");
}

/// A pseudo-terminal of 120 × 40: its master, and its slave as the three standard streams of
/// a command.
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two new descriptors into the integers given, which we then own.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and nothing else owns them.
    unsafe { (std::fs::File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// The screen of a terminal, from what is written to it: the text at each cell, for the
/// escape sequences a ratatui view writes (cursor positions, erasing; styles and modes are
/// passed over).
struct Screen {
    cells: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// An escape sequence not finished yet.
    pending: String,
}

impl Screen {
    fn new(rows: usize, cols: usize) -> Screen {
        Screen { cells: vec![vec![' '; cols]; rows], row: 0, col: 0, pending: String::new() }
    }

    fn feed(&mut self, text: &str) {
        for c in text.chars() {
            if !self.pending.is_empty() {
                self.pending.push(c);
                // CSI sequences end with a byte in @..~ after the `[`.
                if self.pending.len() > 2 && ('@'..='~').contains(&c) {
                    let sequence = std::mem::take(&mut self.pending);
                    self.control(&sequence);
                }
                continue;
            }
            match c {
                '\u{1b}' => self.pending.push(c),
                '\r' => self.col = 0,
                '\n' => self.row += 1,
                c => {
                    if let Some(cell) = self.cells.get_mut(self.row).and_then(|r| r.get_mut(self.col)) {
                        *cell = c;
                    }
                    self.col += 1;
                }
            }
        }
    }

    fn control(&mut self, sequence: &str) {
        let Some(body) = sequence.strip_prefix("\u{1b}[") else { return };
        let (params, last) = body.split_at(body.len() - 1);
        let numbers: Vec<usize> = params.split(';').map(|p| p.parse().unwrap_or(1)).collect();
        match last {
            "H" => {
                self.row = numbers.first().copied().unwrap_or(1).saturating_sub(1);
                self.col = numbers.get(1).copied().unwrap_or(1).saturating_sub(1);
            }
            "J" => self.cells.iter_mut().for_each(|r| r.fill(' ')),
            "K" => {
                if let Some(r) = self.cells.get_mut(self.row) {
                    r.iter_mut().skip(self.col).for_each(|c| *c = ' ');
                }
            }
            _ => {}
        }
    }

    fn text(&self) -> String {
        self.cells
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The screen of a pseudo-terminal's master, as what is written to the terminal arrives.
struct Watched {
    screen: Screen,
    output: mpsc::Receiver<Vec<u8>>,
    /// Bytes of a character cut between two reads.
    partial: Vec<u8>,
}

impl Watched {
    /// Reads what the terminal receives on a thread of its own (it ends when the terminal
    /// closes).
    fn new(master: &std::fs::File) -> Watched {
        let (tx, output) = mpsc::channel::<Vec<u8>>();
        let mut reader = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                if tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Watched { screen: Screen::new(40, 120), output, partial: Vec::new() }
    }

    /// Waits until the screen shows `what`.
    fn wait_for(&mut self, what: &str) {
        while !self.screen.text().contains(what) {
            // A bound so that a broken view fails the test instead of hanging it.
            let chunk = self
                .output
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{what:?} never reached the screen:\n{}", self.screen.text()));
            self.partial.extend(chunk);
            let valid = match std::str::from_utf8(&self.partial) {
                Ok(text) => text.len(),
                Err(e) => e.valid_up_to(),
            };
            self.screen.feed(std::str::from_utf8(&self.partial[..valid]).unwrap());
            self.partial.drain(..valid);
        }
    }
}

#[test]
fn top_draws_again_when_another_process_appends_and_quits_on_q() {
    let s = busy_store();
    let (mut master, slave) = pty();
    let mut top = s
        .cmd(Some("watcher"), &["top"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut terminal = Watched::new(&master);
    terminal.wait_for("│api  completed");
    terminal.wait_for("│release 1/2       builder-1");
    assert!(terminal.screen.text().contains("· q quits"), "{}", terminal.screen.text());
    assert!(!terminal.screen.text().contains("fresh-one"), "{}", terminal.screen.text());
    // Another process appends: the view is drawn again, with the new task and its event.
    s.task("builder-1", &["a brand new task", "--id", "fresh-one"]);
    terminal.wait_for("│fresh-one pending");
    terminal.wait_for("task_created max_attempts=3 name=a brand new task");
    master.write_all(b"q").unwrap();
    let status = top.wait().unwrap();
    assert_eq!(status.code(), Some(0), "q quits");
}
