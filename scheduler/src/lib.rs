//! celer's per-rank scheduler: turns the task graph into this rank's commands and drives the executors.
//!
//! Placeholder until command generation lands (issue 4); it only re-exports the graph layer.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub use celer_graph as graph;

pub mod cdag;
pub mod check;
pub mod sim;
pub mod split;

pub use cdag::{CdagConfig, CommandGraphGenerator};
pub use sim::Simulation;
