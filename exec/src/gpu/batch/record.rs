//! Recording Vulkan commands into a batch's command buffer: barriers, timestamps, copies and pack dispatches.

use ash::vk;
use vulkano::buffer::Subbuffer;
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::VulkanObject;

use super::super::kernel::push_box;
use super::super::{copy_runs, during, Box3, DeviceAllocation, GpuError};
use super::{lookup, Batch, OpKind, STAMPS_PER_BATCH, STAMP_SLOTS};

/// Strided boxes with more contiguous runs than this are packed by a kernel rather than copied run by run.
const PACK_MIN_RUNS: usize = 16;

impl Batch<'_> {
    /// With timestamps on ([`Gpu::enable_timestamps`](crate::gpu::Gpu::enable_timestamps)) and a free slot, resets this batch's slot of queries and
    /// writes its first timestamp.
    pub(super) fn start_stamps(&mut self) {
        let gpu = &*self.gpu;
        let Some(pool) = &gpu.timestamps else { return };
        // Slots go round by batch id; ids in flight are consecutive, so fewer in flight than slots means no clash.
        if gpu.in_flight.len() >= STAMP_SLOTS as usize {
            return;
        }
        let base = ((gpu.last_submitted + 1) % u64::from(STAMP_SLOTS)) as u32 * STAMPS_PER_BATCH;
        let (cb, fns, handle) = (self.command_buffer(), gpu.device.fns(), pool.handle());
        // SAFETY: `cb` is recording, outside a render pass; the queries lie in the pool (base + STAMPS_PER_BATCH
        // <= STAMP_SLOTS * STAMPS_PER_BATCH), none is used by a batch in flight (checked above), and the pool,
        // owned by the Gpu, outlives every batch (the Gpu's Drop waits for the queue). The queue family has
        // timestamp bits (enable_timestamps checked).
        unsafe {
            (fns.v1_0.cmd_reset_query_pool)(cb, handle, base, STAMPS_PER_BATCH);
            (fns.v1_0.cmd_write_timestamp)(cb, vk::PipelineStageFlags::BOTTOM_OF_PIPE, handle, base);
        }
        self.record.stamps = Some(base);
    }

    /// Writes a timestamp after the operation just recorded, while the batch's slot has room.
    pub(super) fn stamp(&mut self, kind: OpKind) {
        let Some(base) = self.record.stamps else { return };
        let next = self.record.stamped.len() as u32 + 1;
        let Some(pool) = &self.gpu.timestamps else { return };
        if next >= STAMPS_PER_BATCH {
            return;
        }
        let (cb, fns, handle) = (self.command_buffer(), self.gpu.device.fns(), pool.handle());
        // SAFETY: as in start_stamps; query base + next was reset at the batch's start and is written once.
        unsafe { (fns.v1_0.cmd_write_timestamp)(cb, vk::PipelineStageFlags::BOTTOM_OF_PIPE, handle, base + next) };
        self.record.stamped.push(kind);
    }

    /// Records one collected dispatch ([`replay::Sig`](super::replay::Sig)) directly, binding what is not bound.
    pub(super) fn record_unit(&mut self, sig: &super::replay::Sig) {
        let cb = self.command_buffer();
        let mut bound = Bound { pipeline: self.bound_pipeline, set: self.bound_set, push: None };
        // SAFETY: `cb` is recording; the pipeline, its layout and the set are those a dispatch of this batch
        // checked and bound (the set kept alive by `self.record.sets`, the pipeline by the Gpu's kernel cache); the
        // push-constant words were checked against the layout's range by prepare_dispatch, the group counts against
        // the device limits (a split launch is never collected); the hazard tracker's barriers were recorded before.
        unsafe { cmd_dispatch_sig(self.gpu.device.fns(), cb, sig, &mut bound) };
        (self.bound_pipeline, self.bound_set) = (bound.pipeline, bound.set);
    }

    pub(super) fn command_buffer(&self) -> vk::CommandBuffer {
        self.recording.expect("only submit takes the recording")
    }

    /// Records one global memory barrier.
    pub(super) fn record_barrier(
        &mut self,
        src_stages: vk::PipelineStageFlags,
        src_access: vk::AccessFlags,
        dst_stages: vk::PipelineStageFlags,
        dst_access: vk::AccessFlags,
    ) {
        if let Some(tape) = &mut self.tape {
            // Collecting dispatches: the next one carries the barrier (always the compute work barrier here).
            tape.barrier_pending = true;
            self.barriers += 1;
            return;
        }
        let cb = self.command_buffer();
        // SAFETY: `cb` is recording and outside a render pass; the stages are supported by a
        // compute queue (compute, transfer, host) and the access masks match them.
        unsafe { cmd_barrier(self.gpu.device.fns(), cb, (src_stages, src_access), (dst_stages, dst_access)) };
        self.barriers += 1;
    }

    /// Records the copy of a strided `region` between `alloc` and a packed `staging` buffer (`unpack`: staging →
    /// allocation) as one dispatch of the `pack.wgsl` kernels, instead of one copy region per contiguous run.
    /// Returns `false`, recording nothing, where that does not pay or cannot be done: few runs, cells that are not
    /// whole 32-bit words, coordinates or sizes beyond what a kernel can address.
    pub(super) fn record_packed(
        &mut self,
        alloc: &DeviceAllocation,
        staging: &Subbuffer<[u8]>,
        region: &Box3,
        unpack: bool,
    ) -> Result<bool, GpuError> {
        let e = alloc.elem_size;
        if !e.is_multiple_of(4) || !region.fits_u32() || !alloc.bounds.fits_u32() {
            return Ok(false);
        }
        let limits = &self.gpu.limits;
        let range = u64::from(limits.max_storage_buffer_range);
        let words = (region.volume() as u64) * (e as u64 / 4);
        if alloc.bytes() as u64 > range || staging.len() > range || words > u64::from(u32::MAX) {
            return Ok(false);
        }
        let groups = (region.volume() as u64).div_ceil(64);
        let gx = groups.min(u64::from(limits.max_workgroup_count[0]));
        let gy = groups.div_ceil(gx.max(1));
        if gy > u64::from(limits.max_workgroup_count[1]) {
            return Ok(false);
        }
        let scratch = &mut self.gpu.scratch;
        scratch.runs.clear();
        copy_runs(&alloc.bounds, region, region, e, &mut scratch.runs);
        if scratch.runs.len() <= PACK_MIN_RUNS {
            return Ok(false);
        }
        let kernel = self.gpu.load_kernel(&crate::shaders::PACK, if unpack { "unpack" } else { "pack" })?;
        let gpu = &mut *self.gpu;
        let entry = lookup(&gpu.kernels, gpu.serial, kernel)?;
        let (pipeline, layout) = (entry.pipeline.handle(), entry.layout.handle());
        let set_layout = gpu.layouts[2].as_ref().expect("load_kernel created the layout for 2 bindings").set.clone();
        let set = DescriptorSet::new(
            gpu.descriptor_sets.clone(),
            set_layout,
            [WriteDescriptorSet::buffer(0, alloc.buffer.clone()), WriteDescriptorSet::buffer(1, staging.clone())],
            [],
        )
        .map_err(during("creating a descriptor set to pack a strided box"))?;
        self.access(&[(alloc.id, unpack)]);
        let mut push = std::mem::take(&mut self.gpu.scratch.words);
        push.clear();
        push_box(&mut push, region);
        push_box(&mut push, &alloc.bounds);
        push.push((e / 4) as u32);
        let cb = self.command_buffer();
        let fns = self.gpu.device.fns();
        // SAFETY: `cb` is recording; the pipeline and its layout live in the Gpu's kernel cache, which outlives
        // every batch in flight; the set was allocated for set layout 0 of that layout (2 storage buffers) and
        // written with the allocation and the staging buffer, both created with storage usage, and
        // `self.record.sets` keeps it (and through it both buffers) alive until completion. The 13 push-constant
        // words fit the range (at least 128 bytes) and match what pack.wgsl declares. pack.wgsl comes from
        // build.rs with bounds-checked indexing; it touches the cells of `region`, which lies inside the
        // allocation (callers checked) and fills the staging buffer's first `words` words (the staging holds at
        // least the packed region). The hazard tracker ordered it after conflicting operations of this batch,
        // and the batch's first barrier after earlier batches. Group counts are within the device limits.
        unsafe {
            (fns.v1_0.cmd_bind_pipeline)(cb, vk::PipelineBindPoint::COMPUTE, pipeline);
            let handle = set.handle();
            (fns.v1_0.cmd_bind_descriptor_sets)(
                cb,
                vk::PipelineBindPoint::COMPUTE,
                layout,
                0,
                1,
                &handle,
                0,
                std::ptr::null(),
            );
            (fns.v1_0.cmd_push_constants)(
                cb,
                layout,
                vk::ShaderStageFlags::COMPUTE,
                0,
                (push.len() * 4) as u32,
                push.as_ptr().cast(),
            );
            (fns.v1_0.cmd_dispatch)(cb, gx as u32, gy as u32, 1);
        }
        self.bound_pipeline = pipeline;
        self.bound_set = (layout, set.handle());
        self.gpu.scratch.words = push;
        self.record.sets.push(set);
        Ok(true)
    }

    /// Records the copy of `region` between a `src` buffer laid out as `src_bounds` and a `dst`
    /// buffer laid out as `dst_bounds`, one `VkBufferCopy` per contiguous run.
    pub(super) fn record_copy(
        &mut self,
        src: &Subbuffer<[u8]>,
        src_bounds: &Box3,
        dst: &Subbuffer<[u8]>,
        dst_bounds: &Box3,
        region: &Box3,
        elem_size: usize,
    ) {
        let scratch = &mut self.gpu.scratch;
        scratch.runs.clear();
        copy_runs(src_bounds, dst_bounds, region, elem_size, &mut scratch.runs);
        scratch.regions.clear();
        scratch.regions.extend(scratch.runs.iter().map(|run| vk::BufferCopy {
            src_offset: src.offset() + run.src_offset as u64,
            dst_offset: dst.offset() + run.dst_offset as u64,
            size: run.len as u64,
        }));
        let cb = self.command_buffer();
        let fns = self.gpu.device.fns();
        let regions = &self.gpu.scratch.regions;
        // SAFETY: `cb` is recording; both buffers were created with TRANSFER_SRC and
        // TRANSFER_DST usage; callers checked that `region` lies inside both layouts, which the
        // buffers hold exactly (staging: at least the packed region), so every region is in
        // bounds, and the two are different buffers (device copies refuse src == dst, staging
        // buffers are distinct from allocations) so regions cannot overlap. The caller pushes
        // both buffers into the batch's record, which keeps them alive until completion, and
        // noted the accesses with the hazard tracker first.
        unsafe {
            (fns.v1_0.cmd_copy_buffer)(
                cb,
                src.buffer().handle(),
                dst.buffer().handle(),
                regions.len() as u32,
                regions.as_ptr(),
            )
        };
    }
}

/// What a command buffer being recorded has bound, so that binding it again can be skipped: the compute pipeline,
/// the descriptor set with its layout, and the push-constant words with their layout (`None`: not known, so the
/// next dispatch pushes its words).
pub(super) struct Bound<'w> {
    pub(super) pipeline: vk::Pipeline,
    pub(super) set: (vk::PipelineLayout, vk::DescriptorSet),
    pub(super) push: Option<(vk::PipelineLayout, &'w [u32])>,
}

/// Records one global memory barrier into `cb`, from `src` (stages, accesses) to `dst`.
///
/// # Safety
/// `cb` is a command buffer of the device of `fns`, recording, outside a render pass; the stages are supported by
/// its queue and the access masks match them.
pub(super) unsafe fn cmd_barrier(
    fns: &vulkano::device::DeviceFunctions,
    cb: vk::CommandBuffer,
    src: (vk::PipelineStageFlags, vk::AccessFlags),
    dst: (vk::PipelineStageFlags, vk::AccessFlags),
) {
    let barrier = vk::MemoryBarrier::default().src_access_mask(src.1).dst_access_mask(dst.1);
    // SAFETY: as the caller promises; `barrier` outlives the call.
    unsafe {
        (fns.v1_0.cmd_pipeline_barrier)(
            cb,
            src.0,
            dst.0,
            vk::DependencyFlags::empty(),
            1,
            &barrier,
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
        )
    }
}

/// Binds the compute `pipeline` and the descriptor set `set` of `layout` (null: none) into `cb` where `bound` says
/// they differ, and notes them there; returns whether the set was bound now.
///
/// # Safety
/// `cb` is a command buffer of the device of `fns`, recording; the pipeline and its layout outlive every submission
/// of `cb`; the set (if not null) was allocated for set layout 0 of `layout` and stays alive while `cb` may run.
pub(super) unsafe fn cmd_bind(
    fns: &vulkano::device::DeviceFunctions,
    cb: vk::CommandBuffer,
    pipeline: vk::Pipeline,
    layout: vk::PipelineLayout,
    set: vk::DescriptorSet,
    bound: &mut Bound<'_>,
) -> bool {
    // SAFETY: as the caller promises; the set handle outlives the call.
    unsafe {
        if bound.pipeline != pipeline {
            (fns.v1_0.cmd_bind_pipeline)(cb, vk::PipelineBindPoint::COMPUTE, pipeline);
            bound.pipeline = pipeline;
        }
        if set == vk::DescriptorSet::null() || bound.set == (layout, set) {
            return false;
        }
        (fns.v1_0.cmd_bind_descriptor_sets)(
            cb,
            vk::PipelineBindPoint::COMPUTE,
            layout,
            0,
            1,
            &set,
            0,
            std::ptr::null(),
        );
    }
    bound.set = (layout, set);
    true
}

/// Binds descriptor set `set` of `layout` into `cb` with `offset` as the dynamic offset of its one dynamic binding
/// (the parameter ring's slot of the next dispatch). Always binds: the offset changes with every dispatch, so
/// [`cmd_bind`]'s "already bound" shortcut, which compares sets only, must not skip this.
///
/// # Safety
/// `cb` is a command buffer of the device of `fns`, recording; `set` was allocated for set layout 0 of `layout`,
/// which has exactly one dynamic descriptor, and stays alive while `cb` may run; `offset` is a multiple of
/// `minStorageBufferOffsetAlignment`, and the descriptor's range shifted by it lies inside its buffer.
pub(super) unsafe fn cmd_bind_dynamic(
    fns: &vulkano::device::DeviceFunctions,
    cb: vk::CommandBuffer,
    layout: vk::PipelineLayout,
    set: vk::DescriptorSet,
    offset: u32,
) {
    // SAFETY: as the caller promises; the handle and the offset outlive the call.
    unsafe {
        (fns.v1_0.cmd_bind_descriptor_sets)(cb, vk::PipelineBindPoint::COMPUTE, layout, 0, 1, &set, 1, &offset);
    }
}

/// Records the dispatch `sig` into `cb`: binds its pipeline, descriptor set and push constants where `bound` says
/// they differ (and notes them there), then dispatches.
///
/// # Safety
/// `cb` is a command buffer of the device of `fns`, recording, outside a render pass. The pipeline and its layout
/// outlive every submission of `cb`; the set (if not null) was allocated for set layout 0 of the layout and stays
/// alive while `cb` may run; the push-constant words fit the layout's range; the group counts are within the
/// device limits.
pub(super) unsafe fn cmd_dispatch_sig<'w>(
    fns: &vulkano::device::DeviceFunctions,
    cb: vk::CommandBuffer,
    sig: &'w super::replay::Sig,
    bound: &mut Bound<'w>,
) {
    // SAFETY: as the caller promises; the words outlive the call (Vulkan copies them).
    unsafe {
        cmd_bind(fns, cb, sig.pipeline, sig.layout, sig.set, bound);
        let words = Some((sig.layout, &sig.push[..]));
        if bound.push != words {
            (fns.v1_0.cmd_push_constants)(
                cb,
                sig.layout,
                vk::ShaderStageFlags::COMPUTE,
                0,
                (sig.push.len() * 4) as u32,
                sig.push.as_ptr().cast(),
            );
            bound.push = words;
        }
        (fns.v1_0.cmd_dispatch)(cb, sig.groups[0], sig.groups[1], sig.groups[2]);
    }
}
