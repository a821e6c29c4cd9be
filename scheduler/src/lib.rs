//! celer's per-rank scheduler: turns the task graph into this rank's commands and drives the executors.
//!
//! - [`split`]: chunk grids (1D or near-square 2D, granularity, never empty), searched by arithmetic on their cuts.
//! - [`blocks`]: the fixed combining tree of deterministic reductions (what each rank sends, how readers combine).
//! - [`cdag`]: the command-graph generator, one per rank, with no communication between ranks.
//! - [`sim`]: many ranks' generators in one process, for tests and benchmarks at any rank count.
//! - [`check`]: the symbolic executor that checks simulated ranks against the one-rank run.
//! - [`config`]: the `CELER_*` environment variables, parsed and validated in one place.
//! - [`divergence`]: the running hash of the task stream that ranks compare at horizons and epochs.
//! - [`logging`]: the `log` logger that prefixes every line with the rank.
//! - [`overlap`]: the interior of a chunk, which a kernel can run before the data it awaits arrives.
//! - [`startup`]: start-up errors, and the agreement of every rank on whether all started.
//! - [`runtime`]: the runtime thread and the loop that runs a rank's commands on the GPU and MPI.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub use celer_exec as exec;
pub use celer_graph as graph;

pub mod blocks;
pub mod cdag;
pub mod check;
pub mod config;
pub mod divergence;
pub mod logging;
pub mod overlap;
pub mod runtime;
pub mod sim;
pub mod split;
pub mod startup;
pub mod trace;

pub use cdag::{CdagConfig, CommandGraphGenerator};
pub use config::{ConfigError, Pinning, RuntimeConfig};
pub use sim::Simulation;
pub use startup::StartError;
