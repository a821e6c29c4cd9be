//! celer: one ordinary-looking Rust program that uses every GPU of a cluster.
//!
//! ```
//! use celer::{access, kernels, task, Kernel, Queue};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! celer::logging::init(); // celer's rank-prefixed logger (optional)
//! // `Queue::new()` starts MPI and the GPU (under `mpirun`, on every rank); a dry run records and simulates one
//! // rank without either, so this example runs anywhere.
//! let q = Queue::dry_run();
//! let a = q.buffer_from(&[1.0f32; 256], [256]).named("a");
//! let b = q.buffer::<f32, 1>([256]).named("b");
//! let heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
//! // One stencil step: each chunk reads its cells and one neighbour on each side, writes its own cells.
//! q.submit(
//!     task::parallel_for(&heat, [256])
//!         .read(&a, access::neighborhood([1]))
//!         .discard_write(&b, access::one_to_one())
//!         .scalar_f32(0.1),
//! )?;
//! // On a real queue, `q.fence(&b)?.wait()?` returns b's 256 values on every rank.
//! assert!(q.task_graph_dot().contains("heat_1d"));
//! # Ok(()) }
//! ```
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
//!   `celer-exec`. What programs use is exported here; those layers are reachable under [`unstable`], for tools and
//!   benchmarks, outside semver.
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
//! A custom mapper onto a 1D buffer returning a 2D region:
//! ```compile_fail
//! use celer::{access, task, GridBox, Kernel, Queue, Region};
//! let q = Queue::dry_run();
//! let v = q.buffer::<f32, 1>([8]);
//! let flat = access::custom("flat", |chunk: &GridBox<1>, _| Region::from(GridBox::new([0, 0], [chunk.max()[0], 1])));
//! let _ = q.submit(task::parallel_for(&Kernel::named("k"), [8]).read(&v, flat));
//! ```
//! A host task reading a buffer's bytes as references or `bool`s (not plain old data, see [`Element`]):
//! ```compile_fail
//! fn cells(ctx: &celer::HostContext<1>) -> &[&'static u64] {
//!     ctx.data::<&'static u64>(0)
//! }
//! ```
//! ```compile_fail
//! fn flags(ctx: &celer::HostContext<1>) -> &[bool] {
//!     ctx.data::<bool>(0)
//! }
//! ```
//! (Reading them as a plain-old-data type compiles: `ctx.data::<u64>(0)`.)
//! ```
//! fn cells(ctx: &celer::HostContext<1>) -> &[u64] {
//!     ctx.data::<u64>(0)
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod access;
mod binding;
mod builder;
mod checks;
pub mod geometry;
mod host;
mod identity;
mod intern;
pub mod logging;
mod queue;
mod task_builder;

pub use builder::QueueBuilder;
/// What [`QueueBuilder::uninitialized_reads`] takes.
pub use celer_scheduler::graph::ErrorPolicy;
pub use celer_scheduler::graph::{ReductionOp, TaskError, TaskErrorKind, TaskId};
pub use celer_scheduler::{ConfigError, Pinning, StartError};
pub use geometry::{GridBox, Region};
pub use queue::{
    task, Buffer, CollectiveGroup, Element, Error, Fence, HostObject, Kernel, Queue, Reducible, Scalar, ScalarValue,
    TaskBuilder,
};

pub use celer_scheduler::runtime::RankStats;
/// What [`Queue::device_limits`] gives: the least limits of every rank's devices, agreed at start-up.
pub use celer_scheduler::startup::Capabilities as DeviceLimits;
pub use host::HostContext;

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
///
/// The code it includes has no `unsafe` of its own, so it works in a `#![forbid(unsafe_code)]` crate. Without a
/// build script it fails to compile with a message saying what to add.
#[macro_export]
macro_rules! include_kernels {
    () => {
        include!(concat!(
            env!(
                "OUT_DIR",
                "celer::include_kernels!() needs a build script: add `celer-kernel-build` to [build-dependencies] and \
                 a build.rs calling `celer_kernel_build::compile_dir(\"kernels\")` (see the guide, \"Use celer in \
                 your project\")"
            ),
            "/celer_kernels.rs"
        ));
    };
}

/// The layers under the facade, for tools, benchmarks and tests: **not a stable API** (they change with celer's
/// internals, outside semver). Programs need none of it.
pub mod unstable {
    /// The scheduler layer: command generation, simulation of many ranks, the runtime loop, configuration.
    pub use celer_scheduler as scheduler;
    /// The backends: MPI, Vulkan, transfers.
    pub use celer_scheduler::exec;
    /// The graph layer: geometry, task and command graphs, benchmark workloads.
    pub use celer_scheduler::graph;
}
