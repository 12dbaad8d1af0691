//! The dependency graph (petgraph): an edge runs from provider task to consumer task.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::algo::has_path_connecting;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::Direction;

use crate::model::{Dependency, DependencyId, DependencyStatus, Event, TaskId, TaskStatus};

/// Dependencies by id, and the graph they form.
#[derive(Debug, Clone, Default)]
pub struct DependencyGraph {
    graph: StableDiGraph<TaskId, DependencyId>,
    nodes: BTreeMap<TaskId, NodeIndex>,
    deps: BTreeMap<DependencyId, Dependency>,
}

impl PartialEq for DependencyGraph {
    /// The graph is derived from the dependencies; equal dependencies make equal graphs.
    fn eq(&self, other: &DependencyGraph) -> bool {
        self.deps == other.deps
    }
}

impl DependencyGraph {
    /// A dependency by id.
    #[must_use]
    pub fn get(&self, id: &DependencyId) -> Option<&Dependency> {
        self.deps.get(id)
    }

    /// Whether a dependency of `consumer` on `provider` would close a cycle.
    #[must_use]
    pub fn would_cycle(&self, provider: &TaskId, consumer: &TaskId) -> bool {
        if provider == consumer {
            return true;
        }
        match (self.nodes.get(consumer), self.nodes.get(provider)) {
            (Some(&from), Some(&to)) => has_path_connecting(&self.graph, from, to, None),
            _ => false,
        }
    }

    /// The tasks of a shortest chain from `from` to `to` along dependencies (each task in it
    /// delivers to the next), both included; empty if there is none.
    #[must_use]
    pub fn chain_between(&self, from: &TaskId, to: &TaskId) -> Vec<TaskId> {
        let (Some(&start), Some(&end)) = (self.nodes.get(from), self.nodes.get(to)) else {
            return Vec::new();
        };
        let mut came_from = BTreeMap::from([(start, start)]);
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            if node == end {
                let mut chain = vec![node];
                let mut at = node;
                while let Some(&before) = came_from.get(&at).filter(|_| at != start) {
                    at = before;
                    chain.push(at);
                }
                chain.reverse();
                return chain.into_iter().filter_map(|n| self.graph.node_weight(n).cloned()).collect();
            }
            for next in self.graph.neighbors_directed(node, Direction::Outgoing) {
                if let std::collections::btree_map::Entry::Vacant(slot) = came_from.entry(next) {
                    slot.insert(node);
                    queue.push_back(next);
                }
            }
        }
        Vec::new()
    }

    /// The dependencies `task` waits on.
    #[must_use]
    pub fn of_consumer(&self, task: &TaskId) -> Vec<&Dependency> {
        self.edges(task, Direction::Incoming)
    }

    /// The dependencies `task` delivers.
    #[must_use]
    pub fn of_provider(&self, task: &TaskId) -> Vec<&Dependency> {
        self.edges(task, Direction::Outgoing)
    }

    /// The dependencies of `task` that are not ready: why it cannot run yet.
    #[must_use]
    pub fn unmet(&self, task: &TaskId) -> Vec<&Dependency> {
        self.of_consumer(task).into_iter().filter(|d| d.status != DependencyStatus::Ready).collect()
    }

    /// Whether every dependency of `task` is ready.
    #[must_use]
    pub fn is_ready(&self, task: &TaskId) -> bool {
        self.unmet(task).is_empty()
    }

    /// Every dependency `task` waits on, directly or through other tasks, nearest first.
    #[must_use]
    pub fn chain(&self, task: &TaskId) -> Vec<&Dependency> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([task.clone()]);
        let mut chain = Vec::new();
        while let Some(t) = queue.pop_front() {
            for dep in self.of_consumer(&t) {
                if seen.insert(dep.id.clone()) {
                    queue.push_back(dep.provider.clone());
                    chain.push(dep);
                }
            }
        }
        chain
    }

    /// The tasks connected to `task` through dependencies, followed in either direction (its
    /// weakly connected component), `task` included: just `task` when it has none.
    #[must_use]
    pub fn connected(&self, task: &TaskId) -> BTreeSet<TaskId> {
        let mut tasks = BTreeSet::from([task.clone()]);
        let Some(&start) = self.nodes.get(task) else { return tasks };
        let mut seen = BTreeSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for next in self.graph.neighbors_undirected(node) {
                if seen.insert(next) {
                    queue.push_back(next);
                    tasks.extend(self.graph.node_weight(next).cloned());
                }
            }
        }
        tasks
    }

    /// Every dependency, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Dependency> {
        self.deps.values()
    }

    fn edges(&self, task: &TaskId, direction: Direction) -> Vec<&Dependency> {
        let Some(&node) = self.nodes.get(task) else { return Vec::new() };
        let mut deps: Vec<&Dependency> =
            self.graph.edges_directed(node, direction).filter_map(|e| self.deps.get(e.weight())).collect();
        deps.sort_by(|a, b| a.id.cmp(&b.id));
        deps
    }

    /// Every dependency, in id order (for snapshots).
    pub(super) fn to_image(&self) -> Vec<Dependency> {
        self.deps.values().cloned().collect()
    }

    pub(super) fn from_image(deps: Vec<Dependency>) -> DependencyGraph {
        let mut graph = DependencyGraph::default();
        for dependency in deps {
            graph.apply(Event::DependencyRegistered { dependency });
        }
        graph
    }

    fn node(&mut self, task: &TaskId) -> NodeIndex {
        if let Some(&n) = self.nodes.get(task) {
            return n;
        }
        let n = self.graph.add_node(task.clone());
        self.nodes.insert(task.clone(), n);
        n
    }

    /// The dependencies `provider` delivers follow its new status `status` (those marked ready
    /// by hand and those already failed stay as they are).
    pub(super) fn follow_provider(&mut self, provider: &TaskId, status: &TaskStatus) {
        let next = DependencyStatus::following(provider, status);
        let ids: Vec<DependencyId> = self
            .of_provider(provider)
            .iter()
            .filter(|d| !d.status.is_settled() && d.status != next)
            .map(|d| d.id.clone())
            .collect();
        for id in ids {
            if let Some(d) = self.deps.get_mut(&id) {
                d.status = next.clone();
            }
        }
    }

    pub(super) fn apply(&mut self, event: Event) {
        match event {
            Event::DependencyRegistered { dependency } => {
                let from = self.node(&dependency.provider);
                let to = self.node(&dependency.consumer);
                self.graph.add_edge(from, to, dependency.id.clone());
                self.deps.insert(dependency.id.clone(), dependency);
            }
            Event::DependencyReady { dependency, artifact_path } => {
                if let Some(d) = self.deps.get_mut(&dependency) {
                    d.status = DependencyStatus::Ready;
                    if artifact_path.is_some() {
                        d.artifact_path = artifact_path;
                    }
                }
            }
            Event::DependencyFailed { dependency, reason } => {
                if let Some(d) = self.deps.get_mut(&dependency) {
                    d.status = DependencyStatus::Failed(reason);
                }
            }
            _ => {}
        }
    }
}
