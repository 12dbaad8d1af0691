//! `maos-coord ctx ...`: shared context: set, get, delete, list, watch.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Subcommand;
use maos_coord::model::SetCondition;
use maos_coord::{ContextKey, ErrorKind, SetOptions, Visibility};
use serde_json::json;

use super::{input, runtime, view, Failure, Global, Out};

#[derive(Subcommand)]
pub enum CtxCommand {
    /// Set a key to a JSON value (or @FILE, or - for standard input); prints its new version.
    Set {
        /// The key.
        key: String,
        /// The value: JSON, @FILE or -.
        value: String,
        /// Who may read it: shared, private, or restricted:AGENT,AGENT (and the owner).
        #[arg(long, default_value = "shared", value_parser = input::visibility)]
        visibility: Visibility,
        /// It reads as absent this long after the set.
        #[arg(long, value_name = "DUR", value_parser = input::span)]
        expires_in: Option<Duration>,
        /// Only if the key is at this version now (compare-and-set; exit code 4 otherwise).
        #[arg(long, value_name = "N", conflicts_with = "if_absent")]
        if_version: Option<u64>,
        /// Only if the key has no live value now (exit code 4 otherwise).
        #[arg(long)]
        if_absent: bool,
        /// Metadata (repeatable).
        #[arg(long = "metadata", value_name = "K=V", value_parser = input::pair)]
        metadata: Vec<(String, String)>,
    },
    /// Print a key's value (with --json, its entry); exit code 5 if it is absent, deleted,
    /// expired or not visible to the agent.
    Get {
        /// The key.
        key: String,
        /// A past version.
        #[arg(long, value_name = "N")]
        version: Option<u64>,
    },
    /// Delete a key (its versions stay readable); prints its new version.
    Delete {
        /// The key.
        key: String,
    },
    /// The keys the agent may read, in key order.
    List {
        /// Only keys that start with this.
        #[arg(long, value_name = "P", default_value = "")]
        prefix: String,
    },
    /// Print every later version of a key as it is set (one line each, flushed), until
    /// interrupted; a version the agent may not read ends it with exit code 5.
    Watch {
        /// The key.
        key: String,
        /// Start from this version (default: the next change).
        #[arg(long, value_name = "N")]
        from_version: Option<u64>,
    },
}

pub fn run(cmd: CtxCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let rt = runtime()?;
    match cmd {
        CtxCommand::Set { key, value, visibility, expires_in, if_version, if_absent, metadata } => {
            let key = ContextKey::new(key)?;
            let value = input::json(&format!("the value of context key {key}"), &value)?;
            let agent = g.agent("ctx set")?;
            let condition = match (if_version, if_absent) {
                (Some(version), _) => SetCondition::VersionIs(version),
                (None, true) => SetCondition::Absent,
                (None, false) => SetCondition::Always,
            };
            let metadata: BTreeMap<String, String> = metadata.into_iter().collect();
            let opts = SetOptions { visibility, expires_in, metadata, condition };
            let c = g.open()?;
            let version = rt.block_on(c.set_context_with(&agent, &key, value, opts))?;
            if g.json() {
                out.line(json!({"key": key.as_str(), "version": version}))?;
            } else {
                out.line(version)?;
            }
        }
        CtxCommand::Get { key, version } => {
            let key = ContextKey::new(key)?;
            let agent = g.agent("ctx get")?;
            let c = g.open()?;
            let entry = match version {
                None => c.get_context(&agent, &key)?,
                Some(v) => c.get_context_version(&agent, &key, v)?,
            };
            let Some(entry) = entry else {
                let what = version.map_or_else(
                    || format!("context key {key}"),
                    |v| format!("version {v} of context key {key}"),
                );
                return Err(Failure::new(
                    ErrorKind::NotFound,
                    format_args!("{what} is absent (never set, deleted or expired)"),
                ));
            };
            if g.json() {
                out.line(view::entry(&entry))?;
            } else {
                out.line(&entry.value)?;
            }
        }
        CtxCommand::Delete { key } => {
            let key = ContextKey::new(key)?;
            let agent = g.agent("ctx delete")?;
            let c = g.open()?;
            let version = rt.block_on(c.delete_context(&agent, &key))?;
            if g.json() {
                out.line(json!({"key": key.as_str(), "version": version, "deleted": true}))?;
            } else {
                out.line(version)?;
            }
        }
        CtxCommand::List { prefix } => {
            let agent = g.agent("ctx list")?;
            let entries = g.open()?.list_context(&agent, &prefix)?;
            if g.json() {
                out.line(json!({"entries": entries.iter().map(view::entry).collect::<Vec<_>>()}))?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.key.to_string(),
                        e.version.to_string(),
                        e.owner.to_string(),
                        view::short(&e.value, 60),
                    ]
                })
                .collect();
            for line in view::table(&["KEY", "VERSION", "OWNER", "VALUE"], &rows) {
                out.line(line)?;
            }
        }
        CtxCommand::Watch { key, from_version } => {
            let key = ContextKey::new(key)?;
            let agent = g.agent("ctx watch")?;
            let c = g.open()?;
            let mut watcher = c.watch_context(&agent, &key, from_version)?;
            loop {
                let (version, entry) = match rt.block_on(watcher.next()) {
                    Ok(next) => next,
                    // A version the agent may not read: said so, and the watch goes on (as
                    // `events tail` withholds such values rather than stopping).
                    Err(maos_coord::Error::NotVisible { .. }) => {
                        let line = if g.json() {
                            json!({"key": key.as_str(), "withheld": "not_visible"}).to_string()
                        } else {
                            format!("-\t(a version {agent} may not read)")
                        };
                        out.line_flushed(line)?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let line = match (&entry, g.json()) {
                    (Some(e), true) => {
                        let mut view = view::entry(e);
                        view["deleted"] = false.into();
                        view.to_string()
                    }
                    (None, true) => {
                        json!({"key": key.as_str(), "version": version, "value": null, "deleted": true})
                            .to_string()
                    }
                    (Some(e), false) => format!("{version}\t{}", e.value),
                    (None, false) => format!("{version}\t(deleted or expired)"),
                };
                out.line_flushed(line)?;
            }
        }
    }
    Ok(())
}
