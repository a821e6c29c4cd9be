//! Recording a batch into one command buffer, deriving its barriers, and submitting it; its copy operations live in
//! [`transfer`].

use std::fmt;
use std::sync::Arc;

use ash::vk;
use vulkano::buffer::Subbuffer;
use vulkano::descriptor_set::DescriptorSet;
use vulkano::sync::fence::Fence;
use vulkano::VulkanObject;

use super::kernel::{prepare_dispatch, split_count, split_launch, Access, KernelEntry, KernelId};
use super::{AllocationId, CopyRun, DeviceAllocation, DownloadId, Gpu, GpuError};

use hazards::Hazards;

mod hazards;
mod record;
pub(super) mod replay;
mod submit;
mod transfer;

/// Batches that can carry timestamps at once (a batch beyond that many in flight goes untimed).
pub(super) const STAMP_SLOTS: u32 = 64;
/// Timestamps per batch: its start, then one after each operation (later operations go untimed).
pub(super) const STAMPS_PER_BATCH: u32 = 64;

/// What a timed operation of a batch was ([`Gpu::enable_timestamps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A dispatch of this kernel.
    Kernel(KernelId),
    /// A host-to-device copy of this many bytes.
    Upload {
        /// Bytes copied.
        bytes: usize,
    },
    /// A device-to-host copy of this many bytes.
    Download {
        /// Bytes copied.
        bytes: usize,
    },
    /// A device-to-device copy of this many bytes.
    Copy {
        /// Bytes copied.
        bytes: usize,
    },
}

/// The device time of one operation of a completed batch, in ns after the batch started on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpTime {
    /// What it was.
    pub kind: OpKind,
    /// When the operation before it (or the batch's start) had finished.
    pub start_ns: u64,
    /// When it had finished.
    pub end_ns: u64,
}

/// Scratch vectors reused by every operation, so recording allocates nothing in steady state.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) runs: Vec<CopyRun>,
    pub(super) regions: Vec<vk::BufferCopy>,
    pub(super) words: Vec<u32>,
    pub(super) key: Vec<AllocationId>,
    accesses: Vec<(AllocationId, bool)>,
    /// The command buffers of a replayed batch's submission.
    command_buffers: Vec<vk::CommandBuffer>,
}

/// What a submitted batch holds until [`Gpu::poll`] sees it complete.
#[derive(Default)]
pub(super) struct InFlight {
    /// The value it signals on the timeline semaphore: its [`BatchId`](crate::gpu::BatchId).
    pub(super) id: u64,
    /// Its fence, in [`CompletionMode::Fences`](super::CompletionMode::Fences).
    pub(super) fence: Option<Fence>,
    /// Its command buffer (of the Gpu's pool), which goes back to the pool at completion.
    pub(super) command_buffer: Option<vk::CommandBuffer>,
    /// Allocations its copies use (dispatches hold theirs through `sets`).
    pub(super) buffers: Vec<Subbuffer<[u8]>>,
    /// Descriptor sets its dispatches bound; each holds the allocations it binds.
    pub(super) sets: Vec<Arc<DescriptorSet>>,
    /// Staging buffers to return to the pool at completion.
    pub(super) uploads: Vec<Subbuffer<[u8]>>,
    /// Downloads that become readable at completion: id, staging, the boxes it holds packed.
    pub(super) downloads: Vec<(DownloadId, Subbuffer<[u8]>, super::Packed)>,
    /// Timeline semaphores of other `Gpu`s on the device, and the values its submission waits for on the GPU
    /// ([`Batch::copy_from_shared`]); held until completion.
    pub(super) waits: Vec<(Arc<vulkano::sync::semaphore::Semaphore>, u64)>,
    /// With timestamps on: the first query of its slot, and what each later query follows.
    pub(super) stamps: Option<u32>,
    pub(super) stamped: Vec<OpKind>,
    /// Where its slots of the parameter ring end ([`ParamRing::mark`](super::params::ParamRing::mark)), if its
    /// dispatches took any: freed at completion.
    pub(super) params_mark: Option<(u32, u64)>,
}

impl InFlight {
    /// Drops what it holds, keeping the vectors' memory for the next batch.
    pub(super) fn clear(&mut self) {
        self.id = 0;
        self.fence = None;
        self.command_buffer = None;
        self.buffers.clear();
        self.sets.clear();
        self.uploads.clear();
        self.downloads.clear();
        self.waits.clear();
        self.stamps = None;
        self.stamped.clear();
        self.params_mark = None;
    }
}

/// Stages of the operations a batch records.
const WORK_STAGES: vk::PipelineStageFlags = vk::PipelineStageFlags::from_raw(
    vk::PipelineStageFlags::COMPUTE_SHADER.as_raw() | vk::PipelineStageFlags::TRANSFER.as_raw(),
);
/// Writes a barrier makes available.
const WORK_WRITES: vk::AccessFlags =
    vk::AccessFlags::from_raw(vk::AccessFlags::SHADER_WRITE.as_raw() | vk::AccessFlags::TRANSFER_WRITE.as_raw());
/// Accesses a barrier makes those writes visible to.
const WORK_ACCESSES: vk::AccessFlags = vk::AccessFlags::from_raw(
    vk::AccessFlags::SHADER_READ.as_raw()
        | vk::AccessFlags::SHADER_WRITE.as_raw()
        | vk::AccessFlags::TRANSFER_READ.as_raw()
        | vk::AccessFlags::TRANSFER_WRITE.as_raw(),
);

/// Copies and dispatches recorded into one command buffer, submitted together with
/// [`submit`](Self::submit); made by [`Gpu::batch`]. See the [module docs](super) for the
/// barrier policy.
///
/// Every method validates its arguments before recording anything, so after an error the
/// batch is unchanged and can still be submitted. Dropping a batch without submitting it
/// discards what it recorded.
pub struct Batch<'g> {
    gpu: &'g mut Gpu,
    /// The command buffer being recorded (of the Gpu's pool); `None` once submitted, and while `tape` collects.
    recording: Option<vk::CommandBuffer>,
    /// While every operation so far was an ordinary dispatch: the dispatches, collected instead of recorded, to
    /// replay from cached command buffers at submission ([`replay`]); `None` once the batch records directly.
    tape: Option<replay::Tape>,
    record: InFlight,
    hazards: Hazards,
    ops: usize,
    barriers: usize,
    /// What is bound in the command buffer, to skip redundant binds.
    bound_pipeline: vk::Pipeline,
    bound_set: (vk::PipelineLayout, vk::DescriptorSet),
    /// Whether a download needs the final transfer→host barrier.
    downloads: bool,
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.ops)
            .field("barriers", &self.barriers)
            .field("hazards", &self.hazards)
            .finish_non_exhaustive()
    }
}

impl<'g> Batch<'g> {
    pub(super) fn new(gpu: &'g mut Gpu) -> Result<Self, GpuError> {
        if gpu.in_flight.is_empty() {
            // Nothing can read the parameter ring any more (and no other batch is being recorded: this one holds
            // the Gpu).
            gpu.params.all_free();
        }
        let replay = gpu.replay_batches && gpu.timestamps.is_none();
        let recording = if replay { None } else { Some(gpu.commands.begin()?) };
        let tape = replay.then(|| std::mem::take(&mut gpu.spare_tape));
        let record = gpu.spare.pop().unwrap_or_default();
        let mut batch = Batch {
            gpu,
            recording,
            tape,
            record,
            hazards: Hazards::default(),
            ops: 0,
            barriers: 0,
            bound_pipeline: vk::Pipeline::null(),
            bound_set: (vk::PipelineLayout::null(), vk::DescriptorSet::null()),
            downloads: false,
        };
        if batch.tape.is_none() {
            batch.start_recording();
        }
        Ok(batch)
    }

    /// Records what every directly recorded batch begins with: a barrier that orders it after everything
    /// submitted before it on the queue, so batches in flight may depend on each other (TODO(perf): skip it when
    /// the batch touches nothing that batches in flight write), and its first timestamp.
    fn start_recording(&mut self) {
        let barriers = self.barriers;
        self.record_barrier(WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESSES);
        self.barriers = barriers;
        self.start_stamps();
    }

    /// Switches a batch that collects a tape to direct recording: begins its command buffer and records the
    /// collected dispatches into it. Called before any operation other than an ordinary dispatch.
    fn materialize(&mut self) -> Result<(), GpuError> {
        let Some(mut tape) = self.tape.take() else { return Ok(()) };
        match self.gpu.commands.begin() {
            Ok(cb) => self.recording = Some(cb),
            Err(e) => {
                self.tape = Some(tape);
                return Err(e);
            }
        }
        self.start_recording();
        // The tape tracked what was bound to decide which sets the record keeps; the command buffer binds anew.
        self.bound_pipeline = vk::Pipeline::null();
        self.bound_set = (vk::PipelineLayout::null(), vk::DescriptorSet::null());
        let barriers = self.barriers;
        for unit in tape.units.drain(..) {
            if unit.barrier {
                self.record_barrier(WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESSES);
            }
            self.record_unit(&unit.sig);
        }
        if std::mem::take(&mut tape.barrier_pending) {
            self.record_barrier(WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESSES);
        }
        self.barriers = barriers;
        self.gpu.spare_tape = tape;
        Ok(())
    }

    /// Operations recorded so far (empty-region copies and empty launches not counted).
    pub fn len(&self) -> usize {
        self.ops
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }

    /// Makes this batch's submission wait on the GPU until `point` (a batch of another `Gpu` on the same Vulkan
    /// device) has completed, before any of its work starts: for work that must not start before another queue's
    /// (e.g. overwriting cells that queue's batch copies from). Nothing waits on the host.
    ///
    /// # Errors
    ///
    /// [`GpuError::ForeignTimeline`] if `point` belongs to another Vulkan device.
    pub fn wait_for(&mut self, point: &super::SignalPoint) -> Result<(), GpuError> {
        if !Arc::ptr_eq(&point.device, &self.gpu.device) {
            return Err(GpuError::ForeignTimeline { batch: point.batch() });
        }
        self.materialize()?;
        self.add_wait(point);
        Ok(())
    }

    /// Adds a wait for `point` to the submission (one per timeline, at the latest value asked).
    fn add_wait(&mut self, point: &super::SignalPoint) {
        match self.record.waits.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &point.semaphore)) {
            Some((_, value)) => *value = (*value).max(point.value),
            None => self.record.waits.push((point.semaphore.clone(), point.value)),
        }
    }

    /// The timelines of other `Gpu`s this batch's submission waits on ([`copy_from_shared`](Self::copy_from_shared)),
    /// one per `Gpu` (at the latest value asked of it).
    pub fn timeline_waits(&self) -> usize {
        self.record.waits.len()
    }

    /// Pipeline barriers derived so far between this batch's operations.
    pub fn barriers(&self) -> usize {
        self.barriers
    }

    /// Records a dispatch of `kernel` over `launch`, with `accessors` bound in order to
    /// `@group(0)` bindings 0.. and push constants laid out as the
    /// [module docs](super#push-constant-layout) describe, ending with `scalars`.
    ///
    /// # Errors
    ///
    /// Each names the kernel: [`GpuError::BindingMismatch`] if the number of accessors differs
    /// from the bindings the kernel declares, [`GpuError::PushConstantsTooLarge`] beyond the
    /// device's push-constant limit ([`GpuError::ParamsTooLarge`] beyond
    /// [`MAX_PARAMS_BYTES`](super::MAX_PARAMS_BYTES) for a kernel reading its parameters from storage),
    /// [`GpuError::PushConstantsTooSmall`] if the kernel declares more, [`GpuError::AllocationFailed`] if the
    /// parameter ring must grow and cannot, [`GpuError::CoordinateOverflow`], [`GpuError::StorageBufferTooLarge`],
    /// [`GpuError::TooManyWorkgroups`] (a block-reduction kernel needing more workgroups than one dispatch takes,
    /// without an [`Access::blocks`] accessor), [`GpuError::TooFewBlockCells`]; [`GpuError::UnknownKernel`] for a
    /// kernel of another `Gpu`.
    ///
    /// A launch needing more workgroups than the device's `maxComputeWorkGroupCount` along some axis is recorded
    /// as several dispatches at whole workgroups (one operation for [`len`](Self::len) and the timestamps).
    pub fn dispatch(
        &mut self,
        kernel: KernelId,
        launch: super::Launch,
        accessors: &[Access<'_>],
        scalars: &[u32],
    ) -> Result<(), GpuError> {
        self.record_dispatch(kernel, launch, accessors, scalars, None)
    }

    /// [`dispatch`](Self::dispatch) of a kernel's checked variant ([`Gpu::load_kernel_checked`]), which also
    /// records every `celer_index` access outside the box its accessor declared into `record`: an allocation of
    /// at least [`bounds_record_words`](super::bounds_record_words) 4-byte cells, bound after the accessors. Upload
    /// [`bounds_record_init`](super::bounds_record_init) into it first and download it afterwards (in this batch
    /// or a later one; the hazard tracking orders them), then decode it with
    /// [`read_bounds_record`](super::read_bounds_record).
    ///
    /// # Errors
    ///
    /// As [`dispatch`](Self::dispatch); [`GpuError::CheckedMismatch`] for a kernel loaded with
    /// [`Gpu::load_kernel`], [`GpuError::BadBoundsRecord`] for a record too small.
    pub fn dispatch_checked(
        &mut self,
        kernel: KernelId,
        launch: super::Launch,
        accessors: &[Access<'_>],
        scalars: &[u32],
        record: &DeviceAllocation,
    ) -> Result<(), GpuError> {
        self.record_dispatch(kernel, launch, accessors, scalars, Some(record))
    }

    fn record_dispatch(
        &mut self,
        kernel: KernelId,
        launch: super::Launch,
        accessors: &[Access<'_>],
        scalars: &[u32],
        record: Option<&DeviceAllocation>,
    ) -> Result<(), GpuError> {
        let gpu = &mut *self.gpu;
        let entry = lookup(&gpu.kernels, gpu.serial, kernel)?;
        if entry.checked != record.is_some() {
            return Err(GpuError::CheckedMismatch { kernel: entry.name.clone(), checked: entry.checked });
        }
        if let Some(r) = record {
            let needed = 4 * super::bounds_record_words(accessors.len());
            if r.elem_size != 4 || r.bytes() < needed {
                return Err(GpuError::BadBoundsRecord {
                    kernel: entry.name.clone(),
                    bytes: r.bytes(),
                    elem_size: r.elem_size,
                    accessors: accessors.len(),
                    needed,
                });
            }
        }
        let counts = prepare_dispatch(entry, &launch, accessors, scalars, &gpu.limits, &mut gpu.scratch.words)?;
        let (workgroup_size, limit) = (entry.workgroup_size, gpu.limits.max_workgroup_count);
        if launch.chunk().is_empty() {
            return Ok(());
        }
        // The pipeline and its layout live in the Gpu's cache as long as the Gpu, which outlives
        // every batch in flight (Gpu's Drop waits for them), so raw handles suffice.
        let (pipeline, layout) = (entry.pipeline.handle(), entry.layout.handle());
        let bindings = entry.bindings + usize::from(entry.checked);
        let params = entry.params;
        let set_layout = entry.set_layout.clone();

        // A launch of more workgroups than the device launches at once runs as several dispatches, each over the
        // launch's cells of its workgroups (its chunk box) and telling block accessors its first workgroup.
        let dispatches = split_count(counts, limit);
        // A kernel reading its parameters from storage: one slot of the ring per dispatch, taken before anything
        // is recorded (a new ring drops the cached sets of the old one).
        let slots = match params {
            Some(_) => {
                let stride = ((gpu.scratch.words.len() * 4) as u64).next_multiple_of(gpu.params_align.max(4));
                let (base, replaced) = gpu.params.reserve(&gpu.memory, stride * dispatches)?;
                if let Some(generation) = replaced {
                    gpu.replace_ring(generation);
                }
                self.record.params_mark = Some(gpu.params.mark());
                Some((base, stride))
            }
            None => None,
        };
        let set = if bindings > 0 || params.is_some() {
            Some(gpu.descriptor_set(&set_layout, accessors, record, params)?)
        } else {
            None
        };
        // Dispatches reading the ring are recorded, not collected: a replayed command buffer would bake in their
        // slots' offsets, which the next batch's words do not occupy.
        if self.tape.is_some() && (record.is_some() || dispatches != 1 || params.is_some()) {
            self.materialize()?;
        }

        let mut accesses = std::mem::take(&mut self.gpu.scratch.accesses);
        accesses.clear();
        accesses.extend(accessors.iter().map(|a| (a.alloc.id, a.mode.writes())));
        accesses.extend(record.map(|r| (r.id, true)));
        self.access(&accesses);
        self.gpu.scratch.accesses = accesses;

        if let Some(tape) = &mut self.tape {
            let handle = set.as_ref().map_or(vk::DescriptorSet::null(), |s| s.handle());
            let barrier = std::mem::take(&mut tape.barrier_pending);
            tape.units.push(replay::Unit {
                sig: replay::Sig {
                    pipeline,
                    layout,
                    set: handle,
                    push: smallvec::SmallVec::from_slice(&self.gpu.scratch.words),
                    groups: counts.map(|c| c as u32),
                },
                set: set.clone(),
                barrier,
            });
            self.bound_pipeline = pipeline;
            if let Some(set) = set {
                if self.bound_set != (layout, handle) {
                    self.bound_set = (layout, handle);
                    self.record.sets.push(set);
                }
            }
            self.ops += 1;
            return Ok(());
        }

        let cb = self.command_buffer();
        let fns = self.gpu.device.fns();
        let handle = set.as_ref().map_or(vk::DescriptorSet::null(), |s| s.handle());
        let mut bound = record::Bound { pipeline: self.bound_pipeline, set: self.bound_set, push: None };
        // A set with the parameter ring is bound below, with each dispatch's offset.
        let bind_now = if slots.is_some() { vk::DescriptorSet::null() } else { handle };
        // SAFETY: `cb` is in the recording state (this batch owns it until submit); the pipeline is a compute
        // pipeline of this device, alive as long as the Gpu (see above); `set` was allocated with set layout 0 of
        // `layout` (Gpu::layout_for shares one pair per binding count) and is written with a buffer per binding;
        // `self.record.sets` keeps it, and through it the bound allocations, alive until poll sees this batch
        // complete.
        let set_bound = unsafe { record::cmd_bind(fns, cb, pipeline, layout, bind_now, &mut bound) };
        (self.bound_pipeline, self.bound_set) = (bound.pipeline, bound.set);
        if let Some(set) = set.filter(|_| set_bound || slots.is_some()) {
            self.record.sets.push(set);
        }
        let words = &mut self.gpu.scratch.words;
        for n in 0..dispatches {
            let groups = if dispatches == 1 {
                counts.map(|c| c as u32)
            } else {
                let sub = split_launch(&launch, workgroup_size, counts, limit, n);
                let (m, r) = (sub.chunk.min(), sub.chunk.max());
                for d in 0..3 {
                    words[d] = m[d] as u32;
                    words[3 + d] = (r[d] - m[d]) as u32;
                }
                for (i, a) in accessors.iter().enumerate() {
                    if a.is_blocks() {
                        let at = super::kernel::CHUNK_WORDS + super::kernel::ACCESSOR_WORDS * i;
                        words[at..at + 3].copy_from_slice(&sub.first_group);
                    }
                }
                sub.groups
            };
            if let Some((base, stride)) = slots {
                let offset = base + n * stride;
                let dynamic_offset = super::params::dynamic_offset(offset)?;
                self.gpu.params.write(offset, words)?;
                // SAFETY: `cb` is recording; `handle` is the set `set` (kept alive by `self.record.sets` until
                // completion), allocated for set layout 0 of `layout`, whose only dynamic binding is the parameter
                // ring's, written with a range of MAX_PARAMS_BYTES from the ring's start; `offset` is a multiple of
                // minStorageBufferOffsetAlignment (the stride is, and so is every slot the ring hands out) and at
                // most the ring's capacity, and the ring holds MAX_PARAMS_BYTES beyond its capacity, so the range
                // lies in the buffer. The slot holds this dispatch's words, which no pending batch reads (the
                // ring's tail) and no later slot overwrites before this batch completed (its mark).
                unsafe { record::cmd_bind_dynamic(fns, cb, layout, handle, dynamic_offset) };
                self.bound_set = (layout, handle);
            } else {
                // SAFETY: `cb` is recording; `layout` has one compute push-constant range of
                // `maxPushConstantsSize` bytes at offset 0, and prepare_dispatch checked that the
                // words fit it; `words` outlives the call (Vulkan copies them into the command buffer).
                unsafe {
                    (fns.v1_0.cmd_push_constants)(
                        cb,
                        layout,
                        vk::ShaderStageFlags::COMPUTE,
                        0,
                        (words.len() * 4) as u32,
                        words.as_ptr().cast(),
                    )
                };
            }
            // SAFETY: `cb` is recording, with the kernel's pipeline bound, its descriptor set bound
            // (bindings 0..n, one per declared binding, checked by prepare_dispatch, and for the checked
            // variant the bounds record at binding n, checked above to hold the words it indexes) and all its
            // push constants set, or its parameter slot bound and written (the kernel declares no more words than
            // were given, also checked). The
            // kernel's SPIR-V comes from build.rs with bounds-checked indexing (`Restrict`), so it
            // stays inside the bound allocations; the hazard tracker put a barrier before this
            // dispatch if an earlier operation of the batch conflicts, and the batch's first
            // barrier orders it after earlier batches. Group counts are within the device limits
            // (split_launch cuts each axis into pieces of at most the limit).
            unsafe { (fns.v1_0.cmd_dispatch)(cb, groups[0], groups[1], groups[2]) };
        }
        self.ops += 1;
        self.stamp(OpKind::Kernel(kernel));
        Ok(())
    }

    /// Forces a pipeline barrier before the next operation, whatever it touches.
    pub fn barrier(&mut self) {
        if !self.hazards.read.is_empty() || !self.hazards.written.is_empty() {
            // (While collecting a tape, the barrier goes before the next dispatch.)
            self.record_barrier(WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESSES);
            self.hazards.clear();
        }
    }
}

/// The kernel `id` refers to, if it was loaded on the `Gpu` with serial number `serial`.
fn lookup(kernels: &[KernelEntry], serial: u32, id: KernelId) -> Result<&KernelEntry, GpuError> {
    if id.gpu != serial {
        return Err(GpuError::UnknownKernel(id));
    }
    // (Not `ok_or`: that builds the error, and drops it, on every dispatch.)
    match kernels.get(id.index as usize) {
        Some(k) => Ok(k),
        None => Err(GpuError::UnknownKernel(id)),
    }
}
