//! `maos-coord pipeline ...`: stages of tasks run in order.

use clap::Subcommand;
use maos_coord::coordinator::PipelineStage;
use maos_coord::NewTask;
use serde_json::json;

use super::{runtime, view, Failure, Global, Out};

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Create a pipeline: stages in order, each a list of new tasks; every task of a stage
    /// depends on every task of the stage before. Prints the tasks' ids, stage by stage. The
    /// same stages again append nothing; other stages are exit code 4.
    Create {
        /// The pipeline's name.
        name: String,
        /// A stage, in order (repeatable): STAGE=TASK[:CAPABILITY][,TASK[:CAPABILITY]]...; each
        /// TASK is a new task's name, CAPABILITY what an agent needs to claim it.
        #[arg(long = "stage", value_name = "STAGE=TASKS", required = true, value_parser = stage)]
        stages: Vec<PipelineStage>,
    },
    /// Where a pipeline stands: its status, its stages and their tasks, its outputs.
    Status {
        /// The pipeline's name.
        name: String,
    },
}

/// `STAGE=TASK[:CAPABILITY][,TASK[:CAPABILITY]]...`.
fn stage(text: &str) -> Result<PipelineStage, String> {
    let expected = || format!("{text:?} is not STAGE=TASK[:CAPABILITY][,TASK[:CAPABILITY]]...");
    let (name, tasks) = text.split_once('=').ok_or_else(expected)?;
    if name.is_empty() || tasks.is_empty() {
        return Err(expected());
    }
    let tasks = tasks
        .split(',')
        .map(|task| match task.split_once(':') {
            Some((task, capability)) if !task.is_empty() && !capability.is_empty() => {
                Ok(NewTask::new(task).requires(capability))
            }
            None if !task.is_empty() => Ok(NewTask::new(task)),
            _ => Err(expected()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PipelineStage { name: name.to_owned(), tasks })
}

pub fn run(cmd: PipelineCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    match cmd {
        PipelineCommand::Create { name, stages } => {
            let agent = g.agent("pipeline create")?;
            let c = g.open()?;
            let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
            let ids = runtime()?.block_on(c.create_pipeline(&agent, &name, stages))?;
            if g.json() {
                let stages: Vec<_> = names
                    .iter()
                    .zip(&ids)
                    .map(|(stage, ids)| {
                        json!({"name": stage, "tasks": ids.iter().map(|t| t.as_str()).collect::<Vec<_>>()})
                    })
                    .collect();
                out.line(json!({"pipeline": name, "stages": stages}))?;
                return Ok(());
            }
            for (stage, ids) in names.iter().zip(&ids) {
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                out.line(format_args!("{stage}\t{}", ids.join(" ")))?;
            }
        }
        PipelineCommand::Status { name } => {
            let status = g.open()?.pipeline_status(&name)?;
            if g.json() {
                out.line(view::pipeline(&name, &status))?;
                return Ok(());
            }
            let (state, reason) = view::status(&status.status);
            let reason = reason.map_or_else(String::new, |r| format!(" ({r})"));
            out.line(format_args!("pipeline {name}: {state}{reason}"))?;
            let mut rows = Vec::new();
            for (stage, tasks) in &status.stages {
                for task in tasks {
                    let mut row = vec![stage.clone()];
                    row.extend(view::task_row(task));
                    rows.push(row);
                }
            }
            let mut header = vec!["STAGE"];
            header.extend(view::TASK_HEADER);
            for line in view::table(&header, &rows) {
                out.line(line)?;
            }
            if !status.outputs.is_empty() {
                out.line(format_args!("outputs: {}", status.outputs.join(", ")))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_or_say_what_they_expected() {
        let s = stage("build=api:rust,ui").unwrap();
        assert_eq!(s.name, "build");
        assert_eq!(s.tasks.len(), 2);
        assert_eq!(
            (s.tasks[0].name.as_str(), &s.tasks[0].required_capabilities[..]),
            ("api", &["rust".to_owned()][..])
        );
        assert!(s.tasks[1].required_capabilities.is_empty());
        for bad in ["build", "=a", "b=", "b=a,", "b=:rust", "b=a:"] {
            assert!(stage(bad).unwrap_err().contains("STAGE=TASK"), "{bad}");
        }
    }
}
