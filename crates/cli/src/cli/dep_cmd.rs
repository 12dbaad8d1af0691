//! `maos-coord dep ...`: dependencies between tasks: add, mark ready, chain.

use clap::Subcommand;
use maos_coord::model::{ArtifactType, DependencyId, TaskId};
use serde_json::json;

use super::{runtime, view, Failure, Global, Out};

#[derive(Subcommand)]
pub enum DepCommand {
    /// CONSUMER needs an artifact of PROVIDER; prints the dependency's id (PROVIDER->CONSUMER).
    /// A cycle is refused (exit code 1).
    Add {
        /// The task that delivers.
        provider: String,
        /// The task that waits.
        consumer: String,
        /// What is delivered: completion (the provider finishing), file, context, or another
        /// name.
        #[arg(long, value_name = "T", default_value = "completion")]
        artifact_type: String,
    },
    /// Mark a dependency ready, with where its artifact is.
    Ready {
        /// The dependency's id (PROVIDER->CONSUMER).
        dep_id: String,
        /// Where the artifact is.
        #[arg(long, value_name = "P")]
        artifact_path: Option<String>,
    },
    /// Mark every dependency a task provides ready, in one atomic command (those ready already
    /// are left as they are); prints the ids it marked.
    ReadyAll {
        /// The providing task.
        provider: String,
        /// Where the artifact is.
        #[arg(long, value_name = "P")]
        artifact_path: Option<String>,
    },
    /// Every dependency a task waits on, directly or through others, nearest first.
    Chain {
        /// The task.
        task: String,
    },
}

pub fn run(cmd: DepCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    match cmd {
        DepCommand::Add { provider, consumer, artifact_type } => {
            let (provider, consumer) = (TaskId::new(provider)?, TaskId::new(consumer)?);
            let artifact = match artifact_type.as_str() {
                "completion" => ArtifactType::Completion,
                "file" => ArtifactType::File,
                "context" => ArtifactType::Context,
                _ => ArtifactType::Other(artifact_type),
            };
            let agent = g.agent("dep add")?;
            let c = g.open()?;
            let id = runtime()?.block_on(c.register_dependency(&agent, &provider, &consumer, artifact))?;
            if g.json() {
                let dep = c.get_dependency(&id)?;
                out.line(dep.as_ref().map_or_else(|| json!({"id": id.as_str()}), view::dependency))?;
            } else {
                out.line(id)?;
            }
        }
        DepCommand::Ready { dep_id, artifact_path } => {
            let id = DependencyId::new(dep_id)?;
            let agent = g.agent("dep ready")?;
            let c = g.open()?;
            runtime()?.block_on(c.mark_dependency_ready(&agent, &id, artifact_path))?;
            if g.json() {
                let dep = c.get_dependency(&id)?;
                out.line(dep.as_ref().map_or_else(|| json!({"id": id.as_str()}), view::dependency))?;
            } else {
                out.line(format_args!("dependency {id} is ready"))?;
            }
        }
        DepCommand::ReadyAll { provider, artifact_path } => {
            let provider = TaskId::new(provider)?;
            let agent = g.agent("dep ready-all")?;
            let c = g.open()?;
            let marked = runtime()?.block_on(c.mark_provider_ready(&agent, &provider, artifact_path))?;
            let ids: Vec<&str> = marked.iter().map(DependencyId::as_str).collect();
            if g.json() {
                out.line(json!({"provider": provider.as_str(), "marked": ids}))?;
            } else if ids.is_empty() {
                out.line(format_args!("no dependency of {provider} to mark: none, or all ready or failed"))?;
            } else {
                for id in ids {
                    out.line(format_args!("dependency {id} is ready"))?;
                }
            }
        }
        DepCommand::Chain { task } => {
            let task = TaskId::new(task)?;
            let chain = g.open()?.get_dependency_chain(&task)?;
            if g.json() {
                let deps: Vec<_> = chain.iter().map(view::dependency).collect();
                out.line(json!({"task": task.as_str(), "dependencies": deps}))?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = chain
                .iter()
                .map(|d| {
                    let v = view::dependency(d);
                    vec![
                        d.provider.to_string(),
                        d.consumer.to_string(),
                        view::artifact(&d.artifact_type).to_owned(),
                        v["status"].as_str().unwrap_or_default().to_owned(),
                    ]
                })
                .collect();
            for line in view::table(&["PROVIDER", "CONSUMER", "ARTIFACT", "STATUS"], &rows) {
                out.line(line)?;
            }
        }
    }
    Ok(())
}
