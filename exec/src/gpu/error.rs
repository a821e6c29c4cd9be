//! The GPU backend's errors: [`GpuError`], one variant per failure, with what was being done.

use std::time::Duration;

use super::{AllocationId, BatchId, Box3, DownloadId, KernelId};
use crate::vulkan::{Describe, DeviceError};

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
    /// Lent staging memory given to an upload of several boxes ([`Batch::upload_staged_boxes`](super::Batch::upload_staged_boxes))
    /// is shorter than their cells packed one after another.
    #[error("The staging memory of an upload of {boxes} boxes holds {len} bytes, but their {elem_size}-byte cells packed need {needed}")]
    StagingTooShort {
        /// The staging memory's length.
        len: usize,
        /// The boxes it is said to hold.
        boxes: usize,
        /// Bytes per cell.
        elem_size: usize,
        /// The bytes their cells need.
        needed: usize,
    },
    /// A batch was asked to wait for a batch of a `Gpu` on another Vulkan device ([`Batch::wait_for`](super::Batch::wait_for)).
    #[error("Cannot wait on the GPU for batch {batch} of a Gpu on another Vulkan device: only Gpus of one device (Gpu::open_rank) share timelines")]
    ForeignTimeline {
        /// The batch waited for.
        batch: super::BatchId,
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
        /// What they need ([`bounds_record_words`](crate::gpu::bounds_record_words) * 4).
        needed: usize,
    },
    /// A [`KernelId`] from another [`Gpu`](crate::gpu::Gpu).
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
    /// The parameter words of a dispatch of a kernel that reads them from storage (its block is larger than 128
    /// bytes) exceed what it may read.
    #[error(
        "Kernel {kernel} needs {bytes} bytes of parameters ({detail}), more than the {limit} a kernel reading them \
         from storage takes"
    )]
    ParamsTooLarge {
        /// `file::entry_point`.
        kernel: String,
        /// The bytes needed.
        bytes: usize,
        /// [`MAX_PARAMS_BYTES`](crate::gpu::MAX_PARAMS_BYTES).
        limit: usize,
        /// How the size comes about.
        detail: String,
    },
    /// The parameter ring (the slots of dispatches of kernels reading their parameters from storage that pending
    /// batches may still read) would have to grow past what a Vulkan dynamic offset (`u32`) addresses.
    #[error(
        "The kernel parameter ring cannot take {bytes} more bytes: {pending} bytes are pending (dispatches of kernels \
         reading their parameters from storage, in batches not yet complete), and a ring holding both would exceed \
         {limit} bytes, the most a Vulkan dynamic offset (u32) addresses; wait for batches in flight, or record fewer \
         such dispatches per batch"
    )]
    ParamRingFull {
        /// The bytes requested (the slots of one launch's dispatches).
        bytes: u64,
        /// The bytes still pending in the ring.
        pending: u64,
        /// The largest ring (4 GiB).
        limit: u64,
    },
    /// A slot's offset in the parameter ring does not fit the `u32` of a Vulkan dynamic offset (an internal error:
    /// the ring never grows that large).
    #[error("Internal error: offset {offset} in the kernel parameter ring does not fit a Vulkan dynamic offset (u32)")]
    ParamOffsetOverflow {
        /// The slot's byte offset.
        offset: u64,
    },
    /// The kernel's workgroup exceeds a compute limit of the device (`maxComputeWorkGroupSize`,
    /// `maxComputeWorkGroupInvocations`, `maxComputeSharedMemorySize`); found when the kernel is loaded.
    #[error("Kernel {kernel} {problem}, so it cannot run on this device (vulkaninfo lists the device's limits)")]
    WorkgroupTooLarge {
        /// `file::entry_point`.
        kernel: String,
        /// Which limit it exceeds, and by how much.
        problem: String,
    },
    /// The kernel's parameter block (`var<immediate>`: push constants, or a storage buffer past 128 bytes)
    /// declares more bytes than the dispatch provides.
    #[error(
        "Kernel {kernel}'s parameter block (var<immediate>) declares {declared} bytes, but the dispatch provides \
         {provided} (chunk, one box per accessor, {scalars} scalars): are scalars missing?"
    )]
    PushConstantsTooSmall {
        /// `file::entry_point`.
        kernel: String,
        /// The bytes its parameter block declares.
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
    /// The launch of a kernel that calls a block reduction needs more workgroups than the device launches at once,
    /// and no accessor is bound with [`Access::blocks`](super::Access::blocks), so the dispatch cannot be split
    /// without two workgroups writing the same block cell.
    #[error(
        "Kernel {kernel} calls a block reduction and needs {groups:?} workgroups, more than the device's limit of \
         {limit:?} in one dispatch; bind its block cells with Access::blocks so that the dispatch can be split"
    )]
    TooManyWorkgroups {
        /// `file::entry_point`.
        kernel: String,
        /// The workgroup counts needed (x, y, z).
        groups: [u64; 3],
        /// `maxComputeWorkGroupCount`.
        limit: [u32; 3],
    },
    /// An accessor bound with [`Access::blocks`](super::Access::blocks) has fewer cells than the launch has
    /// workgroups along some dimension.
    #[error(
        "Kernel {kernel}: accessor {accessor} holds {cells:?} block cells, fewer than the launch's {needed:?} \
         workgroups (per dimension, dimension 0 first)"
    )]
    TooFewBlockCells {
        /// `file::entry_point`.
        kernel: String,
        /// The accessor's index.
        accessor: usize,
        /// The range of its allocation's box.
        cells: [u32; 3],
        /// The launch's workgroups per dimension.
        needed: [u32; 3],
    },
    /// [`Gpu::read_download`](crate::gpu::Gpu::read_download) before the download's batch completed.
    #[error("Download {0:?} is not ready: its batch has not been seen complete by Gpu::poll")]
    DownloadNotReady(DownloadId),
    /// [`Gpu::read_download`](crate::gpu::Gpu::read_download) of an id that was already read, discarded, or never issued here.
    #[error("Download {0:?} is unknown: already read or discarded, or from another Gpu")]
    UnknownDownload(DownloadId),
    /// The device was lost (`VK_ERROR_DEVICE_LOST`): a kernel faulted or ran into a driver timeout, the driver
    /// reset the GPU, or [`GpuOptions::lose_device_at_poll`](crate::gpu::GpuOptions::lose_device_at_poll) simulated it. Every batch in flight is lost.
    #[error(
        "The Vulkan device was lost (VK_ERROR_DEVICE_LOST{}) on {device} with batch(es) {} in flight; their work \
         did not complete",
        if *injected { ", injected for testing by CELER_INJECT_FAULT" } else { "" },
        batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
    )]
    DeviceLost {
        /// The device, as [`DeviceInfo`](crate::vulkan::DeviceInfo) prints it.
        device: String,
        /// The batches in flight, oldest first.
        batches: Vec<BatchId>,
        /// Whether [`GpuOptions::lose_device_at_poll`](crate::gpu::GpuOptions::lose_device_at_poll) made it up.
        injected: bool,
    },
    /// [`Gpu::poll_until_complete`](crate::gpu::Gpu::poll_until_complete) gave up.
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
pub(super) fn during<E: Describe>(what: impl Into<String>) -> impl FnOnce(E) -> GpuError {
    move |e| GpuError::Vulkan { during: what.into(), message: e.describe() }
}
