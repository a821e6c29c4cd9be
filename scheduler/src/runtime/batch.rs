//! The open GPU batch: the operations started commands collect, recorded and submitted as one batch.

use std::sync::Arc;

use celer_exec::gpu::{Access, Box3, DeviceAllocation, Launch};
use celer_graph::{AccessMode, BufferId, GridBox};
use smallvec::SmallVec;

use super::boxes::box3;
use super::commands::{AfterGpu, InFlight};
use super::error::{gpu_op, KernelAllocationError, OpContext, RuntimeError};
use super::kernel::{CheckInfo, PendingCheck, KERNEL_CELLS};
use super::RankLoop;

/// A kernel dispatch whose command started in this step, recorded with the other GPU work of the step into one
/// batch.
pub(super) struct PreparedKernel {
    pub(super) kernel: celer_exec::gpu::KernelId,
    pub(super) launch: Launch,
    /// The buffers bound, in binding order (accessors, then reductions), inline for the usual few.
    pub(super) accesses: SmallVec<[(BufferId, AccessMode); 4]>,
    /// Bindings (positions in `accesses`) that bind a scratch allocation (`RankLoop::scratch`) instead of their
    /// buffer's: block reductions' one cell per block.
    pub(super) scratch: Vec<(usize, u64)>,
    /// Bindings (positions in `accesses`) whose range mapper gave the chunk no cells: they bind the cell of
    /// `RankLoop::empty_cells` of their buffer's element size, through [`Access::empty`].
    pub(super) empty: Vec<usize>,
    pub(super) scalars: SmallVec<[u32; 8]>,
    /// Reduction buffers to reset to the operation's identity first.
    pub(super) identities: Vec<(BufferId, Vec<u8>)>,
    /// Names rank, command and task in errors.
    pub(super) context: OpContext,
    /// With `CELER_CHECK_BOUNDS`: what the checked dispatch compares against and names in its report.
    pub(super) check: Option<Box<CheckInfo>>,
}

/// The most spilled binding lists `flush` keeps for `collect_kernel` (`RankLoop::spare_bindings`).
const SPARE_BINDINGS: usize = 64;

/// GPU work a started command adds to the open batch. The loop collects it, across steps while the GPU is busy
/// ([`RankLoop::batch_due`]), and submits it as one batch ([`RankLoop::flush`]), in the order the commands started,
/// so a step that uploads a received halo, runs the kernels that read it and downloads what the next push sends
/// costs one submission, not three, and a chain of tiny kernels goes to the GPU in batches of tens. (Collecting
/// across steps lost on an H100 while every batch was recorded at submission: the recording of a large batch then
/// delayed the GPU. Batches of dispatches now replay cached command buffers, `celer_exec::gpu`'s replay, and
/// collecting wins: chain 1.07–1.10× the batched hand-written chain against 1.12–1.25× submitting every step.)
/// The boxes of one transfer between host and device: one for most, all of a region's for a region of many (a
/// custom mapper's), which then share one staging buffer.
pub(super) type Boxes = SmallVec<[Box3; 1]>;

pub(super) enum GpuOp {
    Kernel(PreparedKernel),
    /// Copies the cells of `boxes` to the device from host bytes holding the cells of box `bounds` (which contains
    /// them) row-major; several uploads may share one received buffer. The boxes (all of a host task's region of
    /// many) go through one staging buffer and one copy command (`Batch::upload_boxes`).
    Upload {
        buffer: BufferId,
        boxes: Boxes,
        bytes: Arc<Vec<u8>>,
        bounds: GridBox,
        context: OpContext,
    },
    /// Copies the cells of `boxes` to the device from lent staging memory holding them packed one after another
    /// (an await-push received into it, `celer_exec::gpu::packed_offsets`); the staging memory goes back to the
    /// GPU's pool when the batch completes.
    UploadStaged {
        buffer: BufferId,
        boxes: Boxes,
        staging: celer_exec::gpu::HostStaging,
        context: OpContext,
    },
    /// Copies what the buffer's previous allocation held into its new one (a growth); the old one is freed once
    /// the batch is submitted (batches in flight keep its memory until they complete).
    Grow {
        buffer: BufferId,
        old: DeviceAllocation,
    },
    /// Copies `region` from another device's allocation on this Vulkan device once its batch `ready` completed
    /// (`runtime::peer`); acks `ack` to device `from` once the batch is submitted.
    PeerCopy {
        buffer: BufferId,
        region: GridBox,
        source: celer_exec::gpu::SharedAllocation,
        ready: celer_exec::gpu::SignalPoint,
        from: usize,
        ack: u64,
        context: OpContext,
    },
    /// Copies a scratch allocation (`RankLoop::scratch`) back whole; filled into download slot `slot`.
    DownloadScratch {
        scratch: u64,
        slot: usize,
        context: OpContext,
    },
    /// Copies boxes of the device allocation back, packed one after another into one staging buffer; filled into
    /// download slot `slot` of the step.
    Download {
        buffer: BufferId,
        boxes: Boxes,
        slot: usize,
        context: OpContext,
    },
}

/// Why a kernel cannot bind an allocation of `cells` cells and `bytes` bytes on a device that binds at most
/// `max_range` bytes (`maxStorageBufferRange`), if it cannot.
pub(super) fn unaddressable(cells: u64, bytes: u64, max_range: u64) -> Option<String> {
    if cells > KERNEL_CELLS {
        Some(format!("more than the {KERNEL_CELLS} cells a kernel indexes (u32)"))
    } else if bytes > max_range {
        Some(format!("more than the {max_range} bytes this device binds for one accessor (maxStorageBufferRange)"))
    } else {
        None
    }
}

impl GpuOp {
    /// Whether the operation copies into, out of, or binds buffer `b`'s device allocation.
    pub(super) fn uses(&self, b: BufferId) -> bool {
        match self {
            GpuOp::Kernel(k) => k.accesses.iter().any(|(x, _)| *x == b) || k.identities.iter().any(|(x, _)| *x == b),
            GpuOp::Upload { buffer, .. }
            | GpuOp::UploadStaged { buffer, .. }
            | GpuOp::Grow { buffer, .. }
            | GpuOp::PeerCopy { buffer, .. }
            | GpuOp::Download { buffer, .. } => *buffer == b,
            GpuOp::DownloadScratch { .. } => false,
        }
    }
}

/// Where a command's GPU work is: in a submitted batch, or in the one the loop is still collecting (submitted once
/// [`RankLoop::batch_due`]; [`RankLoop::flush`] turns `Open` into `Submitted`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum GpuRef {
    Submitted(celer_exec::gpu::BatchId),
    Open,
}

/// A download of a command's GPU work: a slot of the step's collected batch until it is submitted.
#[derive(Clone, Copy, Debug)]
pub(super) enum Dl {
    Slot(usize),
    Ready(celer_exec::gpu::DownloadId),
}

impl Dl {
    pub(super) fn id(self) -> Result<celer_exec::gpu::DownloadId, RuntimeError> {
        match self {
            Dl::Ready(id) => Ok(id),
            Dl::Slot(_) => Err(RuntimeError::Internal("a download was read before its batch was submitted")),
        }
    }

    pub(super) fn resolve(&mut self, ids: &[celer_exec::gpu::DownloadId]) {
        if let Dl::Slot(i) = *self {
            *self = Dl::Ready(ids[i]);
        }
    }
}

/// Batches kept in flight on the GPU before the loop collects work across steps: one running, one queued behind it.
const GPU_QUEUE_DEPTH: usize = 2;

/// Operations a batch collects before it is submitted although the GPU is busy (a replayed piece holds up to 64
/// dispatches).
const BATCH_OPS: usize = 64;

impl RankLoop<'_> {
    pub(super) fn pend_scratch_download(&mut self, scratch: u64, context: OpContext) -> Dl {
        let slot = self.pending_downloads;
        self.pending_downloads += 1;
        self.pending.push(GpuOp::DownloadScratch { scratch, slot, context });
        Dl::Slot(slot)
    }

    pub(super) fn pend_download(&mut self, buffer: BufferId, region: GridBox, context: OpContext) -> Dl {
        self.pend_download_boxes(buffer, smallvec::smallvec![box3(&region)], context)
    }

    /// Adds a download of several boxes to the open batch, packed one after another into one staging buffer
    /// (`celer_exec::gpu::packed_offsets`); returns its slot.
    pub(super) fn pend_download_boxes(&mut self, buffer: BufferId, boxes: Boxes, context: OpContext) -> Dl {
        let slot = self.pending_downloads;
        self.pending_downloads += 1;
        self.pending_buffer_downloads += 1;
        self.pending.push(GpuOp::Download { buffer, boxes, slot, context });
        Dl::Slot(slot)
    }

    /// Hands out a reference to the open batch.
    pub(super) fn open(&mut self) -> GpuRef {
        self.open_refs = true;
        GpuRef::Open
    }

    /// Whether the GPU work collected so far is submitted at the end of this step: when the GPU would run short of
    /// work (fewer than [`GPU_QUEUE_DEPTH`] batches in flight), when a download waits in it (another rank, a fence,
    /// a host task or a reduction waits for its data), or when it holds [`BATCH_OPS`] operations. Otherwise the
    /// next steps add to it: while the GPU is busy, submitting what each step started would cut the work into
    /// small batches, and every batch boundary costs the GPU a gap.
    pub(super) fn batch_due(&self) -> bool {
        self.gpu.in_flight() < GPU_QUEUE_DEPTH
            || self.pending_downloads > 0
            || !self.peer_out.is_empty()
            || self.pending.len() >= BATCH_OPS
    }

    /// Records the GPU work collected so far into one batch (barriers between dependent operations come from the
    /// batch's hazard tracking), submits it, and points the commands waiting for it at the submitted batch.
    pub(super) fn flush(&mut self) -> Result<(), RuntimeError> {
        if self.pending.is_empty() && !self.open_refs {
            return Ok(());
        }
        // Taken for the loop and given back empty afterwards, so its storage serves every step.
        let mut ops = std::mem::take(&mut self.pending);
        // Checked kernels' bounds records, allocated before the batch borrows the GPU. TODO(perf): pool them; this
        // is a debugging mode.
        let mut records = Vec::new();
        for op in &ops {
            if let GpuOp::Kernel(PreparedKernel { check: Some(info), context, .. }) = op {
                let words = celer_exec::gpu::bounds_record_words(info.declared.len());
                let record = self.gpu.allocate(Box3::d1(0, words), 4).map_err(|error| RuntimeError::GpuOp {
                    context: format!("{}: the bounds record of CELER_CHECK_BOUNDS", context.describe(&self.tm)),
                    error,
                })?;
                records.push(record);
            }
        }
        let mut records = records.into_iter();
        let max_range = u64::from(self.gpu.limits().max_storage_buffer_range);
        let mut checks = Vec::new();
        let mut downloads = Vec::with_capacity(self.pending_downloads);
        let mut kernels = 0u64;
        let mut uploads = 0usize;
        let mut grown = Vec::new();
        let mut acks = Vec::new();
        let buffers = &self.buffers;
        let scratch = &self.scratch;
        let empty_cells = &self.empty_cells;
        let tm = &self.tm;
        let scratch_of =
            |id: &u64| scratch.get(id).ok_or(RuntimeError::Internal("a block reduction's scratch allocation vanished"));
        // Every op of a batch names its buffer's current allocation: `cover` submits what was collected before it
        // grows one.
        let device = |b: &BufferId, context: &OpContext| -> Result<&DeviceAllocation, RuntimeError> {
            buffers
                .get(b)
                .and_then(|s| s.device.as_ref())
                .ok_or_else(|| RuntimeError::NoAllocation { context: context.describe(tm), buffer: *b })
        };
        let mut batch = self.gpu.batch()?;
        for point in self.peer_waits.drain(..) {
            batch.wait_for(&point)?;
        }
        // One kernel's bindings at a time, in storage kept across the batch's kernels (one spill per batch where a
        // kernel binds more than four buffers, not one per kernel).
        let mut list: SmallVec<[Access<'_>; 4]> = SmallVec::new();
        let mut spare_bindings = std::mem::take(&mut self.spare_bindings);
        for op in ops.drain(..) {
            match op {
                GpuOp::Kernel(k) => {
                    for (b, bytes) in &k.identities {
                        let d = device(b, &k.context)?;
                        let extent = box3(&buffers[b].extent);
                        batch.upload(d, extent, bytes, extent).map_err(gpu_op(&k.context, tm))?;
                    }
                    list.clear();
                    for (i, (b, mode)) in k.accesses.iter().enumerate() {
                        // A block reduction's cells: one per workgroup, whichever dispatch of a split launch runs it.
                        if let Some((_, id)) = k.scratch.iter().find(|s| s.0 == i) {
                            list.push(Access::blocks(scratch_of(id)?));
                            continue;
                        }
                        if k.empty.contains(&i) {
                            let size = buffers.get(b).map_or(0, |s| s.elem_size);
                            let cell = empty_cells.iter().find(|a| a.elem_size() == size).ok_or(
                                RuntimeError::Internal("the stand-in cell of an accessor without cells vanished"),
                            )?;
                            list.push(Access::empty(cell, access_mode(*mode)));
                            continue;
                        }
                        let d = device(b, &k.context)?;
                        let (cells, bytes) = (d.bounds().volume() as u64, d.bytes() as u64);
                        if let Some(problem) = unaddressable(cells, bytes, max_range) {
                            return Err(RuntimeError::KernelAllocation(Box::new(KernelAllocationError {
                                context: k.context.describe(tm),
                                accessor: i,
                                buffer: tm.buffer_ident(*b).to_string(),
                                bounds: GridBox::new(d.bounds().min(), d.bounds().max()),
                                cells,
                                bytes,
                                problem,
                            })));
                        }
                        list.push(match mode {
                            AccessMode::Read => Access::read(d),
                            AccessMode::ReadWrite => Access::read_write(d),
                            AccessMode::Write | AccessMode::DiscardWrite => Access::write(d),
                        });
                    }
                    if let Some(info) = k.check {
                        let record = records.next().expect("one record per checked kernel");
                        let declared: Vec<Box3> = info.declared.iter().map(box3).collect();
                        let allocations: Vec<Box3> = list.iter().map(Access::record_box).collect();
                        let words = celer_exec::gpu::bounds_record_init(&declared, &allocations);
                        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                        let all = record.bounds();
                        batch.upload(&record, all, &bytes, all).map_err(gpu_op(&k.context, tm))?;
                        batch
                            .dispatch_checked(k.kernel, k.launch, &list, &k.scalars, &record)
                            .map_err(gpu_op(&k.context, tm))?;
                        let download = batch.download(&record, all).map_err(gpu_op(&k.context, tm))?;
                        checks.push((download, record, info));
                    } else {
                        batch.dispatch(k.kernel, k.launch, &list, &k.scalars).map_err(gpu_op(&k.context, tm))?;
                    }
                    kernels += 1;
                    if k.accesses.spilled() && spare_bindings.len() < SPARE_BINDINGS {
                        let mut bindings = k.accesses;
                        bindings.clear();
                        spare_bindings.push(bindings);
                    }
                }
                GpuOp::Upload { buffer, boxes, bytes, bounds, context } => {
                    batch
                        .upload_boxes(device(&buffer, &context)?, &boxes, &bytes, box3(&bounds))
                        .map_err(gpu_op(&context, tm))?;
                    uploads += 1;
                }
                GpuOp::UploadStaged { buffer, boxes, staging, context } => {
                    batch
                        .upload_staged_boxes(device(&buffer, &context)?, &boxes, staging)
                        .map_err(gpu_op(&context, tm))?;
                    uploads += 1;
                }
                GpuOp::Grow { buffer, old } => {
                    let context = || format!("growing the allocation of {buffer}");
                    let d = buffers
                        .get(&buffer)
                        .and_then(|s| s.device.as_ref())
                        .ok_or_else(|| RuntimeError::NoAllocation { context: context(), buffer })?;
                    batch
                        .copy(&old, d, old.bounds())
                        .map_err(|error| RuntimeError::GpuOp { context: context(), error })?;
                    grown.push(old);
                }
                GpuOp::PeerCopy { buffer, region, source, ready, from, ack, context } => {
                    batch
                        .copy_from_shared(&source, &ready, device(&buffer, &context)?, box3(&region))
                        .map_err(gpu_op(&context, tm))?;
                    acks.push((from, ack));
                }
                GpuOp::DownloadScratch { scratch: id, slot, context } => {
                    debug_assert_eq!(slot, downloads.len());
                    let d = scratch_of(&id)?;
                    downloads.push(batch.download(d, d.bounds()).map_err(gpu_op(&context, tm))?);
                }
                GpuOp::Download { buffer, boxes, slot, context } => {
                    debug_assert_eq!(slot, downloads.len());
                    let d = device(&buffer, &context)?;
                    downloads.push(batch.download_boxes(d, &boxes).map_err(gpu_op(&context, tm))?);
                }
            }
        }
        drop(list);
        self.spare_bindings = spare_bindings;
        let (waits, copies) = (batch.timeline_waits(), acks.len());
        let id = batch.submit()?;
        self.pending = ops;
        if !acks.is_empty() {
            self.post_acks(id, acks)?;
        }
        if !self.peer_out.is_empty() {
            self.post_offers(id)?;
        }
        self.checks.extend(checks.into_iter().map(|(download, record, info)| PendingCheck {
            batch: id,
            download,
            record,
            info,
        }));
        // The submitted batch keeps the old allocations' memory until it completes.
        for old in grown {
            self.gpu.free(old);
        }
        if self.trace.is_some() {
            let mut what = format!("{kernels} kernel(s), {uploads} upload(s), {} download(s)", downloads.len());
            if copies > 0 || waits > 0 {
                what += &format!(", {copies} copies from other devices, waits for {waits} other queue(s)");
            }
            self.traced_batches.push((id, std::time::Instant::now(), what));
        }
        self.pending_downloads = 0;
        self.pending_buffer_downloads = 0;
        self.open_refs = false;
        if kernels > 0 {
            self.stats.kernels += kernels;
            self.stats.kernel_batches += 1;
            self.kernel_batches.push((id, std::time::Instant::now()));
        }
        for (_, flight) in &mut self.in_flight {
            if let InFlight::Gpu(r, after) = flight {
                if *r == GpuRef::Open {
                    *r = GpuRef::Submitted(id);
                    match after {
                        AfterGpu::Done => {}
                        AfterGpu::Blocks { parts, .. } => parts.iter_mut().for_each(|p| p.download.resolve(&downloads)),
                        AfterGpu::Push { downloads: d, .. } => d.iter_mut().for_each(|x| x.0.resolve(&downloads)),
                        AfterGpu::Reduce { download, .. } => {
                            if let Some(d) = download {
                                d.resolve(&downloads);
                            }
                        }
                        AfterGpu::HostInputs { downloads: d, .. } => d.iter_mut().for_each(|x| x.1.resolve(&downloads)),
                        AfterGpu::Fence { download, .. } => download.resolve(&downloads),
                    }
                }
            }
        }
        Ok(())
    }
}

/// How the backend's hazard tracking sees an accessor of `mode`.
fn access_mode(mode: AccessMode) -> celer_exec::gpu::AccessMode {
    match mode {
        AccessMode::Read => celer_exec::gpu::AccessMode::Read,
        AccessMode::ReadWrite => celer_exec::gpu::AccessMode::ReadWrite,
        AccessMode::Write | AccessMode::DiscardWrite => celer_exec::gpu::AccessMode::Write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_a_kernel_cannot_address_is_named_by_the_limit_it_exceeds() {
        let gib = 1u64 << 30;
        assert_eq!(unaddressable(KERNEL_CELLS, KERNEL_CELLS, 4 * gib), None, "2^32 one-byte cells fit");
        let cells = unaddressable(KERNEL_CELLS + 1, KERNEL_CELLS + 1, u64::MAX).expect("one cell too many");
        assert!(cells.contains("4294967296 cells a kernel indexes (u32)"), "{cells}");
        let bytes = unaddressable(1 << 20, 4 * gib + 4, 4 * gib).expect("bytes beyond the device's range");
        assert!(
            bytes.contains("4294967296 bytes this device binds") && bytes.contains("maxStorageBufferRange"),
            "{bytes}"
        );
    }
}
