//! celer's backends: Vulkan device, MPI communicator, host-task worker. They know nothing of graphs.
//!
//! - [`mpi`]: a minimal communicator over `mpi-sys`; non-blocking byte messages, completion by
//!   polling `MPI_Test`.
//! - [`transfer`]: the transfer engine behind push and await-push: boxes of buffer cells
//!   announced by headers, payloads on their own tags, all requests polled with `MPI_Testsome`.
//! - [`vulkan`]: one Vulkan compute device over vulkano; kernels, storage buffers, and dispatches
//!   whose completion is found by polling a fence.
//! - [`gpu`]: the GPU side of the executor: device allocations holding boxes of buffers, staged
//!   box copies, kernel dispatches in buffer coordinates, batches completed by polling one
//!   timeline semaphore.
//! - [`shaders`]: the WGSL kernels of `exec/shaders/`, compiled to SPIR-V by naga at build time.
//!
//! Nothing here blocks on a completion: the scheduler's loop thread polls MPI requests and Vulkan
//! fences side by side.
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod gpu;
pub mod mpi;
pub mod shaders;
pub mod transfer;
pub mod vulkan;
