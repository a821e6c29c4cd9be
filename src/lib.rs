//! celer: one ordinary-looking Rust program that uses every GPU of a cluster.
//!
//! The program runs SPMD (the same binary on every MPI rank, or alone as one rank). It creates typed [`Buffer`]s and
//! submits tasks through a [`Queue`]; a submission only *records* the kernel, its index space and, per buffer, an
//! access mode and a range mapper ([`access`]). celer derives the dependencies, splits tasks across ranks and
//! devices and moves the data each chunk needs.
//!
//! - Misuse the types can see does not compile: buffers borrow their queue, range mappers are typed by the
//!   dimensionality of the kernel and the buffer ([`access::Mapper`]).
//! - The rest is a [`TaskError`] naming the task, buffer and region at fault.
//! - This crate is a small facade: the graphs live in `celer-graph`, scheduling in `celer-scheduler`, backends in
//!   `celer-exec`.
//!
//! # Misuse that does not compile
//! A one-to-one mapper between a 1D kernel and a 2D buffer:
//! ```compile_fail
//! use celer::{access, task, Kernel, Queue};
//! let q = Queue::dry_run();
//! let grid = q.buffer::<f32, 2>([8, 8]);
//! let _ = q.submit(task::parallel_for(&Kernel::named("k"), [64]).read(&grid, access::one_to_one()));
//! ```
//! A buffer used after its queue (the runtime) is gone:
//! ```compile_fail
//! use celer::Queue;
//! let buf = {
//!     let q = Queue::dry_run();
//!     q.buffer::<f32, 1>([8])
//! };
//! ```
//! Transposing a 1D buffer:
//! ```compile_fail
//! use celer::{access, task, Kernel, Queue};
//! let q = Queue::dry_run();
//! let v = q.buffer::<f32, 1>([8]);
//! let _ = q.submit(task::parallel_for(&Kernel::named("k"), [8]).read(&v, access::transposed()));
//! ```
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod access;
mod binding;
mod queue;

pub use celer_scheduler::graph::{ReductionOp, TaskError, TaskErrorKind, TaskId};
pub use queue::{
    task, Buffer, CollectiveGroup, Element, Error, Fence, HostObject, Kernel, Queue, QueueConfig, Reducible, Scalar,
    TaskBuilder,
};

/// What a host task's closure sees: its chunk and its accessors' cells.
pub use celer_scheduler::runtime::{HostContext, RankStats};

/// The kernels compiled into celer (WGSL from `exec/shaders/`, compiled to SPIR-V at build time).
pub use celer_scheduler::exec::shaders as kernels;

/// Declares the kernels a program's build script compiled with `celer_kernel_build::compile_dir`: one
/// [`kernels::KernelSource`] constant per WGSL file, named after it in capitals (`heat.wgsl` → `HEAT`), for
/// [`Kernel::wgsl`].
///
/// ```ignore
/// mod my_kernels {
///     celer::include_kernels!();
/// }
/// let heat = celer::Kernel::wgsl(&my_kernels::HEAT, "main")?;
/// ```
#[macro_export]
macro_rules! include_kernels {
    () => {
        include!(concat!(env!("OUT_DIR"), "/celer_kernels.rs"));
    };
}

/// The scheduler layer (command generation, simulation of many ranks), for tools and benchmarks.
pub use celer_scheduler as scheduler;
/// The graph layer, for tools and tests that need more than the facade.
pub use celer_scheduler::graph;

/// Compiles every Rust block of `docs/GUIDE.md` as a doctest, so the guide cannot drift from the API.
#[doc = include_str!("../docs/GUIDE.md")]
#[cfg(doctest)]
pub struct GuideDoctests;
