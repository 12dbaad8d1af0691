//! `maos-coord graph`: the dependency graph ([`Coordinator::dependency_graph`]) as Graphviz
//! DOT, a Mermaid flowchart (`graph TD`) or JSON. Nodes are tasks, labelled with their name and
//! status; edges run from provider to consumer, labelled with the dependency's status (and its
//! artifact type unless it is the provider's completion).
//!
//! Names are free text (anything but control characters), so every label is escaped for its
//! format: in DOT, quoted strings with `"` and `\` escaped (so that no name becomes an escape
//! sequence such as `\N`) and line breaks as `\n`; in Mermaid, quoted labels with the
//! characters Mermaid interprets (`"`, `#`, `&`, `<`, `>`, `` ` ``, `|`) as entity codes and
//! line breaks as `<br>`. Mermaid node ids are `t0`, `t1`, ... (a comment maps each to its task
//! id); DOT node ids are the task ids.
//!
//! [`Coordinator::dependency_graph`]: maos_coord::Coordinator::dependency_graph

use std::fmt::Write as _;

use maos_coord::coordinator::{GraphNode, TaskGraph};
use maos_coord::model::{ArtifactType, Dependency, DependencyStatus, TaskId};
use serde_json::json;

use super::{view, Failure, Global, Out};

#[derive(clap::Args)]
pub struct GraphArgs {
    /// dot (Graphviz), mermaid (a `graph TD` flowchart) or json [default: dot; json with
    /// --json, which prints dot and mermaid as {"format", "text"}]
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Only the part of the graph connected to this task: its providers and consumers, theirs,
    /// and so on (exit code 5 if there is no such task).
    #[arg(long, value_name = "T")]
    task: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Format {
    Dot,
    Mermaid,
    Json,
}

/// `graph`.
pub fn run(args: &GraphArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let around = args.task.clone().map(TaskId::new).transpose()?;
    let graph = g.open()?.dependency_graph(around.as_ref())?;
    let format = args.format.unwrap_or(if g.json() { Format::Json } else { Format::Dot });
    let text = match format {
        Format::Json => return Ok(out.line(json_graph(around.as_ref(), &graph))?),
        Format::Dot => dot(&graph),
        Format::Mermaid => mermaid(&graph),
    };
    if g.json() {
        let name = if format == Format::Dot { "dot" } else { "mermaid" };
        out.line(json!({"format": name, "text": text}))?;
    } else {
        out.line(text.trim_end())?;
    }
    Ok(())
}

/// `{"task", "nodes": [{"id", "name", "status", "reason"}], "edges": [dependency]}`.
fn json_graph(around: Option<&TaskId>, graph: &TaskGraph) -> serde_json::Value {
    let nodes: Vec<_> = graph
        .nodes
        .iter()
        .map(|n| {
            let (status, reason) = view::status(&n.status);
            json!({"id": n.id.as_str(), "name": n.name, "status": status, "reason": reason})
        })
        .collect();
    let edges: Vec<_> = graph.edges.iter().map(view::dependency).collect();
    json!({"task": around.map(TaskId::as_str), "nodes": nodes, "edges": edges})
}

/// A node's label: its name, then its status (with the reason, if any) on a line of its own.
fn node_label(node: &GraphNode) -> (String, String, &'static str) {
    let (status, reason) = view::status(&node.status);
    let line = reason.map_or_else(|| status.to_owned(), |r| format!("{status}: {r}"));
    (node.name.clone(), line, status)
}

/// An edge's label: the dependency's status (with its reason), after its artifact type unless
/// that is the provider's completion.
fn edge_label(dep: &Dependency) -> String {
    let status = match &dep.status {
        DependencyStatus::Pending => "pending".to_owned(),
        DependencyStatus::InProgress => "in_progress".to_owned(),
        DependencyStatus::Ready => "ready".to_owned(),
        DependencyStatus::Failed(reason) => format!("failed: {reason}"),
    };
    match &dep.artifact_type {
        ArtifactType::Completion => status,
        other => format!("{}, {status}", view::artifact(other)),
    }
}

/// Graphviz colours of task statuses.
fn dot_color(status: &str) -> &'static str {
    match status {
        "in_progress" => "blue",
        "blocked" => "orange",
        "completed" => "darkgreen",
        "failed" => "red",
        "cancelled" => "gray",
        _ => "black",
    }
}

/// Text inside a DOT quoted string: `"` and `\` escaped, line breaks as `\n`, other control
/// characters as spaces.
pub fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The graph in Graphviz DOT.
pub fn dot(graph: &TaskGraph) -> String {
    let mut out = String::from("digraph dependencies {\n  node [shape=box, style=rounded];\n");
    for node in &graph.nodes {
        let (name, status_line, status) = node_label(node);
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\", tooltip=\"{}\", color={}];",
            dot_escape(node.id.as_str()),
            dot_escape(&name),
            dot_escape(&status_line),
            dot_escape(node.id.as_str()),
            dot_color(status),
        );
    }
    for dep in &graph.edges {
        let style = match dep.status {
            DependencyStatus::Ready => "solid",
            _ => "dashed",
        };
        let color = if matches!(dep.status, DependencyStatus::Failed(_)) { "red" } else { "black" };
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [label=\"{}\", style={style}, color={color}];",
            dot_escape(dep.provider.as_str()),
            dot_escape(dep.consumer.as_str()),
            dot_escape(&edge_label(dep)),
        );
    }
    out.push_str("}\n");
    out
}

/// Text inside a Mermaid quoted label: the characters Mermaid interprets as entity codes
/// (`#quot;`, `#35;`, ...), line breaks as `<br>`, other control characters as spaces.
pub fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Mermaid styles of task statuses (`classDef`).
const MERMAID_CLASSES: [(&str, &str); 6] = [
    ("pending", "fill:#ffffff,stroke:#333333"),
    ("in_progress", "fill:#dbe9ff,stroke:#1f5fbf"),
    ("blocked", "fill:#ffe8cc,stroke:#c25e00"),
    ("completed", "fill:#dcf5dc,stroke:#2e7d32"),
    ("failed", "fill:#ffd9d9,stroke:#c62828"),
    ("cancelled", "fill:#eeeeee,stroke:#777777"),
];

/// The graph as a Mermaid flowchart, top down.
pub fn mermaid(graph: &TaskGraph) -> String {
    let mut out = String::from("graph TD\n");
    let index = |id: &TaskId| graph.nodes.iter().position(|n| n.id == *id);
    let mut classes: Vec<(&str, Vec<String>)> = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let (name, status_line, status) = node_label(node);
        // The comment maps the node to its task id; nothing in it is interpreted.
        let id: String = node.id.as_str().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let _ = writeln!(out, "  %% t{i}: {id}");
        let _ = writeln!(out, "  t{i}[\"{}<br>{}\"]", mermaid_escape(&name), mermaid_escape(&status_line));
        match classes.iter_mut().find(|(s, _)| *s == status) {
            Some((_, members)) => members.push(format!("t{i}")),
            None => classes.push((status, vec![format!("t{i}")])),
        }
    }
    for dep in &graph.edges {
        let (Some(from), Some(to)) = (index(&dep.provider), index(&dep.consumer)) else { continue };
        let arrow = if dep.status == DependencyStatus::Ready { "-->" } else { "-.->" };
        let _ = writeln!(out, "  t{from} {arrow}|\"{}\"| t{to}", mermaid_escape(&edge_label(dep)));
    }
    for (status, style) in MERMAID_CLASSES {
        if let Some((_, members)) = classes.iter().find(|(s, _)| *s == status) {
            let _ = writeln!(out, "  classDef {status} {style}");
            let _ = writeln!(out, "  class {} {status}", members.join(","));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use maos_coord::model::DependencyId;
    use maos_coord::TaskStatus;

    const ODD: &str = "say \"hi\" [x] {y} (z) <b>&amp; #1 `c` a|b \\N back\\ \nnext;";

    fn graph() -> TaskGraph {
        let node = |id: &str, name: &str, status| GraphNode {
            id: TaskId::new(id).unwrap(),
            name: name.into(),
            status,
        };
        TaskGraph {
            nodes: vec![
                node("odd \"id\" \\", ODD, TaskStatus::Failed("bad \"luck\"".into())),
                node("plain", "plain", TaskStatus::Pending),
            ],
            edges: vec![Dependency {
                id: DependencyId::new("odd \"id\" \\->plain").unwrap(),
                provider: TaskId::new("odd \"id\" \\").unwrap(),
                consumer: TaskId::new("plain").unwrap(),
                artifact_type: ArtifactType::Other("x|\"y\"".into()),
                artifact_path: None,
                status: DependencyStatus::Failed("provider failed".into()),
            }],
        }
    }

    /// The quoted strings of a DOT text, read as Graphviz reads them: `\"` is a quote and a
    /// backslash escapes the character after it; the string ends at the first other `"`.
    fn dot_strings(text: &str) -> Vec<String> {
        let mut strings = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '"' {
                continue;
            }
            let mut s = String::new();
            loop {
                match chars.next().expect("the string is closed") {
                    '"' => break,
                    '\\' => {
                        let next = chars.next().expect("an escaped character");
                        s.push('\\');
                        s.push(next);
                    }
                    c => s.push(c),
                }
            }
            strings.push(s);
        }
        strings
    }

    /// A DOT label's escapes as Graphviz shows them: `\\` a backslash, `\"` a quote, `\n` a
    /// line break.
    fn dot_label(raw: &str) -> String {
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => panic!("a lone backslash ends {raw:?}"),
            }
        }
        out
    }

    #[test]
    fn dot_labels_read_back_as_the_names_and_statuses_whatever_they_hold() {
        let text = dot(&graph());
        assert!(text.starts_with("digraph dependencies {\n") && text.ends_with("}\n"), "{text}");
        let strings = dot_strings(&text);
        // Node 1: id, label, tooltip; node 2: the same; the edge: provider, consumer, label.
        assert_eq!(strings.len(), 9, "{text}");
        assert_eq!(strings[0], strings[2], "tooltip is the id");
        assert_eq!(dot_label(&strings[1]), format!("{ODD}\nfailed: bad \"luck\""));
        assert_eq!(dot_label(&strings[4]), "plain\npending");
        assert_eq!((strings[6].as_str(), strings[7].as_str()), (strings[0].as_str(), "plain"));
        assert_eq!(dot_label(&strings[8]), "x|\"y\", failed: provider failed");
        // Every line is one statement: no raw line break inside a string.
        assert_eq!(text.lines().count(), 2 + 2 + 1 + 1, "{text}");
    }

    #[test]
    fn mermaid_labels_hold_no_character_mermaid_interprets() {
        let text = mermaid(&graph());
        assert!(text.starts_with("graph TD\n"), "{text}");
        let label_line = text.lines().find(|l| l.trim_start().starts_with("t0[")).expect("node t0");
        let inner =
            label_line.trim().strip_prefix("t0[\"").and_then(|l| l.strip_suffix("\"]")).expect("quoted");
        for c in ['"', '`', '<', '>', '|', '&'] {
            let stripped = inner.replace("<br>", "");
            assert!(!stripped.contains(c), "{c:?} in {inner}");
        }
        let decoded = inner
            .replace("<br>", "\n")
            .replace("#quot;", "\"")
            .replace("#lt;", "<")
            .replace("#gt;", ">")
            .replace("#96;", "`")
            .replace("#124;", "|")
            .replace("#amp;", "&")
            .replace("#35;", "#");
        assert_eq!(decoded, format!("{ODD}\nfailed: bad \"luck\""));
        assert!(text.contains("  %% t0: odd \"id\" \\\n"), "{text}");
        assert!(text.contains("  t0 -.->|\"x#124;#quot;y#quot;, failed: provider failed\"| t1\n"), "{text}");
        assert!(text.contains("  class t0 failed\n") && text.contains("  class t1 pending\n"), "{text}");
        assert_eq!(
            text.lines().filter(|l| !l.trim_start().starts_with("%%")).count(),
            1 + 2 + 1 + 4,
            "{text}"
        );
    }

    #[test]
    fn an_empty_graph_is_a_valid_empty_diagram() {
        assert_eq!(
            dot(&TaskGraph::default()),
            "digraph dependencies {\n  node [shape=box, style=rounded];\n}\n"
        );
        assert_eq!(mermaid(&TaskGraph::default()), "graph TD\n");
    }
}
