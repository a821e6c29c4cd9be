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
//!   vulkano's safe API, except command buffers, which come from the `Gpu`'s own command pool.
//! - **Everything is reused.** Pipelines are cached per (kernel, entry point), descriptor sets per
//!   list of bound allocations, staging buffers in a pool of power-of-two size classes, command
//!   buffers once their batch completed. Within a batch, a pipeline or descriptor set already
//!   bound is not bound again.
//! - **Repeated batches are replayed, not recorded.** A batch collects its ordinary dispatches without recording
//!   them; if nothing else comes, [`Batch::submit`] submits command buffers recorded once for earlier batches that
//!   held the same dispatches: runs of one dispatch, or of a block of up to four (a double-buffered step), repeated
//!   2^k times (the `batch::replay` module; [`GpuOptions::record_every_batch`] turns it off). Recording a dispatch
//!   costs the NVIDIA driver about 1.6 µs of host time on an H100 host, replaying one 0.2–0.3 µs.
//! - **Any launch size.** A launch that needs more workgroups than the device launches at once
//!   (`maxComputeWorkGroupCount`) is recorded as several dispatches, cut at whole workgroups along each axis, each
//!   pushing its part of the launch as the chunk box (so `celer_item_Nd` gives the same items); the one-cell-per-
//!   workgroup allocation of a block reduction, bound with [`Access::blocks`], gets each dispatch's first workgroup
//!   instead of its offset, so every workgroup writes its own cell.
//! - **Errors name the culprit.** A dispatch whose accessors do not match the kernel's bindings,
//!   whose push constants exceed the device limit (or parameters [`MAX_PARAMS_BYTES`]), or whose boxes overflow the kernel's `u32`
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
//! A kernel whose parameters live in storage reads them at `@group(0) @binding(n + 1)` (`n` its bindings), which
//! the GPU layer binds itself (see below).
//!
//! # Push-constant layout
//!
//! Push constants (`var<immediate>` in WGSL; for a block of more than 128 bytes, the same words in a storage
//! buffer) hold, in order, as 4-byte words
//! ([`push_constant_bytes`] counts them):
//!
//! | words | what |
//! |---|---|
//! | 0..3 | the chunk's offset (first cell) in buffer coordinates, dimensions 0, 1, 2 |
//! | 3..6 | the chunk's range (extent) |
//! | 6 + 6i .. 9 + 6i | accessor `i`'s allocation: offset of its box in buffer coordinates (for [`Access::blocks`]: the dispatch's first workgroup in the launch; for [`Access::empty`]: 0) |
//! | 9 + 6i .. 12 + 6i | accessor `i`'s allocation: range of its box (for [`Access::empty`]: 0) |
//! | 6 + 6n .. | the dispatch's scalars (`u32` words; pass `f32` as `f32::to_bits`) |
//!
//! A kernel may declare fewer words than the dispatch pushes (e.g. no scalars), never more.
//!
//! **Parameters in storage.** Push constants must fit the device's `maxPushConstantsSize` (Vulkan guarantees 128
//! bytes, which is what lavapipe offers; NVIDIA offers 256): 4 accessors and 2 scalars. `celer-kernel-build`
//! therefore moves a block of more than 128 bytes to a read-only storage buffer at `@group(0) @binding(n + 1)` (`n`
//! the kernel's bindings, so the checked variant's bounds record at `n` keeps its place;
//! [`KernelSource::params_binding`]), with the same members at the same offsets. A dispatch of such a kernel writes
//! the same words into the `Gpu`'s parameter ring (host-visible memory; one slot per dispatch, at a multiple of
//! `minStorageBufferOffsetAlignment`) and binds its descriptor set with the slot as the dynamic offset of that
//! binding (`STORAGE_BUFFER_DYNAMIC`, [`MAX_PARAMS_BYTES`] wide, so one cached set serves every slot). Slots are
//! freed when their batch completes; a ring too full for a batch's slots is replaced by a larger one (batches in
//! flight keep the old one through their sets), never overwritten. Such dispatches are recorded, not collected for
//! replay (a cached command buffer would bake in their offsets). At most [`MAX_PARAMS_BYTES`] (4096: 169
//! accessors) per dispatch.
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
//! | [`Batch::upload_boxes`], [`Batch::download_boxes`], [`Batch::upload_staged_boxes`] | the boxes of a region of many (a custom mapper's scattered cells) packed one after another into one staging buffer ([`packed_offsets`]), and one `vkCmdCopyBuffer` whose regions are every run of every box (a box of many runs at an offset a storage binding can start at still packed by `pack.wgsl`): staging memory is the bytes moved (rounded up to a size class), not a buffer of at least 4 KiB per box |
//! | [`Gpu::take_download`], [`Gpu::host_staging`], [`Batch::upload_staged`] | the staging buffer itself lent to the host as [`HostStaging`] (a mapped address; an invalidation or flush of the mapped range where the memory is not host-coherent): MPI sends from a download's staging and receives into staging an upload copies from, with no host copy |
//! | [`Batch::dispatch`] | `vkCmdBindPipeline` / `vkCmdBindDescriptorSets` (when changed), `vkCmdPushConstants`, `vkCmdDispatch` (one pair per part of a launch beyond `maxComputeWorkGroupCount`); for a kernel with its parameters in storage, a host write into the parameter ring and `vkCmdBindDescriptorSets` with the slot's dynamic offset instead of `vkCmdPushConstants` |
//! | hazards | `vkCmdPipelineBarrier` with one global `VkMemoryBarrier` |
//! | [`Gpu::batch`] | nothing until the batch records something other than an ordinary dispatch; then a command buffer of the `Gpu`'s pool (one reused after its batch completed, or `vkAllocateCommandBuffers`), `vkBeginCommandBuffer`, and the dispatches collected so far |
//! | [`Batch::submit`] | `vkEndCommandBuffer`, `vkQueueSubmit` signalling the timeline semaphore to the batch id (or a fence); a batch of dispatches only: one `vkQueueSubmit` of at most 8 cached command buffers (recorded with `SIMULTANEOUS_USE` the first time a piece is needed), or the dispatches recorded where replaying would add waits |
//! | [`Gpu::poll`] | `vkGetSemaphoreCounterValue` once (or `vkGetFenceStatus` per batch) |
//! | [`Batch::copy_from_shared`] | `vkCmdCopyBuffer` from another `Gpu`'s buffer on the same `VkDevice` (its queue's writes made visible by the submission's wait on that `Gpu`'s timeline semaphore, `VkTimelineSemaphoreSubmitInfo`, at the compute and transfer stages, then the batch's first barrier) |
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
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Weak};

use smallvec::SmallVec;
use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::device::{Device as VkDevice, Queue};
use vulkano::memory::allocator::StandardMemoryAllocator;
use vulkano::sync::semaphore::Semaphore;

use crate::shaders::KernelSource;
use crate::vulkan::DeviceInfo;

mod batch;
mod command_pool;
mod completion;
mod error;
mod geometry;
mod kernel;
mod memory;
mod open;
mod params;

pub use batch::{Batch, OpKind, OpTime};
pub use error::{GpuError, RegionOutside};
pub use geometry::{copy_runs, Box3, CopyRun};
pub use kernel::{
    bounds_record_init, bounds_record_words, push_constant_bytes, read_bounds_record, Access, AccessMode, BoundsReport,
    KernelId, Launch, ACCESSOR_WORDS, CHUNK_WORDS,
};
pub use memory::{AllocationId, DeviceAllocation, HostStaging, SharedAllocation};
pub use params::MAX_PARAMS_BYTES;

use batch::InFlight;
use error::during;
use kernel::{KernelEntry, LayoutPair};
use memory::StagingPool;

/// Descriptor sets cached before the cache drops the entries that name dropped allocations.
/// TODO(perf): a few per allocation pair is typical; measure on the executor's workloads.
const SET_CACHE_LIMIT: usize = 4096;

/// Descriptor sets of the last dispatches, found by comparing keys before the cache hashes one: a chain binds the
/// same allocation again and again, a stencil two sets in turn.
const RECENT_SETS: usize = 4;

/// The device limits dispatches are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuLimits {
    /// `maxPushConstantsSize`: bytes of push constants (at least 128).
    pub max_push_constant_bytes: u32,
    /// `maxComputeWorkGroupCount`: workgroups per dispatch along x, y, z.
    pub max_workgroup_count: [u32; 3],
    /// `maxStorageBufferRange`: the largest allocation an accessor can bind, in bytes.
    pub max_storage_buffer_range: u32,
    /// `maxComputeWorkGroupSize`: invocations of one workgroup along x, y, z.
    pub max_workgroup_size: [u32; 3],
    /// `maxComputeWorkGroupInvocations`: invocations of one workgroup in all.
    pub max_workgroup_invocations: u32,
    /// `maxComputeSharedMemorySize`: bytes of `var<workgroup>` memory one workgroup may use.
    pub max_workgroup_memory_bytes: u32,
    /// The least of `maxPerStageDescriptorStorageBuffers` and `maxDescriptorSetStorageBuffers`: storage buffers one
    /// dispatch may bind (its accessors and reductions, a checked kernel's bounds record, the parameter buffer of a
    /// kernel reading its parameters from storage). Vulkan's minimum is 4; lavapipe offers 32.
    pub max_storage_buffers: u32,
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
    /// Record every batch's commands, instead of replaying batches of ordinary dispatches from command buffers
    /// recorded for earlier batches with the same dispatches (the default; see [`Batch`]'s docs): to compare the
    /// two, or to rule replay out.
    pub record_every_batch: bool,
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

/// A point on a [`Gpu`]'s timeline: the completion of one of its batches, which a batch of another `Gpu` on the same
/// Vulkan device can wait for on the GPU ([`Batch::copy_from_shared`]) instead of the host waiting for it. Made by
/// [`Gpu::signal_point`]; holds the timeline semaphore alive.
#[derive(Clone)]
pub struct SignalPoint {
    semaphore: Arc<Semaphore>,
    device: Arc<VkDevice>,
    value: u64,
}

impl SignalPoint {
    /// The batch whose completion it is.
    pub fn batch(&self) -> BatchId {
        BatchId(self.value)
    }
}

impl fmt::Debug for SignalPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignalPoint({})", BatchId(self.value))
    }
}

/// A download recorded by [`Batch::download`]; read it with [`Gpu::read_download`] once its
/// batch completed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DownloadId(u64);

/// A download whose batch completed: the packed cells of its boxes in a staging buffer.
struct ReadyDownload {
    staging: vulkano::buffer::Subbuffer<[u8]>,
    packed: Packed,
}

/// The boxes a download's staging holds, packed one after another ([`packed_bytes`]), and their cell size.
pub(super) struct Packed {
    /// One box for most downloads (no heap allocation), all of a region's for [`Batch::download_boxes`].
    pub(super) boxes: SmallVec<[Box3; 1]>,
    pub(super) elem_size: usize,
}

impl Packed {
    /// The bytes of its cells.
    fn bytes(&self) -> usize {
        packed_bytes(&self.boxes, self.elem_size)
    }
}

/// The layout of several boxes in one staging buffer ([`Batch::upload_boxes`], [`Batch::upload_staged_boxes`],
/// [`Batch::download_boxes`]): the byte offset where each box's cells start, row-major, packed one after another in
/// the order given (box `i` at the sum of the sizes of the boxes before it, no padding), then the total.
///
/// # Examples
///
/// ```
/// use celer_exec::gpu::{packed_bytes, packed_offsets, Box3};
/// let boxes = [Box3::d1(0, 1), Box3::d1(4, 7), Box3::d2([0, 0], [2, 2])];
/// assert_eq!(packed_offsets(&boxes, 4).collect::<Vec<_>>(), [0, 4, 16]);
/// assert_eq!(packed_bytes(&boxes, 4), 32);
/// ```
pub fn packed_offsets(boxes: &[Box3], elem_size: usize) -> impl Iterator<Item = usize> + '_ {
    boxes.iter().scan(0, move |at, b| {
        let here = *at;
        *at += b.volume() * elem_size;
        Some(here)
    })
}

/// The bytes of `boxes`' cells packed one after another, `elem_size` bytes each (see [`packed_offsets`]).
pub fn packed_bytes(boxes: &[Box3], elem_size: usize) -> usize {
    boxes.iter().map(|b| b.volume() * elem_size).sum()
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
    /// The command buffers batches record into.
    commands: command_pool::CommandPool,
    descriptor_sets: Arc<StandardDescriptorSetAllocator>,
    limits: GpuLimits,
    /// `Some` in [`CompletionMode::Timeline`].
    timeline: Option<Arc<Semaphore>>,
    kernels: Vec<KernelEntry>,
    /// `layouts[n]`: the layouts of kernels with `n` bindings.
    layouts: Vec<Option<LayoutPair>>,
    /// The layouts of kernels reading their parameters from storage, by their bindings (a checked variant's bounds
    /// record included) and parameter binding.
    param_layouts: HashMap<(usize, u32), LayoutPair>,
    /// Where those kernels' parameter words go ([`params`]).
    params: params::ParamRing,
    /// `minStorageBufferOffsetAlignment`: parameter slots start at multiples of it.
    params_align: u64,
    sets: HashMap<Box<[AllocationId]>, CachedSet>,
    /// The sets of the last few distinct binding keys, most recent first (a subset of `sets`).
    recent_sets: VecDeque<(Box<[AllocationId]>, Arc<DescriptorSet>)>,
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
    /// Whether batches of ordinary dispatches are replayed from cached command buffers (not
    /// [`GpuOptions::record_every_batch`]), the cache, and a tape's storage between batches.
    replay_batches: bool,
    replay: batch::replay::ReplayCache,
    spare_tape: batch::replay::Tape,
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
    /// Whether this and `other` run on one Vulkan device: the devices of a rank on one GPU
    /// ([`open_rank`](Self::open_rank)).
    pub fn shares_device(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.device, &other.device)
    }

    /// The completion of batch `batch` of this `Gpu` (submitted, or to be submitted: a later batch's wait then holds
    /// its queue until it is), for a batch of another `Gpu` on the same Vulkan device to wait for on the GPU
    /// ([`Batch::copy_from_shared`]). `None` in [`CompletionMode::Fences`], which has no timeline to wait on.
    pub fn signal_point(&self, batch: BatchId) -> Option<SignalPoint> {
        let semaphore = self.timeline.clone()?;
        Some(SignalPoint { semaphore, device: self.device.clone(), value: batch.0 })
    }

    /// The id the next batch submitted will have.
    pub fn next_batch(&self) -> BatchId {
        BatchId(self.last_submitted + 1)
    }

    /// What device this is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Whether the device runs kernels that use `f64` (the feature `shaderFloat64`, enabled where supported):
    /// [`KernelSource::needs_float64`].
    pub fn float64(&self) -> bool {
        self.device.enabled_features().shader_float64
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
        self.recent_sets.retain(|(key, _)| !key.contains(&alloc.id));
        // Replayed command buffers that bind it hold their sets: let them go too (the memory would stay otherwise).
        self.replay.retire_binding(vulkano::VulkanObject::handle(alloc.buffer.buffer()));
        drop(alloc);
    }

    /// Loads `entry_point` of `source` (or finds it loaded before) and returns its id.
    ///
    /// # Errors
    ///
    /// [`GpuError::NoEntryPoint`]; [`GpuError::PushConstantsTooLarge`] if its push-constant
    /// block alone exceeds the device limit; [`GpuError::WorkgroupTooLarge`] if its workgroup
    /// size or `var<workgroup>` memory exceeds the device's limits; [`GpuError::Vulkan`] (naming the kernel) if the
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
        let bindings = source.group0_bindings() as usize + usize::from(checked);
        let name = format!("{}::{entry_point}", source.name());
        let layout = match source.params_binding() {
            None => self.layout_for(bindings, (&name, checked))?,
            Some(p) => match self.param_layouts.get(&(bindings, p)) {
                Some(pair) => pair.clone(),
                None => {
                    let push_bytes = self.limits.max_push_constant_bytes;
                    let pair = LayoutPair::new(&self.device, bindings, Some(p), push_bytes, (&name, checked))?;
                    self.param_layouts.insert((bindings, p), pair.clone());
                    pair
                }
            },
        };
        let entry = kernel::create_kernel(&self.device, source, entry_point, &layout, &self.limits, checked)?;
        self.kernels.push(entry);
        Ok(id(self.kernels.len() - 1))
    }

    /// The layouts shared by kernels with `bindings` bindings, created on first use (for `kernel`, which only names
    /// a failure: `file::entry` and whether it is the checked variant).
    fn layout_for(&mut self, bindings: usize, kernel: (&str, bool)) -> Result<LayoutPair, GpuError> {
        if self.layouts.len() <= bindings {
            self.layouts.resize(bindings + 1, None);
        }
        if let Some(pair) = &self.layouts[bindings] {
            return Ok(pair.clone());
        }
        let pair = LayoutPair::new(&self.device, bindings, None, self.limits.max_push_constant_bytes, kernel)?;
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

    /// Copies a completed download into `dst`, a host slice holding the cells of `dst_bounds`
    /// row-major (pass `dst_bounds` = the downloaded region for a packed copy), and returns its
    /// staging buffer to the pool. A download of several boxes ([`Batch::download_boxes`]) writes each box
    /// where it lies in `dst_bounds`, leaving the cells between them as they were.
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
        let elem_size = ready.packed.elem_size;
        if let Some(region) = ready.packed.boxes.iter().find(|b| !dst_bounds.contains(b)) {
            return Err(GpuError::RegionOutside(Box::new(RegionOutside {
                op: "read_download",
                side: "host slice".into(),
                region: *region,
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
            let boxes = &ready.packed.boxes;
            for (region, at) in boxes.iter().zip(packed_offsets(boxes, elem_size)) {
                runs.clear();
                copy_runs(region, &dst_bounds, region, elem_size, runs);
                for run in runs.iter() {
                    let from = at + run.src_offset;
                    dst[run.dst_offset..run.dst_offset + run.len].copy_from_slice(&guard[from..from + run.len]);
                }
            }
        }
        self.staging.release(ready.staging);
        Ok(())
    }

    /// Hands a completed download's bytes (the region's cells row-major, as the staging memory holds them) to `read`
    /// without copying them out, then returns the staging buffer to the pool: for a caller that only reads the
    /// cells once (e.g. folds them), where [`read_download`](Self::read_download) would copy them first.
    ///
    /// # Errors
    ///
    /// [`GpuError::DownloadNotReady`] before `poll` reported its batch complete, [`GpuError::UnknownDownload`] for an
    /// id already read or discarded, [`GpuError::Vulkan`] if the staging memory cannot be read.
    pub fn read_download_with<R>(&mut self, id: DownloadId, read: impl FnOnce(&[u8]) -> R) -> Result<R, GpuError> {
        if !self.ready_downloads.contains_key(&id) {
            return Err(self.missing_download(id));
        }
        let ready = self.ready_downloads.remove(&id).expect("looked up above");
        let result = {
            let guard = ready.staging.read().map_err(|e| GpuError::Vulkan {
                during: "mapping a download's staging buffer".into(),
                message: e.to_string(),
            })?;
            read(&guard[..ready.packed.bytes()])
        };
        self.staging.release(ready.staging);
        Ok(result)
    }

    /// Lends out the staging buffer of a completed download instead of copying it: the cells of the downloaded
    /// region, packed row-major (of each box, one after another: [`packed_offsets`]), readable through [`HostStaging::as_ptr`] for as long as the caller holds it (an
    /// MPI send reads it in place). Give it back with [`give_staging`](Self::give_staging).
    ///
    /// # Errors
    ///
    /// As [`read_download`](Self::read_download) for an id not ready or unknown (the download can still be read
    /// after [`GpuError::DownloadNotReady`]); [`GpuError::Vulkan`] if the buffer cannot be mapped.
    pub fn take_download(&mut self, id: DownloadId) -> Result<HostStaging, GpuError> {
        let Some(ready) = self.ready_downloads.remove(&id) else {
            return Err(self.missing_download(id));
        };
        // Where the memory is not host-coherent, taking a read guard makes the device's writes visible to the host
        // (an invalidation); the guard itself is not needed afterwards: nothing on the device writes the buffer
        // again until it is back in the pool. Coherent memory (NVIDIA's, lavapipe's) needs nothing.
        let visible = if memory::is_host_coherent(&ready.staging) {
            Ok(())
        } else {
            ready.staging.read().map(drop).map_err(|e| GpuError::Vulkan {
                during: "mapping a download's staging buffer".into(),
                message: e.to_string(),
            })
        };
        let lent = visible.and_then(|()| HostStaging::lend(ready.staging.clone(), ready.packed.bytes()));
        if lent.is_err() {
            self.staging.release(ready.staging);
        }
        lent
    }

    /// Lends out host-visible staging memory of at least `bytes` bytes ([`HostStaging::len`] is `bytes`), for the
    /// host to fill and [`Batch::upload_staged`] to copy to the device; its contents start unspecified. Give it
    /// back unused with [`give_staging`](Self::give_staging).
    ///
    /// # Errors
    ///
    /// [`GpuError::AllocationFailed`], or [`GpuError::Vulkan`] if the buffer cannot be mapped.
    pub fn host_staging(&mut self, bytes: usize) -> Result<HostStaging, GpuError> {
        let buffer = self.staging.acquire(bytes)?;
        HostStaging::lend(buffer.clone(), bytes).inspect_err(|_| self.staging.release(buffer))
    }

    /// Takes back lent staging memory for reuse. The caller must be done with it: nothing reads or writes it
    /// through its address any more (an MPI request using it has completed).
    pub fn give_staging(&mut self, staging: HostStaging) {
        self.staging.release(staging.buffer);
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
                let (_, staging, _) = record.downloads.swap_remove(i);
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

    /// Command buffers allocated over this `Gpu`'s life: one per batch recorded or in flight at once at most,
    /// since a batch's buffer is reused once it completed (or was discarded).
    pub fn command_buffers_allocated(&self) -> u64 {
        self.commands.allocated()
    }

    /// Batches of ordinary dispatches replay cached command buffers, one per piece of a run of identical
    /// dispatches: how many pieces were recorded, and how many submitted again without recording.
    pub fn replayed_pieces(&self) -> (u64, u64) {
        (self.replay.recorded, self.replay.replayed)
    }

    /// The cached descriptor set binding `accessors` (then `record`, for a checked dispatch; then, with `params`,
    /// the parameter ring at that binding, as a dynamic storage buffer of [`MAX_PARAMS_BYTES`]), or a new one.
    fn descriptor_set(
        &mut self,
        layout: &Arc<vulkano::descriptor_set::layout::DescriptorSetLayout>,
        accessors: &[Access<'_>],
        record: Option<&DeviceAllocation>,
        params: Option<u32>,
    ) -> Result<Arc<DescriptorSet>, GpuError> {
        let ring =
            params.and_then(|p| self.params.buffer().map(|(buffer, generation)| (p, buffer.clone(), generation)));
        kernel::binding_key(accessors, record, &mut self.scratch.key);
        // The ring is part of the set: sets of a replaced ring are dropped from the cache (`replace_ring`).
        self.scratch.key.extend(ring.as_ref().map(|(_, _, generation)| AllocationId::param_ring(*generation)));
        let key = self.scratch.key.as_slice();
        if let Some((_, set)) = self.recent_sets.iter().find(|(k, _)| **k == *key) {
            return Ok(set.clone());
        }
        if let Some(cached) = self.sets.get(key) {
            let set = cached.set.clone();
            self.remember_set(set.clone());
            return Ok(set);
        }
        let allocations = accessors.iter().map(|a| a.alloc).chain(record);
        let writes = allocations
            .enumerate()
            .map(|(i, a)| WriteDescriptorSet::buffer(i as u32, a.buffer.clone()))
            .chain(ring.map(|(p, buffer, _)| {
                WriteDescriptorSet::buffer_with_range(
                    p,
                    vulkano::descriptor_set::DescriptorBufferInfo { buffer, range: 0..MAX_PARAMS_BYTES as u64 },
                )
            }));
        let set = DescriptorSet::new(self.descriptor_sets.clone(), layout.clone(), writes, [])
            .map_err(during("creating a descriptor set"))?;
        if self.sets.len() >= SET_CACHE_LIMIT {
            // Entries naming dropped allocations can never be hit again.
            self.sets.retain(|_, c| c.alive.iter().all(|w| w.strong_count() > 0));
            if self.sets.len() >= SET_CACHE_LIMIT {
                self.sets.clear(); // batches in flight hold their own references
                self.recent_sets.clear();
            }
        }
        let alive = accessors.iter().map(|a| a.alloc).chain(record).map(|a| Arc::downgrade(&a.alive)).collect();
        self.sets.insert(self.scratch.key.as_slice().into(), CachedSet { set: set.clone(), alive });
        self.remember_set(set.clone());
        Ok(set)
    }

    /// Drops the cached descriptor sets that bind the parameter ring of generation `generation`, which was replaced
    /// by a larger one (batches in flight hold the sets they bound, and through them the old ring).
    fn replace_ring(&mut self, generation: u32) {
        let old = AllocationId::param_ring(generation);
        self.sets.retain(|key, _| !key.contains(&old));
        self.recent_sets.retain(|(key, _)| !key.contains(&old));
    }

    /// Puts `set`, found or created for the key in `scratch.key`, first among the recent sets.
    fn remember_set(&mut self, set: Arc<DescriptorSet>) {
        if self.recent_sets.len() >= RECENT_SETS {
            self.recent_sets.pop_back();
        }
        self.recent_sets.push_front((self.scratch.key.as_slice().into(), set));
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
