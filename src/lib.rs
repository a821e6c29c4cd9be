//! celer: one ordinary-looking Rust program that uses every GPU of a cluster.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub use celer_scheduler as scheduler;
