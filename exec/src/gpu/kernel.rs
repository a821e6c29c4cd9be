//! Kernels: pipelines cached per (kernel, entry point), one pipeline layout per binding count,
//! launches, accessors and the push constants that tie them together.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use vulkano::descriptor_set::layout::{
    DescriptorSetLayout, DescriptorSetLayoutBinding, DescriptorSetLayoutCreateInfo, DescriptorType,
};
use vulkano::device::Device as VkDevice;
use vulkano::pipeline::compute::ComputePipelineCreateInfo;
use vulkano::pipeline::layout::{PipelineLayoutCreateInfo, PushConstantRange};
use vulkano::pipeline::{ComputePipeline, PipelineLayout, PipelineShaderStageCreateInfo};
use vulkano::shader::{ShaderModule, ShaderModuleCreateInfo, ShaderStages};

use super::{during, AllocationId, Box3, DeviceAllocation, GpuError};
use crate::shaders::KernelSource;

/// Push-constant words before the accessors' boxes: the chunk's offset and range.
pub const CHUNK_WORDS: usize = 6;
/// Push-constant words per accessor: its allocation's offset and range in buffer coordinates.
pub const ACCESSOR_WORDS: usize = 6;

/// The push-constant bytes a dispatch with `accessors` accessors and `scalars` user words
/// pushes: `4 * (6 + 6 * accessors + scalars)`.
///
/// # Examples
///
/// ```
/// // A kernel with two accessors and one scalar pushes 19 words.
/// assert_eq!(celer_exec::gpu::push_constant_bytes(2, 1), 76);
/// ```
pub fn push_constant_bytes(accessors: usize, scalars: usize) -> usize {
    4 * (CHUNK_WORDS + ACCESSOR_WORDS * accessors + scalars)
}

/// A kernel loaded on a [`Gpu`](super::Gpu) with [`Gpu::load_kernel`](super::Gpu::load_kernel);
/// valid only on that `Gpu`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct KernelId {
    /// Index into the `Gpu`'s kernel table.
    pub(super) index: u32,
    /// The `Gpu`'s serial number, so an id from another `Gpu` is refused, not misused.
    pub(super) gpu: u32,
}

/// One loaded (kernel, entry point).
pub(super) struct KernelEntry {
    /// `file::entry`, e.g. `gpu_stencil::main`, as errors name it.
    pub(super) name: String,
    pub(super) source_name: &'static str,
    pub(super) entry_point: String,
    pub(super) workgroup_size: [u32; 3],
    /// Whether it calls one of the prelude's block reductions (its block cells must be bound with
    /// [`Access::blocks`] for a dispatch to be split).
    pub(super) block_reduction: bool,
    /// How many accessors it takes: the bindings its file declares in `@group(0)`.
    pub(super) bindings: usize,
    /// Whether this is the checked variant, which binds a bounds record after the accessors.
    pub(super) checked: bool,
    /// The push-constant bytes the entry point declares (0 if none), from SPIR-V reflection; for a kernel reading
    /// its parameters from storage, the bytes of its parameter block.
    pub(super) declared_push_bytes: usize,
    /// The `@group(0)` binding its parameter block is read from ([`KernelSource::params_binding`]); `None`: push
    /// constants.
    pub(super) params: Option<u32>,
    pub(super) pipeline: Arc<ComputePipeline>,
    pub(super) layout: Arc<PipelineLayout>,
    /// Set layout 0 of `layout`.
    pub(super) set_layout: Arc<DescriptorSetLayout>,
}

impl fmt::Debug for KernelEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelEntry")
            .field("name", &self.name)
            .field("workgroup_size", &self.workgroup_size)
            .field("bindings", &self.bindings)
            .field("declared_push_bytes", &self.declared_push_bytes)
            .finish_non_exhaustive()
    }
}

/// The descriptor-set and pipeline layouts shared by every kernel with the same binding count (and the same
/// parameter binding, for kernels reading their parameters from storage), so descriptor sets are shared across
/// kernels and stay bound when the pipeline changes.
#[derive(Debug, Clone)]
pub(super) struct LayoutPair {
    pub(super) set: Arc<DescriptorSetLayout>,
    pub(super) pipeline: Arc<PipelineLayout>,
}

impl LayoutPair {
    /// `bindings` storage buffers in set 0 (none: no set), then, with `params`, a dynamic storage buffer at binding
    /// `params` (the parameter ring, [`super::params`]), and one push-constant range of the device's whole
    /// `push_bytes` limit, so any kernel whose block fits the device fits it. `kernel` (`file::entry`, the kernel
    /// being loaded, the first to need these layouts) and `checked` (its checked variant, whose last binding is the
    /// bounds record) only name what failed.
    pub(super) fn new(
        device: &Arc<VkDevice>,
        bindings: usize,
        params: Option<u32>,
        push_bytes: u32,
        (kernel, checked): (&str, bool),
    ) -> Result<Self, GpuError> {
        let what = || {
            let variant = if checked { "the checked variant of " } else { "" };
            let record = if checked { ", the last its bounds record" } else { "" };
            let params = match params {
                Some(p) => format!("its parameters in a dynamic storage buffer at binding {p}"),
                None => format!("{push_bytes} bytes of push constants"),
            };
            format!(
                "creating the pipeline layout of {variant}kernel {kernel} ({bindings} storage buffers at @group(0) \
                 bindings 0..{bindings}{record}; {params})"
            )
        };
        let binding = |ty| DescriptorSetLayoutBinding {
            stages: ShaderStages::COMPUTE,
            ..DescriptorSetLayoutBinding::descriptor_type(ty)
        };
        let mut layout_bindings =
            (0..bindings as u32).map(|i| (i, binding(DescriptorType::StorageBuffer))).collect::<BTreeMap<_, _>>();
        if let Some(p) = params {
            layout_bindings.insert(p, binding(DescriptorType::StorageBufferDynamic));
        }
        let empty = layout_bindings.is_empty();
        let set = DescriptorSetLayout::new(
            device.clone(),
            DescriptorSetLayoutCreateInfo { bindings: layout_bindings, ..Default::default() },
        )
        .map_err(during(what()))?;
        let pipeline = PipelineLayout::new(
            device.clone(),
            PipelineLayoutCreateInfo {
                set_layouts: if empty { Vec::new() } else { vec![set.clone()] },
                push_constant_ranges: vec![PushConstantRange {
                    stages: ShaderStages::COMPUTE,
                    offset: 0,
                    size: push_bytes,
                }],
                ..Default::default()
            },
        )
        .map_err(during(what()))?;
        Ok(LayoutPair { set, pipeline })
    }
}

/// Creates the pipeline of `entry_point` of `source` with the shared layout for its bindings.
pub(super) fn create_kernel(
    device: &Arc<VkDevice>,
    source: &KernelSource,
    entry_point: &str,
    layout: &LayoutPair,
    limits: &super::GpuLimits,
    checked: bool,
) -> Result<KernelEntry, GpuError> {
    let max_push_bytes = limits.max_push_constant_bytes;
    let name = format!("{}::{entry_point}", source.name());
    let no_entry_point = || GpuError::NoEntryPoint {
        kernel: source.name(),
        entry_point: entry_point.to_owned(),
        available: source.entry_points().iter().map(|ep| ep.name).collect::<Vec<_>>().join(", "),
    };
    let desc = source.entry_point(entry_point).ok_or_else(no_entry_point)?;
    // Checked here, before the driver sees the pipeline: beyond the device's limits a pipeline is invalid usage
    // (vulkano checks the workgroup size, not the workgroup memory, which drivers may take minutes to refuse or
    // compile wrongly).
    if let Some(problem) = workgroup_beyond_limits(desc, limits) {
        return Err(GpuError::WorkgroupTooLarge { kernel: name, problem });
    }
    let words = if checked { source.checked_spirv_words() } else { source.spirv_words() };
    // SAFETY: `words` is SPIR-V that naga produced from a WGSL module it had validated
    // (celer-kernel-build; KernelSource cannot be built elsewhere), which is the validity
    // ShaderModule::new asks for; vulkano also parses it and checks its capabilities.
    let module = unsafe { ShaderModule::new(device.clone(), ShaderModuleCreateInfo::new(&words)) }
        .map_err(during(format!("creating the shader module of kernel {name}")))?;
    let entry = module.entry_point(entry_point).ok_or_else(no_entry_point)?;
    let params = source.params_binding();
    let declared_push_bytes = match params {
        // Read from storage: the block's bytes, as the build reflected them (the build capped them).
        Some(_) => desc.push_constant_bytes as usize,
        None => entry.info().push_constant_requirements.as_ref().map_or(0, |r| (r.offset + r.size) as usize),
    };
    if params.is_none() && declared_push_bytes > max_push_bytes as usize {
        return Err(GpuError::PushConstantsTooLarge {
            kernel: name,
            bytes: declared_push_bytes,
            limit: max_push_bytes,
            detail: "its push-constant block alone".into(),
        });
    }
    let stage = PipelineShaderStageCreateInfo::new(entry);
    let pipeline = ComputePipeline::new(
        device.clone(),
        None,
        ComputePipelineCreateInfo::stage_layout(stage, layout.pipeline.clone()),
    )
    .map_err(during(format!(
        "creating the compute pipeline of {}kernel {name} (accessors bind to @group(0) storage buffers \
         0..{}, {})",
        if checked { "the checked variant of " } else { "" },
        source.group0_bindings(),
        match params {
            Some(p) => format!("its parameters to the dynamic storage buffer at binding {p}"),
            None => "push constants to one block".into(),
        }
    )))?;
    Ok(KernelEntry {
        name,
        source_name: source.name(),
        entry_point: entry_point.to_owned(),
        workgroup_size: desc.workgroup_size,
        block_reduction: desc.block_reduction,
        bindings: source.group0_bindings() as usize,
        checked,
        declared_push_bytes,
        params,
        pipeline,
        layout: layout.pipeline.clone(),
        set_layout: layout.set.clone(),
    })
}

/// How the workgroup of `desc` exceeds the device's `limits` (its size along a dimension, its invocations, its
/// `var<workgroup>` memory), or `None` when it fits.
fn workgroup_beyond_limits(desc: &crate::shaders::EntryPointDesc, limits: &super::GpuLimits) -> Option<String> {
    let [x, y, z] = desc.workgroup_size;
    let size = format!("@workgroup_size({x}, {y}, {z})");
    let invocations = u64::from(x) * u64::from(y) * u64::from(z);
    if (0..3).any(|d| desc.workgroup_size[d] > limits.max_workgroup_size[d]) {
        let [mx, my, mz] = limits.max_workgroup_size;
        Some(format!("declares {size}, beyond the device's maxComputeWorkGroupSize of ({mx}, {my}, {mz})"))
    } else if invocations > u64::from(limits.max_workgroup_invocations) {
        Some(format!(
            "declares {size}, {invocations} invocations per workgroup, more than the device's \
             maxComputeWorkGroupInvocations of {}",
            limits.max_workgroup_invocations
        ))
    } else if desc.workgroup_memory_bytes > limits.max_workgroup_memory_bytes {
        Some(format!(
            "uses {} bytes of var<workgroup> memory (its own variables and those of the prelude functions it calls), \
             more than the device's maxComputeSharedMemorySize of {} bytes",
            desc.workgroup_memory_bytes, limits.max_workgroup_memory_bytes
        ))
    } else {
        None
    }
}

/// What range a dispatch covers and how its invocations map to buffer dimensions.
///
/// Invocation ids map back to front, so `global_invocation_id.x` runs along the launch's fastest
/// dimension: 1D item = `(x)`, 2D = `(y, x)`, 3D = `(z, y, x)`, each offset by the chunk's start
/// (prelude.wgsl's `celer_item_1d/2d/3d`). Workgroup counts round the chunk up; kernels skip the
/// extra invocations with `celer_contains(pc.chunk, item)`.
///
/// # Examples
///
/// ```
/// use celer_exec::gpu::{Box3, Launch};
/// let l = Launch::d2([16, 0], [48, 100]);
/// assert_eq!(l.chunk(), Box3::d2([16, 0], [48, 100]));
/// // 8x8 workgroups: x covers dimension 1 (100 cells), y covers dimension 0 (32 cells).
/// assert_eq!(l.group_counts([8, 8, 1]), [13, 4, 1]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Launch {
    chunk: Box3,
    dims: usize,
}

impl Launch {
    /// A launch of `dims` (1, 2 or 3) dimensions over `chunk`, whose dimensions from `dims` on
    /// must be `[0, 1)` (as `Box3::d1`/`d2` make them).
    ///
    /// # Panics
    ///
    /// If `dims` is not 1, 2 or 3, or `chunk` is not empty and extends beyond `dims` dimensions.
    pub fn new(chunk: Box3, dims: usize) -> Self {
        assert!((1..=3).contains(&dims), "a launch has 1, 2 or 3 dimensions, not {dims}");
        assert!(
            chunk.is_empty() || (dims..3).all(|d| chunk.min()[d] == 0 && chunk.max()[d] == 1),
            "a {dims}D launch cannot cover {chunk}"
        );
        Launch { chunk, dims }
    }

    /// A 1D launch over `[min, max)`.
    pub fn d1(min: usize, max: usize) -> Self {
        Self::new(Box3::d1(min, max), 1)
    }

    /// A 2D launch over `[min, max)`.
    pub fn d2(min: [usize; 2], max: [usize; 2]) -> Self {
        Self::new(Box3::d2(min, max), 2)
    }

    /// A 3D launch over `[min, max)`.
    pub fn d3(min: [usize; 3], max: [usize; 3]) -> Self {
        Self::new(Box3::d3(min, max), 3)
    }

    /// The cells it covers, in buffer coordinates.
    pub fn chunk(&self) -> Box3 {
        self.chunk
    }

    /// Its dimensionality.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The workgroup counts `[x, y, z]` that cover the chunk with workgroups of
    /// `workgroup_size`, mapping dimensions back to front.
    pub fn group_counts(&self, workgroup_size: [u32; 3]) -> [u64; 3] {
        let r = self.chunk.range();
        let mut counts = [1u64; 3];
        for (axis, count) in counts.iter_mut().enumerate().take(self.dims) {
            let dim = self.dims - 1 - axis;
            *count = (r[dim] as u64).div_ceil(u64::from(workgroup_size[axis].max(1)));
        }
        counts
    }
}

/// How a kernel uses an accessor; the batch's hazard tracking reads it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AccessMode {
    /// The kernel only reads the allocation.
    Read,
    /// The kernel only writes it (Celerity's `discard_write`).
    Write,
    /// The kernel reads and writes it.
    ReadWrite,
}

impl AccessMode {
    /// Whether the kernel may write.
    pub fn writes(self) -> bool {
        !matches!(self, AccessMode::Read)
    }
}

/// One accessor of a dispatch: an allocation bound to the next `@group(0)` binding.
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    pub(super) alloc: &'a DeviceAllocation,
    pub(super) mode: AccessMode,
    /// Whether it holds one cell per workgroup ([`Access::blocks`]).
    pub(super) blocks: bool,
    /// Whether the dispatch pushes an empty box for it ([`Access::empty`]).
    pub(super) empty: bool,
}

impl<'a> Access<'a> {
    /// An accessor that only reads `alloc`.
    pub fn read(alloc: &'a DeviceAllocation) -> Self {
        Access { alloc, mode: AccessMode::Read, blocks: false, empty: false }
    }

    /// An accessor that only writes `alloc`.
    pub fn write(alloc: &'a DeviceAllocation) -> Self {
        Access { alloc, mode: AccessMode::Write, blocks: false, empty: false }
    }

    /// An accessor that reads and writes `alloc`.
    pub fn read_write(alloc: &'a DeviceAllocation) -> Self {
        Access { alloc, mode: AccessMode::ReadWrite, blocks: false, empty: false }
    }

    /// An accessor whose cells are one per workgroup of the launch, which a kernel's block reduction writes at
    /// `celer_block_Nd(box, workgroup_id)` (prelude.wgsl): the allocation's range, dimension 0 first, must cover
    /// the launch's workgroup counts (dimension `d` of the launch along axis `dims - 1 - d`). Its push-constant
    /// box holds, instead of the allocation's offset, the first workgroup of the dispatch in the launch (zero
    /// unless the dispatch is split because the launch needs more workgroups than the device launches at once),
    /// so every workgroup writes its own cell however the launch is split. The kernel only writes it.
    pub fn blocks(alloc: &'a DeviceAllocation) -> Self {
        Access { alloc, mode: AccessMode::Write, blocks: true, empty: false }
    }

    /// An accessor that may touch no cell of its buffer on this chunk (its range mapper gave the chunk an empty
    /// region): binds `alloc`, a stand-in for the buffer's memory (typically one cell), which accesses the kernel
    /// makes anyway land in, but pushes the empty box (offset and range 0) as its allocation's box, so that
    /// `celer_contains` is false for every cell and a checked dispatch blames every access on it.
    pub fn empty(alloc: &'a DeviceAllocation, mode: AccessMode) -> Self {
        Access { alloc, mode, blocks: false, empty: true }
    }

    /// The allocation it binds.
    pub fn allocation(&self) -> &'a DeviceAllocation {
        self.alloc
    }

    /// How the kernel uses it.
    pub fn mode(&self) -> AccessMode {
        self.mode
    }

    /// Whether it holds one cell per workgroup ([`Access::blocks`]).
    pub fn is_blocks(&self) -> bool {
        self.blocks
    }

    /// Whether the dispatch pushes the empty box for it ([`Access::empty`]).
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// The box a checked dispatch's bounds record names as its allocation's
    /// ([`bounds_record_init`]): the allocation's, or the empty box for [`Access::empty`].
    pub fn record_box(&self) -> Box3 {
        if self.empty {
            Box3::EMPTY
        } else {
            self.alloc.bounds
        }
    }
}

/// Pushes the six words of a box (offset, then range) onto `out`; the caller has checked that
/// its coordinates fit `u32`.
pub(super) fn push_box(out: &mut Vec<u32>, b: &Box3) {
    let (m, r) = (b.min(), b.range());
    out.extend([m[0], m[1], m[2], r[0], r[1], r[2]].map(|v| v as u32));
}

/// Checks a dispatch of `kernel` and writes its push constants into `words` (cleared first), for one dispatch of
/// the whole launch (a block accessor's box starting at workgroup 0).
///
/// Returns the workgroup counts `[x, y, z]`; those beyond the device's limit make [`split_launch`] split it.
pub(super) fn prepare_dispatch(
    kernel: &KernelEntry,
    launch: &Launch,
    accessors: &[Access<'_>],
    scalars: &[u32],
    limits: &super::GpuLimits,
    words: &mut Vec<u32>,
) -> Result<[u64; 3], GpuError> {
    if accessors.len() != kernel.bindings {
        return Err(GpuError::BindingMismatch {
            kernel: kernel.name.clone(),
            declared: kernel.bindings,
            given: accessors.len(),
        });
    }
    let bytes = push_constant_bytes(accessors.len(), scalars.len());
    if kernel.params.is_some() && bytes > super::MAX_PARAMS_BYTES {
        return Err(GpuError::ParamsTooLarge {
            kernel: kernel.name.clone(),
            bytes,
            limit: super::MAX_PARAMS_BYTES,
            detail: format!(
                "4 * ({CHUNK_WORDS} + {ACCESSOR_WORDS} * {} accessors + {} scalars)",
                accessors.len(),
                scalars.len()
            ),
        });
    }
    if kernel.params.is_none() && bytes > limits.max_push_constant_bytes as usize {
        return Err(GpuError::PushConstantsTooLarge {
            kernel: kernel.name.clone(),
            bytes,
            limit: limits.max_push_constant_bytes,
            detail: format!(
                "4 * ({CHUNK_WORDS} + {ACCESSOR_WORDS} * {} accessors + {} scalars)",
                accessors.len(),
                scalars.len()
            ),
        });
    }
    if kernel.declared_push_bytes > bytes {
        return Err(GpuError::PushConstantsTooSmall {
            kernel: kernel.name.clone(),
            declared: kernel.declared_push_bytes,
            provided: bytes,
            scalars: scalars.len(),
        });
    }
    let overflow = |what: String| GpuError::CoordinateOverflow { kernel: kernel.name.clone(), what };
    if !launch.chunk.fits_u32() {
        return Err(overflow(format!("the chunk {}", launch.chunk)));
    }
    for (i, a) in accessors.iter().enumerate() {
        let alloc = a.alloc;
        if !alloc.bounds.fits_u32() || u32::try_from(alloc.bounds.volume() - 1).is_err() {
            return Err(overflow(format!("accessor {i}'s allocation {} of box {}", alloc.id, alloc.bounds)));
        }
        if alloc.bytes() as u64 > u64::from(limits.max_storage_buffer_range) {
            return Err(GpuError::StorageBufferTooLarge {
                kernel: kernel.name.clone(),
                accessor: i,
                bytes: alloc.bytes(),
                limit: limits.max_storage_buffer_range,
            });
        }
    }
    let counts = launch.group_counts(kernel.workgroup_size);
    let split = (0..3).any(|axis| counts[axis] > u64::from(limits.max_workgroup_count[axis]));
    if split && kernel.block_reduction && !accessors.iter().any(|a| a.blocks) {
        return Err(GpuError::TooManyWorkgroups {
            kernel: kernel.name.clone(),
            groups: counts,
            limit: limits.max_workgroup_count,
        });
    }
    for (i, a) in accessors.iter().enumerate().filter(|(_, a)| a.blocks) {
        // The chunk fits u32 (checked above), so its workgroup counts do.
        let needed: [u32; 3] =
            std::array::from_fn(|d| if d < launch.dims { counts[launch.dims - 1 - d] as u32 } else { 1 });
        let cells = a.alloc.bounds.range().map(|r| r as u32);
        if (0..3).any(|d| cells[d] < needed[d]) {
            return Err(GpuError::TooFewBlockCells { kernel: kernel.name.clone(), accessor: i, cells, needed });
        }
    }
    words.clear();
    push_box(words, &launch.chunk);
    for a in accessors {
        if a.blocks {
            // The first workgroup of the dispatch (split_launch's sub-dispatches set it), then the cells' range.
            words.extend([0, 0, 0]);
            words.extend(a.alloc.bounds.range().map(|v| v as u32));
        } else if a.empty {
            words.extend([0; 6]);
        } else {
            push_box(words, &a.alloc.bounds);
        }
    }
    words.extend_from_slice(scalars);
    Ok(counts)
}

/// One dispatch of a launch split because it needs more workgroups than the device launches at once
/// ([`split_launch`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct SubDispatch {
    /// The cells it covers: the launch's chunk cut at whole workgroups.
    pub(super) chunk: Box3,
    /// Its first workgroup in the launch's grid of workgroups, dimension 0 first (as block accessors' boxes hold it).
    pub(super) first_group: [u32; 3],
    /// Its workgroup counts `[x, y, z]`, each within the device's limit.
    pub(super) groups: [u32; 3],
}

/// Number of dispatches [`split_launch`] makes of a launch needing `counts` workgroups under `limit`.
pub(super) fn split_count(counts: [u64; 3], limit: [u32; 3]) -> u64 {
    (0..3).map(|axis| counts[axis].div_ceil(u64::from(limit[axis].max(1))).max(1)).product()
}

/// Sub-dispatch `n` (of [`split_count`]) of `launch`, which needs `counts` workgroups of `workgroup_size` and is
/// split along each axis into pieces of at most `limit` workgroups (x fastest). The pieces start at whole
/// workgroups of the launch, so every workgroup covers the same cells as in one dispatch of the whole launch.
pub(super) fn split_launch(
    launch: &Launch,
    workgroup_size: [u32; 3],
    counts: [u64; 3],
    limit: [u32; 3],
    mut n: u64,
) -> SubDispatch {
    let (min, max) = (launch.chunk.min(), launch.chunk.max());
    let (mut lo, mut hi) = (min, max);
    let mut first_group = [0u32; 3];
    let mut groups = [1u32; 3];
    for axis in 0..3 {
        let step = u64::from(limit[axis].max(1));
        let pieces = counts[axis].div_ceil(step).max(1);
        let first = (n % pieces) * step;
        n /= pieces;
        let count = (counts[axis] - first.min(counts[axis])).min(step);
        groups[axis] = count as u32;
        if axis < launch.dims {
            let dim = launch.dims - 1 - axis;
            let size = workgroup_size[axis].max(1) as usize;
            first_group[dim] = first as u32;
            lo[dim] = min[dim] + first as usize * size;
            hi[dim] = max[dim].min(lo[dim] + count as usize * size);
        }
    }
    SubDispatch { chunk: Box3::new(lo, hi), first_group, groups }
}

/// The allocations a dispatch binds, in binding order (a checked dispatch's bounds record last), as the
/// descriptor-set cache key.
pub(super) fn binding_key(accessors: &[Access<'_>], record: Option<&DeviceAllocation>, key: &mut Vec<AllocationId>) {
    key.clear();
    key.extend(accessors.iter().map(|a| a.alloc.id));
    key.extend(record.map(|r| r.id));
}

/// Words of a bounds record before the accessors' entries: the accessor count, the unattributed-access count and
/// two unused words.
const RECORD_HEADER_WORDS: usize = 4;
/// Words per accessor in a bounds record: declared box (6), allocation box (6), count (1), min (3), max (3), 5 unused.
const RECORD_ACCESSOR_WORDS: usize = 24;

/// The 32-bit words of the bounds record a checked dispatch ([`Batch::dispatch_checked`](super::Batch::dispatch_checked))
/// with `accessors` accessors binds (the layout is documented in `celer-kernel-build`'s `wgsl/checked.wgsl.in`).
pub fn bounds_record_words(accessors: usize) -> usize {
    RECORD_HEADER_WORDS + RECORD_ACCESSOR_WORDS * accessors
}

/// The initial contents of a bounds record: for accessor `i`, the box it declared (`declared[i]`) and the box of
/// the allocation bound to it (`allocations[i]`), no access recorded yet. Upload it before the checked dispatch.
///
/// # Panics
/// If the two slices differ in length, or a box does not fit `u32` (dispatches check allocations; a declared box
/// lies inside the buffer, whose allocation fits).
///
/// # Examples
/// ```
/// use celer_exec::gpu::{bounds_record_init, read_bounds_record, Box3};
/// let words = bounds_record_init(&[Box3::d1(0, 8)], &[Box3::d1(0, 16)]);
/// let report = read_bounds_record(&words);
/// assert_eq!(report.unattributed, 0);
/// assert_eq!(report.accessors, vec![None]);
/// ```
pub fn bounds_record_init(declared: &[Box3], allocations: &[Box3]) -> Vec<u32> {
    assert_eq!(declared.len(), allocations.len(), "one declared box per allocation");
    let mut words = Vec::with_capacity(bounds_record_words(declared.len()));
    words.extend([declared.len() as u32, 0, 0, 0]);
    for (d, a) in declared.iter().zip(allocations) {
        assert!(d.fits_u32() && a.fits_u32(), "boxes of a bounds record must fit u32: {d}, {a}");
        push_box(&mut words, d);
        push_box(&mut words, a);
        words.push(0);
        words.extend([u32::MAX; 3]);
        words.extend([0; 3]);
        words.extend([0; 5]);
    }
    words
}

/// What a checked dispatch recorded ([`read_bounds_record`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundsReport {
    /// Per accessor: `None` if all its accesses lay inside its declared box, else how many did not and the bounding
    /// box of the cells they touched.
    pub accessors: Vec<Option<(u32, Box3)>>,
    /// Accesses through a box that was no accessor's allocation box (so none could be blamed).
    pub unattributed: u32,
}

/// Decodes a bounds record read back after a checked dispatch.
///
/// # Panics
/// If `words` is shorter than its accessor count says.
pub fn read_bounds_record(words: &[u32]) -> BoundsReport {
    let n = words[0] as usize;
    assert!(
        words.len() >= bounds_record_words(n),
        "a bounds record of {n} accessors needs {} words",
        bounds_record_words(n)
    );
    let accessors = (0..n)
        .map(|k| {
            let e = &words[RECORD_HEADER_WORDS + RECORD_ACCESSOR_WORDS * k..];
            let count = e[12];
            (count > 0).then(|| {
                let (lo, hi) = (&e[13..16], &e[16..19]);
                let min = [lo[0] as usize, lo[1] as usize, lo[2] as usize];
                let max = [hi[0] as usize + 1, hi[1] as usize + 1, hi[2] as usize + 1];
                (count, Box3::new(min, max))
            })
        })
        .collect();
    BoundsReport { accessors, unattributed: words[1] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workgroups_beyond_the_device_limits_are_named_by_the_limit_they_exceed() {
        let limits = super::super::GpuLimits {
            max_push_constant_bytes: 128,
            max_workgroup_count: [65535; 3],
            max_storage_buffer_range: u32::MAX,
            max_workgroup_size: [1024, 1024, 64],
            max_workgroup_invocations: 1024,
            max_workgroup_memory_bytes: 32768,
            max_storage_buffers: 32,
        };
        let desc = |workgroup_size, workgroup_memory_bytes| crate::shaders::EntryPointDesc {
            name: "main",
            workgroup_size,
            dims: Some(1),
            block_reduction: false,
            workgroup_dependent: true,
            push_constants: &[],
            push_constant_bytes: 0,
            writes: &[],
            reads_old: &[],
            block_reductions: &[],
            atomics: &[],
            workgroup_memory_bytes,
            item_indexed: &[],
            stores_every_item: &[],
            loads_every_item: &[],
            stores_one_cell_every_item: &[],
            cross_indexed: &[],
            global_indexed: &[],
            item_offsets: &[],
            raw_ids: false,
        };
        assert_eq!(workgroup_beyond_limits(&desc([1024, 1, 1], 32768), &limits), None, "at the limits");
        let wide = workgroup_beyond_limits(&desc([2048, 1, 1], 0), &limits).unwrap();
        assert!(wide.contains("@workgroup_size(2048, 1, 1), beyond the device's maxComputeWorkGroupSize"), "{wide}");
        let deep = workgroup_beyond_limits(&desc([1, 1, 128], 0), &limits).unwrap();
        assert!(deep.contains("maxComputeWorkGroupSize of (1024, 1024, 64)"), "{deep}");
        let many = workgroup_beyond_limits(&desc([64, 32, 1], 0), &limits).unwrap();
        assert!(many.contains("2048 invocations per workgroup, more than the device's maxComputeWorkGroupInvocations"));
        let memory = workgroup_beyond_limits(&desc([64, 1, 1], 32772), &limits).unwrap();
        assert!(memory.contains("uses 32772 bytes of var<workgroup> memory"), "{memory}");
        assert!(memory.contains("maxComputeSharedMemorySize of 32768 bytes"), "{memory}");
    }

    #[test]
    fn launches_map_the_fastest_dimension_to_x() {
        assert_eq!(Launch::d1(10, 139).group_counts([64, 1, 1]), [3, 1, 1]);
        assert_eq!(Launch::d2([0, 0], [9, 17]).group_counts([8, 4, 1]), [3, 3, 1]);
        assert_eq!(Launch::d3([0, 0, 0], [2, 3, 4]).group_counts([4, 3, 2]), [1, 1, 1]);
        assert_eq!(Launch::d3([0, 0, 0], [5, 7, 9]).group_counts([4, 4, 4]), [3, 2, 2]);
    }

    #[test]
    fn a_split_launch_covers_every_workgroup_once_at_whole_workgroups() {
        for (launch, wg, limit) in [
            (Launch::d1(5, 5 + 64 * 10 + 3), [64, 1, 1], [4, 2, 2]),
            (Launch::d2([1, 2], [1 + 4 * 7 + 1, 2 + 8 * 5]), [8, 4, 1], [2, 3, 1]),
            (Launch::d3([0, 1, 2], [5, 8, 11]), [2, 2, 2], [1, 2, 3]),
            (Launch::d1(0, 100), [64, 1, 1], [65535, 65535, 65535]),
        ] {
            let counts = launch.group_counts(wg);
            let n = split_count(counts, limit);
            let mut cells = 0;
            let mut seen = std::collections::BTreeSet::new();
            for k in 0..n {
                let sub = split_launch(&launch, wg, counts, limit, k);
                assert!((0..3).all(|a| sub.groups[a] >= 1 && sub.groups[a] <= limit[a]), "{sub:?}");
                assert!(launch.chunk().contains(&sub.chunk), "{sub:?} outside {launch:?}");
                // Its chunk starts at its first workgroup and needs exactly its groups.
                let dims = launch.dims();
                for d in 0..dims {
                    let axis = dims - 1 - d;
                    let start = launch.chunk().min()[d] + sub.first_group[d] as usize * wg[axis] as usize;
                    assert_eq!(sub.chunk.min()[d], start, "{sub:?}");
                }
                let sub_counts = Launch::new(sub.chunk, dims).group_counts(wg);
                assert_eq!(sub_counts, sub.groups.map(u64::from), "{sub:?}");
                cells += sub.chunk.volume();
                for g in 0..u64::from(sub.groups[0] * sub.groups[1] * sub.groups[2]) {
                    let local = [g % u64::from(sub.groups[0]), g / u64::from(sub.groups[0]) % u64::from(sub.groups[1])];
                    let z = g / u64::from(sub.groups[0] * sub.groups[1]);
                    let mut at = [local[0], local[1], z];
                    for (d, &f) in sub.first_group.iter().enumerate().take(dims) {
                        at[dims - 1 - d] += u64::from(f);
                    }
                    assert!(seen.insert(at), "workgroup {at:?} twice");
                }
            }
            assert_eq!(cells, launch.chunk().volume(), "{launch:?}");
            assert_eq!(seen.len() as u64, counts.iter().product::<u64>(), "{launch:?}");
        }
    }

    #[test]
    fn an_empty_launch_has_no_workgroups() {
        assert_eq!(Launch::d1(5, 5).group_counts([64, 1, 1]), [0, 1, 1]);
    }

    #[test]
    #[should_panic(expected = "a 1D launch cannot cover")]
    fn a_launch_refuses_a_box_wider_than_its_dimensions() {
        let _ = Launch::new(Box3::d2([0, 0], [4, 4]), 1);
    }

    #[test]
    fn push_constants_are_six_words_per_box_then_scalars() {
        assert_eq!(push_constant_bytes(0, 0), 24);
        assert_eq!(push_constant_bytes(1, 1), 52);
        assert_eq!(push_constant_bytes(3, 4), 4 * (6 + 18 + 4));
    }
}
