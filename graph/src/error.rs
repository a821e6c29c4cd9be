//! Errors and warnings of graph generation. Every message names the task, and where it applies the buffer and the
//! region at fault, e.g. `In task T4 "stencil": buffer B0 "u" is read in {[0] - [8]}, which no task has written`.
//! This file holds the types and which message each variant takes: a one-line message inline, a longer one as a
//! function of `kernel`, `access`, `reduction` or `boxes` (`#[error(fmt = …)]`).

use std::fmt;

use crate::geometry::{BufferExtent, GridBox, Region};
use crate::ids::{BufferId, CollectiveGroupId, HostObjectId};
use crate::task::{MapperError, ResourceIdent, TaskIdent};

mod access;
mod boxes;
mod kernel;
mod reduction;

/// How a class of suspicious input is treated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorPolicy {
    /// Say nothing.
    Ignore,
    /// Record a [`Diagnostic`] and go on.
    Warn,
    /// Refuse the task with an error.
    Error,
}

/// A task that could not be recorded, and why.
#[derive(Clone, thiserror::Error)]
#[error("In {task}: {inner}")]
pub struct TaskError {
    /// The task at fault.
    pub task: TaskIdent,
    /// What is wrong (boxed: errors are rare, and results stay small on the hot path).
    pub inner: Box<TaskErrorKind>,
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// What is wrong with a task.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TaskErrorKind {
    /// Horizons and epochs are created by the runtime, never submitted.
    #[error("{kind} tasks are created by the runtime and cannot be submitted")]
    ReservedKind {
        /// The kind submitted.
        kind: &'static str,
    },
    /// More than three dimensions.
    #[error("{dims} dimensions requested, at most 3 are supported")]
    TooManyDimensions {
        /// Dimensions asked for.
        dims: usize,
    },
    /// A split granularity of zero.
    #[error("the split granularity must be at least 1 in every dimension")]
    ZeroGranularity,
    /// The buffer does not exist (never created, or already dropped).
    #[error("buffer {buffer} does not exist (never created, or already dropped)")]
    UnknownBuffer {
        /// The id used.
        buffer: BufferId,
    },
    /// The host object does not exist.
    #[error("host object {host_object} does not exist (never created, or already dropped)")]
    UnknownHostObject {
        /// The id used.
        host_object: HostObjectId,
    },
    /// The collective group does not exist.
    #[error("collective group {group} does not exist (never created, or already dropped)")]
    UnknownCollectiveGroup {
        /// The id used.
        group: CollectiveGroupId,
    },
    /// A host object declared twice as a side effect of one task.
    #[error(fmt = access::duplicate_side_effect)]
    DuplicateSideEffect {
        /// The object.
        host_object: HostObjectId,
        /// Its first declaration (the index `with_object` takes).
        first: usize,
        /// Its second.
        second: usize,
    },
    /// A range mapper that does not fit the buffer.
    #[error("{mode} access to {buffer}: {error}")]
    Mapper {
        /// The buffer.
        buffer: ResourceIdent,
        /// The access mode.
        mode: &'static str,
        /// What failed.
        error: MapperError,
    },
    /// A range mapper returned cells outside the buffer.
    #[error(fmt = access::out_of_bounds)]
    OutOfBounds {
        /// The buffer.
        buffer: ResourceIdent,
        /// The mapper's name.
        mapper: &'static str,
        /// What the mapper returned.
        region: Region,
        /// The part outside the buffer.
        outside: Region,
        /// The buffer's extent (its shape where it is empty).
        extent: BufferExtent,
    },
    /// A custom mapper's declared reach misses a chunk that touches the cells it was asked about.
    #[error(fmt = access::mapper_reach)]
    MapperReach {
        /// The buffer.
        buffer: ResourceIdent,
        /// The mapper's name.
        mapper: &'static str,
        /// The chunk checked.
        chunk: GridBox,
        /// The bounding box of what the chunk touches.
        cells: GridBox,
        /// What the mapper's reach returned for `cells`.
        declared: GridBox,
    },
    /// A read of cells nobody wrote (an error only under [`ErrorPolicy::Error`]).
    #[error(fmt = access::uninitialized_read)]
    UninitializedRead {
        /// The buffer.
        buffer: ResourceIdent,
        /// The cells read before any write.
        region: Region,
    },
    /// Reductions write a single value.
    #[error("{buffer} has extent {extent}, but a reduction needs a buffer of exactly one element")]
    ReductionNotScalar {
        /// The buffer.
        buffer: ResourceIdent,
        /// Its extent (its shape where it is empty).
        extent: BufferExtent,
    },
    /// Two nodes (ranks, or devices of a rank) write the same cells in one task (e.g. a split kernel writing through
    /// `all` or `neighborhood`).
    #[error(fmt = access::overlapping_write)]
    OverlappingWrite {
        /// The buffer.
        buffer: ResourceIdent,
        /// The cells written twice.
        region: Region,
        /// One writer's node.
        first: crate::ids::NodeId,
        /// The other writer's node.
        second: crate::ids::NodeId,
    },
    /// A kernel that declares a different number of buffer bindings than the task has accessors and reductions.
    #[error(fmt = kernel::kernel_bindings)]
    KernelBindings {
        /// The kernel (`file::entry`).
        kernel: String,
        /// Bindings the kernel file declares.
        declared: u32,
        /// Bindings the task provides.
        given: usize,
        /// Of which accessors.
        accessors: usize,
        /// Of which reduction buffers.
        reductions: usize,
    },
    /// A buffer whose element type is not the element type of the kernel binding it is bound to.
    #[error(fmt = kernel::kernel_element_type)]
    KernelElementType {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The binding's element type, as WGSL spells it.
        wgsl: String,
        /// The binding's element size where it differs from the buffer's and the element is no scalar (` (16 bytes
        /// each in the array, padding included)` for a `vec3<f32>`), else empty.
        size: String,
        /// The buffer.
        buffer: ResourceIdent,
        /// The buffer's element type.
        element: String,
        /// Which of the task's bindings it is (`the read accessor`, `the reduction`).
        role: String,
    },
    /// A buffer the task writes (or reduces into) bound to a `var<storage, read>` binding.
    #[error(fmt = kernel::kernel_read_only_binding)]
    KernelReadOnlyBinding {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The task's access mode (`discard_write`, `reduction`, ...).
        mode: &'static str,
    },
    /// A `discard_write` accessor or a reduction bound where the entry point never writes.
    #[error(fmt = kernel::kernel_never_writes)]
    KernelNeverWrites {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The task's access mode (`discard_write` or `reduction`).
        mode: &'static str,
        /// What the buffer would hold after the task.
        outcome: &'static str,
        /// The other way out for this mode.
        hint: &'static str,
    },
    /// A kernel that works on the raw `global_invocation_id`: it neither calls `celer_item_Nd` nor reads the chunk's
    /// offset, so every chunk (another rank's, another device's) would work on the first chunk's cells.
    #[error(fmt = kernel::kernel_raw_ids)]
    KernelRawIds {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The kernel file's name.
        file: String,
    },
    /// A `discard_write` accessor bound where the entry point may read the old contents: its first use of the
    /// binding, in program order, is a load or an atomic that reads the old value.
    #[error(fmt = kernel::kernel_reads_discarded)]
    KernelReadsDiscarded {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
    },
    /// A buffer the task only reads bound where the kernel writes.
    #[error(fmt = kernel::kernel_writes_read_access)]
    KernelWritesReadAccess {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
    },
    /// A reduction whose operation is not the one of the prelude block reduction the kernel stores into its binding.
    #[error(fmt = kernel::kernel_reduction_op)]
    KernelReductionOp {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The prelude calls stored there (`celer_reduce_sum_f32`).
        call: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The task's operation (`Max`).
        task_op: &'static str,
        /// The same, in lower case (`max`).
        task_op_lower: &'static str,
        /// The kernel's operation (`Sum`).
        kernel_op: &'static str,
    },
    /// A `Sum`, `Min` or `Max` reduction on a binding the kernel combines into only with the atomics of another of
    /// the three.
    #[error(fmt = kernel::kernel_atomic_op)]
    KernelAtomicOp {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The atomics it applies there (`atomicAdd`).
        atomics: String,
        /// The buffer.
        buffer: ResourceIdent,
        /// The task's operation (`Min`).
        task_op: &'static str,
        /// The operation the kernel's atomics make (`Sum`).
        kernel_op: &'static str,
    },
    /// A reduction into a binding that the kernel stores to at one fixed cell (`out[0] += v`) with a plain store on
    /// every item, over more than one item: the items race, each overwriting what the others stored.
    #[error(fmt = kernel::kernel_reduction_race)]
    KernelReductionRace {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The task's index space.
        range: GridBox,
    },
    /// A kernel that indexes one binding with another binding's box (`dst[celer_index(pc.src, item)]`), where the
    /// task binds different buffers at the two: each binding holds its buffer's allocation on the node, whose box
    /// differs between buffers, so the index picks other cells than the kernel means.
    #[error(fmt = kernel::kernel_cross_indexed)]
    KernelCrossIndexed {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The WGSL variable name of the binding indexed.
        binding: String,
        /// Its binding number.
        number: u32,
        /// The buffer bound there.
        buffer: ResourceIdent,
        /// The WGSL variable name of the binding whose box gives the index.
        box_of: String,
        /// Its binding number.
        box_number: u32,
        /// The buffer bound there.
        box_buffer: ResourceIdent,
    },
    /// A kernel that indexes a binding with its item's coordinates in the index space, or its invocation id, without
    /// `celer_index` (`dst[item.x]`), where the task binds a buffer through a mapper other than `all()`: the node's
    /// allocation of the buffer need not start at the origin, so the index lands past the cells the kernel means.
    #[error(fmt = kernel::kernel_global_index)]
    KernelGlobalIndex {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The access and its mapper (`discard_write one_to_one`).
        access: String,
    },
    /// A kernel that indexes a binding at a constant offset from its item (`celer_index(pc.src, item - vec3<u32>(1u,
    /// 0u, 0u))`) where the task's range mapper for the buffer bound there does not declare the cell at that offset
    /// (`one_to_one`, a neighbourhood too small, a slice along another dimension).
    #[error(fmt = kernel::kernel_offset_undeclared)]
    KernelOffsetUndeclared {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The access and its mapper (`read one_to_one`).
        access: String,
        /// The first offset it does not declare, in the task's dimensions (`[-1]`).
        offset: String,
        /// A mapper that declares every offset the kernel uses (`access::neighborhood([1])`).
        hint: String,
    },
    /// A reduction whose operation (a built-in one, or a `reduce_with` closure) combines the chunks' partial results
    /// otherwise than the atomics the kernel combines its items with (`atomicOr` under `ReductionOp::Sum`).
    #[error(fmt = kernel::kernel_atomic_combine)]
    KernelAtomicCombine {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The atomic (`atomicOr`).
        atomics: String,
        /// The buffer.
        buffer: ResourceIdent,
        /// How the task combines (`with ReductionOp::Sum`).
        how: String,
        /// Where the two differ (`Sum(12, 10) = 22, where atomicOr(12, 10) gives 14`).
        example: String,
        /// What to do.
        hint: String,
    },
    /// A reduction binding that receives the result of a prelude block reduction of another type.
    #[error(fmt = kernel::kernel_reduction_type)]
    KernelReductionType {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The prelude call (`celer_reduce_sum_f32`).
        call: String,
        /// The type it reduces.
        call_type: &'static str,
        /// Its operation (`sum`).
        op: &'static str,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The binding's element type.
        wgsl: String,
        /// The buffer.
        buffer: ResourceIdent,
    },
    /// A kernel that works in another dimensionality than the task's index space.
    #[error(fmt = kernel::kernel_dimensions)]
    KernelDimensions {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The dimensionality the kernel works in.
        kernel_dims: u32,
        /// The task's.
        task_dims: usize,
        /// The task's index space.
        range: GridBox,
    },
    /// A buffer bound where the kernel indexes with its item as `celer_item_Nd` returned it (`celer_index(pc.<box>,
    /// item)`), of another dimensionality than the item's: the index picks cells the kernel does not mean.
    #[error(fmt = kernel::kernel_item_dimensions)]
    KernelItemDimensions {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The dimensionality the kernel works in (that of its items).
        kernel_dims: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The buffer's dimensionality.
        buffer_dims: u32,
    },
    /// A kernel that stores to a binding at its own item on every item of its index space (behind no guard but the
    /// chunk's), over an index space that reaches outside the buffer bound there: the items outside would store to
    /// cells the buffer does not have.
    #[error(fmt = kernel::kernel_stores_outside)]
    KernelStoresOutside {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The task's index space.
        range: GridBox,
        /// The buffer's extent.
        extent: BufferExtent,
        /// The items of the index space outside the buffer's extent.
        outside: Region,
    },
    /// A kernel that loads from a binding at its own item on every item of its index space (behind no guard but the
    /// chunk's), over an index space that reaches outside the buffer bound there: the items outside would read
    /// cells the buffer does not have.
    #[error(fmt = kernel::kernel_reads_outside)]
    KernelReadsOutside {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The binding's WGSL variable name.
        binding: String,
        /// The binding number.
        number: u32,
        /// The buffer.
        buffer: ResourceIdent,
        /// The task's index space.
        range: GridBox,
        /// The buffer's extent.
        extent: BufferExtent,
        /// The items of the index space outside the buffer's extent.
        outside: Region,
    },
    /// A member of the kernel's parameter block (`var<immediate>`, pushed as push constants or, past 128 bytes,
    /// read from a storage buffer) that the task gives no value.
    #[error(fmt = kernel::missing_scalar)]
    MissingScalar {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The member, `name: type`.
        member: String,
        /// Its name alone.
        name: String,
        /// Its byte offset.
        offset: u32,
        /// What the task gives, e.g. `2 positional scalar values`.
        given: String,
        /// How to give it, the way the task gives its other scalars.
        hint: String,
    },
    /// More scalar values than the kernel's parameter block (`var<immediate>`) has room for.
    #[error(fmt = kernel::extra_scalars)]
    ExtraScalars {
        /// The kernel (`file::entry`).
        kernel: String,
        /// Values given (a vector value counts one per component).
        given: usize,
        /// Values the kernel takes (one per 4-byte word of its members).
        expected: usize,
        /// The members that take them, `name: type`, or `none`.
        declared: String,
        /// The values beyond those the kernel takes, in the order given, each with its position (or its name, for a
        /// value given by name), type and value: `positional scalar 1 (an f32: 0.2)`.
        extra: String,
    },
    /// A scalar or vector value of another type than the parameter-block (`var<immediate>`) member it fills (`[f32; 2]` for a
    /// `vec3<f32>`, `[i32; 2]` for a `vec2<f32>`), or a value by name for a matrix, array or struct member.
    #[error(fmt = kernel::scalar_type)]
    ScalarType {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The member's name.
        member: String,
        /// The member's (component) type.
        member_type: String,
        /// The type given (`an f32`, `a [f32; 2] (vec2<f32>)`).
        given: String,
        /// Which value: `scalar "dt"` or `positional scalar 2`.
        which: String,
        /// What fits, e.g. `give it a value of type u32`, `give it a [f32; 2] (vec2<f32>)`.
        hint: String,
    },
    /// A binding or scalar named by the program that the kernel does not declare.
    #[error(fmt = kernel::unknown_kernel_name)]
    UnknownKernelName {
        /// The kernel (`file::entry`).
        kernel: String,
        /// `binding` or `var<immediate> member`.
        what: &'static str,
        /// The name given.
        name: String,
        /// The names it has.
        known: String,
    },
    /// A binding or scalar named twice, or named for some values and not for others.
    #[error(fmt = kernel::kernel_naming)]
    KernelNaming {
        /// The kernel (`file::entry`).
        kernel: String,
        /// What is wrong, e.g. ``binding `src` is given twice``.
        problem: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// A parameter block (`var<immediate>` struct, pushed as push constants or read from a storage buffer) that
    /// does not follow celer's layout (chunk box, one box per binding, scalars).
    #[error(fmt = kernel::push_constant_layout)]
    PushConstantLayout {
        /// The kernel (`file::entry`).
        kernel: String,
        /// What differs.
        detail: String,
    },
    /// A kernel that uses `f64` submitted where a device of the job lacks the Vulkan feature `shaderFloat64`.
    #[error(fmt = kernel::kernel_needs_float64)]
    KernelNeedsFloat64 {
        /// The kernel (`file::entry`).
        kernel: String,
    },
    /// A kernel whose dispatch pushes more push-constant bytes (its chunk, a box per binding, its scalars; or its
    /// push-constant block declares more) than a device of the job takes (`maxPushConstantsSize`).
    #[error(fmt = kernel::push_constants_too_large)]
    PushConstantsTooLarge {
        /// The kernel (`file::entry`).
        kernel: String,
        /// What the dispatch would push (or the kernel's block declares, if more).
        bytes: usize,
        /// How they add up.
        detail: String,
        /// The least limit of the job's devices.
        limit: u32,
    },
    /// A kernel that reads its parameters from a storage buffer (its parameter block is larger than the 128 bytes
    /// of push constants every device takes) whose dispatch passes more parameter bytes (its chunk, a box per
    /// binding, its scalars) than such a kernel may read.
    #[error(fmt = kernel::params_too_large)]
    ParamsTooLarge {
        /// The kernel (`file::entry`).
        kernel: String,
        /// What the dispatch would pass (or the kernel's block declares, if more).
        bytes: usize,
        /// How they add up.
        detail: String,
        /// The most bytes a kernel reads from its parameter buffer.
        limit: usize,
    },
    /// A kernel whose dispatch binds more storage buffers (its bindings, the bounds record of its checked variant,
    /// its parameter buffer) than a device of the job lets one dispatch bind
    /// (`maxPerStageDescriptorStorageBuffers`).
    #[error(fmt = kernel::too_many_bindings)]
    TooManyBindings {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The kernel's bindings (accessors and reductions).
        bindings: usize,
        /// The storage buffers its dispatch may bind.
        needed: usize,
        /// How they add up.
        detail: String,
        /// The least limit of the job's devices.
        limit: u32,
    },
    /// Two writing accessors of one buffer in one host task whose cells overlap: each accessor gets a copy of its
    /// cells, and the copy written back last would overwrite what the closure stored through the other.
    #[error(fmt = access::host_writes_overlap)]
    HostWritesOverlap {
        /// The buffer.
        buffer: ResourceIdent,
        /// The first writing accessor (numbered from 0 in the order written).
        first: usize,
        /// Its mode and mapper, `write one_to_one`.
        first_access: String,
        /// The second.
        second: usize,
        /// Its mode and mapper.
        second_access: String,
        /// The cells both map (over the task's whole index space).
        region: Region,
    },
    /// Items of one task read cells that other items of the same task write: the result would depend on how the
    /// task is split and in which order its work-items run.
    #[error(fmt = access::intra_task_race)]
    IntraTaskRace {
        /// The buffer.
        buffer: ResourceIdent,
        /// Cells one chunk reads and another writes (found on a probe split).
        region: Region,
        /// The reading access, `read through neighborhood`.
        read: String,
        /// The writing access.
        write: String,
    },
    /// A `reduce_with` identity that its combine closure does not keep: `combine(identity, identity) != identity`, or
    /// `combine(identity, x) != x` or `combine(x, identity) != x` for one of the finite values `x` that `submit` probes
    /// (0, 1, -1, 2, 7, the type's smallest and largest value, for floats also -0.0, -0.5, 1e30, -1e30; a float
    /// result equal by value counts, so `0.0 + -0.0` keeps `-0.0`).
    #[error(fmt = reduction::reduction_identity)]
    ReductionIdentity {
        /// The buffer.
        buffer: ResourceIdent,
        /// The identity given.
        identity: String,
        /// The call of the combine that shows it is not one: `combine(0, -1)`, with the identity and the probe value
        /// in the order passed.
        call: String,
        /// What the combine gave.
        gave: String,
        /// What it should have given: the probe value (the identity, for `combine(identity, identity)`).
        wanted: String,
        /// The identities of the common combines of the element type (`i32::MIN for a maximum, …`).
        hint: String,
    },
    /// A `reduce_with` combine closure that gives different results for two values in the two orders (of the small
    /// values `submit` probes: 0, 1, -1, 2, 7, for floats also -0.0 and -0.5; equal bits, or for floats equal values
    /// or two NaNs, count as the same).
    #[error(fmt = reduction::reduction_not_commutative)]
    ReductionNotCommutative {
        /// The buffer.
        buffer: ResourceIdent,
        /// One call of the combine: `combine(1, 2)`.
        call: String,
        /// What it gave.
        gave: String,
        /// The call with its operands swapped: `combine(2, 1)`.
        swapped: String,
        /// What that gave.
        gave_swapped: String,
    },
    /// A buffer reduced into twice by one task.
    #[error(fmt = reduction::reduction_twice)]
    ReductionTwice {
        /// The buffer.
        buffer: ResourceIdent,
        /// Its first reduction.
        first: usize,
        /// Its second.
        second: usize,
    },
    /// A buffer both reduced into and accessed in one task.
    #[error("{buffer} is both reduced into and accessed by the same task")]
    ReductionAndAccess {
        /// The buffer.
        buffer: ResourceIdent,
    },
    /// A reduction in a task that is not a kernel: only kernels combine items into a reduction.
    #[error(fmt = reduction::reduction_without_kernel)]
    ReductionWithoutKernel {
        /// The task's kind, as the program wrote it (`a host task (task::host_for)`, …).
        kind: &'static str,
        /// The reduction's buffer.
        buffer: ResourceIdent,
    },
    /// `ReductionOp::Custom` without the identity and combining function only `reduce_with` gives.
    #[error(fmt = reduction::custom_reduction_without_combine)]
    CustomReductionWithoutCombine {
        /// The reduction's buffer.
        buffer: ResourceIdent,
    },
    /// A deterministic block reduction (a kernel calling the prelude's `celer_reduce_*`) asked to fold in the
    /// buffer's current value, which the tree of blocks has no place for.
    #[error(fmt = kernel::block_reduction_including_current_value)]
    BlockReductionIncludingCurrentValue {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The reduction's buffer.
        buffer: ResourceIdent,
    },
    /// A reduction that folds in the buffer's current value, of a buffer no task wrote and not created from data
    /// (an error only under [`ErrorPolicy::Error`]; otherwise a warning, and the reduction starts from the
    /// identity).
    #[error(fmt = reduction::uninitialized_reduction)]
    UninitializedReduction {
        /// The buffer.
        buffer: ResourceIdent,
    },
    /// What does not fit the task's kind: a host closure on a kernel task (it would never run), a host task without
    /// one on a queue that runs the program (it would have nothing to run), scalars or binding names on a host task
    /// (it would ignore them).
    #[error("{problem}")]
    HostClosure {
        /// What is wrong, and what to do.
        problem: &'static str,
    },
    /// A kernel known only by name (a dry run's), submitted to a queue that runs the program.
    #[error(fmt = kernel::kernel_without_code)]
    KernelWithoutCode {
        /// The kernel's name.
        kernel: String,
    },
    /// An index space with more items than a `usize` counts.
    #[error("the index space {range} has more items than a usize can count; split the work into several tasks")]
    IndexSpaceTooLarge {
        /// The index space.
        range: GridBox,
    },
    /// An index space given as offset and range (the facade's `.offset(..)`) whose end overflows `usize`.
    #[error(fmt = boxes::index_space_overflow)]
    IndexSpaceOverflow {
        /// The offset given.
        offset: Vec<usize>,
        /// The range given.
        range: Vec<usize>,
    },
    /// An offset on a task whose index space celer numbers itself (a collective host task: item `r` is process `r`).
    #[error(fmt = boxes::offset_not_allowed)]
    OffsetNotAllowed {
        /// The kind of task, as the program made it (`a collective host task (task::host_collective)`).
        kind: &'static str,
        /// The offset given.
        offset: Vec<usize>,
    },
    /// A kernel over an index space, or bound to a buffer, whose coordinates do not fit the `u32` kernels see.
    #[error(fmt = kernel::kernel_coordinates)]
    KernelCoordinates {
        /// The kernel (`file::entry`).
        kernel: String,
        /// The index space or buffer at fault, with its extent.
        what: String,
        /// The largest extent a kernel addresses (`u32::MAX`).
        max: u32,
    },
    /// A kernel whose accesses of one buffer on one node's chunk span more cells than a kernel indexes: a node's
    /// allocation of the buffer covers at least that box, and kernels index its cells as `u32`.
    #[error(fmt = kernel::kernel_cells)]
    KernelCells {
        /// The kernel (`file::entry`, or the name of a `Kernel::named`).
        kernel: String,
        /// The buffer at fault.
        buffer: ResourceIdent,
        /// The chunk of the index space (one node's part).
        chunk: GridBox,
        /// The nodes (ranks × devices per rank) the index space is split over.
        nodes: usize,
        /// The bounding box of what the chunk's accessors of the buffer touch.
        region: GridBox,
        /// Its cells.
        cells: u64,
        /// The most cells a kernel indexes (2^32).
        max: u64,
    },
    /// A kernel whose accesses of one buffer on one node's chunk span more bytes than every rank's devices bind for
    /// one accessor (`maxStorageBufferRange`, agreed at start-up): a node's allocation of the buffer covers at
    /// least that box, and a kernel binds all of it.
    #[error(fmt = kernel::kernel_bind_bytes)]
    KernelBindBytes {
        /// The kernel (`file::entry`, or the name of a `Kernel::named`).
        kernel: String,
        /// The buffer at fault.
        buffer: ResourceIdent,
        /// The chunk of the index space (one node's part).
        chunk: GridBox,
        /// The nodes (ranks × devices per rank) the index space is split over.
        nodes: usize,
        /// The bounding box of what the chunk's accessors of the buffer touch.
        region: GridBox,
        /// Its bytes.
        bytes: u64,
        /// The most bytes the devices bind for one accessor.
        max: u64,
    },
    /// A buffer, host object or collective group of another queue (a second dry-run queue, say), whose id means
    /// another resource here.
    #[error(fmt = access::foreign_resource)]
    ForeignResource {
        /// The resource, as its own queue knows it (`buffer B0 "a"`, `host object H1`, `collective group CG1`).
        resource: String,
    },
    /// An empty box given as offset and range (a fence's subrange, a `fixed` mapper of a task with items) that lies
    /// outside the buffer's extent: a non-empty box there is refused, so an empty one is too.
    #[error(fmt = boxes::empty_box_outside)]
    EmptyBoxOutside {
        /// Which box: `the fenced box`, `the box of a fixed range mapper (read access)`.
        what: String,
        /// The buffer.
        buffer: ResourceIdent,
        /// The offset given.
        offset: Vec<usize>,
        /// The range given.
        range: Vec<usize>,
        /// The buffer's extent, per dimension.
        extent: Vec<usize>,
        /// The first dimension along which the box ends beyond the extent.
        dim: usize,
        /// The box's start along `dim`.
        start: usize,
        /// The box's end along `dim` (beyond `extent[dim]`).
        end: usize,
    },
    /// A non-empty box given to `fence_subrange` that reaches beyond the buffer's extent.
    #[error(fmt = boxes::fenced_box_outside)]
    FencedBoxOutside {
        /// Which box: `the fenced box`.
        what: String,
        /// The buffer.
        buffer: ResourceIdent,
        /// The offset given.
        offset: Vec<usize>,
        /// The range given.
        range: Vec<usize>,
        /// The buffer's extent, per dimension.
        extent: Vec<usize>,
        /// The first dimension along which the box ends beyond the extent.
        dim: usize,
        /// The box's start along `dim`.
        start: usize,
        /// The box's end along `dim` (beyond `extent[dim]`).
        end: usize,
    },
    /// A box given as offset and range (a fence's subrange, a `fixed` mapper) whose end overflows `usize`.
    #[error(fmt = boxes::box_overflow)]
    BoxOverflow {
        /// Which box: `the fenced box`, `the fixed range mapper's box (read access)`.
        what: String,
        /// The buffer.
        buffer: ResourceIdent,
        /// The offset given.
        offset: Vec<usize>,
        /// The range given.
        range: Vec<usize>,
        /// The buffer's extent (its shape where it is empty).
        extent: BufferExtent,
    },
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for TaskErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A warning about a task that was recorded anyway.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The task and what is suspicious about it.
    pub error: TaskError,
}

impl From<TaskError> for Diagnostic {
    fn from(error: TaskError) -> Self {
        Self { error }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}", self.error)
    }
}
