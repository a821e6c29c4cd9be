//! The GPU side of the executor: device allocations holding boxes of buffers, staged box copies,
//! kernel dispatches in buffer coordinates, and batched submission whose completion is polled,
//! never waited for. Single-threaded: one [`Gpu`] lives on the executor's loop thread.
//!
//! - **Batches, not round trips.** A [`Batch`] records any number of uploads, downloads,
//!   device→device copies and dispatches into one command buffer; [`Batch::submit`] hands it to
//!   the queue and returns a [`BatchId`] at once. Several batches may be in flight.
//! - **One counter to poll.** Each submission signals a Vulkan 1.2 timeline semaphore with its
//!   [`BatchId`]; [`Gpu::poll`] reads the counter once (`vkGetSemaphoreCounterValue`) and reports
//!   every batch up to it as complete. Devices without timeline semaphores fall back to one
//!   pooled fence per batch, polled oldest first ([`CompletionMode`]).
//! - **Barriers are derived, per allocation.** Within a batch, an operation that touches an
//!   allocation another operation since the last barrier has written, or writes one that it has
//!   read, gets a global memory barrier (compute and transfer stages) before it; independent
//!   operations run without one. [`Batch::barrier`] forces one. Every batch starts with such a
//!   barrier, which orders it after everything submitted before on the queue, so batches in
//!   flight may depend on each other. Granularity is the whole allocation: two kernels writing
//!   disjoint halves of one allocation are serialised. TODO(perf): track boxes if that shows.
//! - **Lifetimes are this module's job.** Recording and submission call Vulkan directly (vulkano's
//!   raw `Device::fns()`), not vulkano's `AutoCommandBufferBuilder` and futures, which track and
//!   lock every resource per command and allocate per submission: a batch instead holds clones of
//!   everything it uses until `poll` sees it complete. Objects are still created through
//!   vulkano's safe API.
//! - **Everything is reused.** Pipelines are cached per (kernel, entry point), descriptor sets per
//!   list of bound allocations, staging buffers in a pool of power-of-two size classes, command
//!   buffers by vulkano's allocator. Within a batch, a pipeline or descriptor set already bound
//!   is not bound again.
//! - **Errors name the culprit.** A dispatch whose accessors do not match the kernel's bindings,
//!   whose push constants exceed the device limit, or whose boxes overflow the kernel's `u32`
//!   coordinates is refused before anything is recorded, with the kernel's name in the error;
//!   failed allocations name the size requested.
//!
//! Nothing here blocks, except dropping a [`Gpu`] with batches in flight (it waits for the
//! queue to go idle, since their resources are about to be destroyed).
//!
//! # Binding convention
//!
//! A kernel file (`exec/shaders/*.wgsl`) declares one `var<storage>` array per accessor, in
//! declaration order: accessor `i` of [`Batch::dispatch`] binds to `@group(0) @binding(i)`, the
//! whole allocation, whose cells are the allocation's box in row-major order (dimension 0
//! slowest). The number of accessors must equal the number of bindings the file declares in
//! `@group(0)` (1 + the highest binding number; [`KernelSource::group0_bindings`]), used or not.
//! A kernel's checked variant ([`Gpu::load_kernel_checked`], [`Batch::dispatch_checked`]) binds one more
//! storage buffer after the accessors, its bounds record ([`bounds_record_init`], [`read_bounds_record`]).
//!
//! # Push-constant layout
//!
//! Push constants (`var<immediate>` in WGSL) hold, in order, as 4-byte words
//! ([`push_constant_bytes`] counts them):
//!
//! | words | what |
//! |---|---|
//! | 0..3 | the chunk's offset (first cell) in buffer coordinates, dimensions 0, 1, 2 |
//! | 3..6 | the chunk's range (extent) |
//! | 6 + 6i .. 9 + 6i | accessor `i`'s allocation: offset of its box in buffer coordinates |
//! | 9 + 6i .. 12 + 6i | accessor `i`'s allocation: range of its box |
//! | 6 + 6n .. | the dispatch's scalars (`u32` words; pass `f32` as `f32::to_bits`) |
//!
//! The total must fit the device's `maxPushConstantsSize` (Vulkan guarantees 128 bytes, which is
//! what lavapipe offers; NVIDIA offers 256), which bounds accessors and scalars: 128 bytes allow 4
//! accessors and 2 scalars, 256 bytes 9 and 4. A kernel may declare fewer words than the dispatch
//! pushes (e.g. no scalars), never more. TODO: kernels with more accessors than fit need their
//! boxes in a small uniform buffer instead; none does yet.
//!
//! # WGSL prelude
//!
//! `celer-kernel-build` appends its `wgsl/prelude.wgsl` to every kernel. It defines `CelerBox`
//! (the six words of one box) and helpers so kernels index buffers in global coordinates:
//! `celer_item_1d/2d/3d(chunk, gid)` (the buffer cell of an invocation: `gid.x` runs along the
//! fastest dimension, see [`Launch`]), `celer_contains(box, item)` and `celer_index(alloc, item)`
//! (the index of a buffer cell in an accessor's array). A 2D kernel:
//!
//! ```wgsl
//! struct Params { chunk: CelerBox, src: CelerBox, dst: CelerBox, scale: f32 }
//! @group(0) @binding(0) var<storage, read> src: array<f32>;
//! @group(0) @binding(1) var<storage, read_write> dst: array<f32>;
//! var<immediate> pc: Params;
//!
//! @compute @workgroup_size(8, 8)
//! fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
//!     let item = celer_item_2d(pc.chunk, gid);
//!     if (!celer_contains(pc.chunk, item)) { return; }
//!     dst[celer_index(pc.dst, item)] = pc.scale * src[celer_index(pc.src, item)];
//! }
//! ```
//!
//! # Implementation notes
//!
//! | celer | Vulkan |
//! |---|---|
//! | [`DeviceAllocation`] | a `VkBuffer` in device-local memory (vulkano's `StandardMemoryAllocator`) |
//! | staging pool | host-visible `VkBuffer`s, cached memory where available |
//! | [`Batch::upload`] | host `memcpy` per contiguous run into staging, then `vkCmdCopyBuffer` with one region per run in the allocation ([`copy_runs`]); a box of more than 16 runs (a column, a 3D face) is scattered by one dispatch of `shaders/pack.wgsl` instead |
//! | [`Batch::download`] | `vkCmdCopyBuffer` into staging (or, for a box of many runs, one dispatch of `pack.wgsl` that gathers it), then a barrier to host reads; [`Gpu::read_download`] copies out after completion |
//! | [`Batch::dispatch`] | `vkCmdBindPipeline` / `vkCmdBindDescriptorSets` (when changed), `vkCmdPushConstants`, `vkCmdDispatch` |
//! | hazards | `vkCmdPipelineBarrier` with one global `VkMemoryBarrier` |
//! | [`Batch::submit`] | `vkQueueSubmit` signalling the timeline semaphore to the batch id (or a fence) |
//! | [`Gpu::poll`] | `vkGetSemaphoreCounterValue` once (or `vkGetFenceStatus` per batch) |
//!
//! # Examples
//!
//! ```no_run
//! use celer_exec::gpu::{Access, Box3, Gpu, Launch};
//! use celer_exec::shaders;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut gpu = Gpu::new()?;
//! let add = gpu.load_kernel(&shaders::GPU_ADD, "main")?;
//! // Cells 100..164 of a 1D buffer of u32.
//! let bounds = Box3::d1(100, 164);
//! let data = gpu.allocate(bounds, 4)?;
//! let host: Vec<u8> = (0..64u32).flat_map(|v| v.to_le_bytes()).collect();
//!
//! let mut batch = gpu.batch()?;
//! batch.upload(&data, bounds, &host, bounds)?;
//! batch.dispatch(add, Launch::d1(110, 120), &[Access::read_write(&data)], &[1000])?;
//! let download = batch.download(&data, bounds)?;
//! let id = batch.submit()?;
//!
//! let mut completed = Vec::new();
//! while !gpu.is_complete(id) {
//!     gpu.poll(&mut completed)?; // the executor's loop does other work between polls
//! }
//! let mut out = vec![0u8; host.len()];
//! gpu.read_download(download, &mut out, bounds)?;
//! assert_eq!(out[40..44], 1010u32.to_le_bytes()); // cell 110 was 10
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use vulkano::command_buffer::allocator::StandardCommandBufferAllocator;
use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::device::QueueCreateInfo;
use vulkano::device::{Device as VkDevice, DeviceCreateInfo, DeviceExtensions, DeviceFeatures, Queue};
use vulkano::memory::allocator::StandardMemoryAllocator;
use vulkano::sync::semaphore::{Semaphore, SemaphoreCreateInfo, SemaphoreType};
use vulkano::Version;

use crate::shaders::KernelSource;
use crate::vulkan::{Describe, DeviceError, DeviceInfo};

mod batch;
mod geometry;
mod kernel;
mod memory;

pub use batch::{Batch, OpKind, OpTime};
pub use geometry::{copy_runs, Box3, CopyRun};
pub use kernel::{
    bounds_record_init, bounds_record_words, push_constant_bytes, read_bounds_record, Access, AccessMode, BoundsReport,
    KernelId, Launch, ACCESSOR_WORDS, CHUNK_WORDS,
};
pub use memory::{AllocationId, DeviceAllocation};

use batch::InFlight;
use kernel::{KernelEntry, LayoutPair};
use memory::StagingPool;

/// Descriptor sets cached before the cache drops the entries that name dropped allocations.
/// TODO(perf): a few per allocation pair is typical; measure on the executor's workloads.
const SET_CACHE_LIMIT: usize = 4096;

/// An error of the GPU executor backend.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// Opening the device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A Vulkan or vulkano call failed.
    #[error("Vulkan failed while {during}: {message}")]
    Vulkan {
        /// What was being done.
        during: String,
        /// Vulkan's or vulkano's description of the failure.
        message: String,
    },
    /// Device or host memory for a buffer could not be allocated.
    #[error("Cannot allocate a {what} of {bytes} bytes: {message}")]
    AllocationFailed {
        /// `"device allocation"` or `"staging buffer"`.
        what: &'static str,
        /// The size requested.
        bytes: usize,
        /// Vulkan's or vulkano's reason.
        message: String,
    },
    /// An allocation of no bytes, or of more than `usize` can count, was requested.
    #[error("Cannot allocate box {bounds} of {elem_size}-byte cells: the size is zero or overflows")]
    BadAllocation {
        /// The box requested.
        bounds: Box3,
        /// Bytes per cell.
        elem_size: usize,
    },
    /// A copy's region does not lie inside one of its sides (boxed: the two boxes would make
    /// every `Result` of this module large).
    #[error(transparent)]
    RegionOutside(Box<RegionOutside>),
    /// A host slice is shorter than the box it is said to hold.
    #[error(
        "The host slice of a {op} holds {len} bytes, but its box {bounds} of {elem_size}-byte cells needs {needed}"
    )]
    HostSliceTooShort {
        /// `"upload"` or `"read_download"`.
        op: &'static str,
        /// The slice's length.
        len: usize,
        /// The box it is said to hold.
        bounds: Box3,
        /// Bytes per cell.
        elem_size: usize,
        /// The bytes that box needs.
        needed: usize,
    },
    /// A device copy between allocations of different cell sizes, or of an allocation onto itself.
    #[error("Cannot copy from allocation {src} ({src_elem}-byte cells) to allocation {dst} ({dst_elem}-byte cells): {reason}")]
    BadDeviceCopy {
        /// The source.
        src: AllocationId,
        /// The source's cell size.
        src_elem: usize,
        /// The destination.
        dst: AllocationId,
        /// The destination's cell size.
        dst_elem: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The kernel has no entry point of that name.
    #[error("Kernel {kernel} has no compute entry point {entry_point:?} (it has: {available})")]
    NoEntryPoint {
        /// The kernel's file stem.
        kernel: &'static str,
        /// The name asked for.
        entry_point: String,
        /// The entry points it has.
        available: String,
    },
    /// A checked kernel dispatched without a bounds record, or a plain one with one.
    #[error(
        "Kernel {kernel} is {}the checked variant, but the dispatch {} a bounds record (use {})",
        if *checked { "" } else { "not " },
        if *checked { "gives no" } else { "gives" },
        if *checked { "Batch::dispatch_checked" } else { "Gpu::load_kernel_checked" }
    )]
    CheckedMismatch {
        /// `file::entry_point`.
        kernel: String,
        /// Whether the kernel is the checked variant.
        checked: bool,
    },
    /// A bounds record too small for the dispatch's accessors, or not of 4-byte cells.
    #[error(
        "Kernel {kernel}'s bounds record holds {bytes} bytes of {elem_size}-byte cells, but {accessors} accessors \
         need {needed} bytes of 4-byte cells"
    )]
    BadBoundsRecord {
        /// `file::entry_point`.
        kernel: String,
        /// The record allocation's size.
        bytes: usize,
        /// Its cell size.
        elem_size: usize,
        /// The dispatch's accessors.
        accessors: usize,
        /// What they need ([`bounds_record_words`] * 4).
        needed: usize,
    },
    /// A [`KernelId`] from another [`Gpu`].
    #[error("Kernel id {0:?} was not loaded on this Gpu")]
    UnknownKernel(KernelId),
    /// A dispatch gave a different number of accessors than the kernel declares bindings.
    #[error(
        "Kernel {kernel} declares {declared} storage bindings in @group(0), but the dispatch gives {given} accessors"
    )]
    BindingMismatch {
        /// `file::entry_point`.
        kernel: String,
        /// Bindings the kernel's file declares in `@group(0)`.
        declared: usize,
        /// Accessors the dispatch gave.
        given: usize,
    },
    /// The push constants exceed the device's `maxPushConstantsSize`.
    #[error(
        "Kernel {kernel} needs {bytes} bytes of push constants ({detail}), more than the device's limit of {limit}"
    )]
    PushConstantsTooLarge {
        /// `file::entry_point`.
        kernel: String,
        /// The bytes needed.
        bytes: usize,
        /// `maxPushConstantsSize`.
        limit: u32,
        /// How the size comes about.
        detail: String,
    },
    /// The kernel declares more push-constant bytes than the dispatch provides.
    #[error(
        "Kernel {kernel} declares {declared} bytes of push constants, but the dispatch provides {provided} \
         (chunk, one box per accessor, {scalars} scalars): are scalars missing?"
    )]
    PushConstantsTooSmall {
        /// `file::entry_point`.
        kernel: String,
        /// The bytes its push-constant block declares.
        declared: usize,
        /// The bytes the dispatch pushes.
        provided: usize,
        /// The scalars the dispatch gave.
        scalars: usize,
    },
    /// A box of a dispatch does not fit the kernel's `u32` coordinates and indices.
    #[error("Kernel {kernel} cannot address {what}: coordinates and cell indices must fit u32")]
    CoordinateOverflow {
        /// `file::entry_point`.
        kernel: String,
        /// The box that does not fit.
        what: String,
    },
    /// An accessor's allocation exceeds `maxStorageBufferRange`.
    #[error("Kernel {kernel}'s accessor {accessor} binds {bytes} bytes, more than the device's maxStorageBufferRange of {limit}")]
    StorageBufferTooLarge {
        /// `file::entry_point`.
        kernel: String,
        /// The accessor's index.
        accessor: usize,
        /// The allocation's size.
        bytes: usize,
        /// `maxStorageBufferRange`.
        limit: u32,
    },
    /// The chunk needs more workgroups than the device can launch.
    #[error("Kernel {kernel} needs {groups:?} workgroups, more than the device's limit of {limit:?}")]
    TooManyWorkgroups {
        /// `file::entry_point`.
        kernel: String,
        /// The workgroup counts needed (x, y, z).
        groups: [u64; 3],
        /// `maxComputeWorkGroupCount`.
        limit: [u32; 3],
    },
    /// [`Gpu::read_download`] before the download's batch completed.
    #[error("Download {0:?} is not ready: its batch has not been seen complete by Gpu::poll")]
    DownloadNotReady(DownloadId),
    /// [`Gpu::read_download`] of an id that was already read, discarded, or never issued here.
    #[error("Download {0:?} is unknown: already read or discarded, or from another Gpu")]
    UnknownDownload(DownloadId),
    /// The device was lost (`VK_ERROR_DEVICE_LOST`): a kernel faulted or ran into a driver timeout, the driver
    /// reset the GPU, or [`GpuOptions::lose_device_at_poll`] simulated it. Every batch in flight is lost.
    #[error(
        "The Vulkan device was lost (VK_ERROR_DEVICE_LOST{}) on {device} with batch(es) {} in flight; their work \
         did not complete",
        if *injected { ", injected for testing by CELER_INJECT_FAULT" } else { "" },
        batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
    )]
    DeviceLost {
        /// The device, as [`DeviceInfo`] prints it.
        device: String,
        /// The batches in flight, oldest first.
        batches: Vec<BatchId>,
        /// Whether [`GpuOptions::lose_device_at_poll`] made it up.
        injected: bool,
    },
    /// [`Gpu::poll_until_complete`] gave up.
    #[error("Batch {id} did not complete within {timeout:?}")]
    Timeout {
        /// The batch waited for.
        id: BatchId,
        /// How long it waited.
        timeout: Duration,
    },
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The details of [`GpuError::RegionOutside`]: a copy's region does not lie inside one of its
/// sides.
#[derive(thiserror::Error)]
#[error("The region {region} of a {op} is not inside the {side}'s box {bounds}")]
pub struct RegionOutside {
    /// `"upload"`, `"download"`, `"device copy"` or `"read_download"`.
    pub op: &'static str,
    /// Which side, e.g. `"allocation A3"` or `"host slice"`.
    pub side: String,
    /// The region to copy.
    pub region: Box3,
    /// The side's box.
    pub bounds: Box3,
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for RegionOutside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// `map_err` helper: turns a vulkano error into [`GpuError::Vulkan`] saying what was being done.
fn during<E: Describe>(what: impl Into<String>) -> impl FnOnce(E) -> GpuError {
    move |e| GpuError::Vulkan { during: what.into(), message: e.describe() }
}

/// The device limits dispatches are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuLimits {
    /// `maxPushConstantsSize`: bytes of push constants (at least 128).
    pub max_push_constant_bytes: u32,
    /// `maxComputeWorkGroupCount`: workgroups per dispatch along x, y, z.
    pub max_workgroup_count: [u32; 3],
    /// `maxStorageBufferRange`: the largest allocation an accessor can bind, in bytes.
    pub max_storage_buffer_range: u32,
}

/// How [`Gpu::poll`] learns that batches completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionMode {
    /// One timeline semaphore for the queue, signalled to each batch's id (Vulkan 1.2 or
    /// `VK_KHR_timeline_semaphore`); a poll reads one counter.
    Timeline,
    /// One fence per batch from vulkano's fence pool; a poll reads the fences of the batches in
    /// flight, oldest first, until one is unsignalled.
    Fences,
}

/// Options for [`Gpu::with_options`].
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use [`CompletionMode::Fences`] even where timeline semaphores exist (to test the
    /// fallback, or to compare costs).
    pub force_fences: bool,
    /// Which of this rank's devices to open, and how many the rank drives (`(0, 1)` when both are 0): with
    /// `CELER_DEVICE=i` the device `i + k`, else the `(local rank × n + k)`-th device of the preferred kind (modulo
    /// their number).
    pub device_of_rank: (usize, usize),
    /// Fault injection, for testing how failures surface: the `n`-th [`Gpu::poll`] with batches in flight (and
    /// every later one) fails with [`GpuError::DeviceLost`] as if the device had been lost, whatever the device did.
    pub lose_device_at_poll: Option<u64>,
}

/// A submitted batch, numbered from 1 in submission order on its [`Gpu`]; a batch's id is the
/// value its submission signals on the timeline semaphore. Prints as `G3`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "G{}", self.0)
    }
}

impl fmt::Debug for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A download recorded by [`Batch::download`]; read it with [`Gpu::read_download`] once its
/// batch completed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DownloadId(u64);

/// A download whose batch completed: the packed cells of `region` in a staging buffer.
struct ReadyDownload {
    staging: vulkano::buffer::Subbuffer<[u8]>,
    region: Box3,
    elem_size: usize,
}

/// A descriptor set in the cache, with the liveness tokens of the allocations it binds.
struct CachedSet {
    set: Arc<DescriptorSet>,
    alive: Vec<Weak<()>>,
}

/// Serial numbers of [`Gpu`]s, so a [`KernelId`] cannot be used on another one.
static NEXT_GPU: AtomicU32 = AtomicU32::new(0);

/// The GPU executor backend for one Vulkan device and one compute queue: allocations, kernels,
/// batches and their completion. See the [module docs](self).
pub struct Gpu {
    info: DeviceInfo,
    serial: u32,
    device: Arc<VkDevice>,
    queue: Arc<Queue>,
    memory: Arc<StandardMemoryAllocator>,
    command_buffers: Arc<StandardCommandBufferAllocator>,
    descriptor_sets: Arc<StandardDescriptorSetAllocator>,
    limits: GpuLimits,
    /// `Some` in [`CompletionMode::Timeline`].
    timeline: Option<Arc<Semaphore>>,
    kernels: Vec<KernelEntry>,
    /// `layouts[n]`: the layouts of kernels with `n` bindings.
    layouts: Vec<Option<LayoutPair>>,
    sets: HashMap<Box<[AllocationId]>, CachedSet>,
    staging: StagingPool,
    /// The id of the last batch submitted (0: none).
    last_submitted: u64,
    /// Every batch up to this id is complete and retired.
    completed_upto: u64,
    in_flight: VecDeque<InFlight>,
    /// Retired records, kept for their allocated vectors.
    spare: Vec<InFlight>,
    ready_downloads: HashMap<DownloadId, ReadyDownload>,
    next_download: u64,
    /// Scratch space reused by every dispatch and copy, so steady state allocates little.
    scratch: batch::Scratch,
    /// With [`enable_timestamps`](Self::enable_timestamps): the query pool, ns per tick, the mask of valid bits.
    timestamps: Option<Arc<vulkano::query::QueryPool>>,
    tick_ns: f64,
    tick_mask: u64,
    /// Completed batches' operation times, until [`take_timings`](Self::take_timings).
    timings: Vec<(BatchId, Vec<OpTime>)>,
    stamp_values: Vec<u64>,
    /// [`GpuOptions::lose_device_at_poll`], and the polls with batches in flight so far.
    lose_device_at_poll: Option<u64>,
    polls: u64,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu")
            .field("info", &self.info)
            .field("completion", &self.completion_mode())
            .field("limits", &self.limits)
            .field("kernels", &self.kernels)
            .field("in_flight", &self.in_flight.len())
            .field("staging", &self.staging)
            .finish_non_exhaustive()
    }
}

impl Gpu {
    /// Opens the preferred device (the choice of [`vulkan::Device::new`]: `CELER_DEVICE`, else
    /// discrete, integrated, virtual GPU, then CPU) with timeline semaphores where available.
    ///
    /// # Errors
    ///
    /// [`GpuError::Device`] without a loader or a device that can compute, or for a bad
    /// `CELER_DEVICE`; [`GpuError::Vulkan`] if creating the instance, device or semaphore fails.
    ///
    /// [`vulkan::Device::new`]: crate::vulkan::Device::new
    pub fn new() -> Result<Self, GpuError> {
        Self::with_options(GpuOptions::default())
    }

    /// [`new`](Self::new) with options.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_options(options: GpuOptions) -> Result<Self, GpuError> {
        let (k, n) = options.device_of_rank;
        let (physical, info, queue_family_index) = crate::vulkan::pick_device_of(k, n.max(1))?;
        let supported = physical.supported_features();
        let core_1_2 = physical.api_version() >= Version::V1_2;
        let timeline = !options.force_fences
            && supported.timeline_semaphore
            && (core_1_2 || physical.supported_extensions().khr_timeline_semaphore);
        let enabled_features = DeviceFeatures {
            timeline_semaphore: timeline,
            // Accesses outside a bound buffer read zeros or go nowhere, instead of touching another allocation:
            // kernels already clamp their indices (`Restrict`), this also covers what the clamping cannot (a
            // faulty driver, hand-written SPIR-V). Free on most devices.
            robust_buffer_access: supported.robust_buffer_access,
            // Free to enable where supported, and kernels in f64 / i64 need them.
            shader_float64: supported.shader_float64,
            shader_int64: supported.shader_int64,
            ..DeviceFeatures::empty()
        };
        let enabled_extensions =
            DeviceExtensions { khr_timeline_semaphore: timeline && !core_1_2, ..DeviceExtensions::empty() };
        let props = physical.properties();
        let limits = GpuLimits {
            max_push_constant_bytes: props.max_push_constants_size,
            max_workgroup_count: props.max_compute_work_group_count,
            max_storage_buffer_range: props.max_storage_buffer_range,
        };
        let (device, mut queues) = VkDevice::new(
            physical,
            DeviceCreateInfo {
                queue_create_infos: vec![QueueCreateInfo { queue_family_index, ..Default::default() }],
                enabled_features,
                enabled_extensions,
                ..Default::default()
            },
        )
        .map_err(during(format!("creating the logical device for {info}")))?;
        let queue = queues.next().expect("Device::new returns the one queue that was asked for");
        let timeline = if timeline {
            let semaphore = Semaphore::new(
                device.clone(),
                SemaphoreCreateInfo { semaphore_type: SemaphoreType::Timeline, initial_value: 0, ..Default::default() },
            )
            .map_err(during("creating the timeline semaphore"))?;
            Some(Arc::new(semaphore))
        } else {
            None
        };
        let memory = Arc::new(StandardMemoryAllocator::new_default(device.clone()));
        Ok(Gpu {
            info,
            serial: NEXT_GPU.fetch_add(1, Ordering::Relaxed),
            command_buffers: Arc::new(StandardCommandBufferAllocator::new(device.clone(), Default::default())),
            descriptor_sets: Arc::new(StandardDescriptorSetAllocator::new(device.clone(), Default::default())),
            staging: StagingPool::new(memory.clone()),
            memory,
            device,
            queue,
            limits,
            timeline,
            kernels: Vec::new(),
            layouts: Vec::new(),
            sets: HashMap::new(),
            last_submitted: 0,
            completed_upto: 0,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            ready_downloads: HashMap::new(),
            next_download: 0,
            scratch: batch::Scratch::default(),
            timestamps: None,
            tick_ns: 1.0,
            tick_mask: u64::MAX,
            timings: Vec::new(),
            stamp_values: Vec::new(),
            lose_device_at_poll: options.lose_device_at_poll,
            polls: 0,
        })
    }

    /// What device this is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The limits dispatches are checked against.
    pub fn limits(&self) -> &GpuLimits {
        &self.limits
    }

    /// How completion is polled on this device.
    pub fn completion_mode(&self) -> CompletionMode {
        if self.timeline.is_some() {
            CompletionMode::Timeline
        } else {
            CompletionMode::Fences
        }
    }

    /// Allocates device-local memory for the cells of `bounds`, `elem_size` bytes each.
    ///
    /// # Errors
    ///
    /// [`GpuError::BadAllocation`] for an empty box or a zero or overflowing size,
    /// [`GpuError::AllocationFailed`] (naming the size) if the device has no memory for it.
    pub fn allocate(&self, bounds: Box3, elem_size: usize) -> Result<DeviceAllocation, GpuError> {
        DeviceAllocation::new(&self.memory, bounds, elem_size)
    }

    /// Frees an allocation: drops the cached descriptor sets that bind it, then the handle. Its
    /// memory returns to the allocator once no batch in flight uses it.
    pub fn free(&mut self, alloc: DeviceAllocation) {
        self.sets.retain(|key, _| !key.contains(&alloc.id));
        drop(alloc);
    }

    /// Loads `entry_point` of `source` (or finds it loaded before) and returns its id.
    ///
    /// # Errors
    ///
    /// [`GpuError::NoEntryPoint`]; [`GpuError::PushConstantsTooLarge`] if its push-constant
    /// block alone exceeds the device limit; [`GpuError::Vulkan`] (naming the kernel) if the
    /// device rejects the module or its bindings do not follow the
    /// [binding convention](self#binding-convention).
    pub fn load_kernel(&mut self, source: &KernelSource, entry_point: &str) -> Result<KernelId, GpuError> {
        self.load(source, entry_point, false)
    }

    /// [`load_kernel`](Self::load_kernel) for the kernel's checked variant
    /// ([`KernelSource::checked_spirv`]), which [`Batch::dispatch_checked`] dispatches with a bounds record.
    ///
    /// # Errors
    ///
    /// As [`load_kernel`](Self::load_kernel).
    pub fn load_kernel_checked(&mut self, source: &KernelSource, entry_point: &str) -> Result<KernelId, GpuError> {
        self.load(source, entry_point, true)
    }

    fn load(&mut self, source: &KernelSource, entry_point: &str, checked: bool) -> Result<KernelId, GpuError> {
        let serial = self.serial;
        let id = |index: usize| KernelId { index: index as u32, gpu: serial };
        if let Some(index) = self
            .kernels
            .iter()
            .position(|k| k.source_name == source.name() && k.entry_point == entry_point && k.checked == checked)
        {
            return Ok(id(index));
        }
        // The checked variant binds its bounds record after the accessors.
        let layout = self.layout_for(source.group0_bindings() as usize + usize::from(checked))?;
        let limit = self.limits.max_push_constant_bytes;
        let entry = kernel::create_kernel(&self.device, source, entry_point, &layout, limit, checked)?;
        self.kernels.push(entry);
        Ok(id(self.kernels.len() - 1))
    }

    /// The layouts shared by kernels with `bindings` bindings, created on first use.
    fn layout_for(&mut self, bindings: usize) -> Result<LayoutPair, GpuError> {
        if self.layouts.len() <= bindings {
            self.layouts.resize(bindings + 1, None);
        }
        if let Some(pair) = &self.layouts[bindings] {
            return Ok(pair.clone());
        }
        let pair = LayoutPair::new(&self.device, bindings, self.limits.max_push_constant_bytes)?;
        self.layouts[bindings] = Some(pair.clone());
        Ok(pair)
    }

    /// The name (`file::entry_point`) of a loaded kernel.
    ///
    /// # Errors
    ///
    /// [`GpuError::UnknownKernel`] for an id from another `Gpu`.
    pub fn kernel_name(&self, kernel: KernelId) -> Result<&str, GpuError> {
        self.kernel(kernel).map(|k| k.name.as_str())
    }

    fn kernel(&self, id: KernelId) -> Result<&KernelEntry, GpuError> {
        if id.gpu != self.serial {
            return Err(GpuError::UnknownKernel(id));
        }
        self.kernels.get(id.index as usize).ok_or(GpuError::UnknownKernel(id))
    }

    /// Starts recording a batch. Nothing reaches the device until [`Batch::submit`]; dropping
    /// the batch instead discards it.
    ///
    /// # Errors
    ///
    /// [`GpuError::Vulkan`] if no command buffer can be allocated.
    pub fn batch(&mut self) -> Result<Batch<'_>, GpuError> {
        Batch::new(self)
    }

    /// Reads which batches completed since the last poll and appends their ids to `completed`
    /// in submission order; returns how many. Never blocks: one `vkGetSemaphoreCounterValue`
    /// (or one `vkGetFenceStatus` per newly completed batch, plus one) per call, and nothing at
    /// all with no batch in flight.
    ///
    /// A completed batch's upload staging returns to the pool and its downloads become readable
    /// with [`read_download`](Self::read_download).
    ///
    /// # Errors
    ///
    /// [`GpuError::DeviceLost`] if the device was lost (naming it and the batches in flight),
    /// [`GpuError::Vulkan`] for other failures.
    pub fn poll(&mut self, completed: &mut Vec<BatchId>) -> Result<usize, GpuError> {
        if self.in_flight.is_empty() {
            return Ok(0);
        }
        self.polls += 1;
        if self.lose_device_at_poll.is_some_and(|n| self.polls >= n) {
            return Err(self.device_lost(true));
        }
        let before = completed.len();
        if let Some(timeline) = &self.timeline {
            let value = match timeline.counter_value() {
                Ok(v) => v,
                Err(vulkano::Validated::Error(vulkano::VulkanError::DeviceLost)) => return Err(self.device_lost(false)),
                Err(e) => return Err(during("reading the timeline semaphore")(e)),
            };
            while self.in_flight.front().is_some_and(|b| b.id <= value) {
                let record = self.in_flight.pop_front().expect("front exists");
                completed.push(self.retire(record));
            }
        } else {
            while let Some(front) = self.in_flight.front() {
                let fence = front.fence.as_ref().expect("fence mode records a fence per batch");
                match fence.is_signaled() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(vulkano::VulkanError::DeviceLost) => return Err(self.device_lost(false)),
                    Err(e) => return Err(during("polling a batch's fence")(e)),
                }
                let record = self.in_flight.pop_front().expect("front exists");
                completed.push(self.retire(record));
            }
        }
        Ok(completed.len() - before)
    }

    /// The error for a lost device, naming it and the batches in flight.
    fn device_lost(&self, injected: bool) -> GpuError {
        GpuError::DeviceLost {
            device: self.info.to_string(),
            batches: self.in_flight.iter().map(|b| BatchId(b.id)).collect(),
            injected,
        }
    }

    /// Releases what a completed batch held and returns its id.
    fn retire(&mut self, mut record: InFlight) -> BatchId {
        let id = BatchId(record.id);
        self.completed_upto = record.id;
        self.read_stamps(&mut record);
        for staging in record.uploads.drain(..) {
            self.staging.release(staging);
        }
        for (download, staging, region, elem_size) in record.downloads.drain(..) {
            self.ready_downloads.insert(download, ReadyDownload { staging, region, elem_size });
        }
        record.clear();
        self.spare.push(record);
        id
    }

    /// Turns on device timestamps: every later batch records when each of its operations finished on the device,
    /// which [`take_timings`](Self::take_timings) hands out once the batch completed (for timelines; it costs a
    /// timestamp write per operation). Returns `false`, changing nothing, where the queue cannot write timestamps.
    ///
    /// # Errors
    ///
    /// [`GpuError::Vulkan`] if the query pool cannot be created.
    pub fn enable_timestamps(&mut self) -> Result<bool, GpuError> {
        if self.timestamps.is_some() {
            return Ok(true);
        }
        let physical = self.device.physical_device();
        let family = &physical.queue_family_properties()[self.queue.queue_family_index() as usize];
        let Some(bits) = family.timestamp_valid_bits.filter(|&b| b > 0) else {
            return Ok(false);
        };
        let pool = vulkano::query::QueryPool::new(
            self.device.clone(),
            vulkano::query::QueryPoolCreateInfo {
                query_count: batch::STAMP_SLOTS * batch::STAMPS_PER_BATCH,
                ..vulkano::query::QueryPoolCreateInfo::query_type(vulkano::query::QueryType::Timestamp)
            },
        )
        .map_err(during("creating the timestamp query pool"))?;
        self.tick_ns = f64::from(physical.properties().timestamp_period);
        self.tick_mask = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        self.timestamps = Some(pool);
        Ok(true)
    }

    /// Moves the operation times of the batches completed since the last call into `out` (nothing unless
    /// [`enable_timestamps`](Self::enable_timestamps) is on).
    pub fn take_timings(&mut self, out: &mut Vec<(BatchId, Vec<OpTime>)>) {
        out.append(&mut self.timings);
    }

    /// Reads a completed batch's timestamps into `timings`.
    fn read_stamps(&mut self, record: &mut InFlight) {
        let (Some(base), Some(pool)) = (record.stamps, &self.timestamps) else { return };
        let n = record.stamped.len() as u32 + 1;
        self.stamp_values.clear();
        self.stamp_values.resize(n as usize, 0);
        // Without WAIT: the batch completed, so its queries are available; if not, the batch goes untimed.
        match pool.get_results(base..base + n, &mut self.stamp_values, vulkano::query::QueryResultFlags::empty()) {
            Ok(true) => {}
            _ => return,
        }
        let (mask, tick) = (self.tick_mask, self.tick_ns);
        let start = self.stamp_values[0] & mask;
        let at = |v: u64| ((v & mask).wrapping_sub(start) & mask) as f64 * tick;
        let ops = record
            .stamped
            .iter()
            .enumerate()
            .map(|(i, &kind)| OpTime {
                kind,
                start_ns: at(self.stamp_values[i]) as u64,
                end_ns: at(self.stamp_values[i + 1]) as u64,
            })
            .collect();
        self.timings.push((BatchId(record.id), ops));
    }

    /// Whether `poll` has seen batch `id` complete.
    pub fn is_complete(&self, id: BatchId) -> bool {
        id.0 <= self.completed_upto
    }

    /// How many submitted batches `poll` has not yet seen complete.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Polls until batch `id` completes, yielding the thread between polls, for at most
    /// `timeout`. For tests and demos; an executor polls from its loop.
    ///
    /// # Errors
    ///
    /// [`GpuError::Timeout`] after `timeout`, or the error of a failed poll.
    pub fn poll_until_complete(&mut self, id: BatchId, timeout: Duration) -> Result<(), GpuError> {
        let start = Instant::now();
        let mut completed = Vec::new();
        while !self.is_complete(id) {
            if start.elapsed() > timeout {
                return Err(GpuError::Timeout { id, timeout });
            }
            completed.clear();
            if self.poll(&mut completed)? == 0 {
                std::thread::yield_now();
            }
        }
        Ok(())
    }

    /// Copies a completed download into `dst`, a host slice holding the cells of `dst_bounds`
    /// row-major (pass `dst_bounds` = the downloaded region for a packed copy), and returns its
    /// staging buffer to the pool.
    ///
    /// # Errors
    ///
    /// [`GpuError::DownloadNotReady`] before `poll` reported its batch complete,
    /// [`GpuError::UnknownDownload`] for an id already read or discarded,
    /// [`GpuError::RegionOutside`] / [`GpuError::HostSliceTooShort`] if `dst` cannot hold the
    /// region; after these errors the download can still be read.
    pub fn read_download(&mut self, id: DownloadId, dst: &mut [u8], dst_bounds: Box3) -> Result<(), GpuError> {
        let Some(ready) = self.ready_downloads.get(&id) else {
            return Err(self.missing_download(id));
        };
        let (region, elem_size) = (ready.region, ready.elem_size);
        if !dst_bounds.contains(&region) {
            return Err(GpuError::RegionOutside(Box::new(RegionOutside {
                op: "read_download",
                side: "host slice".into(),
                region,
                bounds: dst_bounds,
            })));
        }
        check_host_slice("read_download", dst.len(), &dst_bounds, elem_size)?;
        let ready = self.ready_downloads.remove(&id).expect("looked up above");
        {
            let guard = ready.staging.read().map_err(|e| GpuError::Vulkan {
                during: "mapping a download's staging buffer".into(),
                message: e.to_string(),
            })?;
            let runs = &mut self.scratch.runs;
            runs.clear();
            copy_runs(&region, &dst_bounds, &region, elem_size, runs);
            for run in runs.iter() {
                dst[run.dst_offset..run.dst_offset + run.len]
                    .copy_from_slice(&guard[run.src_offset..run.src_offset + run.len]);
            }
        }
        self.staging.release(ready.staging);
        Ok(())
    }

    /// Drops a download without reading it (once its batch completed, its staging returns to
    /// the pool; before that, at completion).
    pub fn discard_download(&mut self, id: DownloadId) {
        if let Some(ready) = self.ready_downloads.remove(&id) {
            self.staging.release(ready.staging);
            return;
        }
        for record in &mut self.in_flight {
            if let Some(i) = record.downloads.iter().position(|d| d.0 == id) {
                let (_, staging, _, _) = record.downloads.swap_remove(i);
                record.uploads.push(staging); // released to the pool at completion
                return;
            }
        }
    }

    fn missing_download(&self, id: DownloadId) -> GpuError {
        let pending = self.in_flight.iter().any(|r| r.downloads.iter().any(|d| d.0 == id));
        if pending {
            GpuError::DownloadNotReady(id)
        } else {
            GpuError::UnknownDownload(id)
        }
    }

    /// Staging buffers allocated over this `Gpu`'s life; a steady state reuses them, so this
    /// stops growing.
    pub fn staging_buffers_allocated(&self) -> u64 {
        self.staging.allocated()
    }

    /// The cached descriptor set binding `accessors` (then `record`, for a checked dispatch), or a new one.
    fn descriptor_set(
        &mut self,
        layout: &Arc<vulkano::descriptor_set::layout::DescriptorSetLayout>,
        accessors: &[Access<'_>],
        record: Option<&DeviceAllocation>,
    ) -> Result<Arc<DescriptorSet>, GpuError> {
        kernel::binding_key(accessors, record, &mut self.scratch.key);
        if let Some(cached) = self.sets.get(self.scratch.key.as_slice()) {
            return Ok(cached.set.clone());
        }
        let allocations = accessors.iter().map(|a| a.alloc).chain(record);
        let writes = allocations.enumerate().map(|(i, a)| WriteDescriptorSet::buffer(i as u32, a.buffer.clone()));
        let set = DescriptorSet::new(self.descriptor_sets.clone(), layout.clone(), writes, [])
            .map_err(during("creating a descriptor set"))?;
        if self.sets.len() >= SET_CACHE_LIMIT {
            // Entries naming dropped allocations can never be hit again.
            self.sets.retain(|_, c| c.alive.iter().all(|w| w.strong_count() > 0));
            if self.sets.len() >= SET_CACHE_LIMIT {
                self.sets.clear(); // batches in flight hold their own references
            }
        }
        let alive = accessors.iter().map(|a| a.alloc).chain(record).map(|a| Arc::downgrade(&a.alive)).collect();
        self.sets.insert(self.scratch.key.as_slice().into(), CachedSet { set: set.clone(), alive });
        Ok(set)
    }
}

/// Checks that a host slice of `len` bytes holds the cells of `bounds`.
fn check_host_slice(op: &'static str, len: usize, bounds: &Box3, elem_size: usize) -> Result<(), GpuError> {
    let needed = bounds.checked_volume().and_then(|v| v.checked_mul(elem_size)).unwrap_or(usize::MAX);
    if len < needed {
        return Err(GpuError::HostSliceTooShort { op, len, bounds: *bounds, elem_size, needed });
    }
    Ok(())
}

impl Drop for Gpu {
    /// Waits for the queue to go idle if batches are in flight: their command buffers and
    /// resources are destroyed with this `Gpu`. The one place this module blocks.
    fn drop(&mut self) {
        if !self.in_flight.is_empty() {
            let _ = self.queue.with(|mut q| q.wait_idle());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_can_move_to_the_loop_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Gpu>();
        assert_send::<DeviceAllocation>();
    }

    #[test]
    fn batch_ids_print_short() {
        assert_eq!(BatchId(3).to_string(), "G3");
    }
}
